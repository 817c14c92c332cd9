//! Keys at start: the configured keys are checked for strength (at least 128 bits, else the
//! relay refuses to start), `api_key` and `admin_key` are made sure to exist (hashed; a revoked
//! one stays revoked), and when the store holds no admin key that is not revoked, one is
//! generated, stored hashed and handed back to be printed once. The configured SMS Gateway
//! users (`[[compat_users]]`) are made sure to exist in the `api_key`'s account.

use crate::api::auth::{self, Scopes};
use crate::api::hash_secret;
use crate::compat::auth::{hash_password, verify_password};
use crate::config::{Config, ConfigUser};
use crate::store::{CompatUser, NewKey};
use crate::store::{Db, now_ms};
use crate::{StartError, api::auth::Scope};

/// Checks the configured secrets; the error names the setting, never its value.
pub fn check_config(config: &Config) -> Result<(), StartError> {
    let secrets = [
        ("api_key", &config.api_key),
        ("admin_key", &config.admin_key),
        ("metrics_token", &config.metrics_token),
    ];
    for (name, value) in secrets {
        if let Some(v) = value {
            auth::check_strength(v).map_err(|why| {
                StartError::Config(format!(
                    "{name} (--{}) is too weak: {why}",
                    name.replace('_', "-")
                ))
            })?;
        }
    }
    Ok(())
}

/// Applies the configured keys; returns the admin key generated now, if one was.
pub async fn bootstrap(db: &Db, config: &Config) -> Result<Option<String>, StartError> {
    check_config(config)?;
    let now = now_ms();
    let mut account = None;
    if let Some(key) = &config.api_key {
        let hash = hash_secret(key);
        let acc = db
            .call(move |s| {
                let acc = s.ensure_key(
                    &hash,
                    None,
                    "config api_key",
                    &Scopes::account().to_string(),
                    now,
                )?;
                let revoked = s.key_by_hash(&hash)?.is_some_and(|k| k.revoked);
                Ok((acc, revoked))
            })
            .await?;
        if acc.1 {
            tracing::warn!("the configured api_key was revoked; it stays refused");
        }
        account = Some(acc.0);
    }
    if let Some(key) = &config.admin_key {
        let (hash, acc) = (hash_secret(key), account.clone());
        let admin = Scopes::of(&[Scope::Admin]).to_string();
        db.call(move |s| s.ensure_key(&hash, acc.as_deref(), "config admin_key", &admin, now))
            .await?;
    }
    if let Some(acc) = &account {
        users(db, acc, &config.compat_users, now).await?;
    }
    if db.call(|s| s.has_admin_key()).await? {
        return Ok(None);
    }
    let secret = auth::generate_key();
    let key = NewKey {
        id: uuid::Uuid::now_v7().to_string(),
        account_id: account.clone().unwrap_or_default(),
        name: "generated admin key".into(),
        prefix: Some(auth::key_prefix(&secret)),
        key_hash: hash_secret(&secret),
        scopes: Scopes::of(&[Scope::Admin]).to_string(),
        created_at: now,
    };
    db.call(move |s| match account {
        Some(_) => s.create_key(&key),
        None => s.create_account(Some("admin"), Some(&key), now).map(|_| ()),
    })
    .await?;
    Ok(Some(secret))
}

/// Makes sure each configured SMS Gateway user exists in `account` with its configured
/// password (a stored user whose password differs gets the new one). Users made with the API
/// or the CLI are left alone.
async fn users(db: &Db, account: &str, users: &[ConfigUser], now: i64) -> Result<(), StartError> {
    for u in users.iter().cloned() {
        let account = account.to_string();
        let login = u.login.clone();
        let put = db
            .call(move |s| {
                let current = s.compat_user(&u.login)?;
                if current.as_ref().is_some_and(|c| {
                    c.account_id == account && verify_password(&c.password_hash, &u.password)
                }) {
                    return Ok(true);
                }
                s.put_compat_user(&CompatUser {
                    login: u.login,
                    account_id: account,
                    password_hash: hash_password(&u.password),
                    created_at: now,
                })
            })
            .await?;
        if !put {
            return Err(StartError::Config(format!(
                "compat_users: the login {login:?} belongs to another account"
            )));
        }
    }
    Ok(())
}
