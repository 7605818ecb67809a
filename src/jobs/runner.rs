//! Runs due jobs: claim under a lease, run, then finish, retry with capped exponential backoff
//! (honouring a reported retry-after) or, past the retry budget, mark dead. A crashed worker's
//! job is claimed again once its lease expires; leases are renewed while a job runs.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span, warn};

use super::Job;
use crate::config::JobSettings;
use crate::domain::{Actor, Clock, TimelineEvent};
use crate::store::{Store, StoreError};

/// Why a job did not complete.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Try again later; `retry_after` is the far side's wish (429 `Retry-After`), if it said one.
    #[error("{message}")]
    Retry { message: String, retry_after: Option<Duration> },
    /// Retrying cannot help (the far side refused for good): mark the job dead now.
    #[error("{0}")]
    Permanent(String),
}

impl JobError {
    /// A transient failure with no retry-after.
    pub fn retry(message: impl Into<String>) -> Self {
        Self::Retry { message: message.into(), retry_after: None }
    }
}

impl From<StoreError> for JobError {
    fn from(error: StoreError) -> Self {
        Self::retry(format!("storage: {error}"))
    }
}

impl From<anyhow::Error> for JobError {
    fn from(error: anyhow::Error) -> Self {
        Self::retry(format!("{error:#}"))
    }
}

/// Runs one job. Implementations must be idempotent: a retry first looks for what an earlier
/// attempt already did.
#[async_trait]
pub trait JobHandler: Send + Sync + 'static {
    async fn run(&self, job: &Job) -> Result<(), JobError>;

    /// Called once when a job is given up on, after it is recorded; may tell people.
    async fn on_dead(&self, _job: &Job, _error: &str) {}
}

/// Wakes idle workers when new work is stored.
#[derive(Debug, Clone, Default)]
pub struct Nudge(Arc<Notify>);

impl Nudge {
    /// Wakes every idle worker. (Not one: a worker stays registered for wake-ups while it runs
    /// a job, so a single wake-up could go to a busy worker while an idle one sleeps on.)
    pub fn nudge(&self) {
        self.0.notify_waiters();
    }
}

/// What one claim-and-run step did (for tests and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Idle,
    Done,
    Retried,
    Dead,
    LostLease,
}

/// The job runner.
pub struct Runner {
    store: Arc<dyn Store>,
    handler: Arc<dyn JobHandler>,
    clock: Arc<dyn Clock>,
    settings: JobSettings,
    nudge: Nudge,
    name: String,
}

impl Runner {
    /// A runner whose workers are named `{name}-{i}` (unique per process: lease owner ids).
    pub fn new(
        store: Arc<dyn Store>,
        handler: Arc<dyn JobHandler>,
        clock: Arc<dyn Clock>,
        settings: JobSettings,
        name: &str,
    ) -> Self {
        Self { store, handler, clock, settings, nudge: Nudge::default(), name: name.to_owned() }
    }

    /// A handle that wakes idle workers.
    #[must_use]
    pub fn nudge(&self) -> Nudge {
        self.nudge.clone()
    }

    /// Runs `settings.workers` workers until `stop` is cancelled; running jobs finish first.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) -> anyhow::Result<()> {
        let mut workers = tokio::task::JoinSet::new();
        for index in 0..self.settings.workers {
            let runner = Arc::clone(&self);
            let stop = stop.clone();
            let worker = format!("{}-{index}", self.name);
            workers.spawn(async move { runner.work(&worker, stop).await });
        }
        while let Some(result) = workers.join_next().await {
            result??;
        }
        Ok(())
    }

    async fn work(&self, worker: &str, stop: CancellationToken) -> anyhow::Result<()> {
        loop {
            let notified = self.nudge.0.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if stop.is_cancelled() {
                return Ok(());
            }
            let step = match self.step(worker).await {
                Ok(step) => step,
                Err(e) => {
                    warn!(worker, error = %e, "job runner cannot reach the database; retrying");
                    Step::Idle
                }
            };
            if step != Step::Idle {
                continue;
            }
            let wait = self.idle_wait().await;
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                () = &mut notified => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// How long an idle worker sleeps: until the next job is due, at most one poll interval.
    async fn idle_wait(&self) -> Duration {
        let poll = self.settings.poll_interval;
        match self.store.next_due().await {
            Ok(Some(due)) => {
                let until = due.duration_since(self.clock.now());
                Duration::try_from(until).unwrap_or(Duration::ZERO).min(poll).max(Duration::from_millis(1))
            }
            _ => poll,
        }
    }

    /// Claims and runs one due job, if any.
    pub async fn step(&self, worker: &str) -> Result<Step, StoreError> {
        let Some(job) = self.store.claim_job(worker, self.clock.now(), self.settings.lease).await? else {
            return Ok(Step::Idle);
        };
        let span = info_span!("job", job.id = job.id, job.kind = %job.kind, incident.id = job.incident.map(|i| i.to_string()), job.attempt = job.attempts);
        self.execute(worker, job).instrument(span).await
    }

    async fn execute(&self, worker: &str, job: Job) -> Result<Step, StoreError> {
        let started = std::time::Instant::now();
        let result = tokio::select! {
            result = self.handler.run(&job) => result,
            () = self.keep_lease(worker, &job) => return Ok(Step::LostLease),
        };
        let now = self.clock.now();
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (message, retry_after) = match result {
            Ok(()) => {
                return Ok(if self.store.finish_job(job.id, worker, now).await? {
                    info!(duration_ms, "job {} done", job.kind);
                    Step::Done
                } else {
                    warn!("job {} finished after its lease was taken over", job.kind);
                    Step::LostLease
                });
            }
            Err(JobError::Permanent(message)) => {
                return self.bury(worker, &job, now, &message).await;
            }
            Err(JobError::Retry { message, retry_after }) => (message, retry_after),
        };
        if now >= job.deadline {
            return self.bury(worker, &job, now, &format!("retry budget spent; last error: {message}")).await;
        }
        let delay = retry_after.unwrap_or_else(|| self.backoff(job.attempts));
        let run_after =
            now.checked_add(SignedDuration::try_from(delay).unwrap_or(SignedDuration::MAX)).unwrap_or(Timestamp::MAX);
        warn!(duration_ms, retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX), error = %message, "job {} failed; will retry", job.kind);
        Ok(if self.store.retry_job(job.id, worker, run_after, &message).await? {
            Step::Retried
        } else {
            Step::LostLease
        })
    }

    /// Renews the lease every third of its length; returns only if the lease was lost.
    async fn keep_lease(&self, worker: &str, job: &Job) {
        let every = self.settings.lease / 3;
        loop {
            tokio::time::sleep(every).await;
            let until = self
                .clock
                .now()
                .checked_add(SignedDuration::try_from(self.settings.lease).unwrap_or(SignedDuration::MAX))
                .unwrap_or(Timestamp::MAX);
            match self.store.extend_lease(job.id, worker, until).await {
                Ok(true) => {}
                Ok(false) => {
                    warn!("lost the lease of job {}; another worker owns it now", job.kind);
                    return;
                }
                Err(e) => warn!(error = %e, "could not renew the lease of job {}", job.kind),
            }
        }
    }

    async fn bury(&self, worker: &str, job: &Job, now: Timestamp, message: &str) -> Result<Step, StoreError> {
        if !self.store.bury_job(job.id, worker, now, message).await? {
            return Ok(Step::LostLease);
        }
        error!(error = %message, "job {} is dead after {} attempt(s)", job.kind, job.attempts);
        if let Some(incident) = job.incident {
            let mut tx = self.store.begin().await?;
            let text = format!("could not complete `{}` after {} attempt(s): {message}", job.kind, job.attempts);
            tx.add_timeline(incident, &[TimelineEvent::new(now, "job_dead", Actor::Warroom, text)]).await?;
            tx.commit().await?;
        }
        self.handler.on_dead(job, message).await;
        Ok(Step::Dead)
    }

    /// `initial × 2^(attempts−1)`, capped at `backoff_max`, minus up to 10% jitter so retries
    /// after an outage do not arrive in lockstep.
    fn backoff(&self, attempts: u32) -> Duration {
        let exponent = attempts.saturating_sub(1).min(30);
        let base = self.settings.backoff_initial.saturating_mul(1 << exponent).min(self.settings.backoff_max);
        let jitter = rand::random::<f64>() * 0.1;
        base.mul_f64(1.0 - jitter)
    }
}
