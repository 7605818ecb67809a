//! What every bench builds: a scratch directory, the simulated workspace with its people, and
//! warroom itself, either in this process ([`InProcess`]) or as a child `serve` process whose
//! memory can be read on its own ([`Server`]).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{Plan, ServeWith};
use crate::app::{App, AppOptions};
use crate::config::Settings;
use crate::handlers::Services;
use crate::sim::{SimConfig, SimSlack};

/// Ana and Ben are on call (Ben by email), Lea leads incidents; the others only talk.
pub const PEOPLE: [(&str, &str, &str); 8] = [
    ("U0ANA", "ana", "ana@example.com"),
    ("U0BEN", "ben", "ben@example.com"),
    ("U0LEA", "lea", "lea@example.com"),
    ("U0ZOE", "zoe", "zoe@example.com"),
    ("U0MAX", "max", "max@example.com"),
    ("U0IDA", "ida", "ida@example.com"),
    ("U0TOM", "tom", "tom@example.com"),
    ("U0EVA", "eva", "eva@example.com"),
];

/// The on-call person who types commands in the benches.
pub const ANA: &str = "U0ANA";

/// How long a bench waits for something that should take well under a second.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// The configuration file both kinds of server read: durability and the built-in on-call team.
fn config_toml(plan: &Plan) -> String {
    format!(
        r#"[database]
synchronous = "{}"

[oncall]
default_team = "platform"

[[oncall.teams]]
name = "platform"
members = ["U0ANA", "ben@example.com"]
timezone = "UTC"
handoff = "daily"
handoff_time = "00:00"
rotation_start = "2026-01-01"
lead_group = "S0LEADS"
"#,
        plan.durability.as_str()
    )
}

/// Starts the simulated workspace with [`PEOPLE`] and the incident leads' group. Un-acked events
/// are redelivered only after two minutes, so a slow ack is measured as slow, not as lost.
pub async fn start_sim() -> anyhow::Result<SimSlack> {
    let config = SimConfig { redelivery_after: Duration::from_secs(120), ..SimConfig::default() };
    let sim = SimSlack::start(config).await.context("starting the simulated Slack workspace")?;
    for (id, name, email) in PEOPLE {
        sim.add_user(id, name, email);
    }
    sim.add_usergroup("S0LEADS", "incident-leads", &["U0LEA"]);
    Ok(sim)
}

/// A directory under the system temp dir, removed (with everything in it) when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    /// Creates `warroom-bench-<label>-<pid>-<random>`.
    pub fn create(label: &str) -> anyhow::Result<Self> {
        let path = std::env::temp_dir().join(format!(
            "warroom-bench-{label}-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir(&path).with_context(|| format!("creating the scratch directory {}", path.display()))?;
        Ok(Self(path))
    }

    #[must_use]
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// warroom's HTTP API as a client sees it.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    /// Webhook token, also the API token (`WARROOM_API_TOKEN` defaults to it).
    pub token: String,
}

impl Api {
    fn new(base: String, token: String) -> anyhow::Result<Self> {
        let http =
            reqwest::Client::builder().no_proxy().timeout(STEP_TIMEOUT).build().context("building the HTTP client")?;
        Ok(Self { base, http, token })
    }

    /// Posts `body` to `/hooks/{source}`; the status and JSON answer.
    pub async fn post_hook(&self, source: &str, body: String) -> anyhow::Result<(StatusCode, Value)> {
        let response = self
            .http
            .post(format!("{}/hooks/{source}", self.base))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .with_context(|| format!("POST /hooks/{source}"))?;
        let status = response.status();
        let answer = response.json().await.with_context(|| format!("reading the answer of POST /hooks/{source}"))?;
        Ok((status, answer))
    }

    /// Opens an incident through the generic hook; its id.
    pub async fn open_incident(&self, key: &str, title: &str) -> anyhow::Result<String> {
        let body = json!({"key": key, "title": title, "severity": "sev2", "service": "checkout"}).to_string();
        let (status, answer) = self.post_hook("generic", body).await?;
        if status != StatusCode::ACCEPTED || answer["outcome"] != "opened" {
            bail!("POST /hooks/generic for {key} answered {status} {answer}, expected 202 opened");
        }
        answer["incident"].as_str().map(str::to_owned).context("the webhook answer names no incident")
    }

    /// `GET {path}` with the API token; the JSON of a 2xx answer.
    pub async fn get_json(&self, path: &str) -> anyhow::Result<Value> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            bail!("GET {path} answered {status}: {body}");
        }
        response.json().await.with_context(|| format!("reading the JSON of GET {path}"))
    }

    /// Counts incidents by paging through `GET /api/incidents`.
    pub async fn count_incidents(&self) -> anyhow::Result<usize> {
        let mut count = 0;
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(cursor) => format!("/api/incidents?limit=200&cursor={cursor}"),
                None => "/api/incidents?limit=200".to_owned(),
            };
            let page = self.get_json(&path).await?;
            count += page["incidents"].as_array().map_or(0, Vec::len);
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return Ok(count),
            }
        }
    }

    /// Whether `/healthz` answers at all (200 while HTTP serves).
    async fn answers(&self) -> bool {
        let url = format!("{}/healthz", self.base);
        matches!(self.http.get(url).timeout(Duration::from_secs(1)).send().await, Ok(r) if r.status().is_success())
    }
}

/// warroom running in this process against `sim`.
pub struct InProcess {
    pub api: Api,
    pub services: Services,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl InProcess {
    /// Builds and starts the app on `127.0.0.1:0` with its database in `dir`; `configure`
    /// adjusts the settings last.
    pub async fn start(
        plan: &Plan,
        sim: &SimSlack,
        dir: &Path,
        configure: impl FnOnce(&mut Settings),
    ) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding 127.0.0.1:0 for warroom")?;
        let addr = listener.local_addr().context("reading the listener address")?;
        let token = format!("bench-{:032x}", rand::random::<u128>());
        let mut settings: Settings = toml::from_str(&config_toml(plan)).context("the bench configuration")?;
        settings.http.addr = addr;
        settings.http.webhook_token = Some(token.clone().into());
        settings.database.url = format!("sqlite://{}", dir.join("warroom.db").display());
        // Measure warroom, not the shipped example runbooks (which need real automation).
        settings.commands_dir = dir.join("commands");
        settings.slack.bot_token = Some(sim.config().bot_token.clone().into());
        settings.slack.app_token = Some(sim.config().app_token.clone().into());
        settings.slack.api_url = sim.api_url();
        settings.jobs.shutdown_grace = Duration::from_secs(2);
        configure(&mut settings);
        let app = App::build(settings, AppOptions::default()).await.context("building warroom")?;
        let services = app.services().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run(listener, async move {
            let _ = stopped.await;
        }));
        Ok(Self { api: Api::new(format!("http://{addr}"), token)?, services, stop: Some(stop), task })
    }

    /// Stops the app and waits for it.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match tokio::time::timeout(Duration::from_secs(10), &mut self.task).await {
            Ok(Ok(result)) => result.context("warroom stopped with an error"),
            Ok(Err(e)) => bail!("warroom panicked: {e}"),
            Err(_) => {
                self.task.abort();
                bail!("warroom did not stop within 10 s")
            }
        }
    }

    /// Waits until no job is pending or running.
    pub async fn settle(&self, timeout: Duration) -> anyhow::Result<()> {
        let store = &self.services.store;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if store.open_job_count().await.context("counting open jobs")? == 0 {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("jobs did not settle within {} s", timeout.as_secs());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Resident memory of a process, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss_kib: u64,
    /// `VmHWM`: the peak resident size so far.
    pub hwm_kib: u64,
}

/// Reads `VmRSS` and `VmHWM` of `pid` (this process when `None`).
pub fn memory_of(pid: Option<u32>) -> anyhow::Result<Memory> {
    let path = pid.map_or_else(|| "/proc/self/status".to_owned(), |pid| format!("/proc/{pid}/status"));
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let field = |name: &str| -> anyhow::Result<u64> {
        let line = status.lines().find(|l| l.starts_with(name)).with_context(|| format!("{path} has no {name}"))?;
        let number = line.split_whitespace().nth(1).with_context(|| format!("{path}: empty {name}"))?;
        number.parse().with_context(|| format!("{path}: {name} is not a number: {line}"))
    };
    Ok(Memory { rss_kib: field("VmRSS:")?, hwm_kib: field("VmHWM:")? })
}

/// `warroom serve` as a child process, or (when no binary is at hand, e.g. in unit tests) the
/// app in this process.
pub struct Server {
    pub api: Api,
    kind: ServerKind,
}

enum ServerKind {
    Child { child: tokio::process::Child, pid: u32, log: PathBuf },
    InProcess(InProcess),
}

impl Server {
    /// Starts `serve` against `sim` with its database and log in `dir` and waits until HTTP
    /// answers.
    pub async fn start(plan: &Plan, sim: &SimSlack, dir: &Path) -> anyhow::Result<Self> {
        let binary = match &plan.serve {
            ServeWith::Child(binary) => binary.clone(),
            ServeWith::InProcess => {
                let app = InProcess::start(plan, sim, dir, |_| {}).await?;
                return Ok(Self { api: app.api.clone(), kind: ServerKind::InProcess(app) });
            }
        };
        let config = dir.join("warroom.toml");
        std::fs::write(&config, config_toml(plan)).with_context(|| format!("writing {}", config.display()))?;
        let port = free_port()?;
        let token = format!("bench-{:032x}", rand::random::<u128>());
        let log = dir.join("serve.log");
        let log_file = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let log_err = log_file.try_clone().with_context(|| format!("opening {} twice", log.display()))?;
        let mut command = tokio::process::Command::new(&binary);
        command
            .arg("serve")
            .current_dir(dir)
            .env("WARROOM_CONFIG", &config)
            .env("WARROOM_DATABASE_URL", format!("sqlite://{}", dir.join("warroom.db").display()))
            .env("WARROOM_WEBHOOK_TOKEN", &token)
            .env("SLACK_BOT_TOKEN", &sim.config().bot_token)
            .env("SLACK_APP_TOKEN", &sim.config().app_token)
            .env("WARROOM_SLACK_API_URL", sim.api_url())
            .env("WARROOM_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env_remove("WARROOM_API_TOKEN")
            .env_remove("WARROOM_COMMANDS_DIR")
            .env_remove("WARROOM_LOG_FORMAT")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_file))
            .stderr(Stdio::from(log_err))
            .kill_on_drop(true);
        let mut child = command.spawn().with_context(|| format!("starting {} serve", binary.display()))?;
        let pid = child.id().context("the serve process has no pid")?;
        let api = Api::new(format!("http://127.0.0.1:{port}"), token)?;
        let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().context("checking the serve process")? {
                bail!("serve exited with {status} before answering HTTP; its log:\n{}", tail(&log));
            }
            if api.answers().await {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                let _ = child.start_kill();
                bail!("serve did not answer /healthz within {} s; its log:\n{}", STEP_TIMEOUT.as_secs(), tail(&log));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Self { api, kind: ServerKind::Child { child, pid, log } })
    }

    /// What runs the server: `serve (pid N)` or `in process`.
    #[must_use]
    pub fn describe(&self) -> String {
        match &self.kind {
            ServerKind::Child { pid, .. } => format!("a child `warroom serve` process (pid {pid})"),
            ServerKind::InProcess(_) => "warroom in the bench process (no serve binary given)".to_owned(),
        }
    }

    /// The server's memory (this process's when it runs in process).
    pub fn memory(&self) -> anyhow::Result<Memory> {
        match &self.kind {
            ServerKind::Child { pid, .. } => memory_of(Some(*pid)),
            ServerKind::InProcess(_) => memory_of(None),
        }
    }

    /// Stops the server: the child is killed (its database is scratch), the in-process app
    /// shut down.
    pub async fn stop(self) -> anyhow::Result<()> {
        match self.kind {
            ServerKind::Child { mut child, log, .. } => {
                if let Some(status) = child.try_wait().context("checking the serve process")? {
                    bail!("serve exited on its own with {status}; its log:\n{}", tail(&log));
                }
                child.start_kill().context("stopping the serve process")?;
                let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
                Ok(())
            }
            ServerKind::InProcess(app) => app.stop().await,
        }
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr().context("reading the free port")?.port())
}

/// The last lines of a log file, for error messages.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Polls `probe` every `every` until it returns `Some`, or fails after `timeout` naming `what`.
pub async fn poll<T, F>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut probe: impl FnMut() -> F,
) -> anyhow::Result<T>
where
    F: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(found) = probe().await? {
            return Ok(found);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("timed out after {:.1} s waiting for {what}", timeout.as_secs_f64());
        }
        tokio::time::sleep(every).await;
    }
}

/// How many channels have a pinned message: war rooms that are ready.
#[must_use]
pub fn ready_rooms(sim: &SimSlack) -> usize {
    sim.channels().iter().filter(|c| !c.pins.is_empty()).count()
}
