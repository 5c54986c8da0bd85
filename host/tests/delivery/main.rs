//! Delivery tests: the queue contract (embedded, and SQS when configured), the relay, the
//! consumer's duplicate, crash, outage and poison handling, the retry of failed orders,
//! end-to-end runs, and runs against real SQS and SMTP servers started by the test command.

mod admin;
mod consumer;
mod end_to_end;
mod helpers;
mod queue_contract;
mod retry;
mod services;
mod smtp_sink;
#[path = "../support/skip.rs"]
mod support_skip;
