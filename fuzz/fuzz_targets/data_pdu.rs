//! Incoming data SMS PDUs as Android hands them over (`DATA_SMS_RECEIVED`): the parser never
//! panics, and a PDU it reads rebuilds to one with the same sender, port and payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use simrelay_core::pdu;

fuzz_target!(|data: &[u8]| {
    // One PDU, and the same bytes split in two as a "multipart" SMS.
    let _ = pdu::parse_data_sms(&[
        data[..data.len() / 2].to_vec(),
        data[data.len() / 2..].to_vec(),
    ]);
    if let Ok(sms) = pdu::parse_data_pdu(data)
        && let Some(at) = sms.sc_timestamp
        && sms.payload.len() <= 133
    {
        let rebuilt = pdu::build_data_pdu(&sms.from, sms.port, &sms.payload, at, None);
        let back = pdu::parse_data_pdu(&rebuilt).expect("a built PDU parses");
        assert_eq!(back.port, sms.port);
        assert_eq!(back.payload, sms.payload);
    }
});
