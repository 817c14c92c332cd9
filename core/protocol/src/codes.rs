//! Android sent-intent result codes (`SmsManager.RESULT_*`) and what the engine does with them.
//!
//! Kotlin hands the raw `resultCode` of each part's sent PendingIntent to the core; this module
//! names it (for events and troubleshooting) and classifies it: success, transient (retry with
//! backoff, bounded by the caller) or permanent (fail the message). [`is_sim_bound`] tells the
//! failures that belong to this SIM or phone rather than to the message, so that another SIM may
//! still succeed. The table follows AOSP `SmsManager.java` (Android 15); the transient/permanent
//! labels are our judgement (see `shared/reference/android-sms.md`, section 1). Codes a user must
//! act on (FDN, short-code consent, SIM PIN2, ...) count as permanent: retrying cannot help.
//! The relay reads the same table to name and classify the codes phones report.

/// Android's `Activity.RESULT_OK`, the sent-intent result code of success.
pub const RESULT_OK: i32 = -1;

/// `RESULT_ERROR_LIMIT_EXCEEDED`: the OS send-rate limit (SmsUsageMonitor) was hit.
pub const RESULT_ERROR_LIMIT_EXCEEDED: i32 = 5;
/// `Activity.RESULT_CANCELED`, also `SmsManager.RESULT_ERROR_NONE`.
pub const RESULT_CANCELED: i32 = 0;
/// `RESULT_ERROR_GENERIC_FAILURE`.
pub const RESULT_ERROR_GENERIC_FAILURE: i32 = 1;
/// `RESULT_ERROR_RADIO_OFF` (airplane mode).
pub const RESULT_ERROR_RADIO_OFF: i32 = 2;
/// `RESULT_ERROR_NO_SERVICE`.
pub const RESULT_ERROR_NO_SERVICE: i32 = 4;

/// What a sent-intent result means for the part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The part was handed to the network.
    Ok,
    /// Worth retrying later (with backoff, a bounded number of times).
    Transient,
    /// Retrying the same part on the same SIM will not help.
    Permanent,
}

use Class::{Ok as K, Permanent as P, Transient as T};

/// One known code: value, AOSP constant name, class, bound to the SIM/phone.
struct Code {
    value: i32,
    name: &'static str,
    class: Class,
    sim_bound: bool,
}

const fn c(value: i32, name: &'static str, class: Class, sim_bound: bool) -> Code {
    Code {
        value,
        name,
        class,
        sim_bound,
    }
}

/// Every code of AOSP `SmsManager` (`@IntDef(prefix = "RESULT")`, sent-intent results) plus
/// `Activity.RESULT_OK`. Sorted by value.
const CODES: &[Code] = &[
    c(-1, "RESULT_OK", K, false),
    // 0 is Activity.RESULT_CANCELED as much as ERROR_NONE: a sent-intent with it did not
    // report success, so it is treated as a generic, bounded-retry failure.
    c(0, "RESULT_ERROR_NONE", T, false),
    c(1, "RESULT_ERROR_GENERIC_FAILURE", T, false),
    c(2, "RESULT_ERROR_RADIO_OFF", T, true),
    c(3, "RESULT_ERROR_NULL_PDU", P, false),
    c(4, "RESULT_ERROR_NO_SERVICE", T, true),
    c(5, "RESULT_ERROR_LIMIT_EXCEEDED", T, true),
    c(6, "RESULT_ERROR_FDN_CHECK_FAILURE", P, true),
    c(7, "RESULT_ERROR_SHORT_CODE_NOT_ALLOWED", P, false),
    c(8, "RESULT_ERROR_SHORT_CODE_NEVER_ALLOWED", P, false),
    c(9, "RESULT_RADIO_NOT_AVAILABLE", T, true),
    c(10, "RESULT_NETWORK_REJECT", P, true),
    c(11, "RESULT_INVALID_ARGUMENTS", P, false),
    c(12, "RESULT_INVALID_STATE", T, false),
    c(13, "RESULT_NO_MEMORY", T, false),
    c(14, "RESULT_INVALID_SMS_FORMAT", P, false),
    c(15, "RESULT_SYSTEM_ERROR", T, false),
    c(16, "RESULT_MODEM_ERROR", T, false),
    c(17, "RESULT_NETWORK_ERROR", T, false),
    c(18, "RESULT_ENCODING_ERROR", P, false),
    c(19, "RESULT_INVALID_SMSC_ADDRESS", P, true),
    c(20, "RESULT_OPERATION_NOT_ALLOWED", P, false),
    c(21, "RESULT_INTERNAL_ERROR", T, false),
    c(22, "RESULT_NO_RESOURCES", T, false),
    c(23, "RESULT_CANCELLED", T, false),
    c(24, "RESULT_REQUEST_NOT_SUPPORTED", P, false),
    c(25, "RESULT_NO_BLUETOOTH_SERVICE", P, false),
    c(26, "RESULT_INVALID_BLUETOOTH_ADDRESS", P, false),
    c(27, "RESULT_BLUETOOTH_DISCONNECTED", P, false),
    c(28, "RESULT_UNEXPECTED_EVENT_STOP_SENDING", P, false),
    c(29, "RESULT_SMS_BLOCKED_DURING_EMERGENCY", T, false),
    c(30, "RESULT_SMS_SEND_RETRY_FAILED", T, false),
    c(31, "RESULT_REMOTE_EXCEPTION", T, false),
    c(32, "RESULT_NO_DEFAULT_SMS_APP", P, false),
    c(33, "RESULT_USER_NOT_ALLOWED", P, false),
    c(100, "RESULT_RIL_RADIO_NOT_AVAILABLE", T, true),
    c(101, "RESULT_RIL_SMS_SEND_FAIL_RETRY", T, false),
    c(102, "RESULT_RIL_NETWORK_REJECT", P, true),
    c(103, "RESULT_RIL_INVALID_STATE", T, false),
    c(104, "RESULT_RIL_INVALID_ARGUMENTS", P, false),
    c(105, "RESULT_RIL_NO_MEMORY", T, false),
    c(106, "RESULT_RIL_REQUEST_RATE_LIMITED", T, false),
    c(107, "RESULT_RIL_INVALID_SMS_FORMAT", P, false),
    c(108, "RESULT_RIL_SYSTEM_ERR", T, false),
    c(109, "RESULT_RIL_ENCODING_ERR", P, false),
    c(110, "RESULT_RIL_INVALID_SMSC_ADDRESS", P, true),
    c(111, "RESULT_RIL_MODEM_ERR", T, false),
    c(112, "RESULT_RIL_NETWORK_ERR", T, false),
    c(113, "RESULT_RIL_INTERNAL_ERR", T, false),
    c(114, "RESULT_RIL_REQUEST_NOT_SUPPORTED", P, false),
    c(115, "RESULT_RIL_INVALID_MODEM_STATE", T, false),
    c(116, "RESULT_RIL_NETWORK_NOT_READY", T, false),
    c(117, "RESULT_RIL_OPERATION_NOT_ALLOWED", P, false),
    c(118, "RESULT_RIL_NO_RESOURCES", T, false),
    c(119, "RESULT_RIL_CANCELLED", T, false),
    c(120, "RESULT_RIL_SIM_ABSENT", P, true),
    c(
        121,
        "RESULT_RIL_SIMULTANEOUS_SMS_AND_CALL_NOT_ALLOWED",
        T,
        false,
    ),
    c(122, "RESULT_RIL_ACCESS_BARRED", P, true),
    c(123, "RESULT_RIL_BLOCKED_DUE_TO_CALL", T, false),
    c(124, "RESULT_RIL_GENERIC_ERROR", T, false),
    c(125, "RESULT_RIL_INVALID_RESPONSE", T, false),
    c(126, "RESULT_RIL_SIM_PIN2", P, true),
    c(127, "RESULT_RIL_SIM_PUK2", P, true),
    c(128, "RESULT_RIL_SUBSCRIPTION_NOT_AVAILABLE", P, true),
    c(129, "RESULT_RIL_SIM_ERROR", T, true),
    c(130, "RESULT_RIL_INVALID_SIM_STATE", T, true),
    c(131, "RESULT_RIL_NO_SMS_TO_ACK", P, false),
    c(132, "RESULT_RIL_SIM_BUSY", T, true),
    c(133, "RESULT_RIL_SIM_FULL", P, true),
    c(134, "RESULT_RIL_NO_SUBSCRIPTION", P, true),
    c(135, "RESULT_RIL_NO_NETWORK_FOUND", T, true),
    c(136, "RESULT_RIL_DEVICE_IN_USE", T, false),
    c(137, "RESULT_RIL_ABORTED", T, false),
    c(138, "RESULT_SMS_SEND_FAILED_AFTER_MAX_RETRY", P, false),
];

fn lookup(result: i32) -> Option<&'static Code> {
    CODES
        .binary_search_by_key(&result, |code| code.value)
        .ok()
        .and_then(|i| CODES.get(i))
}

/// Classifies a sent-intent result code. Unknown codes (newer or OEM releases) are
/// [`Class::Transient`]: the caller retries them a bounded number of times.
pub fn classify(result: i32) -> Class {
    lookup(result).map_or(Class::Transient, |code| code.class)
}

/// The AOSP constant name of a result code (`"RESULT_ERROR_NO_SERVICE"`), or `"UNKNOWN"`.
pub fn name(result: i32) -> &'static str {
    lookup(result).map_or("UNKNOWN", |code| code.name)
}

/// Whether a failure is bound to this SIM or phone (no service, radio off, SIM absent, rate
/// limit, network reject, barring, FDN, invalid SMSC, ...) rather than to the message, so that
/// sending through another SIM may succeed.
pub fn is_sim_bound(result: i32) -> bool {
    lookup(result).is_some_and(|code| code.sim_bound)
}

/// Whether `result` is one of the codes this module knows.
pub fn is_known(result: i32) -> bool {
    lookup(result).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        for pair in CODES.windows(2) {
            assert!(
                pair[0].value < pair[1].value,
                "{} before {}",
                pair[0].name,
                pair[1].name
            );
        }
        assert_eq!(CODES.len(), 1 + 34 + 39);
    }

    #[test]
    fn names_carry_the_aosp_prefix() {
        for code in CODES {
            assert!(code.name.starts_with("RESULT_"), "{}", code.name);
            assert_eq!(name(code.value), code.name);
        }
    }

    #[test]
    fn every_code_is_classified_as_in_the_reference() {
        // (value, class) straight from the reference table; P/U and n/a are permanent.
        let ok = [-1];
        let permanent = [
            3, 6, 7, 8, 10, 11, 14, 18, 19, 20, 24, 25, 26, 27, 28, 32, 33, 102, 104, 107, 109,
            110, 114, 117, 120, 122, 126, 127, 128, 131, 133, 134, 138,
        ];
        for value in (-1..=33).chain(100..=138) {
            let expected = if ok.contains(&value) {
                Class::Ok
            } else if permanent.contains(&value) {
                Class::Permanent
            } else {
                Class::Transient
            };
            assert!(is_known(value), "{value} missing from the table");
            assert_eq!(classify(value), expected, "{value} {}", name(value));
        }
    }

    #[test]
    fn named_examples() {
        let cases = [
            (RESULT_OK, "RESULT_OK", Class::Ok, false),
            (
                RESULT_CANCELED,
                "RESULT_ERROR_NONE",
                Class::Transient,
                false,
            ),
            (1, "RESULT_ERROR_GENERIC_FAILURE", Class::Transient, false),
            (2, "RESULT_ERROR_RADIO_OFF", Class::Transient, true),
            (4, "RESULT_ERROR_NO_SERVICE", Class::Transient, true),
            (
                RESULT_ERROR_LIMIT_EXCEEDED,
                "RESULT_ERROR_LIMIT_EXCEEDED",
                Class::Transient,
                true,
            ),
            (6, "RESULT_ERROR_FDN_CHECK_FAILURE", Class::Permanent, true),
            (11, "RESULT_INVALID_ARGUMENTS", Class::Permanent, false),
            (18, "RESULT_ENCODING_ERROR", Class::Permanent, false),
            (19, "RESULT_INVALID_SMSC_ADDRESS", Class::Permanent, true),
            (
                101,
                "RESULT_RIL_SMS_SEND_FAIL_RETRY",
                Class::Transient,
                false,
            ),
            (
                106,
                "RESULT_RIL_REQUEST_RATE_LIMITED",
                Class::Transient,
                false,
            ),
            (120, "RESULT_RIL_SIM_ABSENT", Class::Permanent, true),
            (122, "RESULT_RIL_ACCESS_BARRED", Class::Permanent, true),
            (
                128,
                "RESULT_RIL_SUBSCRIPTION_NOT_AVAILABLE",
                Class::Permanent,
                true,
            ),
            (132, "RESULT_RIL_SIM_BUSY", Class::Transient, true),
            (133, "RESULT_RIL_SIM_FULL", Class::Permanent, true),
            (134, "RESULT_RIL_NO_SUBSCRIPTION", Class::Permanent, true),
            (135, "RESULT_RIL_NO_NETWORK_FOUND", Class::Transient, true),
        ];
        for (value, expected_name, class, sim_bound) in cases {
            assert_eq!(name(value), expected_name);
            assert_eq!(classify(value), class, "{expected_name}");
            assert_eq!(is_sim_bound(value), sim_bound, "{expected_name}");
        }
    }

    #[test]
    fn sim_bound_set_is_exactly_the_listed_one() {
        let bound: Vec<i32> = (-1..=200).filter(|v| is_sim_bound(*v)).collect();
        assert_eq!(
            bound,
            [
                2, 4, 5, 6, 9, 10, 19, 100, 102, 110, 120, 122, 126, 127, 128, 129, 130, 132, 133,
                134, 135
            ]
        );
    }

    #[test]
    fn unknown_codes_are_transient_and_unnamed() {
        for value in [-2, 34, 99, 139, 500, 506, i32::MIN, i32::MAX] {
            assert!(!is_known(value));
            assert_eq!(classify(value), Class::Transient);
            assert_eq!(name(value), "UNKNOWN");
            assert!(!is_sim_bound(value));
        }
    }
}
