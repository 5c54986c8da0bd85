//! Delivery: everything that happens to an order after its transaction commits.
//!
//! * [`relay`] moves committed outbox events to the [`queue`] (embedded or SQS);
//! * [`consumer`] takes them off the queue, moves the order `pending → processing →
//!   processed` and sends its e-mail, each exactly once in effect;
//! * [`roles`] runs the relay and consumer until shutdown, each under a [`supervisor`] that
//!   restarts it when it fails (opening the queue and mailer is part of starting a role);
//! * [`role_health`] is what each role reports for `/api/ready`;
//! * [`backoff`] is the one retry schedule they all use, [`worker`] the loop shape they share.

pub mod backoff;
pub mod consumer;
pub mod queue;
pub mod relay;
pub mod role_health;
pub mod roles;
pub mod supervisor;
pub mod worker;

pub use role_health::{DeliveryHealth, RoleHealth};
pub use roles::{DeliveryDeps, DeliveryRoles, open_queue, queue_settings, run};
pub use supervisor::DeliverySettings;
