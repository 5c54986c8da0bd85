//! `orderd queue create`: makes the SQS queue and its dead-letter queue (with a RedrivePolicy)
//! for local development against LocalStack or moto, or on AWS.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::configuration::Settings;
use crate::delivery::queue::{QueueSettings, dead_letter_name};

#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Create the queue and its dead-letter queue (no change if they exist alike).
    Create(CreateArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Queue name (default: the `queue.name` setting); FIFO names end in `.fifo`.
    #[arg(long)]
    pub name: Option<String>,
    /// Make FIFO queues (default: the `queue.fifo` setting).
    #[arg(long)]
    pub fifo: bool,
    /// Receives before a message moves to the dead-letter queue (default: `queue.max_receives`).
    #[arg(long)]
    pub max_receives: Option<u32>,
    /// SQS endpoint, e.g. http://localhost:4566 (default: `queue.endpoint`, else AWS).
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Region (default: `queue.region`, else the AWS default chain).
    #[arg(long)]
    pub region: Option<String>,
    /// Settings file (TOML); `ORDERD_CONFIG` also names one.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

impl QueueCommand {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            QueueCommand::Create(args) => args.run(),
        }
    }
}

impl CreateArgs {
    fn settings(&self) -> anyhow::Result<QueueSettings> {
        let mut queue = crate::delivery::queue_settings(&Settings::load(self.config.as_deref())?);
        if let Some(name) = &self.name {
            queue.name = name.clone();
        }
        queue.fifo |= self.fifo;
        if queue.fifo && !queue.name.ends_with(".fifo") {
            queue.name.push_str(".fifo");
        }
        if let Some(n) = self.max_receives {
            queue.max_receives = n;
        }
        if self.endpoint.is_some() {
            queue.endpoint = self.endpoint.clone();
        }
        if self.region.is_some() {
            queue.region = self.region.clone();
        }
        Ok(queue)
    }

    fn run(self) -> anyhow::Result<ExitCode> {
        let settings = self.settings()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("Failed to start the async runtime")?;
        let created = runtime.block_on(async {
            let client = crate::delivery::queue::sqs::client(&settings).await;
            crate::delivery::queue::sqs::create_queues(
                &client,
                &settings.name,
                settings.fifo,
                settings.max_receives,
            )
            .await
        })?;
        println!("queue             {}  {}", settings.name, created.queue_url);
        println!(
            "dead-letter queue {}  {}",
            dead_letter_name(&settings.name),
            created.dead_letter_url
        );
        println!(
            "messages move to the dead-letter queue after {} receives",
            settings.max_receives
        );
        println!(
            "serve with: ORDERD_QUEUE__BACKEND=sqs ORDERD_QUEUE__NAME={}{}",
            settings.name,
            match &settings.endpoint {
                Some(e) => format!(" ORDERD_QUEUE__ENDPOINT={e}"),
                None => String::new(),
            }
        );
        Ok(ExitCode::SUCCESS)
    }
}
