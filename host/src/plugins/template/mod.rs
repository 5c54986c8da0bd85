//! The plugin crate template behind `orderd plugin new`: a standalone cargo project for one
//! slot that carries everything it needs — the WIT contract (`wit/`) and the source of the
//! guest SDK (`sdk/orderd-rules`, `sdk/rule-types`) — so it builds anywhere, with no path
//! back to an orderd checkout. It builds with `cargo build --release --target wasm32-wasip2`
//! and with `cargo component build --release` (the world is pinned in
//! `[package.metadata.component.target]`), and `cargo test` runs its logic natively on the
//! fixtures that `orderd plugin test` also runs against the built component. Each slot's
//! example ([`rules`]) is a small, correct plugin that passes the host's smoke test.

mod rules;

use std::fs;
use std::path::Path;

use anyhow::{Context as _, bail};

use super::contract::Slot;

/// The WIT contract, copied into every new crate.
const WIT_FILES: [(&str, &str); 5] = [
    ("types.wit", include_str!("../../../../wit/types.wit")),
    ("tax.wit", include_str!("../../../../wit/tax.wit")),
    (
        "validation.wit",
        include_str!("../../../../wit/validation.wit"),
    ),
    ("email.wit", include_str!("../../../../wit/email.wit")),
    ("worlds.wit", include_str!("../../../../wit/worlds.wit")),
];

/// The guest SDK's sources (`plugins/orderd-rules/src`), copied to `sdk/orderd-rules/src`.
pub const SDK_SOURCES: [(&str, &str); 3] = [
    (
        "lib.rs",
        include_str!("../../../../plugins/orderd-rules/src/lib.rs"),
    ),
    (
        "wit.rs",
        include_str!("../../../../plugins/orderd-rules/src/wit.rs"),
    ),
    (
        "testing.rs",
        include_str!("../../../../plugins/orderd-rules/src/testing.rs"),
    ),
];

/// The contract types' sources (`plugins/rule-types/src`), copied to `sdk/rule-types/src`.
pub const RULE_TYPES_SOURCES: [(&str, &str); 2] = [
    (
        "lib.rs",
        include_str!("../../../../plugins/rule-types/src/lib.rs"),
    ),
    (
        "fixture.rs",
        include_str!("../../../../plugins/rule-types/src/fixture.rs"),
    ),
];

/// Manifest of the copied SDK: the in-repository one inherits from the plugins workspace,
/// a copy stands alone.
const SDK_MANIFEST: &str = r#"[package]
name = "orderd-rules"
description = "Guest SDK for orderd rule plugins (a copy written by `orderd plugin new`)"
version = "0.1.0"
edition = "2024"
license = "Apache-2.0"
publish = false

[dependencies]
rule-types = { path = "../rule-types" }

[target.'cfg(target_arch = "wasm32")'.dependencies]
wit-bindgen = { version = "0.63", default-features = false, features = ["macros", "realloc"] }

[target.'cfg(not(target_arch = "wasm32"))'.dependencies]
serde = { version = "1", features = ["derive"] }
serde_json = "1"
"#;

/// Manifest of the copied contract types.
const RULE_TYPES_MANIFEST: &str = r#"[package]
name = "rule-types"
description = "Plain Rust mirror of the shop:rules WIT types (a copy written by `orderd plugin new`)"
version = "0.1.0"
edition = "2024"
license = "Apache-2.0"
publish = false

[dependencies]
serde = { version = "1", features = ["derive"] }
"#;

/// Writes a new plugin crate named `name` for `slot` into `dir`, which must not exist.
pub fn write_crate(name: &str, slot: Slot, dir: &Path) -> anyhow::Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !valid {
        bail!(
            "`{name}` is not a valid crate name (use lower case letters, digits, '-' and '_', starting with a letter)"
        );
    }
    if dir.exists() {
        bail!("{} already exists", dir.display());
    }
    let mut files = vec![
        ("Cargo.toml".to_owned(), cargo_toml(name, slot)),
        (".cargo/config.toml".to_owned(), CARGO_CONFIG.to_owned()),
        ("src/lib.rs".to_owned(), rules::lib_rs(slot)),
        (
            "tests/fixtures.rs".to_owned(),
            rules::fixtures_test(name, slot),
        ),
        ("input.json".to_owned(), rules::example_input(slot)? + "\n"),
        ("README.md".to_owned(), readme(name, slot)),
        (".gitignore".to_owned(), GITIGNORE.to_owned()),
        (
            "sdk/orderd-rules/Cargo.toml".to_owned(),
            SDK_MANIFEST.to_owned(),
        ),
        (
            "sdk/rule-types/Cargo.toml".to_owned(),
            RULE_TYPES_MANIFEST.to_owned(),
        ),
    ];
    for (file, text) in rules::fixtures(slot)? {
        files.push((format!("fixtures/{file}"), text + "\n"));
    }
    let copies = WIT_FILES
        .iter()
        .map(|(f, t)| (format!("wit/{f}"), t))
        .chain(
            SDK_SOURCES
                .iter()
                .map(|(f, t)| (format!("sdk/orderd-rules/src/{f}"), t)),
        )
        .chain(
            RULE_TYPES_SOURCES
                .iter()
                .map(|(f, t)| (format!("sdk/rule-types/src/{f}"), t)),
        );
    for (path, text) in copies {
        files.push((path, (*text).to_owned()));
    }
    for (path, text) in files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("Failed to create {}", parent.display()))?;
        }
        fs::write(&path, text).with_context(|| format!("Failed to write {}", path.display()))?;
    }
    Ok(())
}

/// The name of the built component: cargo turns `-` into `_` for library artifacts.
pub fn artifact_name(name: &str) -> String {
    format!("{}.wasm", name.replace('-', "_"))
}

fn cargo_toml(name: &str, slot: Slot) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
# cdylib: the component; rlib: so `cargo test` links the rule natively.
crate-type = ["cdylib", "rlib"]

[dependencies]
# The guest SDK, copied into this crate by `orderd plugin new`.
orderd-rules = {{ path = "sdk/orderd-rules" }}

# `cargo component build` builds against this world of the contract in wit/.
[package.metadata.component.target]
path = "wit"
world = "{world}"

# Components are shipped and compiled at load time: small beats fast.
[profile.release]
opt-level = "s"
lto = true
strip = true
codegen-units = 1
panic = "abort"

# A standalone crate, not a member of an enclosing workspace.
[workspace]
"#,
        world = slot.world(),
    )
}

const CARGO_CONFIG: &str = "\
# A 64 KiB stack instead of rustc's 1 MiB: the host resets a plugin's memory on every call,\n\
# so a smaller initial memory makes every call cheaper (about 4x for the default plugins).\n\
# wasm32-wasip2 is `cargo build --target wasm32-wasip2`; wasm32-wasip1 is what\n\
# `cargo component build` compiles before adapting the module to a component.\n\
[target.wasm32-wasip2]\nrustflags = [\"-C\", \"link-arg=-zstack-size=65536\"]\n\n\
[target.wasm32-wasip1]\nrustflags = [\"-C\", \"link-arg=-zstack-size=65536\"]\n";

/// `cargo component build` writes its own bindings to src/bindings.rs; this crate gets its
/// bindings from the SDK and never compiles that file.
const GITIGNORE: &str = "/target\n/src/bindings.rs\n";

fn readme(name: &str, slot: Slot) -> String {
    let artifact = artifact_name(name);
    let (run_config, fixture_note) = match slot {
        Slot::Tax => (" --config rate=1200", "rate"),
        Slot::Validation => (" --config max-quantity=2", "max-quantity"),
        Slot::Email => ("", "kind"),
    };
    format!(
        "# {name}\n\nAn orderd {slot} plugin: a WebAssembly component exporting `{interface}` \
         (world `{world}` in `wit/worlds.wit`). The rule is plain Rust in `src/lib.rs`; the \
         `orderd-rules` SDK in `sdk/` turns it into a component.\n\n\
         ```sh\n\
         rustup target add wasm32-wasip2   # once\n\
         cargo test                        # the rule, natively, on fixtures/\n\
         cargo build --release --target wasm32-wasip2\n\
         orderd plugin test target/wasm32-wasip2/release/{artifact} --slot {slot}\n\
         orderd plugin run target/wasm32-wasip2/release/{artifact} --slot {slot} --input input.json{run_config}\n\
         ORDERD_ADMIN_EMAIL=… ORDERD_ADMIN_PASSWORD=… \\\n  \
         orderd plugin deploy target/wasm32-wasip2/release/{artifact} --slot {slot} --url http://127.0.0.1:8000\n\
         ```\n\n\
         `cargo component build --release` (cargo-component 0.21) builds the same crate, for \
         `wasm32-wasip1` adapted to a component: `target/wasm32-wasip1/release/{artifact}`.\n\n\
         Each file in `fixtures/` is one call: a `description`, the `config`, the `input` and \
         the `expected` outcome (`{{\"ok\": …}}` or `{{\"error\": {{\"code\": …, \
         \"messageContains\": …}}}}`); see how they vary `{fixture_note}`. `cargo test` runs \
         them against the logic, `orderd plugin test` against the built component.\n\n\
         The host runs every call in a fresh sandbox with no files, environment or network, a \
         memory cap and a deadline, and checks the output before using it.\n",
        interface = slot.interface(),
        world = slot.world(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every source file of the SDK and the contract types is copied into a new crate.
    #[test]
    fn every_sdk_source_file_is_embedded() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins");
        for (dir, embedded) in [
            ("orderd-rules/src", &SDK_SOURCES[..]),
            ("rule-types/src", &RULE_TYPES_SOURCES[..]),
        ] {
            let mut on_disk: Vec<String> = fs::read_dir(root.join(dir))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            on_disk.sort();
            let mut listed: Vec<String> = embedded.iter().map(|(f, _)| (*f).to_owned()).collect();
            listed.sort();
            assert_eq!(
                on_disk, listed,
                "plugins/{dir} and the embedded copy differ"
            );
        }
    }
}
