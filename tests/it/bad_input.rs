//! Bad deliveries get the contract's answer, checked in order: 401, 413, 415, 400 naming the field.

use reqwest::StatusCode;

use crate::helpers::{WEBHOOK_TOKEN, fixture, spawn_app};

const HOOKS: [(&str, &str); 4] = [
    ("alertmanager", "alerts/alertmanager_01_firing.json"),
    ("dynatrace", "alerts/dynatrace_open.json"),
    ("generic", "alerts/generic_disk.json"),
    ("keptn", "alerts/keptn_problem_open.json"),
];

struct Case {
    why: &'static str,
    token: Option<&'static str>,
    content_type: Option<&'static str>,
    body: String,
    status: StatusCode,
    field: Option<&'static str>,
}

fn transport_cases(valid: &str) -> Vec<Case> {
    let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let json = Some("application/json");
    vec![
        Case {
            why: "no token",
            token: None,
            content_type: json,
            body: valid.to_owned(),
            status: StatusCode::UNAUTHORIZED,
            field: None,
        },
        Case {
            why: "wrong token",
            token: Some("nope"),
            content_type: json,
            body: valid.to_owned(),
            status: StatusCode::UNAUTHORIZED,
            field: None,
        },
        Case {
            why: "no token beats a huge body",
            token: None,
            content_type: json,
            body: huge.clone(),
            status: StatusCode::UNAUTHORIZED,
            field: None,
        },
        Case {
            why: "2 MiB body",
            token: Some(WEBHOOK_TOKEN),
            content_type: json,
            body: huge.clone(),
            status: StatusCode::PAYLOAD_TOO_LARGE,
            field: None,
        },
        Case {
            why: "huge body beats the content type",
            token: Some(WEBHOOK_TOKEN),
            content_type: Some("text/plain"),
            body: huge,
            status: StatusCode::PAYLOAD_TOO_LARGE,
            field: None,
        },
        Case {
            why: "text/plain",
            token: Some(WEBHOOK_TOKEN),
            content_type: Some("text/plain"),
            body: valid.to_owned(),
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            field: None,
        },
        Case {
            why: "no content type",
            token: Some(WEBHOOK_TOKEN),
            content_type: None,
            body: valid.to_owned(),
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            field: None,
        },
        Case {
            why: "malformed JSON",
            token: Some(WEBHOOK_TOKEN),
            content_type: json,
            body: "{\"key\": ".to_owned(),
            status: StatusCode::BAD_REQUEST,
            field: Some("body"),
        },
        Case {
            why: "empty body",
            token: Some(WEBHOOK_TOKEN),
            content_type: json,
            body: String::new(),
            status: StatusCode::BAD_REQUEST,
            field: Some("body"),
        },
        Case {
            why: "a JSON array",
            token: Some(WEBHOOK_TOKEN),
            content_type: json,
            body: format!("[{valid}]"),
            status: StatusCode::BAD_REQUEST,
            field: Some("body"),
        },
        Case {
            why: "null",
            token: Some(WEBHOOK_TOKEN),
            content_type: json,
            body: "null".to_owned(),
            status: StatusCode::BAD_REQUEST,
            field: Some("body"),
        },
    ]
}

/// Payload mistakes per source: (why, body, field).
fn payload_cases(source: &str) -> Vec<(&'static str, String, &'static str)> {
    let am = fixture("alerts/alertmanager_01_firing.json");
    let dt = fixture("alerts/dynatrace_open.json");
    let kp = fixture("alerts/keptn_problem_open.json");
    match source {
        "alertmanager" => vec![
            ("missing groupKey", am.replace("\"groupKey\"", "\"groupkey\""), "groupKey"),
            ("unknown status", am.replacen("\"status\":\"firing\"", "\"status\":\"burning\"", 1), "status"),
            (
                "alerts not a list",
                am.replace("\"alerts\":[", "\"alerts\":{\"x\":[").replace("],\"groupLabels\"", "]},\"groupLabels\""),
                "alerts",
            ),
            (
                "fingerprint wrong type",
                am.replacen("\"fingerprint\":\"711c95e367dfcd66\"", "\"fingerprint\":7", 1),
                "alerts[0].fingerprint",
            ),
            (
                "bad startsAt",
                am.replacen("\"startsAt\":\"2026-11-21T22:18:57Z\"", "\"startsAt\":\"yesterday\"", 1),
                "alerts[0].startsAt",
            ),
            ("wrong version", am.replace("\"version\":\"4\"", "\"version\":\"3\""), "version"),
        ],
        "dynatrace" => vec![
            ("missing PID", dt.replace("\"PID\"", "\"pid\""), "PID"),
            ("unknown State", dt.replace("\"State\":\"OPEN\"", "\"State\":\"MAYBE\""), "State"),
            (
                "empty title",
                dt.replace(
                    "\"ProblemTitle\":\"Response time degradation on \\\"checkout\\\"\"",
                    "\"ProblemTitle\":\"\"",
                ),
                "ProblemTitle",
            ),
            (
                "entities not a list",
                dt.replacen("\"ImpactedEntities\":[", "\"ImpactedEntities\":{\"x\":[", 1).replacen(
                    "}],\"ProblemDetails\"",
                    "}]},\"ProblemDetails\"",
                    1,
                ),
                "ImpactedEntities",
            ),
        ],
        "generic" => vec![
            ("missing key", r#"{"title":"t"}"#.to_owned(), "key"),
            ("missing title", r#"{"key":"k"}"#.to_owned(), "title"),
            ("key wrong type", r#"{"key":1,"title":"t"}"#.to_owned(), "key"),
            ("unknown status", r#"{"key":"k","title":"t","status":"burning"}"#.to_owned(), "status"),
            ("unknown severity", r#"{"key":"k","title":"t","severity":"apocalyptic"}"#.to_owned(), "severity"),
            ("labels wrong type", r#"{"key":"k","title":"t","labels":["a"]}"#.to_owned(), "labels"),
        ],
        "keptn" => vec![
            ("not a problem event", kp.replace("sh.keptn.events.problem", "sh.keptn.event.action.triggered"), "type"),
            ("missing context", kp.replace("\"shkeptncontext\"", "\"context\""), "shkeptncontext"),
            ("unknown State", kp.replace("\"State\":\"OPEN\"", "\"State\":\"MAYBE\""), "data.State"),
        ],
        _ => unreachable!("no such source"),
    }
}

#[tokio::test]
async fn every_hook_refuses_bad_transport_in_the_contracts_order() {
    let app = spawn_app().await;
    for (source, valid_fixture) in HOOKS {
        for case in transport_cases(&fixture(valid_fixture)) {
            let mut request = app.http.post(format!("{}/hooks/{source}", app.base)).body(case.body.clone());
            if let Some(token) = case.token {
                request = request.bearer_auth(token);
            }
            if let Some(content_type) = case.content_type {
                request = request.header("content-type", content_type);
            }
            let response = request.send().await.unwrap();
            let status = response.status();
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            assert_eq!(status, case.status, "{source}: {}: {body}", case.why);
            assert!(body["error"].is_string(), "{source}: {}: every error has a JSON body, got {body}", case.why);
            if let Some(field) = case.field {
                assert_eq!(body["field"], field, "{source}: {}: {body}", case.why);
            }
        }
    }
}

#[tokio::test]
async fn every_hook_names_the_offending_field_of_a_bad_payload() {
    let app = spawn_app().await;
    for (source, _) in HOOKS {
        for (why, body, field) in payload_cases(source) {
            let (status, answer) = app.post_hook(source, &body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{source}: {why}: {answer}");
            assert_eq!(answer["field"], field, "{source}: {why}: {answer}");
        }
    }
    let (_, list) = app.get_api("/api/incidents").await;
    assert_eq!(list["incidents"], serde_json::json!([]), "no bad delivery opened an incident");
}

#[tokio::test]
async fn an_unknown_hook_is_a_404_naming_the_known_ones() {
    let app = spawn_app().await;
    let (status, body) = app.post_hook("nagios", "{}").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().unwrap().contains("alertmanager, dynatrace, generic or keptn"));
}
