//! A problem as a source reports it, normalised at intake.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::Severity;

/// A system that reports problems; each has one parser and one route, `/hooks/{source}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Alertmanager,
    Dynatrace,
    Generic,
    Keptn,
    /// Declared by hand with `/incident declare`.
    Slack,
}

impl SourceKind {
    /// The lowercase name used in routes, JSON and actors.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alertmanager => "alertmanager",
            Self::Dynatrace => "dynatrace",
            Self::Generic => "generic",
            Self::Keptn => "keptn",
            Self::Slack => "slack",
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SourceKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "alertmanager" => Ok(Self::Alertmanager),
            "dynatrace" => Ok(Self::Dynatrace),
            "generic" => Ok(Self::Generic),
            "keptn" => Ok(Self::Keptn),
            "slack" => Ok(Self::Slack),
            other => Err(format!("unknown source `{other}`")),
        }
    }
}

/// The source's identity for one ongoing fault: Dynatrace `PID`, Alertmanager `groupKey`,
/// generic `key`, keptn `shkeptncontext`. Opaque: never parsed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProblemKey(String);

impl ProblemKey {
    /// Wraps a non-empty key; `None` for an empty or blank one.
    #[must_use]
    pub fn new(key: &str) -> Option<Self> {
        (!key.trim().is_empty()).then(|| Self(key.to_owned()))
    }

    /// The key as the source sent it.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProblemKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether the source says the problem still goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProblemStatus {
    Firing,
    Resolved,
}

/// The state of one alert inside a problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

impl AlertStatus {
    /// The lowercase word.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Firing => "firing",
            Self::Resolved => "resolved",
        }
    }
}

/// One firing signal inside a problem (an Alertmanager alert by `fingerprint`; for sources
/// without sub-alerts, the problem itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Stable identity within the problem.
    pub fingerprint: String,
    /// Firing or resolved.
    pub status: AlertStatus,
    /// One line for humans.
    pub summary: String,
    /// The alert's labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// When it started firing, if the source says.
    pub starts_at: Option<Timestamp>,
    /// When it stopped, if it did.
    pub ends_at: Option<Timestamp>,
    /// A link to the alert at its source.
    pub url: Option<String>,
}

impl Alert {
    /// Folds `seen` into `known` by fingerprint, as the store keeps alerts: a newly seen alert
    /// replaces the known one, except that a start time or link it lacks keeps the known one.
    pub fn merge_into(known: &mut Vec<Self>, seen: &[Self]) {
        for alert in seen {
            match known.iter_mut().find(|k| k.fingerprint == alert.fingerprint) {
                Some(kept) => {
                    let (starts_at, url) = (alert.starts_at.or(kept.starts_at), alert.url.clone().or(kept.url.take()));
                    *kept = Self { starts_at, url, ..alert.clone() };
                }
                None => known.push(alert.clone()),
            }
        }
    }
}

/// One ongoing fault, normalised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub source: SourceKind,
    pub key: ProblemKey,
    pub title: String,
    pub severity: Severity,
    pub service: Option<String>,
    pub status: ProblemStatus,
    pub description: Option<String>,
    pub url: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub entities: Vec<String>,
    pub alerts: Vec<Alert>,
    /// A human-facing number the source shows (Dynatrace `P-123456`), if any.
    pub display_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(fingerprint: &str, status: AlertStatus, starts_at: Option<i64>, url: Option<&str>) -> Alert {
        Alert {
            fingerprint: fingerprint.to_owned(),
            status,
            summary: format!("{fingerprint} {}", status.as_str()),
            labels: BTreeMap::new(),
            starts_at: starts_at.map(|s| Timestamp::from_second(s).unwrap()),
            ends_at: None,
            url: url.map(str::to_owned),
        }
    }

    #[test]
    fn merging_replaces_known_alerts_by_fingerprint_keeping_a_start_and_link_the_new_one_lacks() {
        let mut known = vec![alert("a", AlertStatus::Firing, Some(10), Some("https://example.test/a"))];
        let seen = [alert("a", AlertStatus::Resolved, None, None), alert("b", AlertStatus::Firing, Some(20), None)];
        Alert::merge_into(&mut known, &seen);
        assert_eq!(
            known,
            [
                Alert {
                    summary: "a resolved".to_owned(),
                    ..alert("a", AlertStatus::Resolved, Some(10), Some("https://example.test/a"))
                },
                alert("b", AlertStatus::Firing, Some(20), None),
            ]
        );
    }
}
