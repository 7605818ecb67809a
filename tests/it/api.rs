//! The read API and health.

use reqwest::StatusCode;

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn the_incident_shows_the_contract_fields_alerts_and_a_timeline_with_actors() {
    let app = spawn_app().await;
    app.deliver("alertmanager", "alerts/alertmanager_01_firing.json", "opened").await;
    let (status, incident) = app.get_api("/api/incidents/INC-1").await;
    assert_eq!(status, StatusCode::OK);
    for field in [
        "id",
        "title",
        "severity",
        "service",
        "status",
        "source",
        "problem_key",
        "opened_at",
        "acknowledged_at",
        "resolved_at",
        "channel",
        "ticket",
        "alerts",
        "timeline",
    ] {
        assert!(incident.get(field).is_some(), "missing `{field}` in {incident}");
    }
    assert_eq!(incident["id"], "INC-1");
    assert_eq!(incident["source"], "alertmanager");
    assert!(incident["opened_at"].as_str().unwrap().ends_with('Z'), "times are RFC 3339 UTC");
    assert_eq!(incident["alerts"].as_array().unwrap().len(), 2);
    assert_eq!(incident["timeline"][0]["kind"], "opened");
    assert_eq!(incident["timeline"][0]["actor"], "source:alertmanager");
}

#[tokio::test]
async fn the_list_is_newest_first_filters_by_status_and_pages_with_a_cursor() {
    let app = spawn_app().await;
    for n in 1..=5 {
        app.post_hook("generic", &format!(r#"{{"key":"k{n}","title":"problem {n}"}}"#)).await;
    }
    app.post_hook("generic", r#"{"key":"k2","title":"problem 2","status":"resolved"}"#).await;

    let (_, first) = app.get_api("/api/incidents?limit=2").await;
    let ids: Vec<&str> = first["incidents"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["INC-5", "INC-4"]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = app.get_api(&format!("/api/incidents?limit=2&cursor={cursor}")).await;
    assert_eq!(second["incidents"][0]["id"], "INC-3");

    let (_, resolved) = app.get_api("/api/incidents?status=resolved").await;
    assert_eq!(resolved["incidents"].as_array().unwrap().len(), 1);
    assert_eq!(resolved["next_cursor"], serde_json::Value::Null);
}

#[tokio::test]
async fn bad_queries_and_unknown_incidents_get_precise_errors() {
    let app = spawn_app().await;
    let table = [
        ("/api/incidents?status=sleeping", StatusCode::BAD_REQUEST, Some("status")),
        ("/api/incidents?limit=0", StatusCode::BAD_REQUEST, Some("limit")),
        ("/api/incidents?cursor=yesterday", StatusCode::BAD_REQUEST, Some("cursor")),
        ("/api/incidents/INC-99", StatusCode::NOT_FOUND, None),
        ("/api/incidents/banana", StatusCode::NOT_FOUND, None),
    ];
    for (path, status, field) in table {
        let (got, body) = app.get_api(path).await;
        assert_eq!(got, status, "{path}: {body}");
        if let Some(field) = field {
            assert_eq!(body["field"], field, "{path}: {body}");
        }
    }
}

#[tokio::test]
async fn the_api_requires_its_token() {
    let app = spawn_app().await;
    let response = app.http.get(format!("{}/api/incidents", app.base)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = app
        .http
        .get(format!("{}/api/incidents", app.base))
        .bearer_auth(crate::helpers::WEBHOOK_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "a separate API token replaces the webhook token");
}

#[tokio::test]
async fn the_api_token_defaults_to_the_webhook_token() {
    let app = spawn_app_with(|s| s.http.api_token = None).await;
    let response = app
        .http
        .get(format!("{}/api/incidents", app.base))
        .bearer_auth(crate::helpers::WEBHOOK_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn healthz_reports_the_database_and_slack() {
    let app = spawn_app().await;
    let response = app.http.get(format!("{}/healthz", app.base)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "healthz needs no token");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["database"], "ok");
    assert!(body["slack"].is_string());
}

#[tokio::test]
async fn the_server_stops_cleanly_when_asked() {
    let app = spawn_app().await;
    app.deliver("generic", "alerts/generic_disk.json", "opened").await;
    tokio::time::timeout(std::time::Duration::from_secs(10), app.stop())
        .await
        .expect("stops in time")
        .expect("clean exit");
}

#[tokio::test]
async fn serve_refuses_to_start_without_a_webhook_token_unless_told_to_run_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::helpers::test_settings(&dir);
    settings.http.webhook_token = None;
    settings.commands_dir = dir.path().join("commands");
    let refused = warroom::app::App::build(settings.clone(), warroom::app::AppOptions::default()).await;
    let message = refused.err().expect("refused").to_string();
    assert!(message.contains("WARROOM_WEBHOOK_TOKEN") && message.contains("--insecure-no-webhook-auth"), "{message}");

    let options = warroom::app::AppOptions { insecure_no_webhook_auth: true, ..warroom::app::AppOptions::default() };
    assert!(warroom::app::App::build(settings, options).await.is_ok());
}

#[tokio::test]
async fn serve_refuses_to_start_on_an_invalid_runbook_naming_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let commands = dir.path().join("commands");
    std::fs::create_dir_all(&commands).unwrap();
    std::fs::write(commands.join("broken.toml"), "name = \"broken\"\ncolour = \"red\"\n").unwrap();
    let mut settings = crate::helpers::test_settings(&dir);
    settings.commands_dir = commands;
    let message = warroom::app::App::build(settings, warroom::app::AppOptions::default())
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(message.contains("broken.toml") && message.contains("colour"), "{message}");
}

#[tokio::test]
async fn metrics_report_incidents_jobs_and_deliveries_in_prometheus_text() {
    let app = spawn_app().await;
    app.deliver("generic", "alerts/generic_disk.json", "opened").await;
    app.deliver("generic", "alerts/generic_disk.json", "duplicate").await;
    app.settle().await;

    let response = app.http.get(format!("{}/metrics", app.base)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = response.text().await.unwrap();
    for line in [
        "warroom_incidents{status=\"open\"} 1",
        "warroom_deliveries_total{source=\"generic\",outcome=\"opened\"} 1",
        "warroom_deliveries_total{source=\"generic\",outcome=\"duplicate\"} 1",
        "# TYPE warroom_jobs gauge",
    ] {
        assert!(text.lines().any(|l| l == line), "missing `{line}` in:\n{text}");
    }
    assert!(text.contains("warroom_jobs{state=\"done\"}"), "{text}");
}
