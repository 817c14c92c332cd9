//! `simrelay demo`: the relay and its simulated phones come up paired and online, a message
//! is delivered, and the printed examples use the demo's address and key.

use std::time::Duration;

use simrelay_server::demo::{DemoArgs, start, usage};

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
