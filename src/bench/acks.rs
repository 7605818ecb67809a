//! `acks`: Socket Mode envelopes at rising rates over two connections, into an incident's
//! channel: `message` events (captured into the transcript) and, one in `slash_every`,
//! `/incident note …` slash commands (stored, a job enqueued). The sim records when it sent each
//! envelope and when its ack came back.
//!
//! Each rate runs open loop for `step` (envelopes are sent on schedule whether or not earlier
//! ones were acked), then waits for the stragglers; an envelope not acked within
//! [`DRAIN_TIMEOUT`] counts as lost. Jobs are left to settle before the next rate.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;

use super::Plan;
use super::report::{Latencies, Report, ms};
use super::setup::{ANA, InProcess, PEOPLE, STEP_TIMEOUT, Scratch, ready_rooms, start_sim};
use crate::sim::{EnvelopeKind, SimSlack};

/// How long after the last envelope of a rate its acks may still arrive.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// The ack latency a rate must stay under.
const ACK_P99_TARGET: Duration = Duration::from_millis(100);
/// Socket Mode connections warroom keeps open.
const CONNECTIONS: u32 = 2;

/// What one rate gave.
struct Step {
    rate: u32,
    sent: usize,
    /// The rate the sender actually achieved.
    sent_rate: f64,
    latencies: Latencies,
    lost: usize,
}

impl Step {
    fn passed(&self) -> bool {
        self.lost == 0 && self.latencies.p99() < ACK_P99_TARGET
    }
}

pub async fn run(plan: &Plan) -> anyhow::Result<Report> {
    let sim = start_sim().await?;
    let scratch = Scratch::create("acks")?;
    let result = measure(plan, &sim, &scratch).await;
    sim.shutdown();
    result
}

async fn measure(plan: &Plan, sim: &SimSlack, scratch: &Scratch) -> anyhow::Result<Report> {
    let app =
        InProcess::start(plan, sim, scratch.path(), |settings| settings.slack.socket_connections = CONNECTIONS).await?;
    let result = steps(plan, sim, &app).await;
    let stopped = app.stop().await;
    let steps = result?;
    stopped?;

    let mut report = Report::new(format!(
        "acks — Socket Mode envelopes at rising rates over {CONNECTIONS} connections ({} s per rate)",
        plan.step.as_secs_f64()
    ));
    report.setup("server: warroom in the bench process; simulated Slack (the sender) in the same process");
    report.setup(format!(
        "envelopes: `message` events in the incident channel, one in {} a `/incident note` slash command",
        plan.slash_every
    ));
    for step in &steps {
        report.row(
            format!("ack at {}/s: p50 / p99 / max, lost", step.rate),
            format!(
                "{} / {} / {}, lost {} of {} (sent at {:.0}/s)",
                ms(step.latencies.p50()),
                ms(step.latencies.p99()),
                ms(step.latencies.max()),
                step.lost,
                step.sent,
                step.sent_rate
            ),
            "p99 < 100 ms, none lost",
            Some(step.passed()),
        );
    }
    // The highest rate such that it and every lower one passed.
    let best = steps.iter().take_while(|s| s.passed()).last().map_or(0, |s| s.rate);
    report.row(
        "highest rate with ack p99 < 100 ms and none lost",
        format!("{best}/s"),
        "≥ 1,000/s",
        Some(best >= 1000),
    );
    report.if_missed(
        "slack-morphism reads the next frame of a connection only after the callback of the previous one \
         returned, so each connection acks one envelope at a time and every ack waits for the group commit \
         that stores its event (an fsync with synchronous=FULL); the simulated Slack shares the 2 cores",
    );
    Ok(report)
}

async fn steps(plan: &Plan, sim: &SimSlack, app: &InProcess) -> anyhow::Result<Vec<Step>> {
    if !sim.wait_for_connections(CONNECTIONS as usize, STEP_TIMEOUT).await {
        bail!("warroom did not open {CONNECTIONS} Socket Mode connections within {} s", STEP_TIMEOUT.as_secs());
    }
    let ready_before = ready_rooms(sim);
    let incident = app.api.open_incident("acks", "bench acks").await?;
    if !sim.wait_for(STEP_TIMEOUT, |s| ready_rooms(s) > ready_before).await {
        bail!("the war room of {incident} was not ready within {} s", STEP_TIMEOUT.as_secs());
    }
    app.settle(STEP_TIMEOUT).await?;
    let room = app.api.get_json(&format!("/api/incidents/{incident}")).await?;
    let channel = room["channel"]["id"].as_str().context("the incident has no channel")?.to_owned();

    let mut steps = Vec::with_capacity(plan.rates.len());
    let mut serial = 0_u64;
    for &rate in &plan.rates {
        let count = ((f64::from(rate) * plan.step.as_secs_f64()).round() as usize).max(1);
        let mut sent = Vec::with_capacity(count);
        let started = tokio::time::Instant::now();
        for k in 0..count {
            tokio::time::sleep_until(started + Duration::from_secs_f64(k as f64 / f64::from(rate))).await;
            serial += 1;
            sent.push(send(plan, sim, &channel, k, serial).await);
        }
        let sent_rate = count as f64 / started.elapsed().as_secs_f64();
        let (latencies, lost) = collect(sim, sent).await;
        steps.push(Step { rate, sent: count, sent_rate, latencies, lost });
        app.settle(Duration::from_secs(120)).await.with_context(|| format!("after {rate}/s"))?;
    }
    Ok(steps)
}

/// Sends envelope `k` of a rate: a slash command every `slash_every`, a message otherwise.
async fn send(plan: &Plan, sim: &SimSlack, channel: &str, k: usize, serial: u64) -> String {
    let user = PEOPLE[k % PEOPLE.len()].0;
    if k % plan.slash_every == plan.slash_every - 1 {
        let payload = sim.slash_command_payload(channel, ANA, &format!("note bench note {serial}"));
        return sim.send_envelope(EnvelopeKind::SlashCommands, payload).await;
    }
    // Distinct, increasing timestamps far from the wall clock the sim uses for its own messages.
    let ts = format!("1900000000.{serial:06}");
    sim.send_event(
        json!({"type": "message", "channel": channel, "user": user, "text": format!("bench message {serial}"),
        "ts": ts, "channel_type": "channel"}),
    )
    .await
}

/// Waits for the acks of `sent`; their latencies and how many never came.
async fn collect(sim: &SimSlack, sent: Vec<String>) -> (Latencies, usize) {
    let mut waiting: HashSet<String> = sent.into_iter().collect();
    let mut latencies = HashMap::with_capacity(waiting.len());
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    loop {
        for ack in sim.acks() {
            if waiting.remove(&ack.envelope_id) {
                latencies.insert(ack.envelope_id, ack.after);
            }
        }
        if waiting.is_empty() || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (Latencies::from(latencies.into_values().collect::<Vec<_>>()), waiting.len())
}
