//! `simrelay demo`: the relay and its simulated phones come up paired and online, a message
//! is delivered, and the printed examples use the demo's address and key.

use std::time::Duration;

use simrelay_server::sims::demo::{DemoArgs, start, usage};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_phones_deliver() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = DemoArgs {
        listen: "127.0.0.1:0".parse().expect("addr"),
        phones: 2,
        api_key: None,
        data: Some(dir.path().to_path_buf()),
    };
    let demo = start(&args).await.expect("demo starts");
    let text = usage(&demo, true);
    assert!(text.contains(&demo.server.url));
    assert!(text.contains(&format!("api key: {}", demo.api_key)));
    assert!(text.contains(&format!(
        "export URL={} KEY={}",
        demo.server.url, demo.api_key
    )));
    assert!(
        demo.temp_data.is_none(),
        "a given --data is the user's to keep"
    );

    let http = reqwest::Client::new();
    let url = &demo.server.url;
    let res = http
        .post(format!("{url}/v1/messages"))
        .bearer_auth(&demo.api_key)
        .json(&serde_json::json!({"to": ["+15551230001"], "text": "demo", "id": "d1"}))
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), 202);
    let mut updates = demo.server.state.updates.subscribe();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        updates.borrow_and_update();
        let m: serde_json::Value = http
            .get(format!("{url}/v1/messages/d1"))
            .bearer_auth(&demo.api_key)
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        if m["state"] == "delivered" {
            break;
        }
        tokio::time::timeout_at(deadline, updates.changed())
            .await
            .expect("delivered in time")
            .expect("open");
    }
    assert_eq!(demo.server.state.hub.connected_count(), 2);
    for (_, phone, _) in demo.phones {
        phone.shutdown().await;
    }
    demo.server.stop().await.expect("stops");
}

/// Without `--data` the demo works in a fresh temp directory and removes it when it ends.
#[test]
fn the_demo_removes_its_temporary_data_on_exit() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let tmp = tempfile::tempdir().expect("tempdir");
    let demo_dirs = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(tmp.path())
            .expect("read tmp")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.to_string_lossy().contains("simrelay-demo-"))
            .collect()
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_simrelay"))
        .args(["demo", "--listen", "127.0.0.1:0", "--phones", "1"])
        .env("TMPDIR", tmp.path())
        .env("SIMRELAY_LOG", "warn")
        .env_remove("SIMRELAY_API_KEY")
        .stdout(Stdio::piped())
        .spawn()
        .expect("simrelay demo starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("a line").expect("utf-8");
    assert!(first.starts_with("listening on "), "{first}");
    let dirs = demo_dirs();
    assert_eq!(dirs.len(), 1, "the demo's data is under TMPDIR: {dirs:?}");
    assert!(dirs[0].join("relay.sqlite").exists());

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    assert!(child.wait().expect("exits").success());
    assert!(demo_dirs().is_empty(), "left behind: {:?}", demo_dirs());
}
