//! The key cache (PostgreSQL only: `store::key_cache`): a second lookup is served from it, a
//! revoke on this relay is seen by the very next lookup, and one on another relay sharing the
//! database as soon as its notification arrives. On SQLite there is no cache.

use std::time::Duration;

use simrelay_server::store::Store;
use simrelay_server::store::postgres::scratch::{database_url_for, open_test_store};

/// A guard only: the notification arrives in milliseconds.
const GUARD: Duration = Duration::from_secs(20);

fn key_id(store: &Store, account: &str) -> Result<String, Box<dyn std::error::Error>> {
    Ok(store.list_keys(Some(account))?.remove(0).id)
}

#[test]
fn a_revoke_on_either_relay_empties_the_cache() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let Some(url) = database_url_for(dir.path()) else {
        let store = open_test_store(dir.path())?;
        assert!(store.key_cache().is_none(), "SQLite reads keys every time");
        return Ok(());
    };
    // Two relays on one database.
    let a = Store::open_postgres(&url)?;
    let b = Store::open_postgres(&url)?;
    let cache = a.key_cache().expect("PostgreSQL keeps a key cache");
    assert!(
        cache.wait_past(0, GUARD) && cache.is_live(),
        "the listener listens"
    );
    let b_cache = b.key_cache().expect("cache");
    assert!(b_cache.wait_past(0, GUARD) && b_cache.is_live());

    let account = a.ensure_api_key("hash-1", 1)?;
    let first = a.key_by_hash("hash-1")?.expect("key");
    let hits = cache.hits();
    assert_eq!(a.key_by_hash("hash-1")?, Some(first.clone()));
    assert_eq!(cache.hits(), hits + 1, "the second lookup is the cache's");

    // Revoked by the other relay: gone from this one's cache when the notification arrives.
    let seen = cache.current_generation();
    b.revoke_key(None, &key_id(&b, &account)?, 5)?;
    assert!(cache.wait_past(seen, GUARD), "the notification arrives");
    let k = a.key_by_hash("hash-1")?.expect("key");
    assert!(k.revoked, "refused after the other relay's revoke");
    assert_eq!(a.account_for_key("hash-1")?, None);

    // Revoked here: refused by the very next lookup, before any notification.
    let other = a.ensure_key("hash-2", Some(&account), "second", "send", 6)?;
    assert_eq!(other, account);
    assert!(a.key_by_hash("hash-2")?.is_some());
    let hits = cache.hits();
    assert!(a.key_by_hash("hash-2")?.is_some_and(|k| !k.revoked));
    assert_eq!(cache.hits(), hits + 1);
    let id = a
        .list_keys(Some(&account))?
        .into_iter()
        .find(|k| k.name == "second")
        .expect("second key")
        .id;
    a.revoke_key(Some(&account), &id, 7)?;
    assert!(a.key_by_hash("hash-2")?.is_some_and(|k| k.revoked));

    // A key's last use is recorded in the cached copy too (so it is written once per gap).
    let b_first = b.key_by_hash("hash-1")?.expect("key");
    assert!(b_first.revoked);
    Ok(())
}
