//! Remediation as code, end to end: runbook buttons and `/incident run` through Socket Mode,
//! AWX / webhook / local executors against fakes, authorisation, double presses, self-healing
//! and its loop guard, deployments feeding rollback, and comments back on Dynatrace problems.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{ANA, LEA, TestApp, ZOE, spawn_app_with};

/// A folder of runbooks, each file's text given with `{awx}`/`{hook}` replaced by fake servers.
fn runbooks(files: &[(&str, String)]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(format!("{name}.toml")), text).unwrap();
    }
    dir
}

fn rollback(awx: &str, timeout: &str, auto: bool) -> String {
    format!(
        r#"
name = "rollback"
title = "Roll back the last deployment"
description = "Redeploys the previous version with AWX."
confirm = "Roll back {{{{ service }}}} to {{{{ deployment.previous.version }}}}?"
timeout = "{timeout}"
auto = {auto}
requires_previous_deployment = true
[button]
label = "Roll back"
style = "danger"
[match]
services = ["checkout"]
[executor]
kind = "awx"
base_url = "{awx}"
api_path = "/api/v2/"
token_env = "AWX_TOKEN"
template_id = 42
template_kind = "job"
[executor.extra_vars]
service = "{{{{ service }}}}"
version = "{{{{ deployment.previous.version }}}}"
[allowed]
users = ["U0ANA"]
"#
    )
}

async fn app_with(dir: &Path, configure: impl FnOnce(&mut warroom::config::Settings)) -> TestApp {
    let dir = dir.to_path_buf();
    let app = spawn_app_with(move |s| {
        s.commands_dir = dir;
        s.runbooks.poll_interval = Duration::from_millis(20);
        configure(s);
    })
    .await;
    app.connected().await;
    app
}

async fn deploy(app: &TestApp, service: &str, version: &str) {
    let response = app
        .http
        .post(format!("{}/hooks/deployments", app.base))
        .bearer_auth(crate::helpers::WEBHOOK_TOKEN)
        .json(&json!({ "service": service, "environment": "prod", "version": version }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
}

async fn awx_job(server: &MockServer, launch_status: u16, statuses: &[&str]) {
    Mock::given(method("POST"))
        .and(path("/api/v2/job_templates/42/launch/"))
        .and(header("Authorization", "Bearer test-awx-token"))
        .respond_with(
            ResponseTemplate::new(launch_status)
                .set_body_json(json!({ "job": 4711, "id": 4711, "type": "job", "status": "pending" })),
        )
        .mount(server)
        .await;
    for (n, status) in statuses.iter().enumerate() {
        let mock = Mock::given(method("GET")).and(path("/api/v2/jobs/4711/")).respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "id": 4711, "status": status, "failed": *status == "failed" })),
        );
        if n + 1 < statuses.len() {
            mock.up_to_n_times(1).mount(server).await;
        } else {
            mock.mount(server).await;
        }
    }
    Mock::given(method("GET"))
        .and(path("/api/v2/jobs/4711/stdout/"))
        .respond_with(ResponseTemplate::new(200).set_body_string("PLAY RECAP\nweb-1 : ok=3 changed=1 failed=0\n"))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v2/jobs/4711/cancel/"))
        .respond_with(ResponseTemplate::new(202))
        .mount(server)
        .await;
}

/// Opens INC-1 for checkout (sev1) and returns its channel.
/// An HTTP endpoint that accepts `POST /scale` with 202, for the scale-out runbooks.
async fn scale_hook() -> MockServer {
    let hook = MockServer::start().await;
    Mock::given(method("POST")).and(path("/scale")).respond_with(ResponseTemplate::new(202)).mount(&hook).await;
    hook
}

/// Opens the generic disk incident (no deployments involved); returns its channel.
async fn disk_incident(app: &TestApp) -> String {
    app.deliver("generic", "alerts/generic_disk.json", "opened").await;
    app.settle().await;
    app.channel_of("INC-1").await.id
}

async fn checkout_incident(app: &TestApp) -> String {
    app.deliver("alertmanager", "alerts/alertmanager_01_firing.json", "opened").await;
    app.settle().await;
    app.channel_of("INC-1").await.id
}

/// An app with the runbooks in `dir`, two checkout deployments (so there is one to roll back
/// to) and the checkout incident's war room open; returns its channel.
async fn deployed_checkout_incident(dir: &Path) -> (TestApp, String) {
    let app = app_with(dir, |_| {}).await;
    deploy(&app, "checkout", "v1.41").await;
    deploy(&app, "checkout", "v1.42").await;
    let channel = checkout_incident(&app).await;
    (app, channel)
}

async fn run_state(app: &TestApp, want: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let runs = app.services.store.runs(warroom::domain::IncidentId::from_seq(1)).await.unwrap();
        if let Some(run) = runs.iter().rev().find(|r| r.state.as_str() == want) {
            return json!({ "summary": run.summary, "link": run.link, "output": run.output_tail, "status_ts": run.status_ts });
        }
        assert!(tokio::time::Instant::now() < deadline, "no run reached `{want}`: {runs:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn thread_texts(app: &TestApp, channel: &str) -> Vec<String> {
    app.slack.messages(channel).into_iter().filter(|m| m.thread_ts.is_some()).map(|m| m.text).collect()
}

#[tokio::test]
async fn a_rollback_button_launches_the_awx_job_with_the_previous_version_and_reports_success_everywhere() {
    for launch_status in [201, 202] {
        let awx = MockServer::start().await;
        awx_job(&awx, launch_status, &["pending", "running", "successful"]).await;
        let dir = runbooks(&[("rollback", rollback(&awx.uri(), "10s", false))]);
        let app = app_with(dir.path(), |_| {}).await;
        deploy(&app, "checkout", "v1.41").await;
        deploy(&app, "checkout", "v1.42").await;
        let channel = checkout_incident(&app).await;

        let context = app
            .slack
            .calls_to("chat.postMessage")
            .into_iter()
            .find(|c| c.params["blocks"].to_string().contains("v1:run:rollback"));
        assert!(context.is_some(), "the context message offers the runbook as a button");
        app.press(&channel, ANA, "v1:run:rollback", "INC-1").await;
        let done = run_state(&app, "succeeded").await;
        app.settle().await;

        let launch =
            awx.received_requests().await.unwrap().into_iter().find(|r| r.url.path().ends_with("/launch/")).unwrap();
        let body: Value = serde_json::from_slice(&launch.body).unwrap();
        assert_eq!(body["extra_vars"]["version"], "v1.41", "rollback goes to the previous deployment");
        assert!(done["link"].as_str().unwrap().contains("/#/jobs/playbook/4711"), "{done}");
        assert!(done["output"].as_str().unwrap().contains("PLAY RECAP"), "{done}");
        let thread = thread_texts(&app, &channel);
        assert!(thread.iter().any(|t| t.contains("rollback") && t.contains("succeeded")), "{thread:?}");
        let ticket = app.ticket("WR-1").await;
        assert!(
            ticket["comments"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["text"].as_str().unwrap().contains("runbook rollback succeeded")),
            "{ticket}"
        );
        let incident = app.incident("INC-1").await;
        assert!(
            incident["timeline"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["kind"] == "runbook_succeeded" && e["actor"] == ANA)
        );
    }
}

#[tokio::test]
async fn a_failed_awx_job_is_reported_as_failed_with_its_output() {
    let awx = MockServer::start().await;
    awx_job(&awx, 201, &["running", "failed"]).await;
    let dir = runbooks(&[("rollback", rollback(&awx.uri(), "10s", false))]);
    let (app, channel) = deployed_checkout_incident(dir.path()).await;

    app.press(&channel, ANA, "v1:run:rollback", "INC-1").await;

    let failed = run_state(&app, "failed").await;
    assert!(failed["output"].as_str().unwrap().contains("PLAY RECAP"));
}

#[tokio::test]
async fn a_run_past_its_timeout_cancels_the_awx_job() {
    let awx = MockServer::start().await;
    awx_job(&awx, 201, &["running"]).await;
    let dir = runbooks(&[("rollback", rollback(&awx.uri(), "300ms", false))]);
    let (app, channel) = deployed_checkout_incident(dir.path()).await;

    app.press(&channel, ANA, "v1:run:rollback", "INC-1").await;

    run_state(&app, "timed_out").await;
    let cancels =
        awx.received_requests().await.unwrap().into_iter().filter(|r| r.url.path().ends_with("/cancel/")).count();
    assert_eq!(cancels, 1);
}

#[tokio::test]
async fn a_second_press_while_it_runs_is_told_who_started_it() {
    let awx = MockServer::start().await;
    awx_job(&awx, 201, &["running"]).await;
    let dir = runbooks(&[("rollback", rollback(&awx.uri(), "1500ms", false))]);
    let (app, channel) = deployed_checkout_incident(dir.path()).await;

    app.press(&channel, ANA, "v1:run:rollback", "INC-1").await;
    run_state(&app, "running").await;
    app.press(&channel, ANA, "v1:run:rollback", "INC-1").await;

    assert!(
        app.slack
            .wait_for(Duration::from_secs(5), |s| s
                .response_url_posts()
                .iter()
                .any(|p| p["text"].as_str().unwrap_or_default().contains("rollback is already running (started")))
            .await,
        "{:?}",
        app.slack.response_url_posts()
    );
    run_state(&app, "timed_out").await;
    app.press(&channel, ANA, "v1:run:rollback", "INC-1").await;
    assert!(
        app.slack
            .wait_for(Duration::from_secs(5), |s| s
                .response_url_posts()
                .iter()
                .any(|p| p["text"].as_str().unwrap_or_default().contains("--again")))
            .await,
        "after a finished run, it asks before running again"
    );
}

#[tokio::test]
async fn an_unauthorised_press_is_denied_explained_and_audited() {
    let awx = MockServer::start().await;
    awx_job(&awx, 201, &["successful"]).await;
    let dir = runbooks(&[("rollback", rollback(&awx.uri(), "10s", false))]);
    let (app, channel) = deployed_checkout_incident(dir.path()).await;

    app.press(&channel, ZOE, "v1:run:rollback", "INC-1").await;

    assert!(
        app.slack
            .wait_for(Duration::from_secs(5), |s| s
                .response_url_posts()
                .iter()
                .any(|p| p["text"].as_str().unwrap_or_default().contains("You may not run rollback")))
            .await
    );
    let runs = app.services.store.runs(warroom::domain::IncidentId::from_seq(1)).await.unwrap();
    assert_eq!(runs.iter().map(|r| (r.state.as_str(), r.requested_by.as_str())).collect::<Vec<_>>(), [("denied", ZOE)]);
    assert!(awx.received_requests().await.unwrap().is_empty(), "nothing was launched");
    let incident = app.incident("INC-1").await;
    assert!(
        incident["timeline"].as_array().unwrap().iter().any(|e| e["kind"] == "runbook_denied" && e["actor"] == ZOE)
    );
}

#[tokio::test]
async fn a_rollback_without_a_previous_deployment_is_refused_with_a_clear_message() {
    let awx = MockServer::start().await;
    let dir = runbooks(&[("rollback", rollback(&awx.uri(), "10s", false))]);
    let app = app_with(dir.path(), |_| {}).await;
    deploy(&app, "checkout", "v1.42").await;
    let channel = checkout_incident(&app).await;

    let reply = app.slash(&channel, ANA, "run rollback").await.unwrap();

    assert!(reply.contains("no previous deployment of checkout"), "{reply}");
    assert!(awx.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_webhook_runbook_sends_its_secret_header_and_body() {
    let hook = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/scale"))
        .and(header("Authorization", "Bearer test-hook-token"))
        .and(body_partial_json(json!({ "service": "db", "replicas": "4" })))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({ "accepted": true })))
        .expect(1)
        .mount(&hook)
        .await;
    let text = format!(
        r#"
name = "scale-out"
title = "Scale out"
description = "More replicas."
timeout = "5s"
[button]
label = "Scale out"
style = "primary"
[[params]]
name = "replicas"
description = "How many"
default = "4"
pattern = "^[0-9]{{1,2}}$"
[executor]
kind = "http"
method = "POST"
url = "{}/scale"
headers = {{ Authorization = {{ env = "HOOK_TOKEN" }} }}
body = {{ service = "{{{{ service }}}}", replicas = "{{{{ params.replicas }}}}" }}
expected_status = [202]
[allowed]
users = ["U0ANA"]
"#,
        hook.uri()
    );
    let dir = runbooks(&[("scale-out", text)]);
    let app = app_with(dir.path(), |_| {}).await;
    let channel = disk_incident(&app).await;

    let reply = app.slash(&channel, ANA, "run scale-out").await.unwrap();
    assert!(reply.contains("queued"), "{reply}");

    let done = run_state(&app, "succeeded").await;
    assert!(done["summary"].as_str().unwrap().contains("202"), "{done}");
}

#[tokio::test]
async fn hostile_parameters_of_a_local_command_are_refused_and_never_executed() {
    let target = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
name = "touch-marker"
title = "Touch a marker"
description = "Creates a file."
timeout = "5s"
[button]
label = "Touch"
style = "default"
[[params]]
name = "name"
description = "File name"
pattern = "^[a-z0-9_-]{{1,20}}$"
[executor]
kind = "local"
program = "/usr/bin/touch"
args = ["{}/{{{{ params.name }}}}"]
[allowed]
users = ["U0ANA"]
"#,
        target.path().display()
    );
    let dir = runbooks(&[("touch-marker", text)]);
    let app = app_with(dir.path(), |_| {}).await;
    let channel = disk_incident(&app).await;

    for hostile in ["x;rm -rf /", "$(reboot)", "`id`", "a\nb", "../../etc"] {
        let reply = app.slash(&channel, ANA, &format!("run touch-marker name=\"{hostile}\"")).await.unwrap();
        assert!(reply.contains("name"), "`{hostile}` must be refused naming the parameter: {reply}");
    }
    assert_eq!(std::fs::read_dir(target.path()).unwrap().count(), 0, "nothing ran");
    assert!(app.services.store.runs(warroom::domain::IncidentId::from_seq(1)).await.unwrap().is_empty());

    let reply = app.slash(&channel, ANA, "run touch-marker name=ok-file").await.unwrap();
    assert!(reply.contains("queued"), "{reply}");
    run_state(&app, "succeeded").await;
    assert!(target.path().join("ok-file").exists(), "a valid value runs the program");
}

#[tokio::test]
async fn a_matching_auto_runbook_heals_a_new_incident_and_the_loop_guard_calls_people_instead_of_rerunning() {
    let awx = MockServer::start().await;
    awx_job(&awx, 201, &["successful"]).await;
    let dir = runbooks(&[("rollback", rollback(&awx.uri(), "10s", true))]);
    let app = app_with(dir.path(), |_| {}).await;
    deploy(&app, "checkout", "v1.41").await;
    deploy(&app, "checkout", "v1.42").await;

    let channel = checkout_incident(&app).await;
    run_state(&app, "succeeded").await;
    app.settle().await;
    assert!(thread_texts(&app, &channel).iter().any(|t| t.contains("automatically")), "the channel is told");

    app.slash(&channel, ANA, "resolve").await;
    app.settle().await;
    app.deliver("alertmanager", "alerts/alertmanager_01_firing.json", "reopened").await;
    app.settle().await;

    let launches =
        awx.received_requests().await.unwrap().into_iter().filter(|r| r.url.path().ends_with("/launch/")).count();
    assert_eq!(launches, 1, "the loop guard stops a second automatic run");
    let reopened = app.channel_of("INC-1").await.id;
    let messages = app.slack.messages(&reopened);
    assert!(messages.iter().any(|m| m.text.contains("ran automatically at") && m.text.contains("<@")), "{messages:#?}");
}

#[tokio::test]
async fn automatic_runs_can_be_switched_off() {
    let awx = MockServer::start().await;
    awx_job(&awx, 201, &["successful"]).await;
    let dir = runbooks(&[("rollback", rollback(&awx.uri(), "10s", true))]);
    let app = app_with(dir.path(), |s| s.runbooks.auto = false).await;
    deploy(&app, "checkout", "v1.41").await;
    deploy(&app, "checkout", "v1.42").await;
    checkout_incident(&app).await;
    app.settle().await;
    assert!(awx.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_result_of_a_run_on_a_dynatrace_problem_is_commented_on_the_problem() {
    let dynatrace = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/problems/-1934612467497574917_1700000000000V2/comments"))
        .and(header("Authorization", "Api-Token test-dt-token"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "id": "c1" })))
        .expect(1)
        .mount(&dynatrace)
        .await;
    let awx = MockServer::start().await;
    awx_job(&awx, 201, &["successful"]).await;
    let dir = runbooks(&[("rollback", rollback(&awx.uri(), "10s", false))]);
    let uri = dynatrace.uri();
    let app = app_with(dir.path(), move |s| {
        s.dynatrace.api_url = Some(uri);
        s.dynatrace.token_env = Some("DT_TOKEN".to_owned());
    })
    .await;
    deploy(&app, "checkout", "v1.41").await;
    deploy(&app, "checkout", "v1.42").await;
    app.deliver("dynatrace", "alerts/dynatrace_open.json", "opened").await;
    app.settle().await;
    let channel = app.channel_of("INC-1").await.id;

    app.press(&channel, ANA, "v1:run:rollback", "INC-1").await;
    run_state(&app, "succeeded").await;
    app.settle().await;

    let comment = dynatrace.received_requests().await.unwrap().remove(0);
    let body: Value = serde_json::from_slice(&comment.body).unwrap();
    assert!(body["message"].as_str().unwrap().contains("rollback succeeded"), "{body}");
}

#[tokio::test]
async fn a_runbook_with_parameters_opens_a_modal_whose_mistakes_show_in_the_modal() {
    let hook = scale_hook().await;
    let text = format!(
        r#"
name = "scale-out"
title = "Scale out"
description = "More replicas."
timeout = "5s"
[button]
label = "Scale out"
style = "primary"
[match]
services = ["db"]
[[params]]
name = "replicas"
description = "How many"
default = "4"
pattern = "^[1-9][0-9]?$"
[executor]
kind = "http"
method = "POST"
url = "{}/scale"
body = {{ replicas = "{{{{ params.replicas }}}}" }}
[allowed]
users = ["U0ANA"]
"#,
        hook.uri()
    );
    let dir = runbooks(&[("scale-out", text)]);
    let app = app_with(dir.path(), |_| {}).await;
    let channel = disk_incident(&app).await;

    app.press(&channel, ANA, "v1:run:scale-out", "INC-1").await;
    assert!(
        app.slack.wait_for(Duration::from_secs(5), |s| !s.views_opened().is_empty()).await,
        "the modal opens at once"
    );
    let view = app.slack.views_opened().remove(0);
    assert_eq!(view["callback_id"], "v1:run-params");
    assert_eq!(view["blocks"][0]["element"]["initial_value"], "4", "defaults are filled in");

    let submit = |value: &str| {
        let mut submitted = view.clone();
        submitted["id"] = json!("V0SIM1");
        submitted["team_id"] = json!("T0SIM");
        submitted["hash"] = json!("1700000000.abcd");
        submitted["app_id"] = json!("A0SIM");
        submitted["bot_id"] = json!("B0SIM");
        submitted["state"] =
            json!({ "values": { "param:replicas": { "value": { "type": "plain_text_input", "value": value } } } });
        json!({ "type": "view_submission", "team": { "id": "T0SIM", "domain": "sim" }, "user": { "id": ANA, "name": "ana", "team_id": "T0SIM" },
            "api_app_id": "A0SIM", "token": "unused", "trigger_id": "1.2.3", "view": submitted })
    };
    let bad = app.slack.send_envelope(warroom::sim::EnvelopeKind::Interactive, submit("0; reboot")).await;
    let ack = app.slack.wait_for_ack(&bad, Duration::from_secs(5)).await.expect("acked");
    let payload = ack.payload.expect("the ack carries the errors");
    assert_eq!(payload["response_action"], "errors", "{payload}");
    assert!(payload["errors"]["param:replicas"].as_str().unwrap().contains("replicas"), "{payload}");
    assert!(app.services.store.runs(warroom::domain::IncidentId::from_seq(1)).await.unwrap().is_empty());

    let good = app.slack.send_envelope(warroom::sim::EnvelopeKind::Interactive, submit("6")).await;
    let ack = app.slack.wait_for_ack(&good, Duration::from_secs(5)).await.expect("acked");
    assert_eq!(ack.payload.unwrap_or_default()["response_action"], "clear");
    run_state(&app, "succeeded").await;
    let sent = hook.received_requests().await.unwrap().remove(0);
    assert_eq!(serde_json::from_slice::<Value>(&sent.body).unwrap()["replicas"], "6");
}

#[tokio::test]
async fn a_run_whose_authorisation_outlasts_the_ack_is_answered_through_the_response_url() {
    let hook = scale_hook().await;
    let text = format!(
        r#"
name = "scale-out"
title = "Scale out"
description = "Adds replicas."
timeout = "5s"
[button]
label = "Scale out"
style = "default"
[executor]
kind = "http"
method = "POST"
url = "{}/scale"
[allowed]
groups = ["S0LEADS"]
"#,
        hook.uri()
    );
    let dir = runbooks(&[("scale-out", text)]);
    let app = app_with(dir.path(), |_| {}).await;
    let channel = disk_incident(&app).await;
    // Asking Slack who is in the group now takes longer than an ack may.
    app.slack.set_latency(Duration::from_millis(2500));

    let ack = app.slash(&channel, LEA, "run scale-out").await.unwrap_or_default();

    assert!(ack.starts_with("Looking up whether you may run scale-out"), "{ack:?}");
    let queued = app.response_url_post_containing("scale-out is queued").await;
    assert!(queued, "the answer follows: {:?}", app.slack.response_url_posts());
    app.slack.set_latency(Duration::ZERO);
    run_state(&app, "succeeded").await;
}
