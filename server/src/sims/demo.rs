//! `simrelay demo`: a relay plus N simulated phones in one process.
//!
//! Each phone is the real core engine with the simulated radio, paired with a one-time code
//! and connected over a real WebSocket, exactly like a phone on a shelf. The radios answer
//! after a short latency and deliver reports a moment later; every 30 seconds the first phone
//! receives an SMS ("your code is NNNN"), so the inbox, `inbox/wait` and `message.received`
//! webhooks can be tried without hardware. The demo's switches ([`super::demo_api`]) make a
//! phone receive an SMS on request and make a phone's radio fail.
//!
//! Without `--data` the demo keeps its files in a fresh directory under the system temp dir
//! and removes it when it ends (the [`Demo`] is dropped), so trying it leaves nothing behind.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use simrelay_core::EngineConfig;
use simrelay_core::link::pair;
use simrelay_core::phone::{LinkConfig, Phone, PhoneConfig};
use simrelay_core::sim_modem::{SimModem, SimModemConfig};

use crate::api::{hash_secret, random_secret};
use crate::config::Config;
use crate::store::now_ms;
use crate::{Server, StartError};

/// Flags of `simrelay demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Number of simulated phones.
    #[arg(long, default_value_t = 3)]
    pub phones: usize,
    /// API key of the demo account (generated and printed when absent).
    #[arg(long, env = "SIMRELAY_API_KEY")]
    pub api_key: Option<String>,
    /// Data directory (default: a fresh directory under the system temp dir).
    #[arg(long)]
    pub data: Option<PathBuf>,
}

/// Errors of the demo.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("pairing a simulated phone: {0}")]
    Pair(#[from] simrelay_core::link::LinkError),
    #[error("starting a simulated phone: {0}")]
    Phone(#[from] simrelay_core::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// A running demo: the relay and its phones.
#[derive(Debug)]
pub struct Demo {
    pub server: Server,
    pub api_key: String,
    pub phones: Vec<(String, Phone, SimModem)>,
    /// The data directory the demo made for itself, removed on drop.
    pub temp_data: Option<TempData>,
}

/// A directory removed when this is dropped.
#[derive(Debug)]
pub struct TempData(pub PathBuf);

impl Drop for TempData {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            tracing::warn!("removing the demo's data {}: {e}", self.0.display());
        }
    }
}

fn engine_config() -> EngineConfig {
    EngineConfig {
        parts_per_minute: 600,
        jitter: 0.0,
        // A radio switched to failing (`demo_api`) ends a message `failed` within seconds.
        max_attempts: 3,
        backoff_base_ms: 1_000,
        ..EngineConfig::default()
    }
}

/// Creates `dir` readable by this user only, as the relay wants its data directory.
fn private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Starts the relay and `args.phones` paired, connected simulated phones.
pub async fn start(args: &DemoArgs) -> Result<Demo, DemoError> {
    let (data, temp_data) = match &args.data {
        Some(d) => (d.clone(), None),
        None => {
            let d = std::env::temp_dir().join(format!("simrelay-demo-{}", uuid::Uuid::now_v7()));
            private_dir(&d)?;
            (d.clone(), Some(TempData(d)))
        }
    };
    std::fs::create_dir_all(&data)?;
    let api_key = args
        .api_key
        .clone()
        .unwrap_or_else(|| format!("demo-{}", random_secret(16)));
    let mut config = Config::for_data_dir(&data);
    config.listen = args.listen;
    config.api_key = Some(api_key.clone());
    // The webhook example below posts to a receiver on this machine.
    config.webhook_allow_cidrs = vec![ipnet::IpNet::from(std::net::IpAddr::from([127, 0, 0, 1]))];
    let switches = super::demo_api::DemoPhones::default();
    let server = Server::start_with(config, super::demo_api::routes(switches.clone())).await?;
    let key_hash = hash_secret(&api_key);
    let account = server
        .state
        .db
        .call(move |s| s.account_for_key(&key_hash))
        .await?
        .expect("the demo key was stored at start");
    let mut phones = Vec::new();
    for n in 0..args.phones {
        let code = crate::api::phones::new_pairing_code();
        let (hash, acc, now) = (hash_secret(&code), account.clone(), now_ms());
        server
            .state
            .db
            .call(move |s| s.create_pairing_code(&acc, &hash, now, now + 60_000))
            .await?;
        let name = format!("sim-phone-{}", n + 1);
        let paired = pair(&server.ws_base(), &code, Some(&name), None).await?;
        let modem = SimModem::new(SimModemConfig {
            default: super::demo_api::demo_behaviour(),
            seed: n as u64,
            ..SimModemConfig::default()
        });
        let link = LinkConfig {
            url: server.ws_base(),
            token: paired.token,
            pin_sha256: None,
            nodes: paired.nodes,
            ..LinkConfig::default()
        };
        let phone = super::sim_phones::start_phone(
            PhoneConfig {
                link: Some(link),
                engine: engine_config(),
                app_version: format!("demo-{}", env!("CARGO_PKG_VERSION")),
                ..PhoneConfig::new(data.join(format!("{name}.sqlite")))
            },
            &modem,
        )?;
        phones.push((paired.phone_id, phone, modem));
    }
    switches.set(
        account,
        phones
            .iter()
            .map(|(id, _, modem)| (id.clone(), modem.clone()))
            .collect(),
    );
    Ok(Demo {
        server,
        api_key,
        phones,
        temp_data,
    })
}

/// The lines `simrelay demo` prints after start.
pub fn usage(demo: &Demo, generated_key: bool) -> String {
    let url = &demo.server.url;
    let key = &demo.api_key;
    let auth = format!("-H 'Authorization: Bearer {key}'");
    let mut out = String::new();
    out.push_str(&format!(
        "simrelay demo: relay with {} simulated phones\n",
        demo.phones.len()
    ));
    if generated_key {
        out.push_str(&format!("api key: {key}\n"));
    }
    out.push_str(&format!("dashboard: {url}/ (sign in with the API key)\n"));
    out.push_str(&format!(
        "\n# in another shell: the URL and key for curl and for simrelay send|status|wait-sms\nexport URL={url} KEY={key}\nexport SIMRELAY_URL=$URL SIMRELAY_KEY=$KEY\n"
    ));
    out.push_str(&format!(
        "\n# send an SMS\ncurl -s {url}/v1/messages {auth} -H 'Content-Type: application/json' \\\n  -d '{{\"to\": [\"+15551230001\"], \"text\": \"Hello from simrelay\", \"id\": \"hello-1\"}}'\n"
    ));
    out.push_str(&format!(
        "\n# follow it (pending -> queued -> sending -> sent -> delivered)\ncurl -s {url}/v1/messages/hello-1 {auth}\n"
    ));
    out.push_str(&format!(
        "\n# phones, and an incoming SMS: the demo makes the first phone receive one now,\n# then wait for an SMS containing its code\ncurl -s {url}/v1/phones {auth}\ncurl -s {url}/v1/demo/incoming {auth} -H 'Content-Type: application/json' \\\n  -d '{{\"from\": \"+15550001234\", \"text\": \"your code is 1234\"}}'\ncurl -s '{url}/v1/inbox/wait?contains=1234&timeout=60' {auth}\n"
    ));
    if let Some((first, _, _)) = demo.phones.first() {
        out.push_str(&format!(
            "\n# make a phone's radio fail every send (\"failing\": false puts it right): its messages\n# are retried there, then move to another phone\ncurl -s {url}/v1/demo/phones/{first}/radio {auth} -H 'Content-Type: application/json' -d '{{\"failing\": true}}'\n"
        ));
    }
    out.push_str(&format!(
        "\n# webhooks\ncurl -s {url}/v1/webhooks {auth} -H 'Content-Type: application/json' \\\n  -d '{{\"url\": \"http://127.0.0.1:9000/hook\", \"events\": [\"message.delivered\", \"message.received\"]}}'\n"
    ));
    out.push_str(&format!(
        "\n# an incoming SMS arrives every 30 s on the first phone (\"your code is NNNN\")\n# metrics (this account's phones; every figure needs an admin key)\ncurl -s {url}/metrics {auth}\n"
    ));
    out
}

/// Runs the demo until Ctrl-C (or `stop` resolves).
pub async fn run(
    args: DemoArgs,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), DemoError> {
    let demo = start(&args).await?;
    println!("listening on {}", demo.server.url);
    println!("{}", usage(&demo, args.api_key.is_none()));
    let first = demo.phones.first().map(|(_, _, m)| m.clone());
    let incoming = async move {
        let Some(modem) = first else {
            return std::future::pending().await;
        };
        let mut tick = tokio::time::interval(Duration::from_secs(30));
        tick.tick().await;
        loop {
            tick.tick().await;
            let code = rand::random_range(1000..10_000);
            modem.inject_incoming(Some(1), "+15550001234", &format!("your code is {code}"));
        }
    };
    tokio::select! {
        () = stop => {}
        () = incoming => {}
    }
    let Demo {
        server,
        phones,
        temp_data,
        ..
    } = demo;
    for (_, phone, _) in phones {
        phone.shutdown().await;
    }
    let stopped = server.stop().await;
    drop(temp_data);
    stopped?;
    Ok(())
}
