//! The durable job runner: retries, leases, exclusivity, dead jobs, ordering, coalescing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use jiff::SignedDuration;
use tokio_util::sync::CancellationToken;
use warroom::config::JobSettings;
use warroom::domain::{Clock, ManualClock, ShiftedClock, SystemClock};
use warroom::jobs::runner::{JobError, JobHandler, Runner, Step};
use warroom::jobs::{self, Enqueued, JobKey, JobState, NewJob};
use warroom::store::{Job, Store};

use crate::helpers::{bare_store, enqueue, insert_incident};

/// Records every run; fails a job while its script says so.
#[derive(Default)]
struct Scripted {
    runs: Mutex<Vec<String>>,
    /// job name → failures before success (`u32::MAX` = permanent failure).
    failures: Mutex<HashMap<String, u32>>,
    delay: Duration,
}

impl Scripted {
    fn failing(name: &str, times: u32) -> Self {
        let scripted = Self::default();
        scripted.failures.lock().unwrap().insert(name.to_owned(), times);
        scripted
    }

    fn runs(&self) -> Vec<String> {
        self.runs.lock().unwrap().clone()
    }
}

#[async_trait]
impl JobHandler for Scripted {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        let name = job.payload["name"].as_str().unwrap_or_default().to_owned();
        self.runs.lock().unwrap().push(name.clone());
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let mut failures = self.failures.lock().unwrap();
        match failures.get_mut(&name) {
            Some(n) if *n == u32::MAX => Err(JobError::Permanent(format!("{name} cannot work"))),
            Some(n) if *n > 0 => {
                *n -= 1;
                Err(JobError::retry(format!("{name} failed")))
            }
            _ => Ok(()),
        }
    }
}

fn job(name: &str, incident: Option<warroom::domain::IncidentId>) -> NewJob {
    NewJob {
        kind: "test".to_owned(),
        incident,
        payload: serde_json::json!({ "name": name }),
        key: JobKey::None,
        run_after: None,
    }
}

fn fast_settings() -> JobSettings {
    JobSettings {
        workers: 4,
        lease: Duration::from_secs(60),
        retry_budget: Duration::from_secs(3600),
        backoff_initial: Duration::from_millis(2),
        backoff_max: Duration::from_millis(10),
        poll_interval: Duration::from_millis(5),
        shutdown_grace: Duration::from_secs(1),
    }
}

/// Runs `runner` until no job is pending or running.
async fn drain(store: &Arc<dyn Store>, runner: Arc<Runner>) {
    let stop = CancellationToken::new();
    let task = tokio::spawn(runner.run(stop.clone()));
    tokio::time::timeout(Duration::from_secs(10), async {
        while store.open_job_count().await.unwrap() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("jobs drain in time");
    stop.cancel();
    task.await.unwrap().unwrap();
}

fn runner(
    store: &Arc<dyn Store>,
    handler: Arc<dyn JobHandler>,
    clock: Arc<dyn Clock>,
    settings: JobSettings,
) -> Arc<Runner> {
    Arc::new(Runner::new(Arc::clone(store), handler, clock, settings, "test"))
}

#[tokio::test]
async fn a_job_that_fails_twice_then_succeeds_runs_exactly_three_times() {
    let dir = tempfile::tempdir().unwrap();
    let store = bare_store(&dir).await;
    let handler = Arc::new(Scripted::failing("flaky", 2));
    enqueue(&store, &job("flaky", None), Duration::from_secs(3600)).await;

    drain(&store, runner(&store, handler.clone(), Arc::new(SystemClock), fast_settings())).await;

    assert_eq!(handler.runs(), ["flaky", "flaky", "flaky"]);
    let stored = &store.jobs(None).await.unwrap()[0];
    assert_eq!((stored.state, stored.attempts), (JobState::Done, 3));
}

#[tokio::test]
async fn a_job_whose_worker_died_mid_run_is_reclaimed_after_its_lease_and_completes_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = bare_store(&dir).await;
    let handler = Arc::new(Scripted::default());
    enqueue(&store, &job("survivor", None), Duration::from_secs(3600)).await;
    // The clock starts after the enqueue, so the job is due at once.
    let clock = ManualClock::new(SystemClock.now());
    let lease = Duration::from_secs(60);

    let crashed = store.claim_job("crashed-worker", clock.now(), lease).await.unwrap().expect("claimed");
    let runner = runner(&store, handler.clone(), Arc::new(clock.clone()), fast_settings());
    assert_eq!(runner.step("second").await.unwrap(), Step::Idle, "the lease still holds");
    clock.advance(SignedDuration::from_secs(61));
    assert_eq!(runner.step("second").await.unwrap(), Step::Done, "an expired lease is claimed again");

    assert_eq!(handler.runs(), ["survivor"]);
    assert!(
        !store.finish_job(crashed.id, "crashed-worker", clock.now()).await.unwrap(),
        "the dead worker's late finish is refused"
    );
    assert_eq!(store.jobs(None).await.unwrap()[0].state, JobState::Done);
}

#[tokio::test]
async fn two_workers_never_run_the_same_job() {
    let dir = tempfile::tempdir().unwrap();
    let store = bare_store(&dir).await;
    for n in 0..40 {
        enqueue(&store, &job(&format!("job-{n}"), None), Duration::from_secs(3600)).await;
    }
    let handler = Arc::new(Scripted { delay: Duration::from_millis(2), ..Scripted::default() });
    let settings = JobSettings { workers: 8, ..fast_settings() };

    drain(&store, runner(&store, handler.clone(), Arc::new(SystemClock), settings)).await;

    let mut runs = handler.runs();
    runs.sort();
    let before = runs.len();
    runs.dedup();
    assert_eq!((before, runs.len()), (40, 40), "every job ran exactly once");
}

#[tokio::test]
async fn concurrent_claims_hand_out_distinct_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let store = bare_store(&dir).await;
    for n in 0..20 {
        enqueue(&store, &job(&format!("job-{n}"), None), Duration::from_secs(3600)).await;
    }
    let mut claims = Vec::new();
    for worker in 0..20 {
        let store = Arc::clone(&store);
        claims.push(tokio::spawn(async move {
            store
                .claim_job(&format!("w{worker}"), SystemClock.now(), Duration::from_secs(60))
                .await
                .unwrap()
                .map(|j| j.id)
        }));
    }
    let mut ids = Vec::new();
    for claim in claims {
        ids.extend(claim.await.unwrap());
    }
    let claimed = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!((claimed, ids.len()), (20, 20));
}

#[tokio::test]
async fn a_dead_job_is_recorded_and_lets_the_next_job_of_its_incident_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = bare_store(&dir).await;
    let incident = insert_incident(&store, "dead-end").await;
    enqueue(&store, &job("doomed", Some(incident)), Duration::from_secs(3600)).await;
    enqueue(&store, &job("next", Some(incident)), Duration::from_secs(3600)).await;
    let handler = Arc::new(Scripted::failing("doomed", u32::MAX));

    drain(&store, runner(&store, handler.clone(), Arc::new(SystemClock), fast_settings())).await;

    assert_eq!(handler.runs(), ["doomed", "next"]);
    let states: Vec<JobState> = store.jobs(Some(incident)).await.unwrap().iter().map(|j| j.state).collect();
    assert_eq!(states, [JobState::Dead, JobState::Done]);
    let timeline = store.timeline(incident).await.unwrap();
    assert!(
        timeline.iter().any(|e| e.kind == "job_dead" && e.text.contains("cannot work")),
        "a dead job shows on the incident"
    );
}

#[tokio::test]
async fn a_failing_job_past_its_retry_budget_is_marked_dead() {
    let dir = tempfile::tempdir().unwrap();
    let store = bare_store(&dir).await;
    let clock = ShiftedClock::new();
    enqueue(&store, &job("slow-outage", None), Duration::from_secs(60)).await;
    let handler = Arc::new(Scripted::failing("slow-outage", 1000));
    let runner = runner(&store, handler.clone(), Arc::new(clock.clone()), fast_settings());

    assert_eq!(runner.step("w").await.unwrap(), Step::Retried);
    clock.advance(SignedDuration::from_secs(61));
    assert_eq!(runner.step("w").await.unwrap(), Step::Dead);
    let stored = &store.jobs(None).await.unwrap()[0];
    assert!(stored.last_error.as_deref().unwrap().contains("retry budget"), "{:?}", stored.last_error);
}

#[tokio::test]
async fn a_reported_retry_after_is_honoured() {
    struct RateLimited;
    #[async_trait]
    impl JobHandler for RateLimited {
        async fn run(&self, _job: &Job) -> Result<(), JobError> {
            Err(JobError::Retry { message: "429".to_owned(), retry_after: Some(Duration::from_secs(30)) })
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let store = bare_store(&dir).await;
    enqueue(&store, &job("limited", None), Duration::from_secs(3600)).await;
    let clock = ManualClock::new(SystemClock.now());
    let runner = runner(&store, Arc::new(RateLimited), Arc::new(clock.clone()), fast_settings());

    assert_eq!(runner.step("w").await.unwrap(), Step::Retried);
    let due = store.next_due().await.unwrap().unwrap();
    assert_eq!(due.duration_since(clock.now()), SignedDuration::from_secs(30));
    clock.advance(SignedDuration::from_secs(29));
    assert_eq!(runner.step("w").await.unwrap(), Step::Idle, "not before Retry-After");
}

#[tokio::test]
async fn one_incidents_jobs_start_in_order_even_across_retries() {
    let dir = tempfile::tempdir().unwrap();
    let store = bare_store(&dir).await;
    let incident = insert_incident(&store, "ordered").await;
    for name in ["first", "second", "third"] {
        enqueue(&store, &job(name, Some(incident)), Duration::from_secs(3600)).await;
    }
    let handler = Arc::new(Scripted::failing("first", 2));

    drain(&store, runner(&store, handler.clone(), Arc::new(SystemClock), fast_settings())).await;

    assert_eq!(handler.runs(), ["first", "first", "first", "second", "third"]);
}

/// Each job waits until as many jobs as the barrier counts are running: only parallel runs finish.
struct Rendezvous(tokio::sync::Barrier);

#[async_trait]
impl JobHandler for Rendezvous {
    async fn run(&self, _job: &Job) -> Result<(), JobError> {
        self.0.wait().await;
        Ok(())
    }
}

#[tokio::test]
async fn different_incidents_run_in_parallel() {
    let dir = tempfile::tempdir().unwrap();
    let store = bare_store(&dir).await;
    for key in ["a", "b"] {
        let incident = insert_incident(&store, key).await;
        enqueue(&store, &job(key, Some(incident)), Duration::from_secs(3600)).await;
    }
    let handler = Arc::new(Rendezvous(tokio::sync::Barrier::new(2)));

    drain(&store, runner(&store, handler, Arc::new(SystemClock), fast_settings())).await;
}

#[tokio::test]
async fn one_nudge_after_a_burst_wakes_as_many_idle_workers_as_there_are_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let store = bare_store(&dir).await;
    let handler = Arc::new(Rendezvous(tokio::sync::Barrier::new(3)));
    // Workers that went idle sleep a minute unless nudged.
    let settings = JobSettings { poll_interval: Duration::from_secs(60), ..fast_settings() };
    let runner = runner(&store, handler, Arc::new(SystemClock), settings);
    let nudge = runner.nudge();
    let stop = CancellationToken::new();
    let task = tokio::spawn(runner.run(stop.clone()));
    tokio::time::sleep(Duration::from_millis(100)).await;

    for key in ["a", "b", "c"] {
        let incident = insert_incident(&store, key).await;
        enqueue(&store, &job(key, Some(incident)), Duration::from_secs(3600)).await;
    }
    nudge.nudge();
    let drained = tokio::time::timeout(Duration::from_secs(10), async {
        while store.open_job_count().await.unwrap() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(drained.is_ok(), "three jobs need three workers awake at once");
    stop.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_nudge_while_one_worker_is_busy_wakes_the_idle_one() {
    /// Records each job it starts; the job named `long` runs until the semaphore opens.
    struct Gate(tokio::sync::Semaphore, Mutex<Vec<String>>);
    #[async_trait]
    impl JobHandler for Gate {
        async fn run(&self, job: &Job) -> Result<(), JobError> {
            let name = job.payload["name"].as_str().unwrap_or_default().to_owned();
            self.1.lock().unwrap().push(name.clone());
            if name == "long" {
                let _ = self.0.acquire().await.unwrap();
            }
            Ok(())
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let store = bare_store(&dir).await;
    let handler = Arc::new(Gate(tokio::sync::Semaphore::new(0), Mutex::new(Vec::new())));
    // Workers that went idle sleep a minute unless nudged.
    let settings = JobSettings { workers: 2, poll_interval: Duration::from_secs(60), ..fast_settings() };
    let runner = runner(&store, handler.clone(), Arc::new(SystemClock), settings);
    let nudge = runner.nudge();
    let stop = CancellationToken::new();
    let task = tokio::spawn(runner.run(stop.clone()));
    tokio::time::sleep(Duration::from_millis(100)).await;

    let a = insert_incident(&store, "a").await;
    enqueue(&store, &job("long", Some(a)), Duration::from_secs(3600)).await;
    nudge.nudge();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(handler.1.lock().unwrap().clone(), ["long"]);

    let b = insert_incident(&store, "b").await;
    enqueue(&store, &job("quick", Some(b)), Duration::from_secs(3600)).await;
    nudge.nudge();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let ran = handler.1.lock().unwrap().clone();
    handler.0.add_permits(10);
    stop.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(ran, ["long", "quick"], "the idle worker runs the new job at once");
}

#[tokio::test]
async fn a_burst_of_ten_state_changes_leaves_at_most_one_pending_render_job() {
    let dir = tempfile::tempdir().unwrap();
    let store = bare_store(&dir).await;
    let incident = insert_incident(&store, "bursty").await;

    let mut added = 0;
    for _ in 0..10 {
        if enqueue(&store, &jobs::new::render_war_room(incident), Duration::from_secs(3600)).await == Enqueued::Added {
            added += 1;
        }
    }

    assert_eq!(added, 1);
    let pending =
        store.jobs(Some(incident)).await.unwrap().into_iter().filter(|j| j.state == JobState::Pending).count();
    assert_eq!(pending, 1);
}

#[tokio::test]
async fn a_render_requested_while_one_runs_is_queued_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = bare_store(&dir).await;
    let incident = insert_incident(&store, "rendering").await;
    enqueue(&store, &jobs::new::render_war_room(incident), Duration::from_secs(3600)).await;
    let running = store.claim_job("w", SystemClock.now(), Duration::from_secs(60)).await.unwrap().unwrap();

    let again = enqueue(&store, &jobs::new::render_war_room(incident), Duration::from_secs(3600)).await;

    assert_eq!(again, Enqueued::Added, "the running render may have read the old state");
    assert!(store.finish_job(running.id, "w", SystemClock.now()).await.unwrap());
}

#[tokio::test]
async fn a_once_job_is_enqueued_only_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = bare_store(&dir).await;
    let incident = insert_incident(&store, "once").await;
    let first = enqueue(&store, &jobs::new::open_war_room(incident), Duration::from_secs(3600)).await;
    let second = enqueue(&store, &jobs::new::open_war_room(incident), Duration::from_secs(3600)).await;
    assert_eq!((first, second), (Enqueued::Added, Enqueued::AlreadyThere));
}
