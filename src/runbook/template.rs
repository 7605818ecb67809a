//! Templates in runbooks: [minijinja] with strict undefined values.
//!
//! A template is checked when its runbook is loaded: every variable it names must be one a runbook
//! can have (see `commands/README.md`), and it must render against a *schema context* that holds
//! each of them with a placeholder value. At run time a variable the incident lacks (a label, the
//! previous deployment) is an error, never an empty string.
//!
//! A JSON leaf (`extra_vars`, `body`) that is exactly one `{{ expression }}` keeps the expression's
//! type: `"{{ params.replicas | int }}"` becomes the number `3` and `"{{ entities }}"` a list.
//! Anything else renders to a string.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use minijinja::value::{Enumerator, Object, ObjectRepr, Value, ValueKind};
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior};

/// The variables of an incident that templates can use, as `incident.<field>`.
pub const INCIDENT_FIELDS: [&str; 4] = ["id", "title", "severity", "source"];

/// The fields of a deployment that templates can use, as `deployment.current.<field>` and
/// `deployment.previous.<field>`.
pub const DEPLOYMENT_FIELDS: [&str; 6] = ["service", "environment", "version", "commit", "url", "pipeline"];

/// The top-level variables of a template.
pub const VARIABLES: [&str; 8] =
    ["incident", "problem_key", "service", "environment", "labels", "entities", "deployment", "params"];

/// minijinja's global functions, which a template may call.
const FUNCTIONS: [&str; 4] = ["range", "dict", "namespace", "debug"];

/// A template from a runbook, checked against the variables a runbook can have when it was loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(String);

/// Which variables a template may use.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scope<'a> {
    /// The declared parameters with a placeholder value each, or `None` where `params` is not
    /// available (in parameter defaults, which are filled in before any parameter is known).
    pub params: Option<&'a BTreeMap<String, String>>,
}

impl Template {
    /// Checks `source` against `scope`: syntax, variable names, and a render against the schema
    /// context. The error says what is wrong in one line.
    pub(crate) fn parse(source: &str, scope: Scope<'_>) -> Result<Self, String> {
        let env = environment();
        let template = env.template_from_str(source).map_err(|e| describe(&e))?;
        let mut unknown: Vec<String> = Vec::new();
        let mut paths: Vec<String> = template.undeclared_variables(true).into_iter().collect();
        paths.sort();
        for path in paths {
            if let Err(message) = check_path(&path, scope) {
                unknown.push(message);
            }
        }
        if !unknown.is_empty() {
            return Err(unknown.join("; "));
        }
        let template = Self(source.to_owned());
        match template.render_value(&schema_context(scope)) {
            Err(error) if reported_at_load(error.kind) => Err(error.message),
            _ => Ok(template),
        }
    }

    /// The template as written in the runbook.
    #[must_use]
    pub fn source(&self) -> &str {
        &self.0
    }

    /// Reports whether the template is plain text, without any template syntax.
    #[must_use]
    pub fn is_literal(&self) -> bool {
        !(self.0.contains("{{") || self.0.contains("{%") || self.0.contains("{#"))
    }

    /// Renders the template against the schema context of `scope` (placeholder values), to check
    /// the shape of what it produces, such as a URL.
    pub(crate) fn preview(&self, scope: Scope<'_>) -> Result<String, String> {
        self.render(&schema_context(scope))
    }

    /// Renders the template to a string.
    pub(crate) fn render(&self, vars: &Value) -> Result<String, String> {
        let env = environment();
        env.render_str(&self.0, vars).map_err(|e| self.explain(&e, vars))
    }

    /// Renders the template as a JSON leaf: one `{{ expression }}` keeps its type.
    pub(crate) fn render_json(&self, vars: &Value) -> Result<serde_json::Value, String> {
        self.render_value(vars).map_err(|e| e.message)
    }

    fn render_value(&self, vars: &Value) -> Result<serde_json::Value, Failure> {
        let env = environment();
        let Some(expression) = single_expression(&self.0) else {
            return env
                .render_str(&self.0, vars)
                .map(serde_json::Value::String)
                .map_err(|e| Failure { kind: e.kind(), message: self.explain(&e, vars) });
        };
        let fail = |e: &minijinja::Error| Failure { kind: e.kind(), message: self.explain(e, vars) };
        let value = env.compile_expression(expression).and_then(|e| e.eval(vars)).map_err(|e| fail(&e))?;
        to_json(&value).ok_or_else(|| Failure {
            kind: ErrorKind::UndefinedError,
            message: self.missing(vars).unwrap_or_else(|| format!("`{}` is undefined", expression.trim())),
        })
    }

    /// Turns a minijinja error into one line, naming the missing variable for undefined values.
    fn explain(&self, error: &minijinja::Error, vars: &Value) -> String {
        // A variable the incident lacks is the likeliest cause, also when a filter is what failed.
        self.missing(vars).unwrap_or_else(|| describe(error))
    }

    /// The first variable the template names that `vars` does not have.
    fn missing(&self, vars: &Value) -> Option<String> {
        let env = environment();
        let template = env.template_from_str(&self.0).ok()?;
        let paths: BTreeSet<String> = template.undeclared_variables(true).into_iter().collect();
        paths.into_iter().filter(|path| VARIABLES.iter().any(|v| path.split('.').next() == Some(*v))).find_map(|path| {
            let mut value = vars.clone();
            let mut walked: Vec<&str> = Vec::new();
            for segment in path.split('.') {
                walked.push(segment);
                value = value.get_attr(segment).ok()?;
                if value.is_undefined() {
                    return Some(format!("`{}` is not known for this incident", walked.join(".")));
                }
                if !matches!(value.kind(), ValueKind::Map) {
                    return None;
                }
            }
            None
        })
    }
}

/// A render failure: its kind decides whether the load-time check reports it.
struct Failure {
    kind: ErrorKind,
    message: String,
}

/// How many instructions one render may take: far more than any runbook template needs, and a
/// bound on loops that would otherwise hang `warroom check`.
const FUEL: u64 = 100_000;

/// The environment every runbook template renders in: strict undefined, no escaping, bounded
/// work, and the `path_segment` filter.
fn environment<'a>() -> Environment<'a> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.add_filter("path_segment", path_segment);
    env
}

/// Percent-encodes a value for use as one URL path segment: everything but `A-Z a-z 0-9 - . _ ~`
/// is encoded, so a value cannot add segments, a query or a fragment. Empty, `.` and `..` are
/// refused, since they would change the path even when encoded.
fn path_segment(value: &str) -> Result<String, minijinja::Error> {
    if matches!(value, "" | "." | "..") {
        return Err(minijinja::Error::new(
            ErrorKind::InvalidOperation,
            format!("{value:?} cannot be a URL path segment"),
        ));
    }
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    Ok(encoded)
}

/// Errors that are mistakes in the template whatever the values; the rest (such as `int` of a
/// placeholder) can only be judged with real values, at run time.
fn reported_at_load(kind: ErrorKind) -> bool {
    !matches!(kind, ErrorKind::InvalidOperation | ErrorKind::BadSerialization | ErrorKind::NonKey)
}

/// One line for a minijinja error, without its template location (a runbook template is one line).
fn describe(error: &minijinja::Error) -> String {
    match error.detail() {
        Some(detail) => format!("{}: {detail}", kind_words(error.kind())),
        None => kind_words(error.kind()).to_owned(),
    }
}

fn kind_words(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::SyntaxError => "template syntax error",
        ErrorKind::UndefinedError => "undefined value",
        ErrorKind::UnknownFilter => "unknown filter",
        ErrorKind::UnknownTest => "unknown test",
        ErrorKind::UnknownFunction => "unknown function",
        ErrorKind::UnknownMethod => "unknown method",
        ErrorKind::TooManyArguments => "too many arguments",
        ErrorKind::MissingArgument => "missing argument",
        ErrorKind::OutOfFuel => "the template does too much work (out of fuel)",
        _ => "template error",
    }
}

/// Checks one dotted variable path from `undeclared_variables` against what runbooks can use.
fn check_path(path: &str, scope: Scope<'_>) -> Result<(), String> {
    let segments: Vec<&str> = path.split('.').collect();
    let unknown_field = |prefix: &str, field: &str, known: &[&str]| {
        Err(format!("unknown variable `{prefix}.{field}`; {prefix} has {}", known.join(", ")))
    };
    match segments.as_slice() {
        ["incident", field, ..] if !INCIDENT_FIELDS.contains(field) => {
            unknown_field("incident", field, &INCIDENT_FIELDS)
        }
        ["deployment", which, ..] if !["current", "previous"].contains(which) => {
            unknown_field("deployment", which, &["current", "previous"])
        }
        ["deployment", which, field, ..] if !DEPLOYMENT_FIELDS.contains(field) => {
            unknown_field(&format!("deployment.{which}"), field, &DEPLOYMENT_FIELDS)
        }
        ["params", rest @ ..] => match scope.params {
            None => Err("`params` cannot be used here: parameter defaults are filled in before any parameter is known"
                .to_owned()),
            Some(declared) => match rest.first() {
                Some(name) if !declared.contains_key(*name) => {
                    let names: Vec<&str> = declared.keys().map(String::as_str).collect();
                    let known = if names.is_empty() {
                        "the runbook declares no parameters".to_owned()
                    } else {
                        format!("declared parameters: {}", names.join(", "))
                    };
                    Err(format!("`params.{name}` is not a declared parameter; {known}"))
                }
                _ => Ok(()),
            },
        },
        [root, ..] if VARIABLES.contains(root) || FUNCTIONS.contains(root) => Ok(()),
        [root, ..] => Err(format!("unknown variable `{root}`; templates can use {}", VARIABLES.join(", "))),
        [] => Ok(()),
    }
}

/// Every documented variable with a placeholder value, for checking templates at load time.
fn schema_context(scope: Scope<'_>) -> Value {
    let deployment = || {
        let fields: BTreeMap<String, Value> = [
            ("service", "checkout"),
            ("environment", "prod"),
            ("version", "1.2.3"),
            ("commit", "0123456789abcdef"),
            ("url", "https://ci.example.com/deployments/1"),
            ("pipeline", "deploy"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Value::from(v)))
        .collect();
        Value::from(fields)
    };
    let incident: BTreeMap<String, Value> =
        [("id", "INC-1"), ("title", "High error rate"), ("severity", "sev2"), ("source", "alertmanager")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Value::from(v)))
            .collect();
    let mut vars: BTreeMap<String, Value> = BTreeMap::new();
    vars.insert("incident".to_owned(), Value::from(incident));
    vars.insert("problem_key".to_owned(), Value::from("problem-1"));
    vars.insert("service".to_owned(), Value::from("checkout"));
    vars.insert("environment".to_owned(), Value::from("prod"));
    vars.insert("labels".to_owned(), Value::from_object(AnyLabels));
    vars.insert("entities".to_owned(), Value::from(vec!["host-1".to_owned()]));
    let deployments: BTreeMap<String, Value> =
        [("current".to_owned(), deployment()), ("previous".to_owned(), deployment())].into_iter().collect();
    vars.insert("deployment".to_owned(), Value::from(deployments));
    if let Some(params) = scope.params {
        vars.insert("params".to_owned(), Value::from(params.clone()));
    }
    Value::from(vars)
}

/// Labels at load time: any label may be named, since which ones an incident has is known only at
/// run time.
#[derive(Debug)]
struct AnyLabels;

impl Object for AnyLabels {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        key.as_str().map(|_| Value::from("label-value"))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Empty
    }
}

/// The expression inside a template that is exactly `{{ expression }}`, if it is.
fn single_expression(source: &str) -> Option<&str> {
    let inner = source.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    let plain = !(inner.contains("{{") || inner.contains("}}") || inner.contains("{%") || inner.contains("{#"));
    let trimmed = inner.trim();
    let whitespace_control = trimmed.starts_with(['-', '+']) || trimmed.ends_with(['-', '+']);
    (plain && !whitespace_control && !trimmed.is_empty()).then_some(inner)
}

/// A minijinja value as JSON; `None` for an undefined value.
fn to_json(value: &Value) -> Option<serde_json::Value> {
    Some(match value.kind() {
        ValueKind::Undefined => return None,
        ValueKind::None => serde_json::Value::Null,
        ValueKind::Bool => serde_json::Value::Bool(value.is_true()),
        ValueKind::Number => match value.as_i64() {
            Some(n) => serde_json::Value::from(n),
            None => value
                .to_string()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map_or_else(|| serde_json::Value::String(value.to_string()), serde_json::Value::Number),
        },
        ValueKind::Seq | ValueKind::Iterable => {
            let items = value.try_iter().ok()?;
            serde_json::Value::Array(items.map(|item| to_json(&item)).collect::<Option<_>>()?)
        }
        ValueKind::Map => {
            let mut object = serde_json::Map::new();
            for key in value.try_iter().ok()? {
                let item = value.get_item(&key).ok()?;
                object.insert(key.to_string(), to_json(&item)?);
            }
            serde_json::Value::Object(object)
        }
        _ => serde_json::Value::String(value.as_str().map_or_else(|| value.to_string(), str::to_owned)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(names: &[&str]) -> BTreeMap<String, String> {
        names.iter().map(|n| ((*n).to_owned(), "value".to_owned())).collect()
    }

    #[test]
    fn templates_naming_only_documented_variables_are_accepted() {
        let declared = params(&["version"]);
        let scope = Scope { params: Some(&declared) };
        let cases = [
            "{{ incident.id }} {{ incident.title }} {{ incident.severity }} {{ incident.source }}",
            "{{ problem_key }} {{ service }} {{ environment }} {{ labels.instance }} {{ entities | join(',') }}",
            "{{ deployment.current.version }} {{ deployment.previous.commit }} {{ deployment.previous.url }}",
            "{{ params.version }}",
            "{% for e in entities %}{{ e }}{% endfor %}",
            "{{ labels.team | default('none') | upper }}",
            "plain text",
        ];
        for source in cases {
            assert!(Template::parse(source, scope).is_ok(), "{source:?}: {:?}", Template::parse(source, scope));
        }
    }

    #[test]
    fn templates_naming_anything_else_are_rejected_with_the_reason() {
        let declared = params(&["version"]);
        let scope = Scope { params: Some(&declared) };
        let cases = [
            ("{{ foo.bar }}", "unknown variable `foo`"),
            ("{{ params.x }}", "`params.x` is not a declared parameter; declared parameters: version"),
            ("{{ incident.owner }}", "unknown variable `incident.owner`"),
            ("{{ deployment.next.version }}", "unknown variable `deployment.next`"),
            ("{{ deployment.previous.tag }}", "unknown variable `deployment.previous.tag`"),
            ("{{ service | shout }}", "unknown filter"),
            ("{{ service ", "template syntax error"),
        ];
        for (source, expected) in cases {
            let error = Template::parse(source, scope).expect_err(source);
            assert!(error.contains(expected), "{source:?}: expected {expected:?} in {error:?}");
        }
    }

    #[test]
    fn a_template_that_would_loop_for_ever_fails_instead_of_hanging() {
        let declared = params(&[]);
        let source = "{% for a in range(10000) %}{% for b in range(10000) %}x{% endfor %}{% endfor %}";
        let error = Template::parse(source, Scope { params: Some(&declared) }).unwrap_err();
        assert!(error.contains("fuel"), "{error}");
    }

    #[test]
    fn defaults_cannot_use_params() {
        let error = Template::parse("{{ params.version }}", Scope { params: None }).unwrap_err();
        assert!(error.contains("`params` cannot be used here"), "{error}");
    }

    #[test]
    fn a_missing_value_at_run_time_is_an_error_naming_it_not_an_empty_string() {
        let declared = params(&[]);
        let template = Template::parse("{{ labels.instance }}", Scope { params: Some(&declared) }).unwrap();
        let labels: BTreeMap<String, String> = BTreeMap::new();
        let vars = Value::from(BTreeMap::from([("labels".to_owned(), Value::from(labels))]));
        assert_eq!(template.render(&vars), Err("`labels.instance` is not known for this incident".to_owned()));
    }

    #[test]
    fn a_single_expression_keeps_its_type_in_json() {
        let declared = params(&["replicas"]);
        let scope = Scope { params: Some(&declared) };
        let vars = Value::from(BTreeMap::from([
            ("params".to_owned(), Value::from(BTreeMap::from([("replicas".to_owned(), "3".to_owned())]))),
            ("entities".to_owned(), Value::from(vec!["a".to_owned(), "b".to_owned()])),
        ]));
        let cases = [
            ("{{ params.replicas | int }}", serde_json::json!(3)),
            ("{{ params.replicas }}", serde_json::json!("3")),
            ("{{ entities }}", serde_json::json!(["a", "b"])),
            ("x{{ params.replicas }}", serde_json::json!("x3")),
        ];
        for (source, expected) in cases {
            let template = Template::parse(source, scope).unwrap();
            assert_eq!(template.render_json(&vars), Ok(expected), "{source:?}");
        }
    }
}
