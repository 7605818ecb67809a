//! Opsgenie as a team's on-call provider: who is on call in one of its schedules.
//!
//! One lookup is `GET {base}/v2/schedules/{name}/on-calls?scheduleIdentifierType=name&flat=true`
//! with `Authorization: GenieKey …`: with `flat=true` the answer lists the participants' user
//! names, which in Opsgenie are emails (`onCallRecipients`), and they are the primary. A second,
//! best-effort call to `/v2/schedules/{name}/next-on-calls` gives the people on call after them,
//! who are the escalation. That API gives no start time, so [`OnCallAnswer::next`] stays `None`.
//! EU accounts set the base URL to `https://api.eu.opsgenie.com`.
//!
//! **Sunset:** Opsgenie's REST API ends on 2027-04-05 (end of sale was 2025-06-04). Its successor
//! is the Jira Service Management Operations REST API, whose schedule lookup is
//! `GET https://api.atlassian.com/jsm/ops/api/{cloudId}/v1/schedules/{id}/on-calls`; a provider
//! for it would implement [`OnCall`] the same way, so teams can move by changing their settings.

use jiff::Timestamp;
use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tracing::{instrument, warn};

use super::providers::{ApiAccess, ClientError, http_error, retry_after};
use super::{OnCall, OnCallAnswer, OnCallError, PersonRef, Service};

/// The provider name in [`OnCallError::Provider`] errors.
const PROVIDER: &str = "opsgenie";
/// Headers that say how long to wait after a 429, in order of preference.
const RETRY_HEADERS: &[&str] = &["retry-after", "x-ratelimit-period-in-sec"];

/// The on-call provider of one team whose on-call lives in an Opsgenie schedule.
#[derive(Debug)]
pub struct OpsgenieOnCall {
    team: String,
    schedule: String,
    api: ApiAccess,
    http: reqwest::Client,
}

impl OpsgenieOnCall {
    /// Creates the provider of `team`, answering from the schedule named `schedule` through
    /// `api`. Builds its one HTTP client here.
    pub fn new(team: impl Into<String>, schedule: impl Into<String>, api: ApiAccess) -> Result<Self, ClientError> {
        let http = api.client("GenieKey ", HeaderMap::new())?;
        Ok(OpsgenieOnCall { team: team.into(), schedule: schedule.into(), api, http })
    }

    /// Returns the schedule's name.
    #[must_use]
    pub fn schedule(&self) -> &str {
        &self.schedule
    }

    /// Returns the URL of `GET /v2/schedules/{schedule}/{what}` for the schedule, by name and flat.
    pub fn schedule_url(&self, what: &str) -> Result<url::Url, OnCallError> {
        let mut url = self.api.endpoint(&["v2", "schedules", &self.schedule, what]).map_err(|m| self.error(m))?;
        url.query_pairs_mut().append_pair("scheduleIdentifierType", "name").append_pair("flat", "true");
        Ok(url)
    }

    /// Sends `GET /v2/schedules/{schedule}/{what}` and decodes the answer's `data`.
    async fn get<T>(&self, what: &str) -> Result<T, OnCallError>
    where
        T: DeserializeOwned,
    {
        let response = self
            .http
            .get(self.schedule_url(what)?)
            .send()
            .await
            .map_err(|e| self.error(format!("cannot reach Opsgenie: {}", e.without_url())))?;
        let status = response.status();
        if status.is_success() {
            return response
                .json::<Envelope<T>>()
                .await
                .map(|envelope| envelope.data)
                .map_err(|e| self.error(format!("Opsgenie answered with an unexpected body: {}", e.without_url())));
        }
        let wait = retry_after(response.headers(), RETRY_HEADERS);
        let detail = response.json::<ErrorBody>().await.ok().and_then(|body| body.message);
        Err(http_error(PROVIDER, "Opsgenie", &self.api.token_env, status, detail, wait))
    }

    fn error(&self, message: String) -> OnCallError {
        OnCallError::Provider { provider: PROVIDER, message, retry_after: None }
    }
}

#[async_trait::async_trait]
impl OnCall for OpsgenieOnCall {
    #[instrument(skip_all, fields(oncall.team = %self.team, opsgenie.schedule = %self.schedule))]
    async fn on_call(&self, _service: Service<'_>, _at: Timestamp) -> Result<OnCallAnswer, OnCallError> {
        let now: OnCalls = self.get("on-calls").await?;
        let primary = people(now.recipients());
        if primary.is_empty() {
            return Err(self.error(format!("nobody is on call in Opsgenie schedule {}", self.schedule)));
        }
        let escalation = match self.get::<NextOnCalls>("next-on-calls").await {
            Ok(next) => people(next.recipients()).into_iter().filter(|person| !primary.contains(person)).collect(),
            Err(error) => {
                warn!(oncall.team = %self.team, %error, "cannot read the next on-call of team {}", self.team);
                Vec::new()
            }
        };
        Ok(OnCallAnswer { team: self.team.clone(), primary, next: None, lead_group: None, escalation, fallback: None })
    }
}

/// Turns Opsgenie user names into people, once each; names that are not emails are skipped.
fn people(names: Vec<String>) -> Vec<PersonRef> {
    let mut people = Vec::new();
    for name in names {
        match name.parse::<PersonRef>() {
            Ok(person) if !people.contains(&person) => people.push(person),
            Ok(_) => {}
            Err(_) => warn!(opsgenie.user = %name, "Opsgenie participant {name} is not an email; skipping them"),
        }
    }
    people
}

/// Opsgenie's answer wrapper: `{"data": …, "took": …, "requestId": …}`.
#[derive(Debug, Deserialize)]
struct Envelope<T> {
    data: T,
}

/// `data` of `GET /v2/schedules/{id}/on-calls`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct OnCalls {
    /// With `flat=true`: the participants' user names.
    on_call_recipients: Vec<Participant>,
    /// Without `flat=true`: participant objects.
    on_call_participants: Vec<Participant>,
}

impl OnCalls {
    fn recipients(self) -> Vec<String> {
        first_users([self.on_call_recipients, self.on_call_participants])
    }
}

/// `data` of `GET /v2/schedules/{id}/next-on-calls`. The published spec and the documentation
/// disagree on which fields hold names and which objects, so every field takes both.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct NextOnCalls {
    exact_next_on_call_recipients: Vec<Participant>,
    next_on_call_recipients: Vec<Participant>,
    exact_next_on_call_participants: Vec<Participant>,
    next_on_call_participants: Vec<Participant>,
}

impl NextOnCalls {
    fn recipients(self) -> Vec<String> {
        first_users([
            self.exact_next_on_call_recipients,
            self.next_on_call_recipients,
            self.exact_next_on_call_participants,
            self.next_on_call_participants,
        ])
    }
}

/// A participant: a user name as `flat=true` gives it, or an object `{ name, type }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Participant {
    Name(String),
    Object {
        name: Option<String>,
        #[serde(rename = "type")]
        kind: Option<String>,
    },
}

impl Participant {
    /// Returns the user name, if this is a user.
    fn user(self) -> Option<String> {
        match self {
            Participant::Name(name) => Some(name),
            Participant::Object { name, kind } if kind.as_deref().is_none_or(|kind| kind == "user") => name,
            Participant::Object { .. } => None,
        }
    }
}

/// Returns the users of the first non-empty list.
fn first_users<const N: usize>(lists: [Vec<Participant>; N]) -> Vec<String> {
    lists
        .into_iter()
        .map(|list| list.into_iter().filter_map(Participant::user).collect::<Vec<_>>())
        .find(|users| !users.is_empty())
        .unwrap_or_default()
}

/// Opsgenie's error body: `{"message": …, "took": …, "requestId": …}`.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    message: Option<String>,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use wiremock::matchers::{header, method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::oncall::providers::testing::{access, email, fixture, service};

    fn provider(base_url: &str, schedule: &str) -> OpsgenieOnCall {
        OpsgenieOnCall::new("sre", schedule, access(base_url, "og-test-key", "OPSGENIE_API_KEY"))
            .expect("the client builds")
    }

    /// `GET /v2/schedules/sre-primary/{what}` by name, flat, with the API key.
    fn schedule_lookup(what: &str) -> wiremock::MockBuilder {
        Mock::given(method("GET"))
            .and(path(format!("/v2/schedules/sre-primary/{what}")))
            .and(query_param("scheduleIdentifierType", "name"))
            .and(query_param("flat", "true"))
            .and(header("authorization", "GenieKey og-test-key"))
    }

    fn json(status: u16, name: &str) -> ResponseTemplate {
        ResponseTemplate::new(status).set_body_json(fixture(name))
    }

    async fn ask(provider: &OpsgenieOnCall) -> Result<OnCallAnswer, OnCallError> {
        provider.on_call(service("checkout"), Timestamp::constant(1_777_800_000, 0)).await
    }

    #[tokio::test]
    async fn the_people_on_call_in_a_schedule_found_by_name_are_the_primary_and_the_next_ones_the_escalation() {
        let server = MockServer::start().await;
        schedule_lookup("on-calls")
            .respond_with(json(200, "opsgenie/on_calls_flat.json"))
            .expect(1)
            .mount(&server)
            .await;
        schedule_lookup("next-on-calls")
            .respond_with(json(200, "opsgenie/next_on_calls_flat.json"))
            .expect(1)
            .mount(&server)
            .await;

        let answer = ask(&provider(&server.uri(), "sre-primary")).await.expect("Opsgenie answers");

        assert_eq!(answer.team, "sre");
        assert_eq!(answer.primary, [email("alice@example.com")]);
        assert_eq!(answer.escalation, [email("bob@example.com")]);
        assert_eq!(answer.next, None, "next-on-calls gives no start time");
        assert_eq!(answer.fallback, None);
    }

    #[tokio::test]
    async fn next_on_calls_typed_as_participant_objects_like_the_swagger_file_says_are_read_too() {
        let server = MockServer::start().await;
        schedule_lookup("on-calls").respond_with(json(200, "opsgenie/on_calls_flat.json")).mount(&server).await;
        schedule_lookup("next-on-calls")
            .respond_with(json(200, "opsgenie/next_on_calls_spec_shape.json"))
            .mount(&server)
            .await;

        let answer = ask(&provider(&server.uri(), "sre-primary")).await.expect("Opsgenie answers");

        assert_eq!(answer.escalation, [email("bob@example.com")], "only users count, not escalations");
    }

    #[tokio::test]
    async fn a_failing_next_on_call_lookup_leaves_the_escalation_empty_but_still_answers() {
        let server = MockServer::start().await;
        schedule_lookup("on-calls").respond_with(json(200, "opsgenie/on_calls_flat.json")).mount(&server).await;
        schedule_lookup("next-on-calls").respond_with(ResponseTemplate::new(503)).mount(&server).await;

        let answer = ask(&provider(&server.uri(), "sre-primary")).await.expect("the current on-call is enough");

        assert_eq!(answer.primary, [email("alice@example.com")]);
        assert_eq!(answer.escalation, []);
    }

    #[test]
    fn an_eu_base_url_is_used_as_is_and_the_schedule_name_is_percent_encoded_in_the_path() {
        let cases = [
            (
                "https://api.eu.opsgenie.com",
                "sre-primary",
                "https://api.eu.opsgenie.com/v2/schedules/sre-primary/on-calls?scheduleIdentifierType=name&flat=true",
            ),
            (
                "https://api.opsgenie.com/",
                "SRE primary/EU",
                "https://api.opsgenie.com/v2/schedules/SRE%20primary%2FEU/on-calls?scheduleIdentifierType=name&flat=true",
            ),
        ];
        for (base_url, schedule, expected) in cases {
            let url = provider(base_url, schedule).schedule_url("on-calls").expect("the URL builds");
            assert_eq!(url.as_str(), expected, "{base_url} and {schedule:?}");
        }
    }

    #[tokio::test]
    async fn a_base_url_with_a_path_prefix_keeps_it() {
        let server = MockServer::start().await;
        Mock::given(path("/eu/v2/schedules/sre-primary/on-calls"))
            .respond_with(json(200, "opsgenie/on_calls_flat.json"))
            .expect(1)
            .mount(&server)
            .await;

        let answer = ask(&provider(&format!("{}/eu", server.uri()), "sre-primary")).await.expect("Opsgenie answers");

        assert_eq!(answer.primary, [email("alice@example.com")]);
    }

    #[tokio::test]
    async fn a_rejected_key_is_reported_naming_the_environment_variable_that_holds_it() {
        let server = MockServer::start().await;
        schedule_lookup("on-calls").respond_with(json(401, "opsgenie/error_401.json")).mount(&server).await;

        let error = ask(&provider(&server.uri(), "sre-primary")).await.unwrap_err();

        assert_eq!(
            error,
            OnCallError::Provider {
                provider: "opsgenie",
                message: "Opsgenie rejected the API token in OPSGENIE_API_KEY (HTTP 401 Unauthorized: Could not \
                          authenticate); check that it is current"
                    .to_owned(),
                retry_after: None,
            }
        );
    }

    #[tokio::test]
    async fn a_rate_limited_lookup_says_how_long_to_wait_from_opsgenies_rate_limit_period() {
        let server = MockServer::start().await;
        schedule_lookup("on-calls")
            .respond_with(
                json(429, "opsgenie/error_429.json")
                    .insert_header("X-RateLimit-State", "THROTTLED")
                    .insert_header("X-RateLimit-Period-In-Sec", "60"),
            )
            .mount(&server)
            .await;

        let error = ask(&provider(&server.uri(), "sre-primary")).await.unwrap_err();

        assert!(
            matches!(error, OnCallError::Provider { provider: "opsgenie", retry_after: Some(wait), .. } if wait == Duration::from_secs(60)),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn an_empty_schedule_is_an_error_so_that_the_fallback_answers() {
        let server = MockServer::start().await;
        let mut empty = fixture("opsgenie/on_calls_flat.json");
        empty["data"]["onCallRecipients"] = serde_json::json!([]);
        schedule_lookup("on-calls").respond_with(ResponseTemplate::new(200).set_body_json(empty)).mount(&server).await;

        let error = ask(&provider(&server.uri(), "sre-primary")).await.unwrap_err();

        assert_eq!(
            error.to_string(),
            "on-call provider opsgenie failed: nobody is on call in Opsgenie schedule sre-primary"
        );
    }
}
