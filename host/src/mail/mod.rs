//! Outgoing e-mail. [`Mailer`] builds a multipart (text + HTML) message with lettre and hands
//! it to one of two transports:
//!
//! * **file** (the embedded default): one `.eml` file per message under `<data dir>/mail`,
//!   named after the Message-ID and written atomically (it appears complete or not at all),
//!   readable by its owner only; sending the same message twice leaves one file, as a mail system that drops duplicate
//!   Message-IDs would.
//! * **smtp**: a pool of concurrent connections with Nagle off (see [`smtp`]), plain,
//!   STARTTLS or implicit TLS, with optional credentials (MailTrap, Mailpit, any relay).
//!
//! Every message gets a deterministic Message-ID derived from the event that caused it
//! ([`message_id_for`]), so a duplicate send after a crash is recognisable downstream.

mod file;
pub mod smtp;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow};
use lettre::Message;
use lettre::message::{Mailbox, MultiPart};
use serde::{Deserialize, Serialize};

use crate::domain::Id;

/// Mail settings (`[mail]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailSettings {
    /// "file" (default) or "smtp".
    pub transport: MailTransportKind,
    /// The From mailbox, e.g. `Shop <orders@example.com>`.
    pub from: String,
    /// File transport: the directory; `None` means `<data dir>/mail`.
    pub dir: Option<PathBuf>,
    /// SMTP transport settings.
    pub smtp: SmtpSettings,
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            transport: MailTransportKind::File,
            from: "orderd <orders@orderd.localhost>".to_owned(),
            dir: None,
            smtp: SmtpSettings::default(),
        }
    }
}

/// The mail transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransportKind {
    File,
    Smtp,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// No encryption (local sinks such as Mailpit or aiosmtpd).
    Plain,
    /// Plain connect, then STARTTLS (required), usually port 587.
    Starttls,
    /// TLS from the first byte (SMTPS), usually port 465.
    Tls,
}

/// SMTP server settings (`[mail.smtp]`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpSettings {
    pub host: String,
    /// `None`: 25 for plain, 587 for STARTTLS, 465 for TLS.
    pub port: Option<u16>,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    /// Never logged (see the `Debug` impl).
    pub password: Option<String>,
    /// Connections used at once; each delivers messages one after another.
    pub pool_size: usize,
    /// Limit for connecting and for each send.
    pub timeout_ms: u64,
    /// Accept self-signed certificates (development servers only).
    pub accept_invalid_certs: bool,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("pool_size", &self.pool_size)
            .field("timeout_ms", &self.timeout_ms)
            .field("accept_invalid_certs", &self.accept_invalid_certs)
            .finish()
    }
}

impl Default for SmtpSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port: None,
            security: SmtpSecurity::Plain,
            username: None,
            password: None,
            pool_size: 8,
            timeout_ms: 10_000,
            accept_invalid_certs: false,
        }
    }
}

impl SmtpSettings {
    /// The configured port or the usual one for the security mode.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.security {
            SmtpSecurity::Plain => 25,
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
        })
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.max(1))
    }
}

/// The Message-ID of the e-mail caused by event `event_id`: `<{event id}@orderd>`.
pub fn message_id_for(event_id: Id) -> String {
    format!("<{}@orderd>", event_id.to_hex())
}

/// One e-mail to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    /// Recipient address.
    pub to: String,
    /// Recipient display name (may be empty).
    pub to_name: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// The full Message-ID header value, angle brackets included.
    pub message_id: String,
}

enum Transport {
    File(file::MailDir),
    /// Boxed: the pool is much larger than a path.
    Smtp(Box<smtp::SmtpPool>),
}

/// Why a send failed, and whether the message may have been delivered anyway.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Failed before the message was handed over (connect, refusal, build error): it was not
    /// delivered, and sending it again at once is safe.
    #[error("the e-mail was not sent")]
    NotSent(#[source] anyhow::Error),
    /// Failed or timed out after the message data was handed over: the server may have
    /// accepted it. Sending it again risks a second copy.
    #[error("the e-mail may or may not have been delivered")]
    Unknown(#[source] anyhow::Error),
}

/// Sends e-mail through the configured transport. One per process, shared.
pub struct Mailer {
    from: Mailbox,
    transport: Transport,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let transport = match &self.transport {
            Transport::File(files) => format!("file:{}", files.dir().display()),
            Transport::Smtp(pool) => format!("{pool:?}"),
        };
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .field("transport", &transport)
            .finish()
    }
}

impl Mailer {
    /// The mailer `settings` describe; the file transport defaults to `<data_dir>/mail`.
    pub fn from_settings(settings: &MailSettings, data_dir: &Path) -> anyhow::Result<Self> {
        match settings.transport {
            MailTransportKind::File => {
                let dir = settings
                    .dir
                    .clone()
                    .unwrap_or_else(|| data_dir.join("mail"));
                Self::file(&settings.from, dir)
            }
            MailTransportKind::Smtp => Self::smtp(&settings.from, settings.smtp.clone()),
        }
    }

    /// Writes `.eml` files into `dir` (created if missing).
    pub fn file(from: &str, dir: PathBuf) -> anyhow::Result<Self> {
        crate::private_files::create_dir_all(&dir)
            .with_context(|| format!("Failed to create the mail directory {}", dir.display()))?;
        Ok(Self {
            from: parse_mailbox(from)?,
            transport: Transport::File(file::MailDir::start(dir)?),
        })
    }

    /// Sends over SMTP through a connection pool.
    pub fn smtp(from: &str, settings: SmtpSettings) -> anyhow::Result<Self> {
        Ok(Self {
            from: parse_mailbox(from)?,
            transport: Transport::Smtp(Box::new(smtp::SmtpPool::new(settings)?)),
        })
    }

    /// The transport's name for logs and metrics.
    pub fn transport_name(&self) -> &'static str {
        match self.transport {
            Transport::File(_) => "file",
            Transport::Smtp(_) => "smtp",
        }
    }

    /// Builds the message: From, To, Subject, Message-ID, and a text + HTML alternative.
    pub fn build(&self, email: &OutgoingEmail) -> anyhow::Result<Message> {
        let to_addr = email
            .to
            .parse()
            .with_context(|| format!("Invalid recipient address {:?}", email.to))?;
        let to_name = (!email.to_name.is_empty()).then(|| email.to_name.clone());
        Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(to_name, to_addr))
            .subject(email.subject.clone())
            .message_id(Some(email.message_id.clone()))
            .multipart(MultiPart::alternative_plain_html(
                email.text.clone(),
                email.html.clone(),
            ))
            .context("Failed to build the e-mail")
    }

    /// Sends `email`; a failure says whether the message may have been delivered anyway.
    pub async fn send(&self, email: &OutgoingEmail) -> Result<(), SendError> {
        let message = self.build(email).map_err(SendError::NotSent)?;
        let started = std::time::Instant::now();
        let result = match &self.transport {
            // The file appears only by the final rename: a failure wrote nothing visible.
            Transport::File(files) => files
                .write(&email.message_id, message.formatted())
                .await
                .map_err(SendError::NotSent),
            Transport::Smtp(pool) => pool.send(message.envelope(), &message.formatted()).await,
        };
        let outcome = match &result {
            Ok(()) => "sent",
            Err(SendError::NotSent(_)) => "error",
            Err(SendError::Unknown(_)) => "unknown",
        };
        metrics::counter!("orderd_emails_total", "transport" => self.transport_name(), "outcome" => outcome).increment(1);
        metrics::histogram!("orderd_email_send_seconds", "transport" => self.transport_name())
            .record(started.elapsed().as_secs_f64());
        result
    }
}

fn parse_mailbox(s: &str) -> anyhow::Result<Mailbox> {
    s.parse()
        .map_err(|e| anyhow!("Invalid From mailbox {s:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::file::eml_name;
    use super::*;

    fn email(event: Id) -> OutgoingEmail {
        OutgoingEmail {
            to: "ada@example.com".into(),
            to_name: "Ada".into(),
            subject: "Order confirmed".into(),
            text: "Thanks".into(),
            html: "<p>Thanks</p>".into(),
            message_id: message_id_for(event),
        }
    }

    #[test]
    fn the_message_id_is_derived_from_the_event_id() {
        let id = Id::parse("65f0c0ffee0000000000abcd").unwrap();
        assert_eq!(message_id_for(id), "<65f0c0ffee0000000000abcd@orderd>");
        assert_eq!(
            eml_name(&message_id_for(id)),
            "65f0c0ffee0000000000abcd_orderd.eml"
        );
    }

    #[tokio::test]
    async fn sending_the_same_email_twice_leaves_one_file_with_its_message_id() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::file("Shop <shop@example.com>", dir.path().to_owned()).unwrap();
        let event = Id::new();
        mailer.send(&email(event)).await.unwrap();
        mailer.send(&email(event)).await.unwrap();
        mailer.send(&email(Id::new())).await.unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 2, "{files:?}");
        let text =
            std::fs::read_to_string(dir.path().join(eml_name(&message_id_for(event)))).unwrap();
        assert!(
            text.contains(&format!("Message-ID: {}", message_id_for(event))),
            "{text}"
        );
        assert!(text.contains("Subject: Order confirmed"));
        // Customers' addresses and orders: readable by the owner only.
        use std::os::unix::fs::PermissionsExt;
        for file in &files {
            let mode = std::fs::metadata(file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", file.display());
        }
    }

    #[test]
    fn an_invalid_recipient_is_refused_before_sending() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::file("shop@example.com", dir.path().to_owned()).unwrap();
        let mut bad = email(Id::new());
        bad.to = "not an address".into();
        assert!(mailer.build(&bad).is_err());
    }
}
