//! Turning candidate bytes into something a slot can run: recognise a component, compile it
//! on a blocking thread (or take it from the artifact cache), check that it exports the slot's
//! world, and link it against the host. Smoke-testing and swapping happen in `runtime.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker};

use super::bindings::{email::EmailRenderPre, tax::TaxRulesPre, validation::OrderValidationPre};
use super::cache::ArtifactCache;
use super::contract::Slot;
use super::error::LoadError;
use super::slot::SlotPre;
use super::store::HostState;
use super::wt;

/// The preamble of a WebAssembly binary.
const WASM_MAGIC: &[u8; 4] = b"\0asm";
/// Version and layer of a component binary (a core module has `01 00 00 00`).
const COMPONENT_VERSION: [u8; 4] = [0x0d, 0x00, 0x01, 0x00];

/// A compiled candidate that fits its slot.
pub struct Prepared {
    /// Typed instantiation template.
    pub pre: SlotPre,
    /// Hex sha256 of the bytes.
    pub sha256: String,
    /// Size of the component in bytes.
    pub size: usize,
    /// Compilation time (near zero when the artifact cache had it).
    pub compile_time: Duration,
    /// Whether the compiled code came from the artifact cache.
    pub cached: bool,
    /// Names of the component's exports.
    pub exports: Vec<String>,
    /// Names of the component's imports.
    pub imports: Vec<String>,
}

/// Hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Compiles and checks `bytes` for `slot`. Compilation runs on a blocking thread.
pub async fn prepare(
    engine: &Engine,
    linker: &Linker<HostState>,
    cache: Option<&Arc<ArtifactCache>>,
    slot: Slot,
    bytes: Arc<[u8]>,
) -> Result<Prepared, LoadError> {
    recognise(&bytes)?;
    let sha256 = sha256_hex(&bytes);
    let started = Instant::now();
    let (component, cached) = {
        let engine = engine.clone();
        let cache = cache.cloned();
        let sha256 = sha256.clone();
        let bytes = bytes.clone();
        tokio::task::spawn_blocking(move || compile(&engine, cache.as_deref(), &sha256, &bytes))
            .await
            .map_err(|e| LoadError::Compile(format!("the compiler thread failed: {e}")))??
    };
    let compile_time = started.elapsed();
    let (exports, imports) = check_world(engine, &component, slot)?;
    let pre = link(linker, &component, slot)?;
    Ok(Prepared {
        pre,
        sha256,
        size: bytes.len(),
        compile_time,
        cached,
        exports,
        imports,
    })
}

/// Refuses bytes that are not a component, with a hint for the common mistakes.
fn recognise(bytes: &[u8]) -> Result<(), LoadError> {
    if bytes.len() < 8 || &bytes[..4] != WASM_MAGIC {
        return Err(LoadError::NotAComponent(
            "the file does not start with the WebAssembly magic bytes".into(),
        ));
    }
    if bytes[4..8] != COMPONENT_VERSION {
        return Err(LoadError::NotAComponent(
            "this is a core WebAssembly module; build for wasm32-wasip2 (or wrap it with \
             `wasm-tools component new`) to get a component"
                .into(),
        ));
    }
    Ok(())
}

fn compile(
    engine: &Engine,
    cache: Option<&ArtifactCache>,
    sha256: &str,
    bytes: &[u8],
) -> Result<(Component, bool), LoadError> {
    if let Some(component) = cache.and_then(|c| c.load(engine, sha256)) {
        return Ok((component, true));
    }
    let component = Component::from_binary(engine, bytes)
        .map_err(|e| LoadError::Compile(format!("{:#}", wt(e))))?;
    if let Some(cache) = cache
        && let Err(e) = cache.store(sha256, &component)
    {
        tracing::warn!(error = %format!("{e:#}"), "could not cache a compiled plugin");
    }
    Ok((component, false))
}

/// Checks that the component exports every function of the slot's interface; returns the
/// component's export and import names.
fn check_world(
    engine: &Engine,
    component: &Component,
    slot: Slot,
) -> Result<(Vec<String>, Vec<String>), LoadError> {
    let ty = component.component_type();
    let exports: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let imports: Vec<String> = ty
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let missing = |function: &str| LoadError::WrongWorld {
        slot,
        world: slot.world(),
        missing: format!("{}#{function}", slot.interface()),
    };
    let instance = ty
        .get_export(engine, slot.interface())
        .and_then(|e| match e.ty {
            ComponentItem::ComponentInstance(instance) => Some(instance),
            _ => None,
        });
    let Some(instance) = instance else {
        return Err(missing(slot.functions()[0]));
    };
    for function in slot.functions() {
        let found = instance
            .get_export(engine, function)
            .is_some_and(|e| matches!(e.ty, ComponentItem::ComponentFunc(_)));
        if !found {
            return Err(missing(function));
        }
    }
    Ok((exports, imports))
}

/// Links the component against the host and type-checks its exports against the world.
fn link(
    linker: &Linker<HostState>,
    component: &Component,
    slot: Slot,
) -> Result<SlotPre, LoadError> {
    let link_err = |e: wasmtime::Error| LoadError::Link {
        slot,
        message: format!("{:#}", wt(e)),
    };
    let pre = linker.instantiate_pre(component).map_err(link_err)?;
    Ok(match slot {
        Slot::Tax => SlotPre::Tax(TaxRulesPre::new(pre).map_err(link_err)?),
        Slot::Validation => SlotPre::Validation(OrderValidationPre::new(pre).map_err(link_err)?),
        Slot::Email => SlotPre::Email(EmailRenderPre::new(pre).map_err(link_err)?),
    })
}
