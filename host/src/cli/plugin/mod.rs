//! `orderd plugin check|run|new|test|deploy`: tools for plugin authors and operators.
//!
//! * `check FILE --slot S` — is it a component, does it export the slot's world, how big is
//!   it, how long does it take to compile, does it pass the smoke test.
//! * `run FILE --slot S --input IN.json [--config k=v]…` — runs one call under the production
//!   limits and prints the output JSON (stdout) and the wall time (stderr).
//! * `new NAME --slot S` — writes a ready-to-build plugin crate from a template.
//! * `test FILE --slot S [--fixtures DIR]` — runs the component on every fixture (input,
//!   config, expected outcome) and shows a readable diff for each mismatch ([`fixtures`]).
//! * `deploy FILE --slot S --url URL` — uploads it to a running orderd through the admin API
//!   and reports the version and whether it is active ([`deploy`]).
//!
//! Every failure is one line on stderr and a non-zero exit code.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, bail};
use clap::{Subcommand, ValueEnum};
use rule_types::{Config, OrderDraft, StoredOrder};

use crate::plugins::{
    FailurePolicy, PluginInput, PluginRuntime, PluginSource, RuntimeSettings, Slot, template,
};

mod deploy;
mod fixtures;

/// The slot a plugin is meant for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SlotArg {
    Tax,
    Validation,
    Email,
}

impl From<SlotArg> for Slot {
    fn from(s: SlotArg) -> Self {
        match s {
            SlotArg::Tax => Slot::Tax,
            SlotArg::Validation => Slot::Validation,
            SlotArg::Email => Slot::Email,
        }
    }
}

/// Which e-mail an e-mail plugin renders in `run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EmailKind {
    Confirmation,
    Cancellation,
}

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Check that FILE is a component for the slot: exports, size, compile time, smoke test.
    Check {
        /// The component (.wasm) to check.
        file: PathBuf,
        /// The slot it is meant for.
        #[arg(long, value_enum)]
        slot: SlotArg,
        /// Config for the smoke test, as key=value (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_pair)]
        config: Vec<(String, String)>,
        /// Skip running the component on the built-in fixtures.
        #[arg(long)]
        no_smoke_test: bool,
    },
    /// Run FILE once on an input and print the output as JSON and the wall time.
    Run {
        /// The component (.wasm) to run.
        file: PathBuf,
        /// The slot it is meant for.
        #[arg(long, value_enum)]
        slot: SlotArg,
        /// JSON input: an order draft (tax, validation) or a stored order (email).
        #[arg(long)]
        input: PathBuf,
        /// Config passed to the plugin, as key=value (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_pair)]
        config: Vec<(String, String)>,
        /// For the email slot: which e-mail to render.
        #[arg(long, value_enum, default_value = "confirmation")]
        email: EmailKind,
        /// Meter fuel and stop the guest after this much (also reports the fuel used).
        #[arg(long)]
        fuel: Option<u64>,
        /// Per-call deadline in milliseconds.
        #[arg(long, default_value_t = RuntimeSettings::default().deadline_ms)]
        deadline_ms: u64,
    },
    /// Write a ready-to-build plugin crate for the slot into ./NAME (or --dir).
    New {
        /// Crate name (lower case letters, digits, '-' and '_').
        name: String,
        /// The slot the plugin is for.
        #[arg(long, value_enum)]
        slot: SlotArg,
        /// Directory to create (default: ./NAME). Must not exist yet.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Run FILE and the active version on a server's recorded recent calls and fixtures (a dry
    /// run) and print where they differ.
    Replay(super::replay::ReplayArgs),
    /// Check FILE, then run it on every fixture in DIR and compare each outcome.
    Test {
        /// The component (.wasm) to test.
        file: PathBuf,
        /// The slot it is meant for.
        #[arg(long, value_enum)]
        slot: SlotArg,
        /// Directory of fixtures (*.json: description, config, input, expected).
        #[arg(long, default_value = "fixtures")]
        fixtures: PathBuf,
    },
    /// Upload FILE to a running orderd as the slot's new version and report whether it is
    /// active. Credentials: ORDERD_ADMIN_EMAIL and ORDERD_ADMIN_PASSWORD, else a prompt.
    Deploy {
        /// The component (.wasm) to upload.
        file: PathBuf,
        /// The slot it is meant for.
        #[arg(long, value_enum)]
        slot: SlotArg,
        /// Base URL of the orderd API (e.g. http://127.0.0.1:8000).
        #[arg(long)]
        url: String,
        /// Config stored with the version, as key=value (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_pair)]
        config: Vec<(String, String)>,
        /// Failure policy stored with the version: fail-closed or fallback.
        #[arg(long)]
        policy: Option<String>,
    },
}

impl PluginCommand {
    /// Runs the subcommand; errors become one line on stderr (printed by `main`).
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            PluginCommand::Check {
                file,
                slot,
                config,
                no_smoke_test,
            } => block_on(check(&file, slot.into(), config, !no_smoke_test)),
            PluginCommand::Run {
                file,
                slot,
                input,
                config,
                email,
                fuel,
                deadline_ms,
            } => {
                let args = RunArgs {
                    slot: slot.into(),
                    input,
                    config,
                    email,
                    fuel,
                    deadline_ms,
                };
                block_on(run(&file, args))
            }
            PluginCommand::Replay(args) => super::replay::run(args),
            PluginCommand::New { name, slot, dir } => {
                let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
                template::write_crate(&name, slot.into(), &dir)?;
                print_stdout(&format!(
                    "created {dir} (plugin crate `{name}` for the {slot} slot)\nbuild it: cd {dir} && cargo build --release --target wasm32-wasip2",
                    dir = dir.display(),
                    slot = Slot::from(slot),
                ))?;
                Ok(ExitCode::SUCCESS)
            }
            PluginCommand::Test {
                file,
                slot,
                fixtures,
            } => block_on(fixtures::test(&file, slot.into(), &fixtures)),
            PluginCommand::Deploy {
                file,
                slot,
                url,
                config,
                policy,
            } => {
                let args = deploy::DeployArgs {
                    slot: slot.into(),
                    url,
                    config,
                    policy,
                };
                block_on(deploy::deploy(&file, args))
            }
        }
    }
}

fn block_on<F: Future<Output = anyhow::Result<ExitCode>>>(f: F) -> anyhow::Result<ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("Failed to start the async runtime")?
        .block_on(f)
}

/// Settings for a one-off runtime: a small instance pool, the production limits.
fn cli_settings(slot: Slot, config: Config) -> RuntimeSettings {
    let mut settings = RuntimeSettings {
        max_concurrent_calls: 2,
        ..RuntimeSettings::default()
    };
    settings.slot_mut(slot).config = config;
    settings
}

fn read_component(file: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(file).with_context(|| format!("Failed to read {}", file.display()))
}

async fn check(
    file: &Path,
    slot: Slot,
    config: Config,
    smoke_test: bool,
) -> anyhow::Result<ExitCode> {
    let bytes = read_component(file)?;
    let settings = RuntimeSettings {
        smoke_test,
        ..cli_settings(slot, config)
    };
    let runtime = PluginRuntime::new(settings)?;
    let report = runtime
        .check(slot, &bytes)
        .await
        .with_context(|| format!("{} is not a usable {slot} plugin", file.display()))?;
    let smoke = if report.smoke_tested {
        "passed"
    } else {
        "skipped"
    };
    let lines = [
        format!(
            "ok: {} is a plugin for the {slot} slot ({})",
            file.display(),
            slot.interface()
        ),
        format!("  size:         {} bytes", report.size_bytes),
        format!("  sha256:       {}", report.sha256),
        format!(
            "  compile time: {:.1} ms",
            report.compile_time.as_secs_f64() * 1e3
        ),
        format!("  exports:      {}", report.exports.join(", ")),
        format!("  imports:      {}", report.imports.join(", ")),
        format!("  smoke test:   {smoke}"),
    ];
    print_stdout(&lines.join("\n"))?;
    Ok(ExitCode::SUCCESS)
}

/// The options of `plugin run` besides the file.
struct RunArgs {
    slot: Slot,
    input: PathBuf,
    config: Config,
    email: EmailKind,
    fuel: Option<u64>,
    deadline_ms: u64,
}

async fn run(file: &Path, args: RunArgs) -> anyhow::Result<ExitCode> {
    let slot = args.slot;
    let text = std::fs::read_to_string(&args.input)
        .with_context(|| format!("Failed to read {}", args.input.display()))?;
    let input = parse_input(slot, args.email, &text)
        .with_context(|| format!("Failed to parse {}", args.input.display()))?;
    let bytes = read_component(file)?;
    let settings = RuntimeSettings {
        smoke_test: false,
        fuel: args.fuel,
        deadline_ms: args.deadline_ms,
        ..cli_settings(slot, Config::new())
    };
    // Show the guest's stderr (single-threaded runtime: the thread-local subscriber sees it).
    let _guard = tracing::subscriber::set_default(guest_stderr_subscriber());
    let runtime = PluginRuntime::new(settings)?;
    let source = PluginSource::File {
        path: file.to_path_buf(),
    };
    runtime
        .load(
            slot,
            bytes,
            args.config,
            Some(FailurePolicy::FailClosed),
            source,
        )
        .await
        .with_context(|| format!("{} is not a usable {slot} plugin", file.display()))?;
    let started = Instant::now();
    let result = runtime.call(input).await;
    let wall = started.elapsed();
    let (output, stats) = result.context("the plugin call failed")?;
    print_stdout(&serde_json::to_string_pretty(&output)?)?;
    eprintln!("wall time: {:.3} ms", wall.as_secs_f64() * 1e3);
    if let Some(fuel) = stats.fuel_consumed {
        eprintln!("fuel used: {fuel}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `text` and a newline to stdout; a closed pipe (`| head`) is not an error.
fn print_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("Failed to write the output")
        }
        _ => Ok(()),
    }
}

/// Prints what the guest writes to stderr, and nothing else, on the process's stderr.
fn guest_stderr_subscriber() -> impl tracing::Subscriber + Send + Sync {
    use tracing_subscriber::prelude::*;
    let only_guest = tracing_subscriber::filter::Targets::new()
        .with_target("orderd::plugins::guest", tracing::Level::TRACE);
    let layer = tracing_subscriber::fmt::layer()
        .without_time()
        .with_target(false)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .with_filter(only_guest);
    tracing_subscriber::registry().with(layer)
}

fn parse_input(slot: Slot, email: EmailKind, text: &str) -> anyhow::Result<PluginInput> {
    Ok(match slot {
        Slot::Tax => PluginInput::Calculate(parse_json::<OrderDraft>(text, "an order draft")?),
        Slot::Validation => {
            PluginInput::Validate(parse_json::<OrderDraft>(text, "an order draft")?)
        }
        Slot::Email => {
            let order = parse_json::<StoredOrder>(text, "a stored order")?;
            match email {
                EmailKind::Confirmation => PluginInput::RenderConfirmation(order),
                EmailKind::Cancellation => PluginInput::RenderCancellation(order),
            }
        }
    })
}

fn parse_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> anyhow::Result<T> {
    serde_json::from_str(text).with_context(|| format!("the input is not {what}"))
}

/// Parses `key=value`.
fn parse_pair(s: &str) -> anyhow::Result<(String, String)> {
    let Some((key, value)) = s.split_once('=') else {
        bail!("expected KEY=VALUE, got `{s}`");
    };
    if key.is_empty() {
        bail!("the key of `{s}` is empty");
    }
    Ok((key.to_owned(), value.to_owned()))
}
