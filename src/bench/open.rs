//! `open`: one problem → war room ready, one after the other, first with an instant simulated
//! Slack, then with a fixed latency on every Web API call.
//!
//! "Ready" is the last step of the open job: the context message is pinned, after the channel
//! and the ticket (concurrently), then invitations, topic and context message (concurrently).
//! Each sample runs from sending the webhook to the sim seeing the pin.

use std::time::{Duration, Instant};

use anyhow::bail;

use super::Plan;
use super::report::{Latencies, Report, ms};
use super::setup::{InProcess, STEP_TIMEOUT, Scratch, ready_rooms, start_sim};
use crate::sim::SimSlack;

pub async fn run(plan: &Plan) -> anyhow::Result<Report> {
    let sim = start_sim().await?;
    let scratch = Scratch::create("open")?;
    let result = measure(plan, &sim, &scratch).await;
    sim.shutdown();
    result
}

/// One phase's samples and the Web API calls it made.
struct Phase {
    latencies: Latencies,
    calls_per_room: f64,
}

async fn measure(plan: &Plan, sim: &SimSlack, scratch: &Scratch) -> anyhow::Result<Report> {
    let app = InProcess::start(plan, sim, scratch.path(), |_| {}).await?;
    let result = async {
        if !sim.wait_for_connections(1, STEP_TIMEOUT).await {
            bail!("warroom did not connect over Socket Mode within {} s", STEP_TIMEOUT.as_secs());
        }
        let instant = phase(plan, sim, &app, "instant", Duration::ZERO).await?;
        let slow = phase(plan, sim, &app, "slow", plan.latency).await?;
        Ok((instant, slow))
    }
    .await;
    let stopped = app.stop().await;
    let (instant, slow) = result?;
    stopped?;

    let mut report = Report::new(format!(
        "open — problem → war room ready (channel, on-call invited, context pinned, ticket), {} times sequentially",
        plan.rooms
    ));
    report.setup("server: warroom in the bench process; simulated Slack in the same process");
    report.setup(format!(
        "Web API calls per war room: {:.1} (instant), {:.1} (slow)",
        instant.calls_per_room, slow.calls_per_room
    ));
    let latency = ms(plan.latency);
    let budget = Duration::from_millis(400) * (plan.latency.as_millis() as u32).max(1) / 100;
    report.row("ready, 0 ms/call, p50", ms(instant.latencies.p50()), "", None);
    report.row(
        "ready, 0 ms/call, p99 (warroom's own overhead)",
        ms(instant.latencies.p99()),
        "< 10 ms",
        Some(instant.latencies.p99() < Duration::from_millis(10)),
    );
    report.row("ready, 0 ms/call, max", ms(instant.latencies.max()), "", None);
    report.row(format!("ready, {latency}/call, p50"), ms(slow.latencies.p50()), "", None);
    report.row(
        format!("ready, {latency}/call, p99"),
        ms(slow.latencies.p99()),
        &format!("≤ {}", ms(budget)),
        Some(slow.latencies.p99() <= budget),
    );
    let trips = slow.latencies.p50().as_secs_f64() / plan.latency.as_secs_f64().max(1e-9);
    report.row(format!("ready, {latency}/call, max"), ms(slow.latencies.max()), "", None);
    report.row("sequential Slack round trips (p50 ÷ latency)", format!("{trips:.1}"), "3", Some(trips < 3.5));
    report.if_missed(
        "with an instant Slack the time is warroom's own: four commits in a row (the delivery, the job's \
         claim, the new channel, the invited responders; about 0.5 ms each when idle, 1 ms under load) and \
         rendering, on 2 cores shared with the simulated workspace, which serves every call from this process; \
         with latency, every extra sequential Web API call adds one round trip",
    );
    Ok(report)
}

/// Opens `plan.rooms` war rooms one after the other with `latency` per Web API call.
async fn phase(plan: &Plan, sim: &SimSlack, app: &InProcess, name: &str, latency: Duration) -> anyhow::Result<Phase> {
    sim.set_latency(latency);
    let calls_before = sim.calls().len();
    let mut samples = Vec::with_capacity(plan.rooms);
    for i in 0..plan.rooms {
        let ready_before = ready_rooms(sim);
        let started = Instant::now();
        let incident = app.api.open_incident(&format!("open-{name}-{i}"), &format!("bench open {name} {i}")).await?;
        if !sim.wait_for(STEP_TIMEOUT, |s| ready_rooms(s) > ready_before).await {
            bail!("the war room of {incident} was not ready within {} s", STEP_TIMEOUT.as_secs());
        }
        samples.push(started.elapsed());
        // Whatever follows the pin (the job's bookkeeping, join events) finishes before the next.
        app.settle(STEP_TIMEOUT).await?;
    }
    sim.set_latency(Duration::ZERO);
    let calls = sim.calls().len() - calls_before;
    Ok(Phase { latencies: Latencies::from(samples), calls_per_room: calls as f64 / plan.rooms as f64 })
}
