//! The Jira Service Management desk: one Jira issue per Incident, over Jira Cloud REST v3 (and
//! the servicedeskapi for customer-visible notes).
//!
//! Every method is safe to retry, like the trait asks:
//! - `create` searches for the issue by the incident's own label (`warroom-inc-42`) before
//!   creating one. Jira's search index lags, so after an attempt whose outcome is unknown (a
//!   timeout, a 5xx) a search that finds nothing within `search_lag` answers
//!   [`DeskError::Unavailable`] and the job tries again later instead of creating a second issue.
//! - `comment` ends each comment with a visible signature line that carries the dedupe key
//!   (`— ana via warroom · ref job-7`). Jira posts as the API user, so the line also says who
//!   wrote the note. Before posting, the latest comments are read back and the key looked for, so
//!   a retry after a lost answer or a restart posts nothing; an in-process set skips the read
//!   for keys already handled. A marker in the text (rather than a comment property) works for
//!   servicedeskapi comments too, which take plain text only, and is returned by the comment
//!   list without extra calls.
//! - `attach` uploads the new file, then deletes older attachments of the same name.
//! - `close` and `reopen` look at the issue's status category first and do nothing when it is
//!   already where they would move it.
//!
//! Writes to one issue are spaced by `write_spacing`; 429 answers become
//! [`DeskError::RateLimited`] with Jira's `Retry-After` or `X-RateLimit-Reset`.

pub mod adf;
mod api;
pub mod settings;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;
use tracing::{info, warn};

use self::api::{Api, parse_time};
pub use self::settings::{JiraSettings, SettingsIssue};
use super::{Attachment, Comment, Desk, DeskError, Ticket, TicketDraft, TicketStatus, TicketUpdate};
use crate::domain::{IncidentId, Severity, TicketKey};

/// The label every warroom issue carries.
pub const WARROOM_LABEL: &str = "warroom";

/// How many of the latest comments a retried comment looks through for its dedupe key.
const COMMENTS_CHECKED: u32 = 50;

/// Jira's longest summary.
const MAX_SUMMARY_CHARS: usize = 255;

/// The Jira desk.
pub struct JiraDesk {
    api: Api,
    settings: JiraSettings,
    /// A std mutex: held for map lookups only, never across an await.
    state: Mutex<State>,
}

/// What this process remembers between calls; losing it (a restart) costs extra reads, never
/// a duplicate.
#[derive(Default)]
struct State {
    /// Issues this process created or found, by incident.
    issues: HashMap<IncidentId, TicketKey>,
    /// When this process last sent a create whose outcome it does not know, by incident.
    create_attempts: HashMap<IncidentId, Instant>,
    /// (issue key, dedupe key) of comments known to be on Jira.
    comments: HashSet<(String, String)>,
    /// Lowercased email → Jira account id.
    accounts: HashMap<String, String>,
    /// The API user's account id, once asked.
    own_account: Option<String>,
}

impl JiraDesk {
    /// A desk for `settings`, authenticating with `token` (the API token of `settings.email`).
    pub fn new(settings: JiraSettings, token: SecretString) -> Result<Self, DeskError> {
        let api = Api::new(&settings.base_url, &settings.email, token, settings.timeout, settings.write_spacing)?;
        Ok(Self { api, settings, state: Mutex::new(State::default()) })
    }

    /// A desk whose token is read from the variable `settings.token_env` names.
    pub fn from_env(settings: JiraSettings) -> Result<Self, DeskError> {
        let token = std::env::var(&settings.token_env).ok().filter(|token| !token.is_empty()).ok_or_else(|| {
            DeskError::Rejected(format!("{} is not set: the Jira desk needs an API token", settings.token_env))
        })?;
        Self::new(settings, SecretString::from(token))
    }

    /// The settings the desk runs with.
    #[must_use]
    pub fn settings(&self) -> &JiraSettings {
        &self.settings
    }

    /// Adds (or, for the same `url`, updates) a remote link on the issue, such as the incident's
    /// Slack channel. The URL is the link's global id, so repeating the call changes nothing.
    pub async fn link(&self, key: &TicketKey, title: &str, url: &str) -> Result<(), DeskError> {
        let body = json!({"globalId": url, "object": {"url": url, "title": title}});
        self.api.pace(key.as_str()).await;
        let request = self.api.request(Method::POST, &format!("/rest/api/3/issue/{key}/remotelink")).json(&body);
        self.api.send(request, &format!("linking {url} to {key}")).await?;
        Ok(())
    }

    /// The Jira account id of the user with `email`, or `None` if Jira knows no such user.
    /// Found ids are cached for the life of the process; misses are not (the user may be added).
    pub async fn account_for_email(&self, email: &str) -> Result<Option<String>, DeskError> {
        let wanted = email.trim().to_lowercase();
        if let Some(id) = self.state().accounts.get(&wanted) {
            return Ok(Some(id.clone()));
        }
        let request = self.api.request(Method::GET, "/rest/api/3/user/search").query(&[("query", email.trim())]);
        let users: Vec<User> = self.api.json(request, &format!("looking up the Jira user {email}")).await?;
        // The query also matches name prefixes; prefer an exact email, and accept a single
        // hit whose email the user's privacy settings hide.
        let exact = users.iter().find(|u| u.email_address.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(&wanted)));
        let found = match (exact, users.as_slice()) {
            (Some(user), _) => Some(user),
            (None, [only]) if only.email_address.is_none() => Some(only),
            _ => None,
        };
        let Some(user) = found else {
            return Ok(None);
        };
        self.state().accounts.insert(wanted, user.account_id.clone());
        Ok(Some(user.account_id.clone()))
    }

    /// The account id warroom writes as (`GET /rest/api/3/myself`), cached: webhook deliveries
    /// caused by this account are warroom's own writes.
    pub async fn own_account_id(&self) -> Result<String, DeskError> {
        if let Some(id) = &self.state().own_account {
            return Ok(id.clone());
        }
        let request = self.api.request(Method::GET, "/rest/api/3/myself");
        let user: User = self.api.json(request, "asking Jira who the API user is").await?;
        self.state().own_account = Some(user.account_id.clone());
        Ok(user.account_id)
    }

    /// Performs the transition configured for a warroom step (`investigating`, `identified`,
    /// `monitoring`, `resolved`, `reopened`) and returns its name; `None` when the config maps
    /// no transition to the step. The transition is found by name among those available now;
    /// when none fits, the error lists them.
    pub async fn transition(&self, key: &TicketKey, step: &str) -> Result<Option<String>, DeskError> {
        let Some(name) = self.settings.transition_name(step) else {
            return Ok(None);
        };
        self.perform_transition(key, name, None).await?;
        Ok(Some(name.to_owned()))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The Jira priority name for a desk priority: `P1` … `P4` through the configured mapping,
    /// anything else as it is.
    fn priority(&self, priority: &str) -> String {
        priority
            .strip_prefix(['P', 'p'])
            .and_then(|level| Severity::parse_level(level).ok())
            .map_or_else(|| priority.to_owned(), |severity| self.settings.priority_name(severity).to_owned())
    }

    /// The key of the oldest issue carrying the incident's label, as the search index shows it.
    async fn search(&self, incident: IncidentId) -> Result<Option<TicketKey>, DeskError> {
        let jql = format!(
            "project = {} AND labels = {} ORDER BY created ASC",
            jql_string(&self.settings.project_key),
            jql_string(&incident_label(incident))
        );
        let request = self.api.request(Method::GET, "/rest/api/3/search/jql").query(&[
            ("jql", jql.as_str()),
            ("fields", "key"),
            ("maxResults", "10"),
        ]);
        let found: SearchResults =
            self.api.json(request, &format!("searching Jira for the issue of {incident}")).await?;
        if found.issues.len() > 1 {
            let keys: Vec<&str> = found.issues.iter().map(|issue| issue.key.as_str()).collect();
            warn!(incident.id = %incident, jira.issues = ?keys, "incident {incident} has several Jira issues; using the oldest");
        }
        Ok(found.issues.into_iter().next().map(|issue| TicketKey::external(issue.key)))
    }

    /// Whether a comment ending in the dedupe key's signature is among the latest comments.
    async fn has_comment(&self, key: &TicketKey, dedupe: &str) -> Result<bool, DeskError> {
        let request = self
            .api
            .request(Method::GET, &format!("/rest/api/3/issue/{key}/comment"))
            .query(&[("orderBy", "-created"), ("maxResults", &COMMENTS_CHECKED.to_string())]);
        let page: CommentPage = self.api.json(request, &format!("reading the comments of {key}")).await?;
        let suffix = signature_suffix(dedupe);
        Ok(page.comments.iter().any(|comment| adf::plain_text(&comment.body).trim_end().ends_with(&suffix)))
    }

    /// Whether the issue's status is in Jira's `done` category.
    async fn is_done(&self, key: &TicketKey) -> Result<bool, DeskError> {
        let request = self.api.request(Method::GET, &format!("/rest/api/3/issue/{key}")).query(&[("fields", "status")]);
        let issue: IssueBean = self.api.json(request, &format!("reading the status of {key}")).await?;
        Ok(issue.fields.status.is_some_and(|status| status.is_done()))
    }

    /// Finds the transition `name` among those available now and performs it, with `comment`
    /// added in the same write.
    async fn perform_transition(&self, key: &TicketKey, name: &str, comment: Option<&str>) -> Result<(), DeskError> {
        let request = self.api.request(Method::GET, &format!("/rest/api/3/issue/{key}/transitions"));
        let available: Transitions = self.api.json(request, &format!("listing the transitions of {key}")).await?;
        let Some(transition) = available.transitions.iter().find(|t| t.name.eq_ignore_ascii_case(name)) else {
            let names: Vec<&str> = available.transitions.iter().map(|t| t.name.as_str()).collect();
            let names = if names.is_empty() { "none".to_owned() } else { names.join(", ") };
            return Err(DeskError::Rejected(format!(
                "{key} cannot take the transition \"{name}\" now; available now: {names}"
            )));
        };
        let mut body = json!({"transition": {"id": transition.id}});
        if let Some(text) = comment.filter(|text| !text.trim().is_empty()) {
            body["update"] = json!({"comment": [{"add": {"body": adf::paragraphs(text)}}]});
        }
        self.api.pace(key.as_str()).await;
        let request = self.api.request(Method::POST, &format!("/rest/api/3/issue/{key}/transitions")).json(&body);
        self.api.send(request, &format!("moving {key} through \"{name}\"")).await?;
        info!(jira.issue = %key, jira.transition = name, "moved {key} through \"{name}\"");
        Ok(())
    }

    async fn upload(&self, key: &TicketKey, name: &str, content_type: &str, bytes: &[u8]) -> Result<(), DeskError> {
        let doing = format!("attaching {name} to {key}");
        let part = Part::bytes(bytes.to_vec())
            .file_name(name.to_owned())
            .mime_str(content_type)
            .map_err(|e| DeskError::Rejected(format!("{doing}: bad content type `{content_type}`: {e}")))?;
        self.api.pace(key.as_str()).await;
        let request = self
            .api
            .request(Method::POST, &format!("/rest/api/3/issue/{key}/attachments"))
            .header("X-Atlassian-Token", "no-check")
            .multipart(Form::new().part("file", part));
        self.api.send(request, &doing).await?;
        Ok(())
    }

    async fn attachments_of(&self, key: &TicketKey) -> Result<Vec<JiraAttachment>, DeskError> {
        let request =
            self.api.request(Method::GET, &format!("/rest/api/3/issue/{key}")).query(&[("fields", "attachment")]);
        let issue: IssueBean = self.api.json(request, &format!("listing the attachments of {key}")).await?;
        Ok(issue.fields.attachment)
    }
}

#[async_trait]
impl Desk for JiraDesk {
    fn name(&self) -> &'static str {
        "jira"
    }

    async fn create(&self, draft: &TicketDraft) -> Result<TicketKey, DeskError> {
        let incident = draft.incident;
        if let Some(key) = self.find_for_incident(incident).await? {
            return Ok(key);
        }
        let mut labels: Vec<String> = Vec::new();
        let own = [WARROOM_LABEL.to_owned(), incident_label(incident)];
        for label in self.settings.labels.iter().chain(&draft.labels).chain(&own) {
            let label = label.split_whitespace().collect::<Vec<_>>().join("-");
            if !label.is_empty() && !labels.contains(&label) {
                labels.push(label);
            }
        }
        let summary: String = draft.summary.split_whitespace().collect::<Vec<_>>().join(" ");
        let body = json!({"fields": {
            "project": {"key": self.settings.project_key},
            "issuetype": {"name": self.settings.issue_type},
            "summary": summary.chars().take(MAX_SUMMARY_CHARS).collect::<String>(),
            "description": adf::paragraphs(&draft.description),
            "priority": {"name": self.priority(&draft.priority)},
            "labels": labels,
        }});
        // Recorded before sending: from here on an issue may exist that the search cannot see yet.
        self.state().create_attempts.insert(incident, Instant::now());
        let request = self.api.request(Method::POST, "/rest/api/3/issue").json(&body);
        let created: Result<CreatedIssue, DeskError> =
            self.api.json(request, &format!("creating the Jira issue of {incident}")).await;
        let created = match created {
            Ok(created) => created,
            Err(error) => {
                // A refusal or a 429 created nothing; anything else might have.
                if matches!(error, DeskError::Rejected(_) | DeskError::NotFound(_) | DeskError::RateLimited { .. }) {
                    self.state().create_attempts.remove(&incident);
                }
                return Err(error);
            }
        };
        let key = TicketKey::external(created.key);
        let mut state = self.state();
        state.create_attempts.remove(&incident);
        state.issues.insert(incident, key.clone());
        drop(state);
        info!(incident.id = %incident, jira.issue = %key, "created Jira issue {key} for incident {incident}");
        Ok(key)
    }

    async fn find_for_incident(&self, incident: IncidentId) -> Result<Option<TicketKey>, DeskError> {
        if let Some(key) = self.state().issues.get(&incident) {
            return Ok(Some(key.clone()));
        }
        if let Some(key) = self.search(incident).await? {
            let mut state = self.state();
            state.create_attempts.remove(&incident);
            state.issues.insert(incident, key.clone());
            return Ok(Some(key));
        }
        let attempted = self.state().create_attempts.get(&incident).copied();
        if attempted.is_some_and(|at| at.elapsed() < self.settings.search_lag) {
            return Err(DeskError::Unavailable(format!(
                "waiting for Jira's search index: an earlier attempt to create the issue of {incident} may have succeeded"
            )));
        }
        Ok(None)
    }

    async fn update(&self, key: &TicketKey, update: &TicketUpdate) -> Result<(), DeskError> {
        let mut fields = serde_json::Map::new();
        if let Some(summary) = &update.summary {
            fields.insert("summary".to_owned(), json!(summary.chars().take(MAX_SUMMARY_CHARS).collect::<String>()));
        }
        if let Some(description) = &update.description {
            fields.insert("description".to_owned(), adf::paragraphs(description));
        }
        if let Some(priority) = &update.priority {
            fields.insert("priority".to_owned(), json!({"name": self.priority(priority)}));
        }
        // Resolve the assignee before writing anything, so an unknown user changes nothing.
        let account = match update.assignee.as_deref() {
            Some(who) if who.contains('@') => Some(self.account_for_email(who).await?.ok_or_else(|| {
                DeskError::Rejected(format!("no Jira user has the email {who}, so {key} cannot be assigned"))
            })?),
            Some(account) => Some(account.to_owned()),
            None => None,
        };
        if !fields.is_empty() {
            self.api.pace(key.as_str()).await;
            let request =
                self.api.request(Method::PUT, &format!("/rest/api/3/issue/{key}")).json(&json!({"fields": fields}));
            self.api.send(request, &format!("updating {key}")).await?;
        }
        if let Some(account) = account {
            self.api.pace(key.as_str()).await;
            let request = self
                .api
                .request(Method::PUT, &format!("/rest/api/3/issue/{key}/assignee"))
                .json(&json!({"accountId": account}));
            self.api.send(request, &format!("assigning {key}")).await?;
        }
        Ok(())
    }

    async fn comment(
        &self,
        key: &TicketKey,
        author: &str,
        text: &str,
        public: bool,
        dedupe: &str,
    ) -> Result<(), DeskError> {
        if dedupe.trim().is_empty() {
            return Err(DeskError::Rejected(format!("a comment on {key} needs a dedupe key")));
        }
        let seen = (key.as_str().to_owned(), dedupe.to_owned());
        if self.state().comments.contains(&seen) {
            return Ok(());
        }
        if self.has_comment(key, dedupe).await? {
            self.state().comments.insert(seen);
            return Ok(());
        }
        let body = format!("{}\n\n{}", text.trim_end(), signature(author, dedupe));
        let service_desk = self.settings.service_desk_id.is_some();
        let doing = format!("commenting on {key}");
        let request = if public && service_desk {
            self.api
                .request(Method::POST, &format!("/rest/servicedeskapi/request/{key}/comment"))
                .json(&json!({"body": body, "public": true}))
        } else {
            let mut comment = json!({"body": adf::paragraphs(&body)});
            if service_desk {
                comment["properties"] = json!([{"key": "sd.public.comment", "value": {"internal": true}}]);
            }
            self.api.request(Method::POST, &format!("/rest/api/3/issue/{key}/comment")).json(&comment)
        };
        self.api.pace(key.as_str()).await;
        self.api.send(request, &doing).await?;
        self.state().comments.insert(seen);
        Ok(())
    }

    async fn attach(&self, key: &TicketKey, name: &str, content_type: &str, bytes: &[u8]) -> Result<(), DeskError> {
        if name.is_empty() {
            return Err(DeskError::Rejected(format!("an attachment on {key} needs a name")));
        }
        let request = self.api.request(Method::GET, "/rest/api/3/attachment/meta");
        let meta: AttachmentMeta = self.api.json(request, "reading Jira's attachment settings").await?;
        if !meta.enabled {
            return Err(DeskError::Rejected(format!(
                "attachments are turned off on this Jira site, so {name} cannot go to {key}"
            )));
        }
        let older: Vec<String> = self
            .attachments_of(key)
            .await?
            .into_iter()
            .filter(|a| a.filename == name || is_part_of(&a.filename, name))
            .map(|a| a.id)
            .collect();
        let limit = usize::try_from(meta.upload_limit).ok().filter(|limit| *limit > 0).unwrap_or(usize::MAX);
        let parts = split(bytes, limit);
        let count = parts.len();
        for (index, part) in parts.into_iter().enumerate() {
            let part_name = if count == 1 { name.to_owned() } else { part_name(name, index + 1, count) };
            self.upload(key, &part_name, content_type, part).await?;
        }
        // Only now remove what this upload replaces: a failure above leaves the old file in place.
        for id in older {
            self.api.pace(key.as_str()).await;
            let request = self.api.request(Method::DELETE, &format!("/rest/api/3/attachment/{id}"));
            match self.api.send(request, &format!("removing the older {name} from {key}")).await {
                Ok(_) | Err(DeskError::NotFound(_)) => {}
                Err(error) => return Err(error),
            }
        }
        info!(jira.issue = %key, file.name = name, file.parts = count, "attached {name} to {key} in {count} part(s)");
        Ok(())
    }

    async fn set_status(&self, key: &TicketKey, status: &str) -> Result<(), DeskError> {
        self.transition(key, status).await.map(|_| ())
    }

    async fn link_channel(&self, key: &TicketKey, title: &str, url: &str) -> Result<(), DeskError> {
        self.link(key, title, url).await
    }

    fn assigns_by_email(&self) -> bool {
        true
    }

    async fn close(&self, key: &TicketKey, resolution: &str) -> Result<(), DeskError> {
        if self.is_done(key).await? {
            return Ok(());
        }
        self.perform_transition(key, &self.settings.done_transition, Some(resolution)).await
    }

    async fn reopen(&self, key: &TicketKey) -> Result<(), DeskError> {
        if !self.is_done(key).await? {
            return Ok(());
        }
        let name = self.settings.transition_name("reopened").ok_or_else(|| {
            DeskError::Rejected(format!(
                "{key} is done and desk.jira.transitions.reopened names no transition to reopen it"
            ))
        })?;
        self.perform_transition(key, name, None).await
    }

    async fn get(&self, key: &TicketKey) -> Result<Option<Ticket>, DeskError> {
        let request = self
            .api
            .request(Method::GET, &format!("/rest/api/3/issue/{key}"))
            .query(&[("fields", "summary,description,status,assignee,priority,labels,comment,attachment")]);
        let issue: IssueBean = match self.api.json(request, &format!("reading {key}")).await {
            Ok(issue) => issue,
            Err(DeskError::NotFound(_)) => return Ok(None),
            Err(error) => return Err(error),
        };
        let fields = issue.fields;
        let incident = fields
            .labels
            .iter()
            .find_map(|label| label.strip_prefix("warroom-").and_then(|id| id.parse::<IncidentId>().ok()))
            .ok_or_else(|| DeskError::Rejected(format!("{key} carries no warroom-inc-<n> label")))?;
        let priority = fields.priority.map(|p| p.name).unwrap_or_default();
        let priority = match self.settings.severity_of_priority(&priority) {
            Some(severity) => format!("P{}", severity.level()),
            None => priority,
        };
        let comments = fields.comment.map(|page| page.comments).unwrap_or_default();
        let mut attachments: Vec<Attachment> = fields
            .attachment
            .into_iter()
            .map(|a| Attachment {
                at: parse_time(&a.created).unwrap_or_default(),
                name: a.filename,
                content_type: a.mime_type,
                size: a.size,
            })
            .collect();
        attachments.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Some(Ticket {
            key: TicketKey::external(issue.key),
            incident,
            status: if fields.status.is_some_and(|s| s.is_done()) { TicketStatus::Closed } else { TicketStatus::Open },
            assignee: fields.assignee.map(|user| user.account_id),
            priority,
            summary: fields.summary,
            description: fields.description.as_ref().map(adf::plain_text).unwrap_or_default(),
            comments: comments
                .into_iter()
                .map(|c| Comment {
                    at: parse_time(&c.created).unwrap_or_default(),
                    author: c.author.map(|a| a.display_name).unwrap_or_default(),
                    text: adf::plain_text(&c.body),
                    public: c.jsd_public.unwrap_or(true),
                })
                .collect(),
            attachments,
        }))
    }

    async fn attachment(&self, key: &TicketKey, name: &str) -> Result<Option<(String, Vec<u8>)>, DeskError> {
        let found = match self.attachments_of(key).await {
            Ok(attachments) => attachments.into_iter().find(|a| a.filename == name),
            Err(DeskError::NotFound(_)) => None,
            Err(error) => return Err(error),
        };
        let Some(found) = found else {
            return Ok(None);
        };
        let doing = format!("downloading {name} from {key}");
        let request = self.api.request(Method::GET, &format!("/rest/api/3/attachment/content/{}", found.id));
        let response = self.api.send(request, &doing).await?;
        let bytes = response.bytes().await.map_err(|e| DeskError::Unavailable(format!("{doing}: {e}")))?;
        Ok(Some((found.mime_type, bytes.to_vec())))
    }
}

/// The label unique to an incident: `warroom-inc-42`.
#[must_use]
pub fn incident_label(incident: IncidentId) -> String {
    format!("{WARROOM_LABEL}-{}", incident.to_string().to_ascii_lowercase())
}

/// The last line of every comment warroom writes: who said it, and the dedupe key.
#[must_use]
pub fn signature(author: &str, dedupe: &str) -> String {
    format!("— {author} via warroom{}", signature_suffix(dedupe))
}

fn signature_suffix(dedupe: &str) -> String {
    format!(" · ref {dedupe}")
}

/// A JQL string literal.
fn jql_string(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `transcript.md` → `transcript-part2of3.md`.
fn part_name(name: &str, index: usize, count: usize) -> String {
    match name.rsplit_once('.') {
        Some((stem, extension)) if !stem.is_empty() => format!("{stem}-part{index}of{count}.{extension}"),
        _ => format!("{name}-part{index}of{count}"),
    }
}

/// Whether `candidate` is one part of a split `name`, such as `transcript-part1of3.md`.
fn is_part_of(candidate: &str, name: &str) -> bool {
    let (stem, extension) = match name.rsplit_once('.') {
        Some((stem, extension)) if !stem.is_empty() => (stem, format!(".{extension}")),
        _ => (name, String::new()),
    };
    let Some(middle) = candidate.strip_prefix(stem).and_then(|rest| rest.strip_prefix("-part")) else {
        return false;
    };
    let Some(middle) = middle.strip_suffix(extension.as_str()) else {
        return false;
    };
    middle.split_once("of").is_some_and(|(index, count)| {
        !index.is_empty() && !count.is_empty() && (index.to_owned() + count).bytes().all(|b| b.is_ascii_digit())
    })
}

/// Cuts `bytes` into pieces of at most `limit` bytes, preferring to end a piece after a line
/// break and never cutting inside a UTF-8 character when the text allows it.
fn split(bytes: &[u8], limit: usize) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut rest = bytes;
    while rest.len() > limit {
        let window = &rest[..limit];
        let mut cut = match window.iter().rposition(|b| *b == b'\n') {
            Some(newline) if newline + 1 >= limit / 2 => newline + 1,
            _ => limit,
        };
        // Back off at most three continuation bytes so a character stays whole.
        let mut backed = 0;
        while backed < 3 && cut > 1 && cut < rest.len() && rest[cut] & 0xC0 == 0x80 {
            cut -= 1;
            backed += 1;
        }
        let (head, tail) = rest.split_at(cut.max(1));
        parts.push(head);
        rest = tail;
    }
    parts.push(rest);
    parts
}

#[derive(Deserialize)]
struct CreatedIssue {
    key: String,
}

#[derive(Deserialize)]
struct SearchResults {
    #[serde(default)]
    issues: Vec<FoundIssue>,
}

#[derive(Deserialize)]
struct FoundIssue {
    key: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct User {
    account_id: String,
    #[serde(default)]
    email_address: Option<String>,
    #[serde(default)]
    display_name: String,
}

#[derive(Deserialize)]
struct Transitions {
    #[serde(default)]
    transitions: Vec<JiraTransition>,
}

#[derive(Deserialize)]
struct JiraTransition {
    /// A string in Jira's API (`"2"`), sent back as one.
    id: String,
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AttachmentMeta {
    enabled: bool,
    #[serde(default)]
    upload_limit: i64,
}

#[derive(Deserialize)]
struct IssueBean {
    key: String,
    #[serde(default)]
    fields: IssueFields,
}

#[derive(Deserialize, Default)]
struct IssueFields {
    #[serde(default)]
    summary: String,
    #[serde(default)]
    description: Option<Value>,
    #[serde(default)]
    status: Option<Status>,
    #[serde(default)]
    assignee: Option<User>,
    #[serde(default)]
    priority: Option<Named>,
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default)]
    comment: Option<CommentPage>,
    #[serde(default)]
    attachment: Vec<JiraAttachment>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    #[serde(default)]
    status_category: Option<Named>,
}

impl Status {
    fn is_done(&self) -> bool {
        self.status_category.as_ref().is_some_and(|category| category.key.as_deref() == Some("done"))
    }
}

#[derive(Deserialize)]
struct Named {
    #[serde(default)]
    name: String,
    #[serde(default)]
    key: Option<String>,
}

#[derive(Deserialize)]
struct CommentPage {
    #[serde(default)]
    comments: Vec<JiraComment>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JiraComment {
    #[serde(default)]
    body: Value,
    #[serde(default)]
    created: String,
    #[serde(default)]
    author: Option<User>,
    #[serde(default)]
    jsd_public: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JiraAttachment {
    /// A string in the issue's fields, a number in some other answers.
    #[serde(deserialize_with = "string_or_number")]
    id: String,
    filename: String,
    #[serde(default)]
    mime_type: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    created: String,
}

fn string_or_number<'de, D>(deserializer: D) -> Result<String, D::Error>
where
    D: serde::Deserializer<'de>,
{
    match Value::deserialize(deserializer)? {
        Value::String(text) => Ok(text),
        Value::Number(number) => Ok(number.to_string()),
        other => Err(serde::de::Error::custom(format!("expected an id, got {other}"))),
    }
}
