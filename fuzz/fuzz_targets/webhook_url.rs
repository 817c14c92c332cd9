//! The webhook-URL check (the SSRF guard's syntax and address part) on arbitrary input.
//! Beyond "no panic": a URL it accepts is http(s) without credentials and with a host, an
//! address host is public, the normalised URL passes again unchanged, and an allow-list only
//! ever permits more. A refusal's text never quotes a URL or credential of the input.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use simrelay_server::webhooks::ssrf::{UrlPolicy, check_url, special_purpose};

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let strict = UrlPolicy::default();
    let loose = UrlPolicy::new(vec!["127.0.0.0/8".parse().expect("cidr")]);
    match check_url(raw, &strict) {
        Ok(url) => {
            assert!(matches!(url.scheme(), "http" | "https"), "{raw:?}");
            assert!(url.username().is_empty() && url.password().is_none(), "{raw:?}");
            let host = url.host_str().expect("an accepted URL has a host");
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            if let Ok(ip) = bare.parse::<IpAddr>() {
                assert_eq!(special_purpose(ip), None, "{raw:?} reaches {ip}");
            }
            let again = check_url(url.as_str(), &strict).expect("the normalised URL passes");
            assert_eq!(again.as_str(), url.as_str());
            assert!(check_url(raw, &loose).is_ok(), "the allow-list refused {raw:?}");
        }
        Err(refusal) => {
            // The texts are fixed (every payload is `&'static str`), so an input may be a
            // piece of one ("url must be an absolute ..." is refused with that very text);
            // what must never appear is a URL or a credential of the input.
            let text = refusal.to_string();
            let url_like = raw.contains("://") || raw.contains('@');
            assert!(
                raw.len() < 6 || !url_like || !text.contains(raw),
                "{text:?} quotes the input"
            );
        }
    }
});
