//! The orderd process under test: finds the release binary, prepares a fresh data directory,
//! creates the admin account with `orderd admin create`, starts `orderd serve` on a free port
//! with the settings a measurement needs (rate limit off, quiet logs, short leases), waits for
//! it to answer, reads its memory use from `/proc`, and kills and restarts it on the same data.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// E-mail of the admin account every run creates.
pub const ADMIN_EMAIL: &str = "bench-admin@example.com";
/// Password of that admin account.
pub const ADMIN_PASSWORD: &str = "bench-admin-password";

/// Where the orderd binary is, when `--orderd` is not given: `target/release/orderd` of this
/// workspace (built by `cargo build --release -p orderd`).
pub fn default_binary() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/orderd")
}

/// A port nobody listens on right now (bind to port 0, read it, release it).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("Failed to find a free port")?;
    Ok(listener
        .local_addr()
        .context("Failed to read a bound address")?
        .port())
}

/// How to start one orderd: the binary, its data directory and port, and extra `ORDERD_*`
/// settings. Kept after a kill so the process can be started again on the same data.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    /// The orderd executable.
    pub binary: PathBuf,
    /// `ORDERD_DATA_DIR`: the SQLite file, the JWT secret and `mail/` live here.
    pub data_dir: PathBuf,
    /// `ORDERD_HTTP__PORT`.
    pub port: u16,
    /// `--roles` of `orderd serve`.
    pub roles: String,
    /// Further environment settings (`ORDERD_QUEUE__BACKEND=sqs`, …), applied last.
    pub env: BTreeMap<String, String>,
    /// File the server's stdout and stderr are appended to.
    pub log: PathBuf,
}

impl ServerSpec {
    /// A spec for a fresh data directory under `root`, all roles, a free port, and the
    /// settings every measurement wants: no login rate limit (the load registers and logs in
    /// many users from one address), warnings-only logs (log volume would distort the
    /// figures), and short relay/consumer leases so a killed process's work is retried within
    /// seconds rather than the production defaults' minute.
    pub fn fresh(binary: &Path, root: &Path) -> anyhow::Result<Self> {
        let data_dir = root.join("data");
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("Failed to create {}", data_dir.display()))?;
        let mut env = BTreeMap::new();
        for (key, value) in [
            ("ORDERD_RATE_LIMIT__ENABLED", "false".to_owned()),
            ("ORDERD_HTTP__PLAIN_HTTP_COOKIES", "true".to_owned()),
            ("ORDERD_HTTP__SHUTDOWN_GRACE_MS", "2000".to_owned()),
            ("ORDERD_LOG__FILTER", "warn".to_owned()),
            ("ORDERD_RELAY__LEASE_MS", "2000".to_owned()),
            ("ORDERD_CONSUMER__VISIBILITY_MS", "3000".to_owned()),
            ("ORDERD_CONSUMER__EMAIL_CLAIM_MS", "3000".to_owned()),
            ("ORDERD_CONSUMER__WAIT_MS", "1000".to_owned()),
            (
                "ORDERD_CONSUMER__HEALTH_ADDR",
                format!("127.0.0.1:{}", free_port()?),
            ),
        ] {
            env.insert(key.to_owned(), value);
        }
        Ok(Self {
            binary: binary.to_path_buf(),
            data_dir,
            port: free_port()?,
            roles: "api,relay,consumer".to_owned(),
            env,
            log: root.join("orderd.log"),
        })
    }

    /// Base URL of the API.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Directory of the `.eml` files written by the file mail transport.
    pub fn mail_dir(&self) -> PathBuf {
        self.data_dir.join("mail")
    }

    /// An `orderd` command with this spec's environment and nothing inherited that could
    /// change the settings (`ORDERD_*`, `RUST_LOG`).
    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.binary);
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy().into_owned();
            if key.starts_with("ORDERD_") || key == "RUST_LOG" {
                cmd.env_remove(key);
            }
        }
        cmd.env("ORDERD_DATA_DIR", &self.data_dir)
            .env("ORDERD_HTTP__PORT", self.port.to_string())
            .envs(&self.env)
            .stdin(Stdio::null());
        cmd
    }

    /// Creates the benchmark admin with `orderd admin create` (before the server starts).
    pub fn create_admin(&self) -> anyhow::Result<()> {
        let output = self
            .command()
            .args([
                "admin",
                "create",
                "--email",
                ADMIN_EMAIL,
                "--password",
                ADMIN_PASSWORD,
            ])
            .args(["--username", "bench_admin"])
            .output()
            .with_context(|| format!("Failed to run {} admin create", self.binary.display()))?;
        if !output.status.success() {
            bail!(
                "orderd admin create failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    /// Starts `orderd serve` and waits until `/api/health` (or, without the api role, the
    /// consumer's own health route) answers.
    pub async fn start(&self) -> anyhow::Result<Server> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("Failed to open {}", self.log.display()))?;
        let err_log = log.try_clone().context("Failed to share the server log")?;
        let child = self
            .command()
            .args(["serve", "--roles", &self.roles])
            .stdout(log)
            .stderr(err_log)
            .spawn()
            .with_context(|| format!("Failed to start {}", self.binary.display()))?;
        let mut server = Server {
            child,
            spec: self.clone(),
        };
        server.wait_ready(Duration::from_secs(60)).await?;
        Ok(server)
    }

    /// The health URL of a process with this spec's roles.
    fn health_url(&self) -> String {
        if self.roles.split(',').any(|r| r.trim() == "api") {
            format!("{}/api/health", self.url())
        } else {
            let addr = self
                .env
                .get("ORDERD_CONSUMER__HEALTH_ADDR")
                .cloned()
                .unwrap_or_default();
            format!("http://{addr}/processor/api/health")
        }
    }
}

/// A running orderd child process.
pub struct Server {
    child: Child,
    /// How it was started, to restart it.
    pub spec: ServerSpec,
}

impl Server {
    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    async fn wait_ready(&mut self, limit: Duration) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let url = self.spec.health_url();
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().context("Failed to poll orderd")? {
                bail!(
                    "orderd exited during start-up ({status}); see {}",
                    self.spec.log.display()
                );
            }
            if let Ok(resp) = client
                .get(&url)
                .timeout(Duration::from_secs(1))
                .send()
                .await
                && resp.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "orderd did not answer {url} within {limit:?}; see {}",
                    self.spec.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Resident memory now and at its peak, from `/proc/<pid>/status`.
    pub fn memory(&self) -> anyhow::Result<Memory> {
        read_memory(self.pid())
    }

    /// SIGKILL: no shutdown code runs, as in a crash or an OOM kill.
    pub fn kill(mut self) -> anyhow::Result<ServerSpec> {
        self.child.kill().context("Failed to kill orderd")?;
        self.child.wait().context("Failed to reap orderd")?;
        Ok(self.spec.clone())
    }

    /// SIGTERM, then wait for the graceful drain (SIGKILL after `limit`).
    pub async fn stop(mut self, limit: Duration) -> anyhow::Result<ServerSpec> {
        let pid = self.pid().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + limit;
        while self
            .child
            .try_wait()
            .context("Failed to poll orderd")?
            .is_none()
        {
            if Instant::now() > deadline {
                return self.kill();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(self.spec.clone())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Resident set sizes of a process, in KiB.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss_kib: u64,
    /// `VmHWM`: the most it was ever resident.
    pub peak_kib: u64,
}

/// Reads `VmRSS` and `VmHWM` of `pid`.
pub fn read_memory(pid: u32) -> anyhow::Result<Memory> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("Failed to read {path}"))?;
    let field = |name: &str| -> anyhow::Result<u64> {
        let line = text
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("{path} has no {name}"))?;
        line.split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("Failed to parse {line:?}"))
    };
    Ok(Memory {
        rss_kib: field("VmRSS:")?,
        peak_kib: field("VmHWM:")?,
    })
}

/// CPU time (user + system) that process `pid` has used so far, from `/proc/<pid>/stat`.
/// The kernel reports it in `USER_HZ` ticks, which Linux fixes at 100 per second for
/// user space whatever the kernel's own tick rate.
pub fn read_cpu(pid: u32) -> anyhow::Result<Duration> {
    const USER_HZ: f64 = 100.0;
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("Failed to read {path}"))?;
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis
    // start at field 3, so utime (14) and stime (15) are the 12th and 13th of them.
    let rest = text
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .with_context(|| format!("{path} has no command name"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<f64> {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .with_context(|| format!("Failed to parse field {} of {path}", i + 3))
    };
    Ok(Duration::from_secs_f64((ticks(11)? + ticks(12)?) / USER_HZ))
}

/// Resets the `VmHWM` of `pid` to its current `VmRSS` (`/proc/<pid>/clear_refs`, value 5), so
/// a later reading gives the peak from now on; `false` where the kernel does not allow it.
pub fn reset_peak_memory(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// KiB as MiB with one decimal.
pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}
