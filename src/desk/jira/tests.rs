//! The Jira desk against a wiremock server shaped like Jira Cloud: real paths, `Basic` auth on
//! every mock (a request without it gets wiremock's 404), string transition ids, 201/204/200
//! answers, 429s and 503s. Answers come from `tests/fixtures/jira/`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use wiremock::matchers::{body_json, body_partial_json, header, method, path, query_param};
use wiremock::{Mock, MockBuilder, MockServer, Request, ResponseTemplate};

use super::*;
use crate::desk::priority_for;

const BASIC: &str = "Basic Ym90QGV4YW1wbGUuY29tOnNlY3JldC10b2tlbg==";
const ISSUE: &str = "/rest/api/3/issue/OPS-42";

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/jira/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {path}: {e}"))
}

fn settings(server: &MockServer) -> JiraSettings {
    JiraSettings {
        base_url: server.uri(),
        email: "bot@example.com".to_owned(),
        token_env: "JIRA_API_TOKEN".to_owned(),
        project_key: "OPS".to_owned(),
        issue_type: "Incident".to_owned(),
        service_desk_id: None,
        priorities: BTreeMap::new(),
        transitions: BTreeMap::from([
            ("investigating".to_owned(), "Start progress".to_owned()),
            ("monitoring".to_owned(), "Monitor".to_owned()),
            ("reopened".to_owned(), "Reopen".to_owned()),
        ]),
        done_transition: "Resolve".to_owned(),
        labels: vec!["incident".to_owned()],
        write_spacing: Duration::ZERO,
        search_lag: Duration::ZERO,
        timeout: Duration::from_secs(5),
        webhook_secret_env: None,
    }
}

fn desk(settings: JiraSettings) -> JiraDesk {
    JiraDesk::new(settings, SecretString::from("secret-token")).expect("desk")
}

fn key() -> TicketKey {
    TicketKey::external("OPS-42")
}

fn draft() -> TicketDraft {
    TicketDraft {
        incident: IncidentId::from_seq(42),
        summary: "INC-42: checkout is down".to_owned(),
        description: "HTTP 500 on /checkout\nChannel: https://slack.example/archives/C42".to_owned(),
        priority: priority_for(Severity::Sev2).to_owned(),
        labels: vec![],
    }
}

/// `GET /rest/api/3/search/jql` for INC-42's label, answering `fixture`.
fn search(fixture_name: &str) -> Mock {
    Mock::given(method("GET"))
        .and(path("/rest/api/3/search/jql"))
        .and(header("authorization", BASIC))
        .and(query_param("jql", r#"project = "OPS" AND labels = "warroom-inc-42" ORDER BY created ASC"#))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture(fixture_name)))
}

fn create_issue() -> MockBuilder {
    Mock::given(method("POST")).and(path("/rest/api/3/issue")).and(header("authorization", BASIC))
}

async fn requests_to(server: &MockServer, verb: &str, route: &str) -> Vec<Request> {
    let all = server.received_requests().await.unwrap_or_default();
    all.into_iter().filter(|r| r.method.as_str() == verb && r.url.path() == route).collect()
}

#[tokio::test]
async fn a_create_answered_with_503_is_retried_into_one_issue() {
    let server = MockServer::start().await;
    search("search_jql_empty.json").mount(&server).await;
    create_issue().respond_with(ResponseTemplate::new(503)).up_to_n_times(1).with_priority(1).mount(&server).await;
    create_issue()
        .and(body_partial_json(json!({"fields": {
            "project": {"key": "OPS"},
            "issuetype": {"name": "Incident"},
            "summary": "INC-42: checkout is down",
            "priority": {"name": "High"},
            "labels": ["incident", "warroom", "warroom-inc-42"],
        }})))
        .respond_with(ResponseTemplate::new(201).set_body_json(fixture("create_issue_201.json")))
        .expect(1)
        .mount(&server)
        .await;
    let desk = desk(settings(&server));

    let first = desk.create(&draft()).await;
    let retried = desk.create(&draft()).await.expect("the retry creates the issue");
    let again = desk.create(&draft()).await.expect("a later create finds it");

    assert!(matches!(first, Err(DeskError::Unavailable(_))), "{first:?}");
    assert_eq!((retried.as_str(), again.as_str()), ("OPS-42", "OPS-42"));
    let sent = requests_to(&server, "POST", "/rest/api/3/issue").await;
    assert_eq!(sent.len(), 2, "one 503, one 201, nothing after the issue is known");
    let body: Value = serde_json::from_slice(&sent[1].body).expect("json");
    assert_eq!(
        body["fields"]["description"]["content"][1]["content"][1]["marks"][0]["attrs"]["href"],
        "https://slack.example/archives/C42"
    );
}

#[tokio::test]
async fn a_retry_after_a_lost_answer_finds_the_issue_by_its_label() {
    let server = MockServer::start().await;
    search("search_jql_empty.json").up_to_n_times(1).with_priority(1).mount(&server).await;
    search("search_jql_found.json").mount(&server).await;
    create_issue()
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(fixture("create_issue_201.json"))
                .set_delay(Duration::from_millis(1500)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let desk = desk(JiraSettings { timeout: Duration::from_millis(300), ..settings(&server) });

    let lost = desk.create(&draft()).await;
    let retried = desk.create(&draft()).await.expect("the retry finds the issue");

    assert!(matches!(lost, Err(DeskError::Unavailable(ref m)) if m.contains("timed out")), "{lost:?}");
    assert_eq!(retried.as_str(), "OPS-42");
    assert_eq!(desk.find_for_incident(IncidentId::from_seq(42)).await.expect("find"), Some(retried));
}

#[tokio::test]
async fn a_search_soon_after_an_unknown_outcome_waits_for_the_index() {
    let server = MockServer::start().await;
    search("search_jql_empty.json").mount(&server).await;
    create_issue().respond_with(ResponseTemplate::new(503)).up_to_n_times(1).with_priority(1).mount(&server).await;
    create_issue()
        .respond_with(ResponseTemplate::new(201).set_body_json(fixture("create_issue_201.json")))
        .mount(&server)
        .await;
    let lag = Duration::from_millis(300);
    let desk = desk(JiraSettings { search_lag: lag, ..settings(&server) });

    let first = desk.create(&draft()).await;
    let too_soon = desk.create(&draft()).await;
    let posts_while_waiting = requests_to(&server, "POST", "/rest/api/3/issue").await.len();
    tokio::time::sleep(lag).await;
    let later = desk.create(&draft()).await.expect("after the lag the search is trusted");

    assert!(matches!(first, Err(DeskError::Unavailable(_))), "{first:?}");
    assert!(
        matches!(too_soon, Err(DeskError::Unavailable(ref m)) if m.contains("waiting for Jira's search index")),
        "{too_soon:?}"
    );
    assert_eq!(posts_while_waiting, 1, "no second create while the index may lag");
    assert_eq!(later.as_str(), "OPS-42");
}

#[tokio::test]
async fn a_refused_create_is_rejected_with_jira_s_words_and_not_waited_for() {
    let server = MockServer::start().await;
    search("search_jql_empty.json").mount(&server).await;
    create_issue()
        .respond_with(ResponseTemplate::new(400).set_body_json(fixture("error_400.json")))
        .mount(&server)
        .await;
    let desk = desk(JiraSettings { search_lag: Duration::from_secs(60), ..settings(&server) });

    let refused = desk.create(&draft()).await;
    let found = desk.find_for_incident(IncidentId::from_seq(42)).await;

    assert!(
        matches!(refused, Err(DeskError::Rejected(ref m)) if m.contains("priority: Specify a valid")),
        "{refused:?}"
    );
    assert_eq!(found, Ok(None), "a refusal created nothing, so there is no index to wait for");
}

#[tokio::test]
async fn an_internal_note_goes_to_the_platform_api_marked_internal_and_once() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{ISSUE}/comment")))
        .and(header("authorization", BASIC))
        .and(query_param("orderBy", "-created"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"startAt": 0, "maxResults": 50, "total": 0, "comments": []})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{ISSUE}/comment")))
        .and(header("authorization", BASIC))
        .and(body_partial_json(json!({"properties": [{"key": "sd.public.comment", "value": {"internal": true}}]})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "10001"})))
        .expect(1)
        .mount(&server)
        .await;
    let desk = desk(JiraSettings { service_desk_id: Some("4".to_owned()), ..settings(&server) });

    for _ in 0..2 {
        desk.comment(&key(), "ana", "rolled back the deploy", false, "job-9").await.expect("comment");
    }

    let sent = requests_to(&server, "POST", &format!("{ISSUE}/comment")).await;
    let body: Value = serde_json::from_slice(&sent[0].body).expect("json");
    assert_eq!(adf::plain_text(&body["body"]), "rolled back the deploy\n— ana via warroom · ref job-9");
}

#[tokio::test]
async fn a_public_note_goes_to_the_service_desk_api() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{ISSUE}/comment")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"comments": []})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/rest/servicedeskapi/request/OPS-42/comment"))
        .and(header("authorization", BASIC))
        .and(body_json(json!({"body": "We are rolling back.\n\n— ana via warroom · ref job-10", "public": true})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "10002", "public": true})))
        .expect(1)
        .mount(&server)
        .await;
    let desk = desk(JiraSettings { service_desk_id: Some("4".to_owned()), ..settings(&server) });

    desk.comment(&key(), "ana", "We are rolling back.", true, "job-10").await.expect("comment");

    assert!(requests_to(&server, "POST", &format!("{ISSUE}/comment")).await.is_empty());
}

#[tokio::test]
async fn a_comment_jira_already_has_is_not_posted_again_after_a_restart() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{ISSUE}/comment")))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("comments_page.json")))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{ISSUE}/comment")))
        .respond_with(ResponseTemplate::new(201))
        .expect(0)
        .mount(&server)
        .await;
    let desk = desk(settings(&server));

    desk.comment(&key(), "ana", "rolled back the deploy", false, "job-7").await.expect("comment");
}

#[tokio::test]
async fn a_status_runs_the_transition_of_that_name_by_its_string_id() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{ISSUE}/transitions")))
        .and(header("authorization", BASIC))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("transitions.json")))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{ISSUE}/transitions")))
        .and(header("authorization", BASIC))
        .and(body_json(json!({"transition": {"id": "11"}})))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let desk = desk(settings(&server));

    let done = desk.transition(&key(), "investigating").await.expect("transition");
    let unmapped = desk.transition(&key(), "identified").await.expect("no transition configured");

    assert_eq!(done.as_deref(), Some("Start progress"));
    assert_eq!(unmapped, None);
}

#[tokio::test]
async fn a_transition_not_available_now_is_rejected_listing_those_that_are() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{ISSUE}/transitions")))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("transitions.json")))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{ISSUE}/transitions")))
        .respond_with(ResponseTemplate::new(204))
        .expect(0)
        .mount(&server)
        .await;
    let desk = desk(settings(&server));

    let result = desk.transition(&key(), "monitoring").await;

    assert_eq!(
        result,
        Err(DeskError::Rejected(
            "OPS-42 cannot take the transition \"Monitor\" now; available now: Start progress, Resolve".to_owned()
        ))
    );
}

#[tokio::test]
async fn closing_runs_the_done_transition_with_the_resolution_and_closing_again_does_nothing() {
    let server = MockServer::start().await;
    let status = |name: &str| {
        Mock::given(method("GET"))
            .and(path(ISSUE))
            .and(query_param("fields", "status"))
            .respond_with(ResponseTemplate::new(200).set_body_json(fixture(name)))
    };
    status("issue_status_open.json").up_to_n_times(1).with_priority(1).mount(&server).await;
    status("issue.json").mount(&server).await;
    Mock::given(method("GET"))
        .and(path(format!("{ISSUE}/transitions")))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("transitions.json")))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{ISSUE}/transitions")))
        .and(body_json(json!({
            "transition": {"id": "31"},
            "update": {"comment": [{"add": {"body": adf::paragraphs("Rolled back release 2026.03.1")}}]},
        })))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let desk = desk(settings(&server));

    desk.close(&key(), "Rolled back release 2026.03.1").await.expect("close");
    desk.close(&key(), "Rolled back release 2026.03.1").await.expect("close again");
}

#[tokio::test]
async fn assigning_by_email_looks_the_account_up_once() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/rest/api/3/user/search"))
        .and(header("authorization", BASIC))
        .and(query_param("query", "ana@example.com"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("user_search.json")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path(format!("{ISSUE}/assignee")))
        .and(header("authorization", BASIC))
        .and(body_json(json!({"accountId": "5b10ac8d82e05b22cc7d4ef5"})))
        .respond_with(ResponseTemplate::new(204))
        .expect(2)
        .mount(&server)
        .await;
    let desk = desk(settings(&server));
    let assign = TicketUpdate { assignee: Some("ana@example.com".to_owned()), ..TicketUpdate::default() };

    desk.update(&key(), &assign).await.expect("first assign");
    desk.update(&key(), &assign).await.expect("second assign");
    let cached = desk.account_for_email("ANA@example.com").await.expect("lookup");

    assert_eq!(cached.as_deref(), Some("5b10ac8d82e05b22cc7d4ef5"), "the exact email wins over a name prefix");
}

#[tokio::test]
async fn severity_and_summary_changes_edit_the_issue_in_one_write() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path(ISSUE))
        .and(header("authorization", BASIC))
        .and(body_json(json!({"fields": {"summary": "INC-42: checkout is slow", "priority": {"name": "Blocker"}}})))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let mut settings = settings(&server);
    settings.priorities.insert("sev1".to_owned(), "Blocker".to_owned());
    let desk = desk(settings);
    let update = TicketUpdate {
        summary: Some("INC-42: checkout is slow".to_owned()),
        priority: Some(priority_for(Severity::Sev1).to_owned()),
        ..TicketUpdate::default()
    };

    desk.update(&key(), &update).await.expect("update");
}

#[tokio::test]
async fn an_attachment_is_uploaded_with_the_no_check_header_and_replaces_the_older_one() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/rest/api/3/attachment/meta"))
        .and(header("authorization", BASIC))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("attachment_meta.json")))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(ISSUE))
        .and(query_param("fields", "attachment"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("issue.json")))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{ISSUE}/attachments")))
        .and(header("authorization", BASIC))
        .and(header("x-atlassian-token", "no-check"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("add_attachment_200.json")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/rest/api/3/attachment/10100"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let desk = desk(settings(&server));

    desk.attach(&key(), "transcript.md", "text/markdown", b"# INC-42\nana: rolled back\n").await.expect("attach");

    let sent = requests_to(&server, "POST", &format!("{ISSUE}/attachments")).await;
    let content_type = sent[0].headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let body = String::from_utf8_lossy(&sent[0].body);
    assert!(content_type.starts_with("multipart/form-data"), "{content_type}");
    assert!(body.contains(r#"name="file"; filename="transcript.md""#), "{body}");
    assert!(body.contains("ana: rolled back"), "{body}");
}

#[tokio::test]
async fn an_attachment_above_the_upload_limit_goes_up_in_numbered_parts() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/rest/api/3/attachment/meta"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"enabled": true, "uploadLimit": 12})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(ISSUE))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"key": "OPS-42", "fields": {"attachment": []}})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{ISSUE}/attachments")))
        .and(header("x-atlassian-token", "no-check"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(3)
        .mount(&server)
        .await;
    let desk = desk(settings(&server));

    desk.attach(&key(), "transcript.md", "text/markdown", b"line one\nline two\nline 3\n").await.expect("attach");

    let names: Vec<String> = requests_to(&server, "POST", &format!("{ISSUE}/attachments"))
        .await
        .iter()
        .filter_map(|r| {
            let body = String::from_utf8_lossy(&r.body).into_owned();
            let start = body.find("filename=\"")? + "filename=\"".len();
            body[start..].split('"').next().map(str::to_owned)
        })
        .collect();
    assert_eq!(names, ["transcript-part1of3.md", "transcript-part2of3.md", "transcript-part3of3.md"]);
}

#[test]
fn splitting_keeps_every_part_within_the_limit_and_prefers_line_ends() {
    let text = "line one\nline two\nline 3\n".as_bytes();

    let parts = split(text, 12);

    assert_eq!(parts, [&b"line one\n"[..], b"line two\n", b"line 3\n"]);
    assert_eq!(split(b"abcdefghij", 4), [&b"abcd"[..], b"efgh", b"ij"]);
    assert_eq!(split("héhé".as_bytes(), 2), [&b"h"[..], "é".as_bytes(), b"h", "é".as_bytes()]);
    assert_eq!(split(b"small", 100), [&b"small"[..]]);
}

#[test]
fn part_names_are_recognised_as_parts_of_their_file() {
    assert_eq!(part_name("transcript.md", 2, 3), "transcript-part2of3.md");
    assert_eq!(part_name("README", 1, 2), "README-part1of2");
    assert!(is_part_of("transcript-part2of3.md", "transcript.md"));
    assert!(!is_part_of("transcript-partXof3.md", "transcript.md"));
    assert!(!is_part_of("transcript.md", "transcript.md"));
}

#[tokio::test]
async fn a_429_with_retry_after_becomes_rate_limited_and_a_503_unavailable() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{ISSUE}/comment")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"comments": []})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{ISSUE}/comment")))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "30")
                .insert_header("RateLimit-Reason", "jira-per-issue-on-write"),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{ISSUE}/transitions")))
        .respond_with(ResponseTemplate::new(503).set_body_string("Service Unavailable"))
        .mount(&server)
        .await;
    let desk = desk(settings(&server));

    let limited = desk.comment(&key(), "ana", "note", false, "job-11").await;
    let down = desk.transition(&key(), "investigating").await;

    assert_eq!(limited, Err(DeskError::RateLimited { retry_after: Some(Duration::from_secs(30)) }));
    assert!(matches!(down, Err(DeskError::Unavailable(ref m)) if m.contains("503")), "{down:?}");
    let retried = desk.comment(&key(), "ana", "note", false, "job-11").await;
    assert!(matches!(retried, Err(DeskError::RateLimited { .. })), "a failed comment is not remembered as sent");
}

#[tokio::test]
async fn writes_to_one_issue_are_spaced_and_writes_to_others_are_not() {
    let server = MockServer::start().await;
    Mock::given(method("PUT")).respond_with(ResponseTemplate::new(204)).mount(&server).await;
    let spacing = Duration::from_millis(400);
    let desk = desk(JiraSettings { write_spacing: spacing, ..settings(&server) });
    let update = TicketUpdate { summary: Some("INC-42: checkout is slow".to_owned()), ..TicketUpdate::default() };

    let started = Instant::now();
    desk.update(&key(), &update).await.expect("first write");
    desk.update(&TicketKey::external("OPS-43"), &update).await.expect("other issue");
    let other_issue = started.elapsed();
    desk.update(&key(), &update).await.expect("second write");
    let same_issue = started.elapsed();

    assert!(other_issue < spacing, "another issue does not wait: {other_issue:?}");
    assert!(same_issue >= spacing, "the second write to OPS-42 came after {same_issue:?}");
}

#[tokio::test]
async fn a_done_issue_reads_as_a_closed_ticket_in_warroom_s_words() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(ISSUE))
        .and(header("authorization", BASIC))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("issue.json")))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/rest/api/3/issue/OPS-404"))
        .respond_with(ResponseTemplate::new(404).set_body_json(
            json!({"errorMessages": ["Issue does not exist or you do not have permission to see it."], "errors": {}}),
        ))
        .mount(&server)
        .await;
    let desk = desk(settings(&server));

    let ticket = desk.get(&key()).await.expect("get").expect("the issue");
    let missing = desk.get(&TicketKey::external("OPS-404")).await.expect("get");

    let at = |text: &str| text.parse::<jiff::Timestamp>().expect("time");
    assert_eq!(
        ticket,
        Ticket {
            key: key(),
            incident: IncidentId::from_seq(42),
            status: TicketStatus::Closed,
            assignee: Some("5b10ac8d82e05b22cc7d4ef5".to_owned()),
            priority: "P2".to_owned(),
            summary: "INC-42: checkout is down".to_owned(),
            description: "HTTP 500 on /checkout".to_owned(),
            comments: vec![Comment {
                at: at("2026-03-01T10:02:00Z"),
                author: "warroom bot".to_owned(),
                text: "We are rolling back.".to_owned(),
                public: true,
            }],
            attachments: vec![Attachment {
                at: at("2026-03-01T10:05:00Z"),
                name: "transcript.md".to_owned(),
                content_type: "text/markdown".to_owned(),
                size: 42,
            }],
        }
    );
    assert_eq!(missing, None);
}

#[tokio::test]
async fn the_channel_link_is_a_remote_link_keyed_by_its_url() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("{ISSUE}/remotelink")))
        .and(header("authorization", BASIC))
        .and(body_json(json!({
            "globalId": "https://slack.example/archives/C42",
            "object": {"url": "https://slack.example/archives/C42", "title": "Slack: #inc-42-checkout"},
        })))
        .respond_with(ResponseTemplate::new(201).set_body_json(
            json!({"id": 10000, "self": "https://example.atlassian.net/rest/api/3/issue/OPS-42/remotelink/10000"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let desk = desk(settings(&server));

    desk.link(&key(), "Slack: #inc-42-checkout", "https://slack.example/archives/C42").await.expect("link");
}

#[tokio::test]
async fn the_desk_calls_itself_jira() {
    let server = MockServer::start().await;

    assert_eq!(desk(settings(&server)).name(), "jira");
}
