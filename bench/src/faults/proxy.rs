//! A TCP proxy that can be cut: while cut, every open connection through it is dropped and
//! new ones are closed at once, as a network partition or a dead peer looks to a client; the
//! server behind it keeps its state, so restoring the proxy is a clean recovery.

use std::sync::Arc;

use anyhow::Context;
use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running proxy from `127.0.0.1:port` to an upstream address.
pub struct Proxy {
    /// The port clients connect to.
    pub port: u16,
    /// `true` while cut.
    cut: Arc<watch::Sender<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free port and forwards to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("Failed to bind the proxy")?;
        let port = listener
            .local_addr()
            .context("Failed to read the proxy address")?
            .port();
        let cut = Arc::new(watch::channel(false).0);
        let task = tokio::spawn(accept_loop(listener, upstream, cut.clone()));
        Ok(Self { port, cut, task })
    }

    /// Drops every connection and refuses new ones until [`Proxy::restore`].
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Forwards again.
    pub fn restore(&self) {
        self.cut.send_replace(false);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, upstream: String, cut: Arc<watch::Sender<bool>>) {
    while let Ok((mut inbound, _)) = listener.accept().await {
        if *cut.borrow() {
            drop(inbound);
            continue;
        }
        let mut cut_rx = cut.subscribe();
        let upstream = upstream.clone();
        tokio::spawn(async move {
            let Ok(mut outbound) = TcpStream::connect(&upstream).await else {
                return;
            };
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            tokio::select! {
                _ = copy_bidirectional(&mut inbound, &mut outbound) => {}
                _ = cut_rx.wait_for(|cut| *cut) => {}
            }
        });
    }
}
