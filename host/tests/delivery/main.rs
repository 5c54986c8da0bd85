//! Delivery tests: the queue contract (embedded, and SQS when configured), the relay, the
//! consumer's duplicate, crash, outage and poison handling, retry delays and the attempt
//! budget, the retry of failed orders, end-to-end runs, supervision of the roles (a queue
//! unreachable at boot, a panicking handler), and runs against real SQS and SMTP servers
//! started by the test command.

mod admin;
mod consumer;
mod end_to_end;
mod helpers;
mod queue_contract;
mod retries;
mod retry;
mod services;
mod smtp_sink;
mod supervision;
#[path = "../support/skip.rs"]
mod support_skip;
