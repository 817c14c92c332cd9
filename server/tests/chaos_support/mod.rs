//! Support of the chaos test: a TCP proxy that can cut or stall every connection through it,
//! the relay and the simulated phones as separate processes (killed with SIGKILL, restarted
//! on the same files), and readers of the phones' databases and radio ledgers.

#![allow(dead_code)]

pub mod private_pg;
pub mod verdict;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::AbortHandle;

/// A TCP proxy to a movable upstream. `cut` drops every open connection; `stall` stops
/// forwarding bytes (new connections included) until `resume`.
pub struct Proxy {
    pub addr: SocketAddr,
    upstream: Arc<Mutex<SocketAddr>>,
    conns: Arc<Mutex<Vec<AbortHandle>>>,
    stalled: watch::Sender<bool>,
    accept: AbortHandle,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

async fn pipe<R, W>(mut from: R, mut to: W, stalled: watch::Receiver<bool>)
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut stalled = stalled.clone();
        if stalled.wait_for(|s| !*s).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy binds");
        let addr = listener.local_addr().expect("proxy addr");
        let upstream = Arc::new(Mutex::new(upstream));
        let conns: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (stalled, _) = watch::channel(false);
        let (up, cs, st) = (upstream.clone(), conns.clone(), stalled.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    continue;
                };
                let target = *up.lock().expect("upstream lock");
                let rx = st.subscribe();
                let task = tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    let _ = inbound.set_nodelay(true);
                    let _ = outbound.set_nodelay(true);
                    let (ir, iw) = inbound.into_split();
                    let (or, ow) = outbound.into_split();
                    tokio::select! {
                        () = pipe(ir, ow, rx.clone()) => {}
                        () = pipe(or, iw, rx) => {}
                    }
                });
                let mut cs = cs.lock().expect("conns lock");
                cs.retain(|h| !h.is_finished());
                cs.push(task.abort_handle());
            }
        })
        .abort_handle();
        Self {
            addr,
            upstream,
            conns,
            stalled,
            accept,
        }
    }

    pub fn set_upstream(&self, to: SocketAddr) {
        *self.upstream.lock().expect("upstream lock") = to;
    }

    /// Drops every open connection (both sides see the TCP connection end).
    pub fn cut(&self) {
        for h in self.conns.lock().expect("conns lock").drain(..) {
            h.abort();
        }
    }

    pub fn stall(&self) {
        self.stalled.send_replace(true);
    }

    pub fn resume(&self) {
        self.stalled.send_replace(false);
    }
}

/// A child process whose stdout is read for its readiness line; stderr goes to a log file.
pub struct Proc {
    pub child: Child,
    pub ready_line: String,
}

/// Spawns the `simrelay` binary with `args`, waits (bounded) for a stdout line starting with
/// `ready`, and keeps draining stdout afterwards.
pub async fn spawn(args: &[String], log: &Path, ready: &str) -> Proc {
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file opens");
    let mut child = Command::new(env!("CARGO_BIN_EXE_simrelay"))
        .args(args)
        .env(
            "SIMRELAY_LOG",
            std::env::var("CHAOS_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr))
        .kill_on_drop(true)
        .spawn()
        .expect("simrelay starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let ready_line = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.starts_with(ready) {
                return Some(line);
            }
        }
        None
    })
    .await
    .unwrap_or_else(|_| panic!("no `{ready}` line within 60 s (see {})", log.display()))
    .unwrap_or_else(|| panic!("exited before `{ready}` (see {})", log.display()));
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Proc { child, ready_line }
}

impl Proc {
    /// SIGKILL, then reap.
    pub async fn kill9(mut self) {
        self.child.start_kill().expect("SIGKILL sent");
        let _ = self.child.wait().await;
    }

    /// SIGTERM (graceful), then reap.
    pub async fn terminate(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        if tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.start_kill();
            let _ = self.child.wait().await;
        }
    }
}

/// `simrelay serve` on 127.0.0.1:0 over `data`; returns the process and its address.
pub async fn start_relay(data: &Path, key: &str, log: &Path) -> (Proc, SocketAddr) {
    let mut args: Vec<String> = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data",
        &data.display().to_string(),
        "--api-key",
        key,
        "--heartbeat-ms",
        "500",
        "--offline-grace-ms",
        "2000",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // On PostgreSQL when the suite runs there: the same scratch schema at every restart.
    if let Some(url) = simrelay_server::store::postgres::scratch::database_url_for(data) {
        args.extend(["--database".to_string(), url]);
    }
    let p = spawn(&args, log, "listening on").await;
    let url = p
        .ready_line
        .trim_start_matches("listening on http://")
        .to_string();
    let addr = url.parse().expect("relay prints its address");
    (p, addr)
}

/// `simrelay serve` on 127.0.0.1:0 over the PostgreSQL `url`, with the key `key`, heartbeats
/// of 500 ms, an offline grace of 2 s and the configuration lines `extra` (TOML) besides;
/// its data and log in `dir`. Returns the process and its address.
pub async fn pg_node(dir: &Path, url: &str, key: &str, extra: &str) -> (Proc, SocketAddr) {
    std::fs::create_dir_all(dir).expect("node dir");
    let file = dir.join("relay.toml");
    std::fs::write(
        &file,
        format!(
            "listen = \"127.0.0.1:0\"\n\
             data = \"{data}\"\n\
             database_url = \"{url}\"\n\
             api_key = \"{key}\"\n\
             heartbeat_ms = 500\n\
             offline_grace_ms = 2000\n\
             {extra}",
            data = dir.join("data").display(),
        ),
    )
    .expect("config written");
    let args = vec![
        "serve".to_string(),
        "--config".to_string(),
        file.display().to_string(),
    ];
    let p = spawn(&args, &dir.join("relay.log"), "listening on").await;
    let addr = p
        .ready_line
        .trim_start_matches("listening on http://")
        .parse()
        .expect("the relay prints its address");
    (p, addr)
}

/// `simrelay sim-phones` with `count` phones linked through `relay` (the proxy).
pub async fn start_phones(
    relay: SocketAddr,
    count: usize,
    data: &Path,
    key: &str,
    log: &Path,
) -> Proc {
    let args: Vec<String> = [
        "sim-phones",
        "--relay",
        &format!("http://{relay}"),
        "--count",
        &count.to_string(),
        "--data",
        &data.display().to_string(),
        "--api-key",
        key,
        "--sent-timeout-ms",
        "5000",
        "--report-timeout-ms",
        "5000",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    spawn(&args, log, "sim-phones ready").await
}

/// What the radios transmitted: (message, idx, part) -> [(phone, times)].
pub type Ledgers = BTreeMap<(String, u32, u32), Vec<(usize, u32)>>;

/// Parts each phone's radio transmitted, from every phone's ledger file.
pub fn read_ledgers(dir: &Path, count: usize) -> Ledgers {
    let mut out = Ledgers::new();
    for i in 0..count {
        let Ok(text) =
            std::fs::read_to_string(simrelay_server::sims::sim_phones::ledger_path(dir, i))
        else {
            continue;
        };
        for line in text.lines() {
            let mut f = line.split('\t');
            let (Some(id), Some(Ok(idx)), Some(Ok(part))) =
                (f.next(), f.next().map(str::parse), f.next().map(str::parse))
            else {
                panic!("phone {i}: malformed ledger line {line:?}");
            };
            let entry = out.entry((id.to_string(), idx, part)).or_default();
            match entry.iter_mut().find(|(p, _)| *p == i) {
                Some((_, n)) => *n += 1,
                None => entry.push((i, 1)),
            }
        }
    }
    out
}

/// Every recipient's state in phone `i`'s own database: (message, idx) -> state.
pub fn phone_states(dir: &Path, i: usize) -> BTreeMap<(String, u32), String> {
    let path: PathBuf = simrelay_server::sims::sim_phones::db_path(dir, i);
    let conn = rusqlite::Connection::open_with_flags(
        &path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .expect("phone database opens");
    conn.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    let mut stmt = conn
        .prepare("SELECT message_id, idx, state FROM recipients")
        .expect("query prepares");
    stmt.query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))
        .expect("query runs")
        .collect::<Result<_, _>>()
        .expect("rows read")
}
