//! `POST /hooks/deployments`: a CI/CD pipeline reports a deployment, so the context message can
//! show the last one and runbooks can roll back to the previous one.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::HttpState;
use super::error::ApiError;
use super::hooks::checked_body;
use crate::domain::runbook_run::Deployment;
use crate::intake::{IntakeError, from_json, non_empty, required_text};
use crate::jobs;

/// `{"service", "version"}` required; `environment`, `commit`, `url`, `pipeline`, and `runbook`
/// (the runbook shipped with the release for remediating it) optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeploymentBody {
    service: String,
    version: String,
    #[serde(default)]
    environment: Option<String>,
    #[serde(default)]
    commit: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    pipeline: Option<String>,
    #[serde(default)]
    runbook: Option<String>,
}

/// Records a deployment and re-renders the open incidents of its service.
pub async fn receive(
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let bytes = checked_body(&state, &headers, body).await?;
    let raw: DeploymentBody = from_json(&bytes).map_err(ApiError::BadRequest)?;
    let service = required_text("service", &raw.service).map_err(ApiError::BadRequest)?;
    let version = required_text("version", &raw.version).map_err(ApiError::BadRequest)?;
    if let Some(url) = raw.url.as_deref().filter(|u| url::Url::parse(u).is_err()) {
        return Err(ApiError::BadRequest(IntakeError::new("url", format!("`{url}` is not an absolute URL"))));
    }
    let services = &state.services;
    let now = services.clock.now();
    let deployment = Deployment {
        service: service.clone(),
        environment: non_empty(raw.environment),
        version,
        commit: non_empty(raw.commit),
        url: non_empty(raw.url),
        pipeline: non_empty(raw.pipeline),
        runbook: non_empty(raw.runbook),
        deployed_at: now,
    };
    let id = services.store.record_deployment(&deployment).await?;
    let affected = services.store.open_incidents_of(&service).await?;
    if !affected.is_empty() {
        let mut tx = services.store.begin().await?;
        for incident in &affected {
            jobs::enqueue(&mut *tx, &jobs::new::render_war_room(*incident), now, services.settings.jobs.retry_budget)
                .await?;
        }
        tx.commit().await?;
        services.nudge.nudge();
    }
    tracing::info!(deployment.id = id, service = %service, "deployment of {service} recorded");
    Ok((StatusCode::ACCEPTED, Json(json!({ "deployment": id }))))
}
