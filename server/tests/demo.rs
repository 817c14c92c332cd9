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

/// A request to the demo with its key: (status, JSON body).
async fn call(
    demo: &simrelay_server::sims::demo::Demo,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{path}", demo.server.url))
        .bearer_auth(&demo.api_key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.expect("relay answers");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(serde_json::Value::Null))
}

/// Waits (on the relay's update notices, 30 s at most) until message `id` is in a final state.
async fn final_state(demo: &simrelay_server::sims::demo::Demo, id: &str) -> serde_json::Value {
    let mut updates = demo.server.state.updates.subscribe();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        updates.borrow_and_update();
        let (_, m) = call(
            demo,
            reqwest::Method::GET,
            &format!("/v1/messages/{id}"),
            None,
        )
        .await;
        if ["delivered", "failed", "expired", "cancelled"]
            .contains(&m["state"].as_str().unwrap_or(""))
        {
            return m;
        }
        tokio::time::timeout_at(deadline, updates.changed())
            .await
            .unwrap_or_else(|_| panic!("{id} final in time: {m}"))
            .expect("open");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_switches_bring_an_sms_now_and_make_a_radio_fail() {
    use reqwest::Method;
    use serde_json::json;
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = start(&DemoArgs {
        listen: "127.0.0.1:0".parse().expect("addr"),
        phones: 2,
        api_key: Some("demo-switches-key-0123456789abcdef".into()),
        data: Some(dir.path().to_path_buf()),
    })
    .await
    .expect("demo starts");
    let first = demo.phones[0].0.clone();
    let text = usage(&demo, false);
    assert!(
        text.contains("/v1/demo/incoming")
            && text.contains(&format!("/v1/demo/phones/{first}/radio"))
    );

    // An SMS on request: `inbox/wait` (as the printed example runs it) finds it.
    let sms = json!({"from": "+15550001234", "text": "your code is 4321"});
    let (s, body) = call(&demo, Method::POST, "/v1/demo/incoming", Some(sms)).await;
    assert_eq!((s, body["phone"].as_str()), (202, Some(first.as_str())));
    let (s, got) = call(
        &demo,
        Method::GET,
        "/v1/inbox/wait?contains=4321&timeout=30",
        None,
    )
    .await;
    assert_eq!(s, 200, "{got}");
    assert_eq!(got["text"], "your code is 4321");

    // Bad switches are clear errors.
    for (path, body, status, code) in [
        (
            "/v1/demo/incoming",
            json!({"from": "", "text": "x"}),
            400,
            "invalid_from",
        ),
        (
            "/v1/demo/incoming",
            json!({"from": "+1555", "text": ""}),
            400,
            "invalid_text",
        ),
        (
            "/v1/demo/incoming",
            json!({"from": "+1555", "text": "x", "phone": "nope"}),
            404,
            "not_found",
        ),
        (
            "/v1/demo/incoming",
            json!({"from": "+1555", "txt": "x"}),
            400,
            "invalid_body",
        ),
        (
            "/v1/demo/phones/nope/radio",
            json!({"failing": true}),
            404,
            "not_found",
        ),
        (
            &format!("/v1/demo/phones/{first}/radio"),
            json!({"failing": "yes"}),
            400,
            "invalid_body",
        ),
    ] {
        let (s, got) = call(&demo, Method::POST, path, Some(body.clone())).await;
        assert_eq!(
            (s, got["error"]["code"].as_str()),
            (status, Some(code)),
            "{path} {body}: {got}"
        );
    }

    // The phone the router prefers here takes a probe; then its radio fails.
    let send = |id: &str, pin: Option<&str>| {
        let mut m = json!({"to": ["+15551230001"], "text": "hello", "id": id});
        if let Some(p) = pin {
            m["phone"] = json!(p);
        }
        m
    };
    assert_eq!(
        call(
            &demo,
            Method::POST,
            "/v1/messages",
            Some(send("probe", None))
        )
        .await
        .0,
        202
    );
    assert_eq!(final_state(&demo, "probe").await["state"], "delivered");
    let phones_of = |h: &serde_json::Value, state: &str| -> Vec<String> {
        h["items"]
            .as_array()
            .expect("history items")
            .iter()
            .filter(|i| i["state"] == state)
            .filter_map(|i| i["phone"].as_str().map(String::from))
            .collect()
    };
    let (_, h) = call(&demo, Method::GET, "/v1/messages/probe/history", None).await;
    let preferred = phones_of(&h, "delivered")
        .pop()
        .expect("delivered by a phone");
    let radio = format!("/v1/demo/phones/{preferred}/radio");
    let (s, r) = call(&demo, Method::POST, &radio, Some(json!({"failing": true}))).await;
    assert_eq!((s, &r["failing"]), (200, &json!(true)), "{r}");
    // Sent together, before the phone's first failure is known: a message free to move fails
    // there with "no service" (three attempts), goes back to the router and is delivered by
    // the other phone; one held to the failing phone ends failed.
    for (id, pin) in [("moves", None), ("held", Some(preferred.as_str()))] {
        let (s, _) = call(&demo, Method::POST, "/v1/messages", Some(send(id, pin))).await;
        assert_eq!(s, 202, "{id}");
    }
    let m = final_state(&demo, "moves").await;
    assert_eq!(m["state"], "delivered");
    // Delivered by the other phone, the recipient no longer carries the first phone's error
    // (the history below keeps it).
    let r = &m["recipients"][0];
    assert!(r["error"].is_null() && r["code"].is_null(), "{m}");
    let (_, h) = call(&demo, Method::GET, "/v1/messages/moves/history", None).await;
    let items = h["items"].as_array().expect("history items");
    assert!(
        items
            .iter()
            .any(|i| i["phone"] == preferred.as_str() && i["error"] == "RESULT_ERROR_NO_SERVICE"),
        "{h}"
    );
    let by = phones_of(&h, "delivered");
    assert!(by.len() == 1 && by[0] != preferred, "{h}");
    let m = final_state(&demo, "held").await;
    assert_eq!(m["state"], "failed", "{m}");
    let (s, r) = call(&demo, Method::POST, &radio, Some(json!({"failing": false}))).await;
    assert_eq!((s, &r["failing"]), (200, &json!(false)), "{r}");

    // The relay's own API has no such switches.
    let plain = simrelay_server::app(demo.server.state.clone());
    let req = axum::http::Request::post("/v1/demo/incoming")
        .header("authorization", format!("Bearer {}", demo.api_key))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(r#"{"from":"+1555","text":"x"}"#))
        .expect("request");
    let res = tower::ServiceExt::oneshot(plain, req)
        .await
        .expect("infallible");
    assert_eq!(res.status(), 404);
    for (_, phone, _) in demo.phones {
        phone.shutdown().await;
    }
    demo.server.stop().await.expect("stops");
}

/// The state sequence README's demo section shows for a message (the `# pending -> ...`
/// comment) is the sequence a demo message goes through, as its history records it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_shows_the_states_a_demo_message_goes_through() {
    let readme = include_str!("../../README.md");
    let shown: Vec<&str> = readme
        .lines()
        .find_map(|l| l.split_once("# pending -> ").map(|(_, rest)| rest))
        .map(|rest| {
            std::iter::once("pending")
                .chain(rest.split(" -> ").map(str::trim))
                .collect()
        })
        .expect("README shows the state sequence");
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = start(&DemoArgs {
        listen: "127.0.0.1:0".parse().expect("addr"),
        phones: 1,
        api_key: Some("demo-readme-key-0123456789abcdef".into()),
        data: Some(dir.path().to_path_buf()),
    })
    .await
    .expect("demo starts");
    let m = serde_json::json!({"to": ["+15551230001"], "text": "hello", "id": "hello-1"});
    assert_eq!(
        call(&demo, reqwest::Method::POST, "/v1/messages", Some(m))
            .await
            .0,
        202
    );
    let done = final_state(&demo, "hello-1").await;
    assert_eq!(
        (&done["state"], &done["text"]),
        (&serde_json::json!("delivered"), &serde_json::json!("hello"))
    );
    let (_, h) = call(
        &demo,
        reqwest::Method::GET,
        "/v1/messages/hello-1/history",
        None,
    )
    .await;
    let mut seen: Vec<String> = Vec::new();
    for item in h["items"].as_array().expect("history items") {
        let state = item["state"].as_str().expect("state").to_string();
        if seen.last() != Some(&state) {
            seen.push(state);
        }
    }
    assert_eq!(seen, shown, "README's sequence against the history: {h}");
    assert!(
        usage(&demo, false).contains(&format!("({})", shown.join(" -> "))),
        "the demo prints the same sequence"
    );
    for (_, phone, _) in demo.phones {
        phone.shutdown().await;
    }
    demo.server.stop().await.expect("stops");
}
