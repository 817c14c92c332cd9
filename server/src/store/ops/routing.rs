//! Routing: the recipients waiting for a SIM with what the router needs (target, parts, SIMs
//! tried, SIMs the message is on per phone), the router's per-account input, and storing its
//! (phone, SIM) decisions as `send` frames.
//!
//! Failover and late acceptance (which recipients come back here, and which phones they
//! never return to) are `crate::domain::update`'s rules.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use simrelay_protocol::{OutboundMessage, Recipient, RelayFrame, encode};

use crate::domain::{UNKNOWN_SIM, smsgate};
use crate::pool_router::{PrefixRule, SimKey, local_day};
use crate::store::tx::{FrameInsert, FrameMessage, OutcomeRow, Tx, UsageAdd};
use crate::store::{Assignment, Millis, Result, RoutingInput, Store, Unrouted};

/// Minutes of parts-sent counts kept per SIM: the longest window `sent_since` reads (an
/// hour, for an SMS Gateway `PerHour` limit; the SIM figures read ten minutes), and the
/// current one.
const SENT_MINUTES_KEPT: i64 = 61;

/// Counts `parts` that just left SIM `key` in the bucket of the minute `now`, and drops that
/// SIM's buckets older than the window.
pub(crate) fn count_sent(tx: &mut dyn Tx, key: &SimKey, parts: u32, now: Millis) -> Result<()> {
    let minute = now.div_euclid(60_000);
    tx.count_sent(key, minute, parts, minute - SENT_MINUTES_KEPT + 1)
}

/// Parts that left each SIM of the account in the minutes after the one holding `since`.
pub(crate) fn sent_since(
    tx: &mut dyn Tx,
    account: &str,
    since: Millis,
) -> Result<HashMap<SimKey, u32>> {
    tx.sent_since(account, since.div_euclid(60_000))
}

impl Store {
    /// Unrouted recipients of an account that one of the `online` phones could take (not
    /// pinned to another phone), highest priority first, then oldest (newest when the
    /// account's SMS Gateway settings say `processing_order = LIFO`).
    pub fn unrouted(&self, account: &str, online: &[String], limit: u32) -> Result<Vec<Unrouted>> {
        self.read(|tx| {
            let newest_first = tx
                .compat_settings(account)?
                .is_some_and(|doc| smsgate::newest_first(&doc));
            let rows = tx.unrouted(account, online, limit, newest_first)?;
            // SIMs each message is on already (routed or tried), in one query for the page.
            let mut mseqs: Vec<i64> = rows.iter().map(|u| u.mseq).collect();
            mseqs.dedup();
            let mut bound: HashMap<i64, Vec<SimKey>> = HashMap::new();
            for b in tx.bound_rows(&mseqs)? {
                let keys = bound.entry(b.mseq).or_default();
                if let (Some(p), Some(s)) = (b.phone, b.sim) {
                    keys.push(SimKey::new(p, s));
                }
                keys.extend(b.tried.into_iter().filter(|k| k.sub_id != UNKNOWN_SIM));
            }
            for keys in bound.values_mut() {
                keys.sort();
                keys.dedup_by(|a, b| a.phone == b.phone);
            }
            Ok(rows
                .into_iter()
                .map(|r| Unrouted {
                    bound: bound.get(&r.mseq).cloned().unwrap_or_default(),
                    mseq: r.mseq,
                    idx: r.idx,
                    priority: r.priority,
                    phone: r.phone,
                    sim: r.sim,
                    pool: r.pool,
                    to: r.to,
                    parts: r.parts,
                    tried: r.tried,
                })
                .collect())
        })
    }

    /// Stores routing decisions as `send` frames (one per phone, message and SIM, with the SIM
    /// in the frame's message); returns the phones that got frames. Recipients no longer
    /// waiting (cancelled meanwhile) are skipped.
    pub fn commit_routes(&self, routes: &[Assignment], now: Millis) -> Result<Vec<String>> {
        self.write(|tx| commit_routes(tx, routes, now))
    }

    /// Pools, prefix rules, SIM settings, usage today and unsent parts of an account.
    pub fn routing_input(&self, account: &str, now: Millis) -> Result<RoutingInput> {
        self.read(|tx| {
            let limit = tx
                .compat_settings(account)?
                .as_deref()
                .and_then(smsgate::limit);
            let mut input = RoutingInput {
                settings: tx.sim_settings(account)?,
                default_daily_cap: match limit {
                    Some(smsgate::Limit::PerDay(n)) => Some(n),
                    _ => None,
                },
                window_limit: match limit {
                    Some(smsgate::Limit::Window(w)) => Some(w),
                    _ => None,
                },
                ..RoutingInput::default()
            };
            if let Some(w) = input.window_limit {
                // The window holds the current minute and the `minutes - 1` before it.
                let since = now - i64::from(w.minutes) * 60_000;
                input.window_sent = sent_since(tx, account, since)?;
            }
            for (key, parts, sent) in tx.unsent_rows(account)? {
                let e = input.unsent.entry(key).or_default();
                *e = e.saturating_add(parts.saturating_sub(sent));
            }
            for p in tx.list_pools(account)? {
                if p.sticky {
                    input.sticky_pools.insert(p.name.clone());
                }
                for (prefix, sims) in p.prefixes {
                    input.prefixes.push(PrefixRule {
                        prefix,
                        sims: sims.into_iter().collect(),
                        pool: Some(p.name.clone()),
                    });
                }
                input
                    .pools
                    .insert(p.name, p.members.into_iter().collect::<BTreeSet<_>>());
            }
            for (key, day, parts) in tx.usage_rows(account)? {
                let offset = input.settings.get(&key).map_or(0, |s| s.utc_offset_min);
                if day == local_day(now, offset) {
                    input.routed_today.insert(key, parts);
                }
            }
            Ok(input)
        })
    }

    /// Parts sent per SIM by recipients that changed since `since`.
    /// Recipients per hour, SIM and state since `since` (the dashboard's charts).
    pub fn outcomes_since(&self, account: &str, since: Millis) -> Result<Vec<OutcomeRow>> {
        self.read(|tx| tx.outcomes_since(account, since))
    }

    pub fn sent_since(&self, account: &str, since: Millis) -> Result<HashMap<SimKey, u32>> {
        self.read(|tx| sent_since(tx, account, since))
    }

    /// Waiting recipients and parts by target pool.
    pub fn unrouted_by_pool(&self, account: &str) -> Result<HashMap<Option<String>, (u32, u32)>> {
        self.read(|tx| {
            let mut out: HashMap<Option<String>, (u32, u32)> = HashMap::new();
            for (pool, parts) in tx.unrouted_parts(account)? {
                let e = out.entry(pool).or_default();
                e.0 = e.0.saturating_add(1);
                e.1 = e.1.saturating_add(parts);
            }
            Ok(out)
        })
    }
}

/// One `send` frame to write: a phone, a message and a SIM, with its recipients.
struct Group<'a> {
    phone: &'a str,
    mseq: i64,
    sim: Option<i32>,
    recipients: Vec<Recipient>,
}

fn commit_routes(tx: &mut dyn Tx, routes: &[Assignment], now: Millis) -> Result<Vec<String>> {
    let mut by_group: BTreeMap<(&str, i64, Option<i32>), Vec<&Assignment>> = BTreeMap::new();
    for a in routes {
        by_group
            .entry((a.phone.as_str(), a.mseq, a.sim))
            .or_default()
            .push(a);
    }
    let ordered: Vec<Assignment> = by_group.values().flatten().map(|a| (*a).clone()).collect();
    let mut claimed = tx.route_recipients(&ordered, now)?.into_iter();
    let mut groups: Vec<Group<'_>> = Vec::new();
    for ((phone, mseq, sim), members) in &by_group {
        let recipients: Vec<Recipient> = members
            .iter()
            .zip(claimed.by_ref())
            .filter_map(|(a, to)| to.map(|to| Recipient { idx: a.idx, to }))
            .collect();
        if !recipients.is_empty() {
            tracing::debug!(phone, mseq, idx = ?recipients.iter().map(|r| r.idx).collect::<Vec<_>>(), "routed");
            groups.push(Group {
                phone,
                mseq: *mseq,
                sim: *sim,
                recipients,
            });
        }
    }
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let mut mseqs: Vec<i64> = groups.iter().map(|g| g.mseq).collect();
    mseqs.sort_unstable();
    mseqs.dedup();
    let messages: HashMap<i64, FrameMessage> = tx
        .frame_messages(&mseqs)?
        .into_iter()
        .map(|m| (m.mseq, m))
        .collect();
    // Parts routed per SIM and its local day (the daily cap).
    let keys: Vec<SimKey> = groups
        .iter()
        .filter_map(|g| g.sim.map(|s| SimKey::new(g.phone, s)))
        .collect();
    let offsets = tx.sim_offsets(&keys)?;
    let parts_of = |g: &Group<'_>| {
        let n = u32::try_from(g.recipients.len()).unwrap_or(u32::MAX);
        messages[&g.mseq].parts.saturating_mul(n)
    };
    let with_sim: Vec<&Group<'_>> = groups.iter().filter(|g| g.sim.is_some()).collect();
    let usage: Vec<UsageAdd<'_>> = keys
        .iter()
        .zip(&offsets)
        .zip(&with_sim)
        .map(|((key, offset), g)| UsageAdd {
            key,
            day: local_day(now, offset.unwrap_or(0)),
            parts: parts_of(g),
        })
        .collect();
    tx.add_usage(&usage)?;
    // One frame per group, seqs per phone in group order.
    let mut phones: Vec<&str> = Vec::new();
    let mut wants: Vec<(&str, u32)> = Vec::new();
    for g in &groups {
        match wants.iter_mut().find(|(p, _)| *p == g.phone) {
            Some((_, n)) => *n += 1,
            None => {
                wants.push((g.phone, 1));
                phones.push(g.phone);
            }
        }
    }
    let firsts = tx.reserve_frame_seqs(&wants)?;
    let mut next: HashMap<&str, u64> = wants.iter().map(|(p, _)| *p).zip(firsts).collect();
    let mut bodies: Vec<(&str, u64, String)> = Vec::with_capacity(groups.len());
    for g in groups {
        let m = &messages[&g.mseq];
        let seq = next.get_mut(g.phone).expect("reserved");
        let message = OutboundMessage {
            id: m.id.clone(),
            recipients: g.recipients,
            text: m.text.clone(),
            priority: m.priority,
            valid_until: m.valid_until,
            schedule_at: m.schedule_at,
            sim: g.sim.or(m.sim),
            delivery_report: m.delivery_report,
            resend_unknown: false,
            encrypted: m.encrypted,
            data_port: m.data_port,
        };
        bodies.push((
            g.phone,
            *seq,
            encode(&RelayFrame::Send { seq: *seq, message }),
        ));
        *seq += 1;
    }
    let frames: Vec<FrameInsert<'_>> = bodies
        .iter()
        .map(|(phone, seq, body)| FrameInsert {
            phone,
            seq: *seq,
            body,
        })
        .collect();
    tx.insert_frames(&frames, now)?;
    // Usage older than yesterday (in any time zone) is never read again.
    tx.prune_usage(local_day(now, 0) - 2)?;
    Ok(phones.into_iter().map(str::to_string).collect())
}
