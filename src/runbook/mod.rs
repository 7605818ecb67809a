//! Remediation as code: runbooks in `commands/`, validated at startup, run by executors.

pub mod plan;
