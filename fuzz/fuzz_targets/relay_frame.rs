//! Frames the relay sends, as the phone's link decodes them: never a panic; round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use simrelay_protocol::{decode_relay_frame, encode};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(frame) = decode_relay_frame(text) {
        let again = decode_relay_frame(&encode(&frame)).expect("re-encoded frame decodes");
        assert_eq!(again, frame);
    }
});
