//! The outbox: every external side effect is a [`Job`] row, enqueued in the same transaction as
//! the state change that caused it, and run by the [`runner::Runner`] with retries.
//!
//! Jobs of one incident start in order; different incidents run in parallel. One-shot jobs carry
//! a `Once` key (a second enqueue is a no-op); state-rendering jobs carry a `Coalesce` key and no
//! payload, render the incident's current state when they run, and at most one is pending per
//! incident, so a burst of changes costs one render.

pub mod runner;

use std::time::Duration;

use jiff::Timestamp;
use serde_json::json;

use crate::domain::IncidentId;
pub use crate::store::{Enqueued, Job, JobKey, JobState, NewJob};
use crate::store::{StoreError, StoreTx};

/// Every kind of job warroom runs. The string form is stored; keep it stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// Create the incident channel and ticket, invite on-call, post and pin the context message.
    OpenWarRoom,
    /// Re-render the context message and topic from the incident's current state (coalescing).
    RenderWarRoom,
    /// Post one update into the incident's thread or channel (payload: `text`, `thread`).
    PostUpdate,
    /// Post the resolution summary in the channel (payload: `round`).
    ResolveWarRoom,
    /// Backfill gaps, render the transcript and attach it to the ticket (payload: `round`).
    AttachTranscript,
    /// Comment and close the ticket (payload: `round`).
    CloseTicket,
    /// Archive the channel of `round`.
    ArchiveChannel,
    /// Open a `-r<k>` channel for a reopened incident and invite the same people.
    ReopenWarRoom,
    /// Bring the ticket's fields in line with the incident (coalescing).
    SyncTicket,
    /// Add a comment to the ticket (payload: `author`, `text`, `public`).
    TicketComment,
    /// Answer a person through a `response_url` (payload: `response_url`, `text`).
    Reply,
    /// Carry out a recorded runbook run (payload: `run`).
    RunRunbook,
    /// Comment on the source problem (payload: `text`).
    SourceComment,
    /// Move the ticket's workflow to a status (payload: `status`).
    TicketStatus,
    /// Page the next level when nobody acknowledged in time (payload: `incident`).
    Escalate,
    /// Run the `auto` runbooks matching a newly opened or reopened incident.
    SelfHeal,
}

impl JobKind {
    /// Every kind, for dispatch tables and tests.
    pub const ALL: [Self; 16] = [
        Self::SelfHeal,
        Self::Escalate,
        Self::TicketStatus,
        Self::RunRunbook,
        Self::SourceComment,
        Self::OpenWarRoom,
        Self::RenderWarRoom,
        Self::PostUpdate,
        Self::ResolveWarRoom,
        Self::AttachTranscript,
        Self::CloseTicket,
        Self::ArchiveChannel,
        Self::ReopenWarRoom,
        Self::SyncTicket,
        Self::TicketComment,
        Self::Reply,
    ];

    /// The stored name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenWarRoom => "war_room.open",
            Self::RenderWarRoom => "war_room.render",
            Self::PostUpdate => "war_room.post_update",
            Self::ResolveWarRoom => "war_room.resolve",
            Self::AttachTranscript => "transcript.attach",
            Self::CloseTicket => "ticket.close",
            Self::ArchiveChannel => "war_room.archive",
            Self::ReopenWarRoom => "war_room.reopen",
            Self::SyncTicket => "ticket.sync",
            Self::TicketComment => "ticket.comment",
            Self::Reply => "slack.reply",
            Self::RunRunbook => "runbook.run",
            Self::SourceComment => "source.comment",
            Self::TicketStatus => "ticket.status",
            Self::Escalate => "incident.escalate",
            Self::SelfHeal => "runbook.self_heal",
        }
    }

    /// Reads a stored name.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// Builders for the jobs of an incident, with the right dedupe keys.
pub mod new {
    use super::{IncidentId, JobKey, JobKind, NewJob, json};

    fn job(kind: JobKind, incident: IncidentId, payload: serde_json::Value, key: JobKey) -> NewJob {
        NewJob { kind: kind.as_str().to_owned(), incident: Some(incident), payload, key, run_after: None }
    }

    /// Opens the war room once per incident.
    #[must_use]
    pub fn open_war_room(incident: IncidentId) -> NewJob {
        job(JobKind::OpenWarRoom, incident, json!({}), JobKey::Once(format!("open:{incident}")))
    }

    /// Re-renders the war room; coalesces with any pending render.
    #[must_use]
    pub fn render_war_room(incident: IncidentId) -> NewJob {
        job(JobKind::RenderWarRoom, incident, json!({}), JobKey::Coalesce(format!("render:{incident}")))
    }

    /// Posts `text` into the incident's thread (`in_thread`) or the channel.
    #[must_use]
    pub fn post_update(incident: IncidentId, text: &str, in_thread: bool) -> NewJob {
        job(JobKind::PostUpdate, incident, json!({ "text": text, "thread": in_thread }), JobKey::None)
    }

    /// The jobs of resolution number `round` (0 for the first, k after the k-th reopen), in
    /// order: summary, transcript attached, ticket closed, channel archived. Each is its own
    /// job, so a crash between steps neither loses nor repeats one.
    #[must_use]
    pub fn resolution(incident: IncidentId, round: u32) -> Vec<NewJob> {
        [
            (JobKind::ResolveWarRoom, "resolve"),
            (JobKind::AttachTranscript, "transcript"),
            (JobKind::CloseTicket, "close"),
            (JobKind::ArchiveChannel, "archive"),
        ]
        .into_iter()
        .map(|(kind, step)| {
            job(kind, incident, json!({ "round": round }), JobKey::Once(format!("{step}:{incident}:{round}")))
        })
        .collect()
    }

    /// Opens the channel of reopen number `round`.
    #[must_use]
    pub fn reopen_war_room(incident: IncidentId, round: u32) -> NewJob {
        job(
            JobKind::ReopenWarRoom,
            incident,
            json!({ "round": round }),
            JobKey::Once(format!("reopen:{incident}:{round}")),
        )
    }

    /// Posts Slack mrkdwn (mentions kept) into the thread or the channel; the caller has escaped
    /// what people typed inside it.
    #[must_use]
    pub fn post_markup(incident: IncidentId, mrkdwn: &str, in_thread: bool) -> NewJob {
        job(JobKind::PostUpdate, incident, json!({ "text": mrkdwn, "thread": in_thread, "markup": true }), JobKey::None)
    }

    /// Brings the ticket in line with the incident; coalesces with any pending sync.
    #[must_use]
    pub fn sync_ticket(incident: IncidentId) -> NewJob {
        job(JobKind::SyncTicket, incident, json!({}), JobKey::Coalesce(format!("ticket:{incident}")))
    }

    /// Adds a ticket comment once per `dedupe` key.
    #[must_use]
    pub fn ticket_comment(incident: IncidentId, author: &str, text: &str, public: bool, dedupe: &str) -> NewJob {
        job(
            JobKind::TicketComment,
            incident,
            json!({ "author": author, "text": text, "public": public, "dedupe": dedupe }),
            JobKey::Once(format!("comment:{incident}:{dedupe}")),
        )
    }

    /// Carries out run `run` of a runbook, once.
    #[must_use]
    pub fn run_runbook(incident: IncidentId, run: i64) -> NewJob {
        job(JobKind::RunRunbook, incident, json!({ "run": run }), JobKey::Once(format!("run:{run}")))
    }

    /// Comments `text` on the incident's source problem, once per `dedupe`.
    #[must_use]
    pub fn source_comment(incident: IncidentId, text: &str, dedupe: &str) -> NewJob {
        job(
            JobKind::SourceComment,
            incident,
            json!({ "text": text }),
            JobKey::Once(format!("source-comment:{incident}:{dedupe}")),
        )
    }

    /// Pages the next level at `at` if nobody acknowledged by then. It has no incident queue of
    /// its own (the payload names the incident), so waiting never blocks the incident's jobs.
    #[must_use]
    pub fn escalate(incident: IncidentId, round: u32, at: jiff::Timestamp) -> NewJob {
        NewJob {
            kind: JobKind::Escalate.as_str().to_owned(),
            incident: None,
            payload: json!({ "incident": incident.to_string() }),
            key: JobKey::Once(format!("escalate:{incident}:{round}")),
            run_after: Some(at),
        }
    }

    /// Self-healing for opening number `round` of an incident, once.
    #[must_use]
    pub fn self_heal(incident: IncidentId, round: u32) -> NewJob {
        job(
            JobKind::SelfHeal,
            incident,
            json!({ "round": round }),
            JobKey::Once(format!("self-heal:{incident}:{round}")),
        )
    }

    /// Moves the ticket's workflow to `status`.
    #[must_use]
    pub fn ticket_status(incident: IncidentId, status: &str) -> NewJob {
        job(JobKind::TicketStatus, incident, json!({ "status": status }), JobKey::None)
    }

    /// Answers through a `response_url` (no incident: it runs on its own).
    #[must_use]
    pub fn reply(response_url: &str, text: &str) -> NewJob {
        NewJob {
            kind: JobKind::Reply.as_str().to_owned(),
            incident: None,
            payload: json!({ "response_url": response_url, "text": text }),
            key: JobKey::None,
            run_after: None,
        }
    }
}

/// Enqueues `job` inside `tx` with a deadline `budget` from `now`.
pub async fn enqueue(
    tx: &mut dyn StoreTx,
    job: &NewJob,
    now: Timestamp,
    budget: Duration,
) -> Result<Enqueued, StoreError> {
    let budget = jiff::SignedDuration::try_from(budget).unwrap_or(jiff::SignedDuration::MAX);
    let deadline = now.checked_add(budget).unwrap_or(Timestamp::MAX);
    tx.enqueue(job, now, deadline).await
}

/// Enqueues `jobs` inside `tx`, in order, in one statement; returns how many were added.
pub async fn enqueue_all(
    tx: &mut dyn StoreTx,
    jobs: &[NewJob],
    now: Timestamp,
    budget: Duration,
) -> Result<u64, StoreError> {
    if jobs.is_empty() {
        return Ok(0);
    }
    let budget = jiff::SignedDuration::try_from(budget).unwrap_or(jiff::SignedDuration::MAX);
    let deadline = now.checked_add(budget).unwrap_or(Timestamp::MAX);
    tx.enqueue_all(jobs, now, deadline).await
}
