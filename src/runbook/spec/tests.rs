//! Reading one runbook file into typed values.

use super::*;

const AWX: &str = r#"
name = "rollback"
title = "Roll back"
description = "  Goes back one version.  "
confirm = "Roll back {{ service }}?"
timeout = "1h 30m"
requires_previous_deployment = true

[button]
label = "Roll back"
style = "danger"

[match]
sources = ["alertmanager", "dynatrace"]
services = ["checkout", "pay*"]
severities = ["sev1", "sev2"]
labels = { env = "prod" }

[[params]]
name = "version"
description = "Version to roll back to"
default = "{{ deployment.previous.version }}"
pattern = "v?[0-9]+(\\.[0-9]+){1,2}"

[[params]]
name = "colour"
choices = ["blue", "green"]
default = "blue"

[executor]
kind = "awx"
base_url = "https://awx.example.com/"
api_path = "/api/controller/v2/"
token_env = "AWX_TOKEN"
template_id = 42
template_kind = "workflow"
extra_vars = { service = "{{ service }}", version = "{{ params.version }}", hosts = ["{{ labels.instance }}"], retries = 3 }
limit = "{{ labels.instance }}"

[allowed]
groups = ["S0SRE"]
on_call = true
users = ["U0ANA"]
"#;

fn runbook(text: &str) -> Result<Runbook, Vec<SpecIssue>> {
    let (raw, issues) = RawRunbook::parse(text);
    match raw {
        Some(raw) if issues.is_empty() => Runbook::try_from(raw).map_err(|e| e.0),
        _ => Err(issues),
    }
}

#[test]
fn a_complete_runbook_becomes_typed_values() {
    let runbook = runbook(AWX).expect("the example is valid");
    assert_eq!(runbook.name().as_str(), "rollback");
    assert_eq!(runbook.name().action_id(), "v1:run:rollback");
    assert_eq!(runbook.description(), "Goes back one version.");
    assert_eq!(runbook.button(), &Button { label: "Roll back".to_owned(), style: ButtonStyle::Danger });
    assert_eq!(runbook.matches().sources, [SourceKind::Alertmanager, SourceKind::Dynatrace]);
    assert_eq!(runbook.matches().severities, [Severity::Sev1, Severity::Sev2]);
    assert_eq!(runbook.matches().labels, BTreeMap::from([("env".to_owned(), "prod".to_owned())]));
    assert_eq!(runbook.timeout(), Duration::from_secs(90 * 60));
    assert!(runbook.requires_previous_deployment() && !runbook.auto());
    assert_eq!(runbook.params().len(), 2);
    assert_eq!(
        runbook.param("colour").map(|p| &p.rule),
        Some(&ParamRule::Choices(vec!["blue".into(), "green".into()]))
    );
    assert_eq!(
        runbook.allowed(),
        &Allowed { groups: vec!["S0SRE".into()], on_call: true, users: vec!["U0ANA".into()] }
    );
    let ExecutorSpec::Awx(awx) = runbook.executor() else { panic!("an AWX runbook") };
    assert_eq!(awx.base_url, "https://awx.example.com", "the trailing slash is dropped");
    assert_eq!(awx.api_path, "/api/controller/v2/");
    assert_eq!((awx.template_id, awx.template_kind), (42, AwxTemplateKind::Workflow));
    assert_eq!(awx.limit.as_ref().map(Template::source), Some("{{ labels.instance }}"));
}

#[test]
fn optional_settings_have_documented_defaults() {
    let text = r#"
        name = "restart"
        title = "Restart"
        [button]
        label = "Restart"
        [executor]
        kind = "awx"
        base_url = "https://awx.example.com"
        token_env = "AWX_TOKEN"
        template_id = 7
        [allowed]
        on_call = true
    "#;
    let runbook = runbook(text).expect("valid");
    assert_eq!(runbook.button().style, ButtonStyle::Default);
    assert_eq!(runbook.timeout(), DEFAULT_TIMEOUT);
    assert!(runbook.matches().is_empty());
    assert_eq!(runbook.confirm(), None);
    let ExecutorSpec::Awx(awx) = runbook.executor() else { panic!("an AWX runbook") };
    assert_eq!((awx.api_path.as_str(), awx.template_kind), (DEFAULT_AWX_API_PATH, AwxTemplateKind::Job));
    assert_eq!(awx.extra_vars, JsonTemplate::Object(BTreeMap::new()));
}

#[test]
fn runbook_names_follow_the_documented_rule() {
    #[rustfmt::skip]
    let cases = [
        ("rollback", true), ("cleanup-disk", true), ("2fa-reset", true), ("a", true),
        (&"x".repeat(40), true), (&"x".repeat(41), false),
        ("", false), ("-rollback", false), ("Rollback", false), ("roll_back", false), ("roll back", false),
        ("rollback;", false), ("röllback", false),
    ];
    for (name, valid) in cases {
        assert_eq!(name.parse::<RunbookName>().is_ok(), valid, "{name:?}");
    }
}

#[test]
fn service_globs_match_any_run_of_characters_at_each_star() {
    #[rustfmt::skip]
    let cases = [
        ("checkout", "checkout", true), ("checkout", "checkout-eu", false),
        ("db-*", "db-orders", true), ("db-*", "db-", true), ("db-*", "db", false),
        ("*-api", "search-api", true), ("*-api", "api", false),
        ("a*b*c", "axxbyyc", true), ("a*b*c", "acb", false), ("a*a", "a", false), ("a*a", "aa", true),
        ("*", "anything", true),
    ];
    for (pattern, service, fits) in cases {
        let glob = ServiceGlob::parse(pattern).expect("a valid glob");
        assert_eq!(glob.fits(service), fits, "{pattern:?} against {service:?}");
    }
    assert!(ServiceGlob::parse("check out").is_err() && ServiceGlob::parse("").is_err());
}

#[test]
fn patterns_match_the_whole_value_whether_or_not_they_are_anchored() {
    let unanchored = Pattern::new("[0-9]{1,2}").expect("valid");
    let anchored = Pattern::new("^[0-9]{1,2}$").expect("valid");
    #[rustfmt::skip]
    let cases = [("3", true), ("42", true), ("123", false), ("3; reboot", false), ("x3", false), ("3\n", false), ("", false)];
    for (value, matches) in cases {
        assert_eq!(unanchored.matches(value), matches, "unanchored, {value:?}");
        assert_eq!(anchored.matches(value), matches, "anchored, {value:?}");
    }
    let alternation = Pattern::new("blue|green").expect("valid");
    assert!(!alternation.matches("blue; reboot"), "an alternation is anchored as a whole");
}

#[test]
fn timeouts_accept_friendly_durations_within_a_day() {
    #[rustfmt::skip]
    let cases = [
        (Some("15m"), Ok(Duration::from_secs(900))), (Some("90s"), Ok(Duration::from_secs(90))),
        (Some("1h 30m"), Ok(Duration::from_secs(5400))), (Some("PT2H"), Ok(Duration::from_secs(7200))),
        (None, Ok(DEFAULT_TIMEOUT)),
        (Some("0s"), Err(())), (Some("25h"), Err(())), (Some("-5m"), Err(())), (Some("soon"), Err(())), (Some(""), Err(())),
    ];
    for (input, expected) in cases {
        assert_eq!(parse_timeout(input).map_err(|_| ()), expected, "{input:?}");
    }
}

#[test]
fn a_syntax_error_is_reported_with_its_line_and_column() {
    let (raw, issues) = RawRunbook::parse("name = \"x\"\ntitle = \"y\"\n[button\nlabel = \"z\"\n");
    assert_eq!(raw, None);
    assert_eq!(issues.len(), 1);
    assert!(issues[0].message.starts_with("invalid TOML at line 3, column"), "{}", issues[0]);
    assert_eq!(issues[0].field, "");
}

#[test]
fn unknown_keys_are_all_reported_and_the_rest_is_still_read() {
    let text = "name = \"x\"\nnmae = \"y\"\n[button]\nlable = \"z\"\n[[params]]\nname = \"a\"\nregexp = \".*\"\n";
    let (raw, issues) = RawRunbook::parse(text);
    let fields: Vec<&str> = issues.iter().map(|i| i.field.as_str()).collect();
    assert_eq!(fields, ["button.lable", "nmae", "params[0].regexp"]);
    assert_eq!(raw.and_then(|r| r.name), Some("x".to_owned()), "known keys are still read");
}

#[test]
fn auto_runbooks_need_a_match_and_a_default_for_every_parameter() {
    let text = AWX.replace("requires_previous_deployment = true", "auto = true").replace("default = \"blue\"\n", "");
    let issues = runbook(&text).expect_err("colour has no default");
    assert_eq!(
        issues,
        [SpecIssue {
            field: "params[1].default".into(),
            message: "auto = true needs a default for every parameter".into()
        }]
    );
}

#[test]
fn a_parameter_cannot_have_both_a_pattern_and_choices_or_a_duplicate_name() {
    let text = AWX.replace("choices = [\"blue\", \"green\"]", "choices = [\"blue\", \"green\"]\npattern = \".*\"");
    let text = text.replace("name = \"colour\"", "name = \"version\"");
    let fields: Vec<String> = runbook(&text).expect_err("invalid").into_iter().map(|i| i.to_string()).collect();
    assert_eq!(
        fields,
        [
            "params[1].name: duplicate parameter \"version\"; params[0] has it",
            "params[1]: give either `pattern` or `choices`, not both",
        ]
    );
}
