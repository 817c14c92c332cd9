//! A cache of API keys for a backend that tells of key changes (PostgreSQL: `LISTEN`
//! [`CHANNEL`], notified by every revoke in the same transaction, so on its commit).
//!
//! The lookup on every request is then a hash-map read instead of a query. The promise of
//! issue 11, "a revoked key is refused on the next request", holds: the relay that revokes
//! drops its cache as soon as the revoke commits, and another relay on the same database
//! drops its own when the notification arrives (PostgreSQL sends it at the commit). While the
//! listening connection is down the cache is off and every lookup reads the database, as
//! without a cache. A lookup that raced an invalidation is not cached: entries are only added
//! under the generation they were read in.
//!
//! The cache is on only within a lease that the listener renews after each round trip on its
//! connection (every second). A connection that dies silently (a partition, no reset) cannot
//! keep a stale cache on: the lease lapses ([`LEASE`]) and every lookup reads the database; a
//! lapsed lease, once renewed, starts empty.
//!
//! Only keys that exist and are not revoked are cached; an unknown secret always reads the
//! database (so wrong keys cannot fill the memory). SQLite has no cache: its lookup is a local
//! index read, and another process on the same file could not tell it of a revoke.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::store::{KeyAuth, Millis};

/// The notification channel of key changes.
pub const CHANNEL: &str = "simrelay_keys";

/// Most keys kept (beyond it the cache starts again empty).
const MAX_KEYS: usize = 100_000;

/// How long a renewal keeps the cache on: three of the listener's one-second round trips.
pub const LEASE: Duration = Duration::from_secs(3);

#[derive(Debug, Default)]
struct Inner {
    /// The cache is on until then; `None`: off.
    lease: Option<Instant>,
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
        if !g.live() {
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
        g.live().then_some(g.generation)
    }

    /// Caches a key read from the database in `generation`, unless something changed since.
    pub fn insert(&self, generation: u64, key_hash: &str, key: &KeyAuth) {
        let mut g = self.lock();
        if !g.live() || g.generation != generation || key.revoked {
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

    /// Keeps the cache on until `until` (the listener heard from its connection). A cache
    /// that was off, or whose lease lapsed, starts empty.
    pub fn renew(&self, until: Instant) {
        let mut g = self.lock();
        if !g.live() {
            g.generation += 1;
            g.keys.clear();
            self.changed.notify_all();
        }
        g.lease = Some(until);
    }

    /// Turns the cache off (the listener's connection is gone); it starts empty when renewed.
    pub fn off(&self) {
        let mut g = self.lock();
        g.lease = None;
        g.generation += 1;
        g.keys.clear();
        self.changed.notify_all();
    }

    /// Whether the cache is on.
    pub fn is_live(&self) -> bool {
        self.lock().live()
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

impl Inner {
    fn live(&self) -> bool {
        self.lease.is_some_and(|until| Instant::now() < until)
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
        c.renew(Instant::now() + LEASE);
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

        c.off();
        assert!(c.get("h").is_none());
    }

    /// A listener whose connection went quiet stops renewing: once the lease has run out the
    /// cache serves nothing, and a later renewal starts it empty (a revoke may have been
    /// missed meanwhile).
    #[test]
    fn a_lapsed_lease_serves_nothing_and_starts_again_empty() {
        let c = KeyCache::default();
        c.renew(Instant::now() + LEASE);
        let g = c.generation().expect("live");
        c.insert(g, "h", &key("k"));
        assert!(c.get("h").is_some());
        c.renew(Instant::now() + LEASE);
        assert!(
            c.get("h").is_some(),
            "a renewal within the lease keeps the keys"
        );

        c.renew(Instant::now() - Duration::from_millis(1));
        assert!(!c.is_live());
        assert!(c.get("h").is_none(), "a lapsed lease serves nothing");
        assert_eq!(c.generation(), None);
        c.insert(g, "h", &key("k"));

        c.renew(Instant::now() + LEASE);
        assert!(c.get("h").is_none(), "renewed after a lapse: empty");
        assert!(c.generation().is_some_and(|now| now > g));
    }
}
