//! The HTTP executor: call a webhook once and judge the run by its status code.
//!
//! Header secrets are read from the environment at run time, so they never live in `commands/`.
//! Only the host is ever shown in progress: webhook URLs (Slack's, for one) often carry their
//! secret in the path.

use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};

use super::{ExecError, Shared, head_chars, human, retry_after};
use crate::runbook::plan::{HttpPlan, Progress, RunReport, RunStatus};

/// How many characters of the response body are shown.
const BODY_PREVIEW_CHARS: usize = 200;

/// How much of the body is read to make the preview: enough for any JSON answer worth showing.
const BODY_READ_LIMIT: usize = 64 * 1024;

/// Calls the webhook in `plan` and reports its answer.
pub(super) async fn run(
    shared: &Shared,
    plan: &HttpPlan,
    timeout: Duration,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<RunReport, ExecError> {
    let request = build(shared, plan)?;
    let host =
        reqwest::Url::parse(&plan.url).ok().and_then(|url| url.host_str().map(str::to_owned)).unwrap_or_default();
    progress(Progress::Started { summary: format!("{} {host}", plan.method.to_uppercase()), link: None });

    let call = async {
        let response = request.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        Ok::<_, reqwest::Error>((status, headers, read_head(response).await))
    };
    let (status, headers, body) = match tokio::time::timeout(timeout, call).await {
        Err(_) => return Ok(timed_out(&host, timeout)),
        // Nothing was sent, so the caller may safely try again.
        Ok(Err(error)) if error.is_connect() => {
            return Err(ExecError::Transport(format!("could not connect to {host}: {}", error.without_url())));
        }
        // Sent, but whether the far side acted is unknown: a report, so nobody retries blindly.
        Ok(Err(error)) if error.is_timeout() => return Ok(timed_out(&host, shared.settings.http_timeout)),
        Ok(Err(error)) => return Err(ExecError::Transport(format!("calling {host}: {}", error.without_url()))),
        Ok(Ok(answer)) => answer,
    };

    let expected = if plan.expected_status.is_empty() {
        status.is_success()
    } else {
        plan.expected_status.contains(&status.as_u16())
    };
    if status == StatusCode::TOO_MANY_REQUESTS && !expected {
        return Err(ExecError::RateLimited { retry_after: retry_after(&headers) });
    }

    let mut summary = format!("HTTP {}", status_line(status));
    if !expected {
        summary.push_str(&format!(", expected {}", expectation(&plan.expected_status)));
    }
    let status = if expected { RunStatus::Succeeded } else { RunStatus::Failed };
    let preview = head_chars(&preview(&body), BODY_PREVIEW_CHARS.min(shared.settings.output_cap));
    Ok(RunReport { status, summary, link: None, output_tail: preview })
}

/// The request, with secrets resolved. Invalid settings are launch errors that name the part at
/// fault but never echo a header value, since it may be a secret.
fn build(shared: &Shared, plan: &HttpPlan) -> Result<reqwest::RequestBuilder, ExecError> {
    let method = Method::from_bytes(plan.method.to_uppercase().as_bytes())
        .map_err(|_| ExecError::Launch(format!("invalid HTTP method {:?}", plan.method)))?;
    let url =
        reqwest::Url::parse(&plan.url).map_err(|error| ExecError::Launch(format!("invalid webhook URL: {error}")))?;
    let mut request = shared.client()?.request(method, url);
    for (name, secret) in &plan.headers {
        let value = shared.secret(secret)?;
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ExecError::Launch(format!("invalid header name {name:?}")))?;
        let mut value =
            HeaderValue::from_str(&value).map_err(|_| ExecError::Launch(format!("invalid value for header {name}")))?;
        value.set_sensitive(true);
        request = request.header(name, value);
    }
    if let Some(body) = &plan.body {
        request = request.json(body);
    }
    Ok(request)
}

/// The start of the body, at most [`BODY_READ_LIMIT`] bytes: only a preview is shown, and a
/// webhook answering with megabytes must not fill memory. The status already decided the outcome,
/// so a body cut short only loses the preview.
async fn read_head(mut response: reqwest::Response) -> String {
    let mut head = Vec::new();
    while head.len() < BODY_READ_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => head.extend_from_slice(&chunk[..chunk.len().min(BODY_READ_LIMIT - head.len())]),
            Ok(None) | Err(_) => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

fn timed_out(host: &str, after: Duration) -> RunReport {
    RunReport {
        status: RunStatus::TimedOut,
        summary: format!("no answer from {host} within {}", human(after)),
        link: None,
        output_tail: String::new(),
    }
}

/// `202 Accepted`, or just `299` for a code without a reason phrase.
fn status_line(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// `any 2xx`, `200`, `200 or 202`, `200, 201 or 202`.
fn expectation(expected: &[u16]) -> String {
    match expected {
        [] => "any 2xx".to_owned(),
        [only] => only.to_string(),
        [rest @ .., last] => {
            let rest: Vec<String> = rest.iter().map(u16::to_string).collect();
            format!("{} or {last}", rest.join(", "))
        }
    }
}

/// The body on one line: JSON re-serialised compactly, anything else with whitespace collapsed.
fn preview(body: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(json) => json.to_string(),
        Err(_) => body.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;
    use wiremock::matchers::{body_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::super::{ExecutorSettings, Executors};
    use super::*;
    use crate::runbook::plan::{Execution, Plan, Secret};

    fn executors() -> Executors {
        let settings = ExecutorSettings {
            poll_interval: Duration::from_millis(20),
            http_timeout: Duration::from_secs(2),
            output_cap: 4096,
        };
        Executors::new(settings, Arc::new(|name| (name == "DEPLOY_HOOK_TOKEN").then(|| "s3cret".to_owned())))
    }

    fn plan(server: &MockServer) -> HttpPlan {
        HttpPlan {
            method: "POST".to_owned(),
            url: format!("{}/hooks/rollback", server.uri()),
            headers: vec![
                ("Authorization".to_owned(), Secret::Env("DEPLOY_HOOK_TOKEN".to_owned())),
                ("X-Source".to_owned(), Secret::Literal("warroom".to_owned())),
            ],
            body: Some(json!({"service": "payments", "version": "1.4.1"})),
            expected_status: vec![202],
        }
    }

    fn execution(plan: HttpPlan, timeout: Duration) -> Execution {
        Execution { runbook: "rollback".to_owned(), plan: Plan::Http(plan), timeout }
    }

    #[tokio::test]
    async fn the_expected_status_succeeds_and_the_body_is_shown() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/hooks/rollback"))
            .respond_with(ResponseTemplate::new(202).set_body_json(json!({"queued": true, "id": "rb-17"})))
            .expect(1)
            .mount(&server)
            .await;

        let report = executors().run(&execution(plan(&server), Duration::from_secs(5)), &|_| {}).await.expect("sent");

        assert_eq!(report.status, RunStatus::Succeeded);
        assert_eq!(report.summary, "HTTP 202 Accepted");
        assert_eq!(report.output_tail, r#"{"id":"rb-17","queued":true}"#);
    }

    #[tokio::test]
    async fn a_status_other_than_the_expected_one_fails() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
            .expect(1)
            .mount(&server)
            .await;
        let plan = HttpPlan { expected_status: vec![201, 202], ..plan(&server) };

        let report = executors().run(&execution(plan, Duration::from_secs(5)), &|_| {}).await.expect("sent");

        assert_eq!(report.status, RunStatus::Failed);
        assert_eq!(report.summary, "HTTP 200 OK, expected 201 or 202");
        assert_eq!(report.output_tail, "ok");
    }

    #[tokio::test]
    async fn no_expected_status_means_any_2xx() {
        let server = MockServer::start().await;
        Mock::given(method("POST")).respond_with(ResponseTemplate::new(204)).mount(&server).await;
        let plan = HttpPlan { expected_status: Vec::new(), ..plan(&server) };

        let report = executors().run(&execution(plan.clone(), Duration::from_secs(5)), &|_| {}).await.expect("sent");
        assert_eq!((report.status, report.summary.as_str()), (RunStatus::Succeeded, "HTTP 204 No Content"));

        server.reset().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(500).set_body_string("boom"))
            .mount(&server)
            .await;
        let report = executors().run(&execution(plan, Duration::from_secs(5)), &|_| {}).await.expect("sent");
        assert_eq!(report.status, RunStatus::Failed);
        assert_eq!(report.summary, "HTTP 500 Internal Server Error, expected any 2xx");
    }

    #[tokio::test]
    async fn headers_from_the_environment_and_the_json_body_are_sent() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/hooks/rollback"))
            .and(header("authorization", "s3cret"))
            .and(header("x-source", "warroom"))
            .and(header("content-type", "application/json"))
            .and(body_json(json!({"service": "payments", "version": "1.4.1"})))
            .respond_with(ResponseTemplate::new(202))
            .expect(1)
            .mount(&server)
            .await;

        let report = executors().run(&execution(plan(&server), Duration::from_secs(5)), &|_| {}).await.expect("sent");

        assert_eq!(report.status, RunStatus::Succeeded, "the mock only answers 202 when headers and body match");
    }

    #[tokio::test]
    async fn a_missing_header_variable_is_a_missing_secret_and_nothing_is_sent() {
        let server = MockServer::start().await;
        let mut plan = plan(&server);
        plan.headers.push(("X-Api-Key".to_owned(), Secret::Env("HOOK_API_KEY".to_owned())));

        let error = executors().run(&execution(plan, Duration::from_secs(5)), &|_| {}).await.expect_err("no key");

        assert_eq!(error, ExecError::MissingSecret("HOOK_API_KEY".to_owned()));
        assert!(server.received_requests().await.unwrap_or_default().is_empty(), "nothing should be sent");
    }

    #[tokio::test]
    async fn a_long_body_is_cut_to_its_first_200_characters() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(202).set_body_string("x".repeat(500)))
            .mount(&server)
            .await;

        let report = executors().run(&execution(plan(&server), Duration::from_secs(5)), &|_| {}).await.expect("sent");

        assert_eq!(report.output_tail, format!("{}…", "x".repeat(200)));
    }

    #[tokio::test]
    async fn a_webhook_that_does_not_answer_in_time_times_out() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(202).set_delay(Duration::from_secs(5)))
            .mount(&server)
            .await;
        let started = std::time::Instant::now();

        let report =
            executors().run(&execution(plan(&server), Duration::from_millis(100)), &|_| {}).await.expect("sent");

        let host = "127.0.0.1";
        assert_eq!(report.status, RunStatus::TimedOut);
        assert_eq!(report.summary, format!("no answer from {host} within 100ms"));
        assert!(started.elapsed() < Duration::from_secs(2), "the timeout should be honoured");
    }

    #[tokio::test]
    async fn an_unreachable_webhook_is_a_transport_error() {
        let server = MockServer::start().await;
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
        let url = format!("http://{}/hooks/rollback", closed.local_addr().expect("local address"));
        drop(closed);
        let plan = HttpPlan { url, ..plan(&server) };

        let error = executors().run(&execution(plan, Duration::from_secs(5)), &|_| {}).await.expect_err("refused");

        assert!(
            matches!(&error, ExecError::Transport(message) if message.starts_with("could not connect")),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn a_rate_limited_webhook_carries_retry_after() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "3"))
            .mount(&server)
            .await;

        let error = executors().run(&execution(plan(&server), Duration::from_secs(5)), &|_| {}).await.expect_err("429");

        assert_eq!(error, ExecError::RateLimited { retry_after: Some(Duration::from_secs(3)) });
    }

    #[tokio::test]
    async fn the_progress_names_the_host_but_not_the_path() {
        let server = MockServer::start().await;
        Mock::given(method("POST")).respond_with(ResponseTemplate::new(202)).mount(&server).await;
        let seen = std::sync::Mutex::new(Vec::new());

        executors()
            .run(&execution(plan(&server), Duration::from_secs(5)), &|progress| {
                seen.lock().expect("progress lock").push(progress);
            })
            .await
            .expect("sent");

        let seen = seen.into_inner().expect("progress lock");
        assert_eq!(seen, vec![Progress::Started { summary: "POST 127.0.0.1".to_owned(), link: None }]);
    }
}
