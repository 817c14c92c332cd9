//! Scratch schemas for tests: each store a test opens on PostgreSQL gets a schema of its own
//! (`CREATE SCHEMA t_<time>_<random>`, named in the URL's `search_path`), so tests stay
//! independent and run in parallel on one database. Schemas older than [`KEEP_SECS`] are
//! dropped by the next process that makes one (tests never outlive that).

use std::sync::Once;

use rand::Rng;

use crate::store::{Result, StoreError};

/// The variable naming the PostgreSQL database the tests run on (unset: SQLite).
pub const TEST_DATABASE_ENV: &str = "SIMRELAY_TEST_DATABASE_URL";

/// Age after which a scratch schema is dropped.
pub const KEEP_SECS: u64 = 6 * 3600;

/// The PostgreSQL URL the tests run on, when [`TEST_DATABASE_ENV`] is set.
pub fn test_database_url() -> Option<String> {
    std::env::var(TEST_DATABASE_ENV)
        .ok()
        .filter(|u| !u.trim().is_empty())
}

/// The PostgreSQL URL of the relay whose data directory is `dir`, when the tests run on
/// PostgreSQL: a scratch schema made on first use and remembered in the directory, so that a
/// relay restarted on the same directory (or a second process on it) finds its data.
pub fn database_url_for(dir: &std::path::Path) -> Option<String> {
    let base = test_database_url()?;
    let file = dir.join("test-database-url");
    if let Ok(url) = std::fs::read_to_string(&file) {
        return Some(url);
    }
    let url = scratch_schema(&base).expect("a scratch schema is made on the test database");
    // Private, as the relay makes its data directory.
    let mut mk = std::fs::DirBuilder::new();
    mk.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut mk, 0o700);
    mk.create(dir)
        .expect("the test's data directory can be made");
    std::fs::write(&file, &url).expect("the scratch schema's URL is remembered");
    Some(url)
}

/// The store a test in `dir` works on: SQLite in `dir/relay.sqlite` by default, a scratch
/// schema of the test database when [`TEST_DATABASE_ENV`] is set (the same one for every
/// opening in `dir`, so reopening finds the data). Test support.
pub fn open_test_store(dir: &std::path::Path) -> Result<crate::store::Store> {
    match database_url_for(dir) {
        Some(url) => crate::store::Store::open_postgres(&url),
        None => crate::store::Store::open_sqlite(&dir.join("relay.sqlite")),
    }
}

/// `url` with its connections' `search_path` set to `schema` (and nothing else).
pub fn with_search_path(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}")
}

/// Creates a fresh schema in the database at `url`; returns a URL whose connections use it.
/// Runs on a thread of its own, so it may be called from async code.
pub fn scratch_schema(url: &str) -> Result<String> {
    let url = url.to_string();
    std::thread::spawn(move || create(&url))
        .join()
        .map_err(|_| StoreError::Postgres("the scratch-schema thread panicked".into()))?
}

fn create(url: &str) -> Result<String> {
    let config = super::conn::parse_url(url)?;
    let mut conn = super::conn::Conn::connect(&config)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    static SWEEP: Once = Once::new();
    let mut swept = Ok(());
    SWEEP.call_once(|| swept = sweep(&mut conn, now));
    swept?;
    let name = format!("t_{now}_{:016x}", rand::rng().random::<u64>());
    conn.batch(&format!("CREATE SCHEMA {name}"))?;
    Ok(with_search_path(url, &name))
}

/// Drops the scratch schemas made more than [`KEEP_SECS`] ago.
fn sweep(conn: &mut super::conn::Conn, now: u64) -> Result<()> {
    let rows = conn.query(
        "SELECT nspname FROM pg_namespace WHERE nspname ~ '^t_[0-9]+_[0-9a-f]{16}$'",
        &[],
    )?;
    for row in rows {
        let name: String = row.get(0);
        let made: u64 = name
            .split('_')
            .nth(1)
            .and_then(|t| t.parse().ok())
            .unwrap_or(u64::MAX);
        if made.saturating_add(KEEP_SECS) < now {
            // Another process may be dropping it too.
            let _ = conn.batch(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"));
        }
    }
    Ok(())
}
