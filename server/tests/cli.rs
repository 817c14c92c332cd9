//! The `simrelay serve` binary: flags, the fingerprint and `listening on` lines scripts read,
//! and a graceful exit on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[tokio::test]
async fn serve_prints_its_address_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_simrelay"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--api-key",
            "cli-key-0123456789abcdef",
            "--tls-self-signed",
            "--data",
        ])
        .arg(dir.path())
        .env("SIMRELAY_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("simrelay starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let fp_line = lines.next().expect("a line").expect("utf-8");
    let fp = fp_line
        .strip_prefix("tls fingerprint sha256 ")
        .expect("fingerprint line");
    assert_eq!(fp.len(), 64);
    let listen = lines.next().expect("a line").expect("utf-8");
    let url = listen
        .strip_prefix("listening on ")
        .expect("listening line");
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");

    simrelay_server::install_crypto_provider();
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .expect("client");
    let res = client
        .get(format!("{url}/v1/phones"))
        .bearer_auth("cli-key-0123456789abcdef")
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200, "the --api-key account exists");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let exit = child.wait().expect("simrelay exits");
    assert!(exit.success(), "graceful exit: {exit:?}");
}
