//! A directory of precompiled components, so a restart (or another process on the same host,
//! such as the next test binary) loads a plugin in milliseconds instead of compiling it.
//!
//! Files are keyed by the component's sha256 and a hash of the engine settings, written
//! atomically (temp file + rename, mode 0600) and sealed with HMAC-SHA256 (the `hmac` crate)
//! under a key kept apart from the artifacts: `<dir>.key`, next to the directory (so whoever
//! may write artifacts may not replace the key), created 0600 on first use. Deserializing a
//! precompiled artifact runs native code unchecked, so only files carrying this host's seal
//! are loaded; anything else is ignored and the component is compiled from its bytes.
//!
//! The cache is refused as a whole — logged once as an error, every component compiled from
//! its bytes — when the directory or the key is owned by another user, when the directory is
//! writable by group or others, or when the key is readable or writable by them. An artifact
//! file that is not this user's and owner-writable only is ignored, as is a symbolic link.

use std::fs::{self, File};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use wasmtime::Engine;
use wasmtime::component::Component;

use super::wt;
use crate::private_files::{self, untrusted};

/// File header: identifies the format before the seal.
const MAGIC: &[u8; 8] = b"ORDCWSM2";
/// Length of a seal (HMAC-SHA256).
const SEAL_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// A directory of sealed precompiled components for one engine configuration.
pub struct ArtifactCache {
    /// Where artifacts live.
    dir: PathBuf,
    /// The sealing key; `None` when the cache was refused (nothing is read or written).
    key: Option<[u8; 32]>,
    /// Hash of the engine settings that affect compiled code; part of every file name.
    engine_hash: String,
}

impl ArtifactCache {
    /// Opens (creating if needed, 0700) the cache in `dir` for artifacts of `engine`, with its
    /// key at [`key_path`]. A directory or key that fails the ownership and mode checks is
    /// logged and leaves the cache disabled; only I/O errors while creating them are returned.
    pub fn open(dir: &Path, engine: &Engine) -> anyhow::Result<Self> {
        private_files::create_dir_all(dir)
            .with_context(|| format!("Failed to create the plugin cache {}", dir.display()))?;
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let key = match trusted_key(dir)? {
            Ok(key) => Some(key),
            Err(why) => {
                tracing::error!(
                    dir = %dir.display(), "refusing the plugin artifact cache: {why}; every plugin is compiled from its bytes"
                );
                None
            }
        };
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
        let key = self.key.as_ref()?;
        let path = self.path(sha256);
        let file = read_trusted(&path)?;
        let (header, artifact) = file.split_at_checked(MAGIC.len() + SEAL_LEN)?;
        let (magic, seal) = header.split_at(MAGIC.len());
        if magic != MAGIC || self.mac(key, sha256, artifact).verify_slice(seal).is_err() {
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

    /// Stores `component` (compiled from bytes hashing to `sha256`), atomically. Does nothing
    /// when the cache was refused.
    pub fn store(&self, sha256: &str, component: &Component) -> anyhow::Result<()> {
        let Some(key) = &self.key else {
            return Ok(());
        };
        let artifact = component
            .serialize()
            .map_err(wt)
            .context("Failed to serialize the compiled plugin")?;
        // `tempfile` creates its files 0600.
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)
            .context("Failed to create a temporary file in the plugin cache")?;
        tmp.write_all(MAGIC)?;
        tmp.write_all(&self.mac(key, sha256, &artifact).finalize().into_bytes())?;
        tmp.write_all(&artifact)?;
        tmp.as_file().sync_all()?;
        tmp.persist(self.path(sha256))
            .context("Failed to move the compiled plugin into the cache")?;
        Ok(())
    }

    /// The MAC over the component hash, the engine hash and the artifact, each
    /// length-prefixed so no two different triples feed the MAC the same bytes.
    fn mac(&self, key: &[u8; 32], sha256: &str, artifact: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
        for part in [sha256.as_bytes(), self.engine_hash.as_bytes(), artifact] {
            mac.update(&(part.len() as u64).to_le_bytes());
            mac.update(part);
        }
        mac
    }
}

/// Where the sealing key of the cache in `dir` lives: `<dir>.key`, beside the directory.
pub fn key_path(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(".key");
    dir.with_file_name(name)
}

/// The key of the cache in `dir` (created 0600 when missing), or why the cache may not be
/// trusted. The outer error is an I/O failure.
fn trusted_key(dir: &Path) -> anyhow::Result<Result<[u8; 32], String>> {
    let meta = fs::symlink_metadata(dir)
        .with_context(|| format!("Failed to inspect the plugin cache {}", dir.display()))?;
    if !meta.is_dir() {
        return Ok(Err(format!("{} is not a directory", dir.display())));
    }
    if let Some(why) = untrusted(&meta) {
        return Ok(Err(format!("the directory {}: {why}", dir.display())));
    }
    read_or_create_key(&key_path(dir))
}

/// Reads the key at `path`, creating it (owner-only) if it does not exist yet.
fn read_or_create_key(path: &Path) -> anyhow::Result<Result<[u8; 32], String>> {
    match File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(mut file) => {
            let meta = file.metadata()?;
            if let Some(why) = untrusted(&meta) {
                return Ok(Err(format!("the key {}: {why}", path.display())));
            }
            if meta.mode() & 0o077 != 0 {
                return Ok(Err(format!(
                    "the key {}: its mode {:03o} lets other users read it",
                    path.display(),
                    meta.mode() & 0o777
                )));
            }
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)
                .with_context(|| format!("Failed to read {}", path.display()))?;
            return Ok(bytes
                .try_into()
                .map_err(|_| format!("{} is not a 32-byte key", path.display())));
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        // O_NOFOLLOW on a symbolic link.
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Ok(Err(format!(
                "the key {} is a symbolic link",
                path.display()
            )));
        }
        Err(e) => return Err(e).with_context(|| format!("Failed to read {}", path.display())),
    }
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let key: [u8; 32] = rand::random();
    let mut tmp = tempfile::NamedTempFile::new_in(parent)
        .context("Failed to create a temporary file for the plugin cache key")?;
    tmp.write_all(&key)?;
    tmp.as_file().sync_all()?;
    // Another process may have created the key meanwhile: keep whichever landed first.
    match tmp.persist_noclobber(path) {
        Ok(_) => Ok(Ok(key)),
        Err(e) if e.error.kind() == ErrorKind::AlreadyExists => read_or_create_key(path),
        Err(e) => Err(e.error).with_context(|| format!("Failed to write {}", path.display())),
    }
}

/// The bytes of the artifact at `path`, unless it is missing, a symbolic link, or not this
/// user's own owner-writable-only file (checked on the opened file, not the name).
fn read_trusted(path: &Path) -> Option<Vec<u8>> {
    let mut file = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() {
        return None;
    }
    if let Some(why) = untrusted(&meta) {
        tracing::warn!(path = %path.display(), "ignoring a cached plugin artifact: {why}");
        return None;
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_file_is_created_once_beside_the_directory_and_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("plugin-cache");
        assert_eq!(key_path(&cache), dir.path().join("plugin-cache.key"));
        let first = read_or_create_key(&key_path(&cache)).unwrap().unwrap();
        assert_eq!(
            first,
            read_or_create_key(&key_path(&cache)).unwrap().unwrap()
        );
        let meta = fs::metadata(key_path(&cache)).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
    }
}
