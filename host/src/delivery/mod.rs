//! Delivery: everything that happens to an order after its transaction commits.
//!
//! * [`relay`] moves committed outbox events to the [`queue`] (embedded or SQS);
//! * [`consumer`] takes them off the queue, moves the order `pending → processing →
//!   processed` and sends its e-mail, each exactly once in effect;
//! * [`roles`] opens the queue and mailer and runs the relay and consumer until shutdown;
//! * [`backoff`] is the one retry schedule they all use, [`worker`] the loop shape they share.

pub mod backoff;
pub mod consumer;
pub mod queue;
pub mod relay;
pub mod roles;
pub mod worker;

pub use roles::{DeliveryDeps, DeliveryRoles, open_queue, queue_settings, run};
