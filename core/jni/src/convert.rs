//! Argument and result conversion between Java values and the core's types.
//!
//! Null or out-of-range arguments are [`JniError::BadArgument`]s naming the argument, never
//! quoting its value (it may be a phone number or an SMS body).

use jni::Env;
use jni::objects::{JByteArray, JObjectArray, JString};
use jni::refs::Reference as _;
use simrelay_core::{Command, Next, PartKey};

use crate::error::JniError;

/// What `nativeNextCommand` returns once the core is shut down (see NativeCore.kt).
pub const CLOSED_MARKER: &str = r#"{"type":"closed"}"#;
/// Upper bound on one `nativeNextCommand` wait, so a caller always gets control back.
pub const MAX_WAIT_MS: i64 = 60_000;

pub fn string_arg(env: &Env<'_>, s: &JString<'_>, what: &str) -> Result<String, JniError> {
    if s.is_null() {
        return Err(JniError::bad(format!("{what} is null")));
    }
    Ok(s.try_to_string(env)?)
}

/// A nullable string; empty counts as absent.
pub fn opt_string_arg(
    env: &Env<'_>,
    s: &JString<'_>,
    what: &str,
) -> Result<Option<String>, JniError> {
    if s.is_null() {
        return Ok(None);
    }
    let s = string_arg(env, s, what)?;
    Ok((!s.trim().is_empty()).then_some(s))
}

pub fn bytes_arg(env: &Env<'_>, a: &JByteArray<'_>, what: &str) -> Result<Vec<u8>, JniError> {
    if a.is_null() {
        return Err(JniError::bad(format!("{what} is null")));
    }
    Ok(env.convert_byte_array(a)?)
}

/// Most byte arrays taken from one `byte[][]` (a concatenated SMS has at most 255 parts).
pub const MAX_ARRAYS: usize = 255;

/// A non-null `byte[][]` with non-null elements (the PDUs of one incoming SMS). Each element
/// is read in its own local frame, so the local references do not pile up.
pub fn byte_arrays_arg(
    env: &mut Env<'_>,
    a: &JObjectArray<'_, JByteArray<'_>>,
    what: &str,
) -> Result<Vec<Vec<u8>>, JniError> {
    if a.is_null() {
        return Err(JniError::bad(format!("{what} is null")));
    }
    let len = a.len(env)?;
    if len > MAX_ARRAYS {
        return Err(JniError::bad(format!(
            "{what} holds more than {MAX_ARRAYS} arrays"
        )));
    }
    (0..len)
        .map(|i| {
            env.with_local_frame(2, |env| -> Result<Vec<u8>, JniError> {
                let element = a.get_element(env, i)?;
                bytes_arg(env, &element, what)
            })
        })
        .collect()
}

/// The part a sent or delivery intent names (its PendingIntent extras).
pub fn part_key(
    env: &Env<'_>,
    message_id: &JString<'_>,
    idx: i32,
    attempt: i32,
    part: i32,
) -> Result<PartKey, JniError> {
    Ok(PartKey {
        message_id: string_arg(env, message_id, "messageId")?,
        idx: u32_arg(idx, "idx")?,
        attempt: u32_arg(attempt, "attempt")?,
        part: u32_arg(part, "part")?,
    })
}

pub fn u32_arg(v: i32, what: &str) -> Result<u32, JniError> {
    u32::try_from(v).map_err(|_| JniError::bad(format!("{what} is negative")))
}

/// Android passes -1 for "none" (no subscription, no error code, no timestamp).
pub fn optional_i32(v: i32) -> Option<i32> {
    (v >= 0).then_some(v)
}

/// The wait of `nativeNextCommand`, clamped to `0..=MAX_WAIT_MS`.
pub fn wait_ms(timeout_ms: i64) -> Result<std::time::Duration, JniError> {
    if timeout_ms < 0 {
        return Err(JniError::bad("timeoutMs is negative"));
    }
    let ms = u64::try_from(timeout_ms.min(MAX_WAIT_MS)).unwrap_or(0);
    Ok(std::time::Duration::from_millis(ms))
}

/// The relay's base URL as the core wants it: pairing screens show the full WebSocket URL
/// (`.../v1/link`); the core appends that path itself.
pub fn relay_url(url: &str) -> String {
    let base = url.trim().trim_end_matches('/');
    base.strip_suffix(simrelay_core::protocol::WS_PATH)
        .unwrap_or(base)
        .to_string()
}

/// JSON of a command, `None` on timeout, [`CLOSED_MARKER`] once closed.
pub fn next_json(next: Next) -> Result<Option<String>, JniError> {
    match next {
        Next::Command(command) => Ok(Some(command_json(&command)?)),
        Next::Timeout => Ok(None),
        Next::Closed => Ok(Some(CLOSED_MARKER.to_string())),
    }
}

pub fn command_json(command: &Command) -> Result<String, JniError> {
    serde_json::to_string(command).map_err(|e| JniError::Runtime(format!("encode command: {e}")))
}

pub fn new_string<'local>(env: &mut Env<'local>, s: &str) -> Result<JString<'local>, JniError> {
    Ok(env.new_string(s)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use simrelay_core::SendCommand;

    #[test]
    fn commands_encode_as_tagged_json_and_closed_is_a_marker() {
        let send = Command::Send(SendCommand {
            message_id: "m1".into(),
            idx: 0,
            attempt: 1,
            sim: 3,
            to: "+15550001".into(),
            text: "hi".into(),
            parts: 1,
            delivery_report: true,
            data: None,
        });
        let json = next_json(Next::Command(send))
            .expect("encodes")
            .expect("some");
        let v: serde_json::Value = serde_json::from_str(&json).expect("json");
        assert_eq!(v["type"], "send");
        assert_eq!(v["message_id"], "m1");
        assert_eq!(v["sim"], 3);
        assert_eq!(next_json(Next::Timeout).expect("ok"), None);
        assert_eq!(
            next_json(Next::Closed).expect("ok").as_deref(),
            Some(CLOSED_MARKER)
        );
        let refresh = next_json(Next::Command(Command::RefreshSims)).expect("ok");
        assert_eq!(refresh.as_deref(), Some(r#"{"type":"refresh_sims"}"#));
    }

    #[test]
    fn data_sends_carry_port_and_base64_payload() {
        let send = Command::Send(SendCommand {
            message_id: "d1".into(),
            idx: 1,
            attempt: 1,
            sim: 3,
            to: "+15550001".into(),
            text: String::new(),
            parts: 1,
            delivery_report: false,
            data: Some(simrelay_core::DataSms {
                port: 53739,
                payload: vec![0, 1, 0xFF],
            }),
        });
        let json = command_json(&send).expect("encodes");
        let v: serde_json::Value = serde_json::from_str(&json).expect("json");
        assert_eq!(v["type"], "send");
        assert_eq!(
            v["data"],
            serde_json::json!({"port": 53739, "payload": "AAH/"})
        );
        // A text send has no `data` key at all (what NativeCore.kt's parser checks).
        let text = Command::Send(SendCommand {
            data: None,
            ..match send {
                Command::Send(cmd) => cmd,
                Command::RefreshSims => unreachable!("built as a send"),
            }
        });
        let json = command_json(&text).expect("encodes");
        assert!(!json.contains("\"data\""), "{json}");
    }

    #[test]
    fn relay_urls_lose_the_link_path() {
        assert_eq!(relay_url(" ws://h:1/v1/link/ "), "ws://h:1");
        assert_eq!(relay_url("wss://h/"), "wss://h");
        assert_eq!(relay_url("wss://h/base"), "wss://h/base");
    }

    #[test]
    fn numbers_are_checked() {
        assert!(u32_arg(-1, "part").is_err());
        assert_eq!(u32_arg(7, "part").expect("ok"), 7);
        assert_eq!(optional_i32(-1), None);
        assert_eq!(optional_i32(0), Some(0));
        assert!(wait_ms(-5).is_err());
        assert_eq!(
            wait_ms(i64::MAX).expect("clamped"),
            std::time::Duration::from_millis(MAX_WAIT_MS as u64)
        );
    }
}
