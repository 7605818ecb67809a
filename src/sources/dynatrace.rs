//! Dynatrace problem comments: `POST {api_url}/api/v2/problems/{problemId}/comments` with
//! `Authorization: Api-Token <token>` (scope `problems.write`), body `{"message", "context"}`.
//! `problemId` is the notification's `{PID}`, which is the incident's problem key.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::jobs::runner::JobError;

/// Why a comment was not posted.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("Dynatrace refused the comment: HTTP {status}: {body}")]
    Rejected { status: u16, body: String },
    #[error("Dynatrace rate limit (retry after {retry_after:?})")]
    RateLimited { retry_after: Option<Duration> },
    #[error("Dynatrace unreachable: {0}")]
    Unavailable(String),
}

impl From<SourceError> for JobError {
    fn from(error: SourceError) -> Self {
        match error {
            SourceError::RateLimited { retry_after } => Self::Retry { message: error.to_string(), retry_after },
            SourceError::Unavailable(_) => Self::retry(error.to_string()),
            SourceError::Rejected { .. } => Self::Permanent(error.to_string()),
        }
    }
}

/// A Dynatrace environment's problems API.
#[derive(Clone)]
pub struct DynatraceClient {
    http: reqwest::Client,
    api_url: String,
    token: SecretString,
}

impl std::fmt::Debug for DynatraceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynatraceClient").field("api_url", &self.api_url).finish_non_exhaustive()
    }
}

impl DynatraceClient {
    /// A client for `api_url` (no trailing `/api`), built once.
    pub fn new(api_url: &str, token: SecretString, timeout: Duration) -> Self {
        let http = reqwest::Client::builder().timeout(timeout).build().unwrap_or_default();
        Self { http, api_url: api_url.trim_end_matches('/').to_owned(), token }
    }

    /// Adds `message` as a comment on problem `problem_id`.
    pub async fn comment(&self, problem_id: &str, message: &str) -> Result<(), SourceError> {
        let url = format!("{}/api/v2/problems/{}/comments", self.api_url, urlencode(problem_id));
        let response = self
            .http
            .post(url)
            .header("Authorization", format!("Api-Token {}", self.token.expose_secret()))
            .json(&json!({ "message": message, "context": "warroom" }))
            .send()
            .await
            .map_err(|e| SourceError::Unavailable(e.without_url().to_string()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .map(Duration::from_secs);
            return Err(SourceError::RateLimited { retry_after });
        }
        let body: String = response.text().await.unwrap_or_default().chars().take(300).collect();
        if status.is_server_error() {
            return Err(SourceError::Unavailable(format!("HTTP {status}: {body}")));
        }
        Err(SourceError::Rejected { status: status.as_u16(), body })
    }
}

/// Problem ids contain `-` and `_` only in practice; encode anything else.
fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use wiremock::matchers::{body_partial_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;

    #[tokio::test]
    async fn a_comment_is_posted_to_the_problem_with_the_api_token() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/api/v2/problems/-1934612467497574917_1700000000000V2/comments"))
            .and(header("Authorization", "Api-Token dt-test-token"))
            .and(body_partial_json(json!({ "message": "rollback succeeded", "context": "warroom" })))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "id": "c1" })))
            .expect(1)
            .mount(&server)
            .await;
        let client = DynatraceClient::new(&server.uri(), "dt-test-token".into(), Duration::from_secs(5));
        client.comment("-1934612467497574917_1700000000000V2", "rollback succeeded").await.unwrap();
    }

    #[tokio::test]
    async fn refusals_and_rate_limits_are_told_apart() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/api/v2/problems/P1/comments"))
            .respond_with(ResponseTemplate::new(403))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/api/v2/problems/P2/comments"))
            .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "7"))
            .mount(&server)
            .await;
        let client = DynatraceClient::new(&server.uri(), "t".into(), Duration::from_secs(5));
        assert!(matches!(client.comment("P1", "x").await, Err(SourceError::Rejected { status: 403, .. })));
        assert!(
            matches!(client.comment("P2", "x").await, Err(SourceError::RateLimited { retry_after: Some(d) }) if d == Duration::from_secs(7))
        );
    }
}
