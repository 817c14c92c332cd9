//! Cross-node wake-ups: a connection of its own that `LISTEN`s on [`CHANNEL`], where the
//! cluster's triggers (`super::cluster::CLUSTER_STEP`) announce, at commit, frames queued for
//! a phone (`<schema> f <phone>`) and work for the router (`<schema> r`: messages created,
//! links up). Notifications of other schemas (other relays, or tests, on the same database)
//! are ignored.
//!
//! The listener runs on a thread of its own and hands [`Wake`]s to the async side through a
//! channel. A lost connection is made again with a backoff; after each (re)connection it sends
//! [`Wake::Resync`], since notifications sent while it was away are lost: the node then wakes
//! all its links and its router once. It ends when the receiver is dropped.

use std::time::Duration;

use ::postgres::Config;
use ::postgres::fallible_iterator::FallibleIterator;
use tokio::sync::mpsc::UnboundedSender;

/// The channel of the cluster's wake-ups.
pub const CHANNEL: &str = "simrelay_wake";

/// How often the listener checks that its receiver still exists.
const POLL: Duration = Duration::from_secs(1);
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// A connection whose data goes unacknowledged this long is given up.
const USER_TIMEOUT: Duration = Duration::from_secs(10);

/// What a notification asks of this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wake {
    /// Frames were queued for this phone.
    Frames(String),
    /// The router has work (messages created, a link came up).
    Route,
    /// The listener (re)connected: notifications may have been missed.
    Resync,
}

/// Parses a payload of `schema`'s triggers; `None` for another schema or an unknown shape.
pub fn parse(schema: &str, payload: &str) -> Option<Wake> {
    let rest = payload.strip_prefix(schema)?.strip_prefix(' ')?;
    if rest == "r" {
        return Some(Wake::Route);
    }
    rest.strip_prefix("f ").map(|p| Wake::Frames(p.to_string()))
}

/// Starts the listener on a thread of its own.
pub fn spawn(mut config: Config, out: UnboundedSender<Wake>) {
    config.tcp_user_timeout(USER_TIMEOUT);
    let started = std::thread::Builder::new()
        .name("simrelay-pg-wake".into())
        .spawn(move || run(&config, &out));
    if let Err(e) = started {
        tracing::warn!(error = %e, "the cluster's wake-up listener did not start; nodes wake each other only by the safety poll");
    }
}

fn run(config: &Config, out: &UnboundedSender<Wake>) {
    let mut backoff = MIN_BACKOFF;
    while !out.is_closed() {
        match listen(config, out, &mut backoff) {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, "the cluster's wake-up listener lost its connection; reconnecting")
            }
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Listens until the receiver is gone (`Ok`) or the connection fails (`Err`).
fn listen(
    config: &Config,
    out: &UnboundedSender<Wake>,
    backoff: &mut Duration,
) -> Result<(), ::postgres::Error> {
    let mut client = config.connect(::postgres::NoTls)?;
    let schema: Option<String> = client.query_one("SELECT current_schema()", &[])?.get(0);
    let schema = schema.unwrap_or_default();
    client.batch_execute(&format!("LISTEN {CHANNEL}"))?;
    *backoff = MIN_BACKOFF;
    if out.send(Wake::Resync).is_err() {
        return Ok(());
    }
    loop {
        let next = client.notifications().timeout_iter(POLL).next()?;
        if out.is_closed() {
            return Ok(());
        }
        let Some(n) = next else {
            // A round trip now and then: a dead connection shows as an error here.
            client.batch_execute("SELECT 1")?;
            continue;
        };
        if let Some(w) = parse(&schema, n.payload())
            && out.send(w).is_err()
        {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_of_the_schema_are_read_and_others_ignored() {
        assert_eq!(parse("s1", "s1 r"), Some(Wake::Route));
        assert_eq!(parse("s1", "s1 f ph-1"), Some(Wake::Frames("ph-1".into())));
        assert_eq!(parse("s1", "s12 r"), None);
        assert_eq!(parse("s1", "s2 f ph-1"), None);
        assert_eq!(parse("s1", "s1 x"), None);
    }
}
