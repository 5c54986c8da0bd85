//! The tax plugin written in Python (`plugins/examples/python-tax`, built with componentize-py
//! by the README test command) through everything a Rust plugin goes through: `orderd plugin
//! check` and `plugin run`, every fixture of the Rust `gst-tax` plugin (same answers), the
//! artifact cache on a restart, a per-slot memory cap, and an upload to a live `orderd` that
//! then taxes an order with it.

#[path = "support/binary.rs"]
mod binary;
#[path = "support/skip.rs"]
mod skip;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use orderd::plugins::{
    FailureKind, LoadError, PluginCallError, PluginRuntime, PluginSource, RuntimeSettings, Slot,
    sha256_hex,
};
use rule_types::fixture::{Expected, Fixture};
use rule_types::{OrderDraft, PluginError, TaxBreakdown};
use serde_json::{Value, json};

use binary::{free_port, get, post, product_and_customer, sigterm, start, wait_exit};
use skip::{Need, skip};

/// Where `plugins/examples/python-tax/build.sh` writes the component by default.
const DEFAULT_BUILD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../target/python-plugins/python_tax.wasm"
);

/// The built Python component (`ORDERD_TEST_PYTHON_TAX`, else the build script's default
/// output), or `None` after reporting `test` as skipped. Under the README test command, which
/// builds it, a missing component is a failure.
fn python_tax(test: &str) -> Option<(PathBuf, Vec<u8>)> {
    let path = std::env::var_os("ORDERD_TEST_PYTHON_TAX")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_BUILD));
    match std::fs::read(&path) {
        Ok(bytes) => Some((path, bytes)),
        Err(e) => {
            if std::env::var("ORDERD_TEST_REQUIRE_SERVICES").is_ok_and(|v| v == "1") {
                panic!(
                    "{test}: the test command should have built {}: {e}",
                    path.display()
                );
            }
            skip(
                test,
                Need::Unavailable(&format!(
                    "needs the Python plugin built by componentize-py 0.25.1 ({} is missing: {e}; \
                     run plugins/examples/python-tax/build.sh or the README test command)",
                    path.display()
                )),
            );
            None
        }
    }
}

/// The shared artifact cache of the test run.
fn shared_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plugin-cache")
}

/// Compiles the component into the shared cache once per test process, so the tests using
/// that cache do not each compile 18 MB at the same time on a 2-core machine.
async fn warm_shared_cache(bytes: &[u8]) {
    static WARMED: tokio::sync::Mutex<bool> = tokio::sync::Mutex::const_new(false);
    let mut warmed = WARMED.lock().await;
    if !*warmed {
        PluginRuntime::new(settings(&shared_cache()))
            .unwrap()
            .check(Slot::Tax, bytes)
            .await
            .unwrap();
        *warmed = true;
    }
}

fn settings(cache: &Path) -> RuntimeSettings {
    RuntimeSettings {
        cache_dir: Some(cache.to_path_buf()),
        max_concurrent_calls: 4,
        ..RuntimeSettings::default()
    }
}

fn orderd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_orderd"))
        .args(args)
        .output()
        .expect("orderd runs")
}

type TaxFixture = Fixture<OrderDraft, TaxBreakdown>;

/// Every fixture of the Rust `gst-tax` plugin, by file name.
fn gst_tax_fixtures() -> Vec<(String, TaxFixture)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/gst-tax/fixtures");
    let mut fixtures: Vec<(String, TaxFixture)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let fixture = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("fixture {name} does not parse: {e}"));
            (name, fixture)
        })
        .collect();
    fixtures.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(fixtures.len() >= 8, "the gst-tax fixtures are missing");
    fixtures
}

#[test]
fn plugin_check_accepts_the_python_plugin_and_plugin_run_answers_a_gst_tax_fixture() {
    let test = "plugin_check_accepts_the_python_plugin_and_plugin_run_answers_a_gst_tax_fixture";
    let Some((path, bytes)) = python_tax(test) else {
        return;
    };
    let file = path.display().to_string();
    let out = orderd(&["plugin", "check", &file, "--slot", "tax"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("size:         {} bytes", bytes.len())),
        "{text}"
    );
    assert!(
        text.contains("exports:      exports, shop:rules/tax@0.1.0"),
        "{text}"
    );
    assert!(text.contains("smoke test:   passed"), "{text}");
    eprintln!("plugin check of the Python plugin:\n{text}");

    let (_, fixture) = gst_tax_fixtures()
        .into_iter()
        .find(|(name, _)| name == "per-category-rates.json")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("draft.json");
    std::fs::write(&input, serde_json::to_vec(&fixture.input).unwrap()).unwrap();
    let mut args = vec![
        "plugin".to_owned(),
        "run".into(),
        file,
        "--slot".into(),
        "tax".into(),
        "--input".into(),
        input.display().to_string(),
    ];
    for (key, value) in &fixture.config {
        args.extend(["--config".into(), format!("{key}={value}")]);
    }
    let out = orderd(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let breakdown: TaxBreakdown = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(Expected::Ok(breakdown), fixture.expected);
}

#[tokio::test]
async fn the_python_plugin_answers_every_gst_tax_fixture_exactly_as_the_rust_plugin_does() {
    let test = "the_python_plugin_answers_every_gst_tax_fixture_exactly_as_the_rust_plugin_does";
    let Some((path, bytes)) = python_tax(test) else {
        return;
    };
    warm_shared_cache(&bytes).await;
    // No smoke test: some fixtures carry a config the smoke test would refuse (`plugin run`
    // loads the same way).
    let runtime = PluginRuntime::new(RuntimeSettings {
        smoke_test: false,
        ..settings(&shared_cache())
    })
    .unwrap();
    let source = PluginSource::File { path };
    for (name, fixture) in gst_tax_fixtures() {
        runtime
            .load(
                Slot::Tax,
                bytes.clone(),
                fixture.config.clone(),
                None,
                source.clone(),
            )
            .await
            .unwrap_or_else(|e| panic!("{name}: the Python plugin loads: {e}"));
        let actual = runtime.calculate_tax(&fixture.input).await;
        let native = gst_tax::calculate(&fixture.input, &fixture.config);
        match (&fixture.expected, actual) {
            (Expected::Ok(expected), Ok(actual)) => {
                assert_eq!(&actual, expected, "{name}: {}", fixture.description);
                assert_eq!(Ok(actual), native, "{name}: the Rust rule agrees");
            }
            (
                Expected::Error(expected),
                Err(PluginCallError::Unavailable {
                    kind: FailureKind::PluginError { code, message },
                    ..
                }),
            ) => {
                let actual = PluginError::new(code, message);
                assert!(
                    expected.matches(&actual),
                    "{name}: expected {expected:?}, got {actual:?}"
                );
                assert_eq!(native.unwrap_err().code, actual.code, "{name}");
            }
            (expected, actual) => panic!("{name}: expected {expected:?}, got {actual:?}"),
        }
    }
}

#[tokio::test]
async fn a_restarted_runtime_loads_the_python_plugin_from_the_artifact_cache_in_a_fraction_of_the_compile_time()
 {
    let test = "a_restarted_runtime_loads_the_python_plugin_from_the_artifact_cache_in_a_fraction_of_the_compile_time";
    let Some((_, bytes)) = python_tax(test) else {
        return;
    };
    let cache = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let cold = PluginRuntime::new(settings(cache.path()))
        .unwrap()
        .check(Slot::Tax, &bytes)
        .await
        .unwrap();
    let cold_total = started.elapsed();
    // A new runtime on the same directory: what a restarted orderd does.
    let started = Instant::now();
    let warm = PluginRuntime::new(settings(cache.path()))
        .unwrap()
        .check(Slot::Tax, &bytes)
        .await
        .unwrap();
    let warm_total = started.elapsed();
    eprintln!(
        "Python plugin ({} bytes): compiled in {:?} (check {:?} in all); from the cache in {:?} (check {:?} in all)",
        bytes.len(),
        cold.compile_time,
        cold_total,
        warm.compile_time,
        warm_total
    );
    assert!(!cold.cached, "nothing was cached yet");
    assert!(warm.cached, "the restarted runtime uses the artifact");
    assert!(warm.smoke_tested, "the precompiled plugin still runs");
    assert!(
        warm.compile_time * 5 < cold.compile_time,
        "loading from the cache ({:?}) is not much faster than compiling ({:?})",
        warm.compile_time,
        cold.compile_time
    );
}

#[tokio::test]
async fn the_python_plugin_is_refused_under_a_tax_slot_memory_cap_below_its_heap_and_runs_above_it()
{
    let test =
        "the_python_plugin_is_refused_under_a_tax_slot_memory_cap_below_its_heap_and_runs_above_it";
    let Some((_, bytes)) = python_tax(test) else {
        return;
    };
    warm_shared_cache(&bytes).await;
    // The interpreter's initial memory is about 12 MiB: an 8 MiB cap on the tax slot refuses it,
    // whatever the runtime-wide cap.
    let mut tight = RuntimeSettings {
        memory_cap_bytes: 256 << 20,
        ..settings(&shared_cache())
    };
    tight.tax.memory_cap_bytes = Some(8 << 20);
    let err = PluginRuntime::new(tight)
        .unwrap()
        .check(Slot::Tax, &bytes)
        .await
        .unwrap_err();
    match &err {
        LoadError::SmokeTest { slot, message } => {
            assert_eq!(*slot, Slot::Tax);
            assert!(message.starts_with("memory"), "{message}");
        }
        other => panic!("expected a failed smoke test, got {other:?}"),
    }

    // The same cap on another slot leaves the tax slot at the runtime-wide 32 MiB.
    let mut elsewhere = settings(&shared_cache());
    elsewhere.validation.memory_cap_bytes = Some(8 << 20);
    let report = PluginRuntime::new(elsewhere)
        .unwrap()
        .check(Slot::Tax, &bytes)
        .await
        .unwrap();
    assert!(report.smoke_tested);
}

#[tokio::test]
async fn an_order_on_a_live_orderd_is_taxed_by_the_python_plugin_uploaded_through_the_admin_api() {
    let test =
        "an_order_on_a_live_orderd_is_taxed_by_the_python_plugin_uploaded_through_the_admin_api";
    let Some((_, bytes)) = python_tax(test) else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    // The server's own artifact cache, so only it writes there. The upload compiles 18 MB: a
    // few seconds in a release build, but up to a minute on a busy 2-core test machine, so
    // the request timeout is raised for this server.
    let cache = tempfile::tempdir().unwrap();
    let env = [
        (
            "ORDERD_PLUGINS__CACHE_DIR",
            cache.path().display().to_string(),
        ),
        ("ORDERD_HTTP__REQUEST_TIMEOUT_MS", "300000".to_owned()),
    ];
    let mut server = start(data.path(), free_port(), 0, &env);
    let http = reqwest::Client::new();
    binary::wait_ready(&http, &mut server).await;
    let base = server.base.clone();
    let (admin, product_id, customer) = product_and_customer(&http, &base, "PY-TEA", 10).await;

    let started = Instant::now();
    let response = http
        .put(format!(
            "{base}/api/admin/plugins/tax?config=rate.default%3D1200&config=rate.grocery%3D500"
        ))
        .bearer_auth(&admin)
        .header("content-type", "application/wasm")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 201, "{body}");
    eprintln!(
        "uploaded the {}-byte Python plugin in {:?}",
        bytes.len(),
        started.elapsed()
    );
    let slots = get(&http, format!("{base}/api/admin/plugins"), &admin).await;
    let tax = slots["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["slot"] == "tax")
        .cloned()
        .unwrap();
    assert_eq!(tax["sha256"], sha256_hex(&bytes), "{slots}");

    // 3 × 12.50 INR of grocery at the configured 5%: 1.875 → 1.88 (half-up).
    let (status, order) = post(
        &http,
        format!("{base}/api/orders"),
        Some(&customer),
        json!({"items": [{"productId": product_id, "quantity": 3}]}),
    )
    .await
    .unwrap();
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["taxTotal"], 188, "{order}");

    // A restart serves the stored version again, loading its compiled artifact from the cache:
    // no artifact of this component is written again (a compile would replace the file).
    let artifacts = artifacts_of(cache.path(), &sha256_hex(&bytes));
    assert!(!artifacts.is_empty(), "the server cached the plugin");
    sigterm(&server.child);
    assert!(
        wait_exit(&mut server.child, Duration::from_secs(30))
            .await
            .success()
    );
    let started = Instant::now();
    let mut server = start(data.path(), free_port(), 1, &env);
    binary::wait_ready(&http, &mut server).await;
    let base = server.base.clone();
    eprintln!(
        "restarted with the Python plugin in {:?}",
        started.elapsed()
    );
    let (status, order) = post(
        &http,
        format!("{base}/api/orders"),
        Some(&customer),
        json!({"items": [{"productId": product_id, "quantity": 3}]}),
    )
    .await
    .unwrap();
    assert_eq!(status, 201, "{order}");
    assert_eq!(
        order["taxTotal"], 188,
        "the restarted server taxes with it: {order}"
    );
    assert_eq!(
        artifacts_of(cache.path(), &sha256_hex(&bytes)),
        artifacts,
        "nothing was recompiled"
    );
    sigterm(&server.child);
    assert!(
        wait_exit(&mut server.child, Duration::from_secs(30))
            .await
            .success()
    );
}

/// The cached artifacts of the component hashing to `sha256`: (file, inode, modified).
fn artifacts_of(cache: &Path, sha256: &str) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    use std::os::unix::fs::MetadataExt as _;
    let mut found: Vec<_> = std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(sha256))
        .map(|p| {
            let meta = std::fs::metadata(&p).unwrap();
            (p, meta.ino(), meta.modified().unwrap())
        })
        .collect();
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_many_python_calls_as_the_runtime_admits_run_at_once_from_the_instance_pool() {
    let test = "as_many_python_calls_as_the_runtime_admits_run_at_once_from_the_instance_pool";
    let Some((path, bytes)) = python_tax(test) else {
        return;
    };
    warm_shared_cache(&bytes).await;
    // Each instance of the Python component is 14 core instances (the interpreter, libc, the
    // WASI adapter, shims), where a Rust one is 3; the pool must hold `max_concurrent_calls`
    // of them.
    let concurrent = 8;
    let runtime = PluginRuntime::new(RuntimeSettings {
        max_concurrent_calls: concurrent,
        ..settings(&shared_cache())
    })
    .unwrap();
    runtime
        .load(
            Slot::Tax,
            bytes,
            Vec::new(),
            None,
            PluginSource::File { path },
        )
        .await
        .unwrap();
    let draft: OrderDraft = gst_tax_fixtures()
        .into_iter()
        .find(|(name, _)| name == "default-rate.json")
        .unwrap()
        .1
        .input;
    let expected = gst_tax::calculate(&draft, &[]).unwrap();
    for _ in 0..3 {
        let calls: Vec<_> = (0..concurrent * 2)
            .map(|_| {
                let (runtime, draft) = (runtime.clone(), draft.clone());
                tokio::spawn(async move { runtime.calculate_tax(&draft).await })
            })
            .collect();
        for call in calls {
            assert_eq!(call.await.unwrap().unwrap(), expected);
        }
    }
}
