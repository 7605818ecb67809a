//! warroom: a self-hosted ChatOps bot for incident response.
//!
//! A monitoring system reports a problem → warroom stores it and correlates it to an incident →
//! durable jobs open a Slack war room, invite on-call, keep a ticket and, on resolve, attach the
//! transcript, close the ticket and archive the channel.
//!
//! # Layout
//!
//! - [`config`]: the typed settings tree, loaded once (defaults → TOML → env).
//! - [`domain`]: pure types and rules: ids, severity, problems, the incident state machine,
//!   war rooms, transcript lines.
//! - [`intake`]: each alert source's payload → [`domain::Problem`], errors naming the field.
//! - [`handlers`]: use cases; [`handlers::correlate`] turns a delivery into incident changes,
//!   [`handlers::commands`] the `/incident` subcommands and buttons.
//! - [`store`]: the storage port and its SQLite adapter.
//! - [`jobs`]: the durable outbox and its runner (leases, retries, per-incident order).
//! - [`war_room`]: the jobs that act in Slack and on the desk (open, render, resolve, reopen).
//! - [`slack`]: the Slack edge: Web API client, Socket Mode listener, inbound parsing, Block Kit.
//! - [`desk`]: `trait Desk` and the built-in desk (`WR-n` tickets).
//! - [`oncall`]: who is on call (built-in rotation).
//! - [`transcript`]: rendering and redaction of the captured conversation.
//! - [`http`]: hooks, read API, health.
//! - [`app`]: wires everything; `run(listener, shutdown)`.
//! - [`sim`]: a simulated Slack workspace for tests and `warroom demo`.
//! - [`demo`]: `warroom demo`, a whole incident against [`sim`], narrated on stdout.
//! - [`bench`]: `warroom bench`, the figures in the README (run by hand).
//! - [`runbook`]: remediation as code: the catalog, templates and executors.
//! - [`sources`]: comments back on source problems (Dynatrace).

pub mod app;
pub mod batch;
pub mod bench;
pub mod config;
pub mod demo;
pub mod desk;
pub mod domain;
pub mod handlers;
pub mod health;
pub mod http;
pub mod intake;
pub mod jobs;
pub mod oncall;
pub mod runbook;
pub mod shutdown;
pub mod sim;
pub mod slack;
pub mod sources;
pub mod store;
pub mod telemetry;
pub mod transcript;
pub mod war_room;
