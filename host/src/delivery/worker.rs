//! The shape every delivery loop shares (sqlxmq-style): a `try_run_once` that does one pass
//! and says whether it found work, and an outer loop that owns waiting, wake-ups and backoff.

/// What one pass found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// This many events were claimed and handled (published, or failed and backed off).
    Processed(usize),
    /// Nothing was due.
    Idle,
}
