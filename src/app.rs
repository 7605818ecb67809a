//! The application: builds every part once from [`Settings`], then runs the HTTP server and the
//! job runner until the injected shutdown future completes. Binds nothing and listens for no
//! signal itself, so tests choose the listener and when to stop.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::Settings;
use crate::domain::{Clock, SystemClock};
use crate::handlers::Services;
use crate::health::Health;
use crate::http::{self, HttpState};
use crate::jobs::runner::{JobHandler, Runner};
use crate::store::{self, Store};
use crate::war_room::WarRoomJobs;

/// Choices made by the caller rather than the config file.
#[derive(Clone)]
pub struct AppOptions {
    pub clock: Arc<dyn Clock>,
    /// Accept webhooks without a token (`--insecure-no-webhook-auth`).
    pub insecure_no_webhook_auth: bool,
    /// Lease owner prefix; unique per process.
    pub worker_name: String,
    /// Use this store instead of connecting to `database.url` (tests inject failures this way).
    pub store: Option<Arc<dyn Store>>,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            insecure_no_webhook_auth: false,
            worker_name: format!(
                "warroom-{}-{:04x}",
                std::process::id(),
                rand::random::<u16>()
            ),
            store: None,
        }
    }
}

/// A built application, ready to run.
pub struct App {
    services: Services,
    runner: Arc<Runner>,
    health: Health,
    http_state: HttpState,
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
        let store = match options.store.clone() {
            Some(store) => store,
            None => store::connect(&settings.database).await.with_context(|| {
                format!(
                    "opening the database at {}",
                    crate::config::redact_url_password(&settings.database.url)
                )
            })?,
        };
        let health = Health::default();
        let handler: Arc<dyn JobHandler> = Arc::new(WarRoomJobs::new());
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
        };
        let http_state = HttpState {
            services: services.clone(),
            health: health.clone(),
            webhook_token: settings.http.webhook_token.clone().map(Arc::new),
            api_token: settings.api_token().cloned().map(Arc::new),
            public_url: settings
                .http
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", settings.http.addr)),
        };
        Ok(Self {
            services,
            runner,
            health,
            http_state,
        })
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

    /// Serves HTTP on `listener` and runs jobs until `shutdown` completes or a part fails. On
    /// shutdown: stop intake, let running jobs finish within `jobs.shutdown_grace`.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let grace = self.services.settings.jobs.shutdown_grace;
        let intake = CancellationToken::new();
        let jobs_stop = CancellationToken::new();
        let address = listener
            .local_addr()
            .context("reading the listener address")?;
        info!(http.addr = %address, "warroom listening on http://{address}");

        let router = http::router(self.http_state);
        let stop_http = intake.clone();
        let mut http: JoinHandle<anyhow::Result<()>> = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move { stop_http.cancelled().await })
                .await
                .context("HTTP server")
        });
        let mut jobs: JoinHandle<anyhow::Result<()>> =
            tokio::spawn(Arc::clone(&self.runner).run(jobs_stop.clone()));

        let failure = tokio::select! {
            () = shutdown => None,
            result = &mut http => Some(report_exit("HTTP server", result)),
            result = &mut jobs => Some(report_exit("job runner", result)),
        };
        info!(
            "stopping: intake closed, waiting up to {} ms for running jobs",
            grace.as_millis()
        );
        intake.cancel();
        jobs_stop.cancel();
        let drained = tokio::time::timeout(grace, async {
            if !http.is_finished() {
                let _ = (&mut http).await;
            }
            if !jobs.is_finished() {
                let _ = (&mut jobs).await;
            }
        })
        .await;
        if drained.is_err() {
            warn!("shutdown grace period over; abandoning running jobs (they will be retried)");
            http.abort();
            jobs.abort();
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

fn report_exit(
    part: &str,
    result: Result<anyhow::Result<()>, tokio::task::JoinError>,
) -> anyhow::Error {
    let error = match result {
        Ok(Ok(())) => anyhow::anyhow!("{part} stopped unexpectedly"),
        Ok(Err(e)) => e.context(format!("{part} failed")),
        Err(e) => anyhow::anyhow!("{part} panicked: {e}"),
    };
    error!(
        error = format!("{error:#}"),
        "{part} exited; stopping warroom"
    );
    error
}
