//! The guest's stderr: a bounded in-memory buffer the host drains into tracing after each
//! call, one event per line, tagged with the slot and version. Output past the bound is
//! dropped (and counted) rather than failing the guest's write, since a chatty plugin should
//! not turn into a trapping one.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Most stderr bytes kept per call.
const STDERR_CAP: usize = 16 << 10;
/// Largest write the guest is offered at once.
const WRITE_PERMIT: usize = 4 << 10;

/// A cloneable handle to one call's stderr buffer.
#[derive(Clone, Default)]
pub struct StderrCapture {
    /// The shared buffer; every stream the guest opens on stderr appends here.
    inner: Arc<Mutex<Captured>>,
}

/// What one call wrote.
#[derive(Default)]
struct Captured {
    /// Kept bytes, at most [`STDERR_CAP`].
    bytes: Vec<u8>,
    /// Bytes dropped because the buffer was full.
    dropped: usize,
}

impl StderrCapture {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    fn append(&self, data: &[u8]) {
        let mut c = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let room = STDERR_CAP.saturating_sub(c.bytes.len());
        let keep = data.len().min(room);
        c.bytes.extend_from_slice(&data[..keep]);
        c.dropped += data.len() - keep;
    }

    /// The last few meaningful lines written so far, joined (a panic message, typically),
    /// without the standard "run with RUST_BACKTRACE" hint.
    pub fn tail(&self) -> String {
        let c = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let text = String::from_utf8_lossy(&c.bytes);
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE"))
            .collect();
        lines[lines.len().saturating_sub(3)..].join(" ")
    }

    /// Takes the captured lines (lossily decoded) and the count of dropped bytes.
    pub fn take_lines(&self) -> (Vec<String>, usize) {
        let mut c = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let bytes = std::mem::take(&mut c.bytes);
        let dropped = std::mem::take(&mut c.dropped);
        let lines = String::from_utf8_lossy(&bytes)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect();
        (lines, dropped)
    }
}

impl IsTerminal for StderrCapture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for StderrCapture {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for StderrCapture {
    async fn ready(&mut self) {}
}

impl OutputStream for StderrCapture {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

impl AsyncWrite for StderrCapture {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
