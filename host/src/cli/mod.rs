//! The command line: `orderd serve`, `orderd plugin …`, `orderd admin …`, `orderd migrate …`. Each subcommand
//! family lives in its own file; this one only declares the shape and dispatches.

pub mod admin;
pub mod config;
pub mod migrate;
pub mod plugin;
pub mod queue;
pub mod replay;
pub mod serve;

use clap::{Parser, Subcommand};

/// orderd: order processing with WebAssembly business rules.
#[derive(Debug, Parser)]
#[command(name = "orderd", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service (API, outbox relay, consumer) until Ctrl-C or SIGTERM.
    Serve(serve::ServeArgs),
    /// Manage accounts.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Check, run and scaffold rule plugins.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Create the SQS queue and its dead-letter queue.
    #[command(subcommand)]
    Queue(queue::QueueCommand),
    /// Inspect the effective settings.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Copy data from the system orderd replaces.
    #[command(subcommand)]
    Migrate(migrate::MigrateCommand),
}

impl Cli {
    /// Runs the chosen subcommand to completion and returns the process exit code.
    pub fn run(self) -> anyhow::Result<std::process::ExitCode> {
        match self.command {
            Command::Plugin(cmd) => cmd.run(),
            Command::Serve(args) => args.run(),
            Command::Admin(cmd) => cmd.run(),
            Command::Queue(cmd) => cmd.run(),
            Command::Config(cmd) => cmd.run(),
            Command::Migrate(cmd) => cmd.run(),
        }
    }
}
