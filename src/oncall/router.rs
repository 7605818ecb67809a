//! The on-call answer for a service: route it to its team, then ask the team's provider
//! (PagerDuty, Opsgenie — cached, with the team's fallback) or its built-in rotation.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;

use super::cached::CachedOnCall;
use super::providers::{TeamRef, build};
use super::rotation::Rotations;
use super::settings::{OnCallSettings, SettingsIssue};
use super::{OnCall, OnCallAnswer, OnCallError, Service};
use crate::domain::Clock;

/// Routes services to teams and asks each team's source of truth.
pub struct OnCallRouter {
    rotations: Rotations,
    providers: BTreeMap<String, Arc<CachedOnCall>>,
}

impl OnCallRouter {
    /// Builds every team's provider; fails with every settings problem at once.
    pub fn build(
        settings: &OnCallSettings,
        env: &dyn Fn(&str) -> Option<String>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, Vec<SettingsIssue>> {
        let rotations = settings.build()?;
        let mut providers = BTreeMap::new();
        let mut issues = Vec::new();
        for (index, team) in settings.teams.iter().enumerate() {
            let Some(provider) = team.provider_settings() else { continue };
            let path = format!("oncall.teams[{index}]");
            let reference = TeamRef { path: &path, name: &team.name, rotation: rotations.team(&team.name) };
            match build(&provider, &reference, env, Arc::clone(&clock)) {
                Ok(cached) => {
                    providers.insert(team.name.clone(), Arc::new(cached));
                }
                Err(found) => issues.extend(found),
            }
        }
        if issues.is_empty() { Ok(Self { rotations, providers }) } else { Err(issues) }
    }
}

#[async_trait]
impl OnCall for OnCallRouter {
    async fn on_call(&self, service: Service<'_>, at: Timestamp) -> Result<OnCallAnswer, OnCallError> {
        let Some(team) = self.rotations.route(&service) else {
            return Err(OnCallError::NoTeam { service: service.describe() });
        };
        match self.providers.get(team.name()) {
            Some(provider) => provider.on_call(service, at).await,
            None => team.on_call_at(at),
        }
    }
}
