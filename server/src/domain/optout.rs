//! Opt-out (STOP) and opt-in (START) keywords: what an incoming SMS does to its sender's
//! place on the account's suppression list.
//!
//! The whole text counts, not a word in it: trimmed, case-insensitive, inner runs of
//! whitespace as one space ("  Stop " and "OPT   OUT" are keywords, "please stop" is not).
//! The defaults are the FCC's revocation words and the usual opt-in words; the relay's
//! configuration adds more (`opt_out_keywords`, `opt_in_keywords`, e.g. other languages).
//! A text that is both (a configured word also in the other list) is an opt-out: when in
//! doubt, the relay sends nothing.

/// Opt-out keywords every relay knows.
pub const DEFAULT_OPT_OUT: &[&str] = &[
    "stop",
    "quit",
    "end",
    "revoke",
    "opt out",
    "cancel",
    "unsubscribe",
];

/// Opt-in keywords every relay knows.
pub const DEFAULT_OPT_IN: &[&str] = &["start", "unstop", "yes"];

/// What `manual` additions (through the API) record as their keyword.
pub const MANUAL: &str = "manual";

/// The keyword lists in normalised form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keywords {
    opt_out: Vec<String>,
    opt_in: Vec<String>,
}

/// What an incoming text does to its sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keyword {
    /// Add the sender to the suppression list; the normalised keyword is recorded.
    OptOut(String),
    /// Remove the sender from the suppression list.
    OptIn(String),
}

impl Default for Keywords {
    fn default() -> Self {
        Self::new(&[], &[])
    }
}

impl Keywords {
    /// The defaults plus `extra_out` and `extra_in` (normalised; empty entries ignored).
    pub fn new(extra_out: &[String], extra_in: &[String]) -> Self {
        let list = |defaults: &[&str], extra: &[String]| {
            let mut v: Vec<String> = defaults
                .iter()
                .map(|s| normalise(s))
                .chain(extra.iter().map(|s| normalise(s)))
                .filter(|s| !s.is_empty())
                .collect();
            v.sort();
            v.dedup();
            v
        };
        Self {
            opt_out: list(DEFAULT_OPT_OUT, extra_out),
            opt_in: list(DEFAULT_OPT_IN, extra_in),
        }
    }

    /// What the text of an incoming SMS is, if a keyword.
    pub fn classify(&self, text: &str) -> Option<Keyword> {
        // Cheap bound first: no keyword is long, and a long text is never one.
        if text.len() > 256 {
            return None;
        }
        let t = normalise(text);
        if self.opt_out.contains(&t) {
            Some(Keyword::OptOut(t))
        } else if self.opt_in.contains(&t) {
            Some(Keyword::OptIn(t))
        } else {
            None
        }
    }
}

/// Trimmed, lower case, inner runs of whitespace as one space.
pub fn normalise(text: &str) -> String {
    text.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_in_any_case_and_spacing() {
        let k = Keywords::default();
        for t in [
            "stop",
            "  Stop ",
            "STOP",
            "OPT   OUT",
            "opt\tout",
            "Unsubscribe\n",
        ] {
            assert!(matches!(k.classify(t), Some(Keyword::OptOut(_))), "{t:?}");
        }
        assert_eq!(
            k.classify("OPT   OUT"),
            Some(Keyword::OptOut("opt out".into()))
        );
        for t in ["start", " UNSTOP", "Yes"] {
            assert!(matches!(k.classify(t), Some(Keyword::OptIn(_))), "{t:?}");
        }
    }

    #[test]
    fn only_the_whole_text_counts() {
        let k = Keywords::default();
        for t in [
            "please stop",
            "stop.",
            "optout",
            "",
            "   ",
            "stopp",
            "yes please",
        ] {
            assert_eq!(k.classify(t), None, "{t:?}");
        }
        assert_eq!(k.classify(&"stop ".repeat(100)), None);
    }

    #[test]
    fn configured_words_add_to_the_defaults() {
        let k = Keywords::new(
            &["Stopp".into(), " ARRET ".into(), "".into()],
            &["oui".into()],
        );
        assert_eq!(k.classify("stopp"), Some(Keyword::OptOut("stopp".into())));
        assert_eq!(k.classify("Arret"), Some(Keyword::OptOut("arret".into())));
        assert_eq!(k.classify("stop"), Some(Keyword::OptOut("stop".into())));
        assert_eq!(k.classify("OUI"), Some(Keyword::OptIn("oui".into())));
        assert_eq!(k.classify(""), None);
    }

    #[test]
    fn a_word_in_both_lists_opts_out() {
        let k = Keywords::new(&[], &["stop".into()]);
        assert_eq!(k.classify("stop"), Some(Keyword::OptOut("stop".into())));
    }
}
