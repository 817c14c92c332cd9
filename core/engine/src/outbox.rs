//! The durable event outbox, the relay's frames, and incoming SMS.
//!
//! Every state change appends an event with a growing sequence number in the same
//! transaction as the change. Events stay until the relay acknowledges them; the link resends
//! everything after the relay's last acknowledgement on every reconnect. Frames from the
//! relay are applied at most once by their own sequence number (`relay_seq`). Incoming SMS get
//! an id derived from what Android re-broadcasts identically (subscription, sender, service
//! centre time, body), so a re-broadcast after a reboot is recognised and keeps its id.

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};
use simrelay_protocol::{
    Event, IncomingSms, Millis, OutboundMessage, RecipientState, RecipientUpdate, RelayFrame,
};

use crate::config::EngineConfig;
use crate::e2e;
use crate::engine::{Engine, Origin, Submitted, cancel_in};
use crate::error::{Error, Result};

/// A relay frame that changes the engine's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayOp {
    Send {
        seq: u64,
        message: OutboundMessage,
    },
    /// `recipients`: the indexes to cancel; `None`, all of the message.
    Cancel {
        seq: u64,
        message_id: String,
        recipients: Option<Vec<u32>>,
    },
}

impl RelayOp {
    /// The op a `send` or `cancel` frame carries; `None` for the other frames.
    pub fn from_frame(frame: RelayFrame) -> Option<Self> {
        match frame {
            RelayFrame::Send { seq, message } => Some(Self::Send { seq, message }),
            RelayFrame::Cancel {
                seq,
                message_id,
                recipients,
            } => Some(Self::Cancel {
                seq,
                message_id,
                recipients,
            }),
            _ => None,
        }
    }

    pub fn seq(&self) -> u64 {
        match self {
            Self::Send { seq, .. } | Self::Cancel { seq, .. } => *seq,
        }
    }
}

/// Longest incoming body and sender kept (Android hands over reassembled texts).
const MAX_INCOMING_CHARS: usize = 50_000;

pub(crate) fn push(tx: &Connection, event: &Event) -> Result<u64> {
    let json = serde_json::to_string(event)?;
    tx.prepare_cached("INSERT INTO outbox (event) VALUES (?1)")?
        .execute([json])?;
    Ok(tx.last_insert_rowid() as u64)
}

fn meta_u64(conn: &Connection, key: &str) -> Result<u64> {
    let v: Option<String> = conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?;
    v.map_or(Ok(0), |s| {
        s.parse()
            .map_err(|_| Error::Corrupt(format!("meta {key} is not a number")))
    })
}

fn set_meta(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = ?2",
    )?
    .execute(params![key, value])?;
    Ok(())
}

/// Highest event seq the relay has acknowledged.
pub(crate) fn acked_in(conn: &Connection) -> Result<u64> {
    meta_u64(conn, "acked_seq")
}

impl Engine {
    /// Events after `after`, oldest first, at most `limit`.
    pub fn events_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, Event)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT seq, event FROM outbox WHERE seq > ?1 ORDER BY seq LIMIT ?2")?;
        let rows = stmt.query_map(params![after as i64, limit as i64], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, json) = row?;
            out.push((seq, serde_json::from_str(&json)?));
        }
        Ok(out)
    }

    /// The relay has stored every event up to `seq`: drop them, and let recipients whose
    /// acceptance is now acknowledged go to the radio.
    pub fn ack_events(&mut self, seq: u64) -> Result<()> {
        let tx = self.conn.transaction()?;
        let last = tx
            .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM outbox")?
            .query_row([], |r| r.get::<_, i64>(0))? as u64;
        let acked = acked_in(&tx)?;
        // Never beyond what exists: a confused relay must not unlock unsent acceptances.
        let seq = seq.min(last.max(acked));
        if seq > acked {
            log::debug!("events acked {seq}");
            set_meta(&tx, "acked_seq", &seq.to_string())?;
            tx.prepare_cached("DELETE FROM outbox WHERE seq <= ?1")?
                .execute([seq as i64])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The seq of the newest event (0 when none was ever written): a change tells that a call
    /// appended events.
    pub(crate) fn last_event_seq(&self) -> Result<u64> {
        let seq: Option<i64> = self
            .conn
            .prepare_cached("SELECT MAX(seq) FROM outbox")?
            .query_row([], |r| r.get(0))?;
        match seq {
            Some(seq) => Ok(seq as u64),
            // Everything was acknowledged and dropped: the newest seq is the acknowledged one.
            None => acked_in(&self.conn),
        }
    }

    pub fn acked_seq(&self) -> Result<u64> {
        acked_in(&self.conn)
    }

    /// Highest relay frame seq applied.
    pub fn relay_seq(&self) -> Result<u64> {
        meta_u64(&self.conn, "relay_seq")
    }

    /// Applies relay frames in one transaction, skipping those already applied. Returns
    /// the relay seq now applied (what the link acknowledges).
    pub fn apply_relay(&mut self, ops: &[RelayOp], now: Millis) -> Result<u64> {
        let config = self.config.clone();
        let tx = self.conn.transaction()?;
        let mut applied = meta_u64(&tx, "relay_seq")?;
        for op in ops {
            if op.seq() <= applied {
                continue;
            }
            log::debug!(
                "relay op {:?}",
                match op {
                    RelayOp::Send { seq, message } => format!("send {seq} {}", message.id),
                    RelayOp::Cancel {
                        seq,
                        message_id,
                        recipients,
                    } => format!("cancel {seq} {message_id} {recipients:?}"),
                }
            );
            match op {
                RelayOp::Send { message, .. } => {
                    // A message this phone refuses is reported failed, never silently dropped.
                    let stored = match crate::engine::validate(message) {
                        Ok(()) => crate::engine::insert_message(
                            &tx,
                            &config,
                            message,
                            Origin::Relay,
                            now,
                        )?,
                        Err(e) => {
                            log::warn!("relay sent an invalid message: {e}");
                            Submitted::Conflict
                        }
                    };
                    if stored == Submitted::Conflict {
                        reject(&tx, message, now)?;
                    }
                }
                RelayOp::Cancel {
                    message_id,
                    recipients,
                    ..
                } => {
                    cancel_in(&tx, message_id, recipients.as_deref(), now)?;
                }
            }
            applied = op.seq();
        }
        set_meta(&tx, "relay_seq", &applied.to_string())?;
        tx.commit()?;
        Ok(applied)
    }

    /// Stores an incoming SMS once; a re-broadcast returns the same id and adds nothing.
    pub fn on_incoming(
        &mut self,
        sim: Option<i32>,
        from: &str,
        text: &str,
        sent_at: Option<Millis>,
        now: Millis,
    ) -> Result<String> {
        let tx = self.conn.transaction()?;
        let sms = Received {
            sim,
            from,
            text,
            sent_at,
            data_port: None,
        };
        let id = incoming_in(&tx, &self.config, sms, now)?;
        tx.commit()?;
        Ok(id)
    }

    /// A stored value of the shell (e.g. the link settings).
    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                [format!("setting.{key}")],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn set_setting(&mut self, key: &str, value: &str) -> Result<()> {
        set_meta(&self.conn, &format!("setting.{key}"), value)
    }
}

/// Reports every recipient of a refused relay message as failed (without storing it), so
/// the relay never waits for an acceptance that cannot come.
fn reject(tx: &Connection, message: &OutboundMessage, now: Millis) -> Result<()> {
    for r in &message.recipients {
        let stored: bool = tx
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM recipients WHERE message_id = ?1 AND idx = ?2)",
            )?
            .query_row(params![message.id, r.idx], |row| row.get(0))?;
        if stored {
            continue;
        }
        push(
            tx,
            &Event::Recipient(RecipientUpdate {
                message_id: message.id.clone(),
                idx: r.idx,
                state: RecipientState::Failed,
                at: now,
                reason: Some("rejected_by_phone".into()),
                code: None,
                sim: None,
                parts: 0,
                parts_sent: 0,
                parts_delivered: 0,
                unsent: true,
            }),
        )?;
    }
    Ok(())
}

/// Stable id of an incoming SMS.
pub fn incoming_id(sim: Option<i32>, from: &str, text: &str, sent_at: Millis) -> String {
    let mut h = Sha256::new();
    h.update(sim.map_or(String::new(), |s| s.to_string()));
    h.update([0]);
    h.update(from);
    h.update([0]);
    h.update(sent_at.to_be_bytes());
    h.update(text);
    format!("in_{}", &hex::encode(h.finalize())[..24])
}

/// The sender stored for an incoming SMS that arrived without one.
pub const UNKNOWN_SENDER: &str = "unknown";

/// An SMS as the radio delivered it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Received<'a> {
    pub sim: Option<i32>,
    pub from: &'a str,
    pub text: &'a str,
    pub sent_at: Option<Millis>,
    /// A data SMS to this port (`text` is then its payload in base64).
    pub data_port: Option<u16>,
}

/// Stores an incoming SMS inside the caller's transaction; returns its stable id. A data SMS
/// (`data_port`) has its payload in base64 as `text`. With a passphrase set, the event carries
/// `from` and `text` encrypted (the store on the phone keeps them as they came, for the id
/// and deduplication).
pub(crate) fn incoming_in(
    tx: &Connection,
    config: &EngineConfig,
    sms: Received<'_>,
    now: Millis,
) -> Result<String> {
    let Received {
        sim,
        from,
        text,
        sent_at,
        data_port,
    } = sms;
    // Some networks deliver SMS without an originating address (or an alphanumeric one,
    // kept as is): stored under a placeholder, never dropped.
    let from = if from.trim().is_empty() {
        UNKNOWN_SENDER
    } else {
        from
    };
    if from.chars().count() > 64 {
        return Err(Error::Invalid(
            "sender must be at most 64 characters".into(),
        ));
    }
    if text.chars().count() > MAX_INCOMING_CHARS {
        return Err(Error::Invalid("incoming text is too long".into()));
    }
    let id = incoming_id(sim, from, text, sent_at.unwrap_or(now));
    let inserted = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO incoming (id, sim, sender, body, sent_at, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![id, sim, from, text, sent_at, now])?;
    if inserted == 1 {
        let (from, text, encrypted) = match &config.passphrase {
            Some(p) => (
                e2e::encrypt(p.expose(), from, config.e2e_iterations),
                e2e::encrypt(p.expose(), text, config.e2e_iterations),
                true,
            ),
            None => (from.to_string(), text.to_string(), false),
        };
        push(
            tx,
            &Event::Incoming(IncomingSms {
                id: id.clone(),
                sim,
                from,
                text,
                sent_at,
                received_at: now,
                encrypted,
                data_port,
            }),
        )?;
    }
    Ok(id)
}
