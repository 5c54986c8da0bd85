//! The WASI context grants nothing: no files, no environment, no network; stderr goes to
//! tracing tagged with the slot and version.

use std::io::{self, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use orderd::plugins::{FailureKind, PluginCallError, PluginRuntime, RuntimeSettings, Slot};
use tracing_subscriber::fmt::MakeWriter;

use crate::helpers::{component, five_lines, settings, test_source};

/// Collects formatted tracing output.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

// Single-threaded, so the thread-local subscriber sees every event of the call.
#[tokio::test(flavor = "current_thread")]
async fn a_guest_reaching_for_files_env_and_sockets_gets_nothing_and_its_stderr_reaches_tracing() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // Callsite interest is cached process-wide. While only one dispatcher exists, a callsite
    // that another test thread (with no subscriber) reaches first is cached against that
    // thread's default, as "never", and this thread's subscriber would not see its events.
    // A second live dispatcher makes tracing compute interest from every live dispatcher
    // instead, this test's included, whichever thread registers the callsite.
    let _anchor = tracing::Dispatch::new(
        tracing_subscriber::fmt()
            .with_writer(io::sink)
            .with_max_level(tracing::Level::INFO)
            .finish(),
    );
    tracing::callsite::rebuild_interest_cache();

    // A real listener, so a denied connection is the sandbox and not an empty port.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    assert!(
        std::env::var("HOME").is_ok() || std::env::vars().count() > 0,
        "the host has an environment"
    );

    let runtime = PluginRuntime::new(RuntimeSettings {
        smoke_test: false,
        ..settings()
    })
    .unwrap();
    let config = vec![("port".to_owned(), port.to_string())];
    let loaded = runtime
        .load(
            Slot::Tax,
            component("sandbox_probe"),
            config,
            None,
            test_source("sandbox_probe"),
        )
        .await
        .unwrap();

    let err = runtime.calculate_tax(&five_lines()).await.unwrap_err();
    let PluginCallError::Unavailable {
        kind: FailureKind::PluginError { code, message },
        ..
    } = err
    else {
        panic!("expected the probe's report, got {err:?}");
    };
    assert_eq!(code, "probe");
    assert_eq!(
        message,
        "file=denied dir=denied env=0 home=unset socket=denied"
    );
    assert_eq!(
        listener.accept().map_err(|e| e.kind()).err(),
        Some(io::ErrorKind::WouldBlock),
        "no connection reached the listener"
    );

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let line = logs
        .lines()
        .find(|l| l.contains("sandbox-probe: stderr line"))
        .unwrap_or_else(|| panic!("the guest's stderr line is logged:\n{logs}"));
    assert!(line.contains("slot=tax"), "{line}");
    assert!(
        line.contains(&format!("version={}", &loaded.sha256[..12])),
        "{line}"
    );
}
