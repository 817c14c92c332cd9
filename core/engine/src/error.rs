//! The engine's error type. Texts name what failed, never an SMS body or a phone number.

use rusqlite::ErrorCode;

/// Everything an engine call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The disk is full: new work is refused, nothing stored is dropped.
    #[error("storage is full: new work refused, stored work kept")]
    StorageFull,
    #[error("storage: {0}")]
    Store(rusqlite::Error),
    #[error("invalid message: {0}")]
    Invalid(String),
    /// A delivery report or an incoming data SMS the core cannot parse.
    #[error("PDU: {0}")]
    Pdu(#[from] crate::pdu::PduError),
    #[error("PDU format {0:?} is not parsed by the core")]
    UnsupportedFormat(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("the phone has shut down")]
    Closed,
}

/// What a caller can act on, whatever the variant: the FFI maps kinds, not variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The caller's input was refused; nothing changed.
    InvalidInput,
    /// The engine has shut down.
    Closed,
    /// The disk is full: new work is refused, stored work kept.
    StorageFull,
    /// Anything else: storage, stored data, the network, the relay.
    Failure,
}

impl Error {
    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid(_) | Error::Pdu(_) | Error::UnsupportedFormat(_) => {
                ErrorKind::InvalidInput
            }
            Error::Closed => ErrorKind::Closed,
            Error::StorageFull => ErrorKind::StorageFull,
            Error::Store(_) | Error::Corrupt(_) => ErrorKind::Failure,
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => Error::StorageFull,
            _ => Error::Store(e),
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        // The category only: serde_json's text can quote stored values.
        Error::Corrupt(format!("stored JSON ({:?})", e.classify()))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
