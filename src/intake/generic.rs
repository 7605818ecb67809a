//! warroom's own JSON format for tools without a native integration.
//!
//! `{"key": "disk-db-1", "title": "...", "status": "firing"|"resolved", "severity": "sev2"|"critical",
//! "service": "db", "description": "...", "url": "https://...", "labels": {"k": "v"}, "entities": ["db-1"]}`;
//! `key` and `title` are required. Unknown fields are kept in the stored raw delivery.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{IntakeError, SeverityMap, from_json, non_empty, required_text};
use crate::domain::{Alert, AlertStatus, Problem, ProblemKey, ProblemStatus, Severity, SourceKind};

#[derive(Debug, Deserialize)]
struct GenericProblem {
    key: String,
    title: String,
    #[serde(default = "firing")]
    status: Status,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    service: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    entities: Vec<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Firing,
    Resolved,
}

fn firing() -> Status {
    Status::Firing
}

/// Parses a generic problem.
pub fn parse(body: &[u8], severities: &SeverityMap) -> Result<Problem, IntakeError> {
    let p: GenericProblem = from_json(body)?;
    let key_text = required_text("key", &p.key)?;
    let key = ProblemKey::new(&key_text).ok_or_else(|| IntakeError::new("key", "must not be empty"))?;
    let title = required_text("title", &p.title)?;
    let severity = match p.severity.as_deref() {
        None => severities.fallback,
        Some(word) => word.parse::<Severity>().map_err(|e| IntakeError::new("severity", e.to_string()))?,
    };
    let url = non_empty(p.url);
    if let Some(link) = &url
        && url::Url::parse(link).is_err()
    {
        return Err(IntakeError::new("url", format!("`{link}` is not an absolute URL")));
    }
    let (status, alert_status) = match p.status {
        Status::Firing => (ProblemStatus::Firing, AlertStatus::Firing),
        Status::Resolved => (ProblemStatus::Resolved, AlertStatus::Resolved),
    };
    Ok(Problem {
        source: SourceKind::Generic,
        alerts: vec![Alert {
            fingerprint: key_text,
            status: alert_status,
            summary: title.clone(),
            labels: p.labels.clone(),
            starts_at: None,
            ends_at: None,
            url: url.clone(),
        }],
        key,
        title,
        severity,
        service: non_empty(p.service),
        status,
        description: non_empty(p.description),
        url,
        labels: p.labels,
        entities: p.entities,
        display_id: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_problem_needs_only_key_and_title() {
        let problem = parse(br#"{"key":"disk-db-1","title":"Disk full"}"#, &SeverityMap::default()).unwrap();
        assert_eq!((problem.status, problem.severity), (ProblemStatus::Firing, Severity::Sev3));
    }

    #[test]
    fn bad_fields_are_named() {
        let table = [
            (r#"{"title":"t"}"#, "key"),
            (r#"{"key":"k"}"#, "title"),
            (r#"{"key":" ","title":"t"}"#, "key"),
            (r#"{"key":"k","title":"t","status":"burning"}"#, "status"),
            (r#"{"key":"k","title":"t","severity":"sev9"}"#, "severity"),
            (r#"{"key":"k","title":"t","labels":{"a":1}}"#, "labels.a"),
            (r#"{"key":"k","title":"t","entities":"db-1"}"#, "entities"),
            (r#"{"key":"k","title":"t","url":"not a url"}"#, "url"),
            (r#"{"key":5,"title":"t"}"#, "key"),
        ];
        for (body, field) in table {
            let error = parse(body.as_bytes(), &SeverityMap::default()).unwrap_err();
            assert_eq!(error.field, field, "{body} gave {error}");
        }
    }
}
