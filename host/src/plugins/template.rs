//! The plugin crate template behind `orderd plugin new`: a standalone cargo project that builds
//! a component for one slot's world with `cargo build --release`, with the WIT contract, an
//! example input and a README. Each slot's example is a small, correct plugin that passes the
//! host's smoke test and output checks, so authors start from something that loads.

use std::fs;
use std::path::Path;

use anyhow::{Context as _, bail};

use super::fixtures;
use super::slot::Slot;

/// The WIT contract, copied into every new crate.
const WIT_FILES: [(&str, &str); 5] = [
    ("types.wit", include_str!("../../../wit/types.wit")),
    ("tax.wit", include_str!("../../../wit/tax.wit")),
    (
        "validation.wit",
        include_str!("../../../wit/validation.wit"),
    ),
    ("email.wit", include_str!("../../../wit/email.wit")),
    ("worlds.wit", include_str!("../../../wit/worlds.wit")),
];

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
    let input = match slot {
        Slot::Tax | Slot::Validation => serde_json::to_string_pretty(&fixtures::draft())?,
        Slot::Email => serde_json::to_string_pretty(&fixtures::stored_order())?,
    };
    let files = [
        ("Cargo.toml".to_owned(), cargo_toml(name)),
        (".cargo/config.toml".to_owned(), CARGO_CONFIG.to_owned()),
        ("src/lib.rs".to_owned(), lib_rs(slot)),
        ("fixtures/input.json".to_owned(), input + "\n"),
        ("README.md".to_owned(), readme(name, slot)),
        (".gitignore".to_owned(), "/target\n".to_owned()),
    ];
    let wit = WIT_FILES
        .iter()
        .map(|(file, text)| (format!("wit/{file}"), (*text).to_owned()));
    for (path, text) in files.into_iter().chain(wit) {
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

fn cargo_toml(name: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
wit-bindgen = {{ version = "0.63", default-features = false, features = ["macros", "realloc"] }}

# Components are shipped and compiled at load time: small beats fast.
[profile.release]
opt-level = "s"
lto = true
strip = true
codegen-units = 1
panic = "abort"

# A standalone crate, not a member of an enclosing workspace.
[workspace]
"#
    )
}

const CARGO_CONFIG: &str = "[build]\ntarget = \"wasm32-wasip2\"\n\n\
# A 64 KiB stack instead of rustc's 1 MiB: the host resets a plugin's memory on every call,\n\
# so a smaller initial memory makes every call cheaper (about 4x for the default plugins).\n\
[target.wasm32-wasip2]\nrustflags = [\"-C\", \"link-arg=-zstack-size=65536\"]\n";

fn readme(name: &str, slot: Slot) -> String {
    let artifact = artifact_name(name);
    format!(
        "# {name}\n\nAn orderd {slot} plugin: a WebAssembly component exporting `{interface}` \
         (world `{world}` in `wit/worlds.wit`).\n\n\
         ```sh\n\
         rustup target add wasm32-wasip2   # once\n\
         cargo build --release\n\
         orderd plugin check target/wasm32-wasip2/release/{artifact} --slot {slot}\n\
         orderd plugin run target/wasm32-wasip2/release/{artifact} --slot {slot} --input fixtures/input.json\n\
         ```\n\n\
         Deploy by renaming the component to `{slot}.wasm` in the plugins directory orderd \
         watches. The host runs every call in a fresh sandbox with no files, environment or \
         network, a memory cap and a deadline, and checks the output before using it.\n",
        interface = slot.interface(),
        world = slot.world(),
    )
}

fn lib_rs(slot: Slot) -> String {
    let body = match slot {
        Slot::Tax => TAX_BODY,
        Slot::Validation => VALIDATION_BODY,
        Slot::Email => EMAIL_BODY,
    };
    format!(
        "//! An orderd {slot} plugin.\n\nwit_bindgen::generate!({{ path: \"wit\", world: \"{world}\" }});\n\n{body}",
        world = slot.world()
    )
}

const TAX_BODY: &str = r#"use exports::shop::rules::tax::Guest;
use shop::rules::types::{Config, Money, OrderDraft, PluginError, RateTotal, TaxBreakdown, TaxLine};

struct Plugin;

impl Guest for Plugin {
    /// One rate on every line (config `rate`, basis points, default 1000 = 10%), rounded
    /// half-up to the minor unit per line.
    fn calculate(draft: OrderDraft, config: Config) -> Result<TaxBreakdown, PluginError> {
        let bps: u32 = match config.iter().rev().find(|(k, _)| k == "rate") {
            Some((_, v)) => v.parse().ok().filter(|b| *b <= 10_000).ok_or_else(|| PluginError {
                code: "bad-config".into(),
                message: format!("rate must be basis points 0..=10000, got {v:?}"),
            })?,
            None => 1000,
        };
        let money = |amount: i64| Money { amount, currency: draft.currency.clone() };
        let mut lines = Vec::new();
        let (mut taxable_sum, mut tax_sum) = (0i64, 0i64);
        for (index, item) in draft.items.iter().enumerate() {
            let taxable = item.unit_price.amount * i64::from(item.quantity);
            let tax = ((i128::from(taxable) * i128::from(bps) + 5000) / 10_000) as i64;
            taxable_sum += taxable;
            tax_sum += tax;
            lines.push(TaxLine {
                item_index: index as u32,
                rate_name: "flat".into(),
                rate_bps: bps,
                taxable: money(taxable),
                tax: money(tax),
            });
        }
        let by_rate = if lines.is_empty() {
            Vec::new()
        } else {
            vec![RateTotal { rate_name: "flat".into(), rate_bps: bps, taxable: money(taxable_sum), tax: money(tax_sum) }]
        };
        Ok(TaxBreakdown { lines, by_rate, total_tax: money(tax_sum) })
    }
}

export!(Plugin);
"#;

const VALIDATION_BODY: &str = r#"use exports::shop::rules::validation::Guest;
use shop::rules::types::{Config, OrderDraft, PluginError, Violation};

struct Plugin;

impl Guest for Plugin {
    /// Refuses empty orders and lines above `max-quantity` (config, default 10) units.
    fn validate(draft: OrderDraft, config: Config) -> Result<Vec<Violation>, PluginError> {
        let max: u32 = match config.iter().rev().find(|(k, _)| k == "max-quantity") {
            Some((_, v)) => v.parse().map_err(|_| PluginError {
                code: "bad-config".into(),
                message: format!("max-quantity must be a whole number, got {v:?}"),
            })?,
            None => 10,
        };
        let mut violations = Vec::new();
        if draft.items.is_empty() {
            violations.push(Violation { code: "empty-order".into(), message: "the order has no items".into(), item_index: None });
        }
        for (index, item) in draft.items.iter().enumerate() {
            if item.quantity > max {
                violations.push(Violation {
                    code: "quantity-too-large".into(),
                    message: format!("at most {max} units per line"),
                    item_index: Some(index as u32),
                });
            }
        }
        Ok(violations)
    }
}

export!(Plugin);
"#;

const EMAIL_BODY: &str = r#"use exports::shop::rules::email::Guest;
use shop::rules::types::{Config, PluginError, RenderedEmail, StoredOrder};

struct Plugin;

/// Escapes text for HTML: every customer- or catalog-supplied string goes through this.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// One line, no control characters (for the subject).
fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

fn render(order: &StoredOrder, what: &str) -> RenderedEmail {
    let subject = one_line(&format!("Order {} {what}", order.order_id));
    let items: Vec<String> = order.items.iter().map(|l| format!("{} x {}", l.quantity, l.name)).collect();
    let html_items: String = items.iter().map(|i| format!("<li>{}</li>", escape(i))).collect();
    RenderedEmail {
        html: format!(
            "<!doctype html><html><body><p>Hello {},</p><p>your order {} is {what}.</p><ul>{html_items}</ul></body></html>",
            escape(&order.customer.name),
            escape(&order.order_id)
        ),
        text: format!("Hello {},\n\nyour order {} is {what}.\n\n{}\n", order.customer.name, order.order_id, items.join("\n")),
        subject,
    }
}

impl Guest for Plugin {
    fn render_confirmation(order: StoredOrder, _config: Config) -> Result<RenderedEmail, PluginError> {
        Ok(render(&order, "confirmed"))
    }

    fn render_cancellation(order: StoredOrder, _config: Config) -> Result<RenderedEmail, PluginError> {
        Ok(render(&order, "cancelled"))
    }
}

export!(Plugin);
"#;
