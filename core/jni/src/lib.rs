//! simrelay-jni: the only crate that knows JNI.
//!
//! It exports the `native*` functions of `dev.simrelay.app.NativeCore` (Kotlin) and maps them
//! onto `simrelay-core`. The model is pull, not push: Rust never calls into Java. A Kotlin
//! worker thread blocks in `nativeNextCommand` and performs what it returns; receivers hand
//! results and incoming SMS in with primitives and byte arrays.
//!
//! - [`handle`]: the registry of live cores behind the opaque `Long` handles, each owning its
//!   tokio runtime, [`Phone`](simrelay_core::phone::Phone) and command queue;
//! - [`error`]: the one error type of the boundary and the policy turning errors and panics
//!   into Java exceptions;
//! - [`convert`]: argument and result conversion;
//! - `exports`: the `extern "system"` functions, each a single call to [`exports::run`].
//!
//! The same library is built for Android (cargo-ndk) and for the host, where a JVM test
//! (`scripts/check-android-host.sh`) drives it under `-Xcheck:jni`.

// JNI needs `#[unsafe(no_mangle)] extern "system"` exports, which the workspace's
// `unsafe_code = "deny"` forbids. This crate has no other unsafe code: the exports only call
// the safe `jni` 0.22 API.
#![allow(unsafe_code)]
#![deny(clippy::unwrap_used)]
// No `expect` outside tests either: every failure of the boundary becomes a Java exception.
#![cfg_attr(not(test), deny(clippy::expect_used))]

pub mod convert;
pub mod error;
pub mod exports;
pub mod handle;

pub use error::JniError;
pub use handle::{Core, CreateConfig};

/// Installs the logger once: logcat on Android; on the host the `log` facade stays silent
/// unless the embedding process installs a logger.
pub(crate) fn init_logging() {
    #[cfg(target_os = "android")]
    android_logger::init_once(
        android_logger::Config::default()
            .with_max_level(log::LevelFilter::Info)
            .with_tag("simrelay"),
    );
}
