//! The relay's JSON request bodies (send, create pool, patch SIM, create webhook) through the
//! same decoding and checks as the handlers. The first byte picks the kind, the rest is the
//! body. Beyond "no panic": every refusal is a 4xx with a code and a message, and the message
//! never quotes a string value of the body (6 characters or more) nor a long number (the
//! project rule: no SMS body or phone number in error texts).
//!
//! A string value may legitimately appear in a message as our own words (a text of "number"
//! and the message "to[0] is not an E.164 number"). So a value found in the message is changed
//! in the body (letters and digits shifted, same length and shape) and the body checked again:
//! if the message still holds the old value, it is our wording, not a quote.
#![no_main]

use libfuzzer_sys::fuzz_target;
use simrelay_server::api::bodies::{BodyKind, check};

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    let kind = BodyKind::from_byte(kind);
    let Err(e) = check(kind, body) else {
        return;
    };
    assert!(e.status.is_client_error(), "{kind:?}: status {}", e.status);
    assert!(!e.code.is_empty(), "{kind:?}: empty code");
    assert!(!e.message.is_empty(), "{kind:?}: empty message");
    // Bodies that are not JSON have no values to quote.
    if serde_json::from_slice::<serde_json::Value>(body).is_err() {
        return;
    }
    for token in value_tokens(body) {
        match token {
            Token::Str(span) => {
                let Ok(value) = serde_json::from_slice::<String>(&body[span.clone()]) else {
                    continue;
                };
                if value.chars().count() < 6 || !e.message.contains(&value) {
                    continue;
                }
                let Some(changed) = shift_value(body, &value) else {
                    continue; // no letter or digit to change: cannot tell a quote from our words
                };
                // A shifted body that passes was refused for this very value; its message
                // cannot be compared, so nothing is concluded.
                if let Err(again) = check(kind, &changed) {
                    assert!(
                        again.message.contains(&value),
                        "{kind:?}: the message quotes a string value: {:?}",
                        e.message
                    );
                }
            }
            Token::Num(span) => {
                let raw = std::str::from_utf8(&body[span]).expect("JSON numbers are ASCII");
                // A phone number may be sent as a number, in any notation: no run of 6 or
                // more of its digits may appear (our messages hold no such run).
                for run in raw.split(|c: char| !c.is_ascii_digit()) {
                    assert!(
                        run.len() < 6 || !e.message.contains(run),
                        "{kind:?}: the message quotes a number: {:?}",
                        e.message
                    );
                }
            }
        }
    }
});

/// A string or number in value position (not an object key), by its byte range in the body.
enum Token {
    /// The string with its quotes.
    Str(std::ops::Range<usize>),
    Num(std::ops::Range<usize>),
}

/// The string and number values of a body that is valid JSON, in order.
fn value_tokens(body: &[u8]) -> Vec<Token> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'"' => {
                let end = string_end(body, i);
                let next = body[end..]
                    .iter()
                    .find(|b| !b.is_ascii_whitespace())
                    .copied();
                if next != Some(b':') {
                    out.push(Token::Str(i..end));
                }
                i = end;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < body.len()
                    && matches!(body[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                out.push(Token::Num(start..i));
            }
            _ => i += 1,
        }
    }
    out
}

/// The index just past the closing quote of the string starting at `start`.
fn string_end(body: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < body.len() {
        match body[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    body.len()
}

/// The body with every string value equal to `value` changed: each letter and digit written
/// literally (not as an escape) shifted by one, keeping its class (`z` → `a`, `9` → `1`,
/// `0` kept so a leading digit stays non-zero). `None` when nothing would change.
fn shift_value(body: &[u8], value: &str) -> Option<Vec<u8>> {
    let mut out = body.to_vec();
    let mut changed = false;
    for token in value_tokens(body) {
        let Token::Str(span) = token else { continue };
        if serde_json::from_slice::<String>(&body[span.clone()])
            .ok()
            .as_deref()
            != Some(value)
        {
            continue;
        }
        let mut i = span.start + 1;
        while i + 1 < span.end {
            match out[i] {
                b'\\' => {
                    i += if out[i + 1] == b'u' { 6 } else { 2 };
                    continue;
                }
                b @ (b'a'..=b'y' | b'A'..=b'Y' | b'1'..=b'8') => out[i] = b + 1,
                b'z' => out[i] = b'a',
                b'Z' => out[i] = b'A',
                b'9' => out[i] = b'1',
                _ => {
                    i += 1;
                    continue;
                }
            }
            changed = true;
            i += 1;
        }
    }
    changed.then_some(out)
}
