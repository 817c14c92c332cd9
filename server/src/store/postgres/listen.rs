//! The key cache's listener: a connection of its own that `LISTEN`s on
//! [`key_cache::CHANNEL`] and drops the cache on every notification. While it is not
//! listening (before its first connection, after losing it) the cache is off, so no key is
//! ever served from a cache that could have missed a revoke. It ends when the store is gone.

use std::sync::{Arc, Weak};
use std::time::Duration;

use ::postgres::Config;
use ::postgres::fallible_iterator::FallibleIterator;

use crate::store::key_cache::{CHANNEL, KeyCache};

/// How often the listener checks that the store still exists.
const POLL: Duration = Duration::from_secs(1);

/// Longest wait between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Starts the listener of `cache` on a thread of its own.
pub fn spawn(config: Config, cache: &Arc<KeyCache>) {
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
    let mut backoff = Duration::from_millis(200);
    loop {
        if weak.strong_count() == 0 {
            return;
        }
        match listen(config, weak) {
            Ok(()) => return,
            Err(e) => {
                if let Some(cache) = weak.upgrade() {
                    cache.set_live(false);
                }
                tracing::warn!(error = %e, "the key cache's listener lost its connection; keys are read on every request until it is back");
            }
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Listens until the store is gone (`Ok`) or the connection fails (`Err`).
fn listen(config: &Config, weak: &Weak<KeyCache>) -> Result<(), ::postgres::Error> {
    let mut client = config.connect(::postgres::NoTls)?;
    client.batch_execute(&format!("LISTEN {CHANNEL}"))?;
    match weak.upgrade() {
        Some(cache) => cache.set_live(true),
        None => return Ok(()),
    }
    loop {
        let next = client.notifications().timeout_iter(POLL).next()?;
        let Some(cache) = weak.upgrade() else {
            return Ok(());
        };
        if next.is_some() {
            cache.invalidate();
        }
        drop(cache);
        if client.is_closed() {
            // A connection closed without a notification error: fail the next use now.
            client.batch_execute("SELECT 1")?;
        }
    }
}
