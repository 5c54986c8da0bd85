//! The price of the sandbox: the tax slot on a five-line order, called through
//! `PluginRuntime::calculate_tax` (fresh store, instantiation, input/output conversion, output
//! checks), against the same rule (`gst_tax::calculate`) compiled natively, in the same run.
//! Also prices the thread hand-off a `spawn_blocking` per call would add (the alternative to
//! running guests on fibers on the calling task).
//!
//! `cargo bench -p orderd --bench tax_slot` — criterion prints each figure; a final line
//! prints the wasm/native ratio from a fixed number of iterations of each.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use orderd::plugins::{PluginRuntime, RuntimeSettings};

#[path = "support/order.rs"]
mod order;
use order::five_line_order;
use rule_types::OrderDraft;

struct Setup {
    rt: tokio::runtime::Runtime,
    runtime: PluginRuntime,
    draft: OrderDraft,
}

fn setup() -> Setup {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio starts");
    let runtime = rt
        .block_on(PluginRuntime::with_embedded_defaults(
            RuntimeSettings::default(),
        ))
        .expect("the built-in plugins load");
    Setup {
        rt,
        runtime,
        draft: five_line_order(),
    }
}

/// Time of `iters` wasm calls, run back to back on one task.
fn wasm_calls(s: &Setup, iters: u64) -> Duration {
    s.rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(
                s.runtime
                    .calculate_tax(black_box(&s.draft))
                    .await
                    .expect("the call succeeds"),
            );
        }
        start.elapsed()
    })
}

/// Time of `iters` native calls.
fn native_calls(draft: &OrderDraft, iters: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        black_box(gst_tax::calculate(black_box(draft), &[]).expect("the rule succeeds"));
    }
    start.elapsed()
}

fn tax_slot(c: &mut Criterion) {
    let s = setup();
    // Same rule, same answer.
    let wasm = s.rt.block_on(s.runtime.calculate_tax(&s.draft)).unwrap();
    assert_eq!(wasm, gst_tax::calculate(&s.draft, &[]).unwrap());

    let mut group = c.benchmark_group("tax_slot");
    group.bench_function("wasm_fresh_store", |b| {
        b.iter_custom(|iters| wasm_calls(&s, iters))
    });
    group.bench_function("native", |b| {
        b.iter_custom(|iters| native_calls(&s.draft, iters))
    });
    group.bench_function("spawn_blocking_handoff", |b| {
        b.iter_custom(|iters| {
            s.rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    tokio::task::spawn_blocking(|| black_box(0)).await.unwrap();
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

/// CPU time the calling thread has used (the calls below run on it: `block_on` polls on the
/// calling thread), so the figures hold on a busy machine too.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` writes only into the timespec it is given.
    assert_eq!(
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) },
        0
    );
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Wall and CPU time per call of `f(iters)`, in µs.
fn per_call(iters: u64, f: impl FnOnce(u64) -> Duration) -> (f64, f64) {
    let cpu = thread_cpu_time();
    let wall = f(iters);
    let cpu = thread_cpu_time() - cpu;
    let us = |d: Duration| d.as_secs_f64() * 1e6 / iters as f64;
    (us(wall), us(cpu))
}

/// Prints both figures and their ratio from a fixed number of iterations of each, after a
/// warm-up, as wall time and as CPU time of the calling thread.
fn ratio() {
    let s = setup();
    wasm_calls(&s, 500);
    native_calls(&s.draft, 50_000);
    let (wasm_wall, wasm_cpu) = per_call(5_000, |n| wasm_calls(&s, n));
    let (native_wall, native_cpu) = per_call(500_000, |n| native_calls(&s.draft, n));
    println!(
        "tax_slot wall: wasm (fresh store per call) {wasm_wall:.2} µs, native {native_wall:.3} µs, ratio {:.0}x",
        wasm_wall / native_wall
    );
    println!(
        "tax_slot CPU:  wasm (fresh store per call) {wasm_cpu:.2} µs, native {native_cpu:.3} µs, ratio {:.0}x",
        wasm_cpu / native_cpu
    );
}

criterion_group!(benches, tax_slot);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    ratio();
}
