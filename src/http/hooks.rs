//! `POST /hooks/{source}`: checks in the contract's order — 401 token, 413 size, 415 type, 400
//! payload — then stores the delivery and answers `202 {"incident", "outcome"}`.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::HttpState;
use super::auth::require_bearer;
use super::error::ApiError;
use crate::domain::SourceKind;
use crate::intake;

const HOOK_SOURCES: &str = "alertmanager, dynatrace, generic or keptn";

/// Receives one delivery from an alert source.
pub async fn receive(
    State(state): State<HttpState>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let source = match source.parse::<SourceKind>() {
        Ok(kind) if kind != SourceKind::Slack => kind,
        _ => {
            return Err(ApiError::NotFound(format!("unknown hook `{source}`: expected {HOOK_SOURCES}")));
        }
    };
    let bytes = checked_body(&state, &headers, body).await?;
    let problem = intake::parse(source, &bytes, &state.services.settings.severity).map_err(ApiError::BadRequest)?;
    let ingested = state.ingester.ingest(problem, bytes).await?;
    let body = json!({ "incident": ingested.incident.map(|i| i.to_string()), "outcome": ingested.outcome.as_str() });
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// The contract's checks, in order: 401 token, 413 size, 415 content type. Returns the body.
pub async fn checked_body(state: &HttpState, headers: &HeaderMap, body: Body) -> Result<axum::body::Bytes, ApiError> {
    if let Some(token) = &state.webhook_token {
        require_bearer(headers, token)?;
    }
    let limit = state.services.settings.http.body_limit_bytes;
    let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(ApiError::TooLarge { limit });
    }
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| ApiError::TooLarge { limit })?;
    if !is_json(headers) {
        return Err(ApiError::NotJson);
    }
    Ok(bytes)
}

/// `application/json` or any `+json` type, parameters allowed.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mime = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}
