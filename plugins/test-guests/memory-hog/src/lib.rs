//! Hostile guest for tests: a tax plugin that allocates and touches 1 GiB, so a host memory
//! cap must stop it (the failed allocation aborts, which traps). Without a cap it returns a
//! `memory-hog` error saying how much it touched.
#[cfg(target_arch = "wasm32")]
mod bindings {
    wit_bindgen::generate!({ path: "../../../wit", world: "tax-rules" });
    use exports::shop::rules::tax::Guest;
    use shop::rules::types::*;
    struct Plugin;
    impl Guest for Plugin {
        fn calculate(_draft: OrderDraft, _config: Config) -> Result<TaxBreakdown, PluginError> {
            // black_box keeps the optimiser from proving the buffer unused and dropping it.
            let buffer = std::hint::black_box(vec![1u8; 1 << 30]);
            let pages: u64 = buffer.iter().step_by(4096).map(|&b| u64::from(b)).sum();
            Err(PluginError {
                code: "memory-hog".into(),
                message: format!("allocated 1 GiB and touched {pages} pages"),
            })
        }
    }
    export!(Plugin);
}
