//! `GET /openapi.json`: served without a key, OpenAPI 3.1, every native route described and
//! nothing else (not `/v1/link`, the compatible API or the demo's switches), and real answers
//! of a few routes, errors included, valid against their documented schemas.

mod common;

use axum::http::StatusCode;
use common::{KEY_A, call, state};
use serde_json::{Value, json};

/// Every path of the native API (`api::routes`, less `/v1/link` and the compatible API).
const PATHS: [&str; 35] = [
    "/healthz",
    "/metrics",
    "/openapi.json",
    "/v1/account",
    "/v1/account/opt-out",
    "/v1/account/paused-prefixes/{prefix}/block",
    "/v1/account/paused-prefixes/{prefix}/release",
    "/v1/accounts",
    "/v1/accounts/{id}/limits",
    "/v1/inbox",
    "/v1/inbox/wait",
    "/v1/keys",
    "/v1/keys/{id}",
    "/v1/messages",
    "/v1/messages/{id}",
    "/v1/messages/{id}/history",
    "/v1/pairing-codes",
    "/v1/phones",
    "/v1/phones/{id}",
    "/v1/pools",
    "/v1/pools/{name}",
    "/v1/pools/{name}/stats",
    "/v1/sims",
    "/v1/sims/{phone}/{sub_id}",
    "/v1/suppressions",
    "/v1/suppressions.csv",
    "/v1/suppressions/import",
    "/v1/suppressions/{number}",
    "/v1/users",
    "/v1/users/{login}",
    "/v1/webhooks",
    "/v1/webhooks/{id}",
    "/v1/webhooks/{id}/deliveries",
    "/v1/webhooks/{id}/deliveries/{event_id}/redeliver",
    "/v1/webhooks/{id}/ping",
];

async fn document(st: &simrelay_server::AppState) -> Value {
    let (s, doc) = call(st, "GET", "/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK, "served without a key");
    doc
}

#[tokio::test]
async fn the_description_is_openapi_3_1_of_every_native_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let st = state(dir.path()).await;
    let doc = document(&st).await;
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    let paths: Vec<&str> = doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(paths, PATHS);
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"],
        json!({"type": "http", "scheme": "bearer"})
    );
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("operations") {
            let public = ["/healthz", "/openapi.json"].contains(&path.as_str());
            assert_eq!(op["security"].is_null(), public, "{method} {path}");
            let responses = op["responses"].as_object().expect("responses");
            assert_eq!(responses.contains_key("401"), !public, "{method} {path}");
        }
    }
    // The scope table's word, per operation.
    let send = &doc["paths"]["/v1/messages"]["post"]["security"];
    assert_eq!(send, &json!([{"bearer": ["send"]}]));
    let read = &doc["paths"]["/v1/messages"]["get"]["security"];
    assert_eq!(read, &json!([{"bearer": ["read"]}]));
}

#[tokio::test]
async fn real_answers_match_their_documented_schemas() {
    let dir = tempfile::tempdir().expect("tempdir");
    let st = state(dir.path()).await;
    let doc = document(&st).await;
    let body = json!({"to": ["+15551230001"], "text": "hello", "id": "m-1"}).to_string();
    let cases = [
        (
            "POST",
            "/v1/messages",
            Some(KEY_A),
            Some(body.as_str()),
            202,
        ),
        ("GET", "/v1/messages/m-1", Some(KEY_A), None, 200),
        ("GET", "/v1/messages?limit=1", Some(KEY_A), None, 200),
        ("GET", "/v1/messages/m-1/history", Some(KEY_A), None, 200),
        ("DELETE", "/v1/messages/m-1", Some(KEY_A), None, 200),
        ("POST", "/v1/pairing-codes", Some(KEY_A), None, 201),
        ("GET", "/v1/phones", Some(KEY_A), None, 200),
        ("GET", "/v1/sims", Some(KEY_A), None, 200),
        ("GET", "/v1/keys", Some(KEY_A), None, 200),
        ("GET", "/v1/inbox/wait?timeout=0", Some(KEY_A), None, 408),
        (
            "POST",
            "/v1/suppressions",
            Some(KEY_A),
            Some(r#"{"number": "+15550001111"}"#),
            201,
        ),
        ("GET", "/v1/suppressions", Some(KEY_A), None, 200),
        (
            "POST",
            "/v1/suppressions",
            Some(KEY_A),
            Some(r#"{"number": "555"}"#),
            400,
        ),
        ("GET", "/v1/account", Some(KEY_A), None, 200),
        ("GET", "/v1/messages/nope", Some(KEY_A), None, 404),
        ("GET", "/v1/messages?limit=0", Some(KEY_A), None, 400),
        ("GET", "/v1/messages", None, None, 401),
        ("POST", "/v1/messages", Some(KEY_A), Some("{"), 400),
    ];
    for (method, uri, key, body, want) in cases {
        let (s, v) = call(&st, method, uri, key, body).await;
        assert_eq!(s.as_u16(), want, "{method} {uri}: {v}");
        let path = uri.split('?').next().expect("a path");
        let template = match path {
            "/v1/messages/m-1" | "/v1/messages/nope" => "/v1/messages/{id}",
            "/v1/messages/m-1/history" => "/v1/messages/{id}/history",
            p => p,
        };
        let op = &doc["paths"][template][method.to_lowercase()];
        let schema = &op["responses"][want.to_string()]["content"]["application/json"]["schema"];
        assert!(schema.is_object(), "{method} {template} documents {want}");
        if let Err(e) = check(&doc, schema, &v, "$") {
            panic!("{method} {uri} ({want}) does not match its schema: {e}\n{v}");
        }
    }
}

/// A small JSON Schema check of what the description uses: `$ref`, `type` (one or a list),
/// `properties`, `required`, `additionalProperties`, `items`, `oneOf`, `enum`; stricter than
/// JSON Schema in one way: an object's field must be documented.
fn check(doc: &Value, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.strip_prefix("#/components/schemas/").ok_or(r)?;
        return check(doc, &doc["components"]["schemas"][name], v, at);
    }
    if let Some(options) = schema["oneOf"].as_array() {
        let fits = options
            .iter()
            .filter(|o| check(doc, o, v, at).is_ok())
            .count();
        return (fits == 1)
            .then_some(())
            .ok_or(format!("{at}: {fits} of oneOf fit"));
    }
    if let Some(values) = schema["enum"].as_array()
        && !values.contains(v)
    {
        return Err(format!("{at}: {v} is not in the enum"));
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let is = |t: &str| match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "string" => v.is_string(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => false,
    };
    if !types.is_empty() && !types.iter().any(|t| is(t)) {
        return Err(format!("{at}: {v} is not of type {types:?}"));
    }
    if let Some(obj) = v.as_object() {
        let props = schema["properties"].as_object();
        for name in schema["required"].as_array().into_iter().flatten() {
            let name = name.as_str().unwrap_or_default();
            if !obj.contains_key(name) {
                return Err(format!("{at}: {name} is required"));
            }
        }
        for (k, item) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(s) => check(doc, s, item, &format!("{at}.{k}"))?,
                // A map (`additionalProperties` a schema) takes any key; otherwise an
                // undocumented field is drift, whatever the schema allows.
                None if schema["additionalProperties"].is_object() => {
                    check(doc, &schema["additionalProperties"], item, at)?;
                }
                None => return Err(format!("{at}: {k} is not a documented field")),
            }
        }
    }
    if let (Some(items), Some(schema)) = (v.as_array(), schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            check(doc, schema, item, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}
