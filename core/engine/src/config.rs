//! Engine settings: pacing, retries and deadlines. Defaults stay below Android's limit of 30
//! parts per minute per app (`reference/android-sms.md` section 1).

use serde::{Deserialize, Serialize};
use simrelay_protocol::Millis;

pub const MINUTE: Millis = 60_000;
pub const HOUR: Millis = 60 * MINUTE;
pub const DAY: Millis = 24 * HOUR;

/// Priority from which a message takes the expedited lane.
pub const EXPEDITED_PRIORITY: i32 = 100;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Default pace per SIM, in parts per minute (a SIM may override it).
    pub parts_per_minute: u32,
    /// Default daily cap per SIM, in parts.
    pub daily_cap: u32,
    /// Daily cap per SIM of the expedited lane (priority >= 100), in parts, on top of `daily_cap`.
    pub expedited_daily_cap: u32,
    /// Spread of the hand-over times, as a fraction of the pace interval (0.0..=1.0): each
    /// hand-over goes up to `jitter × interval` after its slot. Pace-neutral: the mean pace
    /// stays `parts_per_minute`, and no minute holds more parts than with no jitter
    /// ([`crate::pacing`]).
    pub jitter: f64,
    /// Attempts per recipient for transient failures.
    pub max_attempts: u32,
    pub backoff_base_ms: Millis,
    pub backoff_max_ms: Millis,
    /// Validity of a message that names none.
    pub default_validity_ms: Millis,
    /// How long a hand-over waits for its sent results before it ends `unknown`.
    pub sent_timeout_ms: Millis,
    /// How long a sent recipient waits for delivery reports before it ends `unknown`.
    pub report_timeout_ms: Millis,
    /// Seed for jitter; `None` seeds from the OS.
    pub seed: Option<u64>,
    /// End-to-end passphrase (SMS Gateway for Android's `encryption.passphrase`): decrypts
    /// messages sent `encrypted` just before the radio and encrypts incoming SMS
    /// ([`crate::e2e`]). `None`: encrypted messages end `failed` (`decrypt_failed`) and
    /// incoming SMS leave in plaintext.
    pub passphrase: Option<Passphrase>,
    /// PBKDF2 iterations of what the phone encrypts (incoming SMS).
    pub e2e_iterations: u32,
}

/// A passphrase that never shows in `Debug` output (the engine's config is logged).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Passphrase(String);

impl Passphrase {
    pub fn new(passphrase: impl Into<String>) -> Self {
        Self(passphrase.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(..)")
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            parts_per_minute: 20,
            daily_cap: 1000,
            expedited_daily_cap: 100,
            jitter: 0.25,
            max_attempts: 5,
            backoff_base_ms: 30_000,
            backoff_max_ms: 30 * MINUTE,
            default_validity_ms: 7 * DAY,
            sent_timeout_ms: 10 * MINUTE,
            report_timeout_ms: 72 * HOUR + 6 * HOUR,
            seed: None,
            passphrase: None,
            e2e_iterations: crate::e2e::DEFAULT_ITERATIONS,
        }
    }
}

impl EngineConfig {
    /// Settings for a zero-latency benchmark or test: no pacing to speak of.
    pub fn unpaced() -> Self {
        Self {
            parts_per_minute: 60_000_000,
            daily_cap: u32::MAX / 2,
            expedited_daily_cap: u32::MAX / 2,
            jitter: 0.0,
            ..Self::default()
        }
    }

    /// Checks ranges; the message never quotes user data.
    pub fn validate(&self) -> Result<(), String> {
        if self.parts_per_minute == 0 {
            return Err("parts_per_minute must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err("jitter must be within 0.0..=1.0".into());
        }
        if self.max_attempts == 0 {
            return Err("max_attempts must be at least 1".into());
        }
        if self.passphrase.as_ref().is_some_and(|p| p.0.is_empty()) {
            return Err("passphrase must not be empty (leave it out instead)".into());
        }
        if !(1..=crate::e2e::MAX_ITERATIONS).contains(&self.e2e_iterations) {
            return Err(format!(
                "e2e_iterations must be within 1..={}",
                crate::e2e::MAX_ITERATIONS
            ));
        }
        for (name, v) in [
            ("backoff_base_ms", self.backoff_base_ms),
            ("backoff_max_ms", self.backoff_max_ms),
            ("default_validity_ms", self.default_validity_ms),
            ("sent_timeout_ms", self.sent_timeout_ms),
            ("report_timeout_ms", self.report_timeout_ms),
        ] {
            if v <= 0 {
                return Err(format!("{name} must be positive"));
            }
        }
        Ok(())
    }
}
