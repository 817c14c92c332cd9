//! `GET /openapi.json`: the OpenAPI 3.1 description of the native HTTP API, generated from the
//! code (utoipa), never written by hand.
//!
//! [`router`] registers every described route together with its description (utoipa-axum's
//! `routes!` reads the method and path from the handler's `#[utoipa::path]`), and
//! [`super::routes`] serves that router: a route cannot exist without its description, nor the
//! other way round. Bodies are the `ToSchema` of the view, request and error types.
//!
//! [`document`] then adds, from one place, what the handlers share: the bearer scheme and each
//! operation's scope from the scope table ([`auth::required`]); the errors of the extractors
//! (401 and 403 of `Caller`/`Account`, 400/408/413/415 of `ApiJson`, 400 of `ApiQuery`, 500 and
//! 507 of the store); and an operation id made of method and path (handlers' names repeat).
//!
//! Not described: `/v1/link` (the phones' WebSocket, `docs/protocol.md`), the SMS Gateway for
//! Android compatible API (`crate::compat`) and the demo's switches (`simrelay demo` only).

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::path::{HttpMethod, Operation};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{OpenApi, PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{self, Need};
use super::{
    inbox, keys, limits, messages, opt_out, phones, pools, suppressions, suppressions_csv, users,
    webhooks,
};
use crate::AppState;
use crate::error::ErrorBody;

/// The name of the bearer scheme in `components.securitySchemes`.
pub const BEARER: &str = "bearer";

/// Paths served without a key.
const PUBLIC: [&str; 2] = ["/healthz", "/openapi.json"];

#[derive(OpenApi)]
#[openapi(
    info(
        title = "simrelay",
        description = "The native HTTP API of the simrelay relay: send and receive SMS through \
                       Android phones. Every `/v1` route takes `Authorization: Bearer <api key>`; \
                       an error answers `{\"error\": {\"code\": \"...\", \"message\": \"...\"}}`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(ErrorBody))
)]
struct ApiDoc;

/// The schema of an E.164 number (`+` then 2 to 15 digits), for `value_type` of a `String`.
#[derive(Debug)]
pub struct E164;

impl PartialSchema for E164 {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(r"^\+[1-9][0-9]{1,14}$"))
            .examples(["+15551230000"])
            .into()
    }
}

impl ToSchema for E164 {}

/// The schema of a webhook event name: one of [`webhooks::EVENTS`].
#[derive(Debug)]
pub struct WebhookEvent;

impl PartialSchema for WebhookEvent {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(webhooks::EVENTS))
            .into()
    }
}

impl ToSchema for WebhookEvent {}

/// The schema of a scope name: one of [`auth::Scope::ALL`].
#[derive(Debug)]
pub struct ScopeName;

impl PartialSchema for ScopeName {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(auth::Scope::ALL.map(auth::Scope::name)))
            .into()
    }
}

impl ToSchema for ScopeName {}

/// Every described route with its handler.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(crate::metrics::healthz))
        .routes(routes!(crate::metrics::metrics))
        .routes(routes!(openapi_json))
        .routes(routes!(messages::create, messages::list))
        .routes(routes!(messages::get_one, messages::cancel))
        .routes(routes!(messages::history))
        .routes(routes!(inbox::list))
        .routes(routes!(inbox::wait))
        .routes(routes!(phones::list))
        .routes(routes!(phones::remove))
        .routes(routes!(phones::create_pairing_code))
        .routes(routes!(pools::create, pools::list))
        .routes(routes!(pools::delete))
        .routes(routes!(pools::stats))
        .routes(routes!(pools::sims))
        .routes(routes!(pools::patch_sim))
        .routes(routes!(suppressions::list, suppressions::add))
        .routes(routes!(suppressions::remove))
        .routes(routes!(suppressions_csv::export))
        .routes(routes!(suppressions_csv::import))
        .routes(routes!(opt_out::get, opt_out::put))
        .routes(routes!(webhooks::create, webhooks::list))
        .routes(routes!(webhooks::delete))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(webhooks::ping))
        .routes(routes!(webhooks::redeliver))
        .routes(routes!(keys::create, keys::list))
        .routes(routes!(keys::revoke))
        .routes(routes!(users::create, users::list))
        .routes(routes!(users::delete))
        .routes(routes!(keys::create_account, keys::list_accounts))
        .routes(routes!(limits::account))
        .routes(routes!(limits::get_limits, limits::put_limits))
        .routes(routes!(limits::release))
        .routes(routes!(limits::block))
}

/// The description as served: [`router`]'s, completed as the module says.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = router().into_openapi();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
    );
    for (path, item) in doc.paths.paths.iter_mut() {
        let ops = [
            (HttpMethod::Get, &mut item.get),
            (HttpMethod::Post, &mut item.post),
            (HttpMethod::Put, &mut item.put),
            (HttpMethod::Patch, &mut item.patch),
            (HttpMethod::Delete, &mut item.delete),
        ];
        for (method, op) in ops {
            if let Some(op) = op {
                complete(path, method, op);
            }
        }
    }
    doc
}

/// Adds the shared parts to the operation `method path`.
fn complete(path: &str, method: HttpMethod, op: &mut Operation) {
    let name = method_name(&method);
    op.operation_id = Some(operation_id(name, path));
    let mut error = |status: u16, description: &str| {
        op.responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| error_response(description));
    };
    if !PUBLIC.contains(&path) {
        error(
            401,
            "no, a malformed, an unknown or a revoked API key (`unauthorized`)",
        );
        error(403, "the key lacks the scope (`insufficient_scope`)");
    }
    error(500, "an internal fault, logged by the relay (`internal`)");
    if !matches!(method, HttpMethod::Get) {
        error(
            507,
            "the relay's disk is full; nothing was stored (`storage_full`)",
        );
    }
    let has_query = op.parameters.as_ref().is_some_and(|ps| {
        ps.iter()
            .any(|p| p.parameter_in == utoipa::openapi::path::ParameterIn::Query)
    });
    if has_query {
        error(
            400,
            "a query parameter is unknown or invalid (`invalid_query`)",
        );
    }
    if op.request_body.is_some() {
        error(
            400,
            "the body is not JSON or not of the schema (`invalid_json`, `invalid_body`)",
        );
        error(408, "the body did not arrive in time (`body_timeout`)");
        error(413, "the body is too large (`body_too_large`)");
        error(
            415,
            "the body is not `Content-Type: application/json` (`unsupported_media_type`)",
        );
    }
    if !PUBLIC.contains(&path) {
        let scopes: Vec<&str> = match auth::required(&name.to_uppercase(), path) {
            Need::AnyKey => vec![],
            Need::Scope(scope) => vec![scope.name()],
        };
        op.security = Some(vec![SecurityRequirement::new(BEARER, scopes)]);
    }
}

fn method_name(method: &HttpMethod) -> &'static str {
    match method {
        HttpMethod::Get => "get",
        HttpMethod::Post => "post",
        HttpMethod::Put => "put",
        HttpMethod::Patch => "patch",
        HttpMethod::Delete => "delete",
        HttpMethod::Head => "head",
        HttpMethod::Options => "options",
        HttpMethod::Trace => "trace",
    }
}

/// `get_v1_messages_id` for `GET /v1/messages/{id}`: unique, as method and path are.
fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_string();
    for word in path.split(|c: char| !c.is_ascii_alphanumeric()) {
        if !word.is_empty() {
            id.push('_');
            id.push_str(word);
        }
    }
    id
}

/// A response answering [`ErrorBody`] as JSON.
fn error_response(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
        .into()
}

/// This description, as JSON (built once).
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "relay",
    responses((status = 200, description = "this OpenAPI 3.1 description", body = Object)),
)]
pub async fn openapi_json() -> impl IntoResponse {
    static JSON: OnceLock<String> = OnceLock::new();
    let json = JSON.get_or_init(|| {
        document()
            .to_json()
            .expect("the OpenAPI description serialises")
    });
    ([(header::CONTENT_TYPE, "application/json")], json.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_are_made_of_method_and_path() {
        assert_eq!(
            operation_id("delete", "/v1/sims/{phone}/{sub_id}"),
            "delete_v1_sims_phone_sub_id"
        );
        assert_eq!(operation_id("get", "/openapi.json"), "get_openapi_json");
    }

    /// The limits written as literals in `#[schema]`/`#[param]` attributes are the handlers'.
    #[test]
    fn the_documented_limits_are_the_handlers() {
        let doc = serde_json::to_value(document()).expect("serialises");
        let schemas = &doc["components"]["schemas"];
        let send = &schemas["SendRequest"]["properties"];
        assert_eq!(send["text"]["maxLength"], messages::MAX_TEXT_CHARS);
        assert_eq!(send["to"]["maxItems"], messages::MAX_RECIPIENTS);
        assert_eq!(
            send["id"]["pattern"],
            format!("^[A-Za-z0-9._:-]{{1,{}}}$", messages::MAX_ID_CHARS)
        );
        let limit = |path: &str| {
            let params = doc["paths"][path]["get"]["parameters"].as_array().cloned();
            params
                .into_iter()
                .flatten()
                .find(|p| p["name"] == "limit")
                .map(|p| p["schema"]["maximum"].clone())
        };
        assert_eq!(limit("/v1/messages"), Some(super::super::PAGE_MAX.into()));
        assert_eq!(limit("/v1/inbox"), Some(super::super::PAGE_MAX.into()));
        let kept = crate::store::ATTEMPTS_KEPT;
        assert_eq!(limit("/v1/webhooks/{id}/deliveries"), Some(kept.into()));
        let wait = doc["paths"]["/v1/inbox/wait"]["get"]["parameters"]
            .as_array()
            .cloned();
        let timeout = wait.into_iter().flatten().find(|p| p["name"] == "timeout");
        let max = timeout.map(|p| p["schema"]["maximum"].clone());
        assert_eq!(max, Some(inbox::WAIT_MAX_SECS.into()));
        let events = &schemas["WebhookEvent"]["enum"];
        assert_eq!(events, &serde_json::json!(webhooks::EVENTS));
    }

    #[test]
    fn every_operation_is_unique_and_every_error_is_the_error_body() {
        let doc = serde_json::to_value(document()).expect("serialises");
        let mut ids = std::collections::BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("operations") {
                let id = op["operationId"].as_str().expect("an id").to_string();
                assert!(ids.insert(id), "{method} {path}");
                for (status, r) in op["responses"].as_object().expect("responses") {
                    if status.starts_with('4') || status.starts_with('5') {
                        let schema = &r["content"]["application/json"]["schema"]["$ref"];
                        assert_eq!(schema, "#/components/schemas/ErrorBody", "{method} {path}");
                    }
                }
            }
        }
    }
}
