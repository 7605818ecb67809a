//! Captured channel entries → one Markdown or plain-text document, for the incident's ticket.
//!
//! # What the document looks like
//!
//! A header (incident, title, severity, opened and resolved times, duration, ticket, message
//! count, people), then one section per channel in round order (`#inc-1-checkout`, then
//! `#inc-1-checkout-r1 (reopened)`). Inside a section, entries are in time order, each with its
//! UTC time (`2026-11-22 08:01:05`); thread replies sit indented under their parent, and replies
//! whose parent was never captured sit under a placeholder line at the parent's time. Authors
//! and `<@U…>` mentions show display names; an unknown id stays as the id.
//!
//! Edits are marked `(edited at 08:03)` with the previous text once (`was: "…"`); a deleted
//! message is `(message deleted)` and never shows any text, old or new; joins, leaves and topic
//! changes are italic system lines; button presses and slash commands are `▶` lines; warroom's own
//! posts are kept and marked `warroom:`.
//!
//! # Input text
//!
//! [`Entry::text`] is Slack's wire format, as message events deliver it: `<@U123>` mentions,
//! `<#C123|name>` channel links, `<https://…|label>` links, `<!here>`, and `&amp;`, `&lt;`, `&gt;`
//! for the three characters Slack escapes. Rendering turns those into readable text.
//!
//! # Safety
//!
//! Nothing a person wrote can change the document's structure. In Markdown each entry is a list
//! item; user text never starts a line on its own (continuation lines are indented and a leading
//! `#`, `>`, `-`, `*`, `+`, `=`, `|`, `~`, `_`, backtick or `1.` is backslash-escaped) and `<tag`
//! is escaped, so a message cannot open a heading, a quote, a code fence or raw HTML. Control and
//! bidi-override characters are dropped in both formats. Every user-supplied string is redacted
//! ([`redact`]) before it is laid out, and the whole document once more before it is returned.
//!
//! Malformed input never panics: an unparsable `ts` sorts last and is shown as it is, entries of
//! a channel missing from the channel list get their own section at the end.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use jiff::tz::Offset;
use jiff::{SignedDuration, Timestamp};

use super::redact::redact;

/// One captured channel entry: a message, a thread reply or a system event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The channel id (`C…`); a reopened incident has several channels.
    pub channel: String,
    /// Slack's `ts`, `"1700000000.000100"` (seconds and microseconds); unique within a channel.
    pub ts: String,
    /// The parent's `ts` for a thread reply; `None` (or equal to `ts`) for a top-level entry.
    pub thread_ts: Option<String>,
    /// Who posted it: a person's `U…` id or a bot's user id.
    pub user: Option<String>,
    /// Posted by warroom itself or another bot.
    pub bot: bool,
    /// What kind of entry this is.
    pub kind: EntryKind,
    /// The current text in Slack's format; empty for a deleted message (its text is never kept).
    /// For a button press, the button's label; for a slash command, the command line; for a
    /// topic change, the new topic.
    pub text: String,
    /// The `ts` of the last edit, if the message was edited.
    pub edited: Option<String>,
    /// The text before the last edit.
    pub previous_text: Option<String>,
    /// The message was deleted.
    pub deleted: bool,
    /// Files shared with the message.
    pub files: Vec<FileRef>,
}

pub use crate::domain::transcript::{EntryKind, FileRef};

/// One of the incident's channels; round 0 is the first, each reopening adds one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    /// The channel id (`C…`).
    pub id: String,
    /// The channel name without `#`.
    pub name: String,
    /// 0 for the first channel, k for the channel of the k-th reopening.
    pub round: u32,
}

/// What the transcript's header says about the incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptHeader<'a> {
    /// The incident's public id (`INC-1`).
    pub incident: &'a str,
    /// The incident's title.
    pub title: &'a str,
    /// The severity (`sev2`).
    pub severity: &'a str,
    /// When the incident was opened.
    pub opened_at: Timestamp,
    /// When it was resolved, if it was.
    pub resolved_at: Option<Timestamp>,
    /// The ticket key (`WR-7`), if there is a ticket.
    pub ticket: Option<&'a str>,
}

/// The output format of [`render`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// CommonMark: headings, list items, nested lists for threads.
    Markdown,
    /// Plain text for places that show no Markdown.
    Text,
}

/// Renders an incident's transcript: the header, then every channel's entries.
///
/// `channels` lists the incident's channels (rendered in round order), `entries` the captured
/// entries in any order, `names` maps user ids to display names. The result is redacted.
#[must_use]
pub fn render(
    header: &TranscriptHeader<'_>,
    channels: &[Channel],
    entries: &[Entry],
    names: &BTreeMap<String, String>,
    format: Format,
) -> String {
    let style = Style { format, names };
    let sections = sections(channels, entries);
    let mut out = String::new();
    write_header(&mut out, &style, header, entries, sections.len());
    for section in &sections {
        write_section(&mut out, &style, section);
    }
    redact(&out).into_owned()
}

/// The placeholder for replies whose parent is not in the transcript.
const MISSING_PARENT: &str = "(reply to a message that is not in the transcript)";

/// How to write one document: its format and the names to show for user ids.
struct Style<'a> {
    format: Format,
    names: &'a BTreeMap<String, String>,
}

/// One channel's part of the document.
struct Section<'a> {
    heading: String,
    items: Vec<Item<'a>>,
}

/// A top-level line with its thread replies.
struct Item<'a> {
    /// The parent, or `None` when only its replies were captured.
    parent: Option<&'a Entry>,
    /// The parent's `ts` (the entry's own, or the replies' `thread_ts`).
    ts: &'a str,
    replies: Vec<&'a Entry>,
}

/// Groups entries by channel (known channels in round order, unknown ones after), each in time
/// order with replies under their parents.
fn sections<'a>(channels: &'a [Channel], entries: &'a [Entry]) -> Vec<Section<'a>> {
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by_cached_key(|entry| time_key(&entry.ts));

    let mut by_channel: HashMap<&str, Vec<&Entry>> = HashMap::new();
    let mut unknown_order: Vec<&str> = Vec::new();
    for entry in sorted {
        let list = by_channel.entry(&entry.channel).or_default();
        if list.is_empty() && !channels.iter().any(|channel| channel.id == entry.channel) {
            unknown_order.push(&entry.channel);
        }
        list.push(entry);
    }

    let mut known: Vec<&Channel> = channels.iter().collect();
    known.sort_by_key(|channel| channel.round);
    let mut seen = BTreeSet::new();
    let mut sections = Vec::new();
    for channel in known {
        if !seen.insert(channel.id.as_str()) {
            continue;
        }
        let heading =
            if channel.round == 0 { format!("#{}", channel.name) } else { format!("#{} (reopened)", channel.name) };
        let items = threads(by_channel.remove(channel.id.as_str()).unwrap_or_default());
        sections.push(Section { heading, items });
    }
    for id in unknown_order {
        let items = threads(by_channel.remove(id).unwrap_or_default());
        sections.push(Section { heading: format!("#{id} (channel not in the incident's list)"), items });
    }
    sections
}

/// Puts each reply under its parent; replies without one go under a placeholder at the parent's
/// time. `entries` must be in time order; so is the result.
fn threads(entries: Vec<&Entry>) -> Vec<Item<'_>> {
    let mut items: Vec<Item<'_>> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut replies: Vec<&Entry> = Vec::new();
    for entry in entries {
        match entry.thread_ts.as_deref() {
            Some(parent) if parent != entry.ts => replies.push(entry),
            _ => {
                index.entry(&entry.ts).or_insert(items.len());
                items.push(Item { parent: Some(entry), ts: &entry.ts, replies: Vec::new() });
            }
        }
    }
    for reply in replies {
        let parent = reply.thread_ts.as_deref().unwrap_or(&reply.ts);
        let at = *index.entry(parent).or_insert_with(|| {
            items.push(Item { parent: None, ts: parent, replies: Vec::new() });
            items.len() - 1
        });
        items[at].replies.push(reply);
    }
    // Stable: placeholders land at their parent's time, ties keep capture order.
    items.sort_by_cached_key(|item| time_key(item.ts));
    items
}

fn write_header(
    out: &mut String,
    style: &Style<'_>,
    header: &TranscriptHeader<'_>,
    entries: &[Entry],
    channels: usize,
) {
    let title = format!("{}: {}", one_line(header.incident), one_line(header.title));
    let messages = entries
        .iter()
        .filter(|entry| matches!(entry.kind, EntryKind::Message | EntryKind::FileShare | EntryKind::Other(_)))
        .count();
    let mut people: Vec<String> =
        entries.iter().filter(|entry| !entry.bot).filter_map(user_id).map(|id| style.name(id)).collect();
    people.sort_by_cached_key(|name| (name.to_lowercase(), name.clone()));
    people.dedup();

    let mut fields: Vec<(&str, String)> =
        vec![("Severity", one_line(header.severity)), ("Opened", format!("{} UTC", format_datetime(header.opened_at)))];
    match header.resolved_at {
        Some(resolved) => {
            fields.push(("Resolved", format!("{} UTC", format_datetime(resolved))));
            fields.push(("Duration", format_duration(resolved.duration_since(header.opened_at))));
        }
        None => fields.push(("Resolved", "not yet".to_owned())),
    }
    fields.push(("Ticket", header.ticket.map_or_else(|| "none".to_owned(), one_line)));
    let plural = |n: usize, word: &str| if n == 1 { format!("{n} {word}") } else { format!("{n} {word}s") };
    fields.push(("Messages", format!("{} in {}", messages, plural(channels, "channel"))));
    if !people.is_empty() {
        fields.push(("People", people.join(", ")));
    }

    match style.format {
        Format::Markdown => {
            let _ = writeln!(out, "# {}\n", escape_heading(&title));
            for (label, value) in fields {
                let _ = writeln!(out, "- **{label}:** {}", md_inline(&value));
            }
        }
        Format::Text => {
            let _ = writeln!(out, "{title}\n{}\n", "=".repeat(title.chars().count()));
            for (label, value) in fields {
                let _ = writeln!(out, "{:<10}{value}", format!("{label}:"));
            }
        }
    }
}

fn write_section(out: &mut String, style: &Style<'_>, section: &Section<'_>) {
    let heading = one_line(&section.heading);
    match style.format {
        Format::Markdown => {
            let _ = writeln!(out, "\n## {}\n", escape_heading(&heading));
        }
        Format::Text => {
            let _ = writeln!(out, "\n{heading}\n{}\n", "-".repeat(heading.chars().count()));
        }
    }
    if section.items.is_empty() {
        let _ = writeln!(out, "{}", style.mark("(nothing was captured in this channel)"));
        return;
    }
    for item in &section.items {
        let line = match item.parent {
            Some(entry) => style.entry(entry),
            None => Line { time: style.time(item.ts), lines: vec![style.mark(MISSING_PARENT)] },
        };
        style.write_line(out, &line, 0);
        for reply in &item.replies {
            style.write_line(out, &style.entry(reply), 1);
        }
    }
}

/// One entry ready for layout: its time column and its lines (the first follows the time).
struct Line {
    time: String,
    lines: Vec<String>,
}

impl Style<'_> {
    /// A user's display name, or the id when the name is unknown.
    fn name(&self, id: &str) -> String {
        self.names.get(id).map_or_else(|| one_line(id), |name| one_line(name))
    }

    /// Who posted an entry, as shown before a message: `ana`, `warroom`, `jira (bot)`.
    fn author(&self, entry: &Entry) -> String {
        match (entry.bot, user_id(entry)) {
            (false, Some(id)) => self.name(id),
            (false, None) => "someone".to_owned(),
            (true, Some(id)) if self.names.get(id).is_some_and(|name| name != "warroom") => {
                format!("{} (bot)", self.name(id))
            }
            (true, _) => "warroom".to_owned(),
        }
    }

    /// Who did something, as shown in system and `▶` lines: `@ana`.
    fn actor(&self, entry: &Entry) -> String {
        match user_id(entry) {
            _ if entry.bot => self.author(entry),
            Some(id) => format!("@{}", self.name(id)),
            None => "someone".to_owned(),
        }
    }

    /// A time column: `2026-11-22 08:01:05`, or the raw `ts` when it does not parse.
    fn time(&self, ts: &str) -> String {
        if let Some(at) = parse_ts(ts) {
            return format_datetime(at);
        }
        let raw = one_line(ts);
        match self.format {
            _ if raw.is_empty() => "(no time)".to_owned(),
            // It follows the list marker, where `#` or `>` would still open a block.
            Format::Markdown => escape_line_start(&md_inline(&raw)),
            Format::Text => raw,
        }
    }

    /// Plain text made safe for a single line of this format.
    fn inline(&self, text: &str) -> String {
        match self.format {
            Format::Markdown => md_inline(text),
            Format::Text => text.to_owned(),
        }
    }

    /// An italic system line (joins, leaves, topic changes); `_…_` in plain text too.
    fn system(&self, text: &str) -> String {
        match self.format {
            Format::Markdown => format!("_{}_", md_emphasis(text)),
            Format::Text => format!("_{text}_"),
        }
    }

    /// A remark in parentheses (`(edited at 08:03)`): italic in Markdown, as it is in plain text.
    fn mark(&self, text: &str) -> String {
        match self.format {
            Format::Markdown => format!("_{}_", md_emphasis(text)),
            Format::Text => text.to_owned(),
        }
    }

    /// An author in front of a message: `**ana:**` or `ana:`.
    fn by(&self, author: &str) -> String {
        match self.format {
            Format::Markdown => format!("**{}:**", md_emphasis(author)),
            Format::Text => format!("{author}:"),
        }
    }

    /// One entry's time column and lines.
    fn entry(&self, entry: &Entry) -> Line {
        let time = self.time(&entry.ts);
        if entry.deleted {
            // Never any text of a deleted message: not the last one, not the previous one, no files.
            return Line {
                time,
                lines: vec![format!("{} {}", self.by(&self.author(entry)), self.mark("(message deleted)"))],
            };
        }
        let lines = match &entry.kind {
            EntryKind::Join => vec![self.system(&format!("{} joined the channel", self.actor(entry)))],
            EntryKind::Leave => vec![self.system(&format!("{} left the channel", self.actor(entry)))],
            EntryKind::Topic => {
                let topic = one_line(&self.slack_text(strip_topic_prefix(&entry.text), Format::Text));
                vec![self.system(&format!("{} set the topic: {topic}", self.actor(entry)))]
            }
            EntryKind::ButtonPress => {
                let label = one_line(&self.slack_text(&entry.text, Format::Text));
                let what = if label.is_empty() { "a button".to_owned() } else { format!("\"{label}\"") };
                vec![self.inline(&format!("▶ {} pressed {what}", self.actor(entry)))]
            }
            EntryKind::SlashCommand => {
                let command = one_line(&self.slack_text(&entry.text, Format::Text));
                vec![self.inline(&format!("▶ {} ran {command}", self.actor(entry)))]
            }
            EntryKind::Message | EntryKind::FileShare | EntryKind::Other(_) => self.message(entry),
        };
        Line { time, lines }
    }

    /// A message's lines: author and text, edit mark, files, previous text.
    fn message(&self, entry: &Entry) -> Vec<String> {
        let text = self.slack_text(&entry.text, self.format);
        let mut body = text.lines().map(str::trim).filter(|line| !line.is_empty());
        let mut first = self.by(&self.author(entry));
        let first_line = body.next();
        if let Some(line) = first_line {
            first.push(' ');
            first.push_str(line);
        }
        if let EntryKind::Other(kind) = &entry.kind {
            let _ = write!(first, " {}", self.mark(&format!("({})", one_line(kind))));
        } else if first_line.is_none() && entry.files.is_empty() {
            let _ = write!(first, " {}", self.mark("(no text)"));
        }
        let current = one_line(&self.slack_text(&entry.text, Format::Text));
        let previous = entry
            .previous_text
            .as_deref()
            .map(|previous| one_line(&self.slack_text(previous, Format::Text)))
            .filter(|previous| !previous.is_empty() && *previous != current);
        if entry.edited.is_some() || previous.is_some() {
            let mark = match entry.edited.as_deref().map(|edited| (edited, parse_ts(edited))) {
                Some((_, Some(at))) => format!("(edited at {})", edit_time(at, parse_ts(&entry.ts))),
                Some((raw, None)) if !raw.trim().is_empty() => format!("(edited at {})", one_line(raw)),
                _ => "(edited)".to_owned(),
            };
            let _ = write!(first, " {}", self.mark(&mark));
        }

        let mut lines = vec![first];
        lines.extend(body.map(|line| match self.format {
            Format::Markdown => escape_line_start(line),
            Format::Text => line.to_owned(),
        }));
        for file in &entry.files {
            lines.push(self.file(file));
        }
        if let Some(previous) = previous {
            lines.push(format!("was: \"{}\"", self.inline(&previous)));
        }
        lines
    }

    /// A shared file: `[file: name](url)` or `[file: name <url>]`.
    fn file(&self, file: &FileRef) -> String {
        let name = one_line(&redact(&file.name));
        let url = one_line(&file.url);
        match self.format {
            Format::Markdown if url.is_empty() => format!("file: {}", md_inline(&name)),
            Format::Markdown => format!("[file: {}]({})", md_link_label(&name), md_url(&url)),
            Format::Text if url.is_empty() => format!("[file: {name}]"),
            Format::Text => format!("[file: {name} <{url}>]"),
        }
    }

    /// Slack's message format → readable text in `format`, redacted first. Mentions become
    /// `@name`, channel links `#name`, links `[label](url)` (Markdown) or `label (url)` (text).
    fn slack_text(&self, raw: &str, format: Format) -> String {
        let raw = redact(raw);
        let mut out = String::new();
        let mut rest: &str = &raw;
        while let Some(open) = rest.find('<') {
            push_plain(&mut out, &rest[..open], format);
            let after = &rest[open + 1..];
            let markup = after.find(['>', '<', '\n']).filter(|&close| after[close..].starts_with('>'));
            match markup.and_then(|close| self.markup(&after[..close], format).map(|text| (close, text))) {
                Some((close, text)) => {
                    out.push_str(&text);
                    rest = &after[close + 1..];
                }
                None => {
                    // Not Slack markup: a literal `<`, which must not start HTML in Markdown.
                    out.push_str(if format == Format::Markdown { "\\<" } else { "<" });
                    rest = after;
                }
            }
        }
        push_plain(&mut out, rest, format);
        out
    }

    /// One `<…>` element of Slack's format, or `None` when it is not one (then it stays text).
    fn markup(&self, inner: &str, format: Format) -> Option<String> {
        let (target, label) = match inner.split_once('|') {
            Some((target, label)) => (target, Some(decode_entities(label)).filter(|label| !label.trim().is_empty())),
            None => (inner, None),
        };
        if target.is_empty() || target.starts_with(char::is_whitespace) {
            return None;
        }
        let shown = |text: String| match format {
            Format::Markdown => md_emphasis(&one_line(&text)),
            Format::Text => one_line(&text),
        };
        if let Some(id) = target.strip_prefix('@') {
            let name = match (self.names.get(id), label) {
                (Some(name), _) => name.clone(),
                (None, Some(label)) => label.trim_start_matches('@').to_owned(),
                (None, None) => id.to_owned(),
            };
            return Some(format!("@{}", shown(name)));
        }
        if let Some(id) = target.strip_prefix('#') {
            return Some(format!("#{}", shown(label.unwrap_or_else(|| id.to_owned()))));
        }
        if let Some(special) = target.strip_prefix('!') {
            let text = match special.split_once('^').map_or(special, |(word, _)| word) {
                "here" | "channel" | "everyone" => format!("@{special}"),
                _ => label.unwrap_or_else(|| special.to_owned()),
            };
            return Some(shown(text));
        }
        let url = decode_entities(target);
        let linkable =
            ["http://", "https://", "mailto:"].iter().any(|scheme| url.to_ascii_lowercase().starts_with(scheme));
        if !linkable || url.contains(char::is_whitespace) {
            return None;
        }
        let label = label.filter(|label| *label != url);
        Some(match (format, label) {
            (Format::Markdown, Some(label)) => format!("[{}]({})", md_link_label(&one_line(&label)), md_url(&url)),
            (Format::Markdown, None) => format!("<{}>", md_url(&url)),
            (Format::Text, Some(label)) => format!("{} ({url})", one_line(&label)),
            (Format::Text, None) => url,
        })
    }

    /// Writes one entry at a thread depth (0 top level, 1 reply).
    fn write_line(&self, out: &mut String, line: &Line, depth: usize) {
        match self.format {
            Format::Markdown => {
                let indent = "  ".repeat(depth);
                let _ = write!(out, "{indent}- {} ", line.time);
                // A backslash at the end of a line is a hard break that stays inside the list item.
                let _ = writeln!(out, "{}", line.lines.join(&format!("\\\n{indent}  ")));
            }
            Format::Text => {
                let indent = "    ".repeat(depth);
                let prefix = format!("{indent}{}  ", line.time);
                let hang = " ".repeat(prefix.chars().count());
                let _ = writeln!(out, "{prefix}{}", line.lines.join(&format!("\n{hang}")));
            }
        }
    }
}

/// The entry's user id, if it has a non-blank one.
fn user_id(entry: &Entry) -> Option<&str> {
    entry.user.as_deref().filter(|id| !id.trim().is_empty())
}

/// Sort key for a `ts`: parsed times in order, then unparsable ones (by their text).
fn time_key(ts: &str) -> (bool, Option<Timestamp>, String) {
    let at = parse_ts(ts);
    (at.is_none(), at, ts.to_owned())
}

/// Parses Slack's `ts` (`"1700000000.000100"`, seconds and up to six fraction digits).
fn parse_ts(ts: &str) -> Option<Timestamp> {
    let (secs, fraction) = ts.split_once('.').unwrap_or((ts, ""));
    let digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    if secs.is_empty() || secs.len() > 12 || fraction.len() > 6 || !digits(secs) || !digits(fraction) {
        return None;
    }
    let micros: i32 = format!("{fraction:0<6}").parse().ok()?;
    Timestamp::new(secs.parse().ok()?, micros * 1000).ok()
}

/// `2026-11-22 08:01:05` in UTC.
fn format_datetime(at: Timestamp) -> String {
    let t = Offset::UTC.to_datetime(at);
    format!("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", t.year(), t.month(), t.day(), t.hour(), t.minute(), t.second())
}

/// The time of an edit: `08:03` on the message's day, with the date on another day.
fn edit_time(edited: Timestamp, posted: Option<Timestamp>) -> String {
    let t = Offset::UTC.to_datetime(edited);
    let same_day = posted.is_some_and(|posted| Offset::UTC.to_datetime(posted).date() == t.date());
    if same_day {
        format!("{:02}:{:02}", t.hour(), t.minute())
    } else {
        format!("{:04}-{:02}-{:02} {:02}:{:02}", t.year(), t.month(), t.day(), t.hour(), t.minute())
    }
}

/// A duration as people say it: `1h 12m`, `2d 3h`, `under a minute`.
fn format_duration(duration: SignedDuration) -> String {
    let minutes = duration.as_secs().max(0) / 60;
    match (minutes / (24 * 60), minutes / 60 % 24, minutes % 60) {
        (0, 0, 0) => "under a minute".to_owned(),
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// A topic change's text without Slack's "<@U…> set the channel topic: " sentence, if present.
fn strip_topic_prefix(text: &str) -> &str {
    text.split_once("set the channel topic: ").map_or(text, |(_, topic)| topic)
}

/// Appends plain Slack text: entities decoded, unsafe characters dropped, and in Markdown `<tag`
/// escaped so it cannot become HTML.
fn push_plain(out: &mut String, text: &str, format: Format) {
    let decoded = decode_entities(text);
    let mut chars = decoded.chars().filter(|&c| !is_hidden(c)).peekable();
    while let Some(c) = chars.next() {
        match c {
            '\t' => out.push(' '),
            '<' if format == Format::Markdown
                && chars.peek().is_some_and(|next| next.is_ascii_alphabetic() || matches!(next, '/' | '!' | '?')) =>
            {
                out.push_str("\\<");
            }
            _ => out.push(c),
        }
    }
}

/// Slack's three escapes back to characters (`&amp;` last, so `&amp;lt;` stays `&lt;`).
fn decode_entities(text: &str) -> String {
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

/// Control characters other than newline and tab, and bidi overrides that could disguise text.
fn is_hidden(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t') || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Folds a string onto one line: hidden characters dropped, whitespace runs become one space.
fn one_line(text: &str) -> String {
    let visible: String = text.chars().filter(|&c| !is_hidden(c)).collect();
    visible.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Escapes a Markdown line that would otherwise start a block (heading, quote, list, fence,
/// thematic break, setext underline, table).
fn escape_line_start(line: &str) -> String {
    let starts_block = line.starts_with(['#', '>', '-', '*', '+', '=', '`', '~', '|', '_']);
    if starts_block {
        return format!("\\{line}");
    }
    // An ordered list item: digits then `.` or `)`.
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 && matches!(line.as_bytes().get(digits), Some(b'.' | b')')) {
        return format!("{}\\{}", &line[..digits], &line[digits..]);
    }
    line.to_owned()
}

/// Text for one line of Markdown outside emphasis: `<tag` escaped.
fn md_inline(text: &str) -> String {
    let mut out = String::new();
    push_plain(&mut out, text, Format::Markdown);
    out
}

/// Text inside `**…**` or `_…_`: characters that would end or nest emphasis are escaped too.
fn md_emphasis(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().filter(|&c| !is_hidden(c)) {
        if matches!(c, '\\' | '*' | '_' | '`' | '[' | ']' | '<' | '>') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A link label: brackets and backslashes escaped, `<tag` escaped.
fn md_link_label(text: &str) -> String {
    md_inline(&text.replace('\\', "\\\\").replace('[', "\\[").replace(']', "\\]"))
}

/// A link destination with the characters that would end it percent-encoded.
fn md_url(url: &str) -> String {
    url.replace(' ', "%20").replace('(', "%28").replace(')', "%29").replace('<', "%3C").replace('>', "%3E")
}

/// A heading's text: inline-safe, and a trailing `#` escaped (it would close the heading).
fn escape_heading(text: &str) -> String {
    let text = md_inline(text);
    match text.strip_suffix('#') {
        Some(rest) => format!("{rest}\\#"),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use insta::assert_snapshot;

    use super::*;

    /// 2026-11-22 08:00:00 UTC.
    const START: i64 = 1_795_334_400;
    const DELETED_TEXT: &str = "wrong channel, ignore: my home address is 12 Elm St";

    /// A `ts` `secs` seconds after 08:00:00 (with a fixed micro part, as Slack has).
    fn ts(secs: i64) -> String {
        format!("{}.{:06}", START + secs, 100 + secs)
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(START + secs).expect("a valid time")
    }

    fn entry(channel: &str, secs: i64, user: &str, kind: EntryKind, text: &str) -> Entry {
        Entry {
            channel: channel.to_owned(),
            ts: ts(secs),
            thread_ts: None,
            user: Some(user.to_owned()),
            bot: false,
            kind,
            text: text.to_owned(),
            edited: None,
            previous_text: None,
            deleted: false,
            files: Vec::new(),
        }
    }

    fn message(channel: &str, secs: i64, user: &str, text: &str) -> Entry {
        entry(channel, secs, user, EntryKind::Message, text)
    }

    fn reply(channel: &str, secs: i64, parent: i64, user: &str, text: &str) -> Entry {
        Entry { thread_ts: Some(ts(parent)), ..message(channel, secs, user, text) }
    }

    fn bot(channel: &str, secs: i64, text: &str) -> Entry {
        Entry { bot: true, ..message(channel, secs, "UBOT", text) }
    }

    fn names() -> BTreeMap<String, String> {
        [("U1", "ana"), ("U2", "bob"), ("U3", "chen"), ("UBOT", "warroom")]
            .into_iter()
            .map(|(id, name)| (id.to_owned(), name.to_owned()))
            .collect()
    }

    fn channels() -> Vec<Channel> {
        vec![
            Channel { id: "C2".to_owned(), name: "inc-1-checkout-r1".to_owned(), round: 1 },
            Channel { id: "C1".to_owned(), name: "inc-1-checkout".to_owned(), round: 0 },
        ]
    }

    fn header() -> TranscriptHeader<'static> {
        TranscriptHeader {
            incident: "INC-1",
            title: "Checkout p99 latency above SLO",
            severity: "sev2",
            opened_at: at(0),
            resolved_at: Some(at(112 * 60)),
            ticket: Some("WR-7"),
        }
    }

    fn slack_token() -> String {
        format!("xox{}-{}-{}", "b", "2345678901-8765432109", "QwErTyUiOpAsDfGh")
    }

    fn db_password() -> String {
        format!("{}-{}", "hunter2", "prod")
    }

    /// One incident with every kind of entry, in scrambled order.
    fn entries() -> Vec<Entry> {
        let mut edited = message("C1", 180, "U2", "Rolling back payments to v41 now");
        edited.edited = Some(ts(250));
        edited.previous_text = Some("Rolling back payments to v40 now".to_owned());

        let mut deleted = message("C1", 200, "U3", DELETED_TEXT);
        deleted.deleted = true;
        deleted.previous_text = Some(DELETED_TEXT.to_owned());
        deleted.edited = Some(ts(210));

        let mut file = entry("C1", 240, "U3", EntryKind::FileShare, "heap dump from before the rollback");
        file.files = vec![FileRef {
            name: "heap-payments-7f9c.hprof".to_owned(),
            url: "https://files.slack.com/files-pri/T1-F1/heap-payments-7f9c.hprof".to_owned(),
        }];

        let mut broken = message("C2", 0, "U2", "this one has a broken timestamp");
        broken.ts = "not-a-ts".to_owned();

        vec![
            message(
                "C2",
                100 * 60 + 60,
                "U1",
                "Same OOM again: v41 has the lower limit too. <https://grafana.example.com/d/pay|payments dashboard>",
            ),
            bot("C1", 5, "Incident INC-1 opened: *Checkout p99 latency above SLO* (sev2). On call: <@U1>"),
            reply("C1", 100, 65, "U2", "payments-7f9c restarted 3 times, OOMKilled"),
            entry("C1", 30, "U1", EntryKind::Join, "<@U1> has joined the channel"),
            message(
                "C1",
                65,
                "U1",
                "Looking. p99 is 4s since the 07:55 deploy, <@U2> can you check the payments pods?",
            ),
            reply("C1", 130, 65, "U3", "memory limit was lowered in v42 &amp; nobody noticed"),
            entry("C1", 40, "U1", EntryKind::Topic, "<@U1> set the channel topic: sev2 · checkout latency · WR-7"),
            entry("C1", 150, "U1", EntryKind::ButtonPress, "Acknowledge"),
            edited,
            deleted,
            file,
            message("C1", 300, "U1", &format!("bot token is {} and the db password={}", slack_token(), db_password())),
            message("C1", 330, "U2", "# not a heading"),
            message("C1", 335, "U3", "> not a quote either"),
            message(
                "C1",
                345,
                "U4",
                "&gt; quoting <@U9>:\n# step 1\n- drain the node\n1. cordon\n```\nkubectl rollout undo deploy/payments\n```\n<script>alert(1)</script>",
            ),
            entry("C1", 360, "U1", EntryKind::SlashCommand, "/incident note rollback done, error rate back to 0.2%"),
            reply("C1", 390, 350, "U2", "agreed, closing this thread"),
            entry("C1", 420, "U3", EntryKind::Leave, ""),
            bot(
                "C2",
                100 * 60,
                "Incident INC-1 reopened: the problem fired again. Previous channel: <#C1|inc-1-checkout>",
            ),
            broken,
            entry("C2", 110 * 60, "U1", EntryKind::ButtonPress, "Resolve"),
        ]
    }

    fn transcript(format: Format) -> String {
        render(&header(), &channels(), &entries(), &names(), format)
    }

    #[test]
    fn the_markdown_transcript_reads_like_the_incident() {
        assert_snapshot!("markdown", transcript(Format::Markdown));
    }

    #[test]
    fn the_text_transcript_reads_like_the_incident() {
        assert_snapshot!("text", transcript(Format::Text));
    }

    #[test]
    fn a_deleted_message_shows_no_text_old_or_new() {
        for format in [Format::Markdown, Format::Text] {
            let out = transcript(format);
            assert!(!out.contains("home address"), "{format:?}: the deleted text leaked:\n{out}");
            assert!(out.contains("(message deleted)"), "{format:?}: the deletion is not marked");
        }
    }

    #[test]
    fn tokens_and_passwords_never_reach_the_transcript() {
        for format in [Format::Markdown, Format::Text] {
            let out = transcript(format);
            assert!(!out.contains(&slack_token()), "{format:?}: the Slack token leaked");
            assert!(!out.contains(&db_password()), "{format:?}: the password leaked");
            assert!(out.contains("password=[redacted]"), "{format:?}: the redaction is not visible");
        }
    }

    #[test]
    fn user_text_cannot_open_a_heading_a_quote_a_list_a_fence_or_html() {
        let out = transcript(Format::Markdown);
        let headings: Vec<&str> = out.lines().filter(|line| line.starts_with('#')).collect();
        assert_eq!(
            headings,
            ["# INC-1: Checkout p99 latency above SLO", "## #inc-1-checkout", "## #inc-1-checkout-r1 (reopened)"]
        );
        for line in out.lines().filter(|line| !headings.contains(line)) {
            let content = line.trim_start().strip_prefix("- ").unwrap_or(line.trim_start());
            let opens_block = content.starts_with(['#', '>', '`', '~', '<'])
                || ["- ", "* ", "+ ", "---", "==="].iter().any(|marker| content.starts_with(marker));
            assert!(!opens_block, "a line opens a block: {line:?}");
        }
        assert!(!out.replace("\\<", "").contains("<script"), "raw HTML got through");
    }

    #[test]
    fn an_unparsable_ts_sorts_last_and_is_shown_as_it_is() {
        let out = transcript(Format::Text);
        let last_entry = out.lines().last().expect("some output");
        assert_eq!(last_entry, "not-a-ts  bob: this one has a broken timestamp");
    }

    #[test]
    fn entries_of_a_channel_missing_from_the_list_still_appear() {
        let stray = message("C9", 10, "U1", "posted in a channel nobody listed");
        let out = render(&header(), &channels(), &[stray], &names(), Format::Text);
        assert!(out.contains("#C9 (channel not in the incident's list)"), "{out}");
        assert!(out.contains("posted in a channel nobody listed"), "{out}");
    }

    #[test]
    fn an_open_incident_has_no_resolved_time_and_no_duration() {
        let open = TranscriptHeader { resolved_at: None, ticket: None, ..header() };
        let out = render(&open, &[], &[], &names(), Format::Text);
        assert!(out.contains("Resolved: not yet"), "{out}");
        assert!(out.contains("Ticket:   none"), "{out}");
        assert!(!out.contains("Duration"), "{out}");
    }

    #[test]
    fn slack_markup_becomes_readable_text() {
        let style = Style { format: Format::Markdown, names: &names() };
        let table = [
            ("<@U1> and <@U404>", "@ana and @U404", "known and unknown mention"),
            ("<@U404|old-name>", "@old-name", "legacy mention with a label"),
            ("see <#C1|inc-1-checkout>", "see #inc-1-checkout", "channel link"),
            ("<!here> <!subteam^S1|@sre>", "@here @sre", "broadcasts and user groups"),
            (
                "<https://x.test/a b|the (docs)>",
                "\\<https://x.test/a b|the (docs)>",
                "a URL with a space is not a link",
            ),
            ("<https://x.test/a_(b)|the [docs]>", "[the \\[docs\\]](https://x.test/a_%28b%29)", "link with label"),
            ("<https://x.test/>", "<https://x.test/>", "bare link"),
            ("<javascript:alert(1)|click>", "\\<javascript:alert(1)|click>", "no links but http(s) and mailto"),
            ("a &lt; b &amp;&amp; c &gt; d", "a < b && c > d", "Slack's escapes"),
            ("&lt;img src=x&gt;", "\\<img src=x>", "an HTML tag stays text"),
            ("&amp;lt;", "&lt;", "an escaped escape is decoded once"),
            ("unclosed <@U1", "unclosed \\<@U1", "unclosed markup"),
            ("tab\there\u{1b}[31m\u{202e}", "tab here[31m", "control and bidi characters"),
        ];
        for (input, expected, what) in table {
            assert_eq!(style.slack_text(input, Format::Markdown), expected, "{what}");
        }
    }

    #[test]
    fn markdown_line_starts_that_open_a_block_are_escaped() {
        let table = [
            ("# h", "\\# h"),
            ("> q", "\\> q"),
            ("- l", "\\- l"),
            ("* l", "\\* l"),
            ("+ l", "\\+ l"),
            ("```", "\\```"),
            ("~~~", "\\~~~"),
            ("===", "\\==="),
            ("| a | b |", "\\| a | b |"),
            ("12. step", "12\\. step"),
            ("3) step", "3\\) step"),
            ("2026 was fine", "2026 was fine"),
            ("plain", "plain"),
            ("", ""),
        ];
        for (input, expected) in table {
            assert_eq!(escape_line_start(input), expected, "{input:?}");
        }
    }

    #[test]
    fn slack_ts_parses_to_microseconds_and_anything_else_does_not() {
        let table = [
            ("1795334400.000100", Some((1_795_334_400, 100_000))),
            ("1795334400.5", Some((1_795_334_400, 500_000_000))),
            ("1795334400", Some((1_795_334_400, 0))),
            ("1795334400.1234567", None),
            ("-1.000000", None),
            ("1.2.3", None),
            ("", None),
            (".5", None),
            ("99999999999999999999.000001", None),
            ("１２.５", None),
        ];
        for (input, expected) in table {
            let parsed = parse_ts(input).map(|at| (at.as_second(), at.subsec_nanosecond()));
            assert_eq!(parsed, expected, "{input:?}");
        }
    }

    #[test]
    fn edits_on_another_day_carry_the_date() {
        assert_eq!(edit_time(at(3 * 60), Some(at(0))), "08:03");
        assert_eq!(edit_time(at(24 * 3600), Some(at(0))), "2026-11-23 08:00");
    }

    #[test]
    fn durations_read_like_people_say_them() {
        let table = [
            (30, "under a minute"),
            (12 * 60, "12m"),
            (3600, "1h"),
            (72 * 60, "1h 12m"),
            (27 * 3600, "1d 3h"),
            (-60, "under a minute"),
        ];
        for (secs, expected) in table {
            assert_eq!(format_duration(SignedDuration::from_secs(secs)), expected, "{secs}s");
        }
    }

    #[test]
    fn odd_input_renders_without_panicking() {
        let odd = [
            Entry { ts: String::new(), thread_ts: Some(String::new()), user: None, ..message("C1", 0, "U1", "") },
            Entry { thread_ts: Some("garbage".to_owned()), ..message("C1", 1, "U1", "<<<>>>&&;<@><#>") },
            Entry { thread_ts: Some(ts(2)), ..message("C1", 2, "U1", "a parent of itself") },
            Entry { edited: Some("later".to_owned()), ..message("C1", 3, "U1", "é\u{0}😀\r\n\n\n   ") },
            Entry { kind: EntryKind::Other("pinned_item\n# x".to_owned()), ..message("", 4, "", "<https://|>") },
            Entry {
                bot: true,
                user: None,
                files: vec![FileRef { name: "]]((".to_owned(), url: String::new() }],
                ..message("C1", 5, "U1", "")
            },
            Entry { ts: "99999999999999.999999".to_owned(), ..message("C1", 6, "U1", "far future") },
        ];
        let weird_channels = [
            Channel { id: "C1".to_owned(), name: "# evil\nname".to_owned(), round: 0 },
            Channel { id: "C1".to_owned(), name: "twice".to_owned(), round: 3 },
        ];
        for format in [Format::Markdown, Format::Text] {
            let out = render(&header(), &weird_channels, &odd, &BTreeMap::new(), format);
            assert!(out.contains("far future"), "{format:?}:\n{out}");
            assert!(!out.contains('\u{0}'), "{format:?}: a control character got through");
            assert_eq!(out.matches("twice").count(), 0, "{format:?}: a channel listed twice is rendered once");
        }
    }
}
