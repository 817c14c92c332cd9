//! The pure part of the JSON request bodies, callable without a relay: decoding and the checks
//! that need no database, exactly as the handlers run them.
//!
//! [`check`] is the entry of the `http_body` fuzz target (`fuzz/`) and of tests that probe
//! bodies in bulk. Checks that need the store (is the phone or pool the account's, is the id
//! taken) are left to the handlers.

use super::{messages, pools, webhooks};
use crate::error::{AppError, decode_json};
use crate::store::SimSettings;

/// The `now` of [`check`]: 2026-01-01T00:00:00Z, in Unix milliseconds.
pub const CHECK_NOW_MS: i64 = 1_767_225_600_000;

/// Which request body to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// `POST /v1/messages`.
    Send,
    /// `POST /v1/pools`.
    CreatePool,
    /// `PATCH /v1/sims/{phone}/{sub_id}`, applied to a SIM with default settings.
    PatchSim,
    /// `POST /v1/webhooks`.
    CreateWebhook,
}

impl BodyKind {
    /// Every kind, in the order of [`BodyKind::from_byte`].
    pub const ALL: [Self; 4] = [
        Self::Send,
        Self::CreatePool,
        Self::PatchSim,
        Self::CreateWebhook,
    ];

    /// The kind a byte picks (its value modulo the number of kinds), for fuzz inputs.
    pub fn from_byte(b: u8) -> Self {
        Self::ALL[usize::from(b) % Self::ALL.len()]
    }
}

/// Decodes `bytes` as the body of `kind` and runs the handler's checks that need no database,
/// at [`CHECK_NOW_MS`]. The error is the one the API would answer.
pub fn check(kind: BodyKind, bytes: &[u8]) -> Result<(), AppError> {
    match kind {
        BodyKind::Send => {
            let req: messages::SendRequest = decode_json(bytes)?;
            messages::validate("check", &req, CHECK_NOW_MS).map(drop)
        }
        BodyKind::CreatePool => {
            let req: pools::CreatePool = decode_json(bytes)?;
            pools::validate_pool(&req, CHECK_NOW_MS).map(drop)
        }
        BodyKind::PatchSim => {
            let req: pools::PatchSim = decode_json(bytes)?;
            pools::apply_patch(req, SimSettings::default()).map(drop)
        }
        BodyKind::CreateWebhook => {
            let req: webhooks::CreateWebhook = decode_json(bytes)?;
            webhooks::validate_webhook(req).map(drop)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(kind: BodyKind, body: &str) -> Result<(), &'static str> {
        check(kind, body.as_bytes()).map_err(|e| {
            assert!(e.status.is_client_error(), "{e:?}");
            e.code
        })
    }

    #[test]
    fn every_kind_accepts_a_good_body_and_refuses_a_bad_one() {
        let cases = [
            (
                BodyKind::Send,
                r#"{"to":["+15551230001"],"text":"hello"}"#,
                r#"{"to":["5551230001"],"text":"hello"}"#,
                "invalid_number",
            ),
            (
                BodyKind::CreatePool,
                r#"{"name":"eu","members":[{"phone":"p1","sub_id":1}]}"#,
                r#"{"name":"eu","members":[]}"#,
                "invalid_pool",
            ),
            (
                BodyKind::PatchSim,
                r#"{"hours":"08:00-17:30","utc_offset_min":60}"#,
                r#"{"hours":"08:00-08:00"}"#,
                "invalid_hours",
            ),
            (
                BodyKind::CreateWebhook,
                r#"{"url":"https://example.com/h","events":["message.sent"]}"#,
                r#"{"url":"ftp://example.com/h","events":["message.sent"]}"#,
                "invalid_url",
            ),
        ];
        for (kind, good, bad, want) in cases {
            assert_eq!(code(kind, good), Ok(()), "{kind:?}");
            assert_eq!(code(kind, bad), Err(want), "{kind:?}");
            assert_eq!(code(kind, "{"), Err("invalid_json"), "{kind:?}");
            assert_eq!(code(kind, r#"{"zz":1}"#), Err("invalid_body"), "{kind:?}");
        }
    }

    #[test]
    fn a_negative_sim_is_refused_without_a_database() {
        let body = r#"{"to":["+15551230001"],"text":"hello","sim":-1}"#;
        assert_eq!(code(BodyKind::Send, body), Err("invalid_sim"));
        let body = r#"{"to":["+15551230001"],"text":"hello","sim":0}"#;
        assert_eq!(code(BodyKind::Send, body), Ok(()));
    }

    /// Found by the fuzz target: an hour of 9999 overflowed in `Hours::parse`.
    #[test]
    fn hours_far_out_of_range_are_a_400() {
        let body = r#"{"hours":"9999:00-01:00"}"#;
        assert_eq!(code(BodyKind::PatchSim, body), Err("invalid_hours"));
    }

    #[test]
    fn from_byte_covers_every_kind() {
        let kinds: Vec<BodyKind> = (0..4).map(BodyKind::from_byte).collect();
        assert_eq!(kinds, BodyKind::ALL);
        assert_eq!(BodyKind::from_byte(4), BodyKind::Send);
        assert_eq!(BodyKind::from_byte(255), BodyKind::CreateWebhook);
    }
}
