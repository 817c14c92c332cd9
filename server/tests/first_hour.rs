//! What a newcomer hit in their first hour, over a real demo relay (HTTP on `127.0.0.1:0`,
//! a simulated phone): `from=+1555...` typed unencoded in a query string finds the SMS,
//! `limit=0` and a `limit` above the maximum are 400 errors rather than silently changed,
//! and a port already in use says so.

use serde_json::Value;
use simrelay_server::sims::demo::{Demo, DemoArgs};

async fn demo(dir: &std::path::Path) -> Demo {
    simrelay_server::sims::demo::start(&DemoArgs {
        listen: "127.0.0.1:0".parse().expect("addr"),
        phones: 1,
        api_key: Some("first-hour-key-0123456789abcdef".into()),
        data: Some(dir.to_path_buf()),
    })
    .await
    .expect("demo starts")
}

/// GET `url` (a raw string: reqwest keeps an unencoded `+` as it is).
async fn get(demo: &Demo, path_and_query: &str) -> (u16, Value) {
    simrelay_server::install_crypto_provider();
    let res = reqwest::Client::new()
        .get(format!("{}{path_and_query}", demo.server.url))
        .bearer_auth(&demo.api_key)
        .send()
        .await
        .expect("relay answers");
    let status = res.status().as_u16();
    (status, res.json().await.expect("JSON"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unencoded_plus_in_from_is_a_plus() {
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = demo(dir.path()).await;
    demo.phones[0]
        .2
        .inject_incoming(Some(1), "+15550001234", "your code is 9876");
    // Encoded: waits until the SMS is stored.
    let (s, sms) = get(&demo, "/v1/inbox/wait?from=%2B15550001234&timeout=30").await;
    assert_eq!(s, 200, "{sms}");

    let (s, page) = get(&demo, "/v1/inbox?from=+15550001234").await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(page["items"].as_array().expect("items").len(), 1, "{page}");
    assert_eq!(page["items"][0]["id"], sms["id"]);
    let (s, found) = get(&demo, "/v1/inbox/wait?from=+15550001234&timeout=1").await;
    assert_eq!(s, 200, "{found}");
    assert_eq!(found["id"], sms["id"]);
    // Another number still matches nothing.
    let (s, page) = get(&demo, "/v1/inbox?from=+15550009999").await;
    assert_eq!(s, 200);
    assert!(page["items"].as_array().expect("items").is_empty());
    demo.server.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_of_zero_or_above_the_maximum_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = demo(dir.path()).await;
    for path in ["/v1/messages", "/v1/inbox"] {
        for bad in ["0", "501", "100000"] {
            let (s, body) = get(&demo, &format!("{path}?limit={bad}")).await;
            assert_eq!(s, 400, "{path} limit={bad}: {body}");
            assert_eq!(body["error"]["code"], "invalid_query");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .expect("message")
                    .contains("limit"),
                "{body}"
            );
        }
        for good in ["1", "500"] {
            let (s, body) = get(&demo, &format!("{path}?limit={good}")).await;
            assert_eq!(s, 200, "{path} limit={good}: {body}");
        }
    }
    demo.server.stop().await.expect("stops");
}

#[test]
fn a_port_in_use_says_so() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_simrelay"))
        .args(["serve", "--listen", &addr, "--data"])
        .arg(dir.path())
        .env("SIMRELAY_LOG", "warn")
        .output()
        .expect("simrelay runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot listen on {addr}")) && err.contains("in use"),
        "{err}"
    );
    assert!(!err.contains("data directory"), "{err}");
}

/// `simrelay serve` with stderr piped, stopped by SIGTERM: its log text.
fn serve_log(extra: &[&str]) -> String {
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_simrelay"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path())
        .args(extra)
        .env("SIMRELAY_LOG", "info")
        .env_remove("SIMRELAY_LOG_FORMAT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("simrelay starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("a line").expect("utf-8");
    assert!(first.starts_with("listening on "), "{first}");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let mut log = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut log)
        .expect("utf-8");
    assert!(child.wait().expect("exits").success());
    log
}

#[test]
fn logs_are_plain_off_a_terminal_and_json_on_request() {
    let log = serve_log(&[]);
    assert!(log.contains("shutting down"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "no colour codes in a pipe: {log:?}"
    );

    let log = serve_log(&["--log-format", "json"]);
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "shutting down" && l["level"] == "INFO"),
        "{log}"
    );
}
