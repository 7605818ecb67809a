//! keptn CloudEvents (keptn v1 is end-of-life): problem events only
//! (`sh.keptn.events.problem`), keyed by `shkeptncontext`.

use serde::Deserialize;

use super::{IntakeError, SeverityMap, from_json, non_empty, required_text};
use crate::domain::{Alert, AlertStatus, Problem, ProblemKey, ProblemStatus, SourceKind};

/// The only CloudEvent type warroom accepts from keptn.
pub const PROBLEM_EVENT: &str = "sh.keptn.events.problem";

#[derive(Debug, Deserialize)]
struct CloudEvent {
    specversion: String,
    #[serde(rename = "type")]
    kind: String,
    shkeptncontext: String,
    data: ProblemData,
}

#[derive(Debug, Deserialize)]
#[expect(non_snake_case, reason = "keptn's problem payload field names")]
struct ProblemData {
    State: String,
    ProblemTitle: String,
    #[serde(default)]
    ProblemID: Option<String>,
    #[serde(default)]
    ProblemURL: Option<String>,
    #[serde(default)]
    ImpactedEntity: Option<String>,
    #[serde(default)]
    project: Option<String>,
    #[serde(default)]
    stage: Option<String>,
    #[serde(default)]
    service: Option<String>,
}

/// Parses a keptn problem CloudEvent.
pub fn parse(body: &[u8], severities: &SeverityMap) -> Result<Problem, IntakeError> {
    let event: CloudEvent = from_json(body)?;
    if event.specversion != "1.0" {
        return Err(IntakeError::new("specversion", "expected CloudEvents \"1.0\""));
    }
    if event.kind != PROBLEM_EVENT {
        return Err(IntakeError::new(
            "type",
            format!("only `{PROBLEM_EVENT}` events are accepted, got `{}`", event.kind),
        ));
    }
    let context = required_text("shkeptncontext", &event.shkeptncontext)?;
    let key = ProblemKey::new(&context).ok_or_else(|| IntakeError::new("shkeptncontext", "must not be empty"))?;
    let data = event.data;
    let (status, alert_status) = match data.State.as_str() {
        "OPEN" => (ProblemStatus::Firing, AlertStatus::Firing),
        "RESOLVED" | "CLOSED" => (ProblemStatus::Resolved, AlertStatus::Resolved),
        other => {
            return Err(IntakeError::new(
                "data.State",
                format!("unknown state `{other}`: expected OPEN, RESOLVED or CLOSED"),
            ));
        }
    };
    let title = required_text("data.ProblemTitle", &data.ProblemTitle)?;
    let mut labels = std::collections::BTreeMap::new();
    for (name, value) in [("project", &data.project), ("stage", &data.stage)] {
        if let Some(v) = non_empty(value.clone()) {
            labels.insert(name.to_owned(), v);
        }
    }
    Ok(Problem {
        source: SourceKind::Keptn,
        alerts: vec![Alert {
            fingerprint: context,
            status: alert_status,
            summary: title.clone(),
            labels: labels.clone(),
            starts_at: None,
            ends_at: None,
            url: non_empty(data.ProblemURL.clone()),
        }],
        key,
        title,
        severity: severities.fallback,
        service: non_empty(data.service),
        status,
        description: non_empty(data.ImpactedEntity),
        url: non_empty(data.ProblemURL),
        labels,
        entities: Vec::new(),
        display_id: non_empty(data.ProblemID),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN: &str = include_str!("../../tests/fixtures/alerts/keptn_problem_open.json");

    #[test]
    fn a_problem_event_is_keyed_by_its_keptn_context() {
        let problem = parse(OPEN.as_bytes(), &SeverityMap::default()).unwrap();
        assert_eq!(problem.key.as_str(), "a3e5f16d-5b5c-4b0d-8a0c-3d4e5f6a7b8c");
        assert_eq!(problem.service.as_deref(), Some("carts"));
    }

    #[test]
    fn other_keptn_events_are_refused_by_type() {
        let body = OPEN.replace(PROBLEM_EVENT, "sh.keptn.event.action.triggered");
        assert_eq!(parse(body.as_bytes(), &SeverityMap::default()).unwrap_err().field, "type");
    }
}
