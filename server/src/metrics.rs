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
    sim_metrics(&state, &mut out).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out))
}

/// Reads one figure of a SIM.
type SimFigure = fn(&crate::rack::SimStat) -> f64;

/// Per-SIM figures of the online phones: pace, queue, throughput, utilisation, state and
/// SIM-bound failures by reason (labels are phone ids and sub_ids, never numbers or text).
async fn sim_metrics(state: &AppState, out: &mut String) -> Result<(), AppError> {
    let now = crate::store::now_ms();
    let mut stats = Vec::new();
    for (account, phones) in state.hub.online_by_account() {
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
