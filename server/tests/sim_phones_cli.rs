//! `simrelay sim-phones` against a self-signed HTTPS relay, run as the built binary: with the
//! right `--pin-sha256` its pairing-code requests (HTTP) and its link (wss) both get through;
//! a wrong pin, an unpinned self-signed certificate, a refused pairing code or API key end
//! the command with a message saying retrying cannot fix it, instead of retrying forever.

mod common;

use std::process::{Output, Stdio};
use std::time::Duration;

use common::{KEY_A, server};
use simrelay_server::config::TlsMode;
use tokio::io::{AsyncBufReadExt, BufReader};

fn self_signed(c: &mut simrelay_server::config::Config) {
    c.tls = TlsMode::SelfSigned {
        names: vec!["localhost".into(), "127.0.0.1".into()],
    };
}

fn sim_phones(relay: &str, data: &std::path::Path, extra: &[&str]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_simrelay"));
    c.args(["sim-phones", "--relay", relay, "--data"])
        .arg(data)
        .args(extra)
        .env("SIMRELAY_LOG", "warn")
        .env_remove("SIMRELAY_API_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

/// Runs a `sim-phones` that must give up; the guard fails a command that retries forever.
async fn gives_up(mut cmd: tokio::process::Command) -> String {
    let out: Output = tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .expect("sim-phones gives up instead of retrying forever")
        .expect("sim-phones runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(err.contains("retrying cannot fix this"), "{err}");
    err
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_phones_pins_its_http_client_and_gives_up_on_unfixable_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(&dir.path().join("relay"), self_signed).await;
    let fp = srv.state.tls_fingerprint.clone().expect("a fingerprint");
    let url = srv.url.clone();

    // The right pin: a pairing code over HTTPS, then the link over wss.
    let mut child = sim_phones(
        &url,
        &dir.path().join("ok"),
        &["--api-key", KEY_A, "--pin-sha256", &fp],
    )
    .spawn()
    .expect("sim-phones starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let ready = tokio::time::timeout(Duration::from_secs(30), async {
        let mut seen = Vec::new();
        while let Some(line) = lines.next_line().await.expect("utf-8") {
            if line.starts_with("sim-phones ready") {
                return seen;
            }
            seen.push(line);
        }
        panic!("sim-phones ended: {seen:?}");
    })
    .await
    .expect("ready in time");
    assert_eq!(ready, ["phone 0 paired"]);
    child.kill().await.expect("killed");

    let wrong_pin = "ab".repeat(32);
    let err = gives_up(sim_phones(
        &url,
        &dir.path().join("wrong-pin"),
        &["--api-key", KEY_A, "--pin-sha256", &wrong_pin],
    ))
    .await;
    assert!(err.contains("certificate"), "{err}");

    let err = gives_up(sim_phones(
        &url,
        &dir.path().join("unpinned"),
        &["--api-key", KEY_A],
    ))
    .await;
    assert!(err.contains("certificate"), "{err}");

    let err = gives_up(sim_phones(
        &url,
        &dir.path().join("bad-pin"),
        &["--api-key", KEY_A, "--pin-sha256", "nothex"],
    ))
    .await;
    assert!(err.contains("64 hex"), "{err}");

    let err = gives_up(sim_phones(
        &url,
        &dir.path().join("bad-code"),
        &["--pairing-code", "000000", "--pin-sha256", &fp],
    ))
    .await;
    assert!(err.contains("pairing code"), "{err}");

    let err = gives_up(sim_phones(
        &url,
        &dir.path().join("bad-key"),
        &[
            "--api-key",
            "wrong-key-0123456789abcdef",
            "--pin-sha256",
            &fp,
        ],
    ))
    .await;
    assert!(err.contains("API key"), "{err}");
    assert!(!err.contains("wrong-key"), "the key is not echoed: {err}");
    srv.stop().await.expect("stops");
}
