//! One typed [`Settings`] tree, loaded once: built-in defaults → TOML file (`WARROOM_CONFIG`, else
//! `warroom.toml` when present) → the contract's environment variables, env last.
//!
//! Loading reports every problem at once, each naming the file (or variable) and the field, e.g.
//! `warroom.toml: oncall.teams[1].members: expected a list of Slack user ids or emails`. Unknown
//! keys are errors. Secrets come only from the environment and never appear in `Debug` output.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use secrecy::SecretString;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::intake::SeverityMap;
use crate::oncall::settings::OnCallSettings;

/// The file read when `WARROOM_CONFIG` is not set, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "warroom.toml";

/// Every setting warroom has.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub http: HttpSettings,
    pub database: DatabaseSettings,
    pub slack: SlackSettings,
    pub incidents: IncidentSettings,
    pub jobs: JobSettings,
    pub severity: SeverityMap,
    pub oncall: OnCallSettings,
    pub log: LogSettings,
    pub runbooks: RunbookSettings,
    pub dynatrace: DynatraceSettings,
    pub desk: DeskSettings,
    /// Where runbooks live (`WARROOM_COMMANDS_DIR`).
    pub commands_dir: PathBuf,
}

/// The HTTP listener: hooks, read API, health and metrics.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// `WARROOM_HTTP_ADDR`.
    pub addr: SocketAddr,
    /// `WARROOM_WEBHOOK_TOKEN`: bearer token every `/hooks/*` request must carry.
    #[serde(skip)]
    pub webhook_token: Option<SecretString>,
    /// `WARROOM_API_TOKEN`: bearer token for `/api/*`; defaults to the webhook token.
    #[serde(skip)]
    pub api_token: Option<SecretString>,
    /// The largest accepted request body.
    pub body_limit_bytes: usize,
    /// The base URL people use to reach this server (ticket and transcript links); defaults to
    /// `http://{addr}`.
    pub public_url: Option<String>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            webhook_token: None,
            api_token: None,
            body_limit_bytes: 1024 * 1024,
            public_url: None,
        }
    }
}

impl fmt::Debug for HttpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSettings")
            .field("addr", &self.addr)
            .field("webhook_token", &self.webhook_token.as_ref().map(|_| "[redacted]"))
            .field("api_token", &self.api_token.as_ref().map(|_| "[redacted]"))
            .field("body_limit_bytes", &self.body_limit_bytes)
            .field("public_url", &self.public_url)
            .finish()
    }
}

/// SQLite durability: `full` fsyncs every commit, so a 2xx survives a power cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    #[default]
    Full,
    /// Faster; a power cut may lose the last commits (never corrupts the database).
    Normal,
}

/// Storage.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// `WARROOM_DATABASE_URL`: `sqlite://PATH` (created if missing).
    pub url: String,
    /// SQLite `synchronous` pragma.
    pub synchronous: Synchronous,
    /// Pool size.
    pub max_connections: u32,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self { url: "sqlite://warroom.db".to_owned(), synchronous: Synchronous::Full, max_connections: 8 }
    }
}

impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &redact_url_password(&self.url))
            .field("synchronous", &self.synchronous)
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

/// Hides the password of a `scheme://user:password@host` URL.
#[must_use]
pub fn redact_url_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("redacted"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Slack: tokens from the environment, everything else from the file.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlackSettings {
    /// `SLACK_BOT_TOKEN` (`xoxb-…`).
    #[serde(skip)]
    pub bot_token: Option<SecretString>,
    /// `SLACK_APP_TOKEN` (`xapp-…`, scope `connections:write`).
    #[serde(skip)]
    pub app_token: Option<SecretString>,
    /// `WARROOM_SLACK_API_URL`.
    pub api_url: String,
    /// Create incident channels as private channels.
    pub private_channels: bool,
    /// Channel name template; `{n}` is the incident number, `{slug}` the service or title.
    pub channel_name: String,
    /// Socket Mode connections to keep open (Slack allows up to 10).
    pub socket_connections: u32,
    /// Delay between reconnect attempts of one Socket Mode connection.
    #[serde(deserialize_with = "duration")]
    pub reconnect_delay: Duration,
    /// First delay of the start-up retry loop when Slack rejects or cannot be reached.
    #[serde(deserialize_with = "duration")]
    pub retry_initial: Duration,
    /// Longest delay of that loop.
    #[serde(deserialize_with = "duration")]
    pub retry_max: Duration,
    /// How often warroom records that it is listening; a silence of three of these is a gap
    /// the transcript backfills from Slack's history.
    #[serde(deserialize_with = "duration")]
    pub heartbeat: Duration,
}

impl Default for SlackSettings {
    fn default() -> Self {
        Self {
            bot_token: None,
            app_token: None,
            api_url: "https://slack.com/api".to_owned(),
            private_channels: false,
            channel_name: "inc-{n}-{slug}".to_owned(),
            socket_connections: 2,
            reconnect_delay: Duration::from_secs(5),
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(120),
            heartbeat: Duration::from_secs(10),
        }
    }
}

impl fmt::Debug for SlackSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackSettings")
            .field("bot_token", &self.bot_token.as_ref().map(|_| "[redacted]"))
            .field("app_token", &self.app_token.as_ref().map(|_| "[redacted]"))
            .field("api_url", &self.api_url)
            .field("private_channels", &self.private_channels)
            .field("channel_name", &self.channel_name)
            .field("socket_connections", &self.socket_connections)
            .finish_non_exhaustive()
    }
}

/// Incident policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IncidentSettings {
    /// A resolved incident whose problem fires again within this window is reopened.
    #[serde(deserialize_with = "duration")]
    pub reopen_window: Duration,
    /// When the source resolves the problem: resolve the incident (true) or move it to
    /// `monitoring` with a Resolve button (false).
    pub resolve_on_source_resolve: bool,
}

impl Default for IncidentSettings {
    fn default() -> Self {
        Self { reopen_window: Duration::from_secs(24 * 3600), resolve_on_source_resolve: true }
    }
}

/// The durable job runner.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobSettings {
    /// Jobs run at once (different incidents; one incident's jobs run one at a time).
    pub workers: usize,
    /// How long a claimed job is leased before another worker may take it over.
    #[serde(deserialize_with = "duration")]
    pub lease: Duration,
    /// How long a failing job is retried before it is marked dead.
    #[serde(deserialize_with = "duration")]
    pub retry_budget: Duration,
    /// First retry delay; doubles per attempt.
    #[serde(deserialize_with = "duration")]
    pub backoff_initial: Duration,
    /// Longest retry delay.
    #[serde(deserialize_with = "duration")]
    pub backoff_max: Duration,
    /// How often idle workers look for due jobs without being nudged.
    #[serde(deserialize_with = "duration")]
    pub poll_interval: Duration,
    /// On shutdown, how long running jobs may take to finish.
    #[serde(deserialize_with = "duration")]
    pub shutdown_grace: Duration,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            workers: 4,
            lease: Duration::from_secs(60),
            retry_budget: Duration::from_secs(24 * 3600),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            poll_interval: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Running runbooks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunbookSettings {
    /// Lets runbooks with `auto = true` run without a click ("self-healing"); off switches every
    /// automatic run off at once.
    pub auto: bool,
    /// After an automatic run, the same problem firing again within this window is escalated to
    /// people instead of being run again.
    #[serde(deserialize_with = "duration")]
    pub loop_guard: Duration,
    /// How often a launched AWX job is polled.
    #[serde(deserialize_with = "duration")]
    pub poll_interval: Duration,
    /// Timeout of each HTTP request an executor makes.
    #[serde(deserialize_with = "duration")]
    pub http_timeout: Duration,
    /// How much output of a run is kept (the end of it).
    pub output_cap_bytes: usize,
}

impl Default for RunbookSettings {
    fn default() -> Self {
        Self {
            auto: true,
            loop_guard: Duration::from_secs(30 * 60),
            poll_interval: Duration::from_secs(5),
            http_timeout: Duration::from_secs(30),
            output_cap_bytes: 4096,
        }
    }
}

/// Which service desk keeps the tickets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeskKind {
    /// Tickets in warroom's own database (`WR-<n>`), readable over the API.
    #[default]
    Builtin,
    /// Jira Service Management (`[desk.jira]`).
    Jira,
}

/// The service desk.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeskSettings {
    pub kind: DeskKind,
    pub jira: Option<crate::desk::jira::settings::JiraSettings>,
}

/// Writing back to Dynatrace problems (a comment per runbook result).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DynatraceSettings {
    /// `https://{env-id}.live.dynatrace.com` (or an ActiveGate URL); unset = no comments.
    pub api_url: Option<String>,
    /// Environment variable holding an API token with the `problems.write` scope.
    pub token_env: Option<String>,
}

/// Log output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Compact,
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(Self::Json),
            "compact" => Ok(Self::Compact),
            other => Err(format!("expected `json` or `compact`, got `{other}`")),
        }
    }
}

/// Logging.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// `WARROOM_LOG_FORMAT`.
    pub format: LogFormat,
    /// A `tracing` filter (`RUST_LOG` wins when set).
    pub filter: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self { format: LogFormat::Compact, filter: "info,sqlx=warn".to_owned() }
    }
}

/// One problem with the configuration: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// The file or environment variable.
    pub origin: String,
    /// The field path (`oncall.teams[1].members`); empty for the whole origin.
    pub field: String,
    pub message: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.origin, self.message)
        } else {
            write!(f, "{}: {}: {}", self.origin, self.field, self.message)
        }
    }
}

/// Every problem found while loading.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigIssue>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} configuration problem(s):", self.0.len())?;
        for issue in &self.0 {
            writeln!(f, "  {issue}")?;
        }
        Ok(())
    }
}

impl Settings {
    /// Loads from the real environment: `WARROOM_CONFIG`, else `warroom.toml` if present.
    pub fn load() -> Result<Self, ConfigErrors> {
        Self::load_with(None, &|name| std::env::var(name).ok())
    }

    /// Loads from `path` (or `WARROOM_CONFIG`, or `warroom.toml` if it exists) with env lookups
    /// through `env`, so tests need not touch the process environment.
    pub fn load_with(path: Option<&Path>, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigErrors> {
        let mut issues = Vec::new();
        let explicit = path.map(Path::to_path_buf).or_else(|| env("WARROOM_CONFIG").map(PathBuf::from));
        let file = match explicit {
            Some(path) => Some(path),
            None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|p| p.exists()),
        };
        let mut settings = match &file {
            Some(path) => match std::fs::read_to_string(path) {
                Ok(text) => Self::from_toml(&text, &path.display().to_string(), &mut issues),
                Err(e) => {
                    issues.push(ConfigIssue {
                        origin: path.display().to_string(),
                        field: String::new(),
                        message: format!("cannot read: {e}"),
                    });
                    Self::default()
                }
            },
            None => Self::default(),
        };
        settings.apply_env(env, &mut issues);
        let origin = file.map_or_else(|| "built-in defaults".to_owned(), |p| p.display().to_string());
        settings.validate(&origin, &mut issues);
        if issues.is_empty() { Ok(settings) } else { Err(ConfigErrors(issues)) }
    }

    /// Parses TOML section by section, so one bad section does not hide the others.
    fn from_toml(text: &str, origin: &str, issues: &mut Vec<ConfigIssue>) -> Self {
        let mut settings = Self::default();
        let table: toml::Table = match text.parse() {
            Ok(table) => table,
            Err(e) => {
                issues.push(ConfigIssue { origin: origin.to_owned(), field: String::new(), message: e.to_string() });
                return settings;
            }
        };
        for (key, value) in table {
            let mut section = |target: &mut dyn FnMut(toml::Value) -> Result<(), (String, String)>| {
                if let Err((path, message)) = target(value.clone()) {
                    let field = if path.is_empty() || path == "." { key.clone() } else { format!("{key}.{path}") };
                    issues.push(ConfigIssue { origin: origin.to_owned(), field, message });
                }
            };
            match key.as_str() {
                "http" => section(&mut |v| parse_into(v, &mut settings.http)),
                "database" => section(&mut |v| parse_into(v, &mut settings.database)),
                "slack" => section(&mut |v| parse_into(v, &mut settings.slack)),
                "incidents" => section(&mut |v| parse_into(v, &mut settings.incidents)),
                "jobs" => section(&mut |v| parse_into(v, &mut settings.jobs)),
                "severity" => section(&mut |v| parse_into(v, &mut settings.severity)),
                "oncall" => section(&mut |v| parse_into(v, &mut settings.oncall)),
                "log" => section(&mut |v| parse_into(v, &mut settings.log)),
                "runbooks" => section(&mut |v| parse_into(v, &mut settings.runbooks)),
                "dynatrace" => section(&mut |v| parse_into(v, &mut settings.dynatrace)),
                "desk" => section(&mut |v| parse_into(v, &mut settings.desk)),
                "commands_dir" => section(&mut |v| parse_into(v, &mut settings.commands_dir)),
                other => issues.push(ConfigIssue {
                    origin: origin.to_owned(),
                    field: other.to_owned(),
                    message: "unknown key: expected one of http, database, slack, incidents, jobs, severity, oncall, log, runbooks, dynatrace, desk, commands_dir".to_owned(),
                }),
            }
        }
        settings
    }

    fn apply_env(&mut self, env: &dyn Fn(&str) -> Option<String>, issues: &mut Vec<ConfigIssue>) {
        let secret = |name: &str| env(name).filter(|v| !v.is_empty()).map(SecretString::from);
        self.slack.bot_token = secret("SLACK_BOT_TOKEN").or(self.slack.bot_token.take());
        self.slack.app_token = secret("SLACK_APP_TOKEN").or(self.slack.app_token.take());
        self.http.webhook_token = secret("WARROOM_WEBHOOK_TOKEN").or(self.http.webhook_token.take());
        self.http.api_token = secret("WARROOM_API_TOKEN").or(self.http.api_token.take());
        if let Some(url) = env("WARROOM_SLACK_API_URL") {
            self.slack.api_url = url;
        }
        if let Some(url) = env("WARROOM_DATABASE_URL") {
            self.database.url = url;
        }
        if let Some(dir) = env("WARROOM_COMMANDS_DIR") {
            self.commands_dir = PathBuf::from(dir);
        }
        let mut parsed = |name: &str, apply: &mut dyn FnMut(&str) -> Result<(), String>| {
            if let Some(value) = env(name)
                && let Err(message) = apply(&value)
            {
                issues.push(ConfigIssue { origin: name.to_owned(), field: String::new(), message });
            }
        };
        parsed("WARROOM_HTTP_ADDR", &mut |v| {
            self.http.addr = v.parse().map_err(|e| format!("expected HOST:PORT such as 127.0.0.1:8080: {e}"))?;
            Ok(())
        });
        parsed("WARROOM_LOG_FORMAT", &mut |v| {
            self.log.format = v.parse()?;
            Ok(())
        });
    }

    /// Checks what types alone cannot.
    fn validate(&self, origin: &str, issues: &mut Vec<ConfigIssue>) {
        let mut issue = |field: &str, message: String| {
            issues.push(ConfigIssue { origin: origin.to_owned(), field: field.to_owned(), message });
        };
        if !self.database.url.starts_with("sqlite:") {
            issue(
                "database.url",
                format!(
                    "unsupported database URL `{}`: expected sqlite://PATH",
                    redact_url_password(&self.database.url)
                ),
            );
        }
        if url::Url::parse(&self.slack.api_url).is_err() {
            issue("slack.api_url", format!("`{}` is not an absolute URL", self.slack.api_url));
        }
        if !self.slack.channel_name.contains("{n}") {
            issue("slack.channel_name", "must contain {n} so every incident gets its own channel".to_owned());
        }
        if !(1..=10).contains(&self.slack.socket_connections) {
            issue("slack.socket_connections", "must be between 1 and 10 (Slack's limit)".to_owned());
        }
        if self.jobs.workers == 0 {
            issue("jobs.workers", "must be at least 1".to_owned());
        }
        if self.jobs.backoff_initial > self.jobs.backoff_max {
            issue("jobs.backoff_initial", "must not exceed jobs.backoff_max".to_owned());
        }
        if self.http.body_limit_bytes == 0 {
            issue("http.body_limit_bytes", "must be positive".to_owned());
        }
        if let Some(url) = &self.dynatrace.api_url
            && url::Url::parse(url).is_err()
        {
            issue("dynatrace.api_url", format!("`{url}` is not an absolute URL"));
        }
        if self.dynatrace.api_url.is_some() && self.dynatrace.token_env.is_none() {
            issue("dynatrace.token_env", "name the environment variable holding the API token".to_owned());
        }
        match (&self.desk.kind, &self.desk.jira) {
            (DeskKind::Jira, None) => issue("desk.jira", "kind = \"jira\" needs a [desk.jira] section".to_owned()),
            (_, Some(jira)) => {
                for found in jira.validate() {
                    issue(&found.field, found.message);
                }
            }
            (DeskKind::Builtin, None) => {}
        }
        if let Some(after) = &self.oncall.escalate_after
            && let Err(message) = parse_duration(after)
        {
            issue("oncall.escalate_after", message);
        }
        for found in self.oncall.validate() {
            issue(&found.field, found.message);
        }
    }

    /// The base URL of links to this server: `http.public_url`, else `http://{addr}`.
    #[must_use]
    pub fn public_url(&self) -> String {
        self.http
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.http.addr))
            .trim_end_matches('/')
            .to_owned()
    }

    /// The token `/api/*` requires: `WARROOM_API_TOKEN`, else the webhook token.
    #[must_use]
    pub fn api_token(&self) -> Option<&SecretString> {
        self.http.api_token.as_ref().or(self.http.webhook_token.as_ref())
    }
}

fn parse_into<T: DeserializeOwned>(value: toml::Value, target: &mut T) -> Result<(), (String, String)> {
    let parsed: T = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        (path, message.trim().to_owned())
    })?;
    *target = parsed;
    Ok(())
}

/// Reads `"250ms"`, `"30s"`, `"5m"`, `"24h"`, `"7d"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let value: u64 =
        digits.parse().map_err(|_| format!("expected a duration such as \"30s\", \"5m\" or \"24h\", got `{text}`"))?;
    let unit_ms: u64 = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("unknown unit in `{text}`: use ms, s, m, h or d")),
    };
    Ok(Duration::from_millis(value.saturating_mul(unit_ms)))
}

fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use secrecy::ExposeSecret;

    use super::*;

    fn load(toml: &str, env: &[(&str, &str)]) -> Result<Settings, ConfigErrors> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("warroom.toml");
        std::fs::write(&path, toml).unwrap();
        let env: HashMap<String, String> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Settings::load_with(Some(&path), &|name| env.get(name).cloned())
    }

    #[test]
    fn an_empty_file_gives_the_documented_defaults() {
        let settings = load("", &[]).unwrap();
        assert_eq!(settings.http.addr.to_string(), "127.0.0.1:8080");
        assert_eq!(settings.slack.api_url, "https://slack.com/api");
        assert_eq!(settings.incidents.reopen_window, Duration::from_secs(86_400));
        assert_eq!(settings.database.synchronous, Synchronous::Full);
    }

    #[test]
    fn the_environment_overrides_the_file() {
        let settings = load(
            "[http]\naddr = \"0.0.0.0:9000\"\n",
            &[("WARROOM_HTTP_ADDR", "127.0.0.1:7000"), ("WARROOM_WEBHOOK_TOKEN", "hook-secret")],
        )
        .unwrap();
        assert_eq!(settings.http.addr.to_string(), "127.0.0.1:7000");
        assert_eq!(
            settings.api_token().unwrap().expose_secret(),
            "hook-secret",
            "the API token defaults to the webhook token"
        );
    }

    #[test]
    fn every_problem_is_reported_at_once_with_file_and_field() {
        let errors = load(
            "colour = 1\n[http]\nadress = \"x\"\n[jobs]\nlease = \"ten\"\n[slack]\nchannel_name = \"incident\"\n",
            &[("WARROOM_LOG_FORMAT", "xml")],
        )
        .unwrap_err();
        let text = errors.to_string();
        for needle in [
            "colour: unknown key",
            "http.adress: unknown field `adress`",
            "jobs.lease:",
            "slack.channel_name: must contain {n}",
            "WARROOM_LOG_FORMAT: expected `json`",
        ] {
            assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
        }
        assert!(text.contains("warroom.toml"), "issues name the file:\n{text}");
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let settings = load(
            "[database]\nurl = \"sqlite://x.db\"\n",
            &[("SLACK_BOT_TOKEN", "xoxb-not-a-real-token"), ("WARROOM_WEBHOOK_TOKEN", "hook-secret")],
        )
        .unwrap();
        let debug = format!("{settings:?}");
        assert!(!debug.contains("not-a-real-token") && !debug.contains("hook-secret"), "{debug}");
        assert_eq!(redact_url_password("postgres://u:pw@h/db"), "postgres://u:redacted@h/db");
    }

    #[test]
    fn durations_read_with_units() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("24h").unwrap(), Duration::from_secs(86_400));
        assert!(parse_duration("5 parsecs").is_err());
    }
}
