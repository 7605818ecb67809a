//! `spawn_app()`: the real application on 127.0.0.1:0 with a temp SQLite database, plus verbs.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use reqwest::StatusCode;
use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use warroom::app::{App, AppOptions};
use warroom::config::Settings;
use warroom::domain::incident::{ChannelRef, NewIncident, Outcome};
use warroom::domain::runbook_run::{Deployment, RunbookRun};
use warroom::domain::transcript::{Capture, Origin, TranscriptLine};
use warroom::domain::war_room::{Responder, WarRoom};
use warroom::domain::{
    Alert, Clock, Incident, IncidentId, Problem, ProblemKey, ShiftedClock, SourceKind, TimelineEvent,
};
use warroom::handlers::Services;
use warroom::sim::{SimConfig, SimSlack};
use warroom::store::sqlite::SqliteStore;
use warroom::store::{Enqueued, GroupedWork, IncidentFilter, Job, NewJob, Store, StoreError, StoreTx};

pub const WEBHOOK_TOKEN: &str = "test-webhook-token";
pub const API_TOKEN: &str = "test-api-token";

/// Reads a file under `tests/fixtures/`.
pub fn fixture(path: &str) -> String {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("fixture {}: {e}", full.display()))
}

/// Settings for tests: temp database, tokens, fast timers.
pub fn test_settings(dir: &TempDir) -> Settings {
    let mut settings =
        Settings { oncall: toml::from_str(ONCALL_TOML).expect("on-call settings"), ..Settings::default() };
    settings.slack.reconnect_delay = Duration::from_secs(1);
    settings.slack.retry_initial = Duration::from_millis(50);
    settings.slack.retry_max = Duration::from_millis(200);
    settings.slack.heartbeat = Duration::from_millis(50);
    settings.commands_dir = dir.path().join("commands");
    settings.database.url = format!("sqlite://{}", dir.path().join("warroom.db").display());
    settings.http.webhook_token = Some(WEBHOOK_TOKEN.into());
    settings.http.api_token = Some(API_TOKEN.into());
    settings.jobs.poll_interval = Duration::from_millis(20);
    settings.jobs.backoff_initial = Duration::from_millis(5);
    settings.jobs.backoff_max = Duration::from_millis(50);
    settings.jobs.shutdown_grace = Duration::from_secs(2);
    settings
}

/// A running application.
pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub services: Services,
    pub slack: SimSlack,
    pub clock: ShiftedClock,
    pub store_switch: Arc<AtomicBool>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    _dir: TempDir,
}

/// The app with default test settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The app with settings adjusted by `configure`.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    warroom::telemetry::init_for_test();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = test_settings(&dir);
    let slack = start_workspace().await;
    settings.slack.bot_token = Some(slack.config().bot_token.clone().into());
    settings.slack.app_token = Some(slack.config().app_token.clone().into());
    settings.slack.api_url = slack.api_url();
    configure(&mut settings);
    let store_switch = Arc::new(AtomicBool::new(true));
    let switch = Arc::clone(&store_switch);
    let clock = ShiftedClock::new();
    let options = AppOptions {
        clock: Arc::new(clock.clone()),
        insecure_no_webhook_auth: false,
        worker_name: "test".to_owned(),
        env: Arc::new(|name: &str| TEST_SECRETS.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())),
        wrap_store: Some(Arc::new(move |inner| {
            Arc::new(SwitchableStore { inner, up: Arc::clone(&switch) }) as Arc<dyn Store>
        })),
    };
    let app = App::build(settings, options).await.expect("app builds");
    let services = app.services().clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run(listener, async move {
        let _ = stopped.await;
    }));
    TestApp {
        base,
        http: reqwest::Client::new(),
        services,
        slack,
        clock,
        store_switch,
        stop: Some(stop),
        task: Some(task),
        _dir: dir,
    }
}

impl TestApp {
    /// Posts `body` as JSON to `/hooks/{source}` with the right token.
    pub async fn post_hook(&self, source: &str, body: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}/hooks/{source}", self.base))
            .bearer_auth(WEBHOOK_TOKEN)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("hook request");
        read(response).await
    }

    /// Posts a fixture and asserts the outcome; returns the incident id.
    pub async fn deliver(&self, source: &str, fixture_path: &str, outcome: &str) -> Option<String> {
        let (status, body) = self.post_hook(source, &fixture(fixture_path)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{fixture_path}: {body}");
        assert_eq!(body["outcome"], outcome, "{fixture_path} gave {body}");
        body["incident"].as_str().map(str::to_owned)
    }

    /// `GET {path}` with the API token.
    pub async fn get_api(&self, path: &str) -> (StatusCode, Value) {
        let response =
            self.http.get(format!("{}{path}", self.base)).bearer_auth(API_TOKEN).send().await.expect("api request");
        read(response).await
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.expect("app task"),
            None => Ok(()),
        }
    }

    /// Waits until `condition` holds on the simulated workspace (re-checked after every call).
    pub async fn wait_for_slack(&self, what: &str, condition: impl FnMut(&SimSlack) -> bool) {
        assert!(self.slack.wait_for(Duration::from_secs(10), condition).await, "timed out waiting for {what}");
    }

    /// Waits until no job is pending or running.
    pub async fn settle(&self) {
        let store = &self.services.store;
        let settled = tokio::time::timeout(Duration::from_secs(10), async {
            while store.open_job_count().await.unwrap_or(1) > 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(settled.is_ok(), "jobs did not settle: {:?}", store.jobs(Some(IncidentId::from_seq(1))).await);
    }

    /// The incident's channel in the simulated workspace.
    pub async fn channel_of(&self, id: &str) -> warroom::sim::SimChannel {
        let (_, incident) = self.get_api(&format!("/api/incidents/{id}")).await;
        let channel_id =
            incident["channel"]["id"].as_str().unwrap_or_else(|| panic!("{id} has no channel: {incident}")).to_owned();
        self.slack.channels().into_iter().find(|c| c.id == channel_id).expect("channel exists in Slack")
    }

    /// Waits for the Socket Mode connection.
    pub async fn connected(&self) {
        assert!(self.slack.wait_for_connections(1, Duration::from_secs(10)).await, "Socket Mode did not connect");
    }

    /// Makes the database unreachable (or reachable again).
    pub fn set_database_up(&self, up: bool) {
        self.store_switch.store(up, Ordering::SeqCst);
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.slack.shutdown();
    }
}

/// Secrets runbooks and sources read in tests (never real values).
pub const TEST_SECRETS: &[(&str, &str)] = &[
    ("AWX_TOKEN", "test-awx-token"),
    ("HOOK_TOKEN", "Bearer test-hook-token"),
    ("DT_TOKEN", "test-dt-token"),
    ("JIRA_TOKEN", "test-jira-token"),
    ("JIRA_SECRET", "test-jira-webhook-secret"),
    ("PD_TOKEN", "test-pd-token"),
    ("OG_TOKEN", "test-og-key"),
];

/// Ana and Ben are on call (Ben by email), Lea leads incidents, Zoe is just around.
pub const ANA: &str = "U0ANA";
pub const BEN: &str = "U0BEN";
pub const LEA: &str = "U0LEA";
pub const ZOE: &str = "U0ZOE";

/// A simulated workspace with the test team.
pub async fn start_workspace() -> SimSlack {
    let config = SimConfig { redelivery_after: Duration::from_millis(400), ..SimConfig::default() };
    let slack = SimSlack::start(config).await.expect("simulated Slack");
    slack.add_user(ANA, "ana", "ana@example.com");
    slack.add_user(BEN, "ben", "ben@example.com");
    slack.add_user(LEA, "lea", "lea@example.com");
    slack.add_user(ZOE, "zoe", "zoe@example.com");
    slack.add_usergroup("S0LEADS", "incident-leads", &[LEA]);
    slack
}

/// One daily team in UTC: Ana and Ben (by email) alternate, Lea's group leads.
pub const ONCALL_TOML: &str = r#"
default_team = "platform"
[[teams]]
name = "platform"
members = ["U0ANA", "ben@example.com"]
timezone = "UTC"
handoff = "daily"
handoff_time = "00:00"
rotation_start = "2026-01-01"
lead_group = "S0LEADS"
"#;

async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

/// A store that can be switched off, to prove what happens when the database is unavailable.
pub struct SwitchableStore {
    pub inner: Arc<dyn Store>,
    pub up: Arc<AtomicBool>,
}

impl SwitchableStore {
    fn check(&self) -> Result<(), StoreError> {
        if self.up.load(Ordering::SeqCst) { Ok(()) } else { Err(StoreError::Unavailable(sqlx::Error::PoolClosed)) }
    }
}

#[async_trait]
impl Store for SwitchableStore {
    async fn begin(&self) -> Result<Box<dyn StoreTx>, StoreError> {
        self.check()?;
        self.inner.begin().await
    }
    async fn grouped(&self, work: GroupedWork) -> Result<Box<dyn std::any::Any + Send>, StoreError> {
        self.check()?;
        self.inner.grouped(work).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.check()?;
        self.inner.ping().await
    }
    async fn incident(&self, id: IncidentId) -> Result<Option<Incident>, StoreError> {
        self.check()?;
        self.inner.incident(id).await
    }
    async fn list_incidents(&self, filter: &IncidentFilter) -> Result<Vec<Incident>, StoreError> {
        self.check()?;
        self.inner.list_incidents(filter).await
    }
    async fn alerts(&self, id: IncidentId) -> Result<Vec<Alert>, StoreError> {
        self.check()?;
        self.inner.alerts(id).await
    }
    async fn timeline(&self, id: IncidentId) -> Result<Vec<TimelineEvent>, StoreError> {
        self.check()?;
        self.inner.timeline(id).await
    }
    async fn delivery_count(&self, source: SourceKind, key: &ProblemKey) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.delivery_count(source, key).await
    }
    async fn record_inbound(&self, source: &str, key: &str, now: Timestamp) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.record_inbound(source, key, now).await
    }
    async fn claim_job(&self, worker: &str, now: Timestamp, lease: Duration) -> Result<Option<Job>, StoreError> {
        self.check()?;
        self.inner.claim_job(worker, now, lease).await
    }
    async fn extend_lease(&self, id: i64, worker: &str, until: Timestamp) -> Result<bool, StoreError> {
        self.inner.extend_lease(id, worker, until).await
    }
    async fn finish_job(&self, id: i64, worker: &str, now: Timestamp) -> Result<bool, StoreError> {
        self.inner.finish_job(id, worker, now).await
    }
    async fn retry_job(&self, id: i64, worker: &str, run_after: Timestamp, error: &str) -> Result<bool, StoreError> {
        self.inner.retry_job(id, worker, run_after, error).await
    }
    async fn bury_job(&self, id: i64, worker: &str, now: Timestamp, error: &str) -> Result<bool, StoreError> {
        self.inner.bury_job(id, worker, now, error).await
    }
    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        self.check()?;
        self.inner.next_due().await
    }
    async fn jobs(&self, incident: Option<IncidentId>) -> Result<Vec<Job>, StoreError> {
        self.inner.jobs(incident).await
    }
    async fn open_job_count(&self) -> Result<u64, StoreError> {
        self.inner.open_job_count().await
    }
    async fn counts(&self) -> Result<warroom::store::Counts, StoreError> {
        self.check()?;
        self.inner.counts().await
    }
    async fn war_room(&self, id: IncidentId, round: u32) -> Result<Option<WarRoom>, StoreError> {
        self.check()?;
        self.inner.war_room(id, round).await
    }
    async fn war_rooms(&self, id: IncidentId) -> Result<Vec<WarRoom>, StoreError> {
        self.check()?;
        self.inner.war_rooms(id).await
    }
    async fn save_war_room(&self, room: &WarRoom, now: Timestamp) -> Result<(), StoreError> {
        self.check()?;
        self.inner.save_war_room(room, now).await
    }
    async fn open_incidents_of(&self, service: &str) -> Result<Vec<IncidentId>, StoreError> {
        self.check()?;
        self.inner.open_incidents_of(service).await
    }
    async fn incident_by_ticket(&self, key: &str) -> Result<Option<IncidentId>, StoreError> {
        self.check()?;
        self.inner.incident_by_ticket(key).await
    }
    async fn incident_by_channel(&self, channel_id: &str) -> Result<Option<(IncidentId, u32)>, StoreError> {
        self.check()?;
        self.inner.incident_by_channel(channel_id).await
    }
    async fn set_incident_channel(&self, id: IncidentId, channel: &ChannelRef) -> Result<(), StoreError> {
        self.check()?;
        self.inner.set_incident_channel(id, channel).await
    }
    async fn set_incident_ticket(&self, id: IncidentId, key: &warroom::domain::TicketKey) -> Result<(), StoreError> {
        self.check()?;
        self.inner.set_incident_ticket(id, key).await
    }
    async fn add_responders(&self, id: IncidentId, responders: &[Responder], now: Timestamp) -> Result<(), StoreError> {
        self.check()?;
        self.inner.add_responders(id, responders, now).await
    }
    async fn responders(&self, id: IncidentId) -> Result<Vec<Responder>, StoreError> {
        self.check()?;
        self.inner.responders(id).await
    }
    async fn capture(
        &self,
        id: IncidentId,
        change: &Capture,
        origin: Origin,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.check()?;
        self.inner.capture(id, change, origin, now).await
    }
    async fn transcript_lines(&self, id: IncidentId) -> Result<Vec<TranscriptLine>, StoreError> {
        self.check()?;
        self.inner.transcript_lines(id).await
    }
    async fn heartbeat(&self, now: Timestamp) -> Result<Option<Timestamp>, StoreError> {
        self.check()?;
        self.inner.heartbeat(now).await
    }
    async fn record_gap(&self, started_at: Timestamp, ended_at: Timestamp) -> Result<(), StoreError> {
        self.check()?;
        self.inner.record_gap(started_at, ended_at).await
    }
    async fn gaps(&self, from: Timestamp, to: Timestamp) -> Result<Vec<(Timestamp, Timestamp)>, StoreError> {
        self.check()?;
        self.inner.gaps(from, to).await
    }
    async fn save_transcript(&self, id: IncidentId, markdown: &str, now: Timestamp) -> Result<(), StoreError> {
        self.check()?;
        self.inner.save_transcript(id, markdown, now).await
    }
    async fn transcript(&self, id: IncidentId) -> Result<Option<String>, StoreError> {
        self.check()?;
        self.inner.transcript(id).await
    }
    async fn record_deployment(&self, deployment: &Deployment) -> Result<i64, StoreError> {
        self.check()?;
        self.inner.record_deployment(deployment).await
    }
    async fn deployments(
        &self,
        service: &str,
        environment: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Deployment>, StoreError> {
        self.check()?;
        self.inner.deployments(service, environment, limit).await
    }
    async fn run(&self, id: i64) -> Result<Option<RunbookRun>, StoreError> {
        self.check()?;
        self.inner.run(id).await
    }
    async fn runs(&self, incident: IncidentId) -> Result<Vec<RunbookRun>, StoreError> {
        self.check()?;
        self.inner.runs(incident).await
    }
    async fn update_run(&self, run: &RunbookRun) -> Result<(), StoreError> {
        self.check()?;
        self.inner.update_run(run).await
    }
    async fn last_automatic_run(&self, problem_key: &str, since: Timestamp) -> Result<Option<RunbookRun>, StoreError> {
        self.check()?;
        self.inner.last_automatic_run(problem_key, since).await
    }
}

/// Opens a bare store in `dir` (for job-runner tests that need no HTTP).
pub async fn bare_store(dir: &TempDir) -> Arc<dyn Store> {
    let settings = test_settings(dir);
    Arc::new(SqliteStore::connect(&settings.database).await.expect("store"))
}

/// Inserts an incident directly and returns its id.
pub async fn insert_incident(store: &Arc<dyn Store>, key: &str) -> IncidentId {
    let problem = Problem {
        source: SourceKind::Generic,
        key: ProblemKey::new(key).expect("key"),
        title: format!("problem {key}"),
        severity: warroom::domain::Severity::Sev3,
        service: None,
        status: warroom::domain::ProblemStatus::Firing,
        description: None,
        url: None,
        labels: Default::default(),
        entities: vec![],
        alerts: vec![],
        display_id: None,
    };
    let now = warroom::domain::SystemClock.now();
    let mut tx = store.begin().await.expect("begin");
    let id = tx.insert_incident(&NewIncident::from_problem(&problem, now), now).await.expect("insert");
    tx.record_delivery(&problem, b"{}", Some(id), Outcome::Opened, now).await.expect("delivery");
    tx.commit().await.expect("commit");
    id
}

/// Enqueues `job` in its own transaction.
pub async fn enqueue(store: &Arc<dyn Store>, job: &NewJob, budget: Duration) -> Enqueued {
    let now = warroom::domain::SystemClock.now();
    let mut tx = store.begin().await.expect("begin");
    let result = warroom::jobs::enqueue(&mut *tx, job, now, budget).await.expect("enqueue");
    tx.commit().await.expect("commit");
    result
}

/// Verbs for the `/incident` command and the buttons, as people in the workspace use them.
impl TestApp {
    /// `user` types `/incident {text}` in `channel`; returns the whole ack payload (the
    /// ephemeral reply). Panics when the envelope is not acked.
    pub async fn slash_ack(&self, channel: &str, user: &str, text: &str) -> Value {
        let payload = self.slack.slash_command_payload(channel, user, text);
        let envelope = self.slack.send_envelope(warroom::sim::EnvelopeKind::SlashCommands, payload).await;
        let ack = self.slack.wait_for_ack(&envelope, Duration::from_secs(5)).await;
        let ack = ack.unwrap_or_else(|| panic!("`/incident {text}` was not acked"));
        ack.payload.unwrap_or(Value::Null)
    }

    /// `user` types `/incident {text}` in `channel`; returns the ephemeral text from the ack.
    /// Waits (up to 10 s) for a post to a `response_url` whose text contains `needle`.
    pub async fn response_url_post_containing(&self, needle: &str) -> bool {
        self.slack
            .wait_for(Duration::from_secs(10), |s| {
                s.response_url_posts().iter().any(|p| p["text"].as_str().is_some_and(|t| t.contains(needle)))
            })
            .await
    }

    pub async fn slash(&self, channel: &str, user: &str, text: &str) -> Option<String> {
        self.slash_ack(channel, user, text).await["text"].as_str().map(str::to_owned)
    }

    /// `user` presses the button `action_id` (with `value`) on the pinned context message of
    /// `channel`; waits for the ack.
    pub async fn press(&self, channel: &str, user: &str, action_id: &str, value: &str) {
        let pinned = self.slack.channels().into_iter().find(|c| c.id == channel).and_then(|c| c.pins.first().cloned());
        let message_ts = pinned.unwrap_or_else(|| panic!("{channel} has no pinned context message"));
        let payload = self.slack.block_action_payload(channel, user, &message_ts, action_id, value);
        let envelope = self.slack.send_envelope(warroom::sim::EnvelopeKind::Interactive, payload).await;
        let acked = self.slack.wait_for_ack(&envelope, Duration::from_secs(5)).await;
        assert!(acked.is_some(), "the press of {action_id} was not acked");
    }

    /// `GET /api/incidents/{id}`, which must exist.
    pub async fn incident(&self, id: &str) -> Value {
        let (status, incident) = self.get_api(&format!("/api/incidents/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{id}: {incident}");
        incident
    }

    /// `GET /api/tickets/{key}`, which must exist.
    pub async fn ticket(&self, key: &str) -> Value {
        let (status, ticket) = self.get_api(&format!("/api/tickets/{key}")).await;
        assert_eq!(status, StatusCode::OK, "{key}: {ticket}");
        ticket
    }
}
