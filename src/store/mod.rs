//! The storage port: [`Store`] for reads and the job queue, [`StoreTx`] for changes that must
//! happen together (a delivery, the incident it changes, its timeline and its jobs). One adapter
//! today, SQLite ([`sqlite::SqliteStore`]); callers never see `sqlx` types, so a Postgres adapter
//! plugs in behind the same traits.

pub mod sqlite;

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use jiff::Timestamp;

use crate::config::DatabaseSettings;
use crate::domain::incident::{ChannelRef, NewIncident, Outcome};
use crate::domain::runbook_run::{Deployment, RunbookRun};
use crate::domain::transcript::{Capture, Origin, TranscriptLine};
use crate::domain::war_room::{Responder, WarRoom};
use crate::domain::{Alert, Incident, IncidentId, IncidentStatus, Problem, ProblemKey, SourceKind, TimelineEvent};

/// What can go wrong in storage, by what the caller does about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row asked for does not exist.
    #[error("not found")]
    NotFound,
    /// The database cannot be reached or refused the work; retrying later may succeed.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// A stored value no longer parses (a bug or a hand-edited row).
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::RowNotFound => Self::NotFound,
            other => Self::Unavailable(other),
        }
    }
}

/// Which incidents to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    pub status: Option<IncidentStatus>,
    /// Only incidents older than this one (the previous page's last id).
    pub before: Option<IncidentId>,
    pub limit: u32,
}

/// How a job avoids running twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobKey {
    /// No dedupe: every enqueue adds a job.
    None,
    /// At most one job with this key, ever (a second enqueue is a no-op).
    Once(String),
    /// At most one *pending* job with this key: state-rendering jobs coalesce.
    Coalesce(String),
}

/// A job to add.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: String,
    pub incident: Option<IncidentId>,
    pub payload: serde_json::Value,
    pub key: JobKey,
    /// Not before this instant (now when `None`).
    pub run_after: Option<Timestamp>,
}

/// Whether an enqueue added a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    Added,
    AlreadyThere,
}

/// A job's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Pending,
    Running,
    Done,
    Dead,
}

impl JobState {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Done => "done",
            Self::Dead => "dead",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        match text {
            "pending" => Ok(Self::Pending),
            "running" => Ok(Self::Running),
            "done" => Ok(Self::Done),
            "dead" => Ok(Self::Dead),
            other => Err(StoreError::Corrupt(format!("unknown job state `{other}`"))),
        }
    }
}

/// A stored job.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub incident: Option<IncidentId>,
    pub payload: serde_json::Value,
    pub state: JobState,
    /// Attempts started so far, including the current one.
    pub attempts: u32,
    pub created_at: Timestamp,
    /// After this, a failure marks the job dead instead of retrying.
    pub deadline: Timestamp,
    pub last_error: Option<String>,
}

/// What `/metrics` reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub incidents: Vec<(String, u64)>,
    pub jobs: Vec<(String, u64)>,
    pub deliveries: Vec<(String, String, u64)>,
}

/// Work for [`Store::grouped`]: it runs in a transaction shared with other writes and returns
/// its answer, type-erased (see [`grouped`]).
pub type GroupedWork = Box<
    dyn for<'t> FnOnce(&'t mut (dyn StoreTx + 't)) -> BoxFuture<'t, Result<Box<dyn Any + Send>, StoreError>> + Send,
>;

/// Runs `work` through [`Store::grouped`] and returns its answer with its type.
pub async fn grouped<T, F>(store: &dyn Store, work: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: for<'t> FnOnce(&'t mut (dyn StoreTx + 't)) -> BoxFuture<'t, Result<T, StoreError>> + Send + 'static,
{
    let work: GroupedWork =
        Box::new(move |tx| Box::pin(async move { work(tx).await.map(|value| Box::new(value) as Box<dyn Any + Send>) }));
    let value = store.grouped(work).await?;
    value
        .downcast::<T>()
        .map(|value| *value)
        .map_err(|_| StoreError::Corrupt("grouped work answered the wrong type".into()))
}

/// Reads and the job queue.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Starts a write transaction (serialised with other writers).
    async fn begin(&self) -> Result<Box<dyn StoreTx>, StoreError>;
    /// Runs `work` in the next group commit, with whatever other writes are waiting: one
    /// transaction and one fsync for all of them. `work` is all or nothing (when it fails none of
    /// its changes are kept and the others still commit); the answer comes after the commit.
    /// `work` does not commit: [`StoreTx::commit`] inside it does nothing.
    async fn grouped(&self, work: GroupedWork) -> Result<Box<dyn Any + Send>, StoreError>;
    /// Checks the database answers.
    async fn ping(&self) -> Result<(), StoreError>;

    async fn incident(&self, id: IncidentId) -> Result<Option<Incident>, StoreError>;
    async fn list_incidents(&self, filter: &IncidentFilter) -> Result<Vec<Incident>, StoreError>;
    async fn alerts(&self, id: IncidentId) -> Result<Vec<Alert>, StoreError>;
    async fn timeline(&self, id: IncidentId) -> Result<Vec<TimelineEvent>, StoreError>;
    /// Counts deliveries stored for a problem key (for tests and the API).
    async fn delivery_count(&self, source: SourceKind, key: &ProblemKey) -> Result<u64, StoreError>;

    /// Records an inbound event key; `true` the first time, `false` for a redelivery.
    async fn record_inbound(&self, source: &str, key: &str, now: Timestamp) -> Result<bool, StoreError>;

    /// Claims the next due job: the oldest of its incident with none running (a job without an
    /// incident is its own queue), or one whose lease expired.
    async fn claim_job(&self, worker: &str, now: Timestamp, lease: Duration) -> Result<Option<Job>, StoreError>;
    /// Extends a lease the worker still holds; `false` if it lost it.
    async fn extend_lease(&self, id: i64, worker: &str, until: Timestamp) -> Result<bool, StoreError>;
    /// Marks a job done; `false` if the worker lost its lease meanwhile.
    async fn finish_job(&self, id: i64, worker: &str, now: Timestamp) -> Result<bool, StoreError>;
    /// Puts a job back to run after `run_after`.
    async fn retry_job(&self, id: i64, worker: &str, run_after: Timestamp, error: &str) -> Result<bool, StoreError>;
    /// Gives up on a job: it stays visible as `dead` and no longer blocks its incident.
    async fn bury_job(&self, id: i64, worker: &str, now: Timestamp, error: &str) -> Result<bool, StoreError>;
    /// When the earliest pending job becomes due, if any.
    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError>;
    /// Jobs of an incident (all states), oldest first; `None` lists jobs without an incident.
    async fn jobs(&self, incident: Option<IncidentId>) -> Result<Vec<Job>, StoreError>;
    /// Jobs still pending or running anywhere.
    async fn open_job_count(&self) -> Result<u64, StoreError>;
    /// Counts for `/metrics`: incidents by status, jobs by state, deliveries by source and outcome.
    async fn counts(&self) -> Result<Counts, StoreError>;

    /// One war room of an incident.
    async fn war_room(&self, id: IncidentId, round: u32) -> Result<Option<WarRoom>, StoreError>;
    /// Every war room of an incident, oldest first.
    async fn war_rooms(&self, id: IncidentId) -> Result<Vec<WarRoom>, StoreError>;
    /// Inserts or replaces a war room row.
    async fn save_war_room(&self, room: &WarRoom, now: Timestamp) -> Result<(), StoreError>;
    /// Incidents of `service` that are not resolved.
    async fn open_incidents_of(&self, service: &str) -> Result<Vec<IncidentId>, StoreError>;
    /// The incident whose ticket has this key.
    async fn incident_by_ticket(&self, key: &str) -> Result<Option<IncidentId>, StoreError>;
    /// The incident (and war room round) a Slack channel belongs to.
    async fn incident_by_channel(&self, channel_id: &str) -> Result<Option<(IncidentId, u32)>, StoreError>;
    /// Records the incident's current channel (only that column: jobs never save a whole incident).
    async fn set_incident_channel(&self, id: IncidentId, channel: &ChannelRef) -> Result<(), StoreError>;
    /// Records the incident's ticket key (only that column).
    async fn set_incident_ticket(&self, id: IncidentId, key: &crate::domain::TicketKey) -> Result<(), StoreError>;
    /// Adds responders; a recorded participant takes a more specific role (on-call, lead,
    /// commander), otherwise people keep their first role.
    async fn add_responders(&self, id: IncidentId, responders: &[Responder], now: Timestamp) -> Result<(), StoreError>;
    async fn responders(&self, id: IncidentId) -> Result<Vec<Responder>, StoreError>;

    /// Applies a captured transcript change (idempotent: redeliveries change nothing; an
    /// older edit never overwrites a newer one; a deletion erases the text for good).
    async fn capture(&self, id: IncidentId, change: &Capture, origin: Origin, now: Timestamp)
    -> Result<(), StoreError>;
    /// Every captured line of an incident (all its channels).
    async fn transcript_lines(&self, id: IncidentId) -> Result<Vec<TranscriptLine>, StoreError>;
    /// Records that Socket Mode is listening now; returns the previous heartbeat.
    async fn heartbeat(&self, now: Timestamp) -> Result<Option<Timestamp>, StoreError>;
    /// Records a period when warroom was not listening.
    async fn record_gap(&self, started_at: Timestamp, ended_at: Timestamp) -> Result<(), StoreError>;
    /// Gaps overlapping `[from, to]`, oldest first.
    async fn gaps(&self, from: Timestamp, to: Timestamp) -> Result<Vec<(Timestamp, Timestamp)>, StoreError>;
    /// Keeps the rendered transcript of an incident (replacing an older one).
    async fn save_transcript(&self, id: IncidentId, markdown: &str, now: Timestamp) -> Result<(), StoreError>;
    async fn transcript(&self, id: IncidentId) -> Result<Option<String>, StoreError>;

    /// Records a deployment; returns its id.
    async fn record_deployment(&self, deployment: &Deployment) -> Result<i64, StoreError>;
    /// The newest deployments of a service (in one environment when given), newest first.
    async fn deployments(
        &self,
        service: &str,
        environment: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Deployment>, StoreError>;
    async fn run(&self, id: i64) -> Result<Option<RunbookRun>, StoreError>;
    /// Every run of an incident (denied presses included), oldest first.
    async fn runs(&self, incident: IncidentId) -> Result<Vec<RunbookRun>, StoreError>;
    /// Saves a run's state, times, result and status message.
    async fn update_run(&self, run: &RunbookRun) -> Result<(), StoreError>;
    /// The newest automatic run for a problem key since `since` (the self-healing loop guard).
    async fn last_automatic_run(&self, problem_key: &str, since: Timestamp) -> Result<Option<RunbookRun>, StoreError>;
}

/// A delivery as kept: the parsed problem, its raw body and what it meant.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryRecord<'a> {
    pub problem: &'a Problem,
    pub body: &'a [u8],
    pub incident: Option<IncidentId>,
    pub outcome: Outcome,
}

/// One write transaction. Dropping it without [`StoreTx::commit`] rolls back.
#[async_trait]
pub trait StoreTx: Send {
    /// The incident a problem key is linked to now, if any.
    async fn linked_incident(&mut self, source: SourceKind, key: &ProblemKey) -> Result<Option<Incident>, StoreError>;
    /// The incidents any of `keys` is linked to now, each with the key that links it, in one
    /// read: a batch of deliveries looks up every incident it touches at once.
    async fn linked_incidents(
        &mut self,
        keys: &[(SourceKind, &ProblemKey)],
    ) -> Result<Vec<((SourceKind, ProblemKey), Incident)>, StoreError>;
    async fn incident(&mut self, id: IncidentId) -> Result<Option<Incident>, StoreError>;
    async fn alerts(&mut self, id: IncidentId) -> Result<Vec<Alert>, StoreError>;
    /// The alerts of every incident in `ids`, in one read.
    async fn alerts_of(&mut self, ids: &[IncidentId]) -> Result<Vec<(IncidentId, Alert)>, StoreError>;
    async fn insert_incident(&mut self, incident: &NewIncident, now: Timestamp) -> Result<IncidentId, StoreError>;
    /// Saves every mutable field of `incident`.
    async fn update_incident(&mut self, incident: &Incident, now: Timestamp) -> Result<(), StoreError>;
    /// Records the channel name round `round` of `incident` will ask Slack for, unless its war
    /// room is already recorded.
    async fn plan_war_room(
        &mut self,
        incident: IncidentId,
        round: u32,
        planned_name: &str,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// Points `(source, key)` at `incident`.
    async fn link_problem(
        &mut self,
        source: SourceKind,
        key: &ProblemKey,
        incident: IncidentId,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// Adds or refreshes alerts by `(incident, fingerprint)`, in order: a later row for the same
    /// alert updates the earlier one (a start time or link it lacks keeps the stored one).
    async fn upsert_alerts(&mut self, alerts: &[(IncidentId, &Alert)], now: Timestamp) -> Result<(), StoreError>;
    /// Keeps raw deliveries and what each meant.
    async fn record_deliveries(&mut self, deliveries: &[DeliveryRecord<'_>], now: Timestamp) -> Result<(), StoreError>;
    /// Keeps one raw delivery and what it meant.
    async fn record_delivery(
        &mut self,
        problem: &Problem,
        body: &[u8],
        incident: Option<IncidentId>,
        outcome: Outcome,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.record_deliveries(&[DeliveryRecord { problem, body, incident, outcome }], now).await
    }
    /// Adds timeline events of any incidents, in order.
    async fn add_timeline_rows(&mut self, events: &[(IncidentId, &TimelineEvent)]) -> Result<(), StoreError>;
    async fn add_timeline(&mut self, incident: IncidentId, events: &[TimelineEvent]) -> Result<(), StoreError> {
        let rows: Vec<(IncidentId, &TimelineEvent)> = events.iter().map(|event| (incident, event)).collect();
        self.add_timeline_rows(&rows).await
    }
    /// Adds a job due now whose retry budget ends at `deadline`.
    async fn enqueue(&mut self, job: &NewJob, now: Timestamp, deadline: Timestamp) -> Result<Enqueued, StoreError>;
    /// Adds jobs in order, as [`StoreTx::enqueue`] each would; returns how many were added.
    async fn enqueue_all(&mut self, jobs: &[NewJob], now: Timestamp, deadline: Timestamp) -> Result<u64, StoreError>;
    /// Records a run before it starts. If the runbook already has a queued or running run for
    /// the incident, nothing is added and that run is returned as `Err(active)`.
    async fn create_run(&mut self, run: &RunbookRun) -> Result<Result<RunbookRun, RunbookRun>, StoreError>;
    /// Adds responders inside this transaction; people already recorded keep their first role.
    async fn add_responders(
        &mut self,
        id: IncidentId,
        responders: &[Responder],
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// Records an inbound event key inside this transaction; `false` for a redelivery.
    async fn record_inbound(&mut self, source: &str, key: &str, now: Timestamp) -> Result<bool, StoreError>;
    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

/// Opens the store named by the settings' URL scheme and applies migrations.
pub async fn connect(settings: &DatabaseSettings) -> Result<Arc<dyn Store>, StoreError> {
    Ok(Arc::new(sqlite::SqliteStore::connect(settings).await?))
}
