//! Password hashing with argon2id at the OWASP parameters (m = 19 MiB, t = 2, p = 1).
//!
//! One hash costs tens of milliseconds of CPU, so hashing runs on its own threads (one per
//! core by default) at a lowered priority: a burst of logins queues here, and the async
//! runtime and the store's blocking tasks keep the CPU first. A login for an unknown account verifies against a dummy hash, so
//! it costs the same as one for a known account and timing does not reveal which e-mails exist.
//! Each hash's 19 MiB of working memory is mapped for that hash and returned to the OS after it.
//!
//! Accounts carried over from the Node system keep their bcrypt hashes (`$2a$`, `$2b$`,
//! `$2y$`) until their next login: those verify with the `bcrypt` crate on the same threads
//! (its comparison is constant-time too), and [`needs_upgrade`] tells the login to replace
//! them with an argon2id hash of the password just proven.

use std::sync::Arc;

use anyhow::Context;
use argon2::password_hash::{
    Output, ParamsString, PasswordHash, Salt, SaltString, rand_core::OsRng,
};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::Semaphore;

use crate::domain::Password;

/// Memory cost in KiB (19 MiB).
pub const MEMORY_KIB: u32 = 19_456;
/// Iterations.
pub const TIME_COST: u32 = 2;
/// Lanes.
pub const PARALLELISM: u32 = 1;

/// Hashes waiting or running, per hashing thread, beyond which a request is refused at once
/// ([`HashQueueFull`], answered 503 with `Retry-After`) instead of queueing: at tens of
/// milliseconds a hash, a longer queue only means answers too late to be useful.
const QUEUED_PER_THREAD: usize = 32;

/// Too many password hashes are waiting; the request was refused before any work.
#[derive(Debug, thiserror::Error)]
#[error("too many password hashes are waiting")]
pub struct HashQueueFull;

/// Hashes and verifies passwords off the async runtime, a bounded number at a time.
#[derive(Debug)]
pub struct PasswordHasher {
    /// Bounds hashes in flight, so a login burst queues here rather than in the channel.
    permits: Arc<Semaphore>,
    /// Bounds hashes waiting or running; past it a request is refused.
    queued: Semaphore,
    /// Work for the hashing threads.
    jobs: std::sync::mpsc::Sender<Job>,
    /// A real hash of a random password, verified against when the account does not exist.
    dummy_hash: String,
}

/// One hash or verification, run on a hashing thread.
type Job = Box<dyn FnOnce() + Send>;

/// Nice value of the hashing threads. The scheduler gives a nice-10 thread about a tenth of
/// the CPU a nice-0 thread gets when both want it, so the runtime's workers (and the health
/// route) keep answering in milliseconds while logins run; with spare CPU a hash runs at full
/// speed. Measured in BENCHMARKS.md ("logins and health during load").
const HASH_THREAD_NICE: i32 = 10;

/// Starts `n` hashing threads sharing one job queue; they end when the sender is dropped.
fn start_hashing_threads(n: usize) -> anyhow::Result<std::sync::mpsc::Sender<Job>> {
    let (tx, rx) = std::sync::mpsc::channel::<Job>();
    let rx = Arc::new(std::sync::Mutex::new(rx));
    for i in 0..n {
        let rx = Arc::clone(&rx);
        std::thread::Builder::new()
            .name(format!("password-hash-{i}"))
            .spawn(move || {
                lower_priority();
                loop {
                    // Hold the lock only to take a job, not while running it.
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            })
            .context("Failed to start a password-hashing thread")?;
    }
    Ok(tx)
}

/// Lowers the calling thread's scheduling priority to [`HASH_THREAD_NICE`]. On Linux a nice
/// value belongs to the thread (`who = 0` is the caller); where that fails the thread keeps
/// the normal priority, which costs latency under load but nothing else.
fn lower_priority() {
    // SAFETY: setpriority only reads its integer arguments.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, HASH_THREAD_NICE) };
    if rc != 0 {
        tracing::debug!(
            error = %std::io::Error::last_os_error(),
            "could not lower the priority of a password-hashing thread"
        );
    }
}

fn argon2() -> Argon2<'static> {
    // The parameters are constants within argon2's accepted ranges.
    let params =
        Params::new(MEMORY_KIB, TIME_COST, PARALLELISM, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// argon2's working memory for one hash, mapped from the OS and unmapped when dropped.
///
/// `Argon2::hash_password` allocates its 19 MiB with the global allocator. glibc serves the
/// first such block with mmap, then raises its mmap threshold to that size, so later blocks
/// come from per-thread arenas and are never given back: hashes spread over the blocking pool's
/// threads left a process that had served a few hundred logins at ~800 MiB RSS (see
/// BENCHMARKS.md, "Memory"). Mapping the blocks directly makes the memory go back to the OS
/// after every hash, whatever the allocator.
struct Blocks {
    map: memmap2::MmapMut,
    count: usize,
}

impl Blocks {
    fn new(count: usize) -> anyhow::Result<Self> {
        let map = memmap2::MmapMut::map_anon(count * Block::SIZE)
            .context("Failed to map memory for a password hash")?;
        Ok(Self { map, count })
    }
}

impl AsMut<[Block]> for Blocks {
    fn as_mut(&mut self) -> &mut [Block] {
        let ptr = self.map.as_mut_ptr();
        debug_assert_eq!(ptr.align_offset(std::mem::align_of::<Block>()), 0);
        // SAFETY: the mapping is `count * Block::SIZE` bytes, page-aligned (more than Block's
        // 64-byte alignment), zero-filled by the OS, and exclusively borrowed through `self`;
        // `Block` is a plain array of u64, valid for any bit pattern.
        unsafe { std::slice::from_raw_parts_mut(ptr.cast::<Block>(), self.count) }
    }
}

/// The PHC hash of `password` under `argon` with `salt`, computed in freshly mapped memory
/// (what `PasswordHasher::hash_password` does, minus the global allocation).
fn hash_in_mapped_memory<'a>(
    argon: &Argon2<'_>,
    params: &Params,
    password: &[u8],
    salt: Salt<'a>,
) -> anyhow::Result<PasswordHash<'a>> {
    let mut salt_buf = [0u8; Salt::MAX_LENGTH];
    let salt_bytes = salt
        .decode_b64(&mut salt_buf)
        .map_err(|err| anyhow::anyhow!("{err}"))
        .context("Failed to decode a password salt")?;
    let output_len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let mut blocks = Blocks::new(params.block_count())?;
    let output = Output::init_with(output_len, |out| {
        argon
            .hash_password_into_with_memory(password, salt_bytes, out, &mut blocks)
            .map_err(argon2::password_hash::Error::from)
    })
    .map_err(|err| anyhow::anyhow!("{err}"))
    .context("Failed to hash a password")?;
    Ok(PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|err| anyhow::anyhow!("{err}"))?,
        salt: Some(salt),
        hash: Some(output),
    })
}

fn hash_blocking(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    let argon = argon2();
    let hash = hash_in_mapped_memory(&argon, argon.params(), password.as_bytes(), salt.as_salt())?;
    Ok(hash.to_string())
}

/// Whether `stored` is a bcrypt hash (the Node system's).
fn is_bcrypt(stored: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"]
        .iter()
        .any(|prefix| stored.starts_with(prefix))
}

/// Whether a stored hash should be replaced by an argon2id one at the next successful login.
pub fn needs_upgrade(stored: &str) -> bool {
    is_bcrypt(stored)
}

fn verify_blocking(password: &str, phc: &str) -> anyhow::Result<bool> {
    if is_bcrypt(phc) {
        return bcrypt::verify(password, phc).context("Failed to verify a bcrypt password hash");
    }
    let parsed = PasswordHash::new(phc)
        .map_err(|err| anyhow::anyhow!("{err}"))
        .context("Failed to parse a stored password hash")?;
    anyhow::ensure!(
        parsed.algorithm == Algorithm::Argon2id.ident()
            && parsed.version == Some(Version::V0x13.into()),
        "A stored password hash is not argon2id v19"
    );
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        anyhow::bail!("A stored password hash lacks its salt or output");
    };
    // The stored hash's own parameters, so hashes made under other costs keep verifying.
    let params = Params::try_from(&parsed)
        .map_err(|err| anyhow::anyhow!("{err}"))
        .context("Failed to read the parameters of a stored password hash")?;
    let params = Params::new(
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        Some(expected.len()),
    )
    .map_err(|err| anyhow::anyhow!("{err}"))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let computed = hash_in_mapped_memory(&argon, &params, password.as_bytes(), salt)?;
    // `Output`'s equality is constant-time.
    Ok(computed.hash.as_ref() == Some(&expected))
}

impl PasswordHasher {
    /// A hasher running at most `concurrency` hashes at once, each on a dedicated low-priority
    /// thread (0 = the number of cores). Computes the dummy hash, so it takes one hash's time.
    pub fn new(concurrency: usize) -> anyhow::Result<Self> {
        let concurrency = if concurrency == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            concurrency
        };
        let mut random = [0u8; 24];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut random);
        Ok(Self {
            permits: Arc::new(Semaphore::new(concurrency)),
            queued: Semaphore::new(concurrency * QUEUED_PER_THREAD),
            jobs: start_hashing_threads(concurrency)?,
            dummy_hash: hash_blocking(&hex::encode(random))?,
        })
    }

    /// The argon2id PHC string of `password`.
    pub async fn hash(&self, password: &Password) -> anyhow::Result<String> {
        let password = password.expose().to_owned();
        self.run(move || hash_blocking(&password)).await
    }

    /// The argon2id PHC string of a password that was just verified against a legacy hash;
    /// it may predate today's password rules, so it is taken as it is.
    pub async fn rehash(&self, password: &str) -> anyhow::Result<String> {
        let password = password.to_owned();
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
        let _queued = self
            .queued
            .try_acquire()
            .map_err(|_| anyhow::Error::new(HashQueueFull))?;
        let _permit = self
            .permits
            .acquire()
            .await
            .context("Failed to wait for a password-hashing slot")?;
        let (done, result) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = done.send(job());
            }))
            .map_err(|_| anyhow::anyhow!("The password-hashing threads have stopped"))?;
        result
            .await
            .context("A password-hashing thread dropped its job")?
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

    #[test]
    fn hashes_agree_with_the_argon2_crates_own_hasher_both_ways() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let ours = hash_blocking("correct horse").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(argon2().verify_password(b"correct horse", &parsed).is_ok());
        assert!(argon2().verify_password(b"wrong horse!", &parsed).is_err());

        let salt = SaltString::generate(&mut OsRng);
        let theirs = argon2()
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        assert!(verify_blocking("correct horse", &theirs).unwrap());
        assert!(!verify_blocking("wrong horse!", &theirs).unwrap());
    }

    #[test]
    fn hashes_under_other_costs_still_verify_and_other_algorithms_are_errors() {
        use argon2::password_hash::PasswordHasher as _;
        let cheap = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(4096, 3, 1, None).unwrap(),
        );
        let salt = SaltString::generate(&mut OsRng);
        let old = cheap
            .hash_password(b"old password", &salt)
            .unwrap()
            .to_string();
        assert!(verify_blocking("old password", &old).unwrap());
        assert!(!verify_blocking("new password", &old).unwrap());

        let argon2i = old.replacen("$argon2id$", "$argon2i$", 1);
        assert!(verify_blocking("old password", &argon2i).is_err());
        assert!(verify_blocking("old password", "not a phc string").is_err());
    }

    #[tokio::test]
    async fn an_unknown_account_never_verifies_even_with_the_dummy_password() {
        let hasher = PasswordHasher::new(1).unwrap();
        assert!(!hasher.verify("anything at all", None).await.unwrap());
    }
}
