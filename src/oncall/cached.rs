//! A team's external provider behind a cache and a fallback.
//!
//! [`CachedOnCall`] wraps one team's provider (PagerDuty, Opsgenie): it reuses an answer for the
//! same service until its TTL passes, as told by an injected [`Clock`], and when the provider
//! fails it answers from the team's [`Fallback`] instead: the built-in rotation, or a Slack user
//! group. A fallback answer carries the reason in [`OnCallAnswer::fallback`], so the war room
//! can say that the on-call came from the fallback and why. After a rate-limited answer
//! (`retry_after`), the provider is left alone until that time has passed.
//!
//! An escalation job pages [`OnCallAnswer::escalation`], or the answer's `lead_group` when it is
//! empty: a user-group fallback answers with the group there and nobody else.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tracing::warn;

use super::rotation::Rotation;
use super::{OnCall, OnCallAnswer, OnCallError, Service};
use crate::domain::Clock;

/// Who answers for a team when its provider fails.
#[derive(Debug, Clone, PartialEq)]
pub enum Fallback {
    /// The team's built-in rotation.
    Rotation(Rotation),
    /// A Slack user group (`S…`), invited as the answer's `lead_group`, with nobody named.
    UserGroup(String),
}

/// One team's provider with a per-service cache and a fallback.
pub struct CachedOnCall {
    team: String,
    provider: Arc<dyn OnCall>,
    fallback: Option<Fallback>,
    ttl: Duration,
    clock: Arc<dyn Clock>,
    // A std mutex: held to copy an entry in or out, never across an await. Two lookups that
    // miss at once both ask the provider; that costs one request and keeps the lock simple.
    state: Mutex<State>,
}

impl std::fmt::Debug for CachedOnCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedOnCall")
            .field("team", &self.team)
            .field("fallback", &self.fallback)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl CachedOnCall {
    /// The default time an answer is reused.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(5 * 60);

    /// Wraps `provider`, the provider of `team`, with a cache of [`DEFAULT_TTL`](Self::DEFAULT_TTL)
    /// and no fallback; `clock` tells when cached answers expire.
    pub fn new(team: impl Into<String>, provider: Arc<dyn OnCall>, clock: Arc<dyn Clock>) -> Self {
        CachedOnCall {
            team: team.into(),
            provider,
            fallback: None,
            ttl: Self::DEFAULT_TTL,
            clock,
            state: Mutex::new(State::default()),
        }
    }

    /// Reuses answers for `ttl`; zero turns caching off.
    #[must_use]
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Answers from `fallback` when the provider fails.
    #[must_use]
    pub fn with_fallback(mut self, fallback: Fallback) -> Self {
        self.fallback = Some(fallback);
        self
    }

    /// Returns the team's name.
    #[must_use]
    pub fn team(&self) -> &str {
        &self.team
    }

    /// Returns the fallback, if one is configured.
    #[must_use]
    pub fn fallback(&self) -> Option<&Fallback> {
        self.fallback.as_ref()
    }

    /// Returns how long answers are reused.
    #[must_use]
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Answers from `fallback` because the provider failed with `error`; without a fallback,
    /// returns the error.
    fn fall_back(&self, error: OnCallError, at: Timestamp) -> Result<OnCallAnswer, OnCallError> {
        let Some(fallback) = &self.fallback else {
            return Err(error);
        };
        let answer = match fallback {
            Fallback::Rotation(rotation) => match rotation.on_call_at(at) {
                Ok(answer) => OnCallAnswer {
                    fallback: Some(format!("{error}; answering from the team's built-in rotation")),
                    ..answer
                },
                Err(fallback_error) => {
                    warn!(oncall.team = %self.team, error = %fallback_error, "the built-in rotation of team {} failed too", self.team);
                    return Err(error);
                }
            },
            Fallback::UserGroup(group) => OnCallAnswer {
                team: self.team.clone(),
                primary: Vec::new(),
                next: None,
                lead_group: Some(group.clone()),
                escalation: Vec::new(),
                fallback: Some(format!("{error}; inviting the team's Slack user group {group} instead")),
            },
        };
        warn!(oncall.team = %self.team, %error, "on-call provider of team {} failed; answered from its fallback", self.team);
        Ok(answer)
    }

    /// Locks the state; a panic elsewhere while holding the lock leaves it consistent (every
    /// change is a single insert or assignment), so a poisoned lock is used as is.
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl OnCall for CachedOnCall {
    /// Returns the cached answer for `service` if it is fresh, else asks the provider, else
    /// answers from the fallback. Lookups for an instant further than the TTL from now bypass
    /// the cache, since cached answers are about now.
    async fn on_call(&self, service: Service<'_>, at: Timestamp) -> Result<OnCallAnswer, OnCallError> {
        let now = self.clock.now();
        let ttl = SignedDuration::try_from(self.ttl).unwrap_or(SignedDuration::MAX);
        let about_now = at.duration_since(now).abs() <= ttl;
        let key = ServiceKey::of(&service);

        let quiet = {
            let state = self.state();
            if about_now && let Some(cached) = state.answers.get(&key).filter(|cached| now < cached.expires) {
                return Ok(cached.answer.clone());
            }
            state.quiet.as_ref().filter(|quiet| now < quiet.until).cloned()
        };
        if let Some(quiet) = quiet {
            return self.fall_back(quiet.error, at);
        }

        match self.provider.on_call(service, at).await {
            Ok(answer) => {
                if about_now && !ttl.is_zero() {
                    let expires = now.checked_add(ttl).unwrap_or(Timestamp::MAX);
                    self.state().answers.insert(key, Cached { answer: answer.clone(), expires });
                }
                Ok(answer)
            }
            Err(error) => {
                if let OnCallError::Provider { retry_after: Some(wait), .. } = &error {
                    let wait = SignedDuration::try_from(*wait).unwrap_or(SignedDuration::MAX);
                    let until = now.checked_add(wait).unwrap_or(Timestamp::MAX);
                    self.state().quiet = Some(Quiet { until, error: error.clone() });
                }
                self.fall_back(error, at)
            }
        }
    }
}

/// What the cache holds.
#[derive(Debug, Default)]
struct State {
    answers: HashMap<ServiceKey, Cached>,
    /// Set after a rate-limited answer: do not ask the provider again before `until`.
    quiet: Option<Quiet>,
}

#[derive(Debug)]
struct Cached {
    answer: OnCallAnswer,
    expires: Timestamp,
}

#[derive(Debug, Clone)]
struct Quiet {
    until: Timestamp,
    /// The rate-limited answer, reported as the fallback's reason meanwhile.
    error: OnCallError,
}

/// A service as far as caching is concerned: its name and labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ServiceKey {
    name: Option<String>,
    labels: BTreeMap<String, String>,
}

impl ServiceKey {
    fn of(service: &Service<'_>) -> Self {
        ServiceKey { name: service.name.map(str::to_owned), labels: service.labels.clone() }
    }
}

#[cfg(test)]
mod tests {
    use wiremock::matchers::path;
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::domain::ManualClock;
    use crate::oncall::PersonRef;
    use crate::oncall::pagerduty::PagerDutyOnCall;
    use crate::oncall::providers::testing::{access, email, fixture, service};
    use crate::oncall::settings::OnCallSettings;

    /// 2026-05-01T12:00:00Z.
    const START: Timestamp = Timestamp::constant(1_777_636_800, 0);

    /// A PagerDuty provider for team `sre` at `server`, behind a cache moved by `clock`.
    fn cached(server: &MockServer, clock: &ManualClock) -> CachedOnCall {
        let pagerduty = PagerDutyOnCall::new("sre", "PABC123", access(&server.uri(), "pd-token", "PAGERDUTY_TOKEN"))
            .expect("the client builds");
        CachedOnCall::new("sre", Arc::new(pagerduty), Arc::new(clock.clone()))
    }

    /// The built-in rotation of team `sre`: U0SRE01 and U0SRE02, weekly, with a lead group.
    fn rotation() -> Rotation {
        let settings: OnCallSettings = toml::from_str(
            r#"
            [[teams]]
            name = "sre"
            members = ["U0SRE01", "U0SRE02"]
            lead_group = "S0LEADS"
            "#,
        )
        .expect("the rotation deserializes");
        settings.build().expect("the rotation is valid").team("sre").cloned().expect("sre is configured")
    }

    async fn respond(server: &MockServer, response: ResponseTemplate) {
        server.reset().await;
        Mock::given(path("/oncalls")).respond_with(response).mount(server).await;
    }

    async fn requests(server: &MockServer) -> usize {
        server.received_requests().await.map_or(0, |requests| requests.len())
    }

    fn minutes(n: i64) -> SignedDuration {
        SignedDuration::from_mins(n)
    }

    #[tokio::test]
    async fn a_second_lookup_within_the_ttl_makes_no_request_and_one_after_the_ttl_does() {
        let server = MockServer::start().await;
        respond(&server, ResponseTemplate::new(200).set_body_json(fixture("pagerduty/oncalls_permanent.json"))).await;
        let clock = ManualClock::new(START);
        let oncall = cached(&server, &clock).with_ttl(Duration::from_secs(5 * 60));

        let first = oncall.on_call(service("checkout"), clock.now()).await.expect("PagerDuty answers");
        assert_eq!(requests(&server).await, 1);

        clock.advance(minutes(4));
        let second = oncall.on_call(service("checkout"), clock.now()).await.expect("the cache answers");
        assert_eq!(requests(&server).await, 1, "a lookup within the TTL must not ask PagerDuty");
        assert_eq!(second, first);

        clock.advance(minutes(2));
        oncall.on_call(service("checkout"), clock.now()).await.expect("PagerDuty answers again");
        assert_eq!(requests(&server).await, 2, "a lookup after the TTL must ask PagerDuty again");
    }

    #[tokio::test]
    async fn each_service_is_cached_on_its_own() {
        let server = MockServer::start().await;
        respond(&server, ResponseTemplate::new(200).set_body_json(fixture("pagerduty/oncalls_permanent.json"))).await;
        let clock = ManualClock::new(START);
        let oncall = cached(&server, &clock);

        for name in ["checkout", "billing", "checkout", "billing"] {
            oncall.on_call(service(name), clock.now()).await.expect("an answer");
        }

        assert_eq!(requests(&server).await, 2);
    }

    #[tokio::test]
    async fn a_lookup_for_another_time_than_now_bypasses_the_cache() {
        let server = MockServer::start().await;
        respond(&server, ResponseTemplate::new(200).set_body_json(fixture("pagerduty/oncalls_permanent.json"))).await;
        let clock = ManualClock::new(START);
        let oncall = cached(&server, &clock);

        oncall.on_call(service("checkout"), clock.now()).await.expect("an answer");
        let next_week = START.checked_add(SignedDuration::from_hours(24 * 7)).unwrap();
        oncall.on_call(service("checkout"), next_week).await.expect("an answer");

        assert_eq!(requests(&server).await, 2);
    }

    #[tokio::test]
    async fn when_pagerduty_answers_503_the_built_in_rotation_answers_and_the_answer_says_why() {
        let server = MockServer::start().await;
        respond(&server, ResponseTemplate::new(503)).await;
        let clock = ManualClock::new(START);
        let oncall = cached(&server, &clock).with_fallback(Fallback::Rotation(rotation()));

        let answer = oncall.on_call(service("checkout"), clock.now()).await.expect("the fallback answers");

        let from_rotation = rotation().on_call_at(clock.now()).expect("the rotation answers");
        assert_eq!(answer.primary, from_rotation.primary);
        assert_eq!(answer.escalation, from_rotation.escalation);
        assert_eq!(answer.lead_group.as_deref(), Some("S0LEADS"));
        assert_eq!(
            answer.fallback.as_deref(),
            Some(
                "on-call provider pagerduty failed: PagerDuty answered HTTP 503 Service Unavailable; answering from \
                 the team's built-in rotation"
            )
        );
    }

    #[tokio::test]
    async fn when_pagerduty_fails_a_user_group_fallback_is_invited_instead_and_is_the_escalation_target() {
        let server = MockServer::start().await;
        respond(&server, ResponseTemplate::new(503)).await;
        let clock = ManualClock::new(START);
        let oncall = cached(&server, &clock).with_fallback(Fallback::UserGroup("S0SRE".to_owned()));

        let answer = oncall.on_call(service("checkout"), clock.now()).await.expect("the fallback answers");

        assert_eq!(
            answer,
            OnCallAnswer {
                team: "sre".to_owned(),
                primary: Vec::new(),
                next: None,
                lead_group: Some("S0SRE".to_owned()),
                escalation: Vec::new(),
                fallback: Some(
                    "on-call provider pagerduty failed: PagerDuty answered HTTP 503 Service Unavailable; inviting \
                     the team's Slack user group S0SRE instead"
                        .to_owned()
                ),
            }
        );
    }

    #[tokio::test]
    async fn without_a_fallback_the_providers_error_is_returned() {
        let server = MockServer::start().await;
        respond(&server, ResponseTemplate::new(503)).await;
        let clock = ManualClock::new(START);

        let result = cached(&server, &clock).on_call(service("checkout"), clock.now()).await;

        assert!(matches!(result, Err(OnCallError::Provider { provider: "pagerduty", .. })), "{result:?}");
    }

    #[tokio::test]
    async fn fallback_answers_are_not_cached_so_the_next_lookup_asks_pagerduty_again() {
        let server = MockServer::start().await;
        respond(&server, ResponseTemplate::new(503)).await;
        let clock = ManualClock::new(START);
        let oncall = cached(&server, &clock).with_fallback(Fallback::Rotation(rotation()));
        oncall.on_call(service("checkout"), clock.now()).await.expect("the fallback answers");

        respond(&server, ResponseTemplate::new(200).set_body_json(fixture("pagerduty/oncalls_permanent.json"))).await;
        clock.advance(minutes(1));
        let answer = oncall.on_call(service("checkout"), clock.now()).await.expect("PagerDuty answers");

        assert_eq!(answer.fallback, None);
        assert_eq!(answer.primary, [email("bob@example.com")]);
    }

    #[tokio::test]
    async fn after_a_rate_limited_answer_pagerduty_is_left_alone_until_the_wait_is_over() {
        let server = MockServer::start().await;
        respond(&server, ResponseTemplate::new(429).insert_header("Retry-After", "120")).await;
        let clock = ManualClock::new(START);
        let oncall = cached(&server, &clock).with_fallback(Fallback::Rotation(rotation()));

        let first = oncall.on_call(service("checkout"), clock.now()).await.expect("the fallback answers");
        assert!(first.fallback.is_some_and(|reason| reason.contains("rate limiting")));
        clock.advance(minutes(1));
        let second = oncall.on_call(service("billing"), clock.now()).await.expect("the fallback answers");
        assert!(second.fallback.is_some());
        assert_eq!(requests(&server).await, 1, "PagerDuty asked warroom to wait 120 s");

        respond(&server, ResponseTemplate::new(200).set_body_json(fixture("pagerduty/oncalls_permanent.json"))).await;
        clock.advance(minutes(2));
        let third = oncall.on_call(service("checkout"), clock.now()).await.expect("PagerDuty answers");
        assert_eq!(third.primary, [PersonRef::Email("bob@example.com".to_owned())]);
        assert_eq!(third.fallback, None);
    }
}
