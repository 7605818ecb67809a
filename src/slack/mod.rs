//! The Slack edge adapter: what comes in from Slack is parsed here, what goes out is rendered and
//! sent here. No business rules, and no Slack types past this module.
//!
//! - [`blocks`]: pure Block Kit renderers (context message, topic, thread updates, resolution
//!   summary) and the versioned `action_id`s of the buttons they carry.
//! - [`slash`]: the `/incident` text parsed into a [`slash::SlashCommand`], and the help generated
//!   from the same definitions.
//! - [`client`]: the Web API client (typed errors, invites in chunks, crash-recovery lookups).
//! - [`listener`]: Socket Mode, owned and supervised by the app.
//! - [`inbound`]: envelopes → use cases, within the 3-second ack budget.

pub mod blocks;
pub mod capture;
pub mod client;
pub mod inbound;
pub mod listener;
pub mod runbooks;
pub mod slash;
