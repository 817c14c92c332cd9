//! Segmentation of any text: parts rejoin to the text, fit their limits, and the count
//! agrees with the estimate.
#![no_main]

use libfuzzer_sys::fuzz_target;
use simrelay_core::segment::{self, Encoding};

fuzz_target!(|text: &str| {
    let s = segment::split(text);
    assert_eq!(s.parts.concat(), text);
    assert_eq!(segment::count_parts(text) as usize, s.parts.len());
    let (single, multi) = match s.encoding {
        Encoding::Gsm7 => (160, 153),
        Encoding::Ucs2 => (70, 67),
    };
    let limit = if s.parts.len() == 1 { single } else { multi };
    for part in &s.parts {
        assert!(segment::units(part, s.encoding) <= limit || part.chars().count() == 1);
    }
});
