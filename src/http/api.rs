//! The read API (`/api/*`, bearer `WARROOM_API_TOKEN`) and `/healthz`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::HttpState;
use super::auth::require_bearer;
use super::error::ApiError;
use crate::domain::{Alert, Incident, IncidentId, IncidentStatus, TimelineEvent};
use crate::intake::IntakeError;
use crate::store::IncidentFilter;

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 200;

fn authorize(state: &HttpState, headers: &HeaderMap) -> Result<(), ApiError> {
    match &state.api_token {
        Some(token) => require_bearer(headers, token),
        None => Err(ApiError::Unauthorized("the read API is disabled: set WARROOM_API_TOKEN or WARROOM_WEBHOOK_TOKEN")),
    }
}

/// `GET /healthz`: always 200 while HTTP serves; `degraded` when the database or Slack is not ok.
pub async fn healthz(State(state): State<HttpState>) -> Json<Value> {
    let database = match state.services.store.ping().await {
        Ok(()) => "ok".to_owned(),
        Err(e) => format!("error: {e}"),
    };
    let slack = state.health.slack().to_string();
    let status = if database == "ok" && slack == "connected" { "ok" } else { "degraded" };
    Json(json!({ "status": status, "database": database, "slack": slack }))
}

/// `GET /metrics`: Prometheus text. Counts come from the database, so every replica reports
/// the same totals; `warroom_slack_connected` is this process's own.
pub async fn metrics(State(state): State<HttpState>) -> Result<axum::response::Response, ApiError> {
    use std::fmt::Write as _;

    use axum::response::IntoResponse;
    let counts = state.services.store.counts().await?;
    let mut text = String::new();
    let _ = writeln!(text, "# HELP warroom_incidents Incidents by status.\n# TYPE warroom_incidents gauge");
    for (status, n) in &counts.incidents {
        let _ = writeln!(text, "warroom_incidents{{status=\"{status}\"}} {n}");
    }
    let _ = writeln!(text, "# HELP warroom_jobs Jobs by state (dead ones need attention).\n# TYPE warroom_jobs gauge");
    for (job_state, n) in &counts.jobs {
        let _ = writeln!(text, "warroom_jobs{{state=\"{job_state}\"}} {n}");
    }
    let _ = writeln!(
        text,
        "# HELP warroom_deliveries_total Deliveries by source and outcome.\n# TYPE warroom_deliveries_total counter"
    );
    for (source, outcome, n) in &counts.deliveries {
        let _ = writeln!(text, "warroom_deliveries_total{{source=\"{source}\",outcome=\"{outcome}\"}} {n}");
    }
    let connected = u8::from(state.health.slack() == crate::health::SlackState::Connected);
    let _ = writeln!(
        text,
        "# HELP warroom_slack_connected Whether Socket Mode is connected.\n# TYPE warroom_slack_connected gauge"
    );
    let _ = writeln!(text, "warroom_slack_connected {connected}");
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response())
}

/// `GET /api/incidents?status=&cursor=&limit=`, newest first.
pub async fn list_incidents(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers)?;
    let bad = |field: &str, message: String| ApiError::BadRequest(IntakeError::new(field, message));
    let status = query.get("status").map(|s| s.parse::<IncidentStatus>().map_err(|e| bad("status", e))).transpose()?;
    let before = query
        .get("cursor")
        .filter(|c| !c.is_empty())
        .map(|c| c.parse::<IncidentId>().map_err(|e| bad("cursor", e.to_string())))
        .transpose()?;
    let limit = match query.get("limit") {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| bad("limit", format!("expected a number from 1 to {MAX_LIMIT}")))?,
    };
    let incidents = state.services.store.list_incidents(&IncidentFilter { status, before, limit }).await?;
    let next_cursor = (incidents.len() == limit as usize).then(|| incidents.last().map(|i| i.id.to_string())).flatten();
    let items: Vec<Value> = incidents.iter().map(|i| incident_json(i, &state.public_url)).collect();
    Ok(Json(json!({ "incidents": items, "next_cursor": next_cursor })))
}

/// `GET /api/incidents/{id}` with alerts and timeline.
pub async fn get_incident(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers)?;
    let id: IncidentId = id.parse().map_err(|e: crate::domain::ids::IdError| ApiError::NotFound(e.to_string()))?;
    let store = &state.services.store;
    let incident = store.incident(id).await?.ok_or_else(|| ApiError::NotFound(format!("no incident {id}")))?;
    let mut body = incident_json(&incident, &state.public_url);
    body["alerts"] = store.alerts(id).await?.iter().map(alert_json).collect();
    body["timeline"] = store.timeline(id).await?.iter().map(timeline_json).collect();
    Ok(Json(body))
}

/// `GET /api/incidents/{id}/transcript` as Markdown; 404 until the incident has one.
pub async fn get_transcript(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    authorize(&state, &headers)?;
    let id: IncidentId = id.parse().map_err(|e: crate::domain::ids::IdError| ApiError::NotFound(e.to_string()))?;
    let markdown = state.services.store.transcript(id).await?.ok_or_else(|| {
        ApiError::NotFound(format!("{id} has no transcript yet: it is attached when the incident resolves"))
    })?;
    Ok(([(axum::http::header::CONTENT_TYPE, "text/markdown; charset=utf-8")], markdown).into_response())
}

fn time(t: Option<jiff::Timestamp>) -> Value {
    t.map_or(Value::Null, |t| Value::String(t.to_string()))
}

/// The contract's incident shape (without alerts and timeline).
#[must_use]
pub fn incident_json(i: &Incident, public_url: &str) -> Value {
    json!({
        "id": i.id.to_string(),
        "title": i.title,
        "severity": i.severity.as_str(),
        "service": i.service,
        "status": i.status.as_str(),
        "source": i.source.as_str(),
        "problem_key": i.problem_key.as_str(),
        "opened_at": i.opened_at.to_string(),
        "acknowledged_at": time(i.acknowledged_at),
        "resolved_at": time(i.resolved_at),
        "channel": i.channel.as_ref().map(|c| json!({ "id": c.id, "name": c.name })),
        "ticket": i.ticket.as_ref().map(|t| json!({ "key": t.as_str(), "url": format!("{public_url}/api/tickets/{t}") })),
    })
}

fn alert_json(a: &Alert) -> Value {
    json!({
        "fingerprint": a.fingerprint,
        "status": a.status.as_str(),
        "summary": a.summary,
        "labels": a.labels,
        "starts_at": time(a.starts_at),
        "ends_at": time(a.ends_at),
        "url": a.url,
    })
}

fn timeline_json(e: &TimelineEvent) -> Value {
    json!({ "at": e.at.to_string(), "kind": e.kind, "actor": e.actor.to_string(), "text": e.text })
}
