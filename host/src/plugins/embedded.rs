//! The default plugins built into the binary (compiled from `plugins/` by `build.rs`), and the
//! directory holding every component that build produced, hostile test guests included.

use super::contract::Slot;

/// Directory of the components `build.rs` built for `wasm32-wasip2`.
pub const PLUGIN_DIR: &str = env!("ORDERD_PLUGIN_DIR");

static GST_TAX: &[u8] = include_bytes!(concat!(env!("ORDERD_PLUGIN_DIR"), "/gst_tax.wasm"));
static ORDER_LIMITS: &[u8] =
    include_bytes!(concat!(env!("ORDERD_PLUGIN_DIR"), "/order_limits.wasm"));
static ORDER_EMAIL: &[u8] = include_bytes!(concat!(env!("ORDERD_PLUGIN_DIR"), "/order_email.wasm"));

/// The component bytes of a slot's built-in default.
pub fn default_component(slot: Slot) -> &'static [u8] {
    match slot {
        Slot::Tax => GST_TAX,
        Slot::Validation => ORDER_LIMITS,
        Slot::Email => ORDER_EMAIL,
    }
}
