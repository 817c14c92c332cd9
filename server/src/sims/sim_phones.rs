//! `simrelay sim-phones`: N simulated phones in one process, against any relay.
//!
//! Each phone is the real core engine with the simulated radio, exactly as in the demo, but
//! durable and separate from the relay: phone `i` keeps its queue in `DIR/phone-i.sqlite` and
//! a ledger of every part its radio transmitted in `DIR/phone-i.ledger` (one
//! `message_id\tidx\tpart` line per transmission, written before the radio answers), so the
//! count survives a `kill -9`. On first run a phone pairs (with a code from `--pairing-code`,
//! or one made through the API with `--api-key`) and the core stores its device token in its
//! own file; a restart on the same directory reconnects as the same phones.
//!
//! The pairing-code requests use the same TLS settings as the link (`--pin-sha256`, else the
//! web's CAs). What retrying cannot fix (a bad or mismatched pin, an untrusted certificate, a
//! refused pairing code or API key) ends the command with a message saying so; a relay that
//! is unreachable or restarting is retried.
//!
//! Stdout is for tools: one `phone <i> paired` or `phone <i> resumed` line per phone, then
//! `sim-phones ready <n>`. The fault tests and the load benchmarks drive the relay this way.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use simrelay_core::link::{LinkError, pair};
use simrelay_core::phone::{LinkConfig, Phone, PhoneConfig};
use simrelay_core::sim_modem::{SimBehaviour, SimModem, SimModemConfig};
use simrelay_core::{Engine, EngineConfig, Passphrase, SimConfig};

/// Flags of `simrelay sim-phones`.
#[derive(Debug, Args)]
pub struct SimPhonesArgs {
    /// The relay's base URL (`http://host:port` or `https://...`); the phones link to the
    /// same host and port over `ws://` or `wss://`.
    #[arg(long)]
    pub relay: String,
    /// Number of simulated phones.
    #[arg(long, default_value_t = 1)]
    pub count: usize,
    /// Directory of the phones' SQLite files and radio ledgers.
    #[arg(long)]
    pub data: PathBuf,
    /// API key used to create pairing codes for phones not paired yet.
    #[arg(long, env = "SIMRELAY_API_KEY")]
    pub api_key: Option<String>,
    /// Pairing codes for phones not paired yet, used in order (instead of `--api-key`).
    #[arg(long = "pairing-code")]
    pub pairing_codes: Vec<String>,
    /// SHA-256 pin of a self-signed relay certificate (hex).
    #[arg(long)]
    pub pin_sha256: Option<String>,
    /// Radio latency from hand-over to the sent result, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: i64,
    /// Delay from the sent result to the delivery report, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub report_delay_ms: i64,
    /// Pace of each simulated SIM in parts per minute (default: unpaced).
    #[arg(long)]
    pub parts_per_minute: Option<u32>,
    /// How long a hand-over waits for its sent result before it ends `unknown`.
    #[arg(long)]
    pub sent_timeout_ms: Option<i64>,
    /// How long a sent recipient waits for its delivery report before it ends `unknown`.
    #[arg(long)]
    pub report_timeout_ms: Option<i64>,
    /// End-to-end passphrase of every phone: decrypts messages sent encrypted, encrypts
    /// incoming SMS (the engine's `passphrase`).
    #[arg(long, env = "SIMRELAY_PASSPHRASE", hide_env_values = true, value_parser = passphrase)]
    pub passphrase: Option<Passphrase>,
    /// Numbers starting with this answer every SMS sent to them (the simulated far end: a
    /// text comes back as `echo: <text>`, a data SMS with its payload), so that tests get
    /// incoming SMS through the API. E.g. `+1555019`.
    #[arg(long)]
    pub echo_prefix: Option<String>,
    /// Links each phone keeps at most, one per relay node of a cluster (set at pairing; a
    /// resumed phone keeps its own).
    #[arg(long, default_value_t = simrelay_core::phone::DEFAULT_MAX_LINKS,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(simrelay_core::phone::MAX_LINKS_LIMIT)))]
    pub max_links: u32,
}

fn passphrase(s: &str) -> Result<Passphrase, String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    Ok(Passphrase::new(s))
}

/// Errors of `sim-phones`.
#[derive(Debug, thiserror::Error)]
pub enum SimPhonesError {
    #[error("phone {0} is not paired and there is no pairing code or API key for it")]
    NoCode(usize),
    #[error("creating a pairing code: {0}")]
    Api(String),
    #[error("starting a simulated phone: {0}")]
    Phone(#[from] simrelay_core::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("relay URL must start with http:// or https://")]
    BadUrl,
    #[error("phone {phone}: {reason} (retrying cannot fix this)")]
    Unfixable { phone: usize, reason: String },
}

/// Whether an error text is a TLS certificate failure (untrusted, wrong name, pin mismatch):
/// the same relay answers the same way on every retry.
fn is_certificate_error(text: &str) -> bool {
    text.contains("certificate")
}

/// A reqwest error's text with its causes (the certificate failure is a cause's text).
fn error_chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The HTTP client for pairing codes: the link's TLS settings, so a pinned self-signed relay
/// is reachable and nothing else is trusted.
fn http_client(args: &SimPhonesArgs) -> Result<reqwest::Client, SimPhonesError> {
    let unfixable = |reason: String| SimPhonesError::Unfixable { phone: 0, reason };
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(30));
    if args.relay.starts_with("https://") {
        let tls = simrelay_core::link::client_config(args.pin_sha256.as_deref())
            .map_err(|e| unfixable(e.to_string()))?;
        builder = builder.use_preconfigured_tls(tls);
    } else if args.pin_sha256.is_some() {
        return Err(unfixable(
            "a certificate pin needs an https:// relay URL".into(),
        ));
    }
    builder
        .build()
        .map_err(|e| SimPhonesError::Api(e.to_string()))
}

/// Running simulated phones: `(index, phone, radio)`.
#[derive(Debug)]
pub struct SimPhones {
    pub phones: Vec<(usize, Phone, SimModem)>,
}

/// The database file of phone `i` under `dir`.
pub fn db_path(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("phone-{i}.sqlite"))
}

/// The radio ledger of phone `i` under `dir`.
pub fn ledger_path(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("phone-{i}.ledger"))
}

fn ws_base(relay: &str) -> Result<String, SimPhonesError> {
    let relay = relay.trim_end_matches('/');
    if let Some(rest) = relay.strip_prefix("http://") {
        Ok(format!("ws://{rest}"))
    } else if let Some(rest) = relay.strip_prefix("https://") {
        Ok(format!("wss://{rest}"))
    } else {
        Err(SimPhonesError::BadUrl)
    }
}

fn engine_config(args: &SimPhonesArgs) -> EngineConfig {
    let mut c = EngineConfig::unpaced();
    if let Some(p) = args.parts_per_minute {
        c.parts_per_minute = p.max(1);
    }
    if let Some(ms) = args.sent_timeout_ms {
        c.sent_timeout_ms = ms.max(1);
    }
    if let Some(ms) = args.report_timeout_ms {
        c.report_timeout_ms = ms.max(1);
    }
    c.passphrase = args.passphrase.clone();
    c
}

/// Whether the phone file at `path` holds a link (token) from an earlier run.
fn is_paired(path: &Path, config: &EngineConfig) -> Result<bool, SimPhonesError> {
    if !path.exists() {
        return Ok(false);
    }
    let engine = Engine::open(path, config.clone())?;
    Ok(engine.setting("link")?.is_some())
}

/// A new pairing code from the API: `Api` errors may pass, `Unfixable` ones do not.
async fn new_code(
    client: &reqwest::Client,
    relay: &str,
    key: &str,
    phone: usize,
) -> Result<String, SimPhonesError> {
    let res = client
        .post(format!("{}/v1/pairing-codes", relay.trim_end_matches('/')))
        .bearer_auth(key)
        .send()
        .await
        .map_err(|e| {
            let text = error_chain(&e.without_url());
            if is_certificate_error(&text) {
                SimPhonesError::Unfixable {
                    phone,
                    reason: format!("creating a pairing code: {text}"),
                }
            } else {
                SimPhonesError::Api(text)
            }
        })?;
    let status = res.status();
    if matches!(status.as_u16(), 401 | 403) {
        return Err(SimPhonesError::Unfixable {
            phone,
            reason: format!("the relay refused the API key (HTTP {status})"),
        });
    }
    let body: serde_json::Value = res
        .json()
        .await
        .map_err(|e| SimPhonesError::Api(e.without_url().to_string()))?;
    match body["code"].as_str() {
        Some(code) if status.is_success() => Ok(code.to_string()),
        _ => Err(SimPhonesError::Api(format!("HTTP {status}"))),
    }
}

/// Pairs phone `i`, retrying transport failures (the relay may be restarting).
async fn pair_phone(
    args: &SimPhonesArgs,
    client: &reqwest::Client,
    ws: &str,
    i: usize,
    given: Option<&String>,
) -> Result<LinkConfig, SimPhonesError> {
    let mut backoff = Duration::from_millis(100);
    loop {
        let code = match (given, &args.api_key) {
            (Some(code), _) => code.clone(),
            (None, Some(key)) => match new_code(client, &args.relay, key, i).await {
                Ok(code) => code,
                Err(e @ SimPhonesError::Unfixable { .. }) => return Err(e),
                Err(e) => {
                    tracing::warn!(phone = i, "pairing code: {e}; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            },
            (None, None) => return Err(SimPhonesError::NoCode(i)),
        };
        let name = format!("sim-phone-{i}");
        match pair(ws, &code, Some(&name), args.pin_sha256.as_deref()).await {
            Ok(paired) => {
                return Ok(LinkConfig {
                    url: ws.to_string(),
                    token: paired.token,
                    pin_sha256: args.pin_sha256.clone(),
                    // A cluster's nodes: the phone's core dials every one.
                    nodes: paired.nodes,
                    max_links: args.max_links,
                });
            }
            // A refused code stays refused; a given code cannot be replaced.
            Err(e @ LinkError::Refused { .. }) if given.is_some() => {
                return Err(SimPhonesError::Unfixable {
                    phone: i,
                    reason: format!("pairing code: {e}"),
                });
            }
            Err(e @ (LinkError::BadUrl | LinkError::BadPin | LinkError::PinWithoutTls)) => {
                return Err(SimPhonesError::Unfixable {
                    phone: i,
                    reason: e.to_string(),
                });
            }
            Err(LinkError::Connect(text)) if is_certificate_error(&text) => {
                return Err(SimPhonesError::Unfixable {
                    phone: i,
                    reason: format!("connect: {text}"),
                });
            }
            Err(e) => {
                tracing::warn!(phone = i, "pairing: {e}; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// The sub id of a simulated phone's one SIM.
pub const SIM: i32 = 1;

/// Starts one simulated phone on `modem` with one SIM ([`SIM`], slot 0), as the demo and
/// `sim-phones` both run them.
pub fn start_phone(config: PhoneConfig, modem: &SimModem) -> Result<Phone, simrelay_core::Error> {
    let phone = Phone::start(config, Box::new(modem.clone()))?;
    phone.handle().set_sims(vec![SimConfig {
        sub_id: SIM,
        slot: 0,
        carrier: Some("Simulated".into()),
        parts_per_minute: None,
        daily_cap: None,
    }])?;
    Ok(phone)
}

/// Starts (pairing first where needed) `args.count` simulated phones; prints one
/// `phone <i> paired` or `phone <i> resumed` line per phone.
pub async fn start(args: &SimPhonesArgs) -> Result<SimPhones, SimPhonesError> {
    crate::install_crypto_provider();
    std::fs::create_dir_all(&args.data)?;
    let ws = ws_base(&args.relay)?;
    let config = engine_config(args);
    let client = http_client(args)?;
    let mut codes = args.pairing_codes.iter();
    let mut phones = Vec::with_capacity(args.count);
    for i in 0..args.count {
        let db = db_path(&args.data, i);
        let link = if is_paired(&db, &config)? {
            println!("phone {i} resumed");
            None
        } else {
            let link = pair_phone(args, &client, &ws, i, codes.next()).await?;
            println!("phone {i} paired");
            Some(link)
        };
        let modem = SimModem::new(SimModemConfig {
            default: SimBehaviour {
                latency_ms: args.latency_ms,
                report_delay_ms: args.report_delay_ms,
                ..SimBehaviour::default()
            },
            seed: i as u64,
            ledger: Some(ledger_path(&args.data, i)),
            echo_prefix: args.echo_prefix.clone(),
            ..SimModemConfig::default()
        });
        let phone = start_phone(
            PhoneConfig {
                link,
                engine: config.clone(),
                app_version: format!("sim-phones-{}", env!("CARGO_PKG_VERSION")),
                ..PhoneConfig::new(db)
            },
            &modem,
        )?;
        phones.push((i, phone, modem));
    }
    Ok(SimPhones { phones })
}

/// Runs the phones until `stop` resolves, then shuts them down in order.
pub async fn run(
    args: SimPhonesArgs,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), SimPhonesError> {
    let sims = start(&args).await?;
    println!("sim-phones ready {}", sims.phones.len());
    stop.await;
    for (_, phone, _) in sims.phones {
        phone.shutdown().await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_url_maps_to_the_link_url() {
        assert_eq!(
            ws_base("http://127.0.0.1:9/").expect("http"),
            "ws://127.0.0.1:9"
        );
        assert_eq!(
            ws_base("https://relay.example").expect("https"),
            "wss://relay.example"
        );
        assert!(ws_base("ftp://x").is_err());
    }

    #[test]
    fn the_passphrase_flag_reaches_every_engine_and_is_never_shown() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            args: SimPhonesArgs,
        }
        let base = ["sim-phones", "--relay", "http://127.0.0.1:9", "--data", "d"];
        let cli =
            Cli::try_parse_from(base.iter().chain(&["--passphrase", "hunter2"])).expect("parses");
        let config = engine_config(&cli.args);
        assert_eq!(config.passphrase, Some(Passphrase::new("hunter2")));
        assert!(!format!("{:?}", cli.args).contains("hunter2"));
        assert!(Cli::try_parse_from(base.iter().chain(&["--passphrase", ""])).is_err());
    }

    #[test]
    fn max_links_defaults_to_the_engines_and_is_bounded() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            args: SimPhonesArgs,
        }
        let base = ["sim-phones", "--relay", "http://127.0.0.1:9", "--data", "d"];
        let cli = Cli::try_parse_from(base).expect("parses");
        assert_eq!(cli.args.max_links, simrelay_core::phone::DEFAULT_MAX_LINKS);
        let cli = Cli::try_parse_from(base.iter().chain(&["--max-links", "2"])).expect("parses");
        assert_eq!(cli.args.max_links, 2);
        for bad in ["0", "17", "x"] {
            assert!(
                Cli::try_parse_from(base.iter().chain(&["--max-links", bad])).is_err(),
                "{bad}"
            );
        }
    }
}
