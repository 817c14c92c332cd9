//! The `extern "system"` functions behind `dev.simrelay.app.NativeCore`'s `external fun`s.
//!
//! Every export is one call to [`run`], which runs the body under `catch_unwind` and turns an
//! error or a panic into a Java exception ([`ThrowJava`]). Names, parameter and return types
//! must match NativeCore.kt; `scripts/check-android-host.sh` compares the exported symbols
//! with the Kotlin declarations.

use jni::objects::{JByteArray, JClass, JObjectArray, JString};
use jni::sys::{jboolean, jint, jlong};
use jni::{Env, EnvUnowned};
use serde::Serialize;
use simrelay_core::phone::PhoneView;
use simrelay_core::{ModemEvent, SimConfig};

use crate::convert::{
    byte_arrays_arg, bytes_arg, new_string, next_json, opt_string_arg, optional_i32, part_key,
    relay_url, string_arg, u32_arg, wait_ms,
};
use crate::error::{JniError, ThrowJava};
use crate::handle::{self, CreateConfig};

/// The one wrapper of every export.
pub fn run<'local, T, F>(env: &mut EnvUnowned<'local>, body: F) -> T
where
    T: Default,
    F: FnOnce(&mut Env<'local>) -> Result<T, JniError>,
{
    env.with_env(body).resolve::<ThrowJava>()
}

/// What `nativeStatus` returns: the phone's view plus the shell's backlog.
#[derive(Serialize)]
struct Status {
    #[serde(flatten)]
    view: PhoneView,
    /// Commands queued for the Kotlin worker and not yet pulled.
    pending_commands: usize,
}

// Keep in sync with NativeCore.kt
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_simrelay_app_NativeCore_nativeCreate<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    config_json: JString<'local>,
) -> jlong {
    run(&mut env, |env| {
        crate::init_logging();
        let json = string_arg(env, &config_json, "configJson")?;
        handle::create(CreateConfig::parse(&json)?)
    })
}

// Keep in sync with NativeCore.kt
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_simrelay_app_NativeCore_nativeDestroy<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
) {
    run(&mut env, |_env| handle::destroy(handle))
}

// Keep in sync with NativeCore.kt
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_simrelay_app_NativeCore_nativeNextCommand<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    timeout_ms: jlong,
) -> JString<'local> {
    run(&mut env, |env| {
        let core = handle::get(handle)?;
        let wait = wait_ms(timeout_ms)?;
        match next_json(core.queue().next(wait))? {
            Some(json) => new_string(env, &json),
            None => Ok(JString::default()),
        }
    })
}

// Keep in sync with NativeCore.kt
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub extern "system" fn Java_dev_simrelay_app_NativeCore_nativeOnSent<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    message_id: JString<'local>,
    idx: jint,
    attempt: jint,
    part: jint,
    parts: jint,
    result_code: jint,
    error_code: jint,
) {
    run(&mut env, |env| {
        let core = handle::get(handle)?;
        let key = part_key(env, &message_id, idx, attempt, part)?;
        let parts = u32_arg(parts, "parts")?;
        if parts == 0 || key.part >= parts {
            return Err(JniError::bad("part must be below parts"));
        }
        let event = ModemEvent::Sent {
            key,
            parts,
            result: result_code,
            error_code: optional_i32(error_code),
        };
        Ok(core.phone().on_modem_event(event)?)
    })
}

// Keep in sync with NativeCore.kt
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub extern "system" fn Java_dev_simrelay_app_NativeCore_nativeOnDelivered<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    message_id: JString<'local>,
    idx: jint,
    attempt: jint,
    part: jint,
    pdu: JByteArray<'local>,
    format: JString<'local>,
) {
    run(&mut env, |env| {
        let core = handle::get(handle)?;
        let key = part_key(env, &message_id, idx, attempt, part)?;
        let event = ModemEvent::Report {
            key,
            pdu: bytes_arg(env, &pdu, "pdu")?,
            format: string_arg(env, &format, "format")?,
        };
        Ok(core.phone().on_modem_event(event)?)
    })
}

// Keep in sync with NativeCore.kt
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_simrelay_app_NativeCore_nativeOnIncoming<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    sub_id: jint,
    from: JString<'local>,
    body: JString<'local>,
    timestamp_ms: jlong,
) {
    run(&mut env, |env| {
        let core = handle::get(handle)?;
        let event = ModemEvent::Incoming {
            sim: optional_i32(sub_id),
            from: string_arg(env, &from, "from")?,
            text: string_arg(env, &body, "body")?,
            sent_at: (timestamp_ms > 0).then_some(timestamp_ms),
        };
        Ok(core.phone().on_modem_event(event)?)
    })
}

// Keep in sync with NativeCore.kt
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_simrelay_app_NativeCore_nativeOnIncomingData<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    sub_id: jint,
    pdus: JObjectArray<'local, JByteArray<'local>>,
    format: JString<'local>,
) {
    run(&mut env, |env| {
        let core = handle::get(handle)?;
        let event = ModemEvent::IncomingData {
            sim: optional_i32(sub_id),
            pdus: byte_arrays_arg(env, &pdus, "pdus")?,
            format: string_arg(env, &format, "format")?,
        };
        Ok(core.phone().on_modem_event(event)?)
    })
}

// Keep in sync with NativeCore.kt
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_simrelay_app_NativeCore_nativeSetSims<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    sims_json: JString<'local>,
) {
    run(&mut env, |env| {
        let core = handle::get(handle)?;
        let json = string_arg(env, &sims_json, "simsJson")?;
        let sims: Vec<SimConfig> = serde_json::from_str(&json)
            .map_err(|e| JniError::bad(format!("SIM list JSON: {e}")))?;
        Ok(core.phone().set_sims(sims)?)
    })
}

// Keep in sync with NativeCore.kt
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_simrelay_app_NativeCore_nativeStatus<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
) -> JString<'local> {
    run(&mut env, |env| {
        let core = handle::get(handle)?;
        let status = Status {
            view: core.phone().status(),
            pending_commands: core.queue().len(),
        };
        let json = serde_json::to_string(&status)
            .map_err(|e| JniError::Runtime(format!("encode status: {e}")))?;
        new_string(env, &json)
    })
}

// Keep in sync with NativeCore.kt
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_simrelay_app_NativeCore_nativePair<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    url: JString<'local>,
    code: JString<'local>,
    pin_sha256: JString<'local>,
    max_links: jint,
) -> JString<'local> {
    run(&mut env, |env| {
        let core = handle::get(handle)?;
        let url = string_arg(env, &url, "url")?;
        let code = string_arg(env, &code, "code")?;
        if code.trim().is_empty() {
            return Err(JniError::bad("code is empty"));
        }
        let pin = opt_string_arg(env, &pin_sha256, "pinSha256")?;
        let max_links = handle::max_links_arg(max_links)?;
        let phone_id = core.pair(&relay_url(&url), &code, pin.as_deref(), max_links)?;
        new_string(env, &phone_id)
    })
}

// Keep in sync with NativeCore.kt
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_simrelay_app_NativeCore_nativeSetWorker<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    attached: jboolean,
) {
    run(&mut env, |_env| {
        let core = handle::get(handle)?;
        core.phone().set_worker_attached(attached);
        Ok(())
    })
}
