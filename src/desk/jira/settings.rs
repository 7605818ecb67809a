//! The `[desk.jira]` section of warroom's config.
//!
//! ```toml
//! [desk.jira]
//! base_url = "https://example.atlassian.net"
//! email = "warroom-bot@example.com"
//! token_env = "JIRA_API_TOKEN"
//! project_key = "OPS"
//! issue_type = "Incident"
//! service_desk_id = "4"
//! done_transition = "Resolve"
//! labels = ["incident"]
//! write_spacing = "500ms"
//! search_lag = "5s"
//! timeout = "10s"
//! webhook_secret_env = "JIRA_WEBHOOK_SECRET"
//!
//! [desk.jira.priorities]
//! sev1 = "Highest"
//! sev2 = "High"
//!
//! [desk.jira.transitions]
//! investigating = "Start progress"
//! resolved = "Resolve"
//! reopened = "Reopen"
//! ```
//!
//! Map keys are read as plain strings so that [`JiraSettings::validate`] can name every bad key at
//! once; the desk only looks values up through [`JiraSettings::priority_name`] and
//! [`JiraSettings::transition_name`].

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::config::parse_duration;
use crate::domain::Severity;

/// The warroom steps a Jira transition can be configured for.
pub const STEPS: [&str; 5] = ["investigating", "identified", "monitoring", "resolved", "reopened"];

/// How to reach Jira and how warroom's words map onto the project's workflow.
#[derive(Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct JiraSettings {
    /// The site, such as `https://example.atlassian.net` (tests point it at a fake server).
    pub base_url: String,
    /// The account the API token belongs to (HTTP Basic user name).
    pub email: String,
    /// The environment variable holding the API token.
    #[serde(default = "default_token_env")]
    pub token_env: String,
    /// The project new issues go to, such as `OPS`.
    pub project_key: String,
    /// The issue type of new issues.
    #[serde(default = "default_issue_type")]
    pub issue_type: String,
    /// Set when the project is a Jira Service Management service desk: public notes then go
    /// through the customer-visible servicedeskapi and internal notes are marked internal.
    #[serde(default)]
    pub service_desk_id: Option<String>,
    /// `sev1` … `sev4` → Jira priority name; missing ones use Highest, High, Medium, Low.
    #[serde(default)]
    pub priorities: BTreeMap<String, String>,
    /// warroom step (`investigating`, `identified`, `monitoring`, `resolved`, `reopened`) → the
    /// name of the Jira transition that performs it.
    #[serde(default)]
    pub transitions: BTreeMap<String, String>,
    /// The transition that closes an issue on resolve.
    #[serde(default = "default_done_transition")]
    pub done_transition: String,
    /// Extra labels on every issue (besides `warroom` and `warroom-inc-<n>`).
    #[serde(default)]
    pub labels: Vec<String>,
    /// The least time between two writes to one issue (Jira limits writes per issue).
    #[serde(default = "default_write_spacing", deserialize_with = "duration")]
    pub write_spacing: Duration,
    /// How long Jira's search index may take to show a new issue.
    #[serde(default = "default_search_lag", deserialize_with = "duration")]
    pub search_lag: Duration,
    /// The timeout of each HTTP request.
    #[serde(default = "default_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    /// The environment variable holding the secret of the Jira admin webhook.
    #[serde(default)]
    pub webhook_secret_env: Option<String>,
}

/// One problem with the settings: the field path and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsIssue {
    /// Such as `desk.jira.transitions.resolve`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for SettingsIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl JiraSettings {
    /// Every problem types alone cannot catch; empty when the settings are usable.
    #[must_use]
    pub fn validate(&self) -> Vec<SettingsIssue> {
        let mut issues = Vec::new();
        let mut issue = |field: &str, message: String| {
            issues.push(SettingsIssue { field: format!("desk.jira.{field}"), message });
        };
        match url::Url::parse(&self.base_url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {}
            _ => issue("base_url", format!("`{}` is not an absolute http(s) URL", self.base_url)),
        }
        if !self.email.contains('@') {
            issue("email", format!("`{}` is not the email address of the API token's account", self.email));
        }
        for (field, value) in [
            ("token_env", &self.token_env),
            ("project_key", &self.project_key),
            ("issue_type", &self.issue_type),
            ("done_transition", &self.done_transition),
        ] {
            if value.trim().is_empty() {
                issue(field, "must not be empty".to_owned());
            }
        }
        if self.service_desk_id.as_deref().is_some_and(|id| id.trim().is_empty()) {
            issue("service_desk_id", "must not be empty; leave it out when the project is no service desk".to_owned());
        }
        for (key, name) in &self.priorities {
            if Severity::parse_level(key).map(Severity::as_str) != Ok(key.as_str()) {
                issue(&format!("priorities.{key}"), "unknown severity: use sev1, sev2, sev3 or sev4".to_owned());
            } else if name.trim().is_empty() {
                issue(&format!("priorities.{key}"), "must name a Jira priority".to_owned());
            }
        }
        for (key, name) in &self.transitions {
            if !STEPS.contains(&key.as_str()) {
                issue(&format!("transitions.{key}"), format!("unknown step: use one of {}", STEPS.join(", ")));
            } else if name.trim().is_empty() {
                issue(&format!("transitions.{key}"), "must name a Jira transition".to_owned());
            }
        }
        for (index, label) in self.labels.iter().enumerate() {
            if label.is_empty() || label.chars().any(char::is_whitespace) {
                issue(&format!("labels[{index}]"), format!("`{label}` is not a Jira label (no spaces allowed)"));
            }
        }
        if self.timeout.is_zero() {
            issue("timeout", "must be positive".to_owned());
        }
        if self.webhook_secret_env.as_deref().is_some_and(|name| name.trim().is_empty()) {
            issue("webhook_secret_env", "must name an environment variable".to_owned());
        }
        issues
    }

    /// The Jira priority of a severity.
    #[must_use]
    pub fn priority_name(&self, severity: Severity) -> &str {
        match self.priorities.get(severity.as_str()) {
            Some(name) => name,
            None => default_priority(severity),
        }
    }

    /// The severity whose configured (or default) priority is `name`.
    #[must_use]
    pub fn severity_of_priority(&self, name: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|severity| self.priority_name(*severity).eq_ignore_ascii_case(name))
    }

    /// The Jira transition configured for a warroom step (see [`STEPS`]); `resolved` falls back
    /// to [`done_transition`](Self::done_transition).
    #[must_use]
    pub fn transition_name(&self, step: &str) -> Option<&str> {
        match self.transitions.get(step) {
            Some(name) => Some(name),
            None if step == "resolved" => Some(&self.done_transition),
            None => None,
        }
    }
}

/// Jira's stock priority names, used for severities the config leaves out.
fn default_priority(severity: Severity) -> &'static str {
    match severity {
        Severity::Sev1 => "Highest",
        Severity::Sev2 => "High",
        Severity::Sev3 => "Medium",
        Severity::Sev4 => "Low",
    }
}

fn default_token_env() -> String {
    "JIRA_API_TOKEN".to_owned()
}

fn default_issue_type() -> String {
    "Incident".to_owned()
}

fn default_done_transition() -> String {
    "Done".to_owned()
}

fn default_write_spacing() -> Duration {
    Duration::from_millis(500)
}

fn default_search_lag() -> Duration {
    Duration::from_secs(5)
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

fn duration<'de, D>(deserializer: D) -> Result<Duration, D::Error>
where
    D: Deserializer<'de>,
{
    let text = String::deserialize(deserializer)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml: &str) -> Result<JiraSettings, toml::de::Error> {
        toml::from_str(toml)
    }

    const MINIMAL: &str = r#"
        base_url = "https://example.atlassian.net"
        email = "bot@example.com"
        project_key = "OPS"
    "#;

    #[test]
    fn a_minimal_section_gets_the_documented_defaults() {
        let settings = parse(MINIMAL).expect("settings");

        assert_eq!(settings.token_env, "JIRA_API_TOKEN");
        assert_eq!(settings.issue_type, "Incident");
        assert_eq!(settings.done_transition, "Done");
        assert_eq!(settings.write_spacing, Duration::from_millis(500));
        assert_eq!(settings.search_lag, Duration::from_secs(5));
        assert_eq!(settings.priority_name(Severity::Sev1), "Highest");
        assert_eq!(settings.priority_name(Severity::Sev4), "Low");
        assert_eq!(settings.transition_name("resolved"), Some("Done"));
        assert_eq!(settings.transition_name("investigating"), None);
        assert!(settings.validate().is_empty(), "{:?}", settings.validate());
    }

    #[test]
    fn a_misspelt_key_is_a_parse_error() {
        let error = parse(&format!("{MINIMAL}\nproject = \"OPS\"")).expect_err("unknown field");

        assert!(error.to_string().contains("unknown field `project`"), "{error}");
    }

    #[test]
    fn validate_names_every_bad_field_by_its_path() {
        let settings = parse(
            r#"
            base_url = "example.atlassian.net"
            email = "bot"
            project_key = ""
            labels = ["ok", "has space"]
            [priorities]
            sev5 = "Lowest"
            [transitions]
            resolve = "Done"
            "#,
        )
        .expect("settings");

        let fields: Vec<String> = settings.validate().into_iter().map(|issue| issue.field).collect();

        assert_eq!(
            fields,
            [
                "desk.jira.base_url",
                "desk.jira.email",
                "desk.jira.project_key",
                "desk.jira.priorities.sev5",
                "desk.jira.transitions.resolve",
                "desk.jira.labels[1]",
            ]
        );
    }

    #[test]
    fn configured_priorities_map_both_ways() {
        let settings = parse(&format!("{MINIMAL}\n[priorities]\nsev1 = \"Blocker\"")).expect("settings");

        assert_eq!(settings.priority_name(Severity::Sev1), "Blocker");
        assert_eq!(settings.severity_of_priority("blocker"), Some(Severity::Sev1));
        assert_eq!(settings.severity_of_priority("High"), Some(Severity::Sev2));
        assert_eq!(settings.severity_of_priority("Trivial"), None);
    }
}
