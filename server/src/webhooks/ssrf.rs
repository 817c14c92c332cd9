//! The SSRF guard of webhook URLs: which URLs and addresses a webhook may reach.
//!
//! A webhook URL is checked when it is registered and again at every delivery:
//!
//! * syntax ([`check_url`]): an absolute `http`/`https` URL with a host and no `user:pass@`;
//!   the host is normalised as the WHATWG URL parser does (the `url` crate behind
//!   `reqwest::Url`), so `2130706433`, `0x7f.1`, `0177.0.0.1` and `127.1` all become
//!   `127.0.0.1` and `[::ffff:127.0.0.1]` an IPv4-mapped IPv6 address before they are judged;
//! * addresses ([`UrlPolicy::permits`]): loopback, private (RFC 1918, ULA), shared (CGNAT),
//!   link-local (incl. the cloud metadata address 169.254.169.254), multicast, unspecified,
//!   broadcast, documentation, benchmarking and other special-purpose ranges are refused,
//!   for IPv4 also when embedded in IPv6 (mapped, compatible, NAT64, 6to4), unless the
//!   configured allow-list (`webhook_allow_cidrs`) names them;
//! * names: at registration every address the name resolves to must be permitted
//!   ([`check_name`]); a name that does not resolve is refused. At delivery the client's
//!   resolver ([`GuardedResolver`]) drops forbidden addresses and fails when none remain, and
//!   the connection goes to an address it returned, so a name that re-resolves to an internal
//!   address (DNS rebinding) cannot reach it. IP literals skip resolvers, so the delivery
//!   checks them itself with [`check_url`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// How long resolving a name may take at registration.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a webhook URL is refused. The texts never quote the URL (it may carry credentials).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefusal {
    #[error("url must be an absolute http(s) URL with a host")]
    Invalid,
    #[error("url must not carry a user name or password")]
    Credentials,
    #[error(
        "url points at a {0} address; webhooks only reach public addresses unless the relay's webhook_allow_cidrs names it"
    )]
    Forbidden(&'static str),
    #[error(
        "url's host name resolves to a {0} address; webhooks only reach public addresses unless the relay's webhook_allow_cidrs names it"
    )]
    ForbiddenName(&'static str),
    #[error("url's host name does not resolve")]
    Unresolvable,
}

impl UrlRefusal {
    /// The API error code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Invalid => "invalid_url",
            Self::Credentials | Self::Forbidden(_) | Self::ForbiddenName(_) => {
                "webhook_url_forbidden"
            }
            Self::Unresolvable => "webhook_url_unresolvable",
        }
    }
}

/// Which addresses webhooks may reach: public ones, and those the allow-list names.
#[derive(Debug, Clone, Default)]
pub struct UrlPolicy {
    allow: Vec<IpNet>,
}

impl UrlPolicy {
    pub fn new(allow: Vec<IpNet>) -> Self {
        Self { allow }
    }

    /// Why `ip` is refused, or `None` when webhooks may reach it.
    pub fn refusal(&self, ip: IpAddr) -> Option<&'static str> {
        let plain = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            IpAddr::V4(_) => ip,
        };
        if self
            .allow
            .iter()
            .any(|n| n.contains(&ip) || n.contains(&plain))
        {
            return None;
        }
        special_purpose(ip)
    }

    /// Whether webhooks may reach `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        self.refusal(ip).is_none()
    }
}

/// What kind of non-public address `ip` is, or `None` for a public one.
pub fn special_purpose(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_kind(v4),
        IpAddr::V6(v6) => v6_kind(v6),
    }
}

fn v4_kind(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(if a == 0 {
        "unspecified"
    } else if ip.is_loopback() {
        "loopback"
    } else if ip.is_private() {
        "private"
    } else if a == 100 && (b & 0xc0) == 64 {
        "shared (CGNAT)"
    } else if ip.is_link_local() {
        "link-local"
    } else if ip.is_multicast() {
        "multicast"
    } else if ip.is_broadcast() {
        "broadcast"
    } else if ip.is_documentation() {
        "documentation"
    } else if a == 198 && (b & 0xfe) == 18 {
        "benchmarking"
    } else if (a, b, c) == (192, 0, 0) || (a, b, c) == (192, 88, 99) {
        "special-purpose"
    } else if a >= 240 {
        "reserved"
    } else {
        return None;
    })
}

fn v6_kind(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_kind(v4);
    }
    Some(if ip.is_unspecified() {
        "unspecified"
    } else if ip.is_loopback() {
        "loopback"
    } else if s[..6] == [0; 6] {
        // ::a.b.c.d, IPv4-compatible (deprecated): nothing public lives there.
        "IPv4-compatible"
    } else if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // NAT64 reaches the embedded IPv4 address: judge that one.
        return v4_kind(embedded(s[6], s[7]));
    } else if s[0] == 0x2002 {
        // 6to4 carries the IPv4 address of its relay.
        return v4_kind(embedded(s[1], s[2]));
    } else if (s[0] & 0xfe00) == 0xfc00 {
        "private (unique local)"
    } else if (s[0] & 0xffc0) == 0xfe80 {
        "link-local"
    } else if (s[0] & 0xffc0) == 0xfec0 {
        "site-local"
    } else if (s[0] & 0xff00) == 0xff00 {
        "multicast"
    } else if (s[0] == 0x2001 && s[1] == 0x0db8) || (s[0] == 0x3fff && s[1] < 0x1000) {
        "documentation"
    } else if s[0] == 0x2001 && s[1] < 0x0200 {
        // 2001::/23: Teredo, benchmarking, ORCHID and other protocol assignments.
        "special-purpose"
    } else if (s[0] & 0xe000) != 0x2000 {
        // Outside 2000::/3 nothing is global unicast (64:ff9b:1::/48, 100::/64, ...).
        "reserved"
    } else {
        return None;
    })
}

/// Checks a URL's syntax and, when its host is an IP literal, the address. Returns the
/// normalised URL; a host name still needs [`check_name`] (registration) or the
/// [`GuardedResolver`] (delivery).
pub fn check_url(raw: &str, policy: &UrlPolicy) -> Result<Url, UrlRefusal> {
    let url = Url::parse(raw).map_err(|_| UrlRefusal::Invalid)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlRefusal::Invalid);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlRefusal::Credentials);
    }
    let Some(ip) = literal(&url)? else {
        return Ok(url);
    };
    match policy.refusal(ip) {
        Some(kind) => Err(UrlRefusal::Forbidden(kind)),
        None => Ok(url),
    }
}

/// The URL's host as an address, `None` for a name. The parser already normalised it: an
/// IPv4 host is dotted decimal, an IPv6 one bracketed.
fn literal(url: &Url) -> Result<Option<IpAddr>, UrlRefusal> {
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or(UrlRefusal::Invalid)?;
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    Ok(bare.parse().ok())
}

/// Resolves the host name of a URL that passed [`check_url`] and refuses it unless every
/// address is permitted. IP literals pass unchanged.
pub async fn check_name(url: &Url, policy: &UrlPolicy) -> Result<(), UrlRefusal> {
    if literal(url)?.is_some() {
        return Ok(());
    }
    let name = url.host_str().ok_or(UrlRefusal::Invalid)?;
    let port = url.port_or_known_default().unwrap_or(80);
    let addrs: Vec<SocketAddr> =
        match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((name, port))).await {
            Ok(Ok(addrs)) => addrs.collect(),
            Ok(Err(_)) | Err(_) => return Err(UrlRefusal::Unresolvable),
        };
    if addrs.is_empty() {
        return Err(UrlRefusal::Unresolvable);
    }
    match addrs.iter().find_map(|a| policy.refusal(a.ip())) {
        Some(kind) => Err(UrlRefusal::ForbiddenName(kind)),
        None => Ok(()),
    }
}

/// Every address a webhook's host name resolved to was forbidden.
#[derive(Debug, thiserror::Error)]
#[error("every address of the host name is forbidden")]
pub struct ForbiddenAddress;

/// The delivery client's resolver: the system's, without the addresses the policy refuses.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    policy: Arc<UrlPolicy>,
}

impl GuardedResolver {
    pub fn new(policy: Arc<UrlPolicy>) -> Self {
        Self { policy }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0)).await?;
            let permitted: Vec<SocketAddr> = found.filter(|a| policy.permits(a.ip())).collect();
            if permitted.is_empty() {
                return Err(Box::new(ForbiddenAddress) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(permitted.into_iter()) as Addrs)
        })
    }
}

/// Whether `err` (a reqwest error) was caused by [`ForbiddenAddress`].
pub fn is_forbidden(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if e.is::<ForbiddenAddress>() {
            return true;
        }
        cur = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(raw: &str) -> Option<UrlRefusal> {
        check_url(raw, &UrlPolicy::default()).err()
    }

    #[test]
    fn odd_ipv4_spellings_are_normalised_before_they_are_judged() {
        for raw in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0177.0.0.1/",
            "http://127.1/",
            "http://0x7f000001/",
            "http://127.0.0.1./",
            "http://%31%32%37.0.0.1/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[::1]/",
            "http://[0:0:0:0:0:0:0:1]/",
        ] {
            assert_eq!(
                refused(raw),
                Some(UrlRefusal::Forbidden("loopback")),
                "{raw}"
            );
        }
        let url = check_url(
            "http://2130706433:8080/x",
            &UrlPolicy::new(vec!["127.0.0.1/32".parse().expect("cidr")]),
        )
        .expect("allowed");
        assert_eq!(url.as_str(), "http://127.0.0.1:8080/x");
    }

    #[test]
    fn every_special_purpose_range_is_refused() {
        for (raw, kind) in [
            ("http://10.1.2.3/", "private"),
            ("http://172.16.0.1/", "private"),
            ("http://192.168.1.1/", "private"),
            ("http://100.64.0.1/", "shared (CGNAT)"),
            ("http://169.254.169.254/latest/meta-data/", "link-local"),
            ("http://224.0.0.1/", "multicast"),
            ("http://255.255.255.255/", "broadcast"),
            ("http://0.0.0.0/", "unspecified"),
            ("http://0/", "unspecified"),
            ("http://192.0.2.1/", "documentation"),
            ("http://198.18.0.1/", "benchmarking"),
            ("http://240.0.0.1/", "reserved"),
            ("http://[fd00::1]/", "private (unique local)"),
            ("http://[fc00::1]/", "private (unique local)"),
            ("http://[fe80::1]/", "link-local"),
            ("http://[ff02::1]/", "multicast"),
            ("http://[::]/", "unspecified"),
            ("http://[2001:db8::1]/", "documentation"),
            ("http://[::127.0.0.1]/", "IPv4-compatible"),
            ("http://[::ffff:10.0.0.1]/", "private"),
            ("http://[::ffff:169.254.169.254]/", "link-local"),
            ("http://[64:ff9b::a9fe:a9fe]/", "link-local"),
            ("http://[2002:7f00:1::]/", "loopback"),
            ("http://[2001::1]/", "special-purpose"),
            ("http://[100::1]/", "reserved"),
        ] {
            assert_eq!(refused(raw), Some(UrlRefusal::Forbidden(kind)), "{raw}");
        }
    }

    #[test]
    fn public_addresses_names_and_allow_listed_networks_pass() {
        for raw in [
            "https://example.com/hook",
            "http://93.184.215.14/",
            "http://[2606:4700::1111]/",
            "http://[64:ff9b::5db8:d70e]/",
            "http://[::ffff:93.184.215.14]/",
        ] {
            assert_eq!(refused(raw), None, "{raw}");
        }
        let policy = UrlPolicy::new(vec!["10.0.0.0/8".parse().expect("cidr")]);
        assert!(check_url("http://10.9.8.7/", &policy).is_ok());
        assert!(check_url("http://[::ffff:10.9.8.7]/", &policy).is_ok());
        assert!(check_url("http://11.0.0.1/", &policy).is_ok());
        assert!(check_url("http://127.0.0.1/", &policy).is_err());
    }

    #[test]
    fn credentials_other_schemes_and_garbage_are_refused() {
        assert_eq!(
            refused("http://user:pass@example.com/"),
            Some(UrlRefusal::Credentials)
        );
        assert_eq!(
            refused("http://user@example.com/"),
            Some(UrlRefusal::Credentials)
        );
        assert_eq!(
            refused("http://:pass@example.com/"),
            Some(UrlRefusal::Credentials)
        );
        for raw in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "gopher://x/",
            "not a url",
            "/hook",
            "http://",
        ] {
            assert_eq!(refused(raw), Some(UrlRefusal::Invalid), "{raw}");
        }
        let text = UrlRefusal::Credentials.to_string();
        assert!(!text.contains("pass@"));
    }

    #[tokio::test]
    async fn names_resolving_to_internal_addresses_are_refused() {
        let url = check_url("http://localhost:9/", &UrlPolicy::default()).expect("a name");
        assert_eq!(
            check_name(&url, &UrlPolicy::default()).await,
            Err(UrlRefusal::ForbiddenName("loopback"))
        );
        let url = check_url("http://no-such-host.invalid/", &UrlPolicy::default()).expect("a name");
        assert_eq!(
            check_name(&url, &UrlPolicy::default()).await,
            Err(UrlRefusal::Unresolvable)
        );
    }

    #[tokio::test]
    async fn the_resolver_drops_forbidden_addresses() {
        let r = GuardedResolver::new(Arc::new(UrlPolicy::default()));
        let err = match r.resolve("localhost".parse().expect("name")).await {
            Ok(_) => panic!("localhost resolved to a permitted address"),
            Err(e) => e,
        };
        assert!(is_forbidden(err.as_ref()));
        let allow = GuardedResolver::new(Arc::new(UrlPolicy::new(vec![
            "127.0.0.0/8".parse().expect("cidr"),
        ])));
        let addrs: Vec<_> = match allow.resolve("localhost".parse().expect("name")).await {
            Ok(a) => a.collect(),
            Err(e) => panic!("resolves: {e}"),
        };
        assert!(!addrs.is_empty());
        assert!(
            addrs
                .iter()
                .all(|a| a.ip().is_ipv4() && a.ip().is_loopback()),
            "{addrs:?}"
        );
    }

    proptest::proptest! {
        /// The fuzz target's invariants (`fuzz/fuzz_targets/webhook_url.rs`) over URL-shaped
        /// strings: odd IPv4 spellings, IPv6 literals, credentials, schemes.
        #[test]
        fn accepted_urls_reach_only_public_addresses(
            scheme in proptest::sample::select(vec!["http", "https", "ftp", "HTTP"]),
            user in proptest::sample::select(vec!["", "u@", "u:p@", ":p@"]),
            a in 0u32..=255, b in 0u32..=255, n in proptest::num::u32::ANY,
            segs in proptest::collection::vec(proptest::num::u16::ANY, 8),
            form in 0u8..6,
        ) {
            let host = match form {
                0 => format!("{a}.{b}.0.1"),
                1 => n.to_string(),
                2 => format!("0x{a:x}.{b}"),
                3 => format!("0{a:o}.0.0.{b}"),
                4 => format!("[{}]", segs.iter().map(|s| format!("{s:x}")).collect::<Vec<_>>().join(":")),
                _ => format!("[::ffff:{a}.{b}.0.1]"),
            };
            let raw = format!("{scheme}://{user}{host}/x");
            if let Ok(url) = check_url(&raw, &UrlPolicy::default()) {
                proptest::prop_assert!(url.username().is_empty() && url.password().is_none());
                let ip = literal(&url).expect("host").expect("an address");
                proptest::prop_assert_eq!(special_purpose(ip), None, "{} reaches {}", raw, ip);
                let again = check_url(url.as_str(), &UrlPolicy::default()).expect("passes again");
                proptest::prop_assert_eq!(again.as_str(), url.as_str());
            }
        }
    }
}
