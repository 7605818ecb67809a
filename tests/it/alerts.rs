//! Deliveries from every source, through the real HTTP server, and what they mean.

use jiff::SignedDuration;
use reqwest::StatusCode;

use crate::helpers::{fixture, spawn_app, spawn_app_with};

#[tokio::test]
async fn the_captured_alertmanager_bodies_open_update_resolve_and_open_a_second_incident() {
    let app = spawn_app().await;

    let first = app.deliver("alertmanager", "alerts/alertmanager_01_firing.json", "opened").await;
    let partial = app.deliver("alertmanager", "alerts/alertmanager_02_partially_resolved.json", "updated").await;
    let resolved = app.deliver("alertmanager", "alerts/alertmanager_03_resolved.json", "resolved").await;
    let disk = app.deliver("alertmanager", "alerts/alertmanager_04_diskfull.json", "opened").await;

    assert_eq!(first.as_deref(), Some("INC-1"));
    assert_eq!(partial, first, "a partial recovery updates the same incident");
    assert_eq!(resolved, first);
    assert_eq!(disk.as_deref(), Some("INC-2"), "a new group key is a new incident");
    let (_, incident) = app.get_api("/api/incidents/INC-1").await;
    assert_eq!(incident["status"], "resolved");
    let statuses: Vec<&str> =
        incident["alerts"].as_array().unwrap().iter().map(|a| a["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["resolved", "resolved"], "both fingerprints end resolved");
}

#[tokio::test]
async fn a_repeated_delivery_that_changes_nothing_is_a_duplicate_of_the_same_incident() {
    let app = spawn_app().await;
    let first = app.deliver("alertmanager", "alerts/alertmanager_01_firing.json", "opened").await;
    let again = app.deliver("alertmanager", "alerts/alertmanager_01_firing.json", "duplicate").await;
    assert_eq!(first, again);
    let (_, list) = app.get_api("/api/incidents").await;
    assert_eq!(list["incidents"].as_array().unwrap().len(), 1, "a repeat must not open a second incident");
}

#[tokio::test]
async fn a_group_still_firing_with_some_alerts_resolved_stays_open() {
    let app = spawn_app().await;
    app.deliver("alertmanager", "alerts/alertmanager_01_firing.json", "opened").await;
    app.deliver("alertmanager", "alerts/alertmanager_02_partially_resolved.json", "updated").await;
    let (_, incident) = app.get_api("/api/incidents/INC-1").await;
    assert_eq!(incident["status"], "open");
    assert!(
        incident["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "alert_resolved" && e["actor"] == "source:alertmanager")
    );
}

#[tokio::test]
async fn a_resolved_problem_firing_again_within_the_window_reopens_the_same_incident() {
    let app = spawn_app().await;
    app.deliver("alertmanager", "alerts/alertmanager_01_firing.json", "opened").await;
    app.deliver("alertmanager", "alerts/alertmanager_03_resolved.json", "resolved").await;
    let reopened = app.deliver("alertmanager", "alerts/alertmanager_01_firing.json", "reopened").await;
    assert_eq!(reopened.as_deref(), Some("INC-1"));
    let (_, incident) = app.get_api("/api/incidents/INC-1").await;
    assert_eq!(incident["status"], "open");
    assert_eq!(incident["resolved_at"], serde_json::Value::Null);
}

#[tokio::test]
async fn a_resolved_problem_firing_again_after_the_window_opens_a_new_incident() {
    let app = spawn_app().await;
    app.deliver("alertmanager", "alerts/alertmanager_01_firing.json", "opened").await;
    app.deliver("alertmanager", "alerts/alertmanager_03_resolved.json", "resolved").await;
    app.clock.advance(SignedDuration::from_hours(25));
    let later = app.deliver("alertmanager", "alerts/alertmanager_01_firing.json", "opened").await;
    assert_eq!(later.as_deref(), Some("INC-2"));
}

#[tokio::test]
async fn a_resolution_of_a_problem_never_seen_open_is_ignored() {
    let app = spawn_app().await;
    let (status, body) = app.post_hook("alertmanager", &fixture("alerts/alertmanager_03_resolved.json")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body, serde_json::json!({ "incident": null, "outcome": "ignored" }));
}

#[tokio::test]
async fn dynatrace_open_merge_resolve_and_reopen_follow_the_pid() {
    let app = spawn_app().await;
    let id = app.deliver("dynatrace", "alerts/dynatrace_open.json", "opened").await;
    app.deliver("dynatrace", "alerts/dynatrace_open.json", "duplicate").await;
    app.deliver("dynatrace", "alerts/dynatrace_merge.json", "updated").await;
    app.deliver("dynatrace", "alerts/dynatrace_resolved.json", "resolved").await;
    app.deliver("dynatrace", "alerts/dynatrace_resolved.json", "duplicate").await;
    let again = app.deliver("dynatrace", "alerts/dynatrace_open.json", "reopened").await;
    assert_eq!(again, id);
    let (_, incident) = app.get_api(&format!("/api/incidents/{}", id.unwrap())).await;
    assert_eq!(incident["severity"], "sev1", "AVAILABILITY maps to sev1");
    assert_eq!(incident["service"], "checkout", "the service comes from the Tags");
}

#[tokio::test]
async fn generic_and_keptn_problems_open_incidents() {
    let app = spawn_app().await;
    app.deliver("generic", "alerts/generic_disk.json", "opened").await;
    app.deliver("keptn", "alerts/keptn_problem_open.json", "opened").await;
    let (status, body) = app
        .post_hook("generic", r#"{"key":"disk-db-1","title":"Disk /var 95% full on db-1","status":"resolved"}"#)
        .await;
    assert_eq!((status, body["outcome"].as_str()), (StatusCode::ACCEPTED, Some("resolved")));
    let (_, incident) = app.get_api("/api/incidents/INC-1").await;
    assert_eq!((incident["severity"].as_str(), incident["status"].as_str()), (Some("sev3"), Some("resolved")));
}

#[tokio::test]
async fn with_resolve_on_source_resolve_off_a_source_resolution_moves_the_incident_to_monitoring() {
    let app = spawn_app_with(|s| s.incidents.resolve_on_source_resolve = false).await;
    app.deliver("alertmanager", "alerts/alertmanager_01_firing.json", "opened").await;
    app.deliver("alertmanager", "alerts/alertmanager_03_resolved.json", "resolved").await;
    app.deliver("alertmanager", "alerts/alertmanager_03_resolved.json", "duplicate").await;
    let (_, incident) = app.get_api("/api/incidents/INC-1").await;
    assert_eq!(incident["status"], "monitoring");
}

#[tokio::test]
async fn every_delivery_is_stored_raw_before_the_answer() {
    let app = spawn_app().await;
    app.deliver("generic", "alerts/generic_disk.json", "opened").await;
    app.deliver("generic", "alerts/generic_disk.json", "duplicate").await;
    app.deliver("generic", "alerts/generic_disk.json", "duplicate").await;
    let key = warroom::domain::ProblemKey::new("disk-db-1").unwrap();
    let stored = app.services.store.delivery_count(warroom::domain::SourceKind::Generic, &key).await.unwrap();
    assert_eq!(stored, 3, "duplicates are stored too");
}

#[tokio::test]
async fn an_unavailable_database_answers_503_so_alertmanager_retries() {
    let app = spawn_app().await;
    app.set_database_up(false);
    let (status, body) = app.post_hook("alertmanager", &fixture("alerts/alertmanager_01_firing.json")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body["error"].as_str().unwrap().contains("database"));
    let (health_status, health) = app.get_api("/healthz").await;
    assert_eq!(health_status, StatusCode::OK, "healthz answers 200 while HTTP serves");
    assert_eq!(health["status"], "degraded");
    app.set_database_up(true);
    app.deliver("alertmanager", "alerts/alertmanager_01_firing.json", "opened").await;
}

#[tokio::test]
async fn concurrent_first_deliveries_of_one_problem_open_exactly_one_incident() {
    let app = spawn_app().await;
    let body = fixture("alerts/alertmanager_04_diskfull.json");
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (http, base, body) = (app.http.clone(), app.base.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let response = http
                .post(format!("{base}/hooks/alertmanager"))
                .bearer_auth(crate::helpers::WEBHOOK_TOKEN)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            response.json::<serde_json::Value>().await.unwrap()
        }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap()["outcome"].as_str().unwrap().to_owned());
    }
    outcomes.sort();
    assert_eq!(outcomes.iter().filter(|o| *o == "opened").count(), 1, "{outcomes:?}");
    assert_eq!(outcomes.iter().filter(|o| *o == "duplicate").count(), 7, "{outcomes:?}");
}

#[tokio::test]
async fn deployments_are_recorded_newest_first_and_bad_ones_are_refused_by_field() {
    let app = spawn_app().await;
    for (version, expected) in [("v1.41", 1), ("v1.42", 2)] {
        let response = app
            .http
            .post(format!("{}/hooks/deployments", app.base))
            .bearer_auth(crate::helpers::WEBHOOK_TOKEN)
            .json(&serde_json::json!({ "service": "checkout", "environment": "prod", "version": version, "commit": "abc123",
                "url": "https://ci.example.com/run/1", "pipeline": "release" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        assert_eq!(response.json::<serde_json::Value>().await.unwrap()["deployment"], expected);
    }
    let recent = app.services.store.deployments("checkout", Some("prod"), 2).await.unwrap();
    let versions: Vec<&str> = recent.iter().map(|d| d.version.as_str()).collect();
    assert_eq!(versions, ["v1.42", "v1.41"]);

    for (body, field) in [
        (r#"{"version":"v1"}"#, "service"),
        (r#"{"service":"checkout"}"#, "version"),
        (r#"{"service":"checkout","version":"v1","url":"nope"}"#, "url"),
        (r#"{"service":"checkout","version":"v1","colour":"blue"}"#, "colour"),
    ] {
        let (status, answer) = app.post_hook("deployments", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(answer["field"], field, "{body}: {answer}");
    }
    let response =
        app.http.post(format!("{}/hooks/deployments", app.base)).json(&serde_json::json!({})).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

/// What a delivery sequence leaves on an incident, without times or war-room work.
async fn what_deliveries_left(app: &crate::helpers::TestApp, id: &str) -> serde_json::Value {
    let (_, incident) = app.get_api(&format!("/api/incidents/{id}")).await;
    let from_sources: Vec<&serde_json::Value> = incident["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"].as_str().is_some_and(|a| a.starts_with("source:")))
        .collect();
    let timeline: Vec<serde_json::Value> =
        from_sources.iter().map(|e| serde_json::json!([e["kind"], e["actor"], e["text"]])).collect();
    serde_json::json!({
        "title": incident["title"], "severity": incident["severity"], "status": incident["status"],
        "alerts": incident["alerts"], "timeline": timeline,
    })
}

#[tokio::test]
async fn deliveries_stored_as_one_batch_mean_exactly_what_they_mean_one_by_one() {
    use warroom::domain::{Problem, SourceKind};
    const SEQUENCE: [(&str, &str); 8] = [
        ("alerts/alertmanager_01_firing.json", "opened"),
        ("alerts/alertmanager_01_firing.json", "duplicate"),
        ("alerts/alertmanager_02_partially_resolved.json", "updated"),
        ("alerts/alertmanager_04_diskfull.json", "opened"),
        ("alerts/alertmanager_03_resolved.json", "resolved"),
        ("alerts/alertmanager_03_resolved.json", "duplicate"),
        ("alerts/alertmanager_01_firing.json", "reopened"),
        ("alerts/alertmanager_04_diskfull.json", "duplicate"),
    ];
    let one_by_one = spawn_app().await;
    for (path, outcome) in SEQUENCE {
        one_by_one.deliver("alertmanager", path, outcome).await;
    }

    let batched = spawn_app().await;
    let services = &batched.services;
    let bodies: Vec<String> = SEQUENCE.iter().map(|(path, _)| fixture(path)).collect();
    let problems: Vec<Problem> = bodies
        .iter()
        .map(|body| warroom::intake::parse(SourceKind::Alertmanager, body.as_bytes(), &services.settings.severity))
        .collect::<Result<_, _>>()
        .unwrap();
    let deliveries: Vec<(&Problem, &[u8])> = problems.iter().zip(&bodies).map(|(p, b)| (p, b.as_bytes())).collect();
    let mut tx = services.store.begin().await.unwrap();
    let results = warroom::handlers::correlate::apply_all(services, &mut *tx, &deliveries).await.unwrap();
    tx.commit().await.unwrap();
    // Each opened incident's first channel name is planned in the delivery's own commit.
    for (seq, name) in [(1, "inc-1-checkout"), (2, "inc-2-")] {
        let room = services.store.war_room(warroom::domain::IncidentId::from_seq(seq), 0).await.unwrap();
        let planned = room.and_then(|r| r.planned_name).unwrap_or_default();
        assert!(planned.starts_with(name), "INC-{seq} planned {planned:?}");
    }

    let outcomes: Vec<&str> = results.iter().map(|(ingested, _)| ingested.outcome.as_str()).collect();
    assert_eq!(outcomes, SEQUENCE.map(|(_, outcome)| outcome));
    let incidents: Vec<String> = results.iter().map(|(i, _)| i.incident.unwrap().to_string()).collect();
    assert_eq!(incidents, ["INC-1", "INC-1", "INC-1", "INC-2", "INC-1", "INC-1", "INC-1", "INC-2"]);
    let with_jobs: Vec<bool> = results.iter().map(|(_, jobs)| *jobs).collect();
    assert_eq!(with_jobs, [true, false, true, true, true, false, true, false]);
    for id in ["INC-1", "INC-2"] {
        assert_eq!(what_deliveries_left(&batched, id).await, what_deliveries_left(&one_by_one, id).await, "{id}");
    }
    let counts = |app: &crate::helpers::TestApp| {
        let store = app.services.store.clone();
        async move { store.counts().await.unwrap().deliveries }
    };
    assert_eq!(counts(&batched).await, counts(&one_by_one).await);
}
