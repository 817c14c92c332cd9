//! `/v1/pools` and `/v1/sims` over `app().oneshot()`: creating, listing and deleting pools,
//! SIM settings, figures, and a JSON 4xx for every bad input with nothing changed.

mod common;

use axum::http::StatusCode;
use common::{KEY_A, KEY_B, assert_error, call, state};
use serde_json::json;
use simrelay_server::AppState;

/// Pairs a phone to account A directly in the store; returns its id.
async fn phone(st: &AppState, n: u32) -> String {
    let (s, code) = call(st, "POST", "/v1/pairing-codes", Some(KEY_A), None).await;
    assert_eq!(s, StatusCode::CREATED, "{code}");
    let code = code["code"].as_str().expect("code").to_string();
    let hash =
        simrelay_server::api::hash_secret(&simrelay_server::api::phones::normalize_code(&code));
    let id = format!("phone-{n}");
    let token = simrelay_server::api::hash_secret(&format!("token-{n}"));
    let now = simrelay_server::store::now_ms();
    let pid = id.clone();
    st.db
        .call(move |s| s.pair_phone(&hash, &pid, &token, None, now))
        .await
        .expect("paired")
        .expect("code valid");
    id
}

async fn pools(st: &AppState) -> serde_json::Value {
    let (s, v) = call(st, "GET", "/v1/pools", Some(KEY_A), None).await;
    assert_eq!(s, StatusCode::OK);
    v
}

#[tokio::test]
async fn pools_are_created_listed_and_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let st = state(dir.path()).await;
    let (a, b) = (phone(&st, 1).await, phone(&st, 2).await);
    let body = json!({"name": "eu-rack", "members": [{"phone": a, "sub_id": 1}, {"phone": b, "sub_id": 2}],
        "prefixes": [{"prefix": "+44", "sims": [{"phone": b, "sub_id": 2}]}], "sticky": true});
    let (s, v) = call(
        &st,
        "POST",
        "/v1/pools",
        Some(KEY_A),
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["members"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["prefixes"][0]["prefix"], "+44");
    let listed = pools(&st).await;
    assert_eq!(listed["items"][0]["name"], "eu-rack");
    assert_eq!(listed["items"][0]["sticky"], true);
    let (s, v) = call(
        &st,
        "POST",
        "/v1/pools",
        Some(KEY_A),
        Some(&body.to_string()),
    )
    .await;
    assert_error(s, &v, StatusCode::CONFLICT, "pool_exists");
    let (s, v) = call(&st, "GET", "/v1/pools", Some(KEY_B), None).await;
    assert_eq!(
        (s, v["items"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(0))
    );
    let (s, v) = call(&st, "GET", "/v1/pools/eu-rack/stats", Some(KEY_A), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["totals"]["waiting_recipients"], 0);
    let (s, v) = call(&st, "GET", "/v1/pools/eu-rack/stats", Some(KEY_B), None).await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "not_found");
    let (s, _) = call(&st, "DELETE", "/v1/pools/eu-rack", Some(KEY_B), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "another tenant cannot delete it");
    let (s, _) = call(&st, "DELETE", "/v1/pools/eu-rack", Some(KEY_A), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(pools(&st).await["items"].as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn bad_pools_get_a_json_4xx_and_change_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let st = state(dir.path()).await;
    let a = phone(&st, 1).await;
    let m = |sub: serde_json::Value| json!([{"phone": a, "sub_id": sub}]);
    let cases = [
        (
            json!({"name": "", "members": m(json!(1))}),
            StatusCode::BAD_REQUEST,
            "invalid_pool",
        ),
        (
            json!({"name": "a b", "members": m(json!(1))}),
            StatusCode::BAD_REQUEST,
            "invalid_pool",
        ),
        (
            json!({"name": "p", "members": []}),
            StatusCode::BAD_REQUEST,
            "invalid_pool",
        ),
        (
            json!({"name": "p", "members": m(json!(-1))}),
            StatusCode::BAD_REQUEST,
            "invalid_sim",
        ),
        (
            json!({"name": "p", "members": m(json!(1u64 << 40))}),
            StatusCode::BAD_REQUEST,
            "invalid_sim",
        ),
        (
            json!({"name": "p", "members": m(json!("one"))}),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            json!({"name": "p", "members": [{"phone": "nope", "sub_id": 1}]}),
            StatusCode::BAD_REQUEST,
            "unknown_phone",
        ),
        (
            json!({"name": "p", "members": m(json!(1)), "prefixes": [{"prefix": "44", "sims": m(json!(1))}]}),
            StatusCode::BAD_REQUEST,
            "invalid_prefix",
        ),
        (
            json!({"name": "p", "members": m(json!(1)), "prefixes": [{"prefix": "+44", "sims": m(json!(2))}]}),
            StatusCode::BAD_REQUEST,
            "invalid_prefix",
        ),
        (
            json!({"name": "p", "members": m(json!(1)), "colour": "red"}),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
    ];
    for (body, status, code) in cases {
        let (s, v) = call(
            &st,
            "POST",
            "/v1/pools",
            Some(KEY_A),
            Some(&body.to_string()),
        )
        .await;
        assert_eq!(v["error"]["code"], code, "{body}");
        assert_error(s, &v, status, code);
    }
    assert_eq!(
        pools(&st).await["items"].as_array().map(Vec::len),
        Some(0),
        "nothing stored"
    );
    // A message for an unknown pool.
    let body = json!({"to": ["+15550001"], "text": "hi", "pool": "nope"});
    let (s, v) = call(
        &st,
        "POST",
        "/v1/messages",
        Some(KEY_A),
        Some(&body.to_string()),
    )
    .await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "unknown_pool");
    let body = json!({"to": ["+15550001"], "text": "hi", "pool": "p", "phone": a});
    let (s, v) = call(
        &st,
        "POST",
        "/v1/messages",
        Some(KEY_A),
        Some(&body.to_string()),
    )
    .await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "invalid_target");
    let (s, v) = call(&st, "GET", "/v1/messages", Some(KEY_A), None).await;
    assert_eq!(
        (s, v["items"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(0))
    );
}

#[tokio::test]
async fn sim_settings_are_patched_and_bad_ones_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let st = state(dir.path()).await;
    let a = phone(&st, 1).await;
    let path = format!("/v1/sims/{a}/1");
    let body = json!({"daily_cap": 300, "hours": "08:00-20:00", "utc_offset_min": 60});
    let (s, v) = call(&st, "PATCH", &path, Some(KEY_A), Some(&body.to_string())).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["daily_cap"].clone(), v["hours"].clone()),
        (json!(300), json!("08:00-20:00"))
    );
    let (s, v) = call(
        &st,
        "PATCH",
        &path,
        Some(KEY_A),
        Some(r#"{"daily_cap": null}"#),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["daily_cap"], json!(null));
    assert_eq!(v["hours"], "08:00-20:00", "absent fields keep their value");
    let bad = [
        (
            format!("/v1/sims/{a}/x"),
            r#"{"daily_cap": 1}"#,
            StatusCode::BAD_REQUEST,
            "invalid_sim",
        ),
        (
            format!("/v1/sims/{a}/-2"),
            r#"{"daily_cap": 1}"#,
            StatusCode::BAD_REQUEST,
            "invalid_sim",
        ),
        (
            path.clone(),
            r#"{"hours": "25:00-26:00"}"#,
            StatusCode::BAD_REQUEST,
            "invalid_hours",
        ),
        (
            path.clone(),
            r#"{"hours": "08:00-08:00"}"#,
            StatusCode::BAD_REQUEST,
            "invalid_hours",
        ),
        (
            path.clone(),
            r#"{"utc_offset_min": 900}"#,
            StatusCode::BAD_REQUEST,
            "invalid_hours",
        ),
        (
            "/v1/sims/nope/1".to_string(),
            r#"{"daily_cap": 1}"#,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ];
    for (p, body, status, code) in bad {
        let (s, v) = call(&st, "PATCH", &p, Some(KEY_A), Some(body)).await;
        assert_error(s, &v, status, code);
    }
    let (s, v) = call(
        &st,
        "PATCH",
        &path,
        Some(KEY_B),
        Some(r#"{"daily_cap": 1}"#),
    )
    .await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "not_found");
    let (s, v) = call(&st, "PATCH", &path, Some(KEY_A), Some(r#"{"cap": 1}"#)).await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "invalid_body");
    // Nothing changed by the refused requests.
    let (s, v) = call(&st, "GET", "/v1/sims", Some(KEY_A), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let again = call(&st, "PATCH", &path, Some(KEY_A), Some("{}")).await.1;
    assert_eq!(
        (
            again["daily_cap"].clone(),
            again["hours"].clone(),
            again["utc_offset_min"].clone()
        ),
        (json!(null), json!("08:00-20:00"), json!(60))
    );
}
