//! The one integration-test binary: real server on 127.0.0.1:0, temp SQLite database.

mod alerts;
mod api;
mod bad_input;
mod buttons;
mod helpers;
mod jira;
mod jobs;
mod oncall;
mod runbooks;
mod slash_commands;
mod socket_mode;
mod transcript;
mod war_room;
