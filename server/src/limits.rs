//! Limits that keep one phone, or one pairing client, from hurting the relay and the other
//! tenants: what an incoming SMS may look like, how many a phone may report per minute, and
//! how many pairing attempts and failed Basic logins a source address (and everyone
//! together) may make.
//!
//! The limiters are sans-IO: they take `now` from a [`Clock`] (monotonic time plus an offset
//! that only tests move forward), so tests step over minutes without sleeping. They live in
//! memory and start fresh when the relay restarts. docs/protocol.md lists the figures.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use simrelay_protocol::{IncomingSms, Millis};

/// Longest incoming SMS text, in UTF-8 bytes. A concatenated SMS has at most 255 parts of
/// 153 GSM septets; with a national-language shift table a septet can stand for a 3-byte
/// character, so the longest real text is 255 × 153 × 3 = 117,045 bytes (UCS-2: 255 × 67
/// units of at most 3 bytes, 51,255 bytes).
pub const MAX_INCOMING_TEXT_BYTES: usize = 128 * 1024;
/// Longest sender (an address is at most 20 digits, an alphanumeric sender 11 characters;
/// the phone core allows 64).
pub const MAX_SENDER_CHARS: usize = 64;
/// Longest encrypted sender and text: the ciphertext (base64 of whole AES blocks, with the
/// format's prefix and salt) of the longest plaintext sender and text above (64 characters of
/// up to 4 UTF-8 bytes: 422 characters).
pub const MAX_ENCRYPTED_SENDER_CHARS: usize = 512;
pub const MAX_ENCRYPTED_TEXT_BYTES: usize = (MAX_INCOMING_TEXT_BYTES + 16) * 4 / 3 + 100;
/// Longest incoming SMS id (the core's ids are 27 characters).
pub const MAX_INCOMING_ID_BYTES: usize = 128;
/// Earliest accepted time stamp: 2000-01-01T00:00:00Z.
pub const EARLIEST_MS: Millis = 946_684_800_000;
/// How far in the future (relay clock) a time stamp may be.
pub const FUTURE_SLACK_MS: Millis = 24 * 3600 * 1000;

/// Why an incoming SMS is refused for good (the `reason` label of the refusal counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncomingFault {
    TextTooLong,
    BadSender,
    BadId,
}

impl IncomingFault {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TextTooLong => "text_too_long",
            Self::BadSender => "bad_sender",
            Self::BadId => "bad_id",
        }
    }
}

/// Checks an incoming SMS against the limits above. An empty sender is kept (some networks
/// deliver SMS without one); time stamps are not checked here but by [`retimed`].
pub fn check_incoming(sms: &IncomingSms) -> Result<(), IncomingFault> {
    let (max_text, max_sender) = if sms.encrypted {
        (MAX_ENCRYPTED_TEXT_BYTES, MAX_ENCRYPTED_SENDER_CHARS)
    } else {
        (MAX_INCOMING_TEXT_BYTES, MAX_SENDER_CHARS)
    };
    if sms.text.len() > max_text {
        return Err(IncomingFault::TextTooLong);
    }
    if sms.from.chars().count() > max_sender {
        return Err(IncomingFault::BadSender);
    }
    if sms.id.is_empty() || sms.id.len() > MAX_INCOMING_ID_BYTES {
        return Err(IncomingFault::BadId);
    }
    Ok(())
}

/// A copy of `sms` with impossible time stamps (before 2000 or more than a day after the
/// relay's clock `now`) replaced: `received_at` by `now`, `sent_at` dropped. `None` when both
/// are plausible. A real SMS with a broken service-centre clock is still a real SMS: it is
/// kept, never refused.
pub fn retimed(sms: &IncomingSms, now: Millis) -> Option<IncomingSms> {
    let sane = |t: Millis| (EARLIEST_MS..=now.saturating_add(FUTURE_SLACK_MS)).contains(&t);
    let received_ok = sane(sms.received_at);
    let sent_ok = sms.sent_at.is_none_or(sane);
    if received_ok && sent_ok {
        return None;
    }
    Some(IncomingSms {
        received_at: if received_ok { sms.received_at } else { now },
        sent_at: sms.sent_at.filter(|_| sent_ok),
        ..sms.clone()
    })
}

/// Monotonic time for the limiters. Production never moves the offset; tests do, with
/// [`Clock::advance`], to step over a rate-limit window without sleeping.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicU64>,
}

impl Clock {
    pub fn now(&self) -> Instant {
        Instant::now() + Duration::from_millis(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Moves this clock (and every clone) forward.
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

/// A token bucket: `per_minute` tokens a minute, holding at most `burst`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(burst: u32, now: Instant) -> Self {
        Self {
            tokens: f64::from(burst),
            at: now,
        }
    }

    fn take(&mut self, per_minute: u32, burst: u32, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * f64::from(per_minute) / 60.0).min(f64::from(burst));
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Incoming SMS per phone per minute, with a burst of one minute's worth.
#[derive(Debug)]
pub struct IncomingRate {
    per_minute: u32,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl IncomingRate {
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute: per_minute.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one SMS from the phone's allowance; false when it is spent.
    pub fn take(&self, phone: &str, now: Instant) -> bool {
        let mut b = self.buckets.lock().expect("incoming rate lock");
        let (rate, burst) = (self.per_minute, self.per_minute);
        b.entry(phone.to_string())
            .or_insert_with(|| Bucket::full(burst, now))
            .take(rate, burst, now)
    }

    pub fn forget(&self, phone: &str) {
        self.buckets
            .lock()
            .expect("incoming rate lock")
            .remove(phone);
    }
}

/// Pairing attempts allowed per source and overall.
#[derive(Debug, Clone, Copy)]
pub struct PairingPolicy {
    /// Failed attempts per source address in `window`; the next one locks the source out.
    pub per_source: u32,
    /// Attempts (not counting successes) of all sources together in `window`.
    pub global: u32,
    pub window: Duration,
    /// The first lockout; each further one doubles, up to `max_lockout`.
    pub lockout: Duration,
    pub max_lockout: Duration,
    /// A source without failures this long starts over (its lockouts are forgotten).
    pub forget_after: Duration,
}

impl Default for PairingPolicy {
    fn default() -> Self {
        Self {
            per_source: 10,
            global: 100,
            window: Duration::from_secs(60),
            lockout: Duration::from_secs(60),
            max_lockout: Duration::from_secs(3600),
            forget_after: Duration::from_secs(24 * 3600),
        }
    }
}

/// Why a pairing attempt was refused before its code was looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairingRefusal {
    /// This source failed too often: locked out for `retry_after`.
    Source { retry_after: Duration },
    /// Too many attempts from everyone in this window.
    Global { retry_after: Duration },
}

impl PairingRefusal {
    pub fn retry_after(self) -> Duration {
        match self {
            Self::Source { retry_after } | Self::Global { retry_after } => retry_after,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Source {
    window_start: Instant,
    failures: u32,
    locked_until: Option<Instant>,
    lockouts: u32,
    last: Instant,
}

#[derive(Debug)]
struct PairingState {
    sources: HashMap<IpAddr, Source>,
    window_start: Instant,
    attempts: u32,
}

/// Throttles pairing attempts per source address and globally. An attempt is counted as a
/// failure when it starts ([`PairingThrottle::begin`]) and refunded when its code was good
/// ([`PairingThrottle::succeeded`]), so parallel attempts cannot slip past the count.
#[derive(Debug)]
pub struct PairingThrottle {
    policy: PairingPolicy,
    state: Mutex<PairingState>,
}

/// Sources are counted per IPv4 address and per IPv6 /64 (one host usually has a whole /64).
fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
        },
    }
}

impl PairingThrottle {
    pub fn new(policy: PairingPolicy, now: Instant) -> Self {
        Self {
            policy,
            state: Mutex::new(PairingState {
                sources: HashMap::new(),
                window_start: now,
                attempts: 0,
            }),
        }
    }

    fn lockout(&self, lockouts: u32) -> Duration {
        let factor = 1u32.checked_shl(lockouts.min(16)).unwrap_or(u32::MAX);
        self.policy
            .lockout
            .saturating_mul(factor)
            .min(self.policy.max_lockout)
    }

    /// Admits an attempt from `ip` (None: unknown source, only the global count applies) and
    /// counts it as failed until [`Self::succeeded`]; or refuses it.
    pub fn begin(&self, ip: Option<IpAddr>, now: Instant) -> Result<(), PairingRefusal> {
        let p = self.policy;
        let mut st = self.state.lock().expect("pairing throttle lock");
        if now.saturating_duration_since(st.window_start) >= p.window {
            st.window_start = now;
            st.attempts = 0;
        }
        if st.sources.len() > 1024 {
            st.sources.retain(|_, s| {
                s.locked_until.is_some_and(|t| t > now)
                    || now.saturating_duration_since(s.last)
                        < if s.lockouts > 0 {
                            p.forget_after
                        } else {
                            p.window
                        }
            });
        }
        if let Some(ip) = ip.map(source_key) {
            let lockout_next = |n| self.lockout(n);
            let s = st.sources.entry(ip).or_insert(Source {
                window_start: now,
                failures: 0,
                locked_until: None,
                lockouts: 0,
                last: now,
            });
            if now.saturating_duration_since(s.last) >= p.forget_after {
                s.lockouts = 0;
            }
            match s.locked_until {
                Some(until) if until > now => {
                    return Err(PairingRefusal::Source {
                        retry_after: until - now,
                    });
                }
                Some(_) => {
                    s.locked_until = None;
                    s.window_start = now;
                    s.failures = 0;
                }
                None => {}
            }
            if now.saturating_duration_since(s.window_start) >= p.window {
                s.window_start = now;
                s.failures = 0;
            }
            if s.failures >= p.per_source {
                let d = lockout_next(s.lockouts);
                s.lockouts = s.lockouts.saturating_add(1);
                s.locked_until = Some(now + d);
                return Err(PairingRefusal::Source { retry_after: d });
            }
        }
        if st.attempts >= p.global {
            let retry_after = (st.window_start + p.window).saturating_duration_since(now);
            return Err(PairingRefusal::Global { retry_after });
        }
        st.attempts += 1;
        if let Some(s) = ip.map(source_key).and_then(|k| st.sources.get_mut(&k)) {
            s.failures += 1;
            s.last = now;
        }
        Ok(())
    }

    /// The attempt admitted last by [`Self::begin`] for `ip` had a good code: not a failure.
    pub fn succeeded(&self, ip: Option<IpAddr>) {
        let mut st = self.state.lock().expect("pairing throttle lock");
        st.attempts = st.attempts.saturating_sub(1);
        if let Some(s) = ip.map(source_key).and_then(|k| st.sources.get_mut(&k)) {
            s.failures = s.failures.saturating_sub(1);
        }
    }
}

/// The relay's limiters and the counts of what they refused.
#[derive(Debug)]
pub struct Limits {
    pub clock: Clock,
    pub incoming: IncomingRate,
    pub pairing: PairingThrottle,
    /// Basic logins of the SMS Gateway API that were not remembered successes (the same
    /// throttle as pairing: failures per source and overall, lockouts doubling).
    pub logins: PairingThrottle,
    /// Incoming SMS refused since start, by reason.
    refused: Mutex<BTreeMap<&'static str, u64>>,
    /// Pairing attempts refused since start (`too_many_attempts`).
    pub pairing_refused: AtomicU64,
}

/// Every reason an incoming SMS is refused for (labels of `simrelay_incoming_refused_total`).
pub const REFUSAL_REASONS: [&str; 4] = ["rate_limited", "text_too_long", "bad_sender", "bad_id"];

impl Limits {
    pub fn new(incoming_per_minute: u32, pairing: PairingPolicy, logins: PairingPolicy) -> Self {
        let clock = Clock::default();
        let now = clock.now();
        Self {
            incoming: IncomingRate::new(incoming_per_minute),
            pairing: PairingThrottle::new(pairing, now),
            logins: PairingThrottle::new(logins, now),
            clock,
            refused: Mutex::new(REFUSAL_REASONS.iter().map(|r| (*r, 0)).collect()),
            pairing_refused: AtomicU64::new(0),
        }
    }

    /// The limits a relay's configuration asks for.
    pub fn from_config(c: &crate::config::Config) -> Self {
        Self::new(
            c.incoming_per_minute,
            PairingPolicy {
                per_source: c.pairing_per_source_per_minute,
                global: c.pairing_global_per_minute,
                ..PairingPolicy::default()
            },
            PairingPolicy {
                per_source: c.login_failures_per_source_per_minute,
                global: c.login_failures_global_per_minute,
                ..PairingPolicy::default()
            },
        )
    }

    /// Counts `n` incoming SMS refused for `reason`.
    pub fn count_refused(&self, reason: &'static str, n: u64) {
        *self
            .refused
            .lock()
            .expect("refused counter lock")
            .entry(reason)
            .or_default() += n;
    }

    /// Incoming SMS refused since start, by reason.
    pub fn refused(&self) -> Vec<(&'static str, u64)> {
        let r = self.refused.lock().expect("refused counter lock");
        r.iter().map(|(k, v)| (*k, *v)).collect()
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::new(600, PairingPolicy::default(), PairingPolicy::default())
    }
}

#[cfg(test)]
#[path = "limits_tests.rs"]
mod tests;
