//! Black-box tests of the HTTP API, one module per feature, all driving a real server started
//! by `helpers::spawn_app` on a free port with a fresh data directory.

mod helpers;

mod admin_plugins;
mod auth;
mod cli;
mod errors;
mod health;
mod idempotency;
mod orders;
mod overload;
mod plugin_replay;
mod plugin_trials;
mod products;
