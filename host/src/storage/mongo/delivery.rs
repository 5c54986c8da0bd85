//! The batched consumer writes on MongoDB.
//!
//! For now the port's default methods: each step of each event is its own conditional
//! operation (as the single-event ports do them), safe to repeat after a crash.

use crate::storage::DeliveryStore;

use super::MongoStore;

impl DeliveryStore for MongoStore {}
