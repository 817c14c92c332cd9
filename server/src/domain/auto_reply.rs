//! An account's opt-out settings and what its automatic replies are: which text answers an
//! opt-out, opt-in or help keyword, at most once per (sender, kind, UTC day), and whether a
//! message may override the suppression list (`transactional`).
//!
//! An auto-reply is an outbound message to the keyword's sender, pinned to the phone and
//! SIM that received the keyword, created in the transaction that stores the incoming SMS
//! (`crate::store::ops::auto_replies`). It is the one message that goes to a suppressed
//! number without the account's `allow_override`: the confirmation of a STOP must reach the
//! number that just opted out.

use super::optout::{Kind, normalise};

/// The most SMS parts a reply may take.
pub const MAX_REPLY_PARTS: u32 = 3;
/// The most help keywords an account may add.
pub const MAX_HELP_KEYWORDS: usize = 20;
/// The longest keyword, in bytes (as the configuration's).
pub const MAX_KEYWORD_BYTES: usize = 64;
/// How long an auto-reply may wait for its SIM before it expires.
pub const REPLY_VALID_MS: i64 = 24 * 60 * 60 * 1000;

/// An account's opt-out settings; the default replies nothing and allows no override.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OptOutSettings {
    /// The reply to an opt-out keyword (`None`: no reply).
    pub opt_out_reply: Option<String>,
    pub opt_in_reply: Option<String>,
    pub help_reply: Option<String>,
    /// Whether a message may be sent `transactional` (to suppressed numbers too).
    pub allow_override: bool,
    /// Help keywords besides the relay's, as given (matched normalised).
    pub help_keywords: Vec<String>,
}

/// Why settings were refused: the field, and a text that repeats none of the values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub code: &'static str,
    pub message: String,
}

impl OptOutSettings {
    /// The reply configured for `kind`.
    pub fn reply_for(&self, kind: Kind) -> Option<&str> {
        match kind {
            Kind::OptOut => self.opt_out_reply.as_deref(),
            Kind::OptIn => self.opt_in_reply.as_deref(),
            Kind::Help => self.help_reply.as_deref(),
        }
    }

    /// Checks the settings: each reply 1 character to [`MAX_REPLY_PARTS`] SMS parts (as the
    /// protocol crate segments it), each help keyword 1 to [`MAX_KEYWORD_BYTES`] bytes that
    /// are not only spaces, at most [`MAX_HELP_KEYWORDS`].
    pub fn validate(&self) -> Result<(), Invalid> {
        for (field, reply) in [
            ("opt_out_reply", &self.opt_out_reply),
            ("opt_in_reply", &self.opt_in_reply),
            ("help_reply", &self.help_reply),
        ] {
            let Some(text) = reply else { continue };
            let parts = simrelay_protocol::segment::count_parts(text);
            if text.trim().is_empty() || parts > MAX_REPLY_PARTS {
                return Err(Invalid {
                    code: "invalid_reply",
                    message: format!(
                        "{field} must be a text of 1 to {MAX_REPLY_PARTS} SMS parts (has {parts}), or null"
                    ),
                });
            }
        }
        if self.help_keywords.len() > MAX_HELP_KEYWORDS {
            return Err(Invalid {
                code: "invalid_keyword",
                message: format!("help_keywords lists more than {MAX_HELP_KEYWORDS} words"),
            });
        }
        if let Some(i) = self
            .help_keywords
            .iter()
            .position(|k| normalise(k).is_empty() || k.len() > MAX_KEYWORD_BYTES)
        {
            return Err(Invalid {
                code: "invalid_keyword",
                message: format!(
                    "help_keywords[{i}] must be 1 to {MAX_KEYWORD_BYTES} bytes, not only spaces"
                ),
            });
        }
        Ok(())
    }
}

/// The UTC day of a time in Unix milliseconds (days since 1970-01-01): the period in which a
/// sender gets at most one reply per kind.
pub fn utc_day(ms: i64) -> i64 {
    ms.div_euclid(86_400_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_bounded_by_parts() {
        let ok = OptOutSettings {
            opt_out_reply: Some("You are unsubscribed. Reply START to resubscribe.".into()),
            help_reply: Some("a".repeat(459)),
            ..OptOutSettings::default()
        };
        assert_eq!(ok.validate(), Ok(()));
        let long = OptOutSettings {
            help_reply: Some("a".repeat(460)),
            ..OptOutSettings::default()
        };
        assert_eq!(long.validate().map_err(|e| e.code), Err("invalid_reply"));
        // UCS-2 text takes parts sooner: 3 parts of 67.
        let ucs2 = OptOutSettings {
            opt_in_reply: Some("é✓".repeat(101)),
            ..OptOutSettings::default()
        };
        assert_eq!(ucs2.validate().map_err(|e| e.code), Err("invalid_reply"));
        let blank = OptOutSettings {
            opt_in_reply: Some("  ".into()),
            ..OptOutSettings::default()
        };
        assert_eq!(blank.validate().map_err(|e| e.code), Err("invalid_reply"));
    }

    #[test]
    fn help_keywords_are_checked() {
        let s = |k: Vec<String>| OptOutSettings {
            help_keywords: k,
            ..OptOutSettings::default()
        };
        assert_eq!(s(vec!["aide".into(), "Hilfe".into()]).validate(), Ok(()));
        let e = s(vec!["aide".into(), " ".into()])
            .validate()
            .expect_err("refused");
        assert_eq!(e.code, "invalid_keyword");
        assert!(e.message.contains("[1]"));
        assert!(s(vec!["x".repeat(65)]).validate().is_err());
        assert!(s(vec!["x".into(); 21]).validate().is_err());
    }

    #[test]
    fn days_are_utc() {
        assert_eq!(utc_day(0), 0);
        assert_eq!(utc_day(86_399_999), 0);
        assert_eq!(utc_day(86_400_000), 1);
        assert_eq!(utc_day(-1), -1);
        let s = OptOutSettings {
            help_reply: Some("h".into()),
            ..OptOutSettings::default()
        };
        assert_eq!(s.reply_for(Kind::Help), Some("h"));
        assert_eq!(s.reply_for(Kind::OptOut), None);
    }
}
