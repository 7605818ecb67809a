//! Tests of runbook files.
