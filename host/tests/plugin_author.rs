//! The plugin author's journey, end to end, as a new author runs it: `orderd plugin new` in
//! an empty directory outside this repository, `cargo test` of the rule natively, a build
//! with plain cargo (and, as the alternative, with cargo-component), `orderd plugin test` on
//! the fixtures, `orderd plugin deploy` to a live `orderd serve`, and an order that the new
//! rule taxes. It prints the number of author commands and the wall time of each step.
//!
//! The generated crate's `target/` is a link to one directory kept between runs (under
//! cargo's test scratch directory), so a rerun reuses the compiled crates.io dependencies as
//! an author's second build would; the first run on a machine is a cold build. Network
//! access is turned off for the nested cargo (`CARGO_NET_OFFLINE=true`): the crate builds
//! from what it carries plus the local crates.io cache.

#[path = "support/binary.rs"]
mod binary;
#[path = "support/skip.rs"]
mod skip;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::json;

/// One author step: what was run, where, and how long it took.
struct Step {
    command: String,
    seconds: f64,
    /// Counted among the author's commands. Not counted: the cargo-component build (the
    /// alternative to the plain cargo build), its `plugin test`, and one `plugin run`.
    counted: bool,
}

/// Runs `program args` in `dir`, asserts success, and records the step.
fn step(
    steps: &mut Vec<Step>,
    counted: bool,
    dir: &Path,
    program: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Output {
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(dir);
    // The outer `cargo test` sets these for the host build; an author's shell has none of them.
    for var in [
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_INCREMENTAL",
        "CARGO_LLVM_COV",
        "LLVM_PROFILE_FILE",
        "RUSTUP_TOOLCHAIN",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("CARGO_NET_OFFLINE", "true");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{program} could not be started: {e}"));
    let seconds = started.elapsed().as_secs_f64();
    let shown = if program == env!("CARGO_BIN_EXE_orderd") {
        "orderd"
    } else {
        program
    };
    let command = format!("{shown} {}", args.join(" "));
    assert!(
        out.status.success(),
        "`{command}` failed in {}:\n--- stdout\n{}\n--- stderr\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    steps.push(Step {
        command,
        seconds,
        counted,
    });
    out
}

/// Whether `cargo component` is installed.
fn cargo_component_installed() -> bool {
    Command::new("cargo")
        .args(["component", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Every file under `dir` (not following `target`).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.file_name().is_some_and(|n| n == "target") {
            continue;
        }
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_author_goes_from_nothing_to_a_rule_taxing_live_orders_in_five_commands() {
    let test =
        "plugin_author::an_author_goes_from_nothing_to_a_rule_taxing_live_orders_in_five_commands";
    let with_component = cargo_component_installed();
    if !with_component {
        if std::env::var("ORDERD_TEST_REQUIRE_SERVICES").is_ok_and(|v| v == "1") {
            panic!("cargo-component is missing: the test command installs it before the tests");
        }
        skip::skip(
            &format!("{test} (its cargo-component build only)"),
            skip::Need::Unavailable(
                "cargo-component is not installed (scripts/test.sh installs it)",
            ),
        );
    }
    let orderd = env!("CARGO_BIN_EXE_orderd");
    let work = tempfile::tempdir().unwrap();
    let home = work.path();
    let krate = home.join("my-tax");
    let mut steps = Vec::new();
    let journey = Instant::now();

    // 1. A new crate, in a directory that knows nothing of this repository.
    step(
        &mut steps,
        true,
        home,
        orderd,
        &["plugin", "new", "my-tax", "--slot", "tax"],
        &[],
    );
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .display()
        .to_string();
    for file in files_under(&krate) {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            !text.contains(&repo),
            "{} names the orderd checkout",
            file.display()
        );
    }
    let shared_target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plugin-author-target");
    std::fs::create_dir_all(&shared_target).unwrap();
    std::os::unix::fs::symlink(&shared_target, krate.join("target")).unwrap();

    // 2. The rule's logic, natively, on its fixtures.
    let tested = step(&mut steps, true, &krate, "cargo", &["test"], &[]);
    let report = String::from_utf8_lossy(&tested.stdout).into_owned();
    assert!(
        report.contains("every_fixture_gives_its_expected_outcome ... ok"),
        "{report}"
    );

    // 3. The component, with plain cargo.
    step(
        &mut steps,
        true,
        &krate,
        "cargo",
        &["build", "--release", "--target", "wasm32-wasip2"],
        &[],
    );
    let wasip2 = "target/wasm32-wasip2/release/my_tax.wasm";

    // 3'. The same crate with cargo-component (wasm32-wasip1, adapted to a component).
    if with_component {
        step(
            &mut steps,
            false,
            &krate,
            "cargo",
            &["component", "build", "--release"],
            &[],
        );
        let wasip1 = "target/wasm32-wasip1/release/my_tax.wasm";
        let out = step(
            &mut steps,
            false,
            &krate,
            orderd,
            &["plugin", "test", wasip1, "--slot", "tax"],
            &[],
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(text.contains("3 passed, 0 failed"), "{text}");
        // The wasip1 adapter imports more of WASI than a wasip2 build (files among them);
        // the host links them all and grants nothing through them.
        let out = step(
            &mut steps,
            false,
            &krate,
            orderd,
            &["plugin", "check", wasip1, "--slot", "tax"],
            &[],
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(text.contains("wasi:filesystem/"), "{text}");
    }

    // 4. The component on the fixtures, under the production limits.
    let out = step(
        &mut steps,
        true,
        &krate,
        orderd,
        &["plugin", "test", wasip2, "--slot", "tax"],
        &[],
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("smoke test passed") && text.contains("3 passed, 0 failed"),
        "{text}"
    );

    // One answer in full, with config (a look, not one of the five commands).
    let out = step(
        &mut steps,
        false,
        &krate,
        orderd,
        &[
            "plugin",
            "run",
            wasip2,
            "--slot",
            "tax",
            "--input",
            "input.json",
            "--config",
            "rate=1200",
        ],
        &[],
    );
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["lines"][0]["rateBps"], 1200, "{answer}");

    // 5. Deployed to a live orderd.
    let data = tempfile::tempdir().unwrap();
    let port = binary::free_port();
    let mut server = binary::start(data.path(), port, 0, &[]);
    let http = reqwest::Client::new();
    binary::wait_ready(&http, &mut server).await;
    let base = server.base.clone();
    let out = step(
        &mut steps,
        true,
        &krate,
        orderd,
        &["plugin", "deploy", wasip2, "--slot", "tax", "--url", &base],
        &[
            ("ORDERD_ADMIN_EMAIL", "admin@example.com"),
            ("ORDERD_ADMIN_PASSWORD", "demo-admin-password"),
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("dry run:") && text.contains("uploaded:  version"),
        "{text}"
    );
    assert!(text.contains("active:    yes"), "{text}");

    // An order placed now is taxed by the new rule: 10% "flat", not the default 18% GST.
    let (_admin, product, customer) =
        binary::product_and_customer(&http, &base, "AUTHOR-1", 10).await;
    let (status, order) = binary::post(
        &http,
        format!("{base}/api/orders"),
        Some(&customer),
        json!({"items": [{"productId": product, "quantity": 2}]}),
    )
    .await
    .unwrap();
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["subtotal"], 2500, "{order}");
    assert_eq!(order["taxTotal"], 250, "{order}");
    assert_eq!(order["taxLines"][0]["rateName"], "flat", "{order}");

    // A component for another slot is refused by the server (by its dry run, before any
    // upload), and deploy says why.
    let email_component = Path::new(orderd::plugins::PLUGIN_DIR).join("order_email.wasm");
    let refused = Command::new(orderd)
        .args([
            "plugin",
            "deploy",
            &email_component.display().to_string(),
            "--slot",
            "tax",
            "--url",
            &base,
        ])
        .env("ORDERD_ADMIN_EMAIL", "admin@example.com")
        .env("ORDERD_ADMIN_PASSWORD", "demo-admin-password")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert!(!refused.status.success(), "{err}");
    assert!(
        err.contains("dry run refused the candidate (422)")
            && err.contains("nothing was changed")
            && err.contains("nothing was uploaded"),
        "{err}"
    );

    binary::sigterm(&server.child);
    binary::wait_exit(&mut server.child, Duration::from_secs(30)).await;

    let counted = steps.iter().filter(|s| s.counted).count();
    let mut lines = format!(
        "plugin author journey: {counted} author commands, {:.1} s in total (cargo-component build {})\n",
        journey.elapsed().as_secs_f64(),
        if with_component {
            "included, not counted"
        } else {
            "not run"
        }
    );
    for s in &steps {
        lines.push_str(&format!(
            "  {:>6.1} s  {}{}\n",
            s.seconds,
            s.command,
            if s.counted { "" } else { "   (not counted)" }
        ));
    }
    let _ = std::io::stderr().write_all(lines.as_bytes());
    assert!(counted <= 5, "{lines}");
}

#[test]
fn new_validation_and_email_crates_build_and_pass_their_own_fixtures() {
    let orderd = env!("CARGO_BIN_EXE_orderd");
    let work = tempfile::tempdir().unwrap();
    let shared_target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plugin-author-target");
    std::fs::create_dir_all(&shared_target).unwrap();
    for (name, slot, runner_count) in [("my-limits", "validation", 3), ("my-mail", "email", 2)] {
        let mut steps = Vec::new();
        step(
            &mut steps,
            true,
            work.path(),
            orderd,
            &["plugin", "new", name, "--slot", slot],
            &[],
        );
        let krate = work.path().join(name);
        std::os::unix::fs::symlink(&shared_target, krate.join("target")).unwrap();
        step(&mut steps, true, &krate, "cargo", &["test"], &[]);
        step(
            &mut steps,
            true,
            &krate,
            "cargo",
            &["build", "--release", "--target", "wasm32-wasip2"],
            &[],
        );
        let wasm = format!(
            "target/wasm32-wasip2/release/{}.wasm",
            name.replace('-', "_")
        );
        let out = step(
            &mut steps,
            true,
            &krate,
            orderd,
            &["plugin", "test", &wasm, "--slot", slot],
            &[],
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            text.contains(&format!("{runner_count} passed, 0 failed")),
            "{slot}: {text}"
        );
    }
}
