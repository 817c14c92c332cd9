//! SIMs that can never be routed, against a running relay: a message pinned to a `sim` its
//! phone does not report (or that no phone of the account reports), a negative `sim`, and a
//! pool member no phone reports are refused with a 400 at once, instead of waiting for their
//! validity to run out. A phone that has reported no SIM yet may still have it.

mod common;

use common::{Http, KEY_A, RawPhone, paired_phone};
use serde_json::{Value, json};

async fn count_messages(http: &Http) -> usize {
    let (st, v) = http.req("GET", "/v1/messages?limit=500", KEY_A, None).await;
    assert_eq!(st, 200, "{v}");
    v["items"].as_array().map_or(0, Vec::len)
}

async fn refused(http: &Http, path: &str, body: Value, code: &str) {
    let (st, v) = http.req("POST", path, KEY_A, Some(body.clone())).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (400, Some(code)),
        "{body}: {v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sims_no_phone_reports_are_refused_at_submit_and_pool_creation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = common::server(dir.path(), |_| {}).await;
    let http = Http::new(&server.url);
    let ws = server.ws_url();
    let msg = |extra: Value| {
        let mut m = json!({"to": ["+15551230001"], "text": "hi"});
        for (k, v) in extra.as_object().expect("object") {
            m[k] = v.clone();
        }
        m
    };

    // No phone at all: no SIM can be routed.
    refused(&http, "/v1/messages", msg(json!({"sim": 1})), "unknown_sim").await;

    // A phone that reports SIM 1 only (common::status()).
    let (id, token) = paired_phone(&http, &ws, KEY_A).await;
    let (_link, _) = RawPhone::hello(&ws, &token, 0).await;
    for extra in [
        json!({"sim": 9}),
        json!({"phone": id, "sim": 9}),
        json!({"phone": id, "sim": 2}),
    ] {
        refused(&http, "/v1/messages", msg(extra), "unknown_sim").await;
    }
    for extra in [json!({"sim": -1}), json!({"phone": id, "sim": -1})] {
        refused(&http, "/v1/messages", msg(extra), "invalid_sim").await;
    }
    let pool = |sub: i64| json!({"name": "rack", "members": [{"phone": id, "sub_id": sub}]});
    refused(&http, "/v1/pools", pool(9), "unknown_sim").await;
    assert_eq!(count_messages(&http).await, 0, "nothing refused was stored");
    let (_, pools) = http.req("GET", "/v1/pools", KEY_A, None).await;
    assert_eq!(pools["items"].as_array().map(Vec::len), Some(0), "{pools}");

    // What the phone reports is accepted.
    for (i, extra) in [json!({"sim": 1}), json!({"phone": id, "sim": 1})]
        .into_iter()
        .enumerate()
    {
        let mut body = msg(extra);
        body["id"] = json!(format!("ok-{i}"));
        let (st, v) = http.req("POST", "/v1/messages", KEY_A, Some(body)).await;
        assert_eq!(st, 202, "{v}");
    }
    let (st, v) = http.req("POST", "/v1/pools", KEY_A, Some(pool(1))).await;
    assert_eq!(st, 201, "{v}");

    // A paired phone that has not connected yet has reported no SIM: it may have SIM 9.
    let (fresh, _) = paired_phone(&http, &ws, KEY_A).await;
    for (i, extra) in [json!({"sim": 9}), json!({"phone": fresh, "sim": 9})]
        .into_iter()
        .enumerate()
    {
        let mut body = msg(extra);
        body["id"] = json!(format!("later-{i}"));
        let (st, v) = http.req("POST", "/v1/messages", KEY_A, Some(body)).await;
        assert_eq!(st, 202, "{v}");
    }
    let later = json!({"name": "later", "members": [{"phone": fresh, "sub_id": 9}]});
    let (st, v) = http.req("POST", "/v1/pools", KEY_A, Some(later)).await;
    assert_eq!(st, 201, "{v}");
    // The reporting phone still refuses what it does not have.
    refused(
        &http,
        "/v1/messages",
        msg(json!({"phone": id, "sim": 9})),
        "unknown_sim",
    )
    .await;
    assert_eq!(count_messages(&http).await, 4);
    server.stop().await.expect("stops");
}
