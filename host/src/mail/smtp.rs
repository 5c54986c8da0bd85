//! The SMTP sender: a pool of lettre SMTP connections used concurrently, each on a TCP socket
//! with `TCP_NODELAY`.
//!
//! Why not lettre's `AsyncSmtpTransport` as is: lettre writes a message body and its closing
//! `.` in two writes and waits for the reply; with Nagle's algorithm on, the second small
//! write waits for the server's delayed ACK (~40 ms on Linux), so one connection delivers only
//! ~22 messages/s to a local server. We open the socket ourselves, switch Nagle off, and hand
//! it to lettre's `AsyncSmtpConnection` (plain, STARTTLS, or implicit TLS, plus AUTH), and keep
//! up to `pool_size` such connections busy at once. `benches/delivery.rs` measures both.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use super::{SendError, SmtpSecurity, SmtpSettings};

/// Idle connections older than this are closed rather than reused (servers drop idle clients).
const MAX_IDLE: Duration = Duration::from_secs(30);

/// A bounded pool of SMTP connections.
pub struct SmtpPool {
    settings: SmtpSettings,
    /// Our name in EHLO.
    hello: ClientId,
    /// TLS parameters for STARTTLS or implicit TLS.
    tls: Option<TlsParameters>,
    credentials: Option<Credentials>,
    /// Connections not in use, with the time they were returned.
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
    /// Bounds connections in use (and so open) to `pool_size`.
    permits: Semaphore,
}

impl fmt::Debug for SmtpPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpPool")
            .field("host", &self.settings.host)
            .field("port", &self.settings.port())
            .field("security", &self.settings.security)
            .finish_non_exhaustive()
    }
}

impl SmtpPool {
    pub fn new(settings: SmtpSettings) -> anyhow::Result<Self> {
        let tls = match settings.security {
            SmtpSecurity::Plain => None,
            SmtpSecurity::Starttls | SmtpSecurity::Tls => Some(
                TlsParameters::builder(settings.host.clone())
                    .dangerous_accept_invalid_certs(settings.accept_invalid_certs)
                    .build()
                    .context("Failed to set up TLS for SMTP")?,
            ),
        };
        let credentials = match (&settings.username, &settings.password) {
            (Some(user), Some(pass)) => Some(Credentials::new(user.clone(), pass.clone())),
            (None, None) => None,
            _ => return Err(anyhow!("SMTP username and password must be set together")),
        };
        let permits = Semaphore::new(settings.pool_size.max(1));
        Ok(Self {
            settings,
            hello: ClientId::default(),
            tls,
            credentials,
            idle: Mutex::new(Vec::new()),
            permits,
        })
    }

    /// Sends one message; waits for a free connection when all are busy.
    ///
    /// A failure before the message data was handed over (connect, a refused sender or
    /// recipient, DATA refused) is [`SendError::NotSent`]; on a reused connection (the server
    /// may have closed it while idle) it is retried once on a fresh one. A failure or timeout
    /// after the data went out is [`SendError::Unknown`] — the server may have accepted the
    /// message — and is never retried here, so one attempt hands a message over at most once.
    pub async fn send(&self, envelope: &Envelope, message: &[u8]) -> Result<(), SendError> {
        let _permit = self.permits.acquire().await.map_err(|e| {
            SendError::NotSent(anyhow::Error::new(e).context("The SMTP pool is closed"))
        })?;
        if let Some(conn) = self.take_idle() {
            match self.send_on(conn, envelope, message).await {
                Err(SendError::NotSent(err)) => tracing::debug!(
                    error = format!("{err:#}"),
                    "Reused SMTP connection failed before the hand-over; reconnecting"
                ),
                done => return done,
            }
        }
        let conn = self.connect().await.map_err(SendError::NotSent)?;
        self.send_on(conn, envelope, message).await
    }

    async fn send_on(
        &self,
        mut conn: AsyncSmtpConnection,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<(), SendError> {
        let timeout = self.settings.timeout();
        // Phase 1: MAIL FROM, RCPT TO, DATA. Nothing is delivered until the data is sent.
        match tokio::time::timeout(timeout, hand_over(&mut conn, envelope, message)).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                abort(&mut conn).await;
                return Err(SendError::NotSent(
                    anyhow::Error::new(err).context("The SMTP server refused the message"),
                ));
            }
            Err(_) => {
                abort(&mut conn).await;
                return Err(SendError::NotSent(anyhow!(
                    "SMTP timed out after {timeout:?} before the message was handed over"
                )));
            }
        }
        // Phase 2: the data and the server's final reply.
        match tokio::time::timeout(timeout, conn.message(message)).await {
            Ok(Ok(_)) => {
                self.put_idle(conn);
                Ok(())
            }
            // A negative final reply is a clear refusal: nothing was accepted.
            Ok(Err(err)) if err.is_permanent() || err.is_transient() => {
                abort(&mut conn).await;
                Err(SendError::NotSent(
                    anyhow::Error::new(err).context("The SMTP server refused the message data"),
                ))
            }
            Ok(Err(err)) => {
                abort(&mut conn).await;
                Err(SendError::Unknown(anyhow::Error::new(err).context(
                    "The SMTP connection failed after the message data was sent",
                )))
            }
            Err(_) => Err(SendError::Unknown(anyhow!(
                "No final SMTP reply within {timeout:?} after the message data was sent"
            ))),
        }
    }

    fn take_idle(&self) -> Option<AsyncSmtpConnection> {
        let mut idle = self.idle.lock().ok()?;
        while let Some((conn, since)) = idle.pop() {
            if since.elapsed() < MAX_IDLE && !conn.has_broken() {
                return Some(conn);
            }
        }
        None
    }

    fn put_idle(&self, conn: AsyncSmtpConnection) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push((conn, Instant::now()));
        }
    }

    /// Opens a connection: TCP with Nagle off, TLS as configured, EHLO, AUTH.
    async fn connect(&self) -> anyhow::Result<AsyncSmtpConnection> {
        let addr = (self.settings.host.as_str(), self.settings.port());
        let work = async {
            let tcp = TcpStream::connect(addr).await.with_context(|| {
                format!("Failed to connect to SMTP server {}:{}", addr.0, addr.1)
            })?;
            tcp.set_nodelay(true).context("Failed to set TCP_NODELAY")?;
            let mut conn = match (&self.settings.security, &self.tls) {
                (SmtpSecurity::Tls, Some(tls)) => {
                    let stream = ImplicitTls::wrap(tcp, tls.clone()).await?;
                    AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello)
                        .await?
                }
                (SmtpSecurity::Starttls, Some(tls)) => {
                    let mut conn =
                        AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello)
                            .await?;
                    conn.starttls(tls.clone(), &self.hello)
                        .await
                        .context("STARTTLS failed")?;
                    conn
                }
                _ => {
                    AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello).await?
                }
            };
            if let Some(credentials) = &self.credentials {
                conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                    .await
                    .context("SMTP authentication failed")?;
            }
            anyhow::Ok(conn)
        };
        tokio::time::timeout(self.settings.timeout(), work)
            .await
            .map_err(|_| {
                anyhow!(
                    "Connecting to the SMTP server timed out after {:?}",
                    self.settings.timeout()
                )
            })?
    }
}

/// MAIL FROM (with 8BITMIME / SMTPUTF8 as the message needs and the server offers), RCPT TO
/// for every recipient, DATA: what lettre's `AsyncSmtpConnection::send` does before the data,
/// done here so the caller knows whether a failure came before or after the hand-over.
async fn hand_over(
    conn: &mut AsyncSmtpConnection,
    envelope: &Envelope,
    message: &[u8],
) -> Result<(), lettre::transport::smtp::Error> {
    let mut options = Vec::new();
    let non_ascii_address = envelope
        .from()
        .into_iter()
        .chain(envelope.to())
        .any(|a| !AsRef::<str>::as_ref(a).is_ascii());
    if non_ascii_address && conn.server_info().supports_feature(Extension::SmtpUtfEight) {
        options.push(MailParameter::SmtpUtfEight);
    }
    if !message.is_ascii() && conn.server_info().supports_feature(Extension::EightBitMime) {
        options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    conn.command(Mail::new(envelope.from().cloned(), options))
        .await?;
    for to in envelope.to() {
        conn.command(Rcpt::new(to.clone(), Vec::new())).await?;
    }
    conn.command(Data).await?;
    Ok(())
}

/// Ends a connection that failed; it is not returned to the pool.
async fn abort(conn: &mut AsyncSmtpConnection) {
    let _ = tokio::time::timeout(Duration::from_secs(1), conn.abort()).await;
}

/// A TLS stream for implicit TLS (SMTPS, port 465) over our own `TCP_NODELAY` socket.
///
/// lettre only upgrades sockets it opened itself or, for STARTTLS, inside a connection; its
/// stream type (deprecated as public API, but the one that carries lettre's TLS setup) is used
/// here for the handshake and adapted from the `futures` I/O traits to tokio's.
#[derive(Debug)]
#[allow(deprecated)]
struct ImplicitTls {
    inner: lettre::transport::smtp::client::AsyncNetworkStream,
    peer: SocketAddr,
}

#[allow(deprecated)]
impl ImplicitTls {
    async fn wrap(tcp: TcpStream, tls: TlsParameters) -> anyhow::Result<Self> {
        use lettre::transport::smtp::client::AsyncNetworkStream;
        let peer = tcp
            .peer_addr()
            .context("Failed to read the SMTP server address")?;
        let mut inner = AsyncNetworkStream::use_existing_tokio1(Box::new(tcp));
        inner
            .upgrade_tls(tls)
            .await
            .context("TLS handshake with the SMTP server failed")?;
        Ok(Self { inner, peer })
    }
}

impl AsyncRead for ImplicitTls {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let unfilled = buf.initialize_unfilled();
        match futures::io::AsyncRead::poll_read(Pin::new(&mut self.get_mut().inner), cx, unfilled) {
            Poll::Ready(Ok(n)) => {
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for ImplicitTls {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        futures::io::AsyncWrite::poll_write(Pin::new(&mut self.get_mut().inner), cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        futures::io::AsyncWrite::poll_flush(Pin::new(&mut self.get_mut().inner), cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        futures::io::AsyncWrite::poll_close(Pin::new(&mut self.get_mut().inner), cx)
    }
}

impl AsyncTokioStream for ImplicitTls {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.peer)
    }
}
