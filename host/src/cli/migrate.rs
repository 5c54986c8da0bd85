//! `orderd migrate node --from MONGODB_URI [--dry-run]`: copies the Node system's users,
//! products and orders into the configured store (see `migrate::node` and docs/migrating.md).
//!
//! Exit status: 0 when every document was copied or already present, 3 when the run finished
//! but some documents were refused (each is listed with its id and the reason), 1 on an error
//! that stopped the run (unreachable database, failed write).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use chrono::{SubsecRound, Utc};
use clap::{Args, Subcommand};

use crate::configuration::{Settings, StoreBackend};
use crate::migrate::node;
use crate::startup::open_store;

/// Exit status of a run that finished with refused documents.
pub const EXIT_REFUSED: u8 = 3;

#[derive(Debug, Subcommand)]
pub enum MigrateCommand {
    /// Copy users, products and orders from the Node/Express system's MongoDB database.
    Node(NodeArgs),
}

#[derive(Debug, Args)]
pub struct NodeArgs {
    /// The Node system's database, named in the path:
    /// `mongodb://localhost:27017/order-service`.
    #[arg(long, value_name = "MONGODB_URI")]
    pub from: String,
    /// Check everything and print what would be copied; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Settings file (TOML); `ORDERD_CONFIG` also names one.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

impl MigrateCommand {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            MigrateCommand::Node(args) => args.run(),
        }
    }
}

impl NodeArgs {
    fn run(self) -> anyhow::Result<ExitCode> {
        let settings = Settings::load(self.config.as_deref())?;
        let runtime =
            tokio::runtime::Runtime::new().context("Failed to start the async runtime")?;
        runtime.block_on(async {
            refuse_same_database(&settings, &self.from).await?;
            let source = node::connect_source(&self.from).await?;
            let store = open_store(&settings).await?;
            let now = Utc::now().trunc_subsecs(3);
            let report = node::run(&source, store.as_ref(), self.dry_run, now).await?;
            print!("{report}");
            Ok(if report.refused.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_REFUSED)
            })
        })
    }
}

/// orderd's MongoDB collections have the Node system's names: copying a database onto itself
/// would read orderd's own documents back as the Node system's. The Node variable
/// `MONGODB_URI` selects orderd's store too, so this is an easy mistake to make.
async fn refuse_same_database(settings: &Settings, from: &str) -> anyhow::Result<()> {
    if settings.store.backend != StoreBackend::Mongodb {
        return Ok(());
    }
    let Some(target) = &settings.store.mongodb_uri else {
        return Ok(());
    };
    let parse = mongodb::options::ClientOptions::parse;
    let source = parse(from)
        .await
        .context("Failed to parse the --from connection string")?;
    let target = parse(target.expose())
        .await
        .context("Failed to parse the store's connection string")?;
    let same_hosts = source.hosts.iter().any(|h| target.hosts.contains(h));
    if same_hosts && source.default_database.as_deref() == Some(&settings.store.mongodb_database) {
        bail!(
            "--from names orderd's own database ({}): point the store at another database \
             (ORDERD_STORE__MONGODB_DATABASE) before migrating",
            settings.store.mongodb_database
        );
    }
    Ok(())
}
