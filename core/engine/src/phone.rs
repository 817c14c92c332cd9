//! The async shell around the [`Engine`]: a scheduler task that ends deadlines and hands due
//! work to the [`Modem`], the link task to the relay, and a [`PhoneHandle`] whose calls are
//! synchronous and safe from any thread (the Android shell's receivers call them through JNI).
//!
//! Every handle call commits before it returns. Killing the process at any point loses
//! nothing: [`Phone::start`] on the same file continues.
//!
//! A phone whose modem is driven by an outside worker (the Android shell's command loop,
//! [`PhoneConfig::needs_worker`]) runs its relay link only while that worker is attached
//! ([`PhoneHandle::set_worker_attached`]): without it the phone takes no relay work (the
//! relay sees it offline and routes elsewhere) but still records radio results and incoming
//! SMS durably, reported once the link runs again.
//!
//! Deadlines are wall-clock times ([`Clock`]); the scheduler never sleeps longer than
//! [`MAX_SLEEP`] of tokio's (monotonic) time, which stops while the device is suspended, so a
//! deadline that passed during deep sleep is ended soon after the device wakes.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use simrelay_protocol::{Millis, OutboundMessage, PhoneStatus, SimInfo};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::EngineConfig;
use crate::clock::{Clock, SystemClock};
use crate::engine::{Engine, Origin, SimConfig, Submitted};
use crate::error::{Error, Result};
use crate::links::Signal;
use crate::modem::{Command, Modem, ModemEvent};

/// Where and how to reach the relay. Stored in the engine's file once set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkConfig {
    /// `ws://host:port` or `wss://host:port` (the relay's base URL; `/v1/link` is appended).
    pub url: String,
    pub token: String,
    /// Lowercase hex SHA-256 of the relay's certificate (DER), for self-signed relays. A
    /// cluster serves one certificate: the pin holds for every node.
    #[serde(default)]
    pub pin_sha256: Option<String>,
    /// The cluster's node URLs as last listed by the relay (`paired.nodes`, then each
    /// `welcome.nodes`); empty for a single relay. The link keeps it up to date in the store.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
    /// Most links held at once, the one to `url` included ([`DEFAULT_MAX_LINKS`]).
    #[serde(default = "default_max_links")]
    pub max_links: u32,
}

/// Links a phone holds at most by default (one per relay node).
pub const DEFAULT_MAX_LINKS: u32 = 3;
/// The largest `max_links` accepted.
pub const MAX_LINKS_LIMIT: u32 = 16;

fn default_max_links() -> u32 {
    DEFAULT_MAX_LINKS
}

impl Default for LinkConfig {
    /// No relay yet: fill in `url` and `token` (`..LinkConfig::default()` for the rest).
    fn default() -> Self {
        Self {
            url: String::new(),
            token: String::new(),
            pin_sha256: None,
            nodes: Vec::new(),
            max_links: DEFAULT_MAX_LINKS,
        }
    }
}

impl LinkConfig {
    /// Checks what the link cannot work with: a URL that is not `ws://` or `wss://`, a bad
    /// certificate pin or one without `wss://`, a `max_links` outside
    /// 1..=[`MAX_LINKS_LIMIT`], a node list [`crate::links`] refuses.
    pub fn check(&self) -> Result<()> {
        let url = self.url.trim();
        if !(url.starts_with("ws://") || url.starts_with("wss://")) {
            return Err(Error::Invalid(
                "relay URL must start with ws:// or wss://".into(),
            ));
        }
        if let Some(pin) = &self.pin_sha256 {
            crate::link::parse_pin(pin).map_err(|e| Error::Invalid(e.to_string()))?;
            if !url.starts_with("wss://") {
                let e = crate::link::LinkError::PinWithoutTls;
                return Err(Error::Invalid(e.to_string()));
            }
        }
        if !(1..=MAX_LINKS_LIMIT).contains(&self.max_links) {
            return Err(Error::Invalid(format!(
                "max_links must be between 1 and {MAX_LINKS_LIMIT}"
            )));
        }
        crate::links::checked_nodes(&self.nodes, self.pin_sha256.is_some())
            .map(|_| ())
            .map_err(Error::Invalid)
    }

    /// The same relay and token: the node list stored for `self` still applies to `other`.
    fn same_relay(&self, other: &LinkConfig) -> bool {
        self.url == other.url && self.token == other.token
    }
}

#[derive(Debug, Clone)]
pub struct PhoneConfig {
    pub db_path: PathBuf,
    pub engine: EngineConfig,
    pub app_version: String,
    /// `None`: use the link stored by an earlier [`PhoneHandle::set_link`], if any.
    pub link: Option<LinkConfig>,
    pub clock: Arc<dyn Clock>,
    /// The modem is a worker outside the core (the Android command loop): run the relay
    /// link only while [`PhoneHandle::set_worker_attached`] says one is attached.
    pub needs_worker: bool,
}

/// The longest the scheduler sleeps on tokio's clock before looking at the wall clock again.
pub const MAX_SLEEP: Duration = Duration::from_secs(10);

impl PhoneConfig {
    pub fn new(db_path: impl Into<PathBuf>) -> Self {
        Self {
            db_path: db_path.into(),
            engine: EngineConfig::default(),
            app_version: env!("CARGO_PKG_VERSION").to_string(),
            link: None,
            clock: Arc::new(SystemClock),
            needs_worker: false,
        }
    }
}

/// The link's state, for the UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// No relay configured.
    #[default]
    Unpaired,
    Connecting,
    Online,
    /// Waiting to reconnect.
    Offline,
    /// Paired, but no modem worker is attached (the Android service is not running): the
    /// link is down on purpose and the relay routes elsewhere.
    Paused,
}

/// One of the phone's links (one per relay node), for the UI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeLink {
    pub url: String,
    pub state: LinkState,
}

/// What the UI shows.
#[derive(Debug, Clone, Serialize, Default)]
pub struct PhoneView {
    /// Online while any link is online.
    pub link: LinkState,
    /// How many links are online (one per relay node; 0 or 1 with a single relay).
    pub live_links: u32,
    /// Every link the phone holds or dials, the one to `relay_url` first.
    pub links: Vec<NodeLink>,
    pub relay_url: Option<String>,
    pub phone_id: Option<String>,
    pub last_error: Option<String>,
    pub queue_depth: u32,
    pub awaiting_reports: u32,
    pub outbox: u32,
    pub sims: Vec<SimInfo>,
    pub app_version: String,
}

#[derive(Debug, Default)]
pub(crate) struct LinkStatus {
    /// `Unpaired`, `Paused`, or `Connecting` while link tasks run (their states then decide).
    pub base: LinkState,
    /// Bumped at every (re)start of the links: a task of an older generation changes nothing.
    pub generation: u64,
    /// Each running link's state, by node URL, in dialling order.
    pub links: Vec<NodeLink>,
    pub phone_id: Option<String>,
    pub last_error: Option<String>,
}

impl LinkStatus {
    /// Online while any link is; else connecting while any link dials; else offline.
    pub fn state(&self) -> LinkState {
        if self.base != LinkState::Connecting || self.links.is_empty() {
            return self.base;
        }
        let any = |s| self.links.iter().any(|l| l.state == s);
        if any(LinkState::Online) {
            LinkState::Online
        } else if any(LinkState::Connecting) {
            LinkState::Connecting
        } else {
            LinkState::Offline
        }
    }

    pub fn live_links(&self) -> u32 {
        self.links
            .iter()
            .filter(|l| l.state == LinkState::Online)
            .count() as u32
    }
}

pub(crate) struct Shared {
    engine: Mutex<Option<Engine>>,
    pub(crate) clock: Arc<dyn Clock>,
    /// Wakes the scheduler (new work, results, acknowledgements).
    pub(crate) work: Notify,
    /// Wakes every link (new events in the outbox).
    pub(crate) events: Signal,
    /// Wakes every link to resend the phone's status (SIMs changed).
    pub(crate) status_changed: Signal,
    /// The highest relay frame seq applied, whichever link brought it: every live link
    /// sends it as its cumulative `ack`.
    pub(crate) relay_applied: watch::Sender<u64>,
    modem: Mutex<Box<dyn Modem>>,
    pub(crate) link: Mutex<LinkStatus>,
    link_task: Mutex<Option<JoinHandle<()>>>,
    pub(crate) link_config: Mutex<Option<LinkConfig>>,
    needs_worker: bool,
    worker_attached: AtomicBool,
    shutdown: watch::Sender<bool>,
    pub(crate) app_version: String,
    runtime: tokio::runtime::Handle,
}

/// A running phone core. Dropping it stops its tasks abruptly (like a process kill);
/// [`Phone::shutdown`] stops them in order.
pub struct Phone {
    handle: PhoneHandle,
    scheduler: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Phone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Phone").finish_non_exhaustive()
    }
}

/// Cheap to clone; every method is synchronous and commits before it returns.
#[derive(Clone)]
pub struct PhoneHandle {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for PhoneHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhoneHandle").finish_non_exhaustive()
    }
}

impl Phone {
    /// Opens the store and starts the scheduler (and the link, when one is configured or
    /// stored). Must be called within a tokio runtime.
    pub fn start(config: PhoneConfig, mut modem: Box<dyn Modem>) -> Result<Phone> {
        let mut engine = Engine::open(&config.db_path, config.engine.clone())?;
        let link = match config.link {
            Some(link) => Some(store_link(&mut engine, link)?),
            None => stored_link(&engine)?,
        };
        let (shutdown, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            engine: Mutex::new(Some(engine)),
            clock: config.clock,
            work: Notify::new(),
            events: Signal::new(),
            status_changed: Signal::new(),
            relay_applied: watch::channel(0).0,
            modem: Mutex::new(Box::new(NoModem)),
            link: Mutex::new(LinkStatus::default()),
            link_task: Mutex::new(None),
            link_config: Mutex::new(None),
            needs_worker: config.needs_worker,
            worker_attached: AtomicBool::new(false),
            shutdown,
            app_version: config.app_version,
            runtime: tokio::runtime::Handle::current(),
        });
        let handle = PhoneHandle { shared };
        modem.attach(handle.clone());
        *lock(&handle.shared.modem) = modem;
        let scheduler = tokio::spawn(schedule(handle.clone()));
        if let Some(link) = link {
            handle.start_link(link);
        }
        Ok(Phone {
            handle,
            scheduler: Some(scheduler),
        })
    }

    pub fn handle(&self) -> PhoneHandle {
        self.handle.clone()
    }

    /// Stops the link and the scheduler and closes the store, within `timeout`.
    pub async fn shutdown_within(mut self, timeout: Duration) {
        let shared = self.handle.shared.clone();
        shared.shutdown.send_replace(true);
        let link = lock(&shared.link_task).take();
        let scheduler = self.scheduler.take();
        let stop = async {
            if let Some(t) = link {
                let _ = t.await;
            }
            if let Some(t) = scheduler {
                let _ = t.await;
            }
        };
        if tokio::time::timeout(timeout, stop).await.is_err() {
            log::warn!("phone tasks did not stop in time");
        }
        lock(&shared.engine).take();
    }

    pub async fn shutdown(self) {
        self.shutdown_within(Duration::from_secs(5)).await;
    }
}

impl Drop for Phone {
    fn drop(&mut self) {
        let shared = &self.handle.shared;
        shared.shutdown.send_replace(true);
        if let Some(t) = self.scheduler.take() {
            t.abort();
        }
        if let Some(t) = lock(&shared.link_task).take() {
            t.abort();
        }
        lock(&shared.engine).take();
    }
}

/// The link stored in the engine's file, if any.
pub(crate) fn stored_link(engine: &Engine) -> Result<Option<LinkConfig>> {
    Ok(engine
        .setting("link")?
        .map(|s| serde_json::from_str::<LinkConfig>(&s))
        .transpose()?)
}

/// Checks and stores `link`. A link to the same relay with the same token and no node list
/// keeps the list stored before (the relay refreshed it at each welcome).
fn store_link(engine: &mut Engine, mut link: LinkConfig) -> Result<LinkConfig> {
    link.check()?;
    if link.nodes.is_empty()
        && let Some(old) = stored_link(engine)?
        && old.same_relay(&link)
    {
        link.nodes = old.nodes;
    }
    engine.set_setting("link", &serde_json::to_string(&link)?)?;
    Ok(link)
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl PhoneHandle {
    pub fn now(&self) -> Millis {
        self.shared.clock.now()
    }

    /// Runs `f` on the engine; `Err(Closed)` after shutdown.
    pub fn with_engine<R>(&self, f: impl FnOnce(&mut Engine, Millis) -> Result<R>) -> Result<R> {
        let now = self.now();
        let mut guard = lock(&self.shared.engine);
        let engine = guard.as_mut().ok_or(Error::Closed)?;
        f(engine, now)
    }

    fn changed(&self) {
        self.shared.work.notify_one();
        self.shared.events.notify();
    }

    /// A result or an incoming SMS from the radio.
    pub fn on_modem_event(&self, event: ModemEvent) -> Result<()> {
        self.with_engine(|e, now| e.on_modem_event(&event, now))?;
        self.changed();
        Ok(())
    }

    /// A burst of radio events in one commit; each one succeeds or fails alone.
    pub fn on_modem_events(&self, events: &[ModemEvent]) -> Result<Vec<Result<()>>> {
        let r = self.with_engine(|e, now| e.on_modem_events(events, now))?;
        self.changed();
        Ok(r)
    }

    /// Queues a message submitted on the phone itself (no relay needed).
    pub fn submit(&self, message: OutboundMessage) -> Result<Submitted> {
        let r = self.with_engine(|e, now| e.submit(&[message], Origin::Local, now))?;
        self.changed();
        Ok(r.into_iter().next().unwrap_or(Submitted::Duplicate))
    }

    pub fn cancel(&self, message_id: &str) -> Result<u32> {
        let n = self.with_engine(|e, now| e.cancel(message_id, now))?;
        self.changed();
        Ok(n)
    }

    pub fn set_sims(&self, sims: Vec<SimConfig>) -> Result<()> {
        self.with_engine(|e, _| e.set_sims(&sims))?;
        self.changed();
        self.shared.status_changed.notify();
        Ok(())
    }

    /// Stores the relay's address and token (and the cluster's node list) and (re)starts
    /// the links. A bad config is refused and changes nothing.
    pub fn set_link(&self, link: LinkConfig) -> Result<()> {
        let link = self.with_engine(|e, _| store_link(e, link))?;
        self.start_link(link);
        Ok(())
    }

    fn start_link(&self, link: LinkConfig) {
        *lock(&self.shared.link_config) = Some(link);
        self.restart_link();
    }

    /// (Re)starts the link task with the stored config, or stops it while no worker is
    /// attached to a phone that needs one.
    fn restart_link(&self) {
        let mut task = lock(&self.shared.link_task);
        if let Some(old) = task.take() {
            old.abort();
        }
        let generation = {
            let mut status = lock(&self.shared.link);
            status.generation += 1;
            status.links.clear();
            status.generation
        };
        let Some(link) = lock(&self.shared.link_config).clone() else {
            return;
        };
        if self.shared.needs_worker && !self.shared.worker_attached.load(Ordering::SeqCst) {
            let mut status = lock(&self.shared.link);
            status.base = LinkState::Paused;
            return;
        }
        lock(&self.shared.link).base = LinkState::Connecting;
        let _guard = self.shared.runtime.enter();
        *task = Some(tokio::spawn(crate::links::run(
            self.clone(),
            link,
            generation,
        )));
    }

    /// Says whether the modem worker is attached. With [`PhoneConfig::needs_worker`], the
    /// relay link runs only while it is: attaching starts it, detaching drops it at once,
    /// so the relay stops handing this phone work that nobody would send.
    pub fn set_worker_attached(&self, attached: bool) {
        let was = self.shared.worker_attached.swap(attached, Ordering::SeqCst);
        if was != attached && self.shared.needs_worker {
            self.restart_link();
        }
    }

    /// Whether a modem worker is attached (always true for a phone that needs none).
    pub fn worker_attached(&self) -> bool {
        !self.shared.needs_worker || self.shared.worker_attached.load(Ordering::SeqCst)
    }

    /// The status frame sent to the relay.
    pub fn phone_status(&self) -> Result<PhoneStatus> {
        let s = self.with_engine(|e, now| e.status(now))?;
        Ok(PhoneStatus {
            sims: s.sims,
            queue_depth: s.queue_depth,
            battery: None,
            charging: None,
            app_version: self.shared.app_version.clone(),
        })
    }

    /// Everything the UI shows.
    pub fn status(&self) -> PhoneView {
        let link = lock(&self.shared.link);
        let mut view = PhoneView {
            link: link.state(),
            live_links: link.live_links(),
            links: link.links.clone(),
            relay_url: lock(&self.shared.link_config)
                .as_ref()
                .map(|l| l.url.clone()),
            phone_id: link.phone_id.clone(),
            last_error: link.last_error.clone(),
            app_version: self.shared.app_version.clone(),
            ..PhoneView::default()
        };
        drop(link);
        match self.with_engine(|e, now| e.status(now)) {
            Ok(s) => {
                view.queue_depth = s.queue_depth;
                view.awaiting_reports = s.awaiting_reports;
                view.outbox = s.outbox;
                view.sims = s.sims;
            }
            Err(e) => view.last_error = Some(e.to_string()),
        }
        view
    }

    /// Whether the phone is shutting down.
    pub fn is_closing(&self) -> bool {
        *self.shared.shutdown.borrow()
    }

    /// Resolves once the phone is shutting down.
    pub async fn closed(&self) {
        let mut rx = self.shared.shutdown.subscribe();
        let _ = rx.wait_for(|&down| down).await;
    }
}

/// A placeholder while the real modem is being attached.
struct NoModem;

impl Modem for NoModem {
    fn transmit(&mut self, _: Command) {}
}

/// The scheduler: end deadlines, hand due work to the modem, sleep until the next thing.
async fn schedule(phone: PhoneHandle) {
    let shared = phone.shared.clone();
    loop {
        let step = phone.with_engine(|e, now| {
            let before = e.last_event_seq()?;
            e.tick(now)?;
            let due = e.due(now)?;
            let emitted = e.last_event_seq()? != before;
            Ok((emitted, due, e.next_wakeup(now)?, now))
        });
        let wait = match step {
            Ok((emitted, due, next, now)) => {
                // Ended deadlines, hand-overs and refusals (an expired or undecodable message
                // ends in `due` without a command) append events: the link sends them now, not
                // with the next radio result.
                if emitted {
                    shared.events.notify();
                }
                if !due.is_empty() {
                    let mut modem = lock(&shared.modem);
                    for cmd in due {
                        modem.transmit(Command::Send(cmd));
                    }
                }
                next.map(|t| Duration::from_millis((t - now).max(0) as u64))
            }
            Err(Error::Closed) => return,
            Err(e) => {
                log::error!("scheduler: {e}");
                Some(Duration::from_secs(1))
            }
        };
        tokio::select! {
            () = shared.work.notified() => {}
            () = sleep_or_forever(wait) => {}
            () = phone.closed() => return,
        }
    }
}

/// Sleeps `wait`, at most [`MAX_SLEEP`]: tokio's clock stops in deep sleep, the wall clock
/// that deadlines use does not, so the scheduler looks again soon after a wake.
async fn sleep_or_forever(wait: Option<Duration>) {
    tokio::time::sleep(wait.unwrap_or(MAX_SLEEP).min(MAX_SLEEP)).await;
}
