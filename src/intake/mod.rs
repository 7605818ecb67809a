//! Intake: each alert source's payload becomes a [`Problem`], or an [`IntakeError`] naming the
//! offending field. Pure functions over bytes; the HTTP layer only routes and authenticates.

pub mod alertmanager;
pub mod dynatrace;
pub mod generic;
pub mod keptn;

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::domain::{Problem, Severity, SourceKind};

/// Why a payload was refused; `field` is a JSON path (`alerts[0].fingerprint`) or `body`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct IntakeError {
    pub field: String,
    pub message: String,
}

impl IntakeError {
    /// An error about `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// Source words → severity, overridable in config (`[severity.alertmanager]`, `[severity.dynatrace]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SeverityMap {
    /// Alertmanager label `severity` value → severity.
    pub alertmanager: BTreeMap<String, Severity>,
    /// Dynatrace `ProblemSeverity` → severity.
    pub dynatrace: BTreeMap<String, Severity>,
    /// Used when a source gives no severity at all.
    pub fallback: Severity,
}

impl Default for SeverityMap {
    fn default() -> Self {
        let words = |pairs: &[(&str, Severity)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
        Self {
            alertmanager: words(&[
                ("critical", Severity::Sev1),
                ("error", Severity::Sev2),
                ("high", Severity::Sev2),
                ("warning", Severity::Sev3),
                ("info", Severity::Sev4),
                ("none", Severity::Sev4),
            ]),
            dynatrace: words(&[
                ("AVAILABILITY", Severity::Sev1),
                ("ERROR", Severity::Sev2),
                ("PERFORMANCE", Severity::Sev3),
                ("RESOURCE_CONTENTION", Severity::Sev3),
                ("CUSTOM_ALERT", Severity::Sev3),
            ]),
            fallback: Severity::Sev3,
        }
    }
}

/// Parses a delivery from `source`.
pub fn parse(source: SourceKind, body: &[u8], severities: &SeverityMap) -> Result<Problem, IntakeError> {
    match source {
        SourceKind::Alertmanager => alertmanager::parse(body, severities),
        SourceKind::Dynatrace => dynatrace::parse(body, severities),
        SourceKind::Generic => generic::parse(body, severities),
        SourceKind::Keptn => keptn::parse(body, severities),
        SourceKind::Slack => Err(IntakeError::new("source", "slack incidents are declared with /incident declare")),
    }
}

/// Deserializes `body` into `T`, turning serde's error into one that names the field.
pub fn from_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, IntakeError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(IntakeError::new("body", "the body is empty: send a JSON object"));
    }
    // serde would read a struct from a JSON array too; a delivery is always an object.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        let valid = serde_json::from_slice::<serde_json::Value>(body).is_ok();
        let message = if valid { "expected a JSON object" } else { "malformed JSON: expected a JSON object" };
        return Err(IntakeError::new("body", message));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if matches!(inner.classify(), serde_json::error::Category::Syntax | serde_json::error::Category::Eof) {
            return IntakeError::new("body", format!("malformed JSON: {inner}"));
        }
        describe_data_error(&path, &inner)
    })?;
    deserializer.end().map_err(|e| IntakeError::new("body", format!("malformed JSON: trailing characters ({e})")))?;
    Ok(value)
}

fn describe_data_error(path: &str, inner: &serde_json::Error) -> IntakeError {
    let message = strip_position(&inner.to_string());
    let at_root = path == "." || path.is_empty();
    if let Some(name) = message.strip_prefix("missing field `").and_then(|m| m.split('`').next()) {
        let field = if at_root { name.to_owned() } else { format!("{path}.{name}") };
        return IntakeError::new(field, format!("is required ({message})"));
    }
    if at_root {
        return IntakeError::new("body", format!("expected a JSON object: {message}"));
    }
    IntakeError::new(path, message)
}

/// serde_json appends " at line L column C"; the field path says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message.to_owned(),
    }
}

/// Parses an RFC 3339 time (fractions up to nanoseconds); Go's zero time means "not set".
pub(crate) fn parse_time(field: &str, value: &str) -> Result<Option<Timestamp>, IntakeError> {
    if value.is_empty() || value.starts_with("0001-01-01T00:00:00") {
        return Ok(None);
    }
    value.parse::<Timestamp>().map(Some).map_err(|e| IntakeError::new(field, format!("expected an RFC 3339 time: {e}")))
}

/// Requires a non-blank string.
pub fn required_text(field: &str, value: &str) -> Result<String, IntakeError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(IntakeError::new(field, "must not be empty"));
    }
    Ok(trimmed.to_owned())
}

/// Empty strings become `None`.
pub fn non_empty(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Shape {
        key: String,
        items: Vec<Item>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Item {
        n: u32,
    }

    #[test]
    fn errors_name_the_offending_field() {
        let table: [(&str, &str); 7] = [
            ("", "body"),
            ("{", "body"),
            ("null", "body"),
            ("[1]", "body"),
            (r#"{"items": []}"#, "key"),
            (r#"{"key": 1, "items": []}"#, "key"),
            (r#"{"key": "k", "items": [{"n": "x"}]}"#, "items[0].n"),
        ];
        for (body, field) in table {
            let error = from_json::<Shape>(body.as_bytes()).unwrap_err();
            assert_eq!(error.field, field, "body {body:?} gave {error}");
        }
    }

    #[test]
    fn go_zero_time_means_not_set_and_nanoseconds_parse() {
        assert_eq!(parse_time("t", "0001-01-01T00:00:00Z").unwrap(), None);
        assert!(parse_time("t", "2026-11-21T22:19:15.745620355Z").unwrap().is_some());
        assert_eq!(parse_time("t", "yesterday").unwrap_err().field, "t");
    }
}
