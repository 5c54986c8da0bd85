//! One fresh [`Store`] per plugin call: the guest's WASI context (which grants nothing), its
//! resource limits, its running-time budget and its captured stderr. Nothing survives between
//! calls, so a guest cannot carry state from one order to the next.
//!
//! The deadline is a budget of CPU time: at every epoch tick the guest is charged the CPU time
//! its thread used since the guest last resumed, and then yields to tokio (with `yield_now`,
//! so I/O-woken tasks get their turn). Time spent waiting in tokio's queue or descheduled by
//! a busy OS is not charged, so a loaded machine does not fail well-behaved plugins. Once the
//! budget is spent the guest is interrupted. (`call.rs` adds a wall-clock backstop, ten times
//! the budget, for guests blocked in a host call or starved of CPU.)

use std::sync::{Arc, Mutex, PoisonError};
use std::thread::ThreadId;
use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime::{Engine, ResourceLimiter, Store, StoreLimits, StoreLimitsBuilder, UpdateDeadline};
use wasmtime_wasi::p2::pipe::ClosedInputStream;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::stderr::StderrCapture;

/// How often the epoch advances; the granularity of deadlines and of yields to tokio.
pub const TICK: Duration = Duration::from_millis(1);

/// Everything a guest can reach from inside one call.
pub struct HostState {
    /// The WASI context: no preopens, no env, no args, no network, empty stdin.
    wasi: WasiCtx,
    /// Resources (streams) the guest opened during this call.
    table: ResourceTable,
    /// Memory and table caps, and whether the guest hit the memory cap.
    limits: CallLimits,
    /// The running-time budget, charged at every epoch tick.
    clock: Clock,
    /// What the guest wrote to stderr, flushed to tracing after the call.
    stderr: StderrCapture,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl HostState {
    /// Whether the guest asked for more memory than its cap during this call.
    pub fn memory_refused(&self) -> bool {
        self.limits.memory_refused
    }

    /// Whether the guest was interrupted because it used up its running time.
    pub fn out_of_time(&self) -> bool {
        self.clock.expired
    }

    /// The guest's stderr output so far.
    pub fn stderr(&self) -> &StderrCapture {
        &self.stderr
    }
}

/// Limits of one call's store.
pub struct StoreConfig {
    /// Largest linear memory, in bytes.
    pub memory_cap: usize,
    /// Running time the guest may use.
    pub deadline: Duration,
    /// Fuel budget, when fuel metering is on.
    pub fuel: Option<u64>,
}

/// Builds the store for one call.
pub fn new_store(engine: &Engine, config: &StoreConfig) -> wasmtime::Result<Store<HostState>> {
    let stderr = StderrCapture::new();
    let mut wasi = WasiCtxBuilder::new();
    wasi.stdin(ClosedInputStream)
        .stderr(stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }));
    let state = HostState {
        wasi: wasi.build(),
        table: ResourceTable::new(),
        limits: CallLimits::new(config.memory_cap),
        clock: Clock::new(config.deadline),
        stderr,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limits);
    if let Some(fuel) = config.fuel {
        store.set_fuel(fuel)?;
    }
    // At every tick: charge the running time, then either interrupt the guest or yield to
    // tokio so a long guest never holds a worker thread for more than a tick.
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|mut ctx| Ok(ctx.data_mut().clock.tick()));
    Ok(store)
}

/// Running-time accounting of one call.
struct Clock {
    /// CPU time the guest may use.
    budget: Duration,
    /// CPU time charged so far.
    used: Duration,
    /// Where and when the guest last resumed running; the resume future of a yield sets it.
    since: Arc<Mutex<Option<Mark>>>,
    /// Set when the budget ran out and the guest was interrupted.
    expired: bool,
}

/// A thread and its CPU clock at one instant.
#[derive(Clone, Copy)]
struct Mark {
    thread: ThreadId,
    cpu: Duration,
}

impl Mark {
    fn now() -> Self {
        Self {
            thread: std::thread::current().id(),
            cpu: thread_cpu_time(),
        }
    }
}

impl Clock {
    fn new(budget: Duration) -> Self {
        Self {
            budget,
            used: Duration::ZERO,
            since: Arc::default(),
            expired: false,
        }
    }

    /// Called at every epoch tick the guest observes.
    fn tick(&mut self) -> UpdateDeadline {
        let now = Mark::now();
        let since = self
            .since
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        // Charge the CPU time of this thread since the guest resumed on it. Before the first
        // tick, or if the call moved threads while waiting in a host call, charge one tick.
        self.used += match since {
            Some(mark) if mark.thread == now.thread => now.cpu.saturating_sub(mark.cpu),
            _ => TICK,
        };
        if self.used >= self.budget {
            self.expired = true;
            return UpdateDeadline::Interrupt;
        }
        let since = self.since.clone();
        UpdateDeadline::YieldCustom(
            1,
            Box::pin(async move {
                tokio::task::yield_now().await;
                // Runs on the thread that resumes the guest, right before it resumes.
                *since.lock().unwrap_or_else(PoisonError::into_inner) = Some(Mark::now());
            }),
        )
    }
}

/// CPU time the calling thread has used. Time the thread spends descheduled by the OS (a
/// busy machine) is not charged to the guest.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` writes only into the timespec it is given.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        ts.tv_sec.try_into().unwrap_or(0),
        ts.tv_nsec.try_into().unwrap_or(0),
    )
}

/// [`StoreLimits`] that also remember whether a memory growth was refused, so a guest that
/// aborts after a failed allocation is reported as `memory`, not as a generic trap.
struct CallLimits {
    /// The wasmtime limits doing the actual accounting.
    inner: StoreLimits,
    /// Set when `memory.grow` was refused because of the cap.
    memory_refused: bool,
}

impl CallLimits {
    fn new(memory_cap: usize) -> Self {
        let inner = StoreLimitsBuilder::new()
            .memory_size(memory_cap)
            .table_elements(100_000)
            .build();
        Self {
            inner,
            memory_refused: false,
        }
    }
}

impl ResourceLimiter for CallLimits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.inner.memory_growing(current, desired, maximum)?;
        if !allowed {
            self.memory_refused = true;
        }
        Ok(allowed)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.memory_refused = true;
        Ok(())
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}
