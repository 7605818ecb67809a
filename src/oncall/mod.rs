//! On-call lookup: who should be invited to a problem's war room right now.
//!
//! This module defines the port that every on-call provider implements ([`OnCall`]), the
//! vocabulary it speaks ([`PersonRef`], [`OnCallAnswer`], [`Shift`], [`Service`]) and its errors
//! ([`OnCallError`]). The built-in provider, a rotation described in warroom's own configuration,
//! lives in [`rotation`]; its configuration types live in [`settings`]. External providers such as
//! PagerDuty and Opsgenie implement the same trait elsewhere.
//!
//! Providers answer with [`PersonRef`]s: either Slack user ids, which can be invited directly, or
//! emails, which the caller resolves with Slack's `users.lookupByEmail` first.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub mod cached;
pub mod opsgenie;
pub mod pagerduty;
pub mod providers;
pub mod rotation;
pub mod router;
pub mod settings;

pub use rotation::{BuiltinRotation, Handoff, Rotation, Rotations};
pub use settings::{OnCallSettings, OverrideSettings, RouteSettings, SettingsIssue, TeamSettings};

/// A person as configured or as a provider returns them.
///
/// A person is either a Slack user id (`U…` or `W…`), which can be invited as is, or an email,
/// which has to be resolved to a Slack user with `users.lookupByEmail` first. Parse one from a
/// string with [`str::parse`]; it serializes back to the same string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum PersonRef {
    /// A Slack user id such as `U012ABC` (or `W…` for Enterprise Grid users).
    SlackId(String),
    /// An email address to resolve with `users.lookupByEmail`.
    Email(String),
}

/// The error returned when a string is neither a Slack user id nor an email.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a Slack user id (U…) or an email")]
pub struct ParsePersonRefError {
    input: String,
}

impl ParsePersonRefError {
    /// Returns the string that could not be parsed.
    pub fn input(&self) -> &str {
        &self.input
    }
}

impl PersonRef {
    /// Returns the Slack user id or the email as written.
    pub fn as_str(&self) -> &str {
        match self {
            PersonRef::SlackId(id) => id,
            PersonRef::Email(email) => email,
        }
    }
}

impl FromStr for PersonRef {
    type Err = ParsePersonRefError;

    /// Parses `U012ABC` or `W012ABC` (matching `^[UW][A-Z0-9]{2,}$`) as a Slack user id and
    /// anything shaped like `local@domain.tld` as an email.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if is_slack_id(s, b"UW") {
            Ok(PersonRef::SlackId(s.to_owned()))
        } else if is_email(s) {
            Ok(PersonRef::Email(s.to_owned()))
        } else {
            Err(ParsePersonRefError { input: s.to_owned() })
        }
    }
}

impl TryFrom<String> for PersonRef {
    type Error = ParsePersonRefError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<PersonRef> for String {
    fn from(person: PersonRef) -> Self {
        match person {
            PersonRef::SlackId(id) => id,
            PersonRef::Email(email) => email,
        }
    }
}

impl fmt::Display for PersonRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Reports whether `s` is a Slack id: one of the `prefixes`, then at least two of `A-Z0-9`.
pub(crate) fn is_slack_id(s: &str, prefixes: &[u8]) -> bool {
    match s.as_bytes() {
        [first, rest @ ..] => {
            prefixes.contains(first)
                && rest.len() >= 2
                && rest.iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        }
        [] => false,
    }
}

/// Reports whether `s` looks like an email: a non-empty local part, one `@` and a dotted domain,
/// without whitespace.
fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A provider's answer to "who is on call for this service at this moment?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnCallAnswer {
    /// The team (rotation, schedule or escalation policy) that the service was routed to.
    pub team: String,
    /// The people on call right now, to be invited first.
    pub primary: Vec<PersonRef>,
    /// The next shift, when the provider knows it.
    pub next: Option<Shift>,
    /// A Slack user group id (`S…`) to invite as well, such as the team's leads.
    pub lead_group: Option<String>,
    /// The next escalation level, to page when nobody acknowledges; it may be empty.
    pub escalation: Vec<PersonRef>,
    /// Why this answer comes from the team's fallback instead of its provider, to be said in the
    /// channel; `None` when the provider answered itself.
    pub fallback: Option<String>,
}

/// A shift: the people on call from a given instant on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shift {
    /// The people on call during the shift.
    pub people: Vec<PersonRef>,
    /// The instant at which the shift starts.
    pub starts_at: jiff::Timestamp,
}

/// The service a problem is about, as far as routing to a team is concerned.
#[derive(Debug, Clone, Copy)]
pub struct Service<'a> {
    /// The name of the affected service, when the problem names one.
    pub name: Option<&'a str>,
    /// The problem's labels, such as `team = "db"`.
    pub labels: &'a BTreeMap<String, String>,
}

impl Service<'_> {
    /// Describes the service for error messages: its name, or its labels when it has no name.
    pub fn describe(&self) -> String {
        match self.name {
            Some(name) => name.to_owned(),
            None if self.labels.is_empty() => "(unnamed service without labels)".to_owned(),
            None => {
                let labels: Vec<String> = self.labels.iter().map(|(key, value)| format!("{key}={value}")).collect();
                format!("(unnamed service with labels {})", labels.join(", "))
            }
        }
    }
}

/// An on-call provider: answers who is on call for a service at an instant.
#[async_trait::async_trait]
pub trait OnCall: Send + Sync {
    /// Returns who is on call for `service` at the instant `at`.
    async fn on_call(&self, service: Service<'_>, at: jiff::Timestamp) -> Result<OnCallAnswer, OnCallError>;
}

/// The ways an on-call lookup can fail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OnCallError {
    /// No route matches the service and no default team is configured.
    #[error("no on-call team for service {service}: no route matches and no default team is set")]
    NoTeam {
        /// A description of the service that could not be routed.
        service: String,
    },
    /// The provider failed to answer.
    #[error("on-call provider {provider} failed: {message}")]
    Provider {
        /// The provider's name, such as `pagerduty` or `builtin`.
        provider: &'static str,
        /// What went wrong, in the provider's words where possible.
        message: String,
        /// How long to wait before asking again, when the provider said so.
        retry_after: Option<Duration>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn person_refs_parse_slack_ids_and_emails_and_reject_anything_else() {
        let slack = |s: &str| Ok(PersonRef::SlackId(s.to_owned()));
        let email = |s: &str| Ok(PersonRef::Email(s.to_owned()));
        let cases: &[(&str, Result<PersonRef, ()>)] = &[
            ("U012ABC", slack("U012ABC")),
            ("W012ABC", slack("W012ABC")),
            ("U01", slack("U01")),
            ("a@b.c", email("a@b.c")),
            ("bob@example.com", email("bob@example.com")),
            ("first.last+oncall@mail.example.org", email("first.last+oncall@mail.example.org")),
            ("U0", Err(())),
            ("u012abc", Err(())),
            ("U012abc", Err(())),
            ("S012ABC", Err(())),
            ("bob", Err(())),
            ("", Err(())),
            ("@example.com", Err(())),
            ("bob@", Err(())),
            ("bob@localhost", Err(())),
            ("bob@.com", Err(())),
            ("bob@example.", Err(())),
            ("bob@@example.com", Err(())),
            ("bob smith@example.com", Err(())),
            (" U012ABC", Err(())),
        ];
        for (input, expected) in cases {
            let parsed = input.parse::<PersonRef>().map_err(|_| ());
            assert_eq!(&parsed, expected, "parsing {input:?}");
        }
    }

    #[test]
    fn a_person_ref_parse_error_says_what_was_expected() {
        let error = "bob".parse::<PersonRef>().unwrap_err();
        assert_eq!(error.to_string(), "expected a Slack user id (U…) or an email");
        assert_eq!(error.input(), "bob");
    }

    #[test]
    fn person_refs_round_trip_through_serde_as_plain_strings() {
        let people: Vec<PersonRef> = serde_json::from_str(r#"["U01AAAA", "bob@example.com"]"#).unwrap();
        assert_eq!(
            people,
            vec![PersonRef::SlackId("U01AAAA".to_owned()), PersonRef::Email("bob@example.com".to_owned()),]
        );
        assert_eq!(serde_json::to_string(&people).unwrap(), r#"["U01AAAA","bob@example.com"]"#);
        assert!(serde_json::from_str::<PersonRef>(r#""bob""#).is_err());
    }

    #[test]
    fn a_service_without_a_name_is_described_by_its_labels() {
        let labels = BTreeMap::from([("team".to_owned(), "db".to_owned())]);
        let empty = BTreeMap::new();
        let cases = [
            (Some("checkout"), &labels, "checkout"),
            (None, &labels, "(unnamed service with labels team=db)"),
            (None, &empty, "(unnamed service without labels)"),
        ];
        for (name, labels, expected) in cases {
            assert_eq!(Service { name, labels }.describe(), expected);
        }
    }
}
