//! One of the phone's links to the relay: a WebSocket (TLS via rustls, or plain `ws://` on
//! loopback) to one relay node, speaking `simrelay-protocol` frames. A phone holds one link
//! per node of a cluster ([`crate::links`] runs them); a single relay is one link.
//!
//! It reconnects forever with exponential backoff and jitter. On every connect it says
//! `hello` with the highest relay frame the phone has applied (on any link) and resends the
//! outbox after the last `ack` the phone received, in order (`welcome.acked` is not applied:
//! see the comment in `session`). Relay frames are applied durably (one transaction per
//! batch) before they are acknowledged, on this link and on the phone's other links.
//! Heartbeats go both ways; a link silent for three intervals is dropped and redialled.
//!
//! Every timing decision after the handshake is taken on the phone's wall clock
//! ([`PhoneHandle::now`]), checked once per [`WATCHDOG`] of tokio's time. Tokio's clock is
//! monotonic and stops while an Android device is in deep sleep; the wall clock does not. So
//! a link that slept past its heartbeat is redialled as soon as the device wakes (the relay
//! has dropped it by then), instead of after three more heartbeats of awake time, and a
//! reconnect backoff that spans a sleep ends on wake.
//!
//! A relay with a self-signed certificate is trusted by pinning the SHA-256 of its
//! certificate (taken at pairing), not by a CA.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, SinkExt, StreamExt};
use rand::Rng;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};
use simrelay_protocol::{
    MAX_FRAME_BYTES, PROTOCOL_VERSION, PhoneFrame, RelayFrame, WS_PATH, decode_relay_frame, encode,
};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::links::Links;
use crate::outbox::RelayOp;
use crate::phone::{LinkState, PhoneHandle};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Events sent per batch.
const EVENT_BATCH: usize = 256;
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);
/// How often the online link compares the wall clock with its heartbeat deadlines.
pub const WATCHDOG: Duration = Duration::from_secs(1);
/// Least time between two status frames sent because the queue or a SIM's counters moved
/// (milliseconds on the phone's clock); a change of SIMs is sent at once.
pub const STATUS_GAP_MS: i64 = 2_000;

/// Why a link attempt ended. Texts never carry tokens, numbers or bodies.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("relay URL must start with ws:// or wss://")]
    BadUrl,
    #[error("certificate pin must be 64 hex characters")]
    BadPin,
    #[error("a certificate pin needs a wss:// URL")]
    PinWithoutTls,
    #[error("connect: {0}")]
    Connect(String),
    #[error("relay refused: {code}: {message}")]
    Refused { code: String, message: String },
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("no frame from the relay in time")]
    Timeout,
    #[error("the device slept {0} s past the heartbeat: reconnecting")]
    Slept(u64),
    #[error("link closed")]
    Closed,
    #[error(transparent)]
    Core(#[from] crate::Error),
}

impl LinkError {
    /// The kind of this error: bad pairing input, the engine's own kind, or a failure.
    pub fn kind(&self) -> crate::ErrorKind {
        match self {
            LinkError::BadUrl | LinkError::BadPin | LinkError::PinWithoutTls => {
                crate::ErrorKind::InvalidInput
            }
            LinkError::Core(e) => e.kind(),
            LinkError::Connect(_)
            | LinkError::Refused { .. }
            | LinkError::Protocol(_)
            | LinkError::Timeout
            | LinkError::Slept(_)
            | LinkError::Closed => crate::ErrorKind::Failure,
        }
    }
}

/// What pairing returns: the phone's id, its device token, and the cluster's node URLs
/// (empty for a single relay, or when the relay listed URLs the phone cannot use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paired {
    pub phone_id: String,
    pub token: String,
    pub nodes: Vec<String>,
}

/// Exchanges a one-time pairing code for a device token.
pub async fn pair(
    url: &str,
    code: &str,
    name: Option<&str>,
    pin_sha256: Option<&str>,
) -> Result<Paired, LinkError> {
    let mut ws = connect(url, pin_sha256).await?;
    let frame = PhoneFrame::Pair {
        version: PROTOCOL_VERSION,
        code: code.trim().to_string(),
        name: name.map(str::to_string),
    };
    send(&mut ws, &frame).await?;
    let answer = tokio::time::timeout(HANDSHAKE_TIMEOUT, next_frame(&mut ws))
        .await
        .map_err(|_| LinkError::Timeout)??;
    let _ = ws.close(None).await;
    match answer {
        RelayFrame::Paired {
            phone_id,
            token,
            nodes,
        } => {
            let nodes = crate::links::checked_nodes(&nodes, pin_sha256.is_some()).unwrap_or_else(
                |reason| {
                    log::warn!("pairing: node list ignored: {reason}");
                    Vec::new()
                },
            );
            Ok(Paired {
                phone_id,
                token,
                nodes,
            })
        }
        RelayFrame::Error { code, message } => Err(LinkError::Refused { code, message }),
        _ => Err(LinkError::Protocol("expected paired".into())),
    }
}

/// Runs the link to the node at `url` until the phone shuts down (or [`crate::links`] drops
/// it).
pub(crate) async fn run(phone: PhoneHandle, links: Arc<Links>, url: String) {
    let mut backoff = BACKOFF_MIN;
    loop {
        links.set_state(&phone, &url, LinkState::Connecting, None);
        let mut welcomed = false;
        let result = tokio::select! {
            r = session(&phone, &links, &url, &mut welcomed) => r,
            () = phone.closed() => return,
        };
        // A link that was up starts over with the shortest wait (e.g. after a sleep).
        if welcomed {
            backoff = BACKOFF_MIN;
        }
        let error = match result {
            Ok(()) => None,
            Err(e) => {
                log::warn!("link: {e}");
                Some(e.to_string())
            }
        };
        links.set_state(&phone, &url, LinkState::Offline, error);
        let jitter = rand::rng().random_range(0.5..=1.0);
        tokio::select! {
            () = sleep_wall(&phone, backoff.mul_f64(jitter)) => {}
            () = phone.closed() => return,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Sleeps until `wait` has passed on the phone's wall clock, looking at it every
/// [`WATCHDOG`]: time spent suspended counts.
async fn sleep_wall(phone: &PhoneHandle, wait: Duration) {
    let until = phone.now().saturating_add(wait.as_millis() as i64);
    loop {
        let left = until - phone.now();
        if left <= 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(left as u64).min(WATCHDOG)).await;
    }
}

/// One connection, from hello to drop. `Ok` when the relay closed it cleanly after welcome.
async fn session(
    phone: &PhoneHandle,
    links: &Links,
    url: &str,
    welcomed: &mut bool,
) -> Result<(), LinkError> {
    let config = &links.config;
    let mut ws = connect(url, config.pin_sha256.as_deref()).await?;
    // Subscribed before `hello` reads the applied seq: a frame applied by another link after
    // that read is acknowledged on this one too.
    let mut relay_applied = phone.shared.relay_applied.subscribe();
    let acked_relay = phone.with_engine(|e, _| e.relay_seq())?;
    // The status the relay last got, and when: the watchdog sends it again when it moved.
    let mut reported = (phone.phone_status()?, phone.now());
    let hello = PhoneFrame::Hello {
        version: PROTOCOL_VERSION,
        token: config.token.clone(),
        acked: acked_relay,
        status: reported.0.clone(),
    };
    send(&mut ws, &hello).await?;
    let welcome = tokio::time::timeout(HANDSHAKE_TIMEOUT, next_frame(&mut ws))
        .await
        .map_err(|_| LinkError::Timeout)??;
    let (phone_id, heartbeat_ms, nodes) = match welcome {
        RelayFrame::Welcome {
            phone_id,
            heartbeat_ms,
            nodes,
            ..
        } => (phone_id, heartbeat_ms, nodes),
        RelayFrame::Error { code, message } => return Err(LinkError::Refused { code, message }),
        _ => return Err(LinkError::Protocol("expected welcome".into())),
    };
    // `welcome.acked` is not applied: on the last connection the relay may have written a
    // `cancel` and then the `ack` that covers the cancelled acceptance, and lost both with the
    // link. It writes the unacknowledged frames again right after `welcome`, so applying
    // `welcome.acked` first would release an acceptance the relay has taken back (a duplicate
    // SMS once the relay routed it elsewhere). Instead the events after our own acked seq are
    // resent: the relay ignores the ones it has, and its `ack` of them follows the resent
    // frames on this socket.
    //
    // With several links the same holds per link, and it is enough: an `ack` (on any link)
    // releases an acceptance only after every frame read before it *on that link* is applied,
    // and every node writes, before an `ack{N}`, the frames the store holds for the phone
    // (among them each `cancel` queued by applying an event at or below N: it is committed
    // with that event, in the same transaction). A `cancel` that arrives first on another
    // link is applied from there, and skipped by seq here. The phone's acceptance therefore
    // never goes to the radio on one node's word while another node took it back. Frames are
    // applied whichever link brings them, under the engine's lock and inside the apply
    // transaction's seq check, so two links never apply one seq twice.
    links.set_online(phone, url, phone_id);
    *welcomed = true;
    log::info!("link: online");
    // The cluster's node list, refreshed at every welcome (an empty one: a single relay).
    links.refresh(phone, &nodes);
    let heartbeat = heartbeat_ms.clamp(1_000, 300_000) as i64;
    let mut ticker = tokio::time::interval(WATCHDOG);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut beat = Heartbeat::new(phone.now(), heartbeat);
    // Subscribed before the outbox is read: events appended after that read wake this link.
    let mut events = phone.shared.events.subscribe();
    let mut status_changed = phone.shared.status_changed.subscribe();
    // One status right after welcome, as a pending wake-up of the old single link gave.
    status_changed.mark_changed();
    // Highest relay seq acknowledged on this connection (`hello.acked` to begin with).
    let mut acked_here = acked_relay;
    // Highest event seq written on this connection.
    let mut sent = phone.with_engine(|e, _| e.acked_seq())?;
    sent = send_events(phone, &mut ws, sent).await?;
    loop {
        tokio::select! {
            msg = ws.next() => {
                beat.heard(phone.now());
                let Some(msg) = msg else { return Ok(()) };
                let msg = msg.map_err(|e| LinkError::Connect(e.to_string()))?;
                let Some(frame) = frame_of(msg)? else { continue };
                let mut frames = vec![frame];
                // Apply whatever else has already arrived in the same transaction.
                while frames.len() < EVENT_BATCH {
                    match ws.next().now_or_never() {
                        Some(Some(Ok(msg))) => {
                            if let Some(f) = frame_of(msg)? {
                                frames.push(f);
                            }
                        }
                        Some(Some(Err(e))) => return Err(LinkError::Connect(e.to_string())),
                        Some(None) => return Ok(()),
                        None => break,
                    }
                }
                handle_frames(phone, &mut ws, frames, &mut acked_here).await?;
            }
            r = relay_applied.changed() => {
                r.map_err(|_| LinkError::Closed)?;
                // Another link applied relay frames: the ack is per phone, on every link.
                let applied = *relay_applied.borrow_and_update();
                if applied > acked_here {
                    send(&mut ws, &PhoneFrame::Ack { seq: applied }).await?;
                    acked_here = applied;
                }
            }
            r = events.changed() => {
                r.map_err(|_| LinkError::Closed)?;
                sent = send_events(phone, &mut ws, sent).await?;
            }
            r = status_changed.changed() => {
                r.map_err(|_| LinkError::Closed)?;
                let status = phone.phone_status()?;
                send(&mut ws, &PhoneFrame::Status { status: status.clone() }).await?;
                reported = (status, phone.now());
            }
            _ = ticker.tick() => {
                let at = phone.now();
                if beat.check(at)? {
                    send(&mut ws, &PhoneFrame::Heartbeat { at }).await?;
                }
                // Queue depth and the SIMs' sent-today move with every message: the relay's
                // view follows them within a few seconds, one frame per gap at most.
                if (at - reported.1).abs() >= STATUS_GAP_MS {
                    let status = phone.phone_status()?;
                    if status != reported.0 {
                        send(&mut ws, &PhoneFrame::Status { status: status.clone() }).await?;
                        reported = (status, at);
                    }
                }
            }
        }
    }
}

/// The online link's heartbeat deadlines on the wall clock (milliseconds).
#[derive(Debug, Clone, Copy)]
pub struct Heartbeat {
    interval: i64,
    last_heard: i64,
    last_sent: i64,
    last_check: i64,
}

impl Heartbeat {
    pub fn new(now: i64, interval: i64) -> Self {
        Self {
            interval,
            last_heard: now,
            last_sent: now,
            last_check: now,
        }
    }

    /// A frame arrived.
    pub fn heard(&mut self, now: i64) {
        self.last_heard = now;
    }

    /// One watchdog tick: `Ok(true)` when a heartbeat is due, an error when the link must be
    /// redialled: the wall clock leapt past two intervals since the last tick (the device
    /// slept; the relay has dropped the link), or nothing was heard for three intervals.
    pub fn check(&mut self, now: i64) -> Result<bool, LinkError> {
        let gap = now - self.last_check;
        self.last_check = now;
        if now < self.last_heard {
            // The wall clock was set back: start the deadlines over from here.
            *self = Self::new(now, self.interval);
        }
        if gap > 2 * self.interval {
            return Err(LinkError::Slept((gap / 1000) as u64));
        }
        if now - self.last_heard > 3 * self.interval {
            return Err(LinkError::Timeout);
        }
        if now - self.last_sent >= self.interval {
            self.last_sent = now;
            return Ok(true);
        }
        Ok(false)
    }
}

fn frame_of(msg: Message) -> Result<Option<RelayFrame>, LinkError> {
    match msg {
        Message::Text(text) => decode_relay_frame(&text)
            .map(Some)
            .map_err(|e| LinkError::Protocol(e.to_string())),
        Message::Close(_) => Err(LinkError::Closed),
        _ => Ok(None),
    }
}

async fn handle_frames(
    phone: &PhoneHandle,
    ws: &mut Ws,
    frames: Vec<RelayFrame>,
    acked_here: &mut u64,
) -> Result<(), LinkError> {
    let mut ops = Vec::new();
    let mut acked = None;
    for frame in frames {
        match frame {
            f @ (RelayFrame::Send { .. } | RelayFrame::Cancel { .. }) => {
                ops.extend(RelayOp::from_frame(f));
            }
            RelayFrame::Ack { seq } => acked = Some(acked.map_or(seq, |a: u64| a.max(seq))),
            RelayFrame::Heartbeat { .. } => {}
            RelayFrame::Error { code, message } => {
                return Err(LinkError::Refused { code, message });
            }
            RelayFrame::Welcome { .. } | RelayFrame::Paired { .. } => {
                return Err(LinkError::Protocol("unexpected handshake frame".into()));
            }
        }
    }
    if !ops.is_empty() {
        // Sends and cancels first, in order, then the acknowledgement that may unlock
        // acceptances: a cancel the relay sent before an ack is applied before it.
        let applied = phone.with_engine(|e, now| e.apply_relay(&ops, now))?;
        phone.shared.events.notify();
        // Acknowledged here even when another link applied them first (this node wrote them
        // and waits for it), and published for the other links.
        send(ws, &PhoneFrame::Ack { seq: applied }).await?;
        *acked_here = (*acked_here).max(applied);
        phone
            .shared
            .relay_applied
            .send_if_modified(|v| std::mem::replace(v, (*v).max(applied)) < applied);
    }
    if let Some(seq) = acked {
        phone.with_engine(|e, _| e.ack_events(seq))?;
        phone.shared.work.notify_one();
    }
    Ok(())
}

/// Writes every outbox event after `sent`; returns the new highest seq written.
async fn send_events(phone: &PhoneHandle, ws: &mut Ws, mut sent: u64) -> Result<u64, LinkError> {
    loop {
        let batch = phone.with_engine(|e, _| e.events_after(sent, EVENT_BATCH))?;
        let full = batch.len() == EVENT_BATCH;
        for (seq, event) in batch {
            ws.feed(Message::text(encode(&PhoneFrame::Event { seq, event })))
                .await
                .map_err(|e| LinkError::Connect(e.to_string()))?;
            sent = seq;
        }
        ws.flush()
            .await
            .map_err(|e| LinkError::Connect(e.to_string()))?;
        if !full {
            return Ok(sent);
        }
    }
}

async fn send(ws: &mut Ws, frame: &PhoneFrame) -> Result<(), LinkError> {
    ws.send(Message::text(encode(frame)))
        .await
        .map_err(|e| LinkError::Connect(e.to_string()))
}

async fn next_frame(ws: &mut Ws) -> Result<RelayFrame, LinkError> {
    loop {
        match ws.next().await {
            None => return Err(LinkError::Closed),
            Some(Err(e)) => return Err(LinkError::Connect(e.to_string())),
            Some(Ok(msg)) => {
                if let Some(frame) = frame_of(msg)? {
                    return Ok(frame);
                }
            }
        }
    }
}

/// Opens the WebSocket to `{url}/v1/link`.
async fn connect(url: &str, pin_sha256: Option<&str>) -> Result<Ws, LinkError> {
    let base = url.trim_end_matches('/');
    let tls = if base.starts_with("wss://") {
        true
    } else if base.starts_with("ws://") {
        false
    } else {
        return Err(LinkError::BadUrl);
    };
    let connector = match (tls, pin_sha256) {
        (true, pin) => Some(Connector::Rustls(Arc::new(client_config(pin)?))),
        (false, Some(pin)) => {
            parse_pin(pin)?;
            return Err(LinkError::PinWithoutTls);
        }
        (false, None) => None,
    };
    let mut ws_config = WebSocketConfig::default();
    ws_config.max_message_size = Some(MAX_FRAME_BYTES);
    ws_config.max_frame_size = Some(MAX_FRAME_BYTES);
    let target = format!("{base}{WS_PATH}");
    let connecting =
        tokio_tungstenite::connect_async_tls_with_config(target, Some(ws_config), true, connector);
    let (ws, _) = tokio::time::timeout(HANDSHAKE_TIMEOUT, connecting)
        .await
        .map_err(|_| LinkError::Timeout)?
        .map_err(|e| LinkError::Connect(e.to_string()))?;
    Ok(ws)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// TLS settings: the web's CAs, or only the certificate whose SHA-256 is pinned.
pub fn client_config(pin_sha256: Option<&str>) -> Result<ClientConfig, LinkError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| LinkError::Connect(e.to_string()))?;
    let config = match pin_sha256 {
        Some(pin) => {
            let pin = parse_pin(pin)?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Pinned {
                    pin,
                    algorithms: provider().signature_verification_algorithms,
                }))
                .with_no_client_auth()
        }
        None => {
            let roots = RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(config)
}

/// Accepts `ab12...` and `AB:12:...` forms of a SHA-256 fingerprint.
pub(crate) fn parse_pin(pin: &str) -> Result<[u8; 32], LinkError> {
    hex::decode(pin.trim().replace(':', ""))
        .ok()
        .and_then(|v| <[u8; 32]>::try_from(v).ok())
        .ok_or(LinkError::BadPin)
}

/// Trusts exactly one certificate, by the SHA-256 of its DER encoding. The pin replaces CA
/// and name checks; the handshake signature is still verified against that certificate.
#[derive(Debug)]
struct Pinned {
    pin: [u8; 32],
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let digest: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        if digest == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "relay certificate does not match the pinned fingerprint".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Lowercase hex SHA-256 of a DER certificate: the pin a relay prints.
pub fn fingerprint(cert_der: &[u8]) -> String {
    hex::encode(Sha256::digest(cert_der))
}
