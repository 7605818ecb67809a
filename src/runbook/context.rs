//! What a run knows about its incident, and how a [`Runbook`] turns that into an
//! [`Execution`]: parameters filled in and checked, every template rendered.
//!
//! Parameter values are checked twice on purpose: [`Runbook::params_with_defaults`] when a person
//! (or a default) gives them, and [`Runbook::execution`] again just before they are substituted,
//! so that no value reaches an executor without passing its parameter's rule.

use std::collections::BTreeMap;

use minijinja::value::Value;
use serde::{Deserialize, Serialize};

use crate::domain::{Incident, IncidentId, ProblemKey, Severity, SourceKind};
use crate::runbook::plan::{AwxPlan, Execution, HttpPlan, LocalPlan, Plan, Secret};
use crate::runbook::spec::{ExecutorSpec, HeaderSpec, JsonTemplate, Runbook};
use crate::runbook::template::Template;

/// One deployment of a service, as `POST /hooks/deployments` recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    pub service: String,
    pub environment: String,
    pub version: String,
    pub commit: Option<String>,
    pub url: Option<String>,
    pub pipeline: Option<String>,
}

/// Everything a runbook's templates can use: the incident, the service's last two deployments and
/// the parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunContext {
    pub incident_id: IncidentId,
    pub title: String,
    pub severity: Severity,
    pub source: SourceKind,
    pub problem_key: ProblemKey,
    pub service: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub entities: Vec<String>,
    /// The service's last deployment, if one is recorded.
    pub deployment_current: Option<Deployment>,
    /// The one before it, if one is recorded: what a rollback goes back to.
    pub deployment_previous: Option<Deployment>,
    /// Parameter values; see [`Runbook::params_with_defaults`].
    pub params: BTreeMap<String, String>,
}

impl RunContext {
    /// The context of `incident`, with no parameters yet.
    #[must_use]
    pub fn for_incident(
        incident: &Incident,
        deployment_current: Option<Deployment>,
        deployment_previous: Option<Deployment>,
    ) -> Self {
        Self {
            incident_id: incident.id,
            title: incident.title.clone(),
            severity: incident.severity,
            source: incident.source,
            problem_key: incident.problem_key.clone(),
            service: incident.service.clone(),
            labels: incident.labels.clone(),
            entities: incident.entities.clone(),
            deployment_current,
            deployment_previous,
            params: BTreeMap::new(),
        }
    }

    /// The same context with these parameter values.
    #[must_use]
    pub fn with_params(self, params: BTreeMap<String, String>) -> Self {
        Self { params, ..self }
    }

    /// The environment: the label `env`, or else `environment`.
    #[must_use]
    pub fn environment(&self) -> Option<&str> {
        self.labels.get("env").or_else(|| self.labels.get("environment")).map(String::as_str)
    }

    /// The template variables; `params` only when `with_params` (defaults cannot use them).
    fn vars(&self, with_params: bool) -> Value {
        let text = |s: &str| Value::from(s.to_owned());
        let incident: BTreeMap<String, Value> = BTreeMap::from([
            ("id".to_owned(), Value::from(self.incident_id.to_string())),
            ("title".to_owned(), text(&self.title)),
            ("severity".to_owned(), text(self.severity.as_str())),
            ("source".to_owned(), text(self.source.as_str())),
        ]);
        let mut vars: BTreeMap<String, Value> = BTreeMap::new();
        vars.insert("incident".to_owned(), Value::from(incident));
        vars.insert("problem_key".to_owned(), text(self.problem_key.as_str()));
        if let Some(service) = &self.service {
            vars.insert("service".to_owned(), text(service));
        }
        if let Some(environment) = self.environment() {
            vars.insert("environment".to_owned(), text(environment));
        }
        vars.insert("labels".to_owned(), Value::from(self.labels.clone()));
        vars.insert("entities".to_owned(), Value::from(self.entities.clone()));
        let mut deployment: BTreeMap<String, Value> = BTreeMap::new();
        if let Some(current) = &self.deployment_current {
            deployment.insert("current".to_owned(), current.vars());
        }
        if let Some(previous) = &self.deployment_previous {
            deployment.insert("previous".to_owned(), previous.vars());
        }
        vars.insert("deployment".to_owned(), Value::from(deployment));
        if with_params {
            vars.insert("params".to_owned(), Value::from(self.params.clone()));
        }
        Value::from(vars)
    }
}

impl Deployment {
    /// The fields a template can use; those not recorded are left out (and so undefined).
    fn vars(&self) -> Value {
        let optional = [("commit", &self.commit), ("url", &self.url), ("pipeline", &self.pipeline)];
        let mut fields: BTreeMap<String, Value> = BTreeMap::from([
            ("service".to_owned(), Value::from(self.service.clone())),
            ("environment".to_owned(), Value::from(self.environment.clone())),
            ("version".to_owned(), Value::from(self.version.clone())),
        ]);
        for (name, value) in optional {
            if let Some(value) = value {
                fields.insert(name.to_owned(), Value::from(value.clone()));
            }
        }
        Value::from(fields)
    }
}

/// A parameter value that cannot be used, in words for the person who gave it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("{runbook} has no parameter {name:?}; {expected}")]
    Unknown { runbook: String, name: String, expected: String },
    #[error("{name} is required: {description}")]
    Missing { name: String, description: String },
    #[error("{name} {rule}; {value:?} does not")]
    Rejected { name: String, rule: String, value: String },
    #[error("the default of {name} could not be filled in: {source}")]
    Default { name: String, source: RenderError },
    /// The run is refused whatever the values (no previous deployment for a rollback).
    #[error(transparent)]
    Refused(RenderError),
}

impl ParamError {
    /// The parameter the error is about, if it is about one (for showing it beside its field).
    #[must_use]
    pub fn param(&self) -> Option<&str> {
        match self {
            Self::Unknown { name, .. }
            | Self::Missing { name, .. }
            | Self::Rejected { name, .. }
            | Self::Default { name, .. } => Some(name),
            Self::Refused(_) => None,
        }
    }
}

/// Why a runbook's templates could not be filled in for a run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("no previous deployment of {service} is recorded; {runbook} needs one")]
    NoPreviousDeployment { runbook: String, service: String },
    /// A template failed, such as one naming a label the incident does not have.
    #[error("{field}: {message}")]
    Template { field: String, message: String },
    #[error("{0}")]
    Param(Box<ParamError>),
}

impl Runbook {
    /// The parameter values for a run: those `given`, and each missing one filled in from its
    /// default. Every value is checked against its parameter's pattern or choices.
    pub fn params_with_defaults(
        &self,
        ctx: &RunContext,
        given: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, ParamError> {
        self.ensure_runnable(ctx).map_err(ParamError::Refused)?;
        self.reject_unknown(given)?;
        let vars = ctx.vars(false);
        let mut values = BTreeMap::new();
        for param in self.params() {
            let value = match (given.get(&param.name), &param.default) {
                (Some(value), _) => value.clone(),
                (None, Some(default)) => default.render(&vars).map_err(|message| ParamError::Default {
                    name: param.name.clone(),
                    source: RenderError::Template { field: format!("params.{}.default", param.name), message },
                })?,
                (None, None) => {
                    return Err(ParamError::Missing {
                        name: param.name.clone(),
                        description: if param.description.is_empty() {
                            param.rule.to_string()
                        } else {
                            param.description.clone()
                        },
                    });
                }
            };
            self.check_param(&param.name, &value)?;
            values.insert(param.name.clone(), value);
        }
        Ok(values)
    }

    /// Checks one value against its parameter's rule (for validating a modal field by field).
    pub fn check_param(&self, name: &str, value: &str) -> Result<(), ParamError> {
        let Some(param) = self.param(name) else { return Err(self.unknown_param(name)) };
        if param.rule.admits(value) {
            Ok(())
        } else {
            Err(ParamError::Rejected { name: name.to_owned(), rule: param.rule.to_string(), value: value.to_owned() })
        }
    }

    /// What the executor is asked to do: every template rendered with `ctx`, whose `params` must
    /// hold a valid value for every parameter (as [`params_with_defaults`](Self::params_with_defaults)
    /// returns them).
    pub fn execution(&self, ctx: &RunContext) -> Result<Execution, RenderError> {
        self.ensure_runnable(ctx)?;
        self.reject_unknown(&ctx.params).map_err(|e| RenderError::Param(Box::new(e)))?;
        for param in self.params() {
            let Some(value) = ctx.params.get(&param.name) else {
                let missing = ParamError::Missing { name: param.name.clone(), description: param.rule.to_string() };
                return Err(RenderError::Param(Box::new(missing)));
            };
            self.check_param(&param.name, value).map_err(|e| RenderError::Param(Box::new(e)))?;
        }
        let vars = ctx.vars(true);
        let render = |field: &str, template: &Template| {
            template.render(&vars).map_err(|message| RenderError::Template { field: field.to_owned(), message })
        };
        let plan = match self.executor() {
            ExecutorSpec::Awx(spec) => Plan::Awx(AwxPlan {
                base_url: spec.base_url.clone(),
                api_path: spec.api_path.clone(),
                token: Secret::Env(spec.token_env.clone()),
                kind: spec.template_kind,
                template_id: spec.template_id,
                extra_vars: render_json("executor.extra_vars", &spec.extra_vars, &vars)?,
                limit: spec.limit.as_ref().map(|limit| render("executor.limit", limit)).transpose()?,
            }),
            ExecutorSpec::Http(spec) => {
                let url = render("executor.url", &spec.url)?;
                if let Err(message) = check_url(&url) {
                    return Err(RenderError::Template { field: "executor.url".to_owned(), message });
                }
                let mut headers = Vec::with_capacity(spec.headers.len());
                for (name, header) in &spec.headers {
                    let field = format!("executor.headers.{name}");
                    let value = match header {
                        HeaderSpec::Env(env) => Secret::Env(env.clone()),
                        HeaderSpec::Template(template) => {
                            let value = render(&field, template)?;
                            if value.chars().any(char::is_control) {
                                let message = "renders to a value with a line break or control character".to_owned();
                                return Err(RenderError::Template { field, message });
                            }
                            Secret::Literal(value)
                        }
                    };
                    headers.push((name.clone(), value));
                }
                Plan::Http(HttpPlan {
                    method: spec.method.clone(),
                    url,
                    headers,
                    body: spec.body.as_ref().map(|body| render_json("executor.body", body, &vars)).transpose()?,
                    expected_status: spec.expected_status.clone(),
                })
            }
            ExecutorSpec::Local(spec) => {
                let mut args = Vec::with_capacity(spec.args.len());
                for (index, arg) in spec.args.iter().enumerate() {
                    let field = format!("executor.args[{index}]");
                    let value = render(&field, arg)?;
                    if value.contains(['\0', '\n', '\r']) {
                        let message = "renders to a value with a line break or NUL, which no argument takes".to_owned();
                        return Err(RenderError::Template { field, message });
                    }
                    args.push(value);
                }
                Plan::Local(LocalPlan { program: spec.program.clone(), args, dir: spec.dir.clone() })
            }
        };
        Ok(Execution { runbook: self.name().to_string(), plan, timeout: self.timeout() })
    }

    /// The question asked before a run: the runbook's `confirm`, or "Run <title>?".
    pub fn confirm_text(&self, ctx: &RunContext) -> Result<String, RenderError> {
        self.ensure_runnable(ctx)?;
        match self.confirm() {
            Some(confirm) => confirm
                .render(&ctx.vars(true))
                .map_err(|message| RenderError::Template { field: "confirm".to_owned(), message }),
            None => Ok(format!("Run “{}” for {}?", self.title(), ctx.incident_id)),
        }
    }

    /// Refuses a run that cannot work whatever the parameters.
    fn ensure_runnable(&self, ctx: &RunContext) -> Result<(), RenderError> {
        if self.requires_previous_deployment() && ctx.deployment_previous.is_none() {
            return Err(RenderError::NoPreviousDeployment {
                runbook: self.name().to_string(),
                service: ctx.service.clone().unwrap_or_else(|| "this incident's service".to_owned()),
            });
        }
        Ok(())
    }

    fn reject_unknown(&self, given: &BTreeMap<String, String>) -> Result<(), ParamError> {
        match given.keys().find(|name| self.param(name).is_none()) {
            Some(name) => Err(self.unknown_param(name)),
            None => Ok(()),
        }
    }

    fn unknown_param(&self, name: &str) -> ParamError {
        let names: Vec<&str> = self.params().iter().map(|p| p.name.as_str()).collect();
        let expected =
            if names.is_empty() { "it takes none".to_owned() } else { format!("it takes {}", names.join(", ")) };
        ParamError::Unknown { runbook: self.name().to_string(), name: name.to_owned(), expected }
    }
}

/// Renders every string leaf of a JSON template.
fn render_json(field: &str, template: &JsonTemplate, vars: &Value) -> Result<serde_json::Value, RenderError> {
    Ok(match template {
        JsonTemplate::Text(text) => {
            text.render_json(vars).map_err(|message| RenderError::Template { field: field.to_owned(), message })?
        }
        JsonTemplate::Literal(value) => value.clone(),
        JsonTemplate::List(items) => serde_json::Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(index, item)| render_json(&format!("{field}[{index}]"), item, vars))
                .collect::<Result<_, _>>()?,
        ),
        JsonTemplate::Object(entries) => serde_json::Value::Object(
            entries
                .iter()
                .map(|(key, item)| Ok((key.clone(), render_json(&format!("{field}.{key}"), item, vars)?)))
                .collect::<Result<_, RenderError>>()?,
        ),
    })
}

/// Checks that a rendered webhook URL is an absolute http(s) URL.
fn check_url(url: &str) -> Result<(), String> {
    match url::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.host_str().is_some() => Ok(()),
        _ => Err(format!("renders to {url:?}, which is not an http(s) URL")),
    }
}

#[cfg(test)]
mod tests;
