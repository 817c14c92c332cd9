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
    #[error("delivery report: {0}")]
    Pdu(#[from] crate::pdu::PduError),
    #[error("delivery report format {0:?} is not parsed by the core")]
    UnsupportedFormat(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("the phone has shut down")]
    Closed,
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
