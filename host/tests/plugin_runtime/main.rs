//! Black-box tests of the plugin runtime: limits (deadline, memory, fuel, input size; also per
//! slot) in obeyed/violated pairs, the sandbox, refused candidates, hot swap, failure policies,
//! the directory watcher, the artifact cache and the default plugins' documented results. The
//! hostile guests are the components built from `plugins/test-guests/`.

mod cache;
mod cache_trust;
mod defaults;
mod helpers;
mod hot_swap;
mod limits;
mod loading;
mod policy;
mod sandbox;
mod slot_limits;
#[path = "../support/skip.rs"]
mod support_skip;
mod upload_cancel;
mod watcher;
mod watcher_files;
