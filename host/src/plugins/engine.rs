//! The one wasmtime [`Engine`] of a runtime and the [`Linker`] every plugin is instantiated
//! with.
//!
//! * Component model with the pooling allocator, sized for `max_concurrent_calls` live
//!   instances (instances, memories and fiber stacks come from pre-reserved slots, so a call
//!   allocates nothing from the OS). Each memory slot is sized for the largest per-slot memory
//!   cap; a call's own cap is enforced by its store.
//! * Epoch interruption, driven by a ticker thread that bumps the epoch every millisecond and
//!   stops once the engine is dropped. On every tick a running guest is charged its CPU time
//!   against the call's budget and yields to tokio (see `store.rs`).
//! * Exports are called with `call_async` on a fiber: the guest runs on the caller's tokio
//!   worker and yields back to tokio at every tick, so a slow guest occupies a worker for at
//!   most a tick at a time and no thread hand-off is paid per call (a `spawn_blocking` round
//!   trip alone measured ≈ 15 µs, about 70% of a whole tax call; see BENCHMARKS.md).
//! * The linker provides WASI preview 2 (a Rust `wasm32-wasip2` component imports it even when
//!   it uses none of it); the WASI context of each call grants nothing.

use std::thread;

use anyhow::Context as _;
use wasmtime::component::Linker;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::settings::RuntimeSettings;
use super::store::{HostState, TICK};
use super::wt;

/// Bytes of each linear memory reset with memset (kept resident) between calls.
const KEEP_RESIDENT: usize = 2 << 20;

/// Core instances the pool holds per concurrent call: enough for a componentize-py component.
const CORE_INSTANCES_PER_CALL: u32 = 16;

/// Builds the engine for `settings` and starts its epoch ticker.
pub fn build_engine(settings: &RuntimeSettings) -> anyhow::Result<Engine> {
    let n = settings.max_concurrent_calls.max(1);
    let memory_cap = settings.largest_memory_cap();
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(n)
        // A Rust component is 3 core instances (the program, its WASI shims); a Python one
        // from componentize-py is 14 (interpreter, libc, WASI adapter, shims). Slots cost
        // address space only until used.
        .total_core_instances(n.saturating_mul(CORE_INSTANCES_PER_CALL))
        .total_memories(n.saturating_mul(2))
        .total_tables(n.saturating_mul(4))
        .total_stacks(n)
        .total_gc_heaps(n)
        .max_memory_size(memory_cap);
    // Reset each call's memory and tables with memset instead of madvise: a fresh store per
    // call otherwise pays page faults and a decommit syscall for every page it touches. 2 MiB
    // covers a Rust guest's 1 MiB stack, its data and a small heap (measured: 28 → 20 µs per
    // tax call; see BENCHMARKS.md). The cost is that much RSS per warm pool slot.
    pool.linear_memory_keep_resident(KEEP_RESIDENT.min(memory_cap))
        .table_keep_resident(64 << 10);

    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .consume_fuel(settings.fuel.is_some())
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    let engine = Engine::new(&config)
        .map_err(wt)
        .context("Failed to create the WebAssembly engine")?;
    spawn_ticker(&engine)?;
    Ok(engine)
}

/// A linker with WASI preview 2 (async variant, for `call_async`).
pub fn build_linker(engine: &Engine) -> anyhow::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)
        .map_err(wt)
        .context("Failed to add WASI to the plugin linker")?;
    Ok(linker)
}

/// Bumps the engine's epoch every [`TICK`] until the engine is dropped.
fn spawn_ticker(engine: &Engine) -> anyhow::Result<()> {
    let weak = engine.weak();
    thread::Builder::new()
        .name("plugin-epoch".into())
        .spawn(move || {
            loop {
                thread::sleep(TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })
        .context("Failed to start the plugin epoch ticker")?;
    Ok(())
}
