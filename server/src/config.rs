//! Relay configuration: a TOML file, then `SIMRELAY_*` environment variables, then flags
//! (later wins), resolved into one [`Config`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::Deserialize;

/// How the relay serves TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain HTTP and ws://.
    Off,
    /// This certificate chain and key (PEM files).
    Files { cert: PathBuf, key: PathBuf },
    /// A self-signed certificate kept in the data directory (made on first start).
    SelfSigned { names: Vec<String> },
}

/// A user of the SMS Gateway for Android compatible API, from the file's `[[compat_users]]`
/// (it belongs to the account of `api_key`).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigUser {
    pub login: String,
    pub password: String,
}

impl std::fmt::Debug for ConfigUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigUser")
            .field("login", &self.login)
            .finish_non_exhaustive()
    }
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data: PathBuf,
    /// A `postgres://` URL: the store lives in that PostgreSQL database instead of the
    /// embedded SQLite file in `data` (the default).
    pub database_url: Option<String>,
    /// Bootstrap: an API key to make sure exists at start, with every scope but `admin` (its
    /// account is created if needed). At least 128 bits; a revoked one stays revoked.
    pub api_key: Option<String>,
    /// An admin key to make sure exists at start (at least 128 bits). Without one, and with no
    /// admin key in the store, the relay generates one and prints it once.
    pub admin_key: Option<String>,
    /// A bearer token that reads every figure of `/metrics` (at least 128 bits).
    pub metrics_token: Option<String>,
    /// A second address that serves only `/metrics` (every figure; with `metrics_token`, that
    /// token is needed there too).
    pub metrics_listen: Option<SocketAddr>,
    pub tls: TlsMode,
    /// The base URL phones and clients use (`https://relay.example.com`), named in pairing
    /// answers; when absent, they name the listen address (never the request's Host header).
    pub public_url: Option<String>,
    pub heartbeat: Duration,
    /// How long a phone may be disconnected before it counts as offline and its unaccepted
    /// recipients are routed elsewhere.
    pub offline_grace: Duration,
    /// Most relay frames sent to a phone and not yet acknowledged.
    pub window: u64,
    /// Read for compatibility; routing is bounded by each SIM's pace headroom instead.
    pub phone_queue_max: u32,
    /// How long a SIM takes no new work after a SIM-bound failure.
    pub sim_cooldown: Duration,
    /// How long a quarantined SIM waits for its probe.
    pub sim_quarantine: Duration,
    /// First webhook retry delay; doubles per attempt up to six hours.
    pub webhook_backoff: Duration,
    /// Attempts before a webhook delivery is `dead`.
    pub webhook_max_attempts: u32,
    /// Longest one webhook attempt may take (connect, send, answer).
    pub webhook_timeout: Duration,
    /// Networks webhooks may reach although they are internal (loopback, private, ...): by
    /// default none; the demo and the tests allow 127.0.0.1/32 for their local receivers.
    pub webhook_allow_cidrs: Vec<ipnet::IpNet>,
    /// Validity of a message that names no `valid_until`: recipients still unrouted after it
    /// end `expired` (the phone engine applies the same default once it holds them).
    pub default_validity: Duration,
    /// Longest a client may take to send a request's head (slow clients are dropped).
    pub header_read_timeout: Duration,
    /// Longest a client may take to send a request's body, from the end of its head (slow
    /// clients are answered 408 and dropped).
    pub body_read_timeout: Duration,
    /// How long a kept-alive HTTP connection may wait for its next request.
    pub keep_alive_idle: Duration,
    /// SQLite page cache per store connection, in KiB (the relay's memory grows to about
    /// 9 × this as the store grows past it).
    pub store_cache_kib: u32,
    /// Incoming SMS a phone may report per minute (a burst of one minute's worth); more are
    /// refused with `too_many_incoming` and the phone resends them later.
    pub incoming_per_minute: u32,
    /// Failed pairing attempts a source address may make per minute before it is locked out.
    pub pairing_per_source_per_minute: u32,
    /// Pairing attempts (successes not counted) all sources together may make per minute.
    pub pairing_global_per_minute: u32,
    /// Failed Basic logins (SMS Gateway API) per source address per minute; the next one
    /// locks the source out for a minute, doubling.
    pub login_failures_per_source_per_minute: u32,
    /// Failed Basic logins of all sources together per minute.
    pub login_failures_global_per_minute: u32,
    pub compat_users: Vec<ConfigUser>,
    /// Opt-out keywords besides the defaults (`crate::domain::optout`), e.g. "stopp", "arret".
    pub opt_out_keywords: Vec<String>,
    /// Opt-in keywords besides the defaults.
    pub opt_in_keywords: Vec<String>,
    /// Help keywords besides the defaults (help, info); an account adds its own.
    pub help_keywords: Vec<String>,
    /// The public `wss://` URLs of every node of a cluster on one PostgreSQL (this node's
    /// among them); empty for a single relay. See `crate::cluster`.
    pub cluster_nodes: Vec<String>,
    /// This node's name in the cluster's tables; a random one at each start when absent.
    pub node_id: Option<String>,
}

impl Config {
    /// The keywords incoming SMS are matched against: the defaults and the configured ones.
    pub fn keywords(&self) -> crate::domain::optout::Keywords {
        crate::domain::optout::Keywords::new(&self.opt_out_keywords, &self.opt_in_keywords)
            .with_help(&self.help_keywords)
    }

    /// Defaults for tests and the demo: listen on `127.0.0.1:0`, data in `data`.
    pub fn for_data_dir(data: &Path) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data: data.to_path_buf(),
            database_url: None,
            api_key: None,
            admin_key: None,
            metrics_token: None,
            metrics_listen: None,
            tls: TlsMode::Off,
            public_url: None,
            heartbeat: Duration::from_secs(15),
            offline_grace: Duration::from_secs(30),
            window: 64,
            phone_queue_max: 1000,
            sim_cooldown: Duration::from_secs(30),
            sim_quarantine: Duration::from_secs(300),
            webhook_backoff: Duration::from_secs(10),
            webhook_max_attempts: 20,
            webhook_timeout: Duration::from_secs(15),
            webhook_allow_cidrs: Vec::new(),
            default_validity: Duration::from_secs(7 * 24 * 3600),
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            keep_alive_idle: Duration::from_secs(120),
            store_cache_kib: crate::store::sqlite::DEFAULT_CACHE_KIB,
            incoming_per_minute: 600,
            pairing_per_source_per_minute: 10,
            pairing_global_per_minute: 100,
            login_failures_per_source_per_minute: 10,
            login_failures_global_per_minute: 600,
            compat_users: Vec::new(),
            opt_out_keywords: Vec::new(),
            opt_in_keywords: Vec::new(),
            help_keywords: Vec::new(),
            cluster_nodes: Vec::new(),
            node_id: None,
        }
    }
}

/// The TOML file (every key optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub data: Option<PathBuf>,
    /// `postgres://user@host:port/db`: the store on PostgreSQL (default: SQLite in `data`).
    pub database_url: Option<String>,
    pub api_key: Option<String>,
    pub admin_key: Option<String>,
    pub metrics_token: Option<String>,
    pub metrics_listen: Option<SocketAddr>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_self_signed: Option<bool>,
    pub tls_names: Option<Vec<String>>,
    pub public_url: Option<String>,
    pub heartbeat_ms: Option<u64>,
    pub offline_grace_ms: Option<u64>,
    pub window: Option<u64>,
    pub phone_queue_max: Option<u32>,
    pub sim_cooldown_ms: Option<u64>,
    pub sim_quarantine_ms: Option<u64>,
    pub webhook_backoff_ms: Option<u64>,
    pub webhook_max_attempts: Option<u32>,
    pub webhook_timeout_ms: Option<u64>,
    /// CIDRs (`10.0.0.0/8`) or single addresses webhooks may reach although internal.
    pub webhook_allow_cidrs: Option<Vec<String>>,
    pub default_validity_secs: Option<u64>,
    pub header_read_timeout_ms: Option<u64>,
    pub body_read_timeout_ms: Option<u64>,
    pub keep_alive_idle_ms: Option<u64>,
    pub store_cache_kib: Option<u32>,
    pub incoming_per_minute: Option<u32>,
    pub pairing_per_source_per_minute: Option<u32>,
    pub pairing_global_per_minute: Option<u32>,
    pub login_failures_per_source_per_minute: Option<u32>,
    pub login_failures_global_per_minute: Option<u32>,
    pub compat_users: Option<Vec<ConfigUser>>,
    /// Opt-out keywords besides stop, quit, end, revoke, opt out, cancel, unsubscribe.
    pub opt_out_keywords: Option<Vec<String>>,
    /// Opt-in keywords besides start, unstop, yes.
    pub opt_in_keywords: Option<Vec<String>>,
    /// Help keywords besides help, info.
    pub help_keywords: Option<Vec<String>>,
    /// `["wss://a:8443", "wss://b:8443"]`: the public URLs of every node of the cluster.
    pub cluster_nodes: Option<Vec<String>>,
    /// This node's stable name in the cluster (default: random at each start).
    pub node_id: Option<String>,
}

/// Flags of `simrelay serve` (each also read from its environment variable).
#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "SIMRELAY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to bind, e.g. 0.0.0.0:8443 or 127.0.0.1:0 (default 127.0.0.1:8080).
    #[arg(long, env = "SIMRELAY_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Data directory (SQLite database, self-signed certificate). Default ./simrelay-data.
    #[arg(long, env = "SIMRELAY_DATA")]
    pub data: Option<PathBuf>,
    /// Keep the store in PostgreSQL: a postgres:// URL (default: SQLite in the data
    /// directory).
    #[arg(long, env = "SIMRELAY_DATABASE_URL", hide_env_values = true)]
    pub database: Option<String>,
    /// Bootstrap: make sure this API key exists (creating its account) at start; at least
    /// 128 bits (32 hex digits or 22 base64url characters).
    #[arg(long, env = "SIMRELAY_API_KEY")]
    pub api_key: Option<String>,
    /// Make sure this admin key exists at start (else one is generated and printed once).
    #[arg(long, env = "SIMRELAY_ADMIN_KEY")]
    pub admin_key: Option<String>,
    /// Bearer token that reads every figure of /metrics.
    #[arg(long, env = "SIMRELAY_METRICS_TOKEN")]
    pub metrics_token: Option<String>,
    /// A second address serving only /metrics, e.g. 127.0.0.1:9090.
    #[arg(long, env = "SIMRELAY_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// PEM certificate chain for HTTPS/wss.
    #[arg(long, env = "SIMRELAY_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS/wss.
    #[arg(long, env = "SIMRELAY_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve HTTPS with a self-signed certificate kept in the data directory.
    #[arg(long, env = "SIMRELAY_TLS_SELF_SIGNED")]
    pub tls_self_signed: bool,
    /// Public base URL (used in pairing answers).
    #[arg(long, env = "SIMRELAY_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Heartbeat interval in milliseconds (default 15000).
    #[arg(long, env = "SIMRELAY_HEARTBEAT_MS")]
    pub heartbeat_ms: Option<u64>,
    /// Grace before a disconnected phone counts as offline, in milliseconds (default 30000).
    #[arg(long, env = "SIMRELAY_OFFLINE_GRACE_MS")]
    pub offline_grace_ms: Option<u64>,
    /// Public wss:// URL of a node of the cluster (repeat for each node, this one included;
    /// the environment variable takes them comma-separated). Needs --database.
    #[arg(
        long = "cluster-node",
        env = "SIMRELAY_CLUSTER_NODES",
        value_delimiter = ','
    )]
    pub cluster_nodes: Vec<String>,
    /// This node's name in the cluster (default: random at each start).
    #[arg(long, env = "SIMRELAY_NODE_ID")]
    pub node_id: Option<String>,
}

/// Errors while reading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("{0}")]
    Invalid(&'static str),
}

impl ServeArgs {
    /// Merges file, environment and flags (clap already merged the last two) over defaults.
    pub fn resolve(&self) -> Result<Config, ConfigError> {
        let file = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                parse_file(&text).map_err(|source| ConfigError::Parse {
                    path: path.clone(),
                    source: Box::new(source),
                })?
            }
            None => FileConfig::default(),
        };
        merge(file, self)
    }
}

/// Parses the TOML configuration file.
pub fn parse_file(text: &str) -> Result<FileConfig, toml::de::Error> {
    toml::from_str(text)
}

fn merge(file: FileConfig, args: &ServeArgs) -> Result<Config, ConfigError> {
    let data = args
        .data
        .clone()
        .or(file.data)
        .unwrap_or_else(|| PathBuf::from("simrelay-data"));
    let mut c = Config::for_data_dir(&data);
    c.listen = args
        .listen
        .or(file.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
    c.database_url = args.database.clone().or(file.database_url);
    if let Some(url) = &c.database_url
        && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
    {
        return Err(ConfigError::Invalid(
            "database_url must be a postgres:// URL (SQLite, the default, lives in the data directory)",
        ));
    }
    c.api_key = args.api_key.clone().or(file.api_key);
    c.admin_key = args.admin_key.clone().or(file.admin_key);
    c.metrics_token = args.metrics_token.clone().or(file.metrics_token);
    c.metrics_listen = args.metrics_listen.or(file.metrics_listen);
    c.public_url = args.public_url.clone().or(file.public_url);
    if let Some(url) = &c.public_url {
        let rest = ["https://", "http://", "wss://", "ws://"]
            .iter()
            .find_map(|s| url.strip_prefix(s));
        if rest.is_none_or(|r| r.trim_end_matches('/').is_empty()) {
            return Err(ConfigError::Invalid(
                "public_url must be an http(s):// or ws(s):// URL with a host",
            ));
        }
    }
    let cert = args.tls_cert.clone().or(file.tls_cert);
    let key = args.tls_key.clone().or(file.tls_key);
    let self_signed = args.tls_self_signed || file.tls_self_signed.unwrap_or(false);
    c.tls = match (cert, key, self_signed) {
        (Some(cert), Some(key), _) => TlsMode::Files { cert, key },
        (None, None, true) => TlsMode::SelfSigned {
            names: file
                .tls_names
                .unwrap_or_else(|| vec!["localhost".into(), "127.0.0.1".into()]),
        },
        (None, None, false) => TlsMode::Off,
        _ => return Err(ConfigError::Invalid("tls_cert and tls_key go together")),
    };
    if let Some(ms) = args.heartbeat_ms.or(file.heartbeat_ms) {
        if ms < 100 {
            return Err(ConfigError::Invalid("heartbeat_ms must be at least 100"));
        }
        c.heartbeat = Duration::from_millis(ms);
    }
    if let Some(ms) = args.offline_grace_ms.or(file.offline_grace_ms) {
        c.offline_grace = Duration::from_millis(ms);
    }
    if let Some(w) = file.window {
        if w == 0 {
            return Err(ConfigError::Invalid("window must be at least 1"));
        }
        c.window = w;
    }
    if let Some(q) = file.phone_queue_max {
        c.phone_queue_max = q;
    }
    if let Some(ms) = file.sim_cooldown_ms {
        c.sim_cooldown = Duration::from_millis(ms);
    }
    if let Some(ms) = file.sim_quarantine_ms {
        c.sim_quarantine = Duration::from_millis(ms);
    }
    if let Some(ms) = file.webhook_backoff_ms {
        c.webhook_backoff = Duration::from_millis(ms);
    }
    if let Some(n) = file.webhook_max_attempts {
        c.webhook_max_attempts = n.max(1);
    }
    if let Some(ms) = file.webhook_timeout_ms {
        c.webhook_timeout = Duration::from_millis(ms.max(1));
    }
    if let Some(words) = file.opt_out_keywords {
        c.opt_out_keywords = checked_keywords("opt_out_keywords", words)?;
    }
    if let Some(words) = file.opt_in_keywords {
        c.opt_in_keywords = checked_keywords("opt_in_keywords", words)?;
    }
    if let Some(words) = file.help_keywords {
        c.help_keywords = checked_keywords("help_keywords", words)?;
    }
    if let Some(cidrs) = file.webhook_allow_cidrs {
        c.webhook_allow_cidrs = cidrs
            .iter()
            .map(|s| parse_cidr(s))
            .collect::<Option<_>>()
            .ok_or(ConfigError::Invalid(
                "webhook_allow_cidrs: every entry must be a CIDR (10.0.0.0/8) or an address",
            ))?;
    }
    if let Some(s) = file.default_validity_secs {
        c.default_validity = Duration::from_secs(s);
    }
    if let Some(ms) = file.header_read_timeout_ms {
        c.header_read_timeout = Duration::from_millis(ms.max(1));
    }
    if let Some(ms) = file.body_read_timeout_ms {
        c.body_read_timeout = Duration::from_millis(ms.max(1));
    }
    if let Some(ms) = file.keep_alive_idle_ms {
        c.keep_alive_idle = Duration::from_millis(ms.max(1));
    }
    if let Some(kib) = file.store_cache_kib {
        c.store_cache_kib = kib.max(64);
    }
    let limits = [
        (
            file.incoming_per_minute,
            &mut c.incoming_per_minute,
            "incoming_per_minute must be at least 1",
        ),
        (
            file.pairing_per_source_per_minute,
            &mut c.pairing_per_source_per_minute,
            "pairing_per_source_per_minute must be at least 1",
        ),
        (
            file.pairing_global_per_minute,
            &mut c.pairing_global_per_minute,
            "pairing_global_per_minute must be at least 1",
        ),
        (
            file.login_failures_per_source_per_minute,
            &mut c.login_failures_per_source_per_minute,
            "login_failures_per_source_per_minute must be at least 1",
        ),
        (
            file.login_failures_global_per_minute,
            &mut c.login_failures_global_per_minute,
            "login_failures_global_per_minute must be at least 1",
        ),
    ];
    for (value, field, error) in limits {
        match value {
            Some(0) => return Err(ConfigError::Invalid(error)),
            Some(n) => *field = n,
            None => {}
        }
    }
    c.compat_users = file.compat_users.unwrap_or_default();
    for (i, u) in c.compat_users.iter().enumerate() {
        if !crate::compat::auth::valid_login(&u.login) {
            return Err(ConfigError::Invalid(
                "compat_users: a login is 1 to 64 characters of A-Z a-z 0-9 . _ @ -",
            ));
        }
        if crate::compat::auth::check_password(&u.password).is_err() {
            return Err(ConfigError::Invalid(
                "compat_users: a password is 12 to 256 printable ASCII characters without spaces",
            ));
        }
        if c.compat_users[..i].iter().any(|o| o.login == u.login) {
            return Err(ConfigError::Invalid(
                "compat_users: a login is listed twice",
            ));
        }
    }
    if !c.compat_users.is_empty() && c.api_key.is_none() {
        return Err(ConfigError::Invalid(
            "compat_users needs api_key: the users belong to its account",
        ));
    }
    c.cluster_nodes = if args.cluster_nodes.is_empty() {
        file.cluster_nodes.unwrap_or_default()
    } else {
        args.cluster_nodes.clone()
    };
    c.node_id = args.node_id.clone().or(file.node_id);
    crate::cluster::check_config(&c).map_err(ConfigError::Invalid)?;
    Ok(c)
}

/// Configured keywords: each non-empty once trimmed and at most 64 bytes (a keyword is a
/// whole SMS text; a longer one could never match).
fn checked_keywords(key: &'static str, words: Vec<String>) -> Result<Vec<String>, ConfigError> {
    if words.iter().any(|w| w.trim().is_empty() || w.len() > 64) {
        return Err(ConfigError::Invalid(match key {
            "opt_out_keywords" => "opt_out_keywords: every entry must be 1 to 64 bytes of text",
            "help_keywords" => "help_keywords: every entry must be 1 to 64 bytes of text",
            _ => "opt_in_keywords: every entry must be 1 to 64 bytes of text",
        }));
    }
    Ok(words)
}

/// A CIDR, or a single address as its host network (`127.0.0.1` is `127.0.0.1/32`).
pub fn parse_cidr(s: &str) -> Option<ipnet::IpNet> {
    let s = s.trim();
    s.parse()
        .ok()
        .or_else(|| s.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's three-node example is a valid configuration of a cluster node.
    #[test]
    fn the_cluster_example_file_is_valid() {
        let file =
            parse_file(include_str!("../../docs/examples/cluster-node.toml")).expect("valid toml");
        let c = merge(file, &ServeArgs::default()).expect("a valid cluster node");
        assert_eq!(c.cluster_nodes.len(), 3);
        assert_eq!(c.node_id.as_deref(), Some("relay-a"));
        assert!(c.database_url.is_some());
        assert_eq!(
            c.public_url.as_deref(),
            Some("wss://relay-a.example.com:8443")
        );
    }

    #[test]
    fn flags_override_file_and_defaults_fill_the_rest() {
        let file = parse_file(
            "listen = \"0.0.0.0:9000\"\ndata = \"/var/lib/simrelay\"\nheartbeat_ms = 5000\n",
        )
        .expect("valid toml");
        let args = ServeArgs {
            listen: Some("127.0.0.1:0".parse().expect("addr")),
            ..ServeArgs::default()
        };
        let c = merge(file, &args).expect("valid config");
        assert_eq!(c.listen.to_string(), "127.0.0.1:0");
        assert_eq!(c.data, PathBuf::from("/var/lib/simrelay"));
        assert_eq!(c.heartbeat, Duration::from_secs(5));
        assert_eq!(c.tls, TlsMode::Off);
        assert_eq!(c.window, 64);
        assert_eq!(c.store_cache_kib, 2000);
        let small = parse_file("store_cache_kib = 256\n").expect("valid toml");
        let c = merge(small, &ServeArgs::default()).expect("valid config");
        assert_eq!(c.store_cache_kib, 256);
        assert_eq!(c.incoming_per_minute, 600);
        let limits = parse_file("incoming_per_minute = 60\npairing_global_per_minute = 5\n")
            .expect("valid toml");
        let c = merge(limits, &ServeArgs::default()).expect("valid config");
        assert_eq!(
            (
                c.incoming_per_minute,
                c.pairing_per_source_per_minute,
                c.pairing_global_per_minute
            ),
            (60, 10, 5)
        );
        let zero = parse_file("incoming_per_minute = 0\n").expect("valid toml");
        assert!(merge(zero, &ServeArgs::default()).is_err());
    }

    #[test]
    fn body_timeout_and_public_url_are_read_and_checked() {
        let file =
            parse_file("body_read_timeout_ms = 500\npublic_url = \"https://relay.example\"\n")
                .expect("valid toml");
        let c = merge(file, &ServeArgs::default()).expect("valid config");
        assert_eq!(c.body_read_timeout, Duration::from_millis(500));
        assert_eq!(c.public_url.as_deref(), Some("https://relay.example"));
        assert_eq!(
            Config::for_data_dir(Path::new("d")).body_read_timeout,
            Duration::from_secs(30)
        );
        for bad in ["relay.example", "https://", "ftp://relay.example"] {
            let file = parse_file(&format!("public_url = \"{bad}\"")).expect("valid toml");
            assert!(merge(file, &ServeArgs::default()).is_err(), "{bad}");
        }
    }

    #[test]
    fn database_url_is_read_from_file_and_flag_and_checked() {
        let file = parse_file("database_url = \"postgres://relay@db.internal/simrelay\"\n")
            .expect("valid toml");
        let c = merge(file, &ServeArgs::default()).expect("valid config");
        assert_eq!(
            c.database_url.as_deref(),
            Some("postgres://relay@db.internal/simrelay")
        );
        let file = parse_file("database_url = \"postgres://a@h/file\"\n").expect("valid toml");
        let args = ServeArgs {
            database: Some("postgresql://b@h/flag".into()),
            ..ServeArgs::default()
        };
        let c = merge(file, &args).expect("valid config");
        assert_eq!(c.database_url.as_deref(), Some("postgresql://b@h/flag"));
        let c = merge(FileConfig::default(), &ServeArgs::default()).expect("valid config");
        assert_eq!(c.database_url, None, "SQLite is the default");
        let file = parse_file("database_url = \"mysql://h/db\"\n").expect("valid toml");
        assert!(merge(file, &ServeArgs::default()).is_err());
    }

    #[test]
    fn compat_users_need_good_logins_passwords_and_the_api_key() {
        let users = |body: &str, api_key: bool| {
            let key = if api_key {
                "api_key = \"key-0123456789abcdef0123\"\n"
            } else {
                ""
            };
            merge(
                parse_file(&format!("{key}{body}")).expect("valid toml"),
                &ServeArgs::default(),
            )
        };
        let one =
            "[[compat_users]]\nlogin = \"ops@example.com\"\npassword = \"long-enough-secret\"\n";
        let c = users(one, true).expect("valid");
        assert_eq!(c.compat_users.len(), 1);
        assert!(!format!("{:?}", c.compat_users).contains("long-enough-secret"));
        let refused = [
            (one.to_string(), false, "needs api_key"),
            (
                one.replace("ops@example.com", "bad login"),
                true,
                "a login is",
            ),
            (
                one.replace("long-enough-secret", "short"),
                true,
                "a password is",
            ),
            (format!("{one}{one}"), true, "listed twice"),
        ];
        for (body, key, why) in refused {
            let e = users(&body, key).expect_err(why).to_string();
            assert!(e.contains(why), "{e}");
            assert!(!e.contains("long-enough-secret"), "{e}");
        }
        assert!(parse_file("[[compat_users]]\nlogin = \"a\"\n").is_err());
    }

    #[test]
    fn unknown_keys_and_half_tls_are_refused() {
        assert!(parse_file("lisen = \"x\"").is_err());
        let file = parse_file("tls_cert = \"/c.pem\"").expect("valid toml");
        assert!(merge(file, &ServeArgs::default()).is_err());
        let file = parse_file("webhook_allow_cidrs = [\"10.0.0.0/33\"]").expect("valid toml");
        assert!(merge(file, &ServeArgs::default()).is_err());
    }

    #[test]
    fn webhook_allow_cidrs_take_networks_and_single_addresses() {
        let file =
            parse_file("webhook_allow_cidrs = [\"10.0.0.0/8\", \"127.0.0.1\", \"fd00::/8\"]")
                .expect("valid toml");
        let c = merge(file, &ServeArgs::default()).expect("valid config");
        let shown: Vec<String> = c
            .webhook_allow_cidrs
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(shown, ["10.0.0.0/8", "127.0.0.1/32", "fd00::/8"]);
        assert!(
            Config::for_data_dir(Path::new("d"))
                .webhook_allow_cidrs
                .is_empty()
        );
    }

    #[test]
    fn keywords_add_to_the_defaults() {
        use crate::domain::optout::Keyword;
        let file =
            parse_file("opt_out_keywords = [\"Stopp\", \"arret\"]\nopt_in_keywords = [\"oui\"]")
                .expect("valid toml");
        let c = merge(file, &ServeArgs::default()).expect("valid config");
        let k = c.keywords();
        assert_eq!(k.classify("STOPP"), Some(Keyword::OptOut("stopp".into())));
        assert_eq!(k.classify("stop"), Some(Keyword::OptOut("stop".into())));
        assert_eq!(k.classify("Oui"), Some(Keyword::OptIn("oui".into())));
        let file = parse_file("opt_out_keywords = [\"  \"]").expect("valid toml");
        assert!(merge(file, &ServeArgs::default()).is_err());
    }
}
