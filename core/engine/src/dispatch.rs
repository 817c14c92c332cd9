//! Handing queued recipients to the radio: order (priority, then arrival), validity,
//! schedule time, relay acceptance, SIM choice and per-SIM pace. A recipient is marked
//! `sending` durably *before* its command is returned, so a crash can never hand it over
//! twice: at worst it is handed over zero times and ends `unknown`.

use std::collections::HashMap;

use rusqlite::{Connection, params};
use simrelay_protocol::{Millis, RecipientState, is_e164};

use crate::config::{EXPEDITED_PRIORITY, EngineConfig};
use crate::e2e;
use crate::engine::MAX_TEXT_CHARS;
use crate::engine::{Change, Engine, emit_recipient, set_state};
use crate::error::Result;
use crate::modem::{DataSms, SendCommand};
use crate::pacing::{SimPace, Wait};

/// Rows looked at per dispatch; the rest wait for the next call.
const SCAN: i64 = 512;

struct Candidate {
    message_id: String,
    idx: u32,
    dest: String,
    parts: u32,
    attempt: u32,
    body: String,
    sim: Option<i32>,
    priority: i32,
    delivery_report: bool,
    valid_until: Millis,
    data_port: Option<u16>,
    encrypted: bool,
}

impl Engine {
    /// Commands for the radio that are due at `now`, already recorded as handed over.
    pub fn due(&mut self, now: Millis) -> Result<Vec<SendCommand>> {
        // Split borrows: the transaction holds the connection while the config is read.
        let Engine {
            conn,
            config,
            plain,
            ..
        } = self;
        let tx = conn.transaction()?;
        let acked = crate::outbox::acked_in(&tx)?;
        let mut sims = load_sims(&tx, config)?;
        let candidates = candidates(&tx, now, acked)?;
        let mut out = Vec::new();
        let mut wait: Option<Millis> = None;
        for c in candidates {
            if c.valid_until <= now {
                set_state(
                    &tx,
                    &c.message_id,
                    c.idx,
                    Change::to(RecipientState::Expired).reason("valid_until"),
                    now,
                )?;
                continue;
            }
            // A plaintext data SMS is checked at once; an encrypted one once decrypted.
            let mut data = None;
            if let (false, Some(port)) = (c.encrypted, c.data_port) {
                match DataSms::decode(port, &c.body) {
                    Ok(d) => data = Some(d),
                    Err(refusal) => {
                        // Any phone would refuse it: failed here, never handed to a radio.
                        let failed = Change::to(RecipientState::Failed).reason(refusal.reason());
                        set_state(&tx, &c.message_id, c.idx, failed, now)?;
                        continue;
                    }
                }
            }
            let expedited = c.priority >= EXPEDITED_PRIORITY;
            let mut best = pick(&mut sims, c.sim, c.parts, expedited, now, config, &mut wait);
            let mut parts = c.parts;
            // An encrypted recipient is decrypted only once a SIM could take it (by the
            // parts of its ciphertext), then picked again by the parts of its plaintext.
            let (to, text) = if c.encrypted && best.is_some() {
                match plaintext(plain, config, &c) {
                    Ok((number, body)) if c.data_port.is_some() => {
                        let port = c.data_port.expect("a data SMS");
                        match DataSms::decode(port, &body) {
                            Ok(d) => data = Some(d),
                            Err(refusal) => {
                                let failed =
                                    Change::to(RecipientState::Failed).reason(refusal.reason());
                                set_state(&tx, &c.message_id, c.idx, failed, now)?;
                                continue;
                            }
                        }
                        (number, body)
                    }
                    Ok((number, body)) => {
                        parts = crate::segment::count_parts(&body);
                        if parts != c.parts {
                            tx.prepare_cached(
                                "UPDATE recipients SET parts = ?3
                                 WHERE message_id = ?1 AND idx = ?2",
                            )?
                            .execute(params![
                                c.message_id,
                                c.idx,
                                parts
                            ])?;
                            best = pick(&mut sims, c.sim, parts, expedited, now, config, &mut wait);
                        }
                        (number, body)
                    }
                    Err(reason) => {
                        set_state(
                            &tx,
                            &c.message_id,
                            c.idx,
                            Change::to(RecipientState::Failed).reason(reason),
                            now,
                        )?;
                        continue;
                    }
                }
            } else {
                (c.dest, c.body)
            };
            let Some(i) = best else {
                if sims.iter().all(|s| s.next_free_at > now) {
                    break;
                }
                continue;
            };
            if c.encrypted {
                plain.numbers.remove(&(c.message_id.clone(), c.idx));
            }
            let sim = &mut sims[i];
            sim.charge(parts, expedited, now, config);
            let attempt = c.attempt + 1;
            tx.prepare_cached(
                "UPDATE recipients SET state = 'sending', attempt = ?3, sim = ?4,
                    parts_sent = 0, parts_delivered = 0, reason = NULL, code = NULL,
                    deadline = ?5, updated_at = ?6
                 WHERE message_id = ?1 AND idx = ?2",
            )?
            .execute(params![
                c.message_id,
                c.idx,
                attempt,
                sim.sub_id,
                now + config.sent_timeout_ms,
                now
            ])?;
            emit_recipient(&tx, &c.message_id, c.idx, now)?;
            log::debug!(
                "to radio {} {} attempt {attempt} acked {acked}",
                c.message_id,
                c.idx
            );
            out.push(SendCommand {
                message_id: c.message_id,
                idx: c.idx,
                attempt,
                sim: sim.sub_id,
                to,
                text: if data.is_some() { String::new() } else { text },
                parts,
                delivery_report: c.delivery_report,
                data,
            });
        }
        if !out.is_empty() {
            store_sims(&tx, &sims)?;
        }
        tx.commit()?;
        self.pace_wait = wait;
        Ok(out)
    }

    /// When the engine next has something to do on its own (a send, a retry, a deadline),
    /// assuming nothing arrives before. `None`: nothing until an input arrives.
    pub fn next_wakeup(&self, now: Millis) -> Result<Option<Millis>> {
        let acked = crate::outbox::acked_in(&self.conn)?;
        let deadline: Option<Millis> = self
            .conn
            .prepare_cached("SELECT MIN(deadline) FROM recipients WHERE deadline IS NOT NULL")?
            .query_row([], |r| r.get(0))?;
        let ready: Option<Millis> = self
            .conn
            .prepare_cached(
                "SELECT MIN(next_at) FROM recipients
                 WHERE state = 'queued' AND (accept_seq IS NULL OR accept_seq <= ?1)",
            )?
            .query_row([acked as i64], |r| r.get(0))?;
        let has_sims: bool = self
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM sims WHERE active = 1)")?
            .query_row([], |r| r.get(0))?;
        let send = match ready {
            Some(t) if t > now => Some(t),
            // Due now but the last dispatch left it queued: the pace decides.
            Some(_) if has_sims => Some(self.pace_wait.unwrap_or(now).max(now)),
            _ => None,
        };
        Ok([deadline, send].into_iter().flatten().min())
    }
}

/// The SIM idle the longest among those (`only` this one, if named) with pace left for
/// `parts` parts; records in `wait` when the others free up.
fn pick(
    sims: &mut [SimPace],
    only: Option<i32>,
    parts: u32,
    expedited: bool,
    now: Millis,
    config: &EngineConfig,
    wait: &mut Option<Millis>,
) -> Option<usize> {
    let mut best: Option<(usize, Millis)> = None;
    for (i, s) in sims.iter_mut().enumerate() {
        if only.is_some_and(|want| want != s.sub_id) {
            continue;
        }
        match s.check(parts, expedited, now, config) {
            Ok(()) if best.is_none_or(|(_, t)| s.next_free_at < t) => {
                best = Some((i, s.next_free_at));
            }
            Ok(()) => {}
            Err(Wait::Until(t)) => *wait = Some(wait.map_or(t, |w| w.min(t))),
        }
    }
    best.map(|(i, _)| i)
}

/// Why a recipient that never reached the radio failed, when another phone may still send it.
const DECRYPT_FAILED: &str = "decrypt_failed";
const REJECTED_BY_PHONE: &str = "rejected_by_phone";

/// Whether a `failed` reason means "not sent by this phone" (so the event says `unsent`).
pub(crate) fn is_unsent_reason(reason: &str) -> bool {
    reason == DECRYPT_FAILED || reason == REJECTED_BY_PHONE
}

/// Plaintexts of encrypted messages, in memory only: a text decrypted for one recipient serves
/// the others, and a number decrypted for a hand-over the pace then refused serves the next
/// try (each value costs a key derivation). Bounded: emptied when full.
#[derive(Default)]
pub(crate) struct Plaintexts {
    texts: HashMap<String, Option<String>>,
    numbers: HashMap<(String, u32), String>,
}

const PLAINTEXTS_MAX: usize = 256;

/// The recipient's number and the message's text in plaintext, checked like a plaintext
/// message's; else the reason it fails with.
fn plaintext(
    plain: &mut Plaintexts,
    config: &EngineConfig,
    c: &Candidate,
) -> std::result::Result<(String, String), &'static str> {
    let Some(passphrase) = &config.passphrase else {
        log::warn!(
            "encrypted message {} but no passphrase is set",
            c.message_id
        );
        return Err(DECRYPT_FAILED);
    };
    let decrypt = |value: &str, what: &str| match e2e::decrypt(passphrase.expose(), value) {
        Ok(v) => Some(v),
        Err(e) => {
            log::warn!("message {}: cannot decrypt its {what}: {e}", c.message_id);
            None
        }
    };
    if plain.texts.len() >= PLAINTEXTS_MAX || plain.numbers.len() >= PLAINTEXTS_MAX {
        *plain = Plaintexts::default();
    }
    let text = plain
        .texts
        .entry(c.message_id.clone())
        .or_insert_with(|| decrypt(&c.body, "text"))
        .clone()
        .ok_or(DECRYPT_FAILED)?;
    let key = (c.message_id.clone(), c.idx);
    let number = match plain.numbers.get(&key) {
        Some(n) => n.clone(),
        None => {
            let n = decrypt(&c.dest, "recipient").ok_or(DECRYPT_FAILED)?;
            plain.numbers.insert(key, n.clone());
            n
        }
    };
    if !is_e164(&number) || text.chars().count() > MAX_TEXT_CHARS {
        log::warn!(
            "message {}: decrypted recipient or text is invalid",
            c.message_id
        );
        return Err(REJECTED_BY_PHONE);
    }
    log::debug!("message {} recipient {} decrypted", c.message_id, c.idx);
    Ok((number, text))
}

fn candidates(tx: &Connection, now: Millis, acked: u64) -> Result<Vec<Candidate>> {
    let mut stmt = tx.prepare_cached(
        "SELECT r.message_id, r.idx, r.dest, r.parts, r.attempt, m.body, m.sim, r.priority,
                m.delivery_report, m.valid_until, m.data_port, m.encrypted
         FROM recipients r JOIN messages m ON m.id = r.message_id
         WHERE r.state = 'queued' AND r.next_at <= ?1
           AND (r.accept_seq IS NULL OR r.accept_seq <= ?2)
         ORDER BY r.priority DESC, r.rowid
         LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![now, acked as i64, SCAN], |r| {
        Ok(Candidate {
            message_id: r.get(0)?,
            idx: r.get(1)?,
            dest: r.get(2)?,
            parts: r.get(3)?,
            attempt: r.get(4)?,
            body: r.get(5)?,
            sim: r.get(6)?,
            priority: r.get(7)?,
            delivery_report: r.get(8)?,
            valid_until: r.get(9)?,
            data_port: r.get(10)?,
            encrypted: r.get(11)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn load_sims(tx: &Connection, config: &EngineConfig) -> Result<Vec<SimPace>> {
    let mut stmt = tx.prepare_cached(
        "SELECT sub_id, parts_per_minute, daily_cap, next_free_at, day, sent_today,
                expedited_today
         FROM sims WHERE active = 1 ORDER BY sub_id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(SimPace {
            sub_id: r.get(0)?,
            parts_per_minute: r
                .get::<_, Option<u32>>(1)?
                .unwrap_or(config.parts_per_minute),
            daily_cap: r.get::<_, Option<u32>>(2)?.unwrap_or(config.daily_cap),
            next_free_at: r.get(3)?,
            day: r.get(4)?,
            sent_today: r.get(5)?,
            expedited_today: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn store_sims(tx: &Connection, sims: &[SimPace]) -> Result<()> {
    let mut stmt = tx.prepare_cached(
        "UPDATE sims SET next_free_at = ?2, day = ?3, sent_today = ?4, expedited_today = ?5
         WHERE sub_id = ?1",
    )?;
    for s in sims {
        stmt.execute(params![
            s.sub_id,
            s.next_free_at,
            s.day,
            s.sent_today,
            s.expedited_today
        ])?;
    }
    Ok(())
}
