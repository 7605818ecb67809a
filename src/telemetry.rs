//! Tracing setup.
//!
//! Field conventions: dotted entity fields with units — `incident.id` (`INC-42`), `slack.channel`,
//! `job.id`, `job.kind`, `duration_ms` — and messages that read well alone and repeat the key id.
//! A failure is logged once, where it is handled. Tokens, secrets and raw bodies are never logged.

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};

/// Installs the global subscriber: JSON or compact lines on stderr. `RUST_LOG` overrides the
/// configured filter.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match settings.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Compact => builder.compact().try_init(),
    };
}

/// For tests: output captured by the test harness, `RUST_LOG` or warnings only.
pub fn init_for_test() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}
