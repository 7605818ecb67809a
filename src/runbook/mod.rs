//! Remediation as code: runbooks in `commands/` (one TOML file each), validated at startup and
//! by `warroom check`, rendered into an [`plan::Execution`] and run by an [`executor`].
//!
//! - [`spec`]: `RawRunbook` (the file) → `Runbook` (validated, typed).
//! - [`catalog`]: every runbook of a folder, each problem reported by file and field; matching.
//! - [`template`]: strict templates (an undefined variable is an error).
//! - [`context`]: what templates see; parameters; rendering the plan.
//! - [`plan`]: the contract between the catalog and the executors.
//! - [`executor`]: AWX/Tower/AAP, HTTP webhooks, local commands.

pub mod catalog;
pub mod context;
pub mod executor;
pub mod plan;
pub mod spec;
pub mod template;
