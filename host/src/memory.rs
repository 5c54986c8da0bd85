//! Giving freed heap memory back to the operating system after a burst of work.
//!
//! glibc's allocator keeps memory freed by a burst (request bodies, rendered e-mails, query
//! results) in its per-thread arenas for reuse, so a process that served a load keeps that
//! memory as resident long after it went idle. `malloc_trim(0)` returns the free parts of every
//! arena. It is called when the process has just become idle (the consumer found its queue
//! empty after handling messages), never on a hot path. Elsewhere (other C libraries) it does
//! nothing.

/// Returns free heap memory to the OS (glibc), on a blocking thread.
pub async fn release_free_memory() {
    let _ = tokio::task::spawn_blocking(trim).await;
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only inspects and releases the allocator's own free memory.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
