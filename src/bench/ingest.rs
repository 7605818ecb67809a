//! `ingest`: Alertmanager deliveries over many group keys from concurrent HTTP clients to a
//! `warroom serve` child process, which also opens a war room per incident meanwhile.
//!
//! Delivery `i` carries group key `i % keys`, so the first `keys` deliveries open incidents and
//! the rest repeat them; the alerts' fingerprints rotate over three sets per key, so repeats are
//! a mix of `updated` (new alerts) and `duplicate`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use reqwest::StatusCode;
use serde_json::Value;

use super::Plan;
use super::report::{Latencies, Report, mib, ms};
use super::setup::{Scratch, Server, poll, ready_rooms, start_sim};

/// A real Alertmanager 0.25 webhook: two alerts of one group firing.
const TEMPLATE: &str = include_str!("../../tests/fixtures/alerts/alertmanager_01_firing.json");

/// How long the war rooms of every incident may take to open after the load.
const ROOMS_TIMEOUT: Duration = Duration::from_secs(300);

/// What one client saw.
#[derive(Default)]
struct ClientResult {
    latencies: Vec<Duration>,
    outcomes: BTreeMap<String, usize>,
    errors: usize,
    first_error: Option<String>,
}

pub async fn run(plan: &Plan) -> anyhow::Result<Report> {
    let sim = start_sim().await?;
    let scratch = Scratch::create("ingest")?;
    let result = measure(plan, &sim, &scratch).await;
    sim.shutdown();
    result
}

async fn measure(plan: &Plan, sim: &crate::sim::SimSlack, scratch: &Scratch) -> anyhow::Result<Report> {
    let bodies = Arc::new(bodies(plan.requests, plan.keys)?);
    let server = Server::start(plan, sim, scratch.path()).await?;
    let mut report = Report::new(format!(
        "ingest — {} Alertmanager deliveries over {} group keys, {} concurrent HTTP clients",
        plan.requests, plan.keys, plan.clients
    ));
    report.setup(format!("server: {}, connected to the simulated workspace", server.describe()));
    let before = server.memory()?;

    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut clients = Vec::with_capacity(plan.clients);
    for _ in 0..plan.clients {
        let (api, bodies, next) = (server.api.clone(), Arc::clone(&bodies), Arc::clone(&next));
        clients.push(tokio::spawn(async move {
            let mut result = ClientResult::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else { break };
                let sent = Instant::now();
                let answer = api.post_hook("alertmanager", body.clone()).await;
                result.latencies.push(sent.elapsed());
                match answer {
                    Ok((StatusCode::ACCEPTED, answer)) => {
                        let outcome = answer["outcome"].as_str().unwrap_or("?").to_owned();
                        *result.outcomes.entry(outcome).or_default() += 1;
                    }
                    Ok((status, answer)) => {
                        result.errors += 1;
                        result.first_error.get_or_insert_with(|| format!("{status} {answer}"));
                    }
                    Err(e) => {
                        result.errors += 1;
                        result.first_error.get_or_insert_with(|| format!("{e:#}"));
                    }
                }
            }
            result
        }));
    }
    let mut all = ClientResult::default();
    for client in clients {
        let result = client.await.context("an HTTP client task panicked")?;
        all.latencies.extend(result.latencies);
        for (outcome, n) in result.outcomes {
            *all.outcomes.entry(outcome).or_default() += n;
        }
        all.errors += result.errors;
        all.first_error = all.first_error.or(result.first_error);
    }
    let elapsed = started.elapsed();
    let after_load = server.memory()?;
    let incidents = server.api.count_incidents().await?;

    // The war rooms keep opening after the last answer: wait for them, then read the peak again.
    let rooms_started = Instant::now();
    let rooms = poll("every incident's war room", ROOMS_TIMEOUT, Duration::from_millis(250), || async {
        let ready = ready_rooms(sim);
        Ok((ready >= plan.keys).then_some(ready))
    })
    .await;
    let rooms_elapsed = rooms_started.elapsed();
    let after_rooms = server.memory()?;
    server.stop().await?;

    let latencies = Latencies::from(all.latencies);
    let rate = plan.requests as f64 / elapsed.as_secs_f64();
    report.row("deliveries/s", format!("{rate:.0}"), "≥ 1,000", Some(rate >= 1000.0));
    report.row("latency p50", ms(latencies.p50()), "", None);
    report.row("latency p99", ms(latencies.p99()), "< 20 ms", Some(latencies.p99() < Duration::from_millis(20)));
    report.row("latency max", ms(latencies.max()), "", None);
    let outcomes: Vec<String> = all.outcomes.iter().map(|(o, n)| format!("{o} {n}")).collect();
    report.row(
        "answers",
        format!("202 × {} ({}), errors {}", latencies.len() - all.errors, outcomes.join(", "), all.errors),
        "no errors",
        Some(all.errors == 0),
    );
    let verdict = if incidents == plan.keys { "OK" } else { "MISMATCH" };
    report.row(
        "incidents opened",
        format!("{incidents} ({verdict})"),
        &format!("exactly {}", plan.keys),
        Some(incidents == plan.keys),
    );
    report.row("RSS before load", mib(before.rss_kib), "", None);
    report.row("peak RSS (VmHWM) at the end of the load", mib(after_load.hwm_kib), "", None);
    let rooms_value = match &rooms {
        Ok(n) => format!("{n} in {:.1} s after the load", rooms_elapsed.as_secs_f64()),
        Err(e) => format!("{} of {} ({e:#})", ready_rooms(sim), plan.keys),
    };
    report.row("war rooms ready", rooms_value, &format!("{}", plan.keys), Some(rooms.is_ok()));
    let peak = after_rooms.hwm_kib.max(after_load.hwm_kib);
    report.row("peak RSS (VmHWM), war rooms included", mib(peak), "< 50 MiB", Some(peak < 50 * 1024));
    if let Some(error) = all.first_error {
        report.note(format!("first error: {error}"));
    }
    report.if_missed(
        "the one writer connection is busy all the time: each group commit is about eight statements (a batch \
         of deliveries costs a handful whatever its size, plus the job runner's claims and finishes and the \
         war-room saves for the 500 rooms opening meanwhile), and each statement is a round trip to sqlx's \
         SQLite thread, about a quarter of a millisecond when the 2 cores are shared with the HTTP clients and \
         the simulated workspace",
    );
    Ok(report)
}

/// `requests` variations of the template over `keys` group keys, in delivery order.
fn bodies(requests: usize, keys: usize) -> anyhow::Result<Vec<String>> {
    let template: Value = serde_json::from_str(TEMPLATE).context("the embedded Alertmanager fixture")?;
    (0..requests)
        .map(|i| {
            let (key, round) = (i % keys, i / keys);
            let service = format!("svc-{key:04}");
            let mut body = template.clone();
            body["groupKey"] = Value::from(format!("{{}}:{{alertname=\"HighErrorRate\", service=\"{service}\"}}"));
            body["groupLabels"]["service"] = Value::from(service.as_str());
            body["commonLabels"]["service"] = Value::from(service.as_str());
            let alerts = body["alerts"].as_array_mut().context("the fixture has no alerts")?;
            for (j, alert) in alerts.iter_mut().enumerate() {
                alert["labels"]["service"] = Value::from(service.as_str());
                // Three alert sets per key: rounds 1 and 2 bring new alerts, later rounds repeat.
                alert["fingerprint"] = Value::from(format!("{key:08x}{:08x}", j + 2 * (round % 3)));
            }
            Ok(body.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_cycle_over_the_keys_with_rotating_fingerprints() {
        let bodies = bodies(7, 3).unwrap();
        let parsed: Vec<Value> = bodies.iter().map(|b| serde_json::from_str(b).unwrap()).collect();
        assert_eq!(parsed[0]["groupKey"], parsed[3]["groupKey"]);
        assert_ne!(parsed[0]["groupKey"], parsed[1]["groupKey"]);
        assert_ne!(parsed[0]["alerts"][0]["fingerprint"], parsed[3]["alerts"][0]["fingerprint"]);
        assert_eq!(parsed[0]["alerts"][0]["fingerprint"], "0000000000000000");
        assert_eq!(parsed[0]["alerts"][1]["labels"]["service"], "svc-0000");
    }
}
