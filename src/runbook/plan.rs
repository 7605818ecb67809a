//! What an executor is asked to do: a runbook's executor settings with every template already
//! filled in and every parameter already validated. Produced by the runbook catalog, consumed by
//! the executors; neither needs the other's types.

use std::time::Duration;

use serde_json::Value;

/// A header or secret value: given literally, or read from an environment variable at run time
/// (so secrets never live in `commands/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    Literal(String),
    Env(String),
}

/// Which AWX/Tower/AAP object to launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwxTemplateKind {
    /// `/job_templates/{id}/launch/` → a job at `/jobs/{id}/`.
    Job,
    /// `/workflow_job_templates/{id}/launch/` → `/workflow_jobs/{id}/`.
    Workflow,
}

/// Launch an AWX / Ansible Tower / AAP controller template and follow it.
#[derive(Debug, Clone, PartialEq)]
pub struct AwxPlan {
    /// e.g. `https://awx.example.com`.
    pub base_url: String,
    /// `/api/v2/` (AWX, Tower) or `/api/controller/v2/` (AAP 2.5+).
    pub api_path: String,
    /// Bearer token, from an environment variable named in the runbook.
    pub token: Secret,
    pub kind: AwxTemplateKind,
    pub template_id: u64,
    pub extra_vars: Value,
    pub limit: Option<String>,
}

/// Call an HTTP webhook.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpPlan {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, Secret)>,
    pub body: Option<Value>,
    /// Statuses that mean success; empty means any 2xx.
    pub expected_status: Vec<u16>,
}

/// Run a fixed program with arguments: never through a shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalPlan {
    pub program: String,
    pub args: Vec<String>,
    /// Working directory, if not the process's.
    pub dir: Option<String>,
}

/// The executor and its filled-in settings.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    Awx(AwxPlan),
    Http(HttpPlan),
    Local(LocalPlan),
}

/// One run to carry out.
#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    pub runbook: String,
    pub plan: Plan,
    /// After this the run is stopped (AWX job cancelled, process killed) and reported as timed out.
    pub timeout: Duration,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunStatus {
    Succeeded,
    Failed,
    TimedOut,
    Canceled,
}

/// The result shown in the thread, the ticket and the source problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    pub status: RunStatus,
    /// One line: "AWX job 4711 successful", "HTTP 202 Accepted", "exit status 0".
    pub summary: String,
    /// A link to the run (the AWX job page), if any.
    pub link: Option<String>,
    /// The last lines of output, capped.
    pub output_tail: String,
}

/// Progress while a run goes on (for the status message in the thread).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The executor accepted it (AWX job id and link known, process spawned).
    Started { summary: String, link: Option<String> },
    /// A status change worth showing ("running").
    Status(String),
}
