//! Application services: the use cases behind the HTTP routes, written against the storage
//! ports and the plugin runtime and free of HTTP types. `orders` places, reads, lists and
//! cancels orders; `idempotency` defines `Idempotency-Key`; `plugins` uploads, lists and rolls
//! back rule-plugin versions; `plugin_sync` keeps this instance's runtime on the versions the
//! shared store marks active; `pipeline_history` samples the order pipeline for the
//! operator console.

pub mod idempotency;
pub mod orders;
pub mod pipeline_history;
pub mod plugin_sync;
pub mod plugins;
