//! [`Store`] on SQLite: one writer connection, a few readers, WAL.
//!
//! Durability: WAL with `synchronous=FULL`, so a committed transaction survives a power cut,
//! not only a crash of the process (with NORMAL, WAL commits since the last checkpoint can be
//! lost on power loss). Nothing is acknowledged before its commit, and group commit
//! ([`super::committer`]) keeps the fsync cost per message low.
//!
//! The SQL lives in `sqlite_keys`, `sqlite_messages`, `sqlite_phones` and `sqlite_webhooks`, as functions
//! taking a `&Transaction` (writes) or a `&Connection` (reads); this file owns the
//! connections and maps the trait onto those functions.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use simrelay_protocol::{Event, PhoneStatus};

use super::{
    Applied, Assignment, BatchOutcome, CancelOutcome, Connected, Counts, CreateOutcome, Delivery,
    DeliveryOutcome, InboxFilter, InboxItem, MessageFilter, MessageView, Millis, NewMessage,
    PhoneAuth, PhoneBatch, PhoneRow, Result, Store, StoreError, Unrouted, Webhook, schema,
};
use super::{AttemptLog, AttemptView, Redeliver};
use super::{
    sqlite_keys as ks, sqlite_messages as msg, sqlite_phones as ph, sqlite_pools as pl,
    sqlite_routing as rt, sqlite_webhooks as wh,
};
use crate::pool_router::SimKey;

const MAX_IDLE_READERS: usize = 8;
/// Page cache per connection, in KiB: SQLite's own default. The relay holds one writer and up
/// to [`MAX_IDLE_READERS`] idle readers, so the caches together stay under 9 × this.
pub const DEFAULT_CACHE_KIB: u32 = 2000;

/// The SQLite store.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    cache_kib: u32,
}

/// What every connection needs, readers included.
pub(crate) fn configure_common(conn: &Connection, cache_kib: u32) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "cache_size", -i64::from(cache_kib))?;
    // Without the query planner stability guarantee, SQLite compares the values bound to a
    // statement with the conditions of partial indexes and recompiles the statement whenever
    // such a value changes: a quarter of the relay's CPU went to re-preparing cached
    // statements. The hot queries name their partial index with literals (INDEXED BY).
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

fn configure(conn: &Connection, cache_kib: u32) -> rusqlite::Result<()> {
    configure_common(conn, cache_kib)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating or migrating) the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with_cache(path, DEFAULT_CACHE_KIB)
    }

    /// [`Self::open`] with a page cache of `cache_kib` KiB per connection.
    pub fn open_with_cache(path: &Path, cache_kib: u32) -> Result<Self> {
        let mut writer = Connection::open(path).map_err(StoreError::from_sqlite)?;
        configure(&writer, cache_kib)?;
        schema::migrate(&mut writer).map_err(StoreError::from_sqlite)?;
        Ok(Self {
            path: path.to_path_buf(),
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            cache_kib,
        })
    }

    /// Runs `f` in one immediate write transaction and commits it.
    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.writer.lock().expect("writer lock is not poisoned");
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from_sqlite)?;
        let out = f(&tx)?;
        tx.commit().map_err(StoreError::from_sqlite)?;
        Ok(out)
    }

    /// Runs `f` on a reader connection (a consistent snapshot per statement batch).
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let pooled = self.readers.lock().expect("reader pool lock").pop();
        let conn = match pooled {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                configure_common(&c, self.cache_kib)?;
                c
            }
        };
        let out = f(&conn);
        let mut pool = self.readers.lock().expect("reader pool lock");
        if pool.len() < MAX_IDLE_READERS {
            pool.push(conn);
        }
        out
    }
}

impl Store for SqliteStore {
    fn account_for_key(&self, key_hash: &str) -> Result<Option<String>> {
        self.read(|c| ks::account_for_key(c, key_hash))
    }

    fn ensure_key(
        &self,
        key_hash: &str,
        account: Option<&str>,
        name: &str,
        scopes: &str,
        now: Millis,
    ) -> Result<String> {
        self.write(|tx| ks::ensure_key(tx, key_hash, account, name, scopes, now))
    }

    fn key_by_hash(&self, key_hash: &str) -> Result<Option<ks::KeyAuth>> {
        self.read(|c| ks::key_by_hash(c, key_hash))
    }

    fn touch_key(&self, id: &str, now: Millis, min_gap: Millis) -> Result<bool> {
        self.write(|tx| ks::touch_key(tx, id, now, min_gap))
    }

    fn create_key(&self, key: &ks::NewKey) -> Result<()> {
        self.write(|tx| ks::insert_key(tx, key))
    }

    fn list_keys(&self, account: Option<&str>) -> Result<Vec<ks::KeyRow>> {
        self.read(|c| ks::list_keys(c, account))
    }

    fn get_key(&self, account: Option<&str>, id: &str) -> Result<Option<ks::KeyRow>> {
        self.read(|c| ks::get_key(c, account, id))
    }

    fn revoke_key(&self, account: Option<&str>, id: &str, now: Millis) -> Result<ks::Revoked> {
        self.write(|tx| ks::revoke_key(tx, account, id, now))
    }

    fn has_admin_key(&self) -> Result<bool> {
        self.read(ks::has_admin_key)
    }

    fn create_account(
        &self,
        name: Option<&str>,
        first_key: Option<&ks::NewKey>,
        now: Millis,
    ) -> Result<String> {
        self.write(|tx| {
            let id = ks::create_account(tx, name, now)?;
            if let Some(k) = first_key {
                ks::insert_key(
                    tx,
                    &ks::NewKey {
                        account_id: id.clone(),
                        ..k.clone()
                    },
                )?;
            }
            Ok(id)
        })
    }

    fn list_accounts(&self) -> Result<Vec<ks::AccountRow>> {
        self.read(ks::list_accounts)
    }

    fn create_messages(&self, batch: &[NewMessage]) -> Result<Vec<CreateOutcome>> {
        self.write(|tx| batch.iter().map(|m| msg::create_message(tx, m)).collect())
    }

    fn write_batch(&self, creates: &[NewMessage], applies: &[PhoneBatch]) -> Result<BatchOutcome> {
        self.write(|tx| {
            let created = creates
                .iter()
                .map(|m| msg::create_message(tx, m))
                .collect::<Result<Vec<_>>>()?;
            let mut applied = Vec::with_capacity(applies.len());
            for b in applies {
                tx.execute_batch("SAVEPOINT phone_batch")?;
                match ph::apply_from_phone(tx, &b.phone, b.acked, &b.events, b.now) {
                    Ok(a) => {
                        tx.execute_batch("RELEASE phone_batch")?;
                        applied.push(Ok(a));
                    }
                    Err(e) => {
                        tx.execute_batch("ROLLBACK TO phone_batch; RELEASE phone_batch")?;
                        applied.push(Err(e.to_string()));
                    }
                }
            }
            Ok((created, applied))
        })
    }

    fn get_message(&self, account: &str, id: &str) -> Result<Option<MessageView>> {
        self.read(|c| msg::get_message(c, account, id))
    }

    fn list_messages(&self, account: &str, filter: &MessageFilter) -> Result<Vec<MessageView>> {
        self.read(|c| msg::list_messages(c, account, filter))
    }

    fn cancel_message(&self, account: &str, id: &str, now: Millis) -> Result<CancelOutcome> {
        self.write(|tx| msg::cancel_message(tx, account, id, now))
    }

    fn list_inbox(&self, account: &str, filter: &InboxFilter) -> Result<Vec<InboxItem>> {
        self.read(|c| msg::list_inbox(c, account, filter))
    }

    fn list_phones(&self, account: &str) -> Result<Vec<PhoneRow>> {
        self.read(|c| ph::list_phones(c, account))
    }

    fn create_pairing_code(
        &self,
        account: &str,
        code_hash: &str,
        now: Millis,
        expires: Millis,
    ) -> Result<()> {
        self.write(|tx| ph::create_pairing_code(tx, account, code_hash, now, expires))
    }

    fn pair_phone(
        &self,
        code_hash: &str,
        phone_id: &str,
        token_hash: &str,
        name: Option<&str>,
        now: Millis,
    ) -> Result<Option<String>> {
        self.write(|tx| ph::pair_phone(tx, code_hash, phone_id, token_hash, name, now))
    }

    fn phone_by_token(&self, token_hash: &str) -> Result<Option<PhoneAuth>> {
        self.read(|c| ph::phone_by_token(c, token_hash))
    }

    fn phone_connected(&self, phone: &str, status: &PhoneStatus, now: Millis) -> Result<Connected> {
        self.write(|tx| ph::phone_connected(tx, phone, status, now))
    }

    fn phone_status(&self, phone: &str, status: &PhoneStatus, now: Millis) -> Result<()> {
        self.write(|tx| ph::phone_status(tx, phone, status, now))
    }

    fn remove_phone(
        &self,
        account: &str,
        phone: &str,
        now: Millis,
    ) -> Result<Option<super::sqlite_removal::Removal>> {
        self.write(|tx| super::sqlite_removal::remove_phone(tx, account, phone, now))
    }

    fn phone_offline(&self, phone: &str, now: Millis) -> Result<bool> {
        self.write(|tx| ph::phone_offline(tx, phone, now))
    }

    fn online_phones(&self) -> Result<Vec<String>> {
        self.read(ph::online_phones)
    }

    fn frames_after(&self, phone: &str, after: u64, limit: u32) -> Result<Vec<(u64, String)>> {
        self.read(|c| ph::frames_after(c, phone, after, limit))
    }

    fn last_cancel_after(&self, phone: &str, after: u64) -> Result<Option<u64>> {
        self.read(|c| ph::last_cancel_after(c, phone, after))
    }

    fn apply_from_phone(
        &self,
        phone: &str,
        acked: Option<u64>,
        events: &[(u64, Event)],
        now: Millis,
    ) -> Result<Applied> {
        self.write(|tx| ph::apply_from_phone(tx, phone, acked, events, now))
    }

    fn unrouted(&self, account: &str, online: &[String], limit: u32) -> Result<Vec<Unrouted>> {
        self.read(|c| rt::unrouted(c, account, online, limit))
    }

    fn outstanding(&self, phone: &str) -> Result<u32> {
        self.read(|c| ph::outstanding(c, phone))
    }

    fn commit_routes(&self, routes: &[Assignment], now: Millis) -> Result<Vec<String>> {
        self.write(|tx| rt::commit_routes(tx, routes, now))
    }

    fn expire_unrouted(&self, now: Millis, default_validity: Millis) -> Result<u32> {
        self.write(|tx| msg::expire_unrouted(tx, now, default_validity))
    }

    fn create_webhook(&self, account: &str, hook: &Webhook) -> Result<()> {
        self.write(|tx| wh::create_webhook(tx, account, hook))
    }

    fn list_webhooks(&self, account: &str) -> Result<Vec<Webhook>> {
        self.read(|c| wh::list_webhooks(c, account))
    }

    fn delete_webhook(&self, account: &str, id: &str) -> Result<bool> {
        self.write(|tx| wh::delete_webhook(tx, account, id))
    }

    fn due_deliveries(&self, now: Millis, limit: u32) -> Result<Vec<Delivery>> {
        self.read(|c| wh::due_deliveries(c, now, limit))
    }

    fn delivery_result(&self, id: i64, outcome: DeliveryOutcome, now: Millis) -> Result<()> {
        self.write(|tx| wh::delivery_result(tx, id, &outcome, now))
    }

    fn next_delivery_at(&self) -> Result<Option<Millis>> {
        self.read(wh::next_delivery_at)
    }

    fn prune_deliveries(&self, before: Millis) -> Result<usize> {
        self.write(|tx| wh::prune_deliveries(tx, before))
    }

    fn pending_endpoints(&self) -> Result<Vec<String>> {
        self.read(wh::pending_endpoints)
    }

    fn claim_deliveries(
        &self,
        webhook: &str,
        now: Millis,
        limit: u32,
        lease_until: Millis,
    ) -> Result<Vec<Delivery>> {
        self.write(|tx| wh::claim_deliveries(tx, webhook, now, limit, lease_until))
    }

    fn next_delivery_of(&self, webhook: &str) -> Result<Option<Millis>> {
        self.read(|c| wh::next_delivery_of(c, webhook))
    }

    fn record_attempt(&self, id: i64, outcome: DeliveryOutcome, log: &AttemptLog) -> Result<()> {
        self.write(|tx| {
            wh::delivery_result(tx, id, &outcome, log.at)?;
            wh::log_attempt(tx, log)
        })
    }

    fn log_attempt(&self, log: &AttemptLog) -> Result<()> {
        self.write(|tx| wh::log_attempt(tx, log))
    }

    fn list_attempts(
        &self,
        account: &str,
        webhook: &str,
        limit: u32,
    ) -> Result<Option<Vec<AttemptView>>> {
        self.read(|c| wh::list_attempts(c, account, webhook, limit))
    }

    fn redeliver(
        &self,
        account: &str,
        webhook: &str,
        event_id: &str,
        now: Millis,
    ) -> Result<Redeliver> {
        self.write(|tx| wh::redeliver(tx, account, webhook, event_id, now))
    }

    fn counts(&self) -> Result<Counts> {
        self.read(wh::counts)
    }

    fn create_pool(&self, account: &str, pool: &pl::Pool) -> Result<pl::PoolOutcome> {
        self.write(|tx| pl::create_pool(tx, account, pool))
    }

    fn list_pools(&self, account: &str) -> Result<Vec<pl::Pool>> {
        self.read(|c| pl::list_pools(c, account))
    }

    fn delete_pool(&self, account: &str, name: &str) -> Result<bool> {
        self.write(|tx| pl::delete_pool(tx, account, name))
    }

    fn set_sim_settings(&self, account: &str, key: &SimKey, s: &pl::SimSettings) -> Result<bool> {
        self.write(|tx| pl::set_sim_settings(tx, account, key, s))
    }

    fn routing_input(&self, account: &str, now: Millis) -> Result<pl::RoutingInput> {
        self.read(|c| pl::routing_input(c, account, now))
    }

    fn sent_since(
        &self,
        account: &str,
        since: Millis,
    ) -> Result<std::collections::HashMap<SimKey, u32>> {
        self.read(|c| pl::sent_since(c, account, since))
    }

    fn unrouted_by_pool(
        &self,
        account: &str,
    ) -> Result<std::collections::HashMap<Option<String>, (u32, u32)>> {
        self.read(|c| pl::unrouted_by_pool(c, account))
    }

    fn phone_event(
        &self,
        phone: &str,
        event: &str,
        data: serde_json::Value,
        now: Millis,
    ) -> Result<usize> {
        self.write(|tx| pl::phone_event(tx, phone, event, data, now))
    }
}
