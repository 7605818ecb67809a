//! Prometheus Alertmanager webhook, version 4. Keyed by `groupKey`, alerts by `fingerprint`; the
//! group is resolved only when its `status` is `resolved`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{IntakeError, SeverityMap, from_json, non_empty, parse_time, required_text};
use crate::domain::{Alert, AlertStatus, Problem, ProblemKey, ProblemStatus, Severity, SourceKind};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Webhook {
    version: String,
    group_key: String,
    status: GroupStatus,
    #[serde(default)]
    group_labels: BTreeMap<String, String>,
    #[serde(default)]
    common_labels: BTreeMap<String, String>,
    #[serde(default)]
    common_annotations: BTreeMap<String, String>,
    #[serde(default, rename = "externalURL")]
    external_url: Option<String>,
    alerts: Vec<WebhookAlert>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum GroupStatus {
    Firing,
    Resolved,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebhookAlert {
    status: GroupStatus,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    starts_at: Option<String>,
    #[serde(default)]
    ends_at: Option<String>,
    #[serde(default, rename = "generatorURL")]
    generator_url: Option<String>,
    fingerprint: String,
}

/// Parses an Alertmanager webhook body.
pub fn parse(body: &[u8], severities: &SeverityMap) -> Result<Problem, IntakeError> {
    let hook: Webhook = from_json(body)?;
    if hook.version != "4" {
        return Err(IntakeError::new(
            "version",
            format!("unsupported webhook version `{}`: expected \"4\"", hook.version),
        ));
    }
    let key = ProblemKey::new(&hook.group_key).ok_or_else(|| IntakeError::new("groupKey", "must not be empty"))?;
    let mut alerts = Vec::with_capacity(hook.alerts.len());
    for (index, alert) in hook.alerts.iter().enumerate() {
        alerts.push(convert_alert(index, alert)?);
    }
    let severity = severity_of(&hook, severities);
    let label = |name: &str| hook.common_labels.get(name).or_else(|| hook.group_labels.get(name)).cloned();
    let alertname = label("alertname");
    let title = non_empty(hook.common_annotations.get("summary").cloned())
        .or_else(|| alerts.first().map(|a| a.summary.clone()))
        .or(alertname)
        .unwrap_or_else(|| hook.group_key.clone());
    let mut entities: Vec<String> = Vec::new();
    for alert in &hook.alerts {
        if let Some(instance) = alert.labels.get("instance")
            && !entities.contains(instance)
        {
            entities.push(instance.clone());
        }
    }
    let url = hook
        .alerts
        .iter()
        .find_map(|a| non_empty(a.generator_url.clone()))
        .or_else(|| non_empty(hook.external_url.clone()));
    Ok(Problem {
        source: SourceKind::Alertmanager,
        key,
        title,
        severity,
        service: label("service"),
        status: match hook.status {
            GroupStatus::Firing => ProblemStatus::Firing,
            GroupStatus::Resolved => ProblemStatus::Resolved,
        },
        description: non_empty(hook.common_annotations.get("description").cloned()),
        url,
        labels: hook.common_labels.clone(),
        entities,
        alerts,
        display_id: None,
    })
}

fn convert_alert(index: usize, alert: &WebhookAlert) -> Result<Alert, IntakeError> {
    let field = |name: &str| format!("alerts[{index}].{name}");
    let fingerprint = required_text(&field("fingerprint"), &alert.fingerprint)?;
    let summary = non_empty(alert.annotations.get("summary").cloned()).unwrap_or_else(|| {
        let name = alert.labels.get("alertname").map_or("alert", String::as_str);
        match alert.labels.get("instance") {
            Some(instance) => format!("{name} on {instance}"),
            None => name.to_owned(),
        }
    });
    Ok(Alert {
        fingerprint,
        status: match alert.status {
            GroupStatus::Firing => AlertStatus::Firing,
            GroupStatus::Resolved => AlertStatus::Resolved,
        },
        summary,
        labels: alert.labels.clone(),
        starts_at: match &alert.starts_at {
            Some(t) => parse_time(&field("startsAt"), t)?,
            None => None,
        },
        ends_at: match &alert.ends_at {
            Some(t) => parse_time(&field("endsAt"), t)?,
            None => None,
        },
        url: non_empty(alert.generator_url.clone()),
    })
}

/// `commonLabels.severity` if present, else the worst alert's. Label values are free text, so a
/// word the map does not know falls back to `severities.fallback` rather than refusing (and so
/// losing) the delivery: Alertmanager drops what we answer with a 4xx.
fn severity_of(hook: &Webhook, severities: &SeverityMap) -> Severity {
    let lookup = |word: &String| severities.alertmanager.get(&word.to_ascii_lowercase()).copied();
    if let Some(word) = hook.common_labels.get("severity") {
        return lookup(word).unwrap_or(severities.fallback);
    }
    hook.alerts
        .iter()
        .filter_map(|alert| alert.labels.get("severity").and_then(lookup))
        .min()
        .unwrap_or(severities.fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIRING: &str = include_str!("../../tests/fixtures/alerts/alertmanager_01_firing.json");
    const DISK: &str = include_str!("../../tests/fixtures/alerts/alertmanager_04_diskfull.json");

    #[test]
    fn the_captured_firing_group_becomes_one_problem_with_two_alerts() {
        let problem = parse(FIRING.as_bytes(), &SeverityMap::default()).unwrap();
        assert_eq!(problem.key.as_str(), "{}:{alertname=\"HighErrorRate\", service=\"checkout\"}");
        assert_eq!(problem.severity, Severity::Sev1);
        assert_eq!(problem.service.as_deref(), Some("checkout"));
        assert_eq!(problem.title, "5xx rate above 5% on checkout");
        assert_eq!(problem.alerts.len(), 2);
        assert_eq!(problem.alerts[0].ends_at, None, "Go's zero time is no end time");
        assert_eq!(problem.alerts[1].url, None, "an empty generatorURL is no link");
        assert_eq!(problem.entities, ["checkout-7d9f:8080", "checkout-a1b2:8080"]);
    }

    #[test]
    fn nanosecond_start_times_parse() {
        let problem = parse(DISK.as_bytes(), &SeverityMap::default()).unwrap();
        assert_eq!(problem.severity, Severity::Sev3);
        assert!(problem.alerts[0].starts_at.is_some());
    }

    #[test]
    fn unknown_severity_words_fall_back_instead_of_losing_the_delivery() {
        let body = FIRING.replace("\"severity\":\"critical\"", "\"severity\":\"page\"");
        let problem = parse(body.as_bytes(), &SeverityMap::default()).unwrap();
        assert_eq!(problem.severity, SeverityMap::default().fallback);
    }
}
