//! The radio's answers and the deadlines: sent results per part (transient failures retry
//! with backoff, permanent ones fail), delivery reports per part (repeated and late ones are
//! accepted; 0x20-0x3F are not final), and the deadlines that end every waiting state
//! (`expired`, `unknown`). A retry only happens when no part of the attempt left the phone,
//! so a retry never duplicates an SMS.

use rusqlite::{Connection, OptionalExtension, params};
use simrelay_protocol::{Millis, RecipientState};

use crate::EngineConfig;
use crate::codes::{self, Class};
use crate::engine::{Change, Engine, set_state};
use crate::error::{Error, Result};
use crate::modem::{ModemEvent, PartKey, RESULT_OK};
use crate::pdu::{self, ReportOutcome, StatusReport};

/// Rows ended per [`Engine::tick`]; the rest on the next call.
const TICK_BATCH: i64 = 1_000;

struct Current {
    state: RecipientState,
    attempt: u32,
    parts: u32,
    delivery_report: bool,
    valid_until: Millis,
}

fn current(tx: &Connection, key: &PartKey) -> Result<Option<Current>> {
    let row = tx
        .prepare_cached(
            "SELECT r.state, r.attempt, r.parts, m.delivery_report, m.valid_until
             FROM recipients r JOIN messages m ON m.id = r.message_id
             WHERE r.message_id = ?1 AND r.idx = ?2",
        )?
        .query_row(params![key.message_id, key.idx], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
            ))
        })
        .optional()?;
    let Some((state, attempt, parts, delivery_report, valid_until)) = row else {
        return Ok(None);
    };
    let state = RecipientState::parse(&state)
        .ok_or_else(|| Error::Corrupt("unknown recipient state".into()))?;
    Ok(Some(Current {
        state,
        attempt,
        parts,
        delivery_report,
        valid_until,
    }))
}

impl Engine {
    /// Applies one radio event in its own transaction.
    pub fn on_modem_event(&mut self, event: &ModemEvent, now: Millis) -> Result<()> {
        let mut results = self.on_modem_events(std::slice::from_ref(event), now)?;
        results.pop().unwrap_or(Ok(()))
    }

    /// Applies radio events in one transaction (one commit for a burst of results). Each
    /// event succeeds or fails alone: a bad one changes nothing and is reported in its slot.
    pub fn on_modem_events(
        &mut self,
        events: &[ModemEvent],
        now: Millis,
    ) -> Result<Vec<Result<()>>> {
        let jitter: Vec<f64> = events.iter().map(|_| self.jitter()).collect();
        let config = self.config.clone();
        let mut tx = self.conn.transaction()?;
        let mut out = Vec::with_capacity(events.len());
        for (event, jitter) in events.iter().zip(jitter) {
            let sp = tx.savepoint()?;
            let r = match event {
                ModemEvent::Sent {
                    key,
                    parts,
                    result,
                    error_code,
                } => sent_in(&sp, &config, jitter, key, *parts, *result, *error_code, now),
                ModemEvent::Report { key, pdu, format } => {
                    parse_report(pdu, format).and_then(|report| report_in(&sp, key, &report, now))
                }
                ModemEvent::Incoming {
                    sim,
                    from,
                    text,
                    sent_at,
                } => {
                    let sms = crate::outbox::Received {
                        sim: *sim,
                        from,
                        text,
                        sent_at: *sent_at,
                        data_port: None,
                    };
                    crate::outbox::incoming_in(&sp, &config, sms, now).map(|_| ())
                }
                ModemEvent::IncomingData { sim, pdus, format } => {
                    incoming_data_in(&sp, &config, *sim, pdus, format, now)
                }
            };
            if r.is_ok() {
                sp.commit()?;
            }
            out.push(r);
        }
        tx.commit()?;
        Ok(out)
    }

    /// A part's sent result. `parts` is the device's part count for this attempt.
    pub fn on_sent(
        &mut self,
        key: &PartKey,
        parts: u32,
        result: i32,
        error_code: Option<i32>,
        now: Millis,
    ) -> Result<()> {
        self.on_modem_event(
            &ModemEvent::Sent {
                key: key.clone(),
                parts,
                result,
                error_code,
            },
            now,
        )
    }

    /// A part's delivery report: the raw PDU as Android hands it over.
    pub fn on_report(
        &mut self,
        key: &PartKey,
        raw: &[u8],
        format: &str,
        now: Millis,
    ) -> Result<ReportOutcome> {
        let report = parse_report(raw, format)?;
        let tx = self.conn.transaction()?;
        report_in(&tx, key, &report, now)?;
        tx.commit()?;
        Ok(pdu::outcome(report.status))
    }
    /// Ends every state whose deadline has passed. Returns how many changed.
    pub fn tick(&mut self, now: Millis) -> Result<u32> {
        let tx = self.conn.transaction()?;
        let due: Vec<(String, u32, String, bool, Millis)> = {
            let mut stmt = tx.prepare_cached(
                "SELECT r.message_id, r.idx, r.state, m.resend_unknown, m.valid_until
                 FROM recipients r JOIN messages m ON m.id = r.message_id
                 WHERE r.deadline IS NOT NULL AND r.deadline <= ?1
                 ORDER BY r.deadline LIMIT ?2",
            )?;
            stmt.query_map(params![now, TICK_BATCH], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<rusqlite::Result<_>>()?
        };
        for (id, idx, state, resend_unknown, valid_until) in &due {
            let (id, idx) = (id.as_str(), *idx);
            match RecipientState::parse(state) {
                Some(RecipientState::Queued) => {
                    set_state(
                        &tx,
                        id,
                        idx,
                        Change::to(RecipientState::Expired).reason("valid_until"),
                        now,
                    )?;
                }
                Some(RecipientState::Sending) if *resend_unknown && now < *valid_until => {
                    tx.prepare_cached(
                        "UPDATE recipients SET next_at = ?3 WHERE message_id = ?1 AND idx = ?2",
                    )?
                    .execute(params![id, idx, now])?;
                    let deadline = Some(*valid_until);
                    set_state(
                        &tx,
                        id,
                        idx,
                        Change::to(RecipientState::Queued)
                            .reason("resend_after_unknown")
                            .until_opt(deadline),
                        now,
                    )?;
                }
                Some(RecipientState::Sending) => {
                    set_state(
                        &tx,
                        id,
                        idx,
                        Change::to(RecipientState::Unknown).reason("no_sent_result"),
                        now,
                    )?;
                }
                Some(RecipientState::Sent) => {
                    set_state(
                        &tx,
                        id,
                        idx,
                        Change::to(RecipientState::Unknown).reason("no_delivery_report"),
                        now,
                    )?;
                }
                _ => {
                    tx.prepare_cached(
                        "UPDATE recipients SET deadline = NULL WHERE message_id = ?1 AND idx = ?2",
                    )?
                    .execute(params![id, idx])?;
                }
            }
        }
        tx.commit()?;
        Ok(due.len() as u32)
    }
}

/// The first permanently failed part's code of this attempt, if any.
fn permanent_failure(tx: &Connection, key: &PartKey) -> Result<Option<i32>> {
    let mut stmt = tx.prepare_cached(
        "SELECT sent_result FROM parts WHERE message_id = ?1 AND idx = ?2 AND attempt = ?3
            AND sent_result != ?4 ORDER BY part",
    )?;
    let codes: Vec<i32> = stmt
        .query_map(
            params![key.message_id, key.idx, key.attempt, RESULT_OK],
            |r| r.get(0),
        )?
        .collect::<rusqlite::Result<_>>()?;
    Ok(codes
        .into_iter()
        .find(|&c| codes::classify(c) == Class::Permanent))
}

/// Applies a sent result inside the caller's transaction.
#[allow(clippy::too_many_arguments)]
fn sent_in(
    tx: &Connection,
    config: &EngineConfig,
    backoff_jitter: f64,
    key: &PartKey,
    parts: u32,
    result: i32,
    error_code: Option<i32>,
    now: Millis,
) -> Result<()> {
    let Some(cur) = current(tx, key)? else {
        log::warn!("sent result for an unknown recipient ignored");
        return Ok(());
    };
    if key.attempt != cur.attempt {
        log::debug!("sent result of an earlier attempt ignored");
        return Ok(());
    }
    let parts = if parts == 0 { cur.parts } else { parts };
    if key.part >= parts {
        return Err(Error::Invalid(format!(
            "part {} of a {parts}-part attempt",
            key.part
        )));
    }
    tx.prepare_cached("UPDATE recipients SET parts = ?3 WHERE message_id = ?1 AND idx = ?2")?
        .execute(params![key.message_id, key.idx, parts])?;
    tx.prepare_cached(
        "INSERT INTO parts (message_id, idx, attempt, part, sent_result, error_code, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT DO UPDATE SET sent_result = ?5, error_code = ?6, updated_at = ?7",
    )?
    .execute(params![
        key.message_id,
        key.idx,
        key.attempt,
        key.part,
        result,
        error_code,
        now
    ])?;
    if !matches!(cur.state, RecipientState::Sending | RecipientState::Unknown) {
        // A repeat after the recipient settled: recorded, nothing changes.
        return Ok(());
    }
    let (reported, ok, delivered, first_failure): (u32, u32, u32, Option<i32>) = tx
        .prepare_cached(
            "SELECT COUNT(sent_result), COALESCE(SUM(sent_result = -1), 0),
                COALESCE(SUM(report_status IS NOT NULL AND report_status < 32), 0),
                (SELECT sent_result FROM parts q WHERE q.message_id = ?1 AND q.idx = ?2
                    AND q.attempt = ?3 AND q.sent_result != -1 ORDER BY q.part LIMIT 1)
             FROM parts WHERE message_id = ?1 AND idx = ?2 AND attempt = ?3",
        )?
        .query_row(params![key.message_id, key.idx, key.attempt], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
    tx.prepare_cached(
        "UPDATE recipients SET parts_sent = ?3, parts_delivered = ?4
         WHERE message_id = ?1 AND idx = ?2",
    )?
    .execute(params![key.message_id, key.idx, ok, delivered])?;
    let (id, idx) = (key.message_id.as_str(), key.idx);
    if reported < parts {
        return Ok(());
    }
    match first_failure {
        None if delivered >= parts => {
            set_state(tx, id, idx, Change::to(RecipientState::Delivered), now)?;
        }
        None => {
            let deadline = cur
                .delivery_report
                .then_some(now + config.report_timeout_ms);
            set_state(
                tx,
                id,
                idx,
                Change::to(RecipientState::Sent).until_opt(deadline),
                now,
            )?;
        }
        Some(code) if ok > 0 => {
            // Some parts left the phone: sending again would duplicate them.
            set_state(
                tx,
                id,
                idx,
                Change::to(RecipientState::Failed)
                    .reason("partially_sent")
                    .code(code),
                now,
            )?;
        }
        Some(code) => {
            let permanent = permanent_failure(tx, key)?;
            if permanent.is_none() && key.attempt < config.max_attempts {
                let mut delay = config
                    .backoff_base_ms
                    .saturating_mul(1 << (key.attempt - 1).min(20))
                    .min(config.backoff_max_ms);
                delay += (delay as f64 * 0.25 * backoff_jitter) as Millis;
                if code == codes::RESULT_ERROR_LIMIT_EXCEEDED {
                    // Android's window is one minute.
                    delay = delay.max(crate::config::MINUTE);
                }
                let next_at = now + delay;
                tx.prepare_cached(
                    "UPDATE recipients SET next_at = ?3 WHERE message_id = ?1 AND idx = ?2",
                )?
                .execute(params![id, idx, next_at])?;
                let deadline = Some(cur.valid_until);
                let retry = Change::to(RecipientState::Queued)
                    .reason(codes::name(code))
                    .code(code)
                    .until_opt(deadline);
                set_state(tx, id, idx, retry, now)?;
            } else {
                let code = permanent.unwrap_or(code);
                let reason = if permanent.is_some() {
                    codes::name(code)
                } else {
                    "retries_exhausted"
                };
                set_state(
                    tx,
                    id,
                    idx,
                    Change::to(RecipientState::Failed).reason(reason).code(code),
                    now,
                )?;
            }
        }
    }
    Ok(())
}

/// The core parses 3GPP PDUs only; 3GPP2 (CDMA) ones are refused.
fn check_format(format: &str) -> Result<()> {
    if format != "3gpp" {
        return Err(Error::UnsupportedFormat(format.chars().take(16).collect()));
    }
    Ok(())
}

fn parse_report(raw: &[u8], format: &str) -> Result<StatusReport> {
    check_format(format)?;
    Ok(pdu::parse_status_report(raw)?)
}

/// Stores an incoming data SMS (its SMS-DELIVER PDUs) as an incoming SMS with its port and
/// the payload in base64.
fn incoming_data_in(
    tx: &Connection,
    config: &crate::config::EngineConfig,
    sim: Option<i32>,
    pdus: &[Vec<u8>],
    format: &str,
    now: Millis,
) -> Result<()> {
    use base64::Engine as _;
    check_format(format)?;
    let sms = pdu::parse_data_sms(pdus)?;
    let text = base64::engine::general_purpose::STANDARD.encode(&sms.payload);
    let received = crate::outbox::Received {
        sim,
        from: &sms.from,
        text: &text,
        sent_at: sms.sent_at,
        data_port: Some(sms.port),
    };
    crate::outbox::incoming_in(tx, config, received, now)?;
    Ok(())
}

/// Applies a parsed delivery report inside the caller's transaction.
fn report_in(tx: &Connection, key: &PartKey, report: &StatusReport, now: Millis) -> Result<()> {
    let Some(cur) = current(tx, key)? else {
        log::warn!("delivery report for an unknown recipient ignored");
        return Ok(());
    };
    if key.attempt != cur.attempt || key.part >= cur.parts {
        log::debug!("delivery report of another attempt or part ignored");
        return Ok(());
    }
    // A report means the part left the phone, whatever its sent result said.
    tx.prepare_cached(
        "INSERT INTO parts (message_id, idx, attempt, part, sent_result, report_status, updated_at)
         VALUES (?1, ?2, ?3, ?4, -1, ?5, ?6)
         ON CONFLICT DO UPDATE SET report_status = ?5, updated_at = ?6,
            sent_result = COALESCE(sent_result, -1)",
    )?
    .execute(params![
        key.message_id,
        key.idx,
        key.attempt,
        key.part,
        report.status,
        now
    ])?;
    let (id, idx) = (key.message_id.as_str(), key.idx);
    if cur.state.is_final() {
        return Ok(());
    }
    let code = Some(i32::from(report.status));
    match pdu::outcome(report.status) {
        ReportOutcome::Pending => {}
        ReportOutcome::Delivered => {
            let (sent, delivered): (u32, u32) = tx
                .prepare_cached(
                    "SELECT COALESCE(SUM(sent_result = -1), 0),
                    COALESCE(SUM(report_status IS NOT NULL AND report_status < 32), 0)
                 FROM parts WHERE message_id = ?1 AND idx = ?2 AND attempt = ?3",
                )?
                .query_row(params![id, idx, key.attempt], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
            tx.prepare_cached(
                "UPDATE recipients SET parts_sent = ?3, parts_delivered = ?4
                 WHERE message_id = ?1 AND idx = ?2",
            )?
            .execute(params![id, idx, sent, delivered])?;
            if delivered >= cur.parts {
                set_state(tx, id, idx, Change::to(RecipientState::Delivered), now)?;
            }
        }
        ReportOutcome::Failed => {
            set_state(
                tx,
                id,
                idx,
                Change::to(RecipientState::Failed)
                    .reason("delivery_failed")
                    .code_opt(code),
                now,
            )?;
        }
        ReportOutcome::Expired => {
            set_state(
                tx,
                id,
                idx,
                Change::to(RecipientState::Expired)
                    .reason("smsc_validity_expired")
                    .code_opt(code),
                now,
            )?;
        }
    }
    Ok(())
}
