//! The engine: a sans-IO state machine over the durable store.
//!
//! Every call takes `now` and commits before it returns, so a process kill between any two
//! calls loses nothing. This file holds opening, submission, cancellation, SIMs and views;
//! `dispatch.rs` hands work to the radio, `results.rs` takes the radio's answers and ends
//! deadlines, `outbox.rs` keeps events for the relay and incoming SMS.

use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use simrelay_protocol::{
    Event, MAX_RECIPIENTS, Millis, OutboundMessage, RecipientState, RecipientUpdate, SimInfo,
    is_e164,
};

use crate::config::EngineConfig;
use crate::error::{Error, Result};
use crate::segment;

/// The recipient columns [`recipient_view`] reads, plus the count of parts that left.
macro_rules! recipient_view {
    () => {
        "SELECT message_id, idx, state, attempt, sim, parts, parts_sent,
    parts_delivered, reason, code, deadline, updated_at,
    (SELECT COUNT(*) FROM parts p WHERE p.message_id = recipients.message_id
        AND p.idx = recipients.idx AND p.sent_result = -1)
    FROM recipients"
    };
}

const RECIPIENT_BY_KEY: &str = concat!(recipient_view!(), " WHERE message_id = ?1 AND idx = ?2");

/// Longest text the engine stores (Android refuses more than 255 parts anyway).
pub const MAX_TEXT_CHARS: usize = 10_000;

/// Where a message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// From the relay: the radio may have it only once the relay acknowledged its `queued`
    /// event (so the relay can still route it elsewhere until then).
    Relay,
    /// Submitted on the phone itself: ready at once.
    Local,
}

/// What [`Engine::submit`] did with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Submitted {
    /// Stored (all or some of its recipients were new).
    New,
    /// Already stored with the same content: nothing changed.
    Duplicate,
    /// The id is stored with other content: refused, nothing changed.
    Conflict,
}

/// A SIM as the shell reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {
    pub sub_id: i32,
    pub slot: i32,
    #[serde(default)]
    pub carrier: Option<String>,
    /// Overrides the engine's default pace.
    #[serde(default)]
    pub parts_per_minute: Option<u32>,
    #[serde(default)]
    pub daily_cap: Option<u32>,
}

/// One recipient as stored, for views and tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecipientView {
    pub message_id: String,
    pub idx: u32,
    pub state: RecipientState,
    pub attempt: u32,
    pub sim: Option<i32>,
    pub parts: u32,
    pub parts_sent: u32,
    pub parts_delivered: u32,
    pub reason: Option<String>,
    pub code: Option<i32>,
    pub deadline: Option<Millis>,
    pub updated_at: Millis,
}

/// Counts for the UI and the relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct EngineStatus {
    /// Recipients queued or handed to the radio without a result yet.
    pub queue_depth: u32,
    /// Recipients waiting for delivery reports.
    pub awaiting_reports: u32,
    /// Events not yet acknowledged by the relay.
    pub outbox: u32,
    pub sims: Vec<SimInfo>,
}

/// The phone's core state machine over one SQLite file.
pub struct Engine {
    pub(crate) conn: Connection,
    pub(crate) config: EngineConfig,
    pub(crate) rng: StdRng,
    /// Earliest instant a SIM's pace lets queued work go, as the last dispatch found it.
    pub(crate) pace_wait: Option<Millis>,
    /// Plaintexts of encrypted messages on their way to the radio (memory only).
    pub(crate) plain: crate::dispatch::Plaintexts,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config)
            .finish()
    }
}

impl Engine {
    /// Opens (or creates) the store at `path` and continues where the last process stopped.
    pub fn open(path: &Path, config: EngineConfig) -> Result<Self> {
        Self::with_connection(Connection::open(path)?, config)
    }

    /// A throw-away store, for tests.
    pub fn open_in_memory(config: EngineConfig) -> Result<Self> {
        Self::with_connection(Connection::open_in_memory()?, config)
    }

    fn with_connection(mut conn: Connection, mut config: EngineConfig) -> Result<Self> {
        config.validate().map_err(Error::Invalid)?;
        crate::schema::init(&mut conn)?;
        // Without a seed, one is drawn from the OS: the pacing jitter's offsets (a hash of the
        // slot, the SIM and the seed) then differ between phones and between starts.
        let seed = *config
            .seed
            .get_or_insert_with(|| StdRng::from_os_rng().random());
        let rng = StdRng::seed_from_u64(seed);
        Ok(Self {
            conn,
            config,
            rng,
            pace_wait: None,
            plain: Default::default(),
        })
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub(crate) fn jitter(&mut self) -> f64 {
        self.rng.random_range(0.0..=1.0)
    }

    /// Stores messages in one transaction. A message id is its idempotency key: the same
    /// message again changes nothing; new recipient indexes of a known message are added.
    pub fn submit(
        &mut self,
        messages: &[OutboundMessage],
        origin: Origin,
        now: Millis,
    ) -> Result<Vec<Submitted>> {
        for m in messages {
            validate(m)?;
        }
        let tx = self.conn.transaction()?;
        let mut out = Vec::with_capacity(messages.len());
        for m in messages {
            out.push(insert_message(&tx, &self.config, m, origin, now)?);
        }
        tx.commit()?;
        Ok(out)
    }

    /// Cancels every recipient of `message_id` that has not reached the radio. Returns how
    /// many were cancelled.
    pub fn cancel(&mut self, message_id: &str, now: Millis) -> Result<u32> {
        let tx = self.conn.transaction()?;
        let n = cancel_in(&tx, message_id, None, now)?;
        tx.commit()?;
        Ok(n)
    }

    /// Replaces the SIM list. SIMs not listed stay known (their pacing state is kept) but
    /// take no new work.
    pub fn set_sims(&mut self, sims: &[SimConfig]) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.prepare_cached("UPDATE sims SET active = 0")?
            .execute([])?;
        for s in sims {
            tx.prepare_cached(
                "INSERT INTO sims (sub_id, slot, carrier, parts_per_minute, daily_cap, active)
                 VALUES (?1, ?2, ?3, ?4, ?5, 1)
                 ON CONFLICT(sub_id) DO UPDATE SET slot = ?2, carrier = ?3,
                    parts_per_minute = ?4, daily_cap = ?5, active = 1",
            )?
            .execute(params![
                s.sub_id,
                s.slot,
                s.carrier,
                s.parts_per_minute,
                s.daily_cap
            ])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// One recipient as stored.
    pub fn recipient(&self, message_id: &str, idx: u32) -> Result<Option<RecipientView>> {
        Ok(self
            .conn
            .query_row(RECIPIENT_BY_KEY, params![message_id, idx], recipient_view)
            .optional()?)
    }

    /// Every recipient, in insertion order (tests and tools; not for large stores).
    pub fn recipients(&self) -> Result<Vec<RecipientView>> {
        let mut stmt = self
            .conn
            .prepare(concat!(recipient_view!(), " ORDER BY rowid"))?;
        let rows = stmt.query_map([], recipient_view)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn status(&self, now: Millis) -> Result<EngineStatus> {
        let count = |sql: &str| -> Result<u32> {
            Ok(self.conn.query_row(sql, [], |r| r.get::<_, u32>(0))?)
        };
        let today = now.div_euclid(crate::config::DAY);
        let mut stmt = self.conn.prepare(
            "SELECT sub_id, slot, carrier, parts_per_minute, daily_cap, day, sent_today
             FROM sims WHERE active = 1 ORDER BY slot, sub_id",
        )?;
        let sims = stmt
            .query_map([], |r| {
                let day: i64 = r.get(5)?;
                Ok(SimInfo {
                    sub_id: r.get(0)?,
                    slot: r.get(1)?,
                    carrier: r.get(2)?,
                    parts_per_minute: r
                        .get::<_, Option<u32>>(3)?
                        .unwrap_or(self.config.parts_per_minute),
                    daily_cap: r.get::<_, Option<u32>>(4)?.unwrap_or(self.config.daily_cap),
                    sent_today: if day == today { r.get(6)? } else { 0 },
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(EngineStatus {
            queue_depth: count(
                "SELECT COUNT(*) FROM recipients WHERE state IN ('queued', 'sending')",
            )?,
            awaiting_reports: count(
                "SELECT COUNT(*) FROM recipients WHERE state = 'sent' AND deadline IS NOT NULL",
            )?,
            outbox: count("SELECT COUNT(*) FROM outbox")?,
            sims,
        })
    }
}

/// Checks a message before anything is stored. Texts never quote the message.
pub fn validate(m: &OutboundMessage) -> Result<()> {
    let bad = |s: &str| Err(Error::Invalid(s.to_string()));
    if m.id.is_empty() || m.id.len() > 128 || m.id.chars().any(char::is_control) {
        return bad("id must be 1 to 128 printable characters");
    }
    if m.recipients.is_empty() || m.recipients.len() > MAX_RECIPIENTS {
        return Err(Error::Invalid(format!(
            "recipients must hold 1 to {MAX_RECIPIENTS} entries"
        )));
    }
    // Ciphertexts are checked only for size here: their plaintexts are checked on the way
    // to the radio (`dispatch.rs`), and one that cannot be decrypted ends `decrypt_failed`.
    let max_text = if m.encrypted {
        MAX_CIPHERTEXT_CHARS
    } else {
        MAX_TEXT_CHARS
    };
    if m.text.chars().count() > max_text {
        return bad(if m.encrypted {
            "encrypted text is too long"
        } else {
            "text is longer than 10000 characters"
        });
    }
    if m.data_port == Some(0) {
        return bad("data_port must be 1 to 65535");
    }
    let mut seen = std::collections::HashSet::new();
    for r in &m.recipients {
        if !seen.insert(r.idx) {
            return bad("recipient indexes must be unique");
        }
        if m.encrypted {
            if r.to.is_empty()
                || r.to.len() > MAX_CIPHERTEXT_NUMBER
                || r.to.chars().any(char::is_control)
            {
                return bad("encrypted recipient must be 1 to 256 printable characters");
            }
        } else if !is_e164(&r.to) {
            return bad("recipient is not an E.164 number (+ and 2 to 15 digits)");
        }
    }
    Ok(())
}

/// Longest encrypted text: the ciphertext of [`MAX_TEXT_CHARS`] characters of 4 UTF-8 bytes
/// each, in base64, with the format's prefix and salt.
const MAX_CIPHERTEXT_CHARS: usize = (MAX_TEXT_CHARS * 4 + 16) * 4 / 3 + 100;
/// Longest encrypted number (an E.164 number's ciphertext is 82 characters).
const MAX_CIPHERTEXT_NUMBER: usize = 256;

pub(crate) fn insert_message(
    tx: &Connection,
    config: &EngineConfig,
    m: &OutboundMessage,
    origin: Origin,
    now: Millis,
) -> Result<Submitted> {
    let valid_until = m
        .valid_until
        .unwrap_or(m.schedule_at.unwrap_or(now).max(now) + config.default_validity_ms);
    let stored: Option<(String, i32, Option<i32>, Option<u16>)> = tx
        .prepare_cached("SELECT body, priority, sim, data_port FROM messages WHERE id = ?1")?
        .query_row([&m.id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    match stored {
        Some((body, priority, sim, port))
            if body != m.text || priority != m.priority || sim != m.sim || port != m.data_port =>
        {
            return Ok(Submitted::Conflict);
        }
        Some(_) => {}
        None => {
            tx.prepare_cached(
                "INSERT INTO messages (id, body, priority, valid_until, schedule_at, sim,
                    delivery_report, resend_unknown, created_at, data_port, encrypted)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                m.id,
                m.text,
                m.priority,
                valid_until,
                m.schedule_at,
                m.sim,
                m.delivery_report,
                m.resend_unknown,
                now,
                m.data_port,
                m.encrypted
            ])?;
        }
    }
    // A data SMS is one PDU; its size is checked when it is handed to the radio.
    let parts = match m.data_port {
        Some(_) => 1,
        None => segment::count_parts(&m.text),
    };
    let mut added = false;
    for r in &m.recipients {
        let existing: Option<String> = tx
            .query_row(
                "SELECT dest FROM recipients WHERE message_id = ?1 AND idx = ?2",
                params![m.id, r.idx],
                |row| row.get(0),
            )
            .optional()?;
        match existing {
            Some(dest) if dest != r.to => return Ok(Submitted::Conflict),
            Some(_) => continue,
            None => {}
        }
        tx.prepare_cached(
            "INSERT INTO recipients (message_id, idx, dest, state, priority, next_at, deadline,
                parts, updated_at)
             VALUES (?1, ?2, ?3, 'queued', ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            m.id,
            r.idx,
            r.to,
            m.priority,
            m.schedule_at.unwrap_or(now),
            valid_until,
            parts,
            now
        ])?;
        let seq = emit_recipient(tx, &m.id, r.idx, now)?;
        if origin == Origin::Relay {
            tx.prepare_cached(
                "UPDATE recipients SET accept_seq = ?3 WHERE message_id = ?1 AND idx = ?2",
            )?
            .execute(params![m.id, r.idx, seq as i64])?;
        }
        added = true;
    }
    Ok(if added {
        Submitted::New
    } else {
        Submitted::Duplicate
    })
}

/// Cancels the recipients of `message_id` still queued: those in `only`, or all of them.
pub(crate) fn cancel_in(
    tx: &Connection,
    message_id: &str,
    only: Option<&[u32]>,
    now: Millis,
) -> Result<u32> {
    let mut idxs: Vec<u32> = {
        let mut stmt = tx.prepare_cached(
            "SELECT idx FROM recipients WHERE message_id = ?1 AND state = 'queued' ORDER BY idx",
        )?;
        stmt.query_map([message_id], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?
    };
    idxs.retain(|i| only.is_none_or(|list| list.contains(i)));
    for &idx in &idxs {
        set_state(
            tx,
            message_id,
            idx,
            Change::to(RecipientState::Cancelled).reason("cancelled"),
            now,
        )?;
    }
    Ok(idxs.len() as u32)
}

/// A recipient's next state: what it ends in, why, and until when it may last.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Change<'a> {
    state: RecipientState,
    reason: Option<&'a str>,
    code: Option<i32>,
    /// The end of the new state; `None` for settled states.
    deadline: Option<Millis>,
}

impl<'a> Change<'a> {
    pub(crate) fn to(state: RecipientState) -> Self {
        Self {
            state,
            reason: None,
            code: None,
            deadline: None,
        }
    }

    pub(crate) fn reason(self, reason: &'a str) -> Self {
        Self {
            reason: Some(reason),
            ..self
        }
    }

    pub(crate) fn code(self, code: i32) -> Self {
        Self {
            code: Some(code),
            ..self
        }
    }

    pub(crate) fn code_opt(self, code: Option<i32>) -> Self {
        Self { code, ..self }
    }

    pub(crate) fn until_opt(self, deadline: Option<Millis>) -> Self {
        Self { deadline, ..self }
    }
}

/// Moves a recipient to a new state and records the event.
pub(crate) fn set_state(
    tx: &Connection,
    message_id: &str,
    idx: u32,
    change: Change<'_>,
    now: Millis,
) -> Result<()> {
    tx.prepare_cached(
        "UPDATE recipients SET state = ?3, reason = ?4, code = ?5, deadline = ?6, updated_at = ?7
         WHERE message_id = ?1 AND idx = ?2",
    )?
    .execute(params![
        message_id,
        idx,
        change.state.as_str(),
        change.reason,
        change.code,
        change.deadline,
        now
    ])?;
    emit_recipient(tx, message_id, idx, now)?;
    Ok(())
}

/// Appends the recipient's current state to the outbox; returns the event's seq.
pub(crate) fn emit_recipient(
    tx: &Connection,
    message_id: &str,
    idx: u32,
    now: Millis,
) -> Result<u64> {
    let (view, ok_parts) = tx
        .prepare_cached(RECIPIENT_BY_KEY)?
        .query_row(params![message_id, idx], |r| {
            Ok((recipient_view(r)?, r.get::<_, u32>(12)?))
        })?;
    let unsent = view.state == RecipientState::Failed
        && view.parts_sent == 0
        && ok_parts == 0
        && (view.code.is_some_and(crate::codes::is_sim_bound)
            || view
                .reason
                .as_deref()
                .is_some_and(crate::dispatch::is_unsent_reason));
    let event = Event::Recipient(RecipientUpdate {
        message_id: view.message_id,
        idx: view.idx,
        state: view.state,
        at: now,
        reason: view.reason,
        code: view.code,
        sim: view.sim,
        parts: view.parts,
        parts_sent: view.parts_sent,
        parts_delivered: view.parts_delivered,
        unsent,
    });
    crate::outbox::push(tx, &event)
}

fn recipient_view(r: &rusqlite::Row<'_>) -> rusqlite::Result<RecipientView> {
    let state: String = r.get(2)?;
    Ok(RecipientView {
        message_id: r.get(0)?,
        idx: r.get(1)?,
        state: RecipientState::parse(&state).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                2,
                rusqlite::types::Type::Text,
                format!("unknown recipient state {state:?}").into(),
            )
        })?,
        attempt: r.get(3)?,
        sim: r.get(4)?,
        parts: r.get(5)?,
        parts_sent: r.get(6)?,
        parts_delivered: r.get(7)?,
        reason: r.get(8)?,
        code: r.get(9)?,
        deadline: r.get(10)?,
        updated_at: r.get(11)?,
    })
}
