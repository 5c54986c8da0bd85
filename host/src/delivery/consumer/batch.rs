//! What the consumer does with one received batch of messages.
//!
//! The whole batch is started in one store call ([`DeliveryStore::start_deliveries`]: inbox
//! check, `pending → processing`, e-mail claim), its e-mails are rendered and sent
//! concurrently, and the batch is completed in a second store call (send records,
//! `processing → processed`, inbox). Then every message whose work is recorded is deleted in
//! one queue call; the others come back later (see [`Consumer::settle`]).
//!
//! Every step is conditional and keyed by the event id, so a message delivered again after any
//! crash completes the work without doing any of it twice — except an e-mail accepted by the
//! mail server just before a crash that kept it from being recorded, which is sent again with
//! the same Message-ID once its claim expires (docs/delivery.md names every such window).

use std::panic::AssertUnwindSafe;

use chrono::Utc;
use futures::FutureExt;

use super::{Consumer, EmailKind, stored_order};
use crate::delivery::queue::ReceivedMessage;
use crate::delivery::supervisor::record_panic;
use crate::domain::outbox::Envelope;
use crate::domain::{EventType, Order, User};
use crate::mail::{OutgoingEmail, SendError, message_id_for};
use crate::storage::{DeliveryFinish, DeliveryStart, Finish, Started};
use crate::telemetry::ORDERS_PROCESSED_TOTAL;

/// How a message was handled; decides what happens to it.
#[derive(Debug)]
pub enum Verdict {
    /// The work is done and recorded: delete the message.
    Done,
    /// The message can never be handled (its reason, for logs and metrics): leave it, so it
    /// reaches the dead-letter queue after the receive limit.
    Poison(&'static str),
    /// Something failed that may work later: leave the message to come back.
    Retry(anyhow::Error),
}

/// A parsed message of the batch.
struct Item {
    start: DeliveryStart,
}

/// Where one message stands while its batch is handled.
enum Step {
    /// Settled before the store was asked (parse failures).
    Settled(Verdict),
    /// Waiting for the start call.
    Parsed(Item),
}

impl Consumer {
    /// Handles a batch start to finish; one verdict per message, in order.
    pub(super) async fn process_batch(&self, messages: &[ReceivedMessage]) -> Vec<Verdict> {
        let steps: Vec<Step> = messages.iter().map(parse).collect();
        let starts: Vec<DeliveryStart> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Parsed(item) => Some(item.start),
                Step::Settled(_) => None,
            })
            .collect();
        if starts.is_empty() {
            return steps.into_iter().map(settled).collect();
        }
        let now = Utc::now();
        let claim_until = now + chrono::Duration::milliseconds(self.settings.email_claim_ms as i64);
        let started = match self
            .store
            .start_deliveries(&starts, &self.owner, now, claim_until)
            .await
        {
            Ok(started) => started,
            Err(err) => {
                let reason = format!("{:#}", anyhow::Error::new(err));
                return steps
                    .into_iter()
                    .map(|s| match s {
                        Step::Settled(v) => v,
                        Step::Parsed(_) => Verdict::Retry(anyhow::anyhow!(
                            "Failed to start the delivery: {reason}"
                        )),
                    })
                    .collect();
            }
        };

        // Pair each parsed message with what starting it found, then do the sending.
        let mut started = started.into_iter();
        let work = steps.iter().map(|step| {
            let outcome = match step {
                Step::Parsed(_) => started.next(),
                Step::Settled(_) => None,
            };
            async move {
                match (step, outcome) {
                    (Step::Parsed(item), Some(outcome)) => Some(self.act(item, outcome).await),
                    _ => None,
                }
            }
        });
        let acted: Vec<Option<Acted>> = futures::future::join_all(work).await;

        let finishes: Vec<DeliveryFinish> = acted
            .iter()
            .flatten()
            .filter_map(|a| a.finish.clone())
            .collect();
        let finished = if finishes.is_empty() {
            Ok(Vec::new())
        } else {
            self.store
                .finish_deliveries(&finishes, &self.owner, Utc::now())
                .await
        };
        let recorded = match finished {
            Ok(processed) => {
                for order in processed.iter().flatten() {
                    record_processed(order);
                }
                Ok(())
            }
            Err(err) => Err(format!("{:#}", anyhow::Error::new(err))),
        };

        steps
            .into_iter()
            .zip(acted)
            .map(|(step, acted)| match (step, acted) {
                (Step::Settled(v), _) => v,
                (Step::Parsed(_), Some(acted)) => match (&recorded, acted.finish) {
                    (Err(reason), Some(_)) => {
                        Verdict::Retry(anyhow::anyhow!("Failed to record the delivery: {reason}"))
                    }
                    _ => acted.verdict,
                },
                (Step::Parsed(_), None) => {
                    Verdict::Retry(anyhow::anyhow!("The store returned too few results"))
                }
            })
            .collect()
    }

    /// Sends what a started event calls for and says how to complete it.
    async fn act(&self, item: &Item, started: Started) -> Acted {
        let start = item.start;
        let finish = |outcome| {
            Some(DeliveryFinish {
                event_id: start.event_id,
                order_id: start.order_id,
                kind: start.kind,
                outcome,
            })
        };
        match started {
            Started::AlreadyDone => Acted::done(None),
            Started::UnknownOrder => Acted::poison("unknown-order"),
            Started::UnknownCustomer => Acted::poison("unknown-customer"),
            Started::InProgress => Acted::retry(anyhow::anyhow!(
                "another delivery of event {} is sending its e-mail",
                start.event_id
            )),
            Started::NothingToSend(_) | Started::AlreadySent(_) => {
                Acted::done(finish(Finish::NothingSent))
            }
            Started::Send { order, customer } => {
                let kind = email_kind(start.kind);
                match self.send(start, kind, &order, &customer).await {
                    Ok(message_id) => Acted::done(finish(Finish::Sent { message_id })),
                    Err(SendError::NotSent(err)) => Acted {
                        verdict: Verdict::Retry(
                            err.context(format!("Failed to send the {} e-mail", kind.as_str())),
                        ),
                        finish: finish(Finish::Release),
                    },
                    Err(SendError::Unknown(err)) => {
                        metrics::counter!("orderd_emails_unknown_outcome_total").increment(1);
                        Acted {
                            verdict: Verdict::Retry(err.context(format!(
                                "The {} e-mail may have been delivered; its claim is kept until \
                                 it expires",
                                kind.as_str()
                            ))),
                            finish: finish(Finish::KeepClaim),
                        }
                    }
                }
            }
        }
    }

    /// Renders and sends the e-mail of one event; the Message-ID on success.
    async fn send(
        &self,
        start: DeliveryStart,
        kind: EmailKind,
        order: &Order,
        customer: &User,
    ) -> Result<String, SendError> {
        // A panicking renderer fails this e-mail only (its claim is released), not the batch.
        let stored = stored_order(order, customer);
        let rendered = AssertUnwindSafe(self.renderer.render(kind, &stored))
            .catch_unwind()
            .await
            .map_err(|panic| {
                record_panic(&self.health, &format!("event {}", start.event_id), &*panic);
                SendError::NotSent(anyhow::anyhow!(
                    "The {} e-mail renderer panicked",
                    kind.as_str()
                ))
            })?
            .map_err(|e| {
                SendError::NotSent(
                    e.context(format!("Failed to render the {} e-mail", kind.as_str())),
                )
            })?;
        let email = OutgoingEmail {
            to: customer.email.as_str().to_owned(),
            to_name: customer.username.as_str().to_owned(),
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
            message_id: message_id_for(start.event_id),
        };
        self.mailer.send(&email).await?;
        Ok(email.message_id)
    }
}

/// One message's verdict and how to complete it in the store (if at all).
struct Acted {
    verdict: Verdict,
    finish: Option<DeliveryFinish>,
}

impl Acted {
    fn done(finish: Option<DeliveryFinish>) -> Self {
        Self {
            verdict: Verdict::Done,
            finish,
        }
    }

    fn poison(reason: &'static str) -> Self {
        Self {
            verdict: Verdict::Poison(reason),
            finish: None,
        }
    }

    fn retry(err: anyhow::Error) -> Self {
        Self {
            verdict: Verdict::Retry(err),
            finish: None,
        }
    }
}

fn parse(message: &ReceivedMessage) -> Step {
    let Ok(envelope) = serde_json::from_str::<Envelope>(&message.body) else {
        return Step::Settled(Verdict::Poison("malformed-body"));
    };
    let Some(kind) = EventType::parse(&envelope.event_type) else {
        return Step::Settled(Verdict::Poison("unknown-type"));
    };
    Step::Parsed(Item {
        start: DeliveryStart {
            event_id: envelope.event_id,
            order_id: envelope.order_id,
            kind,
        },
    })
}

fn settled(step: Step) -> Verdict {
    match step {
        Step::Settled(v) => v,
        Step::Parsed(_) => Verdict::Retry(anyhow::anyhow!("not handled")),
    }
}

fn email_kind(kind: EventType) -> EmailKind {
    match kind {
        EventType::OrderCreated => EmailKind::Confirmation,
        EventType::OrderCancelled => EmailKind::Cancellation,
    }
}

fn record_processed(order: &Order) {
    metrics::counter!(ORDERS_PROCESSED_TOTAL).increment(1);
    let lag = (Utc::now() - order.created_at).to_std().unwrap_or_default();
    metrics::histogram!("orderd_order_commit_to_processed_seconds").record(lag.as_secs_f64());
}
