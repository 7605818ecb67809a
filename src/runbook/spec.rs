//! One runbook file: [`RawRunbook`] as the TOML says it, [`Runbook`] once every rule holds.
//!
//! Parsing happens in two steps so that a file's problems are reported all at once, each with the
//! path of its field: [`RawRunbook::parse`] reads the TOML (every unknown key and mistyped value,
//! not just the first), and `TryFrom<RawRunbook> for Runbook` checks every value (names, regexes,
//! executor settings, templates against the documented variables). Past that point nothing is
//! re-checked: a [`Runbook`] can only be had valid. The format is documented in
//! `commands/README.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use jiff::SignedDuration;
use regex::{Regex, RegexBuilder};
use serde::Deserialize;
use serde_path_to_error::Segment;

use crate::domain::{Severity, SourceKind};
use crate::oncall::is_slack_id;
use crate::runbook::plan::AwxTemplateKind;
use crate::runbook::template::{Scope, Template};

/// How long a run may take when the runbook does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// The longest timeout a runbook may set.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);
/// The longest button label Slack shows without cutting it.
pub const MAX_LABEL_CHARS: usize = 30;
/// The AWX API path used when a runbook does not give one.
pub const DEFAULT_AWX_API_PATH: &str = "/api/v2/";

/// Programs that would turn parameters back into shell code; a local runbook calls its script
/// directly instead.
const SHELLS: [&str; 12] =
    ["sh", "bash", "zsh", "dash", "ksh", "mksh", "fish", "csh", "tcsh", "busybox", "env", "eval"];

/// Top-level keys, for the hint when one is written after a `[table]` header by mistake.
const TOP_LEVEL_KEYS: [&str; 7] =
    ["name", "title", "description", "confirm", "timeout", "auto", "requires_previous_deployment"];

/// A runbook's name: 1 to 40 of `a-z`, `0-9` and `-`, starting with a letter or digit. Its
/// button's action id is `v1:run:<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunbookName(String);

/// Why a string is not a runbook name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a runbook name: use 1 to 40 of a-z, 0-9 and -, starting with a letter or digit")]
pub struct RunbookNameError(pub String);

impl RunbookName {
    /// The name as written.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The action id of the runbook's button: `v1:run:<name>`.
    #[must_use]
    pub fn action_id(&self) -> String {
        format!("v1:run:{}", self.0)
    }
}

impl FromStr for RunbookName {
    type Err = RunbookNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = s.as_bytes();
        let valid = matches!(bytes.first(), Some(b) if b.is_ascii_lowercase() || b.is_ascii_digit())
            && bytes.len() <= 40
            && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
        if valid { Ok(Self(s.to_owned())) } else { Err(RunbookNameError(s.to_owned())) }
    }
}

impl fmt::Display for RunbookName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A problem in a runbook file: the path of the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecIssue {
    /// The path of the field, such as `executor.token_env` or `params[0].pattern`; empty for the
    /// file as a whole (a TOML syntax error).
    pub field: String,
    /// What is wrong, such as `invalid regex: unclosed character class`.
    pub message: String,
}

impl fmt::Display for SpecIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() { f.write_str(&self.message) } else { write!(f, "{}: {}", self.field, self.message) }
    }
}

/// Every problem that kept a [`RawRunbook`] from becoming a [`Runbook`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunbookError(pub Vec<SpecIssue>);

impl fmt::Display for RunbookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let issues: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&issues.join("; "))
    }
}

impl std::error::Error for RunbookError {}

/// A runbook file as written. Every field is optional here so that a missing one is reported with
/// the others; [`Runbook::try_from`] says which are required.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRunbook {
    pub name: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub confirm: Option<String>,
    pub timeout: Option<String>,
    pub auto: bool,
    pub requires_previous_deployment: bool,
    pub button: Option<RawButton>,
    #[serde(rename = "match")]
    pub matches: RawMatch,
    pub params: Vec<RawParam>,
    pub executor: Option<RawExecutor>,
    pub allowed: RawAllowed,
}

/// `[button]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawButton {
    pub label: Option<String>,
    pub style: Option<String>,
}

/// `[match]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawMatch {
    pub sources: Vec<String>,
    pub services: Vec<String>,
    pub severities: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

/// `[[params]]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawParam {
    pub name: Option<String>,
    pub description: Option<String>,
    pub default: Option<String>,
    pub pattern: Option<String>,
    pub choices: Option<Vec<String>>,
}

/// `[executor]`: the settings of every kind in one table, so that a setting of the wrong kind is
/// reported by name.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawExecutor {
    pub kind: Option<String>,
    // awx
    pub base_url: Option<String>,
    pub api_path: Option<String>,
    pub token_env: Option<String>,
    pub template_id: Option<i64>,
    pub template_kind: Option<String>,
    pub extra_vars: Option<toml::Table>,
    pub limit: Option<String>,
    // http
    pub method: Option<String>,
    pub url: Option<String>,
    pub headers: Option<BTreeMap<String, toml::Value>>,
    pub body: Option<toml::Value>,
    pub expected_status: Option<Vec<i64>>,
    // local
    pub program: Option<String>,
    pub args: Option<Vec<String>>,
    pub dir: Option<String>,
}

/// `[allowed]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAllowed {
    pub groups: Vec<String>,
    pub on_call: bool,
    pub users: Vec<String>,
}

impl RawRunbook {
    /// Reads a runbook file's text. Returns what could be read (with unknown keys and mistyped
    /// values left out) and an issue for each of those; `None` only for a TOML syntax error.
    #[must_use]
    pub fn parse(text: &str) -> (Option<Self>, Vec<SpecIssue>) {
        let mut table = match text.parse::<toml::Table>() {
            Ok(table) => table,
            Err(error) => return (None, vec![syntax_issue(text, &error)]),
        };
        let mut issues = Vec::new();
        // Each round reports one problem and removes its value; a file has far fewer keys.
        for _ in 0..256 {
            let error = match serde_path_to_error::deserialize::<_, Self>(toml::Value::Table(table.clone())) {
                Ok(raw) => return (Some(raw), issues),
                Err(error) => error,
            };
            let mut path: Vec<String> = error.path().iter().filter_map(segment_name).collect();
            let mut message = error.inner().message().trim().to_owned();
            if let Some(key) = unknown_field(&message).map(str::to_owned) {
                if path.last() != Some(&key) {
                    path.push(key.clone());
                }
                if path.len() > 1 && TOP_LEVEL_KEYS.contains(&key.as_str()) {
                    message.push_str(&format!(
                        "; top-level keys such as `{key}` must come before the first [table] of the file"
                    ));
                }
            }
            let field = dotted(&path);
            issues.push(SpecIssue { field, message });
            if !remove(&mut table, &path) {
                return (None, issues);
            }
        }
        (None, issues)
    }

    /// The environment variables holding this runbook's secrets, with the field naming each.
    #[must_use]
    pub fn secret_envs(&self) -> Vec<(String, String)> {
        let Some(executor) = &self.executor else { return Vec::new() };
        let mut envs = Vec::new();
        if let Some(token_env) = &executor.token_env {
            envs.push(("executor.token_env".to_owned(), token_env.clone()));
        }
        for (name, value) in executor.headers.iter().flatten() {
            if let Some(env) = value.as_table().and_then(|t| t.get("env")).and_then(toml::Value::as_str) {
                envs.push((format!("executor.headers.{name}"), env.to_owned()));
            }
        }
        envs
    }
}

/// A valid runbook: one remediation, with everything parsed and every template checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Runbook {
    name: RunbookName,
    title: String,
    description: String,
    button: Button,
    matches: Match,
    params: Vec<Param>,
    executor: ExecutorSpec,
    confirm: Option<Template>,
    allowed: Allowed,
    timeout: Duration,
    auto: bool,
    requires_previous_deployment: bool,
}

impl Runbook {
    /// The runbook's name, unique in the catalog.
    #[must_use]
    pub fn name(&self) -> &RunbookName {
        &self.name
    }

    /// One line saying what it does.
    #[must_use]
    pub fn title(&self) -> &str {
        &self.title
    }

    /// More about what it does and when to use it; may be empty.
    #[must_use]
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The button offered on matching incidents.
    #[must_use]
    pub fn button(&self) -> &Button {
        &self.button
    }

    /// When the runbook is offered.
    #[must_use]
    pub fn matches(&self) -> &Match {
        &self.matches
    }

    /// Its parameters, in file order.
    #[must_use]
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// The parameter called `name`, if declared.
    #[must_use]
    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.name == name)
    }

    /// How it runs.
    #[must_use]
    pub fn executor(&self) -> &ExecutorSpec {
        &self.executor
    }

    /// The confirm text template, if the runbook gives one.
    #[must_use]
    pub fn confirm(&self) -> Option<&Template> {
        self.confirm.as_ref()
    }

    /// Who may run it.
    #[must_use]
    pub fn allowed(&self) -> &Allowed {
        &self.allowed
    }

    /// How long a run may take before it is stopped.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether it may run without a click for matching new incidents.
    #[must_use]
    pub fn auto(&self) -> bool {
        self.auto
    }

    /// Whether it refuses to run when no previous deployment of the service is recorded.
    #[must_use]
    pub fn requires_previous_deployment(&self) -> bool {
        self.requires_previous_deployment
    }
}

/// `[button]`: the button offered on matching incidents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Button {
    /// At most [`MAX_LABEL_CHARS`] characters.
    pub label: String,
    pub style: ButtonStyle,
}

/// A Block Kit button style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ButtonStyle {
    Primary,
    Danger,
    /// Block Kit's default look: no `style` field.
    Default,
}

impl ButtonStyle {
    /// The word used in runbook files.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Primary => "primary",
            Self::Danger => "danger",
            Self::Default => "default",
        }
    }
}

impl FromStr for ButtonStyle {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "primary" => Ok(Self::Primary),
            "danger" => Ok(Self::Danger),
            "default" => Ok(Self::Default),
            other => Err(format!("unknown style {other:?}; use \"primary\", \"danger\" or \"default\"")),
        }
    }
}

/// `[match]`: all criteria given must hold for the runbook to be offered; none means always.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Match {
    pub sources: Vec<SourceKind>,
    pub services: Vec<ServiceGlob>,
    pub severities: Vec<Severity>,
    /// Labels the incident must have, with exactly these values.
    pub labels: BTreeMap<String, String>,
}

impl Match {
    /// Reports whether nothing is required (the runbook is offered on every incident).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty() && self.services.is_empty() && self.severities.is_empty() && self.labels.is_empty()
    }
}

/// A service name pattern where `*` stands for any run of characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceGlob(String);

impl ServiceGlob {
    /// Reads a non-empty pattern without whitespace.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        if pattern.is_empty() || pattern.chars().any(char::is_whitespace) {
            return Err(format!("{pattern:?} is not a service name or pattern (such as \"checkout-*\")"));
        }
        Ok(Self(pattern.to_owned()))
    }

    /// The pattern as written.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Reports whether `service` fits the pattern.
    #[must_use]
    pub fn fits(&self, service: &str) -> bool {
        let mut parts = self.0.split('*');
        let first = parts.next().unwrap_or_default();
        let rest: Vec<&str> = parts.collect();
        let Some((last, middle)) = rest.split_last() else { return self.0 == service };
        let Some(remaining) = service.strip_prefix(first).and_then(|s| s.strip_suffix(last)) else { return false };
        let mut remaining = remaining;
        for part in middle {
            match remaining.find(part) {
                Some(at) => remaining = &remaining[at + part.len()..],
                None => return false,
            }
        }
        true
    }
}

/// `[[params]]`: a value a person gives (or a default fills in) before the runbook runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// `^[a-z_][a-z0-9_]*$`; templates use it as `params.<name>`.
    pub name: String,
    pub description: String,
    /// Filled in when no value is given; may use every variable but `params`.
    pub default: Option<Template>,
    pub rule: ParamRule,
}

/// What a parameter's value must be. Every parameter has one, so no value reaches an executor
/// unchecked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamRule {
    /// A regex the whole value must match.
    Pattern(Pattern),
    /// One of these values.
    Choices(Vec<String>),
}

impl ParamRule {
    /// Reports whether `value` is allowed.
    #[must_use]
    pub fn admits(&self, value: &str) -> bool {
        match self {
            Self::Pattern(pattern) => pattern.matches(value),
            Self::Choices(choices) => choices.iter().any(|c| c == value),
        }
    }
}

impl fmt::Display for ParamRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pattern(pattern) => write!(f, "must match {}", pattern.as_str()),
            Self::Choices(choices) => write!(f, "must be one of {}", choices.join(", ")),
        }
    }
}

/// A parameter's regex, matched against the whole value.
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    regex: Regex,
}

impl Pattern {
    /// Compiles `source`, anchored at both ends.
    pub fn new(source: &str) -> Result<Self, String> {
        let build = |pattern: &str| RegexBuilder::new(pattern).size_limit(1 << 20).build();
        build(source).map_err(|e| format!("invalid regex: {}", regex_error(&e)))?;
        let regex = build(&format!("^(?:{source})$")).map_err(|e| format!("invalid regex: {}", regex_error(&e)))?;
        Ok(Self { source: source.to_owned(), regex })
    }

    /// The pattern as written.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Reports whether the whole of `value` matches.
    #[must_use]
    pub fn matches(&self, value: &str) -> bool {
        self.regex.is_match(value)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Pattern {}

/// `[executor]`: how the runbook runs, with its templates not yet filled in.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecutorSpec {
    Awx(AwxSpec),
    Http(HttpSpec),
    Local(LocalSpec),
}

impl ExecutorSpec {
    /// The `kind` word.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Awx(_) => "awx",
            Self::Http(_) => "http",
            Self::Local(_) => "local",
        }
    }
}

/// Launch an AWX / Tower / AAP controller template.
#[derive(Debug, Clone, PartialEq)]
pub struct AwxSpec {
    /// `https://awx.example.com`, without a trailing slash.
    pub base_url: String,
    /// `/api/v2/` or `/api/controller/v2/`: starts and ends with `/`.
    pub api_path: String,
    /// The environment variable holding the bearer token.
    pub token_env: String,
    pub template_id: u64,
    pub template_kind: AwxTemplateKind,
    pub extra_vars: JsonTemplate,
    pub limit: Option<Template>,
}

/// Call an HTTP webhook.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSpec {
    /// `GET`, `POST`, `PUT`, `PATCH` or `DELETE`.
    pub method: String,
    pub url: Template,
    pub headers: Vec<(String, HeaderSpec)>,
    pub body: Option<JsonTemplate>,
    /// Empty means any 2xx.
    pub expected_status: Vec<u16>,
}

/// A header value: a template, or the whole value from an environment variable (a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderSpec {
    Template(Template),
    Env(String),
}

/// Run a fixed program with arguments, never through a shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalSpec {
    /// An absolute path, never a template.
    pub program: String,
    pub args: Vec<Template>,
    /// An absolute path, never a template.
    pub dir: Option<String>,
}

/// A JSON value whose string leaves are templates (`extra_vars`, `body`).
#[derive(Debug, Clone, PartialEq)]
pub enum JsonTemplate {
    Text(Template),
    /// A number, boolean or date, kept as it is.
    Literal(serde_json::Value),
    List(Vec<JsonTemplate>),
    Object(BTreeMap<String, JsonTemplate>),
}

/// `[allowed]`: who may run the runbook by hand. Anyone listed, in a listed group, or on call for
/// the service may.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Allowed {
    /// Slack user group ids (`S…`).
    pub groups: Vec<String>,
    /// Whether the service's current on-call may.
    pub on_call: bool,
    /// Slack user ids (`U…`, `W…`).
    pub users: Vec<String>,
}

impl TryFrom<RawRunbook> for Runbook {
    type Error = RunbookError;

    /// Checks every value and template, reporting every problem found.
    fn try_from(raw: RawRunbook) -> Result<Self, Self::Error> {
        let mut issues = Issues::default();

        let name = issues
            .required("name", raw.name.as_deref())
            .and_then(|name| issues.check("name", name.parse::<RunbookName>().map_err(|e| e.to_string())));
        let title = issues.required_text("title", raw.title.as_deref());
        let description = raw.description.as_deref().unwrap_or_default().trim().to_owned();
        let button = build_button(raw.button.as_ref(), &mut issues);
        let matches = build_match(&raw.matches, &mut issues);
        let (params, placeholders) = build_params(&raw.params, &mut issues);
        let scope = Scope { params: Some(&placeholders) };
        let executor = build_executor(raw.executor.as_ref(), scope, &mut issues);
        let confirm = match raw.confirm.as_deref() {
            Some(text) if text.trim().is_empty() => {
                issues.push("confirm", "must not be empty; leave it out for the default question");
                None
            }
            Some(text) => issues.check("confirm", Template::parse(text, scope)),
            None => None,
        };
        let allowed = build_allowed(&raw.allowed, &mut issues);
        let timeout = issues.check("timeout", parse_timeout(raw.timeout.as_deref()));

        if raw.auto {
            if matches.is_empty() {
                issues.push(
                    "auto",
                    "an automatic runbook needs a [match] (sources, services, severities or labels); \
                     without one it would run on every incident",
                );
            }
            for (index, param) in raw.params.iter().enumerate() {
                if param.default.is_none() {
                    issues.push(format!("params[{index}].default"), "auto = true needs a default for every parameter");
                }
            }
        }

        let (Some(name), Some(title), Some(button), Some(executor), Some(allowed), Some(timeout), true) =
            (name, title, button, executor, allowed, timeout, issues.0.is_empty())
        else {
            return Err(RunbookError(issues.0));
        };
        Ok(Self {
            name,
            title,
            description,
            button,
            matches,
            params,
            executor,
            confirm,
            allowed,
            timeout,
            auto: raw.auto,
            requires_previous_deployment: raw.requires_previous_deployment,
        })
    }
}

/// The issues found so far.
#[derive(Default)]
struct Issues(Vec<SpecIssue>);

impl Issues {
    /// Records that `field` has the problem `message`.
    fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(SpecIssue { field: field.into(), message: message.into() });
    }

    /// Returns the parsed value, or records the error at `field` and returns `None`.
    fn check<T>(&mut self, field: &str, parsed: Result<T, String>) -> Option<T> {
        parsed.map_err(|message| self.push(field, message)).ok()
    }

    /// Returns the value, or records that `field` is required.
    fn required<'a>(&mut self, field: &str, value: Option<&'a str>) -> Option<&'a str> {
        if value.is_none() {
            self.push(field, "is required");
        }
        value
    }

    /// Returns the trimmed, non-empty text, or records what is wrong with it.
    fn required_text(&mut self, field: &str, value: Option<&str>) -> Option<String> {
        let value = self.required(field, value)?.trim();
        if value.is_empty() {
            self.push(field, "must not be empty");
            return None;
        }
        Some(value.to_owned())
    }
}

fn build_button(raw: Option<&RawButton>, issues: &mut Issues) -> Option<Button> {
    let Some(raw) = raw else {
        issues.push("button", "is required: add a [button] table with a `label`");
        return None;
    };
    let label = issues.required_text("button.label", raw.label.as_deref());
    let label = label.filter(|label| {
        let chars = label.chars().count();
        let fits = chars <= MAX_LABEL_CHARS;
        if !fits {
            issues.push("button.label", format!("must be at most {MAX_LABEL_CHARS} characters, not {chars}"));
        }
        fits
    });
    let style = issues.check("button.style", raw.style.as_deref().map_or(Ok(ButtonStyle::Default), str::parse));
    Some(Button { label: label?, style: style? })
}

fn build_match(raw: &RawMatch, issues: &mut Issues) -> Match {
    let sources = raw
        .sources
        .iter()
        .filter_map(|s| {
            let parsed = s
                .parse::<SourceKind>()
                .map_err(|_| format!("unknown source {s:?}; use alertmanager, dynatrace, generic, keptn or slack"));
            issues.check("match.sources", parsed)
        })
        .collect();
    let services = raw.services.iter().filter_map(|s| issues.check("match.services", ServiceGlob::parse(s))).collect();
    let severities = raw
        .severities
        .iter()
        .filter_map(|s| {
            let parsed = Severity::ALL
                .into_iter()
                .find(|level| level.as_str() == s)
                .ok_or_else(|| format!("unknown severity {s:?}; use sev1, sev2, sev3 or sev4"));
            issues.check("match.severities", parsed)
        })
        .collect();
    for key in raw.labels.keys() {
        if key.trim().is_empty() {
            issues.push("match.labels", "label names must not be empty");
        }
    }
    Match { sources, services, severities, labels: raw.labels.clone() }
}

/// Builds the parameters and a placeholder value for each (for checking templates that use them).
fn build_params(raw: &[RawParam], issues: &mut Issues) -> (Vec<Param>, BTreeMap<String, String>) {
    let mut params = Vec::new();
    let mut placeholders = BTreeMap::new();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (index, param) in raw.iter().enumerate() {
        let path = format!("params[{index}]");
        let name = issues.required(&format!("{path}.name"), param.name.as_deref()).and_then(|name| {
            if !is_param_name(name) {
                issues
                    .push(format!("{path}.name"), format!("{name:?} is not a parameter name: use ^[a-z_][a-z0-9_]*$"));
                return None;
            }
            if let Some(first) = seen.insert(name, index) {
                issues.push(format!("{path}.name"), format!("duplicate parameter {name:?}; params[{first}] has it"));
                return None;
            }
            Some(name)
        });
        let rule = match (&param.pattern, &param.choices) {
            (Some(_), Some(_)) => {
                issues.push(path.as_str(), "give either `pattern` or `choices`, not both");
                None
            }
            (None, None) => {
                issues.push(
                    path.as_str(),
                    "needs a `pattern` (a regex the whole value must match) or `choices`; \
                     a parameter without one would accept anything",
                );
                None
            }
            (Some(pattern), None) => {
                issues.check(&format!("{path}.pattern"), Pattern::new(pattern)).map(ParamRule::Pattern)
            }
            (None, Some(choices)) => {
                let unique: BTreeSet<&String> = choices.iter().collect();
                if choices.is_empty() {
                    issues.push(format!("{path}.choices"), "must list at least one value");
                    None
                } else if unique.len() != choices.len() {
                    issues.push(format!("{path}.choices"), "lists a value twice");
                    None
                } else {
                    Some(ParamRule::Choices(choices.clone()))
                }
            }
        };
        let default = param.default.as_deref().and_then(|default| {
            let field = format!("{path}.default");
            let template = issues.check(&field, Template::parse(default, Scope { params: None }))?;
            if let Some(rule) = &rule
                && template.is_literal()
                && !rule.admits(default)
            {
                issues.push(field, format!("the default {default:?} does not pass its own rule: {rule}"));
                return None;
            }
            Some(template)
        });
        if let Some(name) = name {
            let placeholder = match (&default, &rule) {
                (Some(default), _) if default.is_literal() => default.source().to_owned(),
                (_, Some(ParamRule::Choices(choices))) => choices.first().cloned().unwrap_or_default(),
                _ => "value".to_owned(),
            };
            placeholders.insert(name.to_owned(), placeholder);
        }
        if let (Some(name), Some(rule)) = (name, rule) {
            let description = param.description.as_deref().unwrap_or_default().trim().to_owned();
            params.push(Param { name: name.to_owned(), description, default, rule });
        }
    }
    (params, placeholders)
}

fn is_param_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    matches!(bytes.first(), Some(b) if b.is_ascii_lowercase() || *b == b'_')
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
}

const AWX_FIELDS: [&str; 7] =
    ["base_url", "api_path", "token_env", "template_id", "template_kind", "extra_vars", "limit"];
const HTTP_FIELDS: [&str; 5] = ["method", "url", "headers", "body", "expected_status"];
const LOCAL_FIELDS: [&str; 3] = ["program", "args", "dir"];

fn build_executor(raw: Option<&RawExecutor>, scope: Scope<'_>, issues: &mut Issues) -> Option<ExecutorSpec> {
    let Some(raw) = raw else {
        issues.push("executor", "is required: add an [executor] table with kind = \"awx\", \"http\" or \"local\"");
        return None;
    };
    let kind = issues.required("executor.kind", raw.kind.as_deref())?;
    let own: &[&str] = match kind {
        "awx" => &AWX_FIELDS,
        "http" => &HTTP_FIELDS,
        "local" => &LOCAL_FIELDS,
        other => {
            issues
                .push("executor.kind", format!("unknown executor kind {other:?}; use \"awx\", \"http\" or \"local\""));
            return None;
        }
    };
    for field in raw.set_fields() {
        if !own.contains(&field) {
            issues.push(format!("executor.{field}"), format!("is not a setting of the {kind} executor"));
        }
    }
    match kind {
        "awx" => build_awx(raw, scope, issues).map(ExecutorSpec::Awx),
        "http" => build_http(raw, scope, issues).map(ExecutorSpec::Http),
        _ => build_local(raw, scope, issues).map(ExecutorSpec::Local),
    }
}

impl RawExecutor {
    /// The names of the settings given, of any kind.
    fn set_fields(&self) -> Vec<&'static str> {
        let given = [
            ("base_url", self.base_url.is_some()),
            ("api_path", self.api_path.is_some()),
            ("token_env", self.token_env.is_some()),
            ("template_id", self.template_id.is_some()),
            ("template_kind", self.template_kind.is_some()),
            ("extra_vars", self.extra_vars.is_some()),
            ("limit", self.limit.is_some()),
            ("method", self.method.is_some()),
            ("url", self.url.is_some()),
            ("headers", self.headers.is_some()),
            ("body", self.body.is_some()),
            ("expected_status", self.expected_status.is_some()),
            ("program", self.program.is_some()),
            ("args", self.args.is_some()),
            ("dir", self.dir.is_some()),
        ];
        given.into_iter().filter(|(_, set)| *set).map(|(name, _)| name).collect()
    }
}

fn build_awx(raw: &RawExecutor, scope: Scope<'_>, issues: &mut Issues) -> Option<AwxSpec> {
    let base_url = issues
        .required("executor.base_url", raw.base_url.as_deref())
        .and_then(|url| issues.check("executor.base_url", parse_base_url(url)));
    let api_path = raw.api_path.as_deref().unwrap_or(DEFAULT_AWX_API_PATH);
    let api_path = issues.check("executor.api_path", parse_api_path(api_path));
    let token_env = issues
        .required("executor.token_env", raw.token_env.as_deref())
        .and_then(|env| issues.check("executor.token_env", parse_env_name(env)));
    let template_id = match raw.template_id {
        None => {
            issues.push("executor.template_id", "is required");
            None
        }
        Some(id) => issues.check(
            "executor.template_id",
            u64::try_from(id).ok().filter(|id| *id > 0).ok_or_else(|| format!("must be a positive number, not {id}")),
        ),
    };
    let template_kind = issues.check(
        "executor.template_kind",
        match raw.template_kind.as_deref().unwrap_or("job") {
            "job" => Ok(AwxTemplateKind::Job),
            "workflow" => Ok(AwxTemplateKind::Workflow),
            other => Err(format!("unknown template kind {other:?}; use \"job\" or \"workflow\"")),
        },
    );
    let extra_vars = raw.extra_vars.clone().unwrap_or_default();
    let extra_vars = json_template(&toml::Value::Table(extra_vars), "executor.extra_vars", scope, issues);
    let limit = raw.limit.as_deref().map(|limit| issues.check("executor.limit", Template::parse(limit, scope)));
    Some(AwxSpec {
        base_url: base_url?,
        api_path: api_path?,
        token_env: token_env?,
        template_id: template_id?,
        template_kind: template_kind?,
        extra_vars: extra_vars?,
        limit: limit.map_or(Some(None), |limit| limit.map(Some))?,
    })
}

fn build_http(raw: &RawExecutor, scope: Scope<'_>, issues: &mut Issues) -> Option<HttpSpec> {
    let method = raw.method.as_deref().unwrap_or("POST").to_ascii_uppercase();
    let method = issues.check(
        "executor.method",
        if ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
            Ok(method)
        } else {
            Err(format!("unknown method {method:?}; use GET, POST, PUT, PATCH or DELETE"))
        },
    );
    let url = issues.required("executor.url", raw.url.as_deref()).and_then(|url| {
        let template = issues.check("executor.url", Template::parse(url, scope))?;
        let preview = template.preview(scope).unwrap_or_default();
        match parse_http_url(&preview) {
            Ok(_) => Some(template),
            Err(error) if template.is_literal() => issues.check("executor.url", Err(error)),
            Err(error) => issues.check("executor.url", Err(format!("{error} (as {url:?} renders to {preview:?})"))),
        }
    });
    let mut headers = Vec::new();
    let mut headers_ok = true;
    for (name, value) in raw.headers.iter().flatten() {
        let field = format!("executor.headers.{name}");
        let header = if !is_header_name(name) {
            issues.push(field.as_str(), format!("{name:?} is not a valid header name"));
            None
        } else {
            match value {
                toml::Value::String(text) => {
                    issues.check(&field, Template::parse(text, scope)).map(HeaderSpec::Template)
                }
                toml::Value::Table(table) => match (table.get("env").and_then(toml::Value::as_str), table.len()) {
                    (Some(env), 1) => issues.check(&format!("{field}.env"), parse_env_name(env)).map(HeaderSpec::Env),
                    _ => {
                        issues.push(field.as_str(), "expected a string or { env = \"VARIABLE\" }");
                        None
                    }
                },
                _ => {
                    issues.push(field.as_str(), "expected a string or { env = \"VARIABLE\" }");
                    None
                }
            }
        };
        match header {
            Some(header) => headers.push((name.clone(), header)),
            None => headers_ok = false,
        }
    }
    let body = raw.body.as_ref().map(|body| json_template(body, "executor.body", scope, issues));
    let mut expected_status = Vec::new();
    let mut status_ok = true;
    for status in raw.expected_status.iter().flatten() {
        match u16::try_from(*status).ok().filter(|s| (100..=599).contains(s)) {
            Some(status) => expected_status.push(status),
            None => {
                issues.push("executor.expected_status", format!("{status} is not an HTTP status (100 to 599)"));
                status_ok = false;
            }
        }
    }
    Some(HttpSpec {
        method: method?,
        url: url?,
        headers: headers_ok.then_some(headers)?,
        body: body.map_or(Some(None), |body| body.map(Some))?,
        expected_status: status_ok.then_some(expected_status)?,
    })
}

fn build_local(raw: &RawExecutor, scope: Scope<'_>, issues: &mut Issues) -> Option<LocalSpec> {
    let program = issues.required("executor.program", raw.program.as_deref()).and_then(|program| {
        let checked = parse_fixed_path(program).and_then(|program| {
            let base = program.rsplit('/').next().unwrap_or_default();
            if SHELLS.contains(&base) {
                Err(format!(
                    "{program:?} is a shell (or runs one), which would turn parameters back into shell code; \
                     run the script itself instead"
                ))
            } else if program.chars().any(char::is_whitespace) {
                Err(format!("{program:?} is not one program: put arguments in `args` (warroom never runs a shell)"))
            } else {
                Ok(program)
            }
        });
        issues.check("executor.program", checked)
    });
    let mut args = Vec::new();
    let mut args_ok = true;
    for (index, arg) in raw.args.iter().flatten().enumerate() {
        match issues.check(&format!("executor.args[{index}]"), Template::parse(arg, scope)) {
            Some(arg) => args.push(arg),
            None => args_ok = false,
        }
    }
    let dir = raw.dir.as_deref().map(|dir| issues.check("executor.dir", parse_fixed_path(dir)));
    Some(LocalSpec {
        program: program?,
        args: args_ok.then_some(args)?,
        dir: dir.map_or(Some(None), |dir| dir.map(Some))?,
    })
}

fn build_allowed(raw: &RawAllowed, issues: &mut Issues) -> Option<Allowed> {
    let before = issues.0.len();
    for group in &raw.groups {
        if !is_slack_id(group, b"S") {
            issues.push("allowed.groups", format!("expected Slack user group ids (S…), got {group:?}"));
        }
    }
    for user in &raw.users {
        if !is_slack_id(user, b"UW") {
            issues.push("allowed.users", format!("expected Slack user ids (U… or W…), got {user:?}"));
        }
    }
    if raw.groups.is_empty() && raw.users.is_empty() && !raw.on_call {
        issues.push("allowed", "nobody may run this runbook: list `groups` or `users`, or set `on_call = true`");
    }
    (issues.0.len() == before).then(|| Allowed {
        groups: raw.groups.clone(),
        on_call: raw.on_call,
        users: raw.users.clone(),
    })
}

/// Turns a TOML value into a JSON template, checking every string leaf.
fn json_template(value: &toml::Value, path: &str, scope: Scope<'_>, issues: &mut Issues) -> Option<JsonTemplate> {
    match value {
        toml::Value::String(text) => issues.check(path, Template::parse(text, scope)).map(JsonTemplate::Text),
        toml::Value::Integer(n) => Some(JsonTemplate::Literal(serde_json::Value::from(*n))),
        toml::Value::Float(f) => {
            let number = serde_json::Number::from_f64(*f).ok_or_else(|| format!("{f} cannot be sent as JSON"));
            issues.check(path, number).map(|n| JsonTemplate::Literal(serde_json::Value::Number(n)))
        }
        toml::Value::Boolean(b) => Some(JsonTemplate::Literal(serde_json::Value::Bool(*b))),
        toml::Value::Datetime(d) => Some(JsonTemplate::Literal(serde_json::Value::String(d.to_string()))),
        toml::Value::Array(items) => {
            let items: Vec<Option<JsonTemplate>> = items
                .iter()
                .enumerate()
                .map(|(index, item)| json_template(item, &format!("{path}[{index}]"), scope, issues))
                .collect();
            items.into_iter().collect::<Option<Vec<_>>>().map(JsonTemplate::List)
        }
        toml::Value::Table(table) => {
            let entries: Vec<(String, Option<JsonTemplate>)> = table
                .iter()
                .map(|(key, item)| (key.clone(), json_template(item, &format!("{path}.{key}"), scope, issues)))
                .collect();
            entries
                .into_iter()
                .map(|(key, item)| item.map(|item| (key, item)))
                .collect::<Option<BTreeMap<_, _>>>()
                .map(JsonTemplate::Object)
        }
    }
}

fn parse_timeout(timeout: Option<&str>) -> Result<Duration, String> {
    let Some(text) = timeout else { return Ok(DEFAULT_TIMEOUT) };
    let invalid = || format!("expected a duration like \"15m\", \"90s\" or \"1h 30m\", got {text:?}");
    let parsed: SignedDuration = text.parse().map_err(|_| invalid())?;
    let duration = Duration::try_from(parsed).map_err(|_| invalid())?;
    if duration.is_zero() || duration > MAX_TIMEOUT {
        return Err(format!("must be more than 0 and at most 24h, not {text:?}"));
    }
    Ok(duration)
}

fn parse_base_url(text: &str) -> Result<String, String> {
    let url = parse_http_url(text)?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{text:?} must not have a query or fragment"));
    }
    Ok(text.trim_end_matches('/').to_owned())
}

fn parse_http_url(text: &str) -> Result<url::Url, String> {
    let not_http = || format!("expected an http(s) URL like \"https://awx.example.com\", got {text:?}");
    let url = url::Url::parse(text).map_err(|_| not_http())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(not_http());
    }
    Ok(url)
}

fn parse_api_path(path: &str) -> Result<String, String> {
    let valid = path.starts_with('/')
        && path.ends_with('/')
        && !path.contains("..")
        && !path.contains("//")
        && path.bytes().all(|b| b.is_ascii_alphanumeric() || b"/-_.".contains(&b));
    if valid {
        Ok(path.to_owned())
    } else {
        Err(format!(
            "expected a path like \"/api/v2/\" or \"/api/controller/v2/\" (starting and ending with /), got {path:?}"
        ))
    }
}

fn parse_env_name(name: &str) -> Result<String, String> {
    let bytes = name.as_bytes();
    let valid = matches!(bytes.first(), Some(b) if b.is_ascii_alphabetic() || *b == b'_')
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_');
    if valid {
        Ok(name.to_owned())
    } else {
        Err(format!("{name:?} is not an environment variable name (such as \"AWX_TOKEN\")"))
    }
}

fn parse_fixed_path(path: &str) -> Result<String, String> {
    if path.contains("{{") || path.contains("{%") {
        return Err(format!("{path:?} must be a fixed path; templates are not allowed here"));
    }
    if !path.starts_with('/') {
        return Err(format!("{path:?} must be an absolute path"));
    }
    Ok(path.to_owned())
}

fn is_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// One line for a TOML syntax error, with its line and column.
fn syntax_issue(text: &str, error: &toml::de::Error) -> SpecIssue {
    let message = error.message().trim();
    let message = match error.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("invalid TOML at line {line}, column {column}: {message}")
        }
        None => format!("invalid TOML: {message}"),
    };
    SpecIssue { field: String::new(), message }
}

/// The last line of a regex error (`error: unclosed character class`), without the prefix.
fn regex_error(error: &regex::Error) -> String {
    let text = error.to_string();
    let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
    last.trim().strip_prefix("error: ").unwrap_or(last.trim()).to_owned()
}

/// The key of an "unknown field `key`, expected …" message.
fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

fn segment_name(segment: &Segment) -> Option<String> {
    match segment {
        Segment::Map { key } => Some(key.clone()),
        Segment::Seq { index } => Some(format!("[{index}]")),
        Segment::Enum { .. } | Segment::Unknown => None,
    }
}

/// `executor.headers` from `["executor", "headers"]`, `params[0].name` from `["params", "[0]", "name"]`.
fn dotted(path: &[String]) -> String {
    let mut out = String::new();
    for part in path {
        if !out.is_empty() && !part.starts_with('[') {
            out.push('.');
        }
        out.push_str(part);
    }
    out
}

/// Removes the value at `path` (as [`dotted`] takes it) so the next round can go on. A path
/// that ends at an element of a list removes the whole list, so that later indices stay right.
/// Returns whether something was removed.
fn remove(table: &mut toml::Table, path: &[String]) -> bool {
    let end = path.iter().rposition(|part| !part.starts_with('[')).map_or(0, |at| at + 1);
    let Some((last, parents)) = path[..end].split_last() else { return false };
    let mut current = table;
    let mut parts = parents.iter().peekable();
    while let Some(key) = parts.next() {
        let Some(mut value) = current.get_mut(key) else { return false };
        while let Some(index) = parts.next_if(|part| part.starts_with('[')) {
            let Some(index) = index.trim_start_matches('[').trim_end_matches(']').parse::<usize>().ok() else {
                return false;
            };
            let Some(item) = value.as_array_mut().and_then(|items| items.get_mut(index)) else { return false };
            value = item;
        }
        let Some(next) = value.as_table_mut() else { return false };
        current = next;
    }
    current.remove(last).is_some()
}

#[cfg(test)]
mod tests;
