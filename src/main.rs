//! The `warroom` binary: parses the command line, loads settings, runs, maps the result to an
//! exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use warroom::app::{App, AppOptions};
use warroom::config::{LogFormat, LogSettings, Settings};

#[derive(Debug, Parser)]
#[command(name = "warroom", version, about = "Self-hosted ChatOps bot for incident response")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the bot: webhooks, Slack Socket Mode, jobs.
    Serve {
        /// Configuration file (default: WARROOM_CONFIG, else ./warroom.toml when present).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Accept /hooks/* without a bearer token. Only for trying warroom out on a laptop.
        #[arg(long)]
        insecure_no_webhook_auth: bool,
    },
    /// Play a whole incident against a simulated Slack workspace, narrated on stdout (no account,
    /// token or config file needed).
    Demo,
    /// Validate the configuration (and runbooks); print every problem and exit non-zero if any.
    Check {
        /// Configuration file to check (default as for `serve`).
        config: Option<PathBuf>,
    },
    /// Measure throughput, latency and memory against a simulated workspace; prints Markdown
    /// tables of figures against their targets (run by hand, never in CI).
    Bench(warroom::bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("warroom: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("warroom: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    match command {
        Command::Check { config } => Ok(check(config.as_deref())),
        Command::Demo => {
            warroom::telemetry::init(&LogSettings { format: LogFormat::Compact, filter: "warn".to_owned() });
            warroom::demo::run(&mut std::io::stdout()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(args) => {
            warroom::telemetry::init(&LogSettings { format: LogFormat::Compact, filter: "warn".to_owned() });
            warroom::bench::run(&args, &mut std::io::stdout()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { config, insecure_no_webhook_auth } => {
            let settings = match Settings::load_with(config.as_deref(), &|name| std::env::var(name).ok()) {
                Ok(settings) => settings,
                Err(errors) => {
                    eprint!("warroom: {errors}");
                    return Ok(ExitCode::FAILURE);
                }
            };
            warroom::telemetry::init(&settings.log);
            let listener = TcpListener::bind(settings.http.addr)
                .await
                .map_err(|e| anyhow::anyhow!("binding {}: {e}", settings.http.addr))?;
            let options = AppOptions { insecure_no_webhook_auth, ..AppOptions::default() };
            App::build(settings, options).await?.run(listener, warroom::shutdown::shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Validates the configuration and every runbook, printing every problem at once.
fn check(config: Option<&std::path::Path>) -> ExitCode {
    let env = |name: &str| std::env::var(name).ok();
    let (commands_dir, mut failed) = match Settings::load_with(config, &env) {
        Ok(settings) => {
            let clock: std::sync::Arc<dyn warroom::domain::Clock> = std::sync::Arc::new(warroom::domain::SystemClock);
            match warroom::oncall::router::OnCallRouter::build(&settings.oncall, &env, clock) {
                Ok(_) => {
                    println!("configuration OK");
                    (settings.commands_dir, false)
                }
                Err(issues) => {
                    eprintln!("{} on-call problem(s):", issues.len());
                    for issue in &issues {
                        eprintln!("  {issue}");
                    }
                    (settings.commands_dir, true)
                }
            }
        }
        Err(errors) => {
            eprint!("{errors}");
            (std::path::PathBuf::from(env("WARROOM_COMMANDS_DIR").unwrap_or_else(|| "commands".to_owned())), true)
        }
    };
    let problems = warroom::runbook::catalog::check(&commands_dir, &env);
    if problems.is_empty() {
        println!("runbooks in {} OK", commands_dir.display());
    } else {
        eprintln!("{} runbook problem(s):", problems.len());
        for problem in &problems {
            eprintln!("  {problem}");
        }
        failed = true;
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}
