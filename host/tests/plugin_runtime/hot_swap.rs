//! Swapping versions under load: calls never fail and never see a mix of two versions.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use orderd::plugins::Slot;

use crate::helpers::{
    assert_single_rate, component, defaults_runtime, five_lines, settings, test_source,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_callers_see_only_whole_versions_while_v1_and_v2_swap_every_100_ms() {
    let runtime = defaults_runtime(settings()).await;
    let versions = [("v1", component("gst_tax")), ("v2", component("flat_tax"))];
    let stop = Arc::new(AtomicBool::new(false));

    let callers: Vec<_> = (0..8)
        .map(|_| {
            let runtime = runtime.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let order = five_lines();
                let (mut v1, mut v2) = (0u32, 0u32);
                while !stop.load(Ordering::Relaxed) {
                    let out = runtime
                        .calculate_tax(&order)
                        .await
                        .expect("no call fails during swaps");
                    // Wholly one version: every check below covers every line and total.
                    if out.lines[0].rate_name == "gst" {
                        assert_single_rate(&order, &out, "gst", 1800);
                        v1 += 1;
                    } else {
                        assert_single_rate(&order, &out, "flat", 1000);
                        v2 += 1;
                    }
                }
                (v1, v2)
            })
        })
        .collect();

    let mut swaps = 0u32;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::time::Instant::now() < deadline {
        let (label, bytes) = &versions[(swaps % 2) as usize];
        runtime
            .load(
                Slot::Tax,
                bytes.clone(),
                Vec::new(),
                None,
                test_source(label),
            )
            .await
            .expect("each version loads");
        swaps += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);

    let (mut v1, mut v2) = (0, 0);
    for caller in callers {
        let (a, b) = caller.await.expect("no caller panicked");
        v1 += a;
        v2 += b;
    }
    assert!(swaps >= 30, "only {swaps} swaps in 5 s");
    assert!(v1 > 0 && v2 > 0, "both versions served ({v1} v1, {v2} v2)");
    let status = runtime.slot_status(Slot::Tax);
    assert_eq!(status.errors, 0);
    assert_eq!(u64::from(v1 + v2), status.calls);
}
