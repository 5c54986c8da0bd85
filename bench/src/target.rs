//! The service a measurement runs against: an orderd this tool starts on a fresh temporary
//! data directory (the default), or one already running at a given URL.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;

use crate::api::Api;
use crate::server::{self, Memory, Server, ServerSpec};

/// Where the service under test comes from (shared by `load` and `compare`).
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// Measure an orderd already running here instead of starting one. Its admin must be
    /// `bench-admin@example.com` / `bench-admin-password` and its rate limit off.
    #[arg(long)]
    pub url: Option<String>,
    /// The orderd binary to start (default: target/release/orderd of this workspace).
    #[arg(long)]
    pub orderd: Option<PathBuf>,
    /// Extra settings for the started orderd, `KEY=VALUE` (e.g. `ORDERD_PLUGINS__DEADLINE_MS=100`).
    #[arg(long = "env", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// Keep the temporary data directory (its path is printed).
    #[arg(long)]
    pub keep: bool,
}

/// `KEY=VALUE` as a pair (the `--env` options).
pub fn parse_env(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

/// A reachable service, and the process and directory when this tool started it.
pub struct Target {
    /// Client of its API.
    pub api: Api,
    /// The started process, if any.
    pub server: Option<Server>,
    /// The temporary directory holding its data (removed on drop unless kept).
    dir: Option<tempfile::TempDir>,
}

impl Target {
    /// Starts an orderd (or connects to `args.url`) with a client pool for `clients`.
    pub async fn open(args: &TargetArgs, clients: usize) -> anyhow::Result<Self> {
        if let Some(url) = &args.url {
            return Ok(Self {
                api: Api::new(url, clients)?,
                server: None,
                dir: None,
            });
        }
        let binary = args.orderd.clone().unwrap_or_else(server::default_binary);
        let (spec, dir) = fresh_spec(&binary, &args.env)?;
        spec.create_admin()?;
        let server = spec.start().await?;
        Ok(Self {
            api: Api::new(&spec.url(), clients)?,
            server: Some(server),
            dir: Some(dir),
        })
    }

    /// The process's memory use, when this tool started it.
    pub fn memory(&self) -> Option<Memory> {
        self.server.as_ref().and_then(|s| s.memory().ok())
    }

    /// Where the data lives, when this tool started the service.
    pub fn data_dir(&self) -> Option<&Path> {
        self.server.as_ref().map(|s| s.spec.data_dir.as_path())
    }

    /// Leaves the temporary directory in place and says where it is.
    pub fn keep(&mut self) {
        if let Some(dir) = self.dir.take() {
            let path = dir.keep();
            eprintln!("kept the data directory {}", path.display());
        }
    }
}

/// A fresh spec in a new temporary directory, with `env` applied on top of the defaults.
pub fn fresh_spec(
    binary: &Path,
    env: &[(String, String)],
) -> anyhow::Result<(ServerSpec, tempfile::TempDir)> {
    if !binary.is_file() {
        bail!(
            "{} does not exist: build it with `cargo build --release -p orderd` or pass --orderd PATH",
            binary.display()
        );
    }
    let dir = tempfile::Builder::new()
        .prefix("orderd-bench-")
        .tempdir()
        .context("Failed to create a temporary directory")?;
    let mut spec = ServerSpec::fresh(binary, dir.path())?;
    for (key, value) in env {
        spec.env.insert(key.clone(), value.clone());
    }
    Ok((spec, dir))
}
