//! Jira Service Management as the desk, end to end: the issue created once, transitions by
//! name, attachments with `X-Atlassian-Token: no-check`, and Jira webhooks back into the channel
//! (signed, without echoing warroom's own writes).

use std::time::Duration;

use hmac::{KeyInit, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::helpers::{ANA, TestApp, fixture, spawn_app_with};

const SECRET: &str = "test-jira-webhook-secret";

async fn jira() -> MockServer {
    let server = MockServer::start().await;
    let json_fixture = |name: &str| serde_json::from_str::<Value>(&fixture(&format!("jira/{name}"))).unwrap();
    let mount = |m: &str, p: &str, status: u16, body: Option<Value>| {
        let mut response = ResponseTemplate::new(status);
        if let Some(body) = body {
            response = response.set_body_json(body);
        }
        Mock::given(method(m))
            .and(path(p.to_owned()))
            .and(header("Authorization", "Basic d2Fycm9vbUBleGFtcGxlLmNvbTp0ZXN0LWppcmEtdG9rZW4="))
            .respond_with(response)
    };
    mount("GET", "/rest/api/3/search/jql", 200, Some(json_fixture("search_jql_empty.json"))).mount(&server).await;
    mount("POST", "/rest/api/3/issue", 201, Some(json_fixture("create_issue_201.json"))).mount(&server).await;
    mount("POST", "/rest/api/3/issue/OPS-42/remotelink", 201, Some(json!({ "id": 1 }))).mount(&server).await;
    mount("GET", "/rest/api/3/issue/OPS-42/transitions", 200, Some(json_fixture("transitions.json")))
        .mount(&server)
        .await;
    mount("POST", "/rest/api/3/issue/OPS-42/transitions", 204, None).mount(&server).await;
    mount(
        "GET",
        "/rest/api/3/issue/OPS-42/comment",
        200,
        Some(json!({ "comments": [], "startAt": 0, "maxResults": 50, "total": 0 })),
    )
    .mount(&server)
    .await;
    mount("POST", "/rest/api/3/issue/OPS-42/comment", 201, Some(json!({ "id": "100" }))).mount(&server).await;
    mount("GET", "/rest/api/3/attachment/meta", 200, Some(json_fixture("attachment_meta.json"))).mount(&server).await;
    mount("POST", "/rest/api/3/issue/OPS-42/attachments", 200, Some(json_fixture("add_attachment_200.json")))
        .mount(&server)
        .await;
    mount("GET", "/rest/api/3/issue/OPS-42", 200, Some(json_fixture("issue_status_open.json"))).mount(&server).await;
    mount("PUT", "/rest/api/3/issue/OPS-42", 204, None).mount(&server).await;
    mount("GET", "/rest/api/3/myself", 200, Some(json!({ "accountId": "warroom-bot-account" }))).mount(&server).await;
    server
}

async fn app_with_jira(server: &MockServer) -> TestApp {
    let base = server.uri();
    let app = spawn_app_with(move |s| {
        s.desk.kind = warroom::config::DeskKind::Jira;
        s.desk.jira = Some(
            toml::from_str(&format!(
                "base_url = \"{base}\"\nemail = \"warroom@example.com\"\nproject_key = \"OPS\"\ntoken_env = \"JIRA_TOKEN\"\n\
                 webhook_secret_env = \"JIRA_SECRET\"\nwrite_spacing = \"10ms\"\nsearch_lag = \"10ms\"\n\
                 [transitions]\ninvestigating = \"Start progress\"\nidentified = \"Start progress\"\nresolved = \"Resolve\"\n"
            ))
            .unwrap(),
        );
        s.desk.jira.as_mut().unwrap().done_transition = "Resolve".to_owned();
    })
    .await;
    app.connected().await;
    app
}

fn requests_to<'a>(all: &'a [Request], m: &str, p: &str) -> Vec<&'a Request> {
    all.iter().filter(|r| r.method.as_str() == m && r.url.path() == p).collect()
}

fn signed(body: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[tokio::test]
async fn the_jira_issue_is_created_once_transitioned_by_name_and_gets_the_transcript_on_resolve() {
    let server = jira().await;
    let app = app_with_jira(&server).await;

    app.deliver("generic", "alerts/generic_disk.json", "opened").await;
    app.settle().await;
    app.deliver("generic", "alerts/generic_disk.json", "duplicate").await;
    let channel = app.channel_of("INC-1").await.id;
    assert_eq!(app.incident("INC-1").await["ticket"]["key"], "OPS-42");

    app.slash(&channel, ANA, "status identified").await;
    app.slash(&channel, ANA, "note --public disk cleaned, watching").await;
    app.slash(&channel, ANA, "resolve disk freed").await;
    app.settle().await;

    let all = server.received_requests().await.unwrap();
    assert_eq!(requests_to(&all, "POST", "/rest/api/3/issue").len(), 1, "one issue, however often the problem repeats");
    let create: Value = serde_json::from_slice(&requests_to(&all, "POST", "/rest/api/3/issue")[0].body).unwrap();
    assert!(create["fields"]["labels"].as_array().unwrap().iter().any(|l| l == "warroom-inc-1"), "{create}");
    let transitions: Vec<Value> = requests_to(&all, "POST", "/rest/api/3/issue/OPS-42/transitions")
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    let ids: Vec<&str> = transitions.iter().map(|t| t["transition"]["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"11"), "status identified → the \"Start progress\" transition: {transitions:?}");
    let uploads = requests_to(&all, "POST", "/rest/api/3/issue/OPS-42/attachments");
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].headers.get("x-atlassian-token").unwrap(), "no-check");
    assert!(
        !requests_to(&all, "POST", "/rest/api/3/issue/OPS-42/remotelink").is_empty(),
        "the channel is linked from the issue"
    );
}

#[tokio::test]
async fn jira_changes_reach_the_channel_unless_warroom_made_them_and_unsigned_deliveries_are_refused() {
    let server = jira().await;
    let app = app_with_jira(&server).await;
    app.deliver("generic", "alerts/generic_disk.json", "opened").await;
    app.settle().await;
    let channel = app.channel_of("INC-1").await.id;
    let body = fixture("jira/webhook_issue_updated_status.json").replace("INC-42", "INC-1");

    let post = |body: String, signature: Option<String>| {
        let mut request =
            app.http.post(format!("{}/hooks/jira", app.base)).header("content-type", "application/json").body(body);
        if let Some(signature) = signature {
            request = request.header("X-Hub-Signature", signature);
        }
        request.send()
    };
    assert_eq!(post(body.clone(), None).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(post(body.clone(), Some("sha256=00".to_owned())).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let ours = body.replace("5b10ac8d82e05b22cc7d4ef5", "warroom-bot-account");
    assert_eq!(post(ours.clone(), Some(signed(&ours))).await.unwrap().status(), StatusCode::ACCEPTED);
    app.settle().await;
    assert!(
        !app.slack.messages(&channel).iter().any(|m| m.text.contains("in Jira")),
        "warroom's own write is not echoed"
    );

    let response = post(body.clone(), Some(signed(&body))).await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    app.settle().await;
    assert!(
        app.slack
            .wait_for(Duration::from_secs(5), |s| s
                .messages(&channel)
                .iter()
                .any(|m| m.text.contains("OPS-42 moved to *Resolved* in Jira")))
            .await,
        "{:#?}",
        app.slack.messages(&channel)
    );
    let again = post(body.clone(), Some(signed(&body))).await.unwrap();
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    assert_eq!(again.json::<Value>().await.unwrap()["duplicate"], true);
    app.settle().await;
    let posts = app.slack.messages(&channel).iter().filter(|m| m.text.contains("moved to *Resolved* in Jira")).count();
    assert_eq!(posts, 1, "a redelivered webhook posts nothing again");
}

#[tokio::test]
async fn during_a_jira_outage_updates_wait_and_are_applied_in_their_original_order_and_the_issue_is_created_once() {
    let server = jira().await;
    // Jira is down for the first two attempts of the create and of the comments: these answers
    // take priority over the fake's successful ones until they are used up.
    for path_of in ["/rest/api/3/issue", "/rest/api/3/issue/OPS-42/comment"] {
        Mock::given(method("POST"))
            .and(path(path_of))
            .respond_with(ResponseTemplate::new(503))
            .up_to_n_times(2)
            .with_priority(1)
            .mount(&server)
            .await;
    }
    let app = app_with_jira(&server).await;

    app.deliver("generic", "alerts/generic_disk.json", "opened").await;
    app.settle().await;
    let channel = app.channel_of("INC-1").await.id;
    for n in 1..=3 {
        app.slash(&channel, ANA, &format!("note update number {n}")).await;
    }
    app.settle().await;

    let all = server.received_requests().await.unwrap();
    let creates = requests_to(&all, "POST", "/rest/api/3/issue");
    assert_eq!(creates.len(), 3, "two failed attempts, then one issue");
    let texts: Vec<String> = requests_to(&all, "POST", "/rest/api/3/issue/OPS-42/comment")
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .filter(|body| body.contains("update number"))
        .collect();
    let delivered: Vec<usize> =
        texts.iter().map(|t| (1..=3).find(|n| t.contains(&format!("update number {n}"))).unwrap()).collect();
    let mut last_seen: Vec<usize> = Vec::new();
    for n in delivered {
        if last_seen.last() != Some(&n) && !last_seen.contains(&n) {
            last_seen.push(n);
        }
    }
    assert_eq!(last_seen, [1, 2, 3], "notes reach Jira in the order they were written: {texts:?}");
}

#[tokio::test]
async fn a_ticket_lookup_slower_than_the_ack_allows_answers_through_the_response_url() {
    let server = jira().await;
    let app = app_with_jira(&server).await;
    app.deliver("generic", "alerts/generic_disk.json", "opened").await;
    app.settle().await;
    let channel = app.channel_of("INC-1").await.id;
    let mut issue = serde_json::from_str::<Value>(&fixture("jira/issue_status_open.json")).unwrap();
    issue["fields"]["labels"] = json!(["warroom", "warroom-inc-1"]);
    Mock::given(method("GET"))
        .and(path("/rest/api/3/issue/OPS-42"))
        .respond_with(ResponseTemplate::new(200).set_body_json(issue).set_delay(Duration::from_millis(2500)))
        .with_priority(1)
        .mount(&server)
        .await;

    let ack = app.slash(&channel, ANA, "ticket").await.unwrap_or_default();

    assert!(ack.starts_with("Looking up the ticket"), "the ack must not wait for Jira: {ack:?}");
    let answered = app.response_url_post_containing("OPS-42").await;
    assert!(answered, "the answer follows: {:?}", app.slack.response_url_posts());
}
