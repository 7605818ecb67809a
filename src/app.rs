//! The application: builds every part once from [`Settings`], then runs the HTTP server, the job
//! runner and Slack Socket Mode until the injected shutdown future completes. Binds nothing and
//! listens for no signal itself, so tests choose the listener and when to stop.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use secrecy::SecretString;
use slack_morphism::SlackClient;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::{DeskKind, Settings};
use crate::desk::Desk;
use crate::desk::builtin::BuiltinDesk;
use crate::desk::jira::JiraDesk;
use crate::domain::{Clock, SystemClock};
use crate::handlers::Services;
use crate::handlers::ingester::Ingester;
use crate::health::{Health, SlackState};
use crate::http::jira::JiraHook;
use crate::http::{self, HttpState};
use crate::jobs::runner::{JobHandler, Runner};
use crate::oncall::OnCall;
use crate::oncall::router::OnCallRouter;
use crate::runbook::catalog::RunbookCatalog;
use crate::runbook::executor::{ExecutorSettings, Executors};
use crate::slack::client::SlackApi;
use crate::slack::inbound::Inbound;
use crate::slack::listener::SocketMode;
use crate::sources::dynatrace::DynatraceClient;
use crate::store::Store;
use crate::store::sqlite::SqliteStore;
use crate::war_room::{Remediation, WarRoomJobs, WarRoomParts};

/// Wraps the connected store (tests inject database failures this way).
pub type StoreWrapper = Arc<dyn Fn(Arc<dyn Store>) -> Arc<dyn Store> + Send + Sync>;

/// Reads an environment variable (runbook and source secrets); tests inject their own.
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Choices made by the caller rather than the config file.
#[derive(Clone)]
pub struct AppOptions {
    pub clock: Arc<dyn Clock>,
    /// Accept webhooks without a token (`--insecure-no-webhook-auth`).
    pub insecure_no_webhook_auth: bool,
    /// Lease owner prefix; unique per process.
    pub worker_name: String,
    pub wrap_store: Option<StoreWrapper>,
    /// Where runbook and source secrets are read from (the process environment by default).
    pub env: EnvLookup,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            insecure_no_webhook_auth: false,
            worker_name: format!("warroom-{}-{:04x}", std::process::id(), rand::random::<u16>()),
            wrap_store: None,
            env: Arc::new(|name: &str| std::env::var(name).ok()),
        }
    }
}

/// A built application, ready to run.
pub struct App {
    services: Services,
    runner: Arc<Runner>,
    health: Health,
    http_state: HttpState,
    socket_mode: Option<SocketMode>,
}

impl App {
    /// Connects storage (migrating it) and builds every component.
    pub async fn build(settings: Settings, options: AppOptions) -> anyhow::Result<Self> {
        if settings.http.webhook_token.is_none() && !options.insecure_no_webhook_auth {
            anyhow::bail!(
                "WARROOM_WEBHOOK_TOKEN is not set: every /hooks/* request must carry it as a bearer token \
                 (start with --insecure-no-webhook-auth to accept unauthenticated webhooks, e.g. on a laptop)"
            );
        }
        let settings = Arc::new(settings);
        let sqlite = SqliteStore::connect(&settings.database).await.with_context(|| {
            format!("opening the database at {}", crate::config::redact_url_password(&settings.database.url))
        })?;
        let (desk, jira): (Arc<dyn Desk>, Option<JiraHook>) = match (&settings.desk.kind, &settings.desk.jira) {
            (DeskKind::Jira, Some(jira)) => {
                let token = (options.env)(&jira.token_env)
                    .ok_or_else(|| anyhow::anyhow!("desk.jira.token_env names {}, which is not set", jira.token_env))?;
                let desk = Arc::new(
                    JiraDesk::new(jira.clone(), token.into())
                        .map_err(|e| anyhow::anyhow!("building the Jira client: {e}"))?,
                );
                let secret =
                    jira.webhook_secret_env.as_ref().and_then(|name| (options.env)(name)).map(SecretString::from);
                (Arc::clone(&desk) as Arc<dyn Desk>, Some(JiraHook { desk, secret }))
            }
            _ => (Arc::new(BuiltinDesk::new(&sqlite, Arc::clone(&options.clock))), None),
        };
        let mut store: Arc<dyn Store> = Arc::new(sqlite);
        if let Some(wrap) = &options.wrap_store {
            store = wrap(store);
        }
        let health = Health::default();
        let router = OnCallRouter::build(&settings.oncall, &|name| (options.env)(name), Arc::clone(&options.clock))
            .map_err(|issues| {
                let lines: Vec<String> = issues.iter().map(ToString::to_string).collect();
                anyhow::anyhow!("invalid [oncall] settings: {}", lines.join("; "))
            })?;
        let oncall: Arc<dyn OnCall> = Arc::new(router);
        let env = Arc::clone(&options.env);
        let catalog = Arc::new(RunbookCatalog::load(&settings.commands_dir, &|name| env(name)).map_err(|issues| {
            let lines: Vec<String> = issues.iter().map(ToString::to_string).collect();
            anyhow::anyhow!("invalid runbooks (warroom check lists them all):\n  {}", lines.join("\n  "))
        })?);
        let executors = Arc::new(Executors::new(
            ExecutorSettings {
                poll_interval: settings.runbooks.poll_interval,
                http_timeout: settings.runbooks.http_timeout,
                output_cap: settings.runbooks.output_cap_bytes,
            },
            Arc::clone(&options.env),
        ));
        let dynatrace = match (&settings.dynatrace.api_url, &settings.dynatrace.token_env) {
            (Some(url), Some(variable)) => match (options.env)(variable) {
                Some(token) => Some(DynatraceClient::new(url, token.into(), settings.runbooks.http_timeout)),
                None => anyhow::bail!("dynatrace.token_env names {variable}, which is not set"),
            },
            _ => None,
        };
        let public_url = settings.public_url();
        let slack = match &settings.slack.bot_token {
            Some(token) => {
                let connector = crate::slack::client::connector(&settings.slack.api_url)
                    .context("building the Slack HTTP client")?;
                Some(SlackApi::new(Arc::new(SlackClient::new(connector)), token))
            }
            None => {
                warn!("SLACK_BOT_TOKEN is not set: incidents are stored, but war rooms wait until Slack is configured");
                None
            }
        };
        let handler: Arc<dyn JobHandler> = Arc::new(WarRoomJobs::new(
            WarRoomParts {
                slack: slack.clone(),
                store: Arc::clone(&store),
                desk: Arc::clone(&desk),
                oncall: Arc::clone(&oncall),
                clock: Arc::clone(&options.clock),
                settings: Arc::clone(&settings),
                public_url: public_url.clone(),
            },
            Remediation { catalog: Arc::clone(&catalog), executors, dynatrace },
        ));
        let runner = Arc::new(Runner::new(
            Arc::clone(&store),
            handler,
            Arc::clone(&options.clock),
            settings.jobs.clone(),
            &options.worker_name,
        ));
        let services = Services {
            store,
            clock: options.clock,
            settings: Arc::clone(&settings),
            nudge: runner.nudge(),
            desk,
            catalog,
        };
        let socket_mode = match (slack, &settings.slack.app_token) {
            (Some(api), Some(app_token)) => Some(SocketMode {
                inbound: Arc::new(Inbound::new(services.clone(), health.clone(), oncall, api.clone())),
                api,
                app_token: app_token.clone(),
                settings: settings.slack.clone(),
                health: health.clone(),
            }),
            (Some(_), None) => {
                warn!("SLACK_APP_TOKEN is not set: warroom posts to Slack but hears no slash commands or buttons");
                health.set_slack(SlackState::Error("SLACK_APP_TOKEN is not set".to_owned()));
                None
            }
            (None, _) => {
                health.set_slack(SlackState::Error("SLACK_BOT_TOKEN is not set".to_owned()));
                None
            }
        };
        let http_state = HttpState {
            ingester: Ingester::start(services.clone()),
            services: services.clone(),
            health: health.clone(),
            webhook_token: settings.http.webhook_token.clone().map(Arc::new),
            api_token: settings.api_token().cloned().map(Arc::new),
            public_url,
            desk: Arc::clone(&services.desk),
            jira,
        };
        Ok(Self { services, runner, health, http_state, socket_mode })
    }

    /// The services handlers use (for tests and the demo).
    #[must_use]
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Shared health.
    #[must_use]
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Serves HTTP on `listener`, runs jobs and Socket Mode until `shutdown` completes or a part
    /// fails. On shutdown: stop intake (HTTP, Slack), let running jobs finish within
    /// `jobs.shutdown_grace`; pending jobs wait in the table for the next start.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let grace = self.services.settings.jobs.shutdown_grace;
        let intake = CancellationToken::new();
        let jobs_stop = CancellationToken::new();
        let address = listener.local_addr().context("reading the listener address")?;
        info!(http.addr = %address, "warroom listening on http://{address}");

        let router = http::router(self.http_state);
        let stop_http = intake.clone();
        let mut http: JoinHandle<anyhow::Result<()>> = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move { stop_http.cancelled().await })
                .await
                .context("HTTP server")
        });
        let mut jobs: JoinHandle<anyhow::Result<()>> = tokio::spawn(Arc::clone(&self.runner).run(jobs_stop.clone()));
        let mut slack: JoinHandle<anyhow::Result<()>> = match self.socket_mode {
            Some(socket_mode) => tokio::spawn(socket_mode.run(intake.clone())),
            None => tokio::spawn(async move {
                std::future::pending::<()>().await;
                Ok(())
            }),
        };

        let failure = tokio::select! {
            () = shutdown => None,
            result = &mut http => Some(report_exit("HTTP server", result)),
            result = &mut jobs => Some(report_exit("job runner", result)),
            result = &mut slack => Some(report_exit("Socket Mode listener", result)),
        };
        info!("stopping: intake closed, waiting up to {} ms for running jobs", grace.as_millis());
        intake.cancel();
        jobs_stop.cancel();
        let drained = tokio::time::timeout(grace, async {
            for task in [&mut http, &mut jobs, &mut slack] {
                if !task.is_finished() {
                    let _ = task.await;
                }
            }
        })
        .await;
        if drained.is_err() {
            warn!("shutdown grace period over; abandoning running jobs (they will be retried)");
        }
        for task in [&http, &jobs, &slack] {
            task.abort();
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

fn report_exit(part: &str, result: Result<anyhow::Result<()>, tokio::task::JoinError>) -> anyhow::Error {
    let error = match result {
        Ok(Ok(())) => anyhow::anyhow!("{part} stopped unexpectedly"),
        Ok(Err(e)) => e.context(format!("{part} failed")),
        Err(e) => anyhow::anyhow!("{part} panicked: {e}"),
    };
    error!(error = format!("{error:#}"), "{part} exited; stopping warroom");
    error
}
