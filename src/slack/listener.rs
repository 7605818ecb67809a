//! Socket Mode, owned by the app. Before connecting, `auth.test` (bot token) and
//! `apps.connections.open` (app token) are checked; while either fails, the cause is logged once,
//! shown in `/healthz`, and retried with backoff — webhooks keep being accepted and their Slack
//! work waits in the job table. Then slack-morphism's listener runs (started and shut down here,
//! never its signal-handling `serve()`), and reconnects by itself on `disconnect` frames and
//! dropped sockets.
//!
//! slack-morphism acks an envelope only when its callback returns, and Slack wants the ack within
//! 3 s, so callbacks only verify, record and enqueue (see [`super::inbound`]).

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use slack_morphism::prelude::*;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::client::{Connector, Identity, SlackApi, SlackError};
use super::inbound::Inbound;
use crate::config::SlackSettings;
use crate::health::{Health, SlackState};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Runs Socket Mode until `stop` is cancelled.
pub struct SocketMode {
    pub api: SlackApi,
    pub app_token: SecretString,
    pub settings: SlackSettings,
    pub health: Health,
    pub inbound: Arc<Inbound>,
}

impl SocketMode {
    /// Checks the tokens (retrying with backoff), then listens until `stop`.
    pub async fn run(self, stop: CancellationToken) -> anyhow::Result<()> {
        let Some(identity) = self.preflight(&stop).await else {
            return Ok(());
        };
        info!(slack.team = %identity.team_id, slack.bot_user = %identity.user_id, "Slack accepted warroom's tokens");
        self.inbound.set_identity(identity);
        self.health.set_slack(SlackState::Connecting);

        let environment = Arc::new(
            SlackClientEventsListenerEnvironment::new(self.api.client())
                .with_error_handler(on_listener_error)
                .with_user_state(Arc::clone(&self.inbound)),
        );
        let config = SlackClientSocketModeConfig::new()
            .with_max_connections_count(self.settings.socket_connections)
            .with_initial_backoff_in_seconds(self.settings.reconnect_delay.as_secs())
            .with_reconnect_timeout_in_seconds(self.settings.reconnect_delay.as_secs().max(1));
        let listener = SlackClientSocketModeListener::new(&config, environment, callbacks(&self.inbound));
        let token = SlackApiToken::new(self.app_token.expose_secret().to_owned().into());
        listener.listen_for(&token).await.map_err(|e| anyhow::anyhow!("starting Socket Mode: {e}"))?;
        listener.start().await;
        let heartbeat = self.settings.heartbeat.max(std::time::Duration::from_millis(10));
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(heartbeat) => {
                    if let Err(e) = self.inbound.heartbeat().await {
                        warn!(error = %e, "could not record that warroom is listening");
                    }
                }
            }
        }
        info!("closing Slack Socket Mode connections");
        if let Err(e) = self.inbound.heartbeat().await {
            warn!(error = %e, "could not record the last moment warroom was listening");
        }
        listener.shutdown().await;
        Ok(())
    }

    /// Retries `auth.test` and the app token until both pass; `None` if stopped first.
    async fn preflight(&self, stop: &CancellationToken) -> Option<Identity> {
        let mut delay = self.settings.retry_initial;
        let mut last_cause: Option<String> = None;
        loop {
            match self.check_tokens().await {
                Ok(identity) => return Some(identity),
                Err(cause) => {
                    self.health.set_slack(SlackState::Error(cause.clone()));
                    if last_cause.as_deref() == Some(cause.as_str()) {
                        warn!(slack.cause = %cause, retry_in_ms = delay.as_millis() as u64, "Slack still unavailable: {cause}");
                    } else {
                        error!(slack.cause = %cause, retry_in_ms = delay.as_millis() as u64, "cannot connect to Slack: {cause}; webhooks are still accepted and Slack work waits in the job queue");
                        last_cause = Some(cause);
                    }
                }
            }
            tokio::select! {
                () = stop.cancelled() => return None,
                () = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(self.settings.retry_max).max(Duration::from_millis(1));
        }
    }

    async fn check_tokens(&self) -> Result<Identity, String> {
        let identity = self.api.auth_test().await.map_err(|e| describe("SLACK_BOT_TOKEN", &e))?;
        self.api.check_app_token(&self.app_token).await.map_err(|e| describe("SLACK_APP_TOKEN", &e))?;
        Ok(identity)
    }
}

/// `invalid_auth (SLACK_BOT_TOKEN)`, `missing_scope: the app token needs connections:write`, …
fn describe(variable: &str, error: &SlackError) -> String {
    match error.code() {
        Some("missing_scope") if variable == "SLACK_APP_TOKEN" => {
            "missing_scope (SLACK_APP_TOKEN needs the connections:write scope)".to_owned()
        }
        Some("not_allowed_token_type") => format!("not_allowed_token_type ({variable} is the wrong kind of token)"),
        Some(code) => format!("{code} ({variable})"),
        None => error.cause(),
    }
}

/// Socket errors and unparseable frames: logged, and the envelope acked anyway (slack-morphism's
/// default answers 400, i.e. no ack, which would make Slack redeliver a frame we cannot read).
/// An event whose effect could not be stored (database unavailable) is not acked, so Slack
/// redelivers it.
fn on_listener_error(
    error: BoxError,
    _client: Arc<SlackClient<Connector>>,
    _state: SlackClientEventsUserState,
) -> HttpStatusCode {
    if let Some(crate::store::StoreError::Unavailable(cause)) = error.downcast_ref::<crate::store::StoreError>() {
        warn!(error = %cause, "database unavailable: not acking the event so Slack delivers it again");
        return HttpStatusCode::SERVICE_UNAVAILABLE;
    }
    if let Ok(state) = _state.try_read()
        && let Some(inbound) = state.get_user_state::<Arc<Inbound>>()
    {
        inbound.on_socket_error();
    }
    warn!(error = %error, "Slack Socket Mode error; the listener reconnects by itself");
    HttpStatusCode::OK
}

/// `hello` frames. slack-morphism does not export the hello event's type, so this is generic
/// over it (inferred at the call site) and reads it through its `Serialize` impl.
fn on_hello<E>(
    event: E,
    _client: Arc<SlackClient<Connector>>,
    state: SlackClientEventsUserState,
) -> futures::future::BoxFuture<'static, ()>
where
    E: serde::Serialize + Send + 'static,
{
    Box::pin(async move {
        let hello = serde_json::to_value(&event).unwrap_or_default();
        let inbound = state.read().await.get_user_state::<Arc<Inbound>>().cloned();
        if let Some(inbound) = inbound {
            let app_id =
                hello.pointer("/connection_info/app_id").and_then(serde_json::Value::as_str).unwrap_or_default();
            let connections = hello.get("num_connections").and_then(serde_json::Value::as_u64).unwrap_or(0);
            inbound.on_hello(app_id, connections).await;
        }
    })
}

fn callbacks(inbound: &Arc<Inbound>) -> SlackSocketModeListenerCallbacks<Connector> {
    let mut callbacks = SlackSocketModeListenerCallbacks::<Connector>::new().with_hello_events(on_hello);
    let push = Arc::clone(inbound);
    callbacks.push_events_callback = Box::new(move |event: SlackPushEventCallback, _client, _state| {
        let inbound = Arc::clone(&push);
        async move { inbound.on_push(event).await.map_err(|e| -> BoxError { e.into() }) }
    });
    let command = Arc::clone(inbound);
    callbacks.command_callback = Box::new(move |event: SlackCommandEvent, _client, _state| {
        let inbound = Arc::clone(&command);
        async move { Ok(inbound.on_command(event).await) }
    });
    let interaction = Arc::clone(inbound);
    callbacks.interaction_callback = Box::new(move |event: SlackInteractionEvent, _client, _state| {
        let inbound = Arc::clone(&interaction);
        async move { Ok(inbound.on_interaction(event).await) }
    });
    callbacks
}
