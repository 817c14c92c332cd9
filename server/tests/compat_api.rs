//! The SMS Gateway for Android compatible API (`/3rdparty/v1`) through the relay's router, on
//! SQLite (and PostgreSQL when `SIMRELAY_TEST_DATABASE_URL` is set): users and Basic auth,
//! JWTs and scopes, sends and their checks, the list's filters and total, cancel, settings,
//! webhook registrations and health. The published clients drive a real relay end to end in
//! `scripts/compat-clients.sh`.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use simrelay_server::{AppState, app};
use tower::ServiceExt;

use common::{KEY_A, KEY_B, call, state};

const LOGIN: &str = "alice@example.com";
const PASSWORD: &str = "correct-horse-battery";

fn basic(login: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{login}:{password}"))
    )
}

/// One request with any `Authorization`: (status, headers, JSON body or Null).
async fn req(
    state: &AppState,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let mut r = Request::builder().method(method).uri(path);
    if let Some(a) = auth {
        r = r.header("authorization", a);
    }
    if body.is_some() {
        r = r.header("content-type", "application/json");
    }
    let r = r
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .expect("request builds");
    let res = app(state.clone()).oneshot(r).await.expect("infallible");
    let (status, headers) = (res.status(), res.headers().clone());
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    if !bytes.is_empty() {
        let ct = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert!(ct.starts_with("application/json"), "content-type {ct:?}");
    }
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, v)
}

async fn with_user(dir: &std::path::Path) -> (AppState, String) {
    let st = common::state(dir).await;
    let (s, v) = call(
        &st,
        "POST",
        "/v1/users",
        Some(KEY_A),
        Some(&json!({"login": LOGIN, "password": PASSWORD}).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(
        v.get("password").is_none(),
        "a chosen password is not echoed"
    );
    (st, basic(LOGIN, PASSWORD))
}

#[tokio::test]
async fn users_are_created_once_and_basic_auth_checks_the_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (st, auth) = with_user(dir.path()).await;
    let again = json!({"login": LOGIN}).to_string();
    let (s, _) = call(&st, "POST", "/v1/users", Some(KEY_B), Some(&again)).await;
    assert_eq!(s, StatusCode::CONFLICT, "logins are unique across accounts");
    for bad in [
        json!({"login": "a b"}),
        json!({"login": "bob", "password": "short"}),
        json!({"login": "bob", "password": "x", "extra": 1}),
    ] {
        let (s, v) = call(
            &st,
            "POST",
            "/v1/users",
            Some(KEY_A),
            Some(&bad.to_string()),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad} -> {v}");
    }
    let generate = json!({"login": "bob"}).to_string();
    let (s, v) = call(&st, "POST", "/v1/users", Some(KEY_A), Some(&generate)).await;
    assert_eq!(s, StatusCode::CREATED);
    let bob = basic("bob", v["password"].as_str().expect("generated password"));

    let (s, _, v) = req(&st, "GET", "/3rdparty/v1/devices", Some(&auth), None).await;
    assert_eq!((s, v), (StatusCode::OK, json!([])));
    let (s, _, _) = req(&st, "GET", "/3rdparty/v1/devices", Some(&bob), None).await;
    assert_eq!(s, StatusCode::OK);
    let wrong = basic(LOGIN, "correct-horse-batterx");
    let (s, _, v) = req(&st, "GET", "/3rdparty/v1/devices", Some(&wrong), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v["code"], 401);
    assert!(v["message"].as_str().is_some_and(|m| !m.contains(PASSWORD)));
    let (s, _, _) = req(&st, "GET", "/3rdparty/v1/devices", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // An API key is not a compat credential.
    let (s, _, _) = req(
        &st,
        "GET",
        "/3rdparty/v1/devices",
        Some(&format!("Bearer {KEY_A}")),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let (s, _) = call(&st, "DELETE", "/v1/users/bob", Some(KEY_A), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, _) = req(&st, "GET", "/3rdparty/v1/devices", Some(&bob), None).await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "a deleted user is refused at once"
    );
    let (s, v) = call(&st, "GET", "/v1/users", Some(KEY_A), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["items"].as_array().map(Vec::len), Some(1), "{v}");
}

#[tokio::test]
async fn sends_are_checked_listed_with_filters_and_cancelled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (st, auth) = with_user(dir.path()).await;
    let send = |body: Value| {
        let st = st.clone();
        let auth = auth.clone();
        async move {
            req(
                &st,
                "POST",
                "/3rdparty/v1/messages",
                Some(&auth),
                Some(body),
            )
            .await
        }
    };
    for bad in [
        json!({"phoneNumbers": ["+15550001"], "mmsMessage": {"text": "x"}}),
        json!({"phoneNumbers": ["+15550001"], "message": "a", "textMessage": {"text": "b"}}),
        json!({"phoneNumbers": ["5550001"], "textMessage": {"text": "x"}}),
        json!({"phoneNumbers": ["+15550001", "+1 555 0001"], "textMessage": {"text": "x"}}),
        json!({"phoneNumbers": [], "textMessage": {"text": "x"}}),
        json!({"phoneNumbers": ["+15550001"], "textMessage": {"text": ""}}),
        json!({"phoneNumbers": ["+15550001"], "textMessage": {"text": "x"}, "ttl": 60, "validUntil": "2099-01-01T00:00:00Z"}),
        json!({"phoneNumbers": ["+15550001"], "textMessage": {"text": "x"}, "ttl": 1}),
        json!({"phoneNumbers": ["+15550001"], "textMessage": {"text": "x"}, "simNumber": 4}),
        json!({"phoneNumbers": ["+15550001"], "dataMessage": {"data": "!!", "port": 80}}),
        json!({"phoneNumbers": ["+15550001"], "dataMessage": {"data": "AAAA", "port": 0}}),
        json!({"phoneNumbers": ["+15550001"], "textMessage": {"text": "x"}, "scheduleAt": "2000-01-01T00:00:00Z"}),
    ] {
        let (s, _, v) = send(bad.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad} -> {v}");
        assert_eq!(v["code"], 400);
        assert!(
            !v["message"].as_str().unwrap_or("").contains("+1555"),
            "{v}"
        );
    }
    let body = json!({"id": "m1", "phoneNumbers": ["00 1 555 000 1001"], "textMessage": {"text": "hi"},
                      "withDeliveryReport": true, "isEncrypted": false, "priority": 0});
    let (s, h, v) = send(body.clone()).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(h["location"], "/3rdparty/v1/messages/m1");
    assert_eq!(
        v["recipients"],
        json!([{"phoneNumber": "+15550001001", "state": "Pending", "error": null}])
    );
    assert_eq!(
        (v["state"].as_str(), v["isEncrypted"].as_bool()),
        (Some("Pending"), Some(false))
    );
    assert!(
        v["states"]["Pending"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z') && t.len() == 24)
    );
    let (s, _, again) = send(body).await;
    assert_eq!(
        (s, &again["id"]),
        (StatusCode::ACCEPTED, &json!("m1")),
        "a retry is the same message"
    );
    let other =
        json!({"id": "m1", "phoneNumbers": ["+15550001001"], "textMessage": {"text": "changed"}});
    assert_eq!(send(other).await.0, StatusCode::CONFLICT);

    // Ciphertexts pass as they are: no validation, no duplicate check.
    let ct = "$aes-256-cbc/pbkdf2-sha1$i=75000$mYPCszSOVuwwvxZaDuVSEg==$GWPkuAuA1YZd2zJBfDfshw==";
    let enc = json!({"id": "m2", "phoneNumbers": [ct, ct], "textMessage": {"text": ct}, "isEncrypted": true});
    let (s, _, v) = send(enc).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["recipients"][1]["phoneNumber"], ct);
    assert_eq!(v["isEncrypted"], true);
    let legacy = json!({"id": "m3", "phoneNumbers": ["+15550001003"], "message": "legacy"});
    let (s, _, _) = req(
        &st,
        "POST",
        "/3rdparty/v1/message?skipPhoneValidation=false",
        Some(&auth),
        Some(legacy),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let data = json!({"id": "m4", "phoneNumbers": ["+15550001004"], "dataMessage": {"data": "AAEC", "port": 53739}});
    assert_eq!(send(data).await.0, StatusCode::ACCEPTED);

    let (s, h, v) = req(
        &st,
        "GET",
        "/3rdparty/v1/messages?limit=2&offset=1&sort=created_at",
        Some(&auth),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["x-total-count"], "4");
    let ids: Vec<&str> = v
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(ids, ["m2", "m3"]);
    let (_, h, v) = req(&st, "GET", "/3rdparty/v1/messages", Some(&auth), None).await;
    assert_eq!(
        (h["x-total-count"].to_str().ok(), v[0]["id"].as_str()),
        (Some("4"), Some("m4")),
        "newest first by default"
    );
    let (_, h, _) = req(
        &st,
        "GET",
        "/3rdparty/v1/messages?state=Delivered",
        Some(&auth),
        None,
    )
    .await;
    assert_eq!(h["x-total-count"], "0");
    let (_, h, _) = req(
        &st,
        "GET",
        "/3rdparty/v1/messages?from=2099-01-01T00:00:00",
        Some(&auth),
        None,
    )
    .await;
    assert_eq!(h["x-total-count"], "0", "a naive time is UTC");
    let (s, _, _) = req(
        &st,
        "GET",
        "/3rdparty/v1/messages?state=Nope",
        Some(&auth),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _, v) = req(&st, "GET", "/3rdparty/v1/message/m3", Some(&auth), None).await;
    assert_eq!((s, &v["id"]), (StatusCode::OK, &json!("m3")));

    let (s, _, v) = req(&st, "DELETE", "/3rdparty/v1/messages/m1", Some(&auth), None).await;
    assert_eq!(
        (s, &v["state"]),
        (StatusCode::OK, &json!("Cancelled")),
        "{v}"
    );
    let (s, _, v) = req(&st, "DELETE", "/3rdparty/v1/messages/m1", Some(&auth), None).await;
    assert_eq!((s, &v["code"]), (StatusCode::CONFLICT, &json!(409)));
    let (s, _, _) = req(&st, "GET", "/3rdparty/v1/messages/nope", Some(&auth), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Another account's user sees none of it.
    let (s, _) = call(
        &st,
        "POST",
        "/v1/users",
        Some(KEY_B),
        Some(&json!({"login": "b", "password": PASSWORD}).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _, _) = req(
        &st,
        "GET",
        "/3rdparty/v1/messages/m3",
        Some(&basic("b", PASSWORD)),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn tokens_carry_scopes_refresh_once_and_revoke() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (st, auth) = with_user(dir.path()).await;
    let (s, _, t) = req(
        &st,
        "POST",
        "/3rdparty/v1/auth/token",
        Some(&auth),
        Some(json!({"scopes": ["messages:send", "messages:read"], "ttl": 600})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    assert_eq!(t["access_token"], t["accessToken"]);
    assert_eq!(
        (t["token_type"].as_str(), t["tokenType"].as_str()),
        (Some("Bearer"), Some("Bearer"))
    );
    let bearer = format!("Bearer {}", t["accessToken"].as_str().expect("token"));
    let body = json!({"id": "t1", "phoneNumbers": ["+15550001001"], "textMessage": {"text": "hi"}});
    let (s, _, _) = req(
        &st,
        "POST",
        "/3rdparty/v1/messages",
        Some(&bearer),
        Some(body),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (s, _, v) = req(&st, "GET", "/3rdparty/v1/devices", Some(&bearer), None).await;
    assert_eq!(
        (s, v["message"].as_str()),
        (StatusCode::FORBIDDEN, Some("scope required: devices:list"))
    );
    // A token cannot hand out more than it holds.
    let (s, _, _) = req(
        &st,
        "POST",
        "/3rdparty/v1/auth/token",
        Some(&bearer),
        Some(json!({"scopes": ["messages:send"]})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "tokens:manage is needed");
    for bad in [
        json!({"scopes": []}),
        json!({"scopes": ["nope"]}),
        json!({"scopes": ["tokens:refresh"]}),
        json!({"scopes": ["all:any"], "ttl": 0}),
    ] {
        let (s, _, v) = req(
            &st,
            "POST",
            "/3rdparty/v1/auth/token",
            Some(&auth),
            Some(bad.clone()),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad} -> {v}");
    }
    // The refresh token refreshes, once, and is no access token.
    let refresh = format!("Bearer {}", t["refreshToken"].as_str().expect("refresh"));
    let (s, _, _) = req(&st, "GET", "/3rdparty/v1/messages/t1", Some(&refresh), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, fresh) = req(
        &st,
        "POST",
        "/3rdparty/v1/auth/token/refresh",
        Some(&refresh),
        Some(json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{fresh}");
    let (s, _, _) = req(
        &st,
        "POST",
        "/3rdparty/v1/auth/token/refresh",
        Some(&refresh),
        Some(json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let fresh_bearer = format!("Bearer {}", fresh["accessToken"].as_str().expect("token"));
    let (s, _, _) = req(
        &st,
        "GET",
        "/3rdparty/v1/messages/t1",
        Some(&fresh_bearer),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "the refreshed token keeps the scopes");
    // Revoked: refused from then on.
    let jti = t["id"].as_str().expect("id");
    let (s, _, _) = req(
        &st,
        "DELETE",
        &format!("/3rdparty/v1/auth/token/{jti}"),
        Some(&auth),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, _) = req(&st, "GET", "/3rdparty/v1/messages/t1", Some(&bearer), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let forged = format!("{}x", bearer);
    let (s, _, _) = req(&st, "GET", "/3rdparty/v1/messages/t1", Some(&forged), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn settings_round_trip_and_sign_the_webhooks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (st, auth) = with_user(dir.path()).await;
    let (s, _, v) = req(&st, "GET", "/3rdparty/v1/settings", Some(&auth), None).await;
    assert_eq!(s, StatusCode::OK);
    let key = v["webhooks"]["signing_key"]
        .as_str()
        .expect("a signing key")
        .to_string();
    let (s, _, v) = req(
        &st,
        "PATCH",
        "/3rdparty/v1/settings",
        Some(&auth),
        Some(json!({"messages": {"limit_period": "Per30Minutes", "limit_value": 10}})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v["messages"],
        json!({"limit_period": "Per30Minutes", "limit_value": 10})
    );
    let (_, _, v) = req(
        &st,
        "PATCH",
        "/3rdparty/v1/settings",
        Some(&auth),
        Some(json!({"messages": {"limit_value": 20}})),
    )
    .await;
    assert_eq!(
        v["messages"],
        json!({"limit_period": "Per30Minutes", "limit_value": 20})
    );
    let (_, _, v) = req(
        &st,
        "PUT",
        "/3rdparty/v1/settings",
        Some(&auth),
        Some(json!({"ping": {"interval_seconds": 60}})),
    )
    .await;
    assert_eq!(
        v,
        json!({"ping": {"interval_seconds": 60}, "webhooks": {"signing_key": key}})
    );
    for bad in [
        json!({"messages": {"limit_period": "Weekly"}}),
        json!({"encryption": {"passphrase": "p"}}),
        json!({"x": {}}),
    ] {
        let (s, _, _) = req(
            &st,
            "PATCH",
            "/3rdparty/v1/settings",
            Some(&auth),
            Some(bad),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
    }

    let hook = json!({"id": "h1", "url": "http://127.0.0.1:9/hook", "event": "sms:sent"});
    let (s, _, v) = req(
        &st,
        "POST",
        "/3rdparty/v1/webhooks",
        Some(&auth),
        Some(hook),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        v,
        json!({"id": "h1", "deviceId": null, "url": "http://127.0.0.1:9/hook", "event": "sms:sent"})
    );
    let moved = json!({"id": "h1", "url": "http://127.0.0.1:9/other", "event": "sms:delivered"});
    let (s, _, _) = req(
        &st,
        "POST",
        "/3rdparty/v1/webhooks",
        Some(&auth),
        Some(moved),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, _, list) = req(&st, "GET", "/3rdparty/v1/webhooks", Some(&auth), None).await;
    assert_eq!(
        list,
        json!([{"id": "h1", "deviceId": null, "url": "http://127.0.0.1:9/other", "event": "sms:delivered"}])
    );
    // Stored as a relay webhook signed with the signing key; a new key re-signs it.
    let (_, native) = call(&st, "GET", "/v1/webhooks", Some(KEY_A), None).await;
    assert_eq!(native["items"][0]["events"], json!(["sms:delivered"]));
    let (_, users) = call(&st, "GET", "/v1/users", Some(KEY_A), None).await;
    let account = users["items"][0]["account"]
        .as_str()
        .expect("account")
        .to_string();
    let acc = account.clone();
    let hooks = st
        .db
        .call(move |s| s.list_webhooks(&acc))
        .await
        .expect("hooks");
    assert_eq!(
        hooks.iter().map(|h| h.secret.as_str()).collect::<Vec<_>>(),
        [key.as_str()]
    );
    req(
        &st,
        "PATCH",
        "/3rdparty/v1/settings",
        Some(&auth),
        Some(json!({"webhooks": {"signing_key": "new-key"}})),
    )
    .await;
    let hooks = st
        .db
        .call(move |s| s.list_webhooks(&account))
        .await
        .expect("hooks");
    assert_eq!(hooks[0].secret, "new-key");
    for bad in [
        json!({"url": "http://127.0.0.1:9/h", "event": "sms:nope"}),
        json!({"url": "ftp://example.com/h", "event": "sms:sent"}),
        json!({"url": "http://127.0.0.1:9/h", "event": "sms:sent", "deviceId": "not-mine"}),
    ] {
        let (s, _, v) = req(
            &st,
            "POST",
            "/3rdparty/v1/webhooks",
            Some(&auth),
            Some(bad.clone()),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad} -> {v}");
    }
    // Another account cannot take the id.
    call(
        &st,
        "POST",
        "/v1/users",
        Some(KEY_B),
        Some(&json!({"login": "b", "password": PASSWORD}).to_string()),
    )
    .await;
    let taken = json!({"id": "h1", "url": "http://127.0.0.1:9/b", "event": "sms:sent"});
    let (s, _, _) = req(
        &st,
        "POST",
        "/3rdparty/v1/webhooks",
        Some(&basic("b", PASSWORD)),
        Some(taken),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _, _) = req(&st, "DELETE", "/3rdparty/v1/webhooks/h1", Some(&auth), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, _, list) = req(&st, "GET", "/3rdparty/v1/webhooks", Some(&auth), None).await;
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn health_answers_without_auth_at_both_places() {
    let dir = tempfile::tempdir().expect("tempdir");
    let st = common::state(dir.path()).await;
    for path in [
        "/health",
        "/health/live",
        "/health/ready",
        "/health/startup",
        "/3rdparty/v1/health",
        "/3rdparty/v1/health/ready",
    ] {
        let (s, _, v) = req(&st, "GET", path, None, None).await;
        assert_eq!(
            (s, v["status"].as_str()),
            (StatusCode::OK, Some("pass")),
            "{path}"
        );
    }
    let (s, _, v) = req(&st, "GET", "/3rdparty/v1/nope", None, None).await;
    assert_eq!((s, v["code"].as_i64()), (StatusCode::NOT_FOUND, Some(404)));
}

/// Each connected phone pings the account's `system:ping` webhooks at the account's
/// `ping.interval_seconds`, with its health; nothing without the setting.
#[tokio::test]
async fn connected_phones_ping_at_the_accounts_interval() {
    use simrelay_server::compat::ping::Pinger;

    let dir = tempfile::tempdir().expect("tempdir");
    let (st, auth) = with_user(dir.path()).await;
    let hook = json!({"id": "ping-1", "url": "http://127.0.0.1:9/ping", "event": "system:ping"});
    let (s, _, _) = req(
        &st,
        "POST",
        "/3rdparty/v1/webhooks",
        Some(&auth),
        Some(hook),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, users) = call(&st, "GET", "/v1/users", Some(KEY_A), None).await;
    let account = users["items"][0]["account"]
        .as_str()
        .expect("account")
        .to_string();
    let mut status = common::status();
    status.battery = Some(55);
    let _link = st.hub.register("phone-1", &account, status);

    let mut pinger = Pinger::default();
    let t0 = 1_800_000_000_000;
    assert_eq!(
        pinger.tick(&st, t0).await.expect("tick"),
        0,
        "no interval set"
    );
    let (s, _, _) = req(
        &st,
        "PATCH",
        "/3rdparty/v1/settings",
        Some(&auth),
        Some(json!({"ping": {"interval_seconds": 60}})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(pinger.tick(&st, t0).await.expect("tick"), 1);
    assert_eq!(
        pinger.tick(&st, t0 + 59_000).await.expect("tick"),
        0,
        "not yet due"
    );
    assert_eq!(pinger.tick(&st, t0 + 60_000).await.expect("tick"), 1);

    let due = st
        .db
        .call(|s| s.due_deliveries(i64::MAX, 10))
        .await
        .expect("outbox");
    assert_eq!(due.len(), 2);
    let body: Value = serde_json::from_str(&due[0].body).expect("json");
    assert_eq!(
        (body["event"].as_str(), body["deviceId"].as_str()),
        (Some("system:ping"), Some("phone-1"))
    );
    assert_eq!(body["webhookId"], "ping-1");
    assert_eq!(body["payload"]["health"]["status"], "pass");
    assert_eq!(
        body["payload"]["health"]["checks"]["battery:level"]["observedValue"],
        55
    );
    assert_eq!(due[0].event, "system:ping", "signed the SMS Gateway way");
}

/// Users listed in the configuration file exist at start in the `api_key`'s account; a
/// changed password replaces the stored one at the next start, and the old one is refused.
#[tokio::test]
async fn configured_users_exist_at_start_and_take_a_changed_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    let user = |password: &str| simrelay_server::config::ConfigUser {
        login: LOGIN.into(),
        password: password.into(),
    };
    let messages = |state: AppState, password: &'static str| async move {
        req(
            &state,
            "GET",
            "/3rdparty/v1/messages",
            Some(&basic(LOGIN, password)),
            None,
        )
        .await
        .0
    };
    let first = common::server(dir.path(), |c| c.compat_users = vec![user(PASSWORD)]).await;
    assert_eq!(
        messages(first.state.clone(), PASSWORD).await,
        StatusCode::OK
    );
    assert_eq!(
        messages(first.state.clone(), "not-the-password").await,
        StatusCode::UNAUTHORIZED
    );
    first.stop().await.expect("stops");
    let second = common::server(dir.path(), |c| {
        c.compat_users = vec![user("a-new-password-42")];
    })
    .await;
    assert_eq!(
        messages(second.state.clone(), "a-new-password-42").await,
        StatusCode::OK
    );
    assert_eq!(
        messages(second.state.clone(), PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "the old password is gone"
    );
    second.stop().await.expect("stops");
    // Another account's login cannot be taken over by configuration.
    let third = common::server(dir.path(), |c| c.compat_users = vec![]).await;
    let (s, v) = call(
        &third.state,
        "POST",
        "/v1/users",
        Some(common::KEY_B),
        Some(&json!({"login": "bob@example.com", "password": PASSWORD}).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    third.stop().await.expect("stops");
    let mut c = common::config(dir.path());
    c.compat_users = vec![simrelay_server::config::ConfigUser {
        login: "bob@example.com".into(),
        password: PASSWORD.into(),
    }];
    let Err(err) = simrelay_server::Server::start(c).await else {
        panic!("a login of another account is refused");
    };
    assert!(
        err.to_string().contains("belongs to another account"),
        "{err}"
    );
}

/// Failed Basic logins are throttled per source address: after ten in a minute the source
/// gets 429 with `Retry-After`, even with the right password, until the lockout ends; other
/// sources, and a password check remembered from before, are not held up.
#[tokio::test]
async fn failed_basic_logins_lock_the_source_out_for_a_while() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (st, good) = with_user(dir.path()).await;
    let from = |ip: [u8; 4], auth: String| {
        let st = st.clone();
        async move {
            let r = Request::builder()
                .uri("/3rdparty/v1/messages")
                .header("authorization", auth)
                .extension(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                    ip, 40000,
                ))))
                .body(Body::empty())
                .expect("request builds");
            let res = app(st).oneshot(r).await.expect("infallible");
            let retry = res.headers().get("retry-after").cloned();
            (res.status(), retry)
        }
    };
    let (guesser, other) = ([203, 0, 113, 7], [198, 51, 100, 9]);
    // The right password from `other` first: remembered from now on.
    assert_eq!(from(other, good.clone()).await.0, StatusCode::OK);
    for _ in 0..10 {
        let (s, _) = from(guesser, basic(LOGIN, "wrong-password-00")).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let (s, retry) = from(guesser, basic(LOGIN, "wrong-password-00")).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry.expect("Retry-After").to_str().expect("ascii"), "60");
    assert_eq!(
        from(guesser, basic("nobody@example.com", "wrong-password-00"))
            .await
            .0,
        StatusCode::TOO_MANY_REQUESTS,
        "unknown logins count too"
    );
    // A login not remembered yet from the locked source waits too: the throttle comes
    // before the password check.
    let (s, _) = from(guesser, basic(LOGIN, "another-guess-001")).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        from(other, good.clone()).await.0,
        StatusCode::OK,
        "remembered"
    );
    assert_eq!(
        from(other, basic(LOGIN, "wrong-password-00")).await.0,
        StatusCode::UNAUTHORIZED,
        "another source is not locked out"
    );
    st.hub
        .limits()
        .clock
        .advance(std::time::Duration::from_secs(61));
    assert_eq!(
        from(guesser, good).await.0,
        StatusCode::OK,
        "the lockout ended"
    );
}

/// Found by schemathesis (stateful phase): an admin key created a user in another account
/// (`account`) and then could not delete it. Other keys still reach only their own account.
#[tokio::test]
async fn an_admin_key_deletes_a_user_of_another_account() {
    let dir = tempfile::tempdir().expect("tempdir");
    let st = state(dir.path()).await;
    let admin = st
        .take_generated_admin_key()
        .expect("a generated admin key");
    let (_, keys) = call(&st, "GET", "/v1/keys", Some(KEY_B), None).await;
    let account_b = keys["items"][0]["account"].as_str().expect("B's account");
    let carol = json!({"login": "carol", "account": account_b}).to_string();
    let (s, v) = call(&st, "POST", "/v1/users", Some(&admin), Some(&carol)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let dave = json!({"login": "dave"}).to_string();
    let (s, _) = call(&st, "POST", "/v1/users", Some(KEY_B), Some(&dave)).await;
    assert_eq!(s, StatusCode::CREATED);

    let (s, _) = call(&st, "DELETE", "/v1/users/dave", Some(KEY_A), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "another account's user");
    let (s, _) = call(&st, "DELETE", "/v1/users/carol", Some(&admin), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, users) = call(&st, "GET", "/v1/users", Some(KEY_B), None).await;
    assert_eq!(users["items"][0]["login"], "dave", "{users}");
    assert_eq!(users["items"].as_array().map(Vec::len), Some(1), "{users}");
}
