//! Public identifiers: `INC-<n>` for incidents and `WR-<n>` for built-in desk tickets.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An incident's public id, `INC-<n>`; the same string in JSON, Slack text, URLs and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IncidentId(i64);

/// Why a string is not an id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not {expected}")]
pub struct IdError {
    input: String,
    expected: &'static str,
}

impl IncidentId {
    /// Wraps the store's sequence number.
    #[must_use]
    pub fn from_seq(seq: i64) -> Self {
        Self(seq)
    }

    /// The sequence number behind the id.
    #[must_use]
    pub fn seq(self) -> i64 {
        self.0
    }
}

impl fmt::Display for IncidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "INC-{}", self.0)
    }
}

fn parse_prefixed(input: &str, prefix: &str, expected: &'static str) -> Result<i64, IdError> {
    let error = || IdError { input: input.to_owned(), expected };
    let digits = input
        .get(..prefix.len())
        .filter(|p| p.eq_ignore_ascii_case(prefix))
        .map(|_| &input[prefix.len()..])
        .ok_or_else(error)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(error());
    }
    digits.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(error)
}

impl FromStr for IncidentId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_prefixed(s, "INC-", "an incident id like INC-42").map(Self)
    }
}

impl Serialize for IncidentId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IncidentId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A ticket key: `WR-<n>` on the built-in desk, a Jira key such as `OPS-154` elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TicketKey(String);

impl TicketKey {
    /// The built-in desk's key for sequence number `seq`.
    #[must_use]
    pub fn builtin(seq: i64) -> Self {
        Self(format!("WR-{seq}"))
    }

    /// Parses a built-in desk key (`WR-<n>`) into its sequence number.
    pub fn builtin_seq(s: &str) -> Result<i64, IdError> {
        parse_prefixed(s, "WR-", "a ticket key like WR-42")
    }

    /// Wraps a key handed out by an external desk.
    #[must_use]
    pub fn external(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TicketKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incident_ids_round_trip_through_text() {
        let id: IncidentId = "INC-42".parse().unwrap();
        assert_eq!(id.seq(), 42);
        assert_eq!(id.to_string(), "INC-42");
        assert_eq!("inc-7".parse::<IncidentId>().unwrap().seq(), 7);
    }

    #[test]
    fn malformed_incident_ids_are_rejected() {
        for bad in ["", "INC-", "INC-0", "INC-x1", "42", "WR-42", "INC-1 ", "INC--1"] {
            assert!(bad.parse::<IncidentId>().is_err(), "`{bad}` must not parse");
        }
    }

    #[test]
    fn builtin_ticket_keys_parse_back_to_their_sequence() {
        assert_eq!(TicketKey::builtin(9).as_str(), "WR-9");
        assert_eq!(TicketKey::builtin_seq("WR-9").unwrap(), 9);
        assert!(TicketKey::builtin_seq("OPS-9").is_err());
    }
}
