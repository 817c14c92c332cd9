//! The boundary's error type and the policy that turns errors and panics into Java exceptions.
//!
//! Kotlin sees three exception classes: `IllegalArgumentException` for bad input (nothing
//! changed), `IllegalStateException` for an unknown, freed or closed handle, and
//! `RuntimeException` for failures of the core or the link. Texts never carry an SMS body,
//! a phone number or a token.

use jni::Env;
use jni::errors::ErrorPolicy;
use jni::jni_str;
use jni::strings::{JNIStr, JNIString};
use simrelay_core::link::LinkError;

/// Everything an export can fail with.
#[derive(Debug, thiserror::Error)]
pub enum JniError {
    #[error("unknown or freed core handle")]
    BadHandle,
    #[error("invalid argument: {0}")]
    BadArgument(String),
    #[error("the core is shut down")]
    Closed,
    #[error("{0}")]
    Core(#[from] simrelay_core::Error),
    #[error("pairing failed: {0}")]
    Link(#[from] LinkError),
    #[error("runtime: {0}")]
    Runtime(String),
    #[error("JNI: {0}")]
    Jni(#[from] jni::errors::Error),
}

impl JniError {
    pub fn bad(what: impl Into<String>) -> Self {
        JniError::BadArgument(what.into())
    }

    /// The Java exception class this error is thrown as.
    pub fn java_class(&self) -> &'static JNIStr {
        match self {
            JniError::BadArgument(_) => jni_str!("java/lang/IllegalArgumentException"),
            JniError::BadHandle | JniError::Closed => jni_str!("java/lang/IllegalStateException"),
            JniError::Core(simrelay_core::Error::Invalid(_))
            | JniError::Core(simrelay_core::Error::Pdu(_))
            | JniError::Core(simrelay_core::Error::UnsupportedFormat(_))
            | JniError::Link(LinkError::BadUrl)
            | JniError::Link(LinkError::BadPin) => jni_str!("java/lang/IllegalArgumentException"),
            JniError::Core(simrelay_core::Error::Closed) => {
                jni_str!("java/lang/IllegalStateException")
            }
            _ => jni_str!("java/lang/RuntimeException"),
        }
    }
}

/// Throws a [`JniError`] as the matching Java exception and a panic as `RuntimeException`,
/// returning the type's default (0, null) to the JVM. A pending Java exception wins.
#[derive(Debug, Default)]
pub struct ThrowJava;

impl<T: Default> ErrorPolicy<T, JniError> for ThrowJava {
    type Captures<'unowned_env_local: 'native_method, 'native_method> = ();

    fn on_error<'unowned_env_local: 'native_method, 'native_method>(
        env: &mut Env<'unowned_env_local>,
        _cap: &mut Self::Captures<'unowned_env_local, 'native_method>,
        err: JniError,
    ) -> jni::errors::Result<T> {
        if env.exception_check() {
            return Ok(T::default());
        }
        log::debug!("native call failed: {err}");
        // `throw_new` reports the now pending exception as an error: that is the success case.
        let _ = env.throw_new(err.java_class(), JNIString::from(err.to_string()));
        Ok(T::default())
    }

    fn on_panic<'unowned_env_local: 'native_method, 'native_method>(
        env: &mut Env<'unowned_env_local>,
        _cap: &mut Self::Captures<'unowned_env_local, 'native_method>,
        payload: Box<dyn std::any::Any + Send + 'static>,
    ) -> jni::errors::Result<T> {
        let text = if let Some(s) = payload.downcast_ref::<&'static str>() {
            (*s).to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "non-string panic payload".to_string()
        };
        log::error!("native call panicked: {text}");
        if !env.exception_check() {
            let msg = JNIString::from(format!("simrelay core panicked: {text}"));
            let _ = env.throw_new(jni_str!("java/lang/RuntimeException"), msg);
        }
        Ok(T::default())
    }
}
