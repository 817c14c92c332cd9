//! Accounts and API keys: the lookup on every request, the key lifecycle (create, list,
//! revoke) and accounts.

use crate::store::{
    ACCOUNT_SCOPES, AccountRow, KeyAuth, KeyRow, Millis, NewKey, Result, Revoked, Store,
};

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

impl Store {
    /// The account a hashed API key that is not revoked belongs to.
    pub fn account_for_key(&self, key_hash: &str) -> Result<Option<String>> {
        Ok(self
            .key_by_hash(key_hash)?
            .filter(|k| !k.revoked)
            .map(|k| k.account_id))
    }

    /// Makes sure the hashed key exists with the scopes of a whole account, creating its
    /// account; returns the account id.
    pub fn ensure_api_key(&self, key_hash: &str, now: Millis) -> Result<String> {
        self.ensure_key(key_hash, None, "api key", ACCOUNT_SCOPES, now)
    }

    /// Makes sure the hashed key exists (a revoked one stays revoked), in `account` (created
    /// if needed) or a new account; returns the key's account.
    pub fn ensure_key(
        &self,
        key_hash: &str,
        account: Option<&str>,
        name: &str,
        scopes: &str,
        now: Millis,
    ) -> Result<String> {
        self.write(|tx| {
            if let Some(k) = tx.key_by_hash(key_hash)? {
                return Ok(k.account_id);
            }
            let account = match account {
                Some(a) => {
                    tx.ensure_account(a, now)?;
                    a.to_string()
                }
                None => {
                    let id = new_id();
                    tx.insert_account(&id, None, now)?;
                    id
                }
            };
            tx.insert_key(&NewKey {
                id: new_id(),
                account_id: account.clone(),
                name: name.to_string(),
                prefix: None,
                key_hash: key_hash.to_string(),
                scopes: scopes.to_string(),
                created_at: now,
            })?;
            Ok(account)
        })
    }

    /// The key with this hash, revoked or not (read on every authenticated request; from the
    /// key cache when the backend keeps one, `store::key_cache`).
    pub fn key_by_hash(&self, key_hash: &str) -> Result<Option<KeyAuth>> {
        let Some(cache) = self.key_cache() else {
            return self.read(|tx| tx.key_by_hash(key_hash));
        };
        if let Some(k) = cache.get(key_hash) {
            return Ok(Some(k));
        }
        let generation = cache.generation();
        let found = self.read(|tx| tx.key_by_hash(key_hash))?;
        if let (Some(g), Some(k)) = (generation, &found) {
            cache.insert(g, key_hash, k);
        }
        Ok(found)
    }

    /// Records a use of the key unless one was recorded in the last `min_gap` ms.
    pub fn touch_key(&self, id: &str, now: Millis, min_gap: Millis) -> Result<bool> {
        let touched = self.write(|tx| tx.touch_key(id, now, min_gap))?;
        if let Some(cache) = self.key_cache() {
            cache.touched(id, now);
        }
        Ok(touched)
    }

    pub fn create_key(&self, key: &NewKey) -> Result<()> {
        self.write(|tx| tx.insert_key(key))
    }

    /// Keys of the account (every account when `None`).
    pub fn list_keys(&self, account: Option<&str>) -> Result<Vec<KeyRow>> {
        self.read(|tx| tx.list_keys(account))
    }

    pub fn get_key(&self, account: Option<&str>, id: &str) -> Result<Option<KeyRow>> {
        self.read(|tx| tx.get_key(account, id))
    }

    /// Revokes a key of the account (of any account when `None`); revoking twice keeps the
    /// first time.
    pub fn revoke_key(&self, account: Option<&str>, id: &str, now: Millis) -> Result<Revoked> {
        let out = self.write(|tx| {
            tx.revoke_key(account, id, now)?;
            Ok(match tx.get_key(account, id)? {
                Some(k) => Revoked::Done(k),
                None => Revoked::NotFound,
            })
        });
        // This relay refuses the key from the next request on, whatever the notification
        // does (other relays drop theirs when it arrives). Also after a failed commit: the
        // cache only ever forgets.
        if let Some(cache) = self.key_cache() {
            cache.invalidate();
        }
        out
    }

    /// Whether an admin key that is not revoked exists.
    pub fn has_admin_key(&self) -> Result<bool> {
        self.read(|tx| tx.has_admin_key())
    }

    /// Creates an account and, when given, its first key (with `account_id` filled in) in one
    /// transaction; returns the account id.
    pub fn create_account(
        &self,
        name: Option<&str>,
        first_key: Option<&NewKey>,
        now: Millis,
    ) -> Result<String> {
        self.write(|tx| {
            let id = new_id();
            tx.insert_account(&id, name, now)?;
            if let Some(k) = first_key {
                tx.insert_key(&NewKey {
                    account_id: id.clone(),
                    ..k.clone()
                })?;
            }
            Ok(id)
        })
    }

    pub fn list_accounts(&self) -> Result<Vec<AccountRow>> {
        self.read(|tx| tx.list_accounts())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::scratch::open_test_store;

    #[test]
    fn revoked_keys_lose_their_account_and_touch_is_throttled() -> Result<()> {
        let dir = tempfile::tempdir().expect("temp dir");
        let s = open_test_store(dir.path())?;
        let acc = s.ensure_key("h1", None, "boot", ACCOUNT_SCOPES, 10)?;
        assert_eq!(s.ensure_key("h1", None, "boot", ACCOUNT_SCOPES, 11)?, acc);
        let id = s.key_by_hash("h1")?.expect("stored").id;
        assert!(s.touch_key(&id, 100, 60_000)?);
        assert!(!s.touch_key(&id, 100 + 59_999, 60_000)?);
        assert!(s.touch_key(&id, 100 + 60_000, 60_000)?);
        assert_eq!(s.revoke_key(Some("other"), &id, 5)?, Revoked::NotFound);
        assert!(
            matches!(s.revoke_key(Some(&acc), &id, 5)?, Revoked::Done(k) if k.revoked_at == Some(5))
        );
        // A second revoke keeps the first time; ensuring the key again does not revive it.
        assert!(matches!(s.revoke_key(None, &id, 9)?, Revoked::Done(k) if k.revoked_at == Some(5)));
        s.ensure_key("h1", None, "boot", ACCOUNT_SCOPES, 12)?;
        assert_eq!(s.account_for_key("h1")?, None);
        assert!(!s.has_admin_key()?);
        s.ensure_key("h2", Some(&acc), "admin", "admin", 13)?;
        assert!(s.has_admin_key()?);
        assert_eq!(s.list_keys(Some(&acc))?.len(), 2);
        assert_eq!(s.list_accounts()?[0].active_keys, 1);
        Ok(())
    }
}
