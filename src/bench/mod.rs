//! `warroom bench <name>`: reproducible figures on how fast and how small warroom is.
//!
//! Each bench builds its own setup in a scratch directory — a SQLite database with the default
//! durability (`synchronous=FULL` unless `--synchronous normal`), the simulated workspace
//! ([`crate::sim`]) and warroom — runs, and prints a Markdown table (figure | value | target |
//! met?) with a one-line note where a target is missed. Benchmarks are run by hand, never in CI.
//!
//! | bench | what it does |
//! |---|---|
//! | [`ingest`] | Alertmanager deliveries over many group keys from concurrent HTTP clients to a child `serve` |
//! | [`open`] | one problem → war room ready (channel, invitations, pinned context, ticket), sequentially |
//! | [`acks`] | Socket Mode envelopes (messages and slash commands) at rising rates over 2 connections |
//! | [`transcript`] | a channel with many captured messages and threads, then resolve |
//! | [`idle`] | a child `serve`, connected and idle: its memory |
//!
//! `ingest` and `idle` measure memory, so they run `warroom serve` as a child process (the
//! current executable unless `--serve-binary` names another) and generate load from this one;
//! the others run the app in this process, which measures the same latencies. `--quick`
//! scales every size down about ten times: a smoke test, not a measurement.

mod acks;
mod idle;
mod ingest;
mod open;
mod report;
mod setup;
mod transcript;

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;

pub use report::{Latencies, Report, Row};

/// The benches, and `all` of them in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchName {
    Ingest,
    Open,
    Acks,
    Transcript,
    Idle,
    All,
}

impl BenchName {
    /// The name on the command line.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ingest => "ingest",
            Self::Open => "open",
            Self::Acks => "acks",
            Self::Transcript => "transcript",
            Self::Idle => "idle",
            Self::All => "all",
        }
    }
}

/// SQLite durability for the bench's database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Durability {
    /// `synchronous=FULL`, warroom's default: every commit is fsynced.
    #[default]
    Full,
    /// `synchronous=NORMAL`: the WAL is fsynced at checkpoints only.
    Normal,
}

impl Durability {
    /// The word in the configuration file.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Normal => "normal",
        }
    }
}

/// `warroom bench` arguments. Every size defaults to the documented workload (or a tenth of it
/// with `--quick`).
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Which bench to run.
    #[arg(value_enum)]
    pub name: BenchName,
    /// Scale every size down about ten times: a smoke test, not a measurement.
    #[arg(long)]
    pub quick: bool,
    /// ingest: deliveries to send (default 10000).
    #[arg(long)]
    pub requests: Option<usize>,
    /// ingest: distinct Alertmanager group keys, i.e. incidents (default 500).
    #[arg(long)]
    pub keys: Option<usize>,
    /// ingest: concurrent HTTP clients (default 8).
    #[arg(long)]
    pub clients: Option<usize>,
    /// open: war rooms opened one after the other, per latency (default 200).
    #[arg(long)]
    pub rooms: Option<usize>,
    /// open: simulated Slack latency per Web API call, in ms, for the second run (default 100).
    #[arg(long)]
    pub latency_ms: Option<u64>,
    /// acks: envelope rates per second, comma-separated (default 100,250,500,1000,2000).
    #[arg(long, value_delimiter = ',')]
    pub rates: Option<Vec<u32>>,
    /// acks: seconds each rate lasts (default 3).
    #[arg(long)]
    pub step_secs: Option<f64>,
    /// acks: one envelope in this many is a slash command, the rest are messages (default 10).
    #[arg(long)]
    pub slash_every: Option<usize>,
    /// transcript: captured messages in the channel, replies included (default 10000).
    #[arg(long)]
    pub messages: Option<usize>,
    /// transcript: threads among them, a third with replies (default 1000).
    #[arg(long)]
    pub threads: Option<usize>,
    /// idle: seconds connected and idle before reading memory (default 30).
    #[arg(long)]
    pub idle_secs: Option<f64>,
    /// SQLite durability of the bench database.
    #[arg(long, value_enum, default_value_t)]
    pub synchronous: Durability,
    /// The `warroom` binary to run as `serve` (default: this executable).
    #[arg(long)]
    pub serve_binary: Option<PathBuf>,
}

/// How `ingest` and `idle` run the server.
#[derive(Debug, Clone)]
pub enum ServeWith {
    /// `<binary> serve` as a child process.
    Child(PathBuf),
    /// The app in this process (its memory is then the bench's too).
    InProcess,
}

/// The sizes and choices of one run, resolved from [`BenchArgs`].
#[derive(Debug, Clone)]
pub struct Plan {
    pub quick: bool,
    pub requests: usize,
    pub keys: usize,
    pub clients: usize,
    pub rooms: usize,
    pub latency: Duration,
    pub rates: Vec<u32>,
    pub step: Duration,
    pub slash_every: usize,
    pub messages: usize,
    pub threads: usize,
    pub idle: Duration,
    pub durability: Durability,
    pub serve: ServeWith,
}

impl Plan {
    /// The documented workload, scaled down ten times when `quick`.
    pub fn from_args(args: &BenchArgs) -> anyhow::Result<Self> {
        let quick = args.quick;
        let scaled = |full: usize| if quick { (full / 10).max(1) } else { full };
        let serve = match &args.serve_binary {
            Some(binary) => ServeWith::Child(binary.clone()),
            None => ServeWith::Child(std::env::current_exe().context("finding this executable to run `serve`")?),
        };
        let plan = Self {
            quick,
            requests: args.requests.unwrap_or(scaled(10_000)),
            keys: args.keys.unwrap_or(scaled(500)),
            clients: args.clients.unwrap_or(8),
            rooms: args.rooms.unwrap_or(scaled(200)),
            latency: Duration::from_millis(args.latency_ms.unwrap_or(100)),
            rates: args.rates.clone().unwrap_or_else(|| vec![100, 250, 500, 1000, 2000]),
            step: Duration::from_secs_f64(args.step_secs.unwrap_or(if quick { 0.3 } else { 3.0 })),
            slash_every: args.slash_every.unwrap_or(10),
            messages: args.messages.unwrap_or(scaled(10_000)),
            threads: args.threads.unwrap_or(scaled(1_000)),
            idle: Duration::from_secs_f64(args.idle_secs.unwrap_or(if quick { 1.0 } else { 30.0 })),
            durability: args.synchronous,
            serve,
        };
        plan.check()?;
        Ok(plan)
    }

    fn check(&self) -> anyhow::Result<()> {
        let positive = [
            ("--requests", self.requests),
            ("--keys", self.keys),
            ("--clients", self.clients),
            ("--rooms", self.rooms),
            ("--slash-every", self.slash_every),
            ("--messages", self.messages),
        ];
        for (flag, value) in positive {
            anyhow::ensure!(value > 0, "{flag} must be at least 1");
        }
        anyhow::ensure!(self.keys <= self.requests, "--keys ({}) must not exceed --requests", self.keys);
        anyhow::ensure!(self.threads <= self.messages / 2, "--threads must be at most half of --messages");
        anyhow::ensure!(!self.rates.is_empty() && self.rates.iter().all(|r| *r > 0), "--rates must be positive");
        anyhow::ensure!(!self.step.is_zero(), "--step-secs must be positive");
        Ok(())
    }
}

/// Runs the bench(es) `args` names, printing the machine, then each report, to `out`. A failed
/// bench of `all` is reported and the others still run; the result is then an error.
pub async fn run(args: &BenchArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let plan = Plan::from_args(args)?;
    write_machine(out, &plan)?;
    let names = match args.name {
        BenchName::All => {
            vec![BenchName::Ingest, BenchName::Open, BenchName::Acks, BenchName::Transcript, BenchName::Idle]
        }
        one => vec![one],
    };
    let mut failed = Vec::new();
    for name in names {
        let load = load_average();
        let started = Instant::now();
        let result = match name {
            BenchName::Ingest => ingest::run(&plan).await,
            BenchName::Open => open::run(&plan).await,
            BenchName::Acks => acks::run(&plan).await,
            BenchName::Transcript => transcript::run(&plan).await,
            BenchName::Idle => idle::run(&plan).await,
            BenchName::All => continue,
        };
        match result {
            Ok(mut report) => {
                report.setup(format!(
                    "ran {:.1} s; load average before {load}, after {}",
                    started.elapsed().as_secs_f64(),
                    load_average()
                ));
                report.write(out)?;
            }
            Err(e) => {
                writeln!(out, "## {}\n\nFAILED: {e:#}\n", name.as_str())?;
                failed.push(name.as_str());
            }
        }
    }
    anyhow::ensure!(failed.is_empty(), "bench failed: {}", failed.join(", "));
    Ok(())
}

/// The machine and the run's parameters, so the raw output stands on its own.
fn write_machine(out: &mut impl Write, plan: &Plan) -> std::io::Result<()> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown", str::trim);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kib| kib.parse::<u64>().ok())
        .map_or_else(|| "unknown".to_owned(), |kib| format!("{:.1} GiB", kib as f64 / 1024.0 / 1024.0));
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let build = if cfg!(debug_assertions) { "debug" } else { "release" };
    writeln!(out, "# warroom bench")?;
    writeln!(out)?;
    writeln!(out, "- warroom {} ({build} build), {}", env!("CARGO_PKG_VERSION"), jiff::Timestamp::now())?;
    writeln!(out, "- machine: {cores} cores ({model}), {memory} RAM, load average {}", load_average())?;
    writeln!(
        out,
        "- database: SQLite, WAL, synchronous={}{}",
        plan.durability.as_str().to_uppercase(),
        if plan.quick { "; --quick (sizes ÷10: a smoke test, not a measurement)" } else { "" }
    )?;
    writeln!(out)?;
    out.flush()
}

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` gives them.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tiny sizes: every code path of every bench, in a few seconds of a debug build.
    fn tiny(name: BenchName) -> BenchArgs {
        BenchArgs {
            name,
            quick: true,
            requests: Some(200),
            keys: Some(10),
            clients: Some(4),
            rooms: Some(3),
            latency_ms: Some(50),
            rates: Some(vec![50, 100]),
            step_secs: Some(0.2),
            slash_every: Some(5),
            messages: Some(300),
            threads: Some(30),
            idle_secs: Some(0.5),
            synchronous: Durability::Normal,
            serve_binary: serve_binary(),
        }
    }

    /// The `warroom` binary cargo built next to this test binary (`target/debug/warroom`), if any.
    fn serve_binary() -> Option<PathBuf> {
        let exe = std::env::current_exe().ok()?;
        let binary = exe.parent()?.parent()?.join("warroom");
        binary.is_file().then_some(binary)
    }

    async fn run_tiny(name: BenchName) -> String {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut args = tiny(name);
        let mut plan = Plan::from_args(&args).unwrap();
        if args.serve_binary.is_none() {
            // No binary built yet (e.g. `cargo test --lib`): run the server in process.
            plan.serve = ServeWith::InProcess;
            args.serve_binary = None;
        }
        let report = match name {
            BenchName::Ingest => ingest::run(&plan).await,
            BenchName::Open => open::run(&plan).await,
            BenchName::Acks => acks::run(&plan).await,
            BenchName::Transcript => transcript::run(&plan).await,
            BenchName::Idle => idle::run(&plan).await,
            BenchName::All => unreachable!("not a single bench"),
        };
        let report = report.unwrap_or_else(|e| panic!("bench {} failed: {e:#}", name.as_str()));
        let mut out = Vec::new();
        report.write(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_bench_runs_in_quick_mode_with_tiny_sizes() {
        let started = Instant::now();
        let ingest = run_tiny(BenchName::Ingest).await;
        assert!(ingest.contains("| incidents opened | 10 (OK) |"), "{ingest}");
        let open = run_tiny(BenchName::Open).await;
        assert!(open.contains("ready, 0 ms/call, p99"), "{open}");
        let acks = run_tiny(BenchName::Acks).await;
        assert!(acks.contains("| ack at 100/s"), "{acks}");
        let transcript = run_tiny(BenchName::Transcript).await;
        assert!(transcript.contains("| history/replies calls | 0 |"), "{transcript}");
        let idle = run_tiny(BenchName::Idle).await;
        assert!(idle.contains("| RSS after"), "{idle}");
        assert!(started.elapsed() < Duration::from_secs(60), "the smoke run took {:?}", started.elapsed());
    }

    #[test]
    fn quick_mode_scales_the_workload_down_ten_times() {
        let mut args = tiny(BenchName::All);
        (args.requests, args.keys, args.rooms, args.messages, args.threads) = (None, None, None, None, None);
        let plan = Plan::from_args(&args).unwrap();
        assert_eq!((plan.requests, plan.keys, plan.rooms, plan.messages, plan.threads), (1000, 50, 20, 1000, 100));
        args.quick = false;
        let plan = Plan::from_args(&args).unwrap();
        assert_eq!(
            (plan.requests, plan.keys, plan.rooms, plan.messages, plan.threads),
            (10_000, 500, 200, 10_000, 1000)
        );
    }
}
