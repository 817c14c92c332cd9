//! HTTP API through `app(state).oneshot(..)`: sending, idempotency, reading, listing,
//! cancelling, tenant isolation, and every bad-input case (4xx, JSON error, nothing stored).

mod common;

use axum::http::StatusCode;
use common::{KEY_A, KEY_B, assert_error, call, state};
use serde_json::json;

async fn stored_count(st: &simrelay_server::AppState, key: &str) -> usize {
    let (s, v) = call(st, "GET", "/v1/messages?limit=500", Some(key), None).await;
    assert_eq!(s, StatusCode::OK);
    v["items"].as_array().expect("items").len()
}

#[tokio::test]
async fn send_read_list_and_idempotent_resend() {
    let dir = tempfile::tempdir().expect("tempdir");
    let st = state(dir.path()).await;
    let body = json!({"to": ["+15551230001", "+15551230002"], "text": "hello", "id": "order-1"});
    let (s, v) = call(
        &st,
        "POST",
        "/v1/messages",
        Some(KEY_A),
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["id"], "order-1");
    assert_eq!(v["state"], "pending");
    assert_eq!(v["recipients"][1]["to"], "+15551230002");
    assert_eq!(v["recipients"][1]["state"], "pending");

    // Same id and body: the same message, nothing new.
    let (s2, v2) = call(
        &st,
        "POST",
        "/v1/messages",
        Some(KEY_A),
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(s2, StatusCode::ACCEPTED);
    assert_eq!(v2["id"], "order-1");
    assert_eq!(v2["created_at"], v["created_at"]);
    assert_eq!(stored_count(&st, KEY_A).await, 1);

    // Same id, other body: 409, nothing changed.
    let other = json!({"to": ["+15551230001"], "text": "different", "id": "order-1"});
    let (s3, v3) = call(
        &st,
        "POST",
        "/v1/messages",
        Some(KEY_A),
        Some(&other.to_string()),
    )
    .await;
    assert_error(s3, &v3, StatusCode::CONFLICT, "id_conflict");
    assert_eq!(stored_count(&st, KEY_A).await, 1);

    let (s, got) = call(&st, "GET", "/v1/messages/order-1", Some(KEY_A), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got["recipients"].as_array().expect("recipients").len(), 2);

    // Generated ids, and cursor pagination over three messages.
    for i in 0..2 {
        let b = json!({"to": ["+15551230009"], "text": format!("m{i}")});
        let (s, v) = call(
            &st,
            "POST",
            "/v1/messages",
            Some(KEY_A),
            Some(&b.to_string()),
        )
        .await;
        assert_eq!(s, StatusCode::ACCEPTED);
        assert!(v["id"].as_str().is_some_and(|id| id.len() >= 32));
    }
    let (_, page1) = call(&st, "GET", "/v1/messages?limit=2", Some(KEY_A), None).await;
    assert_eq!(page1["items"].as_array().expect("items").len(), 2);
    let cursor = page1["next_cursor"].as_str().expect("a next cursor");
    let (_, page2) = call(
        &st,
        "GET",
        &format!("/v1/messages?limit=2&cursor={cursor}"),
        Some(KEY_A),
        None,
    )
    .await;
    assert_eq!(page2["items"].as_array().expect("items").len(), 1);
    assert!(page2["next_cursor"].is_null());
    let (_, pending) = call(&st, "GET", "/v1/messages?state=pending", Some(KEY_A), None).await;
    assert_eq!(pending["items"].as_array().expect("items").len(), 3);
    let (_, sent) = call(&st, "GET", "/v1/messages?state=sent", Some(KEY_A), None).await;
    assert_eq!(sent["items"].as_array().expect("items").len(), 0);

    // `to`: the messages with a recipient of that number, with `+` encoded or not.
    let ids = |page: &serde_json::Value| -> Vec<String> {
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|m| m["id"].as_str().expect("id").to_string())
            .collect()
    };
    for q in ["to=%2B15551230002", "to=+15551230002"] {
        let (s, v) = call(&st, "GET", &format!("/v1/messages?{q}"), Some(KEY_A), None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(ids(&v), ["order-1"], "{q}");
    }
    let (_, nine) = call(
        &st,
        "GET",
        "/v1/messages?to=%2B15551230009&limit=1",
        Some(KEY_A),
        None,
    )
    .await;
    assert_eq!(ids(&nine).len(), 1, "paged like the rest");
    assert!(nine["next_cursor"].is_string());
    let (_, none) = call(
        &st,
        "GET",
        "/v1/messages?to=%2B15550000000",
        Some(KEY_A),
        None,
    )
    .await;
    assert!(ids(&none).is_empty());
    let (s, v) = call(&st, "GET", "/v1/messages?to=5551230002", Some(KEY_A), None).await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "invalid_query");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("E.164")),
        "{v}"
    );
}

#[tokio::test]
async fn tenants_are_isolated_with_404() {
    let dir = tempfile::tempdir().expect("tempdir");
    let st = state(dir.path()).await;
    let body = json!({"to": ["+15551230001"], "text": "secret", "id": "shared-id"});
    let (s, _) = call(
        &st,
        "POST",
        "/v1/messages",
        Some(KEY_A),
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);

    let (s, v) = call(&st, "GET", "/v1/messages/shared-id", Some(KEY_B), None).await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "not_found");
    let (s, v) = call(&st, "DELETE", "/v1/messages/shared-id", Some(KEY_B), None).await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(stored_count(&st, KEY_B).await, 0);

    // B may use the same client id for its own message.
    let (s, _) = call(
        &st,
        "POST",
        "/v1/messages",
        Some(KEY_B),
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (_, a) = call(&st, "GET", "/v1/messages/shared-id", Some(KEY_A), None).await;
    assert_eq!(a["state"], "pending", "A's message is untouched");
}

#[tokio::test]
async fn cancel_before_routing_is_local() {
    let dir = tempfile::tempdir().expect("tempdir");
    let st = state(dir.path()).await;
    let body = json!({"to": ["+15551230001"], "text": "x", "id": "c1"});
    call(
        &st,
        "POST",
        "/v1/messages",
        Some(KEY_A),
        Some(&body.to_string()),
    )
    .await;
    let (s, v) = call(&st, "DELETE", "/v1/messages/c1", Some(KEY_A), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "cancelled");
    assert_eq!(v["recipients"][0]["state"], "cancelled");
    let (s, v) = call(&st, "DELETE", "/v1/messages/c1", Some(KEY_A), None).await;
    assert_error(s, &v, StatusCode::CONFLICT, "not_cancellable");
}

#[tokio::test]
async fn the_history_of_a_cancelled_message_shows_each_change_and_only_to_its_account() {
    let dir = tempfile::tempdir().expect("tempdir");
    let st = state(dir.path()).await;
    let body = json!({"to": ["+15551230001", "+15551230002"], "text": "x", "id": "h1"});
    call(
        &st,
        "POST",
        "/v1/messages",
        Some(KEY_A),
        Some(&body.to_string()),
    )
    .await;
    call(&st, "DELETE", "/v1/messages/h1", Some(KEY_A), None).await;
    let (s, v) = call(&st, "GET", "/v1/messages/h1/history", Some(KEY_A), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let items = v["items"].as_array().expect("items");
    let seen: Vec<(u64, &str)> = items
        .iter()
        .map(|i| {
            (
                i["idx"].as_u64().expect("idx"),
                i["state"].as_str().expect("state"),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (0, "pending"),
            (0, "cancelled"),
            (1, "pending"),
            (1, "cancelled")
        ]
    );
    assert!(items.iter().all(|i| i["at"].is_string()), "{v}");
    assert_eq!(v["next_cursor"], serde_json::Value::Null);
    let (s, v) = call(&st, "GET", "/v1/messages/h1/history", Some(KEY_B), None).await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "not_found");
    let (s, v) = call(&st, "GET", "/v1/messages/nope/history", Some(KEY_A), None).await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let st = state(dir.path()).await;
    let long_text = "a".repeat(1601);
    let many: Vec<String> = (0..1001).map(|i| format!("+1555{i:07}")).collect();
    let cases: Vec<(String, StatusCode, &str)> = vec![
        ("{\"to\": [".into(), StatusCode::BAD_REQUEST, "invalid_json"),
        (
            json!({"to": ["+15551230001"], "text": "x", "colour": "red"}).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            json!({"to": "+15551230001", "text": "x"}).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            json!({"text": "x"}).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            json!({"to": ["5551230001"], "text": "x"}).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_number",
        ),
        (
            json!({"to": ["+0551230001"], "text": "x"}).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_number",
        ),
        (
            json!({"to": ["+15551230001", "+15551230001"], "text": "x"}).to_string(),
            StatusCode::BAD_REQUEST,
            "duplicate_recipient",
        ),
        (
            json!({"to": [], "text": "x"}).to_string(),
            StatusCode::BAD_REQUEST,
            "no_recipients",
        ),
        (
            json!({"to": many, "text": "x"}).to_string(),
            StatusCode::BAD_REQUEST,
            "too_many_recipients",
        ),
        (
            json!({"to": ["+15551230001"], "text": ""}).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_text",
        ),
        (
            json!({"to": ["+15551230001"], "text": long_text}).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_text",
        ),
        (
            json!({"to": ["+15551230001"], "text": "x", "id": "a b"}).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_id",
        ),
        (
            json!({"to": ["+15551230001"], "text": "x", "valid_until": "tomorrow"}).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_time",
        ),
        (
            json!({"to": ["+15551230001"], "text": "x", "valid_until": "2001-01-01T00:00:00Z"})
                .to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_time",
        ),
        (
            json!({"to": ["+15551230001"], "text": "x", "priority": 500}).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_priority",
        ),
        (
            json!({"to": ["+15551230001"], "text": "x", "phone": "not-mine"}).to_string(),
            StatusCode::BAD_REQUEST,
            "unknown_phone",
        ),
        (
            format!(
                "{{\"to\": [\"+15551230001\"], \"text\": \"{}\"}}",
                "a".repeat(1024 * 1024)
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ),
    ];
    for (body, status, code) in &cases {
        let (s, v) = call(&st, "POST", "/v1/messages", Some(KEY_A), Some(body)).await;
        assert_error(s, &v, *status, code);
        let msg = v["error"]["message"].as_str().expect("message");
        assert!(
            !msg.contains("5551230001") && !msg.contains("0551230001"),
            "no numbers echoed: {msg}"
        );
    }
    // An invalid type never echoes the value.
    let (s, v) = call(
        &st,
        "POST",
        "/v1/messages",
        Some(KEY_A),
        Some(&json!({"to": ["+15551230001"], "text": 15551230001_u64}).to_string()),
    )
    .await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "invalid_body");
    assert!(!v.to_string().contains("15551230001"), "{v}");

    // Keys and content type.
    let ok = json!({"to": ["+15551230001"], "text": "x"}).to_string();
    let (s, v) = call(&st, "POST", "/v1/messages", None, Some(&ok)).await;
    assert_error(s, &v, StatusCode::UNAUTHORIZED, "unauthorized");
    let (s, v) = call(&st, "POST", "/v1/messages", Some("wrong-key"), Some(&ok)).await;
    assert_error(s, &v, StatusCode::UNAUTHORIZED, "unauthorized");
    let (s, v) = call(&st, "GET", "/v1/messages?colour=red", Some(KEY_A), None).await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "invalid_query");
    let (s, v) = call(&st, "GET", "/v1/messages?state=lost", Some(KEY_A), None).await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "invalid_query");
    let (s, v) = call(&st, "GET", "/v1/nothing-here", Some(KEY_A), None).await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "not_found");
    let (s, v) = call(&st, "PUT", "/v1/messages", Some(KEY_A), None).await;
    assert_error(s, &v, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    let (s, v) = call(&st, "GET", "/v1/link", None, None).await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "not_websocket");
    let req = axum::http::Request::builder()
        .method("POST")
        .uri("/v1/messages")
        .header("authorization", format!("Bearer {KEY_A}"))
        .header("content-type", "text/plain")
        .body(axum::body::Body::from(ok))
        .expect("request");
    let res = tower::ServiceExt::oneshot(simrelay_server::app(st.clone()), req)
        .await
        .expect("infallible");
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    assert_eq!(stored_count(&st, KEY_A).await, 0, "nothing was stored");
}

#[tokio::test]
async fn webhooks_pairing_codes_phones_and_health() {
    let dir = tempfile::tempdir().expect("tempdir");
    let st = state(dir.path()).await;
    let (s, v) = call(
        &st,
        "POST",
        "/v1/webhooks",
        Some(KEY_A),
        Some(
            &json!({"url": "http://127.0.0.1:9/hook", "events": ["message.sent", "phone.online"]})
                .to_string(),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().expect("id").to_string();
    assert!(v["secret"].as_str().is_some_and(|s| s.len() >= 32));
    let (s, v) = call(
        &st,
        "POST",
        "/v1/webhooks",
        Some(KEY_A),
        Some(&json!({"url": "ftp://x", "events": ["message.sent"]}).to_string()),
    )
    .await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "invalid_url");
    let (s, v) = call(
        &st,
        "POST",
        "/v1/webhooks",
        Some(KEY_A),
        Some(&json!({"url": "http://127.0.0.1:9/", "events": ["sms:sent"]}).to_string()),
    )
    .await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "invalid_event");
    let (_, list) = call(&st, "GET", "/v1/webhooks", Some(KEY_A), None).await;
    assert_eq!(list["items"].as_array().expect("items").len(), 1);
    assert!(
        list["items"][0].get("secret").is_none(),
        "the secret is shown once"
    );
    let (_, other) = call(&st, "GET", "/v1/webhooks", Some(KEY_B), None).await;
    assert_eq!(other["items"].as_array().expect("items").len(), 0);
    let (s, _) = call(
        &st,
        "DELETE",
        &format!("/v1/webhooks/{id}"),
        Some(KEY_B),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(
        &st,
        "DELETE",
        &format!("/v1/webhooks/{id}"),
        Some(KEY_A),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);

    let (s, v) = call(&st, "POST", "/v1/pairing-codes", Some(KEY_A), None).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(v["code"].as_str().expect("code").len(), 8);
    assert!(v["ws_url"].as_str().expect("url").starts_with("ws://"));
    assert!(v["link_url"].as_str().expect("url").ends_with("/v1/link"));
    let (s, v) = call(&st, "GET", "/v1/phones", Some(KEY_A), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["items"].as_array().expect("items").len(), 0);

    let (s, _) = call(&st, "GET", "/healthz", None, None).await;
    assert_eq!(s, StatusCode::OK);
    call(
        &st,
        "POST",
        "/v1/messages",
        Some(KEY_A),
        Some(&json!({"to": ["+15551230001"], "text": "x"}).to_string()),
    )
    .await;
    // Every figure needs an admin key (or the metrics token).
    let admin = st
        .take_generated_admin_key()
        .expect("generated at first start");
    let req = axum::http::Request::builder()
        .uri("/metrics")
        .header("authorization", format!("Bearer {admin}"))
        .body(axum::body::Body::empty())
        .expect("req");
    let res = tower::ServiceExt::oneshot(simrelay_server::app(st.clone()), req)
        .await
        .expect("infallible");
    let text = http_body_util::BodyExt::collect(res.into_body())
        .await
        .expect("body")
        .to_bytes();
    let text = String::from_utf8_lossy(&text);
    assert!(
        text.contains("simrelay_messages{state=\"pending\"} 1"),
        "{text}"
    );
    assert!(text.contains("simrelay_phones_online 0"));
}

#[tokio::test]
async fn inbox_is_empty_and_wait_times_out_with_408() {
    let dir = tempfile::tempdir().expect("tempdir");
    let st = state(dir.path()).await;
    let (s, v) = call(&st, "GET", "/v1/inbox", Some(KEY_A), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["items"].as_array().expect("items").len(), 0);
    let (s, v) = call(&st, "GET", "/v1/inbox/wait?timeout=0", Some(KEY_A), None).await;
    assert_error(s, &v, StatusCode::REQUEST_TIMEOUT, "wait_timeout");
    let (s, v) = call(&st, "GET", "/v1/inbox/wait?timeout=301", Some(KEY_A), None).await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "invalid_query");
}

/// Issue 15: list envelopes are one shape, `{"items": [...], "next_cursor": ...}`, whether the
/// list is paged or not (`GET /v1/pools` answered `{"pools": [...]}` before).
#[tokio::test]
async fn every_list_answers_the_same_envelope() {
    let dir = tempfile::tempdir().expect("tempdir");
    let st = state(dir.path()).await;
    for path in [
        "/v1/messages",
        "/v1/inbox",
        "/v1/phones",
        "/v1/pools",
        "/v1/keys",
        "/v1/webhooks",
    ] {
        let (s, v) = call(&st, "GET", path, Some(KEY_A), None).await;
        assert_eq!(s, StatusCode::OK, "{path}: {v}");
        let keys: Vec<&str> = v
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["items", "next_cursor"], "{path}: {v}");
        assert!(v["items"].is_array(), "{path}: {v}");
        assert!(v["next_cursor"].is_null(), "{path}: {v}");
    }
}

/// Issue 15: a wrong-type error names the field (docs/protocol.md, "Errors"), in a body and in
/// a query string, without quoting the value.
#[tokio::test]
async fn a_wrong_type_names_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let st = state(dir.path()).await;
    let cases = [
        (
            r#"{"to": ["+15551230001"], "text": "hi", "priority": "high"}"#,
            "priority",
        ),
        (
            r#"{"to": ["+15551230001", 15551230002], "text": "hi"}"#,
            "to[1]",
        ),
        (r#"{"to": ["+15551230001"], "text": 5}"#, "text"),
    ];
    for (body, field) in cases {
        let (s, v) = call(&st, "POST", "/v1/messages", Some(KEY_A), Some(body)).await;
        assert_error(s, &v, StatusCode::BAD_REQUEST, "invalid_body");
        let message = v["error"]["message"].as_str().expect("a message");
        assert!(
            message.starts_with(&format!("{field} has the wrong type")),
            "{body}: {message}"
        );
        assert!(
            !message.contains("high") && !message.contains("1555"),
            "{message}"
        );
    }
    let (s, v) = call(&st, "GET", "/v1/messages?limit=abc", Some(KEY_A), None).await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "invalid_query");
    let message = v["error"]["message"].as_str().expect("a message");
    assert!(message.starts_with("limit has the wrong type"), "{message}");
    assert_eq!(stored_count(&st, KEY_A).await, 0, "nothing stored");
}
