//! Hot reload from a plugins directory. Operators deploy by atomically renaming
//! `<slot>.wasm` (and optionally `<slot>.toml`) into the directory; the watcher notices
//! (inotify and friends via `notify`, debounced), loads the new version through the normal
//! checks, and a version that fails them is logged and never served. Removing the files
//! reverts the slot to its built-in default.
//!
//! `<slot>.toml`:
//! ```toml
//! policy = "fallback"          # or "fail-closed"; default: the slot's configured policy
//! [config]                     # passed to the plugin; default: the slot's configured config
//! "rate.essentials" = 500      # scalars become strings; nested tables join keys with "."
//! ```
//! A `<slot>.toml` without a `<slot>.wasm` configures the built-in default.
//!
//! The watcher rescans the whole directory on every debounced batch of events and acts only
//! on slots whose files changed, so event details (rename vs. write, temp files) never matter.
//!
//! Only regular files are read: a symbolic link is refused (unless
//! `plugins.watch_follow_symlinks` is set, and then only when it leads to a regular file), as
//! are FIFOs, devices and sockets; a `<slot>.wasm` larger than the upload limit
//! ([`MAX_COMPONENT_BYTES`]) or a `<slot>.toml` larger than [`MAX_SLOT_FILE_BYTES`] is refused
//! without being read whole. Files are read on a blocking thread, never on an async worker.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use notify::RecursiveMode;
use notify_debouncer_full::{DebounceEventResult, new_debouncer};
use rule_types::Config;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::contract::{FailurePolicy, PluginSource, Slot};
use super::embedded::default_component;
use super::runtime::PluginRuntime;

/// How long the directory must be quiet before the watcher acts.
const DEBOUNCE: Duration = Duration::from_millis(100);

/// Largest component accepted from the plugins directory or an upload, in bytes: room for a
/// component that carries a language runtime (a Python rule built by componentize-py is
/// about 18 MB).
pub const MAX_COMPONENT_BYTES: usize = 32 << 20;
/// Largest `<slot>.toml` accepted, in bytes.
pub const MAX_SLOT_FILE_BYTES: usize = 64 << 10;

/// The contents of a `<slot>.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotFile {
    /// Failure policy of the deployed version; `None` keeps the slot's configured policy.
    pub policy: Option<FailurePolicy>,
    /// Config of the deployed version; `None` keeps the slot's configured config.
    pub config: Option<toml::Table>,
}

impl SlotFile {
    /// Parses a `<slot>.toml`.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        toml::from_str(text).context("Failed to parse the slot file")
    }

    /// The config as key/value pairs: nested tables join their keys with `.`, scalars become
    /// strings.
    pub fn config_pairs(&self) -> anyhow::Result<Option<Config>> {
        let Some(table) = &self.config else {
            return Ok(None);
        };
        let mut pairs = Config::new();
        flatten("", table, &mut pairs)?;
        Ok(Some(pairs))
    }
}

fn flatten(prefix: &str, table: &toml::Table, out: &mut Config) -> anyhow::Result<()> {
    for (key, value) in table {
        let key = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let text = match value {
            toml::Value::Table(inner) => {
                flatten(&key, inner, out)?;
                continue;
            }
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Datetime(d) => d.to_string(),
            toml::Value::Array(_) => anyhow::bail!("config key `{key}` is an array; use a string"),
        };
        out.push((key, text));
    }
    Ok(())
}

/// A running watcher; it stops when the shutdown future passed to
/// [`PluginRuntime::spawn_watcher`] completes.
pub struct WatcherHandle {
    /// The task scanning the directory.
    task: JoinHandle<()>,
}

impl WatcherHandle {
    /// Waits until the watcher has stopped.
    pub async fn stopped(self) {
        let _ = self.task.await;
    }
}

/// What the watcher last acted on for a slot.
#[derive(Default, Clone)]
struct Seen {
    /// Fingerprint of the slot's files when the watcher last acted (`None`: no files).
    fingerprint: Option<String>,
    /// Whether the active version is one the watcher loaded (so removal must revert it).
    loaded: bool,
}

impl PluginRuntime {
    /// Watches `dir` for `<slot>.wasm` / `<slot>.toml` and hot-reloads them until `shutdown`
    /// completes. Files already present are loaded at once. Must be called inside a tokio
    /// runtime.
    pub fn spawn_watcher(
        &self,
        dir: PathBuf,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<WatcherHandle> {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("Failed to create the plugins directory {}", dir.display()))?;
        let (tx, mut rx) = mpsc::unbounded_channel::<()>();
        let mut debouncer = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| {
            if let Err(errors) = &result {
                tracing::warn!(?errors, "plugin directory watch errors");
            }
            let _ = tx.send(());
        })
        .context("Failed to start watching the plugins directory")?;
        debouncer
            .watch(&dir, RecursiveMode::NonRecursive)
            .with_context(|| format!("Failed to watch {}", dir.display()))?;
        let runtime = self.clone();
        let task = tokio::spawn(async move {
            // The debouncer stops watching when dropped, so it lives as long as this task.
            let _debouncer = debouncer;
            let mut seen: [Seen; 3] = Default::default();
            tracing::info!(dir = %dir.display(), "watching for plugin files");
            runtime.scan(&dir, &mut seen).await;
            tokio::pin!(shutdown);
            loop {
                tokio::select! {
                    () = &mut shutdown => break,
                    event = rx.recv() => {
                        if event.is_none() {
                            break;
                        }
                        while rx.try_recv().is_ok() {}
                        runtime.scan(&dir, &mut seen).await;
                    }
                }
            }
            tracing::info!(dir = %dir.display(), "stopped watching for plugin files");
        });
        Ok(WatcherHandle { task })
    }

    async fn scan(&self, dir: &Path, seen: &mut [Seen; 3]) {
        for slot in Slot::ALL {
            let entry = &mut seen[slot.index()];
            if let Err(e) = self.scan_slot(dir, slot, entry).await {
                tracing::error!(slot = %slot, error = %format!("{e:#}"), "plugin file not loaded; the active version keeps serving");
            }
        }
    }

    async fn scan_slot(&self, dir: &Path, slot: Slot, seen: &mut Seen) -> anyhow::Result<()> {
        let wasm_path = dir.join(format!("{slot}.wasm"));
        let toml_path = dir.join(format!("{slot}.toml"));
        let follow = self.settings().watch_follow_symlinks;
        let wasm = read_slot_file(wasm_path.clone(), MAX_COMPONENT_BYTES, follow).await?;
        let toml = read_slot_file(toml_path.clone(), MAX_SLOT_FILE_BYTES, follow).await?;
        if wasm.is_none() && toml.is_none() {
            if seen.fingerprint.take().is_some() && std::mem::take(&mut seen.loaded) {
                self.revert_to_default(slot).await?;
            }
            return Ok(());
        }
        let mut hasher = Sha256::new();
        for part in [&wasm, &toml] {
            hasher.update([u8::from(part.is_some())]);
            hasher.update(part.as_deref().unwrap_or_default());
        }
        let fingerprint = hex::encode(hasher.finalize());
        if seen.fingerprint.as_deref() == Some(fingerprint.as_str()) {
            return Ok(());
        }
        seen.fingerprint = Some(fingerprint);

        let file = match &toml {
            Some(bytes) => {
                let text = std::str::from_utf8(bytes).context("the slot file is not UTF-8")?;
                SlotFile::parse(text)
                    .with_context(|| format!("Failed to read {}", toml_path.display()))?
            }
            None => SlotFile {
                policy: None,
                config: None,
            },
        };
        let config = file
            .config_pairs()?
            .unwrap_or_else(|| self.settings().slot(slot).config.clone());
        let (bytes, source) = match wasm {
            Some(bytes) => (bytes, PluginSource::File { path: wasm_path }),
            None => (default_component(slot).to_vec(), PluginSource::Embedded),
        };
        let loaded = self
            .load(slot, bytes, config, file.policy, source)
            .await
            .with_context(|| format!("Failed to load the {slot} plugin from {}", dir.display()))?;
        seen.loaded = true;
        tracing::info!(slot = %slot, sha256 = %loaded.sha256, generation = loaded.generation, "plugin file loaded");
        Ok(())
    }
}

/// Reads `path` on a blocking thread: `None` when it does not exist; an error when it is not a
/// regular file (a symbolic link unless `follow_symlinks`, a FIFO, a device, a socket) or is
/// larger than `limit` bytes.
async fn read_slot_file(
    path: PathBuf,
    limit: usize,
    follow_symlinks: bool,
) -> anyhow::Result<Option<Vec<u8>>> {
    tokio::task::spawn_blocking(move || read_regular_file(&path, limit, follow_symlinks))
        .await
        .context("the plugin file reader stopped")?
}

fn read_regular_file(
    path: &Path,
    limit: usize,
    follow_symlinks: bool,
) -> anyhow::Result<Option<Vec<u8>>> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;

    // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below anyway).
    let mut flags = libc::O_NONBLOCK;
    if !follow_symlinks {
        flags |= libc::O_NOFOLLOW;
    }
    let file = match std::fs::File::options()
        .read(true)
        .custom_flags(flags)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => anyhow::bail!(
            "{} is a symbolic link; deploy the file itself, or set plugins.watch_follow_symlinks",
            path.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("Failed to open {}", path.display())),
    };
    // Checked on the opened file, so a swap after the check cannot change what is read.
    let meta = file
        .metadata()
        .with_context(|| format!("Failed to inspect {}", path.display()))?;
    if !meta.is_file() {
        anyhow::bail!(
            "{} is not a regular file ({:?}); only regular files are loaded",
            path.display(),
            meta.file_type()
        );
    }
    if meta.len() > limit as u64 {
        anyhow::bail!(
            "{} is {} bytes; at most {limit} are accepted",
            path.display(),
            meta.len()
        );
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // Bounded even if the file grows while it is read.
    file.take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("Failed to read {}", path.display()))?;
    if bytes.len() > limit {
        anyhow::bail!(
            "{} grew past {limit} bytes while it was read",
            path.display()
        );
    }
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_file_flattens_nested_keys_and_stringifies_scalars() {
        let file = SlotFile::parse(
            "policy = \"fallback\"\n[config]\n\"rate.essentials\" = 500\nrate.books = \"0\"\nstrict = true\n",
        )
        .unwrap();
        assert_eq!(file.policy, Some(FailurePolicy::Fallback));
        let mut pairs = file.config_pairs().unwrap().unwrap();
        pairs.sort();
        let expected: Config = vec![
            ("rate.books".into(), "0".into()),
            ("rate.essentials".into(), "500".into()),
            ("strict".into(), "true".into()),
        ];
        assert_eq!(pairs, expected);
    }

    #[test]
    fn a_slot_file_with_an_unknown_key_or_policy_is_refused() {
        assert!(SlotFile::parse("polcy = \"fallback\"").is_err());
        assert!(SlotFile::parse("policy = \"sometimes\"").is_err());
        assert!(
            SlotFile::parse("[config]\nrates = [1, 2]")
                .unwrap()
                .config_pairs()
                .is_err()
        );
    }
}
