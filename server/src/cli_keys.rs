//! `simrelay keys create|list|revoke` and `simrelay accounts create|list`: the key lifecycle
//! from the command line, either on a data directory (opening its SQLite file directly, which
//! a running relay shares: a key revoked here is refused by it on its next request) or
//! against a running relay over its HTTP API (`--url` and `--key` / `SIMRELAY_KEY`). Both
//! print the API's JSON.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::json;
use simrelay_server::api::auth::Scopes;
use simrelay_server::api::keys::{check_name, check_scopes, new_key};
use simrelay_server::api::{Page, views};
use simrelay_server::store::Revoked;
use simrelay_server::store::{Store, now_ms};

use crate::cli::{CliResult, call as send, shown};

/// Where the command acts.
#[derive(Debug, Args)]
pub struct Target {
    /// The relay's data directory (opens its database directly).
    #[arg(long, conflicts_with = "url", required_unless_present = "url")]
    pub data: Option<PathBuf>,
    /// A running relay's base URL, e.g. https://relay.example.com.
    #[arg(long)]
    pub url: Option<String>,
    /// The API key to use with --url.
    #[arg(long, env = "SIMRELAY_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// With --url: accept the relay's self-signed certificate.
    #[arg(long)]
    pub insecure: bool,
}

/// `simrelay keys ...`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key; its secret is printed this once.
    Create {
        #[command(flatten)]
        target: Target,
        /// A name that says what the key is for.
        #[arg(long)]
        name: String,
        /// Comma-separated scopes among send, read, phones, webhooks, admin.
        #[arg(long, default_value = "send,read,phones,webhooks")]
        scopes: String,
        /// With --data: the account (default: the only account).
        #[arg(long)]
        account: Option<String>,
    },
    /// List keys (prefix, scopes, created, last used, revoked).
    List {
        #[command(flatten)]
        target: Target,
        /// With --data: only this account's keys.
        #[arg(long)]
        account: Option<String>,
    },
    /// Revoke a key by id.
    Revoke {
        #[command(flatten)]
        target: Target,
        id: String,
    },
}

/// `simrelay accounts ...`.
#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// Create an account and its first key (printed this once).
    Create {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        name: Option<String>,
        /// Comma-separated scopes of the first key.
        #[arg(long, default_value = "send,read,phones,webhooks")]
        key_scopes: String,
    },
    /// List accounts.
    List {
        #[command(flatten)]
        target: Target,
    },
}

fn scope_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

pub(crate) fn open(dir: &std::path::Path) -> Result<Store, Box<dyn std::error::Error>> {
    let path = dir.join("relay.sqlite");
    if !path.exists() {
        return Err(format!("no relay database in {}", dir.display()).into());
    }
    Ok(Store::open_sqlite(&path)?)
}

/// A client and the base URL and key of `target`.
pub(crate) fn remote(
    target: &Target,
) -> Result<(reqwest::Client, String, String), Box<dyn std::error::Error>> {
    let url = target.url.clone().ok_or("give --data or --url")?;
    let key = target
        .key
        .clone()
        .ok_or("--url needs --key or SIMRELAY_KEY")?;
    let client = crate::cli::client(target.insecure)?;
    Ok((client, url.trim_end_matches('/').to_string(), key))
}

/// The account a data-directory command acts on: the given one, or the only one.
pub(crate) fn pick_account(
    store: &Store,
    given: Option<String>,
) -> Result<String, Box<dyn std::error::Error>> {
    let accounts = store.list_accounts()?;
    match given {
        Some(a) if accounts.iter().any(|x| x.id == a) => Ok(a),
        Some(_) => Err("no such account (see simrelay accounts list)".into()),
        None if accounts.len() == 1 => Ok(accounts[0].id.clone()),
        None => Err("name the account with --account (see simrelay accounts list)".into()),
    }
}

pub(crate) fn api_error(e: simrelay_server::error::AppError) -> Box<dyn std::error::Error> {
    format!("{} ({})", e.message, e.code).into()
}

/// Runs `simrelay keys ...`.
pub async fn keys(cmd: KeysCommand) -> CliResult {
    match cmd {
        KeysCommand::Create {
            target,
            name,
            scopes,
            account,
        } => {
            if let Some(dir) = &target.data {
                let store = open(dir)?;
                let account = pick_account(&store, account)?;
                let scopes = check_scopes(Scopes::from_stored("admin"), &scope_list(&scopes))
                    .map_err(api_error)?;
                let name = check_name("name", &name).map_err(api_error)?;
                let (key, secret) = new_key(&account, name, scopes);
                store.create_key(&key)?;
                let row = store
                    .get_key(None, &key.id)?
                    .ok_or("the key was not stored")?;
                return shown(views::Key::created(row, secret));
            }
            let (client, url, key) = remote(&target)?;
            let body = json!({"name": name, "scopes": scope_list(&scopes)});
            send(
                client
                    .post(format!("{url}/v1/keys"))
                    .bearer_auth(key)
                    .json(&body),
            )
            .await
        }
        KeysCommand::List { target, account } => {
            if let Some(dir) = &target.data {
                let rows = open(dir)?.list_keys(account.as_deref())?;
                return shown(Page::<views::Key>::all(rows));
            }
            let (client, url, key) = remote(&target)?;
            send(client.get(format!("{url}/v1/keys")).bearer_auth(key)).await
        }
        KeysCommand::Revoke { target, id } => {
            if let Some(dir) = &target.data {
                return match open(dir)?.revoke_key(None, &id, now_ms())? {
                    Revoked::Done(row) => shown(views::Key::from(row)),
                    Revoked::NotFound => Err("no such key".into()),
                };
            }
            let (client, url, key) = remote(&target)?;
            send(
                client
                    .delete(format!("{url}/v1/keys/{id}"))
                    .bearer_auth(key),
            )
            .await
        }
    }
}

/// Runs `simrelay accounts ...`.
pub async fn accounts(cmd: AccountsCommand) -> CliResult {
    match cmd {
        AccountsCommand::Create {
            target,
            name,
            key_scopes,
        } => {
            if let Some(dir) = &target.data {
                let store = open(dir)?;
                let scopes = check_scopes(Scopes::from_stored("admin"), &scope_list(&key_scopes))
                    .map_err(api_error)?;
                let (key, secret) = new_key("", "first key".into(), scopes);
                let id = store.create_account(name.as_deref(), Some(&key), now_ms())?;
                let account = store
                    .list_accounts()?
                    .into_iter()
                    .find(|a| a.id == id)
                    .ok_or("the account was not stored")?;
                let row = store
                    .get_key(Some(&id), &key.id)?
                    .ok_or("the key was not stored")?;
                return shown(views::AccountCreated {
                    account: account.into(),
                    key: views::Key::created(row, secret),
                });
            }
            let (client, url, key) = remote(&target)?;
            let body = json!({"name": name, "key_scopes": scope_list(&key_scopes)});
            send(
                client
                    .post(format!("{url}/v1/accounts"))
                    .bearer_auth(key)
                    .json(&body),
            )
            .await
        }
        AccountsCommand::List { target } => {
            if let Some(dir) = &target.data {
                let rows = open(dir)?.list_accounts()?;
                return shown(Page::<views::Account>::all(rows));
            }
            let (client, url, key) = remote(&target)?;
            send(client.get(format!("{url}/v1/accounts")).bearer_auth(key)).await
        }
    }
}
