//! warroom: a self-hosted ChatOps bot for incident response.
//!
//! A monitoring system reports a problem → warroom stores it and correlates it to an incident →
//! durable jobs open a Slack war room, invite on-call, keep a ticket and, on resolve, attach the
//! transcript, close the ticket and archive the channel.
//!
//! # Layout
//!
//! - [`config`]: the typed settings tree, loaded once (defaults → TOML → env).
//! - [`domain`]: pure types and rules: ids, severity, problems, the incident state machine.
//! - [`intake`]: each alert source's payload → [`domain::Problem`], errors naming the field.
//! - [`handlers`]: use cases; [`handlers::correlate`] turns a delivery into incident changes.
//! - [`store`]: the storage port and its SQLite adapter.
//! - [`jobs`]: the durable outbox and its runner (leases, retries, per-incident order).
//! - [`war_room`]: the jobs that act in Slack and the desk.
//! - [`oncall`]: who is on call (built-in rotation).
//! - [`http`]: hooks, read API, health.
//! - [`app`]: wires everything; `run(listener, shutdown)`.
//! - [`sim`]: a simulated Slack workspace for tests and `warroom demo`.

pub mod app;
pub mod config;
pub mod desk;
pub mod domain;
pub mod handlers;
pub mod health;
pub mod http;
pub mod intake;
pub mod jobs;
pub mod oncall;
pub mod shutdown;
pub mod sim;
pub mod slack;
pub mod store;
pub mod telemetry;
pub mod war_room;
