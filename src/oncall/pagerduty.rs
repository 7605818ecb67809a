//! PagerDuty as a team's on-call provider: who is on call on the team's escalation policy.
//!
//! One lookup is `GET {base}/oncalls?escalation_policy_ids[]={id}&earliest=true&include[]=users
//! &time_zone=UTC`, authenticated with `Authorization: Token token=…` and
//! `Accept: application/vnd.pagerduty+json;version=2`, read page by page (`offset`) while
//! PagerDuty says there are `more`. Level 1 of the policy is the primary, level 2 the
//! escalation; people are their PagerDuty emails ([`PersonRef::Email`]), which the caller maps
//! to Slack users. The next shift is a second, best-effort call for the on-calls at the instant
//! the earliest level-1 shift ends.
//!
//! PagerDuty answers about the present (no `since`/`until` on the first call), which is what
//! callers ask about; the `at` of a lookup is not sent.

use jiff::{SignedDuration, Timestamp};
use reqwest::header::{ACCEPT, HeaderMap, HeaderValue};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tracing::{instrument, warn};

use super::providers::{ApiAccess, ClientError, http_error, retry_after};
use super::{OnCall, OnCallAnswer, OnCallError, PersonRef, Service, Shift};

/// The provider name in [`OnCallError::Provider`] errors.
const PROVIDER: &str = "pagerduty";
/// The media type PagerDuty's REST API v2 asks clients to accept.
const MEDIA_TYPE: &str = "application/vnd.pagerduty+json;version=2";
/// On-calls per page; PagerDuty allows at most 100.
const PAGE_LIMIT: usize = 100;
/// Pages read at most, so a misbehaving server cannot keep a lookup going forever.
const MAX_PAGES: usize = 20;
/// Headers that say how long to wait after a 429, in order of preference.
const RETRY_HEADERS: &[&str] = &["retry-after", "ratelimit-reset"];

/// The on-call provider of one team whose on-call lives in a PagerDuty escalation policy.
#[derive(Debug)]
pub struct PagerDutyOnCall {
    team: String,
    escalation_policy: String,
    api: ApiAccess,
    http: reqwest::Client,
}

impl PagerDutyOnCall {
    /// Creates the provider of `team`, answering from `escalation_policy` (an id such as
    /// `PABC123`) through `api`. Builds its one HTTP client here.
    pub fn new(
        team: impl Into<String>,
        escalation_policy: impl Into<String>,
        api: ApiAccess,
    ) -> Result<Self, ClientError> {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static(MEDIA_TYPE));
        let http = api.client("Token token=", headers)?;
        Ok(PagerDutyOnCall { team: team.into(), escalation_policy: escalation_policy.into(), api, http })
    }

    /// Returns the escalation policy id.
    #[must_use]
    pub fn escalation_policy(&self) -> &str {
        &self.escalation_policy
    }

    /// Returns every on-call of the policy, all pages, optionally within `[since, until]`.
    async fn on_calls(&self, window: Option<(Timestamp, Timestamp)>) -> Result<Vec<Entry>, OnCallError> {
        let url = self.api.endpoint(&["oncalls"]).map_err(|message| self.error(message))?;
        let mut entries = Vec::new();
        let mut offset = 0;
        for _ in 0..MAX_PAGES {
            let mut query = vec![
                ("escalation_policy_ids[]", self.escalation_policy.clone()),
                ("earliest", "true".to_owned()),
                ("include[]", "users".to_owned()),
                ("time_zone", "UTC".to_owned()),
                ("limit", PAGE_LIMIT.to_string()),
                ("offset", offset.to_string()),
            ];
            if let Some((since, until)) = window {
                query.extend([("since", since.to_string()), ("until", until.to_string())]);
            }
            let response = self
                .http
                .get(url.clone())
                .query(&query)
                .send()
                .await
                .map_err(|e| self.error(format!("cannot reach PagerDuty: {}", e.without_url())))?;
            let page: Page = self.read(response).await?;
            let count = page.oncalls.len();
            entries.extend(page.oncalls);
            if !page.more || count == 0 {
                return Ok(entries);
            }
            offset += count;
        }
        warn!(
            oncall.team = %self.team,
            pagerduty.escalation_policy = %self.escalation_policy,
            "escalation policy {} has more than {} on-calls; using the first ones",
            self.escalation_policy,
            MAX_PAGES * PAGE_LIMIT
        );
        Ok(entries)
    }

    /// Decodes a successful answer, or turns a failed one into an [`OnCallError`].
    async fn read<T>(&self, response: reqwest::Response) -> Result<T, OnCallError>
    where
        T: DeserializeOwned,
    {
        let status = response.status();
        if status.is_success() {
            return response
                .json::<T>()
                .await
                .map_err(|e| self.error(format!("PagerDuty answered with an unexpected body: {}", e.without_url())));
        }
        let wait = retry_after(response.headers(), RETRY_HEADERS);
        let detail = response.json::<ErrorBody>().await.ok().and_then(ErrorBody::into_message);
        Err(http_error(PROVIDER, "PagerDuty", &self.api.token_env, status, detail, wait))
    }

    /// Returns the next shift: the level-1 people at `end`, the instant the current shift ends.
    /// Best effort: a failure is logged and means "unknown".
    async fn next_shift(&self, end: Timestamp) -> Option<Shift> {
        let until = end.checked_add(SignedDuration::from_secs(60)).unwrap_or(end);
        match self.on_calls(Some((end, until))).await {
            Ok(entries) => {
                let at_end = entries.iter().filter(|entry| entry.covers(end)).cloned().collect::<Vec<_>>();
                let people = people_at(&at_end, 1);
                (!people.is_empty()).then_some(Shift { people, starts_at: end })
            }
            Err(error) => {
                warn!(oncall.team = %self.team, %error, "cannot read the next PagerDuty shift of team {}", self.team);
                None
            }
        }
    }

    fn error(&self, message: String) -> OnCallError {
        OnCallError::Provider { provider: PROVIDER, message, retry_after: None }
    }
}

#[async_trait::async_trait]
impl OnCall for PagerDutyOnCall {
    #[instrument(skip_all, fields(oncall.team = %self.team, pagerduty.escalation_policy = %self.escalation_policy))]
    async fn on_call(&self, _service: Service<'_>, _at: Timestamp) -> Result<OnCallAnswer, OnCallError> {
        let entries = self.on_calls(None).await?;
        let primary = people_at(&entries, 1);
        if primary.is_empty() {
            return Err(self.error(format!(
                "nobody with an email is on call at level 1 of escalation policy {}",
                self.escalation_policy
            )));
        }
        let escalation = people_at(&entries, 2).into_iter().filter(|person| !primary.contains(person)).collect();
        let shift_end = entries.iter().filter(|entry| entry.escalation_level == Some(1)).filter_map(|e| e.end).min();
        let next = match shift_end {
            Some(end) => self.next_shift(end).await,
            None => None,
        };
        Ok(OnCallAnswer { team: self.team.clone(), primary, next, lead_group: None, escalation, fallback: None })
    }
}

/// Returns the people on call at escalation `level`, by email, in PagerDuty's order, once each.
/// Users without an email (when PagerDuty did not expand them) are skipped with a warning.
fn people_at(entries: &[Entry], level: u32) -> Vec<PersonRef> {
    let mut people = Vec::new();
    for entry in entries.iter().filter(|entry| entry.escalation_level == Some(level)) {
        let user = entry.user.as_ref();
        match user.and_then(|user| user.email.as_deref()).map(str::parse::<PersonRef>) {
            Some(Ok(person @ PersonRef::Email(_))) => {
                if !people.contains(&person) {
                    people.push(person);
                }
            }
            _ => {
                let id = user.and_then(|user| user.id.as_deref()).unwrap_or("(unknown)");
                warn!(pagerduty.user = %id, "PagerDuty user {id} has no usable email; skipping them");
            }
        }
    }
    people
}

/// One page of `GET /oncalls`.
#[derive(Debug, Deserialize)]
struct Page {
    #[serde(default)]
    oncalls: Vec<Entry>,
    #[serde(default)]
    more: bool,
}

/// One on-call: a user at a level of the policy, from `start` to `end` (null: permanently).
#[derive(Debug, Clone, Deserialize)]
struct Entry {
    user: Option<User>,
    escalation_level: Option<u32>,
    start: Option<Timestamp>,
    end: Option<Timestamp>,
}

impl Entry {
    /// Reports whether the on-call covers the instant `at` (its end is exclusive).
    fn covers(&self, at: Timestamp) -> bool {
        self.start.is_none_or(|start| start <= at) && self.end.is_none_or(|end| at < end)
    }
}

/// A user as `include[]=users` expands it; only what warroom reads.
#[derive(Debug, Clone, Deserialize)]
struct User {
    id: Option<String>,
    email: Option<String>,
}

/// PagerDuty's error body: `{"error": {"message": …, "errors": […]}}`.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: Option<ErrorDetail>,
}

#[derive(Debug, Deserialize)]
struct ErrorDetail {
    message: Option<String>,
    #[serde(default)]
    errors: Vec<String>,
}

impl ErrorBody {
    fn into_message(self) -> Option<String> {
        let detail = self.error?;
        let mut parts: Vec<String> = detail.message.into_iter().collect();
        parts.extend(detail.errors);
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::oncall::providers::testing::{access, email, fixture, service};

    const TOKEN: &str = "pd-test-token";

    fn provider(server: &MockServer) -> PagerDutyOnCall {
        PagerDutyOnCall::new("sre", "PABC123", access(&server.uri(), TOKEN, "PAGERDUTY_TOKEN"))
            .expect("the client builds")
    }

    /// The first lookup of on-calls, exactly as PagerDuty documents it.
    fn on_calls_now() -> wiremock::MockBuilder {
        Mock::given(method("GET"))
            .and(path("/oncalls"))
            .and(query_param("escalation_policy_ids[]", "PABC123"))
            .and(query_param("earliest", "true"))
            .and(query_param("include[]", "users"))
            .and(query_param("time_zone", "UTC"))
            .and(query_param_is_missing("since"))
            .and(header("authorization", "Token token=pd-test-token"))
            .and(header("accept", "application/vnd.pagerduty+json;version=2"))
    }

    /// The lookup of the on-calls at the hand-off of 2026-05-04T09:00Z.
    fn on_calls_at_handoff() -> wiremock::MockBuilder {
        Mock::given(method("GET"))
            .and(path("/oncalls"))
            .and(query_param("escalation_policy_ids[]", "PABC123"))
            .and(query_param("since", "2026-05-04T09:00:00Z"))
            .and(query_param("until", "2026-05-04T09:01:00Z"))
            .and(header("authorization", "Token token=pd-test-token"))
    }

    fn json(status: u16, name: &str) -> ResponseTemplate {
        ResponseTemplate::new(status).set_body_json(fixture(name))
    }

    async fn ask(provider: &PagerDutyOnCall) -> Result<OnCallAnswer, OnCallError> {
        provider.on_call(service("checkout"), Timestamp::constant(1_777_800_000, 0)).await
    }

    #[tokio::test]
    async fn level_one_on_calls_are_the_primary_and_level_two_the_escalation_by_email() {
        let server = MockServer::start().await;
        on_calls_now().respond_with(json(200, "pagerduty/oncalls_levels.json")).expect(1).mount(&server).await;
        on_calls_at_handoff().respond_with(json(200, "pagerduty/oncalls_at_handoff.json")).mount(&server).await;

        let answer = ask(&provider(&server)).await.expect("PagerDuty answers");

        assert_eq!(answer.team, "sre");
        assert_eq!(answer.primary, [email("alice@example.com")]);
        assert_eq!(answer.escalation, [email("carol@example.com")], "level 3 is not the next escalation");
        assert_eq!(answer.lead_group, None);
        assert_eq!(answer.fallback, None);
    }

    #[tokio::test]
    async fn the_lookup_names_the_policy_with_brackets_and_asks_for_the_earliest_on_calls_with_users_in_utc() {
        let server = MockServer::start().await;
        on_calls_now().respond_with(json(200, "pagerduty/oncalls_permanent.json")).expect(1).mount(&server).await;

        ask(&provider(&server)).await.expect("PagerDuty answers");

        let requests = server.received_requests().await.expect("requests are recorded");
        let query: Vec<(String, String)> = requests[0].url.query_pairs().into_owned().collect();
        let expected = [
            ("escalation_policy_ids[]", "PABC123"),
            ("earliest", "true"),
            ("include[]", "users"),
            ("time_zone", "UTC"),
            ("limit", "100"),
            ("offset", "0"),
        ];
        let expected: Vec<(String, String)> =
            expected.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        assert_eq!(query, expected, "a bare `escalation_policy_ids=` would be silently ignored by PagerDuty");
    }

    #[tokio::test]
    async fn the_next_shift_starts_when_the_level_one_shift_ends_with_whoever_is_on_call_then() {
        let server = MockServer::start().await;
        on_calls_now().respond_with(json(200, "pagerduty/oncalls_levels.json")).mount(&server).await;
        on_calls_at_handoff()
            .respond_with(json(200, "pagerduty/oncalls_at_handoff.json"))
            .expect(1)
            .mount(&server)
            .await;

        let answer = ask(&provider(&server)).await.expect("PagerDuty answers");

        assert_eq!(
            answer.next,
            Some(Shift { people: vec![email("bob@example.com")], starts_at: "2026-05-04T09:00:00Z".parse().unwrap() }),
            "alice's shift ends at the hand-off, so only bob is on call from then on"
        );
    }

    #[tokio::test]
    async fn a_failing_next_shift_lookup_still_answers_who_is_on_call_now() {
        let server = MockServer::start().await;
        on_calls_now().respond_with(json(200, "pagerduty/oncalls_levels.json")).mount(&server).await;
        on_calls_at_handoff().respond_with(ResponseTemplate::new(503)).mount(&server).await;

        let answer = ask(&provider(&server)).await.expect("the current on-call is enough");

        assert_eq!(answer.primary, [email("alice@example.com")]);
        assert_eq!(answer.next, None);
    }

    #[tokio::test]
    async fn permanent_on_calls_have_no_next_shift_and_need_a_single_request() {
        let server = MockServer::start().await;
        on_calls_now().respond_with(json(200, "pagerduty/oncalls_permanent.json")).expect(1).mount(&server).await;

        let answer = ask(&provider(&server)).await.expect("PagerDuty answers");

        assert_eq!(answer.primary, [email("bob@example.com")]);
        assert_eq!(answer.escalation, [email("carol@example.com")]);
        assert_eq!(answer.next, None);
    }

    #[tokio::test]
    async fn every_page_is_read_while_pagerduty_says_there_are_more() {
        let server = MockServer::start().await;
        on_calls_now()
            .and(query_param("offset", "0"))
            .respond_with(json(200, "pagerduty/oncalls_page_1.json"))
            .expect(1)
            .mount(&server)
            .await;
        on_calls_now()
            .and(query_param("offset", "2"))
            .respond_with(json(200, "pagerduty/oncalls_page_2.json"))
            .expect(1)
            .mount(&server)
            .await;

        let answer = ask(&provider(&server)).await.expect("PagerDuty answers");

        assert_eq!(answer.primary, [email("alice@example.com"), email("bob@example.com")]);
        assert_eq!(answer.escalation, [email("carol@example.com")]);
    }

    #[tokio::test]
    async fn a_rejected_token_is_reported_naming_the_environment_variable_that_holds_it() {
        let server = MockServer::start().await;
        Mock::given(path("/oncalls")).respond_with(json(401, "pagerduty/error_401.json")).mount(&server).await;

        let error = ask(&provider(&server)).await.unwrap_err();

        assert_eq!(
            error,
            OnCallError::Provider {
                provider: "pagerduty",
                message: "PagerDuty rejected the API token in PAGERDUTY_TOKEN (HTTP 401 Unauthorized: Invalid \
                          Credentials); check that it is current"
                    .to_owned(),
                retry_after: None,
            }
        );
    }

    #[tokio::test]
    async fn a_rate_limited_lookup_says_how_long_to_wait() {
        let server = MockServer::start().await;
        Mock::given(path("/oncalls"))
            .respond_with(json(429, "pagerduty/error_429.json").insert_header("Retry-After", "30"))
            .mount(&server)
            .await;

        let error = ask(&provider(&server)).await.unwrap_err();

        let OnCallError::Provider { provider, message, retry_after } = error else {
            panic!("expected a provider error, got {error:?}");
        };
        assert_eq!(provider, "pagerduty");
        assert_eq!(retry_after, Some(Duration::from_secs(30)));
        assert_eq!(message, "PagerDuty is rate limiting warroom (HTTP 429 Too Many Requests: Rate Limit Exceeded)");
    }

    #[tokio::test]
    async fn an_unavailable_pagerduty_is_a_provider_error_without_a_wait() {
        let server = MockServer::start().await;
        Mock::given(path("/oncalls")).respond_with(ResponseTemplate::new(503)).mount(&server).await;

        let error = ask(&provider(&server)).await.unwrap_err();

        assert_eq!(
            error.to_string(),
            "on-call provider pagerduty failed: PagerDuty answered HTTP 503 Service Unavailable"
        );
        assert!(matches!(error, OnCallError::Provider { retry_after: None, .. }));
    }

    #[tokio::test]
    async fn nobody_on_call_at_level_one_is_an_error_so_that_the_fallback_answers() {
        let server = MockServer::start().await;
        on_calls_now().respond_with(json(200, "pagerduty/oncalls_empty.json")).mount(&server).await;

        let error = ask(&provider(&server)).await.unwrap_err();

        assert_eq!(
            error.to_string(),
            "on-call provider pagerduty failed: nobody with an email is on call at level 1 of escalation policy PABC123"
        );
    }

    #[tokio::test]
    async fn an_unreachable_pagerduty_is_a_provider_error() {
        // A port that was free a moment ago: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let uri = format!("http://127.0.0.1:{port}");
        let provider = PagerDutyOnCall::new("sre", "PABC123", access(&uri, TOKEN, "PAGERDUTY_TOKEN")).unwrap();

        let error = ask(&provider).await.unwrap_err();

        let message = error.to_string();
        assert!(message.starts_with("on-call provider pagerduty failed: cannot reach PagerDuty"), "{message}");
        assert!(!message.contains(TOKEN), "the token must never show in errors: {message}");
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let provider =
            PagerDutyOnCall::new("sre", "PABC123", access("https://api.pagerduty.com", TOKEN, "PD")).unwrap();

        let debug = format!("{provider:?}");

        assert!(!debug.contains(TOKEN), "{debug}");
    }
}
