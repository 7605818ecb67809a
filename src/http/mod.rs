//! The HTTP edge (axum): `/hooks/{source}`, `/api/*`, `/healthz`. Handlers authenticate, parse,
//! store and answer; nothing here talks to Slack or a desk.

pub mod api;
pub mod auth;
pub mod deployments;
pub mod error;
pub mod hooks;
pub mod jira;
pub mod jira_hook;
pub mod tickets;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use secrecy::SecretString;
use tower_http::trace::TraceLayer;

use crate::handlers::Services;
use crate::health::Health;

/// Shared state of every route.
#[derive(Clone)]
pub struct HttpState {
    pub services: Services,
    pub health: Health,
    /// `None` only when started with `--insecure-no-webhook-auth`.
    pub webhook_token: Option<Arc<SecretString>>,
    /// `None` disables `/api/*` (it serves transcripts, so it never runs open).
    pub api_token: Option<Arc<SecretString>>,
    /// The base URL people and links use to reach this server.
    pub public_url: String,
    /// The desk whose tickets `/api/tickets/*` serves.
    pub desk: Arc<dyn crate::desk::Desk>,
    /// Stores deliveries with group commit.
    pub ingester: crate::handlers::ingester::Ingester,
    /// The Jira desk and its webhook secret, when Jira keeps the tickets.
    pub jira: Option<jira::JiraHook>,
}

/// All routes.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/hooks/deployments", post(deployments::receive))
        .route("/hooks/jira", post(jira::receive))
        .route("/hooks/{source}", post(hooks::receive))
        .route("/healthz", get(api::healthz))
        .route("/metrics", get(api::metrics))
        .route("/api/incidents", get(api::list_incidents))
        .route("/api/incidents/{id}", get(api::get_incident))
        .route("/api/incidents/{id}/transcript", get(api::get_transcript))
        .route("/api/tickets/{key}", get(tickets::get_ticket))
        .route("/api/tickets/{key}/attachments/{name}", get(tickets::get_attachment))
        .fallback(error::not_found)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
