//! SIM pools and per-SIM settings.

use crate::pool_router::SimKey;
use crate::store::{Pool, PoolOutcome, Result, SimSettings, Store};

impl Store {
    /// Creates a pool; every SIM it names must be on one of the account's phones.
    pub fn create_pool(&self, account: &str, pool: &Pool) -> Result<PoolOutcome> {
        self.write(|tx| {
            if tx.pool_exists(account, &pool.name)? {
                return Ok(PoolOutcome::Exists);
            }
            let all = pool
                .members
                .iter()
                .chain(pool.prefixes.iter().flat_map(|(_, s)| s.iter()));
            for k in all {
                if !tx.phone_of_account(account, &k.phone)? {
                    return Ok(PoolOutcome::UnknownPhone);
                }
            }
            tx.insert_pool(account, pool)?;
            Ok(PoolOutcome::Created)
        })
    }

    pub fn list_pools(&self, account: &str) -> Result<Vec<Pool>> {
        self.read(|tx| tx.list_pools(account))
    }

    pub fn delete_pool(&self, account: &str, name: &str) -> Result<bool> {
        self.write(|tx| tx.delete_pool(account, name))
    }

    /// Stores a SIM's relay-side settings; false when the phone is not the account's.
    pub fn set_sim_settings(&self, account: &str, key: &SimKey, s: &SimSettings) -> Result<bool> {
        self.write(|tx| {
            if !tx.phone_of_account(account, &key.phone)? {
                return Ok(false);
            }
            tx.upsert_sim_settings(key, s)?;
            Ok(true)
        })
    }
}
