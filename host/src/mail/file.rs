//! The file transport: one `.eml` file per message in a directory, each written so that it
//! appears complete or not at all.
//!
//! One dedicated thread writes the files. Messages reach it through a bounded channel, and it
//! takes every message waiting there in one wake-up: the consumer sends a batch's e-mails
//! concurrently, so under load a whole batch costs the thread one wake-up, where a hop to
//! tokio's blocking pool per message cost a wake-up, a context switch and the pool's lock each
//! (BENCHMARKS.md, Pipeline). The thread ends when the last [`MailDir`] handle is dropped.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use tokio::sync::{mpsc, oneshot};

use crate::domain::Id;

/// Messages that may wait for the writer thread; a sender past this waits for room.
const QUEUE: usize = 1024;

/// One file to write and where to report how it went.
struct Job {
    name: String,
    bytes: Vec<u8>,
    done: oneshot::Sender<anyhow::Result<()>>,
}

/// A mail directory and the thread that writes into it.
pub(super) struct MailDir {
    dir: PathBuf,
    jobs: mpsc::Sender<Job>,
}

impl MailDir {
    /// Starts the writer thread for `dir` (which must exist).
    pub(super) fn start(dir: PathBuf) -> anyhow::Result<Self> {
        let (jobs, mut queue) = mpsc::channel::<Job>(QUEUE);
        let thread_dir = dir.clone();
        std::thread::Builder::new()
            .name("mail-files".into())
            .spawn(move || {
                while let Some(job) = queue.blocking_recv() {
                    let _ = job.done.send(place_eml(&thread_dir, &job.name, &job.bytes));
                }
            })
            .context("Failed to start the mail file writer thread")?;
        Ok(Self { dir, jobs })
    }

    /// The directory.
    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the message with `message_id` as its file; a second message with the same
    /// Message-ID leaves the first file as it is.
    pub(super) async fn write(&self, message_id: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
        let (done, result) = oneshot::channel();
        let job = Job {
            name: eml_name(message_id),
            bytes,
            done,
        };
        self.jobs
            .send(job)
            .await
            .map_err(|_| anyhow!("The mail file writer thread has stopped"))?;
        result
            .await
            .map_err(|_| anyhow!("The mail file writer thread dropped an e-mail"))?
    }
}

/// The file name for a Message-ID: its characters that are safe in a file name.
pub(super) fn eml_name(message_id: &str) -> String {
    let stem: String = message_id
        .trim_matches(|c| c == '<' || c == '>')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{stem}.eml")
}

/// Writes `bytes` as `dir/name` so that the file appears complete or not at all.
///
/// On Linux the data goes into an unnamed file (`O_TMPFILE`) that is then linked under its
/// name: one directory entry is added, where a temporary name + rename adds one, removes it
/// and adds another (at thousands of e-mails per second the directory updates were a visible
/// share of the consumer's CPU). A name that already exists is the same message sent before
/// (the name is its Message-ID), so it is left as it is. Where `O_TMPFILE` is not supported
/// (other systems, some file systems) a temporary file is renamed into place.
fn place_eml(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    #[cfg(target_os = "linux")]
    if let Some(result) = linux::link_unnamed(dir, name, bytes) {
        return result;
    }
    let tmp = dir.join(format!(".{name}.{}.tmp", Id::new()));
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(crate::private_files::FILE_MODE)
            .open(&tmp)
            .and_then(|mut file| file.write_all(bytes))
            .with_context(|| format!("Failed to write {}", tmp.display()))?;
    }
    std::fs::rename(&tmp, dir.join(name))
        .with_context(|| format!("Failed to move the e-mail into place as {name}"))
}

#[cfg(target_os = "linux")]
mod linux {
    //! `O_TMPFILE` + `linkat`: std has no API for either, so they are called through `libc`.

    use std::ffi::CString;
    use std::fs::OpenOptions;
    use std::io::Write;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::io::AsRawFd;
    use std::path::Path;

    use anyhow::Context;

    /// `None` when the directory's file system cannot make unnamed files (the caller falls
    /// back to a rename); otherwise the outcome of writing and linking.
    pub fn link_unnamed(dir: &Path, name: &str, bytes: &[u8]) -> Option<anyhow::Result<()>> {
        let mut file = match OpenOptions::new()
            .write(true)
            .mode(crate::private_files::FILE_MODE)
            .custom_flags(libc::O_TMPFILE)
            .open(dir)
        {
            Ok(file) => file,
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL | libc::ENOENT)
                ) && dir.is_dir() =>
            {
                return None;
            }
            Err(e) => {
                return Some(
                    Err(e).with_context(|| format!("Failed to create a file in {}", dir.display())),
                );
            }
        };
        Some(write_and_link(&mut file, dir, name, bytes))
    }

    fn write_and_link(
        file: &mut std::fs::File,
        dir: &Path,
        name: &str,
        bytes: &[u8],
    ) -> anyhow::Result<()> {
        file.write_all(bytes)
            .with_context(|| format!("Failed to write the e-mail {name}"))?;
        // Linking an unnamed file by descriptor (`AT_EMPTY_PATH`) needs a capability; its
        // `/proc/self/fd` entry followed as a symlink does not.
        let source = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd()))
            .context("A descriptor path has no NUL byte")?;
        let target = CString::new(dir.join(name).as_os_str().as_bytes())
            .context("The mail directory's path has a NUL byte")?;
        // SAFETY: both paths are NUL-terminated strings that outlive the call.
        let linked = unsafe {
            libc::linkat(
                libc::AT_FDCWD,
                source.as_ptr(),
                libc::AT_FDCWD,
                target.as_ptr(),
                libc::AT_SYMLINK_FOLLOW,
            )
        };
        if linked == 0 {
            return Ok(());
        }
        let error = std::io::Error::last_os_error();
        if error.raw_os_error() == Some(libc::EEXIST) {
            return Ok(());
        }
        Err(error).with_context(|| format!("Failed to link the e-mail into place as {name}"))
    }
}
