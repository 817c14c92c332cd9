//! Who calls the SMS Gateway for Android compatible API: Basic users (argon2 password
//! hashes) and Bearer JWTs (HS256, signed with a relay secret kept in the store so that every
//! relay on one database accepts them; each token's id is stored, so a revoke is seen by all).
//!
//! A Basic user holds every scope of its account (`all:any`); a JWT holds the scopes it was
//! issued with. Argon2 makes a password check cost tens of milliseconds, and the clients send
//! the password on every request: a successful check is remembered (keyed by a SHA-256 of the
//! stored hash and the password, so a changed or deleted user is checked afresh).

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Every scope the upstream server knows; `tokens:refresh` belongs to refresh tokens only.
pub const SCOPES: &[&str] = &[
    "all:any",
    "messages:send",
    "messages:read",
    "messages:list",
    "messages:cancel",
    "messages:export",
    "devices:list",
    "devices:delete",
    "webhooks:list",
    "webhooks:write",
    "webhooks:delete",
    "settings:read",
    "settings:write",
    "logs:read",
    "inbox:list",
    "inbox:refresh",
    "tokens:manage",
];

/// The scope of refresh tokens (matched exactly, never implied by `all:any`).
pub const REFRESH_SCOPE: &str = "tokens:refresh";

/// Checked password hashes remembered at most (the set is emptied when full).
const MAX_REMEMBERED: usize = 10_000;

/// A user login: 1 to 64 characters of `A-Z a-z 0-9 . _ @ -`.
pub fn valid_login(login: &str) -> bool {
    (1..=64).contains(&login.len())
        && login
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'-'))
}

/// A password: 12 to 256 printable ASCII characters (a generated one has 32).
pub fn check_password(password: &str) -> Result<(), &'static str> {
    if !(12..=256).contains(&password.len()) || !password.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("password must be 12 to 256 printable ASCII characters without spaces");
    }
    Ok(())
}

/// An argon2id PHC string of `password` (the crate's default parameters).
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).expect("16 bytes encode");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashes any password")
        .to_string()
}

/// Whether `password` matches the PHC string `stored` (false for a malformed one).
pub fn verify_password(stored: &str, password: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// What `Authorization` carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    Basic { login: String, password: String },
    Bearer(String),
}

/// Parses `Basic base64(login:password)` or `Bearer <token>` (schemes case-insensitive).
pub fn parse_authorization(value: &[u8]) -> Option<Credentials> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let text = String::from_utf8(raw).ok()?;
        let (login, password) = text.split_once(':')?;
        return Some(Credentials::Basic {
            login: login.to_string(),
            password: password.to_string(),
        });
    }
    (scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() && rest.len() <= 4096)
        .then(|| Credentials::Bearer(rest.to_string()))
}

/// The claims of the relay's JWTs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The account.
    pub sub: String,
    pub jti: String,
    pub iat: i64,
    /// Unix seconds.
    pub exp: i64,
    pub scopes: Vec<String>,
    /// `access` or `refresh`.
    pub typ: String,
}

pub const ISSUER: &str = "simrelay";

/// Signs and checks JWTs with one HS256 secret.
pub struct Signer {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer")
    }
}

impl Signer {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    pub fn sign(&self, claims: &Claims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .expect("HS256 signs any claims")
    }

    /// The claims of a token this relay signed, not expired at `now_s` (Unix seconds).
    pub fn verify(&self, token: &str, now_s: i64) -> Option<Claims> {
        let mut v = Validation::new(Algorithm::HS256);
        v.set_issuer(&[ISSUER]);
        v.leeway = 0;
        // `exp` is checked below against the caller's clock.
        v.validate_exp = false;
        v.set_required_spec_claims(&["exp", "iss", "sub"]);
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &v)
            .ok()?
            .claims;
        (claims.exp > now_s).then_some(claims)
    }
}

/// Argon2 checks run at once, at most (each takes tens of milliseconds of a core and 19 MiB):
/// wrong passwords sent in bulk wait their turn instead of taking every core.
pub const MAX_CHECKS: usize = 4;

/// The process-wide state of compat authentication: the JWT signer (loaded once from the
/// store), the remembered password checks, and the bound on argon2 checks in flight.
#[derive(Debug)]
pub struct AuthState {
    signer: OnceLock<Signer>,
    remembered: Mutex<HashSet<[u8; 32]>>,
    pub checks: tokio::sync::Semaphore,
}

impl Default for AuthState {
    fn default() -> Self {
        Self {
            signer: OnceLock::new(),
            remembered: Mutex::new(HashSet::new()),
            checks: tokio::sync::Semaphore::new(MAX_CHECKS),
        }
    }
}

fn remember_key(stored_hash: &str, password: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(stored_hash.as_bytes());
    h.update([0]);
    h.update(password.as_bytes());
    h.finalize().into()
}

impl AuthState {
    /// The signer, made from `secret` on first use.
    pub fn signer(&self, secret: impl FnOnce() -> Vec<u8>) -> &Signer {
        self.signer.get_or_init(|| Signer::new(&secret()))
    }

    pub fn has_signer(&self) -> Option<&Signer> {
        self.signer.get()
    }

    /// Whether this password was found to match this stored hash before.
    pub fn remembered(&self, stored_hash: &str, password: &str) -> bool {
        self.remembered
            .lock()
            .expect("password cache lock")
            .contains(&remember_key(stored_hash, password))
    }

    pub fn remember(&self, stored_hash: &str, password: &str) {
        let mut set = self.remembered.lock().expect("password cache lock");
        if set.len() >= MAX_REMEMBERED {
            set.clear();
        }
        set.insert(remember_key(stored_hash, password));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_headers() {
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("alice:pa:ss")
        );
        assert_eq!(
            parse_authorization(basic.as_bytes()),
            Some(Credentials::Basic {
                login: "alice".into(),
                password: "pa:ss".into()
            })
        );
        assert_eq!(
            parse_authorization(b"bearer abc.def.ghi"),
            Some(Credentials::Bearer("abc.def.ghi".into()))
        );
        assert_eq!(parse_authorization(b"Basic !!!"), None);
        assert_eq!(parse_authorization(b"Digest x"), None);
        assert_eq!(parse_authorization(b"Bearer"), None);
    }

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse battery");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&h, "correct horse battery"));
        assert!(!verify_password(&h, "correct horse batterx"));
        assert!(!verify_password("not a hash", "x"));
        assert!(check_password("short").is_err());
        assert!(check_password("twelve chars").is_err(), "a space");
        assert!(check_password("twelve-chars").is_ok());
    }

    #[test]
    fn tokens_verify_only_with_the_secret_and_before_expiry() {
        let s = Signer::new(b"secret one");
        let claims = Claims {
            iss: ISSUER.into(),
            sub: "acc".into(),
            jti: "j1".into(),
            iat: 100,
            exp: 200,
            scopes: vec!["messages:send".into()],
            typ: "access".into(),
        };
        let t = s.sign(&claims);
        assert_eq!(s.verify(&t, 150), Some(claims));
        assert_eq!(s.verify(&t, 200), None, "expired");
        assert_eq!(Signer::new(b"secret two").verify(&t, 150), None);
        let mut forged = t.clone();
        forged.push('x');
        assert_eq!(s.verify(&forged, 150), None);
        assert_eq!(s.verify("a.b.c", 150), None);
    }

    #[test]
    fn logins() {
        assert!(valid_login("alice@example.com"));
        assert!(!valid_login(""));
        assert!(!valid_login("a:b"));
        assert!(!valid_login(&"a".repeat(65)));
    }
}
