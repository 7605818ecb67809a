//! Everything that arrives over Socket Mode, parsed at the edge and handed to a use case.
//!
//! Callbacks run inside slack-morphism's reader, which acks only when they return (3 s budget,
//! and later envelopes on the socket wait): so they verify the team and app, record the event's
//! unique key in the same transaction as its effect (a redelivery is a no-op), and return. Slow
//! work is a job. Slack types stop here.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use slack_morphism::prelude::*;
use tracing::{debug, info, warn};

use super::blocks::{ButtonAction, parse_action};
use super::client::Identity;
use super::slash::{self, SlashCommand};
use crate::domain::IncidentId;
use crate::handlers::Services;
use crate::handlers::commands::{self, Change, HandlerError, reply_for};
use crate::handlers::events;
use crate::health::{Health, SlackState};
use crate::jobs;
use crate::oncall::OnCall;
use crate::store::StoreError;

/// The inbound side of Slack.
pub struct Inbound {
    services: Services,
    health: Health,
    oncall: Arc<dyn OnCall>,
    // std locks: read on every envelope, written once per connection; never held across an await.
    identity: RwLock<Option<Identity>>,
    app_id: RwLock<Option<String>>,
}

impl Inbound {
    /// An inbound handler; the identity is learned from `auth.test`, the app id from `hello`.
    pub fn new(services: Services, health: Health, oncall: Arc<dyn OnCall>) -> Self {
        Self { services, health, oncall, identity: RwLock::new(None), app_id: RwLock::new(None) }
    }

    /// Records who the bot is.
    pub fn set_identity(&self, identity: Identity) {
        *self.identity.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(identity);
    }

    /// A socket connected.
    pub fn on_hello(&self, app_id: &str, connections: u64) {
        info!(slack.app = %app_id, slack.connections = connections, "Slack Socket Mode connected");
        if !app_id.is_empty() {
            *self.app_id.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(app_id.to_owned());
        }
        self.health.set_slack(SlackState::Connected);
    }

    /// Envelopes from another team or app are acked and ignored.
    fn is_ours(&self, team: &str, app: Option<&str>) -> bool {
        let identity = self.identity.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let team_ok = identity.as_ref().is_none_or(|i| i.team_id == team);
        let app_ok = match (app, self.app_id.read().unwrap_or_else(std::sync::PoisonError::into_inner).as_deref()) {
            (Some(got), Some(expected)) => got == expected,
            _ => true,
        };
        if !(team_ok && app_ok) {
            warn!(slack.team = team, slack.app = app, "ignoring an envelope from another team or app");
        }
        team_ok && app_ok
    }

    /// An Events API envelope. An `Err` that is a [`StoreError::Unavailable`] is not acked, so
    /// Slack redelivers it once the database is back.
    pub async fn on_push(&self, event: SlackPushEventCallback) -> Result<(), StoreError> {
        if !self.is_ours(event.team_id.as_ref(), Some(event.api_app_id.as_ref())) {
            return Ok(());
        }
        let event_id = event.event_id.to_string();
        match event.event {
            SlackEventCallbackBody::MemberJoinedChannel(joined) => {
                events::member_joined(&self.services, &event_id, joined.channel.as_ref(), joined.user.as_ref()).await
            }
            other => {
                debug!(slack.event = %event_id, "ignoring event {:?}", std::mem::discriminant(&other));
                Ok(())
            }
        }
    }

    /// A `/incident` slash command; the returned reply rides in the ack.
    pub async fn on_command(&self, command: SlackCommandEvent) -> SlackCommandEventResponse {
        if !self.is_ours(command.team_id.as_ref(), None) {
            return ephemeral("This command came from a workspace warroom does not serve.");
        }
        let text = command.text.clone().unwrap_or_default();
        let reply = match slash::parse(&text) {
            Err(usage) => usage.to_string(),
            Ok(SlashCommand::Help) => slash::help(),
            Ok(parsed) => match self.run_command(&command, parsed).await {
                Ok(reply) => reply,
                Err(error) => reply_for(&error),
            },
        };
        ephemeral(&reply)
    }

    async fn run_command(&self, command: &SlackCommandEvent, parsed: SlashCommand) -> Result<String, HandlerError> {
        let services = &self.services;
        let user = command.user_id.to_string();
        let dedupe = command.trigger_id.to_string();
        let incident = services.store.incident_by_channel(command.channel_id.as_ref()).await?.map(|(id, _)| id);
        let in_incident = |what: &str| {
            incident.ok_or_else(|| {
                HandlerError::User(format!(
                    "`/incident {what}` works in an incident channel. Run it there, or start one with `/incident declare <title>`."
                ))
            })
        };
        let change = match parsed {
            SlashCommand::Help => return Ok(slash::help()),
            SlashCommand::Declare { title, severity, service } => {
                let id = commands::declare(services, &user, &title, severity, service, &dedupe).await?;
                return Ok(format!("Declared {id}: its war room is being opened and the on-call invited."));
            }
            SlashCommand::OnCall { service } => {
                let (name, labels) = match (service, incident) {
                    (Some(name), _) => (Some(name), BTreeMap::new()),
                    (None, Some(id)) => match services.store.incident(id).await? {
                        Some(i) => (i.service, i.labels),
                        None => (None, BTreeMap::new()),
                    },
                    (None, None) => (None, BTreeMap::new()),
                };
                return commands::on_call(services, self.oncall.as_ref(), name.as_deref(), &labels).await;
            }
            SlashCommand::Timeline => return commands::timeline(services, in_incident("timeline")?).await,
            SlashCommand::Ticket => return commands::ticket(services, in_incident("ticket")?).await,
            SlashCommand::Runbooks | SlashCommand::Run { .. } => {
                in_incident("run")?;
                return Err(HandlerError::User(format!(
                    "No runbooks are configured: add TOML files to `{}` (see the README).",
                    services.settings.commands_dir.display()
                )));
            }
            SlashCommand::Ack => Change::Acknowledge,
            SlashCommand::Status(status) => Change::Status(status),
            SlashCommand::Severity(severity) => Change::Severity(severity),
            SlashCommand::Assign(person) => Change::Assign(person.as_str().to_owned()),
            SlashCommand::Lead(person) => Change::Lead(person.as_str().to_owned()),
            SlashCommand::Note { text, public } => Change::Note { text, public },
            SlashCommand::Resolve { summary } => Change::Resolve { summary },
        };
        let id = in_incident("this")?;
        commands::apply(services, id, &user, change, &dedupe).await
    }

    /// Button presses (`v1:ack`, `v1:resolve`); the answer to the presser goes through a job.
    pub async fn on_interaction(&self, interaction: SlackInteractionEvent) -> SlackInteractionResponse {
        let SlackInteractionEvent::BlockActions(press) = interaction else {
            return SlackInteractionResponse::Empty;
        };
        let team = press.team.id.to_string();
        if !self.is_ours(&team, Some(press.api_app_id.as_ref())) {
            return SlackInteractionResponse::Empty;
        }
        let Some(user) = press.user.as_ref().map(|u| u.id.to_string()) else {
            return SlackInteractionResponse::Empty;
        };
        let response_url = press.response_url.as_ref().map(|u| u.0.to_string());
        for action in press.actions.iter().flatten() {
            let Some(kind) = parse_action(action.action_id.as_ref()) else {
                debug!(slack.action = %action.action_id, "ignoring an action warroom does not know");
                continue;
            };
            let value = action.value.clone().unwrap_or_default();
            let result = match value.parse::<IncidentId>() {
                Err(e) => Err(HandlerError::User(format!("This button does not name an incident ({e}).",))),
                Ok(id) => {
                    let dedupe =
                        action.action_ts.as_ref().map_or_else(|| press.trigger_id.to_string(), ToString::to_string);
                    match kind {
                        ButtonAction::Ack => {
                            commands::apply(&self.services, id, &user, Change::Acknowledge, &dedupe).await
                        }
                        ButtonAction::Resolve => {
                            commands::apply(&self.services, id, &user, Change::Resolve { summary: None }, &dedupe).await
                        }
                        ButtonAction::Run(runbook) => {
                            Err(HandlerError::User(format!("The runbook `{runbook}` is not configured.")))
                        }
                    }
                }
            };
            if let (Err(error), Some(url)) = (result, &response_url) {
                let text = reply_for(&error);
                if let Err(e) = self.enqueue_reply(url, &text).await {
                    warn!(error = %e, "could not queue the answer to a button press");
                }
            }
        }
        SlackInteractionResponse::Empty
    }

    async fn enqueue_reply(&self, response_url: &str, text: &str) -> Result<(), StoreError> {
        let now = self.services.clock.now();
        let mut tx = self.services.store.begin().await?;
        jobs::enqueue(&mut *tx, &jobs::new::reply(response_url, text), now, self.services.settings.jobs.retry_budget)
            .await?;
        tx.commit().await?;
        self.services.nudge.nudge();
        Ok(())
    }
}

fn ephemeral(text: &str) -> SlackCommandEventResponse {
    SlackCommandEventResponse::new(SlackMessageContent::new().with_text(text.to_owned()))
        .with_response_type(SlackMessageResponseType::Ephemeral)
}
