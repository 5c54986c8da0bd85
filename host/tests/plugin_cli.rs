//! `orderd plugin check|run|new`, run as a process on good and bad inputs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use orderd::plugins::{PLUGIN_DIR, fixtures};
use rule_types::TaxBreakdown;

fn orderd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_orderd"))
        .args(args)
        .output()
        .expect("orderd runs")
}

fn component(name: &str) -> String {
    Path::new(PLUGIN_DIR)
        .join(format!("{name}.wasm"))
        .display()
        .to_string()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts a failed run with exactly one line on stderr, which contains `expected`.
fn assert_fails_with(out: &Output, expected: &str) {
    assert!(
        !out.status.success(),
        "expected failure, stdout: {}",
        stdout(out)
    );
    let err = stderr(out);
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line on stderr: {err}"
    );
    assert!(err.contains(expected), "{err}");
}

fn write_temp(dir: &Path, name: &str, contents: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path.display().to_string()
}

#[test]
fn check_accepts_a_tax_component_and_describes_it() {
    let out = orderd(&["plugin", "check", &component("gst_tax"), "--slot", "tax"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let size = std::fs::metadata(component("gst_tax")).unwrap().len();
    assert!(
        text.contains(&format!("size:         {size} bytes")),
        "{text}"
    );
    assert!(text.contains("compile time:"), "{text}");
    assert!(
        text.contains("exports:      shop:rules/tax@0.1.0"),
        "{text}"
    );
    assert!(text.contains("smoke test:   passed"), "{text}");
}

#[test]
fn check_refuses_bytes_that_are_not_a_component() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_temp(dir.path(), "junk.wasm", b"definitely not wasm");
    let out = orderd(&["plugin", "check", &file, "--slot", "tax"]);
    assert_fails_with(&out, "not a WebAssembly component");
}

#[test]
fn check_refuses_a_component_of_another_world() {
    let out = orderd(&[
        "plugin",
        "check",
        &component("order_limits"),
        "--slot",
        "tax",
    ]);
    assert_fails_with(&out, "does not export shop:rules/tax@0.1.0#calculate");
}

#[test]
fn run_prints_the_output_as_json_and_the_wall_time() {
    let dir = tempfile::tempdir().unwrap();
    let draft = fixtures::draft();
    let input = write_temp(
        dir.path(),
        "draft.json",
        &serde_json::to_vec(&draft).unwrap(),
    );
    let out = orderd(&[
        "plugin",
        "run",
        &component("gst_tax"),
        "--slot",
        "tax",
        "--input",
        &input,
        "--config",
        "rate.default=1000",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let breakdown: TaxBreakdown =
        serde_json::from_slice(&out.stdout).expect("stdout is the output JSON");
    // The config applies: 10% per line, half-up.
    for (line, item) in breakdown.lines.iter().zip(&draft.items) {
        let taxable = item.unit_price.amount * i64::from(item.quantity);
        assert_eq!(
            (line.rate_bps, line.tax.amount),
            (1000, (taxable + 5) / 10),
            "{line:?}"
        );
    }
    assert!(stderr(&out).contains("wall time:"), "{}", stderr(&out));
}

#[test]
fn run_refuses_input_that_is_not_an_order_draft() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_temp(dir.path(), "bad.json", br#"{"items": 3}"#);
    let out = orderd(&[
        "plugin",
        "run",
        &component("gst_tax"),
        "--slot",
        "tax",
        "--input",
        &input,
    ]);
    assert_fails_with(&out, "is not an order draft");
}

#[test]
fn run_reports_a_trapping_plugin_with_its_panic_message() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_temp(
        dir.path(),
        "draft.json",
        &serde_json::to_vec(&fixtures::draft()).unwrap(),
    );
    let out = orderd(&[
        "plugin",
        "run",
        &component("panicker"),
        "--slot",
        "tax",
        "--input",
        &input,
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("trap") && err.contains("panicked"), "{err}");
}

#[test]
fn new_writes_a_ready_to_build_crate_for_the_slot() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("my-tax");
    let out = orderd(&[
        "plugin",
        "new",
        "my-tax",
        "--slot",
        "tax",
        "--dir",
        &target.display().to_string(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let read =
        |p: &str| std::fs::read_to_string(target.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    let manifest = read("Cargo.toml");
    assert!(
        manifest.contains("name = \"my-tax\"") && manifest.contains("cdylib"),
        "{manifest}"
    );
    assert!(
        manifest.contains("[package.metadata.component.target]")
            && manifest.contains("world = \"tax-rules\"")
            && manifest.contains("path = \"sdk/orderd-rules\""),
        "{manifest}"
    );
    let config = read(".cargo/config.toml");
    assert!(
        !config.contains("[build]"),
        "cargo test must run natively: {config}"
    );
    let lib = read("src/lib.rs");
    assert!(
        lib.contains("impl TaxRule for Plugin") && lib.contains("export_tax_rule!(Plugin)"),
        "{lib}"
    );
    for (copy, original) in [
        (
            "sdk/orderd-rules/src/lib.rs",
            "../plugins/orderd-rules/src/lib.rs",
        ),
        (
            "sdk/orderd-rules/src/wit.rs",
            "../plugins/orderd-rules/src/wit.rs",
        ),
        (
            "sdk/rule-types/src/lib.rs",
            "../plugins/rule-types/src/lib.rs",
        ),
    ] {
        let original =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(original)).unwrap();
        assert_eq!(read(copy), original, "{copy} is a copy of the SDK");
    }
    let wit: PathBuf = target.join("wit");
    for file in [
        "types.wit",
        "tax.wit",
        "validation.wit",
        "email.wit",
        "worlds.wit",
    ] {
        assert_eq!(
            std::fs::read_to_string(wit.join(file)).unwrap(),
            std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../wit")
                    .join(file)
            )
            .unwrap(),
            "{file} is a copy of the contract"
        );
    }
    serde_json::from_str::<rule_types::OrderDraft>(&read("input.json"))
        .expect("the example input is a draft");
    for fixture in ["default-rate.json", "configured-rate.json", "bad-rate.json"] {
        serde_json::from_str::<
            rule_types::fixture::Fixture<rule_types::OrderDraft, serde_json::Value>,
        >(&read(&format!("fixtures/{fixture}")))
        .unwrap_or_else(|e| panic!("{fixture} is not a fixture: {e}"));
    }

    // The directory exists now: a second run refuses to overwrite it.
    let again = orderd(&[
        "plugin",
        "new",
        "my-tax",
        "--slot",
        "tax",
        "--dir",
        &target.display().to_string(),
    ]);
    assert_fails_with(&again, "already exists");
}

/// The fixtures of a default plugin, from its source tree.
fn plugin_fixtures(plugin: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins")
        .join(plugin)
        .join("fixtures")
}

#[test]
fn test_passes_each_default_plugin_on_its_own_fixtures() {
    for (name, slot, plugin, count) in [
        ("gst_tax", "tax", "gst-tax", 8),
        ("order_limits", "validation", "order-limits", 7),
        ("order_email", "email", "order-email", 4),
    ] {
        let dir = plugin_fixtures(plugin);
        let out = orderd(&[
            "plugin",
            "test",
            &component(name),
            "--slot",
            slot,
            "--fixtures",
            &dir.display().to_string(),
        ]);
        let text = stdout(&out);
        assert!(out.status.success(), "{name}: {text}{}", stderr(&out));
        assert!(
            text.contains(&format!("{count} passed, 0 failed")),
            "{name}: {text}"
        );
    }
}

#[test]
fn test_fails_with_a_readable_diff_when_an_expectation_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let original =
        std::fs::read_to_string(plugin_fixtures("gst-tax").join("default-rate.json")).unwrap();
    let mut fixture: serde_json::Value = serde_json::from_str(&original).unwrap();
    let tax = fixture["expected"]["ok"]["lines"][0]["tax"]["amount"]
        .as_i64()
        .unwrap();
    fixture["expected"]["ok"]["lines"][0]["tax"]["amount"] = (tax + 1).into();
    write_temp(
        dir.path(),
        "wrong.json",
        serde_json::to_string(&fixture).unwrap().as_bytes(),
    );
    write_temp(dir.path(), "right.json", original.as_bytes());
    let out = orderd(&[
        "plugin",
        "test",
        &component("gst_tax"),
        "--slot",
        "tax",
        "--fixtures",
        &dir.path().display().to_string(),
    ]);
    assert!(!out.status.success(), "a wrong expectation must fail");
    let text = stdout(&out);
    assert!(text.contains("PASS right.json"), "{text}");
    assert!(text.contains("FAIL wrong.json"), "{text}");
    assert!(
        text.contains(&format!(
            "lines[0].tax.amount: expected {}, got {tax}",
            tax + 1
        )),
        "{text}"
    );
    assert!(text.contains("1 passed, 1 failed"), "{text}");
}

#[test]
fn test_reports_a_fixture_that_does_not_parse_and_an_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().display().to_string();
    let args = |d: &str| {
        orderd(&[
            "plugin",
            "test",
            &component("gst_tax"),
            "--slot",
            "tax",
            "--fixtures",
            d,
        ])
    };
    assert_fails_with(&args(&dir_arg), "no fixtures");
    write_temp(dir.path(), "broken.json", b"{\"description\": 1}");
    let out = args(&dir_arg);
    assert!(!out.status.success());
    let text = stdout(&out);
    assert!(
        text.contains("FAIL broken.json") && text.contains("is not a fixture"),
        "{text}"
    );
}

#[test]
fn test_expects_a_plugin_error_where_the_fixture_says_so() {
    let dir = plugin_fixtures("gst-tax");
    let out = orderd(&[
        "plugin",
        "test",
        &component("gst_tax"),
        "--slot",
        "tax",
        "--fixtures",
        &dir.display().to_string(),
    ]);
    let text = stdout(&out);
    assert!(
        text.contains("PASS bad-config-unknown-key.json")
            && text.contains("PASS amount-overflow.json"),
        "{text}"
    );
}

#[test]
fn deploy_without_credentials_or_a_terminal_names_the_variables() {
    let out = Command::new(env!("CARGO_BIN_EXE_orderd"))
        .args([
            "plugin",
            "deploy",
            &component("gst_tax"),
            "--slot",
            "tax",
            "--url",
            "http://127.0.0.1:9",
        ])
        .env_remove("ORDERD_ADMIN_EMAIL")
        .env_remove("ORDERD_ADMIN_PASSWORD")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_fails_with(&out, "set ORDERD_ADMIN_EMAIL and ORDERD_ADMIN_PASSWORD");
}

#[test]
fn deploy_to_an_unreachable_server_fails_in_one_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_orderd"))
        .args([
            "plugin",
            "deploy",
            &component("gst_tax"),
            "--slot",
            "tax",
            "--url",
            "http://127.0.0.1:9",
        ])
        .env("ORDERD_ADMIN_EMAIL", "admin@example.com")
        .env("ORDERD_ADMIN_PASSWORD", "x")
        .output()
        .unwrap();
    assert_fails_with(&out, "did not answer");
}
