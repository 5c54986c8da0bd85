//! Shared fixtures: the built components, runtimes with the test settings, orders, and the
//! expected taxes computed independently of the plugins.

use std::path::PathBuf;

use orderd::plugins::{
    FailurePolicy, PLUGIN_DIR, PluginRuntime, PluginSource, RuntimeSettings, Slot,
};
use rule_types::{Customer, LineItem, Money, OrderDraft, TaxBreakdown};

/// The bytes of a component built from `plugins/` (e.g. `"spin_loop"`).
pub fn component(name: &str) -> Vec<u8> {
    let path = PathBuf::from(PLUGIN_DIR).join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{} is missing: {e}", path.display()))
}

/// Settings for tests: production limits, with a shared artifact cache so each component is
/// compiled once per test run rather than once per test.
pub fn settings() -> RuntimeSettings {
    RuntimeSettings {
        cache_dir: Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plugin-cache")),
        max_concurrent_calls: 16,
        ..RuntimeSettings::default()
    }
}

/// A runtime serving the built-in defaults.
pub async fn defaults_runtime(settings: RuntimeSettings) -> PluginRuntime {
    PluginRuntime::with_embedded_defaults(settings)
        .await
        .expect("the built-in plugins load")
}

/// A runtime serving the defaults that loads candidates without the smoke test, so hostile
/// guests can be activated and their calls observed.
pub async fn unguarded_runtime() -> PluginRuntime {
    defaults_runtime(RuntimeSettings {
        smoke_test: false,
        ..settings()
    })
    .await
}

/// Activates the named test component in the tax slot.
pub async fn load_tax(runtime: &PluginRuntime, name: &str, policy: FailurePolicy) {
    runtime
        .load(
            Slot::Tax,
            component(name),
            Vec::new(),
            Some(policy),
            test_source(name),
        )
        .await
        .unwrap_or_else(|e| panic!("{name} loads: {e}"));
}

/// A source label for test components.
pub fn test_source(name: &str) -> PluginSource {
    PluginSource::Upload {
        version_id: name.into(),
    }
}

/// A draft in INR with one line per `(unit price, quantity, category)`.
pub fn draft(lines: &[(i64, u32, &str)]) -> OrderDraft {
    OrderDraft {
        order_id: None,
        customer: Customer {
            id: "65f0c0ffee0000000000c0de".into(),
            email: "ravi@example.com".into(),
            name: "ravi".into(),
        },
        items: lines
            .iter()
            .enumerate()
            .map(|(i, &(price, quantity, category))| LineItem {
                product_id: format!("65f0c0ffee00000000000{i:03}"),
                sku: format!("SKU-{i}"),
                name: format!("Item {i}"),
                category: category.into(),
                unit_price: Money::new(price, "INR"),
                quantity,
            })
            .collect(),
        currency: "INR".into(),
        shipping_address: None,
    }
}

/// A five-line order whose taxes exercise half-up rounding.
pub fn five_lines() -> OrderDraft {
    draft(&[
        (1999, 3, "general"),
        (2025, 1, "general"),
        (1, 1, "general"),
        (49_950, 2, "electronics"),
        (25, 1, "essentials"),
    ])
}

/// Tax at `bps` on `taxable`, rounded half-up to the minor unit: the exact product split into
/// whole minor units and a remainder, rounded up when the remainder is at least half.
pub fn half_up(taxable: i64, bps: u32) -> i64 {
    let scaled = taxable as i128 * bps as i128;
    let whole = scaled / 10_000;
    let remainder = scaled % 10_000;
    (whole + i128::from(remainder >= 5_000)) as i64
}

/// Asserts that `out` is wholly the result of one flat rate (`name`, `bps`) on every line.
pub fn assert_single_rate(draft: &OrderDraft, out: &TaxBreakdown, name: &str, bps: u32) {
    assert_eq!(out.lines.len(), draft.items.len(), "{out:?}");
    let mut total = 0;
    for (i, (line, item)) in out.lines.iter().zip(&draft.items).enumerate() {
        let taxable = item.unit_price.amount * i64::from(item.quantity);
        assert_eq!(line.item_index as usize, i);
        assert_eq!(
            (line.rate_name.as_str(), line.rate_bps),
            (name, bps),
            "{out:?}"
        );
        assert_eq!(line.taxable, Money::new(taxable, "INR"));
        assert_eq!(
            line.tax,
            Money::new(half_up(taxable, bps), "INR"),
            "line {i}"
        );
        total += half_up(taxable, bps);
    }
    assert_eq!(out.total_tax, Money::new(total, "INR"));
    assert_eq!(out.by_rate.len(), 1, "{out:?}");
    assert_eq!(
        (out.by_rate[0].rate_name.as_str(), out.by_rate[0].rate_bps),
        (name, bps)
    );
    assert_eq!(out.by_rate[0].tax, Money::new(total, "INR"));
}

/// CPU time the calling thread has used.
pub fn thread_cpu_time() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` writes only into the timespec it is given.
    assert_eq!(
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) },
        0
    );
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
