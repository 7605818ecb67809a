//! Loading `commands/`: the shipped runbooks, and every kind of mistake reported by file and field.

use std::path::PathBuf;

use super::*;

/// The environment CI gives the shipped runbooks.
pub(crate) fn shipped_env(name: &str) -> Option<String> {
    matches!(name, "AWX_TOKEN" | "AUTOSCALER_TOKEN").then(|| "secret".to_owned())
}

pub(crate) fn shipped_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("commands")
}

pub(crate) fn shipped() -> RunbookCatalog {
    RunbookCatalog::load(&shipped_dir(), &shipped_env).unwrap_or_else(|issues| {
        let lines: Vec<String> = issues.iter().map(ToString::to_string).collect();
        panic!("the shipped runbooks must be valid:\n{}", lines.join("\n"))
    })
}

/// Writes `files` into a fresh `commands/` directory and returns the issues of loading it, each as
/// `commands/<file>: <field>: <message>`.
fn issues_of(files: &[(&str, &str)]) -> Vec<String> {
    let root = tempfile::tempdir().expect("a temporary directory");
    let dir = root.path().join("commands");
    std::fs::create_dir(&dir).expect("the commands directory");
    for (name, text) in files {
        std::fs::write(dir.join(name), text).expect("the runbook file");
    }
    match RunbookCatalog::load(&dir, &shipped_env) {
        Ok(_) => Vec::new(),
        Err(issues) => issues
            .into_iter()
            .map(|issue| {
                let file = issue.file.strip_prefix(root.path()).unwrap_or(&issue.file).to_path_buf();
                RunbookIssue { file, ..issue }.to_string()
            })
            .collect(),
    }
}

const VALID: &str = r#"
name = "restart"
title = "Restart"

[button]
label = "Restart"
style = "primary"

[[params]]
name = "host"
default = "web-1"
pattern = "^[a-z0-9-]+$"

[executor]
kind = "awx"
base_url = "https://awx.example.com"
token_env = "AWX_TOKEN"
template_id = 7
extra_vars = { host = "{{ params.host }}" }

[allowed]
on_call = true
"#;

const HTTP: &str = r#"
name = "hook"
title = "Call the hook"

[button]
label = "Call"

[executor]
kind = "http"
url = "https://hooks.example.com/{{ service }}"
headers = { Authorization = { env = "HOOK_TOKEN" } }

[allowed]
users = ["U0ANA"]
"#;

const LOCAL: &str = r#"
name = "local"
title = "Run locally"

[button]
label = "Run"

[executor]
kind = "local"
program = "/usr/local/bin/fix"
args = ["{{ service }}"]

[allowed]
on_call = true
"#;

/// `text` with `from` replaced by `to`; panics (in a test) if `from` is not there.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "the fixture has no {from:?}");
    text.replacen(from, to, 1)
}

#[test]
fn the_shipped_runbooks_load_when_their_secrets_are_set() {
    let catalog = shipped();
    let names: Vec<&str> = catalog.runbooks().iter().map(|r| r.name().as_str()).collect();
    assert_eq!(names, ["cleanup-disk", "restart-service", "rollback", "scale-out"]);
    assert_eq!(catalog.get("rollback").map(|r| r.name().action_id()), Some("v1:run:rollback".to_owned()));
}

#[test]
fn the_shipped_runbooks_report_each_missing_secret_by_file_and_field() {
    let none = |_: &str| None;
    let dir = shipped_dir();
    let relative: Vec<String> = check(&dir, &none)
        .into_iter()
        .map(|line| line.replace(&format!("{}/", dir.parent().unwrap_or(&dir).display()), ""))
        .collect();
    assert_eq!(
        relative,
        [
            "commands/restart-service.toml: executor.token_env: AWX_TOKEN is not set in the environment",
            "commands/rollback.toml: executor.token_env: AWX_TOKEN is not set in the environment",
            "commands/scale-out.toml: executor.headers.Authorization: AUTOSCALER_TOKEN is not set in the environment",
        ]
    );
    assert_eq!(check(&dir, &shipped_env), Vec::<String>::new());
}

#[test]
fn a_missing_directory_is_an_empty_catalog_and_other_files_are_ignored() {
    let missing = RunbookCatalog::load(std::path::Path::new("/nonexistent/commands"), &shipped_env);
    assert_eq!(missing.map(|c| c.runbooks().len()), Ok(0));
    assert_eq!(issues_of(&[("README.md", "# not TOML = ["), ("notes.txt", "[[[")]), Vec::<String>::new());
    assert_eq!(issues_of(&[("restart.toml", VALID)]), Vec::<String>::new(), "the fixture itself is valid");
    assert_eq!(issues_of(&[("hook.toml", HTTP)]).len(), 1, "only HOOK_TOKEN is missing");
    assert_eq!(issues_of(&[("local.toml", LOCAL)]), Vec::<String>::new());
}

#[test]
fn each_kind_of_mistake_is_reported_with_its_file_and_field() {
    let top = |extra: &str| edit(VALID, "name = \"restart\"", &format!("name = \"restart\"\n{extra}"));
    #[rustfmt::skip]
    let cases: Vec<(&str, String, &str)> = vec![
        ("a TOML syntax error names its line",
            edit(VALID, "title = \"Restart\"", "title = Restart"),
            "commands/case.toml: invalid TOML at line 3, column 9"),
        ("an unknown top-level key",
            top("colour = \"red\""), "commands/case.toml: colour: unknown field `colour`"),
        ("an unknown key in a table",
            edit(VALID, "style = \"primary\"", "style = \"primary\"\ncolor = \"red\""),
            "commands/case.toml: button.color: unknown field `color`"),
        ("an unknown key in a parameter",
            edit(VALID, "default = \"web-1\"", "default = \"web-1\"\nregex = \".*\""),
            "commands/case.toml: params[0].regex: unknown field `regex`"),
        ("a top-level key written after a table",
            format!("{VALID}timeout = \"5m\"\n"),
            "commands/case.toml: allowed.timeout: unknown field `timeout`"),
        ("a value of the wrong type",
            edit(VALID, "template_id = 7", "template_id = \"seven\""),
            "commands/case.toml: executor.template_id: invalid type: string \"seven\""),
        ("a bad regex",
            edit(VALID, "^[a-z0-9-]+$", "^[a-z0-9-+$"),
            "commands/case.toml: params[0].pattern: invalid regex: unclosed character class"),
        ("an unknown executor kind",
            edit(VALID, "kind = \"awx\"", "kind = \"ssh\""),
            "commands/case.toml: executor.kind: unknown executor kind \"ssh\"; use \"awx\", \"http\" or \"local\""),
        ("a missing required executor setting",
            edit(VALID, "template_id = 7\n", ""),
            "commands/case.toml: executor.template_id: is required"),
        ("a setting of another executor kind",
            edit(VALID, "template_id = 7", "template_id = 7\nprogram = \"/bin/true\""),
            "commands/case.toml: executor.program: is not a setting of the awx executor"),
        ("a missing token env var",
            edit(VALID, "AWX_TOKEN", "OTHER_TOKEN"),
            "commands/case.toml: executor.token_env: OTHER_TOKEN is not set in the environment"),
        ("a missing header env var",
            HTTP.to_owned(),
            "commands/case.toml: executor.headers.Authorization: HOOK_TOKEN is not set in the environment"),
        ("an undeclared parameter in a template",
            edit(VALID, "{{ params.host }}", "{{ params.hostname }}"),
            "commands/case.toml: executor.extra_vars.host: `params.hostname` is not a declared parameter; declared parameters: host"),
        ("an undefined variable in a template",
            edit(VALID, "{{ params.host }}", "{{ foo.bar }}"),
            "commands/case.toml: executor.extra_vars.host: unknown variable `foo`"),
        ("a template syntax error",
            edit(VALID, "{{ params.host }}", "{{ params.host"),
            "commands/case.toml: executor.extra_vars.host: template syntax error"),
        ("a default that fails its own pattern",
            edit(VALID, "default = \"web-1\"", "default = \"Web 1\""),
            "commands/case.toml: params[0].default: the default \"Web 1\" does not pass its own rule: must match ^[a-z0-9-]+$"),
        ("a default that uses params",
            edit(VALID, "default = \"web-1\"", "default = \"{{ params.host }}\""),
            "commands/case.toml: params[0].default: `params` cannot be used here"),
        ("a parameter without a pattern or choices",
            edit(VALID, "pattern = \"^[a-z0-9-]+$\"\n", ""),
            "commands/case.toml: params[0]: needs a `pattern` (a regex the whole value must match) or `choices`"),
        ("an unknown style",
            edit(VALID, "style = \"primary\"", "style = \"purple\""),
            "commands/case.toml: button.style: unknown style \"purple\""),
        ("a label that does not fit a button",
            edit(VALID, "label = \"Restart\"", "label = \"Restart the service on every host now\""),
            "commands/case.toml: button.label: must be at most 30 characters, not 37"),
        ("an unknown severity",
            format!("{VALID}[match]\nseverities = [\"critical\"]\n"),
            "commands/case.toml: match.severities: unknown severity \"critical\"; use sev1, sev2, sev3 or sev4"),
        ("an unknown source",
            format!("{VALID}[match]\nsources = [\"nagios\"]\n"),
            "commands/case.toml: match.sources: unknown source \"nagios\""),
        ("a bad name",
            edit(VALID, "name = \"restart\"", "name = \"Restart!\""),
            "commands/case.toml: name: \"Restart!\" is not a runbook name"),
        ("a bad timeout",
            top("timeout = \"soon\""),
            "commands/case.toml: timeout: expected a duration like \"15m\""),
        ("an automatic runbook without a match",
            top("auto = true"),
            "commands/case.toml: auto: an automatic runbook needs a [match]"),
        ("nobody allowed to run it",
            edit(VALID, "on_call = true", "on_call = false"),
            "commands/case.toml: allowed: nobody may run this runbook"),
        ("a group that is not a Slack user group id",
            edit(VALID, "on_call = true", "groups = [\"sre\"]"),
            "commands/case.toml: allowed.groups: expected Slack user group ids (S…), got \"sre\""),
        ("a local program that is a shell",
            edit(LOCAL, "/usr/local/bin/fix", "/bin/sh"),
            "commands/case.toml: executor.program: \"/bin/sh\" is a shell"),
        ("a local program given as a template",
            edit(LOCAL, "/usr/local/bin/fix", "/usr/local/bin/{{ service }}"),
            "commands/case.toml: executor.program: \"/usr/local/bin/{{ service }}\" must be a fixed path"),
        ("a webhook URL that does not render to a URL",
            edit(&edit(HTTP, "https://hooks.example.com/{{ service }}", "{{ service }}"), "HOOK_TOKEN", "AWX_TOKEN"),
            "commands/case.toml: executor.url: expected an http(s) URL"),
        ("a missing executor",
            edit(VALID, "[executor]", "[unused]"),
            "commands/case.toml: unused: unknown field `unused`"),
    ];
    for (why, text, expected) in cases {
        let issues = issues_of(&[("case.toml", &text)]);
        assert!(
            issues.iter().any(|issue| issue.starts_with(expected)),
            "{why}: expected an issue starting with\n  {expected}\ngot\n  {}",
            issues.join("\n  ")
        );
    }
}

#[test]
fn every_problem_of_a_bad_file_is_reported_at_once() {
    let text = r#"
name = "Bad Name"
colour = "red"

[button]
label = "Fix"
style = "purple"

[match]
sources = ["nagios"]
severities = ["sev9"]

[[params]]
name = "version"
pattern = "[0-9"

[[params]]
name = "count"
default = "many"
pattern = "^[0-9]+$"
typo = 1

[executor]
kind = "awx"
base_url = "awx.example.com"
token_env = "MISSING_TOKEN"
template_id = "seven"
extra_vars = { v = "{{ params.versoin }}", w = "{{ nothing }}" }

[allowed]
groups = ["sre"]
"#;
    let fields: Vec<String> = issues_of(&[("bad.toml", text)])
        .into_iter()
        .map(|issue| issue.split(": ").nth(1).unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        fields,
        [
            "colour",
            "executor.template_id",
            "params[1].typo",
            "executor.token_env",
            "name",
            "title",
            "button.style",
            "match.sources",
            "match.severities",
            "params[0].pattern",
            "params[1].default",
            "executor.base_url",
            "executor.extra_vars.v",
            "executor.extra_vars.w",
            "allowed.groups",
        ]
    );
}

#[test]
fn a_runbook_name_used_twice_is_reported_on_the_second_file() {
    let issues = issues_of(&[("a.toml", VALID), ("b.toml", VALID)]);
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert!(issues[0].starts_with("commands/b.toml: name: duplicate runbook name \"restart\";"), "{issues:?}");
    assert!(issues[0].ends_with("commands/a.toml already uses it"), "{issues:?}");
}

#[test]
fn runbooks_are_offered_by_source_service_glob_severity_and_labels() {
    let catalog = shipped();
    let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    };
    let disk_full = labels(&[("alertname", "DiskFull"), ("instance", "db-1:9100")]);
    let none = labels(&[]);
    #[rustfmt::skip]
    let cases: Vec<(&str, MatchInput<'_>, Vec<&str>)> = vec![
        ("a sev1 Alertmanager problem of checkout gets everything but the disk cleanup",
            MatchInput { source: SourceKind::Alertmanager, service: Some("checkout"), severity: Severity::Sev1, labels: &none },
            vec!["restart-service", "rollback", "scale-out"]),
        ("a sev3 problem is no reason to roll back",
            MatchInput { source: SourceKind::Dynatrace, service: Some("checkout"), severity: Severity::Sev3, labels: &none },
            vec!["restart-service", "scale-out"]),
        ("a service that is not listed is not scaled",
            MatchInput { source: SourceKind::Dynatrace, service: Some("billing"), severity: Severity::Sev2, labels: &none },
            vec!["restart-service", "rollback"]),
        ("DiskFull on a db-* service matches the glob and the label",
            MatchInput { source: SourceKind::Alertmanager, service: Some("db-orders"), severity: Severity::Sev3, labels: &disk_full },
            vec!["cleanup-disk", "restart-service"]),
        ("DiskFull from another source does not match",
            MatchInput { source: SourceKind::Generic, service: Some("db"), severity: Severity::Sev3, labels: &disk_full },
            vec!["restart-service"]),
        ("no DiskFull label, no cleanup",
            MatchInput { source: SourceKind::Alertmanager, service: Some("db"), severity: Severity::Sev4, labels: &none },
            vec![]),
        ("an incident declared in Slack gets no runbook from these",
            MatchInput { source: SourceKind::Slack, service: None, severity: Severity::Sev1, labels: &none },
            vec![]),
    ];
    for (why, input, expected) in cases {
        let names: Vec<&str> = catalog.matching(&input).iter().map(|r| r.name().as_str()).collect();
        assert_eq!(names, expected, "{why}");
    }
}

#[test]
fn only_automatic_runbooks_run_without_a_click() {
    let catalog = shipped();
    let disk_full: BTreeMap<String, String> = [("alertname".to_owned(), "DiskFull".to_owned())].into();
    let input = MatchInput {
        source: SourceKind::Alertmanager,
        service: Some("db"),
        severity: Severity::Sev2,
        labels: &disk_full,
    };
    let auto: Vec<&str> = catalog.auto_for(&input).iter().map(|r| r.name().as_str()).collect();
    assert_eq!(auto, ["cleanup-disk"]);
    assert_eq!(catalog.matching(&input).len(), 3, "the others are still offered as buttons");
}

#[test]
fn an_issue_displays_as_file_field_message() {
    let issue = RunbookIssue {
        file: PathBuf::from("commands/rollback.toml"),
        field: "executor.token_env".to_owned(),
        message: "AWX_TOKEN is not set in the environment".to_owned(),
    };
    assert_eq!(
        issue.to_string(),
        "commands/rollback.toml: executor.token_env: AWX_TOKEN is not set in the environment"
    );
    let whole_file = RunbookIssue { field: String::new(), ..issue };
    assert_eq!(whole_file.to_string(), "commands/rollback.toml: AWX_TOKEN is not set in the environment");
}
