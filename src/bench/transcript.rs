//! `transcript`: an incident whose channel holds many captured messages and threads, then
//! `/incident resolve`; the time until the transcript is attached to the ticket, and the
//! `conversations.history`/`conversations.replies` calls made (none: no gap was recorded).
//!
//! The lines are stored through the store's own capture path (what the Socket Mode listener
//! calls for every message), eight at a time, which also gives the capture rate.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;

use super::Plan;
use super::report::{Report, ms};
use super::setup::{ANA, InProcess, PEOPLE, STEP_TIMEOUT, Scratch, poll, ready_rooms, start_sim};
use crate::domain::IncidentId;
use crate::domain::transcript::{Capture, Captured, EntryKind, Origin};
use crate::sim::{EnvelopeKind, SimSlack};

/// Replies in each thread that has replies.
const REPLIES_PER_THREAD: usize = 3;
/// Captures in flight at once (the pool has eight connections).
const CAPTURE_CONCURRENCY: usize = 8;
/// The target from resolve to transcript attached.
const TARGET: Duration = Duration::from_secs(2);

pub async fn run(plan: &Plan) -> anyhow::Result<Report> {
    let sim = start_sim().await?;
    let scratch = Scratch::create("transcript")?;
    let result = measure(plan, &sim, &scratch).await;
    sim.shutdown();
    result
}

/// The shape of the conversation that was stored.
#[derive(Debug, Default, PartialEq, Eq)]
struct Shape {
    messages: usize,
    threads: usize,
    threads_with_replies: usize,
    replies: usize,
}

async fn measure(plan: &Plan, sim: &SimSlack, scratch: &Scratch) -> anyhow::Result<Report> {
    let app = InProcess::start(plan, sim, scratch.path(), |_| {}).await?;
    let result = scenario(plan, sim, &app).await;
    let stopped = app.stop().await;
    let report = result?;
    stopped?;
    Ok(report)
}

async fn scenario(plan: &Plan, sim: &SimSlack, app: &InProcess) -> anyhow::Result<Report> {
    if !sim.wait_for_connections(1, STEP_TIMEOUT).await {
        bail!("warroom did not connect over Socket Mode within {} s", STEP_TIMEOUT.as_secs());
    }
    let incident = app.api.open_incident("transcript", "bench transcript").await?;
    if !sim.wait_for(STEP_TIMEOUT, |s| ready_rooms(s) > 0).await {
        bail!("the war room of {incident} was not ready within {} s", STEP_TIMEOUT.as_secs());
    }
    app.settle(STEP_TIMEOUT).await?;
    let room = app.api.get_json(&format!("/api/incidents/{incident}")).await?;
    let channel = room["channel"]["id"].as_str().context("the incident has no channel")?.to_owned();
    let ticket = room["ticket"]["key"].as_str().context("the incident has no ticket")?.to_owned();
    let id: IncidentId = incident.parse().map_err(|e| anyhow::anyhow!("incident id {incident}: {e}"))?;

    let (captures, shape) = conversation(&channel, plan.messages, plan.threads);
    let store = &app.services.store;
    let now = app.services.clock.now();
    let started = Instant::now();
    let mut stored = futures::stream::iter(captures.iter())
        .map(|capture| store.capture(id, capture, Origin::Live, now))
        .buffer_unordered(CAPTURE_CONCURRENCY);
    while let Some(result) = stored.next().await {
        result.context("capturing a message")?;
    }
    let capture_time = started.elapsed();

    let scraped = |sim: &SimSlack| {
        sim.calls()
            .iter()
            .filter(|c| c.method == "conversations.history" || c.method == "conversations.replies")
            .count()
    };
    let scraped_before = scraped(sim);
    let resolve = sim.slash_command_payload(&channel, ANA, "resolve bench over");
    let resolved = Instant::now();
    let envelope = sim.send_envelope(EnvelopeKind::SlashCommands, resolve).await;
    let attachment =
        poll("the transcript on the ticket", Duration::from_secs(120), Duration::from_millis(10), || async {
            let ticket = app.api.get_json(&format!("/api/tickets/{ticket}")).await?;
            let found = ticket["attachments"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|a| a["name"].as_str().is_some_and(|n| n.ends_with("-transcript.md")));
            Ok(found.cloned())
        })
        .await?;
    let attached_after = resolved.elapsed();
    if sim.wait_for_ack(&envelope, STEP_TIMEOUT).await.is_none() {
        bail!("`/incident resolve` was not acked");
    }
    app.settle(Duration::from_secs(60)).await?;
    let scraped_calls = scraped(sim) - scraped_before;

    let mut report = Report::new(format!(
        "transcript — {} captured messages, {} threads ({} with replies), then resolve",
        shape.messages, shape.threads, shape.threads_with_replies
    ));
    report.setup("server: warroom in the bench process; simulated Slack in the same process");
    report.setup(format!(
        "stored through `Store::capture` ({CAPTURE_CONCURRENCY} at a time): {} top-level messages, {} replies, {} people",
        shape.messages - shape.replies,
        shape.replies,
        PEOPLE.len()
    ));
    let rate = captures.len() as f64 / capture_time.as_secs_f64();
    report.row("capture rate (live path, group-committed)", format!("{rate:.0} lines/s"), "", None);
    report.row(
        "resolve → transcript attached",
        ms(attached_after),
        &format!("< {} s", TARGET.as_secs()),
        Some(attached_after < TARGET),
    );
    let size = attachment["size"].as_u64().unwrap_or(0);
    report.row("transcript size", format!("{:.1} KiB", size as f64 / 1024.0), "", None);
    report.row("history/replies calls", scraped_calls.to_string(), "0", Some(scraped_calls == 0));
    report.if_missed(
        "resolve runs the summary post, then the transcript job: one query for every line, rendering, and the \
         attachment written to the desk in SQLite",
    );
    Ok(report)
}

/// `messages` lines in `channel`, `threads` of the top-level ones starting threads and every
/// third of those with [`REPLIES_PER_THREAD`] replies right after it, in time order.
fn conversation(channel: &str, messages: usize, threads: usize) -> (Vec<Capture>, Shape) {
    let threaded = threads.div_ceil(3);
    let replies = (threaded * REPLIES_PER_THREAD).min(messages / 2);
    let top_level = messages - replies;
    let spacing = (top_level / threads.max(1)).max(1);
    // Timestamps from now on, one microsecond apart: Slack's `ts` format, strictly increasing.
    let base = jiff::Timestamp::now().as_microsecond();
    let mut next = 0_i64;
    let mut ts = || {
        next += 1;
        let micros = base + next;
        format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
    };
    let line = |ts: String, thread_ts: Option<String>, n: usize| {
        Capture::New(Captured {
            channel: channel.to_owned(),
            ts,
            thread_ts,
            user: Some(PEOPLE[n % PEOPLE.len()].0.to_owned()),
            bot: false,
            kind: EntryKind::Message,
            text: format!("message {n}: checked the dashboards, error rate still {}%", n % 17),
            files: Vec::new(),
        })
    };
    let mut out = Vec::with_capacity(messages);
    let mut shape = Shape::default();
    let mut budget = replies;
    for j in 0..top_level {
        let parent = ts();
        out.push(line(parent.clone(), None, out.len()));
        if j % spacing == 0 && shape.threads < threads {
            if shape.threads % 3 == 0 && budget > 0 {
                let n = REPLIES_PER_THREAD.min(budget);
                for _ in 0..n {
                    out.push(line(ts(), Some(parent.clone()), out.len()));
                }
                budget -= n;
                shape.replies += n;
                shape.threads_with_replies += 1;
            }
            shape.threads += 1;
        }
    }
    shape.messages = out.len();
    (out, shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_conversation_has_the_requested_shape() {
        let (lines, shape) = conversation("C1", 10_000, 1_000);
        assert_eq!(lines.len(), 10_000);
        assert_eq!(shape, Shape { messages: 10_000, threads: 1_000, threads_with_replies: 334, replies: 1_002 });
        let timestamps: Vec<&str> = lines
            .iter()
            .map(|l| match l {
                Capture::New(c) => c.ts.as_str(),
                _ => "",
            })
            .collect();
        assert!(timestamps.windows(2).all(|w| w[0] < w[1]), "timestamps increase");
    }
}
