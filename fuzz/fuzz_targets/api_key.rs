//! The API-key parsers: the `Authorization` header value, the strength rule for configured
//! keys, scope lists and the scope table. Beyond "no panic": a parsed key is a non-empty
//! substring of the header of printable ASCII within the length limit; a key the strength rule
//! accepts is one the header parser accepts after `Bearer `; scopes parsed from names print
//! back to names that parse to the same set; every route needs something (admin by default).
#![no_main]

use libfuzzer_sys::fuzz_target;
use simrelay_server::api::auth::{
    MAX_KEY_LEN, Need, Scopes, check_strength, parse_bearer, required,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = parse_bearer(data) {
        assert!(!key.is_empty() && key.len() <= MAX_KEY_LEN);
        assert!(key.bytes().all(|b| b.is_ascii_graphic()));
        let header = std::str::from_utf8(data).expect("a parsed header is UTF-8");
        assert!(header.contains(key));
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if check_strength(text).is_ok() {
        assert_eq!(parse_bearer(format!("Bearer {text}").as_bytes()), Ok(text));
    }
    if let Ok(scopes) = Scopes::from_names(text.split(',')) {
        assert_eq!(Scopes::from_stored(&scopes.to_string()), scopes);
        assert!(scopes.covers(scopes));
    }
    let (method, route) = text.split_once(' ').unwrap_or(("GET", text));
    if let Need::Scope(s) = required(method, route) {
        assert!(Scopes::of(&[simrelay_server::api::auth::Scope::Admin]).allows(s));
    }
});
