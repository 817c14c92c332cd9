//! simrelay-server: the relay between businesses (HTTP API) and phones (WebSocket links).
//!
//! [`app`] builds the axum router (HTTP API and the phones' `/v1/link`); [`run`] serves it on
//! any listener until a shutdown future resolves, with the background tasks (routing, webhook
//! delivery, presence); [`Server`] binds, optionally wraps TLS, and runs, for `main`, the demo
//! and the system tests. The simulators (demo phones, `sim-phones`, the rack simulator) live
//! in `sims`, behind the `sims` feature (on by default); without it this crate is the relay.

pub mod api;
pub mod cluster;
pub mod compat;
pub mod config;
pub mod dashboard;
pub mod data_dir;
pub mod dispatch;
pub mod domain;
pub mod error;
pub mod hub;
pub mod key_bootstrap;
pub mod limits;
pub mod link;
pub mod metrics;
pub mod pool_router;
pub mod rack;
pub mod serve_http;
pub mod sim_health;
#[cfg(feature = "sims")]
pub mod sims;
pub mod store;
pub mod time_fmt;
pub mod timed_io;
pub mod tls;
pub mod webhooks;

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::serve::Listener;
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::JoinHandle;

use config::{Config, TlsMode};
use hub::Hub;
use store::committer::Committer;
use store::{Db, KeyAuth, Store, StoreError};

/// Largest accepted HTTP request body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Shared state of one relay.
#[derive(Clone, Debug)]
pub struct AppState {
    inner: Arc<Inner>,
}

/// What every handler and task shares.
#[derive(Debug)]
pub struct Inner {
    pub db: Db,
    pub committer: Committer,
    pub hub: Hub,
    pub config: Config,
    /// Keys whose last use is being written now (so concurrent requests write it once).
    touching: Mutex<HashSet<String>>,
    /// The admin key generated at this start, until `main` takes it to print it once.
    generated_admin_key: Mutex<Option<String>>,
    /// Bumped after every commit that stored new incoming SMS (wakes `inbox/wait`).
    pub inbox: watch::Sender<u64>,
    /// Wakes the routing task (new messages, phones online or offline, capacity freed).
    pub route_kick: Arc<Notify>,
    /// Wakes the webhook delivery task.
    pub webhook_kick: Arc<Notify>,
    /// SHA-256 of the TLS certificate (DER), lowercase hex, when TLS is on.
    pub tls_fingerprint: Option<String>,
    /// Bumped after every batch of phone events that changed a recipient's state.
    pub updates: watch::Sender<u64>,
    /// Set once shutdown starts.
    pub shutdown: watch::Sender<bool>,
    /// SIM health and stickiness for routing across a rack.
    pub rack: rack::Rack,
    /// The compatible API's JWT signer and remembered password checks.
    pub compat_auth: compat::auth::AuthState,
    /// The dashboard's signed-in browsers.
    pub sessions: dashboard::session::Sessions,
    /// This node of a cluster on one PostgreSQL (`cluster_nodes` set); `None` on a single
    /// relay.
    pub cluster: Option<Arc<cluster::Cluster>>,
    /// Routing passes run by this process, and their time.
    pub passes: dispatch::PassStats,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

/// Errors at start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "cannot listen on {addr}: {source} (another program has this port? choose one with --listen)"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("data directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("tls: {0}")]
    Tls(#[from] tls::TlsError),
    #[error("configuration: {0}")]
    Config(String),
}

impl AppState {
    /// Opens the store (SQLite in `config.data`, or PostgreSQL at `config.database_url`) and
    /// starts the group-commit writer. Needs a tokio
    /// runtime. Background tasks start with [`run`].
    pub async fn open(config: Config, tls_fingerprint: Option<String>) -> Result<Self, StartError> {
        install_crypto_provider();
        data_dir::prepare(&config.data)?;
        let store = match config.database_url.clone() {
            Some(url) => tokio::task::spawn_blocking(move || Store::open_postgres(&url)),
            None => {
                let path = config.data.join("relay.sqlite");
                data_dir::private_store(&path)?;
                let cache_kib = config.store_cache_kib;
                tokio::task::spawn_blocking(move || Store::open_sqlite_with_cache(&path, cache_kib))
            }
        }
        .await
        .map_err(|_| StoreError::Join)??
        .with_keywords(config.keywords());
        let db = Db::new(Arc::new(store));
        let cluster = {
            let c = config.clone();
            tokio::task::spawn_blocking(move || cluster::Cluster::open(&c))
                .await
                .map_err(|_| StoreError::Join)??
                .map(Arc::new)
        };
        let generated_admin_key = key_bootstrap::bootstrap(&db, &config).await?;
        let route_kick = Arc::new(Notify::new());
        let committer = Committer::start(db.clone(), route_kick.clone());
        let (shutdown, _) = watch::channel(false);
        let rack = rack::Rack::new(sim_health::HealthPolicy {
            cooldown_ms: millis(config.sim_cooldown),
            quarantine_ms: millis(config.sim_quarantine),
            ..sim_health::HealthPolicy::default()
        });
        Ok(Self {
            inner: Arc::new(Inner {
                hub: Hub::with_limits(limits::Limits::from_config(&config)),
                db,
                committer,
                config,
                touching: Mutex::new(HashSet::new()),
                generated_admin_key: Mutex::new(generated_admin_key),
                inbox: watch::channel(0).0,
                updates: watch::channel(0).0,
                route_kick,
                webhook_kick: Arc::new(Notify::new()),
                tls_fingerprint,
                shutdown,
                rack,
                compat_auth: compat::auth::AuthState::default(),
                sessions: dashboard::session::Sessions::default(),
                cluster,
                passes: dispatch::PassStats::default(),
            }),
        })
    }

    /// Wakes the webhook sender after a message was created with suppressed recipients (their
    /// `message.suppressed` was queued in the create's transaction, which tells no one), or
    /// held ones (`account.pumping_suspected` may have been queued).
    pub fn created(&self, v: &store::MessageView) {
        if v.recipients.iter().any(|r| {
            matches!(
                r.state,
                domain::RecipientStatus::Suppressed | domain::RecipientStatus::Held
            )
        }) {
            self.webhook_kick.notify_one();
        }
    }

    /// The key `secret` if it exists and is not revoked. On SQLite read from the store on every
    /// call, so a key revoked by any relay sharing the file is refused at once; on PostgreSQL
    /// from the key cache that every revoke empties (`store::key_cache`: this relay's at
    /// once, other relays' when PostgreSQL's notification arrives). Its last use is written
    /// at most once per [`LAST_USED_GAP_MS`].
    pub async fn authenticate_key(&self, secret: &str) -> Result<Option<KeyAuth>, StoreError> {
        self.authenticate_key_hash(api::hash_secret(secret)).await
    }

    /// [`AppState::authenticate_key`] by the key's stored hash (a dashboard session keeps the
    /// hash, never the key).
    pub async fn authenticate_key_hash(&self, hash: String) -> Result<Option<KeyAuth>, StoreError> {
        let found = self.db.call(move |s| s.key_by_hash(&hash)).await?;
        let Some(key) = found.filter(|k| !k.revoked) else {
            return Ok(None);
        };
        let now = store::now_ms();
        if key.last_used_at.is_none_or(|t| t <= now - LAST_USED_GAP_MS)
            && let Some(_guard) = TouchGuard::new(&self.touching, &key.id)
        {
            let id = key.id.clone();
            let touched = self
                .db
                .call(move |s| s.touch_key(&id, now, LAST_USED_GAP_MS))
                .await;
            if let Err(e) = touched {
                tracing::warn!(error = %e, "recording a key's last use failed");
            }
        }
        Ok(Some(key))
    }

    /// The admin key generated at this start (once; `None` afterwards or when none was).
    pub fn take_generated_admin_key(&self) -> Option<String> {
        self.generated_admin_key
            .lock()
            .expect("admin key lock")
            .take()
    }

    /// Whether each phone is online for the API: linked to this relay, or in a cluster to
    /// any live node. Returns a check over `phones`.
    pub async fn online_check(&self) -> Result<impl Fn(&str) -> bool + use<>, StoreError> {
        let linked = match &self.cluster {
            Some(c) => Some(c.linked_phones().await?),
            None => None,
        };
        let hub = self.hub.clone();
        Ok(move |phone: &str| match &linked {
            Some(set) => set.contains(phone),
            None => hub.is_connected(phone),
        })
    }

    /// Wakes `inbox/wait` callers.
    pub fn inbox_changed(&self) {
        self.inbox.send_modify(|v| *v += 1);
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }
}

/// Keys' last use is written at most this often (no write per request).
pub const LAST_USED_GAP_MS: i64 = 60_000;

/// Marks a key's last-use write as in flight until dropped (also when the request is dropped).
struct TouchGuard<'a> {
    set: &'a Mutex<HashSet<String>>,
    id: String,
}

impl<'a> TouchGuard<'a> {
    fn new(set: &'a Mutex<HashSet<String>>, id: &str) -> Option<Self> {
        let fresh = set.lock().expect("touch lock").insert(id.to_string());
        fresh.then(|| Self {
            set,
            id: id.to_string(),
        })
    }
}

impl Drop for TouchGuard<'_> {
    fn drop(&mut self) {
        self.set.lock().expect("touch lock").remove(&self.id);
    }
}

/// A duration in (saturated) milliseconds.
fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Resolves once `rx` reports shutdown (the guard of `wait_for` must not live across awaits).
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Installs ring as rustls' process-wide provider (reqwest and tokio-tungstenite use it).
pub fn install_crypto_provider() {
    // Err means one is installed already, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The relay's HTTP routes (API and `/v1/link`).
pub fn app(state: AppState) -> Router {
    app_with(state, Router::new())
}

/// The relay's routes plus `extra` (the demo's switches).
pub fn app_with(state: AppState, extra: Router<AppState>) -> Router {
    api::routes()
        .merge(extra)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Serves `app_with(state, extra)` on `listener` with the background tasks until `shutdown`
/// resolves; then stops accepting, closes phone links, finishes in-flight requests and stops
/// the tasks.
pub async fn run<L>(
    listener: L,
    state: AppState,
    extra: Router<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: Listener,
    L::Addr: std::fmt::Debug + Clone + Send + Sync + 'static,
{
    let tasks = vec![
        tokio::spawn(dispatch::run(state.clone())),
        tokio::spawn(webhooks::run(state.clone())),
        tokio::spawn(compat::ping::run(state.clone())),
        tokio::spawn(hub::resume_presence(state.clone())),
        tokio::spawn(cluster::run(state.clone())),
    ];
    let st = state.clone();
    let result = serve_http::serve(
        listener,
        app_with(state.clone(), extra),
        serve_http::Timeouts {
            header: state.config.header_read_timeout,
            body: state.config.body_read_timeout,
            idle: state.config.keep_alive_idle,
        },
        async move {
            shutdown.await;
            st.shutdown.send_replace(true);
            st.hub.close_all();
        },
    )
    .await;
    state.shutdown.send_replace(true);
    state.hub.close_all();
    for t in tasks {
        let _ = t.await;
    }
    state.hub.wait_closed().await;
    result
}

/// A running relay (bound, serving) for `main`, the demo and tests.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT` or `https://...`.
    pub url: String,
    pub state: AppState,
    /// The `metrics_listen` address as bound (plain HTTP, only `/metrics`).
    pub metrics_addr: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
    metrics_task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Server {
    /// Opens the store, binds `config.listen` and serves until [`Server::stop`].
    pub async fn start(config: Config) -> Result<Self, StartError> {
        Self::start_with(config, Router::new()).await
    }

    /// [`Server::start`], serving `extra` routes beside the relay's (the demo's switches).
    pub async fn start_with(
        mut config: Config,
        extra: Router<AppState>,
    ) -> Result<Self, StartError> {
        install_crypto_provider();
        let tls = match &config.tls {
            TlsMode::Off => None,
            mode => Some(tls::load(mode, &config.data)?),
        };
        key_bootstrap::check_config(&config)?;
        let bind = |addr: SocketAddr| async move {
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Bind { addr, source })
        };
        let tcp = bind(config.listen).await?;
        let addr = tcp.local_addr()?;
        // Pairing answers name the bound address (not port 0) when no public URL is set.
        config.listen = addr;
        if config.public_url.is_none() && addr.ip().is_unspecified() {
            tracing::warn!(
                listen = %addr,
                "no public_url: pairing answers name {addr}, which phones cannot reach; \
                 set public_url to the address phones use"
            );
        }
        let metrics_tcp = match config.metrics_listen {
            Some(a) => Some(bind(a).await?),
            None => None,
        };
        let fingerprint = tls.as_ref().map(|t| t.fingerprint.clone());
        let state = AppState::open(config, fingerprint).await?;
        let (stop, stopped) = oneshot::channel::<()>();
        let signal = async move {
            let _ = stopped.await;
        };
        let metrics_addr = match &metrics_tcp {
            Some(l) => Some(l.local_addr()?),
            None => None,
        };
        let metrics_task = metrics_tcp.map(|l| {
            let mut down = state.shutdown.subscribe();
            let timeouts = serve_http::Timeouts {
                header: state.config.header_read_timeout,
                body: state.config.body_read_timeout,
                idle: state.config.keep_alive_idle,
            };
            let router = metrics::metrics_only(state.clone());
            tokio::spawn(async move {
                serve_http::serve(l, router, timeouts, async move {
                    crate::stopped(&mut down).await
                })
                .await
            })
        });
        let scheme = if tls.is_some() { "https" } else { "http" };
        let st = state.clone();
        let task = match tls {
            None => tokio::spawn(run(tcp, st, extra, signal)),
            Some(t) => tokio::spawn(run(
                tls::TlsListener::new(tcp, t.acceptor),
                st,
                extra,
                signal,
            )),
        };
        Ok(Self {
            addr,
            url: format!("{scheme}://{addr}"),
            state,
            metrics_addr,
            stop: Some(stop),
            task,
            metrics_task,
        })
    }

    /// The phones' WebSocket URL (`ws://127.0.0.1:PORT/v1/link`).
    pub fn ws_url(&self) -> String {
        format!("{}{}", self.ws_base(), simrelay_protocol::WS_PATH)
    }

    /// The relay's WebSocket base URL, as the core's `LinkConfig::url` takes it.
    pub fn ws_base(&self) -> String {
        self.url.replacen("http", "ws", 1)
    }

    /// Graceful shutdown: stop accepting, close links, flush, return when everything stopped.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = self.task.await.map_err(std::io::Error::other)?;
        if let Some(t) = self.metrics_task.take() {
            t.await.map_err(std::io::Error::other)??;
        }
        result
    }
}
