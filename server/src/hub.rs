//! The device hub: which phones have a live link, and their presence over time.
//!
//! Each link is served by one task (`crate::link`); the hub keeps a registry of them so that
//! other parts can wake a link when frames were queued for its phone (`kick`), read the
//! presence and status of phones for routing, and close every link at shutdown. A newer link
//! of the same phone replaces the older one.
//!
//! Presence: a phone is `online` in the store from its `hello` until it has been disconnected
//! for the configured grace; then it is marked offline (webhook `phone.offline`) and its
//! recipients not yet accepted go back to the router. Both changes happen under one async
//! lock, so a reconnect can never interleave with the offline decision.
//!
//! The hub also remembers, per phone, the highest relay frame seq any link of this process
//! wrote (a phone's acknowledgement is clamped to it: it cannot acknowledge, and so delete,
//! frames it never got), and holds the [`Limits`] shared by every link.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::rejection::ExtensionRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use simrelay_protocol::{MAX_FRAME_BYTES, PhoneStatus};
use tokio::sync::{Notify, watch};

use crate::AppState;
use crate::error::AppError;
use crate::limits::Limits;
use crate::store::now_ms;
use crate::store::ops::phones::Offline;

/// One registered link.
#[derive(Debug)]
struct Conn {
    id: u64,
    account: String,
    status: PhoneStatus,
    kick: Arc<Notify>,
    close: Arc<Notify>,
    in_flight: Arc<AtomicU64>,
}

/// What a link task gets when it registers.
#[derive(Debug)]
pub struct Registration {
    pub id: u64,
    pub kick: Arc<Notify>,
    pub close: Arc<Notify>,
    pub in_flight: Arc<AtomicU64>,
}

/// An online phone as the router sees it.
#[derive(Debug, Clone)]
pub struct OnlinePhone {
    pub id: String,
    pub status: PhoneStatus,
}

#[derive(Debug)]
struct HubInner {
    conns: Mutex<HashMap<String, Conn>>,
    next_id: AtomicU64,
    /// Serialises "phone connected" with "phone offline after grace".
    presence: tokio::sync::Mutex<()>,
    /// Number of live link tasks.
    live: watch::Sender<usize>,
    /// Highest relay frame seq written to each phone by this process.
    written: Mutex<HashMap<String, u64>>,
    limits: Limits,
}

/// Registry of live phone links.
#[derive(Debug, Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

/// Decrements the live-link count when a link task ends.
#[derive(Debug)]
pub struct LiveGuard(Hub);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.inner.live.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl Hub {
    pub fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    pub fn with_limits(limits: Limits) -> Self {
        Self {
            inner: Arc::new(HubInner {
                conns: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
                presence: tokio::sync::Mutex::new(()),
                live: watch::channel(0).0,
                written: Mutex::new(HashMap::new()),
                limits,
            }),
        }
    }

    /// The limiters every link shares.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Records that a link wrote the phone's frames up to `seq`.
    pub fn note_written(&self, phone: &str, seq: u64) {
        let mut w = self.inner.written.lock().expect("hub written lock");
        let e = w.entry(phone.to_string()).or_default();
        *e = (*e).max(seq);
    }

    /// Highest relay frame seq this process wrote to the phone (0 if none).
    pub fn written(&self, phone: &str) -> u64 {
        let w = self.inner.written.lock().expect("hub written lock");
        w.get(phone).copied().unwrap_or(0)
    }

    fn conns(&self) -> std::sync::MutexGuard<'_, HashMap<String, Conn>> {
        self.inner.conns.lock().expect("hub registry lock")
    }

    /// Counts a link task as live until the guard drops.
    pub fn live_guard(&self) -> LiveGuard {
        self.inner.live.send_modify(|n| *n += 1);
        LiveGuard(self.clone())
    }

    /// The presence lock (see the module comment).
    pub async fn presence(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.inner.presence.lock().await
    }

    /// Registers a link, closing an older link of the same phone.
    pub fn register(&self, phone: &str, account: &str, status: PhoneStatus) -> Registration {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let reg = Registration {
            id,
            kick: Arc::new(Notify::new()),
            close: Arc::new(Notify::new()),
            in_flight: Arc::new(AtomicU64::new(0)),
        };
        let conn = Conn {
            id,
            account: account.to_string(),
            status,
            kick: reg.kick.clone(),
            close: reg.close.clone(),
            in_flight: reg.in_flight.clone(),
        };
        if let Some(old) = self.conns().insert(phone.to_string(), conn) {
            old.close.notify_one();
        }
        reg
    }

    /// Removes the link `id` if it is still the phone's current one; returns whether it was.
    pub fn unregister(&self, phone: &str, id: u64) -> bool {
        let mut conns = self.conns();
        if conns.get(phone).is_some_and(|c| c.id == id) {
            conns.remove(phone);
            true
        } else {
            false
        }
    }

    pub fn set_status(&self, phone: &str, id: u64, status: PhoneStatus) {
        if let Some(c) = self.conns().get_mut(phone).filter(|c| c.id == id) {
            c.status = status;
        }
    }

    /// Wakes the phone's link: new frames are stored for it.
    pub fn kick(&self, phone: &str) {
        if let Some(c) = self.conns().get(phone) {
            c.kick.notify_one();
        }
    }

    /// Wakes every link (the cluster's wake-up listener reconnected and may have missed some).
    pub fn kick_all(&self) {
        for c in self.conns().values() {
            c.kick.notify_one();
        }
    }

    /// Closes the phone's link, if it has one, without a grace (the phone was removed).
    pub fn close(&self, phone: &str) {
        if let Some(c) = self.conns().remove(phone) {
            c.close.notify_one();
        }
        self.inner
            .written
            .lock()
            .expect("hub written lock")
            .remove(phone);
        self.inner.limits.incoming.forget(phone);
    }

    pub fn is_connected(&self, phone: &str) -> bool {
        self.conns().contains_key(phone)
    }

    pub fn connected_count(&self) -> usize {
        self.conns().len()
    }

    /// Relay frames sent and not yet acknowledged, over all links.
    pub fn frames_in_flight(&self) -> u64 {
        self.conns()
            .values()
            .map(|c| c.in_flight.load(Ordering::Relaxed))
            .sum()
    }

    /// Connected phones grouped by account.
    pub fn online_by_account(&self) -> Vec<(String, Vec<OnlinePhone>)> {
        let mut by: HashMap<String, Vec<OnlinePhone>> = HashMap::new();
        for (id, c) in self.conns().iter() {
            by.entry(c.account.clone()).or_default().push(OnlinePhone {
                id: id.clone(),
                status: c.status.clone(),
            });
        }
        let mut out: Vec<_> = by.into_iter().collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, phones) in &mut out {
            phones.sort_by(|a, b| a.id.cmp(&b.id));
        }
        out
    }

    /// Asks every link to close (shutdown).
    pub fn close_all(&self) {
        for c in self.conns().values() {
            c.close.notify_one();
        }
    }

    /// Waits (at most five seconds) until every link task has ended.
    pub async fn wait_closed(&self) {
        let mut rx = self.inner.live.subscribe();
        let _ = tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|n| *n == 0)).await;
    }
}

/// `GET /v1/link`: the phones' WebSocket.
pub async fn upgrade(
    State(state): State<AppState>,
    peer: Result<ConnectInfo<SocketAddr>, ExtensionRejection>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    // Absent when the app is served without connection info (in-process tests).
    let peer = peer.ok().map(|ConnectInfo(a)| a.ip());
    match ws {
        // tungstenite allocates its read buffer up front (128 KiB by default); most links only
        // heartbeat, so 4 KiB (grown on demand for big frames) keeps a link near 10 KiB.
        Ok(ws) => ws
            .read_buffer_size(4 * 1024)
            .max_message_size(2 * MAX_FRAME_BYTES)
            .max_frame_size(2 * MAX_FRAME_BYTES)
            .on_upgrade(move |socket| crate::link::serve(state, socket, peer)),
        Err(_) => AppError::bad_request(
            "not_websocket",
            "this endpoint is the phones' WebSocket; send an upgrade request",
        )
        .into_response(),
    }
}

/// After the grace, marks the phone offline unless it has reconnected. In a cluster
/// (`crate::cluster`) the store decides under the phone's row lock: not while a link is up on
/// a live node, and only once its last link has been gone for the grace (the task waits on
/// for the rest when another node's link went later); one grace task per phone and node.
pub fn start_grace(state: AppState, phone: String) {
    if let Some(c) = &state.cluster
        && !c.begin_grace(&phone)
    {
        return;
    }
    tokio::spawn(async move {
        let grace = state.config.offline_grace;
        let cluster = state.cluster.as_ref().map(|_| {
            let ms = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
            (ms, crate::cluster::STALE_MS)
        });
        let mut wait = grace;
        loop {
            tokio::time::sleep(wait).await;
            let _presence = state.hub.presence().await;
            if state.hub.is_connected(&phone) || state.is_shutting_down() {
                break;
            }
            let now = now_ms();
            let p = phone.clone();
            let decided = state
                .db
                .call(move |s| s.phone_offline_after(&p, now, cluster))
                .await;
            match decided {
                Ok(Offline::Marked) => {
                    tracing::info!(phone = %phone, "phone went offline");
                    state.route_kick.notify_one();
                    state.webhook_kick.notify_one();
                    break;
                }
                Ok(Offline::Wait(ms)) => {
                    wait = Duration::from_millis(u64::try_from(ms.max(1)).unwrap_or(1));
                }
                Ok(Offline::NotOnline | Offline::LinkUp) => break,
                Err(e) => {
                    tracing::error!(error = %e, "could not mark a phone offline");
                    break;
                }
            }
        }
        if let Some(c) = &state.cluster {
            c.end_grace(&phone);
        }
    });
}

/// At start: phones the store still marks online get the grace to reconnect.
pub async fn resume_presence(state: AppState) {
    match state.db.call(|s| s.online_phones()).await {
        Ok(phones) => {
            for p in phones {
                start_grace(state.clone(), p);
            }
        }
        Err(e) => tracing::error!(error = %e, "could not read phone presence"),
    }
}
