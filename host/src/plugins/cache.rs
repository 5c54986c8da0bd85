//! A directory of precompiled components, so a restart (or another process on the same host,
//! such as the next test binary) loads a plugin in milliseconds instead of compiling it.
//!
//! Files are keyed by the component's sha256 and a hash of the engine settings, written
//! atomically (temp file + rename) and sealed with an HMAC under a key kept in the directory
//! (`host.key`, created on first use, readable only by its owner). Deserializing a precompiled
//! artifact runs native code unchecked, so only files carrying this host's seal are loaded;
//! anything else is ignored and the component is compiled from its bytes.

use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::wt;

/// File header: identifies the format before the seal.
const MAGIC: &[u8; 8] = b"ORDCWSM1";
const KEY_FILE: &str = "host.key";

/// A directory of sealed precompiled components for one engine configuration.
pub struct ArtifactCache {
    /// Where artifacts live.
    dir: PathBuf,
    /// The sealing key read from (or created in) `dir`.
    key: [u8; 32],
    /// Hash of the engine settings that affect compiled code; part of every file name.
    engine_hash: String,
}

impl ArtifactCache {
    /// Opens (creating if needed) the cache in `dir` for artifacts of `engine`.
    pub fn open(dir: &Path, engine: &Engine) -> anyhow::Result<Self> {
        fs::create_dir_all(dir)
            .with_context(|| format!("Failed to create the plugin cache {}", dir.display()))?;
        let key = read_or_create_key(dir)?;
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self {
            dir: dir.to_path_buf(),
            key,
            engine_hash: format!("{:016x}", hasher.finish()),
        })
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir
            .join(format!("{sha256}-{}.cwasm", self.engine_hash))
    }

    /// The cached component for `sha256`, if this host wrote one for this engine.
    pub fn load(&self, engine: &Engine, sha256: &str) -> Option<Component> {
        let path = self.path(sha256);
        let file = fs::read(&path).ok()?;
        let (header, artifact) = file.split_at_checked(MAGIC.len() + 32)?;
        let (magic, seal) = header.split_at(MAGIC.len());
        if magic != MAGIC || !same(seal, &self.seal(sha256, artifact)) {
            tracing::warn!(path = %path.display(), "ignoring a cached plugin artifact this host did not write");
            return None;
        }
        // SAFETY: the seal proves this host serialized the artifact with an engine of the same
        // settings (both are in the sealed file name and MAC), and wasmtime re-checks the
        // engine compatibility header itself.
        match unsafe { Component::deserialize(engine, artifact) } {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %wt(e), "ignoring an unusable cached plugin artifact");
                None
            }
        }
    }

    /// Stores `component` (compiled from bytes hashing to `sha256`), atomically.
    pub fn store(&self, sha256: &str, component: &Component) -> anyhow::Result<()> {
        let artifact = component
            .serialize()
            .map_err(wt)
            .context("Failed to serialize the compiled plugin")?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)
            .context("Failed to create a temporary file in the plugin cache")?;
        tmp.write_all(MAGIC)?;
        tmp.write_all(&self.seal(sha256, &artifact))?;
        tmp.write_all(&artifact)?;
        tmp.as_file().sync_all()?;
        tmp.persist(self.path(sha256))
            .context("Failed to move the compiled plugin into the cache")?;
        Ok(())
    }

    fn seal(&self, sha256: &str, artifact: &[u8]) -> [u8; 32] {
        hmac_sha256(
            &self.key,
            &[sha256.as_bytes(), self.engine_hash.as_bytes(), artifact],
        )
    }
}

/// Reads the directory's sealing key, creating it (owner-only) if it does not exist yet.
fn read_or_create_key(dir: &Path) -> anyhow::Result<[u8; 32]> {
    let path = dir.join(KEY_FILE);
    match fs::read(&path) {
        Ok(bytes) => {
            return bytes
                .try_into()
                .map_err(|_| anyhow::anyhow!("{} is not a 32-byte key", path.display()));
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("Failed to read {}", path.display())),
    }
    let key: [u8; 32] = rand::random();
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .context("Failed to create a temporary file in the plugin cache")?;
    tmp.write_all(&key)?;
    tmp.as_file().sync_all()?;
    // Another process may have created the key meanwhile: keep whichever landed first.
    match tmp.persist_noclobber(&path) {
        Ok(_) => Ok(key),
        Err(e) if e.error.kind() == ErrorKind::AlreadyExists => read_or_create_key(dir),
        Err(e) => Err(e.error).with_context(|| format!("Failed to write {}", path.display())),
    }
}

/// HMAC-SHA256 (RFC 2104) of the concatenated `parts`.
fn hmac_sha256(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(key);
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    for part in parts {
        inner.update((part.len() as u64).to_le_bytes());
        inner.update(part);
    }
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// Constant-time comparison of two seals.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seal_depends_on_key_and_every_part() {
        let key = [7u8; 32];
        let base = hmac_sha256(&key, &[b"abc", b"def"]);
        assert_eq!(base, hmac_sha256(&key, &[b"abc", b"def"]));
        assert_ne!(base, hmac_sha256(&[8u8; 32], &[b"abc", b"def"]));
        assert_ne!(base, hmac_sha256(&key, &[b"abcd", b"ef"]));
        assert_ne!(base, hmac_sha256(&key, &[b"abc", b"deg"]));
    }

    #[test]
    fn the_key_file_is_created_once_and_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = read_or_create_key(dir.path()).unwrap();
        assert_eq!(first, read_or_create_key(dir.path()).unwrap());
        assert_eq!(fs::read(dir.path().join(KEY_FILE)).unwrap(), first);
    }
}
