//! `simrelay send|status|wait-sms`, run as the built binary against a demo relay (real
//! simulated phones, real HTTP): a message sent from the shell reaches `delivered`, an SMS
//! arriving while `wait-sms` waits is printed as JSON, a wait without one exits 1, and the
//! URL and key come from flags, the environment or a config file.

use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use simrelay_server::sims::demo::{Demo, DemoArgs};

async fn demo(dir: &std::path::Path) -> Demo {
    simrelay_server::sims::demo::start(&DemoArgs {
        listen: "127.0.0.1:0".parse().expect("addr"),
        phones: 1,
        api_key: Some("cli-api-key-0123456789abcdef".into()),
        data: Some(dir.to_path_buf()),
    })
    .await
    .expect("demo starts")
}

/// `simrelay ARGS` with a clean environment plus `env`.
fn cmd(args: &[&str], env: &[(&str, &str)]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_simrelay"));
    c.args(args)
        .env("SIMRELAY_LOG", "warn")
        .env_remove("SIMRELAY_URL")
        .env_remove("SIMRELAY_KEY")
        .env_remove("SIMRELAY_CONFIG")
        .env("HOME", "/nonexistent")
        .kill_on_drop(true);
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

async fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    cmd(args, env).output().await.expect("simrelay runs")
}

fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_then_status_follows_the_message_to_delivered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = demo(dir.path()).await;
    let (url, key) = (demo.server.url.clone(), demo.api_key.clone());
    let flags = ["--url", url.as_str(), "--key", key.as_str()];

    let mut args = vec![
        "send",
        "--to",
        "+15551230001",
        "--to",
        "+15551230002",
        "--text",
        "hello",
        "--id",
        "cli-1",
    ];
    args.extend(flags);
    let sent = json_of(&run(&args, &[]).await);
    assert_eq!(sent["id"], "cli-1");
    assert_eq!(sent["recipients"].as_array().expect("recipients").len(), 2);

    // The state moves on; wait for `delivered`, reading again after each relay update.
    let mut updates = demo.server.state.updates.subscribe();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut seen: Vec<String> = Vec::new();
    loop {
        updates.borrow_and_update();
        let mut args = vec!["status", "cli-1"];
        args.extend(flags);
        let view = json_of(&run(&args, &[]).await);
        let state = view["state"].as_str().expect("state").to_string();
        if seen.last() != Some(&state) {
            seen.push(state.clone());
        }
        if state == "delivered" {
            break;
        }
        tokio::time::timeout_at(deadline, updates.changed())
            .await
            .unwrap_or_else(|_| panic!("delivered in time; states: {seen:?}"))
            .expect("open");
    }
    eprintln!("states seen: {seen:?}");

    // An unknown id is the relay's 404, on stderr, with a failing exit code.
    let mut args = vec!["status", "no-such-id"];
    args.extend(flags);
    let out = run(&args, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("404") && err.contains("not_found"), "{err}");
    demo.server.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_sms_prints_the_sms_or_exits_1_on_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = demo(dir.path()).await;
    let (url, key) = (demo.server.url.clone(), demo.api_key.clone());
    let env = [
        ("SIMRELAY_URL", url.as_str()),
        ("SIMRELAY_KEY", key.as_str()),
    ];

    // Started before the SMS exists; the `+` of the number reaches the relay intact.
    let waiting = cmd(
        &[
            "wait-sms",
            "--contains",
            "4321",
            "--from",
            "+15550001234",
            "--timeout",
            "30",
        ],
        &env,
    )
    .output();
    let waiting = tokio::spawn(waiting);
    let modem = &demo.phones[0].2;
    modem.inject_incoming(Some(1), "+15550001234", "your code is 4321");
    let out = waiting.await.expect("joined").expect("simrelay runs");
    let sms = json_of(&out);
    assert_eq!(sms["text"], "your code is 4321");
    assert_eq!(sms["from"], "+15550001234");

    // Nothing matches: exit code 1 after the timeout, the reason on stderr.
    let out = run(&["wait-sms", "--contains", "nope", "--timeout", "1"], &env).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no matching SMS"), "{err}");

    // A wrong key is not a timeout: exit code 2.
    let out = run(
        &[
            "wait-sms",
            "--url",
            &url,
            "--key",
            "wrong-key-0123456789abcdef",
            "--timeout",
            "1",
        ],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("401"), "{err}");
    demo.server.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_and_key_come_from_a_config_file_and_flags_win() {
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = demo(dir.path()).await;
    let (url, key) = (demo.server.url.clone(), demo.api_key.clone());
    let file = dir.path().join("cli.toml");
    std::fs::write(&file, format!("url = \"{url}\"\nkey = \"{key}\"\n")).expect("write");
    let config = file.to_str().expect("utf-8");

    let sent = json_of(
        &run(
            &[
                "send",
                "--config",
                config,
                "--to",
                "+15551230001",
                "--text",
                "hi",
            ],
            &[],
        )
        .await,
    );
    let id = sent["id"].as_str().expect("id");
    let view = json_of(&run(&["status", id], &[("SIMRELAY_CONFIG", config)]).await);
    assert_eq!(view["id"], id);

    // A key flag overrides the file's.
    let out = run(
        &[
            "status",
            id,
            "--config",
            config,
            "--key",
            "wrong-key-0123456789",
        ],
        &[],
    )
    .await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));

    // Nothing anywhere: a clear message naming the three places.
    let out = run(&["status", id], &[]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--url") && err.contains("SIMRELAY_URL"),
        "{err}"
    );
    demo.server.stop().await.expect("stops");
}
