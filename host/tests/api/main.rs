//! Black-box tests of the HTTP API, one module per feature, all driving a real server started
//! by `helpers::spawn_app` on a free port with a fresh data directory.

mod helpers;

mod admin_plugins;
mod auth;
mod auth_abuse;
mod cli;
mod console;
mod email_addresses;
mod errors;
mod health;
mod idempotency;
mod legacy_passwords;
mod order_limits;
mod orders;
mod overload;
mod plugin_replay;
mod plugin_trials;
mod products;
mod sessions;
