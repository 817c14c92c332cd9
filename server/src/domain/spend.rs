//! Spend and volume limits and SMS-pumping protection, with no SQL and no clock: what an
//! account's limits are, which counters a message adds to, whether a request fits, and when a
//! burst of new numbers in one prefix pauses that prefix.
//!
//! * **Caps** are in SMS parts (a message's parts times its counted recipients), per UTC day
//!   and month, and optionally per destination calling code per UTC day. Each is a counter key
//!   ([`Counter`]): `day:2026-12-04`, `month:2026-12`, `day:2026-12-04:44`.
//! * **Allow-list**: calling codes (`["44", "353"]`); empty means every destination.
//! * **Pumping**: more than `threshold` distinct numbers the account never sent to, in one
//!   prefix (the first `prefix_digits` digits after `+`), within `window_minutes`, pause the
//!   prefix ([`burst`]).
//!
//! The store (`crate::store::ops::spend`) reads the limits and counters in the create
//! transaction, asks these functions and writes what they decided.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use simrelay_protocol::Millis;

/// The error text (and webhook reason) of a recipient a limit ended.
pub const LIMIT_REACHED: &str = "limit_reached";

/// Pumping defaults.
pub const DEFAULT_THRESHOLD: u32 = 20;
pub const DEFAULT_WINDOW_MINUTES: u32 = 10;
pub const DEFAULT_PREFIX_DIGITS: u8 = 6;

/// The two-digit country calling codes (ITU-T E.164); `1` and `7` are the one-digit ones,
/// every other code has three digits. Calling codes are prefix-free, so this splits any
/// number.
const TWO_DIGIT: &[&str] = &[
    "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46", "47",
    "48", "49", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63", "64", "65",
    "66", "81", "82", "84", "86", "90", "91", "92", "93", "94", "95", "98",
];

/// The calling code of an E.164 number (`+447700900123` → `44`), `None` for a text that is
/// not `+` and digits.
pub fn calling_code(number: &str) -> Option<&str> {
    let digits = number.strip_prefix('+')?;
    if digits.len() < 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let len = match digits.as_bytes()[0] {
        b'1' | b'7' => 1,
        _ if TWO_DIGIT.contains(&&digits[..2]) => 2,
        _ => 3,
    };
    digits.get(..len)
}

/// Whether `code` is a calling code as [`calling_code`] splits numbers (`44`, `1`, `353`;
/// not `4`, `440` or `3530`).
pub fn is_calling_code(code: &str) -> bool {
    (1..=3).contains(&code.len())
        && calling_code(&format!("+{code}0000000")).is_some_and(|c| c == code)
}

/// The pumping prefix of a number: its first `digits` digits after `+` (all of them when it
/// is shorter).
pub fn prefix(number: &str, digits: u8) -> &str {
    let d = number.strip_prefix('+').unwrap_or(number);
    &d[..d.len().min(usize::from(digits))]
}

/// Pumping protection settings of an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Pumping {
    /// More than this many new numbers in one prefix within the window pause it.
    #[serde(default = "default_threshold")]
    #[schema(minimum = 1, maximum = 100000)]
    pub threshold: u32,
    #[serde(default = "default_window")]
    #[schema(minimum = 1, maximum = 1440)]
    pub window_minutes: u32,
    /// Digits of the number after `+` (calling code included) that make its prefix.
    #[serde(default = "default_digits")]
    #[schema(minimum = 2, maximum = 15)]
    pub prefix_digits: u8,
}

fn default_threshold() -> u32 {
    DEFAULT_THRESHOLD
}
fn default_window() -> u32 {
    DEFAULT_WINDOW_MINUTES
}
fn default_digits() -> u8 {
    DEFAULT_PREFIX_DIGITS
}

impl Default for Pumping {
    fn default() -> Self {
        Self {
            threshold: DEFAULT_THRESHOLD,
            window_minutes: DEFAULT_WINDOW_MINUTES,
            prefix_digits: DEFAULT_PREFIX_DIGITS,
        }
    }
}

/// An account's limits, as the operator sets them (`PUT /v1/accounts/{id}/limits`). An
/// account without limits set has none of them (no caps, every destination, no pumping
/// check).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Parts per UTC day (`null`: no cap).
    #[serde(default)]
    pub daily_parts: Option<u64>,
    /// Parts per UTC month (`null`: no cap).
    #[serde(default)]
    pub monthly_parts: Option<u64>,
    /// Parts per UTC day to one calling code (`{"44": 500}`).
    #[serde(default)]
    pub country_daily_parts: BTreeMap<String, u64>,
    /// Calling codes the account may send to; empty: every destination.
    #[serde(default)]
    pub allowed_calling_codes: Vec<String>,
    /// Pumping protection (`null`: off). Defaults: 20 new numbers in 10 minutes, 6 digits.
    #[serde(default = "default_pumping")]
    pub pumping: Option<Pumping>,
}

fn default_pumping() -> Option<Pumping> {
    Some(Pumping::default())
}

/// What is wrong with limits given by the operator (the text names the field, never a number).
pub fn check(l: &Limits) -> Result<(), String> {
    for c in l
        .allowed_calling_codes
        .iter()
        .chain(l.country_daily_parts.keys())
    {
        if !is_calling_code(c) {
            return Err(format!(
                "`{c}` is not a country calling code (1 to 3 digits, e.g. 44)"
            ));
        }
    }
    if l.allowed_calling_codes.len() > 300 {
        return Err("allowed_calling_codes lists more than 300 codes".into());
    }
    if let Some(p) = &l.pumping {
        if !(1..=100_000).contains(&p.threshold) {
            return Err("pumping.threshold must be 1..=100000".into());
        }
        if !(1..=1440).contains(&p.window_minutes) {
            return Err("pumping.window_minutes must be 1..=1440".into());
        }
        if !(2..=15).contains(&p.prefix_digits) {
            return Err("pumping.prefix_digits must be 2..=15".into());
        }
    }
    Ok(())
}

/// One counted limit in one period.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Counter {
    /// `daily`, `monthly` or `daily:<calling code>`: what the API and metrics call it.
    pub limit: String,
    /// `2026-12-04` or `2026-12` (UTC).
    pub period: String,
}

impl Counter {
    /// The key of the counter row: `<period kind>:<period>[:<code>]`.
    pub fn key(&self) -> String {
        match self.limit.strip_prefix("daily:") {
            Some(code) => format!("day:{}:{code}", self.period),
            None if self.limit == "daily" => format!("day:{}", self.period),
            None => format!("month:{}", self.period),
        }
    }
}

/// The UTC day (`2026-12-04`) and month (`2026-12`) of `now`.
pub fn periods(now: Millis) -> (String, String) {
    let day = crate::time_fmt::fmt_ms(now);
    (day[..10].to_string(), day[..7].to_string())
}

/// The counters every account keeps (used is shown even without a cap): day and month.
pub fn base_counters(now: Millis) -> [Counter; 2] {
    let (day, month) = periods(now);
    [
        Counter {
            limit: "daily".into(),
            period: day,
        },
        Counter {
            limit: "monthly".into(),
            period: month,
        },
    ]
}

/// The per-country counter of `code` today.
pub fn country_counter(code: &str, now: Millis) -> Counter {
    Counter {
        limit: format!("daily:{code}"),
        period: periods(now).0,
    }
}

/// The cap of a counter's limit, if the limits set one.
pub fn cap(l: &Limits, c: &Counter) -> Option<u64> {
    match c.limit.as_str() {
        "daily" => l.daily_parts,
        "monthly" => l.monthly_parts,
        other => other
            .strip_prefix("daily:")
            .and_then(|code| l.country_daily_parts.get(code).copied()),
    }
}

/// Whether `number` may be sent to under the allow-list (an unreadable number, such as an
/// end-to-end ciphertext, only when every destination is allowed).
pub fn allowed(l: &Limits, number: &str) -> bool {
    l.allowed_calling_codes.is_empty()
        || calling_code(number).is_some_and(|c| l.allowed_calling_codes.iter().any(|a| a == c))
}

/// The parts a message adds to each counter: `parts` per counted recipient, to the day and
/// month, and to the day of each calling code with a cap.
pub fn additions<'a>(
    l: &Limits,
    parts: u32,
    counted: impl IntoIterator<Item = &'a str>,
    now: Millis,
) -> BTreeMap<Counter, u64> {
    let mut out = BTreeMap::new();
    let parts = u64::from(parts);
    for to in counted {
        for c in base_counters(now) {
            *out.entry(c).or_insert(0) += parts;
        }
        if let Some(code) = calling_code(to)
            && l.country_daily_parts.contains_key(code)
        {
            *out.entry(country_counter(code, now)).or_insert(0) += parts;
        }
    }
    out
}

/// The first capped counter that `used + add` would cross, if any.
pub fn crossed<'a>(
    l: &Limits,
    adds: &'a BTreeMap<Counter, u64>,
    used: impl Fn(&Counter) -> u64,
) -> Option<&'a Counter> {
    adds.iter()
        .find(|(c, add)| cap(l, c).is_some_and(|cap| used(c).saturating_add(**add) > cap))
        .map(|(c, _)| c)
}

/// Whether `new_numbers` new numbers in a prefix within the window are a burst: more than
/// the threshold.
pub fn burst(p: &Pumping, new_numbers: u64) -> bool {
    new_numbers > u64::from(p.threshold)
}

/// Since when new numbers count towards a prefix's burst: the window, and never before the
/// prefix was last released (so a released prefix does not pause again on the same burst).
pub fn window_start(p: &Pumping, now: Millis, released_at: Option<Millis>) -> Millis {
    let w = now - i64::from(p.window_minutes) * 60_000;
    released_at.map_or(w, |r| w.max(r))
}

/// The state of a prefix the relay watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PrefixState {
    /// A burst was seen: its recipients are `held` until a person releases or blocks it.
    Paused,
    /// Blocked by a person: its held recipients failed, new ones are refused at submit.
    Blocked,
    /// Released by a person: sends go on; the burst count restarts at the release.
    Released,
}

impl PrefixState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Paused => "paused",
            Self::Blocked => "blocked",
            Self::Released => "released",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Paused, Self::Blocked, Self::Released]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calling_codes_split_numbers() {
        assert_eq!(calling_code("+447700900123"), Some("44"));
        assert_eq!(calling_code("+15551230000"), Some("1"));
        assert_eq!(calling_code("+79161234567"), Some("7"));
        assert_eq!(calling_code("+353861234567"), Some("353"));
        assert_eq!(calling_code("+2348031234567"), Some("234"));
        assert_eq!(calling_code("+4915112345678"), Some("49"));
        assert_eq!(calling_code("447700900123"), None);
        assert_eq!(calling_code("+44x"), None);
        assert!(is_calling_code("44") && is_calling_code("1") && is_calling_code("353"));
        assert!(!is_calling_code("4") && !is_calling_code("440") && !is_calling_code("3530"));
        assert!(!is_calling_code("") && !is_calling_code("+44") && !is_calling_code("1a"));
    }

    #[test]
    fn prefixes_take_the_first_digits() {
        assert_eq!(prefix("+447700900123", 7), "4477009");
        assert_eq!(prefix("+447700900123", 6), "447700");
        assert_eq!(prefix("+4477", 6), "4477");
    }

    #[test]
    fn the_allow_list_and_its_checks() {
        let mut l = Limits::default();
        assert!(allowed(&l, "+447700900123") && allowed(&l, "ciphertext"));
        l.allowed_calling_codes = vec!["44".into(), "353".into()];
        assert!(allowed(&l, "+447700900123") && allowed(&l, "+353861234567"));
        assert!(!allowed(&l, "+15551230000") && !allowed(&l, "ciphertext"));
        assert_eq!(check(&l), Ok(()));
        l.allowed_calling_codes.push("4".into());
        assert!(check(&l).is_err());
        let bad = Limits {
            pumping: Some(Pumping {
                threshold: 0,
                ..Pumping::default()
            }),
            ..Limits::default()
        };
        assert!(check(&bad).is_err());
    }

    #[test]
    fn defaults_from_json() {
        let l: Limits = serde_json::from_str("{}").expect("parses");
        assert_eq!(l.pumping, Some(Pumping::default()));
        let l: Limits = serde_json::from_str(r#"{"pumping": null}"#).expect("parses");
        assert_eq!(l.pumping, None);
        assert!(serde_json::from_str::<Limits>(r#"{"daily": 1}"#).is_err());
    }

    #[test]
    fn caps_count_parts_per_recipient_and_country() {
        let now = crate::time_fmt::parse_rfc3339("2026-12-04T10:00:00Z").expect("time");
        let l = Limits {
            daily_parts: Some(10),
            monthly_parts: Some(100),
            country_daily_parts: [("44".to_string(), 4)].into(),
            ..Limits::default()
        };
        let adds = additions(&l, 2, ["+447700900001", "+15551230000"], now);
        let day = Counter {
            limit: "daily".into(),
            period: "2026-12-04".into(),
        };
        let uk = country_counter("44", now);
        assert_eq!(uk.key(), "day:2026-12-04:44");
        assert_eq!(day.key(), "day:2026-12-04");
        assert_eq!(base_counters(now)[1].key(), "month:2026-12");
        assert_eq!(adds[&day], 4);
        assert_eq!(adds[&uk], 2);
        assert_eq!(crossed(&l, &adds, |_| 0), None);
        assert_eq!(crossed(&l, &adds, |c| if *c == day { 6 } else { 0 }), None);
        assert_eq!(
            crossed(&l, &adds, |c| if *c == day { 7 } else { 0 }),
            Some(&day)
        );
        assert_eq!(
            crossed(&l, &adds, |c| if *c == uk { 3 } else { 0 }),
            Some(&uk)
        );
        // No cap: never crossed.
        assert_eq!(crossed(&Limits::default(), &adds, |_| u64::MAX), None);
    }

    #[test]
    fn a_burst_is_more_than_the_threshold_since_the_release() {
        let p = Pumping::default();
        assert!(!burst(&p, 20));
        assert!(burst(&p, 21));
        assert_eq!(window_start(&p, 1_000_000, None), 400_000);
        assert_eq!(window_start(&p, 1_000_000, Some(900_000)), 900_000);
        assert_eq!(window_start(&p, 1_000_000, Some(1)), 400_000);
        for s in [
            PrefixState::Paused,
            PrefixState::Blocked,
            PrefixState::Released,
        ] {
            assert_eq!(PrefixState::parse(s.as_str()), Some(s));
        }
    }
}
