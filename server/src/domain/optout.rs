//! Opt-out (STOP) and opt-in (START) keywords: what an incoming SMS does to its sender's
//! place on the account's suppression list.
//!
//! The whole text counts, not a word in it: trimmed, case-insensitive, inner runs of
//! whitespace as one space ("  Stop " and "OPT   OUT" are keywords, "please stop" is not).
//! The defaults are the FCC's revocation words and the usual opt-in words; the relay's
//! configuration adds more (`opt_out_keywords`, `opt_in_keywords`, e.g. other languages).
//! A text that is both (a configured word also in the other list) is an opt-out: when in
//! doubt, the relay sends nothing.
//!
//! Help keywords (`help`, `info`, `help_keywords` in the configuration, and an account's own,
//! [`Keywords::classify_for`]) change nothing on the list; opt-out and opt-in words win over
//! them. What each may answer is [`crate::domain::auto_reply`].

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

/// Help keywords every relay knows.
pub const DEFAULT_HELP: &[&str] = &["help", "info"];

/// What `manual` additions (through the API) record as their keyword.
pub const MANUAL: &str = "manual";

/// The keyword lists in normalised form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keywords {
    opt_out: Vec<String>,
    opt_in: Vec<String>,
    help: Vec<String>,
}

/// What an incoming text does to its sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keyword {
    /// Add the sender to the suppression list; the normalised keyword is recorded.
    OptOut(String),
    /// Remove the sender from the suppression list.
    OptIn(String),
    /// Nothing on the list changes (an auto-reply may answer).
    Help(String),
}

/// The kind of a keyword, as the auto-reply settings and records name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    OptOut,
    OptIn,
    Help,
}

impl Kind {
    /// `opt_out`, `opt_in` or `help`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::OptOut => "opt_out",
            Kind::OptIn => "opt_in",
            Kind::Help => "help",
        }
    }
}

impl Keyword {
    /// Its kind.
    pub fn kind(&self) -> Kind {
        match self {
            Keyword::OptOut(_) => Kind::OptOut,
            Keyword::OptIn(_) => Kind::OptIn,
            Keyword::Help(_) => Kind::Help,
        }
    }
}

impl Default for Keywords {
    fn default() -> Self {
        Self::new(&[], &[])
    }
}

impl Keywords {
    /// The defaults plus `extra_out` and `extra_in` (normalised; empty entries ignored).
    pub fn new(extra_out: &[String], extra_in: &[String]) -> Self {
        Self {
            opt_out: list(DEFAULT_OPT_OUT, extra_out),
            opt_in: list(DEFAULT_OPT_IN, extra_in),
            help: list(DEFAULT_HELP, &[]),
        }
    }

    /// The same with `extra_help` added to the help keywords.
    pub fn with_help(mut self, extra_help: &[String]) -> Self {
        self.help = list(DEFAULT_HELP, extra_help);
        self
    }

    /// What the text of an incoming SMS is, if a keyword.
    pub fn classify(&self, text: &str) -> Option<Keyword> {
        self.classify_for(text, &[])
    }

    /// The same, with an account's own help keywords (normalised here) besides these.
    pub fn classify_for(&self, text: &str, account_help: &[String]) -> Option<Keyword> {
        // Cheap bound first: no keyword is long, and a long text is never one.
        if text.len() > 256 {
            return None;
        }
        let t = normalise(text);
        if self.opt_out.contains(&t) {
            Some(Keyword::OptOut(t))
        } else if self.opt_in.contains(&t) {
            Some(Keyword::OptIn(t))
        } else if self.help.contains(&t) || account_help.iter().any(|h| normalise(h) == t) {
            Some(Keyword::Help(t))
        } else {
            None
        }
    }
}

/// `defaults` and `extra`, normalised, sorted, without empties or repeats.
fn list(defaults: &[&str], extra: &[String]) -> Vec<String> {
    let mut v: Vec<String> = defaults
        .iter()
        .map(|s| normalise(s))
        .chain(extra.iter().map(|s| normalise(s)))
        .filter(|s| !s.is_empty())
        .collect();
    v.sort();
    v.dedup();
    v
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
    fn help_words_from_the_relay_and_the_account() {
        let k = Keywords::default().with_help(&["Hilfe".into()]);
        assert_eq!(k.classify(" HELP "), Some(Keyword::Help("help".into())));
        assert_eq!(k.classify("Info"), Some(Keyword::Help("info".into())));
        assert_eq!(k.classify("hilfe"), Some(Keyword::Help("hilfe".into())));
        assert_eq!(k.classify("aide"), None);
        let own = ["  AIDE ".to_string()];
        assert_eq!(
            k.classify_for("aide", &own),
            Some(Keyword::Help("aide".into()))
        );
        assert_eq!(k.classify_for("help me", &own), None);
        // An account's help word never hides an opt-out.
        assert_eq!(
            k.classify_for("stop", &["stop".into()]),
            Some(Keyword::OptOut("stop".into()))
        );
        assert_eq!(Keyword::Help("x".into()).kind().as_str(), "help");
    }

    #[test]
    fn a_word_in_both_lists_opts_out() {
        let k = Keywords::new(&[], &["stop".into()]);
        assert_eq!(k.classify("stop"), Some(Keyword::OptOut("stop".into())));
    }
}
