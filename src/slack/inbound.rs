//! Everything that arrives over Socket Mode, parsed at the edge and handed to a use case.
//!
//! Callbacks run inside slack-morphism's reader, which acks only when they return (3 s budget,
//! and later envelopes on the socket wait): so they verify the team and app, record the event's
//! unique key in the same transaction as its effect (a redelivery is a no-op), and return. Slow
//! work is a job. Slack types stop here.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use slack_morphism::prelude::*;
use tracing::{debug, info, warn};

use super::blocks::escape;
use super::blocks::{ButtonAction, parse_action};
use super::capture::capture_of;
use super::client::{Identity, SlackApi};
use super::slash::{self, SlashCommand};
use crate::domain::IncidentId;
use crate::domain::transcript::{Capture, Captured, EntryKind};
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
    api: SlackApi,
    // std locks: read on every envelope, written once per connection; never held across an await.
    identity: RwLock<Option<Identity>>,
    app_id: RwLock<Option<String>>,
    /// Whether a socket is up (set on `hello`, cleared on a socket error).
    connected: AtomicBool,
}

impl Inbound {
    /// An inbound handler; the identity is learned from `auth.test`, the app id from `hello`.
    pub fn new(services: Services, health: Health, oncall: Arc<dyn OnCall>, api: SlackApi) -> Self {
        Self {
            services,
            health,
            oncall,
            api,
            identity: RwLock::new(None),
            app_id: RwLock::new(None),
            connected: AtomicBool::new(false),
        }
    }

    pub(super) fn services(&self) -> &Services {
        &self.services
    }

    pub(super) fn api(&self) -> &SlackApi {
        &self.api
    }

    pub(super) fn oncall(&self) -> Arc<dyn OnCall> {
        Arc::clone(&self.oncall)
    }

    /// Records who the bot is.
    pub fn set_identity(&self, identity: Identity) {
        *self.identity.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(identity);
    }

    /// A socket connected.
    pub async fn on_hello(&self, app_id: &str, connections: u64) {
        info!(slack.app = %app_id, slack.connections = connections, "Slack Socket Mode connected");
        if !app_id.is_empty() {
            *self.app_id.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(app_id.to_owned());
        }
        self.health.set_slack(SlackState::Connected);
        self.connected.store(true, Ordering::SeqCst);
        if let Err(e) = self.heartbeat().await {
            warn!(error = %e, "could not record that warroom is listening");
        }
    }

    /// A socket failed: until the next `hello`, warroom may not be hearing everything.
    pub fn on_socket_error(&self) {
        self.connected.store(false, Ordering::SeqCst);
    }

    /// Records that warroom is listening; a silence longer than the tolerance since the last
    /// heartbeat (process stopped, sockets down) becomes a gap the transcript backfills.
    pub async fn heartbeat(&self) -> Result<(), StoreError> {
        if !self.connected.load(Ordering::SeqCst) {
            return Ok(());
        }
        let now = self.services.clock.now();
        let previous = self.services.store.heartbeat(now).await?;
        let tolerance = self.services.settings.slack.heartbeat * 3;
        if let Some(previous) = previous
            && now.duration_since(previous)
                > jiff::SignedDuration::try_from(tolerance).unwrap_or(jiff::SignedDuration::MAX)
        {
            info!("warroom was not listening from {previous} to {now}; transcripts backfill that gap");
            self.services.store.record_gap(previous, now).await?;
        }
        Ok(())
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
            // Every `message` event (whichever variant slack-morphism parsed it into, `Unknown`
            // included) is read from its wire shape, so the transcript misses none.
            other => {
                let raw = serde_json::to_value(&other).unwrap_or_default();
                let channel = raw.get("channel").and_then(serde_json::Value::as_str);
                match (raw.get("type").and_then(serde_json::Value::as_str), channel) {
                    (Some("message"), Some(channel)) => match capture_of(channel, &raw) {
                        Some(change) => events::capture(&self.services, channel, &change).await,
                        None => Ok(()),
                    },
                    (kind, _) => {
                        debug!(slack.event = %event_id, "ignoring a {} event", kind.unwrap_or("typeless"));
                        Ok(())
                    }
                }
            }
        }
    }

    /// A `/incident` slash command; the returned reply rides in the ack.
    pub async fn on_command(&self, command: SlackCommandEvent) -> SlackCommandEventResponse {
        if !self.is_ours(command.team_id.as_ref(), None) {
            return ephemeral("This command came from a workspace warroom does not serve.");
        }
        let text = command.text.clone().unwrap_or_default();
        self.capture_action(
            command.channel_id.as_ref(),
            command.user_id.as_ref(),
            EntryKind::SlashCommand,
            &format!("/incident {text}"),
        )
        .await;
        let reply = match slash::parse(&text) {
            Err(usage) => escape(&usage.to_string()),
            Ok(SlashCommand::Help) => escape(&slash::help()),
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
                    "`/incident {what}` works in an incident channel. Run it there, or start one with `/incident declare &lt;title&gt;`."
                ))
            })
        };
        let name = parsed.name();
        let change = match parsed {
            SlashCommand::Help => return Ok(escape(&slash::help())),
            SlashCommand::Declare { title, severity, service } => {
                let id = commands::declare(services, &user, &title, severity, service, &dedupe).await?;
                return Ok(format!("Declared {id}: its war room is being opened and the on-call invited."));
            }
            SlashCommand::OnCall { service } => {
                let (service_name, labels) = match (service, incident) {
                    (Some(name), _) => (Some(name), BTreeMap::new()),
                    (None, Some(id)) => match services.store.incident(id).await? {
                        Some(i) => (i.service, i.labels),
                        None => (None, BTreeMap::new()),
                    },
                    (None, None) => (None, BTreeMap::new()),
                };
                return Ok(self.on_call_reply(command, service_name, labels).await);
            }
            SlashCommand::Timeline => return commands::timeline(services, in_incident(name)?).await,
            SlashCommand::Ticket => {
                let (services, id) = (services.clone(), in_incident(name)?);
                let work = async move { commands::ticket(&services, id).await };
                return Ok(self.answer_within_ack(command, "the ticket", work).await);
            }
            SlashCommand::Runbooks => {
                let id = in_incident(name)?;
                let incident = services
                    .store
                    .incident(id)
                    .await?
                    .ok_or_else(|| HandlerError::User(format!("{id} does not exist")))?;
                return Ok(crate::handlers::runbooks::list(&services.catalog, &incident));
            }
            SlashCommand::Run { runbook, params, again } => {
                let id = in_incident(name)?;
                // Authorising may ask Slack for user groups and a provider for the on-call.
                let work = self.gatekeeper().run_command(id, runbook.clone(), params, again, user);
                return Ok(self
                    .answer_within_ack(command, &format!("whether you may run {}", escape(&runbook)), work)
                    .await);
            }
            SlashCommand::Ack => Change::Acknowledge,
            SlashCommand::Status(status) => Change::Status(status),
            SlashCommand::Severity(severity) => Change::Severity(severity),
            SlashCommand::Assign(person) => Change::Assign(person.as_str().to_owned()),
            SlashCommand::Lead(person) => Change::Lead(person.as_str().to_owned()),
            SlashCommand::Note { text, public } => Change::Note { text, public },
            SlashCommand::Resolve { summary } => Change::Resolve { summary },
        };
        let id = in_incident(name)?;
        commands::apply(services, id, &user, change, &dedupe).await
    }

    /// Button presses (`v1:ack`, `v1:resolve`); the answer to the presser goes through a job.
    pub async fn on_interaction(&self, interaction: SlackInteractionEvent) -> SlackInteractionResponse {
        let press = match interaction {
            SlackInteractionEvent::BlockActions(press) => press,
            SlackInteractionEvent::ViewSubmission(submission) => {
                if !self.is_ours(submission.team.id.as_ref(), None) {
                    return SlackInteractionResponse::Empty;
                }
                return self.submit_params(&submission).await;
            }
            _ => return SlackInteractionResponse::Empty,
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
            if let Some(channel) = press.channel.as_ref().map(|c| c.id.to_string()) {
                let label = match parse_action(action.action_id.as_ref()) {
                    Some(ButtonAction::Ack) => "Acknowledge".to_owned(),
                    Some(ButtonAction::Resolve) => "Resolve".to_owned(),
                    Some(ButtonAction::Run(runbook)) => format!("Run {runbook}"),
                    None => action.action_id.to_string(),
                };
                self.capture_action(&channel, &user, EntryKind::ButtonPress, &label).await;
            }
            let is_run = matches!(kind, ButtonAction::Run(_));
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
                            self.press_runbook(id, &runbook, &user, press.trigger_id.as_ref()).await
                        }
                    }
                }
            };
            // Acknowledge and Resolve show in the channel; a runbook press tells the presser.
            let text = match result {
                Err(error) => Some(reply_for(&error)),
                Ok(text) if is_run && !text.is_empty() => Some(text),
                Ok(_) => None,
            };
            if let (Some(text), Some(url)) = (text, &response_url)
                && let Err(e) = self.enqueue_reply(url, &text).await
            {
                warn!(error = %e, "could not queue the answer to a button press");
            }
        }
        SlackInteractionResponse::Empty
    }

    /// Puts a slash command or button press into the incident channel's transcript.
    async fn capture_action(&self, channel: &str, user: &str, kind: EntryKind, text: &str) {
        let now = self.services.clock.now();
        let ts = super::capture::slack_ts(now);
        let entry = Captured {
            channel: channel.to_owned(),
            ts,
            thread_ts: None,
            user: Some(user.to_owned()),
            bot: false,
            kind,
            text: text.to_owned(),
            files: Vec::new(),
        };
        if let Err(e) = events::capture(&self.services, channel, &Capture::New(entry)).await {
            warn!(error = %e, slack.channel = channel, "could not record an action in the transcript");
        }
    }

    /// The `/incident oncall` answer. A provider (PagerDuty, Opsgenie) may take longer than an
    /// ack allows, so it is asked through [`Inbound::answer_within_ack`].
    async fn on_call_reply(
        &self,
        command: &SlackCommandEvent,
        service: Option<String>,
        labels: BTreeMap<String, String>,
    ) -> String {
        let (services, oncall, api) = (self.services.clone(), Arc::clone(&self.oncall), self.api.clone());
        let lookup = async move {
            let answer = commands::ask_on_call(&services, oncall.as_ref(), service.as_deref(), &labels).await?;
            Ok(commands::on_call_reply(&answer, &resolve_emails(&api, &answer).await))
        };
        self.answer_within_ack(command, "who is on call", lookup).await
    }

    /// `work`'s reply, when it comes within [`ACK_BUDGET`] (Slack gives a command 3 s). Past
    /// that the ack says the answer follows, and `work` goes on and posts it to the command's
    /// `response_url` as a reply job. For answers that ask another system (a provider, Jira).
    async fn answer_within_ack(
        &self,
        command: &SlackCommandEvent,
        what: &str,
        work: impl std::future::Future<Output = Result<String, HandlerError>> + Send + 'static,
    ) -> String {
        let mut work = tokio::spawn(async move { work.await.unwrap_or_else(|error| reply_for(&error)) });
        let gone = format!("Cannot tell {what}: the lookup stopped");
        let stopped = move |e: tokio::task::JoinError| format!("{gone} ({e}).");
        let Ok(answer) = tokio::time::timeout(ACK_BUDGET, &mut work).await else {
            let (services, response_url) = (self.services.clone(), command.response_url.0.to_string());
            tokio::spawn(async move {
                let text = work.await.unwrap_or_else(stopped);
                if let Err(e) = enqueue_reply(&services, &response_url, &text).await {
                    warn!(error = %e, "could not queue the answer to a slash command");
                }
            });
            return format!("Looking up {what}; the answer follows here in a moment.");
        };
        answer.unwrap_or_else(stopped)
    }

    async fn enqueue_reply(&self, response_url: &str, text: &str) -> Result<(), StoreError> {
        enqueue_reply(&self.services, response_url, text).await
    }
}

/// How long a slash command waits for an answer from another system inside its ack (Slack
/// allows 3 s, and the ack has more to do).
const ACK_BUDGET: std::time::Duration = std::time::Duration::from_millis(2000);

/// Queues a reply to a command's or action's `response_url`.
async fn enqueue_reply(services: &Services, response_url: &str, text: &str) -> Result<(), StoreError> {
    let now = services.clock.now();
    let mut tx = services.store.begin().await?;
    jobs::enqueue(&mut *tx, &jobs::new::reply(response_url, text), now, services.settings.jobs.retry_budget).await?;
    tx.commit().await?;
    services.nudge.nudge();
    Ok(())
}

/// Slack ids of the on-call people `answer` lists by email (cached lookups; an unknown email
/// stays an email).
async fn resolve_emails(api: &SlackApi, answer: &crate::oncall::OnCallAnswer) -> BTreeMap<String, String> {
    let mut resolved = BTreeMap::new();
    let next = answer.next.iter().flat_map(|n| n.people.iter());
    for person in answer.primary.iter().chain(next) {
        if let crate::oncall::PersonRef::Email(email) = person
            && let Ok(Some(id)) = api.user_by_email(email).await
        {
            resolved.insert(email.clone(), id);
        }
    }
    resolved
}

fn ephemeral(text: &str) -> SlackCommandEventResponse {
    SlackCommandEventResponse::new(SlackMessageContent::new().with_text(text.to_owned()))
        .with_response_type(SlackMessageResponseType::Ephemeral)
}
