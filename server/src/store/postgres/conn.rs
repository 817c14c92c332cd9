//! Connections to PostgreSQL: the URL, one writer and a small pool of readers, a cache of
//! prepared statements per connection, and the errors mapped onto [`StoreError`].
//!
//! The client is the `postgres` crate (the blocking face of `tokio-postgres`): the store is
//! synchronous and runs on tokio's blocking pool, as SQLite does. Connections are plain TCP
//! or a unix socket, no TLS: a URL asking for `sslmode=require` is refused (the relay talks to
//! a PostgreSQL on its own machine or network; tunnel it when it is farther).
//!
//! Every statement the store runs is a `&'static str` prepared once per connection and kept
//! (the no-recompile lesson of SQLite: hot statements are never prepared again).

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use ::postgres::config::SslMode;
use ::postgres::error::SqlState;
use ::postgres::types::ToSql;
use ::postgres::{Client, Config, NoTls, Row, Statement};

use crate::store::{Result, StoreError};

/// Readers kept open when idle, and the most open at once.
const MAX_READERS: usize = 12;

impl StoreError {
    /// Maps a PostgreSQL error. The server's messages may quote values (an invalid input, the
    /// key of a unique violation: a phone number, a message id), so only the SQLSTATE, its
    /// class and the names of the constraint and table are kept.
    pub fn from_pg(e: ::postgres::Error) -> Self {
        if let Some(db) = e.as_db_error() {
            let code = db.code();
            if *code == SqlState::DISK_FULL {
                return Self::Full;
            }
            if unavailable(code.code()) {
                return Self::Unavailable(format!("{} ({})", code.code(), class(code.code())));
            }
            let mut text = format!("{} {} ({})", db.severity(), code.code(), class(code.code()));
            // Class 42 (syntax, unknown or ambiguous names) is about the relay's own SQL: its
            // messages name identifiers and types, never a value.
            if code.code().starts_with("42") {
                text.push_str(": ");
                text.push_str(db.message());
            }
            if let Some(c) = db.constraint() {
                text.push_str(", constraint ");
                text.push_str(c);
            } else if let Some(t) = db.table() {
                text.push_str(", table ");
                text.push_str(t);
            }
            return Self::Postgres(text);
        }
        if e.is_closed() {
            return Self::Unavailable("the connection to PostgreSQL is closed".into());
        }
        // Connecting failed, or the socket broke mid-statement (PostgreSQL stopped, restarted
        // or unreachable): the texts name the OS error, never data.
        if std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>()) {
            return Self::Unavailable(e.to_string());
        }
        // Connection, protocol and type-conversion errors: their texts quote no data.
        Self::Postgres(e.to_string())
    }
}

/// Whether a SQLSTATE says the server is going away or not there yet, rather than that the
/// statement is at fault: a connection exception (class 08), or an operator intervention that
/// ends sessions (`admin_shutdown`, `crash_shutdown`, `cannot_connect_now`: stopping, crash
/// recovery, starting up), or a read-only server.
///
/// `read_only_sql_transaction` (25006) on the writer means the server it reached is no
/// longer the primary (a failover demoted it): the writer is dropped and the next write
/// connects again (with `target_session_attrs=read-write`, to the new primary).
fn unavailable(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "25006")
}

/// A few words for the SQLSTATE classes the relay may meet.
fn class(code: &str) -> &'static str {
    match code.get(..2).unwrap_or("") {
        "08" => "connection exception",
        "22" => "data exception",
        "23" => "integrity constraint violation",
        "25" => "invalid transaction state",
        "40" => "transaction rollback",
        "42" => "syntax error or access rule violation",
        "53" => "insufficient resources",
        "54" => "program limit exceeded",
        "57" => "operator intervention",
        "58" => "system error",
        _ => "error",
    }
}

/// How long a connection attempt may take when the URL does not say (`connect_timeout`): a
/// PostgreSQL that went away answers the relay's requests with a prompt 503, not a hang.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// TCP keepalive idle time: a connection to a server that vanished (host down, network cut,
/// no reset) is found dead within about a minute instead of the system's two hours.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);

/// Parses a `postgres://` URL (or key=value string) and refuses what the relay cannot do.
pub fn parse_url(url: &str) -> Result<Config> {
    let mut config: Config = url
        .parse()
        .map_err(|_| StoreError::Postgres("invalid PostgreSQL URL".into()))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_keepalives_idle() == Duration::from_secs(2 * 3600) {
        // The library's default (the URL did not set one).
        config.keepalives_idle(KEEPALIVE_IDLE);
    }
    if config.get_ssl_mode() == SslMode::Require {
        return Err(StoreError::Postgres(
            "sslmode=require is not supported: the relay connects to PostgreSQL without TLS \
             (loopback, a unix socket or a private network); use sslmode=disable or prefer, \
             or a tunnel"
                .into(),
        ));
    }
    Ok(config)
}

/// One connection and its prepared statements.
pub struct Conn {
    client: Client,
    stmts: HashMap<&'static str, Statement>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("statements", &self.stmts.len())
            .finish()
    }
}

impl Conn {
    pub fn connect(config: &Config) -> Result<Self> {
        let client = config.connect(NoTls).map_err(StoreError::from_pg)?;
        Ok(Self {
            client,
            stmts: HashMap::new(),
        })
    }

    /// The writer's connection. Its statements are prepared once and keep PostgreSQL's plan
    /// choice (`plan_cache_mode = auto`): planning every execution (`force_custom_plan`) cost
    /// as much server CPU as executing (6.6 s of planning beside 7.2 s of execution in a
    /// 5,000-message `load.sh e2e`). The one statement whose generic plan goes stale as a
    /// table grows, the group commit's lookup of ids over `unnest` (planned on an empty
    /// `messages` it stays a sequential scan: 4.7 ms a batch after 35,000 messages), runs
    /// through [`Self::query_planned`] instead.
    pub fn connect_writer(config: &Config) -> Result<Self> {
        Self::connect(config)
    }

    /// A connection whose transactions are read-only.
    pub fn connect_reader(config: &Config) -> Result<Self> {
        let mut c = Self::connect(config)?;
        c.batch("SET default_transaction_read_only = on")?;
        Ok(c)
    }

    /// The client, for statements that are not cached (DDL, transaction control).
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    fn stmt(&mut self, sql: &'static str) -> Result<Statement> {
        if let Some(s) = self.stmts.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql).map_err(StoreError::from_pg)?;
        self.stmts.insert(sql, s.clone());
        Ok(s)
    }

    pub fn query(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let s = self.stmt(sql)?;
        self.client.query(&s, params).map_err(StoreError::from_pg)
    }

    pub fn query_opt(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>> {
        let s = self.stmt(sql)?;
        self.client
            .query_opt(&s, params)
            .map_err(StoreError::from_pg)
    }

    pub fn query_one(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<Row> {
        let s = self.stmt(sql)?;
        self.client
            .query_one(&s, params)
            .map_err(StoreError::from_pg)
    }

    /// Like [`Self::query`], planned for these values and the tables' current size: the
    /// statement is prepared for this execution alone (a statement's first executions always
    /// get a custom plan), one round trip more than a cached one.
    pub fn query_planned(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>> {
        self.client.query(sql, params).map_err(StoreError::from_pg)
    }

    /// Runs a statement; the number of rows it changed.
    pub fn execute(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let s = self.stmt(sql)?;
        self.client.execute(&s, params).map_err(StoreError::from_pg)
    }

    /// Runs transaction control or DDL (simple protocol, one round trip for all of `sql`).
    pub fn batch(&mut self, sql: &str) -> Result<()> {
        self.client.batch_execute(sql).map_err(StoreError::from_pg)
    }

    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
}

/// Closes connections off the async runtime: `postgres::Client` blocks on its own runtime
/// when dropped, which tokio refuses on a thread that drives async tasks (a store dropped at
/// the end of an async test or at shutdown).
pub fn close(conns: Vec<Conn>) {
    if conns.is_empty() {
        return;
    }
    if tokio::runtime::Handle::try_current().is_ok() {
        let closer = std::thread::spawn(move || drop(conns));
        let _ = closer.join();
    } else {
        drop(conns);
    }
}

/// The writer and the readers of one database.
pub struct Connections {
    config: Config,
    /// `BEGIN` and the lock that serialises the relay's writers on this schema (several
    /// relays may share a database): one round trip.
    begin_write: String,
    writer: Mutex<Option<Conn>>,
    readers: Mutex<Readers>,
    reader_freed: Condvar,
}

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connections")
    }
}

#[derive(Default)]
struct Readers {
    idle: Vec<Conn>,
    busy: usize,
}

impl Connections {
    /// `first` is a connection already open (the one that migrated the schema); `lock_key`
    /// names the advisory lock writers take.
    pub fn new(config: Config, first: Conn, lock_key: i64) -> Self {
        Self {
            config,
            begin_write: format!("BEGIN; SELECT pg_advisory_xact_lock({lock_key})"),
            writer: Mutex::new(Some(first)),
            readers: Mutex::new(Readers::default()),
            reader_freed: Condvar::new(),
        }
    }

    fn writer(&self) -> MutexGuard<'_, Option<Conn>> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` in one write transaction and commits it; rolls back if `f` fails.
    ///
    /// A writer found closed is replaced by a new connection first; one that broke while idle
    /// (PostgreSQL restarted since its last use) fails at `BEGIN`, before anything ran, and is
    /// replaced once more. While PostgreSQL stays away, each call fails with
    /// [`StoreError::Unavailable`] (within the connect timeout) and the next one tries again.
    pub fn write<T>(&self, f: impl FnOnce(&mut Conn) -> Result<T>) -> Result<T> {
        let mut guard = self.writer();
        let began = match self.begin_on(&mut guard) {
            Err(e) if guard.as_ref().is_none_or(Conn::is_closed) => {
                tracing::debug!(error = %e, "the PostgreSQL writer broke while idle; reconnecting");
                close(guard.take().into_iter().collect());
                self.begin_on(&mut guard)
            }
            other => other,
        };
        let out = began.and_then(|()| {
            let conn = guard.as_mut().expect("a writer began a transaction");
            finish(conn, f)
        });
        // A writer that met an unavailable server is not kept even when its socket is open
        // (a primary demoted to a read-only standby, a server shutting down).
        if matches!(out, Err(StoreError::Unavailable(_)))
            || guard.as_ref().is_some_and(Conn::is_closed)
        {
            close(guard.take().into_iter().collect());
        }
        out
    }

    /// Begins a write transaction on the writer, connecting it first when there is none or
    /// it is closed.
    fn begin_on(&self, guard: &mut MutexGuard<'_, Option<Conn>>) -> Result<()> {
        if guard.as_ref().is_none_or(Conn::is_closed) {
            let old = guard.take();
            close(old.into_iter().collect());
            **guard = Some(Conn::connect_writer(&self.config)?);
        }
        let conn = guard.as_mut().expect("a writer was just connected");
        // `BEGIN` may have run and the lock after it failed: leave no transaction open.
        conn.batch(&self.begin_write).inspect_err(|_| {
            let _ = conn.batch("ROLLBACK");
        })
    }

    /// Runs `f` on a pooled reader: no transaction, one snapshot per statement (as SQLite's
    /// readers), so a read of one row is one round trip. Readers are read-only sessions.
    pub fn read<T>(&self, f: impl FnOnce(&mut Conn) -> Result<T>) -> Result<T> {
        let mut conn = self.take_reader()?;
        let out = f(&mut conn);
        let unavailable = matches!(out, Err(StoreError::Unavailable(_)));
        self.give_back(conn, unavailable);
        out
    }

    fn take_reader(&self) -> Result<Conn> {
        let mut r = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(c) = r.idle.pop() {
                r.busy += 1;
                return Ok(c);
            }
            if r.busy < MAX_READERS {
                r.busy += 1;
                drop(r);
                return Conn::connect_reader(&self.config).inspect_err(|_| {
                    self.readers.lock().unwrap_or_else(|p| p.into_inner()).busy -= 1;
                    self.reader_freed.notify_one();
                });
            }
            r = self.reader_freed.wait(r).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn give_back(&self, conn: Conn, unavailable: bool) {
        let mut r = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        r.busy -= 1;
        // A reader that broke says the server went away: the idle ones are as old, so they
        // go too (after PostgreSQL is back, one failed read each would follow otherwise).
        let broken = if unavailable || conn.is_closed() {
            let mut all = std::mem::take(&mut r.idle);
            all.push(conn);
            all
        } else {
            r.idle.push(conn);
            Vec::new()
        };
        drop(r);
        self.reader_freed.notify_all();
        close(broken);
    }

    /// Opens a connection outside the pool (schema work, the copier).
    pub fn connect(&self) -> Result<Conn> {
        Conn::connect(&self.config)
    }
}

impl Drop for Connections {
    fn drop(&mut self) {
        let mut all: Vec<Conn> = self
            .writer
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .into_iter()
            .collect();
        all.append(
            &mut self
                .readers
                .get_mut()
                .unwrap_or_else(|p| p.into_inner())
                .idle,
        );
        close(all);
    }
}

/// Runs `f` in the transaction begun on `conn`, then `COMMIT`, or `ROLLBACK` when it fails.
/// A `COMMIT` whose answer was lost (the connection broke) is an error: the caller
/// acknowledges nothing, and retries of the relay's writes are idempotent.
fn finish<T>(conn: &mut Conn, f: impl FnOnce(&mut Conn) -> Result<T>) -> Result<T> {
    match f(conn) {
        // `COMMIT` of a transaction that an error aborted rolls back without an error: the
        // `SELECT 1` before it fails in such a transaction, so a swallowed error cannot turn
        // into a silent rollback answered as a commit.
        Ok(v) => match conn.batch("SELECT 1; COMMIT") {
            Ok(()) => Ok(v),
            Err(e) => {
                let _ = conn.batch("ROLLBACK");
                Err(e)
            }
        },
        Err(e) => {
            let _ = conn.batch("ROLLBACK");
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What says "the server is away" (a 503 to the caller, the connection dropped), and
    /// what says the statement is at fault.
    #[test]
    fn unavailable_codes_are_the_connection_and_shutdown_ones() {
        for code in ["08006", "08001", "57P01", "57P02", "57P03", "25006"] {
            assert!(unavailable(code), "{code}");
        }
        for code in ["23505", "40001", "53100", "42P01", "57014", "22P02"] {
            assert!(!unavailable(code), "{code}");
        }
    }

    #[test]
    fn a_url_gets_a_connect_timeout_unless_it_has_one() {
        let c = parse_url("postgres://relay@127.0.0.1/db").expect("parses");
        assert_eq!(c.get_connect_timeout(), Some(&CONNECT_TIMEOUT));
        assert_eq!(c.get_keepalives_idle(), KEEPALIVE_IDLE);
        let c = parse_url("postgres://relay@127.0.0.1/db?connect_timeout=2&keepalives_idle=7")
            .expect("parses");
        assert_eq!(c.get_connect_timeout(), Some(&Duration::from_secs(2)));
        assert_eq!(c.get_keepalives_idle(), Duration::from_secs(7));
    }
}
