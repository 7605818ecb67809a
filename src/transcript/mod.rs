//! The transcript: what people said in an incident's channels, as a document for its ticket.
//!
//! Capture and storage of the channel's messages live elsewhere; this module turns the captured
//! entries into Markdown or plain text ([`render`]) and scrubs secrets from it ([`redact`]).
//! Both are pure: no IO, no clock.

pub mod redact;
pub mod render;
