//! Password hashing with argon2id at the OWASP parameters (m = 19 MiB, t = 2, p = 1).
//!
//! One hash costs tens of milliseconds of CPU, so hashing runs on the blocking pool and a
//! semaphore bounds how many run at once: a burst of logins queues here instead of starving
//! every other blocking task. A login for an unknown account verifies against a dummy hash, so
//! it costs the same as one for a known account and timing does not reveal which e-mails exist.

use std::sync::Arc;

use anyhow::Context;
use argon2::password_hash::{
    PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString, rand_core::OsRng,
};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::domain::Password;

/// Memory cost in KiB (19 MiB).
pub const MEMORY_KIB: u32 = 19_456;
/// Iterations.
pub const TIME_COST: u32 = 2;
/// Lanes.
pub const PARALLELISM: u32 = 1;

/// Hashes and verifies passwords off the async runtime, a bounded number at a time.
#[derive(Debug)]
pub struct PasswordHasher {
    /// Bounds concurrent hashes so a login burst cannot occupy the whole blocking pool.
    permits: Arc<Semaphore>,
    /// A real hash of a random password, verified against when the account does not exist.
    dummy_hash: String,
}

fn argon2() -> Argon2<'static> {
    // The parameters are constants within argon2's accepted ranges.
    let params =
        Params::new(MEMORY_KIB, TIME_COST, PARALLELISM, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_blocking(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|err| anyhow::anyhow!("{err}"))
        .context("Failed to hash a password")
}

fn verify_blocking(password: &str, phc: &str) -> anyhow::Result<bool> {
    let parsed = PasswordHash::new(phc)
        .map_err(|err| anyhow::anyhow!("{err}"))
        .context("Failed to parse a stored password hash")?;
    match argon2().verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::Password) => Ok(false),
        Err(err) => Err(anyhow::anyhow!("{err}")).context("Failed to verify a password"),
    }
}

impl PasswordHasher {
    /// A hasher running at most `concurrency` hashes at once (0 = twice the number of cores).
    /// Computes the dummy hash, so it takes one hash's time.
    pub fn new(concurrency: usize) -> anyhow::Result<Self> {
        let concurrency = if concurrency == 0 {
            2 * std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            concurrency
        };
        let mut random = [0u8; 24];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut random);
        Ok(Self {
            permits: Arc::new(Semaphore::new(concurrency)),
            dummy_hash: hash_blocking(&hex::encode(random))?,
        })
    }

    /// The argon2id PHC string of `password`.
    pub async fn hash(&self, password: &Password) -> anyhow::Result<String> {
        let password = password.expose().to_owned();
        self.run(move || hash_blocking(&password)).await
    }

    /// Whether `password` matches `stored`. With `None` (unknown account) it spends the same
    /// work on the dummy hash and answers `false`.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> anyhow::Result<bool> {
        let known = stored.is_some();
        let phc = stored.unwrap_or(&self.dummy_hash).to_owned();
        let password = password.to_owned();
        let matches = self.run(move || verify_blocking(&password, &phc)).await?;
        Ok(known && matches)
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let _permit = self
            .permits
            .acquire()
            .await
            .context("Failed to wait for a password-hashing slot")?;
        tokio::task::spawn_blocking(job)
            .await
            .context("Failed to join a password-hashing task")?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hashed_password_verifies_and_a_wrong_one_does_not() {
        let hasher = PasswordHasher::new(1).unwrap();
        let hash = hasher
            .hash(&Password::parse("correct horse").unwrap())
            .await
            .unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(hasher.verify("correct horse", Some(&hash)).await.unwrap());
        assert!(!hasher.verify("wrong horse!", Some(&hash)).await.unwrap());
    }

    #[tokio::test]
    async fn an_unknown_account_never_verifies_even_with_the_dummy_password() {
        let hasher = PasswordHasher::new(1).unwrap();
        assert!(!hasher.verify("anything at all", None).await.unwrap());
    }
}
