//! `/incident` subcommands and the Acknowledge / Resolve buttons. Each is one transaction (state,
//! timeline, jobs) and answers with a short reply for the person who asked; what others see
//! (channel posts, the re-rendered context message, the ticket) follows through jobs.

use jiff::Timestamp;

use super::Services;
use crate::domain::incident::{NewIncident, TransitionError};
use crate::domain::war_room::{Responder, Role};
use crate::domain::{Actor, Incident, IncidentId, IncidentStatus, ProblemKey, Severity, SourceKind, TimelineEvent};
use crate::jobs::{self, NewJob};
use crate::oncall::{OnCall, OnCallAnswer, PersonRef, Service};
use crate::slack::blocks::{escape, mention_ids};
use crate::store::StoreError;

/// Why a command did not happen, by who must act.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Something the person can fix (wrong state, unknown incident): told to them as is.
    #[error("{0}")]
    User(String),
    /// Nobody in the channel can fix it: a generic reply, logged once with its cause.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<StoreError> for HandlerError {
    fn from(error: StoreError) -> Self {
        Self::Unexpected(anyhow::Error::new(error).context("storage"))
    }
}

impl From<TransitionError> for HandlerError {
    fn from(error: TransitionError) -> Self {
        Self::User(error.to_string())
    }
}

/// The words for an error, the only place errors become Slack text.
#[must_use]
pub fn reply_for(error: &HandlerError) -> String {
    match error {
        HandlerError::User(message) => message.clone(),
        HandlerError::Unexpected(cause) => {
            tracing::error!(error = format!("{cause:#}"), "command failed unexpectedly");
            "Something went wrong on warroom's side; it has been logged. Please try again in a moment.".to_owned()
        }
    }
}

/// What a state change does: how the incident changes, what to tell the channel.
pub enum Change {
    Acknowledge,
    Status(IncidentStatus),
    Severity(Severity),
    Assign(String),
    Lead(String),
    Note { text: String, public: bool },
    Resolve { summary: Option<String> },
}

/// Applies `change` to incident `id` on behalf of Slack user `user`; returns the reply.
pub async fn apply(
    services: &Services,
    id: IncidentId,
    user: &str,
    change: Change,
    dedupe: &str,
) -> Result<String, HandlerError> {
    let now = services.clock.now();
    let actor = Actor::User(user.to_owned());
    let mut tx = services.store.begin().await?;
    // A redelivered command or press (same trigger or action) changes nothing the second time.
    if !tx.record_inbound("slack:action", dedupe, now).await? {
        return Ok("Already done.".to_owned());
    }
    let mut incident = tx.incident(id).await?.ok_or_else(|| HandlerError::User(format!("{id} does not exist")))?;
    let mut jobs: Vec<NewJob> = Vec::new();
    let (events, announcement, reply) = match change {
        Change::Acknowledge => {
            let events = incident.acknowledge(&actor, now)?;
            jobs.push(jobs::new::ticket_status(id, incident.status.as_str()));
            (events, format!(":eyes: <@{user}> acknowledged {id}"), format!("You acknowledged {id}."))
        }
        Change::Status(status) => {
            let events = incident.set_status(status, &actor, now)?;
            jobs.push(jobs::new::ticket_status(id, status.as_str()));
            (
                events,
                format!(":arrows_counterclockwise: <@{user}> set {id} to *{status}*"),
                format!("{id} is now {status}."),
            )
        }
        Change::Severity(severity) => {
            let events = incident.set_severity(severity, &actor, now)?;
            (
                events,
                format!(":rotating_light: <@{user}> set the severity of {id} to *{severity}*"),
                format!("{id} is now {severity}."),
            )
        }
        Change::Assign(assignee) => {
            not_resolved(&incident)?;
            incident.assignee = Some(assignee.clone());
            let event = TimelineEvent::new(now, "assigned", actor.clone(), format!("assigned to {assignee} by {user}"));
            (
                vec![event],
                format!(":bust_in_silhouette: <@{user}> assigned {id} to <@{assignee}>"),
                format!("{id} is assigned to <@{assignee}>."),
            )
        }
        Change::Lead(lead) => {
            not_resolved(&incident)?;
            incident.commander = Some(lead.clone());
            let event = TimelineEvent::new(
                now,
                "lead_set",
                actor.clone(),
                format!("{lead} leads the response (set by {user})"),
            );
            (
                vec![event],
                format!(":crown: <@{lead}> now leads the response to {id}"),
                format!("<@{lead}> now leads {id}."),
            )
        }
        Change::Note { text, public } => {
            let event = TimelineEvent::new(now, "note", actor.clone(), text.clone());
            jobs.push(jobs::new::ticket_comment(id, user, &text, public, dedupe));
            (
                vec![event],
                format!(":memo: note from <@{user}>: {}", escape(&text)),
                format!("Note added to {id} and its ticket."),
            )
        }
        Change::Resolve { summary } => {
            let round = incident.reopen_count;
            let events = incident.resolve(&actor, summary, now)?;
            jobs.extend(jobs::new::resolution(id, round));
            (events, format!(":white_check_mark: <@{user}> resolved {id}"), format!("You resolved {id}."))
        }
    };
    tx.update_incident(&incident, now).await?;
    tx.add_timeline(id, &events).await?;
    let mut all = vec![
        jobs::new::post_markup(id, &announcement, false),
        jobs::new::render_war_room(id),
        jobs::new::sync_ticket(id),
    ];
    // Resolution jobs go last: the summary and the archive see everything before them.
    all.extend(jobs);
    for job in &all {
        jobs::enqueue(&mut *tx, job, now, services.settings.jobs.retry_budget).await?;
    }
    tx.commit().await?;
    services.nudge.nudge();
    Ok(reply)
}

fn not_resolved(incident: &Incident) -> Result<(), HandlerError> {
    if incident.status == IncidentStatus::Resolved {
        return Err(HandlerError::User(format!("{} is already resolved", incident.id)));
    }
    Ok(())
}

/// `/incident declare`: a manual incident with its own channel and ticket.
pub async fn declare(
    services: &Services,
    user: &str,
    title: &str,
    severity: Option<Severity>,
    service: Option<String>,
    dedupe: &str,
) -> Result<IncidentId, HandlerError> {
    let now = services.clock.now();
    let key =
        ProblemKey::new(&format!("declared:{dedupe}")).ok_or_else(|| HandlerError::User("empty key".to_owned()))?;
    let draft = NewIncident {
        title: title.to_owned(),
        severity: severity.unwrap_or(services.settings.severity.fallback),
        service,
        source: SourceKind::Slack,
        problem_key: key.clone(),
        description: None,
        url: None,
        labels: Default::default(),
        entities: Vec::new(),
        opened_at: now,
    };
    let mut tx = services.store.begin().await?;
    if let Some(existing) = tx.linked_incident(SourceKind::Slack, &key).await? {
        return Ok(existing.id);
    }
    let id = tx.insert_incident(&draft, now).await?;
    tx.link_problem(SourceKind::Slack, &key, id, now).await?;
    let actor = Actor::User(user.to_owned());
    tx.add_timeline(id, &[TimelineEvent::new(now, "opened", actor, format!("declared by {user}: {title}"))]).await?;
    jobs::enqueue(&mut *tx, &jobs::new::open_war_room(id), now, services.settings.jobs.retry_budget).await?;
    tx.add_responders(id, &[Responder { user: user.to_owned(), role: Role::Commander }], now).await?;
    tx.commit().await?;
    services.nudge.nudge();
    Ok(id)
}

/// `/incident ticket`: the ticket's key, link and state.
pub async fn ticket(services: &Services, id: IncidentId) -> Result<String, HandlerError> {
    let incident =
        services.store.incident(id).await?.ok_or_else(|| HandlerError::User(format!("{id} does not exist")))?;
    let Some(key) = incident.ticket else {
        return Ok(format!("{id} has no ticket yet: it is being created."));
    };
    let ticket = services
        .desk
        .get(&key)
        .await
        .map_err(|e| HandlerError::Unexpected(anyhow::anyhow!("reading ticket {key}: {e}")))?;
    let url = format!("{}/api/tickets/{key}", services.settings.public_url());
    Ok(match ticket {
        Some(t) => format!(
            "*<{url}|{key}>* ({}) — {}\nPriority {} · assignee {} · {} comment(s) · {} attachment(s)",
            t.status.as_str(),
            escape(&t.summary),
            t.priority,
            t.assignee.map_or_else(|| "nobody".to_owned(), |a| format!("<@{a}>")),
            t.comments.len(),
            t.attachments.len(),
        ),
        None => format!("*<{url}|{key}>* (the desk does not know it yet)"),
    })
}

/// `/incident timeline`: the incident's timeline as text.
pub async fn timeline(services: &Services, id: IncidentId) -> Result<String, HandlerError> {
    let events = services.store.timeline(id).await?;
    let mut lines = vec![format!("*Timeline of {id}*")];
    for event in events.iter().rev().take(30).rev() {
        lines.push(format!("`{}` {} — {}", short_time(event.at), event.kind, mention_ids(&escape(&event.text))));
    }
    if events.len() > 30 {
        lines
            .insert(1, format!("(last 30 of {} events; the full timeline is in the ticket and the API)", events.len()));
    }
    Ok(lines.join("\n"))
}

/// `/incident oncall [service]`: who is on call now, asked of `oncall`.
pub async fn ask_on_call(
    services: &Services,
    oncall: &dyn OnCall,
    service: Option<&str>,
    labels: &std::collections::BTreeMap<String, String>,
) -> Result<OnCallAnswer, HandlerError> {
    oncall
        .on_call(Service { name: service, labels }, services.clock.now())
        .await
        .map_err(|e| HandlerError::User(format!("Cannot tell who is on call: {e}")))
}

/// The `/incident oncall` reply: who is on call now and next. `resolved` maps on-call emails to
/// Slack ids (the chat surface looks them up).
#[must_use]
pub fn on_call_reply(answer: &OnCallAnswer, resolved: &std::collections::BTreeMap<String, String>) -> String {
    let people = |list: &[PersonRef]| {
        list.iter()
            .map(|p| match p {
                PersonRef::Email(email) => resolved.get(email).map_or_else(|| escape(email), |id| format!("<@{id}>")),
                PersonRef::SlackId(_) => mention(p),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut text = format!("*On call for team {}*: {}", answer.team, people(&answer.primary));
    if let Some(next) = &answer.next {
        text.push_str(&format!("\nNext: {} from {}", people(&next.people), short_time(next.starts_at)));
    }
    if let Some(group) = &answer.lead_group {
        text.push_str(&format!("\nIncident leads: <!subteam^{group}>"));
    }
    text
}

/// `<@U…>` for a Slack id, the email as text otherwise.
#[must_use]
pub fn mention(person: &PersonRef) -> String {
    match person {
        PersonRef::SlackId(id) => format!("<@{id}>"),
        PersonRef::Email(email) => email.clone(),
    }
}

/// `2026-11-22 08:00 UTC`.
#[must_use]
pub fn short_time(at: Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M UTC").to_string()
}
