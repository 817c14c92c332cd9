//! The boundary's error type and the policy that turns errors and panics into Java exceptions.
//!
//! Kotlin sees three exception classes: `IllegalArgumentException` for bad input (nothing
//! changed), `IllegalStateException` for an unknown, freed or closed handle, and
//! `RuntimeException` for failures of the core or the link. The class follows the error's
//! [`ErrorKind`] (the engine's, which the bridge's own cases map onto), never a variant's name.
//! Texts never carry an SMS body, a phone number or a token.

use jni::Env;
use jni::errors::ErrorPolicy;
use jni::jni_str;
use jni::strings::{JNIStr, JNIString};
use simrelay_core::ErrorKind;
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

    /// What the error is, in the engine's terms: the bridge's own cases map onto its kinds.
    pub fn kind(&self) -> ErrorKind {
        match self {
            JniError::BadArgument(_) => ErrorKind::InvalidInput,
            JniError::BadHandle | JniError::Closed => ErrorKind::Closed,
            JniError::Core(e) => e.kind(),
            JniError::Link(e) => e.kind(),
            JniError::Runtime(_) | JniError::Jni(_) => ErrorKind::Failure,
        }
    }

    /// The Java exception class this error is thrown as.
    pub fn java_class(&self) -> &'static JNIStr {
        java_class(self.kind())
    }
}

/// The Java exception class of each kind.
fn java_class(kind: ErrorKind) -> &'static JNIStr {
    match kind {
        ErrorKind::InvalidInput => jni_str!("java/lang/IllegalArgumentException"),
        ErrorKind::Closed => jni_str!("java/lang/IllegalStateException"),
        ErrorKind::StorageFull | ErrorKind::Failure => jni_str!("java/lang/RuntimeException"),
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

#[cfg(test)]
mod tests {
    use super::*;
    use simrelay_core::Error as CoreError;

    fn class(e: JniError) -> String {
        e.java_class().to_str().into_owned()
    }

    #[test]
    fn kinds_pick_the_exception_classes_kotlin_expects() {
        let arg = "java/lang/IllegalArgumentException";
        let state = "java/lang/IllegalStateException";
        let runtime = "java/lang/RuntimeException";
        assert_eq!(class(JniError::bad("x")), arg);
        assert_eq!(class(JniError::Core(CoreError::Invalid("x".into()))), arg);
        assert_eq!(
            class(JniError::Core(CoreError::UnsupportedFormat("x".into()))),
            arg
        );
        assert_eq!(class(JniError::Link(LinkError::BadUrl)), arg);
        assert_eq!(class(JniError::Link(LinkError::BadPin)), arg);
        assert_eq!(class(JniError::Link(LinkError::PinWithoutTls)), arg);
        assert_eq!(class(JniError::BadHandle), state);
        assert_eq!(class(JniError::Closed), state);
        assert_eq!(class(JniError::Core(CoreError::Closed)), state);
        assert_eq!(
            class(JniError::Link(LinkError::Core(CoreError::Closed))),
            state
        );
        assert_eq!(class(JniError::Core(CoreError::StorageFull)), runtime);
        assert_eq!(
            class(JniError::Core(CoreError::Corrupt("x".into()))),
            runtime
        );
        assert_eq!(class(JniError::Link(LinkError::Timeout)), runtime);
        assert_eq!(
            class(JniError::Link(LinkError::Connect("x".into()))),
            runtime
        );
        assert_eq!(class(JniError::Runtime("x".into())), runtime);
    }
}
