//! Executors: how a runbook's [`Plan`] actually runs, and how its outcome is reported.
//!
//! - [`awx`]: launch an AWX / Tower / AAP controller job or workflow template, follow the job to a
//!   final status, fetch its stdout tail, cancel it on timeout.
//! - [`http`]: call a webhook and judge it by its status code.
//! - [`local`]: run a fixed program with an argv array on this host.
//!
//! [`Executors`] is built once at startup with one `reqwest` client (rustls) and the environment
//! lookup that secrets are read from, and dispatches on the plan kind. The [`Executor`] trait lets
//! the job runner's tests put a fake in its place.
//!
//! Errors: an [`ExecError`] means the run could not even start (missing secret, refused launch,
//! transport trouble, rate limit), so the caller may retry the launch. A run that started and then
//! failed, timed out or was canceled is an `Ok(RunReport)` with the matching [`RunStatus`].

pub mod awx;
pub mod http;
pub mod local;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::runbook::plan::{Execution, Plan, Progress, RunReport, Secret};

#[cfg(doc)]
use crate::runbook::plan::RunStatus;

/// Reads a variable from the environment; injected so tests never touch the process environment.
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Tuning shared by all executors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorSettings {
    /// How often an AWX job is polled for its status.
    pub poll_interval: Duration,
    /// The limit for one outbound HTTP request (AWX calls, webhooks).
    pub http_timeout: Duration,
    /// How many bytes of output are kept; the end is kept, since that is where errors are.
    pub output_cap: usize,
}

impl Default for ExecutorSettings {
    fn default() -> Self {
        Self { poll_interval: Duration::from_secs(5), http_timeout: Duration::from_secs(30), output_cap: 4096 }
    }
}

/// Why a run could not start. The caller may retry the launch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    /// A secret named by the runbook is not set (or empty) in the environment.
    #[error("environment variable {0} is not set")]
    MissingSecret(String),
    /// The far side refused to start the run (bad token, no permission, invalid request).
    #[error("launch refused: {0}")]
    Launch(String),
    /// The far side could not be reached or failed (connection, timeout, 5xx).
    #[error("transport failure: {0}")]
    Transport(String),
    /// The far side asked us to slow down.
    #[error("rate limited (retry after {retry_after:?})")]
    RateLimited {
        /// How long the far side asked us to wait, when it said.
        retry_after: Option<Duration>,
    },
}

/// Runs one [`Execution`], reporting progress as it goes.
#[async_trait]
pub trait Executor: Send + Sync {
    /// Runs `execution` to the end (or its timeout) and reports how it ended.
    async fn run(
        &self,
        execution: &Execution,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<RunReport, ExecError>;
}

/// The real executors: AWX, HTTP and local, sharing one HTTP client, the settings and the
/// environment lookup.
#[derive(Clone)]
pub struct Executors {
    shared: Arc<Shared>,
}

impl Executors {
    /// Builds the executors and their one HTTP client (rustls, per-request `http_timeout`).
    ///
    /// Building the client only fails if the TLS backend cannot start; then every HTTP-based run
    /// reports [`ExecError::Transport`] instead of the process panicking.
    #[must_use]
    pub fn new(settings: ExecutorSettings, env: EnvLookup) -> Self {
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(settings.http_timeout)
            .connect_timeout(settings.http_timeout)
            .build()
            .map_err(|error| error.to_string());
        Self { shared: Arc::new(Shared { client, settings, env }) }
    }

    /// An [`EnvLookup`] reading this process's environment.
    #[must_use]
    pub fn process_env() -> EnvLookup {
        Arc::new(|name| std::env::var(name).ok())
    }

    /// Runs `execution` with the executor its plan names.
    pub async fn run(
        &self,
        execution: &Execution,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<RunReport, ExecError> {
        let shared = &*self.shared;
        match &execution.plan {
            Plan::Awx(plan) => awx::run(shared, plan, execution.timeout, progress).await,
            Plan::Http(plan) => http::run(shared, plan, execution.timeout, progress).await,
            Plan::Local(plan) => Ok(local::run(&shared.settings, plan, execution.timeout, progress).await),
        }
    }
}

#[async_trait]
impl Executor for Executors {
    async fn run(
        &self,
        execution: &Execution,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<RunReport, ExecError> {
        Executors::run(self, execution, progress).await
    }
}

impl fmt::Debug for Executors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Executors").field("settings", &self.shared.settings).finish_non_exhaustive()
    }
}

/// What every executor shares; built once.
struct Shared {
    client: Result<reqwest::Client, String>,
    settings: ExecutorSettings,
    env: EnvLookup,
}

impl Shared {
    fn client(&self) -> Result<&reqwest::Client, ExecError> {
        self.client
            .as_ref()
            .map_err(|error| ExecError::Transport(format!("the HTTP client could not be built: {error}")))
    }

    /// Reads a secret: literal, or from the environment at run time. An empty variable counts as
    /// missing, since an empty token or header is never what the runbook meant.
    fn secret(&self, secret: &Secret) -> Result<String, ExecError> {
        match secret {
            Secret::Literal(value) => Ok(value.clone()),
            Secret::Env(name) => match (self.env)(name) {
                Some(value) if !value.is_empty() => Ok(value),
                _ => Err(ExecError::MissingSecret(name.clone())),
            },
        }
    }
}

/// Keeps the last `cap` bytes of a stream, so a chatty program or a megabyte of AWX stdout never
/// sits in memory whole.
#[derive(Debug)]
pub(crate) struct OutputTail {
    cap: usize,
    bytes: Vec<u8>,
    truncated: bool,
}

impl OutputTail {
    pub(crate) fn new(cap: usize) -> Self {
        Self { cap, bytes: Vec::new(), truncated: false }
    }

    pub(crate) fn push(&mut self, chunk: &[u8]) {
        if chunk.len() >= self.cap {
            self.truncated |= !self.bytes.is_empty() || chunk.len() > self.cap;
            self.bytes.clear();
            self.bytes.extend_from_slice(&chunk[chunk.len() - self.cap..]);
            return;
        }
        self.bytes.extend_from_slice(chunk);
        if self.bytes.len() > self.cap {
            let excess = self.bytes.len() - self.cap;
            self.bytes.drain(..excess);
            self.truncated = true;
        }
    }

    /// The kept text. When the start was cut, a split character and the partial first line are
    /// dropped, so the tail begins at a line boundary whenever there is one.
    pub(crate) fn into_string(self) -> String {
        let mut start = 0;
        if self.truncated {
            while self.bytes.get(start).is_some_and(|byte| byte & 0b1100_0000 == 0b1000_0000) {
                start += 1;
            }
            if let Some(newline) = self.bytes[start..].iter().position(|&byte| byte == b'\n') {
                if start + newline + 1 < self.bytes.len() {
                    start += newline + 1;
                }
            }
        }
        String::from_utf8_lossy(&self.bytes[start..]).into_owned()
    }
}

/// The first `max` characters of `text`, with `…` when cut.
pub(crate) fn head_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// Reads a `Retry-After` header: delay-seconds or an HTTP date.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = jiff::fmt::rfc2822::DateTimeParser::new().parse_timestamp(value).ok()?;
    let wait = at.duration_since(jiff::Timestamp::now());
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

/// A duration as people read it in Slack: `30s`, `250ms`.
pub(crate) fn human(duration: Duration) -> String {
    if duration.subsec_millis() == 0 && duration.as_secs() > 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_tail_keeps_everything_under_the_cap() {
        let mut tail = OutputTail::new(16);
        tail.push(b"one\n");
        tail.push(b"two\n");
        assert_eq!(tail.into_string(), "one\ntwo\n");
    }

    #[test]
    fn output_tail_keeps_the_end_and_starts_at_a_line_boundary() {
        let mut tail = OutputTail::new(10);
        tail.push(b"first line\nsecond\n");
        tail.push(b"end\n");
        let text = tail.into_string();
        assert_eq!(text, "end\n", "the partial line 'econd' should be dropped");
    }

    #[test]
    fn output_tail_never_splits_a_character() {
        let mut tail = OutputTail::new(5);
        tail.push("ééé".as_bytes());
        let text = tail.into_string();
        assert_eq!(text, "éé");
    }

    #[test]
    fn output_tail_with_a_zero_cap_keeps_nothing() {
        let mut tail = OutputTail::new(0);
        tail.push(b"anything");
        assert_eq!(tail.into_string(), "");
    }

    #[test]
    fn head_chars_cuts_long_text_with_an_ellipsis() {
        assert_eq!(head_chars("abcdef", 3), "abc…");
        assert_eq!(head_chars("abc", 3), "abc");
    }

    #[test]
    fn retry_after_reads_seconds() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::RETRY_AFTER, reqwest::header::HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
    }

    #[test]
    fn retry_after_in_the_past_means_now() {
        let mut headers = reqwest::header::HeaderMap::new();
        let value = reqwest::header::HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT");
        headers.insert(reqwest::header::RETRY_AFTER, value);
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
    }

    #[tokio::test]
    async fn the_executors_dispatch_on_the_plan_kind_behind_the_trait() {
        let executors: Box<dyn Executor> =
            Box::new(Executors::new(ExecutorSettings::default(), Executors::process_env()));
        let plan =
            crate::runbook::plan::LocalPlan { program: "echo".to_owned(), args: vec!["hi".to_owned()], dir: None };
        let execution =
            Execution { runbook: "hello".to_owned(), plan: Plan::Local(plan), timeout: Duration::from_secs(5) };

        let report = executors.run(&execution, &|_| {}).await.expect("ran");

        assert_eq!(report.output_tail, "hi\n");
    }

    #[test]
    fn an_empty_environment_variable_is_a_missing_secret() {
        let executors = Executors::new(ExecutorSettings::default(), Arc::new(|_| Some(String::new())));
        let error = executors.shared.secret(&Secret::Env("AWX_TOKEN".to_owned())).unwrap_err();
        assert_eq!(error, ExecError::MissingSecret("AWX_TOKEN".to_owned()));
    }
}
