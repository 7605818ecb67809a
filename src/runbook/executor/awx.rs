//! The AWX executor: launch an AWX / Ansible Tower / AAP controller template, follow the job it
//! creates to a final status, keep the tail of its stdout, and cancel it on timeout.
//!
//! The API root is `{base_url}{api_path}`, so AWX (`/api/v2/`) and the AAP 2.5+ gateway
//! (`/api/controller/v2/`) both work. A launch is accepted on any 2xx, since AWX's view code answers
//! 201 and its API doc says 202; the job id is read from the body (`job`, `workflow_job` or `id`),
//! never from the status code. Fields the template does not prompt for are silently dropped by AWX
//! and listed in `ignored_fields`; they are surfaced in every summary, since a rollback that ran
//! without its `extra_vars` is a configuration error people must see.

use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::time::{Instant, sleep_until, timeout_at};

use super::{ExecError, OutputTail, Shared, head_chars, human, retry_after};
use crate::runbook::plan::{AwxPlan, AwxTemplateKind, Progress, RunReport, RunStatus};

/// Consecutive failed polls after which the job is given up on.
const MAX_POLL_FAILURES: u32 = 3;

/// Launches `plan`, follows the job until it ends or `timeout` passes, and reports the outcome.
pub(super) async fn run(
    shared: &Shared,
    plan: &AwxPlan,
    timeout: Duration,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<RunReport, ExecError> {
    let deadline = Instant::now() + timeout;
    let token = shared.secret(&plan.token)?;
    let api = Api::new(shared.client()?, plan, token);

    let launched = match timeout_at(deadline, api.launch(plan)).await {
        Ok(launched) => launched?,
        Err(_) => return Err(ExecError::Transport(format!("AWX did not answer the launch within {}", human(timeout)))),
    };
    let job = launched.job;
    let link = Some(api.link(job));
    let note = ignored_note(&launched.ignored);
    tracing::info!(awx.job = job.id, awx.kind = job.kind.collection(), "{} launched", job.name());
    progress(Progress::Started { summary: format!("{} launched{note}", job.name()), link: link.clone() });

    let followed = follow(&api, job, shared.settings.poll_interval, deadline, progress).await?;
    let (status, summary, explanation) = match followed {
        Followed::Finished { status, explanation } => {
            let run_status = match status.as_str() {
                "successful" => RunStatus::Succeeded,
                "canceled" => RunStatus::Canceled,
                _ => RunStatus::Failed,
            };
            let why = if run_status == RunStatus::Succeeded || explanation.is_empty() {
                String::new()
            } else {
                format!(": {explanation}")
            };
            (run_status, format!("{} {status}{why}{note}", job.name()), explanation)
        }
        Followed::TimedOut => {
            let cancel = api.cancel(job).await;
            tracing::warn!(awx.job = job.id, "{} timed out after {}; {cancel}", job.name(), human(timeout));
            (
                RunStatus::TimedOut,
                format!("{} timed out after {}; {cancel}{note}", job.name(), human(timeout)),
                String::new(),
            )
        }
    };

    let output_tail = match job.kind {
        AwxJobKind::Playbook => api.stdout_tail(job, shared.settings.output_cap).await,
        // Workflow jobs have no stdout of their own; their explanation is the closest thing.
        AwxJobKind::Workflow => {
            let mut tail = OutputTail::new(shared.settings.output_cap);
            tail.push(explanation.as_bytes());
            tail.into_string()
        }
    };
    Ok(RunReport { status, summary, link, output_tail })
}

/// The kind of job a launch created: a template can create a workflow job (sliced job templates).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AwxJobKind {
    Playbook,
    Workflow,
}

impl AwxJobKind {
    fn collection(self) -> &'static str {
        match self {
            Self::Playbook => "jobs",
            Self::Workflow => "workflow_jobs",
        }
    }
}

/// One job on the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AwxJob {
    id: u64,
    kind: AwxJobKind,
}

impl AwxJob {
    fn name(self) -> String {
        match self.kind {
            AwxJobKind::Playbook => format!("AWX job {}", self.id),
            AwxJobKind::Workflow => format!("AWX workflow job {}", self.id),
        }
    }
}

struct Launched {
    job: AwxJob,
    /// Names of the launch fields AWX dropped.
    ignored: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct LaunchAnswer {
    job: Option<u64>,
    workflow_job: Option<u64>,
    id: Option<u64>,
    #[serde(rename = "type")]
    kind: Option<String>,
    ignored_fields: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct JobAnswer {
    status: String,
    #[serde(default)]
    job_explanation: Option<String>,
}

enum Followed {
    Finished { status: String, explanation: String },
    TimedOut,
}

/// The controller's API as this executor uses it.
struct Api<'a> {
    client: &'a reqwest::Client,
    /// `{base_url}` without a trailing slash, for UI links.
    base: String,
    /// `{base_url}{api_path}`, ending with `/`.
    root: String,
    token: String,
    template_kind: AwxTemplateKind,
    template_id: u64,
}

impl<'a> Api<'a> {
    fn new(client: &'a reqwest::Client, plan: &AwxPlan, token: String) -> Self {
        let base = plan.base_url.trim_end_matches('/').to_owned();
        let path = plan.api_path.trim_matches('/');
        let root = if path.is_empty() { format!("{base}/") } else { format!("{base}/{path}/") };
        Self { client, base, root, token, template_kind: plan.kind, template_id: plan.template_id }
    }

    fn link(&self, job: AwxJob) -> String {
        let segment = match job.kind {
            AwxJobKind::Playbook => "playbook",
            AwxJobKind::Workflow => "workflow",
        };
        format!("{}/#/jobs/{segment}/{}", self.base, job.id)
    }

    fn job_url(&self, job: AwxJob, tail: &str) -> String {
        format!("{}{}/{}/{tail}", self.root, job.kind.collection(), job.id)
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        self.client.request(method, url).bearer_auth(&self.token)
    }

    async fn launch(&self, plan: &AwxPlan) -> Result<Launched, ExecError> {
        let templates = match self.template_kind {
            AwxTemplateKind::Job => "job_templates",
            AwxTemplateKind::Workflow => "workflow_job_templates",
        };
        let url = format!("{}{templates}/{}/launch/", self.root, self.template_id);
        let mut body = Map::new();
        if !plan.extra_vars.is_null() {
            body.insert("extra_vars".to_owned(), plan.extra_vars.clone());
        }
        if let Some(limit) = &plan.limit {
            body.insert("limit".to_owned(), Value::String(limit.clone()));
        }

        let response = self
            .request(reqwest::Method::POST, &url)
            .header(reqwest::header::ACCEPT, "application/json")
            .json(&body)
            .send()
            .await
            .map_err(|error| ExecError::Transport(format!("could not reach AWX to launch: {error}")))?;
        let status = response.status();
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(ExecError::Launch(format!("AWX refused the token: {}", status.as_u16())));
            }
            StatusCode::TOO_MANY_REQUESTS => {
                return Err(ExecError::RateLimited { retry_after: retry_after(response.headers()) });
            }
            _ if status.is_server_error() => {
                return Err(ExecError::Transport(format!("AWX answered {status} to the launch")));
            }
            _ if !status.is_success() => {
                let body = response.text().await.unwrap_or_default();
                return Err(ExecError::Launch(format!(
                    "AWX rejected the launch: {status}: {}",
                    head_chars(&body, 200)
                )));
            }
            _ => {}
        }

        let answer: LaunchAnswer = response
            .json()
            .await
            .map_err(|error| ExecError::Launch(format!("AWX answered {status} with an unreadable body: {error}")))?;
        let job = self.job_from(&answer).ok_or_else(|| {
            ExecError::Launch(format!("AWX answered {status} without a job id (no `job`, `workflow_job` or `id`)"))
        })?;
        let ignored = match answer.ignored_fields {
            Some(Value::Object(fields)) => fields.keys().cloned().collect(),
            _ => Vec::new(),
        };
        Ok(Launched { job, ignored })
    }

    fn job_from(&self, answer: &LaunchAnswer) -> Option<AwxJob> {
        if let Some(id) = answer.workflow_job {
            return Some(AwxJob { id, kind: AwxJobKind::Workflow });
        }
        if let Some(id) = answer.job {
            return Some(AwxJob { id, kind: AwxJobKind::Playbook });
        }
        let kind = match (answer.kind.as_deref(), self.template_kind) {
            (Some("workflow_job"), _) | (None, AwxTemplateKind::Workflow) => AwxJobKind::Workflow,
            _ => AwxJobKind::Playbook,
        };
        answer.id.map(|id| AwxJob { id, kind })
    }

    async fn status(&self, job: AwxJob) -> Result<JobAnswer, String> {
        let response = self
            .request(reqwest::Method::GET, &self.job_url(job, ""))
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|error| error.to_string())?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("AWX answered {status}"));
        }
        response.json().await.map_err(|error| format!("unreadable job: {error}"))
    }

    /// Asks AWX to cancel the job; says how that went, in words for the summary.
    async fn cancel(&self, job: AwxJob) -> String {
        match self.request(reqwest::Method::POST, &self.job_url(job, "cancel/")).send().await {
            Ok(response) if response.status().is_success() => "cancel requested".to_owned(),
            Ok(response) if response.status() == StatusCode::METHOD_NOT_ALLOWED => {
                "AWX could not cancel it (405: no longer cancelable)".to_owned()
            }
            Ok(response) => format!("cancel failed: AWX answered {}", response.status()),
            Err(error) => format!("cancel failed: {error}"),
        }
    }

    /// The end of the job's plain-text stdout, streamed so a huge log never sits in memory.
    /// Best effort: the outcome is already known, so a failure here only loses the tail.
    async fn stdout_tail(&self, job: AwxJob, cap: usize) -> String {
        let url = self.job_url(job, "stdout/?format=txt");
        let mut tail = OutputTail::new(cap);
        let response = match self.request(reqwest::Method::GET, &url).send().await {
            Ok(response) if response.status().is_success() => response,
            Ok(response) => {
                tracing::warn!(
                    awx.job = job.id,
                    "stdout of {} unavailable: AWX answered {}",
                    job.name(),
                    response.status()
                );
                return String::new();
            }
            Err(error) => {
                tracing::warn!(awx.job = job.id, "stdout of {} unavailable: {error}", job.name());
                return String::new();
            }
        };
        let mut response = response;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => tail.push(&chunk),
                Ok(None) => break,
                Err(error) => {
                    tracing::warn!(awx.job = job.id, "stdout of {} cut short: {error}", job.name());
                    break;
                }
            }
        }
        tail.into_string()
    }
}

/// Polls the job every `interval` until it reaches a final status or `deadline` passes.
///
/// A failed poll is retried; after [`MAX_POLL_FAILURES`] in a row the job is given up on as a
/// transport failure (the error names the job, which is already running and linked).
async fn follow(
    api: &Api<'_>,
    job: AwxJob,
    interval: Duration,
    deadline: Instant,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Followed, ExecError> {
    let mut failures = 0;
    let mut announced_running = false;
    loop {
        let next = Instant::now() + interval;
        sleep_until(next.min(deadline)).await;
        if Instant::now() >= deadline {
            return Ok(Followed::TimedOut);
        }
        let Ok(answer) = timeout_at(deadline, api.status(job)).await else {
            return Ok(Followed::TimedOut);
        };
        match answer {
            Ok(JobAnswer { status, job_explanation }) => {
                failures = 0;
                if matches!(status.as_str(), "successful" | "failed" | "error" | "canceled") {
                    let explanation = job_explanation.unwrap_or_default();
                    tracing::info!(awx.job = job.id, awx.status = %status, "{} ended: {status}", job.name());
                    return Ok(Followed::Finished { status, explanation });
                }
                if status == "running" && !announced_running {
                    announced_running = true;
                    progress(Progress::Status("running".to_owned()));
                }
            }
            Err(error) => {
                failures += 1;
                tracing::warn!(awx.job = job.id, failures, "polling {} failed: {error}", job.name());
                if failures >= MAX_POLL_FAILURES {
                    return Err(ExecError::Transport(format!(
                        "lost track of {} after {failures} failed polls: {error}",
                        job.name()
                    )));
                }
            }
        }
    }
}

/// `"; AWX ignored extra_vars, limit (…)"`, or nothing when AWX took every field.
fn ignored_note(ignored: &[String]) -> String {
    if ignored.is_empty() {
        return String::new();
    }
    format!("; AWX ignored {} (turn on \"prompt on launch\" for them in the template)", ignored.join(", "))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use serde_json::json;
    use wiremock::matchers::{body_json, header, method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::super::{ExecutorSettings, Executors};
    use super::*;
    use crate::runbook::plan::{Execution, Plan, Secret};

    const TOKEN: &str = "awx-test-token";

    fn executors() -> Executors {
        let settings = ExecutorSettings {
            poll_interval: Duration::from_millis(20),
            http_timeout: Duration::from_secs(2),
            output_cap: 4096,
        };
        Executors::new(settings, Arc::new(|name| (name == "AWX_TOKEN").then(|| TOKEN.to_owned())))
    }

    fn plan(server: &MockServer, kind: AwxTemplateKind) -> AwxPlan {
        AwxPlan {
            base_url: server.uri(),
            api_path: "/api/v2/".to_owned(),
            token: Secret::Env("AWX_TOKEN".to_owned()),
            kind,
            template_id: 42,
            extra_vars: json!({"service": "payments", "version": "1.4.1"}),
            limit: Some("web*".to_owned()),
        }
    }

    fn execution(plan: AwxPlan, timeout: Duration) -> Execution {
        Execution { runbook: "rollback".to_owned(), plan: Plan::Awx(plan), timeout }
    }

    /// Collects progress so a test can assert on what the thread would have shown.
    fn recorder() -> (Arc<Mutex<Vec<Progress>>>, impl Fn(Progress) + Send + Sync) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        (seen, move |progress| sink.lock().expect("progress lock").push(progress))
    }

    fn seen(progress: &Arc<Mutex<Vec<Progress>>>) -> Vec<Progress> {
        progress.lock().expect("progress lock").clone()
    }

    async fn mount_launch(server: &MockServer, path_: &str, answer: ResponseTemplate) {
        Mock::given(method("POST"))
            .and(path(path_))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .respond_with(answer)
            .expect(1)
            .mount(server)
            .await;
    }

    /// Walks `/…/{collection}/{id}/` through `pending → running → final`.
    async fn mount_job_walk(server: &MockServer, job_path: &str, last: &str) {
        for (priority, status, times) in [(1, "pending", 1), (2, "running", 2)] {
            Mock::given(method("GET"))
                .and(path(job_path))
                .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 4711, "status": status})))
                .up_to_n_times(times)
                .with_priority(priority)
                .mount(server)
                .await;
        }
        Mock::given(method("GET"))
            .and(path(job_path))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"id": 4711, "status": last, "job_explanation": ""})),
            )
            .with_priority(3)
            .mount(server)
            .await;
    }

    async fn mount_stdout(server: &MockServer, job_path: &str, text: &str) {
        Mock::given(method("GET"))
            .and(path(format!("{job_path}stdout/")))
            .and(query_param("format", "txt"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(text.to_owned(), "text/plain"))
            .expect(1)
            .mount(server)
            .await;
    }

    /// Mounts the template's launch, answered 201 with job `id`.
    async fn mount_launched(server: &MockServer, id: u64) {
        let answer = ResponseTemplate::new(201).set_body_json(launched(id));
        mount_launch(server, "/api/v2/job_templates/42/launch/", answer).await;
    }

    /// Runs the job template against `server`, its progress reported nowhere.
    async fn run_job(server: &MockServer, timeout: Duration) -> Result<RunReport, ExecError> {
        executors().run(&execution(plan(server, AwxTemplateKind::Job), timeout), &|_| {}).await
    }

    fn launched(id: u64) -> Value {
        json!({"job": id, "id": id, "type": "job", "status": "pending", "ignored_fields": {}})
    }

    #[tokio::test]
    async fn a_launch_answered_201_is_followed_to_success_and_keeps_the_stdout_tail() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/api/v2/job_templates/42/launch/"))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .and(body_json(json!({"extra_vars": {"service": "payments", "version": "1.4.1"}, "limit": "web*"})))
            .respond_with(ResponseTemplate::new(201).set_body_json(launched(4711)))
            .expect(1)
            .mount(&server)
            .await;
        mount_job_walk(&server, "/api/v2/jobs/4711/", "successful").await;
        mount_stdout(&server, "/api/v2/jobs/4711/", "PLAY [rollback]\nok: [web1]\nPLAY RECAP\n").await;
        let (progress, sink) = recorder();

        let report = executors()
            .run(&execution(plan(&server, AwxTemplateKind::Job), Duration::from_secs(5)), &sink)
            .await
            .expect("the run should start");

        let link = format!("{}/#/jobs/playbook/4711", server.uri());
        assert_eq!(report.status, RunStatus::Succeeded);
        assert_eq!(report.summary, "AWX job 4711 successful");
        assert_eq!(report.link.as_deref(), Some(link.as_str()));
        assert_eq!(report.output_tail, "PLAY [rollback]\nok: [web1]\nPLAY RECAP\n");
        assert_eq!(
            seen(&progress),
            vec![
                Progress::Started { summary: "AWX job 4711 launched".to_owned(), link: Some(link) },
                Progress::Status("running".to_owned()),
            ],
            "running should be announced once"
        );
    }

    #[tokio::test]
    async fn a_launch_answered_202_works_too_and_an_absent_limit_is_not_sent() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/api/v2/job_templates/42/launch/"))
            .and(body_json(json!({"extra_vars": {"service": "payments", "version": "1.4.1"}})))
            .respond_with(ResponseTemplate::new(202).set_body_json(json!({"id": 4711, "type": "job"})))
            .expect(1)
            .mount(&server)
            .await;
        mount_job_walk(&server, "/api/v2/jobs/4711/", "successful").await;
        mount_stdout(&server, "/api/v2/jobs/4711/", "done\n").await;
        let plan = AwxPlan { limit: None, ..plan(&server, AwxTemplateKind::Job) };

        let report = executors().run(&execution(plan, Duration::from_secs(5)), &|_| {}).await.expect("started");

        assert_eq!(report.status, RunStatus::Succeeded);
        assert_eq!(report.summary, "AWX job 4711 successful");
    }

    #[tokio::test]
    async fn a_job_that_fails_is_reported_failed_with_its_stdout_tail() {
        let server = MockServer::start().await;
        mount_launched(&server, 4711).await;
        mount_job_walk(&server, "/api/v2/jobs/4711/", "failed").await;
        mount_stdout(&server, "/api/v2/jobs/4711/", "fatal: [web1]: FAILED! => unreachable\n").await;

        let report = run_job(&server, Duration::from_secs(5)).await.expect("a failed job is a report, not an error");

        assert_eq!(report.status, RunStatus::Failed);
        assert_eq!(report.summary, "AWX job 4711 failed");
        assert_eq!(report.output_tail, "fatal: [web1]: FAILED! => unreachable\n");
    }

    #[tokio::test]
    async fn a_job_in_error_names_the_explanation() {
        let server = MockServer::start().await;
        mount_launched(&server, 9).await;
        Mock::given(method("GET"))
            .and(path("/api/v2/jobs/9/"))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"id": 9, "status": "error", "job_explanation": "Previous Task Failed: project update"}),
            ))
            .mount(&server)
            .await;
        mount_stdout(&server, "/api/v2/jobs/9/", "").await;

        let report = run_job(&server, Duration::from_secs(5)).await.expect("started");

        assert_eq!(report.status, RunStatus::Failed);
        assert_eq!(report.summary, "AWX job 9 error: Previous Task Failed: project update");
    }

    #[tokio::test]
    async fn a_job_still_running_at_the_timeout_is_canceled_and_reported_timed_out() {
        let server = MockServer::start().await;
        mount_launched(&server, 4711).await;
        Mock::given(method("GET"))
            .and(path("/api/v2/jobs/4711/"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 4711, "status": "running"})))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/api/v2/jobs/4711/cancel/"))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .respond_with(ResponseTemplate::new(202))
            .expect(1)
            .mount(&server)
            .await;
        mount_stdout(&server, "/api/v2/jobs/4711/", "TASK [restart] still going\n").await;
        let started = Instant::now();

        let report = run_job(&server, Duration::from_millis(150)).await.expect("a timeout is a report, not an error");

        assert_eq!(report.status, RunStatus::TimedOut);
        assert_eq!(report.summary, "AWX job 4711 timed out after 150ms; cancel requested");
        assert_eq!(report.output_tail, "TASK [restart] still going\n", "the partial stdout should be kept");
        assert!(started.elapsed() < Duration::from_secs(2), "the timeout should be honoured");
    }

    #[tokio::test]
    async fn the_aap_gateway_path_is_used_when_configured() {
        let server = MockServer::start().await;
        mount_launch(
            &server,
            "/api/controller/v2/job_templates/42/launch/",
            ResponseTemplate::new(201).set_body_json(launched(4711)),
        )
        .await;
        mount_job_walk(&server, "/api/controller/v2/jobs/4711/", "successful").await;
        mount_stdout(&server, "/api/controller/v2/jobs/4711/", "ok\n").await;
        let plan = AwxPlan { api_path: "/api/controller/v2/".to_owned(), ..plan(&server, AwxTemplateKind::Job) };

        let report = executors().run(&execution(plan, Duration::from_secs(5)), &|_| {}).await.expect("started");

        assert_eq!(report.status, RunStatus::Succeeded);
        assert_eq!(report.output_tail, "ok\n");
    }

    #[tokio::test]
    async fn a_refused_token_is_a_launch_error() {
        let server = MockServer::start().await;
        mount_launch(&server, "/api/v2/job_templates/42/launch/", ResponseTemplate::new(401)).await;

        let error = run_job(&server, Duration::from_secs(5)).await.expect_err("a 401 must not start anything");

        assert_eq!(error, ExecError::Launch("AWX refused the token: 401".to_owned()));
    }

    #[tokio::test]
    async fn a_rate_limited_launch_carries_retry_after() {
        let server = MockServer::start().await;
        mount_launch(
            &server,
            "/api/v2/job_templates/42/launch/",
            ResponseTemplate::new(429).insert_header("Retry-After", "12"),
        )
        .await;

        let error = run_job(&server, Duration::from_secs(5)).await.expect_err("a 429 must not start anything");

        assert_eq!(error, ExecError::RateLimited { retry_after: Some(Duration::from_secs(12)) });
    }

    #[tokio::test]
    async fn a_server_error_on_launch_is_a_transport_error() {
        let server = MockServer::start().await;
        mount_launch(&server, "/api/v2/job_templates/42/launch/", ResponseTemplate::new(503)).await;

        let error = run_job(&server, Duration::from_secs(5)).await.expect_err("a 503 must not start anything");

        assert!(matches!(error, ExecError::Transport(_)), "got {error:?}");
    }

    #[tokio::test]
    async fn a_rejected_launch_says_what_awx_asked_for() {
        let server = MockServer::start().await;
        let body = json!({"variables_needed_to_start": ["'service' value missing"]});
        mount_launch(&server, "/api/v2/job_templates/42/launch/", ResponseTemplate::new(400).set_body_json(body)).await;

        let error = run_job(&server, Duration::from_secs(5)).await.expect_err("a 400 must not start anything");

        let ExecError::Launch(message) = error else { panic!("expected a launch error, got {error:?}") };
        assert!(message.contains("400") && message.contains("variables_needed_to_start"), "got {message}");
    }

    #[tokio::test]
    async fn a_missing_token_variable_is_a_missing_secret() {
        let server = MockServer::start().await;
        let plan = AwxPlan { token: Secret::Env("AWX_OTHER_TOKEN".to_owned()), ..plan(&server, AwxTemplateKind::Job) };

        let error = executors().run(&execution(plan, Duration::from_secs(5)), &|_| {}).await.expect_err("no token");

        assert_eq!(error, ExecError::MissingSecret("AWX_OTHER_TOKEN".to_owned()));
        assert!(server.received_requests().await.unwrap_or_default().is_empty(), "nothing should be sent");
    }

    #[tokio::test]
    async fn a_workflow_template_launches_and_polls_the_workflow_job() {
        let server = MockServer::start().await;
        mount_launch(
            &server,
            "/api/v2/workflow_job_templates/42/launch/",
            ResponseTemplate::new(201).set_body_json(json!({"workflow_job": 77, "id": 77, "ignored_fields": {}})),
        )
        .await;
        mount_job_walk(&server, "/api/v2/workflow_jobs/77/", "successful").await;
        let (progress, sink) = recorder();

        let report = executors()
            .run(&execution(plan(&server, AwxTemplateKind::Workflow), Duration::from_secs(5)), &sink)
            .await
            .expect("started");

        let link = format!("{}/#/jobs/workflow/77", server.uri());
        assert_eq!(report.status, RunStatus::Succeeded);
        assert_eq!(report.summary, "AWX workflow job 77 successful");
        assert_eq!(report.link.as_deref(), Some(link.as_str()));
        assert_eq!(
            seen(&progress).first(),
            Some(&Progress::Started { summary: "AWX workflow job 77 launched".to_owned(), link: Some(link) })
        );
    }

    #[tokio::test]
    async fn a_job_template_that_creates_a_workflow_job_is_followed_as_one() {
        let server = MockServer::start().await;
        mount_launch(
            &server,
            "/api/v2/job_templates/42/launch/",
            ResponseTemplate::new(201).set_body_json(json!({"workflow_job": 78, "ignored_fields": {}})),
        )
        .await;
        mount_job_walk(&server, "/api/v2/workflow_jobs/78/", "successful").await;

        let report = run_job(&server, Duration::from_secs(5)).await.expect("started");

        assert_eq!(report.summary, "AWX workflow job 78 successful");
    }

    #[tokio::test]
    async fn fields_awx_ignored_are_named_in_the_summary() {
        let server = MockServer::start().await;
        let answer = json!({"job": 5, "ignored_fields": {"extra_vars": {"service": "payments"}, "limit": "web*"}});
        mount_launch(&server, "/api/v2/job_templates/42/launch/", ResponseTemplate::new(201).set_body_json(answer))
            .await;
        mount_job_walk(&server, "/api/v2/jobs/5/", "successful").await;
        mount_stdout(&server, "/api/v2/jobs/5/", "").await;
        let (progress, sink) = recorder();

        let report = executors()
            .run(&execution(plan(&server, AwxTemplateKind::Job), Duration::from_secs(5)), &sink)
            .await
            .expect("started");

        let note = "; AWX ignored extra_vars, limit (turn on \"prompt on launch\" for them in the template)";
        assert_eq!(report.summary, format!("AWX job 5 successful{note}"));
        let Some(Progress::Started { summary, .. }) = seen(&progress).first().cloned() else {
            panic!("the launch should be announced")
        };
        assert_eq!(summary, format!("AWX job 5 launched{note}"));
    }

    #[tokio::test]
    async fn a_failed_poll_is_retried() {
        let server = MockServer::start().await;
        mount_launched(&server, 6).await;
        Mock::given(method("GET"))
            .and(path("/api/v2/jobs/6/"))
            .respond_with(ResponseTemplate::new(502))
            .up_to_n_times(2)
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/api/v2/jobs/6/"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 6, "status": "successful"})))
            .with_priority(2)
            .mount(&server)
            .await;
        mount_stdout(&server, "/api/v2/jobs/6/", "ok\n").await;

        let report = run_job(&server, Duration::from_secs(5)).await.expect("two failed polls should be retried");

        assert_eq!(report.status, RunStatus::Succeeded);
    }

    #[tokio::test]
    async fn polls_that_keep_failing_give_up_as_a_transport_error_naming_the_job() {
        let server = MockServer::start().await;
        mount_launched(&server, 6).await;
        Mock::given(method("GET"))
            .and(path("/api/v2/jobs/6/"))
            .respond_with(ResponseTemplate::new(500))
            .expect(u64::from(MAX_POLL_FAILURES))
            .mount(&server)
            .await;

        let error = run_job(&server, Duration::from_secs(5)).await.expect_err("AWX never answered");

        let ExecError::Transport(message) = error else { panic!("expected a transport error, got {error:?}") };
        assert!(message.contains("AWX job 6"), "got {message}");
    }

    #[tokio::test]
    async fn a_long_stdout_keeps_only_its_end() {
        let server = MockServer::start().await;
        mount_launched(&server, 8).await;
        mount_job_walk(&server, "/api/v2/jobs/8/", "successful").await;
        let stdout: String = (0..2000).map(|line| format!("line {line}\n")).collect();
        mount_stdout(&server, "/api/v2/jobs/8/", &stdout).await;

        let report = run_job(&server, Duration::from_secs(5)).await.expect("started");

        assert!(report.output_tail.len() <= 4096, "capped at output_cap");
        assert!(report.output_tail.starts_with("line "), "starts at a line boundary");
        assert!(report.output_tail.ends_with("line 1999\n"), "keeps the end");
    }
}
