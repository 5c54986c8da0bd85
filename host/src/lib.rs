//! orderd: an order-processing service whose tax, validation and e-mail rules are
//! WebAssembly components. The binary (`main.rs`) only parses the command line and calls in
//! here; every module below owns one concern (see its `//!` doc).

pub mod auth;
pub mod cli;
pub mod configuration;
pub mod delivery;
pub mod domain;
pub mod http;
pub mod mail;
pub mod memory;
pub mod migrate;
pub mod node_env;
pub mod plugins;
pub mod private_files;
pub mod service;
pub mod startup;
pub mod storage;
pub mod telemetry;
pub mod testing;
