//! Settings of a team's external on-call provider, and building the provider from them.
//!
//! A `[[oncall.teams]]` entry may ask PagerDuty or Opsgenie instead of (or before) its built-in
//! rotation. Three optional keys sit beside the team's other keys:
//!
//! ```toml
//! [[oncall.teams]]
//! name = "sre"
//! members = ["U01AAAA", "U01BBBB"]   # the built-in rotation, needed by `fallback = "rotation"`
//! provider = { kind = "pagerduty", escalation_policy = "PABC123", token_env = "PAGERDUTY_TOKEN" }
//! fallback = "rotation"              # or { usergroup = "S0SRE" }
//! cache_ttl = "5m"
//!
//! [[oncall.teams]]
//! name = "payments"
//! provider = { kind = "opsgenie", schedule = "payments-primary", base_url = "https://api.eu.opsgenie.com" }
//! fallback = { usergroup = "S0PAY" }
//! ```
//!
//! | Key | Meaning | Default |
//! | --- | --- | --- |
//! | `provider.kind` | `pagerduty` or `opsgenie` | required |
//! | `provider.escalation_policy` | PagerDuty: the escalation policy id (`P…`); level 1 is primary, level 2 escalation | required |
//! | `provider.schedule` | Opsgenie: the schedule's name | required |
//! | `provider.token_env` | the environment variable holding the API token | `PAGERDUTY_TOKEN` / `OPSGENIE_API_KEY` |
//! | `provider.base_url` | the API's base URL (Opsgenie EU: `https://api.eu.opsgenie.com`) | `https://api.pagerduty.com` / `https://api.opsgenie.com` |
//! | `provider.timeout` | the timeout of one HTTP request | `10s` |
//! | `fallback` | who answers when the provider fails: `"rotation"` (the team's built-in rotation) or `{ usergroup = "S…" }` | none: the lookup fails |
//! | `cache_ttl` | how long an answer is reused | `5m` |
//!
//! What the tokens need:
//!
//! - **PagerDuty**: a REST API key (`Token token=…`). A read-only account key is enough; a user
//!   key works if that user can see the escalation policy; a scoped OAuth token needs
//!   `oncalls.read` (and `users.read` for the emails that `include[]=users` embeds).
//! - **Opsgenie**: an API key from an *API integration* (Settings → Integrations → API) with
//!   *Read* access, and the integration assigned to the schedule's team or to no team. Opsgenie's
//!   REST API ends on 2027-04-05; its successor is the JSM Operations REST API
//!   (`https://api.atlassian.com/jsm/ops/api/{cloudId}/v1/schedules/{id}/on-calls`, authenticated
//!   as an Atlassian account with an API token), which is not supported yet.
//!
//! Values are deserialized as plain strings and checked by [`TeamProviderSettings::validate`],
//! which reports every problem at once with its field path, like
//! [`OnCallSettings::validate`](super::settings::OnCallSettings::validate) does for rotations.
//! [`build`] turns valid settings into a [`CachedOnCall`] for the team.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use super::cached::{CachedOnCall, Fallback};
use super::opsgenie::OpsgenieOnCall;
use super::pagerduty::PagerDutyOnCall;
use super::rotation::Rotation;
use super::settings::SettingsIssue;
use super::{OnCall, OnCallError};
use crate::config::parse_duration;
use crate::domain::Clock;

/// The default environment variable holding the PagerDuty API token.
pub const DEFAULT_PAGERDUTY_TOKEN_ENV: &str = "PAGERDUTY_TOKEN";
/// The default PagerDuty REST API base URL.
pub const DEFAULT_PAGERDUTY_BASE_URL: &str = "https://api.pagerduty.com";
/// The default environment variable holding the Opsgenie API key.
pub const DEFAULT_OPSGENIE_TOKEN_ENV: &str = "OPSGENIE_API_KEY";
/// The default Opsgenie REST API base URL; EU accounts use `https://api.eu.opsgenie.com`.
pub const DEFAULT_OPSGENIE_BASE_URL: &str = "https://api.opsgenie.com";
/// The default timeout of one request to a provider.
pub const DEFAULT_TIMEOUT: &str = "10s";
/// The default time an answer is reused.
pub const DEFAULT_CACHE_TTL: &str = "5m";

/// The three provider keys of a `[[oncall.teams]]` entry: `provider`, `fallback`, `cache_ttl`.
///
/// `TeamSettings` holds them as its own optional fields; this struct groups them to validate and
/// build. Deserializing it from a table with just these keys is what the tests do.
#[derive(Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TeamProviderSettings {
    /// The external provider that answers for the team.
    pub provider: ProviderSettings,
    /// Who answers when the provider fails; without one, the lookup fails.
    #[serde(default)]
    pub fallback: Option<FallbackSettings>,
    /// How long an answer is reused, such as `5m` (the default); `0s` turns caching off.
    #[serde(default)]
    pub cache_ttl: Option<String>,
}

/// The `provider` table of a team, chosen by its `kind`.
#[derive(Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ProviderSettings {
    /// `kind = "pagerduty"`: the on-calls of an escalation policy.
    #[serde(rename = "pagerduty")]
    PagerDuty(PagerDutySettings),
    /// `kind = "opsgenie"`: the on-call participants of a schedule.
    Opsgenie(OpsgenieSettings),
}

/// `provider = { kind = "pagerduty", … }`.
#[derive(Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PagerDutySettings {
    /// The escalation policy id, such as `PABC123`.
    pub escalation_policy: String,
    /// The environment variable holding the REST API key.
    #[serde(default = "default_pagerduty_token_env")]
    pub token_env: String,
    /// The REST API base URL.
    #[serde(default = "default_pagerduty_base_url")]
    pub base_url: String,
    /// The timeout of one request, such as `10s`.
    #[serde(default = "default_timeout")]
    pub timeout: String,
}

/// `provider = { kind = "opsgenie", … }`.
#[derive(Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OpsgenieSettings {
    /// The schedule's name, such as `sre-primary`.
    pub schedule: String,
    /// The environment variable holding the API integration's key.
    #[serde(default = "default_opsgenie_token_env")]
    pub token_env: String,
    /// The REST API base URL: `https://api.opsgenie.com`, or `https://api.eu.opsgenie.com`.
    #[serde(default = "default_opsgenie_base_url")]
    pub base_url: String,
    /// The timeout of one request, such as `10s`.
    #[serde(default = "default_timeout")]
    pub timeout: String,
}

/// `fallback = "rotation"` or `fallback = { usergroup = "S0SRE" }`.
#[derive(Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FallbackSettings {
    /// The team's built-in rotation (its `members`) answers.
    Rotation,
    /// The Slack user group with this id (`S…`) is invited instead of named people.
    Usergroup(String),
}

/// The team a provider is built for, as its `[[oncall.teams]]` entry describes it.
#[derive(Debug, Clone, Copy)]
pub struct TeamRef<'a> {
    /// The path of the team's entry for issues, such as `oncall.teams[0]`.
    pub path: &'a str,
    /// The team's name, reported in answers.
    pub name: &'a str,
    /// The team's built-in rotation, when the entry lists members; `fallback = "rotation"` needs it.
    pub rotation: Option<&'a Rotation>,
}

/// How to reach one provider's API: where, as whom, and how long to wait.
#[derive(Debug, Clone)]
pub struct ApiAccess {
    /// The API's base URL; request paths are appended to its path.
    pub base_url: Url,
    /// The API token or key.
    pub token: SecretString,
    /// The environment variable the token came from, named in authentication errors.
    pub token_env: String,
    /// The timeout of one request.
    pub timeout: Duration,
}

/// The error returned when a provider's HTTP client cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The token holds characters that an HTTP header cannot carry, such as a line break.
    #[error("the token in {env} cannot be sent in an HTTP header; check it for stray characters")]
    InvalidToken {
        /// The environment variable holding the token.
        env: String,
    },
    /// reqwest could not build the client (its TLS backend failed to initialise).
    #[error("cannot build the HTTP client")]
    Http(#[source] reqwest::Error),
}

impl ApiAccess {
    /// Builds the one HTTP client of a provider: the timeout, and `Authorization: {prefix}{token}`
    /// (marked sensitive, so it never shows in debug output) plus `headers` on every request.
    pub fn client(&self, prefix: &str, mut headers: HeaderMap) -> Result<reqwest::Client, ClientError> {
        let mut authorization = HeaderValue::from_str(&format!("{prefix}{}", self.token.expose_secret()))
            .map_err(|_| ClientError::InvalidToken { env: self.token_env.clone() })?;
        authorization.set_sensitive(true);
        headers.insert(AUTHORIZATION, authorization);
        reqwest::Client::builder()
            .timeout(self.timeout)
            .default_headers(headers)
            .user_agent(concat!("warroom/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ClientError::Http)
    }

    /// Returns the base URL with `segments` appended to its path, each percent-encoded.
    pub fn endpoint(&self, segments: &[&str]) -> Result<Url, String> {
        let mut url = self.base_url.clone();
        url.path_segments_mut()
            .map_err(|()| format!("the base URL {} cannot take a path", self.base_url))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }
}

impl TeamProviderSettings {
    /// Returns every problem in the team's provider keys; an empty list means [`build`] succeeds
    /// (barring a TLS backend that fails to start). Environment variables are read via `env`.
    pub fn validate(&self, team: &TeamRef<'_>, env: &dyn Fn(&str) -> Option<String>) -> Vec<SettingsIssue> {
        self.parse(team, env).err().unwrap_or_default()
    }

    /// Parses everything but builds nothing.
    fn parse(&self, team: &TeamRef<'_>, env: &dyn Fn(&str) -> Option<String>) -> Result<Parsed, Vec<SettingsIssue>> {
        let mut issues = Vec::new();
        let mut issue = |field: String, message: String| issues.push(SettingsIssue { field, message });
        let path = team.path;
        let provider_path = format!("{path}.provider");

        let (kind, target, access) = match &self.provider {
            ProviderSettings::PagerDuty(settings) => {
                let field = format!("{provider_path}.escalation_policy");
                let policy = &settings.escalation_policy;
                if !is_pagerduty_id(policy) {
                    issue(field, format!("expected a PagerDuty escalation policy id like \"PABC123\", got {policy:?}"));
                }
                let access =
                    api_access(&provider_path, &settings.token_env, &settings.base_url, &settings.timeout, env);
                (Kind::PagerDuty, policy.clone(), access)
            }
            ProviderSettings::Opsgenie(settings) => {
                if settings.schedule.trim().is_empty() {
                    issue(format!("{provider_path}.schedule"), "must name the Opsgenie schedule".to_owned());
                }
                let access =
                    api_access(&provider_path, &settings.token_env, &settings.base_url, &settings.timeout, env);
                (Kind::Opsgenie, settings.schedule.clone(), access)
            }
        };
        let access = access.map_err(|found| issues.extend(found)).ok();

        let fallback = match &self.fallback {
            None => None,
            Some(FallbackSettings::Rotation) => match team.rotation {
                Some(rotation) => Some(Fallback::Rotation(rotation.clone())),
                None => {
                    issues.push(SettingsIssue {
                        field: format!("{path}.fallback"),
                        message: "\"rotation\" needs the team's built-in rotation: list its `members`".to_owned(),
                    });
                    None
                }
            },
            Some(FallbackSettings::Usergroup(group)) if super::is_slack_id(group, b"S") => {
                Some(Fallback::UserGroup(group.clone()))
            }
            Some(FallbackSettings::Usergroup(group)) => {
                issues.push(SettingsIssue {
                    field: format!("{path}.fallback.usergroup"),
                    message: format!("expected a Slack user group id (S…), got {group:?}"),
                });
                None
            }
        };

        let cache_ttl = parse_duration(self.cache_ttl.as_deref().unwrap_or(DEFAULT_CACHE_TTL))
            .map_err(|message| issues.push(SettingsIssue { field: format!("{path}.cache_ttl"), message }))
            .ok();

        match (access, cache_ttl) {
            (Some(access), Some(cache_ttl)) if issues.is_empty() => {
                Ok(Parsed { kind, target, access, fallback, cache_ttl })
            }
            _ => Err(issues),
        }
    }
}

/// Builds the on-call provider of one team: its PagerDuty or Opsgenie client behind a cache
/// and the configured fallback, with `clock` deciding when cached answers expire.
///
/// Fails with every problem in the settings (see [`TeamProviderSettings::validate`]), or with an
/// issue at `{path}.provider` if the HTTP client cannot be built.
pub fn build(
    settings: &TeamProviderSettings,
    team: &TeamRef<'_>,
    env: &dyn Fn(&str) -> Option<String>,
    clock: Arc<dyn Clock>,
) -> Result<CachedOnCall, Vec<SettingsIssue>> {
    let Parsed { kind, target, access, fallback, cache_ttl } = settings.parse(team, env)?;
    let provider: Result<Arc<dyn OnCall>, ClientError> = match kind {
        Kind::PagerDuty => PagerDutyOnCall::new(team.name, target, access).map(|p| Arc::new(p) as Arc<dyn OnCall>),
        Kind::Opsgenie => OpsgenieOnCall::new(team.name, target, access).map(|p| Arc::new(p) as Arc<dyn OnCall>),
    };
    let provider = provider.map_err(|error| {
        vec![SettingsIssue { field: format!("{}.provider", team.path), message: error_chain(&error) }]
    })?;
    let cached = CachedOnCall::new(team.name, provider, clock).with_ttl(cache_ttl);
    Ok(match fallback {
        Some(fallback) => cached.with_fallback(fallback),
        None => cached,
    })
}

/// Reads a retry delay in whole seconds from the first of `names` that the response carries,
/// such as `Retry-After: 30`. The HTTP-date form of `Retry-After` is not used by the providers.
pub(super) fn retry_after(headers: &HeaderMap, names: &[&str]) -> Option<Duration> {
    names
        .iter()
        .filter_map(|name| headers.get(*name)?.to_str().ok()?.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
        .next()
}

/// Describes a failed HTTP answer of `vendor` in words the channel can show: what went wrong
/// and, for authentication failures, which environment variable holds the token.
pub(super) fn http_error(
    provider: &'static str,
    vendor: &str,
    token_env: &str,
    status: StatusCode,
    detail: Option<String>,
    retry_after: Option<Duration>,
) -> OnCallError {
    let detail = detail.map(|detail| format!(": {detail}")).unwrap_or_default();
    let message = match status {
        StatusCode::UNAUTHORIZED => {
            format!("{vendor} rejected the API token in {token_env} (HTTP {status}{detail}); check that it is current")
        }
        StatusCode::FORBIDDEN => {
            format!("the API token in {token_env} may not read on-call data in {vendor} (HTTP {status}{detail})")
        }
        StatusCode::TOO_MANY_REQUESTS => format!("{vendor} is rate limiting warroom (HTTP {status}{detail})"),
        _ => format!("{vendor} answered HTTP {status}{detail}"),
    };
    OnCallError::Provider { provider, message, retry_after }
}

/// Settings checked and parsed, ready to build.
struct Parsed {
    kind: Kind,
    /// The escalation policy id or the schedule name.
    target: String,
    access: ApiAccess,
    fallback: Option<Fallback>,
    cache_ttl: Duration,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    PagerDuty,
    Opsgenie,
}

/// Checks and reads the keys every provider has, under `path`.
fn api_access(
    path: &str,
    token_env: &str,
    base_url: &str,
    timeout: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ApiAccess, Vec<SettingsIssue>> {
    let mut issues = Vec::new();
    let mut issue = |key: &str, message: String| issues.push(SettingsIssue { field: format!("{path}.{key}"), message });

    let token = if token_env.trim().is_empty() {
        issue("token_env", "must name the environment variable that holds the API token".to_owned());
        None
    } else {
        match env(token_env).filter(|value| !value.trim().is_empty()) {
            Some(value) => Some(SecretString::from(value.trim().to_owned())),
            None => {
                issue(
                    "token_env",
                    format!("the environment variable {token_env} is not set; it must hold the API token"),
                );
                None
            }
        }
    };
    let base_url = match Url::parse(base_url) {
        Ok(url) if matches!(url.scheme(), "https" | "http") && !url.cannot_be_a_base() && url.query().is_none() => {
            Some(url)
        }
        _ => {
            issue("base_url", format!("expected an http(s) URL like \"https://api.example.com\", got {base_url:?}"));
            None
        }
    };
    let timeout = match parse_duration(timeout) {
        Ok(timeout) if !timeout.is_zero() => Some(timeout),
        Ok(_) => {
            issue("timeout", "must be longer than 0s".to_owned());
            None
        }
        Err(message) => {
            issue("timeout", message);
            None
        }
    };
    match (token, base_url, timeout) {
        (Some(token), Some(base_url), Some(timeout)) => {
            Ok(ApiAccess { base_url, token, token_env: token_env.to_owned(), timeout })
        }
        _ => Err(issues),
    }
}

/// Reports whether `s` looks like a PagerDuty object id: uppercase letters and digits.
fn is_pagerduty_id(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// Joins an error and its sources into one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

fn default_pagerduty_token_env() -> String {
    DEFAULT_PAGERDUTY_TOKEN_ENV.to_owned()
}

fn default_pagerduty_base_url() -> String {
    DEFAULT_PAGERDUTY_BASE_URL.to_owned()
}

fn default_opsgenie_token_env() -> String {
    DEFAULT_OPSGENIE_TOKEN_ENV.to_owned()
}

fn default_opsgenie_base_url() -> String {
    DEFAULT_OPSGENIE_BASE_URL.to_owned()
}

fn default_timeout() -> String {
    DEFAULT_TIMEOUT.to_owned()
}

/// Helpers shared by the provider tests.
#[cfg(test)]
pub(super) mod testing {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::ApiAccess;
    use crate::oncall::{PersonRef, Service};

    /// Returns a fixture from `tests/fixtures/oncall/`, such as `pagerduty/oncalls_levels.json`.
    pub(crate) fn fixture(name: &str) -> serde_json::Value {
        let path = format!("{}/tests/fixtures/oncall/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {path}: {e}"))
    }

    /// Access to a fake API at `base_url` with `token`, read from `token_env`.
    pub(crate) fn access(base_url: &str, token: &str, token_env: &str) -> ApiAccess {
        ApiAccess {
            base_url: base_url.parse().expect("the test base URL parses"),
            token: token.to_owned().into(),
            token_env: token_env.to_owned(),
            timeout: Duration::from_secs(5),
        }
    }

    /// The labels of a service without any.
    pub(crate) static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();

    /// A service called `name` without labels.
    pub(crate) fn service(name: &str) -> Service<'_> {
        Service { name: Some(name), labels: &NO_LABELS }
    }

    /// A person by email.
    pub(crate) fn email(address: &str) -> PersonRef {
        PersonRef::Email(address.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use wiremock::matchers::{header, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::testing::{email, fixture, service};
    use super::*;
    use crate::domain::ManualClock;
    use crate::oncall::settings::OnCallSettings;

    fn settings(toml: &str) -> TeamProviderSettings {
        toml::from_str(toml).expect("the test settings deserialize")
    }

    fn issue(field: &str, message: &str) -> SettingsIssue {
        SettingsIssue { field: field.to_owned(), message: message.to_owned() }
    }

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |name| vars.get(name).cloned()
    }

    fn rotation() -> Rotation {
        let settings: OnCallSettings =
            toml::from_str("[[teams]]\nname = \"sre\"\nmembers = [\"U0SRE01\"]").expect("the rotation deserializes");
        settings.build().expect("the rotation is valid").team("sre").cloned().expect("sre is configured")
    }

    fn clock() -> Arc<dyn Clock> {
        Arc::new(ManualClock::new(jiff::Timestamp::constant(1_777_636_800, 0)))
    }

    const PAGERDUTY: &str = r#"
        provider = { kind = "pagerduty", escalation_policy = "PABC123", token_env = "PAGERDUTY_TOKEN", base_url = "https://api.pagerduty.com" }
        fallback = "rotation"
        cache_ttl = "5m"
    "#;

    const OPSGENIE: &str = r#"
        provider = { kind = "opsgenie", schedule = "sre-primary", token_env = "OPSGENIE_API_KEY", base_url = "https://api.eu.opsgenie.com" }
        fallback = { usergroup = "S0SRE" }
    "#;

    #[test]
    fn the_documented_examples_deserialize_with_their_defaults_and_are_valid() {
        let pagerduty = settings(PAGERDUTY);
        assert_eq!(
            pagerduty,
            TeamProviderSettings {
                provider: ProviderSettings::PagerDuty(PagerDutySettings {
                    escalation_policy: "PABC123".to_owned(),
                    token_env: "PAGERDUTY_TOKEN".to_owned(),
                    base_url: "https://api.pagerduty.com".to_owned(),
                    timeout: "10s".to_owned(),
                }),
                fallback: Some(FallbackSettings::Rotation),
                cache_ttl: Some("5m".to_owned()),
            }
        );
        let opsgenie = settings(OPSGENIE);
        assert_eq!(opsgenie.fallback, Some(FallbackSettings::Usergroup("S0SRE".to_owned())));

        let rotation = rotation();
        let team = TeamRef { path: "oncall.teams[0]", name: "sre", rotation: Some(&rotation) };
        let env = env(&[("PAGERDUTY_TOKEN", "pd-token"), ("OPSGENIE_API_KEY", "og-key")]);
        assert_eq!(pagerduty.validate(&team, &env), []);
        assert_eq!(opsgenie.validate(&team, &env), []);
        let minimal = settings(r#"provider = { kind = "opsgenie", schedule = "sre-primary" }"#);
        assert_eq!(minimal.validate(&team, &env), []);
    }

    #[test]
    fn validate_reports_every_problem_with_its_field_path_and_names_a_missing_token_variable() {
        let cases = [
            (
                r#"
                provider = { kind = "pagerduty", escalation_policy = "pabc 123", base_url = "api.pagerduty.com", timeout = "soon" }
                fallback = { usergroup = "sre-team" }
                cache_ttl = "5 minutes"
                "#,
                vec![
                    issue(
                        "oncall.teams[2].provider.escalation_policy",
                        r#"expected a PagerDuty escalation policy id like "PABC123", got "pabc 123""#,
                    ),
                    issue(
                        "oncall.teams[2].provider.token_env",
                        "the environment variable PAGERDUTY_TOKEN is not set; it must hold the API token",
                    ),
                    issue(
                        "oncall.teams[2].provider.base_url",
                        r#"expected an http(s) URL like "https://api.example.com", got "api.pagerduty.com""#,
                    ),
                    issue(
                        "oncall.teams[2].provider.timeout",
                        r#"expected a duration such as "30s", "5m" or "24h", got `soon`"#,
                    ),
                    issue(
                        "oncall.teams[2].fallback.usergroup",
                        r#"expected a Slack user group id (S…), got "sre-team""#,
                    ),
                    issue("oncall.teams[2].cache_ttl", "unknown unit in `5 minutes`: use ms, s, m, h or d"),
                ],
            ),
            (
                r#"
                provider = { kind = "opsgenie", schedule = " ", token_env = "OG_KEY", timeout = "0s" }
                fallback = "rotation"
                "#,
                vec![
                    issue("oncall.teams[2].provider.schedule", "must name the Opsgenie schedule"),
                    issue(
                        "oncall.teams[2].provider.token_env",
                        "the environment variable OG_KEY is not set; it must hold the API token",
                    ),
                    issue("oncall.teams[2].provider.timeout", "must be longer than 0s"),
                    issue(
                        "oncall.teams[2].fallback",
                        "\"rotation\" needs the team's built-in rotation: list its `members`",
                    ),
                ],
            ),
            (
                r#"provider = { kind = "opsgenie", schedule = "sre", token_env = "" }"#,
                vec![issue(
                    "oncall.teams[2].provider.token_env",
                    "must name the environment variable that holds the API token",
                )],
            ),
        ];
        let team = TeamRef { path: "oncall.teams[2]", name: "sre", rotation: None };
        let env = env(&[("OG_KEY", "  ")]);
        for (toml, expected) in cases {
            assert_eq!(settings(toml).validate(&team, &env), expected, "{toml}");
        }
    }

    #[test]
    fn unknown_keys_kinds_and_fallbacks_are_rejected_when_deserializing() {
        let cases = [
            (r#"provider = { kind = "pagerduty", escalation_policy = "PABC123", token = "x" }"#, "a token in the file"),
            (r#"provider = { kind = "opsgenie", schedule = "sre", escalation_policy = "P1" }"#, "a PagerDuty key"),
            (r#"provider = { kind = "victorops", schedule = "sre" }"#, "an unknown kind"),
            (r#"provider = { schedule = "sre" }"#, "no kind"),
            (r#"provider = { kind = "pagerduty" }"#, "no escalation policy"),
            ("provider = { kind = \"opsgenie\", schedule = \"sre\" }\nfallback = \"rotaton\"", "a misspelt fallback"),
            ("provider = { kind = \"opsgenie\", schedule = \"sre\" }\ncache = \"5m\"", "an unknown team key"),
        ];
        for (toml, what) in cases {
            assert!(toml::from_str::<TeamProviderSettings>(toml).is_err(), "{what} should be rejected: {toml}");
        }
    }

    #[tokio::test]
    async fn build_makes_a_cached_provider_that_asks_the_configured_base_url_with_the_token_from_the_environment() {
        let server = MockServer::start().await;
        Mock::given(path("/oncalls"))
            .and(query_param("escalation_policy_ids[]", "PABC123"))
            .and(header("authorization", "Token token=pd-secret"))
            .respond_with(ResponseTemplate::new(200).set_body_json(fixture("pagerduty/oncalls_permanent.json")))
            .expect(1)
            .mount(&server)
            .await;
        let settings = settings(&format!(
            "provider = {{ kind = \"pagerduty\", escalation_policy = \"PABC123\", base_url = \"{}\" }}\ncache_ttl = \"1m\"",
            server.uri()
        ));
        let team = TeamRef { path: "oncall.teams[0]", name: "sre", rotation: None };

        let oncall = build(&settings, &team, &env(&[("PAGERDUTY_TOKEN", "pd-secret")]), clock()).expect("it builds");

        assert_eq!(oncall.ttl(), Duration::from_secs(60));
        assert_eq!(oncall.fallback(), None);
        let now = jiff::Timestamp::constant(1_777_636_800, 0);
        for _ in 0..2 {
            let answer = oncall.on_call(service("checkout"), now).await.expect("PagerDuty answers");
            assert_eq!(answer.primary, [email("bob@example.com")]);
        }
    }

    #[test]
    fn build_fails_with_exactly_the_issues_that_validate_reports() {
        let settings = settings(OPSGENIE);
        let team = TeamRef { path: "oncall.teams[0]", name: "sre", rotation: None };
        let env = env(&[]);
        let issues = settings.validate(&team, &env);
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(build(&settings, &team, &env, clock()).err(), Some(issues));
    }

    #[test]
    fn a_token_with_a_line_break_is_reported_instead_of_sent() {
        let settings = settings(PAGERDUTY);
        let rotation = rotation();
        let team = TeamRef { path: "oncall.teams[0]", name: "sre", rotation: Some(&rotation) };

        let issues = build(&settings, &team, &env(&[("PAGERDUTY_TOKEN", "pd\ntoken")]), clock()).err();

        assert_eq!(
            issues,
            Some(vec![issue(
                "oncall.teams[0].provider",
                "the token in PAGERDUTY_TOKEN cannot be sent in an HTTP header; check it for stray characters"
            )])
        );
    }

    #[test]
    fn retry_delays_are_read_in_seconds_from_the_first_header_present() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers, &["retry-after", "ratelimit-reset"]), None);
        headers.insert("ratelimit-reset", HeaderValue::from_static("12"));
        assert_eq!(retry_after(&headers, &["retry-after", "ratelimit-reset"]), Some(Duration::from_secs(12)));
        headers.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(retry_after(&headers, &["retry-after", "ratelimit-reset"]), Some(Duration::from_secs(3)));
        headers.insert("retry-after", HeaderValue::from_static("Wed, 21 Oct 2026 07:28:00 GMT"));
        assert_eq!(retry_after(&headers, &["retry-after", "ratelimit-reset"]), Some(Duration::from_secs(12)));
    }
}
