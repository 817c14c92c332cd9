//! One phone link: the relay side of the protocol in docs/protocol.md.
//!
//! The first frame is `pair` (exchange a one-time code for a device token, then close) or
//! `hello`. After `welcome`, one task serves the socket: it writes the phone's stored frames
//! in sequence order within a window of unacknowledged frames, reads everything the phone sent
//! that is readable at once, applies that batch in one transaction and answers one cumulative
//! `ack`. When the batch made the relay queue `cancel` frames (a `queued` event from a phone
//! that no longer owns the recipient), those frames are written before the `ack`, on the same
//! socket, so the phone learns of the cancel before it may hand the recipient to its radio.
//!
//! What a phone cannot do here (docs/RELIABILITY.md, "Phones"): acknowledge frames it was
//! never written (its `ack` and `hello.acked` are clamped to what was written, so unsent
//! frames are never deleted); report more incoming SMS than its allowance (the batch is cut
//! before the first one over it, refused with `too_many_incoming` and not acknowledged, so the
//! phone resends from there on its next link); report an incoming SMS outside the limits of
//! `crate::limits` (not stored, its seq consumed, `incoming_refused`); or guess pairing codes
//! (attempts are throttled per source address and globally, `too_many_attempts`).

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use futures_util::{FutureExt, SinkExt};
use simrelay_protocol::{
    Event, PROTOCOL_VERSION, PhoneFrame, PhoneStatus, RelayFrame, decode_phone_frame, encode,
};
use tokio::time::Instant;

use crate::AppState;
use crate::api::phones::normalize_code;
use crate::api::{hash_secret, random_secret};
use crate::hub::{Registration, start_grace};
use crate::limits::PairingRefusal;
use crate::pool_router::SimKey;
use crate::sim_health::{HealthEvent, Outcome};
use crate::store::{StoreError, now_ms};

/// Most frames read before a batch is applied.
const MAX_BATCH: usize = 256;
/// Time a fresh link has to send its first frame.
const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a link ended early.
#[derive(Debug, thiserror::Error)]
enum LinkError {
    #[error("socket: {0}")]
    Socket(#[from] axum::Error),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

async fn send(socket: &mut WebSocket, frame: &RelayFrame) -> Result<(), axum::Error> {
    socket.send(Message::Text(encode(frame).into())).await
}

/// How long a refused link is read after our close, waiting for the phone's close.
const CLOSE_DRAIN: Duration = Duration::from_secs(1);

/// Sends `error {code}` and closes. Then reads, and drops, what the phone still sends until
/// its close (for at most [`CLOSE_DRAIN`]): a TCP connection closed with unread data is reset,
/// and the reset can destroy the error frame (and the `ack` before it) before the phone reads
/// them.
async fn refuse(socket: &mut WebSocket, code: &str, message: &str) {
    tracing::debug!(code, "refusing a link");
    let frame = RelayFrame::Error {
        code: code.into(),
        message: message.into(),
    };
    let _ = send(socket, &frame).await;
    let _ = socket.send(Message::Close(None)).await;
    let drain = async {
        while let Some(Ok(msg)) = socket.recv().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(CLOSE_DRAIN, drain).await;
}

/// Serves one upgraded socket until it closes.
pub async fn serve(state: AppState, mut socket: WebSocket, peer: Option<IpAddr>) {
    let _live = state.hub.live_guard();
    let first = match tokio::time::timeout(FIRST_FRAME_TIMEOUT, socket.recv()).await {
        Ok(Some(Ok(Message::Text(t)))) => decode_phone_frame(t.as_str()),
        Ok(Some(Ok(Message::Binary(_)))) => {
            return refuse(&mut socket, "bad_frame", "frames are JSON text").await;
        }
        _ => return,
    };
    match first {
        Ok(PhoneFrame::Pair {
            version,
            code,
            name,
        }) => pair(&state, &mut socket, peer, version, &code, name.as_deref()).await,
        Ok(PhoneFrame::Hello {
            version,
            token,
            acked,
            status,
        }) => {
            if version != PROTOCOL_VERSION {
                let msg = format!("this relay speaks protocol version {PROTOCOL_VERSION}");
                return refuse(&mut socket, "unsupported_version", &msg).await;
            }
            if let Err(e) = session(&state, &mut socket, &token, acked, status).await {
                tracing::debug!(error = %e, "link ended");
            }
        }
        Ok(_) => {
            refuse(
                &mut socket,
                "bad_frame",
                "the first frame must be hello or pair",
            )
            .await
        }
        Err(e) => refuse(&mut socket, "bad_frame", &e.to_string()).await,
    }
}

async fn pair(
    state: &AppState,
    socket: &mut WebSocket,
    peer: Option<IpAddr>,
    version: u32,
    code: &str,
    name: Option<&str>,
) {
    if version != PROTOCOL_VERSION {
        let msg = format!("this relay speaks protocol version {PROTOCOL_VERSION}");
        return refuse(socket, "unsupported_version", &msg).await;
    }
    let limits = state.hub.limits();
    if let Err(refusal) = limits.pairing.begin(peer, limits.clock.now()) {
        let (scope, wait) = match refusal {
            PairingRefusal::Source { retry_after } => ("source", retry_after),
            PairingRefusal::Global { retry_after } => ("all sources", retry_after),
        };
        let wait = wait.as_secs().max(1);
        limits.pairing_refused.fetch_add(1, Ordering::Relaxed);
        let source = peer.map_or_else(|| "unknown".to_string(), |p| p.to_string());
        tracing::info!(%source, scope, retry_after_s = wait, "pairing attempt refused: too many attempts");
        let msg = format!("too many pairing attempts; try again in {wait} s");
        return refuse(socket, "too_many_attempts", &msg).await;
    }
    let code_hash = hash_secret(&normalize_code(code));
    let phone_id = uuid::Uuid::now_v7().to_string();
    let token = random_secret(32);
    let token_hash = hash_secret(&token);
    let name: Option<String> = name.map(|n| n.chars().take(64).collect());
    let now = now_ms();
    let id = phone_id.clone();
    let paired = state
        .db
        .call(move |s| s.pair_phone(&code_hash, &id, &token_hash, name.as_deref(), now))
        .await;
    match paired {
        Ok(Some(_)) => {
            limits.pairing.succeeded(peer);
            tracing::info!(phone = %phone_id, "phone paired");
            let _ = send(
                socket,
                &RelayFrame::Paired {
                    phone_id,
                    token,
                    nodes: state
                        .cluster
                        .as_ref()
                        .map(|c| c.welcome_nodes())
                        .unwrap_or_default(),
                },
            )
            .await;
            let _ = socket.send(Message::Close(None)).await;
        }
        Ok(None) => {
            let source = peer.map_or_else(|| "unknown".to_string(), |p| p.to_string());
            tracing::info!(%source, "pairing attempt with a bad code");
            refuse(
                socket,
                "bad_pairing_code",
                "unknown, used or expired pairing code",
            )
            .await;
        }
        Err(e) => {
            limits.pairing.succeeded(peer); // the relay's fault, not a guess
            tracing::error!(error = %e, "pairing failed");
            refuse(socket, "internal", "the relay could not pair this phone").await;
        }
    }
}

/// The state of one authenticated link.
struct Link<'a> {
    state: &'a AppState,
    socket: &'a mut WebSocket,
    phone: String,
    reg: Registration,
    /// Highest relay seq written on this socket.
    sent_upto: u64,
    /// Highest relay seq the phone acknowledged.
    acked: u64,
    /// Highest phone event seq stored.
    events_stored: u64,
}

async fn session(
    state: &AppState,
    socket: &mut WebSocket,
    token: &str,
    hello_acked: u64,
    status: PhoneStatus,
) -> Result<(), LinkError> {
    let token_hash = hash_secret(token);
    let Some(auth) = state
        .db
        .call(move |s| s.phone_by_token(&token_hash))
        .await?
    else {
        refuse(socket, "unauthorized", "unknown device token").await;
        return Ok(());
    };
    let phone = auth.id.clone();
    let (reg, connected, hello_acked) = {
        let _presence = state.hub.presence().await;
        let reg = state.hub.register(&phone, &auth.account_id, status.clone());
        let (p, now) = (phone.clone(), now_ms());
        // `hello.acked` above every frame written to this phone (by this process, or acked
        // before) is clamped: the frames after it were never written, and must not be deleted.
        // In a cluster, other nodes' links wrote frames too: the clamp is every frame stored.
        let written = state.hub.written(&phone);
        let link = state.cluster.as_ref().map(|c| (c.node_id.clone(), reg.id));
        match state
            .db
            .call(move |s| {
                let on = link.as_ref().map(|(n, id)| (n.as_str(), *id));
                let c = s.phone_connected_on(&p, &status, now, on)?;
                let acked = if on.is_some() {
                    hello_acked.min(c.next_seq)
                } else {
                    hello_acked.min(c.acked_seq.max(written))
                };
                s.apply_from_phone(&p, Some(acked), &[], now)?;
                Ok((c, acked))
            })
            .await
        {
            Ok((c, acked)) => {
                if acked < hello_acked {
                    tracing::debug!(phone = %phone, "hello.acked above the frames written, clamped");
                }
                (reg, c, acked)
            }
            // Removed between the token check and here (`DELETE /v1/phones/{id}`).
            Err(StoreError::Missing(_)) => {
                state.hub.unregister(&phone, reg.id);
                refuse(socket, "unauthorized", "unknown device token").await;
                return Ok(());
            }
            Err(e) => {
                state.hub.unregister(&phone, reg.id);
                refuse(
                    socket,
                    "internal",
                    "the relay could not register this phone",
                )
                .await;
                return Err(e.into());
            }
        }
    };
    tracing::info!(phone = %phone, came_online = connected.came_online, "phone connected");
    let welcome = RelayFrame::Welcome {
        version: PROTOCOL_VERSION,
        phone_id: phone.clone(),
        acked: connected.event_seq,
        heartbeat_ms: u64::try_from(state.config.heartbeat.as_millis()).unwrap_or(u64::MAX),
        nodes: state
            .cluster
            .as_ref()
            .map(|c| c.welcome_nodes())
            .unwrap_or_default(),
    };
    if connected.came_online {
        state.webhook_kick.notify_one();
    }
    state.route_kick.notify_one();
    let reg_id = reg.id;
    let mut link = Link {
        state,
        socket,
        phone: phone.clone(),
        reg,
        sent_upto: hello_acked,
        acked: hello_acked,
        events_stored: connected.event_seq,
    };
    let result = async {
        send(link.socket, &welcome).await?;
        // A `cancel` written on the last link may have been lost with it, after the phone's
        // `queued` event was stored. The phone resends that event and waits for our `ack`
        // before its radio may have the recipient, so every pending `cancel` must be on the
        // wire before any `ack` of this link, whatever the window.
        let (p, after) = (link.phone.clone(), link.sent_upto);
        let last_cancel = link
            .state
            .db
            .call(move |s| s.last_cancel_after(&p, after))
            .await?;
        link.pump(last_cancel).await?;
        link.run().await
    }
    .await;
    if state.hub.unregister(&phone, reg_id) && !state.is_shutting_down() {
        if let Some(c) = &state.cluster {
            let (p, node) = (phone.clone(), c.node_id.clone());
            if let Err(e) = state
                .db
                .call(move |s| s.link_closed(&p, &node, reg_id))
                .await
            {
                // The node's heartbeat still marks the link live; its next start clears it.
                tracing::warn!(error = %e, "could not record a closed link");
            }
        }
        start_grace(state.clone(), phone);
    }
    result
}

impl Link<'_> {
    async fn run(&mut self) -> Result<(), LinkError> {
        let hb = self.state.config.heartbeat;
        let mut ticker = tokio::time::interval_at(Instant::now() + hb, hb);
        let mut last_heard = Instant::now();
        let kick = self.reg.kick.clone();
        let close = self.reg.close.clone();
        loop {
            tokio::select! {
                msg = self.socket.recv() => {
                    let Some(Ok(msg)) = msg else { return Ok(()) };
                    last_heard = Instant::now();
                    let mut batch = vec![msg];
                    let mut ended = false;
                    while batch.len() < MAX_BATCH {
                        match self.socket.recv().now_or_never() {
                            Some(Some(Ok(m))) => batch.push(m),
                            Some(_) => { ended = true; break; }
                            None => break,
                        }
                    }
                    if !self.handle_batch(batch).await? || ended {
                        return Ok(());
                    }
                }
                _ = kick.notified() => self.pump(None).await?,
                _ = ticker.tick() => {
                    if last_heard.elapsed() >= hb * 3 {
                        tracing::info!(phone = %self.phone, "phone link silent for three heartbeats, closing");
                        let _ = self.socket.send(Message::Close(None)).await;
                        return Ok(());
                    }
                    send(self.socket, &RelayFrame::Heartbeat { at: now_ms() }).await?;
                }
                _ = close.notified() => {
                    let _ = self.socket.send(Message::Close(None)).await;
                    return Ok(());
                }
            }
        }
    }

    /// Applies one batch of readable frames; false when the link must end.
    async fn handle_batch(&mut self, batch: Vec<Message>) -> Result<bool, LinkError> {
        let mut events: Vec<(u64, Event)> = Vec::new();
        let mut ack: Option<u64> = None;
        let mut status: Option<PhoneStatus> = None;
        let mut closing = false;
        for msg in batch {
            let text = match msg {
                Message::Text(t) => t,
                Message::Binary(_) => {
                    refuse(self.socket, "bad_frame", "frames are JSON text").await;
                    return Ok(false);
                }
                Message::Close(_) => {
                    closing = true;
                    break;
                }
                Message::Ping(_) | Message::Pong(_) => continue,
            };
            match decode_phone_frame(text.as_str()) {
                Ok(PhoneFrame::Event { seq, event }) => events.push((seq, event)),
                Ok(PhoneFrame::Ack { seq }) => ack = Some(ack.map_or(seq, |a| a.max(seq))),
                Ok(PhoneFrame::Status { status: s }) => status = Some(s),
                Ok(PhoneFrame::Heartbeat { .. }) => {}
                Ok(PhoneFrame::Hello { .. } | PhoneFrame::Pair { .. }) => {
                    refuse(self.socket, "bad_frame", "hello and pair only open a link").await;
                    return Ok(false);
                }
                Err(e) => {
                    refuse(self.socket, "bad_frame", &e.to_string()).await;
                    return Ok(false);
                }
            }
        }
        let now = now_ms();
        if let Some(s) = status {
            self.state
                .hub
                .set_status(&self.phone, self.reg.id, s.clone());
            let p = self.phone.clone();
            self.state
                .db
                .call(move |st| st.phone_status(&p, &s, now))
                .await?;
            self.state.route_kick.notify_one();
        }
        // A single relay clamps an ack to what this link wrote; a cluster's node to what is
        // stored (the store does), since the phone acks frames other nodes' links wrote.
        let clustered = self.state.cluster.is_some();
        if let Some(a) = ack.filter(|a| *a > self.sent_upto && !clustered) {
            tracing::debug!(phone = %self.phone, acked = a, written = self.sent_upto, "ack above the frames written, clamped");
        }
        let ack = ack.map(|a| if clustered { a } else { a.min(self.sent_upto) });
        if events.is_empty() && ack.is_none() {
            return Ok(!closing);
        }
        let had_events = !events.is_empty();
        let over_rate = self.admit_incoming(&mut events);
        let applied = self
            .state
            .committer
            .apply(self.phone.clone(), ack, events, now)
            .await?;
        self.events_stored = self.events_stored.max(applied.event_seq);
        if let Some(a) = applied.acked {
            if clustered {
                // Frames up to the ack are gone from the store, whoever wrote them.
                self.sent_upto = self.sent_upto.max(a);
            }
            self.acked = self.acked.max(a.min(self.sent_upto));
            self.update_in_flight();
        }
        if let Some(upto) = applied.cancel_upto {
            self.pump(Some(upto)).await?;
        }
        if had_events {
            send(
                self.socket,
                &RelayFrame::Ack {
                    seq: applied.event_seq,
                },
            )
            .await?;
        }
        if applied.webhooks > 0 {
            self.state.webhook_kick.notify_one();
        }
        if applied.incoming {
            self.state.inbox_changed();
        }
        if applied.changed {
            self.state.updates.send_modify(|v| *v += 1);
        }
        if applied.freed {
            self.state.route_kick.notify_one();
        }
        if !applied.sim_outcomes.is_empty() {
            sim_health(self.state, &applied.sim_outcomes, now).await?;
        }
        if ack.is_some() {
            self.pump(None).await?;
        }
        let limits = self.state.hub.limits();
        for reason in &applied.incoming_refused {
            limits.count_refused(reason, 1);
        }
        if let Some(reason) = applied.incoming_refused.first() {
            let n = applied.incoming_refused.len();
            tracing::info!(phone = %self.phone, reason, n, "incoming SMS refused for good");
        }
        if over_rate > 0 {
            limits.count_refused("rate_limited", over_rate);
            tracing::info!(phone = %self.phone, n = over_rate, "incoming SMS over the phone's rate, refused for now");
            let msg = "too many incoming SMS; resend the unacknowledged events later";
            refuse(self.socket, "too_many_incoming", msg).await;
            return Ok(false);
        }
        if let Some(reason) = applied.incoming_refused.first() {
            let msg =
                format!("incoming SMS refused for good ({reason}); see the protocol's limits");
            refuse(self.socket, "incoming_refused", &msg).await;
            return Ok(false);
        }
        Ok(!closing)
    }

    /// Takes the batch's new incoming SMS from the phone's allowance, in seq order, and cuts
    /// the batch before the first one over it (the store would stop at that gap anyway; the
    /// phone resends from there on its next link). Returns how many incoming SMS were cut.
    fn admit_incoming(&self, events: &mut Vec<(u64, Event)>) -> u64 {
        let limits = self.state.hub.limits();
        let now = limits.clock.now();
        let mut next = self.events_stored + 1;
        let mut cut = None;
        for (i, (seq, event)) in events.iter().enumerate() {
            if *seq < next {
                continue; // stored already: free
            }
            if *seq != next {
                break; // a gap: nothing after it is stored
            }
            next += 1;
            if matches!(event, Event::Incoming(_)) && !limits.incoming.take(&self.phone, now) {
                cut = Some(i);
                break;
            }
        }
        let Some(i) = cut else { return 0 };
        let over = events[i..]
            .iter()
            .filter(|(_, e)| matches!(e, Event::Incoming(_)))
            .count();
        events.truncate(i);
        u64::try_from(over).unwrap_or(u64::MAX)
    }

    fn update_in_flight(&self) {
        self.reg
            .in_flight
            .store(self.sent_upto.saturating_sub(self.acked), Ordering::Relaxed);
    }

    /// Writes stored frames after `sent_upto`, within the window; with `force`, at least up to
    /// that seq whatever the window (cancel frames that must precede an ack).
    async fn pump(&mut self, force: Option<u64>) -> Result<(), LinkError> {
        let window = self.state.config.window;
        loop {
            let in_flight = self.sent_upto.saturating_sub(self.acked);
            let mut room = window.saturating_sub(in_flight);
            if let Some(upto) = force {
                room = room.max(upto.saturating_sub(self.sent_upto));
            }
            if room == 0 {
                return Ok(());
            }
            let want = u32::try_from(room.min(256)).expect("at most 256");
            let (p, after) = (self.phone.clone(), self.sent_upto);
            let frames = self
                .state
                .db
                .call(move |s| s.frames_after(&p, after, want))
                .await?;
            let got = frames.len();
            for (seq, body) in frames {
                self.socket.feed(Message::Text(body.into())).await?;
                self.sent_upto = seq;
            }
            if got > 0 {
                self.socket.flush().await?;
                self.state.hub.note_written(&self.phone, self.sent_upto);
            }
            self.update_in_flight();
            if got < want as usize {
                return Ok(());
            }
        }
    }
}

/// Feeds SIM outcomes to the rack's health tracker and queues `sim.quarantined` /
/// `sim.recovered` webhooks for the changes.
async fn sim_health(
    state: &AppState,
    outcomes: &[(SimKey, Outcome)],
    now: i64,
) -> Result<(), LinkError> {
    for (key, outcome) in outcomes {
        let event = match state.rack.record(key, *outcome, now) {
            Some(HealthEvent::Quarantined(_)) => crate::domain::webhooks::Event::SimQuarantined,
            Some(HealthEvent::Recovered(_)) => crate::domain::webhooks::Event::SimRecovered,
            None => continue,
        };
        tracing::info!(
            event = event.as_str(),
            sub_id = key.sub_id,
            "SIM health changed"
        );
        let data = crate::domain::webhooks::SimData {
            phone: key.phone.clone(),
            sub_id: key.sub_id,
        };
        let queued = state
            .db
            .call(move |s| s.sim_event(event, &data, now))
            .await?;
        if queued > 0 {
            state.webhook_kick.notify_one();
        }
    }
    // A cooldown or quarantine changes where the next recipients go.
    state.route_kick.notify_one();
    Ok(())
}
