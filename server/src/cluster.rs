//! Several relay nodes on one PostgreSQL (issue 17): what makes this process one node of a
//! cluster. Configured by `cluster_nodes` (the public `wss://` URLs of every node) and
//! `node_id`; off on a single relay (and always on SQLite).
//!
//! A node:
//! - keeps a heartbeat in `cluster_nodes` (every [`HEARTBEAT`]); a node silent for
//!   [`STALE_MS`] is dead: its links count for nothing and its routing leases run out;
//! - records each of its phone links in `phone_links` (up in the transaction that marks the
//!   phone online, down when it closes), so presence is the cluster's: a phone is online while
//!   any link on a live node is up, and `phone.offline` is decided once, under the phone's row
//!   lock, after its last link has been gone for the grace (`crate::hub::start_grace`);
//! - gives the grace to phones marked online with no live link anywhere (their node died);
//! - routes an account only while it holds the account's lease in `route_leases`
//!   ([`LEASE_MS`], renewed by a routing pass once less than half is left; a node of a
//!   cluster makes a pass at least every [`LEASE_TICK`]), reading the
//!   cluster's online phones from the store (`crate::dispatch`);
//! - is woken by the other nodes through PostgreSQL's `NOTIFY` (`store::postgres::notify`):
//!   frames queued for a phone wake the links to it, new messages and new links wake the
//!   router. The routing task's one-second tick and this task's heartbeat are the safety poll
//!   behind lost notifications.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use simrelay_protocol::PhoneStatus;
use tokio::sync::mpsc;

use crate::AppState;
use crate::config::Config;
use crate::hub::{OnlinePhone, start_grace};
use crate::store::postgres::cluster::{ClusterDb, needs_postgres};
use crate::store::postgres::notify::{self, Wake};
use crate::store::{Result, StoreError};

/// How often a node renews its heartbeat and looks for orphaned phones.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// A node not heard for this long is dead.
pub const STALE_MS: i64 = 5_000;
/// How long a routing lease lasts without renewal (a dead node's accounts are taken over
/// after at most this, plus one [`LEASE_TICK`]). Short, so that a phone linked to the
/// survivor gets new work within about 2 s of a node's death; a lapse of a live node's lease
/// (a stalled pass) costs a hand-over and nothing else, since claiming a recipient stays
/// conditional in the store.
pub const LEASE_MS: i64 = 1_500;
/// How often a node of a cluster makes a routing pass without a wake-up: well inside half a
/// lease, so that a live node renews its leases in time and a dead node's are taken soon
/// after they end.
pub const LEASE_TICK: Duration = Duration::from_millis(250);
/// Link rows gone, and nodes silent, for longer than this are forgotten.
const KEEP_MS: i64 = 3_600_000;
/// How often they are pruned.
const PRUNE_EVERY: u32 = 60;

/// Checks `cluster_nodes` and `node_id` (for `crate::config`).
pub fn check_config(c: &Config) -> std::result::Result<(), &'static str> {
    if let Some(id) = &c.node_id
        && (id.is_empty()
            || id.len() > 64
            || !id
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-')))
    {
        return Err("node_id is 1 to 64 characters of A-Z a-z 0-9 . _ -");
    }
    if c.cluster_nodes.is_empty() {
        return Ok(());
    }
    if c.database_url.is_none() {
        return Err(
            "cluster_nodes needs database_url: the nodes of a cluster share one PostgreSQL",
        );
    }
    let mut seen = HashSet::new();
    for url in &c.cluster_nodes {
        let host = ["wss://", "ws://"]
            .iter()
            .find_map(|s| url.strip_prefix(s))
            .map(|r| r.trim_end_matches('/'));
        if host.is_none_or(|h| h.is_empty() || h.contains(char::is_whitespace)) {
            return Err("cluster_nodes: every entry is a wss:// (or ws://) URL with a host");
        }
        if !seen.insert(node_key(url)) {
            return Err("cluster_nodes: a node is listed twice");
        }
    }
    // This node's own address for phones must be one they are told to dial, or a phone
    // paired here would never be handed this node again (and keep a link to no one here).
    if let Some(public) = &c.public_url
        && !seen.contains(&node_key(public))
    {
        return Err("public_url is not one of cluster_nodes: list this node's own URL there");
    }
    Ok(())
}

/// A node URL as compared: lower case, no trailing `/`, `http(s)://` read as `ws(s)://` (the
/// same address for the link).
fn node_key(url: &str) -> String {
    let url = url.trim_end_matches('/').to_ascii_lowercase();
    if let Some(rest) = url.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        url
    }
}

/// This node of a cluster.
#[derive(Debug)]
pub struct Cluster {
    pub node_id: String,
    /// Every node's public URL, as `welcome` and `paired` list them.
    nodes: Vec<String>,
    url: Option<String>,
    db: Arc<ClusterDb>,
    /// Phones this node is giving the grace to (one grace task per phone).
    graces: Mutex<HashSet<String>>,
    wakes: Mutex<Option<mpsc::UnboundedReceiver<Wake>>>,
    /// Leases this node holds, until when by its own clock (from before the claim began, so
    /// never later than PostgreSQL's `until_ms`): renewed once less than half is left, so
    /// that most passes write nothing.
    leases: Mutex<HashMap<String, Instant>>,
}

impl Cluster {
    /// This node, when `config` makes it one of a cluster: connects, writes its first
    /// heartbeat, forgets link rows of an earlier run of the same `node_id`, and starts the
    /// wake-up listener. Blocking.
    pub fn open(config: &Config) -> Result<Option<Self>> {
        if config.cluster_nodes.is_empty() {
            return Ok(None);
        }
        let url = config.database_url.as_deref().ok_or_else(needs_postgres)?;
        let node_id = config.node_id.clone().unwrap_or_else(|| {
            let n: u64 = rand::random();
            format!("node-{n:016x}")
        });
        let db = ClusterDb::new(url)?;
        let public = config.public_url.clone();
        db.start(&node_id, public.as_deref())?;
        let (tx, rx) = mpsc::unbounded_channel();
        notify::spawn(db.config().clone(), tx);
        tracing::info!(node = %node_id, nodes = config.cluster_nodes.len(), "cluster node started");
        Ok(Some(Self {
            node_id,
            nodes: config.cluster_nodes.clone(),
            url: public,
            db: Arc::new(db),
            graces: Mutex::new(HashSet::new()),
            wakes: Mutex::new(Some(rx)),
            leases: Mutex::default(),
        }))
    }

    /// What `welcome.nodes` and `paired.nodes` carry: every node, when there are several.
    pub fn welcome_nodes(&self) -> Vec<String> {
        if self.nodes.len() > 1 {
            self.nodes.clone()
        } else {
            Vec::new()
        }
    }

    /// Starts giving `phone` the grace here; false when a grace of this node runs already.
    pub fn begin_grace(&self, phone: &str) -> bool {
        self.graces
            .lock()
            .expect("graces lock")
            .insert(phone.to_string())
    }

    pub fn end_grace(&self, phone: &str) {
        self.graces.lock().expect("graces lock").remove(phone);
    }

    /// The cluster's online phones of the accounts whose routing lease this node holds (taken
    /// or renewed now when less than half of it is left), grouped by account.
    pub async fn routing_view(self: &Arc<Self>) -> Result<Vec<(String, Vec<OnlinePhone>)>> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let phones = me.db.online_phones(STALE_MS)?;
            let mut by: HashMap<String, Vec<OnlinePhone>> = HashMap::new();
            for p in phones {
                let status: PhoneStatus = p
                    .status_json
                    .as_deref()
                    .and_then(|s| serde_json::from_str(s).ok())
                    .unwrap_or_default();
                by.entry(p.account).or_default().push(OnlinePhone {
                    id: p.phone,
                    status,
                });
            }
            let held = me.held_leases(by.keys().map(String::as_str).collect())?;
            let mut out: Vec<_> = by.into_iter().filter(|(a, _)| held.contains(a)).collect();
            out.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(out)
        })
        .await
        .map_err(|_| StoreError::Join)?
    }

    /// Which of `accounts` this node holds the lease of, claiming or renewing them in one
    /// statement unless every one it holds has more than half of its lease left. Blocking.
    fn held_leases(&self, accounts: Vec<&str>) -> Result<HashSet<String>> {
        let lease = Duration::from_millis(u64::try_from(LEASE_MS).expect("positive"));
        let began = Instant::now();
        {
            let held = self.leases.lock().expect("leases lock");
            let fresh = |a: &&str| held.get(*a).is_some_and(|u| *u > began + lease / 2);
            if accounts.iter().all(fresh) {
                return Ok(accounts.iter().map(|a| a.to_string()).collect());
            }
        }
        let got: HashSet<String> = self
            .db
            .claim_leases(&self.node_id, &accounts, LEASE_MS)?
            .into_iter()
            .collect();
        let mut held = self.leases.lock().expect("leases lock");
        held.clear();
        for a in &got {
            held.insert(a.clone(), began + lease);
        }
        Ok(got)
    }

    /// The phones with a link up on a live node (what the API shows as online).
    pub async fn linked_phones(&self) -> Result<HashSet<String>> {
        self.blocking(|db| {
            Ok(db
                .online_phones(STALE_MS)?
                .into_iter()
                .map(|p| p.phone)
                .collect())
        })
        .await
    }

    /// Phones with a link up on a live node, of `account` or of every account (`/metrics`).
    pub async fn online_count(&self, account: Option<String>) -> Result<usize> {
        self.blocking(move |db| {
            let phones = db.online_phones(STALE_MS)?;
            Ok(phones
                .iter()
                .filter(|p| account.as_ref().is_none_or(|a| *a == p.account))
                .count())
        })
        .await
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&ClusterDb) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|_| StoreError::Join)?
    }
}

/// The node's task: wake-ups from other nodes, heartbeats, orphaned phones; at shutdown it
/// marks its links down and frees its leases, so the others take over at once.
pub async fn run(state: AppState) {
    let Some(cluster) = state.cluster.clone() else {
        return;
    };
    let Some(mut wakes) = cluster.wakes.lock().expect("wakes lock").take() else {
        return;
    };
    let mut shutdown = state.shutdown.subscribe();
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks: u32 = 0;
    loop {
        tokio::select! {
            w = wakes.recv() => match w {
                Some(Wake::Frames(phone)) => state.hub.kick(&phone),
                Some(Wake::Route) => state.route_kick.notify_one(),
                Some(Wake::Resync) => {
                    state.hub.kick_all();
                    state.route_kick.notify_one();
                }
                None => {}
            },
            _ = tick.tick() => {
                ticks = ticks.wrapping_add(1);
                beat(&state, &cluster, ticks.is_multiple_of(PRUNE_EVERY)).await;
            }
            _ = crate::stopped(&mut shutdown) => break,
        }
    }
    let node = cluster.node_id.clone();
    if let Err(e) = cluster.blocking(move |db| db.stop(&node)).await {
        tracing::warn!(error = %e, "could not sign this node off the cluster");
    }
}

/// One heartbeat: renew, give the grace to orphaned phones, now and then prune.
async fn beat(state: &AppState, cluster: &Arc<Cluster>, prune: bool) {
    let (node, url) = (cluster.node_id.clone(), cluster.url.clone());
    let result = cluster
        .blocking(move |db| {
            db.heartbeat(&node, url.as_deref())?;
            if prune {
                db.prune(KEEP_MS)?;
            }
            db.orphaned_online(STALE_MS)
        })
        .await;
    match result {
        Ok(orphans) => {
            for phone in orphans {
                if !state.hub.is_connected(&phone) {
                    start_grace(state.clone(), phone);
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cluster heartbeat failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ServeArgs, parse_file};

    fn resolve(file: &str, args: ServeArgs) -> std::result::Result<Config, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("relay.toml");
        std::fs::write(&path, file).expect("config written");
        parse_file(file).expect("valid toml");
        ServeArgs {
            config: Some(path),
            ..args
        }
        .resolve()
        .map_err(|e| e.to_string())
    }

    const DB: &str = "database_url = \"postgres://relay@db/simrelay\"\n";

    #[test]
    fn cluster_nodes_and_node_id_are_read_from_file_and_flags() {
        let c = resolve(
            &format!("{DB}cluster_nodes = [\"wss://a:8443\", \"wss://b:8443\"]\nnode_id = \"a\"\n"),
            ServeArgs::default(),
        )
        .expect("valid");
        assert_eq!(c.cluster_nodes, ["wss://a:8443", "wss://b:8443"]);
        assert_eq!(c.node_id.as_deref(), Some("a"));
        let c = resolve(
            &format!("{DB}cluster_nodes = [\"wss://a:8443\"]\n"),
            ServeArgs {
                cluster_nodes: vec!["wss://x:1".into(), "ws://y:2".into()],
                node_id: Some("node-7".into()),
                ..ServeArgs::default()
            },
        )
        .expect("valid");
        assert_eq!(c.cluster_nodes, ["wss://x:1", "ws://y:2"], "flags win");
        assert_eq!(c.node_id.as_deref(), Some("node-7"));
        let c = resolve(DB, ServeArgs::default()).expect("valid");
        assert!(c.cluster_nodes.is_empty(), "a single relay by default");
        // The node's public URL is one of the list, whatever its case, slash or scheme.
        for public in ["wss://A:8443/", "https://a:8443"] {
            let file = format!(
                "{DB}cluster_nodes = [\"wss://a:8443\", \"wss://b:8443\"]\npublic_url = \"{public}\"\n"
            );
            resolve(&file, ServeArgs::default()).expect(public);
        }
    }

    #[test]
    fn bad_cluster_settings_are_refused_clearly() {
        for (file, needle) in [
            (
                "cluster_nodes = [\"wss://a\"]\n".to_string(),
                "needs database_url",
            ),
            (format!("{DB}cluster_nodes = [\"https://a\"]\n"), "wss://"),
            (format!("{DB}cluster_nodes = [\"wss://\"]\n"), "wss://"),
            (
                format!("{DB}cluster_nodes = [\"wss://a:1\", \"wss://A:1/\"]\n"),
                "listed twice",
            ),
            (
                format!("{DB}cluster_nodes = [\"wss://a:1\"]\npublic_url = \"wss://b:1\"\n"),
                "public_url is not one of cluster_nodes",
            ),
            (format!("{DB}node_id = \"a b\"\n"), "node_id"),
            (format!("{DB}node_id = \"\"\n"), "node_id"),
        ] {
            let e = resolve(&file, ServeArgs::default()).expect_err(&file);
            assert!(e.contains(needle), "{file}: {e}");
        }
    }

    #[test]
    fn welcome_lists_nodes_only_when_there_are_several() {
        let cluster = |nodes: &[&str]| Cluster {
            node_id: "a".into(),
            nodes: nodes.iter().map(|s| s.to_string()).collect(),
            url: None,
            db: Arc::new(ClusterDb::new("postgres://relay@db/simrelay").expect("url")),
            graces: Mutex::default(),
            wakes: Mutex::default(),
            leases: Mutex::default(),
        };
        assert!(cluster(&["wss://a"]).welcome_nodes().is_empty());
        assert_eq!(
            cluster(&["wss://a", "wss://b"]).welcome_nodes(),
            ["wss://a", "wss://b"]
        );
    }
}
