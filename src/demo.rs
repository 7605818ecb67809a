//! `warroom demo`: a whole incident, start to finish, against the simulated Slack workspace
//! ([`crate::sim`]), narrated line by line. It needs no Slack account, token or config file.
//!
//! What runs is the real application ([`App`]) on `127.0.0.1:0` with a SQLite database in a
//! scratch directory, a random webhook token and a built-in on-call team (ana and ben rotating
//! daily, lea leading incidents) routed to the service `checkout`. The script then plays the
//! incident as people and monitoring would:
//!
//! 1. Alertmanager posts a real firing webhook (`tests/fixtures/alerts/alertmanager_01_firing.json`);
//! 2. the war room opens: channel, topic, invitations, pinned context message, ticket;
//! 3. responders talk in the channel (a message, a thread reply, an edit, a deletion);
//! 4. the on-call person presses **Acknowledge**, then `/incident status identified` and
//!    `/incident note …` arrive as Socket Mode `slash_commands` envelopes;
//! 5. Alertmanager reports the problem resolved: summary posted, ticket closed, channel archived;
//! 6. the ticket is read back through the API, with its comments and attachments.
//!
//! Every step waits for what it expects (never a bare sleep) for at most [`STEP_TIMEOUT`]; a step
//! that does not happen fails the demo with an error naming it. Whatever happens, the app is
//! stopped, the workspace shut down and the scratch directory removed.

use std::fmt::Display;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use regex::Regex;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::app::{App, AppOptions};
use crate::config::{Settings, Synchronous};
use crate::handlers::Services;
use crate::sim::{EnvelopeKind, SimChannel, SimConfig, SimSlack};

/// How long any one step may take before the demo gives up.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// A real Alertmanager 0.25 webhook: two `HighErrorRate` alerts firing on `checkout`.
const FIRING: &str = include_str!("../tests/fixtures/alerts/alertmanager_01_firing.json");
/// The same group, resolved.
const RESOLVED: &str = include_str!("../tests/fixtures/alerts/alertmanager_03_resolved.json");

/// The people of the simulated workspace: Slack id, name, email.
const PEOPLE: [(&str, &str, &str); 3] =
    [("U0ANA", "ana", "ana@example.com"), ("U0BEN", "ben", "ben@example.com"), ("U0LEA", "lea", "lea@example.com")];
/// The incident leads' user group and its members.
const LEADS_GROUP: (&str, &str, &[&str]) = ("S0LEADS", "incident-leads", &["U0LEA"]);

/// The built-in on-call team: ana and ben (ben by email) alternate daily; `checkout` routes to it.
const ONCALL_TOML: &str = r#"
default_team = "payments"

[[teams]]
name = "payments"
members = ["U0ANA", "ben@example.com"]
timezone = "UTC"
handoff = "daily"
handoff_time = "00:00"
rotation_start = "2026-01-01"
lead_group = "S0LEADS"

[[routes]]
service = "checkout"
team = "payments"
"#;

/// Runs the whole demo, writing the narration to `out`. `Ok` when the incident went from the
/// first alert to a closed ticket and an archived channel.
pub async fn run(out: &mut impl Write) -> anyhow::Result<()> {
    let scratch = ScratchDir::create()?;
    let sim = SimSlack::start(SimConfig::default()).await.context("starting the simulated Slack workspace")?;
    let result = run_in(scratch.path(), &sim, out).await;
    sim.shutdown();
    drop(scratch);
    result
}

/// Starts the app against `sim`, plays the script, and stops the app whatever the script did.
async fn run_in(dir: &Path, sim: &SimSlack, out: &mut impl Write) -> anyhow::Result<()> {
    let start = Instant::now();
    writeln!(out, "warroom demo — a whole incident against a simulated Slack workspace (no account needed)")?;
    for (id, name, email) in PEOPLE {
        sim.add_user(id, name, email);
    }
    let (group, handle, members) = LEADS_GROUP;
    sim.add_usergroup(group, handle, members);

    let listener = TcpListener::bind("127.0.0.1:0").await.context("binding 127.0.0.1:0 for warroom's HTTP server")?;
    let addr = listener.local_addr().context("reading the HTTP listener address")?;
    let token = format!("demo-{:032x}", rand::random::<u128>());
    let settings = demo_settings(dir, sim, addr, &token)?;
    let app = App::build(settings, AppOptions::default()).await.context("building warroom for the demo")?;
    let services = app.services().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let mut task = tokio::spawn(app.run(listener, async move {
        let _ = stopped.await;
    }));

    let demo = Demo {
        sim: sim.clone(),
        http: reqwest::Client::builder()
            .no_proxy()
            .timeout(STEP_TIMEOUT)
            .build()
            .context("building the HTTP client")?,
        base: format!("http://{addr}"),
        token,
        services,
        start,
    };
    let mut app_ended = false;
    let script = tokio::select! {
        result = demo.script(out) => result,
        ended = &mut task => {
            app_ended = true;
            Err(match ended {
                Ok(Err(e)) => e.context("warroom stopped during the demo"),
                Ok(Ok(())) => anyhow::anyhow!("warroom stopped during the demo"),
                Err(e) => anyhow::anyhow!("warroom panicked during the demo: {e}"),
            })
        }
    };
    drop(demo);

    let _ = stop.send(());
    let stopped = if app_ended {
        Ok(())
    } else {
        match tokio::time::timeout(STEP_TIMEOUT, &mut task).await {
            Ok(Ok(result)) => result.context("stopping warroom"),
            Ok(Err(e)) => Err(anyhow::anyhow!("warroom panicked while stopping: {e}")),
            Err(_) => {
                task.abort();
                Err(anyhow::anyhow!("warroom did not stop within {} s", STEP_TIMEOUT.as_secs()))
            }
        }
    };
    let script = script.context("the demo failed");
    script?;
    stopped?;
    Ok(())
}

/// Embedded defaults: SQLite in `dir`, the simulated workspace's tokens and URL, the on-call
/// team above, and timers fast enough for a demo that lasts seconds.
fn demo_settings(dir: &Path, sim: &SimSlack, addr: std::net::SocketAddr, token: &str) -> anyhow::Result<Settings> {
    let oncall = toml::from_str(ONCALL_TOML).context("the demo's built-in on-call team")?;
    let mut settings = Settings { oncall, ..Settings::default() };
    settings.http.addr = addr;
    settings.http.webhook_token = Some(token.to_owned().into());
    settings.database.url = format!("sqlite://{}", dir.join("warroom.db").display());
    // The shipped runbooks call real automation: the demo runs none.
    settings.commands_dir = dir.join("commands");
    settings.database.synchronous = Synchronous::Normal;
    settings.slack.bot_token = Some(sim.config().bot_token.clone().into());
    settings.slack.app_token = Some(sim.config().app_token.clone().into());
    settings.slack.api_url = sim.api_url();
    settings.slack.socket_connections = 1;
    settings.slack.reconnect_delay = Duration::from_millis(200);
    settings.slack.retry_initial = Duration::from_millis(50);
    settings.slack.retry_max = Duration::from_millis(500);
    settings.jobs.poll_interval = Duration::from_millis(20);
    settings.jobs.backoff_initial = Duration::from_millis(20);
    settings.jobs.backoff_max = Duration::from_millis(500);
    settings.jobs.shutdown_grace = Duration::from_secs(2);
    Ok(settings)
}

/// A directory under the system temp dir, removed (with everything in it) when dropped.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn create() -> anyhow::Result<Self> {
        let path =
            std::env::temp_dir().join(format!("warroom-demo-{}-{:08x}", std::process::id(), rand::random::<u32>()));
        std::fs::create_dir(&path).with_context(|| format!("creating the scratch directory {}", path.display()))?;
        Ok(Self(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What the script needs to act and to look.
struct Demo {
    sim: SimSlack,
    http: reqwest::Client,
    base: String,
    token: String,
    services: Services,
    start: Instant,
}

impl Demo {
    /// The incident, step by step.
    async fn script(&self, out: &mut impl Write) -> anyhow::Result<()> {
        let bot = self.sim.config().bot_user_id.clone();
        self.say(
            out,
            format!(
                "Simulated Slack workspace with @ana, @ben and @lea (@{}); warroom listening on {}",
                LEADS_GROUP.1, self.base
            ),
        )?;
        if !self.sim.wait_for_connections(1, STEP_TIMEOUT).await {
            bail!(
                "warroom did not connect to the simulated Slack over Socket Mode within {} s",
                STEP_TIMEOUT.as_secs()
            );
        }
        self.say(out, "warroom connected to Slack over Socket Mode")?;

        // 1. The alert.
        let firing: Value = serde_json::from_str(FIRING).context("the embedded firing webhook")?;
        let title = firing["commonAnnotations"]["summary"].as_str().unwrap_or("an alert").to_owned();
        let count = firing["alerts"].as_array().map_or(0, Vec::len);
        let answer = self.post_hook(FIRING, "opened").await?;
        self.say(
            out,
            format!(
                "Alertmanager reports \"{title}\" ({count} alerts firing)  → POST /hooks/alertmanager → 202 {answer}"
            ),
        )?;
        let incident = answer["incident"].as_str().context("the webhook answer names no incident")?.to_owned();

        // 2. The war room.
        let mut channel: Option<SimChannel> = None;
        self.slack_step("the incident channel to be created with its topic", |s| {
            channel = s.channels().into_iter().find(|c| c.created_by == bot && !c.topic.is_empty());
            channel.is_some()
        })
        .await?;
        let channel = channel.context("the incident channel vanished")?;
        self.say(out, format!("Slack: created #{}, topic \"{}\"", channel.name, channel.topic))?;

        // Roles as configured above: the lead group's members lead, whoever else is invited is
        // today's on-call. (Read from the workspace: the store's roles race with join events.)
        let is_lead = |user: &str| LEADS_GROUP.2.contains(&user);
        let mut members: Vec<String> = Vec::new();
        self.slack_step("today's on-call and the incident leads to be invited", |s| {
            members = s
                .channels()
                .into_iter()
                .find(|c| c.id == channel.id)
                .map(|c| c.members.into_iter().filter(|m| *m != bot).collect())
                .unwrap_or_default();
            members.iter().any(|m| is_lead(m)) && members.iter().any(|m| !is_lead(m))
        })
        .await?;
        let invited: Vec<String> = members
            .iter()
            .map(|m| format!("@{} ({})", name_of(m), if is_lead(m) { "incident lead" } else { "on call" }))
            .collect();
        self.say(out, format!("Slack: invited {}", invited.join(", ")))?;
        let on_call = members.iter().find(|m| !is_lead(m)).cloned().context("nobody on call was invited")?;
        let lead = members.iter().find(|m| is_lead(m)).cloned().context("no incident lead was invited")?;

        let mut pinned: Option<String> = None;
        self.slack_step("the context message to be posted and pinned", |s| {
            pinned = s.channels().into_iter().find(|c| c.id == channel.id).and_then(|c| c.pins.first().cloned());
            pinned.is_some()
        })
        .await?;
        let context_ts = pinned.context("the context message vanished")?;
        let buttons = self
            .sim
            .messages(&channel.id)
            .into_iter()
            .find(|m| m.ts == context_ts)
            .and_then(|m| m.blocks)
            .map(|blocks| button_labels(&blocks))
            .unwrap_or_default();
        self.say(out, format!("Slack: posted and pinned the context message {buttons}"))?;

        let ticket = self
            .until("the ticket to be opened", || async {
                let incident = self.get_json(&format!("/api/incidents/{incident}")).await.ok()?;
                incident["ticket"]["key"].as_str().map(str::to_owned)
            })
            .await?;
        let opened = self.get_json(&format!("/api/tickets/{ticket}")).await?;
        self.say(
            out,
            format!(
                "Desk: opened ticket {ticket} \"{}\" (priority {})",
                opened["summary"].as_str().unwrap_or_default(),
                opened["priority"].as_str().unwrap_or("?")
            ),
        )?;

        // 3. People talk.
        let (me, lea) = (name_of(&on_call), name_of(&lead));
        let first = "Looking at it. The 5xx started right after the 22:15 checkout deploy.";
        let ts = self.sim.user_says(&channel.id, &on_call, first, None).await;
        self.say(out, format!("@{me} in #{}: \"{first}\"", channel.name))?;
        let reply = "Roll it back? I'll tell support in the meantime.";
        self.sim.user_says(&channel.id, &lead, reply, Some(&ts)).await;
        self.say(out, format!("@{lea} replies in the thread: \"{reply}\""))?;
        let edited = "Looking at it. The 5xx started right after the 22:15 checkout deploy (v1.42).";
        self.sim.user_edits(&channel.id, &on_call, &ts, edited).await;
        self.say(out, format!("@{me} edits the message: \"{edited}\""))?;
        let oops = "oops, wrong channel";
        let oops_ts = self.sim.user_says(&channel.id, &lead, oops, None).await;
        self.sim.user_deletes(&channel.id, &oops_ts).await;
        self.say(out, format!("@{lea} posts \"{oops}\" and deletes it"))?;

        // 4. Acknowledge, status, note.
        let press = self.sim.block_action_payload(&channel.id, &on_call, &context_ts, "v1:ack", &incident);
        let envelope = self.sim.send_envelope(EnvelopeKind::Interactive, press).await;
        let ack = self
            .sim
            .wait_for_ack(&envelope, STEP_TIMEOUT)
            .await
            .context("warroom did not ack the Acknowledge button press within 10 s")?;
        self.say(out, format!("@{me} presses [Acknowledge] → acked in {} ms", ack.after.as_millis()))?;
        let acknowledged = format!("acknowledged {incident}");
        self.bot_post(out, &channel.id, &bot, |text| text.contains(&acknowledged), "the acknowledgement").await?;

        self.slash(out, &channel.id, &on_call, "status identified").await?;
        let identified = format!("set {incident} to *identified*");
        self.bot_post(out, &channel.id, &bot, |text| text.contains(&identified), "the status change").await?;

        let note = "Rolled back checkout to v1.41; the 5xx rate is falling.";
        self.slash(out, &channel.id, &lead, &format!("note {note}")).await?;
        self.bot_post(out, &channel.id, &bot, |text| text.contains(note), "the note").await?;
        self.until("the note to reach the ticket", || async {
            let ticket = self.get_json(&format!("/api/tickets/{ticket}")).await.ok()?;
            let comments = ticket["comments"].as_array()?;
            comments.iter().any(|c| c["text"].as_str().is_some_and(|t| t.contains(note))).then_some(())
        })
        .await?;
        self.say(out, format!("Desk: {ticket} has the note as a comment"))?;

        // 5. The source resolves the problem.
        let resolved: Value = serde_json::from_str(RESOLVED).context("the embedded resolved webhook")?;
        let count = resolved["alerts"].as_array().map_or(0, Vec::len);
        let answer = self.post_hook(RESOLVED, "resolved").await?;
        self.say(
            out,
            format!(
                "Alertmanager reports the problem resolved ({count} alert(s) in the last notification)  \
                 → POST /hooks/alertmanager → 202 {answer}"
            ),
        )?;
        let headline = format!("{incident} resolved");
        self.bot_post(out, &channel.id, &bot, |text| text.starts_with(&headline), "the resolution summary").await?;
        self.until("the ticket to be closed", || async {
            let ticket = self.get_json(&format!("/api/tickets/{ticket}")).await.ok()?;
            (ticket["status"] == "closed").then_some(())
        })
        .await?;
        self.say(out, format!("Desk: closed {ticket}"))?;
        self.slack_step("the channel to be archived", |s| {
            s.channels().iter().any(|c| c.id == channel.id && c.is_archived)
        })
        .await?;
        self.say(out, format!("Slack: archived #{}", channel.name))?;
        self.until("warroom's jobs to finish", || async {
            (self.services.store.open_job_count().await.ok()? == 0).then_some(())
        })
        .await?;

        // 6. The ticket, as the API serves it.
        let body = self.get_json(&format!("/api/tickets/{ticket}")).await?;
        self.say(
            out,
            format!(
                "Ticket {ticket} ({}, priority {}): {}",
                body["status"].as_str().unwrap_or("?"),
                body["priority"].as_str().unwrap_or("?"),
                body["summary"].as_str().unwrap_or_default()
            ),
        )?;
        let comments = body["comments"].as_array().cloned().unwrap_or_default();
        writeln!(out, "  comments ({}):", comments.len())?;
        for comment in &comments {
            let author = comment["author"].as_str().unwrap_or("?");
            let text = comment["text"].as_str().unwrap_or_default();
            writeln!(out, "    - {}: {}", display_name(author), with_names(text))?;
        }
        let attachments = body["attachments"].as_array().cloned().unwrap_or_default();
        writeln!(out, "  attachments ({}):", attachments.len())?;
        for attachment in &attachments {
            self.print_attachment(out, attachment).await?;
        }

        let incident_json = self.get_json(&format!("/api/incidents/{incident}")).await?;
        let lasted = lasted(&incident_json).map_or_else(|| "?".to_owned(), |secs| format!("{secs:.2}"));
        let transcript = attachments.iter().any(|a| a["name"].as_str().is_some_and(|n| n.contains("transcript")));
        let ending = if transcript {
            format!("transcript attached to {ticket}")
        } else if attachments.is_empty() {
            format!("{ticket} has no attachment (this build does not attach the transcript yet)")
        } else {
            format!("{} attachment(s) on {ticket}, none of them a transcript", attachments.len())
        };
        self.say(out, format!("{incident} resolved in {lasted}s; {ending}"))?;
        Ok(())
    }

    /// Writes one narration line, prefixed with the time since the demo started.
    fn say(&self, out: &mut impl Write, text: impl Display) -> anyhow::Result<()> {
        writeln!(out, "[{:.2}s] {text}", self.start.elapsed().as_secs_f64())?;
        out.flush()?;
        Ok(())
    }

    /// Waits until `condition` holds on the simulated workspace.
    async fn slack_step(&self, what: &str, condition: impl FnMut(&SimSlack) -> bool) -> anyhow::Result<()> {
        if self.sim.wait_for(STEP_TIMEOUT, condition).await {
            Ok(())
        } else {
            bail!("timed out after {} s waiting for {what}", STEP_TIMEOUT.as_secs())
        }
    }

    /// Polls `probe` until it returns `Some`.
    async fn until<T, F>(&self, what: &str, mut probe: impl FnMut() -> F) -> anyhow::Result<T>
    where
        F: std::future::Future<Output = Option<T>>,
    {
        let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
        loop {
            if let Some(found) = probe().await {
                return Ok(found);
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("timed out after {} s waiting for {what}", STEP_TIMEOUT.as_secs());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for the bot's top-level post in `channel` whose text matches, and narrates it.
    async fn bot_post(
        &self,
        out: &mut impl Write,
        channel: &str,
        bot: &str,
        matches: impl Fn(&str) -> bool,
        what: &str,
    ) -> anyhow::Result<()> {
        let mut found = None;
        self.slack_step(&format!("warroom to post {what}"), |s| {
            found = s
                .messages(channel)
                .into_iter()
                .find(|m| m.user.as_deref() == Some(bot) && m.thread_ts.is_none() && matches(&m.text))
                .map(|m| m.text);
            found.is_some()
        })
        .await?;
        self.say(out, format!("Slack: warroom posts \"{}\"", with_names(&found.unwrap_or_default())))
    }

    /// Types `/incident <text>` as `user` in `channel` (a Socket Mode `slash_commands` envelope)
    /// and narrates the ephemeral reply that rides in the ack.
    async fn slash(&self, out: &mut impl Write, channel: &str, user: &str, text: &str) -> anyhow::Result<()> {
        let payload = self.sim.slash_command_payload(channel, user, text);
        let envelope = self.sim.send_envelope(EnvelopeKind::SlashCommands, payload).await;
        let ack =
            self.sim.wait_for_ack(&envelope, STEP_TIMEOUT).await.with_context(|| {
                format!("warroom did not ack `/incident {text}` within {} s", STEP_TIMEOUT.as_secs())
            })?;
        let reply = ack.payload.as_ref().and_then(|p| p["text"].as_str()).unwrap_or("(no reply)");
        self.say(out, format!("@{}: /incident {text}  → only they see: \"{}\"", name_of(user), with_names(reply)))
    }

    /// Posts an Alertmanager body to `/hooks/alertmanager`; expects 202 with `outcome`.
    async fn post_hook(&self, body: &'static str, outcome: &str) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(format!("{}/hooks/alertmanager", self.base))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .context("POST /hooks/alertmanager")?;
        let status = response.status();
        let answer: Value = response.json().await.context("reading the answer of POST /hooks/alertmanager")?;
        if status != reqwest::StatusCode::ACCEPTED || answer["outcome"] != outcome {
            bail!("POST /hooks/alertmanager answered {status} {answer}, expected 202 with outcome `{outcome}`");
        }
        Ok(answer)
    }

    /// `GET {path}` with the API token; the JSON body of a 2xx answer.
    async fn get_json(&self, path: &str) -> anyhow::Result<Value> {
        let response = self.get(&format!("{}{path}", self.base)).await?;
        response.json().await.with_context(|| format!("reading the JSON of GET {path}"))
    }

    async fn get(&self, url: &str) -> anyhow::Result<reqwest::Response> {
        let response =
            self.http.get(url).bearer_auth(&self.token).send().await.with_context(|| format!("GET {url}"))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            bail!("GET {url} answered {status}: {body}");
        }
        Ok(response)
    }

    /// One attachment: name and size, and its content indented when it is text.
    async fn print_attachment(&self, out: &mut impl Write, attachment: &Value) -> anyhow::Result<()> {
        let name = attachment["name"].as_str().unwrap_or("?");
        let content_type = attachment["content_type"].as_str().unwrap_or("?");
        let size = attachment["size"].as_u64().unwrap_or(0);
        writeln!(out, "    - {name} ({size} bytes, {content_type})")?;
        if content_type.starts_with("text/")
            && let Some(url) = attachment["url"].as_str()
        {
            let text = self.get(url).await?.text().await.with_context(|| format!("reading the attachment {name}"))?;
            for line in text.lines() {
                writeln!(out, "        | {line}")?;
            }
        }
        Ok(())
    }
}

/// The labels of the buttons in `blocks`, as `[Acknowledge] [Resolve]`.
fn button_labels(blocks: &Value) -> String {
    let mut labels = Vec::new();
    for block in blocks.as_array().into_iter().flatten() {
        for element in block["elements"].as_array().into_iter().flatten() {
            if element["type"] == "button"
                && let Some(label) = element["text"]["text"].as_str()
            {
                labels.push(format!("[{label}]"));
            }
        }
    }
    labels.join(" ")
}

/// A person's name in the demo workspace, or the id itself.
fn name_of(user: &str) -> String {
    PEOPLE.iter().find(|(id, _, _)| *id == user).map_or_else(|| user.to_owned(), |(_, name, _)| (*name).to_owned())
}

/// `@ana` for a demo user id, anything else unchanged.
fn display_name(author: &str) -> String {
    if PEOPLE.iter().any(|(id, _, _)| *id == author) { format!("@{}", name_of(author)) } else { author.to_owned() }
}

/// Slack text as people read it: `<@U…>` mentions become `@name`, then `&lt;`, `&gt;` and
/// `&amp;` become the characters they stand for.
fn with_names(text: &str) -> String {
    static MENTION: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"<@([A-Z0-9]+)(?:\|[^>]*)?>").ok());
    let named = match MENTION.as_ref() {
        Some(mention) => {
            mention.replace_all(text, |c: &regex::Captures<'_>| format!("@{}", name_of(&c[1]))).into_owned()
        }
        None => text.to_owned(),
    };
    named.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

/// Seconds between `opened_at` and `resolved_at` of an incident's JSON.
fn lasted(incident: &Value) -> Option<f64> {
    let at = |field: &str| incident[field].as_str()?.parse::<jiff::Timestamp>().ok();
    let span = at("resolved_at")?.duration_since(at("opened_at")?);
    Some(span.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_demo_narrates_a_whole_incident_and_succeeds() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut out = Vec::new();
        let result = tokio::time::timeout(Duration::from_secs(30), run(&mut out)).await;
        let text = String::from_utf8_lossy(&out);
        let result = result.unwrap_or_else(|_| panic!("the demo did not finish within 30 s:\n{text}"));
        assert!(result.is_ok(), "the demo failed: {:#}\n{text}", result.unwrap_err());
        for needle in [
            "POST /hooks/alertmanager → 202",
            "created #inc-1-checkout",
            "invited @",
            "(incident lead)",
            "pinned the context message [Acknowledge] [Resolve]",
            "opened ticket WR-1",
            "/incident status identified",
            "INC-1 is now identified.",
            "Desk: closed WR-1",
            "archived #inc-1-checkout",
            "Ticket WR-1 (closed",
            "INC-1 resolved in ",
        ] {
            assert!(text.contains(needle), "the narration lacks `{needle}`:\n{text}");
        }
    }

    #[test]
    fn mentions_become_names() {
        assert_eq!(with_names(":eyes: <@U0ANA> acknowledged INC-1"), ":eyes: @ana acknowledged INC-1");
        assert_eq!(with_names("<@U0LEA|lea> and <@U9X>"), "@lea and @U9X");
        assert_eq!(with_names("a &lt;b&gt; &amp;amp;"), "a <b> &amp;", "entities are decoded once");
    }
}
