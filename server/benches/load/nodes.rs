//! `load nodes`: the relay as a cluster of 1, 2 or 3 `simrelay serve` processes on one
//! PostgreSQL (issue 17), on the same machine as the load. For each node count, in rounds
//! (1, 2, 3, 1, 2, 3, ...: the machine's drift falls on every count alike), on a fresh database
//! and fresh nodes each time:
//!
//! * accept: the closed loop's clients spread over the nodes in turn; accepted/s, latency,
//!   CPU per accepted message of each node, of all of them, and of PostgreSQL;
//! * e2e: `simrelay sim-phones` paired through the first node, so linked to every node (timed
//!   only once every node holds every phone's link); the messages posted over all nodes;
//!   messages/s until all are `delivered`, CPU per message as above, and the routing passes
//!   of each node (`simrelay_routing_passes_total` and `_pass_seconds_total` of `/metrics`:
//!   how many, and their mean wall time).
//!
//! One node is a single relay (no `cluster_nodes`): the baseline the cluster's coordination
//! is measured against. Needs `LOAD_DATABASE_URL`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::process::Child;

use super::{
    KEY, Load, arg, client, closed_loop_on, db_cpu, delivered, fresh_database, phones, post_all_on,
    proc_stats, spawn,
};

/// The mode's flags.
pub struct Args {
    nodes: Vec<usize>,
    rounds: u64,
    secs: u64,
    concurrency: u64,
    phones: u64,
    messages: u64,
    heartbeat_ms: u64,
}

impl Args {
    pub fn parse(args: &[String]) -> Self {
        let nodes = args
            .iter()
            .position(|a| a == "--nodes")
            .and_then(|i| args.get(i + 1))
            .map_or(vec![1, 2, 3], |v| {
                v.split(',').filter_map(|n| n.parse().ok()).collect()
            });
        Self {
            nodes,
            rounds: arg(args, "--rounds", 2),
            secs: arg(args, "--secs", 10),
            concurrency: arg(args, "--concurrency", 64),
            phones: arg(args, "--phones", 100),
            messages: arg(args, "--messages", 20_000),
            heartbeat_ms: arg(args, "--heartbeat-ms", 15_000),
        }
    }
}

/// The nodes of one cluster: processes and HTTP base URLs.
struct Cluster {
    procs: Vec<Child>,
    urls: Vec<String>,
}

impl Cluster {
    /// `n` nodes on a fresh database in `dir`.
    async fn start(dir: &Path, n: usize, heartbeat_ms: u64) -> Self {
        let db = fresh_database().expect("LOAD_DATABASE_URL");
        // The ports first: every node's `cluster_nodes` lists all of them.
        let ports: Vec<u16> = (0..n)
            .map(|_| {
                std::net::TcpListener::bind("127.0.0.1:0")
                    .and_then(|l| l.local_addr())
                    .expect("a free port")
                    .port()
            })
            .collect();
        let list = ports
            .iter()
            .map(|p| format!("\"ws://127.0.0.1:{p}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let (mut procs, mut urls) = (Vec::new(), Vec::new());
        for (k, port) in ports.iter().enumerate() {
            let node = dir.join(format!("node-{k}"));
            std::fs::create_dir_all(&node).expect("node dir");
            let mut toml = format!(
                "listen = \"127.0.0.1:{port}\"\ndata = \"{}\"\ndatabase_url = \"{db}\"\n\
                 api_key = \"{KEY}\"\nmetrics_token = \"{KEY}\"\nheartbeat_ms = {heartbeat_ms}\n",
                node.join("data").display()
            );
            if n > 1 {
                toml.push_str(&format!(
                    "node_id = \"node-{k}\"\ncluster_nodes = [{list}]\n"
                ));
            }
            let config = node.join("relay.toml");
            std::fs::write(&config, toml).expect("config file");
            let config = config.display().to_string();
            let (child, line) = spawn(
                &["serve", "--config", &config],
                "listening on",
                &node.join("relay.log"),
            )
            .await;
            procs.push(child);
            urls.push(line.trim_start_matches("listening on ").to_string());
        }
        Self { procs, urls }
    }

    fn cpu(&self) -> Vec<f64> {
        self.procs
            .iter()
            .map(|p| proc_stats(p.id().unwrap_or(0)).cpu)
            .collect()
    }

    /// Each node's (routing passes, their seconds) so far.
    async fn passes(&self) -> Vec<(f64, f64)> {
        let mut out = Vec::new();
        for url in &self.urls {
            let text = metrics(url).await;
            out.push((
                figure(&text, "simrelay_routing_passes_total"),
                figure(&text, "simrelay_routing_pass_seconds_total"),
            ));
        }
        out
    }

    /// Waits (bounded) until every node holds a link of each of `phones` phones.
    async fn linked(&self, phones: u64) {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let mut all = true;
            for url in &self.urls {
                all &= figure(&metrics(url).await, "simrelay_phones_online") as u64 >= phones;
            }
            if all {
                return;
            }
            assert!(Instant::now() < deadline, "phones not linked to every node");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn metrics(url: &str) -> String {
    let Ok(r) = client()
        .get(format!("{url}/metrics"))
        .bearer_auth(KEY)
        .send()
        .await
    else {
        return String::new();
    };
    r.text().await.unwrap_or_default()
}

/// The value of an unlabelled figure in `/metrics` text (0 when absent).
fn figure(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// CPU milliseconds per message of each node (`before` to now), and their sum.
fn per_node(c: &Cluster, before: &[f64], messages: f64) -> (String, f64) {
    let ms: Vec<f64> = c
        .cpu()
        .iter()
        .zip(before)
        .map(|(now, b)| (now - b) / messages * 1e3)
        .collect();
    let list = ms
        .iter()
        .map(|m| format!("{m:.3}"))
        .collect::<Vec<_>>()
        .join(" + ");
    (list, ms.iter().sum())
}

/// One accept run on `n` nodes: accepted/s.
async fn accept(dir: &Path, n: usize, a: &Args) -> f64 {
    let c = Cluster::start(dir, n, a.heartbeat_ms).await;
    let (cpu0, db0) = (c.cpu(), db_cpu());
    let rate = closed_loop_on(&c.urls, a.secs, a.concurrency, Load::Accept).await;
    let accepted = (rate * a.secs as f64).max(1.0);
    let (nodes, sum) = per_node(&c, &cpu0, accepted);
    println!(
        "nodes {n} accept: {rate:.0}/s; CPU per accepted message: nodes {nodes} = {sum:.3} ms, \
         database {:.3} ms",
        (db_cpu() - db0) / accepted * 1e3
    );
    rate
}

/// One e2e run on `n` nodes: delivered messages/s.
async fn e2e(dir: &Path, n: usize, a: &Args) -> f64 {
    let c = Cluster::start(dir, n, a.heartbeat_ms).await;
    let phones_child = phones(dir, &c.urls[0], a.phones).await;
    c.linked(a.phones).await;
    let phones_pid = phones_child.id().unwrap_or(0);
    let http = client();
    let (cpu0, phones0, db0) = (c.cpu(), proc_stats(phones_pid).cpu, db_cpu());
    let passes0 = c.passes().await;
    let start = Instant::now();
    post_all_on(&c.urls, a.messages, Arc::new(|i| Load::Accept.request(i))).await;
    let posted = start.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(900);
    let mut done;
    loop {
        done = delivered(&http, &c.urls[0]).await;
        if done >= a.messages || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let el = start.elapsed().as_secs_f64();
    let count = done.max(1) as f64;
    let (nodes, sum) = per_node(&c, &cpu0, count);
    let passes: Vec<String> = c
        .passes()
        .await
        .iter()
        .zip(&passes0)
        .map(|((p, s), (p0, s0))| {
            let k = p - p0;
            format!("{k:.0} of {:.2} ms", (s - s0) / k.max(1.0) * 1e3)
        })
        .collect();
    println!(
        "nodes {n} e2e: {done}/{} delivered through {} phones in {el:.1} s = {:.0} msg/s \
         (posting {posted:.1} s); CPU per message: nodes {nodes} = {sum:.3} ms, phones {:.3} ms, \
         database {:.3} ms; routing passes per node: {}",
        a.messages,
        a.phones,
        done as f64 / el,
        (proc_stats(phones_pid).cpu - phones0) / count * 1e3,
        (db_cpu() - db0) / count * 1e3,
        passes.join(", ")
    );
    drop(phones_child);
    done as f64 / el
}

pub async fn run(dir: &Path, a: &Args) {
    if std::env::var_os("LOAD_DATABASE_URL").is_none() {
        eprintln!(
            "load nodes: set LOAD_DATABASE_URL (a PostgreSQL server: scripts/postgres.sh url); \
             the nodes of a cluster share one PostgreSQL"
        );
        std::process::exit(2);
    }
    let mut results: Vec<(usize, f64, f64)> = Vec::new();
    for round in 0..a.rounds {
        for &n in &a.nodes {
            let run = dir.join(format!("r{round}-n{n}"));
            let acc = accept(&run.join("accept"), n, a).await;
            let e = e2e(&run.join("e2e"), n, a).await;
            results.push((n, acc, e));
        }
    }
    println!("summary (ratio to the first node count of the same round):");
    for chunk in results.chunks(a.nodes.len()) {
        let (_, acc1, e1) = chunk[0];
        let line: Vec<String> = chunk
            .iter()
            .map(|(n, acc, e)| {
                format!(
                    "{n} nodes: accept {acc:.0}/s ({:.2}), e2e {e:.0} msg/s ({:.2})",
                    acc / acc1.max(1.0),
                    e / e1.max(1.0)
                )
            })
            .collect();
        println!("  {}", line.join("; "));
    }
}
