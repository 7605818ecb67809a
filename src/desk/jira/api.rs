//! The HTTP layer of the Jira desk: one `reqwest` client with Basic auth, the mapping of Jira's
//! answers onto [`DeskError`], and the per-issue write spacing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use jiff::Timestamp;
use reqwest::header::{ACCEPT, HeaderMap};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::time::Instant;

use crate::desk::DeskError;

/// Jira's own answers are short; anything longer is cut before it reaches an error message.
const MAX_ERROR_CHARS: usize = 300;

/// A Jira site as warroom's API user sees it.
pub(super) struct Api {
    http: reqwest::Client,
    base_url: String,
    email: String,
    token: SecretString,
    write_spacing: Duration,
    /// When the next write to each issue may start. A std mutex: it is held only to read and
    /// bump one entry, never across an await.
    next_write: Mutex<HashMap<String, Instant>>,
}

impl Api {
    pub(super) fn new(
        base_url: &str,
        email: &str,
        token: SecretString,
        timeout: Duration,
        write_spacing: Duration,
    ) -> Result<Self, DeskError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("warroom/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| DeskError::Rejected(format!("building the Jira HTTP client: {e}")))?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            email: email.to_owned(),
            token,
            write_spacing,
            next_write: Mutex::new(HashMap::new()),
        })
    }

    /// A request to `path` (from `/rest/…`), authenticated and asking for JSON.
    pub(super) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base_url))
            .basic_auth(&self.email, Some(self.token.expose_secret()))
            .header(ACCEPT, "application/json")
    }

    /// Sends `request`; any answer but a 2xx becomes the [`DeskError`] that tells the caller
    /// whether to retry. `doing` says what for, such as `commenting on OPS-1`.
    pub(super) async fn send(&self, request: RequestBuilder, doing: &str) -> Result<Response, DeskError> {
        let response = request.send().await.map_err(|e| transport_error(&e, doing))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let headers = response.headers().clone();
        let body = response.text().await.unwrap_or_default();
        Err(status_error(status, &headers, &body, doing, Timestamp::now()))
    }

    /// Sends `request` and reads a JSON answer.
    pub(super) async fn json<T>(&self, request: RequestBuilder, doing: &str) -> Result<T, DeskError>
    where
        T: DeserializeOwned,
    {
        let response = self.send(request, doing).await?;
        response.json().await.map_err(|e| DeskError::Unavailable(format!("{doing}: unreadable answer from Jira: {e}")))
    }

    /// Waits until a write to `issue` may start, keeping writes to one issue at least
    /// `write_spacing` apart (Jira's `jira-per-issue-on-write` limit). The slot is reserved
    /// before sleeping, so concurrent writers queue up behind each other.
    pub(super) async fn pace(&self, issue: &str) {
        let now = Instant::now();
        let start = {
            let mut next = self.next_write.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let start = next.get(issue).copied().filter(|at| *at > now).unwrap_or(now);
            next.insert(issue.to_owned(), start + self.write_spacing);
            start
        };
        tokio::time::sleep_until(start).await;
    }
}

fn transport_error(error: &reqwest::Error, doing: &str) -> DeskError {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    DeskError::Unavailable(format!("{doing}: the request to Jira {what}: {error}"))
}

/// The error for a non-2xx answer: 429 → rate limited, 5xx → unavailable, 404 → not found,
/// other 4xx → rejected with Jira's own words.
pub(super) fn status_error(
    status: StatusCode,
    headers: &HeaderMap,
    body: &str,
    doing: &str,
    now: Timestamp,
) -> DeskError {
    if status == StatusCode::TOO_MANY_REQUESTS {
        return DeskError::RateLimited { retry_after: retry_after(headers, now) };
    }
    let message = format!("{doing}: Jira answered {status}: {}", jira_message(body));
    if status.is_server_error() {
        DeskError::Unavailable(message)
    } else if status == StatusCode::NOT_FOUND {
        DeskError::NotFound(message)
    } else {
        DeskError::Rejected(message)
    }
}

/// How long Jira asked us to wait: `Retry-After` in seconds, else the `X-RateLimit-Reset`
/// timestamp (ISO 8601) minus now.
pub(super) fn retry_after(headers: &HeaderMap, now: Timestamp) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(seconds) = header("retry-after").and_then(|v| v.parse::<u64>().ok()) {
        return Some(Duration::from_secs(seconds));
    }
    let reset = parse_time(header("x-ratelimit-reset")?)?;
    let wait = reset.duration_since(now);
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

/// Reads Jira's timestamps: RFC 3339, or its own `2021-01-17T12:34:00.000+0000` (no colon in
/// the offset).
pub(super) fn parse_time(text: &str) -> Option<Timestamp> {
    if let Ok(at) = text.parse() {
        return Some(at);
    }
    let split = text.len().checked_sub(2)?;
    let (head, minutes) = (text.get(..split)?, text.get(split..)?);
    format!("{head}:{minutes}").parse().ok()
}

/// Jira's explanation from an error body: `errorMessages` and `errors` (platform API) or
/// `errorMessage` (servicedeskapi), else the start of the body.
pub(super) fn jira_message(body: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Ok(value) = serde_json::from_str::<Value>(body) {
        if let Some(messages) = value.get("errorMessages").and_then(Value::as_array) {
            parts.extend(messages.iter().filter_map(Value::as_str).map(str::to_owned));
        }
        if let Some(errors) = value.get("errors").and_then(Value::as_object) {
            parts.extend(errors.iter().map(|(field, message)| match message.as_str() {
                Some(text) => format!("{field}: {text}"),
                None => format!("{field}: {message}"),
            }));
        }
        if let Some(message) = value.get("errorMessage").and_then(Value::as_str) {
            parts.push(message.to_owned());
        }
    }
    let text = if parts.is_empty() { body.trim().to_owned() } else { parts.join("; ") };
    if text.is_empty() {
        return "(no details)".to_owned();
    }
    text.chars().take(MAX_ERROR_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn answers_become_desk_errors_by_what_the_caller_can_do() {
        let now: Timestamp = "2026-03-01T10:00:00Z".parse().expect("time");
        let body = r#"{"errorMessages":["Field 'priority' is required"],"errors":{"labels":"no spaces"}}"#;
        let cases = [
            (503, "unavailable"),
            (500, "unavailable"),
            (404, "not found"),
            (400, "rejected"),
            (401, "rejected"),
            (403, "rejected"),
        ];
        for (code, expected) in cases {
            let status = StatusCode::from_u16(code).expect("status");
            let error = status_error(status, &HeaderMap::new(), body, "creating", now);
            let kind = match &error {
                DeskError::Unavailable(_) => "unavailable",
                DeskError::NotFound(_) => "not found",
                DeskError::Rejected(_) => "rejected",
                DeskError::RateLimited { .. } => "rate limited",
            };
            assert_eq!(kind, expected, "HTTP {code}");
            assert!(error.to_string().contains("Field 'priority' is required; labels: no spaces"), "{error}");
        }
    }

    #[test]
    fn a_rate_limit_waits_as_long_as_jira_says() {
        let now: Timestamp = "2026-03-01T10:00:00Z".parse().expect("time");
        let cases = [
            (headers(&[("retry-after", "7")]), Some(Duration::from_secs(7))),
            (headers(&[("x-ratelimit-reset", "2026-03-01T10:00:30Z")]), Some(Duration::from_secs(30))),
            (headers(&[("x-ratelimit-reset", "2026-03-01T10:00:30.000+0000")]), Some(Duration::from_secs(30))),
            (headers(&[("x-ratelimit-reset", "2026-03-01T09:00:00Z")]), Some(Duration::ZERO)),
            (HeaderMap::new(), None),
        ];
        for (headers, expected) in cases {
            let error = status_error(StatusCode::TOO_MANY_REQUESTS, &headers, "", "commenting", now);
            assert_eq!(error, DeskError::RateLimited { retry_after: expected }, "{headers:?}");
        }
    }

    #[test]
    fn service_desk_errors_and_bare_bodies_are_shown_too() {
        assert_eq!(jira_message(r#"{"errorMessage":"Request not found"}"#), "Request not found");
        assert_eq!(jira_message("Bad gateway"), "Bad gateway");
        assert_eq!(jira_message(""), "(no details)");
    }
}
