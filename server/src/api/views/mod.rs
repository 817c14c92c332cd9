//! What the HTTP API answers, as `Serialize` types: one per shape of docs/protocol.md
//! ("HTTP API"), each made from the store's row or view by one `From` (or one `new`), so the
//! wire format is written here and nowhere else. Lists answer [`Page`] (`super::page`); errors
//! answer `crate::error::ErrorBody`. Handlers name them qualified (`views::Pool`), as several
//! share a name with the store type they are made from.
//!
//! Wire rules kept by these types: times are RFC 3339 UTC with milliseconds ([`Timestamp`],
//! `crate::time_fmt`); an optional field the docs show as `null` is `Option` and serialises as
//! `null`; a field the docs show only when set (a recipient's `error`, `code`, `phone`, `sim`;
//! a key's or webhook's `secret` outside the answer that created it) is left out when unset.
//!
//! - [`messages`]: messages, recipients, received SMS.
//! - [`phones`]: phones, pairing codes, phone removal, pools, SIM settings and figures.
//! - [`admin`]: API keys, accounts, webhooks and their delivery log.

pub mod admin;
pub mod messages;
pub mod phones;

use serde::{Serialize, Serializer};

use crate::store::Millis;
use crate::time_fmt::fmt_ms;

pub use super::page::Page;
pub use admin::{Account, AccountCreated, Attempt, Key, Ping, Redelivery, Webhook};
pub use messages::{HistoryItem, InboxSms, Message, Recipient};
pub use phones::{
    PairingCode, Phone, PhoneRemoval, Pool, PrefixRule, RemovedRecipients, Sim, SimLimits,
    SimReport, SimTotals,
};

/// An instant on the API: Unix milliseconds written as RFC 3339 UTC with milliseconds
/// (`2026-01-01T00:00:00.000Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp(pub Millis);

impl Timestamp {
    /// `Some` instant as a timestamp (`None` serialises as `null`).
    pub fn opt(ms: Option<Millis>) -> Option<Self> {
        ms.map(Self)
    }
}

impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some("RFC 3339 UTC with milliseconds"))
            .examples(["2026-01-01T00:00:00.000Z"])
            .into()
    }
}

impl utoipa::ToSchema for Timestamp {}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&fmt_ms(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timestamp_is_rfc3339_with_milliseconds_and_none_is_null() {
        let v = serde_json::json!({
            "at": Timestamp(1_767_225_600_123),
            "never": Timestamp::opt(None),
        });
        assert_eq!(v["at"], "2026-01-01T00:00:00.123Z");
        assert!(v["never"].is_null());
    }
}
