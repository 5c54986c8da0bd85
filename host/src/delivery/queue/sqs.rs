//! The SQS backend: a real SQS API through `aws-sdk-sqs` (AWS itself, or LocalStack and moto
//! through an endpoint override). Standard or FIFO queues; on FIFO queues the order id is the
//! MessageGroupId (one order's events in order) and the event id the MessageDeduplicationId.
//! The dead-letter queue is SQS's own redrive (`RedrivePolicy`), so receive counts and moves
//! happen on the server. [`create_queues`] makes a queue and its dead-letter queue
//! (`orderd queue create`).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
    SendMessageBatchRequestEntry,
};

use super::{
    MAX_BATCH, Queue, QueueDepth, QueueError, QueueResult, QueueSettings, ReceivedMessage,
    SendReport, check_batch, dead_letter_name,
};

/// SQS accepts long polls of at most 20 s.
const MAX_WAIT_SECS: u64 = 20;

/// One SQS queue, addressed by URL.
#[derive(Clone)]
pub struct SqsQueue {
    /// Shared SDK client (connection pool, credentials, signing).
    client: Client,
    url: String,
    /// FIFO queues need a group id and a deduplication id on every send.
    fifo: bool,
    /// `maxReceiveCount` of the queue's RedrivePolicy, if it has one.
    max_receives: Option<u32>,
    /// The redrive target, opened on connect.
    dead_letter: Option<Arc<SqsQueue>>,
}

impl std::fmt::Debug for SqsQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqsQueue")
            .field("url", &self.url)
            .field("fifo", &self.fifo)
            .field("max_receives", &self.max_receives)
            .finish()
    }
}

/// An SDK client for `settings`: region and endpoint override from the settings; credentials
/// from the AWS default chain, or the static pair `test`/`test` when an endpoint override is
/// set and `AWS_ACCESS_KEY_ID` is not (LocalStack and moto accept any keys).
pub async fn client(settings: &QueueSettings) -> Client {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = &settings.region {
        loader = loader.region(Region::new(region.clone()));
    } else if settings.endpoint.is_some() {
        loader = loader.region(Region::new("us-east-1"));
    }
    if let Some(endpoint) = &settings.endpoint {
        loader = loader.endpoint_url(endpoint);
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
            loader = loader.credentials_provider(Credentials::new(
                "test",
                "test",
                None,
                None,
                "orderd-static",
            ));
        }
    }
    Client::new(&loader.load().await)
}

impl SqsQueue {
    /// Opens the queue named in `settings` (or at `settings.url`) and the dead-letter queue
    /// its RedrivePolicy points to.
    pub async fn connect(settings: &QueueSettings) -> anyhow::Result<Self> {
        let client = client(settings).await;
        let url = match &settings.url {
            Some(url) => url.clone(),
            None => queue_url(&client, &settings.name).await?,
        };
        Self::open(client, url).await
    }

    /// Opens the queue at `url`, reading its FIFO flag and redrive policy.
    pub async fn open(client: Client, url: String) -> anyhow::Result<Self> {
        let attrs = client
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .map_err(|e| anyhow!("{}", DisplayErrorContext(e)))
            .with_context(|| format!("Failed to read the attributes of queue {url}"))?;
        let attrs = attrs.attributes().cloned().unwrap_or_default();
        let fifo = attrs
            .get(&QueueAttributeName::FifoQueue)
            .is_some_and(|v| v == "true");
        let mut max_receives = None;
        let mut dead_letter = None;
        if let Some(policy) = attrs.get(&QueueAttributeName::RedrivePolicy) {
            let policy: serde_json::Value = serde_json::from_str(policy)
                .context("Failed to parse the queue's RedrivePolicy")?;
            max_receives = policy["maxReceiveCount"]
                .as_u64()
                .or_else(|| {
                    policy["maxReceiveCount"]
                        .as_str()
                        .and_then(|s| s.parse().ok())
                })
                .map(|n| n as u32);
            if let Some(arn) = policy["deadLetterTargetArn"].as_str() {
                let name = arn.rsplit(':').next().unwrap_or(arn);
                let dlq_url = queue_url(&client, name).await?;
                dead_letter = Some(Arc::new(SqsQueue {
                    client: client.clone(),
                    url: dlq_url,
                    fifo: name.ends_with(".fifo"),
                    max_receives: None,
                    dead_letter: None,
                }));
            }
        }
        Ok(SqsQueue {
            client,
            url,
            fifo,
            max_receives,
            dead_letter,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

async fn queue_url(client: &Client, name: &str) -> anyhow::Result<String> {
    let out = client
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .map_err(|e| anyhow!("{}", DisplayErrorContext(e)))
        .with_context(|| format!("Failed to look up queue {name}"))?;
    out.queue_url()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no URL returned for queue {name}"))
}

/// URLs of a queue and its dead-letter queue, as made by [`create_queues`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedQueues {
    pub queue_url: String,
    pub dead_letter_url: String,
}

/// Creates (or finds, when they exist with the same attributes) the queue `name` and its
/// dead-letter queue, with a RedrivePolicy moving a message there after `max_receives`
/// receives. `fifo` requires `name` to end in `.fifo`.
pub async fn create_queues(
    client: &Client,
    name: &str,
    fifo: bool,
    max_receives: u32,
) -> anyhow::Result<CreatedQueues> {
    anyhow::ensure!(
        fifo == name.ends_with(".fifo"),
        "a FIFO queue name must end in .fifo, and only a FIFO queue's may"
    );
    anyhow::ensure!(max_receives >= 1, "max receives must be at least 1");
    let dlq_name = dead_letter_name(name);
    let dead_letter_url = create_one(client, &dlq_name, fifo, None).await?;
    let dlq_arn = client
        .get_queue_attributes()
        .queue_url(&dead_letter_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| anyhow!("{}", DisplayErrorContext(e)))
        .context("Failed to read the dead-letter queue's ARN")?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .context("the dead-letter queue has no ARN")?;
    let policy = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": max_receives.to_string(),
    });
    let queue_url = create_one(client, name, fifo, Some(policy.to_string())).await?;
    Ok(CreatedQueues {
        queue_url,
        dead_letter_url,
    })
}

async fn create_one(
    client: &Client,
    name: &str,
    fifo: bool,
    redrive: Option<String>,
) -> anyhow::Result<String> {
    let mut req = client.create_queue().queue_name(name);
    if fifo {
        req = req.attributes(QueueAttributeName::FifoQueue, "true");
    }
    if let Some(policy) = redrive {
        req = req.attributes(QueueAttributeName::RedrivePolicy, policy);
    }
    let out = req
        .send()
        .await
        .map_err(|e| anyhow!("{}", DisplayErrorContext(e)))
        .with_context(|| format!("Failed to create queue {name}"))?;
    out.queue_url()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no URL returned for queue {name}"))
}

fn secs(d: Duration) -> i32 {
    d.as_secs().min(i32::MAX as u64) as i32
}

/// SQS batch entry ids allow only letters, digits, `-` and `_` (≤ 80 characters).
fn entry_id(index: usize) -> String {
    format!("m{index}")
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send_batch(&self, messages: &[super::OutgoingMessage]) -> QueueResult<SendReport> {
        check_batch(messages.len(), MAX_BATCH)?;
        if messages.is_empty() {
            return Ok(SendReport::default());
        }
        let mut entries = Vec::with_capacity(messages.len());
        for (i, m) in messages.iter().enumerate() {
            let mut entry = SendMessageBatchRequestEntry::builder()
                .id(entry_id(i))
                .message_body(&m.body);
            if self.fifo {
                entry = entry
                    .message_group_id(&m.group_id)
                    .message_deduplication_id(&m.dedup_id);
            }
            entries.push(entry.build().map_err(QueueError::backend)?);
        }
        let out = self
            .client
            .send_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| QueueError::backend(anyhow!("{}", DisplayErrorContext(e))))?;
        let by_entry = |id: &str| -> Option<String> {
            let i: usize = id.strip_prefix('m')?.parse().ok()?;
            messages.get(i).map(|m| m.dedup_id.clone())
        };
        let mut report = SendReport::default();
        for ok in out.successful() {
            report.sent.extend(by_entry(ok.id()));
        }
        for failed in out.failed() {
            if let Some(id) = by_entry(failed.id()) {
                let reason = format!("{}: {}", failed.code(), failed.message().unwrap_or(""));
                report.failed.push((id, reason));
            }
        }
        Ok(report)
    }

    async fn receive(
        &self,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> QueueResult<Vec<ReceivedMessage>> {
        check_batch(max, MAX_BATCH)?;
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.max(1) as i32)
            .wait_time_seconds(wait.as_secs().min(MAX_WAIT_SECS) as i32)
            .visibility_timeout(secs(visibility))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .send()
            .await
            .map_err(|e| QueueError::backend(anyhow!("{}", DisplayErrorContext(e))))?;
        let messages = out
            .messages()
            .iter()
            .filter_map(|m| {
                let receive_count = m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1);
                // Milliseconds since the epoch, as SQS reports it.
                let sent_at = m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
                    .and_then(|ms| ms.parse::<i64>().ok())
                    .and_then(chrono::DateTime::from_timestamp_millis);
                Some(ReceivedMessage {
                    message_id: m.message_id()?.to_owned(),
                    receipt: m.receipt_handle()?.to_owned(),
                    body: m.body().unwrap_or_default().to_owned(),
                    receive_count,
                    sent_at,
                })
            })
            .collect();
        Ok(messages)
    }

    async fn delete(&self, receipt: &str) -> QueueResult<()> {
        match self
            .client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ReceiptHandleIsInvalid") => Err(QueueError::InvalidReceipt),
            Err(e) => Err(QueueError::backend(anyhow!("{}", DisplayErrorContext(e)))),
        }
    }

    async fn delete_batch(&self, receipts: &[String]) -> QueueResult<()> {
        check_batch(receipts.len(), MAX_BATCH)?;
        if receipts.is_empty() {
            return Ok(());
        }
        let entries = receipts
            .iter()
            .enumerate()
            .map(|(i, receipt)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(format!("d{i}"))
                    .receipt_handle(receipt)
                    .build()
                    .map_err(|e| QueueError::backend(anyhow!("{}", DisplayErrorContext(e))))
            })
            .collect::<QueueResult<Vec<_>>>()?;
        let out = self
            .client
            .delete_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| QueueError::backend(anyhow!("{}", DisplayErrorContext(e))))?;
        // A stale receipt is not an error (as for a single delete); anything else is.
        if let Some(failed) = out
            .failed()
            .iter()
            .find(|f| f.code() != "ReceiptHandleIsInvalid")
        {
            return Err(QueueError::backend(anyhow!(
                "Failed to delete a message: {}: {}",
                failed.code(),
                failed.message().unwrap_or("")
            )));
        }
        Ok(())
    }

    async fn change_visibility(&self, receipt: &str, visibility: Duration) -> QueueResult<()> {
        let res = self
            .client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(secs(visibility))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.code(),
                    Some("ReceiptHandleIsInvalid" | "MessageNotInflight")
                ) =>
            {
                Err(QueueError::InvalidReceipt)
            }
            Err(e) => Err(QueueError::backend(anyhow!("{}", DisplayErrorContext(e)))),
        }
    }

    async fn depth(&self) -> QueueResult<QueueDepth> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| QueueError::backend(anyhow!("{}", DisplayErrorContext(e))))?;
        let get = |name: QueueAttributeName| -> u64 {
            out.attributes()
                .and_then(|a| a.get(&name))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Ok(QueueDepth {
            visible: get(QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        })
    }

    fn dead_letter_queue(&self) -> Option<Arc<dyn Queue>> {
        self.dead_letter.clone().map(|q| q as Arc<dyn Queue>)
    }

    fn max_receives(&self) -> Option<u32> {
        self.max_receives
    }

    fn backend_name(&self) -> &'static str {
        "sqs"
    }
}
