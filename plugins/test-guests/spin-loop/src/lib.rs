//! Hostile guest for tests: a tax plugin that never returns.
#[cfg(target_arch = "wasm32")]
mod bindings {
    wit_bindgen::generate!({ path: "../../../wit", world: "tax-rules" });
    use exports::shop::rules::tax::Guest;
    use shop::rules::types::*;
    struct Plugin;
    impl Guest for Plugin {
        fn calculate(_draft: OrderDraft, _config: Config) -> Result<TaxBreakdown, PluginError> {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
    }
    export!(Plugin);
}
