//! Configuration of the built-in on-call rotation: the `[oncall]` section of warroom's config.
//!
//! ```toml
//! [oncall]
//! default_team = "platform"
//!
//! [[oncall.teams]]
//! name = "platform"
//! members = ["U01AAAA", "bob@example.com", "U01CCCC"]
//! timezone = "Europe/Berlin"
//! handoff = "weekly"
//! handoff_time = "09:00"
//! handoff_day = "monday"
//! rotation_start = "2026-01-05"
//! lead_group = "S0LEADS"
//!
//! [[oncall.teams.overrides]]
//! start = "2026-12-24T09:00"
//! end = "2026-12-27T09:00"
//! user = "U01DDDD"
//!
//! [[oncall.routes]]
//! service = "checkout"
//! team = "payments"
//! ```
//!
//! Values that need parsing (time zones, times, dates, people) are deserialized as plain strings
//! so that one bad value does not hide the others: [`OnCallSettings::validate`] reports every
//! problem at once, and [`OnCallSettings::build`] turns the settings into typed [`Rotations`].

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use jiff::Span;
use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::TimeZone;
use serde::Deserialize;

use super::PersonRef;
use super::rotation::{Handoff, Override, Rotation, Rotations, Route};

/// The default time zone of a team.
pub const DEFAULT_TIMEZONE: &str = "UTC";
/// The default hand-off frequency of a team.
pub const DEFAULT_HANDOFF: &str = "weekly";
/// The default local time of a team's hand-off.
pub const DEFAULT_HANDOFF_TIME: &str = "09:00";
/// The default day of a weekly hand-off.
pub const DEFAULT_HANDOFF_DAY: &str = "monday";
/// The default local date on which a team's first member starts (a Monday).
pub const DEFAULT_ROTATION_START: &str = "2026-01-05";

/// The `[oncall]` section: teams with their rotations, and routes from services to teams.
#[derive(Deserialize, Debug, Clone, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct OnCallSettings {
    /// The team used when no route matches a problem.
    pub default_team: Option<String>,
    /// The teams and their rotations (`[[oncall.teams]]`).
    pub teams: Vec<TeamSettings>,
    /// The routes from services to teams (`[[oncall.routes]]`); the first that matches wins.
    pub routes: Vec<RouteSettings>,
    /// If nobody acknowledges an incident within this time (`15m`), the next level is invited
    /// and mentioned; unset, nobody is paged further.
    pub escalate_after: Option<String>,
}

/// One team and its rotation (`[[oncall.teams]]`).
#[derive(Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct TeamSettings {
    /// The team's name, unique among teams and referred to by routes.
    pub name: String,
    /// The members in rotation order, as Slack user ids (`U…`) or emails.
    pub members: Vec<String>,
    /// The IANA time zone of hand-offs and overrides; `UTC` by default.
    pub timezone: String,
    /// How often the pager moves on: `daily` or `weekly` (the default).
    pub handoff: String,
    /// The local time of the hand-off, such as `09:00` (the default).
    pub handoff_time: String,
    /// The day of a weekly hand-off, such as `monday` (the default); ignored for daily ones.
    pub handoff_day: Option<String>,
    /// The local date on which the first member starts, `2026-01-05` by default. For a weekly
    /// rotation that starts on another day than `handoff_day`, the first member starts on the
    /// next hand-off day.
    pub rotation_start: String,
    /// A Slack user group id (`S…`) invited along with the person on call.
    pub lead_group: Option<String>,
    /// Periods during which someone else is on call (`[[oncall.teams.overrides]]`).
    pub overrides: Vec<OverrideSettings>,
    /// An external provider that answers for the team instead of the rotation
    /// (`provider = { kind = "pagerduty", … }` or `{ kind = "opsgenie", … }`).
    pub provider: Option<super::providers::ProviderSettings>,
    /// Who answers when the provider fails: `"rotation"` or `{ usergroup = "S…" }`.
    pub fallback: Option<super::providers::FallbackSettings>,
    /// How long a provider's answer is reused (`5m` by default).
    pub cache_ttl: Option<String>,
}

impl TeamSettings {
    /// The provider part of this team, if it has a provider.
    #[must_use]
    pub fn provider_settings(&self) -> Option<super::providers::TeamProviderSettings> {
        self.provider.clone().map(|provider| super::providers::TeamProviderSettings {
            provider,
            fallback: self.fallback.clone(),
            cache_ttl: self.cache_ttl.clone(),
        })
    }
}

impl Default for TeamSettings {
    fn default() -> Self {
        TeamSettings {
            name: String::new(),
            members: Vec::new(),
            timezone: DEFAULT_TIMEZONE.to_owned(),
            handoff: DEFAULT_HANDOFF.to_owned(),
            handoff_time: DEFAULT_HANDOFF_TIME.to_owned(),
            handoff_day: None,
            rotation_start: DEFAULT_ROTATION_START.to_owned(),
            lead_group: None,
            overrides: Vec::new(),
            provider: None,
            fallback: None,
            cache_ttl: None,
        }
    }
}

/// A period during which `user` takes the team's pager (`[[oncall.teams.overrides]]`).
#[derive(Deserialize, Debug, Clone, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct OverrideSettings {
    /// The local date-time in the team's time zone at which the override starts, such as
    /// `2026-12-24T09:00`; a plain date means midnight.
    pub start: String,
    /// The local date-time at which the override ends (exclusive); a plain date means midnight.
    pub end: String,
    /// The person on call during the override: a Slack user id or an email.
    pub user: String,
}

/// A route from a service or from labels to a team (`[[oncall.routes]]`).
///
/// A route matches when its `service`, if set, is the problem's service and every label in
/// `label` is among the problem's labels with the same value. A route must set at least one of
/// them.
#[derive(Deserialize, Debug, Clone, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RouteSettings {
    /// The service name to match exactly.
    pub service: Option<String>,
    /// Labels that must all match, such as `{ team = "db" }`.
    pub label: BTreeMap<String, String>,
    /// The name of the team to route to.
    pub team: String,
}

/// A problem found in the settings: the path of the offending field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsIssue {
    /// The path of the field, such as `oncall.teams[0].overrides[2].end`.
    pub field: String,
    /// What is wrong, such as `expected a local time like "09:00", got "25:00"`.
    pub message: String,
}

impl fmt::Display for SettingsIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for SettingsIssue {}

/// The issues found so far while building.
#[derive(Default)]
struct Issues(Vec<SettingsIssue>);

impl Issues {
    /// Records that `field` has the problem `message`.
    fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(SettingsIssue { field: field.into(), message: message.into() });
    }

    /// Returns the parsed value, or records the error at `field` and returns `None`.
    fn check<T>(&mut self, field: &str, parsed: Result<T, String>) -> Option<T> {
        parsed.map_err(|message| self.push(field, message)).ok()
    }
}

impl OnCallSettings {
    /// Returns every problem in the settings; an empty list means [`build`](Self::build) succeeds.
    pub fn validate(&self) -> Vec<SettingsIssue> {
        self.build().err().unwrap_or_default()
    }

    /// Parses the settings into typed [`Rotations`], or returns every problem found.
    ///
    /// Problems are reported in configuration order: `default_team`, then each team's fields,
    /// then each route.
    pub fn build(&self) -> Result<Rotations, Vec<SettingsIssue>> {
        let mut issues = Issues::default();

        // The first team with each name; later ones are duplicates.
        let mut team_index: HashMap<&str, usize> = HashMap::new();
        for (index, team) in self.teams.iter().enumerate() {
            team_index.entry(team.name.as_str()).or_insert(index);
        }
        let resolve_team = |name: &str| team_index.get(name).copied().ok_or_else(|| unknown_team(name, &self.teams));

        let default_team =
            self.default_team.as_deref().and_then(|name| issues.check("oncall.default_team", resolve_team(name)));

        let mut teams = Vec::with_capacity(self.teams.len());
        for (index, team) in self.teams.iter().enumerate() {
            let path = format!("oncall.teams[{index}]");
            if team.name.trim().is_empty() {
                issues.push(format!("{path}.name"), "must not be empty");
            } else if let Some(first) = team_index.get(team.name.as_str()).copied().filter(|&first| first != index) {
                issues.push(
                    format!("{path}.name"),
                    format!("duplicate team name {:?}; oncall.teams[{first}] already uses it", team.name),
                );
            }
            if let Some(rotation) = team.build(&path, &mut issues) {
                teams.push(rotation);
            }
        }

        let mut routes = Vec::with_capacity(self.routes.len());
        for (index, route) in self.routes.iter().enumerate() {
            let path = format!("oncall.routes[{index}]");
            let mut complete = true;
            match &route.service {
                Some(service) if service.trim().is_empty() => {
                    issues.push(format!("{path}.service"), "must not be empty");
                    complete = false;
                }
                None if route.label.is_empty() => {
                    issues.push(path.as_str(), "needs a `service` or a `label` to match on");
                    complete = false;
                }
                _ => {}
            }
            let team = issues.check(&format!("{path}.team"), resolve_team(&route.team));
            if let (Some(team), true) = (team, complete) {
                routes.push(Route { service: route.service.clone(), labels: route.label.clone(), team });
            }
        }

        if issues.0.is_empty() { Ok(Rotations { teams, routes, default_team }) } else { Err(issues.0) }
    }
}

impl TeamSettings {
    /// Parses the team's rotation, recording every problem under `path`; returns `None` if
    /// there was any.
    fn build(&self, path: &str, issues: &mut Issues) -> Option<Rotation> {
        let before = issues.0.len();

        let members_path = format!("{path}.members");
        if self.members.is_empty() {
            issues.push(members_path.as_str(), "must list at least one Slack user id or email");
        }
        let members: Vec<PersonRef> = self
            .members
            .iter()
            .filter_map(|member| {
                let parsed = member
                    .parse::<PersonRef>()
                    .map_err(|_| format!("expected a list of Slack user ids or emails; {member:?} is neither"));
                issues.check(&members_path, parsed)
            })
            .collect();

        let time_zone = issues.check(
            &format!("{path}.timezone"),
            TimeZone::get(&self.timezone).map_err(|_| {
                format!("unknown time zone {:?}; expected an IANA name like \"Europe/Berlin\"", self.timezone)
            }),
        );
        let weekly = issues.check(
            &format!("{path}.handoff"),
            match self.handoff.to_ascii_lowercase().as_str() {
                "daily" => Ok(false),
                "weekly" => Ok(true),
                _ => Err(format!("expected \"daily\" or \"weekly\", got {:?}", self.handoff)),
            },
        );
        let time = issues.check(&format!("{path}.handoff_time"), parse_time(&self.handoff_time));
        let day = issues.check(
            &format!("{path}.handoff_day"),
            self.handoff_day.as_deref().map_or(Ok(Weekday::Monday), parse_weekday),
        );
        let rotation_start_path = format!("{path}.rotation_start");
        let rotation_start = issues.check(&rotation_start_path, parse_date(&self.rotation_start));
        let lead_group = match &self.lead_group {
            Some(group) if !super::is_slack_id(group, b"S") => {
                issues
                    .push(format!("{path}.lead_group"), format!("expected a Slack user group id (S…), got {group:?}"));
                None
            }
            other => other.clone(),
        };

        let overrides: Vec<Override> = self
            .overrides
            .iter()
            .enumerate()
            .filter_map(|(index, over)| over.build(&format!("{path}.overrides[{index}]"), time_zone.as_ref(), issues))
            .collect();

        let (Some(time_zone), Some(weekly), Some(time), Some(day), Some(rotation_start)) =
            (time_zone, weekly, time, day, rotation_start)
        else {
            return None;
        };
        let handoff = if weekly { Handoff::Weekly { day, at: time } } else { Handoff::Daily { at: time } };
        let first_handoff = issues.check(&rotation_start_path, first_handoff(rotation_start, handoff, &time_zone))?;

        if issues.0.len() > before {
            return None;
        }
        Some(Rotation { name: self.name.clone(), members, time_zone, handoff, first_handoff, lead_group, overrides })
    }
}

impl OverrideSettings {
    /// Parses the override, recording every problem under `path`. The local date-times are
    /// placed in `time_zone`, when the team's time zone is valid.
    fn build(&self, path: &str, time_zone: Option<&TimeZone>, issues: &mut Issues) -> Option<Override> {
        let start_path = format!("{path}.start");
        let end_path = format!("{path}.end");
        let start = issues.check(&start_path, parse_local_datetime(&self.start));
        let end = issues.check(&end_path, parse_local_datetime(&self.end));
        let in_order = match (start, end) {
            (Some(start), Some(end)) if end <= start => {
                issues.push(end_path.as_str(), format!("must be after the override's start {:?}", self.start));
                false
            }
            _ => true,
        };
        let user = issues.check(
            &format!("{path}.user"),
            self.user
                .parse::<PersonRef>()
                .map_err(|_| format!("expected a Slack user id (U…) or an email, got {:?}", self.user)),
        );
        let (start, end, user, time_zone) = (start?, end?, user?, time_zone?);
        if !in_order {
            return None;
        }
        let instant = |datetime: DateTime| {
            datetime
                .to_zoned(time_zone.clone())
                .map(|zoned| zoned.timestamp())
                .map_err(|e| format!("cannot be placed in the team's time zone: {e}"))
        };
        let start = issues.check(&start_path, instant(start));
        let end = issues.check(&end_path, instant(end));
        let (start, end) = (start?, end?);
        if end <= start {
            // Only possible when `start` falls into a daylight saving gap and is moved past `end`.
            issues.push(
                end_path.as_str(),
                format!(
                    "must be after the override's start {:?}, which a daylight saving change moves to {start}",
                    self.start
                ),
            );
            return None;
        }
        Some(Override { start, end, user })
    }
}

/// Returns the message for a reference to a team that is not configured.
fn unknown_team(name: &str, teams: &[TeamSettings]) -> String {
    let mut names: Vec<String> = Vec::new();
    for team in teams {
        let quoted = format!("{:?}", team.name);
        if !team.name.trim().is_empty() && !names.contains(&quoted) {
            names.push(quoted);
        }
    }
    if names.is_empty() {
        format!("unknown team {name:?}; no teams are configured")
    } else {
        format!("unknown team {name:?}; configured teams are {}", names.join(", "))
    }
}

/// Reports whether a date or time string carries an offset or a time zone, which local values
/// must not.
fn has_offset(time_part: &str) -> bool {
    time_part.contains(['Z', 'z', '+', '-', '['])
}

/// Parses a local time of day such as `09:00` or `09:00:30`.
fn parse_time(s: &str) -> Result<Time, String> {
    let error = || format!("expected a local time like \"09:00\", got {s:?}");
    if has_offset(s) {
        return Err(error());
    }
    s.parse::<Time>().map_err(|_| error())
}

/// Parses a date such as `2026-01-05`.
fn parse_date(s: &str) -> Result<Date, String> {
    let error = || format!("expected a date like \"2026-01-05\", got {s:?}");
    if s.contains(['T', 't', ' ']) {
        return Err(error());
    }
    s.parse::<Date>().map_err(|_| error())
}

/// Parses a local date-time such as `2026-12-24T09:00`, or a date such as `2026-12-24` meaning
/// midnight at its start.
fn parse_local_datetime(s: &str) -> Result<DateTime, String> {
    let error =
        || format!("expected a local date-time like \"2026-12-24T09:00\" or a date like \"2026-12-24\", got {s:?}");
    match s.split_once(['T', 't', ' ']) {
        Some((_, time)) if has_offset(time) => Err(error()),
        Some(_) => s.parse::<DateTime>().map_err(|_| error()),
        None => parse_date(s).map(|date| date.to_datetime(Time::midnight())).map_err(|_| error()),
    }
}

/// Parses a day of the week such as `monday` or `Mon`, ignoring case.
fn parse_weekday(s: &str) -> Result<Weekday, String> {
    let day = match s.to_ascii_lowercase().as_str() {
        "monday" | "mon" => Weekday::Monday,
        "tuesday" | "tue" => Weekday::Tuesday,
        "wednesday" | "wed" => Weekday::Wednesday,
        "thursday" | "thu" => Weekday::Thursday,
        "friday" | "fri" => Weekday::Friday,
        "saturday" | "sat" => Weekday::Saturday,
        "sunday" | "sun" => Weekday::Sunday,
        _ => {
            return Err(format!("expected a day of the week like \"monday\", got {s:?}"));
        }
    };
    Ok(day)
}

/// Returns the local date of the first hand-off: `rotation_start` itself for a daily rotation,
/// the first hand-off day on or after it for a weekly one. Fails if that hand-off cannot be
/// placed in time, which only happens at the ends of the supported date range.
fn first_handoff(rotation_start: Date, handoff: Handoff, time_zone: &TimeZone) -> Result<Date, String> {
    let offset = match handoff {
        Handoff::Daily { .. } => 0,
        Handoff::Weekly { day, .. } => day.since(rotation_start.weekday()),
    };
    let error = |e: jiff::Error| format!("the first hand-off cannot be placed in time: {e}");
    let date = rotation_start.checked_add(Span::new().days(offset)).map_err(error)?;
    date.to_datetime(handoff.time()).to_zoned(time_zone.clone()).map_err(error)?;
    Ok(date)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The part of warroom's config these tests need.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Config {
        #[serde(default)]
        oncall: OnCallSettings,
    }

    fn settings(toml: &str) -> OnCallSettings {
        toml::from_str::<Config>(toml).expect("the test config deserializes").oncall
    }

    fn issue(field: &str, message: &str) -> SettingsIssue {
        SettingsIssue { field: field.to_owned(), message: message.to_owned() }
    }

    const EXAMPLE: &str = r#"
        [oncall]
        default_team = "platform"

        [[oncall.teams]]
        name = "platform"
        members = ["U01AAAA", "bob@example.com", "U01CCCC"]
        timezone = "Europe/Berlin"
        handoff = "weekly"
        handoff_time = "09:00"
        handoff_day = "monday"
        rotation_start = "2026-01-05"
        lead_group = "S0LEADS"

        [[oncall.teams.overrides]]
        start = "2026-12-24T09:00"
        end = "2026-12-27T09:00"
        user = "U01DDDD"

        [[oncall.teams]]
        name = "payments"
        members = ["U02AAAA"]
        handoff = "daily"

        [[oncall.teams]]
        name = "database"
        members = ["dba@example.com"]

        [[oncall.routes]]
        service = "checkout"
        team = "payments"

        [[oncall.routes]]
        label = { team = "db" }
        team = "database"
    "#;

    #[test]
    fn the_documented_example_builds_into_typed_rotations() {
        let rotations = settings(EXAMPLE).build().expect("the example is valid");
        let names: Vec<&str> = rotations.teams().iter().map(Rotation::name).collect();
        assert_eq!(names, ["platform", "payments", "database"]);

        let platform = rotations.team("platform").expect("platform is configured");
        assert_eq!(
            platform.members(),
            [
                PersonRef::SlackId("U01AAAA".to_owned()),
                PersonRef::Email("bob@example.com".to_owned()),
                PersonRef::SlackId("U01CCCC".to_owned()),
            ]
        );
        assert_eq!(platform.time_zone().iana_name(), Some("Europe/Berlin"));
        assert_eq!(platform.handoff(), Handoff::Weekly { day: Weekday::Monday, at: Time::constant(9, 0, 0, 0) });
        assert_eq!(platform.first_handoff(), Date::constant(2026, 1, 5));
        assert_eq!(platform.lead_group(), Some("S0LEADS"));
        assert_eq!(
            platform.overrides,
            [Override {
                start: "2026-12-24T08:00:00Z".parse().unwrap(),
                end: "2026-12-27T08:00:00Z".parse().unwrap(),
                user: PersonRef::SlackId("U01DDDD".to_owned()),
            }]
        );
        assert_eq!(rotations.default_team, Some(0));
        assert_eq!(rotations.routes.len(), 2);
    }

    #[test]
    fn a_team_that_only_names_its_members_gets_a_weekly_monday_0900_utc_rotation_from_2026_01_05() {
        let rotations = settings(
            r#"
            [[oncall.teams]]
            name = "solo"
            members = ["U01AAAA"]
            "#,
        )
        .build()
        .expect("defaults are valid");
        let solo = &rotations.teams()[0];
        assert_eq!(solo.time_zone().iana_name(), Some("UTC"));
        assert_eq!(solo.handoff(), Handoff::Weekly { day: Weekday::Monday, at: Time::constant(9, 0, 0, 0) });
        assert_eq!(solo.first_handoff(), Date::constant(2026, 1, 5));
        assert_eq!(solo.lead_group(), None);
        assert_eq!(rotations.default_team, None);
    }

    #[test]
    fn a_config_without_an_oncall_section_is_valid_and_has_no_teams() {
        let oncall = settings("");
        assert_eq!(oncall, OnCallSettings::default());
        assert_eq!(oncall.validate(), []);
        assert_eq!(oncall.build(), Ok(Rotations::default()));
    }

    #[test]
    fn validate_reports_every_problem_of_a_config_with_several_mistakes_at_once() {
        let oncall = settings(
            r#"
            [oncall]
            default_team = "nobody"

            [[oncall.teams]]
            name = "platform"
            members = ["U01AAAA", "bob", "bob@example.com"]
            timezone = "Europe/Berln"
            handoff = "fortnightly"
            handoff_time = "25:00"
            handoff_day = "funday"
            rotation_start = "2026-13-01"
            lead_group = "leads"

            [[oncall.teams.overrides]]
            start = "2026-12-24T09:00"
            end = "2026-12-27T09:00"
            user = "U01DDDD"

            [[oncall.teams.overrides]]
            start = "2026-12-27T09:00"
            end = "2026-12-24"
            user = "dave"

            [[oncall.teams.overrides]]
            start = "Christmas"
            end = "2026-12-24T09:00+01:00"
            user = "U01DDDD"

            [[oncall.teams]]
            name = "payments"
            members = []

            [[oncall.teams]]
            name = "platform"
            members = ["U01EEEE"]

            [[oncall.teams]]
            members = ["U01FFFF"]

            [[oncall.routes]]
            service = "checkout"
            team = "payments"

            [[oncall.routes]]
            team = "payments"

            [[oncall.routes]]
            label = { team = "db" }
            team = "database"

            [[oncall.routes]]
            service = ""
            team = "platform"
            "#,
        );
        let local_date_time = r#"expected a local date-time like "2026-12-24T09:00" or a date like "2026-12-24", got"#;
        let known = r#"configured teams are "platform", "payments""#;
        assert_eq!(
            oncall.validate(),
            [
                issue("oncall.default_team", &format!(r#"unknown team "nobody"; {known}"#)),
                issue("oncall.teams[0].members", r#"expected a list of Slack user ids or emails; "bob" is neither"#),
                issue(
                    "oncall.teams[0].timezone",
                    r#"unknown time zone "Europe/Berln"; expected an IANA name like "Europe/Berlin""#
                ),
                issue("oncall.teams[0].handoff", r#"expected "daily" or "weekly", got "fortnightly""#),
                issue("oncall.teams[0].handoff_time", r#"expected a local time like "09:00", got "25:00""#),
                issue("oncall.teams[0].handoff_day", r#"expected a day of the week like "monday", got "funday""#),
                issue("oncall.teams[0].rotation_start", r#"expected a date like "2026-01-05", got "2026-13-01""#),
                issue("oncall.teams[0].lead_group", r#"expected a Slack user group id (S…), got "leads""#),
                issue("oncall.teams[0].overrides[1].end", r#"must be after the override's start "2026-12-27T09:00""#),
                issue("oncall.teams[0].overrides[1].user", r#"expected a Slack user id (U…) or an email, got "dave""#),
                issue("oncall.teams[0].overrides[2].start", &format!(r#"{local_date_time} "Christmas""#)),
                issue("oncall.teams[0].overrides[2].end", &format!(r#"{local_date_time} "2026-12-24T09:00+01:00""#)),
                issue("oncall.teams[1].members", "must list at least one Slack user id or email"),
                issue("oncall.teams[2].name", r#"duplicate team name "platform"; oncall.teams[0] already uses it"#),
                issue("oncall.teams[3].name", "must not be empty"),
                issue("oncall.routes[1]", "needs a `service` or a `label` to match on"),
                issue("oncall.routes[2].team", &format!(r#"unknown team "database"; {known}"#)),
                issue("oncall.routes[3].service", "must not be empty"),
            ]
        );
    }

    #[test]
    fn build_fails_with_exactly_the_issues_that_validate_reports() {
        let oncall = settings(
            r#"
            [[oncall.teams]]
            name = "platform"
            members = ["U01AAAA"]
            timezone = "Mars/Olympus_Mons"

            [[oncall.routes]]
            service = "checkout"
            team = "payments"
            "#,
        );
        let issues = oncall.validate();
        assert_eq!(issues.len(), 2);
        assert_eq!(oncall.build(), Err(issues));
    }

    #[test]
    fn a_route_to_a_team_that_does_not_exist_says_so_even_without_teams() {
        let oncall = settings(
            r#"
            [oncall]
            default_team = "platform"
            "#,
        );
        assert_eq!(
            oncall.validate(),
            [issue("oncall.default_team", r#"unknown team "platform"; no teams are configured"#)]
        );
    }

    #[test]
    fn unknown_keys_are_rejected_when_deserializing() {
        let cases = [
            "[oncall]\ndefault_taem = \"platform\"",
            "[[oncall.teams]]\nname = \"a\"\nmember = [\"U01AAAA\"]",
            "[[oncall.teams]]\nname = \"a\"\n[[oncall.teams.overrides]]\nuntil = \"2026-01-01\"",
            "[[oncall.routes]]\nlabels = { team = \"db\" }\nteam = \"a\"",
        ];
        for toml in cases {
            assert!(toml::from_str::<Config>(toml).is_err(), "{toml:?} should be rejected");
        }
    }

    #[test]
    fn a_weekly_rotation_first_hands_off_on_the_first_handoff_day_on_or_after_its_start() {
        let utc = TimeZone::UTC;
        let at = Time::constant(9, 0, 0, 0);
        #[rustfmt::skip]
        let cases = [
            // (rotation_start, handoff, first hand-off)
            ("2026-01-05", Handoff::Weekly { day: Weekday::Monday, at }, "2026-01-05"),
            ("2026-01-07", Handoff::Weekly { day: Weekday::Monday, at }, "2026-01-12"),
            ("2026-01-11", Handoff::Weekly { day: Weekday::Monday, at }, "2026-01-12"),
            ("2026-01-05", Handoff::Weekly { day: Weekday::Sunday, at }, "2026-01-11"),
            ("2026-01-07", Handoff::Daily { at }, "2026-01-07"),
        ];
        for (start, handoff, expected) in cases {
            let start: Date = start.parse().unwrap();
            assert_eq!(first_handoff(start, handoff, &utc), Ok(expected.parse().unwrap()), "{start} {handoff:?}");
        }
    }

    #[test]
    fn a_rotation_at_the_end_of_time_is_reported_instead_of_panicking() {
        let oncall = settings(
            r#"
            [[oncall.teams]]
            name = "late"
            members = ["U01AAAA"]
            handoff_day = "friday"
            rotation_start = "9999-12-31"
            "#,
        );
        let issues = oncall.validate();
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].field, "oncall.teams[0].rotation_start");
    }

    #[test]
    fn local_date_times_accept_a_date_time_or_a_plain_date_and_reject_offsets() {
        let cases = [
            ("2026-12-24T09:00", Some("2026-12-24T09:00")),
            ("2026-12-24T09:00:30", Some("2026-12-24T09:00:30")),
            ("2026-12-24 09:00", Some("2026-12-24T09:00")),
            ("2026-12-24", Some("2026-12-24T00:00")),
            ("2026-12-24T09:00Z", None),
            ("2026-12-24T09:00+01:00", None),
            ("2026-12-24T09:00-05:00", None),
            ("2026-12-24T09:00[Europe/Berlin]", None),
            ("2026-12-24T25:00", None),
            ("2026-02-30", None),
            ("", None),
        ];
        for (input, expected) in cases {
            let expected: Option<DateTime> = expected.map(|s| s.parse().unwrap());
            assert_eq!(parse_local_datetime(input).ok(), expected, "{input:?}");
        }
    }

    #[test]
    fn handoff_times_and_days_parse_leniently_but_reject_nonsense() {
        let times = [
            ("09:00", Some(Time::constant(9, 0, 0, 0))),
            ("17:30:15", Some(Time::constant(17, 30, 15, 0))),
            ("00:00", Some(Time::midnight())),
            ("25:00", None),
            ("24:00", None),
            ("9:00", None),
            ("09:00Z", None),
            ("09:00+01:00", None),
            ("nine", None),
        ];
        for (input, expected) in times {
            assert_eq!(parse_time(input).ok(), expected, "{input:?}");
        }
        let days = [
            ("monday", Some(Weekday::Monday)),
            ("Friday", Some(Weekday::Friday)),
            ("SUN", Some(Weekday::Sunday)),
            ("wed", Some(Weekday::Wednesday)),
            ("funday", None),
            ("", None),
        ];
        for (input, expected) in days {
            assert_eq!(parse_weekday(input).ok(), expected, "{input:?}");
        }
    }

    #[test]
    fn a_settings_issue_displays_as_field_colon_message() {
        assert_eq!(
            issue("oncall.routes[3].team", r#"unknown team "x""#).to_string(),
            r#"oncall.routes[3].team: unknown team "x""#
        );
    }
}
