//! `simrelay send`, `simrelay status` and `simrelay wait-sms`: the API from a shell, for a QA
//! team's test script (`wait-sms` prints the SMS as JSON and exits 1 on timeout) and for a
//! first try. The relay's URL and an API key come from flags, the environment
//! (`SIMRELAY_URL`, `SIMRELAY_KEY`) or a TOML config file (`--config`, `SIMRELAY_CONFIG`,
//! default `~/.config/simrelay/cli.toml`), in that order.
//!
//! The HTTP helpers here ([`client`], [`call`]) are also those of `simrelay keys|accounts`
//! against a running relay.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use simrelay_server::api::inbox::{WAIT_LOOKBACK_MS, WAIT_MAX_SECS};
use simrelay_server::error::ErrorBody;
use simrelay_server::time_fmt::fmt_ms;

pub type CliResult = Result<Value, Box<dyn std::error::Error>>;

/// A reqwest client for the command line (`insecure`: accept a self-signed certificate).
pub fn client(insecure: bool) -> Result<reqwest::Client, Box<dyn std::error::Error>> {
    simrelay_server::install_crypto_provider();
    Ok(reqwest::Client::builder()
        .danger_accept_invalid_certs(insecure)
        .build()?)
}

/// An answer of the API as the command line prints it.
pub fn shown(view: impl Serialize) -> CliResult {
    Ok(serde_json::to_value(view)?)
}

/// A failed call: the HTTP status and the relay's error code (`wait_timeout`, ...).
#[derive(Debug, thiserror::Error)]
#[error("HTTP {status}: {message} ({code})")]
pub struct HttpError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

/// Sends a request; a non-2xx answer is an [`HttpError`] with the relay's code and message.
pub async fn call(req: reqwest::RequestBuilder) -> CliResult {
    let res = req.send().await.map_err(|e| e.without_url())?;
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(body);
    }
    let (code, message) = match serde_json::from_value::<ErrorBody>(body) {
        Ok(b) => (b.error.code.into_owned(), b.error.message),
        Err(_) => ("no code".into(), "no message".into()),
    };
    Err(Box::new(HttpError {
        status: status.as_u16(),
        code,
        message,
    }))
}

/// Where the relay is and how to sign in (flags, then environment, then config file).
#[derive(Debug, Args)]
pub struct Remote {
    /// The relay's base URL, e.g. http://127.0.0.1:8080.
    #[arg(long, env = "SIMRELAY_URL")]
    pub url: Option<String>,
    /// An API key (`send` needs the send scope, `status` and `wait-sms` read).
    #[arg(long, env = "SIMRELAY_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// Accept the relay's self-signed certificate.
    #[arg(long)]
    pub insecure: bool,
    /// A TOML file with `url`, `key` and `insecure` (default ~/.config/simrelay/cli.toml).
    #[arg(long, env = "SIMRELAY_CONFIG")]
    pub config: Option<PathBuf>,
}

/// The config file's keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    url: Option<String>,
    key: Option<String>,
    #[serde(default)]
    insecure: bool,
}

fn read_config(path: Option<&Path>) -> Result<FileConfig, Box<dyn std::error::Error>> {
    let default = std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".config/simrelay/cli.toml"))
        .filter(|p| p.exists());
    let Some(path) = path.map(Path::to_path_buf).or(default) else {
        return Ok(FileConfig::default());
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("config file {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("config file {}: {e}", path.display()).into())
}

/// A client and the base URL and key.
struct Conn {
    client: reqwest::Client,
    url: String,
    key: String,
}

impl Remote {
    fn connect(self) -> Result<Conn, Box<dyn std::error::Error>> {
        let file = read_config(self.config.as_deref())?;
        let url = self.url.or(file.url).ok_or(
            "no relay URL: give --url, SIMRELAY_URL or `url` in the config file (see --help)",
        )?;
        let key = self.key.or(file.key).ok_or(
            "no API key: give --key, SIMRELAY_KEY or `key` in the config file (see --help)",
        )?;
        Ok(Conn {
            client: client(self.insecure || file.insecure)?,
            url: url.trim_end_matches('/').to_string(),
            key,
        })
    }
}

/// `simrelay send|status|wait-sms`.
#[derive(Debug, Subcommand)]
pub enum ApiCommand {
    /// Send an SMS; prints the relay's answer (the message and its id).
    Send {
        #[command(flatten)]
        remote: Remote,
        /// A recipient (E.164, e.g. +15551230001); repeat for several.
        #[arg(long, required = true)]
        to: Vec<String>,
        /// The text.
        #[arg(long)]
        text: String,
        /// Your id for the message (the idempotency key: sending it again sends nothing).
        #[arg(long)]
        id: Option<String>,
    },
    /// Print a message's state, per recipient.
    Status {
        #[command(flatten)]
        remote: Remote,
        /// The message id.
        id: String,
    },
    /// Wait for an incoming SMS and print it as JSON; exit code 1 if none came in time.
    WaitSms {
        #[command(flatten)]
        remote: Remote,
        /// Only an SMS whose text contains this.
        #[arg(long)]
        contains: Option<String>,
        /// Only an SMS from this number.
        #[arg(long)]
        from: Option<String>,
        /// Seconds to wait.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
}

/// How a `wait-sms` ended when it did not print an SMS.
#[derive(Debug, thiserror::Error)]
#[error("no matching SMS arrived within {0} s")]
pub struct WaitTimedOut(pub u64);

/// Runs `simrelay send|status|wait-sms`.
pub async fn run(cmd: ApiCommand) -> CliResult {
    match cmd {
        ApiCommand::Send {
            remote,
            to,
            text,
            id,
        } => {
            let c = remote.connect()?;
            let mut body = json!({"to": to, "text": text});
            if let Some(id) = id {
                body["id"] = json!(id);
            }
            call(
                c.client
                    .post(format!("{}/v1/messages", c.url))
                    .bearer_auth(&c.key)
                    .json(&body),
            )
            .await
        }
        ApiCommand::Status { remote, id } => {
            let c = remote.connect()?;
            let mut url = reqwest::Url::parse(&format!("{}/v1/messages", c.url))?;
            url.path_segments_mut()
                .map_err(|()| "the relay URL cannot take a path")?
                .push(&id);
            call(c.client.get(url).bearer_auth(&c.key)).await
        }
        ApiCommand::WaitSms {
            remote,
            contains,
            from,
            timeout,
        } => wait_sms(remote.connect()?, contains, from, timeout).await,
    }
}

/// Waits in requests of at most the relay's maximum. The first request uses the relay's own
/// look-back (a minute before the call, on the relay's clock); later ones, for a timeout above
/// that maximum, look back to a minute before the command started (on this machine's clock),
/// so an SMS that arrived between two requests still matches.
async fn wait_sms(
    c: Conn,
    contains: Option<String>,
    from: Option<String>,
    timeout: u64,
) -> CliResult {
    let since = fmt_ms(simrelay_server::store::now_ms() - WAIT_LOOKBACK_MS);
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let mut first = true;
    loop {
        let left = deadline.saturating_duration_since(Instant::now()).as_secs();
        let mut query = vec![("timeout", left.min(WAIT_MAX_SECS).to_string())];
        if !std::mem::take(&mut first) {
            query.push(("since", since.clone()));
        }
        query.extend(contains.clone().map(|v| ("contains", v)));
        query.extend(from.clone().map(|v| ("from", v)));
        let req = c
            .client
            .get(format!("{}/v1/inbox/wait", c.url))
            .bearer_auth(&c.key)
            .query(&query);
        match call(req).await {
            Ok(sms) => return Ok(sms),
            Err(e)
                if e.downcast_ref::<HttpError>()
                    .is_some_and(|h| h.code == "wait_timeout") =>
            {
                if left <= WAIT_MAX_SECS {
                    return Err(Box::new(WaitTimedOut(timeout)));
                }
            }
            Err(e) => return Err(e),
        }
    }
}
