//! `idle`: a `warroom serve` child process connected to the simulated workspace (both Socket
//! Mode connections open) and left alone; its resident memory afterwards.

use anyhow::bail;

use super::Plan;
use super::report::{Report, mib};
use super::setup::{STEP_TIMEOUT, Scratch, Server, start_sim};
use crate::sim::SimSlack;

/// Socket Mode connections `serve` opens by default.
const CONNECTIONS: usize = 2;

pub async fn run(plan: &Plan) -> anyhow::Result<Report> {
    let sim = start_sim().await?;
    let scratch = Scratch::create("idle")?;
    let result = measure(plan, &sim, &scratch).await;
    sim.shutdown();
    result
}

async fn measure(plan: &Plan, sim: &SimSlack, scratch: &Scratch) -> anyhow::Result<Report> {
    let server = Server::start(plan, sim, scratch.path()).await?;
    let result = async {
        if !sim.wait_for_connections(CONNECTIONS, STEP_TIMEOUT).await {
            bail!("serve did not open {CONNECTIONS} Socket Mode connections within {} s", STEP_TIMEOUT.as_secs());
        }
        let connected = server.memory()?;
        let calls_before = sim.calls().len();
        tokio::time::sleep(plan.idle).await;
        let idle = server.memory()?;
        Ok((connected, idle, sim.calls().len() - calls_before))
    }
    .await;
    let describe = server.describe();
    let stopped = server.stop().await;
    let (connected, idle, calls) = result?;
    stopped?;

    let secs = plan.idle.as_secs_f64();
    let mut report = Report::new(format!("idle — serve connected ({CONNECTIONS} Socket Mode connections) and idle"));
    report.setup(format!("server: {describe}"));
    report.row("RSS once connected", mib(connected.rss_kib), "", None);
    report.row(format!("RSS after {secs:.0} s idle"), mib(idle.rss_kib), "< 30 MiB", Some(idle.rss_kib < 30 * 1024));
    report.row("peak RSS (VmHWM)", mib(idle.hwm_kib), "", None);
    report.row(format!("Web API calls while idle ({secs:.0} s)"), calls.to_string(), "", None);
    report.if_missed(
        "resident memory is mostly the tokio worker threads' stacks and the allocator's per-thread arenas, \
         the SQLite page cache of each pooled connection and the TLS/HTTP client state",
    );
    Ok(report)
}
