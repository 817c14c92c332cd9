//! The phone's links to several relay nodes (docs/protocol.md, "Several relay nodes")
//! against scripted relay nodes on `127.0.0.1:0`: one sequence space over every link (a
//! frame applied once whichever node brings it, acks per phone on every link), the outbox on
//! every link and dropped by an ack from any, a cut link pausing nothing, the node list from
//! pairing and each welcome (dial the new, drop the removed, `max_links`, kept in the store).

mod common;

use std::time::Duration;

use common::{msg, sim_configs};
use futures_util::{SinkExt, StreamExt};
use simrelay_core::link::{self};
use simrelay_core::phone::{LinkConfig, LinkState, Phone, PhoneConfig, PhoneHandle};
use simrelay_core::protocol::{
    Event, PROTOCOL_VERSION, PhoneFrame, RecipientState, RelayFrame, decode_phone_frame, encode,
};
use simrelay_core::sim_modem::{SimModem, SimModemConfig};
use simrelay_core::{EngineConfig, ModemEvent};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// Failure guard only: every wait below ends as soon as its condition holds.
const GUARD: Duration = Duration::from_secs(20);

/// A scripted relay node.
struct Node {
    listener: TcpListener,
    url: String,
}

impl Node {
    async fn new() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("ws://{}", listener.local_addr().expect("addr"));
        Self { listener, url }
    }

    /// The phone's next link to this node.
    async fn accept(&self) -> Script {
        let (tcp, _) = tokio::time::timeout(GUARD, self.listener.accept())
            .await
            .expect("the phone connects in time")
            .expect("accept");
        let ws = tokio_tungstenite::accept_async(tcp).await.expect("upgrade");
        Script { ws }
    }

    /// Accepts a link, reads its `hello` (returns its `acked`) and welcomes it with `nodes`.
    async fn link(&self, nodes: &[&Node]) -> (Script, u64) {
        let mut s = self.accept().await;
        let PhoneFrame::Hello { acked, .. } = s.recv().await else {
            panic!("hello first")
        };
        s.send(&welcome(nodes)).await;
        (s, acked)
    }
}

struct Script {
    ws: WebSocketStream<TcpStream>,
}

impl Script {
    /// The next frame that is not a heartbeat or a status.
    async fn recv(&mut self) -> PhoneFrame {
        loop {
            let msg = tokio::time::timeout(GUARD, self.ws.next())
                .await
                .expect("a frame in time")
                .expect("link open")
                .expect("frame");
            if let Message::Text(t) = msg {
                let frame = decode_phone_frame(&t).expect("valid phone frame");
                if !matches!(
                    frame,
                    PhoneFrame::Heartbeat { .. } | PhoneFrame::Status { .. }
                ) {
                    return frame;
                }
            }
        }
    }

    async fn send(&mut self, frame: &RelayFrame) {
        self.ws
            .send(Message::text(encode(frame)))
            .await
            .expect("send");
    }

    /// Frames until `done` holds for the frames read so far.
    async fn until(&mut self, done: impl Fn(&[PhoneFrame]) -> bool) -> Vec<PhoneFrame> {
        let mut got = Vec::new();
        while !done(&got) {
            got.push(self.recv().await);
        }
        got
    }

    /// Waits for the phone to close this link.
    async fn closed(&mut self) {
        let closed = tokio::time::timeout(GUARD, async {
            loop {
                match self.ws.next().await {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                    Some(Ok(_)) => {}
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "the phone drops this link in time");
    }
}

fn welcome(nodes: &[&Node]) -> RelayFrame {
    RelayFrame::Welcome {
        version: PROTOCOL_VERSION,
        phone_id: "phone-1".into(),
        acked: 0,
        heartbeat_ms: 15_000,
        nodes: nodes.iter().map(|n| n.url.clone()).collect(),
    }
}

/// The events among `frames`, as (seq, message id, state).
fn events(frames: &[PhoneFrame]) -> Vec<(u64, String, RecipientState)> {
    frames
        .iter()
        .filter_map(|f| match f {
            PhoneFrame::Event {
                seq,
                event: Event::Recipient(u),
            } => Some((*seq, u.message_id.clone(), u.state)),
            _ => None,
        })
        .collect()
}

fn has_event(frames: &[PhoneFrame], id: &str, state: RecipientState) -> bool {
    events(frames)
        .iter()
        .any(|(_, m, s)| m == id && *s == state)
}

fn has_ack(frames: &[PhoneFrame], seq: u64) -> bool {
    frames
        .iter()
        .any(|f| matches!(f, PhoneFrame::Ack { seq: s } if *s == seq))
}

fn start(dir: &tempfile::TempDir, link: Option<LinkConfig>) -> (Phone, PhoneHandle, SimModem) {
    let modem = SimModem::new(SimModemConfig::default());
    let phone = Phone::start(
        PhoneConfig {
            engine: EngineConfig::unpaced(),
            link,
            ..PhoneConfig::new(dir.path().join("phone.db"))
        },
        Box::new(modem.clone()),
    )
    .expect("start");
    let h = phone.handle();
    h.set_sims(sim_configs(&[1])).expect("sims");
    (phone, h, modem)
}

fn config(paired: &Node, nodes: &[&Node], max_links: u32) -> LinkConfig {
    LinkConfig {
        url: paired.url.clone(),
        token: "device-token".into(),
        nodes: nodes.iter().map(|n| n.url.clone()).collect(),
        max_links,
        ..LinkConfig::default()
    }
}

/// Waits until the UI's view satisfies `ok`.
async fn wait_view(
    h: &PhoneHandle,
    what: &str,
    ok: impl Fn(&simrelay_core::phone::PhoneView) -> bool,
) {
    let r = tokio::time::timeout(GUARD, async {
        while !ok(&h.status()) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(r.is_ok(), "{what}: {:?}", h.status());
}

fn link_urls(h: &PhoneHandle) -> Vec<String> {
    h.status().links.into_iter().map(|l| l.url).collect()
}

#[tokio::test]
async fn the_same_send_from_two_nodes_is_applied_once_and_acked_on_both() {
    let (a, b) = (Node::new().await, Node::new().await);
    let dir = common::temp_dir();
    let (phone, h, modem) = start(&dir, Some(config(&a, &[], 3)));
    // The first welcome lists the cluster: the phone dials the other node too.
    let (mut la, acked) = a.link(&[&a, &b]).await;
    assert_eq!(acked, 0);
    let (mut lb, _) = b.link(&[&a, &b]).await;
    wait_view(&h, "two links online", |v| v.live_links == 2).await;
    assert_eq!(h.status().link, LinkState::Online);

    // Both nodes write the phone's unacknowledged frame 1 at once.
    let send = RelayFrame::Send {
        seq: 1,
        message: msg("m1", &["+15551230001"], "hello"),
    };
    la.send(&send).await;
    lb.send(&send).await;
    let on_a = la
        .until(|f| has_ack(f, 1) && has_event(f, "m1", RecipientState::Queued))
        .await;
    let on_b = lb
        .until(|f| has_ack(f, 1) && has_event(f, "m1", RecipientState::Queued))
        .await;
    // Stored once, accepted once: one `queued` event, the same seq on both links.
    assert_eq!(events(&on_a), events(&on_b));
    assert_eq!(events(&on_a).len(), 1, "{on_a:?}");
    let queued = events(&on_a)[0].0;
    assert_eq!(h.with_engine(|e, _| e.recipients()).expect("read").len(), 1);
    assert_eq!(
        modem.with_radio(|r| r.total_transmitted()),
        0,
        "not before the relay's ack"
    );

    // The acceptance acknowledged by one node releases it; its results go on both links.
    la.send(&RelayFrame::Ack { seq: queued }).await;
    let done = |f: &[PhoneFrame]| has_event(f, "m1", RecipientState::Delivered);
    let on_a = la.until(done).await;
    let on_b = lb.until(done).await;
    assert_eq!(events(&on_a), events(&on_b));
    let last = events(&on_b).last().expect("events").0;
    assert_eq!(modem.with_radio(|r| r.total_transmitted()), 1);

    // An ack on the other link drops them for both.
    lb.send(&RelayFrame::Ack { seq: last }).await;
    wait_view(&h, "outbox emptied", |v| v.outbox == 0).await;
    // Node a's link, cut and back, resends none of them: the first event it gets is new.
    drop(la);
    let (mut la, acked) = a.link(&[&a, &b]).await;
    assert_eq!(acked, 1, "hello says which frames the phone applied");
    la.send(&RelayFrame::Send {
        seq: 2,
        message: msg("m2", &["+15551230002"], "again"),
    })
    .await;
    let on_a = la
        .until(|f| has_event(f, "m2", RecipientState::Queued))
        .await;
    assert_eq!(events(&on_a).len(), 1, "no dropped event resent: {on_a:?}");
    // The frame applied from node a is acknowledged on node b's link as well.
    let on_b = lb.until(|f| has_ack(f, 2)).await;
    assert!(has_ack(&on_b, 2));
    assert_eq!(modem.with_radio(|r| r.duplicates()), 0);
    phone.shutdown().await;
}

/// Both nodes write the same 40 frames as fast as they can: the two links apply batches
/// concurrently, and each frame is still stored and accepted exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_frames_from_two_nodes_at_once_are_each_applied_once() {
    let (a, b) = (Node::new().await, Node::new().await);
    let dir = common::temp_dir();
    let (phone, h, _modem) = start(&dir, Some(config(&a, &[&a, &b], 3)));
    let (mut la, _) = a.link(&[&a, &b]).await;
    let (mut lb, _) = b.link(&[&a, &b]).await;
    wait_view(&h, "two links online", |v| v.live_links == 2).await;
    const N: u64 = 40;
    let frames: Vec<RelayFrame> = (1..=N)
        .map(|seq| RelayFrame::Send {
            seq,
            message: msg(&format!("m{seq}"), &["+15551230001"], "hello"),
        })
        .collect();
    let (fa, fb) = (frames.clone(), frames);
    let write_a = async {
        for f in &fa {
            la.send(f).await;
        }
        la
    };
    let write_b = async {
        for f in &fb {
            lb.send(f).await;
        }
        lb
    };
    let (mut la, mut lb) = tokio::join!(write_a, write_b);
    let all_queued = |f: &[PhoneFrame]| {
        has_ack(f, N)
            && events(f)
                .iter()
                .filter(|(_, _, s)| *s == RecipientState::Queued)
                .count()
                >= N as usize
    };
    let on_a = la.until(all_queued).await;
    let on_b = lb.until(all_queued).await;
    assert_eq!(
        events(&on_a),
        events(&on_b),
        "the same events on both links"
    );
    let mut ids: Vec<String> = events(&on_a).into_iter().map(|(_, m, _)| m).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), N as usize, "one acceptance per message");
    assert_eq!(events(&on_a).len(), N as usize);
    assert_eq!(
        h.with_engine(|e, _| e.recipients()).expect("read").len(),
        N as usize
    );
    phone.shutdown().await;
}

/// One node took the acceptance back: its `cancel` may arrive on any link, and every node
/// writes it before its `ack` of the acceptance. It is applied once, before either ack.
#[tokio::test]
async fn a_cancel_from_either_node_is_applied_once_and_before_the_ack() {
    let (a, b) = (Node::new().await, Node::new().await);
    let dir = common::temp_dir();
    let (phone, h, modem) = start(&dir, Some(config(&a, &[&a, &b], 3)));
    let (mut la, _) = a.link(&[&a, &b]).await;
    let (mut lb, _) = b.link(&[&a, &b]).await;
    wait_view(&h, "two links online", |v| v.live_links == 2).await;
    la.send(&RelayFrame::Send {
        seq: 1,
        message: msg("moved", &["+15551230003"], "routed elsewhere"),
    })
    .await;
    let on_b = lb
        .until(|f| has_event(f, "moved", RecipientState::Queued))
        .await;
    let queued = events(&on_b)[0].0;
    let cancel = RelayFrame::Cancel {
        seq: 2,
        message_id: "moved".into(),
        recipients: None,
    };
    // Node b applied the `queued` event and queued the cancel; node a, seeing the event
    // stored, writes the cancel too before its ack.
    lb.send(&cancel).await;
    lb.send(&RelayFrame::Ack { seq: queued }).await;
    la.send(&cancel).await;
    la.send(&RelayFrame::Ack { seq: queued }).await;
    let cancelled = |f: &[PhoneFrame]| has_event(f, "moved", RecipientState::Cancelled);
    let on_a = la.until(|f| cancelled(f) && has_ack(f, 2)).await;
    let on_b = lb.until(|f| cancelled(f) && has_ack(f, 2)).await;
    let count = |f: &[PhoneFrame]| {
        events(f)
            .iter()
            .filter(|(_, _, s)| *s == RecipientState::Cancelled)
            .count()
    };
    assert_eq!((count(&on_a), count(&on_b)), (1, 1));
    let last = |f: &[PhoneFrame]| events(f).last().cloned();
    assert_eq!(
        last(&on_a),
        last(&on_b),
        "the same cancelled event on both links"
    );
    assert_eq!(modem.with_radio(|r| r.total_transmitted()), 0);
    phone.shutdown().await;
}

#[tokio::test]
async fn a_cut_link_pauses_nothing_and_catches_up_when_it_is_back() {
    let (a, b) = (Node::new().await, Node::new().await);
    let dir = common::temp_dir();
    let (phone, h, modem) = start(&dir, Some(config(&a, &[&a, &b], 3)));
    let (mut la, _) = a.link(&[&a, &b]).await;
    let (lb, _) = b.link(&[&a, &b]).await;
    wait_view(&h, "two links online", |v| v.live_links == 2).await;

    // Node b's link drops: the phone stays online through node a.
    drop(lb);
    wait_view(&h, "one link online", |v| v.live_links == 1).await;
    assert_eq!(h.status().link, LinkState::Online);
    la.send(&RelayFrame::Send {
        seq: 1,
        message: msg("m1", &["+15551230001"], "hello"),
    })
    .await;
    let on_a = la
        .until(|f| has_ack(f, 1) && has_event(f, "m1", RecipientState::Queued))
        .await;
    la.send(&RelayFrame::Ack {
        seq: events(&on_a)[0].0,
    })
    .await;
    h.on_modem_event(ModemEvent::Incoming {
        sim: Some(1),
        from: "+15557770000".into(),
        text: "while b was away".into(),
        sent_at: None,
    })
    .expect("incoming");
    let incoming = |f: &[PhoneFrame]| {
        f.iter().any(|f| {
            matches!(f, PhoneFrame::Event { event: Event::Incoming(sms), .. }
                if sms.text == "while b was away")
        })
    };
    la.until(|f| has_event(f, "m1", RecipientState::Delivered) && incoming(f))
        .await;
    assert_eq!(modem.with_radio(|r| r.total_transmitted()), 1);

    // Node b's link comes back: its hello says frame 1 is applied, and it gets every event
    // not yet acknowledged (those after the acknowledged acceptance), in order.
    let (mut lb, acked) = b.link(&[&a, &b]).await;
    assert_eq!(acked, 1);
    let on_b = lb
        .until(|f| has_event(f, "m1", RecipientState::Delivered) && incoming(f))
        .await;
    let seqs: Vec<u64> = on_b
        .iter()
        .filter_map(|f| match f {
            PhoneFrame::Event { seq, .. } => Some(*seq),
            _ => None,
        })
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "in seq order: {seqs:?}"
    );
    assert!(
        !has_event(&on_b, "m1", RecipientState::Queued),
        "the acknowledged acceptance is not resent"
    );
    phone.shutdown().await;
}

#[tokio::test]
async fn a_new_node_list_dials_the_new_node_drops_the_removed_one_and_is_kept() {
    let (a, b, c) = (Node::new().await, Node::new().await, Node::new().await);
    let dir = common::temp_dir();
    // Paired with a cluster of a and b (`paired.nodes`): both are dialled at once.
    let (phone, h, _modem) = start(&dir, Some(config(&a, &[&a, &b], 3)));
    let (la, _) = a.link(&[&a, &b]).await;
    let (mut lb, _) = b.link(&[&a, &b]).await;
    wait_view(&h, "two links online", |v| v.live_links == 2).await;
    assert_eq!(link_urls(&h), vec![a.url.clone(), b.url.clone()]);

    // Node a's next welcome lists a and c: c is dialled, b dropped.
    drop(la);
    let (_la, _) = a.link(&[&a, &c]).await;
    let (_lc, _) = c.link(&[&a, &c]).await;
    lb.closed().await;
    wait_view(&h, "a and c online", |v| v.live_links == 2).await;
    assert_eq!(link_urls(&h), vec![a.url.clone(), c.url.clone()]);

    // The list is in the store: restarted without a link config, the phone dials a and c.
    phone.shutdown().await;
    let (phone, h, _modem) = start(&dir, None);
    let (_la, _) = a.link(&[&a, &c]).await;
    let (_lc, _) = c.link(&[&a, &c]).await;
    wait_view(&h, "a and c online after a restart", |v| v.live_links == 2).await;
    assert_eq!(link_urls(&h), vec![a.url.clone(), c.url.clone()]);
    // The same relay and token given again without a list keep the stored list.
    h.set_link(config(&a, &[], 3)).expect("set link");
    let (_la, _) = a.link(&[&a, &c]).await;
    let (_lc, _) = c.link(&[&a, &c]).await;
    wait_view(&h, "a and c online after set_link", |v| v.live_links == 2).await;
    phone.shutdown().await;
}

#[tokio::test]
async fn max_links_bounds_the_links_the_paired_node_stays_and_an_empty_list_is_one_relay() {
    let (a, b, c) = (Node::new().await, Node::new().await, Node::new().await);
    let dir = common::temp_dir();
    let (phone, h, _modem) = start(&dir, Some(config(&a, &[], 2)));
    // Three listed, the paired node last: a (paired) and b, not c.
    let (la, _) = a.link(&[&b, &c, &a]).await;
    let (mut lb, _) = b.link(&[&b, &c, &a]).await;
    wait_view(&h, "two links online", |v| v.live_links == 2).await;
    assert_eq!(link_urls(&h), vec![a.url.clone(), b.url.clone()]);

    // A list without the paired node: it stays, and c takes b's place.
    drop(la);
    let (la, _) = a.link(&[&c]).await;
    let (_lc, _) = c.link(&[&c]).await;
    lb.closed().await;
    wait_view(&h, "a and c online", |v| v.live_links == 2).await;
    assert_eq!(link_urls(&h), vec![a.url.clone(), c.url.clone()]);

    // An empty list: a single relay again, the one the phone paired with.
    drop(la);
    let (_la, _) = a.link(&[]).await;
    wait_view(&h, "only a", |v| v.links.len() == 1 && v.live_links == 1).await;
    assert_eq!(link_urls(&h), vec![a.url.clone()]);
    phone.shutdown().await;
}

#[tokio::test]
async fn a_node_list_the_phone_cannot_use_changes_nothing() {
    let (a, b) = (Node::new().await, Node::new().await);
    let dir = common::temp_dir();
    let (phone, h, _modem) = start(&dir, Some(config(&a, &[&a, &b], 3)));
    let (la, _) = a.link(&[&a, &b]).await;
    let (_lb, _) = b.link(&[&a, &b]).await;
    wait_view(&h, "two links online", |v| v.live_links == 2).await;
    // A welcome listing a URL that is not a WebSocket one is ignored whole; the link stays.
    drop(la);
    let mut la = a.accept().await;
    assert!(matches!(la.recv().await, PhoneFrame::Hello { .. }));
    let mut bad = welcome(&[&a]);
    if let RelayFrame::Welcome { nodes, .. } = &mut bad {
        nodes.push("http://elsewhere:80".into());
    }
    la.send(&bad).await;
    wait_view(&h, "both online again", |v| v.live_links == 2).await;
    assert_eq!(link_urls(&h), vec![a.url.clone(), b.url.clone()]);

    // Bad link settings are refused and change nothing.
    for bad in [
        config(&a, &[], 0),
        config(&a, &[], 17),
        LinkConfig {
            nodes: vec!["ftp://x".into()],
            ..config(&a, &[], 3)
        },
        LinkConfig {
            pin_sha256: Some("ab".repeat(32)),
            ..config(&a, &[], 3)
        },
        LinkConfig {
            url: a.url.replace("ws://", "wss://"),
            pin_sha256: Some("ab".repeat(32)),
            ..config(&a, &[&b], 3)
        },
        LinkConfig {
            url: a.url.replace("ws://", "wss://"),
            pin_sha256: Some("abc".into()),
            ..config(&a, &[], 3)
        },
    ] {
        let e = h.set_link(bad).expect_err("refused");
        assert_eq!(e.kind(), simrelay_core::ErrorKind::InvalidInput, "{e}");
    }
    assert_eq!(h.status().live_links, 2);
    assert_eq!(link_urls(&h), vec![a.url.clone(), b.url.clone()]);
    phone.shutdown().await;
}

#[tokio::test]
async fn pairing_returns_the_cluster_nodes() {
    let relay = Node::new().await;
    let url = relay.url.clone();
    let script = tokio::spawn(async move {
        for nodes in [
            vec!["ws://a:1/".to_string(), "ws://b:1".to_string()],
            vec!["ws://a:1".to_string(), "mailto:x".to_string()],
        ] {
            let mut s = relay.accept().await;
            assert!(matches!(s.recv().await, PhoneFrame::Pair { .. }));
            s.send(&RelayFrame::Paired {
                phone_id: "p".into(),
                token: "t".into(),
                nodes,
            })
            .await;
        }
    });
    let paired = link::pair(&url, "CODE", None, None).await.expect("paired");
    assert_eq!(paired.nodes, vec!["ws://a:1", "ws://b:1"]);
    // A list the phone cannot use: paired all the same, as a single relay.
    let paired = link::pair(&url, "CODE", None, None).await.expect("paired");
    assert!(paired.nodes.is_empty());
    script.await.expect("relay script");
}
