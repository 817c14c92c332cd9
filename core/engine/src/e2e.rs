//! End-to-end encryption in SMS Gateway for Android's format, so that its clients' encrypted
//! messages reach the radio in plaintext and only there.
//!
//! A value is `$aes-256-cbc/pbkdf2-sha1$i=<iterations>$<base64(salt)>$<base64(ciphertext)>`:
//! AES-256-CBC with PKCS#7 padding, the key PBKDF2-HMAC-SHA1(passphrase as UTF-8, salt,
//! iterations, 32 bytes), a fresh 16-byte salt per value that is also the IV, standard base64
//! with padding. The engine decrypts outbound numbers and texts just before the radio and
//! encrypts incoming senders and texts before they leave for the relay ([`crate::config`]'s
//! `passphrase`). Errors name what is wrong with a value, never its content.

use aes::Aes256;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use rand::RngCore;
use sha1::Sha1;

/// The iterations SMS Gateway for Android's clients use.
pub const DEFAULT_ITERATIONS: u32 = 75_000;

/// The most iterations a value may ask for: a value is untrusted input, and each iteration
/// costs the phone two SHA-1 blocks (about a second at this bound on a slow phone).
pub const MAX_ITERATIONS: u32 = 1_000_000;

const PREFIX: &str = "$aes-256-cbc/pbkdf2-sha1$i=";
const SALT_LEN: usize = 16;

/// Why a value could not be decrypted. The texts never quote the value or its plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecryptError {
    #[error("not an $aes-256-cbc/pbkdf2-sha1$ value")]
    Format,
    #[error("iterations must be a number from 1 to {MAX_ITERATIONS}")]
    Iterations,
    #[error("salt or ciphertext is not standard base64 with padding")]
    Base64,
    #[error("salt must be {SALT_LEN} bytes")]
    SaltLength,
    /// Also what a wrong passphrase looks like (the padding check is the only check).
    #[error("wrong passphrase or damaged ciphertext")]
    Padding,
    #[error("plaintext is not UTF-8 (wrong passphrase?)")]
    Utf8,
}

/// Encrypts `plaintext` with a fresh random salt. `iterations` outside
/// `1..=MAX_ITERATIONS` are brought into that range (the engine's config refuses them).
pub fn encrypt(passphrase: &str, plaintext: &str, iterations: u32) -> String {
    let mut salt = [0u8; SALT_LEN];
    // The thread's generator is a CSPRNG seeded from the OS; never the engine's seeded one,
    // whose fixed seeds in tests and simulations would repeat salts across phones.
    rand::rng().fill_bytes(&mut salt);
    encrypt_with_salt(
        passphrase,
        plaintext,
        iterations.clamp(1, MAX_ITERATIONS),
        &salt,
    )
}

fn encrypt_with_salt(
    passphrase: &str,
    plaintext: &str,
    iterations: u32,
    salt: &[u8; SALT_LEN],
) -> String {
    let key = derive_key(passphrase, salt, iterations);
    let ciphertext = cbc::Encryptor::<Aes256>::new(&key.into(), salt.into())
        .encrypt_padded_vec_mut::<Pkcs7>(plaintext.as_bytes());
    format!(
        "{PREFIX}{iterations}${}${}",
        STANDARD.encode(salt),
        STANDARD.encode(ciphertext)
    )
}

/// Decrypts a value, parsing it strictly: exactly the prefix, decimal iterations within
/// `1..=MAX_ITERATIONS`, a 16-byte salt, whole blocks with valid padding, UTF-8 inside.
pub fn decrypt(passphrase: &str, value: &str) -> Result<String, DecryptError> {
    let rest = value.strip_prefix(PREFIX).ok_or(DecryptError::Format)?;
    let mut fields = rest.split('$');
    let (Some(iterations), Some(salt), Some(ciphertext), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(DecryptError::Format);
    };
    // Digits only (no sign, no spaces), and short enough that parsing cannot overflow.
    if iterations.is_empty()
        || iterations.len() > 7
        || !iterations.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(DecryptError::Iterations);
    }
    let iterations: u32 = iterations.parse().map_err(|_| DecryptError::Iterations)?;
    if !(1..=MAX_ITERATIONS).contains(&iterations) {
        return Err(DecryptError::Iterations);
    }
    let salt = STANDARD.decode(salt).map_err(|_| DecryptError::Base64)?;
    let salt: [u8; SALT_LEN] = salt.try_into().map_err(|_| DecryptError::SaltLength)?;
    let ciphertext = STANDARD
        .decode(ciphertext)
        .map_err(|_| DecryptError::Base64)?;
    if ciphertext.is_empty() || ciphertext.len() % 16 != 0 {
        return Err(DecryptError::Padding);
    }
    let key = derive_key(passphrase, &salt, iterations);
    let plaintext = cbc::Decryptor::<Aes256>::new(&key.into(), &salt.into())
        .decrypt_padded_vec_mut::<Pkcs7>(&ciphertext)
        .map_err(|_| DecryptError::Padding)?;
    String::from_utf8(plaintext).map_err(|_| DecryptError::Utf8)
}

fn derive_key(passphrase: &str, salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut key = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha1>(passphrase.as_bytes(), salt, iterations, &mut key);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_a_fresh_salt_each_time() {
        for text in ["", "+15551230001", "Grüße, Привет 👋", &"x".repeat(1000)] {
            let a = encrypt("secret", text, 10);
            let b = encrypt("secret", text, 10);
            assert_ne!(a, b, "each value gets its own salt");
            assert!(a.starts_with("$aes-256-cbc/pbkdf2-sha1$i=10$"));
            assert_eq!(decrypt("secret", &a).as_deref(), Ok(text));
            assert_eq!(decrypt("secret", &b).as_deref(), Ok(text));
        }
    }

    #[test]
    fn a_wrong_passphrase_fails() {
        let v = encrypt("secret", "+15551230001", 10);
        // Padding happens to be valid for a wrong key about once in 256 tries; then the
        // plaintext is almost surely not UTF-8. Either way it is an error, never the text.
        for wrong in ["Secret", "", "secret "] {
            let err = decrypt(wrong, &v).expect_err("wrong passphrase");
            assert!(matches!(err, DecryptError::Padding | DecryptError::Utf8));
        }
    }

    #[test]
    fn clamps_iterations_when_encrypting() {
        assert!(encrypt("p", "t", 0).starts_with("$aes-256-cbc/pbkdf2-sha1$i=1$"));
    }

    #[test]
    fn refuses_malformed_values_with_texts_that_quote_nothing() {
        let good = encrypt("p", "+15551230001", 3);
        let (head, ct) = good.rsplit_once('$').expect("fields");
        let salt_field = head.rsplit_once('$').expect("fields").1;
        let salt15 = STANDARD.encode([7u8; 15]);
        let cases: Vec<(String, DecryptError)> = vec![
            ("+15551230001".into(), DecryptError::Format),
            (
                good.replace("aes-256-cbc", "aes-128-cbc"),
                DecryptError::Format,
            ),
            (
                good.replace("pbkdf2-sha1", "pbkdf2-sha256"),
                DecryptError::Format,
            ),
            (format!("{good}$"), DecryptError::Format),
            (head.to_string(), DecryptError::Format),
            (good.replace("i=3$", "i=0$"), DecryptError::Iterations),
            (good.replace("i=3$", "i=$"), DecryptError::Iterations),
            (good.replace("i=3$", "i=-3$"), DecryptError::Iterations),
            (good.replace("i=3$", "i= 3$"), DecryptError::Iterations),
            (good.replace("i=3$", "i=1000001$"), DecryptError::Iterations),
            (
                good.replace("i=3$", "i=99999999999$"),
                DecryptError::Iterations,
            ),
            (good.replace("i=3$", "n=3$"), DecryptError::Format),
            (
                format!("{head}${}", ct.trim_end_matches('=')),
                DecryptError::Base64,
            ),
            (format!("{head}$*{ct}"), DecryptError::Base64),
            (good.replace(salt_field, &salt15), DecryptError::SaltLength),
            (good.replace(salt_field, ""), DecryptError::SaltLength),
            (format!("{head}$"), DecryptError::Padding),
            (
                format!("{head}${}", STANDARD.encode([1u8; 15])),
                DecryptError::Padding,
            ),
        ];
        for (value, want) in cases {
            let got = decrypt("p", &value);
            assert_eq!(got, Err(want.clone()), "{value}");
            assert!(!want.to_string().contains("555"));
        }
    }

    #[test]
    fn accepts_the_largest_iteration_count_only_up_to_the_bound() {
        // The bound itself is accepted by the parser (not run here: a million rounds is slow
        // in a debug build); one above is refused before any key is derived.
        let v = encrypt_with_salt("p", "t", 2, &[1; 16]).replace("i=2$", "i=1000001$");
        assert_eq!(decrypt("p", &v), Err(DecryptError::Iterations));
    }

    /// Vectors made by the Python client's own `Encryptor` (`scripts/e2e-vectors.py`).
    #[derive(serde::Deserialize)]
    struct Vector {
        passphrase: String,
        iterations: u32,
        plaintext: String,
        ciphertext: String,
    }

    fn vectors() -> Vec<Vector> {
        serde_json::from_str(include_str!("../tests/data/e2e_vectors.json"))
            .expect("the vector file parses")
    }

    #[test]
    fn decrypts_the_python_clients_vectors() {
        let vectors = vectors();
        assert!(vectors.len() >= 5);
        assert!(vectors.iter().any(|v| v.iterations == DEFAULT_ITERATIONS));
        for v in &vectors {
            assert_eq!(
                decrypt(&v.passphrase, &v.ciphertext).as_deref(),
                Ok(v.plaintext.as_str()),
                "{}",
                v.ciphertext
            );
        }
    }

    #[test]
    fn encrypts_exactly_as_the_python_client_given_its_salt() {
        for v in vectors() {
            let salt_field = v.ciphertext.split('$').nth(3).expect("salt field");
            let salt: [u8; 16] = STANDARD
                .decode(salt_field)
                .expect("base64")
                .try_into()
                .expect("16 bytes");
            assert_eq!(
                encrypt_with_salt(&v.passphrase, &v.plaintext, v.iterations, &salt),
                v.ciphertext
            );
        }
    }
}
