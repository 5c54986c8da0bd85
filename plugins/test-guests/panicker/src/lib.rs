//! Hostile guest for tests: a tax plugin that panics on every call; with `panic = "abort"`
//! the panic is a trap the host must contain.
#[cfg(target_arch = "wasm32")]
mod bindings {
    wit_bindgen::generate!({ path: "../../../wit", world: "tax-rules" });
    use exports::shop::rules::tax::Guest;
    use shop::rules::types::*;
    struct Plugin;
    impl Guest for Plugin {
        fn calculate(_draft: OrderDraft, _config: Config) -> Result<TaxBreakdown, PluginError> {
            panic!("boom")
        }
    }
    export!(Plugin);
}
