//! A cache of API keys for a backend that tells of key changes (PostgreSQL: `LISTEN`
//! [`CHANNEL`], notified by every revoke in the same transaction, so on its commit).
//!
//! The lookup on every request is then a hash-map read instead of a query. The promise of
//! issue 11, "a revoked key is refused on the next request", holds: the relay that revokes
//! drops its cache as soon as the revoke commits, and another relay on the same database
//! drops its own when the notification arrives (PostgreSQL sends it at the commit). While the
//! listening connection is down the cache is off (`live` false) and every lookup reads the
//! database, as without a cache. A lookup that raced an invalidation is not cached: entries
//! are only added under the generation they were read in.
//!
//! Only keys that exist and are not revoked are cached; an unknown secret always reads the
//! database (so wrong keys cannot fill the memory). SQLite has no cache: its lookup is a local
//! index read, and another process on the same file could not tell it of a revoke.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::store::{KeyAuth, Millis};

/// The notification channel of key changes.
pub const CHANNEL: &str = "simrelay_keys";

/// Most keys kept (beyond it the cache starts again empty).
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Default)]
struct Inner {
    live: bool,
    generation: u64,
    keys: HashMap<String, KeyAuth>,
    hits: u64,
}

/// The cache; shared by the store and the backend's listener.
#[derive(Debug, Default)]
pub struct KeyCache {
    inner: Mutex<Inner>,
    changed: Condvar,
}

impl KeyCache {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached key with this hash, when the cache is live.
    pub fn get(&self, key_hash: &str) -> Option<KeyAuth> {
        let mut g = self.lock();
        if !g.live {
            return None;
        }
        let found = g.keys.get(key_hash).cloned();
        if found.is_some() {
            g.hits += 1;
        }
        found
    }

    /// The generation to pass to [`Self::insert`] after reading the database; `None` when the
    /// cache is off.
    pub fn generation(&self) -> Option<u64> {
        let g = self.lock();
        g.live.then_some(g.generation)
    }

    /// Caches a key read from the database in `generation`, unless something changed since.
    pub fn insert(&self, generation: u64, key_hash: &str, key: &KeyAuth) {
        let mut g = self.lock();
        if !g.live || g.generation != generation || key.revoked {
            return;
        }
        if g.keys.len() >= MAX_KEYS {
            g.keys.clear();
        }
        g.keys.insert(key_hash.to_string(), key.clone());
    }

    /// Forgets every key (a key changed).
    pub fn invalidate(&self) {
        let mut g = self.lock();
        g.generation += 1;
        g.keys.clear();
        self.changed.notify_all();
    }

    /// Turns the cache on (the listener is listening) or off (its connection is gone); either
    /// way it starts empty.
    pub fn set_live(&self, live: bool) {
        let mut g = self.lock();
        g.live = live;
        g.generation += 1;
        g.keys.clear();
        self.changed.notify_all();
    }

    /// Whether the cache is on.
    pub fn is_live(&self) -> bool {
        self.lock().live
    }

    /// Records a use of the key `id` in its cached copy.
    pub fn touched(&self, id: &str, now: Millis) {
        let mut g = self.lock();
        for k in g.keys.values_mut().filter(|k| k.id == id) {
            k.last_used_at = Some(now);
        }
    }

    /// Lookups answered from the cache so far.
    pub fn hits(&self) -> u64 {
        self.lock().hits
    }

    /// Waits until the generation is past `seen` (an invalidation, or the cache turned on or
    /// off); returns whether it is. For tests and start-up, with `timeout` as a guard.
    pub fn wait_past(&self, seen: u64, timeout: Duration) -> bool {
        let g = self.lock();
        let (g, _) = self
            .changed
            .wait_timeout_while(g, timeout, |g| g.generation <= seen)
            .unwrap_or_else(|p| p.into_inner());
        g.generation > seen
    }

    /// The current generation, live or not (for [`Self::wait_past`]).
    pub fn current_generation(&self) -> u64 {
        self.lock().generation
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str) -> KeyAuth {
        KeyAuth {
            id: id.into(),
            account_id: "acc".into(),
            scopes: "send".into(),
            revoked: false,
            last_used_at: None,
        }
    }

    #[test]
    fn off_until_live_and_a_racing_read_is_not_cached() {
        let c = KeyCache::default();
        assert_eq!(c.generation(), None, "off until the listener listens");
        c.insert(0, "h", &key("k"));
        assert!(c.get("h").is_none());
        c.set_live(true);
        let g = c.generation().expect("live");
        c.insert(g, "h", &key("k"));
        assert_eq!(c.get("h").map(|k| k.id), Some("k".into()));
        assert_eq!(c.hits(), 1);

        // A read that started before a revoke's invalidation must not put its copy back.
        let before = c.generation().expect("live");
        c.invalidate();
        c.insert(before, "h", &key("k"));
        assert!(c.get("h").is_none());
        assert!(c.wait_past(before, Duration::ZERO));

        let mut revoked = key("r");
        revoked.revoked = true;
        let g = c.generation().expect("live");
        c.insert(g, "r", &revoked);
        assert!(c.get("r").is_none(), "revoked keys are never cached");

        c.set_live(false);
        assert!(c.get("h").is_none());
    }
}
