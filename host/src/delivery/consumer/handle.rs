//! What the consumer does with one message, and what happens to the message afterwards.
//!
//! `order.created`: skip if the event id is in the inbox; `pending → processing` (an order
//! already `processing` after a crash just continues); render the confirmation through the
//! e-mail slot; claim the send (so two concurrent deliveries send at most one e-mail); send
//! with Message-ID `<event id@orderd>`; record the send; `processing → processed`; record the
//! event id in the inbox; delete the message. `order.cancelled` sends the cancellation e-mail
//! under the same claim and inbox discipline.
//!
//! Every step is safe to repeat, so a message delivered again after any crash completes the
//! work without doing any of it twice — except an e-mail accepted by the mail server just
//! before a crash that kept it from being recorded, which is sent again with the same
//! Message-ID.

use std::time::Duration;

use chrono::Utc;

use super::{Consumer, EmailKind, stored_order};
use crate::delivery::queue::ReceivedMessage;
use crate::domain::outbox::Envelope;
use crate::domain::{EventType, Id, Order, OrderStatus};
use crate::mail::{OutgoingEmail, message_id_for};
use crate::storage::{EmailClaim, StoreError};
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

impl From<StoreError> for Verdict {
    fn from(err: StoreError) -> Self {
        Verdict::Retry(anyhow::Error::new(err).context("The store failed"))
    }
}

/// `?` for steps that fail with a [`Verdict`].
type Step<T> = Result<T, Verdict>;

impl Consumer {
    pub(super) async fn process(&self, message: &ReceivedMessage) -> Verdict {
        match self.try_process(message).await {
            Ok(()) => Verdict::Done,
            Err(verdict) => verdict,
        }
    }

    async fn try_process(&self, message: &ReceivedMessage) -> Step<()> {
        let envelope: Envelope =
            serde_json::from_str(&message.body).map_err(|_| Verdict::Poison("malformed-body"))?;
        let kind = EventType::parse(&envelope.event_type).ok_or(Verdict::Poison("unknown-type"))?;
        if self.store.inbox_contains(envelope.event_id).await? {
            return Ok(());
        }
        let order = self
            .store
            .order(envelope.order_id)
            .await?
            .ok_or(Verdict::Poison("unknown-order"))?;
        match kind {
            EventType::OrderCreated => self.order_created(envelope.event_id, order).await?,
            EventType::OrderCancelled => {
                self.send_email(envelope.event_id, EmailKind::Cancellation, &order)
                    .await?
            }
        }
        self.store
            .inbox_record(envelope.event_id, Utc::now())
            .await?;
        Ok(())
    }

    async fn order_created(&self, event_id: Id, mut order: Order) -> Step<()> {
        if order.status == OrderStatus::Pending {
            order = match self
                .transition(order.id, &[OrderStatus::Pending], OrderStatus::Processing)
                .await?
            {
                Some(updated) => updated,
                // Someone else moved it on: look again.
                None => self
                    .store
                    .order(order.id)
                    .await?
                    .ok_or(Verdict::Poison("unknown-order"))?,
            };
        }
        match order.status {
            OrderStatus::Processing => {}
            // Done before, cancelled meanwhile, or given up on: nothing to send.
            OrderStatus::Processed | OrderStatus::Cancelled | OrderStatus::Failed => return Ok(()),
            OrderStatus::Pending => {
                return Err(Verdict::Retry(anyhow::anyhow!(
                    "order {} is still pending",
                    order.id
                )));
            }
        }
        self.send_email(event_id, EmailKind::Confirmation, &order)
            .await?;
        if let Some(done) = self
            .transition(order.id, &[OrderStatus::Processing], OrderStatus::Processed)
            .await?
        {
            metrics::counter!(ORDERS_PROCESSED_TOTAL).increment(1);
            let lag = (Utc::now() - done.created_at).to_std().unwrap_or_default();
            metrics::histogram!("orderd_order_commit_to_processed_seconds")
                .record(lag.as_secs_f64());
        }
        Ok(())
    }

    /// A conditional transition; `None` when the order was no longer in `from`.
    async fn transition(
        &self,
        id: Id,
        from: &[OrderStatus],
        to: OrderStatus,
    ) -> Step<Option<Order>> {
        match self.store.transition_order(id, from, to, Utc::now()).await {
            Ok(order) => Ok(Some(order)),
            Err(StoreError::Conflict(_)) => Ok(None),
            Err(StoreError::NotFound) => Err(Verdict::Poison("unknown-order")),
            Err(err) => Err(err.into()),
        }
    }

    /// Renders, claims, sends and records the e-mail of `event_id`, unless already sent.
    async fn send_email(&self, event_id: Id, kind: EmailKind, order: &Order) -> Step<()> {
        let customer = self
            .store
            .user_by_id(order.user_id)
            .await?
            .ok_or(Verdict::Poison("unknown-customer"))?;
        let rendered = self
            .renderer
            .render(kind, &stored_order(order, &customer))
            .await
            .map_err(|e| {
                Verdict::Retry(e.context(format!("Failed to render the {} e-mail", kind.as_str())))
            })?;
        let now = Utc::now();
        let until = now + chrono::Duration::milliseconds(self.settings.email_claim_ms as i64);
        match self
            .store
            .claim_email(event_id, &self.owner, now, until)
            .await?
        {
            EmailClaim::AlreadySent => return Ok(()),
            EmailClaim::InProgress => {
                return Err(Verdict::Retry(anyhow::anyhow!(
                    "another delivery of event {event_id} is sending its e-mail"
                )));
            }
            EmailClaim::Claimed => {}
        }
        let email = OutgoingEmail {
            to: customer.email.as_str().to_owned(),
            to_name: customer.username.as_str().to_owned(),
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
            message_id: message_id_for(event_id),
        };
        if let Err(err) = self.mailer.send(&email).await {
            if let Err(release) = self.store.release_email(event_id, &self.owner).await {
                tracing::warn!(error = %release, %event_id, "Failed to release an e-mail claim; it expires by itself");
            }
            return Err(Verdict::Retry(
                err.context(format!("Failed to send the {} e-mail", kind.as_str())),
            ));
        }
        self.store
            .finish_email(event_id, &email.message_id, Utc::now())
            .await?;
        Ok(())
    }

    /// Deletes, leaves or gives up on a handled message according to `verdict`.
    pub(super) async fn settle(&self, message: &ReceivedMessage, verdict: &Verdict) {
        let at_limit = self
            .queue
            .max_receives()
            .is_some_and(|limit| message.receive_count >= limit);
        match verdict {
            Verdict::Done => {
                metrics::counter!("orderd_consumer_messages_total", "outcome" => "processed")
                    .increment(1);
                if let Err(err) = self.queue.delete(&message.receipt).await {
                    // The work is recorded: a redelivery finds the event in the inbox.
                    tracing::warn!(error = %err, message_id = %message.message_id, "Failed to delete a handled message");
                }
            }
            Verdict::Poison(reason) => {
                metrics::counter!("orderd_consumer_messages_total", "outcome" => "poison", "reason" => *reason).increment(1);
                tracing::error!(reason, message_id = %message.message_id, receive_count = message.receive_count, at_limit, "Message cannot be handled; it goes to the dead-letter queue after the receive limit");
            }
            Verdict::Retry(err) => {
                metrics::counter!("orderd_consumer_messages_total", "outcome" => "retry")
                    .increment(1);
                tracing::warn!(error = format!("{err:#}"), message_id = %message.message_id, receive_count = message.receive_count, at_limit, "Message handling failed; it will be retried");
                if at_limit {
                    self.give_up(message).await;
                }
            }
        }
        if at_limit && !matches!(verdict, Verdict::Done) {
            // Return it now so the next receive moves it to the dead-letter queue.
            let _ = self
                .queue
                .change_visibility(&message.receipt, Duration::ZERO)
                .await;
        }
    }

    /// The last allowed attempt of an `order.created` failed: the order becomes `failed`.
    async fn give_up(&self, message: &ReceivedMessage) {
        let Ok(envelope) = serde_json::from_str::<Envelope>(&message.body) else {
            return;
        };
        if EventType::parse(&envelope.event_type) != Some(EventType::OrderCreated) {
            return;
        }
        let id = envelope.order_id;
        let now = Utc::now();
        let _ = self
            .store
            .transition_order(id, &[OrderStatus::Pending], OrderStatus::Processing, now)
            .await;
        match self
            .store
            .transition_order(id, &[OrderStatus::Processing], OrderStatus::Failed, now)
            .await
        {
            Ok(_) => {
                metrics::counter!("orderd_orders_failed_total").increment(1);
                tracing::error!(order_id = %id, event_id = %envelope.event_id, "Order failed after the delivery attempt limit");
            }
            Err(err) => {
                tracing::warn!(error = %err, order_id = %id, "Failed to mark an order failed")
            }
        }
    }
}
