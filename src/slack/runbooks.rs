//! Runbooks from Slack: buttons (`v1:run:<name>`), `/incident run` and `/incident runbooks`, the
//! parameter modal and its `view_submission`. A press is authorised first (listed users, Slack
//! user groups, the service's current on-call); a denied one gets an explanation and an audit
//! row. The modal opens at once (the `trigger_id` expires in 3 s), and its values are checked
//! inside the `view_submission` ack, so mistakes show in the modal.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{Value, json};
use slack_morphism::prelude::*;

use super::blocks::escape;
use super::client::SlackApi;
use super::inbound::Inbound;
use crate::domain::{Incident, IncidentId};
use crate::handlers::Services;
use crate::handlers::commands::{HandlerError, reply_for};
use crate::handlers::runbooks::{self, RunRequest};
use crate::oncall::{OnCall, PersonRef, Service};
use crate::runbook::spec::Runbook;

/// The modal's callback id (versioned like the buttons).
pub const PARAMS_CALLBACK: &str = "v1:run-params";

/// What deciding who may run a runbook needs. Cheap to clone, so a check that asks Slack or an
/// on-call provider can go on after the ack (see `/incident run`).
#[derive(Clone)]
pub(super) struct Gatekeeper {
    services: Services,
    api: SlackApi,
    oncall: Arc<dyn OnCall>,
}

impl Gatekeeper {
    fn services(&self) -> &Services {
        &self.services
    }

    fn api(&self) -> &SlackApi {
        &self.api
    }

    fn oncall(&self) -> &dyn OnCall {
        self.oncall.as_ref()
    }

    /// May `user` run `runbook` on `incident`? `Err` says who may.
    pub(super) async fn authorize(&self, runbook: &Runbook, incident: &Incident, user: &str) -> Result<(), String> {
        let allowed = runbook.allowed();
        if allowed.users.is_empty() && allowed.groups.is_empty() && !allowed.on_call {
            return Ok(());
        }
        if allowed.users.iter().any(|u| u == user) {
            return Ok(());
        }
        for group in &allowed.groups {
            if let Ok(members) = self.api().usergroup_members(group).await
                && members.iter().any(|m| m == user)
            {
                return Ok(());
            }
        }
        if allowed.on_call {
            let service = Service { name: incident.service.as_deref(), labels: &incident.labels };
            if let Ok(answer) = self.oncall().on_call(service, self.services().clock.now()).await {
                for person in &answer.primary {
                    let id = match person {
                        PersonRef::SlackId(id) => Some(id.clone()),
                        PersonRef::Email(email) => self.api().user_by_email(email).await.ok().flatten(),
                    };
                    if id.as_deref() == Some(user) {
                        return Ok(());
                    }
                }
            }
        }
        let mut who: Vec<String> = allowed.users.iter().map(|u| format!("<@{u}>")).collect();
        who.extend(allowed.groups.iter().map(|g| format!("<!subteam^{g}>")));
        if allowed.on_call {
            who.push("the service's current on-call".to_owned());
        }
        Err(format!("only {} may run it", who.join(", ")))
    }

    /// `/incident run <name> [k=v …] [--again]`.
    pub(super) async fn run_command(
        self,
        id: IncidentId,
        name: String,
        params: Vec<(String, String)>,
        again: bool,
        user: String,
    ) -> Result<String, HandlerError> {
        let services = self.services();
        let incident =
            services.store.incident(id).await?.ok_or_else(|| HandlerError::User(format!("{id} does not exist")))?;
        let runbook = services.catalog.get(&name).ok_or_else(|| {
            HandlerError::User(format!(
                "There is no runbook `{name}`: `/incident runbooks` lists the ones offered here."
            ))
        })?;
        if let Err(reason) = self.authorize(runbook, &incident, &user).await {
            return runbooks::deny(services, id, &name, &user, &reason).await;
        }
        let request = RunRequest {
            incident: id,
            runbook: name.clone(),
            params: params.into_iter().collect(),
            requested_by: user,
            automatic: false,
            again,
        };
        let run = runbooks::start(services, &services.catalog, request).await?;
        Ok(format!("{name} is queued (run {}); its progress shows in the incident thread.", run.id))
    }
}

impl Inbound {
    /// Who may run runbooks, decided with this handler's Slack and on-call access.
    pub(super) fn gatekeeper(&self) -> Gatekeeper {
        Gatekeeper { services: self.services().clone(), api: self.api().clone(), oncall: self.oncall() }
    }

    /// May `user` run `runbook` on `incident`? `Err` says who may.
    async fn authorize(&self, runbook: &Runbook, incident: &Incident, user: &str) -> Result<(), String> {
        self.gatekeeper().authorize(runbook, incident, user).await
    }

    /// A runbook button was pressed: authorise, then open the parameter modal or queue the run.
    pub(super) async fn press_runbook(
        &self,
        id: IncidentId,
        name: &str,
        user: &str,
        trigger_id: &str,
    ) -> Result<String, HandlerError> {
        let services = self.services();
        let incident =
            services.store.incident(id).await?.ok_or_else(|| HandlerError::User(format!("{id} does not exist")))?;
        let catalog = &services.catalog;
        let runbook =
            catalog.get(name).ok_or_else(|| HandlerError::User(format!("The runbook `{name}` is not configured.")))?;
        if let Err(reason) = self.authorize(runbook, &incident, user).await {
            return runbooks::deny(services, id, name, user, &reason).await;
        }
        if !runbook.params().is_empty() {
            self.open_params_modal(runbook, &incident, trigger_id).await?;
            return Ok(String::new());
        }
        let request = RunRequest {
            incident: id,
            runbook: name.to_owned(),
            params: BTreeMap::new(),
            requested_by: user.to_owned(),
            automatic: false,
            again: false,
        };
        let run = runbooks::start(services, catalog, request).await?;
        Ok(format!("{name} is queued (run {}); its progress shows in the incident thread.", run.id))
    }

    async fn open_params_modal(
        &self,
        runbook: &Runbook,
        incident: &Incident,
        trigger_id: &str,
    ) -> Result<(), HandlerError> {
        let context = runbooks::context_for(self.services().store.as_ref(), incident).await?;
        let defaults = runbook.params_with_defaults(&context, &BTreeMap::new()).unwrap_or_default();
        let blocks: Vec<Value> = runbook
            .params()
            .iter()
            .map(|param| {
                let mut element = json!({ "type": "plain_text_input", "action_id": "value" });
                if let Some(value) = defaults.get(&param.name) {
                    element["initial_value"] = json!(value);
                }
                let mut block = json!({
                    "type": "input", "block_id": format!("param:{}", param.name),
                    "label": { "type": "plain_text", "text": param.name },
                    "element": element,
                });
                if !param.description.is_empty() {
                    block["hint"] = json!({ "type": "plain_text", "text": param.description });
                }
                block
            })
            .collect();
        let title: String = format!("Run {}", runbook.name()).chars().take(24).collect();
        let view = json!({
            "type": "modal",
            "callback_id": PARAMS_CALLBACK,
            "private_metadata": json!({ "incident": incident.id.to_string(), "runbook": runbook.name().as_str() }).to_string(),
            "title": { "type": "plain_text", "text": title },
            "submit": { "type": "plain_text", "text": "Run" },
            "close": { "type": "plain_text", "text": "Cancel" },
            "blocks": blocks,
        });
        self.api()
            .open_view(trigger_id, &view)
            .await
            .map_err(|e| HandlerError::Unexpected(anyhow::anyhow!("opening the parameter modal: {e}")))
    }

    /// The parameter modal was submitted: cheap checks inside the ack; errors show in the modal.
    pub(super) async fn submit_params(
        &self,
        submission: &SlackInteractionViewSubmissionEvent,
    ) -> SlackInteractionResponse {
        let raw = serde_json::to_value(submission).unwrap_or_default();
        if raw.pointer("/view/callback_id").and_then(Value::as_str) != Some(PARAMS_CALLBACK) {
            return SlackInteractionResponse::Empty;
        }
        let user = submission.user.id.to_string();
        let metadata: Value = raw
            .pointer("/view/private_metadata")
            .and_then(Value::as_str)
            .and_then(|m| serde_json::from_str(m).ok())
            .unwrap_or_default();
        let (Some(id), Some(name)) = (
            metadata["incident"].as_str().and_then(|i| i.parse::<IncidentId>().ok()),
            metadata["runbook"].as_str().map(str::to_owned),
        ) else {
            return errors(&[("", "This form is out of date: press the runbook button again.".to_owned())]);
        };
        let mut params = BTreeMap::new();
        let mut problems: Vec<(String, String)> = Vec::new();
        if let Some(values) = raw.pointer("/view/state/values").and_then(Value::as_object) {
            for (block, actions) in values {
                let Some(param) = block.strip_prefix("param:") else { continue };
                let value = actions.pointer("/value/value").and_then(Value::as_str).unwrap_or_default().to_owned();
                if let Some(runbook) = self.services().catalog.get(&name)
                    && let Err(e) = runbook.check_param(param, &value)
                {
                    problems.push((block.clone(), e.to_string()));
                }
                params.insert(param.to_owned(), value);
            }
        }
        if !problems.is_empty() {
            let refs: Vec<(&str, String)> = problems.iter().map(|(b, m)| (b.as_str(), m.clone())).collect();
            return errors(&refs);
        }
        let first_block = params.keys().next().map(|p| format!("param:{p}")).unwrap_or_default();
        let services = self.services();
        let request =
            RunRequest { incident: id, runbook: name, params, requested_by: user, automatic: false, again: true };
        match runbooks::start(services, &services.catalog, request).await {
            Ok(_) => SlackViewSubmissionResponse::Clear(SlackViewSubmissionClearResponse::new()).into(),
            Err(error) => errors(&[(first_block.as_str(), reply_for(&error))]),
        }
    }
}

fn errors(problems: &[(&str, String)]) -> SlackInteractionResponse {
    let map: HashMap<String, String> =
        problems.iter().map(|(block, message)| ((*block).to_owned(), escape(message))).collect();
    SlackViewSubmissionResponse::Errors(SlackViewSubmissionErrorsResponse::new(map)).into()
}
