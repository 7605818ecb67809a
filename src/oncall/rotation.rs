//! The built-in on-call provider: rotations described in warroom's own configuration.
//!
//! A [`Rotation`] hands the pager from one member to the next every day or every week at a fixed
//! local time in the team's time zone. Hand-offs are computed with zoned civil arithmetic, so a
//! hand-off at 09:00 stays at 09:00 local time across daylight saving changes (its UTC instant
//! moves by an hour instead). Overrides replace the rotation's person for a while, and routes pick
//! the team for a service. [`Rotations`] is built from
//! [`OnCallSettings`](super::settings::OnCallSettings) and is already parsed and checked, so
//! looking someone up never re-validates the configuration.

use std::collections::BTreeMap;

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};

use super::{OnCall, OnCallAnswer, OnCallError, PersonRef, Service, Shift};

/// The provider name used in [`OnCallError::Provider`] errors of the built-in rotation.
const PROVIDER: &str = "builtin";

/// When a rotation hands the pager to its next member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handoff {
    /// Every day at the given local time.
    Daily {
        /// The local time of the hand-off.
        at: Time,
    },
    /// Every week on the given day at the given local time.
    Weekly {
        /// The day of the week of the hand-off.
        day: Weekday,
        /// The local time of the hand-off.
        at: Time,
    },
}

impl Handoff {
    /// Returns the local time of day at which hand-offs happen.
    pub fn time(&self) -> Time {
        match *self {
            Handoff::Daily { at } | Handoff::Weekly { at, .. } => at,
        }
    }

    /// Returns the number of days between two hand-offs.
    fn period_days(&self) -> i64 {
        match self {
            Handoff::Daily { .. } => 1,
            Handoff::Weekly { .. } => 7,
        }
    }
}

/// A period during which someone else takes a team's pager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Override {
    /// The first instant covered by the override.
    pub(super) start: Timestamp,
    /// The first instant no longer covered by the override.
    pub(super) end: Timestamp,
    /// The person on call during the override.
    pub(super) user: PersonRef,
}

impl Override {
    /// Reports whether the override covers the instant `at` (its end is exclusive).
    fn covers(&self, at: Timestamp) -> bool {
        self.start <= at && at < self.end
    }
}

/// A rule sending the problems of a service, or with some labels, to a team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Route {
    /// The service name that must match exactly, if any.
    pub(super) service: Option<String>,
    /// Labels that must all be present with these values.
    pub(super) labels: BTreeMap<String, String>,
    /// The index of the team in [`Rotations::teams`].
    pub(super) team: usize,
}

impl Route {
    /// Reports whether the route matches `service`: its service name, if set, must be the
    /// service's name, and every one of its labels must be among the service's labels.
    fn matches(&self, service: &Service<'_>) -> bool {
        let service_matches = match &self.service {
            Some(name) => service.name == Some(name.as_str()),
            None => true,
        };
        service_matches && self.labels.iter().all(|(key, value)| service.labels.get(key) == Some(value))
    }
}

/// One team's rotation, parsed from [`TeamSettings`](super::settings::TeamSettings).
#[derive(Debug, Clone, PartialEq)]
pub struct Rotation {
    pub(super) name: String,
    /// The rotation order; never empty.
    pub(super) members: Vec<PersonRef>,
    pub(super) time_zone: TimeZone,
    pub(super) handoff: Handoff,
    /// The local date of the first hand-off, on which `members[0]` starts; for weekly rotations
    /// it is always on the hand-off day.
    pub(super) first_handoff: Date,
    pub(super) lead_group: Option<String>,
    pub(super) overrides: Vec<Override>,
}

impl Rotation {
    /// Returns the team's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the members in rotation order; the list is never empty.
    pub fn members(&self) -> &[PersonRef] {
        &self.members
    }

    /// Returns the time zone in which hand-offs and overrides are expressed.
    pub fn time_zone(&self) -> &TimeZone {
        &self.time_zone
    }

    /// Returns when the rotation hands off.
    pub fn handoff(&self) -> Handoff {
        self.handoff
    }

    /// Returns the local date of the first hand-off, on which the first member starts.
    pub fn first_handoff(&self) -> Date {
        self.first_handoff
    }

    /// Returns the Slack user group invited along with the person on call, if any.
    pub fn lead_group(&self) -> Option<&str> {
        self.lead_group.as_deref()
    }

    /// Returns who is on call in this rotation at the instant `at`.
    ///
    /// The answer holds the person on call (an override's user, if one covers `at`), the next
    /// shift (the next instant at which someone else takes over: a hand-off, or the start or
    /// end of an override), the next member in rotation order as escalation and the lead group.
    pub fn on_call_at(&self, at: Timestamp) -> Result<OnCallAnswer, OnCallError> {
        let (primary, index) = self.who(at)?;
        let next = self.next_shift(at, &primary)?;
        let escalation = self.escalation_after(index, &primary);
        Ok(OnCallAnswer {
            team: self.name.clone(),
            primary,
            next,
            lead_group: self.lead_group.clone(),
            escalation,
            fallback: None,
        })
    }

    /// Returns the people on call at `at` and the rotation index of the regular shift.
    fn who(&self, at: Timestamp) -> Result<(Vec<PersonRef>, usize), OnCallError> {
        let index = self.member_index(self.shift_number(at)?);
        let primary = match self.override_at(at) {
            Some(over) => over.user.clone(),
            None => self.members[index].clone(),
        };
        Ok((vec![primary], index))
    }

    /// Returns the override in force at `at`: among those covering it, the one that started
    /// last, so a short override inside a longer one wins; on a tie, the one listed last.
    fn override_at(&self, at: Timestamp) -> Option<&Override> {
        self.overrides.iter().filter(|over| over.covers(at)).max_by_key(|over| over.start)
    }

    /// Returns the position in `members` of shift number `shift`.
    fn member_index(&self, shift: i64) -> usize {
        // `members` is never empty and a `Vec` never holds more than `i64::MAX` elements, so the
        // conversions cannot fail; fall back to the first member rather than panic regardless.
        let len = i64::try_from(self.members.len()).unwrap_or(i64::MAX).max(1);
        usize::try_from(shift.rem_euclid(len)).unwrap_or(0)
    }

    /// Returns the instant of hand-off number `n`, counted from the first hand-off (number 0).
    ///
    /// A hand-off time that falls into a daylight saving gap happens at the corresponding
    /// instant after the gap, and one that is ambiguous happens at its first occurrence.
    fn handoff_instant(&self, n: i64) -> Result<Timestamp, OnCallError> {
        let days = n
            .checked_mul(self.handoff.period_days())
            .ok_or_else(|| self.arithmetic_error("the hand-off number is out of range"))?;
        let span = Span::new().try_days(days).map_err(|e| self.arithmetic_error(e))?;
        let date = self.first_handoff.checked_add(span).map_err(|e| self.arithmetic_error(e))?;
        let zoned = date
            .to_datetime(self.handoff.time())
            .to_zoned(self.time_zone.clone())
            .map_err(|e| self.arithmetic_error(e))?;
        Ok(zoned.timestamp())
    }

    /// Returns the number of the regular shift in force at `at`: the number of hand-offs after
    /// the first one up to and including `at`. Before the first hand-off it is shift 0, so the
    /// first member is on call.
    fn shift_number(&self, at: Timestamp) -> Result<i64, OnCallError> {
        if at < self.handoff_instant(0)? {
            return Ok(0);
        }
        let local_date = at.to_zoned(self.time_zone.clone()).date();
        let days = self.first_handoff.until(local_date).map_err(|e| self.arithmetic_error(e))?.get_days();
        // A first guess from the local date; daylight saving changes can move a hand-off
        // instant across a date boundary only in odd zones, so correct the guess by comparing
        // instants. Hand-off instants never decrease, so a few steps always suffice.
        let mut shift = i64::from(days).div_euclid(self.handoff.period_days());
        for _ in 0..4 {
            if shift > 0 && self.handoff_instant(shift)? > at {
                shift -= 1;
            } else {
                break;
            }
        }
        for _ in 0..4 {
            if self.handoff_instant(shift + 1)? <= at {
                shift += 1;
            } else {
                break;
            }
        }
        Ok(shift)
    }

    /// Returns the first instant after `at` at which the person on call may change: the next
    /// regular hand-off, or the start or end of an override, whichever comes first.
    fn next_boundary(&self, at: Timestamp) -> Result<Timestamp, OnCallError> {
        let handoff = self.handoff_instant(self.shift_number(at)? + 1)?;
        Ok(self
            .overrides
            .iter()
            .flat_map(|over| [over.start, over.end])
            .filter(|&instant| instant > at)
            .fold(handoff, std::cmp::min))
    }

    /// Returns the next shift after `at`: the first boundary at which someone other than
    /// `current` is on call. When nobody else ever is (a one-person rotation without
    /// overrides), it is the next boundary with the same person.
    fn next_shift(&self, at: Timestamp, current: &[PersonRef]) -> Result<Option<Shift>, OnCallError> {
        let first = self.next_boundary(at)?;
        let mut boundary = first;
        // Each boundary is a hand-off or an override edge; after this many of them, someone
        // else would have been on call already if anyone else ever is.
        let limit = self.members.len() + 2 * self.overrides.len() + 1;
        for _ in 0..limit {
            let (people, _) = self.who(boundary)?;
            if people != current {
                return Ok(Some(Shift { people, starts_at: boundary }));
            }
            boundary = self.next_boundary(boundary)?;
        }
        let (people, _) = self.who(first)?;
        Ok(Some(Shift { people, starts_at: first }))
    }

    /// Returns the escalation level after the regular member at `index`: the next member in
    /// rotation order who is not already on call, or nobody if there is no such member.
    fn escalation_after(&self, index: usize, primary: &[PersonRef]) -> Vec<PersonRef> {
        let len = self.members.len();
        (1..len)
            .map(|step| &self.members[(index + step) % len])
            .find(|member| !primary.contains(member))
            .map(|member| vec![member.clone()])
            .unwrap_or_default()
    }

    /// Wraps a date arithmetic failure, which only happens near the ends of the supported
    /// date range (years -9999 and 9999).
    fn arithmetic_error(&self, error: impl std::fmt::Display) -> OnCallError {
        OnCallError::Provider {
            provider: PROVIDER,
            message: format!("cannot compute the rotation of team {}: {error}", self.name),
            retry_after: None,
        }
    }
}

/// All configured rotations and the routes to them, parsed from
/// [`OnCallSettings`](super::settings::OnCallSettings) with
/// [`OnCallSettings::build`](super::settings::OnCallSettings::build).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rotations {
    pub(super) teams: Vec<Rotation>,
    pub(super) routes: Vec<Route>,
    /// The index in `teams` of the team used when no route matches.
    pub(super) default_team: Option<usize>,
}

impl Rotations {
    /// Returns every team's rotation in configuration order.
    pub fn teams(&self) -> &[Rotation] {
        &self.teams
    }

    /// Returns the rotation of the team called `name`, if there is one.
    pub fn team(&self, name: &str) -> Option<&Rotation> {
        self.teams.iter().find(|team| team.name == name)
    }

    /// Returns the rotation responsible for `service`: the team of the first route that
    /// matches, else the default team, else `None`.
    pub fn route(&self, service: &Service<'_>) -> Option<&Rotation> {
        self.routes
            .iter()
            .find(|route| route.matches(service))
            .map(|route| route.team)
            .or(self.default_team)
            .and_then(|index| self.teams.get(index))
    }
}

/// The built-in on-call provider, answering from [`Rotations`] in the configuration.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BuiltinRotation {
    rotations: Rotations,
}

impl BuiltinRotation {
    /// Creates the provider from parsed rotations.
    pub fn new(rotations: Rotations) -> Self {
        BuiltinRotation { rotations }
    }

    /// Returns the rotations the provider answers from.
    pub fn rotations(&self) -> &Rotations {
        &self.rotations
    }

    /// Returns who is on call for `service` at the instant `at`, synchronously.
    ///
    /// The service is routed to a team (see [`Rotations::route`]) and the team's rotation
    /// answers (see [`Rotation::on_call_at`]). Fails with [`OnCallError::NoTeam`] when no route
    /// matches and no default team is configured.
    pub fn on_call_at(&self, service: Service<'_>, at: Timestamp) -> Result<OnCallAnswer, OnCallError> {
        self.rotations
            .route(&service)
            .ok_or_else(|| OnCallError::NoTeam { service: service.describe() })?
            .on_call_at(at)
    }
}

impl From<Rotations> for BuiltinRotation {
    fn from(rotations: Rotations) -> Self {
        BuiltinRotation::new(rotations)
    }
}

#[async_trait::async_trait]
impl OnCall for BuiltinRotation {
    async fn on_call(&self, service: Service<'_>, at: Timestamp) -> Result<OnCallAnswer, OnCallError> {
        self.on_call_at(service, at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oncall::settings::OnCallSettings;

    /// The part of warroom's config these tests need.
    #[derive(serde::Deserialize)]
    struct Config {
        oncall: OnCallSettings,
    }

    /// Builds the provider from an `[oncall]` config written in TOML.
    fn provider(toml: &str) -> BuiltinRotation {
        let settings = toml::from_str::<Config>(toml).expect("the test config deserializes").oncall;
        BuiltinRotation::new(settings.build().expect("the test config is valid"))
    }

    /// Builds a provider with one team, `team`, as the default team.
    fn team(team: &str) -> BuiltinRotation {
        provider(&format!("[oncall]\ndefault_team = \"team\"\n[[oncall.teams]]\nname = \"team\"\n{team}"))
    }

    fn instant(s: &str) -> Timestamp {
        s.parse().expect("the test instant parses")
    }

    fn person(s: &str) -> PersonRef {
        s.parse().expect("the test person parses")
    }

    /// Asks the provider about an unnamed, unlabelled service, which goes to the default team.
    fn ask(provider: &BuiltinRotation, at: &str) -> OnCallAnswer {
        let labels = BTreeMap::new();
        provider.on_call_at(Service { name: None, labels: &labels }, instant(at)).expect("the lookup succeeds")
    }

    /// Asserts who is on call at each instant and when and to whom the pager goes next.
    #[track_caller]
    fn assert_shifts(provider: &BuiltinRotation, cases: &[(&str, &str, &str, &str)]) {
        for &(at, primary, next_person, next_at) in cases {
            let answer = ask(provider, at);
            assert_eq!(answer.primary, [person(primary)], "primary at {at}");
            assert_eq!(
                answer.next,
                Some(Shift { people: vec![person(next_person)], starts_at: instant(next_at) }),
                "next shift after {at}"
            );
        }
    }

    const DAILY_UTC: &str = r#"
        members = ["U0000A", "U0000B", "U0000C"]
        handoff = "daily"
        handoff_time = "09:00"
        rotation_start = "2026-01-05"
    "#;

    #[test]
    fn a_daily_rotation_goes_through_the_members_in_order_and_wraps_around() {
        let provider = team(DAILY_UTC);
        #[rustfmt::skip]
        let cases = [
            // (at, on call, next on call, next hand-off)
            ("2026-01-05T09:00:00Z", "U0000A", "U0000B", "2026-01-06T09:00:00Z"),
            ("2026-01-06T08:59:59Z", "U0000A", "U0000B", "2026-01-06T09:00:00Z"),
            ("2026-01-06T09:00:00Z", "U0000B", "U0000C", "2026-01-07T09:00:00Z"),
            ("2026-01-07T23:59:59Z", "U0000C", "U0000A", "2026-01-08T09:00:00Z"),
            ("2026-01-08T00:00:00Z", "U0000C", "U0000A", "2026-01-08T09:00:00Z"),
            ("2026-01-08T09:00:00Z", "U0000A", "U0000B", "2026-01-09T09:00:00Z"),
            // 365 days after the start: 365 % 3 == 2.
            ("2027-01-05T10:00:00Z", "U0000C", "U0000A", "2027-01-06T09:00:00Z"),
        ];
        assert_shifts(&provider, &cases);
    }

    #[test]
    fn a_weekly_rotation_hands_off_every_handoff_day_at_the_handoff_time() {
        let provider = team(
            r#"
            members = ["U0000A", "U0000B", "U0000C"]
            handoff = "weekly"
            handoff_day = "monday"
            handoff_time = "09:00"
            rotation_start = "2026-01-05"
            "#,
        );
        #[rustfmt::skip]
        let cases = [
            ("2026-01-05T09:00:00Z", "U0000A", "U0000B", "2026-01-12T09:00:00Z"),
            ("2026-01-08T12:00:00Z", "U0000A", "U0000B", "2026-01-12T09:00:00Z"),
            ("2026-01-12T08:59:59Z", "U0000A", "U0000B", "2026-01-12T09:00:00Z"),
            ("2026-01-12T09:00:00Z", "U0000B", "U0000C", "2026-01-19T09:00:00Z"),
            ("2026-01-18T23:00:00Z", "U0000B", "U0000C", "2026-01-19T09:00:00Z"),
            ("2026-01-19T09:00:00Z", "U0000C", "U0000A", "2026-01-26T09:00:00Z"),
            ("2026-01-26T09:00:00Z", "U0000A", "U0000B", "2026-02-02T09:00:00Z"),
        ];
        assert_shifts(&provider, &cases);
    }

    #[test]
    fn the_handoff_instant_itself_belongs_to_the_new_shift() {
        // 09:00 in Berlin in January is 08:00Z.
        let provider = team(&format!("timezone = \"Europe/Berlin\"\n{DAILY_UTC}"));
        assert_eq!(ask(&provider, "2026-01-06T07:59:59.999999999Z").primary, [person("U0000A")]);
        assert_eq!(ask(&provider, "2026-01-06T08:00:00Z").primary, [person("U0000B")]);
    }

    #[test]
    fn before_the_rotation_starts_the_first_member_is_on_call_until_the_second_takes_over() {
        let daily = team(DAILY_UTC);
        #[rustfmt::skip]
        let cases = [
            ("2025-06-01T00:00:00Z", "U0000A", "U0000B", "2026-01-06T09:00:00Z"),
            ("2026-01-05T08:59:59Z", "U0000A", "U0000B", "2026-01-06T09:00:00Z"),
        ];
        assert_shifts(&daily, &cases);
        // Starting on a Wednesday, a Monday rotation first hands off on the next Monday.
        let weekly = team(
            r#"
            members = ["U0000A", "U0000B"]
            handoff_day = "monday"
            rotation_start = "2026-01-07"
            "#,
        );
        #[rustfmt::skip]
        let cases = [
            ("2026-01-08T12:00:00Z", "U0000A", "U0000B", "2026-01-19T09:00:00Z"),
            ("2026-01-12T09:00:00Z", "U0000A", "U0000B", "2026-01-19T09:00:00Z"),
            ("2026-01-19T09:00:00Z", "U0000B", "U0000A", "2026-01-26T09:00:00Z"),
        ];
        assert_shifts(&weekly, &cases);
        let labels = BTreeMap::new();
        let service = Service { name: None, labels: &labels };
        assert!(daily.on_call_at(service, Timestamp::MIN).is_ok());
    }

    #[test]
    fn a_berlin_handoff_stays_at_0900_local_across_both_dst_changes_of_2026() {
        // CET (+01:00) until 2026-03-29 01:00Z and again from 2026-10-25 01:00Z; CEST (+02:00)
        // in between. So 09:00 local is 08:00Z in winter and 07:00Z in summer.
        let provider = team(&format!("timezone = \"Europe/Berlin\"\n{DAILY_UTC}"));
        #[rustfmt::skip]
        let cases = [
            // Spring: day 82 (2026-03-28) is B, day 83 is C, day 84 is A.
            ("2026-03-28T07:59:59Z", "U0000A", "U0000B", "2026-03-28T08:00:00Z"),
            ("2026-03-28T08:00:00Z", "U0000B", "U0000C", "2026-03-29T07:00:00Z"),
            ("2026-03-29T06:59:59Z", "U0000B", "U0000C", "2026-03-29T07:00:00Z"),
            ("2026-03-29T07:00:00Z", "U0000C", "U0000A", "2026-03-30T07:00:00Z"),
            // Autumn: day 292 (2026-10-24) is B, day 293 is C, day 294 is A.
            ("2026-10-24T07:00:00Z", "U0000B", "U0000C", "2026-10-25T08:00:00Z"),
            ("2026-10-25T07:59:59Z", "U0000B", "U0000C", "2026-10-25T08:00:00Z"),
            ("2026-10-25T08:00:00Z", "U0000C", "U0000A", "2026-10-26T08:00:00Z"),
        ];
        assert_shifts(&provider, &cases);
    }

    #[test]
    fn a_weekly_berlin_handoff_stays_at_0900_local_across_both_dst_changes_of_2026() {
        let provider = team(
            r#"
            members = ["U0000A", "U0000B", "U0000C"]
            timezone = "Europe/Berlin"
            handoff_day = "monday"
            "#,
        );
        #[rustfmt::skip]
        let cases = [
            // Week 11 (from 2026-03-23) is C, week 12 (from 2026-03-30) is A.
            ("2026-03-23T07:59:59Z", "U0000B", "U0000C", "2026-03-23T08:00:00Z"),
            ("2026-03-25T12:00:00Z", "U0000C", "U0000A", "2026-03-30T07:00:00Z"),
            ("2026-03-30T07:00:00Z", "U0000A", "U0000B", "2026-04-06T07:00:00Z"),
            // Week 41 (from 2026-10-19) is C, week 42 (from 2026-10-26) is A.
            ("2026-10-19T07:00:00Z", "U0000C", "U0000A", "2026-10-26T08:00:00Z"),
            ("2026-10-26T07:59:59Z", "U0000C", "U0000A", "2026-10-26T08:00:00Z"),
            ("2026-10-26T08:00:00Z", "U0000A", "U0000B", "2026-11-02T08:00:00Z"),
        ];
        assert_shifts(&provider, &cases);
    }

    #[test]
    fn a_new_york_handoff_stays_at_0900_local_across_both_dst_changes_of_2026() {
        // EST (-05:00) until 2026-03-08 and from 2026-11-01; EDT (-04:00) in between.
        let provider = team(
            r#"
            members = ["U0000A", "U0000B"]
            timezone = "America/New_York"
            handoff = "daily"
            "#,
        );
        #[rustfmt::skip]
        let cases = [
            // Day 61 (2026-03-07) is B, day 62 (2026-03-08) is A.
            ("2026-03-07T13:59:59Z", "U0000A", "U0000B", "2026-03-07T14:00:00Z"),
            ("2026-03-07T14:00:00Z", "U0000B", "U0000A", "2026-03-08T13:00:00Z"),
            ("2026-03-08T13:00:00Z", "U0000A", "U0000B", "2026-03-09T13:00:00Z"),
            // Day 299 (2026-10-31) is B, day 300 (2026-11-01) is A.
            ("2026-10-31T13:00:00Z", "U0000B", "U0000A", "2026-11-01T14:00:00Z"),
            ("2026-11-01T13:59:59Z", "U0000B", "U0000A", "2026-11-01T14:00:00Z"),
            ("2026-11-01T14:00:00Z", "U0000A", "U0000B", "2026-11-02T14:00:00Z"),
        ];
        assert_shifts(&provider, &cases);
    }

    #[test]
    fn a_handoff_in_a_dst_gap_happens_just_after_it_and_an_ambiguous_one_at_its_first_occurrence() {
        let gap = team(
            r#"
            members = ["U0000A", "U0000B"]
            timezone = "America/New_York"
            handoff = "daily"
            handoff_time = "02:30"
            "#,
        );
        #[rustfmt::skip]
        let cases = [
            // 02:30 does not exist on 2026-03-08; the hand-off happens at 03:30 EDT.
            ("2026-03-07T12:00:00Z", "U0000B", "U0000A", "2026-03-08T07:30:00Z"),
            ("2026-03-08T07:29:59Z", "U0000B", "U0000A", "2026-03-08T07:30:00Z"),
            ("2026-03-08T07:30:00Z", "U0000A", "U0000B", "2026-03-09T06:30:00Z"),
        ];
        assert_shifts(&gap, &cases);
        let fold = team(
            r#"
            members = ["U0000A", "U0000B"]
            timezone = "America/New_York"
            handoff = "daily"
            handoff_time = "01:30"
            "#,
        );
        #[rustfmt::skip]
        let cases = [
            // 01:30 happens twice on 2026-11-01; the hand-off is at the first, 01:30 EDT.
            ("2026-10-31T12:00:00Z", "U0000B", "U0000A", "2026-11-01T05:30:00Z"),
            ("2026-11-01T05:30:00Z", "U0000A", "U0000B", "2026-11-02T06:30:00Z"),
        ];
        assert_shifts(&fold, &cases);
    }

    const WITH_OVERRIDE: &str = r#"
        members = ["U0000A", "U0000B", "U0000C"]
        timezone = "Europe/Berlin"
        handoff_day = "monday"
        lead_group = "S0LEADS"
        [[oncall.teams.overrides]]
        start = "2026-12-24T09:00"
        end = "2026-12-27T09:00"
        user = "U0000D"
    "#;

    #[test]
    fn an_override_replaces_the_primary_from_its_start_until_just_before_its_end() {
        // Week 50 (from 2026-12-21) is C; week 51 (from 2026-12-28) is A. The override runs
        // from 08:00Z on the 24th to 08:00Z on the 27th.
        let provider = team(WITH_OVERRIDE);
        #[rustfmt::skip]
        let cases = [
            ("2026-12-24T07:59:59Z", "U0000C", "U0000D", "2026-12-24T08:00:00Z"),
            // At the start, the override is in force and the regular person is back at its end.
            ("2026-12-24T08:00:00Z", "U0000D", "U0000C", "2026-12-27T08:00:00Z"),
            ("2026-12-25T12:00:00Z", "U0000D", "U0000C", "2026-12-27T08:00:00Z"),
            ("2026-12-27T07:59:59Z", "U0000D", "U0000C", "2026-12-27T08:00:00Z"),
            // The end is exclusive.
            ("2026-12-27T08:00:00Z", "U0000C", "U0000A", "2026-12-28T08:00:00Z"),
        ];
        assert_shifts(&provider, &cases);
    }

    #[test]
    fn an_override_across_a_handoff_lasts_until_its_end_and_then_the_new_regular_person_takes_over() {
        let provider = team(
            r#"
            members = ["U0000A", "U0000B", "U0000C"]
            timezone = "Europe/Berlin"
            handoff_day = "monday"
            [[oncall.teams.overrides]]
            start = "2026-12-27"
            end = "2026-12-29"
            user = "U0000D"
            "#,
        );
        #[rustfmt::skip]
        let cases = [
            ("2026-12-27T12:00:00Z", "U0000D", "U0000A", "2026-12-28T23:00:00Z"),
            ("2026-12-28T12:00:00Z", "U0000D", "U0000A", "2026-12-28T23:00:00Z"),
            ("2026-12-28T23:00:00Z", "U0000A", "U0000B", "2027-01-04T08:00:00Z"),
        ];
        assert_shifts(&provider, &cases);
    }

    #[test]
    fn a_short_override_inside_a_longer_one_wins_while_it_lasts() {
        let provider = team(
            r#"
            members = ["U0000A"]
            [[oncall.teams.overrides]]
            start = "2026-02-01"
            end = "2026-02-10"
            user = "U0000D"
            [[oncall.teams.overrides]]
            start = "2026-02-03"
            end = "2026-02-04"
            user = "U0000E"
            "#,
        );
        #[rustfmt::skip]
        let cases = [
            ("2026-02-02T00:00:00Z", "U0000D", "U0000E", "2026-02-03T00:00:00Z"),
            ("2026-02-03T00:00:00Z", "U0000E", "U0000D", "2026-02-04T00:00:00Z"),
            ("2026-02-04T00:00:00Z", "U0000D", "U0000A", "2026-02-10T00:00:00Z"),
        ];
        assert_shifts(&provider, &cases);
    }

    #[test]
    fn a_one_person_rotation_has_the_same_person_next_at_the_next_handoff_and_nobody_to_escalate_to() {
        let provider = team(r#"members = ["U0000A"]"#);
        let answer = ask(&provider, "2026-02-04T00:00:00Z");
        assert_eq!(answer.primary, [person("U0000A")]);
        assert_eq!(
            answer.next,
            Some(Shift { people: vec![person("U0000A")], starts_at: instant("2026-02-09T09:00:00Z") })
        );
        assert_eq!(answer.escalation, []);
    }

    #[test]
    fn escalation_goes_to_the_next_member_in_rotation_order_who_is_not_already_on_call() {
        let provider = team(
            r#"
            members = ["U0000A", "U0000B", "U0000C"]
            handoff = "daily"
            [[oncall.teams.overrides]]
            start = "2026-02-28T12:00"
            end = "2026-03-01"
            user = "U0000B"
            [[oncall.teams.overrides]]
            start = "2026-03-02T12:00"
            end = "2026-03-03"
            user = "U0000B"
            "#,
        );
        let cases = [
            // (at, on call, escalation)
            ("2026-01-05T12:00:00Z", "U0000A", vec!["U0000B"]),
            ("2026-01-06T12:00:00Z", "U0000B", vec!["U0000C"]),
            ("2026-01-07T12:00:00Z", "U0000C", vec!["U0000A"]),
            // Day 54 (2026-02-28) is A: with B overriding, escalation skips B.
            ("2026-02-28T11:00:00Z", "U0000A", vec!["U0000B"]),
            ("2026-02-28T12:00:00Z", "U0000B", vec!["U0000C"]),
            // Day 56 (2026-03-02) is C: with B overriding, escalation follows C.
            ("2026-03-02T11:00:00Z", "U0000C", vec!["U0000A"]),
            ("2026-03-02T12:00:00Z", "U0000B", vec!["U0000A"]),
        ];
        for (at, primary, escalation) in cases {
            let answer = ask(&provider, at);
            assert_eq!(answer.primary, [person(primary)], "primary at {at}");
            let escalation: Vec<PersonRef> = escalation.into_iter().map(person).collect();
            assert_eq!(answer.escalation, escalation, "escalation at {at}");
        }
    }

    #[test]
    fn the_answer_names_the_team_and_passes_its_lead_group_through() {
        let answer = ask(&team(WITH_OVERRIDE), "2026-12-25T12:00:00Z");
        assert_eq!(answer.team, "team");
        assert_eq!(answer.lead_group.as_deref(), Some("S0LEADS"));
        assert_eq!(answer.escalation, [person("U0000A")]);
        assert_eq!(ask(&team(DAILY_UTC), "2026-12-25T12:00:00Z").lead_group, None);
    }

    /// Labels of a service, as written in a test table.
    type Labels<'a> = &'a [(&'a str, &'a str)];

    const ROUTED: &str = r#"
        [oncall]
        default_team = "platform"
        [[oncall.teams]]
        name = "platform"
        members = ["U0PLATF"]
        [[oncall.teams]]
        name = "payments"
        members = ["U0PAYME"]
        [[oncall.teams]]
        name = "database"
        members = ["dba@example.com"]
        [[oncall.teams]]
        name = "eu-payments"
        members = ["U0EUPAY"]
        [[oncall.routes]]
        service = "checkout"
        label = { region = "eu" }
        team = "eu-payments"
        [[oncall.routes]]
        service = "checkout"
        team = "payments"
        [[oncall.routes]]
        label = { team = "db", tier = "1" }
        team = "database"
        [[oncall.routes]]
        service = "billing"
        team = "payments"
        [[oncall.routes]]
        service = "billing"
        team = "database"
    "#;

    #[test]
    fn services_are_routed_by_the_first_route_that_matches_their_name_and_labels() {
        let provider = provider(ROUTED);
        #[rustfmt::skip]
        let cases: [(Option<&str>, Labels, &str); 10] = [
            // (service, labels, team)
            (Some("checkout"), &[], "payments"),
            (Some("checkout"), &[("region", "eu")], "eu-payments"),
            (Some("checkout"), &[("region", "us")], "payments"),
            (None, &[("team", "db"), ("tier", "1")], "database"),
            (Some("postgres"), &[("team", "db"), ("tier", "1"), ("x", "y")], "database"),
            // Every label of a route must match.
            (Some("postgres"), &[("team", "db")], "platform"),
            (Some("postgres"), &[("team", "db"), ("tier", "2")], "platform"),
            // The first matching route wins.
            (Some("billing"), &[], "payments"),
            // No route matches: the default team.
            (Some("search"), &[], "platform"),
            (None, &[], "platform"),
        ];
        for (name, labels, team) in cases {
            let labels: BTreeMap<String, String> =
                labels.iter().map(|&(key, value)| (key.to_owned(), value.to_owned())).collect();
            let answer = provider
                .on_call_at(Service { name, labels: &labels }, instant("2026-05-01T12:00:00Z"))
                .expect("every service has a team");
            assert_eq!(answer.team, team, "{name:?} with {labels:?}");
        }
    }

    #[test]
    fn without_a_matching_route_or_a_default_team_the_lookup_fails_with_no_team() {
        let provider = provider(&ROUTED.replace("default_team = \"platform\"", ""));
        let labels = BTreeMap::from([("team".to_owned(), "search".to_owned())]);
        let cases = [(Some("search"), "search"), (None, "(unnamed service with labels team=search)")];
        for (name, described) in cases {
            let error =
                provider.on_call_at(Service { name, labels: &labels }, instant("2026-05-01T12:00:00Z")).unwrap_err();
            assert_eq!(error, OnCallError::NoTeam { service: described.to_owned() });
        }
        let labels = BTreeMap::new();
        let empty = BuiltinRotation::default()
            .on_call_at(Service { name: Some("checkout"), labels: &labels }, instant("2026-05-01T12:00:00Z"));
        assert_eq!(
            empty.unwrap_err().to_string(),
            "no on-call team for service checkout: no route matches and no default team is set"
        );
    }

    #[test]
    fn a_rotation_at_the_end_of_supported_time_fails_as_a_provider_error_instead_of_panicking() {
        let provider = team(
            r#"
            members = ["U0000A", "U0000B"]
            handoff = "daily"
            rotation_start = "9999-12-29"
            "#,
        );
        let labels = BTreeMap::new();
        let result = provider.on_call_at(Service { name: None, labels: &labels }, Timestamp::MAX);
        assert!(
            matches!(result, Err(OnCallError::Provider { provider: "builtin", retry_after: None, .. })),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn the_async_trait_method_answers_like_the_synchronous_one() {
        let provider = team(WITH_OVERRIDE);
        let labels = BTreeMap::new();
        let service = Service { name: Some("anything"), labels: &labels };
        let at = instant("2026-12-25T12:00:00Z");
        let on_call: &dyn OnCall = &provider;
        assert_eq!(on_call.on_call(service, at).await, provider.on_call_at(service, at));
    }
}
