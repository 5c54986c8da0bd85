//! The same tax rule in two languages: the built-in Rust `gst-tax` component and its Python
//! port (`plugins/examples/python-tax`, built by its `build.sh` with componentize-py), side by
//! side in one run. Both give the same breakdown on the bench order (asserted).
//!
//! * per call: `PluginRuntime::calculate_tax` on a five-line order (fresh store, instantiation,
//!   call, output checks), wall and CPU time of the calling thread;
//! * load: `PluginRuntime::check` of each component in a new runtime on an empty artifact cache
//!   (a cold compile) and again in another new runtime on that cache (a restart).
//!
//! Each figure is the median (min–max) of `PYTHON_BENCH_RUNS` runs (default 3);
//! `PYTHON_BENCH_SKIP_LOADS=1` measures the calls only.
//!
//! `plugins/examples/python-tax/build.sh && cargo bench -p orderd --bench python_tax`
//! (`ORDERD_BENCH_PYTHON_TAX` names another component file).

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use orderd::plugins::{
    FailurePolicy, PluginRuntime, PluginSource, RuntimeSettings, Slot, default_component,
};

#[path = "support/order.rs"]
mod order;
use order::five_line_order;
use rule_types::OrderDraft;

/// CPU time the calling thread has used (`block_on` polls the calls on this thread).
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

fn settings(cache: Option<PathBuf>) -> RuntimeSettings {
    RuntimeSettings {
        cache_dir: cache,
        max_concurrent_calls: 4,
        ..RuntimeSettings::default()
    }
}

/// A runtime serving `bytes` in the tax slot.
async fn serving(bytes: &[u8], cache: PathBuf) -> PluginRuntime {
    let runtime = PluginRuntime::new(settings(Some(cache))).expect("the runtime starts");
    runtime
        .load(
            Slot::Tax,
            bytes.to_vec(),
            Vec::new(),
            Some(FailurePolicy::FailClosed),
            PluginSource::Embedded,
        )
        .await
        .expect("the plugin loads");
    runtime
}

/// Wall and CPU time per call, in µs, of `iters` calls back to back.
async fn per_call(runtime: &PluginRuntime, draft: &OrderDraft, iters: u32) -> (f64, f64) {
    let cpu = thread_cpu_time();
    let started = Instant::now();
    for _ in 0..iters {
        black_box(
            runtime
                .calculate_tax(black_box(draft))
                .await
                .expect("the call succeeds"),
        );
    }
    let wall = started.elapsed();
    let cpu = thread_cpu_time() - cpu;
    let us = |d: Duration| d.as_secs_f64() * 1e6 / f64::from(iters);
    (us(wall), us(cpu))
}

/// A load of a plugin into a new runtime, in ms: the compile step (or the artifact cache's
/// load) and the whole check (compile, world check, link, smoke test).
struct Load {
    compile: f64,
    total: f64,
}

/// A cold load of `bytes` on an empty artifact cache, then a load on that cache, each in a
/// new runtime (what a restart does).
async fn load_times(bytes: &[u8]) -> (Load, Load) {
    let cache = tempfile::tempdir().expect("a temporary directory");
    let check = || async {
        let runtime = PluginRuntime::new(settings(Some(cache.path().to_path_buf())))
            .expect("the runtime starts");
        let started = Instant::now();
        let report = runtime
            .check(Slot::Tax, bytes)
            .await
            .expect("the plugin checks");
        let load = Load {
            compile: report.compile_time.as_secs_f64() * 1e3,
            total: started.elapsed().as_secs_f64() * 1e3,
        };
        (report.cached, load)
    };
    let (cached, cold) = check().await;
    assert!(!cached, "the cache was empty");
    let (cached, warm) = check().await;
    assert!(cached, "the second runtime loads the artifact");
    (cold, warm)
}

/// `median (min–max)` of `values`.
fn spread(values: &[f64], digits: usize) -> String {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    format!(
        "{:.digits$} ({:.digits$}–{:.digits$})",
        sorted[sorted.len() / 2],
        sorted[0],
        sorted[sorted.len() - 1]
    )
}

fn main() {
    let path = std::env::var_os("ORDERD_BENCH_PYTHON_TAX")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../target/python-plugins/python_tax.wasm")
        });
    let python = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; build it first with plugins/examples/python-tax/build.sh",
            path.display()
        )
    });
    let rust = default_component(Slot::Tax).to_vec();
    let runs: usize = std::env::var("PYTHON_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio starts");
    let draft = five_line_order();
    // The per-call runtimes share the test run's artifact cache; the load figures below each
    // start from an empty one.
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plugin-cache");
    let loads = std::env::var("PYTHON_BENCH_SKIP_LOADS").is_err();

    rt.block_on(async {
        let rust_rt = serving(&rust, cache.clone()).await;
        let python_rt = serving(&python, cache.clone()).await;
        let expected = rust_rt.calculate_tax(&draft).await.unwrap();
        assert_eq!(
            python_rt.calculate_tax(&draft).await.unwrap(),
            expected,
            "same answer"
        );
        // Warm-up.
        per_call(&rust_rt, &draft, 2_000).await;
        per_call(&python_rt, &draft, 20).await;

        let (mut rust_wall, mut rust_cpu, mut py_wall, mut py_cpu, mut ratio) =
            (vec![], vec![], vec![], vec![], vec![]);
        for _ in 0..runs {
            let (w, c) = per_call(&rust_rt, &draft, 20_000).await;
            rust_wall.push(w);
            rust_cpu.push(c);
            let (pw, pc) = per_call(&python_rt, &draft, 200).await;
            py_wall.push(pw);
            py_cpu.push(pc);
            ratio.push(pc / c);
        }
        println!("per call, five-line order, median (min–max) of {runs} runs:");
        println!(
            "  rust gst-tax     wall {} µs, CPU {} µs",
            spread(&rust_wall, 1),
            spread(&rust_cpu, 1)
        );
        println!(
            "  python-tax       wall {} µs, CPU {} µs",
            spread(&py_wall, 0),
            spread(&py_cpu, 0)
        );
        println!("  ratio (CPU)      {}x", spread(&ratio, 0));

        if !loads {
            return;
        }
        for (name, bytes) in [("rust gst-tax", &rust), ("python-tax", &python)] {
            let mut loads = vec![];
            for _ in 0..runs {
                loads.push(load_times(bytes).await);
            }
            let of =
                |f: fn(&(Load, Load)) -> f64| spread(&loads.iter().map(f).collect::<Vec<_>>(), 1);
            println!("load {name} ({} bytes), in ms:", bytes.len());
            println!(
                "  cold:   compile {}, whole check {}",
                of(|l| l.0.compile),
                of(|l| l.0.total)
            );
            println!(
                "  cached: load {}, whole check {}",
                of(|l| l.1.compile),
                of(|l| l.1.total)
            );
        }
    });
}
