//! The `/incident` slash command: the text a person typed, parsed into a [`SlashCommand`].
//!
//! One table, [`SUBCOMMANDS`], defines every subcommand: its name, argument synopsis, one-line
//! description, where it works and the function that parses its arguments. The parser dispatches
//! on it, usage errors quote it and [`help`] prints it, so the three cannot drift apart.
//!
//! Slack sends the text with `&`, `<` and `>` escaped and mentions as `<@U…|name>` tokens. Free
//! text (titles, notes, summaries, services, parameter values) is turned back into what the
//! person typed, so renderers escape it exactly once.
//!
//! [`UsageError`] and [`help`] are plain text meant for `mrkdwn`: they use backticks for code and
//! must go through [`escape`](super::blocks::escape) before they are sent, like any other text.

use std::fmt;
use std::str::FromStr;

use crate::domain::{IncidentStatus, Severity};

/// One `/incident` subcommand, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlashCommand {
    /// `help`: list the subcommands.
    Help,
    /// `declare <title> [--sev N] [--service S]`: open an incident by hand.
    Declare { title: String, severity: Option<Severity>, service: Option<String> },
    /// `ack`: acknowledge the incident.
    Ack,
    /// `status <investigating|identified|monitoring>`: move to a middle status.
    Status(IncidentStatus),
    /// `note [--public] <text>`: add a note to the timeline.
    Note { text: String, public: bool },
    /// `assign @user`: make someone the assignee.
    Assign(SlackUserId),
    /// `lead @user`: make someone the incident lead.
    Lead(SlackUserId),
    /// `severity <1-4|sevN>`: change the severity.
    Severity(Severity),
    /// `resolve [summary]`: resolve the incident.
    Resolve { summary: Option<String> },
    /// `ticket`: show the ticket.
    Ticket,
    /// `timeline`: show the timeline.
    Timeline,
    /// `oncall [service]`: show who is on call.
    OnCall { service: Option<String> },
    /// `run <runbook> [name=value …] [--again]`: run a runbook (`--again` confirms running one
    /// that already ran for this incident).
    Run { runbook: String, params: Vec<(String, String)>, again: bool },
    /// `runbooks`: list the runbooks offered here.
    Runbooks,
}

/// A Slack user id (`U…` or `W…`), parsed from a mention or a bare id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SlackUserId(String);

/// Why a string is not a Slack user id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a Slack user id")]
pub struct SlackUserIdError(String);

/// Text that does not parse as an `/incident` subcommand: what is wrong and the usage to follow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}\nUsage: {usage}")]
pub struct UsageError {
    /// What is wrong, in one sentence.
    pub message: String,
    /// How the subcommand is typed, such as `/incident severity <1-4|sev1-sev4>`.
    pub usage: String,
}

/// The definition of one subcommand: the single source for parsing, usage and help.
#[derive(Debug, Clone, Copy)]
pub struct Subcommand {
    /// What people type after `/incident`, lowercase.
    pub name: &'static str,
    /// The arguments, as usage and help show them.
    pub synopsis: &'static str,
    /// One line for the help.
    pub description: &'static str,
    /// Whether it works outside an incident channel.
    pub anywhere: bool,
    /// Parses the arguments.
    parse: fn(&Args<'_>) -> Result<SlashCommand, UsageError>,
}

/// Every subcommand, in the order help lists them.
pub const SUBCOMMANDS: &[Subcommand] = &[
    Subcommand {
        name: "help",
        synopsis: "",
        description: "Show this help.",
        anywhere: true,
        parse: |_| Ok(SlashCommand::Help),
    },
    Subcommand {
        name: "declare",
        synopsis: "<title> [--sev <1-4>] [--service <name>]",
        description: "Declare an incident and open its war room.",
        anywhere: true,
        parse: parse_declare,
    },
    Subcommand {
        name: "oncall",
        synopsis: "[service]",
        description: "Show who is on call, for one service or for this incident's.",
        anywhere: true,
        parse: parse_oncall,
    },
    Subcommand {
        name: "ack",
        synopsis: "",
        description: "Acknowledge the incident: you are on it.",
        anywhere: false,
        parse: |args| args.none(SlashCommand::Ack),
    },
    Subcommand {
        name: "status",
        synopsis: "<investigating|identified|monitoring>",
        description: "Set the status; the first move out of open counts as the acknowledgement.",
        anywhere: false,
        parse: parse_status,
    },
    Subcommand {
        name: "severity",
        synopsis: "<1-4|sev1-sev4>",
        description: "Change the severity.",
        anywhere: false,
        parse: parse_severity,
    },
    Subcommand {
        name: "note",
        synopsis: "[--public] <text>",
        description: "Add a note to the timeline and the ticket; `--public` makes the comment public.",
        anywhere: false,
        parse: parse_note,
    },
    Subcommand {
        name: "assign",
        synopsis: "@person",
        description: "Make someone the assignee.",
        anywhere: false,
        parse: |args| args.person().map(SlashCommand::Assign),
    },
    Subcommand {
        name: "lead",
        synopsis: "@person",
        description: "Make someone the incident lead.",
        anywhere: false,
        parse: |args| args.person().map(SlashCommand::Lead),
    },
    Subcommand {
        name: "runbooks",
        synopsis: "",
        description: "List the runbooks you can run here.",
        anywhere: false,
        parse: |args| args.none(SlashCommand::Runbooks),
    },
    Subcommand {
        name: "run",
        synopsis: "<runbook> [name=value …] [--again]",
        description: "Run a runbook; quote values with spaces: `reason=\"disk full\"`.",
        anywhere: false,
        parse: parse_run,
    },
    Subcommand {
        name: "ticket",
        synopsis: "",
        description: "Show the incident's ticket.",
        anywhere: false,
        parse: |args| args.none(SlashCommand::Ticket),
    },
    Subcommand {
        name: "timeline",
        synopsis: "",
        description: "Show what happened so far.",
        anywhere: false,
        parse: |args| args.none(SlashCommand::Timeline),
    },
    Subcommand {
        name: "resolve",
        synopsis: "[summary]",
        description: "Resolve the incident: closes the ticket and archives the channel.",
        anywhere: false,
        parse: parse_resolve,
    },
];

/// Parses the text after `/incident`. Empty text asks for help.
pub fn parse(text: &str) -> Result<SlashCommand, UsageError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(SlashCommand::Help);
    }
    let (word, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let Some(subcommand) = find(word) else {
        return Err(unknown_subcommand(word));
    };
    (subcommand.parse)(&Args { subcommand, rest: rest.trim() })
}

/// The help text, generated from [`SUBCOMMANDS`].
#[must_use]
pub fn help() -> String {
    let mut lines = vec!["*/incident* subcommands".to_owned()];
    for (heading, anywhere) in [("In any channel:", true), ("In an incident channel:", false)] {
        lines.push(String::new());
        lines.push(heading.to_owned());
        lines.extend(
            SUBCOMMANDS
                .iter()
                .filter(|s| s.anywhere == anywhere)
                .map(|s| format!("• `{}`: {}", s.usage(), s.description)),
        );
    }
    lines.join("\n")
}

impl SlashCommand {
    /// The subcommand's name, as typed.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Help => "help",
            Self::Declare { .. } => "declare",
            Self::Ack => "ack",
            Self::Status(_) => "status",
            Self::Note { .. } => "note",
            Self::Assign(_) => "assign",
            Self::Lead(_) => "lead",
            Self::Severity(_) => "severity",
            Self::Resolve { .. } => "resolve",
            Self::Ticket => "ticket",
            Self::Timeline => "timeline",
            Self::OnCall { .. } => "oncall",
            Self::Run { .. } => "run",
            Self::Runbooks => "runbooks",
        }
    }

    /// Whether it only makes sense inside an incident's channel (everything but `declare`,
    /// `help` and `oncall`), as [`SUBCOMMANDS`] says.
    #[must_use]
    pub fn needs_incident_channel(&self) -> bool {
        // Every name is in the table (a test checks it); an unknown one errs on the safe side.
        find(self.name()).is_none_or(|subcommand| !subcommand.anywhere)
    }
}

impl SlackUserId {
    /// Parses `<@U123ABC>`, `<@U123ABC|ana>` (a mention as Slack sends it) or a bare `U123ABC`.
    pub fn parse(input: &str) -> Result<Self, SlackUserIdError> {
        let error = || SlackUserIdError(input.to_owned());
        let trimmed = input.trim();
        let id = match trimmed.strip_prefix("<@") {
            Some(mention) => {
                let inner = mention.strip_suffix('>').ok_or_else(error)?;
                inner.split_once('|').map_or(inner, |(id, _)| id)
            }
            None => trimmed,
        };
        let mut chars = id.chars();
        let valid = matches!(chars.next(), Some('U' | 'W'))
            && id.len() >= 3
            && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if !valid {
            return Err(error());
        }
        Ok(Self(id.to_owned()))
    }

    /// The id, such as `U123ABC`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for SlackUserId {
    type Err = SlackUserIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for SlackUserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Subcommand {
    /// How it is typed: `/incident <name> <synopsis>`.
    #[must_use]
    pub fn usage(&self) -> String {
        if self.synopsis.is_empty() {
            format!("/incident {}", self.name)
        } else {
            format!("/incident {} {}", self.name, self.synopsis)
        }
    }

    fn error(&self, message: impl Into<String>) -> UsageError {
        UsageError { message: message.into(), usage: self.usage() }
    }
}

/// The arguments of one subcommand: the text after its name.
struct Args<'a> {
    subcommand: &'static Subcommand,
    rest: &'a str,
}

impl Args<'_> {
    /// The whitespace-separated words, as Slack sent them.
    fn words(&self) -> Vec<&str> {
        self.rest.split_whitespace().collect()
    }

    /// `command` if there are no arguments.
    fn none(&self, command: SlashCommand) -> Result<SlashCommand, UsageError> {
        if self.rest.is_empty() {
            return Ok(command);
        }
        Err(self.subcommand.error(format!(
            "`{}` takes no arguments, but got `{}`",
            self.subcommand.name,
            echo(self.rest)
        )))
    }

    /// The single word, if there is exactly one.
    fn one(&self, missing: &str) -> Result<&str, UsageError> {
        match self.words().as_slice() {
            [word] => Ok(word),
            [] => Err(self.subcommand.error(missing)),
            [_, extra @ ..] => Err(self.subcommand.error(format!(
                "`{}` takes one argument; remove `{}`",
                self.subcommand.name,
                echo(&extra.join(" "))
            ))),
        }
    }

    /// The person mentioned, for `assign` and `lead`.
    fn person(&self) -> Result<SlackUserId, UsageError> {
        let name = self.subcommand.name;
        // A mention's label may hold spaces (`<@U1|Ana Lima>`): then it is the whole argument.
        let whole_mention = self.rest.starts_with("<@") && self.rest.find('>') == Some(self.rest.len() - 1);
        let word = if whole_mention {
            self.rest
        } else {
            self.one(&format!("`{name}` needs a person: type @ and pick them from the autocomplete list"))?
        };
        SlackUserId::parse(word).map_err(|_| {
            if word.starts_with('@') {
                self.subcommand.error(format!(
                    "`{}` reached warroom as plain text, not as a person: type @ and pick them \
                     from the autocomplete list so Slack sends their id",
                    echo(word)
                ))
            } else {
                self.subcommand
                    .error(format!("`{}` is not a person: type @ and pick them from the autocomplete list", echo(word)))
            }
        })
    }
}

fn parse_declare(args: &Args<'_>) -> Result<SlashCommand, UsageError> {
    let error = |message: String| args.subcommand.error(message);
    let mut title = Vec::new();
    let mut severity = None;
    let mut service = None;
    let mut words = args.words().into_iter();
    while let Some(word) = words.next() {
        let Some(flag) = word.strip_prefix("--").filter(|f| !f.is_empty()) else {
            title.push(word);
            continue;
        };
        let (name, inline) = match flag.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (flag, None),
        };
        let name = name.to_ascii_lowercase();
        let value = inline.or_else(|| words.next()).filter(|v| !v.is_empty());
        match name.as_str() {
            "sev" | "severity" => {
                let value = value.ok_or_else(|| error("`--sev` needs a level from 1 to 4".to_owned()))?;
                let level = Severity::parse_level(value).map_err(|_| {
                    error(format!("`--sev {}` is not a level: use 1 to 4 or sev1 to sev4", echo(value)))
                })?;
                if severity.replace(level).is_some() {
                    return Err(error("`--sev` is given twice".to_owned()));
                }
            }
            "service" => {
                let value = value.ok_or_else(|| error("`--service` needs a service name".to_owned()))?;
                if service.replace(plain(value)).is_some() {
                    return Err(error("`--service` is given twice".to_owned()));
                }
            }
            _ => {
                return Err(error(format!(
                    "`--{}` is not an option of `declare`: use `--sev` or `--service`",
                    echo(&name)
                )));
            }
        }
    }
    let title = plain(&title.join(" "));
    if title.is_empty() {
        return Err(error("`declare` needs a title".to_owned()));
    }
    Ok(SlashCommand::Declare { title, severity, service })
}

fn parse_oncall(args: &Args<'_>) -> Result<SlashCommand, UsageError> {
    if args.rest.is_empty() {
        return Ok(SlashCommand::OnCall { service: None });
    }
    let service = args.one("")?;
    Ok(SlashCommand::OnCall { service: Some(plain(service)) })
}

fn parse_status(args: &Args<'_>) -> Result<SlashCommand, UsageError> {
    let word = args.one("`status` needs one of investigating, identified or monitoring")?.to_ascii_lowercase();
    match word.parse::<IncidentStatus>() {
        Ok(status @ (IncidentStatus::Investigating | IncidentStatus::Identified | IncidentStatus::Monitoring)) => {
            Ok(SlashCommand::Status(status))
        }
        Ok(IncidentStatus::Resolved) => Err(args.subcommand.error("To resolve, use `/incident resolve [summary]`")),
        Ok(IncidentStatus::Open) => Err(args
            .subcommand
            .error("An incident cannot go back to open: use investigating, identified or monitoring")),
        Err(_) => Err(args
            .subcommand
            .error(format!("`{}` is not a status: use investigating, identified or monitoring", echo(&word)))),
    }
}

fn parse_severity(args: &Args<'_>) -> Result<SlashCommand, UsageError> {
    let word = args.one("`severity` needs a level from 1 to 4")?;
    Severity::parse_level(word).map(SlashCommand::Severity).map_err(|_| {
        args.subcommand.error(format!("`{}` is not a level: `severity` needs a level from 1 to 4", echo(word)))
    })
}

fn parse_note(args: &Args<'_>) -> Result<SlashCommand, UsageError> {
    let (public, text) = match args.rest.split_once(char::is_whitespace) {
        Some((first, rest)) if first.eq_ignore_ascii_case("--public") => (true, rest),
        None if args.rest.eq_ignore_ascii_case("--public") => (true, ""),
        _ => (false, args.rest),
    };
    let text = plain(text.trim());
    if text.is_empty() {
        return Err(args.subcommand.error("`note` needs some text"));
    }
    Ok(SlashCommand::Note { text, public })
}

fn parse_resolve(args: &Args<'_>) -> Result<SlashCommand, UsageError> {
    let summary = plain(args.rest);
    Ok(SlashCommand::Resolve { summary: (!summary.is_empty()).then_some(summary) })
}

fn parse_run(args: &Args<'_>) -> Result<SlashCommand, UsageError> {
    let error = |message: String| args.subcommand.error(message);
    let words = split_quoted(&plain(args.rest))
        .ok_or_else(|| error("A quote is not closed: end the value with `\"`".to_owned()))?;
    let mut words = words.into_iter();
    let runbook =
        words.next().ok_or_else(|| error("`run` needs a runbook: `/incident runbooks` lists them".to_owned()))?;
    if runbook.contains('=') || !runbook.chars().all(is_name_char) {
        return Err(error(format!(
            "`{}` is not a runbook name: the name comes first, then name=value parameters",
            echo(&runbook)
        )));
    }
    let mut params: Vec<(String, String)> = Vec::new();
    let mut again = false;
    for word in words {
        if word == "--again" {
            again = true;
            continue;
        }
        let Some((name, value)) = word.split_once('=') else {
            return Err(error(format!("`{}` is not a parameter: write name=value", echo(&word))));
        };
        if name.is_empty() {
            return Err(error(format!("`{}` has no parameter name: write name=value", echo(&word))));
        }
        if !name.chars().all(is_name_char) {
            return Err(error(format!("`{}` is not a parameter name: use letters, digits, `-` and `_`", echo(name))));
        }
        if params.iter().any(|(known, _)| known == name) {
            return Err(error(format!("Parameter `{name}` is given twice")));
        }
        params.push((name.to_owned(), value.to_owned()));
    }
    Ok(SlashCommand::Run { runbook, params, again })
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// The subcommand typed as `word`, in any case.
fn find(word: &str) -> Option<&'static Subcommand> {
    SUBCOMMANDS.iter().find(|subcommand| subcommand.name.eq_ignore_ascii_case(word))
}

fn unknown_subcommand(word: &str) -> UsageError {
    let lower = word.to_lowercase();
    let closest = SUBCOMMANDS
        .iter()
        .map(|subcommand| (edit_distance(&lower, subcommand.name), subcommand.name))
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance);
    let message = match closest {
        Some((_, name)) => {
            format!("`{}` is not a subcommand: did you mean `{name}`? `/incident help` lists them all", echo(word))
        }
        None => format!("`{}` is not a subcommand: `/incident help` lists them all", echo(word)),
    };
    let names: Vec<&str> = SUBCOMMANDS.iter().map(|s| s.name).collect();
    UsageError { message, usage: format!("/incident <{}>", names.join("|")) }
}

/// The Levenshtein distance, in characters. Long words are far from every subcommand anyway, so
/// they are not compared at all.
fn edit_distance(a: &str, b: &str) -> usize {
    const LONGEST: usize = 32;
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len() > LONGEST || b.len() > LONGEST {
        return usize::MAX;
    }
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

/// Input quoted back in an error: what the person typed, on one line, short, without backticks
/// that would end the code span around it.
fn echo(input: &str) -> String {
    const LONGEST: usize = 40;
    let text = plain(input).replace('`', "'");
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() <= LONGEST {
        return text;
    }
    let kept: String = text.chars().take(LONGEST - 1).collect();
    format!("{kept}…")
}

/// Turns Slack-formatted text back into what the person typed: `&lt;` `&gt;` `&amp;` are
/// unescaped, `<@U1|ana>` becomes `@ana`, `<#C1|ops>` becomes `#ops`, `<!here>` becomes `@here`
/// and `<https://x|label>` becomes `label (https://x)`.
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(['<', '&']) {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        if rest.starts_with('<') {
            if let Some(end) = rest.find('>') {
                out.push_str(&plain_token(&rest[1..end]));
                rest = &rest[end + 1..];
                continue;
            }
        } else if let Some((entity, decoded)) =
            [("&amp;", '&'), ("&lt;", '<'), ("&gt;", '>')].into_iter().find(|(entity, _)| rest.starts_with(entity))
        {
            out.push(decoded);
            rest = &rest[entity.len()..];
            continue;
        }
        // A lone `<` or `&`: keep it as typed.
        out.push_str(&rest[..1]);
        rest = &rest[1..];
    }
    out.push_str(rest);
    out.trim().to_owned()
}

/// The readable form of one `<…>` token (without its brackets).
fn plain_token(token: &str) -> String {
    let (target, label) = match token.split_once('|') {
        Some((target, label)) => (target, Some(label)),
        None => (token, None),
    };
    let unescape = |text: &str| text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
    if let Some(id) = target.strip_prefix('@') {
        return format!("@{}", label.unwrap_or(id));
    }
    if let Some(id) = target.strip_prefix('#') {
        return format!("#{}", label.unwrap_or(id));
    }
    if let Some(special) = target.strip_prefix('!') {
        return match label {
            Some(label) => unescape(label),
            None => format!("@{}", special.split('^').next().unwrap_or(special)),
        };
    }
    let url = unescape(target);
    match label.map(unescape) {
        Some(label) if label != url && Some(label.as_str()) != url.split_once("://").map(|p| p.1) => {
            format!("{label} ({url})")
        }
        _ => url,
    }
}

/// Splits on whitespace, keeping "double quoted" stretches together (straight or curly quotes,
/// which some keyboards substitute). `None` when a quote is left open.
fn split_quoted(text: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' | '“' | '”' => {
                quoted = !quoted;
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if quoted {
        return None;
    }
    if in_word {
        words.push(word);
    }
    Some(words)
}

#[cfg(test)]
mod tests {
    use insta::assert_snapshot;

    use super::*;

    fn user(id: &str) -> SlackUserId {
        SlackUserId::parse(id).expect("a valid test user id")
    }

    fn declare(title: &str, severity: Option<Severity>, service: Option<&str>) -> SlashCommand {
        SlashCommand::Declare { title: title.to_owned(), severity, service: service.map(str::to_owned) }
    }

    fn run(runbook: &str, params: &[(&str, &str)]) -> SlashCommand {
        SlashCommand::Run {
            runbook: runbook.to_owned(),
            params: params.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect(),
            again: false,
        }
    }

    fn note(text: &str, public: bool) -> SlashCommand {
        SlashCommand::Note { text: text.to_owned(), public }
    }

    #[test]
    fn every_subcommand_parses_into_its_variant() {
        use SlashCommand as C;
        let table = [
            ("", C::Help, "empty text asks for help"),
            ("   ", C::Help, "blank text asks for help"),
            ("help", C::Help, "help"),
            ("help declare", C::Help, "words after help are ignored"),
            ("HELP", C::Help, "subcommands are case-insensitive"),
            ("declare Checkout is down", declare("Checkout is down", None, None), "a bare title"),
            (
                "declare --sev 2 Checkout is down --service checkout",
                declare("Checkout is down", Some(Severity::Sev2), Some("checkout")),
                "flags may come anywhere",
            ),
            (
                "declare Checkout --SEV=sev1 down",
                declare("Checkout down", Some(Severity::Sev1), None),
                "flags take `=` and any case",
            ),
            (
                "declare Latency &gt; 2s &amp; rising",
                declare("Latency > 2s & rising", None, None),
                "Slack's escapes are undone in the title",
            ),
            (
                "declare Payments down -- again",
                declare("Payments down -- again", None, None),
                "a lone `--` is part of the title",
            ),
            ("ack", C::Ack, "ack"),
            ("Ack", C::Ack, "mixed case"),
            ("status identified", C::Status(IncidentStatus::Identified), "status"),
            ("status MONITORING", C::Status(IncidentStatus::Monitoring), "the status word is case-insensitive"),
            ("status investigating", C::Status(IncidentStatus::Investigating), "investigating"),
            ("note Rolled back to 2026.11.2", note("Rolled back to 2026.11.2", false), "a note"),
            ("note --public We are rolling back", note("We are rolling back", true), "a public note"),
            (
                "note asked <@U0ANA|ana> to check <https://grafana/d/1|the dashboard>",
                note("asked @ana to check the dashboard (https://grafana/d/1)", false),
                "mentions and links become readable text",
            ),
            ("assign <@U0ANA>", C::Assign(user("U0ANA")), "assign a mention"),
            ("assign <@U0ANA|ana>", C::Assign(user("U0ANA")), "a mention with its label"),
            ("assign <@W0ANA|Ana Lima>", C::Assign(user("W0ANA")), "a label with a space, enterprise user"),
            ("lead U0BEN", C::Lead(user("U0BEN")), "a bare user id"),
            ("severity 2", C::Severity(Severity::Sev2), "a level"),
            ("severity sev1", C::Severity(Severity::Sev1), "sevN"),
            ("resolve", C::Resolve { summary: None }, "resolve"),
            (
                "resolve Rolled back; errors at 0.1%",
                C::Resolve { summary: Some("Rolled back; errors at 0.1%".to_owned()) },
                "resolve with a summary",
            ),
            ("ticket", C::Ticket, "ticket"),
            ("timeline", C::Timeline, "timeline"),
            ("oncall", C::OnCall { service: None }, "oncall"),
            ("oncall checkout", C::OnCall { service: Some("checkout".to_owned()) }, "oncall for a service"),
            ("run rollback", run("rollback", &[]), "a runbook"),
            (
                r#"run restart-service service=checkout reason="disk full" force="""#,
                run("restart-service", &[("service", "checkout"), ("reason", "disk full"), ("force", "")]),
                "parameters, quoted and empty values",
            ),
            ("run rollback reason=“bad deploy”", run("rollback", &[("reason", "bad deploy")]), "curly quotes"),
            (
                "run rollback url=http://x?a=1&amp;b=2",
                run("rollback", &[("url", "http://x?a=1&b=2")]),
                "Slack's escapes are undone in values",
            ),
            ("runbooks", C::Runbooks, "runbooks"),
        ];
        for (input, expected, why) in table {
            assert_eq!(parse(input), Ok(expected), "{why}: `{input}`");
        }
    }

    /// Inputs that must be refused, what the message must say, and why.
    const REFUSED: &[(&str, &str, &str)] = &[
        ("reslove", "did you mean `resolve`?", "a typo gets a suggestion"),
        ("ACKK", "did you mean `ack`?", "suggestions ignore case"),
        ("frobnicate", "`/incident help` lists them all", "no close subcommand"),
        ("declare", "needs a title", "declare without a title"),
        ("declare --sev 2", "needs a title", "flags but no title"),
        ("declare Down --sev", "needs a level from 1 to 4", "--sev without a value"),
        ("declare Down --sev 5", "`--sev 5` is not a level", "--sev out of range"),
        ("declare Down --sev 1 --sev 2", "given twice", "--sev twice"),
        ("declare Down --service", "needs a service name", "--service without a value"),
        ("declare Down --team ops", "`--team` is not an option", "an unknown flag"),
        ("ack now", "`ack` takes no arguments, but got `now`", "extra arguments"),
        ("ticket WR-3", "takes no arguments", "ticket takes none"),
        ("timeline all", "takes no arguments", "timeline takes none"),
        ("runbooks all", "takes no arguments", "runbooks takes none"),
        ("status", "needs one of investigating, identified or monitoring", "no status"),
        ("status resolved", "To resolve, use `/incident resolve [summary]`", "resolve has its own subcommand"),
        ("status open", "cannot go back to open", "open is not a target"),
        ("status fixed", "`fixed` is not a status", "an unknown status"),
        ("status identified now", "takes one argument; remove `now`", "extra words"),
        ("note", "needs some text", "an empty note"),
        ("note --public", "needs some text", "an empty public note"),
        ("assign", "needs a person", "nobody to assign"),
        ("assign @ana", "`@ana` reached warroom as plain text", "an unescaped mention"),
        ("lead ana", "`ana` is not a person", "a plain name"),
        ("lead <@U0ANA> <@U0BEN>", "takes one argument", "two people"),
        ("assign <@c0ana>", "is not a person", "not a user id"),
        ("severity", "`severity` needs a level from 1 to 4", "no level"),
        ("severity critical", "`critical` is not a level", "source words are not levels"),
        ("severity 5", "`5` is not a level", "out of range"),
        ("oncall checkout payments", "takes one argument", "two services"),
        ("run", "`run` needs a runbook", "no runbook"),
        ("run rollback version", "`version` is not a parameter", "a parameter without `=`"),
        ("run rollback =1", "`=1` has no parameter name", "an empty parameter name"),
        ("run rollback a.b=1", "`a.b` is not a parameter name", "a name with a dot"),
        ("run rollback a=1 a=2", "Parameter `a` is given twice", "a repeated parameter"),
        (r#"run rollback reason="disk"#, "A quote is not closed", "an open quote"),
        ("run env=prod", "is not a runbook name", "parameters without a runbook"),
    ];

    #[test]
    fn refused_input_gets_a_message_that_says_what_to_fix() {
        for (input, expected, why) in REFUSED {
            let error = parse(input).expect_err(why);
            assert!(
                error.message.contains(expected),
                "{why}: `{input}` gave {:?}, expected it to contain {expected:?}",
                error.message
            );
            assert!(error.usage.starts_with("/incident"), "{why}: usage {:?}", error.usage);
        }
    }

    #[test]
    fn every_usage_error_reads_well() {
        let replies: Vec<String> = REFUSED
            .iter()
            .map(|(input, _, _)| match parse(input) {
                Ok(command) => format!("/incident {input}\n→ unexpectedly parsed: {command:?}"),
                Err(error) => format!("/incident {input}\n→ {error}"),
            })
            .collect();
        assert_snapshot!("usage_errors", replies.join("\n\n"));
    }

    #[test]
    fn a_usage_error_displays_its_message_then_the_usage() {
        let error = parse("severity").expect_err("a level is required");
        assert_eq!(
            error.to_string(),
            "`severity` needs a level from 1 to 4\nUsage: /incident severity <1-4|sev1-sev4>"
        );
    }

    #[test]
    fn help_lists_every_subcommand() {
        let help = help();
        for subcommand in SUBCOMMANDS {
            let line = format!("• `{}`: {}", subcommand.usage(), subcommand.description);
            assert!(help.contains(&line), "help is missing `{}`", subcommand.name);
        }
        assert_snapshot!("help", help);
    }

    #[test]
    fn the_table_covers_every_variant_once() {
        let examples = [
            "help",
            "declare x",
            "ack",
            "status identified",
            "note x",
            "assign U0ANA",
            "lead U0ANA",
            "severity 1",
            "resolve",
            "ticket",
            "timeline",
            "oncall",
            "run x",
            "runbooks",
        ];
        assert_eq!(examples.len(), SUBCOMMANDS.len(), "one example per subcommand");
        for example in examples {
            let command = parse(example).expect("the example parses");
            assert!(find(command.name()).is_some(), "`{}` is missing from SUBCOMMANDS", command.name());
            assert!(example.starts_with(command.name()), "`{example}` parsed as `{}`", command.name());
        }
        let mut names: Vec<&str> = SUBCOMMANDS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SUBCOMMANDS.len(), "subcommand names are unique");
    }

    #[test]
    fn only_declare_help_and_oncall_work_outside_an_incident_channel() {
        let anywhere: Vec<&str> = ["help", "declare x", "oncall", "ack", "resolve", "run x"]
            .into_iter()
            .filter(|text| !parse(text).expect("the example parses").needs_incident_channel())
            .collect();
        assert_eq!(anywhere, ["help", "declare x", "oncall"]);
    }

    #[test]
    fn slack_user_ids_parse_only_from_mentions_and_bare_ids() {
        let table = [
            ("<@U123ABC>", Some("U123ABC")),
            ("<@U123ABC|ana>", Some("U123ABC")),
            ("U123ABC", Some("U123ABC")),
            ("W0ENTERPRISE", Some("W0ENTERPRISE")),
            ("U1", None),
            ("u123abc", None),
            ("C123ABC", None),
            ("<@U123ABC", None),
            ("<#C123ABC|ops>", None),
            ("@ana", None),
            ("U123-ABC", None),
            ("", None),
        ];
        for (input, expected) in table {
            assert_eq!(SlackUserId::parse(input).ok().as_ref().map(SlackUserId::as_str), expected, "input `{input}`");
        }
    }

    #[test]
    fn slack_formatting_turns_back_into_what_was_typed() {
        let table = [
            ("a &amp; b &lt;c&gt;", "a & b <c>"),
            ("ping <!here> and <!subteam^S1|@sre>", "ping @here and @sre"),
            ("in <#C1|ops> and <#C2>", "in #ops and #C2"),
            ("see <https://x.io/a?b=1&amp;c=2>", "see https://x.io/a?b=1&c=2"),
            ("see <https://x.io|x.io>", "see https://x.io"),
            ("a < b & c", "a < b & c"),
            ("unclosed <@U1", "unclosed <@U1"),
        ];
        for (input, expected) in table {
            assert_eq!(plain(input), expected, "input `{input}`");
        }
    }

    #[test]
    fn no_input_makes_the_parser_panic() {
        let nasty = [
            "\u{0}",
            "é",
            "run \"",
            "run “",
            "declare --",
            "declare --=",
            "note --public\n",
            "assign <@",
            "assign <@>",
            "assign <@|>",
            "<",
            "&",
            "&amp",
            "status 🔥",
        ]
        .map(str::to_owned);
        let long = ["ä".repeat(10_000), "reslove".repeat(1_000), "run x ".repeat(1_000)];
        for input in nasty.iter().chain(&long) {
            let _ = parse(input);
        }
    }
}
