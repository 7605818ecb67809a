//! `warroom::sim` — an in-process fake Slack workspace.
//!
//! [`SimSlack::start`] binds two loopback listeners:
//!
//! * an HTTP server (axum) answering the Web API under `http://127.0.0.1:P/api/<method>`
//!   (point slack-morphism at it with `with_slack_api_url(sim.api_url())`), plus the
//!   `response_url` endpoints (`/response/<n>`) and file upload URLs (`/upload/<file_id>`);
//! * a Socket Mode WebSocket server (tokio-tungstenite) whose `ws://` URLs are handed out by
//!   `apps.connections.open`.
//!
//! It keeps a small workspace in memory (users, user groups, channels, messages, pins,
//! bookmarks, files, views) and records everything the bot did, so tests can assert on
//! Web API calls ([`SimSlack::calls`]) and on the resulting state ([`SimSlack::messages`],
//! [`SimSlack::channels`], …). The bot's own actions come back as Events API envelopes
//! (its messages as `message` events with `bot_id`, invitations as `member_joined_channel`),
//! and a scripted "human" can speak ([`SimSlack::user_says`]), type `/incident`
//! ([`SimSlack::slash_command_payload`] + [`SimSlack::send_envelope`]) or click buttons.
//!
//! Failures are first-class: [`SimSlack::fail_next`], [`SimSlack::rate_limit_next`],
//! [`SimSlack::set_auth_error`], [`SimSlack::set_latency`], un-acked `events_api` envelopes are
//! redelivered with `retry_attempt`/`retry_reason`, and sockets can be asked to reconnect
//! ([`SimSlack::send_disconnect`]) or be cut ([`SimSlack::drop_sockets`]).
//!
//! # Fidelity limits
//!
//! * One workspace, one bot token, one app token; no OAuth, scopes or Enterprise Grid.
//!   Every call authenticated with the bot token may do anything a member bot may do.
//! * No rate limiting of its own: 429s only happen when injected with `rate_limit_next`.
//! * Error codes and argument checks cover what warroom relies on (listed per method in
//!   `web_api.rs`); unknown arguments are ignored, formatting (mrkdwn, blocks) is not
//!   validated, `msg_too_long` / `invalid_blocks` are never produced.
//! * Message timestamps come from the wall clock, forced strictly increasing.
//! * System messages are stored like Slack does: invitations add `channel_join` messages,
//!   topic/purpose changes add `channel_topic`/`channel_purpose` messages (with
//!   [`SimMessage::subtype`] set); they also appear in history and as events.
//! * Events go to at most one socket (round robin). Events raised while no socket is open
//!   are queued and delivered when one connects. Only `events_api` envelopes are
//!   redelivered (as in Slack), after `redelivery_after` rather than Slack's 1 min / 5 min.
//! * `response_url` posts are recorded; an `in_channel` response also posts a bot message.
//!   `replace_original`/`delete_original` are recorded but not applied.
//! * Trigger ids issued by the payload builders expire after 3 s and are single-use;
//!   unknown trigger ids are accepted.

mod payloads;
mod socket_mode;
mod web_api;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use payloads::{now_micros, ts_string};

/// Configuration of a [`SimSlack`] workspace.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Bot token (`xoxb-…`) the Web API accepts.
    pub bot_token: String,
    /// App-level token (`xapp-…`) `apps.connections.open` accepts.
    pub app_token: String,
    /// Team (workspace) id.
    pub team_id: String,
    /// App id, sent in `hello` and in event payloads.
    pub app_id: String,
    /// The bot's user id.
    pub bot_user_id: String,
    /// The bot id (`B…`) set on the bot's messages.
    pub bot_id: String,
    /// An `events_api` envelope not acked after this long is sent again.
    pub redelivery_after: Duration,
    /// How many times an un-acked `events_api` envelope is redelivered.
    pub max_redeliveries: u32,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            bot_token: "xoxb-sim-bot".into(),
            app_token: "xapp-sim-app".into(),
            team_id: "T0SIM".into(),
            app_id: "A0SIM".into(),
            bot_user_id: "U0BOT".into(),
            bot_id: "B0SIM".into(),
            redelivery_after: Duration::from_secs(1),
            max_redeliveries: 3,
        }
    }
}

/// One Web API call the sim received.
#[derive(Debug, Clone)]
pub struct ApiCall {
    /// Method name, e.g. `chat.postMessage`.
    pub method: String,
    /// Query string, form body or JSON body merged into one object (body wins).
    pub params: Value,
    /// When it arrived.
    pub at: Instant,
}

/// A workspace member.
#[derive(Debug, Clone)]
pub struct SimUser {
    /// User id (`U…`).
    pub id: String,
    /// Name, also used as display name and real name.
    pub name: String,
    /// Email address (for `users.lookupByEmail`).
    pub email: String,
    /// Whether this is the bot user.
    pub is_bot: bool,
}

/// A channel and its metadata.
#[derive(Debug, Clone)]
pub struct SimChannel {
    /// Channel id (`C…`).
    pub id: String,
    /// Name without `#`.
    pub name: String,
    /// Created with `is_private: true`.
    pub is_private: bool,
    /// Archived.
    pub is_archived: bool,
    /// Current topic.
    pub topic: String,
    /// Current purpose.
    pub purpose: String,
    /// Member user ids in join order.
    pub members: Vec<String>,
    /// Timestamps of pinned messages.
    pub pins: Vec<String>,
    /// Bookmarks as `(title, link)`.
    pub bookmarks: Vec<(String, String)>,
    /// User id of the creator.
    pub created_by: String,
    /// Creation time, unix seconds.
    pub created: u64,
}

/// A message in a channel (top level or thread reply).
#[derive(Debug, Clone)]
pub struct SimMessage {
    /// Message timestamp (its id within the channel).
    pub ts: String,
    /// Author user id (the bot user id for bot messages).
    pub user: Option<String>,
    /// Set on messages posted by the bot.
    pub bot_id: Option<String>,
    /// Text (fallback text when blocks are set).
    pub text: String,
    /// Blocks as sent.
    pub blocks: Option<Value>,
    /// Parent timestamp for thread replies (`None` for top-level messages).
    pub thread_ts: Option<String>,
    /// Edited at least once.
    pub edited: bool,
    /// Timestamp of the last edit.
    pub edited_ts: Option<String>,
    /// Deleted (no longer returned by history/replies).
    pub deleted: bool,
    /// Message subtype (`channel_join`, `channel_topic`, `thread_broadcast`, …), `None` for
    /// normal user and bot messages.
    pub subtype: Option<String>,
}

impl SimMessage {
    /// A plain message a person posted.
    fn from_user(ts: &str, user: &str, text: &str, thread_ts: Option<&str>) -> Self {
        Self {
            ts: ts.to_owned(),
            user: Some(user.to_owned()),
            bot_id: None,
            text: text.to_owned(),
            blocks: None,
            thread_ts: thread_ts.map(str::to_owned),
            edited: false,
            edited_ts: None,
            deleted: false,
            subtype: None,
        }
    }
}

/// An ephemeral message sent with `chat.postEphemeral`.
#[derive(Debug, Clone)]
pub struct SimEphemeral {
    /// Channel id.
    pub channel: String,
    /// The only user who sees it.
    pub user: String,
    /// Text, if any.
    pub text: Option<String>,
    /// Blocks, if any.
    pub blocks: Option<Value>,
}

/// A file uploaded with the v2 upload flow and shared by `files.completeUploadExternal`.
#[derive(Debug, Clone)]
pub struct SimFile {
    /// File id (`F…`).
    pub id: String,
    /// File name given to `files.getUploadURLExternal`.
    pub filename: String,
    /// Title given to `files.completeUploadExternal` (defaults to the file name).
    pub title: String,
    /// The uploaded bytes.
    pub bytes: Vec<u8>,
    /// Channels it was shared to.
    pub channels: Vec<String>,
    /// `initial_comment`, if any.
    pub initial_comment: Option<String>,
}

/// Kind of Socket Mode envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeKind {
    /// `events_api` (redelivered until acked).
    EventsApi,
    /// `slash_commands` (accepts a response payload).
    SlashCommands,
    /// `interactive` (accepts a response payload for `view_submission`/`block_suggestion`).
    Interactive,
}

impl EnvelopeKind {
    /// The envelope `type` on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            EnvelopeKind::EventsApi => "events_api",
            EnvelopeKind::SlashCommands => "slash_commands",
            EnvelopeKind::Interactive => "interactive",
        }
    }
}

/// An acknowledgement received on a socket.
#[derive(Debug, Clone)]
pub struct Ack {
    /// The acked envelope.
    pub envelope_id: String,
    /// The `payload` of the ack, if any.
    pub payload: Option<Value>,
    /// Time between sending the envelope and receiving the ack.
    pub after: Duration,
}

/// An events_api delivery that has not been acked yet.
#[derive(Debug)]
pub(crate) struct PendingEvent {
    pub envelope_ids: Vec<String>,
    pub payload: Value,
    pub attempt: u32,
    /// `None` while the envelope waits in the outbox for a socket.
    pub last_sent: Option<Instant>,
}

/// Everything the sim knows. Guarded by a std `Mutex`: critical sections are short and
/// never cross an `.await`.
#[derive(Default)]
pub(crate) struct State {
    pub users: BTreeMap<String, SimUser>,
    pub usergroups: BTreeMap<String, (String, Vec<String>)>,
    pub channels: Vec<SimChannel>,
    pub messages: HashMap<String, Vec<SimMessage>>,
    pub calls: Vec<ApiCall>,
    pub ephemerals: Vec<SimEphemeral>,
    pub response_url_posts: Vec<Value>,
    /// response_url path id → channel it belongs to.
    pub response_urls: HashMap<String, String>,
    pub views: Vec<Value>,
    pub files: Vec<SimFile>,
    /// file id → (filename, uploaded bytes)
    pub pending_uploads: HashMap<String, (String, Option<Vec<u8>>)>,
    pub fail_next: HashMap<String, VecDeque<String>>,
    pub rate_limit_next: HashMap<String, VecDeque<u64>>,
    pub latency: Duration,
    pub auth_error: Option<String>,
    pub last_ts: u64,
    pub counter: u64,
    pub tickets: Vec<String>,
    /// trigger id → (issued at, used)
    pub triggers: HashMap<String, (Instant, bool)>,
    pub sockets: BTreeMap<u64, socket_mode::SocketHandle>,
    pub next_socket: u64,
    pub round_robin: usize,
    pub connections_opened: usize,
    pub envelopes_sent: HashMap<String, Instant>,
    pub acks: Vec<Ack>,
    pub pending: Vec<PendingEvent>,
    pub outbox: VecDeque<(String, String)>,
}

impl State {
    /// Next strictly increasing message timestamp.
    pub(crate) fn next_ts(&mut self) -> String {
        let now = now_micros();
        self.last_ts = if now > self.last_ts { now } else { self.last_ts + 1 };
        ts_string(self.last_ts)
    }

    /// Next value of the id counter.
    pub(crate) fn next_n(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    pub(crate) fn channel(&self, id: &str) -> Option<&SimChannel> {
        self.channels.iter().find(|c| c.id == id)
    }

    pub(crate) fn channel_mut(&mut self, id: &str) -> Option<&mut SimChannel> {
        self.channels.iter_mut().find(|c| c.id == id)
    }
}

pub(crate) struct Inner {
    pub config: SimConfig,
    pub http_addr: SocketAddr,
    pub ws_addr: SocketAddr,
    pub state: Mutex<State>,
    /// Woken whenever an ack arrives or a socket opens/closes.
    pub changed: Notify,
    pub shutdown: CancellationToken,
}

/// A running fake Slack workspace. Cheap to clone; all clones share the same state.
#[derive(Clone)]
pub struct SimSlack {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for SimSlack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimSlack").field("http", &self.inner.http_addr).field("ws", &self.inner.ws_addr).finish()
    }
}

impl SimSlack {
    /// Binds the Web API (HTTP) and Socket Mode (WebSocket) listeners on `127.0.0.1:0` and
    /// starts serving. The bot user exists from the start.
    pub async fn start(config: SimConfig) -> std::io::Result<SimSlack> {
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let ws = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let mut state = State::default();
        state.users.insert(
            config.bot_user_id.clone(),
            SimUser { id: config.bot_user_id.clone(), name: "warroom".into(), email: String::new(), is_bot: true },
        );
        let sim = SimSlack {
            inner: Arc::new(Inner {
                http_addr: http.local_addr()?,
                ws_addr: ws.local_addr()?,
                config,
                state: Mutex::new(state),
                changed: Notify::new(),
                shutdown: CancellationToken::new(),
            }),
        };
        tokio::spawn(web_api::serve(sim.clone(), http));
        tokio::spawn(socket_mode::serve(sim.clone(), ws));
        tokio::spawn(socket_mode::redelivery_loop(sim.clone()));
        Ok(sim)
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &SimConfig {
        &self.inner.config
    }

    /// Web API base URL, `http://127.0.0.1:PORT/api` (no trailing slash).
    pub fn api_url(&self) -> String {
        format!("http://{}/api", self.inner.http_addr)
    }

    /// Base URL of the HTTP listener, `http://127.0.0.1:PORT`.
    pub fn http_base_url(&self) -> String {
        format!("http://{}", self.inner.http_addr)
    }

    /// Stops both listeners, the redelivery task and closes every socket (with a close
    /// frame). Call it at the end of a test or demo: the background tasks hold clones of the
    /// sim, so dropping the handles alone keeps it serving until the runtime stops.
    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock only happens in a bug; keep serving anyway.
        self.inner.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    // ----- workspace setup -------------------------------------------------------------

    /// Adds (or replaces) a user; `name` is also the display name.
    pub fn add_user(&self, id: &str, name: &str, email: &str) {
        self.state().users.insert(
            id.to_string(),
            SimUser { id: id.to_string(), name: name.to_string(), email: email.to_string(), is_bot: false },
        );
    }

    /// Adds (or replaces) a user group (`S…`) with its `@handle` and members.
    pub fn add_usergroup(&self, id: &str, handle: &str, members: &[&str]) {
        self.state()
            .usergroups
            .insert(id.to_string(), (handle.to_string(), members.iter().map(|m| m.to_string()).collect()));
    }

    /// Adds a pre-existing public channel (e.g. `general`) with the bot and every known user
    /// as members; returns its id.
    /// A channel the bot itself created earlier (as `conversations.create` would leave it):
    /// used to stage a crash between creating a channel and recording it.
    pub fn create_channel_as_bot(&self, name: &str) -> String {
        let bot = self.config().bot_user_id.clone();
        let mut st = self.state();
        let n = st.next_n();
        let id = format!("C0SIM{n:04}");
        st.channels.push(SimChannel {
            id: id.clone(),
            name: name.to_string(),
            is_private: false,
            is_archived: false,
            topic: String::new(),
            purpose: String::new(),
            members: vec![bot.clone()],
            pins: Vec::new(),
            bookmarks: Vec::new(),
            created_by: bot,
            created: payloads::now_secs(),
        });
        id
    }

    /// A pre-existing channel, created by a workspace admin, that every user is in.
    pub fn add_channel(&self, name: &str) -> String {
        let mut st = self.state();
        let n = st.next_n();
        let id = format!("C0SIM{n:04}");
        let members = st.users.keys().cloned().collect();
        st.channels.push(SimChannel {
            id: id.clone(),
            name: name.to_string(),
            is_private: false,
            is_archived: false,
            topic: String::new(),
            purpose: String::new(),
            members,
            pins: Vec::new(),
            bookmarks: Vec::new(),
            created_by: "U0ADMIN".into(),
            created: payloads::now_secs(),
        });
        id
    }

    // ----- inspection ------------------------------------------------------------------

    /// Every Web API call, in arrival order (including rejected ones).
    pub fn calls(&self) -> Vec<ApiCall> {
        self.state().calls.clone()
    }

    /// The Web API calls of one method, in arrival order.
    pub fn calls_to(&self, method: &str) -> Vec<ApiCall> {
        self.state().calls.iter().filter(|c| c.method == method).cloned().collect()
    }

    /// All channels, in creation order.
    pub fn channels(&self) -> Vec<SimChannel> {
        self.state().channels.clone()
    }

    /// The channel with this name (archived or not).
    pub fn channel_by_name(&self, name: &str) -> Option<SimChannel> {
        self.state().channels.iter().find(|c| c.name == name).cloned()
    }

    /// All messages of a channel (top level and replies, deleted ones flagged) in ts order.
    pub fn messages(&self, channel_id: &str) -> Vec<SimMessage> {
        self.state().messages.get(channel_id).cloned().unwrap_or_default()
    }

    /// Ephemeral messages sent with `chat.postEphemeral`.
    pub fn ephemerals(&self) -> Vec<SimEphemeral> {
        self.state().ephemerals.clone()
    }

    /// JSON bodies POSTed to `response_url`s.
    pub fn response_url_posts(&self) -> Vec<Value> {
        self.state().response_url_posts.clone()
    }

    /// Views passed to `views.open` and `views.push`, in order.
    pub fn views_opened(&self) -> Vec<Value> {
        self.state().views.clone()
    }

    /// Files completed with `files.completeUploadExternal`.
    pub fn uploaded_files(&self) -> Vec<SimFile> {
        self.state().files.clone()
    }

    // ----- failure injection -----------------------------------------------------------

    /// The next call of `method` answers `{"ok":false,"error":error}` (queued: calling this
    /// twice fails the next two calls).
    pub fn fail_next(&self, method: &str, error: &str) {
        self.state().fail_next.entry(method.to_string()).or_default().push_back(error.to_string());
    }

    /// The next call of `method` answers HTTP 429 with `Retry-After: retry_after_secs`.
    pub fn rate_limit_next(&self, method: &str, retry_after_secs: u64) {
        self.state().rate_limit_next.entry(method.to_string()).or_default().push_back(retry_after_secs);
    }

    /// Delays every Web API answer by `per_call`.
    pub fn set_latency(&self, per_call: Duration) {
        self.state().latency = per_call;
    }

    /// `Some(code)`: every Web API call answers `{"ok":false,"error":code}` until cleared
    /// with `None`.
    pub fn set_auth_error(&self, error: Option<&str>) {
        self.state().auth_error = error.map(str::to_string);
    }

    // ----- payload builders ------------------------------------------------------------

    fn new_response_url(&self, channel_id: &str) -> String {
        let mut st = self.state();
        let n = st.next_n();
        let key = format!("{n}");
        st.response_urls.insert(key.clone(), channel_id.to_string());
        format!("{}/response/{key}", self.http_base_url())
    }

    fn new_trigger_id(&self) -> String {
        let mut st = self.state();
        let n = st.next_n();
        let id = format!("{n}.{}.simtrigger{:08x}", n * 7, rand::random::<u32>());
        st.triggers.insert(id.clone(), (Instant::now(), false));
        id
    }

    fn user_name(&self, user_id: &str) -> String {
        self.state().users.get(user_id).map(|u| u.name.clone()).unwrap_or_else(|| user_id.to_string())
    }

    /// A `/incident <text>` slash-command payload typed by `user_id` in `channel_id`, with a
    /// fresh `response_url` on the sim and a fresh `trigger_id`.
    pub fn slash_command_payload(&self, channel_id: &str, user_id: &str, text: &str) -> Value {
        let response_url = self.new_response_url(channel_id);
        let trigger_id = self.new_trigger_id();
        let channel_name = self.state().channel(channel_id).map(|c| c.name.clone()).unwrap_or_default();
        payloads::slash_command(
            &self.inner.config,
            channel_id,
            &channel_name,
            user_id,
            &self.user_name(user_id),
            text,
            &response_url,
            &trigger_id,
        )
    }

    /// A `block_actions` payload: `user_id` clicked the button `action_id` (with `value`) on
    /// the message `message_ts` of `channel_id`. The stored message is included when known.
    pub fn block_action_payload(
        &self,
        channel_id: &str,
        user_id: &str,
        message_ts: &str,
        action_id: &str,
        value: &str,
    ) -> Value {
        let response_url = self.new_response_url(channel_id);
        let trigger_id = self.new_trigger_id();
        let (channel, message) = {
            let st = self.state();
            let channel = st.channel(channel_id).cloned().unwrap_or(SimChannel {
                id: channel_id.to_string(),
                name: String::new(),
                is_private: false,
                is_archived: false,
                topic: String::new(),
                purpose: String::new(),
                members: Vec::new(),
                pins: Vec::new(),
                bookmarks: Vec::new(),
                created_by: String::new(),
                created: 0,
            });
            let message = st.messages.get(channel_id).and_then(|ms| {
                ms.iter()
                    .find(|m| m.ts == message_ts && !m.deleted)
                    .map(|m| payloads::message_json(m, &self.inner.config))
            });
            (channel, message)
        };
        payloads::block_action(
            &self.inner.config,
            &channel,
            user_id,
            &self.user_name(user_id),
            message,
            message_ts,
            action_id,
            value,
            &response_url,
            &trigger_id,
        )
    }

    // ----- a human in the workspace ----------------------------------------------------

    /// `user_id` posts `text` in `channel_id` (in a thread when `thread_ts` is set): the
    /// message is stored and delivered as a `message` event. Returns its ts.
    pub async fn user_says(&self, channel_id: &str, user_id: &str, text: &str, thread_ts: Option<&str>) -> String {
        let (ts, event) = {
            let mut st = self.state();
            let ts = st.next_ts();
            let msg = SimMessage::from_user(&ts, user_id, text, thread_ts);
            let parent_user = thread_ts.and_then(|t| {
                st.messages.get(channel_id).and_then(|ms| ms.iter().find(|m| m.ts == t)).and_then(|m| m.user.clone())
            });
            let event = st
                .channel(channel_id)
                .cloned()
                .map(|ch| payloads::message_event(&msg, &ch, &self.inner.config, parent_user.as_deref()));
            st.messages.entry(channel_id.to_string()).or_default().push(msg);
            (ts, event)
        };
        if let Some(e) = event {
            self.emit_event(e);
        }
        ts
    }

    /// A message Slack stored while the bot was not listening: it is in the history, but no
    /// event is delivered for it (the bot must backfill it).
    pub fn add_history_message(&self, channel_id: &str, user_id: &str, text: &str, thread_ts: Option<&str>) -> String {
        let mut st = self.state();
        let ts = st.next_ts();
        let msg = SimMessage::from_user(&ts, user_id, text, thread_ts);
        st.messages.entry(channel_id.to_string()).or_default().push(msg);
        ts
    }

    /// `user_id` edits their message `ts`: history is updated and a `message_changed` event
    /// is delivered. Does nothing if the message does not exist.
    pub async fn user_edits(&self, channel_id: &str, user_id: &str, ts: &str, new_text: &str) {
        let event = {
            let mut st = self.state();
            let event_ts = st.next_ts();
            let Some(ch) = st.channel(channel_id).cloned() else {
                return;
            };
            let Some(msg) =
                st.messages.get_mut(channel_id).and_then(|ms| ms.iter_mut().find(|m| m.ts == ts && !m.deleted))
            else {
                return;
            };
            let old = msg.clone();
            msg.text = new_text.to_string();
            msg.edited = true;
            msg.edited_ts = Some(event_ts.clone());
            msg.user = Some(user_id.to_string());
            let new = msg.clone();
            payloads::message_changed_event(&old, &new, &ch, &event_ts, &self.inner.config)
        };
        self.emit_event(event);
    }

    /// The message `ts` is deleted: it vanishes from history and a `message_deleted` event is
    /// delivered. Does nothing if the message does not exist.
    pub async fn user_deletes(&self, channel_id: &str, ts: &str) {
        if let Some(event) = self.delete_message(channel_id, ts) {
            self.emit_event(event);
        }
    }

    /// Marks a message deleted and returns the `message_deleted` event to deliver.
    pub(crate) fn delete_message(&self, channel_id: &str, ts: &str) -> Option<Value> {
        let mut st = self.state();
        let event_ts = st.next_ts();
        let ch = st.channel(channel_id).cloned()?;
        let msg = st.messages.get_mut(channel_id).and_then(|ms| ms.iter_mut().find(|m| m.ts == ts && !m.deleted))?;
        msg.deleted = true;
        let old = msg.clone();
        Some(payloads::message_deleted_event(&old, &ch, &event_ts, &self.inner.config))
    }

    /// Wraps `event` in an `event_callback` and delivers it as an `events_api` envelope.
    pub(crate) fn emit_event(&self, event: Value) -> String {
        let event_id = {
            let mut st = self.state();
            let n = st.next_n();
            format!("Ev0SIM{n:06}")
        };
        let payload = payloads::event_callback(&self.inner.config, &event_id, event);
        self.deliver(EnvelopeKind::EventsApi, payload)
    }

    /// Delivers a raw event (the `event` object of an `event_callback`) as `events_api`, e.g.
    /// `json!({"type":"app_mention", …})`. Returns the envelope id.
    pub async fn send_event(&self, event: Value) -> String {
        self.emit_event(event)
    }

    /// Waits until `cond` returns true or `timeout` passes; `cond` is re-evaluated after every
    /// Web API call, response_url post, upload, ack and socket open/close. E.g.
    /// `sim.wait_for(secs(2), |s| !s.calls_to("chat.postMessage").is_empty()).await`.
    pub async fn wait_for(&self, timeout: Duration, mut cond: impl FnMut(&SimSlack) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if cond(self) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return cond(self);
            }
        }
    }

    pub(crate) fn notify_changed(&self) {
        self.inner.changed.notify_waiters();
    }

    /// Waits until `cond` holds (re-checked on every ack/connection change) or `timeout`.
    pub(crate) async fn wait_until(&self, timeout: Duration, mut cond: impl FnMut(&State) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if cond(&self.state()) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return cond(&self.state());
            }
        }
    }
}
