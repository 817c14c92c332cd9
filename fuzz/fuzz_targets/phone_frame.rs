//! Frames a phone sends, as the relay decodes them: never a panic; whatever decodes
//! re-encodes to something that decodes to the same frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use simrelay_protocol::{decode_phone_frame, encode};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(frame) = decode_phone_frame(text) {
        let again = decode_phone_frame(&encode(&frame)).expect("re-encoded frame decodes");
        assert_eq!(again, frame);
    }
});
