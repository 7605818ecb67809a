//! Writing back to the alert sources: a comment on the source problem for each runbook result.

pub mod dynatrace;
