//! `POST /hooks/jira`: status, assignee and public-comment changes made in Jira are posted into
//! the incident channel. Deliveries are verified with the webhook's secret (HMAC-SHA256 in
//! `X-Hub-Signature`); unsigned or badly signed ones get 401. Changes warroom made itself are not
//! echoed back (loop prevention).

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::HttpState;
use super::error::ApiError;
use super::jira_hook::{ChangeKind, SIGNATURE_HEADER, is_own_write, parse_event, verify_signature};
use crate::desk::jira::JiraDesk;
use crate::intake::IntakeError;
use crate::jobs;
use crate::slack::blocks::escape;

/// The Jira desk and the secret its webhook signs with.
#[derive(Clone)]
pub struct JiraHook {
    pub desk: Arc<JiraDesk>,
    pub secret: Option<SecretString>,
}

/// Receives one Jira webhook delivery.
pub async fn receive(
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let Some(hook) = &state.jira else {
        return Err(ApiError::NotFound("the Jira desk is not configured ([desk] kind = \"jira\")".to_owned()));
    };
    let Some(secret) = &hook.secret else {
        return Err(ApiError::Unauthorized("set desk.jira.webhook_secret_env: unsigned Jira deliveries are refused"));
    };
    let limit = state.services.settings.http.body_limit_bytes;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| ApiError::TooLarge { limit })?;
    let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    if !verify_signature(secret.expose_secret().as_bytes(), &bytes, signature) {
        return Err(ApiError::Unauthorized("missing or bad X-Hub-Signature"));
    }
    let changes = parse_event(&bytes).map_err(|e| ApiError::BadRequest(IntakeError::new("body", e.to_string())))?;
    let own = hook.desk.own_account_id().await.unwrap_or_default();
    let services = &state.services;
    let now = services.clock.now();
    let mut posts = Vec::new();
    for change in changes.iter().filter(|c| !is_own_write(c, &own)) {
        let Some(id) = services.store.incident_by_ticket(&change.issue_key).await? else {
            continue;
        };
        let key = escape(&change.issue_key);
        let text = match &change.kind {
            ChangeKind::StatusChanged { to, .. } => format!(":ticket: {key} moved to *{}* in Jira", escape(to)),
            ChangeKind::AssigneeChanged { to, .. } => {
                format!(
                    ":ticket: {key} assigned to {} in Jira",
                    to.as_deref().map_or_else(|| "nobody".to_owned(), escape)
                )
            }
            ChangeKind::PublicComment { author, text } => {
                format!(":speech_balloon: {} commented on {key} in Jira: {}", escape(author), escape(text))
            }
        };
        posts.push(jobs::new::post_markup(id, &text, false));
    }
    // One transaction per delivery, keyed by its content: a redelivery posts nothing again.
    let delivery = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    let mut tx = services.store.begin().await?;
    if !tx.record_inbound("jira", &delivery, now).await? {
        return Ok((StatusCode::ACCEPTED, Json(json!({ "posted": 0, "duplicate": true }))));
    }
    for job in &posts {
        jobs::enqueue(&mut *tx, job, now, services.settings.jobs.retry_budget).await?;
    }
    tx.commit().await?;
    let posted = posts.len();
    if posted > 0 {
        services.nudge.nudge();
    }
    Ok((StatusCode::ACCEPTED, Json(json!({ "posted": posted }))))
}
