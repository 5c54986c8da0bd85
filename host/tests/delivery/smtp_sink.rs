//! A minimal in-process SMTP server for tests and the delivery benchmark: it speaks enough
//! SMTP (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) to accept messages and keeps each
//! one's raw bytes. It can be started on a chosen port, so a test can take "the SMTP server"
//! down and bring it back on the same address. It can take its time over each message (so a
//! test can catch sends in flight) and hold back its final reply to the next messages (it
//! keeps them, but answers late), as a server that accepted a message and then stalled would.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A running sink; stops when dropped.
pub struct SmtpSink {
    pub addr: SocketAddr,
    messages: Arc<Mutex<Vec<Vec<u8>>>>,
    /// Delays still to apply to the final reply of the next messages, first first.
    stalls: Stalls,
    task: JoinHandle<()>,
}

type Stalls = Arc<Mutex<std::collections::VecDeque<Duration>>>;

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[allow(dead_code)]
impl SmtpSink {
    /// Starts on a free port.
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap()).await
    }

    /// Starts on a free port; each message is accepted `delay` after its data ends (it is
    /// kept even if the client goes away meanwhile, as a server that committed it would).
    pub async fn start_slow(delay: Duration) -> Self {
        Self::start_with("127.0.0.1:0".parse().unwrap(), delay).await
    }

    /// Starts on `addr` (e.g. the address of a sink stopped earlier).
    pub async fn start_on(addr: SocketAddr) -> Self {
        Self::start_with(addr, Duration::ZERO).await
    }

    async fn start_with(addr: SocketAddr, delay: Duration) -> Self {
        let listener = bind_retrying(addr).await;
        let addr = listener.local_addr().unwrap();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let stalls: Stalls = Arc::default();
        let (store, delays) = (messages.clone(), stalls.clone());
        let task = tokio::spawn(async move {
            let mut sessions = tokio::task::JoinSet::new();
            while let Ok((socket, _)) = listener.accept().await {
                sessions.spawn(session(socket, store.clone(), delays.clone(), delay));
            }
        });
        Self {
            addr,
            messages,
            stalls,
            task,
        }
    }

    /// Raw messages accepted so far (dot-unstuffed, without the final `.` line).
    pub fn messages(&self) -> Vec<Vec<u8>> {
        self.messages.lock().unwrap().clone()
    }

    /// Keeps the next `n` messages but sends their final `250` only after `delay`.
    pub fn stall_next(&self, n: usize, delay: Duration) {
        self.stalls
            .lock()
            .unwrap()
            .extend(std::iter::repeat_n(delay, n));
    }

    pub fn count(&self) -> usize {
        self.messages.lock().unwrap().len()
    }

    /// Stops accepting and closes every session.
    pub fn stop(self) -> SocketAddr {
        self.addr
    }
}

/// A just-closed port may still be in TIME_WAIT for a moment.
async fn bind_retrying(addr: SocketAddr) -> TcpListener {
    for _ in 0..50 {
        match TcpListener::bind(addr).await {
            Ok(l) => return l,
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
    TcpListener::bind(addr).await.expect("bind the SMTP sink")
}

async fn session(
    socket: TcpStream,
    store: Arc<Mutex<Vec<Vec<u8>>>>,
    stalls: Stalls,
    delay: Duration,
) {
    let _ = socket.set_nodelay(true);
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read);
    if write.write_all(b"220 sink ESMTP ready\r\n").await.is_err() {
        return;
    }
    let mut line = Vec::new();
    loop {
        line.clear();
        match lines.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let upper = String::from_utf8_lossy(&line).to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-sink\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 PIPELINING\r\n"
        } else if upper.starts_with("HELO")
            || upper.starts_with("MAIL")
            || upper.starts_with("RCPT")
            || upper.starts_with("RSET")
            || upper.starts_with("NOOP")
        {
            b"250 OK\r\n"
        } else if upper.starts_with("DATA") {
            if write
                .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                .await
                .is_err()
            {
                return;
            }
            let mut body = Vec::new();
            loop {
                line.clear();
                match lines.read_until(b'\n', &mut line).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if line == b".\r\n" {
                    break;
                }
                let content = if line.starts_with(b"..") {
                    &line[1..]
                } else {
                    &line[..]
                };
                body.extend_from_slice(content);
            }
            store.lock().unwrap().push(body);
            let stall = stalls.lock().unwrap().pop_front().unwrap_or(delay);
            if !stall.is_zero() {
                tokio::time::sleep(stall).await;
            }
            b"250 OK queued\r\n"
        } else if upper.starts_with("QUIT") {
            let _ = write.write_all(b"221 Bye\r\n").await;
            return;
        } else {
            b"502 Command not implemented\r\n"
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}
