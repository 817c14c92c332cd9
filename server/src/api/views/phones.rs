//! Phones (`/v1/phones`, `/v1/pairing-codes`), pools (`/v1/pools`) and SIMs (`/v1/sims`) as
//! the API answers them.

use serde::Serialize;
use simrelay_protocol::SimInfo;

use super::Timestamp;
use crate::pool_router::SimKey;
use crate::rack::SimStat;
use crate::store::PhoneRow;
use crate::store::Removal;
use crate::store::{self, SimSettings};

/// A phone of `GET /v1/phones`; what it reported (`sims`, `queue_depth`, ...) is empty or
/// `null` until it first connects.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Phone {
    pub id: String,
    pub name: Option<String>,
    /// Whether its link is up now (on this relay).
    pub online: bool,
    pub last_seen: Option<Timestamp>,
    pub sims: Vec<SimInfo>,
    /// What the phone reports.
    pub queue_depth: Option<u32>,
    /// Recipients routed to it that have not reached its radio.
    pub outstanding: u32,
    pub battery: Option<u8>,
    pub charging: Option<bool>,
    pub app_version: Option<String>,
    pub created_at: Timestamp,
}

impl Phone {
    /// The phone's row and whether its link is up.
    pub fn new(p: PhoneRow, online: bool) -> Self {
        let status = p.status;
        Self {
            id: p.id,
            name: p.name,
            online,
            last_seen: Timestamp::opt(p.last_seen),
            queue_depth: status.as_ref().map(|s| s.queue_depth),
            battery: status.as_ref().and_then(|s| s.battery),
            charging: status.as_ref().and_then(|s| s.charging),
            app_version: status.as_ref().map(|s| s.app_version.clone()),
            sims: status.map(|s| s.sims).unwrap_or_default(),
            outstanding: p.outstanding,
            created_at: Timestamp(p.created_at),
        }
    }
}

/// `POST /v1/pairing-codes` (201).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PairingCode {
    pub code: String,
    pub expires_at: Timestamp,
    /// The base URL of the core's `LinkConfig.url`.
    pub ws_url: String,
    /// `ws_url` and the link path.
    pub link_url: String,
    /// SHA-256 of the relay's certificate, `null` without TLS.
    pub tls_fingerprint: Option<String>,
}

/// `DELETE /v1/phones/{id}` (200).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PhoneRemoval {
    pub id: String,
    pub removed_at: Timestamp,
    pub recipients: RemovedRecipients,
}

/// What removing a phone did to its recipients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RemovedRecipients {
    pub rerouted: u32,
    pub failed: u32,
    pub cancelled: u32,
    pub unknown: u32,
}

impl From<Removal> for RemovedRecipients {
    fn from(r: Removal) -> Self {
        Self {
            rerouted: r.rerouted,
            failed: r.failed,
            cancelled: r.cancelled,
            unknown: r.unknown,
        }
    }
}

/// A SIM named by phone and sub_id (pool members and prefix rules).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Sim {
    pub phone: String,
    pub sub_id: i32,
}

impl From<SimKey> for Sim {
    fn from(k: SimKey) -> Self {
        Self {
            phone: k.phone,
            sub_id: k.sub_id,
        }
    }
}

/// A pool: `POST /v1/pools` (201) and `GET /v1/pools` items.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Pool {
    pub name: String,
    pub members: Vec<Sim>,
    pub prefixes: Vec<PrefixRule>,
    pub sticky: bool,
    pub created_at: Timestamp,
}

/// SIMs of a pool preferred for destinations starting with `prefix`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PrefixRule {
    pub prefix: String,
    pub sims: Vec<Sim>,
}

fn sims(keys: Vec<SimKey>) -> Vec<Sim> {
    keys.into_iter().map(Sim::from).collect()
}

impl From<store::Pool> for Pool {
    fn from(p: store::Pool) -> Self {
        Self {
            name: p.name,
            members: sims(p.members),
            prefixes: p
                .prefixes
                .into_iter()
                .map(|(prefix, s)| PrefixRule {
                    prefix,
                    sims: sims(s),
                })
                .collect(),
            sticky: p.sticky,
            created_at: Timestamp(p.created_at),
        }
    }
}

/// A SIM's relay-side limits: `PATCH /v1/sims/{phone}/{sub_id}` (200).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SimLimits {
    pub phone: String,
    pub sub_id: i32,
    pub daily_cap: Option<u32>,
    /// `"HH:MM-HH:MM"`, local time.
    pub hours: Option<String>,
    pub utc_offset_min: i16,
}

impl SimLimits {
    pub fn new(key: SimKey, s: SimSettings) -> Self {
        Self {
            phone: key.phone,
            sub_id: key.sub_id,
            daily_cap: s.daily_cap,
            hours: s.hours,
            utc_offset_min: s.utc_offset_min,
        }
    }
}

/// `GET /v1/sims` (no `name`) and `GET /v1/pools/{name}/stats`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SimReport {
    /// The pool's name (only for a pool's stats).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub sims: Vec<SimStat>,
    pub totals: SimTotals,
}

/// The totals of a [`SimReport`]; paces and parts saturate at `u32::MAX`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SimTotals {
    pub sims: usize,
    /// Online and healthy.
    pub usable_sims: usize,
    /// The usable SIMs' pace.
    pub parts_per_minute: u32,
    pub queue_parts: u32,
    /// Not routed yet.
    pub waiting_recipients: u32,
    pub waiting_parts: u32,
    pub throughput_per_min: f64,
    pub pace_utilisation: f64,
    /// Time to drain what is queued and waiting at the usable pace; `null` when nothing can.
    pub drain_seconds: Option<f64>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use simrelay_protocol::PhoneStatus;

    use super::*;

    const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00.000Z

    /// docs/protocol.md, `GET /v1/phones`: a phone that never connected.
    #[test]
    fn a_phone_that_never_reported_has_nulls_and_no_sims() {
        let row = PhoneRow {
            id: "p1".into(),
            name: None,
            status: None,
            last_seen: None,
            created_at: T0,
            outstanding: 0,
        };
        let got = serde_json::to_value(Phone::new(row, false)).expect("serialises");
        let want = json!({
            "id": "p1", "name": null, "online": false, "last_seen": null, "sims": [],
            "queue_depth": null, "outstanding": 0, "battery": null, "charging": null,
            "app_version": null, "created_at": "2026-01-01T00:00:00.000Z",
        });
        assert_eq!(got, want);
    }

    #[test]
    fn a_phone_shows_what_it_reported() {
        let sim = SimInfo {
            sub_id: 1,
            slot: 0,
            carrier: None,
            parts_per_minute: 6,
            daily_cap: 100,
            sent_today: 2,
        };
        let row = PhoneRow {
            id: "p1".into(),
            name: Some("rack 1".into()),
            status: Some(PhoneStatus {
                sims: vec![sim],
                queue_depth: 3,
                battery: Some(80),
                charging: None,
                app_version: "1.2".into(),
            }),
            last_seen: Some(T0 + 1),
            created_at: T0,
            outstanding: 4,
        };
        let got = serde_json::to_value(Phone::new(row, true)).expect("serialises");
        assert_eq!(got["online"], true);
        assert_eq!(got["last_seen"], "2026-01-01T00:00:00.001Z");
        assert_eq!(
            got["sims"],
            json!([{"sub_id": 1, "slot": 0, "parts_per_minute": 6, "daily_cap": 100,
                    "sent_today": 2}])
        );
        assert_eq!(
            (&got["queue_depth"], &got["outstanding"]),
            (&json!(3), &json!(4))
        );
        assert_eq!(
            (&got["battery"], &got["charging"]),
            (&json!(80), &json!(null))
        );
        assert_eq!(got["app_version"], "1.2");
    }

    #[test]
    fn a_removal_and_a_pairing_code_have_the_documented_shapes() {
        let removal = PhoneRemoval {
            id: "p1".into(),
            removed_at: Timestamp(T0),
            recipients: Removal {
                rerouted: 1,
                failed: 2,
                cancelled: 3,
                unknown: 4,
            }
            .into(),
        };
        assert_eq!(
            serde_json::to_value(removal).expect("serialises"),
            json!({"id": "p1", "removed_at": "2026-01-01T00:00:00.000Z",
                   "recipients": {"rerouted": 1, "failed": 2, "cancelled": 3, "unknown": 4}})
        );
        let code = PairingCode {
            code: "7KQ3M9XD".into(),
            expires_at: Timestamp(T0),
            ws_url: "wss://relay.example:8443".into(),
            link_url: "wss://relay.example:8443/v1/link".into(),
            tls_fingerprint: None,
        };
        assert_eq!(
            serde_json::to_value(code).expect("serialises"),
            json!({"code": "7KQ3M9XD", "expires_at": "2026-01-01T00:00:00.000Z",
                   "ws_url": "wss://relay.example:8443",
                   "link_url": "wss://relay.example:8443/v1/link", "tls_fingerprint": null})
        );
    }

    /// docs/protocol.md, `POST /v1/pools`.
    #[test]
    fn a_pool_has_the_documented_shape() {
        let pool = store::Pool {
            name: "eu-rack".into(),
            members: vec![SimKey::new("p1", 1), SimKey::new("p1", 2)],
            prefixes: vec![("+44".into(), vec![SimKey::new("p1", 2)])],
            sticky: false,
            created_at: T0,
        };
        assert_eq!(
            serde_json::to_value(Pool::from(pool)).expect("serialises"),
            json!({"name": "eu-rack",
                   "members": [{"phone": "p1", "sub_id": 1}, {"phone": "p1", "sub_id": 2}],
                   "prefixes": [{"prefix": "+44", "sims": [{"phone": "p1", "sub_id": 2}]}],
                   "sticky": false, "created_at": "2026-01-01T00:00:00.000Z"})
        );
    }

    #[test]
    fn sim_limits_and_totals_have_the_documented_shapes() {
        let settings = SimSettings {
            daily_cap: Some(300),
            hours: None,
            utc_offset_min: 60,
        };
        assert_eq!(
            serde_json::to_value(SimLimits::new(SimKey::new("p1", 1), settings))
                .expect("serialises"),
            json!({"phone": "p1", "sub_id": 1, "daily_cap": 300, "hours": null,
                   "utc_offset_min": 60})
        );
        let report = SimReport {
            name: None,
            sims: vec![],
            totals: SimTotals {
                sims: 0,
                usable_sims: 0,
                parts_per_minute: 0,
                queue_parts: 0,
                waiting_recipients: 2,
                waiting_parts: 3,
                throughput_per_min: 0.0,
                pace_utilisation: 0.0,
                drain_seconds: None,
            },
        };
        let got = serde_json::to_value(&report).expect("serialises");
        assert_eq!(
            got,
            json!({"sims": [], "totals": {"sims": 0, "usable_sims": 0, "parts_per_minute": 0,
                   "queue_parts": 0, "waiting_recipients": 2, "waiting_parts": 3,
                   "throughput_per_min": 0.0, "pace_utilisation": 0.0,
                   "drain_seconds": null}})
        );
        let named = SimReport {
            name: Some("eu".into()),
            ..report
        };
        assert_eq!(
            serde_json::to_value(&named).expect("serialises")["name"],
            "eu"
        );
    }
}
