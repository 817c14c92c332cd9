//! `/healthz` and `/metrics` (Prometheus text format).

use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::AppState;
use crate::error::AppError;

/// `GET /healthz`: 200 once the store answers.
pub async fn healthz(State(state): State<AppState>) -> Result<&'static str, AppError> {
    state.db.call(|s| s.counts().map(|_| ())).await?;
    Ok("ok\n")
}

/// `GET /metrics`: messages by state, phones online, webhook queue depth, frames in flight.
pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, AppError> {
    let c = state.db.call(|s| s.counts()).await?;
    let mut out = String::new();
    let _ = writeln!(out, "# HELP simrelay_messages Messages by state.");
    let _ = writeln!(out, "# TYPE simrelay_messages gauge");
    for (st, n) in &c.messages_by_state {
        let _ = writeln!(out, "simrelay_messages{{state=\"{st}\"}} {n}");
    }
    let gauges = [
        (
            "simrelay_phones_online",
            "Phones with a live link.",
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
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out))
}
