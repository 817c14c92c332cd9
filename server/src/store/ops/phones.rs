//! Phones: pairing, presence, going offline, and removal (the rules of the last two are
//! `crate::domain::phone_gone`).

use simrelay_protocol::PhoneStatus;

use super::messages::recompute_state;
use super::webhooks::{enqueue_event, recipient_webhook};
use crate::domain::phone_gone::{self, OnRemoval};
use crate::domain::webhooks::{Event, PhoneData, SimData};
use crate::store::tx::StateWrite;
use crate::store::{Connected, Millis, PhoneAuth, PhoneRow, Removal, Result, Store, StoreError};

/// What [`Store::phone_offline_after`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offline {
    /// Marked offline now (`phone.offline` queued, recipients handed back).
    Marked,
    /// It was not online (another node, or an earlier grace, marked it).
    NotOnline,
    /// A link is up on some node.
    LinkUp,
    /// Its last link went less than the grace ago: ask again in this many ms.
    Wait(i64),
}

fn phone_data(phone: &str) -> PhoneData {
    PhoneData {
        phone: phone.to_string(),
    }
}

impl Store {
    pub fn list_phones(&self, account: &str) -> Result<Vec<PhoneRow>> {
        self.read(|tx| tx.list_phones(account))
    }

    pub fn create_pairing_code(
        &self,
        account: &str,
        code_hash: &str,
        now: Millis,
        expires: Millis,
    ) -> Result<()> {
        self.write(|tx| tx.insert_pairing_code(account, code_hash, now, expires))
    }

    /// Consumes a pairing code and creates a phone; `None` when the code is unknown, used or
    /// expired.
    pub fn pair_phone(
        &self,
        code_hash: &str,
        phone_id: &str,
        token_hash: &str,
        name: Option<&str>,
        now: Millis,
    ) -> Result<Option<String>> {
        self.write(|tx| {
            let Some(account) = tx.pairing_code_account(code_hash, now)? else {
                return Ok(None);
            };
            tx.use_pairing_code(code_hash, now)?;
            tx.insert_phone(phone_id, &account, name, token_hash, now)?;
            Ok(Some(account))
        })
    }

    pub fn phone_by_token(&self, token_hash: &str) -> Result<Option<PhoneAuth>> {
        self.read(|tx| tx.phone_by_token(token_hash))
    }

    /// Marks the phone online with this status; queues `phone.online` if it was offline.
    pub fn phone_connected(
        &self,
        phone: &str,
        status: &PhoneStatus,
        now: Millis,
    ) -> Result<Connected> {
        self.phone_connected_on(phone, status, now, None)
    }

    /// [`Self::phone_connected`] through link `(node, link id)` of a cluster's node, recorded
    /// as up in the same transaction.
    pub fn phone_connected_on(
        &self,
        phone: &str,
        status: &PhoneStatus,
        now: Millis,
        link: Option<(&str, u64)>,
    ) -> Result<Connected> {
        self.write(|tx| {
            let p = tx
                .phone_state_locked(phone)?
                .filter(|p| !p.removed)
                .ok_or(StoreError::Missing("phone"))?;
            if let Some((node, id)) = link {
                tx.link_up(phone, node, id)?;
            }
            tx.set_phone_status(phone, status, Some(true), now)?;
            if !p.online {
                enqueue_event(
                    tx,
                    &p.account_id,
                    Event::PhoneOnline,
                    &phone_data(phone),
                    now,
                )?;
            }
            Ok(Connected {
                event_seq: p.event_seq,
                acked_seq: p.acked_seq,
                next_seq: p.next_seq,
                came_online: !p.online,
            })
        })
    }

    pub fn phone_status(&self, phone: &str, status: &PhoneStatus, now: Millis) -> Result<()> {
        self.write(|tx| tx.set_phone_status(phone, status, None, now))
    }

    /// Marks the phone offline, queues `phone.offline` and hands back to the router what
    /// `crate::domain::phone_gone::offline_hands_back` says. Returns whether it was online.
    pub fn phone_offline(&self, phone: &str, now: Millis) -> Result<bool> {
        Ok(self.phone_offline_after(phone, now, None)? == Offline::Marked)
    }

    /// Records that link `link` of node `node` to the phone went down (a cluster's presence).
    pub fn link_closed(&self, phone: &str, node: &str, link: u64) -> Result<()> {
        self.write(|tx| tx.link_down(phone, node, link))
    }

    /// [`Self::phone_offline`] for a cluster: with `grace = Some((grace_ms, stale_ms))` the
    /// phone stays online while a link is up on a node heard within `stale_ms`, and until its
    /// last link has been gone for `grace_ms` ([`Offline::Wait`] says how much longer).
    pub fn phone_offline_after(
        &self,
        phone: &str,
        now: Millis,
        grace: Option<(i64, i64)>,
    ) -> Result<Offline> {
        self.write(|tx| {
            let Some(p) = tx.phone_state_locked(phone)?.filter(|p| p.online) else {
                return Ok(Offline::NotOnline);
            };
            if let Some((grace_ms, stale_ms)) = grace {
                let links = tx.link_presence(phone, stale_ms)?;
                if links.live > 0 {
                    return Ok(Offline::LinkUp);
                }
                if let Some(gone) = links.gone_for_ms.filter(|g| *g < grace_ms) {
                    return Ok(Offline::Wait(grace_ms - gone));
                }
            }
            tx.set_phone_online(phone, false)?;
            enqueue_event(
                tx,
                &p.account_id,
                Event::PhoneOffline,
                &phone_data(phone),
                now,
            )?;
            let back: Vec<(i64, u32)> = tx
                .held_by(phone)?
                .into_iter()
                .filter(|h| phone_gone::offline_hands_back(&h.recipient))
                .map(|h| (h.mseq, h.idx))
                .collect();
            tracing::debug!(phone, back = ?back, "offline: handed back");
            tx.release_recipients(&back, now)?;
            Ok(Offline::Marked)
        })
    }

    /// Phones marked online (after a restart they get a grace period to come back).
    pub fn online_phones(&self) -> Result<Vec<String>> {
        self.read(|tx| tx.online_phones())
    }

    /// Stored relay frames of a phone with seq > `after`, oldest first.
    pub fn frames_after(&self, phone: &str, after: u64, limit: u32) -> Result<Vec<(u64, String)>> {
        self.read(|tx| tx.frames_after(phone, after, limit))
    }

    /// Highest seq of a stored `cancel` frame for the phone after `after`.
    pub fn last_cancel_after(&self, phone: &str, after: u64) -> Result<Option<u64>> {
        self.read(|tx| tx.last_cancel_after(phone, after))
    }

    /// Recipients routed to the phone and not yet handed to its radio.
    pub fn outstanding(&self, phone: &str) -> Result<u32> {
        self.read(|tx| tx.outstanding(phone))
    }

    /// Removes a phone of the account: its token stops working and its recipients end as
    /// `crate::domain::phone_gone` describes. `None` if the account has no such phone.
    pub fn remove_phone(&self, account: &str, phone: &str, now: Millis) -> Result<Option<Removal>> {
        self.write(|tx| {
            if !tx.phone_of_account(account, phone)? {
                return Ok(None);
            }
            tx.remove_phone_row(account, phone, now)?;
            let mut out = Removal::default();
            for h in tx.held_by(phone)? {
                let end = match phone_gone::on_removal(&h.recipient) {
                    OnRemoval::Reroute => {
                        tx.release_recipients(&[(h.mseq, h.idx)], now)?;
                        out.rerouted += 1;
                        continue;
                    }
                    OnRemoval::End(end) => end,
                };
                match end {
                    crate::domain::RecipientStatus::Failed => out.failed += 1,
                    crate::domain::RecipientStatus::Cancelled => out.cancelled += 1,
                    _ => out.unknown += 1,
                }
                let write = StateWrite {
                    mseq: h.mseq,
                    idx: h.idx,
                    state: end,
                    error: Some(phone_gone::REMOVED),
                };
                tx.set_recipient_states(&[write], now)?;
                recompute_state(tx, h.mseq, now)?;
                recipient_webhook(tx, account, h.mseq, h.idx, end, now)?;
            }
            enqueue_event(tx, account, Event::PhoneRemoved, &phone_data(phone), now)?;
            Ok(Some(out))
        })
    }

    /// Queues a SIM health webhook (`sim.quarantined`, `sim.recovered`) for the account of
    /// the SIM's phone; returns how many deliveries were queued.
    pub fn sim_event(&self, event: Event, data: &SimData, now: Millis) -> Result<usize> {
        self.write(|tx| match tx.phone_state(&data.phone)? {
            Some(p) => enqueue_event(tx, &p.account_id, event, data, now),
            None => Ok(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_removed_phone_is_missing_to_connect_and_offline_hands_back_its_work() -> Result<()> {
        let dir = tempfile::tempdir().expect("temp dir");
        let s = crate::store::postgres::scratch::open_test_store(dir.path())?;
        let acc = s.ensure_api_key("k", 1)?;
        s.create_pairing_code(&acc, "c", 1, 100)?;
        assert_eq!(s.pair_phone("c", "p1", "t", None, 2)?, Some(acc.clone()));
        let status = PhoneStatus::default();
        assert!(s.phone_connected("p1", &status, 3)?.came_online);
        assert!(!s.phone_connected("p1", &status, 4)?.came_online);
        assert!(s.phone_offline("p1", 5)?);
        assert!(!s.phone_offline("p1", 6)?, "offline once");
        assert_eq!(s.remove_phone(&acc, "p1", 7)?, Some(Removal::default()));
        assert!(matches!(
            s.phone_connected("p1", &status, 8),
            Err(StoreError::Missing(_))
        ));
        Ok(())
    }
}
