//! The key cache's listener: a connection of its own that `LISTEN`s on
//! [`key_cache::CHANNEL`] and drops the cache on every notification. While it is not
//! listening (before its first connection, after losing it) the cache is off, so no key is
//! ever served from a cache that could have missed a revoke. It ends when the store is gone.
//!
//! Every [`POLL`] it makes a round trip on the connection and then renews the cache's lease
//! ([`key_cache::LEASE`]) from the moment the round trip began: the server sends pending
//! notifications before it answers, so every revoke committed before then has been applied.
//! A connection that hangs without an error lets the lease lapse (the cache goes off) long
//! before TCP gives up on it.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use ::postgres::Config;
use ::postgres::fallible_iterator::FallibleIterator;

use crate::store::key_cache::{CHANNEL, KeyCache, LEASE};

/// How often the listener checks that the store still exists.
const POLL: Duration = Duration::from_secs(1);

/// First and longest wait between two connection attempts.
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// A connection whose sent data has gone unacknowledged this long is given up (the kernel's
/// `TCP_USER_TIMEOUT`), so the listener reconnects soon after a silent partition.
const USER_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts the listener of `cache` on a thread of its own.
pub fn spawn(mut config: Config, cache: &Arc<KeyCache>) {
    config.tcp_user_timeout(USER_TIMEOUT);
    let weak = Arc::downgrade(cache);
    let started = std::thread::Builder::new()
        .name("simrelay-pg-listen".into())
        .spawn(move || run(&config, &weak));
    if let Err(e) = started {
        // Without the thread the cache stays off: every lookup reads the database.
        tracing::warn!(error = %e, "the key cache's listener did not start; keys are read on every request");
    }
}

fn run(config: &Config, weak: &Weak<KeyCache>) {
    let mut backoff = MIN_BACKOFF;
    loop {
        if weak.strong_count() == 0 {
            return;
        }
        match listen(config, weak, &mut backoff) {
            Ok(()) => return,
            Err(e) => {
                if let Some(cache) = weak.upgrade() {
                    cache.off();
                }
                tracing::warn!(error = %e, "the key cache's listener lost its connection; keys are read on every request until it is back");
            }
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Listens until the store is gone (`Ok`) or the connection fails (`Err`); a connection that
/// listened resets `backoff`.
fn listen(
    config: &Config,
    weak: &Weak<KeyCache>,
    backoff: &mut Duration,
) -> Result<(), ::postgres::Error> {
    let mut client = config.connect(::postgres::NoTls)?;
    let began = Instant::now();
    client.batch_execute(&format!("LISTEN {CHANNEL}"))?;
    match weak.upgrade() {
        Some(cache) => cache.renew(began + LEASE),
        None => return Ok(()),
    }
    *backoff = MIN_BACKOFF;
    loop {
        let next = client.notifications().timeout_iter(POLL).next()?;
        let Some(cache) = weak.upgrade() else {
            return Ok(());
        };
        if next.is_some() {
            cache.invalidate();
        }
        // The round trip that renews the lease; notifications that came with it drop the keys
        // before the renewal.
        let began = Instant::now();
        client.batch_execute("SELECT 1")?;
        if client.notifications().iter().next()?.is_some() {
            cache.invalidate();
        }
        cache.renew(began + LEASE);
    }
}
