//! Where `now` comes from. The engine never reads a clock itself; the async shell asks a
//! [`Clock`], so tests can run on tokio's paused time.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use simrelay_protocol::Millis;

/// Wall-clock time in unix milliseconds.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Millis;
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        system_now()
    }
}

/// Unix milliseconds from the system clock.
pub fn system_now() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}

/// Wall time that advances with tokio's clock, so `tokio::time::pause()` and `advance()`
/// move it too. Starts at the given wall time.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    base_wall: Millis,
    base: tokio::time::Instant,
}

impl TokioClock {
    pub fn starting_at(base_wall: Millis) -> Self {
        Self {
            base_wall,
            base: tokio::time::Instant::now(),
        }
    }

    pub fn shared(base_wall: Millis) -> Arc<dyn Clock> {
        Arc::new(Self::starting_at(base_wall))
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Millis {
        self.base_wall + self.base.elapsed().as_millis() as Millis
    }
}
