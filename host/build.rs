//! Builds the rule plugins in `plugins/` (the default tax, validation and e-mail components
//! plus the hostile guests the tests load) for `wasm32-wasip2`, so `cargo build` needs no
//! manual plugin step. The components land in `target/plugins/wasm32-wasip2/release/` and
//! the host embeds the defaults from there (`ORDERD_PLUGIN_DIR`). The nested cargo runs
//! with its own target directory, as wasmtime's test-programs crate does, so it never waits
//! on the outer build's lock.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let root = manifest_dir
        .parent()
        .expect("host/ sits in the repository root");
    let plugins = root.join("plugins");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets it"));
    // OUT_DIR is <target>/<profile>/build/<pkg>-<hash>/out; share one plugin build per target dir.
    let target_dir = out_dir
        .ancestors()
        .nth(4)
        .expect("OUT_DIR has the usual depth")
        .join("plugins");

    watch(&root.join("wit"));
    watch(&plugins);

    ensure_wasm_target();

    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&plugins)
        .args(["build", "--release", "--workspace", "--target", WASM_TARGET])
        .arg("--target-dir")
        .arg(&target_dir);
    // The outer build's settings are for the host, not for the guests.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CARGO_PROFILE_RELEASE_DEBUG",
        "CARGO_INCREMENTAL",
        "CARGO_LLVM_COV",
        "CARGO_LLVM_COV_TARGET_DIR",
        "LLVM_PROFILE_FILE",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("could not run cargo to build plugins/: {e}"));
    if !status.success() {
        panic!(
            "building the rule plugins in plugins/ for {WASM_TARGET} failed (see the errors above)"
        );
    }

    let wasm_dir = target_dir.join(WASM_TARGET).join("release");
    println!("cargo:rustc-env=ORDERD_PLUGIN_DIR={}", wasm_dir.display());
}

/// Makes sure the standard library for the guest target is installed. rustup does not add a
/// target listed in rust-toolchain.toml to a toolchain that is already installed, so a fresh
/// machine would otherwise fail here with a wall of "can't find crate for `std`" errors.
fn ensure_wasm_target() {
    if wasm_std_installed() {
        return;
    }
    println!(
        "cargo:warning=the {WASM_TARGET} target is missing; running `rustup target add {WASM_TARGET}`"
    );
    let added = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !added || !wasm_std_installed() {
        eprintln!(
            "error: the {WASM_TARGET} target is not installed: run `rustup target add {WASM_TARGET}`"
        );
        panic!("the {WASM_TARGET} target is not installed: run `rustup target add {WASM_TARGET}`");
    }
}

fn wasm_std_installed() -> bool {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let Ok(out) = Command::new(rustc).args(["--print", "sysroot"]).output() else {
        return false;
    };
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Path::new(&sysroot)
        .join("lib/rustlib")
        .join(WASM_TARGET)
        .join("lib")
        .is_dir()
}

/// Re-runs this script when any source under `dir` changes (never for build output, nor for
/// `examples/`, which this build does not compile: `plugins/examples/` holds plugins in other
/// languages).
fn watch(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    println!("cargo:rerun-if-changed={}", dir.display());
    for entry in entries.flatten() {
        let path = entry.path();
        if path
            .file_name()
            .is_some_and(|n| n == "target" || n == "examples")
        {
            continue;
        }
        if path.is_dir() {
            watch(&path);
        } else {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}
