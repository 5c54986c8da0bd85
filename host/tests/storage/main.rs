//! Storage tests: the contract suite (`contract`), written once over `Store` and instantiated
//! for every backend, plus backend-specific checks.

#[macro_use]
mod contract;
mod file_modes;
mod mongo;
mod sqlite;
#[path = "../support/skip.rs"]
mod support_skip;
