//! Delivery-report PDUs as Android hands them over: the parser never panics, and a report it
//! reads has a status the engine can classify.
#![no_main]

use libfuzzer_sys::fuzz_target;
use simrelay_core::pdu;

fuzz_target!(|data: &[u8]| {
    if let Ok(report) = pdu::parse_status_report(data) {
        let _ = pdu::outcome(report.status);
        if let (Some(scts), Some(dt)) = (report.sc_timestamp, report.discharge_time) {
            // What parses rebuilds to a report with the same fields.
            let rebuilt = pdu::build_status_report(
                report.smsc.as_deref(),
                report.message_ref,
                &report.recipient,
                scts,
                dt,
                report.status,
            );
            let back = pdu::parse_status_report(&rebuilt).expect("a built report parses");
            assert_eq!(back.status, report.status);
            assert_eq!(back.message_ref, report.message_ref);
        }
    }
});
