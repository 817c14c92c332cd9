//! SMS text segmentation as Android does it (GSM 03.38 / 3GPP TS 23.038 and TS 23.040).
//!
//! A text goes out as GSM-7 if every character is in the default alphabet or its extension
//! table (those cost two septets: ESC + code), otherwise as UCS-2 (UTF-16 code units). One part
//! carries 160 septets or 70 units; a longer text is cut into parts of 153 septets or 67 units,
//! the room left by an 8-bit concatenation header, which is what AOSP sends. National language
//! shift tables are not modelled: they are a per-device overlay, so the core quotes with the
//! default tables and trusts the device's own count when it sends.
//!
//! Cuts never separate an escape from its character, a surrogate pair or a regional-indicator
//! flag pair, and UCS-2 cuts fall on a grapheme-cluster boundary when the cluster fits (as AOSP
//! `SmsMessageBase.findNextUnicodePosition` does with `BreakIterator`). Clusters are recognised
//! by a small hand check of character ranges (combining marks, joiners, variation selectors,
//! emoji modifiers, tags, Indic and Thai vowel signs), not the full UAX #29 rules.

use serde::Serialize;

/// Septets in a single-part GSM-7 message.
pub const GSM7_SINGLE_LIMIT: usize = 160;
/// Septets per part of a multipart GSM-7 message (8-bit concatenation reference).
pub const GSM7_PART_LIMIT: usize = 153;
/// UTF-16 code units in a single-part UCS-2 message.
pub const UCS2_SINGLE_LIMIT: usize = 70;
/// UTF-16 code units per part of a multipart UCS-2 message (8-bit concatenation reference).
pub const UCS2_PART_LIMIT: usize = 67;
/// The septet that escapes to the extension table.
pub const GSM7_ESCAPE: u8 = 0x1B;

/// How a text is encoded on the air.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// GSM 7-bit default alphabet (with its extension table).
    Gsm7,
    /// UCS-2 / UTF-16.
    Ucs2,
}

/// A text cut into SMS parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segmentation {
    pub encoding: Encoding,
    /// Septets (GSM-7) or UTF-16 units (UCS-2) of the whole text.
    pub units: usize,
    /// The parts, in order; they concatenate to the text. An empty text has one empty part.
    pub parts: Vec<String>,
}

/// Where a character sits in the GSM-7 alphabet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gsm7Code {
    /// A septet of the default table.
    Default(u8),
    /// A septet of the extension table, sent after [`GSM7_ESCAPE`].
    Extension(u8),
}

/// Stands in for the escape position (0x1B) of the default table: no character maps to it.
const NO_CHAR: char = '\u{FFFF}';

/// The GSM 03.38 default alphabet, indexed by septet (AOSP `GsmAlphabet.sLanguageTables[0]`).
#[rustfmt::skip]
const DEFAULT_TABLE: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å',
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', NO_CHAR, 'Æ', 'æ', 'ß', 'É',
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/',
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?',
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O',
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§',
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o',
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à',
];

/// The GSM 03.38 extension table: (septet after ESC, character).
const EXTENSION_TABLE: [(u8, char); 10] = [
    (0x0A, '\u{000C}'),
    (0x14, '^'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2F, '\\'),
    (0x3C, '['),
    (0x3D, '~'),
    (0x3E, ']'),
    (0x40, '|'),
    (0x65, '€'),
];

const NOT_GSM: u8 = 0xFF;
const EXT_FLAG: u8 = 0x80;

/// ASCII -> septet (with [`EXT_FLAG`] for the extension table), built from the tables above.
const ASCII_TO_GSM7: [u8; 128] = {
    let mut map = [NOT_GSM; 128];
    let mut i = 0;
    while i < 128 {
        let c = DEFAULT_TABLE[i] as u32;
        if c < 128 {
            map[c as usize] = i as u8;
        }
        i += 1;
    }
    let mut j = 0;
    while j < EXTENSION_TABLE.len() {
        let (code, c) = EXTENSION_TABLE[j];
        if (c as u32) < 128 {
            map[c as usize] = code | EXT_FLAG;
        }
        j += 1;
    }
    map
};

/// The GSM-7 code of `c`, if it has one.
pub fn gsm7_code(c: char) -> Option<Gsm7Code> {
    if c.is_ascii() {
        return match ASCII_TO_GSM7[c as usize] {
            NOT_GSM => None,
            code if code & EXT_FLAG != 0 => Some(Gsm7Code::Extension(code & !EXT_FLAG)),
            code => Some(Gsm7Code::Default(code)),
        };
    }
    if c == NO_CHAR {
        return None;
    }
    if let Some(i) = DEFAULT_TABLE.iter().position(|&d| d == c) {
        return u8::try_from(i).ok().map(Gsm7Code::Default);
    }
    EXTENSION_TABLE
        .iter()
        .find(|&&(_, e)| e == c)
        .map(|&(code, _)| Gsm7Code::Extension(code))
}

/// The default-table character of a septet; `None` for the escape and values above 0x7F.
pub fn gsm7_char(septet: u8) -> Option<char> {
    DEFAULT_TABLE
        .get(usize::from(septet))
        .copied()
        .filter(|&c| c != NO_CHAR)
}

/// The extension-table character of the septet that follows an escape.
pub fn gsm7_extension_char(septet: u8) -> Option<char> {
    EXTENSION_TABLE
        .iter()
        .find(|&&(code, _)| code == septet)
        .map(|&(_, c)| c)
}

/// Septets `c` costs in GSM-7: 1 in the default table, 2 in the extension table, else `None`.
pub fn septets(c: char) -> Option<usize> {
    gsm7_code(c).map(|code| match code {
        Gsm7Code::Default(_) => 1,
        Gsm7Code::Extension(_) => 2,
    })
}

/// `Gsm7` iff every character of `text` is in the default or the extension table.
pub fn encoding_of(text: &str) -> Encoding {
    if text.chars().all(|c| gsm7_code(c).is_some()) {
        Encoding::Gsm7
    } else {
        Encoding::Ucs2
    }
}

/// Septets (GSM-7) or UTF-16 units (UCS-2) of `text` in `encoding`. Characters that GSM-7
/// cannot carry count 1 there (callers use [`encoding_of`] first).
pub fn units(text: &str, encoding: Encoding) -> usize {
    text.chars().map(|c| char_units(c, encoding)).sum()
}

fn char_units(c: char, encoding: Encoding) -> usize {
    match encoding {
        Encoding::Gsm7 => septets(c).unwrap_or(1),
        Encoding::Ucs2 => c.len_utf16(),
    }
}

/// Cuts `text` into parts.
pub fn split(text: &str) -> Segmentation {
    let iter = parts(text);
    Segmentation {
        encoding: iter.encoding,
        units: iter.units,
        parts: iter.map(str::to_owned).collect(),
    }
}

/// The number of parts [`split`] makes, without building them.
pub fn count_parts(text: &str) -> u32 {
    u32::try_from(parts(text).count()).unwrap_or(u32::MAX)
}

/// The parts of `text` as slices of it, lazily.
pub fn parts(text: &str) -> Parts<'_> {
    let encoding = encoding_of(text);
    let units = units(text, encoding);
    let (single, multi) = match encoding {
        Encoding::Gsm7 => (GSM7_SINGLE_LIMIT, GSM7_PART_LIMIT),
        Encoding::Ucs2 => (UCS2_SINGLE_LIMIT, UCS2_PART_LIMIT),
    };
    Parts {
        rest: text,
        encoding,
        units,
        // usize::MAX: a single part, no cut.
        limit: if units <= single { usize::MAX } else { multi },
        first: true,
    }
}

/// Iterator over the parts of a text; see [`parts`].
#[derive(Debug, Clone)]
pub struct Parts<'a> {
    rest: &'a str,
    /// Encoding of the whole text.
    pub encoding: Encoding,
    /// Units of the whole text.
    pub units: usize,
    limit: usize,
    first: bool,
}

impl<'a> Iterator for Parts<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.rest.is_empty() && !self.first {
            return None;
        }
        self.first = false;
        let cut = match self.encoding {
            _ if self.limit == usize::MAX => self.rest.len(),
            Encoding::Gsm7 => cut_gsm7(self.rest, self.limit),
            Encoding::Ucs2 => cut_ucs2(self.rest, self.limit),
        };
        let (part, rest) = self.rest.split_at(cut);
        self.rest = rest;
        Some(part)
    }
}

/// Byte index where the GSM-7 part starting at `text` ends. Characters are indivisible, so an
/// extension character (2 septets) that does not fit moves whole into the next part.
fn cut_gsm7(text: &str, limit: usize) -> usize {
    let mut used = 0;
    for (i, c) in text.char_indices() {
        let cost = septets(c).unwrap_or(1);
        if used + cost > limit {
            return if i == 0 { c.len_utf8() } else { i };
        }
        used += cost;
    }
    text.len()
}

/// How good a place between two characters is for a cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Boundary {
    /// A grapheme-cluster boundary.
    Soft,
    /// Inside a cluster, yet a legal cut (used only if the cluster does not fit in a part).
    Hard,
    /// Between the two halves of a flag: never.
    Never,
}

/// Byte index where the UCS-2 part starting at `text` ends: the last soft boundary that fits,
/// else the last hard one, so a part never ends inside a surrogate pair (chars are whole) or
/// a flag.
fn cut_ucs2(text: &str, limit: usize) -> usize {
    let mut used = 0;
    let (mut soft, mut hard) = (0, 0);
    let mut prev: Option<char> = None;
    // Regional indicators right before the current position, counted from the part start.
    // A part starts at a soft or hard boundary, so never in the middle of a flag.
    let mut ri_run = 0usize;
    for (i, c) in text.char_indices() {
        if let Some(p) = prev {
            match boundary(p, c, ri_run) {
                Boundary::Soft => (soft, hard) = (i, i),
                Boundary::Hard => hard = i,
                Boundary::Never => {}
            }
        }
        let cost = c.len_utf16();
        if used + cost > limit {
            return if soft > 0 {
                soft
            } else if hard > 0 {
                hard
            } else if i > 0 {
                i
            } else {
                c.len_utf8()
            };
        }
        used += cost;
        ri_run = if is_regional_indicator(c) {
            ri_run + 1
        } else {
            0
        };
        prev = Some(c);
    }
    text.len()
}

fn boundary(prev: char, next: char, ri_run: usize) -> Boundary {
    if is_regional_indicator(prev) && is_regional_indicator(next) && ri_run % 2 == 1 {
        Boundary::Never
    } else if is_extend(next) || is_joiner(prev) || (prev == '\r' && next == '\n') {
        Boundary::Hard
    } else {
        Boundary::Soft
    }
}

fn is_regional_indicator(c: char) -> bool {
    ('\u{1F1E6}'..='\u{1F1FF}').contains(&c)
}

/// Characters after which a cluster goes on: ZWJ and the Indic viramas.
fn is_joiner(c: char) -> bool {
    c == '\u{200D}' || (indic_offset(c) == Some(0x4D))
}

/// Offset inside one of the ISCII-shaped Indic blocks (Devanagari to Malayalam).
fn indic_offset(c: char) -> Option<u32> {
    let cp = u32::from(c);
    (0x0900..=0x0D7F).contains(&cp).then_some(cp & 0x7F)
}

/// Characters that extend the cluster before them (a cheap subset of Grapheme_Cluster_Break
/// Extend / SpacingMark / V / T).
fn is_extend(c: char) -> bool {
    let cp = u32::from(c);
    if let Some(off) = indic_offset(c) {
        // Shared layout: signs 00-03, nukta 3C, vowel signs and virama 3E-4D, length and
        // stress marks 51-57, vowel signs 62-63. Malayalam 0D54-0D56 are letters.
        let malayalam_letter = (0x0D54..=0x0D56).contains(&cp);
        let shared = matches!(off, 0x00..=0x03 | 0x3C | 0x3E..=0x4D | 0x51..=0x57 | 0x62..=0x63);
        return (shared && !malayalam_letter) || (0x093A..=0x093B).contains(&cp);
    }
    matches!(cp,
        0x0300..=0x036F          // combining diacritical marks
        | 0x0483..=0x0489        // Cyrillic
        | 0x0591..=0x05BD | 0x05BF | 0x05C1..=0x05C2 | 0x05C4..=0x05C5 | 0x05C7 // Hebrew
        | 0x0610..=0x061A | 0x064B..=0x065F | 0x0670 // Arabic
        | 0x06D6..=0x06DC | 0x06DF..=0x06E4 | 0x06E7..=0x06E8 | 0x06EA..=0x06ED
        | 0x0D81..=0x0D83 | 0x0DCA | 0x0DCF..=0x0DDF | 0x0DF2..=0x0DF3 // Sinhala
        | 0x0E31 | 0x0E34..=0x0E3A | 0x0E47..=0x0E4E // Thai
        | 0x0EB1 | 0x0EB4..=0x0EBC | 0x0EC8..=0x0ECE // Lao
        | 0x1160..=0x11FF | 0xD7B0..=0xD7FF // Hangul medial vowels and final consonants
        | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF // combining marks extended / supplement
        | 0x200C..=0x200D        // ZWNJ, ZWJ
        | 0x20D0..=0x20FF        // combining marks for symbols (keycap U+20E3)
        | 0x302A..=0x302F | 0x3099..=0x309A // CJK tone marks, kana voicing marks
        | 0xFE00..=0xFE0F        // variation selectors
        | 0xFE20..=0xFE2F        // combining half marks
        | 0x1F3FB..=0x1F3FF      // emoji skin-tone modifiers
        | 0xE0020..=0xE007F      // tags (subdivision flags)
        | 0xE0100..=0xE01EF      // variation selectors supplement
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lens(seg: &Segmentation) -> Vec<usize> {
        seg.parts.iter().map(|p| units(p, seg.encoding)).collect()
    }

    fn rep(s: &str, n: usize) -> String {
        s.repeat(n)
    }

    #[test]
    fn default_table_quirks() {
        assert_eq!(gsm7_char(0x09), Some('Ç'));
        assert_eq!(gsm7_code('Ç'), Some(Gsm7Code::Default(0x09)));
        assert_eq!(gsm7_code('ç'), None);
        assert_eq!(gsm7_code('`'), None);
        assert_eq!(gsm7_code('\u{FFFF}'), None);
        assert_eq!(gsm7_char(GSM7_ESCAPE), None);
        assert_eq!(gsm7_char(0x80), None);
        assert_eq!(gsm7_code('@'), Some(Gsm7Code::Default(0)));
        assert_eq!(gsm7_code('à'), Some(Gsm7Code::Default(0x7F)));
        assert_eq!(gsm7_code('€'), Some(Gsm7Code::Extension(0x65)));
        assert_eq!(gsm7_extension_char(0x65), Some('€'));
        assert_eq!(gsm7_extension_char(0x41), None);
    }

    #[test]
    fn tables_round_trip() {
        let mut defaults = 0;
        for septet in 0..=0x7Fu8 {
            if let Some(c) = gsm7_char(septet) {
                defaults += 1;
                assert_eq!(gsm7_code(c), Some(Gsm7Code::Default(septet)), "{c:?}");
                assert_eq!(septets(c), Some(1));
            }
        }
        assert_eq!(defaults, 127);
        for c in "\u{C}^{}\\[~]|€".chars() {
            let Some(Gsm7Code::Extension(code)) = gsm7_code(c) else {
                panic!("{c:?} not in the extension table");
            };
            assert_eq!(gsm7_extension_char(code), Some(c));
            assert_eq!(septets(c), Some(2));
        }
    }

    #[test]
    fn encodings() {
        assert_eq!(encoding_of(""), Encoding::Gsm7);
        assert_eq!(
            encoding_of("Hello, world! @£$¥ èéùìò ÄÖÑÜ §¿ äöñüà"),
            Encoding::Gsm7
        );
        assert_eq!(encoding_of("{[~]} | € ^ \\"), Encoding::Gsm7);
        assert_eq!(encoding_of("garçon"), Encoding::Ucs2);
        assert_eq!(encoding_of("`code`"), Encoding::Ucs2);
        assert_eq!(encoding_of("привет"), Encoding::Ucs2);
        assert_eq!(encoding_of("ok 👍"), Encoding::Ucs2);
        assert_eq!(septets('😀'), None);
        assert_eq!(units("a€😀", Encoding::Ucs2), 4);
        assert_eq!(units("a€", Encoding::Gsm7), 3);
    }

    #[test]
    fn empty_text_is_one_empty_part() {
        let seg = split("");
        assert_eq!(seg.encoding, Encoding::Gsm7);
        assert_eq!(seg.units, 0);
        assert_eq!(seg.parts, vec![String::new()]);
        assert_eq!(count_parts(""), 1);
    }

    #[test]
    fn gsm7_part_counts() {
        for (n, parts) in [
            (1, 1),
            (153, 1),
            (160, 1),
            (161, 2),
            (306, 2),
            (307, 3),
            (459, 3),
        ] {
            let text = rep("a", n);
            let seg = split(&text);
            assert_eq!(seg.encoding, Encoding::Gsm7);
            assert_eq!(seg.units, n);
            assert_eq!(seg.parts.len(), parts, "{n} septets");
            assert_eq!(count_parts(&text), parts as u32);
        }
        assert_eq!(lens(&split(&rep("a", 161))), vec![153, 8]);
    }

    #[test]
    fn extension_chars_cost_two() {
        let seg = split(&rep("€", 80));
        assert_eq!((seg.units, seg.parts.len()), (160, 1));
        let seg = split(&rep("€", 81));
        assert_eq!(seg.units, 162);
        assert_eq!(lens(&seg), vec![152, 10]);
        assert_eq!(seg.parts[0].chars().count(), 76);
    }

    #[test]
    fn escape_pair_straddling_a_boundary_moves_whole() {
        let text = format!("{}€{}", rep("a", 152), rep("b", 10));
        let seg = split(&text);
        assert_eq!(seg.units, 164);
        assert_eq!(seg.parts, vec![rep("a", 152), format!("€{}", rep("b", 10))]);
        // One septet earlier it fits exactly.
        let text = format!("{}€{}", rep("a", 151), rep("b", 10));
        assert_eq!(lens(&split(&text)), vec![153, 10]);
    }

    #[test]
    fn ucs2_part_counts() {
        for (n, parts) in [(70, 1), (71, 2), (134, 2), (135, 3)] {
            let text = rep("ç", n);
            let seg = split(&text);
            assert_eq!(seg.encoding, Encoding::Ucs2);
            assert_eq!(seg.parts.len(), parts, "{n} units");
            assert_eq!(count_parts(&text), parts as u32);
        }
        assert_eq!(lens(&split(&rep("ç", 71))), vec![67, 4]);
        // Emoji count two units: 35 fit one part, 36 do not.
        assert_eq!(count_parts(&rep("😀", 35)), 1);
        assert_eq!(lens(&split(&rep("😀", 36))), vec![66, 6]);
    }

    #[test]
    fn emoji_at_the_boundary_is_not_split() {
        let text = format!("{}😀{}", rep("ç", 66), rep("ç", 10));
        let seg = split(&text);
        assert_eq!(seg.parts, vec![rep("ç", 66), format!("😀{}", rep("ç", 10))]);
    }

    #[test]
    fn flag_pairs_stay_together() {
        // The cut would land between the two indicators of the flag.
        let text = format!("{}🇩🇪{}", rep("ç", 65), rep("ç", 10));
        assert_eq!(split(&text).parts[0], rep("ç", 65));
        // Exactly at the end of the flag.
        let text = format!("{}🇩🇪{}", rep("ç", 63), rep("ç", 10));
        assert_eq!(split(&text).parts[0], format!("{}🇩🇪", rep("ç", 63)));
        // A run of flags pairs from its start: DE | FR IT, never D | EF ...
        let text = format!("{}🇩🇪🇫🇷🇮🇹", rep("ç", 61));
        let seg = split(&text);
        assert_eq!(
            seg.parts,
            vec![format!("{}🇩🇪", rep("ç", 61)), "🇫🇷🇮🇹".to_owned()]
        );
        // A long run of flags only.
        let seg = split(&rep("🇩🇪", 40));
        assert!(seg.parts.iter().all(|p| p.chars().count() % 2 == 0));
        assert_eq!(lens(&seg), vec![64, 64, 32]);
    }

    #[test]
    fn clusters_stay_together_when_they_fit() {
        let after = rep("x", 5);
        let cases = [
            "e\u{301}",                                                 // combining acute
            "👨\u{200D}👩\u{200D}👧",                                   // ZWJ family
            "👍🏽",                                                       // skin tone
            "❤\u{FE0F}",                                                // variation selector
            "1\u{FE0F}\u{20E3}",                                        // keycap
            "कि",                                                       // Devanagari vowel sign
            "क्ष", // conjunct through the virama
            "🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}", // tag flag
            "\r\n",
        ];
        for cluster in cases {
            let cluster_units = units(cluster, Encoding::Ucs2);
            // Start the cluster 1 unit before the part limit, so a naive cut splits it.
            let lead = rep("ç", 66);
            let text = format!("{lead}{cluster}{after}");
            let seg = split(&text);
            assert!(seg.units > 70, "{cluster:?}");
            assert_eq!(seg.parts[0], lead, "{cluster:?} ({cluster_units} units)");
            assert_eq!(seg.parts[1], format!("{cluster}{after}"), "{cluster:?}");
        }
    }

    #[test]
    fn overlong_cluster_is_cut_at_a_character() {
        let text = format!("a{}", rep("\u{301}", 100));
        let seg = split(&text);
        assert_eq!(lens(&seg), vec![67, 34]);
        assert_eq!(seg.parts.concat(), text);
    }

    fn any_text() -> impl Strategy<Value = String> {
        let gsm = prop::sample::select(vec!['a', 'Z', ' ', '€', '{', '\\', 'é', 'Ç', '\n', '@']);
        let mixed = prop::sample::select(vec![
            'a',
            ' ',
            '€',
            '{',
            'ç',
            '`',
            '😀',
            '中',
            '\u{1F1E9}',
            '\u{1F1EA}',
            '\u{1F1EB}',
            '\u{301}',
            '\u{200D}',
            '\u{FE0F}',
            '\u{1F3FD}',
            'क',
            'ि',
            '्',
            '\r',
            '\n',
        ]);
        prop_oneof![
            prop::collection::vec(gsm, 0..500),
            prop::collection::vec(mixed, 0..300),
        ]
        .prop_map(|chars| chars.into_iter().collect())
    }

    proptest! {
        #[test]
        fn parts_rejoin_fit_and_count(text in any_text()) {
            let seg = split(&text);
            prop_assert_eq!(seg.parts.concat(), text.clone());
            prop_assert_eq!(count_parts(&text) as usize, seg.parts.len());
            prop_assert_eq!(seg.encoding, encoding_of(&text));
            let part_units = lens(&seg);
            prop_assert_eq!(part_units.iter().sum::<usize>(), seg.units);
            let (single, multi) = match seg.encoding {
                Encoding::Gsm7 => (GSM7_SINGLE_LIMIT, GSM7_PART_LIMIT),
                Encoding::Ucs2 => (UCS2_SINGLE_LIMIT, UCS2_PART_LIMIT),
            };
            if seg.units <= single {
                prop_assert_eq!(seg.parts.len(), 1);
            } else {
                for (i, u) in part_units.iter().enumerate() {
                    prop_assert!(*u <= multi && *u > 0, "part {} has {} units", i, u);
                }
            }
        }

        #[test]
        fn cuts_respect_surrogates_and_flags(text in any_text()) {
            let seg = split(&text);
            let utf16: Vec<u16> = text.encode_utf16().collect();
            let rejoined: Vec<u16> = seg.parts.iter().flat_map(|p| p.encode_utf16()).collect();
            prop_assert_eq!(rejoined, utf16);
            let mut at = 0;
            for part in &seg.parts[..seg.parts.len() - 1] {
                prop_assert!(char::decode_utf16(part.encode_utf16()).all(|r| r.is_ok()));
                at += part.len();
                // Regional indicators right before the cut, counted over the whole text.
                let run = text[..at].chars().rev().take_while(|&c| is_regional_indicator(c)).count();
                let next_is_ri = text[at..].chars().next().is_some_and(is_regional_indicator);
                prop_assert!(!(next_is_ri && run % 2 == 1), "cut inside a flag at byte {}", at);
            }
        }

        #[test]
        fn plain_gsm7_needs_the_fewest_parts(n in 0usize..2000) {
            let expected = if n <= 160 { 1 } else { n.div_ceil(153) };
            prop_assert_eq!(count_parts(&rep("x", n)) as usize, expected);
        }
    }
}
