//! Dynatrace problem notifications rendered with the recommended template (see the README).
//! Keyed by `PID`; `State` is `OPEN` (first sight or a merge) or `RESOLVED`. Alerts are the
//! problem's evidence events when `ProblemDetails` carries them, else the problem itself.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::{IntakeError, SeverityMap, from_json, non_empty, required_text};
use crate::domain::{Alert, AlertStatus, Problem, ProblemKey, ProblemStatus, SourceKind};

#[derive(Debug, Deserialize)]
#[expect(non_snake_case, reason = "Dynatrace's placeholder names")]
struct Notification {
    State: State,
    #[serde(default)]
    ProblemID: Option<String>,
    PID: String,
    ProblemTitle: String,
    #[serde(default)]
    ProblemSeverity: Option<String>,
    #[serde(default)]
    ProblemImpact: Option<String>,
    #[serde(default)]
    ProblemURL: Option<String>,
    #[serde(default)]
    Tags: Option<String>,
    #[serde(default)]
    ImpactedEntity: Option<String>,
    #[serde(default)]
    ImpactedEntities: Option<Vec<ImpactedEntity>>,
    #[serde(default)]
    ProblemDetails: Option<Value>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
enum State {
    Open,
    Resolved,
}

#[derive(Debug, Deserialize)]
struct ImpactedEntity {
    #[serde(default)]
    entity: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

/// Parses a Dynatrace notification.
pub fn parse(body: &[u8], severities: &SeverityMap) -> Result<Problem, IntakeError> {
    let n: Notification = from_json(body)?;
    let pid = required_text("PID", &n.PID)?;
    let key = ProblemKey::new(&pid).ok_or_else(|| IntakeError::new("PID", "must not be empty"))?;
    let title = required_text("ProblemTitle", &n.ProblemTitle)?;
    // Dynatrace adds categories over time; an unknown one must not lose the problem.
    let severity = n
        .ProblemSeverity
        .as_deref()
        .and_then(|s| severities.dynatrace.get(s.trim()).copied())
        .unwrap_or(severities.fallback);
    let labels = parse_tags(n.Tags.as_deref().unwrap_or_default());
    let mut labels = labels;
    if let Some(impact) = non_empty(n.ProblemImpact.clone()) {
        labels.entry("impact".to_owned()).or_insert(impact);
    }
    let entities: Vec<String> = n
        .ImpactedEntities
        .iter()
        .flatten()
        .filter_map(|e| non_empty(e.name.clone()).or_else(|| non_empty(e.entity.clone())))
        .collect();
    let status = match n.State {
        State::Open => ProblemStatus::Firing,
        State::Resolved => ProblemStatus::Resolved,
    };
    let alert_status = match n.State {
        State::Open => AlertStatus::Firing,
        State::Resolved => AlertStatus::Resolved,
    };
    let mut alerts = evidence_alerts(n.ProblemDetails.as_ref(), alert_status);
    if alerts.is_empty() {
        alerts.push(Alert {
            fingerprint: pid.clone(),
            status: alert_status,
            summary: title.clone(),
            labels: BTreeMap::new(),
            starts_at: None,
            ends_at: None,
            url: non_empty(n.ProblemURL.clone()),
        });
    }
    Ok(Problem {
        source: SourceKind::Dynatrace,
        key,
        title,
        severity,
        service: labels.get("service").cloned(),
        status,
        description: non_empty(n.ImpactedEntity),
        url: non_empty(n.ProblemURL),
        labels,
        entities,
        alerts,
        display_id: non_empty(n.ProblemID),
    })
}

/// `{Tags}` is one comma-separated string: `env:prod, service:checkout, critical`.
fn parse_tags(tags: &str) -> BTreeMap<String, String> {
    tags.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|tag| match tag.split_once(':') {
            Some((k, v)) => (k.trim().to_owned(), v.trim().to_owned()),
            None => (tag.to_owned(), String::new()),
        })
        .collect()
}

/// Evidence events of a Problems API v2 object: each merged event becomes one alert.
fn evidence_alerts(details: Option<&Value>, status: AlertStatus) -> Vec<Alert> {
    let Some(list) =
        details.and_then(|d| d.get("evidenceDetails")).and_then(|e| e.get("details")).and_then(Value::as_array)
    else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|evidence| {
            let text = |k: &str| evidence.get(k).and_then(Value::as_str).map(str::to_owned);
            let entity = evidence.pointer("/entity/entityId/id").and_then(Value::as_str).unwrap_or_default();
            let name = text("displayName")?;
            let fingerprint = text("eventId").unwrap_or_else(|| format!("{name}@{entity}"));
            let entity_name = evidence.pointer("/entity/name").and_then(Value::as_str);
            let ended = evidence.get("endTime").and_then(Value::as_i64).is_some_and(|t| t > 0);
            let millis = |k: &str| {
                evidence
                    .get(k)
                    .and_then(Value::as_i64)
                    .filter(|t| *t > 0)
                    .and_then(|t| jiff::Timestamp::from_millisecond(t).ok())
            };
            Some(Alert {
                fingerprint,
                status: if ended { AlertStatus::Resolved } else { status },
                summary: match entity_name {
                    Some(entity) => format!("{name} on {entity}"),
                    None => name,
                },
                labels: BTreeMap::new(),
                starts_at: millis("startTime"),
                ends_at: millis("endTime"),
                url: None,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Severity;

    const OPEN: &str = include_str!("../../tests/fixtures/alerts/dynatrace_open.json");

    #[test]
    fn the_recommended_template_becomes_a_problem_keyed_by_pid() {
        let problem = parse(OPEN.as_bytes(), &SeverityMap::default()).unwrap();
        assert_eq!(problem.key.as_str(), "-1934612467497574917_1700000000000V2");
        assert_eq!(problem.display_id.as_deref(), Some("P-2311042"));
        assert_eq!(problem.severity, Severity::Sev1);
        assert_eq!(problem.service.as_deref(), Some("checkout"));
        assert_eq!(problem.labels.get("env").map(String::as_str), Some("prod"));
        assert_eq!(problem.entities, ["checkout-service"]);
        assert_eq!(problem.alerts.len(), 1);
    }

    #[test]
    fn unknown_states_are_refused_by_name() {
        let body = OPEN.replace("\"State\":\"OPEN\"", "\"State\":\"MAYBE\"");
        assert_eq!(parse(body.as_bytes(), &SeverityMap::default()).unwrap_err().field, "State");
    }
}
