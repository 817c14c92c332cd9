//! `/healthz` (open) and `/metrics` (Prometheus text format, protected).
//!
//! `/metrics` answers every figure to the `metrics_token` (Bearer) or an admin key, and on
//! the separate `metrics_listen` address (which needs the token too when one is set). Any
//! other key with the `phones` scope sees its own account's figures only: its phones online,
//! its SIMs and its spend limits (`simrelay_limit_used`, `simrelay_limit_remaining`,
//! `simrelay_paused_prefixes`); relay-wide totals, which count every tenant, are left out.

use std::fmt::Write;

use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::AppState;
use crate::api::auth::{Scope, parse_bearer};
use crate::api::{Caller, hash_secret};
use crate::error::AppError;

/// `GET /healthz`: 200 once the store answers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "relay",
    responses((status = 200, description = "the store answers", body = String, content_type = "text/plain")),
)]
pub async fn healthz(State(state): State<AppState>) -> Result<&'static str, AppError> {
    state.db.call(|s| s.counts().map(|_| ())).await?;
    Ok("ok\n")
}

/// Whose figures a `/metrics` request may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricsScope {
    /// Every figure (metrics token, admin key, the metrics listener).
    All,
    /// One account's figures.
    Account(String),
}

/// Whether the request carries the configured metrics token.
fn has_token(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(token) = &state.config.metrics_token else {
        return false;
    };
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| parse_bearer(v.as_bytes()).ok())
        // Comparing hashes keeps the comparison's time independent of the token.
        .is_some_and(|given| hash_secret(given) == hash_secret(token))
}

impl FromRequestParts<AppState> for MetricsScope {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        if has_token(state, &parts.headers) {
            return Ok(MetricsScope::All);
        }
        // The scope table gives `/metrics` to keys with the `phones` scope.
        let caller = Caller::from_request_parts(parts, state).await?;
        Ok(if caller.scopes.allows(Scope::Admin) {
            MetricsScope::All
        } else {
            MetricsScope::Account(caller.account)
        })
    }
}

/// `GET /metrics` on the API listener.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "relay",
    description = "Prometheus figures: every figure for an admin key or the metrics token, \
                   the key's account's otherwise.",
    responses((status = 200, description = "the figures, Prometheus text format", body = String, content_type = "text/plain")),
)]
pub async fn metrics(
    State(state): State<AppState>,
    scope: MetricsScope,
) -> Result<Response, AppError> {
    render(&state, &scope).await
}

/// The router of the `metrics_listen` address: only `/metrics`, every figure, behind the
/// metrics token when one is configured.
pub fn metrics_only(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics_listener))
        .fallback(|| async { AppError::not_found() })
        .with_state(state)
}

async fn metrics_listener(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    if state.config.metrics_token.is_some() && !has_token(&state, &headers) {
        return Err(AppError::unauthorized(
            "expected Authorization: Bearer <metrics token>",
        ));
    }
    render(&state, &MetricsScope::All).await
}

/// The figures `scope` may read, in Prometheus text format.
async fn render(state: &AppState, scope: &MetricsScope) -> Result<Response, AppError> {
    let mut out = String::new();
    let only = match scope {
        MetricsScope::All => {
            totals(state, &mut out).await?;
            None
        }
        MetricsScope::Account(account) => {
            let online = match &state.cluster {
                Some(cluster) => cluster.online_count(Some(account.clone())).await?,
                None => state
                    .hub
                    .online_by_account()
                    .into_iter()
                    .find(|(a, _)| a == account)
                    .map_or(0, |(_, p)| p.len()),
            };
            let name = "simrelay_phones_online";
            let _ = writeln!(
                out,
                "# HELP {name} The account's phones with a live link.\n# TYPE {name} gauge\n{name} {online}"
            );
            crate::api::limits::metrics(state, account, &mut out).await?;
            Some(account.as_str())
        }
    };
    sim_metrics(state, only, &mut out).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}

/// Relay-wide figures: messages by state, phones online, webhook queue depth, frames in flight.
async fn totals(state: &AppState, out: &mut String) -> Result<(), AppError> {
    let c = state.db.call(|s| s.counts()).await?;
    let _ = writeln!(out, "# HELP simrelay_messages Messages by state.");
    let _ = writeln!(out, "# TYPE simrelay_messages gauge");
    for (st, n) in &c.messages_by_state {
        let _ = writeln!(out, "simrelay_messages{{state=\"{st}\"}} {n}");
    }
    // On a cluster, a phone is online while any node holds a link to it (the store's view);
    // this node's own links are `simrelay_node_links`.
    let online = match &state.cluster {
        Some(cluster) => cluster.online_count(None).await?,
        None => state.hub.connected_count(),
    };
    let gauges = [
        (
            "simrelay_phones_online",
            "Phones with a live link (to any node of a cluster).",
            online as i64,
        ),
        (
            "simrelay_node_links",
            "Phone links this relay process holds.",
            state.hub.connected_count() as i64,
        ),
        (
            "simrelay_frames_in_flight",
            "Relay frames sent and not yet acknowledged.",
            state.hub.frames_in_flight() as i64,
        ),
        (
            "simrelay_webhook_queue",
            "Webhook deliveries waiting (incl. retries).",
            c.webhooks_pending,
        ),
        (
            "simrelay_webhook_dead",
            "Webhook deliveries given up.",
            c.webhooks_dead,
        ),
        (
            "simrelay_recipients_unrouted",
            "Recipients waiting for a phone.",
            c.unrouted,
        ),
    ];
    for (name, help, v) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
    }
    let (passes, secs) = state.passes.totals();
    let _ = writeln!(
        out,
        "# HELP simrelay_routing_passes_total Routing passes this process ran since start.\n# TYPE simrelay_routing_passes_total counter\nsimrelay_routing_passes_total {passes}\n\
         # HELP simrelay_routing_pass_seconds_total Wall time of those passes.\n# TYPE simrelay_routing_pass_seconds_total counter\nsimrelay_routing_pass_seconds_total {secs:.6}"
    );
    let limits = state.hub.limits();
    let _ = writeln!(
        out,
        "# HELP simrelay_incoming_refused_total Incoming SMS refused since start, by reason.\n# TYPE simrelay_incoming_refused_total counter"
    );
    for (reason, n) in limits.refused() {
        let _ = writeln!(
            out,
            "simrelay_incoming_refused_total{{reason=\"{reason}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP simrelay_pairing_refused_total Pairing attempts refused as too many since start.\n# TYPE simrelay_pairing_refused_total counter\nsimrelay_pairing_refused_total {}",
        limits
            .pairing_refused
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    Ok(())
}

/// Reads one figure of a SIM.
type SimFigure = fn(&crate::rack::SimStat) -> f64;

/// Per-SIM figures of the online phones: pace, queue, throughput, utilisation, state and
/// SIM-bound failures by reason (labels are phone ids and sub_ids, never numbers or text).
async fn sim_metrics(
    state: &AppState,
    only: Option<&str>,
    out: &mut String,
) -> Result<(), AppError> {
    let now = crate::store::now_ms();
    let mut stats = Vec::new();
    for (account, phones) in state.hub.online_by_account() {
        if only.is_some_and(|a| a != account) {
            continue;
        }
        let (input, sent) = state
            .db
            .call(move |s| {
                Ok((
                    s.routing_input(&account, now)?,
                    s.sent_since(&account, now - 600_000)?,
                ))
            })
            .await?;
        let phones: Vec<_> = phones
            .into_iter()
            .map(|p| (p.id, true, p.status.sims))
            .collect();
        stats.extend(state.rack.sim_stats(&input, &phones, &sent, now));
    }
    let series: [(&str, &str, SimFigure); 5] = [
        (
            "simrelay_sim_pace_ppm",
            "The phone's pace for the SIM, parts per minute.",
            |s| f64::from(s.parts_per_minute),
        ),
        (
            "simrelay_sim_queue_parts",
            "Parts routed to the SIM and not yet sent.",
            |s| f64::from(s.queue_parts),
        ),
        (
            "simrelay_sim_throughput_ppm",
            "Parts sent per minute over the last ten minutes.",
            |s| s.throughput_per_min,
        ),
        (
            "simrelay_sim_pace_utilisation",
            "Throughput over pace.",
            |s| s.pace_utilisation,
        ),
        (
            "simrelay_sim_drain_seconds",
            "Seconds to send what the SIM holds at its pace.",
            |s| s.drain_seconds,
        ),
    ];
    for (name, help, f) in series {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for s in &stats {
            let _ = writeln!(
                out,
                "{name}{{phone=\"{}\",sub_id=\"{}\"}} {}",
                s.phone,
                s.sub_id,
                f(s)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP simrelay_sim_state SIM health (1 for the current state).\n# TYPE simrelay_sim_state gauge"
    );
    for s in &stats {
        let _ = writeln!(
            out,
            "simrelay_sim_state{{phone=\"{}\",sub_id=\"{}\",state=\"{}\"}} 1",
            s.phone, s.sub_id, s.state
        );
    }
    let _ = writeln!(
        out,
        "# HELP simrelay_sim_failures_total SIM-bound failures by reason since start.\n# TYPE simrelay_sim_failures_total counter"
    );
    for s in &stats {
        for (reason, n) in &s.failures {
            let _ = writeln!(
                out,
                "simrelay_sim_failures_total{{phone=\"{}\",sub_id=\"{}\",reason=\"{reason}\"}} {n}",
                s.phone, s.sub_id
            );
        }
    }
    Ok(())
}
