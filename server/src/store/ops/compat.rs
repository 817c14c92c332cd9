//! What the SMS Gateway for Android compatible API (`crate::compat`) keeps: its users, each
//! account's settings document, the ids of the tokens it issued, and the relay's secrets.

use crate::store::tx::Tx;
use crate::store::{CompatUser, Millis, Result, Store, TokenRow};

impl Store {
    /// Stores a user; `false` when the login is taken.
    pub fn create_compat_user(&self, user: &CompatUser) -> Result<bool> {
        self.write(|tx| tx.insert_compat_user(user))
    }

    /// Stores a user, replacing one of the same login in the same account (its password
    /// changes); `false` when another account holds the login.
    pub fn put_compat_user(&self, user: &CompatUser) -> Result<bool> {
        self.write(|tx| {
            if tx
                .compat_user(&user.login)?
                .is_some_and(|u| u.account_id != user.account_id)
            {
                return Ok(false);
            }
            tx.delete_compat_user(&user.account_id, &user.login)?;
            tx.insert_compat_user(user)
        })
    }

    pub fn compat_user(&self, login: &str) -> Result<Option<CompatUser>> {
        self.read(|tx| tx.compat_user(login))
    }

    pub fn list_compat_users(&self, account: &str) -> Result<Vec<CompatUser>> {
        self.read(|tx| tx.list_compat_users(account))
    }

    pub fn delete_compat_user(&self, account: &str, login: &str) -> Result<bool> {
        self.write(|tx| tx.delete_compat_user(account, login))
    }

    /// The account's settings document, if it was ever written.
    pub fn compat_settings(&self, account: &str) -> Result<Option<String>> {
        self.read(|tx| tx.compat_settings(account))
    }

    /// Replaces the account's settings document, computed by `update` from the stored one in
    /// the same transaction (so two concurrent PATCHes do not lose one another's fields).
    /// `signing_key` of the result, when given, becomes the secret of the account's SMS
    /// Gateway webhooks.
    pub fn update_compat_settings<E>(
        &self,
        account: &str,
        now: Millis,
        update: impl Fn(Option<&str>) -> std::result::Result<(String, Option<String>), E>,
    ) -> Result<std::result::Result<String, E>> {
        self.write(|tx: &mut dyn Tx| {
            let stored = tx.compat_settings(account)?;
            match update(stored.as_deref()) {
                Err(e) => Ok(Err(e)),
                Ok((body, signing_key)) => {
                    tx.put_compat_settings(account, &body, now)?;
                    if let Some(key) = signing_key {
                        tx.set_smsgate_webhook_secret(account, &key)?;
                    }
                    Ok(Ok(body))
                }
            }
        })
    }

    pub fn insert_token(&self, token: &TokenRow) -> Result<()> {
        self.write(|tx| tx.insert_token(token))
    }

    pub fn token(&self, jti: &str) -> Result<Option<TokenRow>> {
        self.read(|tx| tx.token(jti))
    }

    pub fn revoke_token(&self, account: &str, jti: &str, now: Millis) -> Result<bool> {
        self.write(|tx| tx.revoke_token(account, jti, now))
    }

    /// Registers `hook`, or replaces the account's registration with its id (pending
    /// deliveries stay); `false` when another account has that id.
    pub fn upsert_webhook(&self, account: &str, hook: &crate::store::Webhook) -> Result<bool> {
        self.write(|tx| match tx.webhook_account(&hook.id)? {
            Some(a) if a != account => Ok(false),
            Some(_) => tx.update_webhook(account, hook).map(|()| true),
            None => tx.insert_webhook(account, hook).map(|()| true),
        })
    }

    /// Queues a `system:ping` with its health (`crate::compat::ping`) per phone of `pings`
    /// for the account's SMS Gateway webhooks, but for phones another relay of the cluster
    /// pinged less than `every` ms ago; returns how many deliveries.
    pub fn queue_pings(
        &self,
        account: &str,
        pings: &[(String, serde_json::Value)],
        now: Millis,
        every: Millis,
    ) -> Result<usize> {
        self.write(|tx| super::webhooks::queue_pings(tx, account, pings, now, every))
    }

    /// The relay secret `name` (stored as `candidate` the first time).
    pub fn relay_secret(&self, name: &str, candidate: &str) -> Result<String> {
        self.write(|tx| tx.relay_secret(name, candidate))
    }
}

impl Store {
    /// A page of the account's messages and how many match in all.
    pub fn query_messages(
        &self,
        account: &str,
        q: &crate::store::MessageQuery,
    ) -> Result<(Vec<crate::store::MessageView>, u64)> {
        self.read(|tx| tx.query_messages(account, q))
    }

    /// A page of the account's incoming SMS (newest first) and how many match in all.
    pub fn query_inbox(
        &self,
        account: &str,
        q: &crate::store::InboxQuery,
    ) -> Result<(Vec<crate::store::InboxItem>, u64)> {
        self.read(|tx| tx.query_inbox(account, q))
    }
}

impl Store {
    /// The account's history changes at `from..=to`, newest first, at most `limit`.
    pub fn account_history(
        &self,
        account: &str,
        from: Millis,
        to: Millis,
        limit: u32,
    ) -> Result<Vec<crate::store::AccountHistoryRow>> {
        self.read(|tx| tx.account_history(account, from, to, limit))
    }

    /// Queues the account's stored SMS matching `q` (its offset and limit ignored) for the
    /// SMS Gateway webhooks again, in one transaction; returns how many deliveries.
    pub fn redeliver_received(
        &self,
        account: &str,
        q: &crate::store::InboxQuery,
        mode: crate::store::Redelivery,
        now: Millis,
    ) -> Result<usize> {
        const PAGE: u32 = 500;
        self.write(|tx| {
            let mut items = Vec::new();
            let mut page = q.clone();
            page.limit = PAGE;
            loop {
                let (got, _) = tx.query_inbox(account, &page)?;
                let n = got.len();
                items.extend(got);
                if n < PAGE as usize {
                    break;
                }
                page.offset += PAGE;
            }
            // Oldest first, as they arrived.
            items.reverse();
            super::webhooks::redeliver_received(tx, account, &items, mode, now)
        })
    }
}
