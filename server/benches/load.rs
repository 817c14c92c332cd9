//! Load benchmarks against `simrelay serve` as its own process (not timed tests). Run through
//! `scripts/load.sh`, which raises the fd limit, or directly:
//!
//! ```sh
//! cargo bench -p simrelay-server --bench load -- accept [--secs 10] [--concurrency 64]
//! cargo bench -p simrelay-server --bench load -- rate --rate 2000 [--secs 10]
//! cargo bench -p simrelay-server --bench load -- e2e [--phones 100] [--messages 20000]
//! cargo bench -p simrelay-server --bench load -- conns [--count 10000] [--secs 60]
//! cargo bench -p simrelay-server --bench load -- soak [--rate 300] [--secs 150] [--phones 20]
//! cargo bench -p simrelay-server --bench load -- floor [--secs 5] [--rounds 3]
//! cargo bench -p simrelay-server --bench load -- nodes [--nodes 1,2,3] [--rounds 2] [--secs 10] [--phones 100] [--messages 20000]
//! cargo bench -p simrelay-server --bench load -- kannel --url=URL --pids=P,P [--secs] [--concurrency]
//! cargo bench -p simrelay-server --bench load -- kannel-e2e --url=URL --pids=P,P --smsc-pid P [--messages]
//! ```
//!
//! Every mode takes `--cache-kib N` (the relay's `store_cache_kib`) and `--heartbeat-ms N`.
//! `LOAD_SIMRELAY_BIN=path` starts that `simrelay` instead of this build's (a baseline built
//! from another commit, or a wrapper script that runs it under a profiler).
//! `LOAD_LIMITS='{"daily_parts": ...}'` sets those spend limits on the load's account before
//! the run (`PUT /v1/accounts/{id}/limits` with an admin key the relay is started with).
//! `LOAD_DATABASE_URL=postgres://.../db` runs the relay on PostgreSQL (`scripts/postgres.sh
//! url`): each run creates a fresh database on that server (`psql`), and the CPU figures add
//! the PostgreSQL server's processes (every process named `postgres`: use a private cluster).
//!
//! * accept: closed loop, `concurrency` clients posting one-recipient messages; each 202 comes
//!   after the durable group commit. Accepted/s and latency percentiles, and the ratio to a
//!   baseline run first against the same relay at the same concurrency: requests refused
//!   401 before any store access (HTTP alone).
//! * rate: open loop at a fixed rate; latency measured from the scheduled send time (no
//!   coordinated omission). p50/p99/max.
//! * e2e: `simrelay sim-phones` with N phones at zero radio latency; messages/s from the first
//!   POST until every message is `delivered`, and the CPU time per message of the relay and
//!   of the phones' process.
//! * nodes: the relay as a cluster of 1, 2 and 3 nodes on one PostgreSQL (`load/nodes.rs`):
//!   accept and e2e with the load spread over the nodes, CPU per message of each node.
//! * floor: one client against the disk's fdatasync rate, a minimal durable HTTP accept
//!   (`load/floor.rs`) and the relay, alternated: how near one client can come to the disk;
//!   and the same on `/dev/shm`, where it exists, to see the relay's own cost with no disk.
//! * conns: N raw WebSocket phones (paired through the API) that say hello and heartbeat;
//!   the relay's RSS per connection and its CPU while they only heartbeat.
//! * soak: a steady rate through simulated phones; every 10 s the relay's RSS (heap and
//!   mapped files apart), its CPU over the interval, the store's size and errors so far; at
//!   the end the RSS growth over the second half of the run.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[path = "load/floor.rs"]
mod floor;
#[path = "load/kannel.rs"]
mod kannel;
#[path = "load/nodes.rs"]
mod nodes;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use simrelay_protocol::{PROTOCOL_VERSION, PhoneFrame, PhoneStatus, RelayFrame, SimInfo};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;

const KEY: &str = "load-key-0123456789abcdef";

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A child `simrelay` process, once it printed its `ready` line.
async fn spawn(args: &[&str], ready: &str, log: &Path) -> (Child, String) {
    // `LOAD_SIMRELAY_BIN`: another build (a baseline commit) or a wrapper (a profiler).
    let bin = std::env::var("LOAD_SIMRELAY_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_simrelay").to_string());
    spawn_bin(&bin, args, ready, log).await
}

/// This bench binary again, in another mode, once it printed `listening on`.
async fn spawn_exe(args: &[&str], log: &Path) -> (Child, String) {
    let exe = std::env::current_exe().expect("own path");
    spawn_bin(&exe.display().to_string(), args, "listening on", log).await
}

async fn spawn_bin(bin: &str, args: &[&str], ready: &str, log: &Path) -> (Child, String) {
    let log = std::fs::File::create(log).expect("log file");
    let mut child = Command::new(bin)
        .args(args)
        .env("SIMRELAY_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .expect("simrelay starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    loop {
        let line = tokio::time::timeout(Duration::from_secs(300), lines.next_line())
            .await
            .expect("ready in time")
            .expect("stdout readable")
            .expect("process still running");
        if line.starts_with(ready) {
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return (child, line);
        }
    }
}

/// `simrelay serve` on `dir/relay`; `cache_kib` sets `store_cache_kib` through a config file.
async fn relay(dir: &Path, heartbeat_ms: u64, cache_kib: Option<u64>) -> (Child, String) {
    let data = dir.join("relay").display().to_string();
    let hb = heartbeat_ms.to_string();
    let config = dir.join("relay.toml");
    let mut toml = cache_kib.map_or(String::new(), |k| format!("store_cache_kib = {k}\n"));
    if let Some(db) = fresh_database() {
        toml.push_str(&format!("database_url = \"{db}\"\n"));
    }
    let limits = std::env::var("LOAD_LIMITS").ok();
    if limits.is_some() {
        toml.push_str(&format!("admin_key = \"{ADMIN_KEY}\"\n"));
    }
    std::fs::write(&config, toml).expect("config file");
    let config = config.display().to_string();
    let (child, line) = spawn(
        &[
            "serve",
            "--config",
            &config,
            "--listen",
            "127.0.0.1:0",
            "--data",
            &data,
            "--api-key",
            KEY,
            "--metrics-token",
            KEY,
            "--heartbeat-ms",
            &hb,
        ],
        "listening on",
        &dir.join("relay.log"),
    )
    .await;
    let url = line.trim_start_matches("listening on ").to_string();
    if let Some(limits) = limits {
        set_limits(&url, &limits).await;
    }
    (child, url)
}

/// The admin key of a relay started with `LOAD_LIMITS`.
const ADMIN_KEY: &str = "load-admin-key-0123456789abcdef0123456789";

/// Sets spend limits (JSON) on the account of [`KEY`].
async fn set_limits(url: &str, limits: &str) {
    let http = client();
    let account: serde_json::Value = http
        .get(format!("{url}/v1/account"))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("GET /v1/account")
        .json()
        .await
        .expect("account JSON");
    let id = account["account"].as_str().expect("account id");
    let body: serde_json::Value = serde_json::from_str(limits).expect("LOAD_LIMITS is JSON");
    let res = http
        .put(format!("{url}/v1/accounts/{id}/limits"))
        .bearer_auth(ADMIN_KEY)
        .json(&body)
        .send()
        .await
        .expect("PUT limits");
    assert_eq!(res.status().as_u16(), 200, "LOAD_LIMITS accepted");
}

async fn phones(dir: &Path, url: &str, count: u64) -> Child {
    let data = dir.join("phones").display().to_string();
    let n = count.to_string();
    spawn(
        &[
            "sim-phones",
            "--relay",
            url,
            "--count",
            &n,
            "--data",
            &data,
            "--api-key",
            KEY,
        ],
        "sim-phones ready",
        &dir.join("phones.log"),
    )
    .await
    .0
}

/// With `LOAD_DATABASE_URL`, a new empty database on that PostgreSQL server, as a URL.
fn fresh_database() -> Option<String> {
    let base = std::env::var("LOAD_DATABASE_URL").ok()?;
    let name = format!("load_{}_{}", std::process::id(), store_now_ms());
    let out = std::process::Command::new("psql")
        .args([base.as_str(), "-qc", &format!("CREATE DATABASE {name}")])
        .output()
        .expect("psql runs (PostgreSQL's client, installed by scripts/postgres.sh)");
    assert!(
        out.status.success(),
        "CREATE DATABASE failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (head, query) = base
        .split_once('?')
        .map_or((base.as_str(), None), |(h, q)| (h, Some(q)));
    let root = head.rsplit_once('/').map_or(head, |(r, _)| r);
    let url = format!("{root}/{name}");
    Some(query.map_or(url.clone(), |q| format!("{url}?{q}")))
}

fn store_now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// CPU seconds of the PostgreSQL server's processes (0 without `LOAD_DATABASE_URL`).
fn db_cpu() -> f64 {
    if std::env::var_os("LOAD_DATABASE_URL").is_none() {
        return 0.0;
    }
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .map(|pid| proc_stats(pid).cpu)
        .sum()
}

/// A process's memory (KiB) and CPU time, from /proc.
#[derive(Debug, Clone, Copy, Default)]
struct ProcStats {
    rss: u64,
    /// Heap and stacks: what the process allocated itself.
    anon: u64,
    /// Mapped files (the binary, SQLite's `-shm` index).
    file: u64,
    /// User + system CPU seconds.
    cpu: f64,
}

fn proc_stats(pid: u32) -> ProcStats {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    ProcStats {
        rss: kib("VmRSS:"),
        anon: kib("RssAnon:"),
        file: kib("RssFile:") + kib("RssShmem:"),
        // Fields 14 and 15 (utime, stime) are 11 and 12 after the command name; 100 ticks/s.
        cpu: (ticks(11) + ticks(12)) / 100.0,
    }
}

/// Size in MiB of the files under `dir` whose names start with `prefix`.
fn files_mib(dir: &Path, prefix: &str) -> f64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0.0;
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len() as f64)
        .sum::<f64>()
        / (1024.0 * 1024.0)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

async fn post(http: &reqwest::Client, url: &str, n: u64) -> bool {
    let body = json!({"to": [format!("+1555{:07}", n % 10_000_000)], "text": format!("load {n}")});
    let res = http
        .post(format!("{url}/v1/messages"))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await;
    match res {
        Ok(r) if r.status().as_u16() == 202 => true,
        // Say what failed, so that an error count can be told apart: the relay's answer, the
        // client's timeout, or the connection (the load generator's own limits).
        Ok(r) => {
            eprintln!("load: POST answered {}", r.status());
            false
        }
        Err(e) => {
            let kind = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "could not connect"
            } else {
                "failed"
            };
            eprintln!("load: POST {kind}: {e}");
            false
        }
    }
}

fn percentiles(mut v: Vec<Duration>) -> String {
    if v.is_empty() {
        return "no samples".into();
    }
    v.sort();
    let p = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)].as_secs_f64() * 1e3;
    format!(
        "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        p(0.5),
        p(0.99),
        p(1.0)
    )
}

/// One keep-alive HTTP/1.1 connection to the relay on hyper's client connection, without a
/// pool, a per-request URL parse or a JSON value: the closed loop's clients are the same
/// machine's CPU as the relay and the database, so they are kept as cheap as they can be.
struct Conn {
    send: hyper::client::conn::http1::SendRequest<http_body_util::Full<hyper::body::Bytes>>,
    host: String,
}

impl Conn {
    async fn open(url: &str) -> Self {
        let host = url.trim_start_matches("http://").to_string();
        let tcp = tokio::net::TcpStream::connect(&host)
            .await
            .expect("connect");
        tcp.set_nodelay(true).expect("nodelay");
        let (send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        Self { send, host }
    }

    /// A GET (no body) or a JSON POST of `uri`: the status (its body read to the end), or
    /// None if the connection failed.
    async fn send_to(
        &mut self,
        uri: String,
        post: Option<String>,
        key: Option<&str>,
    ) -> Option<u16> {
        use http_body_util::BodyExt;
        self.send.ready().await.ok()?;
        let mut req = hyper::Request::builder()
            .header(hyper::header::HOST, &self.host)
            .uri(uri);
        if let Some(key) = key {
            req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {key}"));
        }
        let req = match post {
            Some(body) => req
                .method(hyper::Method::POST)
                .header(hyper::header::CONTENT_TYPE, "application/json")
                .body(http_body_util::Full::new(hyper::body::Bytes::from(body))),
            None => req.body(http_body_util::Full::new(hyper::body::Bytes::new())),
        }
        .expect("request");
        let res = self.send.send_request(req).await.ok()?;
        let status = res.status().as_u16();
        res.into_body().collect().await.ok()?;
        Some(status)
    }
}

/// What the closed loop's clients send.
#[derive(Debug, Clone, Copy)]
enum Load {
    /// `GET /v1/phones` without a key: refused 401 before any store access.
    Baseline,
    /// `POST /v1/messages`, answered 202 after the durable commit.
    Accept,
    /// Kannel's smsbox `GET /cgi-bin/sendsms` with the same numbers and texts.
    Kannel,
}

impl Load {
    /// Request `n`: (URI, JSON body, key, the status that counts as answered).
    fn request(self, n: u64) -> (String, Option<String>, Option<&'static str>, u16) {
        let to = n % 10_000_000;
        match self {
            Self::Baseline => ("/v1/phones".into(), None, None, 401),
            Self::Accept => (
                "/v1/messages".into(),
                Some(format!(r#"{{"to":["+1555{to:07}"],"text":"load {n}"}}"#)),
                Some(KEY),
                202,
            ),
            Self::Kannel => (
                format!(
                    "/cgi-bin/sendsms?username=bench&password=bench&from=100&to=%2B1555{to:07}&text=load+{n}"
                ),
                None,
                None,
                202,
            ),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Baseline => "baseline GET /v1/phones without a key (401)",
            Self::Accept => "accept",
            Self::Kannel => "kannel accept",
        }
    }
}

/// Request `n` of a run: (URI, body, key, the status that counts as taken).
type Request =
    Arc<dyn Fn(u64) -> (String, Option<String>, Option<&'static str>, u16) + Send + Sync>;

/// Sends requests 0..`messages` from 64 clients (a connection each), each until it is taken
/// (a refusal is said and sent again; a failed connection is opened again).
async fn post_all(url: &str, messages: u64, request: Request) {
    post_all_on(&[url.to_string()], messages, request).await;
}

/// [`post_all`] with the clients spread over `urls` in turn (the nodes of a cluster).
async fn post_all_on(urls: &[String], messages: u64, request: Request) {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for i in 0..64 {
        let (url, next, request) = (urls[i % urls.len()].clone(), next.clone(), request.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(&url).await;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= messages {
                    return;
                }
                let (uri, body, key, want) = request(n);
                loop {
                    match conn.send_to(uri.clone(), body.clone(), key).await {
                        Some(s) if s == want => break,
                        Some(s) => eprintln!("load: answered {s}"),
                        None => conn = Conn::open(&url).await,
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("poster");
    }
}

/// Closed loop: `concurrency` clients (a connection each) for `secs`; `baseline` sends
/// `GET /v1/phones` without a key instead of posting messages (the same HTTP stack, connection
/// handling and routing, answered 401 without touching the store). Returns the answers per
/// second.
async fn closed_loop(url: &str, secs: u64, concurrency: u64, load: Load) -> f64 {
    closed_loop_on(&[url.to_string()], secs, concurrency, load).await
}

/// [`closed_loop`] with the clients spread over `urls` in turn (the nodes of a cluster).
async fn closed_loop_on(urls: &[String], secs: u64, concurrency: u64, load: Load) -> f64 {
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let mut conns = Vec::new();
    for i in 0..concurrency as usize {
        let url = urls[i % urls.len()].clone();
        conns.push((Conn::open(&url).await, url));
    }
    let end = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (mut conn, url) in conns {
        let (next, errors) = (next.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < end {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let t = Instant::now();
                let (uri, body, key, want) = load.request(n);
                match conn.send_to(uri, body, key).await {
                    Some(s) if s == want => lat.push(t.elapsed()),
                    Some(s) => {
                        eprintln!("load: answered {s}");
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    None => {
                        // The connection failed: say so, and go on with a new one.
                        eprintln!("load: the connection failed");
                        errors.fetch_add(1, Ordering::Relaxed);
                        conn = Conn::open(&url).await;
                    }
                }
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.expect("client task"));
    }
    let el = start.elapsed().as_secs_f64();
    let what = load.name();
    let per_sec = lat.len() as f64 / el;
    println!(
        "{what}: {} answered in {el:.1} s = {per_sec:.0}/s with {concurrency} clients, {} errors; {}",
        lat.len(),
        errors.load(Ordering::Relaxed),
        percentiles(lat)
    );
    per_sec
}

async fn accept(url: &str, pid: u32, secs: u64, concurrency: u64) {
    let base = closed_loop(url, secs, concurrency, Load::Baseline).await;
    let (relay0, db0) = (proc_stats(pid).cpu, db_cpu());
    let rate = closed_loop(url, secs, concurrency, Load::Accept).await;
    let accepted = (rate * secs as f64).max(1.0);
    println!(
        "accept: {rate:.0}/s durable against {base:.0}/s baseline = ratio {:.2}; \
         CPU per accepted message: relay {:.3} ms, database {:.3} ms",
        rate / base.max(1.0),
        (proc_stats(pid).cpu - relay0) / accepted * 1e3,
        (db_cpu() - db0) / accepted * 1e3,
    );
}

async fn rate(url: &str, rate: u64, secs: u64) {
    let http = client();
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = tokio::time::Instant::now();
    let total = rate * secs;
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(total as usize);
    for n in 0..total {
        let at = start + interval * n as u32;
        tokio::time::sleep_until(at).await;
        let (http, url, errors) = (http.clone(), url.to_string(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let ok = post(&http, &url, n).await;
            if !ok {
                errors.fetch_add(1, Ordering::Relaxed);
            }
            at.elapsed()
        }));
    }
    let mut lat = Vec::with_capacity(tasks.len());
    for t in tasks {
        lat.push(t.await.expect("request task"));
    }
    println!(
        "rate: {total} messages at {rate}/s for {secs} s, {} errors; latency from schedule: {}",
        errors.load(Ordering::Relaxed),
        percentiles(lat)
    );
}

async fn delivered(http: &reqwest::Client, url: &str) -> u64 {
    let Ok(r) = http
        .get(format!("{url}/metrics"))
        .bearer_auth(KEY)
        .send()
        .await
    else {
        return 0;
    };
    let text = r.text().await.unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("simrelay_messages{state=\"delivered\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

async fn e2e(dir: &Path, url: &str, pid: u32, phone_count: u64, messages: u64) {
    let phones_child = phones(dir, url, phone_count).await;
    let phones_pid = phones_child.id().unwrap_or(0);
    let http = client();
    let (relay0, phones0, db0) = (proc_stats(pid).cpu, proc_stats(phones_pid).cpu, db_cpu());
    let start = Instant::now();
    post_all(url, messages, Arc::new(|n| Load::Accept.request(n))).await;
    let posted = start.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut done;
    loop {
        done = delivered(&http, url).await;
        if done >= messages || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let el = start.elapsed().as_secs_f64();
    // CPU per message is steadier than the rate on a shared machine.
    let per_msg = |cpu: f64| cpu / done.max(1) as f64 * 1e3;
    println!(
        "e2e: {done}/{messages} delivered through {phone_count} phones in {el:.1} s = {:.0} msg/s (posting took {posted:.1} s); \
         CPU per message: relay {:.3} ms, phones {:.3} ms, database {:.3} ms",
        done as f64 / el,
        per_msg(proc_stats(pid).cpu - relay0),
        per_msg(proc_stats(phones_pid).cpu - phones0),
        per_msg(db_cpu() - db0),
    );
}

fn status() -> PhoneStatus {
    PhoneStatus {
        sims: vec![SimInfo {
            sub_id: 1,
            slot: 0,
            carrier: None,
            parts_per_minute: 30,
            daily_cap: 0,
            sent_today: 0,
        }],
        queue_depth: 0,
        battery: None,
        charging: None,
        app_version: "load".into(),
    }
}

/// Pairs one raw phone; returns its device token.
async fn pair(http: &reqwest::Client, url: &str, ws: &str) -> String {
    let code: serde_json::Value = http
        .post(format!("{url}/v1/pairing-codes"))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("pairing code")
        .json()
        .await
        .expect("json");
    let (mut s, _) = tokio_tungstenite::connect_async(ws).await.expect("ws");
    let frame = PhoneFrame::Pair {
        version: PROTOCOL_VERSION,
        code: code["code"].as_str().expect("code").into(),
        name: None,
    };
    s.send(Message::text(simrelay_protocol::encode(&frame)))
        .await
        .expect("pair sent");
    while let Some(Ok(m)) = s.next().await {
        if let Message::Text(t) = m
            && let Ok(RelayFrame::Paired { token, .. }) = simrelay_protocol::decode_relay_frame(&t)
        {
            return token;
        }
    }
    panic!("pairing failed");
}

/// A phone that says hello, answers with heartbeats, and counts its welcome.
async fn hold(ws: String, token: String, heartbeat: Duration, online: Arc<AtomicU64>) {
    let Ok((s, _)) = tokio_tungstenite::connect_async(&ws).await else {
        return;
    };
    let (mut tx, mut rx) = s.split();
    let hello = PhoneFrame::Hello {
        version: PROTOCOL_VERSION,
        token,
        acked: 0,
        status: status(),
    };
    if tx
        .send(Message::text(simrelay_protocol::encode(&hello)))
        .await
        .is_err()
    {
        return;
    }
    let mut tick = tokio::time::interval(heartbeat);
    loop {
        tokio::select! {
            m = rx.next() => match m {
                Some(Ok(Message::Text(t))) => {
                    if let Ok(RelayFrame::Welcome { .. }) = simrelay_protocol::decode_relay_frame(&t) {
                        online.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Some(Ok(_)) => {}
                _ => return,
            },
            _ = tick.tick() => {
                let hb = PhoneFrame::Heartbeat { at: 0 };
                if tx.send(Message::text(simrelay_protocol::encode(&hb))).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn conns(url: &str, pid: u32, count: u64, secs: u64, heartbeat: Duration) {
    let http = client();
    let ws = format!("{}/v1/link", url.replacen("http", "ws", 1));
    let t = Instant::now();
    let mut tokens = Vec::with_capacity(count as usize);
    let mut pairing = Vec::new();
    for chunk in 0..16 {
        let (http, url, ws) = (http.clone(), url.to_string(), ws.clone());
        let n = count / 16 + u64::from(chunk < count % 16);
        pairing.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for _ in 0..n {
                out.push(pair(&http, &url, &ws).await);
            }
            out
        }));
    }
    for p in pairing {
        tokens.extend(p.await.expect("pairing task"));
    }
    println!(
        "conns: paired {count} phones in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let rss0 = proc_stats(pid).rss;
    let online = Arc::new(AtomicU64::new(0));
    let t = Instant::now();
    for token in tokens {
        tokio::spawn(hold(ws.clone(), token, heartbeat, online.clone()));
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    while online.load(Ordering::Relaxed) < count && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let up = online.load(Ordering::Relaxed);
    println!(
        "conns: {up}/{count} online in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    // Let connection buffers and the presence writes settle before measuring.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let ProcStats {
        rss: rss1,
        cpu: cpu1,
        ..
    } = proc_stats(pid);
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let ProcStats {
        rss: rss2,
        cpu: cpu2,
        ..
    } = proc_stats(pid);
    println!(
        "conns: relay RSS {} MiB idle -> {} MiB with {up} links = {:.1} KiB per link; \
         heartbeat phase ({secs} s, one heartbeat per {} ms each way): relay CPU {:.1}% of one core, RSS {} MiB after",
        rss0 / 1024,
        rss1 / 1024,
        (rss1.saturating_sub(rss0)) as f64 / up.max(1) as f64,
        heartbeat.as_millis(),
        (cpu2 - cpu1) / secs as f64 * 100.0,
        rss2 / 1024
    );
}

async fn soak(dir: &Path, url: &str, pid: u32, rate: u64, secs: u64, phone_count: u64) {
    let phones_child = phones(dir, url, phone_count).await;
    let phones_pid = phones_child.id().unwrap_or(0);
    let http = client();
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let errors = Arc::new(AtomicU64::new(0));
    let start = tokio::time::Instant::now();
    let relay_dir = dir.join("relay");
    let mut next_sample = Instant::now();
    let mut last = proc_stats(pid);
    let mut last_at = Instant::now();
    // (seconds, relay RSS KiB) per sample, for the verdict below.
    let mut rss_at: Vec<(u64, u64)> = Vec::new();
    let mut cpu_pcts = Vec::new();
    println!(
        "soak: t_s rss_mib anon_mib file_mib cpu_pct db_mib wal_mib phones_rss_mib errors metrics_ms"
    );
    for n in 0..rate * secs {
        if Instant::now() >= next_sample {
            let now = proc_stats(pid);
            let pct = (now.cpu - last.cpu) / last_at.elapsed().as_secs_f64().max(1e-3) * 100.0;
            let t = start.elapsed().as_secs();
            if n > 0 {
                cpu_pcts.push(pct);
            }
            rss_at.push((t, now.rss));
            // What one scrape costs while the store grows (it reads ten minutes of sends).
            let scrape = Instant::now();
            delivered(&http, url).await;
            let scrape_ms = scrape.elapsed().as_secs_f64() * 1e3;
            println!(
                "soak: {t} {:.1} {:.1} {:.1} {pct:.0} {:.0} {:.1} {:.1} {} {scrape_ms:.1}",
                now.rss as f64 / 1024.0,
                now.anon as f64 / 1024.0,
                now.file as f64 / 1024.0,
                files_mib(&relay_dir, "relay.sqlite") - files_mib(&relay_dir, "relay.sqlite-"),
                files_mib(&relay_dir, "relay.sqlite-wal"),
                proc_stats(phones_pid).rss as f64 / 1024.0,
                errors.load(Ordering::Relaxed)
            );
            (last, last_at) = (now, Instant::now());
            next_sample += Duration::from_secs(10);
        }
        tokio::time::sleep_until(start + interval * n as u32).await;
        let (http, url, errors) = (http.clone(), url.to_string(), errors.clone());
        tokio::spawn(async move {
            if !post(&http, &url, n).await {
                errors.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let total = rate * secs;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut done = delivered(&http, url).await;
    while done < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        done = delivered(&http, url).await;
    }
    let end = proc_stats(pid);
    // Flat means: the second half of the run adds (almost) nothing to what the first half
    // reached. The first half includes the caches filling.
    let at = |frac: f64| {
        let t = (secs as f64 * frac) as u64;
        rss_at
            .iter()
            .rev()
            .find(|(s, _)| *s <= t)
            .map_or(0, |(_, r)| *r)
    };
    let (half, last_rss) = (at(0.5), rss_at.last().map_or(0, |(_, r)| *r));
    let cpu_mean = cpu_pcts.iter().sum::<f64>() / cpu_pcts.len().max(1) as f64;
    println!(
        "soak: {total} messages at {rate}/s for {secs} s through {phone_count} phones: {done} delivered, {} errors; \
         relay RSS {:.1} MiB at {} s, {:.1} MiB at half time, {:.1} MiB at the end of posting \
         ({:+.1} MiB over the second half), {:.1} MiB after the drain; relay CPU {cpu_mean:.0}% of one core on average",
        errors.load(Ordering::Relaxed),
        at(0.1) as f64 / 1024.0,
        secs / 10,
        half as f64 / 1024.0,
        last_rss as f64 / 1024.0,
        (last_rss as f64 - half as f64) / 1024.0,
        end.rss as f64 / 1024.0,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(mode) = args
        .iter()
        .find(|a| !a.starts_with('-') && a.parse::<u64>().is_err())
        .cloned()
    else {
        // `cargo bench` without a mode (e.g. every bench of the crate): nothing to do.
        println!(
            "load: pass a mode: accept, rate, e2e, floor, nodes, conns, soak or kannel (see scripts/load.sh)"
        );
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        rustls::crypto::ring::default_provider()
            .install_default()
            .ok();
        if mode == "kannel" || mode == "kannel-e2e" {
            // Another gateway, started by scripts/peer-bench.sh: no relay here.
            let url = args
                .iter()
                .find_map(|a| a.strip_prefix("--url="))
                .expect("kannel needs --url=http://HOST:PORT");
            let pids: Vec<u32> = args
                .iter()
                .find_map(|a| a.strip_prefix("--pids="))
                .map(|p| p.split(',').filter_map(|p| p.parse().ok()).collect())
                .unwrap_or_default();
            if mode == "kannel" {
                let (secs, c) = (arg(&args, "--secs", 10), arg(&args, "--concurrency", 64));
                kannel::accept(url, &pids, secs, c).await;
            } else {
                let smsc = arg(&args, "--smsc-pid", 0) as u32;
                kannel::e2e(url, &pids, smsc, arg(&args, "--messages", 20_000)).await;
            }
            return;
        }
        if mode == "floor-server" {
            let dir = args
                .iter()
                .rev()
                .find(|a| !a.starts_with('-'))
                .expect("dir");
            floor::serve(Path::new(dir), args.iter().any(|a| a == "--inline")).await;
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        if mode == "floor" {
            let (secs, rounds) = (arg(&args, "--secs", 5), arg(&args, "--rounds", 3));
            floor::run(dir.path(), secs, rounds).await;
            return;
        }
        if mode == "nodes" {
            nodes::run(dir.path(), &nodes::Args::parse(&args)).await;
            return;
        }
        let hb = Duration::from_millis(arg(&args, "--heartbeat-ms", 15_000));
        let cache_kib = args
            .iter()
            .any(|a| a == "--cache-kib")
            .then(|| arg(&args, "--cache-kib", 2000));
        let (relay_proc, url) = relay(dir.path(), hb.as_millis() as u64, cache_kib).await;
        let pid = relay_proc.id().expect("relay pid");
        let secs = arg(&args, "--secs", 10);
        match mode.as_str() {
            "accept" => accept(&url, pid, secs, arg(&args, "--concurrency", 64)).await,
            "rate" => rate(&url, arg(&args, "--rate", 2000), secs).await,
            "e2e" => {
                e2e(
                    dir.path(),
                    &url,
                    pid,
                    arg(&args, "--phones", 100),
                    arg(&args, "--messages", 20_000),
                )
                .await
            }
            "conns" => conns(&url, pid, arg(&args, "--count", 10_000), secs, hb).await,
            "soak" => {
                soak(
                    dir.path(),
                    &url,
                    pid,
                    arg(&args, "--rate", 300),
                    secs,
                    arg(&args, "--phones", 20),
                )
                .await
            }
            other => eprintln!("unknown mode {other}: accept, rate, e2e, conns or soak"),
        }
        drop(relay_proc);
    });
}
