//! `simrelay users create|list|delete`: the Basic users of the SMS Gateway for Android
//! compatible API (docs/compat.md), on a data directory (its SQLite file, which a running relay
//! shares) or against a running relay (`POST /v1/users`, ...). Both print the API's JSON; a
//! generated password is printed once.

use clap::Subcommand;
use serde_json::json;
use simrelay_server::api::users::{CreateUser, User, validate};
use simrelay_server::api::{Page, views};
use simrelay_server::compat::auth::hash_password;
use simrelay_server::store::{CompatUser, now_ms};

use crate::cli::{CliResult, call as send, shown};
use crate::cli_keys::{Target, api_error, open, pick_account, remote};

/// `simrelay users ...`.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user; a generated password is printed this once.
    Create {
        #[command(flatten)]
        target: Target,
        /// 1 to 64 characters of A-Z a-z 0-9 . _ @ -.
        #[arg(long)]
        login: String,
        /// Read the password (12 to 256 printable characters) from the first line of stdin
        /// instead of generating one.
        #[arg(long)]
        password_stdin: bool,
        /// With --data: the account (default: the only account).
        #[arg(long)]
        account: Option<String>,
    },
    /// List users (with --data, of every account or of --account).
    List {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        account: Option<String>,
    },
    /// Delete a user: its Basic auth stops working at once.
    Delete {
        #[command(flatten)]
        target: Target,
        login: String,
        /// With --data: the account (default: the only account).
        #[arg(long)]
        account: Option<String>,
    },
}

fn read_password() -> Result<String, Box<dyn std::error::Error>> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Runs `simrelay users ...`.
pub async fn users(cmd: UsersCommand) -> CliResult {
    match cmd {
        UsersCommand::Create {
            target,
            login,
            password_stdin,
            account,
        } => {
            let password = if password_stdin {
                Some(read_password()?)
            } else {
                None
            };
            if let Some(dir) = &target.data {
                let store = open(dir)?;
                let account = pick_account(&store, account)?;
                let req = CreateUser {
                    login,
                    password,
                    account: None,
                };
                let (login, password, generated) = validate(&req).map_err(api_error)?;
                let user = CompatUser {
                    login,
                    account_id: account,
                    password_hash: hash_password(&password),
                    created_at: now_ms(),
                };
                if !store.create_compat_user(&user)? {
                    return Err("a user with this login exists".into());
                }
                let mut out = User::from(user);
                out.password = generated.then_some(password);
                return shown(out);
            }
            let (client, url, key) = remote(&target)?;
            let mut body = json!({ "login": login });
            if let Some(p) = password {
                body["password"] = json!(p);
            }
            send(
                client
                    .post(format!("{url}/v1/users"))
                    .bearer_auth(key)
                    .json(&body),
            )
            .await
        }
        UsersCommand::List { target, account } => {
            if let Some(dir) = &target.data {
                let store = open(dir)?;
                let accounts = match account {
                    Some(a) => vec![a],
                    None => store.list_accounts()?.into_iter().map(|a| a.id).collect(),
                };
                let mut rows = Vec::new();
                for a in accounts {
                    rows.extend(store.list_compat_users(&a)?);
                }
                return shown(Page::<User>::all(rows));
            }
            let (client, url, key) = remote(&target)?;
            send(client.get(format!("{url}/v1/users")).bearer_auth(key)).await
        }
        UsersCommand::Delete {
            target,
            login,
            account,
        } => {
            if let Some(dir) = &target.data {
                let store = open(dir)?;
                let account = pick_account(&store, account)?;
                if !store.delete_compat_user(&account, &login)? {
                    return Err("no such user".into());
                }
                return shown(json!({ "deleted": login, "at": views::Timestamp(now_ms()) }));
            }
            let (client, url, key) = remote(&target)?;
            send(
                client
                    .delete(format!("{url}/v1/users/{login}"))
                    .bearer_auth(key),
            )
            .await
        }
    }
}
