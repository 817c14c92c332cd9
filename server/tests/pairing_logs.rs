//! Refused pairing attempts are logged at info with their source and never with the code.
//! One test alone in its binary: the log capture is a thread-local subscriber, and tracing's
//! per-callsite interest is shared by every thread of the process, so tests running in
//! parallel would make the capture miss lines.

mod common;

use std::sync::{Arc, Mutex};

use common::{Http, KEY_A, RawPhone, server};
use simrelay_protocol::{PROTOCOL_VERSION, PhoneFrame, RelayFrame};

/// Everything logged at info and above on this thread (where the test's runtime runs the
/// relay's tasks) while the guard lives.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

async fn pair(ws_url: &str, code: &str) -> Result<(), String> {
    let mut p = RawPhone::connect(ws_url).await;
    p.send(&PhoneFrame::Pair {
        version: PROTOCOL_VERSION,
        code: code.into(),
        name: None,
    })
    .await;
    match p.recv().await {
        Some(RelayFrame::Paired { .. }) => Ok(()),
        Some(RelayFrame::Error { code, .. }) => Err(code),
        other => panic!("unexpected answer to pair: {other:?}"),
    }
}

#[tokio::test]
async fn refused_pairing_attempts_are_logged_at_info_without_the_code() {
    let logs = Logs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |_| {}).await;
    let http = Http::new(&srv.url);
    let (_, body) = http.req("POST", "/v1/pairing-codes", KEY_A, None).await;
    let code = body["code"].as_str().expect("code").to_string();
    for _ in 0..10 {
        assert_eq!(
            pair(&srv.ws_url(), "WRONG000").await,
            Err("bad_pairing_code".into())
        );
    }
    assert_eq!(
        pair(&srv.ws_url(), &code).await,
        Err("too_many_attempts".into())
    );
    srv.stop().await.expect("stops");
    let text = String::from_utf8_lossy(&logs.0.lock().expect("log lock")).into_owned();
    let refused: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("pairing attempt refused: too many attempts"))
        .collect();
    assert_eq!(refused.len(), 1, "logs: {text}");
    assert!(
        refused[0].contains("INFO") && refused[0].contains("source=127.0.0.1"),
        "{}",
        refused[0]
    );
    assert!(!text.contains(&code), "the code is not logged: {text}");
    assert!(!text.contains("WRONG000"), "a guess is not logged: {text}");
}
