//! Severity `sev1` (critical) … `sev4` (low), and the source vocabularies that map onto it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How bad an incident is: `sev1` is the worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Sev1,
    Sev2,
    Sev3,
    Sev4,
}

/// A severity that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity `{0}`: use sev1…sev4, 1…4, or critical, high, error, warning, info, none")]
pub struct SeverityError(pub String);

impl Severity {
    /// All severities, worst first.
    pub const ALL: [Self; 4] = [Self::Sev1, Self::Sev2, Self::Sev3, Self::Sev4];

    /// The contract's word: `sev1` … `sev4`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sev1 => "sev1",
            Self::Sev2 => "sev2",
            Self::Sev3 => "sev3",
            Self::Sev4 => "sev4",
        }
    }

    /// The level as a number, 1 … 4.
    #[must_use]
    pub fn level(self) -> u8 {
        match self {
            Self::Sev1 => 1,
            Self::Sev2 => 2,
            Self::Sev3 => 3,
            Self::Sev4 => 4,
        }
    }

    /// Reads `sev2` or `2` only (what people type), not source words.
    pub fn parse_level(input: &str) -> Result<Self, SeverityError> {
        let trimmed = input.trim();
        let digits = trimmed.strip_prefix("sev").or_else(|| trimmed.strip_prefix("SEV")).unwrap_or(trimmed);
        match digits {
            "1" => Ok(Self::Sev1),
            "2" => Ok(Self::Sev2),
            "3" => Ok(Self::Sev3),
            "4" => Ok(Self::Sev4),
            _ => Err(SeverityError(input.to_owned())),
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Accepts `sevN`, `N`, and the Alertmanager words with their default mapping
/// (critical→sev1, error/high→sev2, warning→sev3, info/none/low→sev4).
impl FromStr for Severity {
    type Err = SeverityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(level) = Self::parse_level(s) {
            return Ok(level);
        }
        match s.trim().to_ascii_lowercase().as_str() {
            "critical" => Ok(Self::Sev1),
            "error" | "high" => Ok(Self::Sev2),
            "warning" | "medium" => Ok(Self::Sev3),
            "info" | "none" | "low" => Ok(Self::Sev4),
            _ => Err(SeverityError(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_spelling_maps_to_its_severity() {
        let table = [
            ("sev1", Severity::Sev1),
            ("2", Severity::Sev2),
            ("SEV3", Severity::Sev3),
            ("critical", Severity::Sev1),
            ("error", Severity::Sev2),
            ("high", Severity::Sev2),
            ("warning", Severity::Sev3),
            ("info", Severity::Sev4),
            ("none", Severity::Sev4),
        ];
        for (input, expected) in table {
            assert_eq!(input.parse::<Severity>().unwrap(), expected, "input `{input}`");
        }
    }

    #[test]
    fn unknown_severities_are_errors_that_name_the_input() {
        let error = "sev5".parse::<Severity>().unwrap_err();
        assert!(error.to_string().contains("sev5"));
        assert!(Severity::parse_level("critical").is_err(), "people type levels, not source words");
    }
}
