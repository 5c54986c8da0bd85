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
use rule_types::{Customer, LineItem, Money, OrderDraft};

fn five_line_order() -> OrderDraft {
    let line = |n: u32, price: i64, quantity: u32, category: &str| LineItem {
        product_id: format!("65f0c0ffee00000000000{n:03}"),
        sku: format!("SKU-{n}"),
        name: format!("Product {n}"),
        category: category.into(),
        unit_price: Money::new(price, "INR"),
        quantity,
    };
    OrderDraft {
        order_id: None,
        customer: Customer {
            id: "65f0c0ffee0000000000c0de".into(),
            email: "bench@example.com".into(),
            name: "bench".into(),
        },
        items: vec![
            line(1, 64_900, 2, "essentials"),
            line(2, 49_950, 1, "electronics"),
            line(3, 12_000, 3, "stationery"),
            line(4, 1_999, 5, "general"),
            line(5, 2_025, 1, "general"),
        ],
        currency: "INR".into(),
        shipping_address: None,
    }
}

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

/// Prints the ratio from a fixed number of iterations of each, after a warm-up.
fn ratio() {
    let s = setup();
    wasm_calls(&s, 500);
    native_calls(&s.draft, 50_000);
    let (wasm_n, native_n) = (5_000u64, 500_000u64);
    let wasm = wasm_calls(&s, wasm_n).as_secs_f64() / wasm_n as f64;
    let native = native_calls(&s.draft, native_n).as_secs_f64() / native_n as f64;
    println!(
        "tax_slot: wasm (fresh store per call) {:.2} µs, native {:.3} µs, ratio {:.0}x",
        wasm * 1e6,
        native * 1e6,
        wasm / native
    );
}

criterion_group!(benches, tax_slot);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    ratio();
}
