//! The phone's set of links: one link task ([`crate::link`]) per relay node, all over the
//! phone's one store and its two sequence spaces (docs/protocol.md, "Several relay nodes").
//!
//! A single relay is a set of one: the node list is empty and the only link goes to the URL
//! the phone paired with. A cluster lists its nodes' public URLs in `paired.nodes` and in
//! every `welcome.nodes`; the phone dials the URL it paired with and then the listed nodes in
//! their order, at most [`LinkConfig::max_links`] in all, and follows each new list: a node
//! newly listed is dialled, a node no longer listed is dropped. The list is kept in the stored
//! [`LinkConfig`], so a restarted phone dials every node at once.
//!
//! What the links share lives in the phone ([`crate::phone`]): relay frames are applied under
//! the engine's lock, in one transaction that skips every seq at or below the stored
//! `relay_seq`, so two links bringing the same frame apply it once; the highest applied seq
//! is published to every live link, which sends it as its cumulative `ack`; the outbox wakes
//! every link ([`Signal`]), each writing it from its own cursor; an `ack` from any node drops
//! the outbox up to it for all of them.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinSet};

use crate::phone::{LinkConfig, LinkState, NodeLink, PhoneHandle, lock, stored_link};

/// Most node URLs taken from one list.
pub const MAX_NODES: usize = 32;
/// Longest node URL accepted.
pub const MAX_NODE_URL: usize = 512;

/// A wake-up that every subscriber sees once (a `Notify` wakes one waiter only, and every
/// link must write the new events).
#[derive(Debug)]
pub(crate) struct Signal(watch::Sender<u64>);

impl Signal {
    pub fn new() -> Self {
        Self(watch::channel(0).0)
    }

    pub fn notify(&self) {
        self.0.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// A receiver whose `changed()` resolves at the next `notify` after this call.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }
}

/// A node URL as links compare them: trimmed, without a trailing `/`.
pub fn normalize(url: &str) -> String {
    url.trim().trim_end_matches('/').to_string()
}

/// The node list as the phone keeps it: normalized, without repeats. Refused whole (the
/// reason names no URL) when an entry is not a `ws://`/`wss://` URL, is too long, or is not
/// `wss://` while a certificate pin is set, or when the list is too long.
pub fn checked_nodes(nodes: &[String], pinned: bool) -> Result<Vec<String>, String> {
    if nodes.len() > MAX_NODES {
        return Err(format!("more than {MAX_NODES} nodes listed"));
    }
    let mut out: Vec<String> = Vec::with_capacity(nodes.len());
    for node in nodes {
        let url = normalize(node);
        let scheme_ok = if pinned {
            url.starts_with("wss://")
        } else {
            url.starts_with("wss://") || url.starts_with("ws://")
        };
        if !scheme_ok {
            return Err(if pinned {
                "a node URL is not wss:// (the certificate pin needs TLS)".into()
            } else {
                "a node URL does not start with ws:// or wss://".into()
            });
        }
        if url.len() > MAX_NODE_URL || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("a node URL is too long or holds spaces".into());
        }
        if !out.contains(&url) {
            out.push(url);
        }
    }
    Ok(out)
}

/// The URLs to hold links to: the paired one first, then the listed nodes in order, at most
/// `max_links` in all.
pub fn dial_set(paired: &str, nodes: &[String], max_links: u32) -> Vec<String> {
    let max = max_links.max(1) as usize;
    let mut out = vec![normalize(paired)];
    for node in nodes {
        let node = normalize(node);
        if out.len() >= max {
            break;
        }
        if !out.contains(&node) {
            out.push(node);
        }
    }
    out
}

/// What the link tasks of one generation share.
pub(crate) struct Links {
    pub config: LinkConfig,
    pub generation: u64,
    /// The current node list; a change redials.
    nodes: watch::Sender<Vec<String>>,
}

impl Links {
    /// A welcome listed `nodes`: keep them (in the store too) when they differ from the
    /// current list. A list the phone cannot use is ignored with a warning; the link stays.
    pub fn refresh(&self, phone: &PhoneHandle, nodes: &[String]) {
        let nodes = match checked_nodes(nodes, self.config.pin_sha256.is_some()) {
            Ok(n) => n,
            Err(reason) => {
                log::warn!("link: welcome node list ignored: {reason}");
                return;
            }
        };
        if *self.nodes.borrow() == nodes {
            return;
        }
        // Stored only while this generation's relay and token are the stored ones (a new
        // pairing replaced them otherwise).
        let stored = phone.with_engine(|e, _| {
            let Some(mut link) = stored_link(e)? else {
                return Ok(false);
            };
            if link.url != self.config.url || link.token != self.config.token {
                return Ok(false);
            }
            link.nodes.clone_from(&nodes);
            e.set_setting("link", &serde_json::to_string(&link)?)?;
            Ok(true)
        });
        match stored {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => log::warn!("link: node list not stored: {e}"),
        }
        if let Some(c) = lock(&phone.shared.link_config).as_mut()
            && c.url == self.config.url
            && c.token == self.config.token
        {
            c.nodes.clone_from(&nodes);
        }
        log::info!("link: {} relay nodes listed", nodes.len());
        self.nodes.send_replace(nodes);
    }

    /// Sets one link's state (and its error, when one is given), unless this generation was
    /// replaced or the link dropped.
    pub fn set_state(
        &self,
        phone: &PhoneHandle,
        url: &str,
        state: LinkState,
        error: Option<String>,
    ) {
        let mut status = lock(&phone.shared.link);
        if status.generation != self.generation {
            return;
        }
        let Some(link) = status.links.iter_mut().find(|l| l.url == url) else {
            return;
        };
        link.state = state;
        if error.is_some() {
            status.last_error = error;
        }
    }

    /// A link came online: records the phone id and clears the last error.
    pub fn set_online(&self, phone: &PhoneHandle, url: &str, phone_id: String) {
        let mut status = lock(&phone.shared.link);
        if status.generation != self.generation {
            return;
        }
        let Some(link) = status.links.iter_mut().find(|l| l.url == url) else {
            return;
        };
        link.state = LinkState::Online;
        status.phone_id = Some(phone_id);
        status.last_error = None;
    }

    /// Puts the links of the UI's view in `want`'s order, new ones connecting.
    fn show(&self, phone: &PhoneHandle, want: &[String]) {
        let mut status = lock(&phone.shared.link);
        if status.generation != self.generation {
            return;
        }
        let old = std::mem::take(&mut status.links);
        status.links = want
            .iter()
            .map(|url| {
                old.iter()
                    .find(|l| &l.url == url)
                    .cloned()
                    .unwrap_or(NodeLink {
                        url: url.clone(),
                        state: LinkState::Connecting,
                    })
            })
            .collect();
    }
}

/// Runs the phone's links until it shuts down: one task per URL of [`dial_set`], redialled
/// as the node list changes. Aborting this task aborts them all (the [`JoinSet`] drops).
pub(crate) async fn run(phone: PhoneHandle, config: LinkConfig, generation: u64) {
    let initial = checked_nodes(&config.nodes, config.pin_sha256.is_some()).unwrap_or_default();
    let (nodes, mut changes) = watch::channel(initial);
    let links = Arc::new(Links {
        config,
        generation,
        nodes,
    });
    let mut tasks = JoinSet::new();
    let mut running: HashMap<String, AbortHandle> = HashMap::new();
    loop {
        if phone.is_closing() {
            // Each link ends at the same notice; wait for them so the store closes last.
            while tasks.join_next().await.is_some() {}
            return;
        }
        // A link task ends only at shutdown; one that ended otherwise (a panic) is redialled.
        running.retain(|_, task| !task.is_finished());
        let want = dial_set(
            &links.config.url,
            &changes.borrow_and_update(),
            links.config.max_links,
        );
        running.retain(|url, task| {
            let keep = want.contains(url);
            if !keep {
                log::info!("link: a relay node is no longer listed, dropping its link");
                task.abort();
            }
            keep
        });
        links.show(&phone, &want);
        for url in want {
            if let std::collections::hash_map::Entry::Vacant(slot) = running.entry(url) {
                let url = slot.key().clone();
                slot.insert(tasks.spawn(crate::link::run(phone.clone(), links.clone(), url)));
            }
        }
        tokio::select! {
            r = changes.changed() => {
                if r.is_err() {
                    return;
                }
            }
            Some(_) = tasks.join_next() => {}
            () = phone.closed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_paired_url_comes_first_and_max_links_bounds_the_set() {
        let nodes = urls(&["wss://b:1", "wss://a:1/", "wss://c:1", "wss://d:1"]);
        assert_eq!(
            dial_set("wss://a:1", &nodes, 3),
            urls(&["wss://a:1", "wss://b:1", "wss://c:1"])
        );
        assert_eq!(dial_set("wss://a:1/", &nodes, 1), urls(&["wss://a:1"]));
        assert_eq!(dial_set("wss://a:1", &[], 3), urls(&["wss://a:1"]));
        // Paired through a URL the list does not hold: kept, and counted.
        assert_eq!(
            dial_set("wss://x:1", &nodes, 2),
            urls(&["wss://x:1", "wss://b:1"])
        );
    }

    #[test]
    fn the_phone_is_online_while_any_link_is() {
        use crate::phone::LinkStatus;
        let link = |url: &str, state| NodeLink {
            url: url.into(),
            state,
        };
        let mut s = LinkStatus {
            base: LinkState::Connecting,
            ..LinkStatus::default()
        };
        assert_eq!(s.state(), LinkState::Connecting);
        s.links = vec![
            link("a", LinkState::Offline),
            link("b", LinkState::Connecting),
        ];
        assert_eq!((s.state(), s.live_links()), (LinkState::Connecting, 0));
        s.links[1].state = LinkState::Online;
        assert_eq!((s.state(), s.live_links()), (LinkState::Online, 1));
        s.links[1].state = LinkState::Offline;
        assert_eq!(s.state(), LinkState::Offline);
        s.base = LinkState::Paused;
        assert_eq!(s.state(), LinkState::Paused);
    }

    #[test]
    fn a_node_list_is_refused_whole_when_an_entry_is_unusable() {
        assert_eq!(
            checked_nodes(&urls(&[" wss://a:1/ ", "wss://a:1", "ws://b:2"]), false),
            Ok(urls(&["wss://a:1", "ws://b:2"]))
        );
        assert!(checked_nodes(&urls(&["wss://a:1", "ws://b:2"]), true).is_err());
        assert!(checked_nodes(&urls(&["https://a:1"]), false).is_err());
        assert!(checked_nodes(&urls(&["wss://a b:1"]), false).is_err());
        assert!(checked_nodes(&vec!["wss://a:1".to_string(); MAX_NODES + 1], false).is_err());
        let long = format!("wss://{}", "a".repeat(MAX_NODE_URL));
        assert!(checked_nodes(&[long], false).is_err());
        assert_eq!(checked_nodes(&[], true), Ok(Vec::new()));
    }
}
