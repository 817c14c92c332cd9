//! Dashboard sessions: what a signed-in browser's cookie stands for.
//!
//! Signing in with a user's login and password or with an API key makes a session: a random
//! token in an `HttpOnly`, `SameSite=Strict` cookie (`Secure` when the relay serves TLS) and a
//! second random value, the CSRF token, that the page reads from `GET /ui/session` and sends
//! back in `X-CSRF-Token` with every state-changing request. A request authenticated by the
//! cookie alone may only read. Sessions live in memory (a restart signs everyone out) and end
//! after [`TTL_MS`]; only the token's SHA-256 is kept. What a session may do is looked up again
//! on every request: a revoked key or a deleted user ends it at once.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::{HeaderMap, Method, header};

use crate::api::{hash_secret, random_secret};

/// The session cookie's name.
pub const COOKIE: &str = "simrelay_session";
/// The header that carries the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a session lasts from sign-in (12 hours: a working day).
pub const TTL_MS: i64 = 12 * 3_600_000;
/// Sessions kept at most; beyond it the one closest to its end goes.
pub const MAX_SESSIONS: usize = 10_000;

/// Who signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// An API key, by its stored hash: the session has the key's scopes.
    Key { hash: String },
    /// A user (`/v1/users`): the session has every scope of the user's account.
    User { login: String },
}

/// One signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub principal: Principal,
    pub account: String,
    pub csrf: String,
    pub expires_at: i64,
}

/// The sessions of this relay process.
#[derive(Debug, Default)]
pub struct Sessions {
    by_token_hash: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// A new session; returns the cookie's token (shown to the browser only).
    pub fn create(&self, principal: Principal, account: String, now: i64) -> (String, Session) {
        let token = random_secret(32);
        let session = Session {
            principal,
            account,
            csrf: random_secret(16),
            expires_at: now + TTL_MS,
        };
        let mut map = self.by_token_hash.lock().expect("sessions lock");
        map.retain(|_, s| s.expires_at > now);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.expires_at)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(hash_secret(&token), session.clone());
        (token, session)
    }

    /// The live session of `token`.
    pub fn get(&self, token: &str, now: i64) -> Option<Session> {
        let hash = hash_secret(token);
        let mut map = self.by_token_hash.lock().expect("sessions lock");
        match map.get(&hash) {
            Some(s) if s.expires_at > now => Some(s.clone()),
            Some(_) => {
                map.remove(&hash);
                None
            }
            None => None,
        }
    }

    /// Ends the session of `token` (signing out, or its key or user is gone).
    pub fn remove(&self, token: &str) {
        self.by_token_hash
            .lock()
            .expect("sessions lock")
            .remove(&hash_secret(token));
    }
}

/// The session token of the request's `Cookie` headers.
pub fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// The `Set-Cookie` value that stores `token` (an empty token with max-age 0 clears it).
pub fn set_cookie(token: &str, secure: bool) -> String {
    let max_age = if token.is_empty() { 0 } else { TTL_MS / 1000 };
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={token}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
}

/// Whether a request of this method changes nothing (and so needs no CSRF token).
pub fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether the request carries the session's CSRF token (compared in constant time).
pub fn csrf_ok(session: &Session, headers: &HeaderMap) -> bool {
    let Some(sent) = headers.get(CSRF_HEADER).map(|v| v.as_bytes()) else {
        return false;
    };
    let want = session.csrf.as_bytes();
    sent.len() == want.len() && sent.iter().zip(want).fold(0u8, |d, (a, b)| d | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn key() -> Principal {
        Principal::Key { hash: "h".into() }
    }

    #[test]
    fn sessions_end_at_their_deadline_and_on_removal() {
        let s = Sessions::default();
        let (token, made) = s.create(key(), "acc".into(), 1_000);
        assert_eq!(s.get(&token, 1_000 + TTL_MS - 1), Some(made));
        assert_eq!(s.get(&token, 1_000 + TTL_MS), None);
        assert_eq!(s.get(&token, 1_000), None, "an ended session stays ended");
        let (token, _) = s.create(key(), "acc".into(), 1_000);
        s.remove(&token);
        assert_eq!(s.get(&token, 1_000), None);
        assert_eq!(s.get("not a token", 1_000), None);
    }

    #[test]
    fn the_map_stays_bounded() {
        let s = Sessions::default();
        let (first, _) = s.create(key(), "acc".into(), 0);
        for i in 1..=MAX_SESSIONS {
            s.create(key(), "acc".into(), i64::try_from(i).expect("small"));
        }
        assert_eq!(s.by_token_hash.lock().expect("lock").len(), MAX_SESSIONS);
        assert_eq!(s.get(&first, 1), None, "the oldest went first");
    }

    #[test]
    fn cookies_and_csrf() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; simrelay_session=abc"),
        );
        assert_eq!(cookie_token(&h), Some("abc"));
        assert_eq!(cookie_token(&HeaderMap::new()), None);
        let c = set_cookie("abc", true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.ends_with("Secure"));
        assert!(!set_cookie("abc", false).contains("Secure"));
        assert!(set_cookie("", false).contains("Max-Age=0"));

        let s = Sessions::default();
        let (_, session) = s.create(key(), "acc".into(), 0);
        assert!(!csrf_ok(&session, &h));
        h.insert(
            CSRF_HEADER,
            HeaderValue::from_str(&session.csrf).expect("hex"),
        );
        assert!(csrf_ok(&session, &h));
        h.insert(CSRF_HEADER, HeaderValue::from_static("0000"));
        assert!(!csrf_ok(&session, &h));
        assert!(is_safe(&Method::GET) && !is_safe(&Method::POST) && !is_safe(&Method::DELETE));
    }
}
