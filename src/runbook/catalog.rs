//! The runbook catalog: every `*.toml` file in `commands/`, loaded and checked at startup, in
//! `warroom check` and in CI, with every problem reported by file and field.
//!
//! ```text
//! commands/rollback.toml: executor.token_env: AWX_TOKEN is not set in the environment
//! commands/scale-out.toml: params[0].pattern: invalid regex: unclosed character class
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::domain::{Incident, Severity, SourceKind};
use crate::runbook::spec::{Match, RawRunbook, Runbook, SpecIssue};

/// A problem in a runbook file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunbookIssue {
    /// The file, as found in the directory given to [`RunbookCatalog::load`].
    pub file: PathBuf,
    /// The path of the field, such as `executor.token_env`; empty for the whole file.
    pub field: String,
    pub message: String,
}

impl fmt::Display for RunbookIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}: {}: {}", self.file.display(), self.field, self.message)
        }
    }
}

impl std::error::Error for RunbookIssue {}

/// What a runbook is matched against: the incident's source, service, severity and labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchInput<'a> {
    pub source: SourceKind,
    pub service: Option<&'a str>,
    pub severity: Severity,
    pub labels: &'a BTreeMap<String, String>,
}

impl<'a> MatchInput<'a> {
    /// What `incident` is matched by.
    #[must_use]
    pub fn from_incident(incident: &'a Incident) -> Self {
        Self {
            source: incident.source,
            service: incident.service.as_deref(),
            severity: incident.severity,
            labels: &incident.labels,
        }
    }
}

impl Match {
    /// Reports whether every criterion given holds for `input`.
    #[must_use]
    pub fn fits(&self, input: &MatchInput<'_>) -> bool {
        (self.sources.is_empty() || self.sources.contains(&input.source))
            && (self.services.is_empty()
                || input.service.is_some_and(|service| self.services.iter().any(|glob| glob.fits(service))))
            && (self.severities.is_empty() || self.severities.contains(&input.severity))
            && self.labels.iter().all(|(key, value)| input.labels.get(key) == Some(value))
    }
}

/// Every runbook, valid, with unique names, in file name order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunbookCatalog {
    runbooks: Vec<Runbook>,
}

impl RunbookCatalog {
    /// Loads every `*.toml` file in `dir` (other files, such as `README.md`, are ignored; a
    /// missing directory is an empty catalog). `env` looks up environment variables, to check that
    /// every secret a runbook names is set. Returns every problem of every file.
    pub fn load(dir: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, Vec<RunbookIssue>> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(error) => return Err(vec![file_issue(dir, format!("cannot read the directory: {error}"))]),
        };
        let mut files: Vec<PathBuf> = Vec::new();
        let mut issues = Vec::new();
        for entry in entries {
            match entry {
                Ok(entry) => {
                    let path = entry.path();
                    if path.extension().is_some_and(|ext| ext == "toml") && path.is_file() {
                        files.push(path);
                    }
                }
                Err(error) => issues.push(file_issue(dir, format!("cannot read the directory: {error}"))),
            }
        }
        files.sort();
        let mut sources = Vec::with_capacity(files.len());
        for file in files {
            match std::fs::read_to_string(&file) {
                Ok(text) => sources.push((file, text)),
                Err(error) => issues.push(file_issue(&file, format!("cannot read the file: {error}"))),
            }
        }
        match Self::from_sources(&sources, env) {
            Ok(catalog) if issues.is_empty() => Ok(catalog),
            Ok(_) => Err(issues),
            Err(more) => {
                issues.extend(more);
                Err(issues)
            }
        }
    }

    /// Builds a catalog from runbook files already read: `(file, text)` pairs, in order.
    pub fn from_sources(
        sources: &[(PathBuf, String)],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, Vec<RunbookIssue>> {
        let mut issues = Vec::new();
        let mut runbooks: Vec<Runbook> = Vec::new();
        let mut names: BTreeMap<String, &Path> = BTreeMap::new();
        for (file, text) in sources {
            let (name, parsed) = parse_file(text, env);
            let with_file =
                |issue: SpecIssue| RunbookIssue { file: file.clone(), field: issue.field, message: issue.message };
            let duplicate = name.as_ref().and_then(|name| names.get(name.as_str()).copied());
            match (duplicate, &name) {
                (Some(first), Some(name)) => issues.push(RunbookIssue {
                    file: file.clone(),
                    field: "name".to_owned(),
                    message: format!("duplicate runbook name {name:?}; {} already uses it", first.display()),
                }),
                (None, Some(name)) => {
                    names.insert(name.clone(), file);
                }
                _ => {}
            }
            match parsed {
                Ok(runbook) if duplicate.is_none() => runbooks.push(runbook),
                Ok(_) => {}
                Err(found) => issues.extend(found.into_iter().map(with_file)),
            }
        }
        if issues.is_empty() { Ok(Self { runbooks }) } else { Err(issues) }
    }

    /// Every runbook, in file name order.
    #[must_use]
    pub fn runbooks(&self) -> &[Runbook] {
        &self.runbooks
    }

    /// The runbook called `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&Runbook> {
        self.runbooks.iter().find(|r| r.name().as_str() == name)
    }

    /// The runbooks offered (as buttons) on an incident matching `input`.
    #[must_use]
    pub fn matching(&self, input: &MatchInput<'_>) -> Vec<&Runbook> {
        self.runbooks.iter().filter(|r| r.matches().fits(input)).collect()
    }

    /// The runbooks that run without a click when a new incident matching `input` opens.
    #[must_use]
    pub fn auto_for(&self, input: &MatchInput<'_>) -> Vec<&Runbook> {
        self.runbooks.iter().filter(|r| r.auto() && r.matches().fits(input)).collect()
    }
}

/// Every problem of the runbooks in `dir`, one line each (`file: field: message`), for
/// `warroom check` to print; empty when all are valid.
#[must_use]
pub fn check(dir: &Path, env: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
    match RunbookCatalog::load(dir, env) {
        Ok(_) => Vec::new(),
        Err(issues) => issues.iter().map(ToString::to_string).collect(),
    }
}

/// Reads and checks one runbook file's text: its name (if it could be read) and the runbook, or
/// every problem found.
fn parse_file(text: &str, env: &dyn Fn(&str) -> Option<String>) -> (Option<String>, Result<Runbook, Vec<SpecIssue>>) {
    let (raw, mut issues) = RawRunbook::parse(text);
    let Some(raw) = raw else { return (None, Err(issues)) };
    let name = raw.name.clone();
    let reported: Vec<String> = issues.iter().map(|i| i.field.clone()).collect();
    for (field, variable) in raw.secret_envs() {
        if env(&variable).is_none_or(|value| value.is_empty()) {
            issues.push(SpecIssue { field, message: format!("{variable} is not set in the environment") });
        }
    }
    match Runbook::try_from(raw) {
        Ok(runbook) if issues.is_empty() => (name, Ok(runbook)),
        Ok(_) => (name, Err(issues)),
        Err(error) => {
            // A value left out because it could not be read is not also "required".
            let covered = |field: &str| {
                reported.iter().any(|r| {
                    !r.is_empty()
                        && (field == r
                            || field.strip_prefix(r.as_str()).is_some_and(|rest| rest.starts_with(['.', '['])))
                })
            };
            issues.extend(error.0.into_iter().filter(|issue| !covered(&issue.field)));
            (name, Err(issues))
        }
    }
}

fn file_issue(file: &Path, message: String) -> RunbookIssue {
    RunbookIssue { file: file.to_path_buf(), field: String::new(), message }
}

#[cfg(test)]
pub(crate) mod tests;
