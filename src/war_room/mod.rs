//! War-room jobs: what happens in Slack and on the desk when an incident opens, changes,
//! resolves or reopens. Every job is idempotent: it records each external id (channel, message
//! ts, ticket key) as soon as it has one, and a retry first looks for what an earlier attempt
//! made, so a crash anywhere costs a retry, never a duplicate.

mod escalate;
mod open;
mod resolve;
mod runbook;

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::OnceCell;
use tracing::warn;

use crate::config::Settings;
use crate::desk::{Desk, TicketDraft, TicketUpdate, priority_for};
use crate::domain::war_room::{Role, WarRoom};
use crate::domain::{Clock, Incident, IncidentId, TicketKey};
use crate::jobs::runner::{JobError, JobHandler};
use crate::jobs::{self, JobKind, NewJob};
use crate::oncall::OnCall;
use crate::runbook::catalog::{MatchInput, RunbookCatalog};
use crate::runbook::executor::Executors;
use crate::slack::blocks::{self, ContextView, TicketLink};
use crate::slack::client::{Identity, SlackApi};
use crate::sources::dynatrace::DynatraceClient;
use crate::store::{Job, Store};
use crate::transcript::redact::redact;

/// Runs war-room jobs.
pub struct WarRoomJobs {
    slack: Option<SlackApi>,
    store: Arc<dyn Store>,
    desk: Arc<dyn Desk>,
    oncall: Arc<dyn OnCall>,
    clock: Arc<dyn Clock>,
    settings: Arc<Settings>,
    public_url: String,
    identity: OnceCell<Identity>,
    catalog: Arc<RunbookCatalog>,
    executors: Arc<Executors>,
    dynatrace: Option<DynatraceClient>,
}

/// What the war-room jobs act through.
pub struct WarRoomParts {
    pub slack: Option<SlackApi>,
    pub store: Arc<dyn Store>,
    pub desk: Arc<dyn Desk>,
    pub oncall: Arc<dyn OnCall>,
    pub clock: Arc<dyn Clock>,
    pub settings: Arc<Settings>,
    /// The base URL of links to this server (tickets).
    pub public_url: String,
}

/// What runbook jobs need besides the war room's own parts.
pub struct Remediation {
    pub catalog: Arc<RunbookCatalog>,
    pub executors: Arc<Executors>,
    pub dynatrace: Option<DynatraceClient>,
}

impl WarRoomJobs {
    /// The handler; without `slack`, Slack jobs wait (retrying) until warroom is configured.
    pub fn new(parts: WarRoomParts, remediation: Remediation) -> Self {
        let WarRoomParts { slack, store, desk, oncall, clock, settings, public_url } = parts;
        let Remediation { catalog, executors, dynatrace } = remediation;
        Self {
            slack,
            store,
            desk,
            oncall,
            clock,
            settings,
            public_url,
            identity: OnceCell::new(),
            catalog,
            executors,
            dynatrace,
        }
    }

    fn slack(&self) -> Result<&SlackApi, JobError> {
        self.slack
            .as_ref()
            .ok_or_else(|| JobError::retry("Slack is not configured: set SLACK_BOT_TOKEN and SLACK_APP_TOKEN"))
    }

    /// The bot's identity, asked once.
    async fn identity(&self) -> Result<&Identity, JobError> {
        let slack = self.slack()?;
        self.identity.get_or_try_init(|| async { slack.auth_test().await }).await.map_err(JobError::from)
    }

    async fn incident(&self, id: IncidentId) -> Result<Incident, JobError> {
        self.store.incident(id).await?.ok_or_else(|| JobError::Permanent(format!("{id} no longer exists")))
    }

    /// The war room of the incident's current round, which must have a channel by now.
    async fn current_room(&self, incident: &Incident) -> Result<(WarRoom, String), JobError> {
        let room = self.store.war_room(incident.id, incident.reopen_count).await?;
        match room {
            Some(room) => match room.channel_id.clone() {
                Some(channel) => Ok((room, channel)),
                None => Err(JobError::retry(format!("{} has no channel yet", incident.id))),
            },
            None => Err(JobError::Permanent(format!("{} has no war room (opening it failed)", incident.id))),
        }
    }

    /// Runbook buttons offered on this incident's context message, each with its confirm text
    /// filled in for this incident (or its title, when that cannot be rendered yet).
    async fn offered_runbooks(&self, incident: &Incident) -> Vec<blocks::RunbookButton> {
        let offered = self.catalog.matching(&MatchInput::from_incident(incident));
        if offered.is_empty() {
            return Vec::new();
        }
        let context = crate::handlers::runbooks::context_for(self.store.as_ref(), incident).await.ok();
        offered
            .into_iter()
            .map(|runbook| {
                let confirm = context
                    .clone()
                    .and_then(|ctx| {
                        let params = runbook.params_with_defaults(&ctx, &Default::default()).ok()?;
                        runbook.confirm_text(&ctx.with_params(params)).ok()
                    })
                    .unwrap_or_else(|| format!("{}?", runbook.title()));
                let button = runbook.button();
                blocks::RunbookButton {
                    name: runbook.name().as_str().to_owned(),
                    label: button.label.clone(),
                    style: button.style.as_str().to_owned(),
                    confirm: Some(confirm),
                }
            })
            .collect()
    }

    fn ticket_url(&self, key: &TicketKey) -> String {
        format!("{}/api/tickets/{key}", self.public_url)
    }

    /// Renders the context message of `incident` for `room`.
    async fn render_context(&self, incident: &Incident, room: &WarRoom) -> Result<blocks::Rendered, JobError> {
        self.render_context_with(incident, room, None).await
    }

    /// Renders the context message, with the on-call people given or as recorded.
    async fn render_context_with(
        &self,
        incident: &Incident,
        room: &WarRoom,
        on_call: Option<&[String]>,
    ) -> Result<blocks::Rendered, JobError> {
        let alerts = self.store.alerts(incident.id).await?;
        let on_call: Vec<String> = match on_call {
            Some(people) => people.to_vec(),
            None => self
                .store
                .responders(incident.id)
                .await?
                .into_iter()
                .filter(|r| r.role == Role::OnCall)
                .map(|r| r.user)
                .collect(),
        };
        let url = incident.ticket.as_ref().map(|k| self.ticket_url(k));
        let previous = if room.round > 0 {
            self.store.war_room(incident.id, room.round - 1).await?.and_then(|r| r.channel_id)
        } else {
            None
        };
        let deployment = match &incident.service {
            Some(service) => self.store.deployments(service, None, 1).await?.into_iter().next(),
            None => None,
        };
        let deployment_line = deployment.as_ref().map(deployment_line);
        let offered = self.offered_runbooks(incident).await;
        let view = ContextView {
            incident,
            alerts: &alerts,
            on_call: &on_call,
            ticket: incident
                .ticket
                .as_ref()
                .zip(url.as_deref())
                .map(|(key, url)| TicketLink { key: key.as_str(), url }),
            previous_channel: previous.as_deref(),
            runbooks: &offered,
            last_deployment: deployment_line.as_deref(),
        };
        Ok(blocks::context_message(&view))
    }

    /// Creates the incident's ticket unless it has one.
    async fn ensure_ticket(&self, incident: &Incident) -> Result<TicketKey, JobError> {
        if let Some(key) = &incident.ticket {
            return Ok(key.clone());
        }
        let draft = TicketDraft {
            incident: incident.id,
            summary: format!("{}: {}", incident.id, incident.title),
            description: ticket_description(incident),
            priority: priority_for(incident.severity).to_owned(),
            labels: vec!["warroom".to_owned(), incident.id.to_string().to_ascii_lowercase()],
        };
        let key = self.desk.create(&draft).await?;
        self.store.set_incident_ticket(incident.id, &key).await?;
        Ok(key)
    }

    /// Enqueues follow-up jobs outside a state change (warnings found while running a job).
    async fn enqueue(&self, job: &NewJob) -> Result<(), JobError> {
        let now = self.clock.now();
        let mut tx = self.store.begin().await?;
        jobs::enqueue(&mut *tx, job, now, self.settings.jobs.retry_budget).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn render(&self, id: IncidentId) -> Result<(), JobError> {
        let incident = self.incident(id).await?;
        let (mut room, channel) = self.current_room(&incident).await?;
        let slack = self.slack()?;
        if let Some(ts) = &room.context_ts {
            let rendered = self.render_context(&incident, &room).await?;
            slack
                .update_message(
                    &channel,
                    ts,
                    &rendered.text,
                    &serde_json::to_value(&rendered.blocks).unwrap_or_default(),
                )
                .await?;
        }
        let topic = blocks::topic(&incident, incident.ticket.as_ref().map(TicketKey::as_str));
        if room.topic.as_deref() != Some(topic.as_str()) && !room.archived {
            slack.set_topic(&channel, &topic).await?;
            room.topic = Some(topic);
            self.store.save_war_room(&room, self.clock.now()).await?;
        }
        Ok(())
    }

    async fn post_update(&self, job: &Job, id: IncidentId) -> Result<(), JobError> {
        let text = job.payload["text"].as_str().unwrap_or_default().to_owned();
        let in_thread = job.payload["thread"].as_bool().unwrap_or(true);
        let markup = job.payload["markup"].as_bool().unwrap_or(false);
        let incident = self.incident(id).await?;
        let (room, channel) = self.current_room(&incident).await?;
        if room.archived {
            return Ok(());
        }
        let slack = self.slack()?;
        let thread = if in_thread { room.context_ts.as_deref() } else { None };
        if job.attempts > 1 && self.already_posted(&channel, thread, &text, markup).await? {
            return Ok(());
        }
        let rendered = if markup { blocks::update_markup(&text) } else { blocks::update_line(&text) };
        slack
            .post_message(
                &channel,
                &rendered.text,
                Some(&serde_json::to_value(&rendered.blocks).unwrap_or_default()),
                thread,
            )
            .await?;
        Ok(())
    }

    /// Whether the bot already posted `text` (an earlier attempt that crashed before finishing).
    async fn already_posted(
        &self,
        channel: &str,
        thread: Option<&str>,
        text: &str,
        markup: bool,
    ) -> Result<bool, JobError> {
        let bot = self.identity().await?.user_id.clone();
        let slack = self.slack()?;
        let recent = match thread {
            Some(ts) => slack.replies(channel, ts, 200).await?,
            None => slack.history(channel, 50).await?,
        };
        let rendered = if markup { blocks::update_markup(text) } else { blocks::update_line(text) };
        Ok(recent
            .iter()
            .any(|m| m["user"].as_str() == Some(bot.as_str()) && m["text"].as_str() == Some(rendered.text.as_str())))
    }

    async fn sync_ticket(&self, id: IncidentId) -> Result<(), JobError> {
        let incident = self.incident(id).await?;
        let Some(key) = &incident.ticket else {
            return Ok(());
        };
        // Jira finds people by email; the built-in desk keeps Slack ids.
        let assignee = match (&incident.assignee, self.desk.assigns_by_email()) {
            (Some(user), true) => self.slack()?.user_email(user).await?.or_else(|| Some(user.clone())),
            (assignee, _) => assignee.clone(),
        };
        let update = TicketUpdate {
            summary: Some(format!("{}: {}", incident.id, incident.title)),
            description: Some(ticket_description(&incident)),
            priority: Some(priority_for(incident.severity).to_owned()),
            assignee,
        };
        self.desk.update(key, &update).await?;
        Ok(())
    }

    async fn ticket_comment(&self, job: &Job, id: IncidentId) -> Result<(), JobError> {
        let incident = self.incident(id).await?;
        let key = match &incident.ticket {
            Some(key) => key.clone(),
            None => self.ensure_ticket(&incident).await?,
        };
        // Nothing token-like leaves warroom for the desk (ARCHITECTURE's ground rules).
        let text = redact(job.payload["text"].as_str().unwrap_or_default());
        let author = job.payload["author"].as_str().unwrap_or("warroom");
        let public = job.payload["public"].as_bool().unwrap_or(false);
        self.desk.comment(&key, author, &text, public, &format!("job-{}", job.id)).await?;
        Ok(())
    }
}

/// `*v1.42* · commit `abc123` · prod · <url|release> · 2026-11-22 08:00 UTC`
fn deployment_line(d: &crate::domain::runbook_run::Deployment) -> String {
    let mut parts = vec![format!("*{}*", blocks::escape(&d.version))];
    if let Some(commit) = &d.commit {
        parts.push(format!("commit `{}`", blocks::escape(commit)));
    }
    if let Some(environment) = &d.environment {
        parts.push(blocks::escape(environment));
    }
    if let Some(url) = &d.url {
        let label = d.pipeline.as_deref().map_or_else(|| "details".to_owned(), blocks::escape);
        parts.push(format!("<{}|{label}>", url.replace(['<', '>', '|'], "")));
    }
    parts.push(d.deployed_at.strftime("%Y-%m-%d %H:%M UTC").to_string());
    parts.join(" · ")
}

fn ticket_description(incident: &Incident) -> String {
    let mut lines = vec![
        format!(
            "Incident {} ({}), opened {} from {}.",
            incident.id, incident.severity, incident.opened_at, incident.source
        ),
        format!("Status: {}", incident.status),
    ];
    if let Some(service) = &incident.service {
        lines.push(format!("Service: {service}"));
    }
    if let Some(channel) = &incident.channel {
        lines.push(format!("Slack channel: #{} ({})", channel.name, channel.id));
    }
    if let Some(url) = &incident.url {
        lines.push(format!("Source: {url}"));
    }
    if !incident.entities.is_empty() {
        lines.push(format!("Impacted: {}", incident.entities.join(", ")));
    }
    if let Some(description) = &incident.description {
        lines.push(String::new());
        lines.push(description.clone());
    }
    lines.join("\n")
}

#[async_trait]
impl JobHandler for WarRoomJobs {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        let kind =
            JobKind::parse(&job.kind).ok_or_else(|| JobError::Permanent(format!("unknown job kind `{}`", job.kind)))?;
        if kind == JobKind::Escalate {
            let id = job.payload["incident"]
                .as_str()
                .and_then(|i| i.parse::<IncidentId>().ok())
                .ok_or_else(|| JobError::Permanent("incident.escalate without an incident".to_owned()))?;
            return self.escalate(id).await;
        }
        if kind == JobKind::Reply {
            let url = job.payload["response_url"].as_str().unwrap_or_default();
            let text = job.payload["text"].as_str().unwrap_or_default();
            return self.slack()?.respond(url, text, false).await.map_err(JobError::from);
        }
        let id = job.incident.ok_or_else(|| JobError::Permanent(format!("`{}` without an incident", job.kind)))?;
        let round = job.payload["round"].as_u64().and_then(|r| u32::try_from(r).ok()).unwrap_or(0);
        // Only a retry can find something an earlier attempt made; a first attempt skips the look.
        let retry = job.attempts > 1;
        match kind {
            JobKind::OpenWarRoom => self.open(id, 0, retry).await,
            JobKind::ReopenWarRoom => self.reopen(id, round, retry).await,
            JobKind::RenderWarRoom => self.render(id).await,
            JobKind::PostUpdate => self.post_update(job, id).await,
            JobKind::ResolveWarRoom => self.post_summary(id, round, retry).await,
            JobKind::AttachTranscript => self.attach_transcript(id).await,
            JobKind::CloseTicket => self.close_ticket(id, round).await,
            JobKind::ArchiveChannel => self.archive(id, round).await,
            JobKind::SyncTicket => self.sync_ticket(id).await,
            JobKind::TicketComment => self.ticket_comment(job, id).await,
            JobKind::RunRunbook => {
                let run = job.payload["run"]
                    .as_i64()
                    .ok_or_else(|| JobError::Permanent("runbook.run without a run id".to_owned()))?;
                self.run_runbook(id, run).await
            }
            JobKind::SourceComment => self.source_comment(job, id).await,
            JobKind::SelfHeal => {
                let services = crate::handlers::Services {
                    store: Arc::clone(&self.store),
                    clock: Arc::clone(&self.clock),
                    settings: Arc::clone(&self.settings),
                    // Jobs it adds are claimed as soon as this one finishes.
                    nudge: crate::jobs::runner::Nudge::default(),
                    desk: Arc::clone(&self.desk),
                    catalog: Arc::clone(&self.catalog),
                };
                match crate::handlers::runbooks::self_heal(&services, &self.catalog, id).await {
                    Ok(()) => Ok(()),
                    Err(crate::handlers::commands::HandlerError::User(message)) => Err(JobError::Permanent(message)),
                    Err(crate::handlers::commands::HandlerError::Unexpected(e)) => {
                        Err(JobError::retry(format!("{e:#}")))
                    }
                }
            }
            JobKind::TicketStatus => {
                let incident = self.incident(id).await?;
                match &incident.ticket {
                    Some(key) => self
                        .desk
                        .set_status(key, job.payload["status"].as_str().unwrap_or_default())
                        .await
                        .map_err(JobError::from),
                    None => Ok(()),
                }
            }
            JobKind::Reply | JobKind::Escalate => Ok(()),
        }
    }

    async fn on_dead(&self, job: &Job, error: &str) {
        let Some(id) = job.incident else { return };
        // Tell the channel when there is one; the timeline already has it.
        let text = format!("⚠ warroom gave up on {}: {error}", job.kind);
        if job.kind != JobKind::PostUpdate.as_str()
            && let Err(e) = self.enqueue(&jobs::new::post_update(id, &text, false)).await
        {
            warn!(error = ?e, "could not queue the notice of a dead job");
        }
    }
}

/// Reads a string field of a Slack object.
fn text_of<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}
