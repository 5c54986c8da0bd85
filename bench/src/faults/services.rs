//! The real SMTP and SQS servers some scenarios need, started from the project's Python
//! environment (`.venv-services`, see scripts/test.sh): aiosmtpd with the Maildir handler, and
//! moto's SQS server. Absent tools are reported, and the scenario is skipped with the reason.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::server::free_port;

/// The project's Python virtual environment with the test servers.
pub fn venv() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv-services")
}

/// A child server process, killed on drop.
pub struct Service {
    child: Child,
    /// Where it listens.
    pub port: u16,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Why `module` cannot be used, if it cannot.
pub fn missing_python_module(module: &str) -> Option<String> {
    let python = venv().join("bin/python");
    if !python.is_file() {
        return Some(format!(
            "{} does not exist (scripts/test.sh creates it)",
            python.display()
        ));
    }
    let ok = Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    (!ok).then(|| format!("{module} is not installed in {}", venv().display()))
}

/// aiosmtpd storing every delivered message as a file in `maildir/new`.
pub async fn smtp_sink(maildir: &Path, log: &Path) -> anyhow::Result<Service> {
    for sub in ["tmp", "new", "cur"] {
        std::fs::create_dir_all(maildir.join(sub)).context("Failed to create the Maildir")?;
    }
    let port = free_port()?;
    let child = Command::new(venv().join("bin/python"))
        .args([
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("127.0.0.1:{port}"),
            "-c",
            "aiosmtpd.handlers.Mailbox",
        ])
        .arg(maildir)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).context("Failed to create the SMTP log")?)
        .spawn()
        .context("Failed to start aiosmtpd")?;
    let service = Service { child, port };
    wait_listening(port).await?;
    Ok(service)
}

/// moto's server (SQS and the rest of its AWS mocks) on a free port.
pub async fn sqs_server(log: &Path) -> anyhow::Result<Service> {
    let port = free_port()?;
    let child = Command::new(venv().join("bin/moto_server"))
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).context("Failed to create the SQS log")?)
        .spawn()
        .context("Failed to start moto_server")?;
    let service = Service { child, port };
    wait_listening(port).await?;
    Ok(service)
}

async fn wait_listening(port: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if Instant::now() > deadline {
            bail!("nothing listens on port {port} after 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
