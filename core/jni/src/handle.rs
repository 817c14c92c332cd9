//! Live cores behind opaque handles.
//!
//! Kotlin holds a `Long`; the registry maps it to an `Arc<Core>`. Ids start at a random base
//! and only grow, so a stale, freed or made-up handle finds nothing and becomes an
//! `IllegalStateException` instead of a dangling pointer. Each [`Core`] owns one small tokio
//! runtime, the [`Phone`] and the [`CommandQueue`] that `nativeNextCommand` drains.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use serde::Deserialize;
use simrelay_core::link::{self, Paired};
use simrelay_core::phone::{
    DEFAULT_MAX_LINKS, LinkConfig, MAX_LINKS_LIMIT, Phone, PhoneConfig, PhoneHandle,
};
use simrelay_core::{CommandQueue, EngineConfig};
use tokio::runtime::Runtime;
use tokio::sync::watch;

use crate::error::JniError;

/// How long `nativeDestroy` gives the phone's tasks to stop, and then the runtime.
pub const PHONE_STOP: Duration = Duration::from_secs(4);
pub const RUNTIME_STOP: Duration = Duration::from_secs(1);
/// Bound on one pairing exchange.
pub const PAIR_TIMEOUT: Duration = Duration::from_secs(30);
/// File name of the core's SQLite store inside `data_dir`.
pub const DB_FILE: &str = "simrelay-core.db";

/// The JSON given to `nativeCreate`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateConfig {
    /// A private directory of the app (Android: `Context.getNoBackupFilesDir()`).
    pub data_dir: PathBuf,
    #[serde(default)]
    pub app_version: Option<String>,
    /// Name shown by the relay for this phone, sent when pairing.
    #[serde(default)]
    pub device_name: Option<String>,
    /// Engine settings (pacing, retries, deadlines); defaults when absent.
    #[serde(default)]
    pub engine: Option<EngineConfig>,
}

impl CreateConfig {
    pub fn parse(json: &str) -> Result<Self, JniError> {
        let config: CreateConfig =
            serde_json::from_str(json).map_err(|e| JniError::bad(format!("config JSON: {e}")))?;
        if config.data_dir.as_os_str().is_empty() {
            return Err(JniError::bad("config: data_dir is empty"));
        }
        if let Some(engine) = &config.engine {
            engine
                .validate()
                .map_err(|e| JniError::bad(format!("config: engine: {e}")))?;
        }
        Ok(config)
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join(DB_FILE)
    }
}

/// `nativePair`'s `maxLinks`: 0 is the core's default ([`DEFAULT_MAX_LINKS`]), else 1 to
/// [`MAX_LINKS_LIMIT`] links to a cluster's nodes.
pub fn max_links_arg(max_links: i32) -> Result<u32, JniError> {
    match u32::try_from(max_links) {
        Ok(0) => Ok(DEFAULT_MAX_LINKS),
        Ok(n) if n <= MAX_LINKS_LIMIT => Ok(n),
        _ => Err(JniError::bad(format!(
            "maxLinks must be 0 (the default, {DEFAULT_MAX_LINKS}) or 1 to {MAX_LINKS_LIMIT}"
        ))),
    }
}

/// One running core: runtime, phone, command queue.
#[derive(Debug)]
pub struct Core {
    db_path: PathBuf,
    device_name: Option<String>,
    rt: tokio::runtime::Handle,
    runtime: Mutex<Option<Runtime>>,
    phone: Mutex<Option<Phone>>,
    handle: PhoneHandle,
    queue: Arc<CommandQueue>,
    closing: watch::Sender<bool>,
}

impl Core {
    /// Builds the runtime (two workers), opens the store and starts the phone.
    pub fn start(config: CreateConfig) -> Result<Core, JniError> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| JniError::Runtime(format!("data_dir: {}", e.kind())))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(2)
            .thread_name("simrelay-core")
            .enable_all()
            .build()
            .map_err(|e| JniError::Runtime(e.to_string()))?;
        let db_path = config.db_path();
        let mut phone_config = PhoneConfig::new(&db_path);
        // The Kotlin command loop is the modem: no relay link while it is not attached.
        phone_config.needs_worker = true;
        if let Some(engine) = config.engine {
            phone_config.engine = engine;
        }
        if let Some(version) = config.app_version {
            phone_config.app_version = version;
        }
        let queue = Arc::new(CommandQueue::default());
        let phone = {
            let _entered = runtime.enter();
            Phone::start(phone_config, Box::new(queue.clone()))?
        };
        Ok(Core {
            db_path,
            device_name: config.device_name,
            rt: runtime.handle().clone(),
            handle: phone.handle(),
            runtime: Mutex::new(Some(runtime)),
            phone: Mutex::new(Some(phone)),
            queue,
            closing: watch::Sender::new(false),
        })
    }

    pub fn phone(&self) -> &PhoneHandle {
        &self.handle
    }

    pub fn queue(&self) -> &CommandQueue {
        &self.queue
    }

    /// Exchanges a pairing code for a device token, then stores the link and starts it.
    /// Blocks the calling (non-runtime) thread; returns the phone id the relay assigned.
    pub fn pair(
        &self,
        url: &str,
        code: &str,
        pin_sha256: Option<&str>,
        max_links: u32,
    ) -> Result<String, JniError> {
        let mut closing = self.closing.subscribe();
        let paired: Paired = self.rt.block_on(async {
            tokio::select! {
                r = tokio::time::timeout(
                    PAIR_TIMEOUT,
                    link::pair(url, code, self.device_name.as_deref(), pin_sha256),
                ) => r.map_err(|_| JniError::Link(link::LinkError::Timeout))?
                    .map_err(JniError::from),
                _ = closing.wait_for(|c| *c) => Err(JniError::Closed),
            }
        })?;
        self.handle.set_link(LinkConfig {
            url: url.to_string(),
            token: paired.token,
            pin_sha256: pin_sha256.map(str::to_string),
            // A cluster's nodes: the core dials them all (docs/protocol.md).
            nodes: paired.nodes,
            max_links,
        })?;
        Ok(paired.phone_id)
    }

    /// Stops everything within [`PHONE_STOP`] + [`RUNTIME_STOP`]. Waiters in
    /// `CommandQueue::next` return `Closed` at once. Idempotent.
    pub fn shutdown(&self) {
        self.closing.send_replace(true);
        self.queue.close();
        let phone = lock(&self.phone).take();
        let runtime = lock(&self.runtime).take();
        if let Some(runtime) = runtime {
            if let Some(phone) = phone {
                runtime.block_on(phone.shutdown_within(PHONE_STOP));
            }
            runtime.shutdown_timeout(RUNTIME_STOP);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug)]
struct Registry {
    next: i64,
    cores: HashMap<i64, Arc<Core>>,
}

fn registry() -> MutexGuard<'static, Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    lock(REGISTRY.get_or_init(|| {
        // A random base in 1..2^40 so that handles of an earlier process or made-up numbers
        // (0, 1, ...) are unknown.
        let base = (RandomState::new().hash_one("simrelay") & ((1 << 40) - 1)) as i64;
        Mutex::new(Registry {
            next: base.max(1) << 8,
            cores: HashMap::new(),
        })
    }))
}

/// Starts a core and registers it. One core per store: a second one on the same `data_dir`
/// would race the first for the file.
pub fn create(config: CreateConfig) -> Result<i64, JniError> {
    let db_path = config.db_path();
    if registry().cores.values().any(|c| c.db_path == db_path) {
        return Err(JniError::bad(
            "config: a core is already open on this data_dir",
        ));
    }
    let core = Arc::new(Core::start(config)?);
    let mut reg = registry();
    if reg.cores.values().any(|c| c.db_path == db_path) {
        drop(reg);
        core.shutdown();
        return Err(JniError::bad(
            "config: a core is already open on this data_dir",
        ));
    }
    reg.next += 1;
    let id = reg.next;
    reg.cores.insert(id, core);
    Ok(id)
}

/// The core behind `handle`, kept alive for the duration of the call.
pub fn get(handle: i64) -> Result<Arc<Core>, JniError> {
    registry()
        .cores
        .get(&handle)
        .cloned()
        .ok_or(JniError::BadHandle)
}

/// Unregisters and shuts down the core. Calls already inside it finish (a waiting
/// `nativeNextCommand` returns "closed"); later calls with this handle fail.
pub fn destroy(handle: i64) -> Result<(), JniError> {
    let core = registry()
        .cores
        .remove(&handle)
        .ok_or(JniError::BadHandle)?;
    core.shutdown();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use simrelay_core::Next;

    fn config(dir: &std::path::Path) -> CreateConfig {
        CreateConfig::parse(&serde_json::json!({ "data_dir": dir }).to_string())
            .expect("valid config")
    }

    #[test]
    fn max_links_is_zero_for_the_default_or_one_to_the_limit() {
        assert_eq!(max_links_arg(0).expect("0"), DEFAULT_MAX_LINKS);
        assert_eq!(max_links_arg(1).expect("1"), 1);
        assert_eq!(max_links_arg(16).expect("16"), MAX_LINKS_LIMIT);
        for bad in [-1, 17, i32::MIN, i32::MAX] {
            let e = max_links_arg(bad).expect_err("out of range");
            assert!(matches!(e, JniError::BadArgument(_)), "{bad}: {e:?}");
        }
    }

    #[test]
    fn config_rejects_garbage_unknown_fields_and_bad_engine() {
        assert!(matches!(
            CreateConfig::parse("{"),
            Err(JniError::BadArgument(_))
        ));
        assert!(matches!(
            CreateConfig::parse(r#"{"data_dir":"/x","colour":"red"}"#),
            Err(JniError::BadArgument(_))
        ));
        assert!(matches!(
            CreateConfig::parse(r#"{"data_dir":""}"#),
            Err(JniError::BadArgument(_))
        ));
        assert!(matches!(
            CreateConfig::parse(r#"{"data_dir":"/x","engine":{"parts_per_minute":0}}"#),
            Err(JniError::BadArgument(_))
        ));
        let ok = CreateConfig::parse(r#"{"data_dir":"/x","engine":{"jitter":0.0}}"#)
            .expect("partial engine settings take defaults");
        assert_eq!(ok.db_path(), PathBuf::from("/x").join(DB_FILE));
    }

    #[test]
    fn config_carries_the_passphrase_and_never_shows_it() {
        let ok = CreateConfig::parse(r#"{"data_dir":"/x","engine":{"passphrase":"hunter2"}}"#)
            .expect("a passphrase is an engine setting");
        let engine = ok.engine.as_ref().expect("engine settings");
        assert_eq!(
            engine.passphrase.as_ref().map(|p| p.expose()),
            Some("hunter2")
        );
        assert!(!format!("{ok:?}").contains("hunter2"));
        let Err(JniError::BadArgument(text)) =
            CreateConfig::parse(r#"{"data_dir":"/x","engine":{"passphrase":""}}"#)
        else {
            panic!("an empty passphrase is refused");
        };
        assert!(text.contains("passphrase"), "{text}");
    }

    #[test]
    fn handles_are_checked_and_destroy_wakes_waiters() {
        let dir = tempfile::tempdir().expect("tempdir");
        let id = create(config(dir.path())).expect("core starts");
        assert!(matches!(get(0), Err(JniError::BadHandle)));
        assert!(matches!(get(id + 1), Err(JniError::BadHandle)));
        assert!(
            matches!(create(config(dir.path())), Err(JniError::BadArgument(_))),
            "one core per store"
        );
        let core = get(id).expect("live handle");
        assert_eq!(core.queue().next(Duration::from_millis(1)), Next::Timeout);
        let waiter = std::thread::spawn(move || core.queue().next(Duration::from_secs(600)));
        let started = std::time::Instant::now();
        destroy(id).expect("destroy");
        assert_eq!(waiter.join().expect("waiter"), Next::Closed);
        assert!(started.elapsed() < PHONE_STOP + RUNTIME_STOP);
        assert!(matches!(get(id), Err(JniError::BadHandle)));
        assert!(matches!(destroy(id), Err(JniError::BadHandle)));
        // The store is free again.
        let again = create(config(dir.path())).expect("reopen");
        destroy(again).expect("destroy again");
    }
}
