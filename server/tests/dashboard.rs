//! The dashboard's server side: sign-in with a key or a user, the session cookie standing for
//! it on `/v1`, CSRF on state-changing requests, sessions ending when their key or user goes,
//! the page's assets, and the `/ui` helpers (QR code, part preview, charts).

mod common;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use common::*;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use simrelay_protocol::{PhoneFrame, RecipientState, RelayFrame};
use simrelay_server::{AppState, app};
use tower::ServiceExt;

/// A browser's view of the relay: the cookie it holds and the CSRF token its page read.
#[derive(Default)]
struct Browser {
    cookie: Option<String>,
    csrf: Option<String>,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
    text: String,
}

impl Browser {
    async fn req(&self, state: &AppState, method: &str, path: &str, body: Option<Value>) -> Answer {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", format!("theme=dark; {c}"));
        }
        if let Some(t) = &self.csrf {
            req = req.header("x-csrf-token", t);
        }
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .expect("request builds");
        let res = app(state.clone()).oneshot(req).await.expect("infallible");
        let (status, headers) = (res.status(), res.headers().clone());
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        Answer {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// Signs in with `body`; keeps the cookie and CSRF token on success.
    async fn sign_in(&mut self, state: &AppState, body: Value) -> Answer {
        let a = self.req(state, "POST", "/ui/session", Some(body)).await;
        if a.status == StatusCode::OK {
            let set = a.headers["set-cookie"].to_str().expect("ascii").to_string();
            self.cookie = Some(set.split(';').next().expect("pair").to_string());
            self.csrf = Some(a.body["csrf"].as_str().expect("csrf").to_string());
        }
        a
    }

    fn without_csrf(&self) -> Browser {
        Browser {
            cookie: self.cookie.clone(),
            csrf: None,
        }
    }
}

fn send_body() -> Value {
    json!({"to": ["+15550001234"], "text": "hello"})
}

#[tokio::test]
async fn a_key_session_acts_with_the_keys_scopes_and_needs_csrf_to_change_things() {
    let dir = tempfile::tempdir().expect("tempdir");
    let st = state(dir.path()).await;
    let mut b = Browser::default();
    let a = b.sign_in(&st, json!({"key": KEY_A})).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let cookie = a.headers["set-cookie"].to_str().expect("ascii");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "no TLS here: {cookie}");
    assert!(a.body["scopes"].as_array().expect("scopes").len() >= 4);

    assert_eq!(
        b.req(&st, "GET", "/v1/phones", None).await.status,
        StatusCode::OK
    );
    let who = b.req(&st, "GET", "/ui/session", None).await;
    assert_eq!(who.body["csrf"], a.body["csrf"]);

    let no_csrf = b
        .without_csrf()
        .req(&st, "POST", "/v1/messages", Some(send_body()))
        .await;
    assert_error(
        no_csrf.status,
        &no_csrf.body,
        StatusCode::FORBIDDEN,
        "csrf_token_missing",
    );
    let wrong = Browser {
        cookie: b.cookie.clone(),
        csrf: Some("0".repeat(32)),
    };
    let a = wrong
        .req(&st, "POST", "/v1/messages", Some(send_body()))
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let (_, list) = call(&st, "GET", "/v1/messages", Some(KEY_A), None).await;
    assert_eq!(
        list["items"].as_array().expect("items").len(),
        0,
        "nothing sent"
    );

    let a = b.req(&st, "POST", "/v1/messages", Some(send_body())).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);

    // Signing out needs the token too, and ends the session.
    let a = b
        .without_csrf()
        .req(&st, "DELETE", "/ui/session", None)
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = b.req(&st, "DELETE", "/ui/session", None).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert!(
        a.headers["set-cookie"]
            .to_str()
            .expect("ascii")
            .contains("Max-Age=0")
    );
    let a = b.req(&st, "GET", "/v1/phones", None).await;
    assert_error(a.status, &a.body, StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn a_narrow_key_session_is_narrow_and_ends_when_the_key_is_revoked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let st = state(dir.path()).await;
    let (s, key) = call(
        &st,
        "POST",
        "/v1/keys",
        Some(KEY_A),
        Some(r#"{"name":"viewer","scopes":["read"]}"#),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{key}");
    let mut b = Browser::default();
    let a = b
        .sign_in(&st, json!({"key": key["secret"].as_str().expect("secret")}))
        .await;
    assert_eq!(a.body["scopes"], json!(["read"]));
    assert_eq!(
        b.req(&st, "GET", "/v1/messages", None).await.status,
        StatusCode::OK
    );
    let a = b.req(&st, "POST", "/v1/messages", Some(send_body())).await;
    assert_error(
        a.status,
        &a.body,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
    );
    let a = b.req(&st, "GET", "/v1/phones", None).await;
    assert_error(
        a.status,
        &a.body,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
    );

    let id = key["id"].as_str().expect("id");
    let (s, _) = call(&st, "DELETE", &format!("/v1/keys/{id}"), Some(KEY_A), None).await;
    assert!(s.is_success());
    let a = b.req(&st, "GET", "/v1/messages", None).await;
    assert_error(a.status, &a.body, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(
        b.req(&st, "GET", "/ui/session", None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn users_sign_in_with_their_password_and_wrong_ones_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let st = state(dir.path()).await;
    let (s, body) = call(
        &st,
        "POST",
        "/v1/users",
        Some(KEY_A),
        Some(r#"{"login":"owner@example.com","password":"correct-horse-battery"}"#),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");

    let mut b = Browser::default();
    let a = b
        .sign_in(
            &st,
            json!({"login": "owner@example.com", "password": "correct-horse-batterx"}),
        )
        .await;
    assert_error(a.status, &a.body, StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(!a.headers.contains_key("set-cookie"));
    assert!(!a.text.contains("correct-horse"), "{}", a.text);
    let a = b
        .sign_in(
            &st,
            json!({"login": "nobody", "password": "correct-horse-battery"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);

    let a = b
        .sign_in(
            &st,
            json!({"login": "owner@example.com", "password": "correct-horse-battery"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["login"], "owner@example.com");
    let a = b.req(&st, "POST", "/v1/messages", Some(send_body())).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);

    let (s, _) = call(
        &st,
        "DELETE",
        "/v1/users/owner@example.com",
        Some(KEY_A),
        None,
    )
    .await;
    assert!(s.is_success());
    assert_eq!(
        b.req(&st, "GET", "/v1/phones", None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn bad_sign_ins_and_cookies_get_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let st = state(dir.path()).await;
    let b = Browser::default();
    for (body, code) in [
        (json!({}), "invalid_body"),
        (json!({"key": KEY_A, "login": "a"}), "invalid_body"),
        (json!({"login": "a"}), "invalid_body"),
        (json!({"key": KEY_A, "extra": 1}), "invalid_body"),
        (json!({"key": 5}), "invalid_body"),
    ] {
        let a = b.req(&st, "POST", "/ui/session", Some(body.clone())).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}: {}", a.body);
        assert_eq!(a.body["error"]["code"], code, "{body}: {}", a.body);
    }
    let a = b
        .req(&st, "POST", "/ui/session", Some(json!({"key": "sr_nope"})))
        .await;
    assert_error(a.status, &a.body, StatusCode::UNAUTHORIZED, "unauthorized");
    let long = "k".repeat(300);
    let a = b
        .req(&st, "POST", "/ui/session", Some(json!({"key": long})))
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);

    let forged = Browser {
        cookie: Some("simrelay_session=00112233".into()),
        csrf: Some("x".into()),
    };
    let a = forged.req(&st, "GET", "/v1/phones", None).await;
    assert_error(a.status, &a.body, StatusCode::UNAUTHORIZED, "unauthorized");
    let a = b.req(&st, "GET", "/v1/phones", None).await;
    assert_eq!(
        a.body["error"]["message"],
        "missing Authorization: Bearer <api key>"
    );
    for path in ["/ui/session", "/ui/stats"] {
        assert_eq!(
            b.req(&st, "GET", path, None).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
}

#[tokio::test]
async fn the_page_and_its_helpers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let st = state(dir.path()).await;
    let b = Browser::default();
    let a = b.req(&st, "GET", "/", None).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(
        a.headers["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    let csp = a.headers["content-security-policy"]
        .to_str()
        .expect("ascii");
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert!(a.text.contains("/ui/app.js"));
    for path in ["/ui/app.js", "/ui/app.css"] {
        let a = b.req(&st, "GET", path, None).await;
        assert_eq!(a.status, StatusCode::OK, "{path}");
        assert!(a.text.len() > 1000, "{path}");
    }
    // The page and its style load nothing from elsewhere: no CDN, no web fonts (the browser
    // test checks every request the running page makes).
    let css = b.req(&st, "GET", "/ui/app.css", None).await.text;
    let html = b.req(&st, "GET", "/", None).await.text;
    assert!(!html.contains("http://") && !html.contains("https://"));
    assert!(!css.contains("url(") && !css.contains("@import") && !css.contains("@font-face"));

    let mut b = Browser::default();
    b.sign_in(&st, json!({"key": KEY_A})).await;
    let link = "simrelay://pair?url=ws%3A%2F%2F127.0.0.1%3A8080%2Fv1%2Flink&code=ABCD-EFGH";
    let a = b
        .req(&st, "POST", "/ui/qr", Some(json!({"text": link})))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.headers["content-type"], "image/svg+xml");
    assert!(a.text.contains("<svg") && a.text.contains("<path"));
    let a = b
        .req(
            &st,
            "POST",
            "/ui/qr",
            Some(json!({"text": "x".repeat(2000)})),
        )
        .await;
    assert_error(a.status, &a.body, StatusCode::BAD_REQUEST, "invalid_text");

    let texts = json!({"texts": ["a".repeat(161), "ünïcødé ✓", ""]});
    let a = b.req(&st, "POST", "/ui/preview", Some(texts)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let parts: Vec<_> = a.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| (i["parts"].as_u64(), i["encoding"].as_str()))
        .collect();
    assert_eq!(
        parts,
        [
            (Some(2), Some("gsm7")),
            (Some(1), Some("ucs2")),
            (Some(1), Some("gsm7"))
        ]
    );
    let many = json!({"texts": vec!["a"; 1001]});
    let a = b.req(&st, "POST", "/ui/preview", Some(many)).await;
    assert_error(a.status, &a.body, StatusCode::BAD_REQUEST, "too_many_texts");

    for q in ["hours=0", "hours=169", "hours=x", "days=1"] {
        let a = b.req(&st, "GET", &format!("/ui/stats?{q}"), None).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{q}: {}", a.body);
    }
    let a = b.req(&st, "GET", "/ui/stats", None).await;
    assert_eq!(a.body["hours"].as_array().expect("hours").len(), 24);
    assert_eq!(a.body["sims"], json!([]));
}

#[tokio::test]
async fn charts_count_what_phones_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |_| {}).await;
    let http = Http::new(&srv.url);
    let (phone, token) = paired_phone(&http, &srv.ws_url(), KEY_A).await;
    let (mut p, _) = RawPhone::hello(&srv.ws_url(), &token, 0).await;
    let body = json!({"to": ["+15551230001", "+15551230002"], "text": "hi", "id": "m1"});
    let (s, _) = http.req("POST", "/v1/messages", KEY_A, Some(body)).await;
    assert_eq!(s, 202);
    let Some(RelayFrame::Send { seq: 1, .. }) = p.recv().await else {
        panic!("send frame")
    };
    p.send(&PhoneFrame::Ack { seq: 1 }).await;
    let events = [
        (0, RecipientState::Sent),
        (0, RecipientState::Delivered),
        (1, RecipientState::Sent),
    ];
    for (seq, (idx, state)) in (1..).zip(events) {
        p.send(&PhoneFrame::Event {
            seq,
            event: update("m1", idx, state),
        })
        .await;
    }
    let mut acked = 0;
    while acked < 3 {
        match p.recv().await {
            Some(RelayFrame::Ack { seq }) => acked = seq,
            Some(_) => {}
            None => panic!("link closed"),
        }
    }
    let (s, stats) = http.req("GET", "/ui/stats?hours=2", KEY_A, None).await;
    assert_eq!(s, 200, "{stats}");
    let hours = stats["hours"].as_array().expect("hours");
    assert_eq!(hours.len(), 2);
    // Summed over both hours: the test may cross an hour's end.
    let sum = |k: &str| {
        hours
            .iter()
            .map(|h| h[k].as_u64().expect("count"))
            .sum::<u64>()
    };
    assert_eq!(
        (sum("sent"), sum("delivered"), sum("failed")),
        (2, 1, 0),
        "{stats}"
    );
    let sims = stats["sims"].as_array().expect("sims");
    assert_eq!(sims.len(), 1, "{stats}");
    assert_eq!(sims[0]["phone"], phone.as_str());
    assert_eq!(
        (sims[0]["sent"].as_u64(), sims[0]["delivered"].as_u64()),
        (Some(2), Some(1))
    );
    srv.stop().await.expect("stops");
}
