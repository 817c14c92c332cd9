//! API keys without I/O: the `Authorization` header parser, the strength rule for keys given
//! in the configuration, key generation, scopes, and the one table that says which scope
//! each route needs.
//!
//! The extractors in `api/mod.rs` call [`parse_bearer`], look the key's hash up in the store
//! on every request, and compare the key's scopes with [`required`] for the request's method
//! and matched route; handlers never check scopes themselves.

use std::fmt;

/// Longest accepted API key (generated keys have 67 characters).
pub const MAX_KEY_LEN: usize = 256;

/// Minimum strength of a key, in bits.
pub const MIN_KEY_BITS: usize = 128;

/// What is wrong with an `Authorization` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerError {
    /// Not `Bearer <token>`.
    NotBearer,
    /// The token is empty, too long, or holds characters a key never has.
    Malformed,
}

/// The key of an `Authorization: Bearer <key>` header value (scheme case-insensitive, as
/// RFC 9110 says; the key is printable ASCII without spaces, at most [`MAX_KEY_LEN`]).
pub fn parse_bearer(value: &[u8]) -> Result<&str, BearerError> {
    let value = std::str::from_utf8(value).map_err(|_| BearerError::Malformed)?;
    let value = value.trim_matches(|c| c == ' ' || c == '\t');
    let (scheme, rest) = value.split_once(' ').ok_or(BearerError::NotBearer)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(BearerError::NotBearer);
    }
    let key = rest.trim_start_matches(' ');
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(BearerError::Malformed);
    }
    Ok(key)
}

/// Checks that a key chosen by a person (config `api_key`, `admin_key`, `metrics_token`) has
/// at least [`MIN_KEY_BITS`]: 32 hex digits, or 22 characters of base64url or printable ASCII,
/// with at least 6 different characters. The error says what is needed.
pub fn check_strength(key: &str) -> Result<(), String> {
    let need = || {
        format!(
            "it needs at least {MIN_KEY_BITS} bits: 32 hex digits or 22 base64url characters \
             (e.g. `openssl rand -hex 32`), or let the relay generate one"
        )
    };
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "it must be 1 to {MAX_KEY_LEN} printable characters without spaces"
        ));
    }
    let bits_per_char = if key.bytes().all(|b| b.is_ascii_hexdigit()) {
        4
    } else {
        // base64url gives 6 bits a character; other printable ASCII a little more, counted as 6.
        6
    };
    let mut seen = [false; 128];
    for b in key.bytes() {
        seen[usize::from(b)] = true;
    }
    let distinct = seen.iter().filter(|s| **s).count();
    if key.len() * bits_per_char < MIN_KEY_BITS || distinct < 6 {
        return Err(need());
    }
    Ok(())
}

/// A new secret: `sr_` and 32 random bytes in hex (256 bits).
pub fn generate_key() -> String {
    format!("sr_{}", super::random_secret(32))
}

/// The part of a generated key shown afterwards (`sr_` and 8 hex digits, 32 of 256 bits).
pub fn key_prefix(key: &str) -> String {
    key.chars().take(11).collect()
}

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Send and cancel messages.
    Send,
    /// Read messages and the inbox.
    Read,
    /// Phones, pairing codes, pools, SIMs and the account's `/metrics`.
    Phones,
    /// Webhooks.
    Webhooks,
    /// Accounts, and everything else.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 5] = [
        Scope::Send,
        Scope::Read,
        Scope::Phones,
        Scope::Webhooks,
        Scope::Admin,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scope::Send => "send",
            Scope::Read => "read",
            Scope::Phones => "phones",
            Scope::Webhooks => "webhooks",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes(u8);

impl Scopes {
    /// Every scope but `admin`: what a whole account may do.
    pub fn account() -> Self {
        Self::of(&[Scope::Send, Scope::Read, Scope::Phones, Scope::Webhooks])
    }

    pub fn of(scopes: &[Scope]) -> Self {
        Self(scopes.iter().fold(0, |a, s| a | s.bit()))
    }

    /// Parses the stored form (`send,read`); unknown names are dropped.
    pub fn from_stored(text: &str) -> Self {
        Self::of(&text.split(',').filter_map(Scope::parse).collect::<Vec<_>>())
    }

    /// Parses names from a request; the first unknown name is the error.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, &'a str> {
        let mut out = Self::default();
        for n in names {
            out.0 |= Scope::parse(n).ok_or(n)?.bit();
        }
        Ok(out)
    }

    pub fn contains(self, s: Scope) -> bool {
        self.0 & s.bit() != 0
    }

    /// Whether a key with these scopes may do what `s` allows (`admin` allows everything).
    pub fn allows(self, s: Scope) -> bool {
        self.contains(s) || self.contains(Scope::Admin)
    }

    /// Whether every scope of `other` is allowed by `self`.
    pub fn covers(self, other: Scopes) -> bool {
        Scope::ALL
            .into_iter()
            .all(|s| !other.contains(s) || self.allows(s))
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn names(self) -> Vec<&'static str> {
        Scope::ALL
            .into_iter()
            .filter(|s| self.contains(*s))
            .map(Scope::name)
            .collect()
    }
}

impl fmt::Display for Scopes {
    /// The stored form: names joined by commas.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names().join(","))
    }
}

/// What a route needs of the caller's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Any valid key (managing the caller's own account's keys).
    AnyKey,
    /// This scope (or `admin`).
    Scope(Scope),
}

/// The scope table: (method or any, route prefix, need), first match wins. A prefix matches
/// the route itself and everything below it (`/v1/webhooks` covers `/v1/webhooks/{id}/...`).
const RULES: &[(Option<&str>, &str, Need)] = &[
    (Some("POST"), "/v1/messages", Need::Scope(Scope::Send)),
    (Some("DELETE"), "/v1/messages", Need::Scope(Scope::Send)),
    (None, "/v1/messages", Need::Scope(Scope::Read)),
    (None, "/v1/inbox", Need::Scope(Scope::Read)),
    (Some("GET"), "/v1/suppressions", Need::Scope(Scope::Read)),
    (None, "/v1/suppressions", Need::Scope(Scope::Send)),
    (
        Some("GET"),
        "/v1/suppressions.csv",
        Need::Scope(Scope::Read),
    ),
    (Some("GET"), "/v1/account/opt-out", Need::Scope(Scope::Read)),
    (Some("PUT"), "/v1/account/opt-out", Need::Scope(Scope::Send)),
    (None, "/v1/phones", Need::Scope(Scope::Phones)),
    (None, "/v1/pairing-codes", Need::Scope(Scope::Phones)),
    (None, "/v1/pools", Need::Scope(Scope::Phones)),
    (None, "/v1/sims", Need::Scope(Scope::Phones)),
    (None, "/metrics", Need::Scope(Scope::Phones)),
    // The demo's switches (`sims::demo_api`), served by `simrelay demo` only.
    (None, "/v1/demo", Need::Scope(Scope::Phones)),
    (None, "/v1/webhooks", Need::Scope(Scope::Webhooks)),
    (None, "/v1/keys", Need::AnyKey),
    // Managing users needs every scope of an account, checked by the handler.
    (None, "/v1/users", Need::AnyKey),
    (None, "/v1/accounts", Need::Scope(Scope::Admin)),
    // Spend limits (`api::limits`): confirming a paused prefix is the account's own call.
    (
        None,
        "/v1/account/paused-prefixes",
        Need::Scope(Scope::Send),
    ),
    (Some("GET"), "/v1/account", Need::Scope(Scope::Read)),
    // The dashboard's own routes (`crate::dashboard`): its charts read messages.
    (None, "/ui/stats", Need::Scope(Scope::Read)),
    (None, "/ui", Need::AnyKey),
];

/// What a request with this method on this matched route (`/v1/messages/{id}`) needs. A route
/// missing from the table needs `admin` (fail closed).
pub fn required(method: &str, route: &str) -> Need {
    RULES
        .iter()
        .find(|(m, prefix, _)| {
            m.is_none_or(|m| m == method)
                && route
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
        .map_or(Need::Scope(Scope::Admin), |(_, _, need)| *need)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(parse_bearer(b"Bearer abc"), Ok("abc"));
        assert_eq!(parse_bearer(b"bearer  abc "), Ok("abc"));
        assert_eq!(parse_bearer(b"Basic abc"), Err(BearerError::NotBearer));
        assert_eq!(parse_bearer(b"Bearer"), Err(BearerError::NotBearer));
        assert_eq!(parse_bearer(b"Bearer a b"), Err(BearerError::Malformed));
        assert_eq!(parse_bearer(b"Bearer \xff"), Err(BearerError::Malformed));
        let long = format!("Bearer {}", "a".repeat(MAX_KEY_LEN + 1));
        assert_eq!(parse_bearer(long.as_bytes()), Err(BearerError::Malformed));
    }

    #[test]
    fn keys_need_128_bits() {
        assert!(check_strength("k").is_err());
        assert!(check_strength("key-account-a").is_err());
        assert!(check_strength(&"0123456789abcdef".repeat(2)[..31]).is_err());
        assert!(check_strength(&"0123456789abcdef".repeat(2)).is_ok());
        assert!(check_strength("abcdefghijklmnopqrstu").is_err());
        assert!(check_strength("abcdefghijklmnopqrstuv").is_ok());
        assert!(check_strength(&"a".repeat(64)).is_err());
        assert!(check_strength(&generate_key()).is_ok());
        assert!(check_strength("with space abcdefghijklmnop").is_err());
    }

    #[test]
    fn scope_table() {
        let s = |x| Need::Scope(x);
        assert_eq!(required("POST", "/v1/messages"), s(Scope::Send));
        assert_eq!(required("DELETE", "/v1/messages/{id}"), s(Scope::Send));
        assert_eq!(required("GET", "/v1/messages/{id}"), s(Scope::Read));
        assert_eq!(required("GET", "/v1/inbox/wait"), s(Scope::Read));
        assert_eq!(required("GET", "/v1/suppressions"), s(Scope::Read));
        assert_eq!(required("POST", "/v1/suppressions"), s(Scope::Send));
        assert_eq!(
            required("DELETE", "/v1/suppressions/{number}"),
            s(Scope::Send)
        );
        assert_eq!(required("GET", "/v1/suppressions.csv"), s(Scope::Read));
        assert_eq!(required("POST", "/v1/suppressions.csv"), s(Scope::Admin));
        assert_eq!(required("POST", "/v1/suppressions/import"), s(Scope::Send));
        assert_eq!(required("GET", "/v1/account/opt-out"), s(Scope::Read));
        assert_eq!(required("PUT", "/v1/account/opt-out"), s(Scope::Send));
        assert_eq!(required("DELETE", "/v1/account/opt-out"), s(Scope::Admin));
        assert_eq!(
            required("PATCH", "/v1/sims/{phone}/{sub_id}"),
            s(Scope::Phones)
        );
        assert_eq!(
            required("POST", "/v1/webhooks/{id}/ping"),
            s(Scope::Webhooks)
        );
        assert_eq!(required("DELETE", "/v1/keys/{id}"), Need::AnyKey);
        assert_eq!(required("GET", "/v1/accounts"), s(Scope::Admin));
        assert_eq!(required("PUT", "/v1/accounts/{id}/limits"), s(Scope::Admin));
        assert_eq!(required("GET", "/v1/account"), s(Scope::Read));
        assert_eq!(required("PUT", "/v1/account"), s(Scope::Admin));
        assert_eq!(
            required("POST", "/v1/account/paused-prefixes/{prefix}/block"),
            s(Scope::Send)
        );
        assert_eq!(required("GET", "/v1/messagesx"), s(Scope::Admin));
        assert_eq!(required("GET", "/v1/new-thing"), s(Scope::Admin));
    }

    #[test]
    fn scope_sets() {
        let send = Scopes::of(&[Scope::Send]);
        assert!(Scopes::account().covers(send));
        assert!(!send.covers(Scopes::account()));
        assert!(Scopes::of(&[Scope::Admin]).covers(Scopes::account()));
        assert!(!Scopes::account().covers(Scopes::of(&[Scope::Admin])));
        assert_eq!(
            Scopes::from_stored(&Scopes::account().to_string()),
            Scopes::account()
        );
        assert_eq!(Scopes::from_names(["send", "nope"]), Err("nope"));
    }
}
