//! Service settings, layered: built-in defaults that run with zero setup → an optional TOML file
//! (`--config FILE` or `ORDERD_CONFIG`) → the Node system's variables ([`crate::node_env`]:
//! `PORT`, `MONGODB_URI`, …) → `ORDERD_*` environment variables, where `__`
//! separates nesting levels (`ORDERD_HTTP__PORT=9000`, `ORDERD_AUTH__JWT_SECRET=…`,
//! `ORDERD_DATA_DIR=/var/lib/orderd`, `ORDERD_MODE=production`).
//!
//! Also owns the JWT secret's life: given in the settings, or generated once into
//! `<data dir>/jwt-secret` in development mode. Production mode refuses to start without one.

mod jwt_secret;

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};

use crate::storage::mongo::ALLOW_STANDALONE_ENV;
use crate::storage::windows;
use serde::{Deserialize, Serialize};

use crate::plugins::RuntimeSettings;

pub use crate::http::rate_limit::RateLimitSettings;

/// Environment variable naming the configuration file when `--config` is not given.
pub const CONFIG_ENV: &str = "ORDERD_CONFIG";

/// Shortest JWT secret accepted, in bytes (HS256 wants at least the hash size).
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// A string that must never reach a log: `Debug` and `Display` print `[redacted]`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

/// Serialized (e.g. by `orderd config show`) as `<redacted>`, never as its value.
impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("<redacted>")
    }
}

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value; call only where it is used.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Whether the service runs for development (lenient defaults) or production (every secret
/// must be configured).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Development,
    Production,
}

/// Log line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Every setting of the service.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Development or production; production refuses insecure defaults.
    pub mode: Mode,
    /// Where the embedded database and the generated JWT secret live.
    pub data_dir: PathBuf,
    pub http: HttpSettings,
    pub log: LogSettings,
    pub auth: AuthSettings,
    /// Abuse limits (`[rate_limit]`): per client address, per account, per user.
    pub rate_limit: RateLimitSettings,
    /// Directory watched for `<slot>.wasm` plugin files; `None` serves the embedded defaults
    /// and uploads only.
    pub plugin_dir: Option<PathBuf>,
    /// Limits, failure policies and config of the plugin runtime.
    pub plugins: RuntimeSettings,
    /// Comma-separated roles this process plays when `serve` is given no `--roles`: any of
    /// `api`, `relay`, `consumer`.
    pub roles: String,
    /// The queue between relay and consumer (`[queue]`): embedded or SQS.
    pub queue: crate::delivery::queue::QueueSettings,
    /// The outbox relay (`[relay]`).
    pub relay: crate::delivery::relay::RelaySettings,
    /// The queue consumer (`[consumer]`).
    pub consumer: crate::delivery::consumer::ConsumerSettings,
    /// Supervision of the relay and consumer (`[delivery]`): restart pauses and when a role
    /// without a good pass makes the process not ready.
    pub delivery: crate::delivery::DeliverySettings,
    /// Outgoing e-mail (`[mail]`): `.eml` files in the data dir, or SMTP.
    pub mail: crate::mail::MailSettings,
    /// Where orders, users and the outbox live (`[store]`): embedded SQLite or MongoDB.
    pub store: StoreSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            mode: Mode::default(),
            data_dir: PathBuf::from("./data"),
            http: HttpSettings::default(),
            log: LogSettings::default(),
            auth: AuthSettings::default(),
            rate_limit: Default::default(),
            plugin_dir: None,
            plugins: RuntimeSettings::default(),
            roles: "api,relay,consumer".into(),
            queue: Default::default(),
            relay: Default::default(),
            consumer: Default::default(),
            delivery: Default::default(),
            mail: Default::default(),
            store: StoreSettings::default(),
        }
    }
}

/// Which storage backend serves every port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// One SQLite file in the data directory; the default, needs no service.
    #[default]
    Sqlite,
    /// A MongoDB replica set (production; several instances may share it).
    Mongodb,
}

/// The storage backend and its connection (`[store]`, `ORDERD_STORE__*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    pub backend: StoreBackend,
    /// Connection string of the replica set; may hold credentials, so it never prints.
    pub mongodb_uri: Option<Secret>,
    /// Database name inside the deployment.
    pub mongodb_database: String,
    /// Accept a standalone MongoDB instead of refusing it. Test-only (a wire-protocol
    /// emulator): a standalone server does not isolate transactions, so concurrent orders may
    /// oversell. Also set by `ORDERD_TEST_MONGODB_ALLOW_STANDALONE=1`, the test harness's name.
    pub mongodb_allow_standalone: bool,
    /// How long the MongoDB inbox remembers processed event ids (TTL index).
    pub inbox_retention_secs: u64,
    /// How long after it expired a refresh-token family (and its tokens) is deleted.
    pub refresh_retention_secs: u64,
    /// How long after it was published an outbox event is deleted.
    pub outbox_retention_secs: u64,
    /// How long after the e-mail went out its send record is deleted.
    pub email_send_retention_secs: u64,
    /// How long after its upload a plugin version is deleted, unless it is active or among
    /// the newest `plugin_versions_kept` of its slot.
    pub plugin_version_retention_secs: u64,
    /// Newest versions of each slot kept whatever their age.
    pub plugin_versions_kept: u32,
}

impl StoreSettings {
    /// What the MongoDB store needs beyond its connection string and database name.
    pub fn mongo_options(&self) -> crate::storage::mongo::MongoOptions {
        crate::storage::mongo::MongoOptions {
            allow_standalone: self.mongodb_allow_standalone,
            inbox_retention: std::time::Duration::from_secs(self.inbox_retention_secs),
            ..Default::default()
        }
    }

    /// The retention of the records the pruner deletes (`storage::retention`).
    pub fn retention(&self) -> crate::storage::Retention {
        use std::time::Duration;
        crate::storage::Retention {
            refresh_families: Duration::from_secs(self.refresh_retention_secs),
            published_events: Duration::from_secs(self.outbox_retention_secs),
            email_sends: Duration::from_secs(self.email_send_retention_secs),
            plugin_versions: Duration::from_secs(self.plugin_version_retention_secs),
            plugin_versions_kept: self.plugin_versions_kept,
        }
    }
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            backend: StoreBackend::Sqlite,
            mongodb_uri: None,
            mongodb_database: "orderd".into(),
            mongodb_allow_standalone: false,
            inbox_retention_secs: windows::DEFAULT_INBOX_RETENTION.as_secs(),
            refresh_retention_secs: windows::DEFAULT_REFRESH_FAMILY_RETENTION.as_secs(),
            outbox_retention_secs: windows::DEFAULT_PUBLISHED_EVENT_RETENTION.as_secs(),
            email_send_retention_secs: windows::DEFAULT_EMAIL_SEND_RETENTION.as_secs(),
            plugin_version_retention_secs: windows::DEFAULT_PLUGIN_VERSION_RETENTION.as_secs(),
            plugin_versions_kept: windows::DEFAULT_PLUGIN_VERSIONS_KEPT,
        }
    }
}

/// The HTTP listener and request limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Address to bind; `127.0.0.1` by default, `0.0.0.0` in containers.
    pub host: String,
    /// Port to bind; 0 picks a free one (tests).
    pub port: u16,
    /// Longest a request may take before it is answered with 503 `timeout`.
    pub request_timeout_ms: u64,
    /// On shutdown, how long in-flight requests may take to finish before they are dropped
    /// (the HTTP drain; the consumer's drain, `consumer.drain_ms`, follows it).
    pub shutdown_grace_ms: u64,
    /// Serve the refresh cookie without `Secure`, for plain-HTTP development only.
    pub plain_http_cookies: bool,
    /// Order writes (place, cancel, retry) handled at once; more wait up to
    /// `admission_wait_ms` for a turn, then get 503 `overloaded` with `Retry-After`.
    pub max_in_flight_orders: usize,
    /// How long an order write may wait for a turn before it is refused.
    pub admission_wait_ms: u64,
    /// Queue backlog (messages) of this process's consumer above which order writes wait for
    /// delivery to catch up; 0 turns pacing off. Inactive when no consumer runs here.
    pub max_delivery_backlog: u64,
    /// How long an order write may wait for the backlog to come down before it is refused.
    pub backlog_wait_ms: u64,
    /// Proxies (IP addresses or CIDR blocks, such as `10.0.0.0/8`) whose
    /// `client_ip_header` is believed. A request from any other peer is keyed on the peer
    /// address, whatever headers it sends. Empty (the default): the peer address always.
    pub trusted_proxies: Vec<String>,
    /// Which header a trusted proxy names the client in: `x-forwarded-for` or `forwarded`
    /// (RFC 7239).
    pub client_ip_header: ClientIpHeader,
}

/// The header trusted proxies name the client in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientIpHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2`.
    #[default]
    XForwardedFor,
    /// `Forwarded: for=client, for=proxy1` (RFC 7239).
    Forwarded,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8000,
            request_timeout_ms: 30_000,
            shutdown_grace_ms: 10_000,
            plain_http_cookies: false,
            max_in_flight_orders: 256,
            admission_wait_ms: 100,
            max_delivery_backlog: 2_000,
            backlog_wait_ms: 2_000,
            trusted_proxies: Vec::new(),
            client_ip_header: ClientIpHeader::default(),
        }
    }
}

impl HttpSettings {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }
}

/// Logging.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    /// `tracing` filter directives used when `RUST_LOG` is unset.
    pub filter: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            filter: "info,orderd=info,tower_http=info".into(),
        }
    }
}

/// Tokens and password hashing.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// HS256 signing key of access tokens (at least 32 bytes). Unset in development: generated
    /// into `<data dir>/jwt-secret`.
    pub jwt_secret: Option<Secret>,
    /// `iss` claim of issued tokens, required on verify.
    pub issuer: String,
    /// `aud` claim of issued tokens, required on verify.
    pub audience: String,
    /// Lifetime of an access token.
    pub access_ttl_secs: u64,
    /// Lifetime of a refresh token (each rotation starts it anew).
    pub refresh_ttl_secs: u64,
    /// How many password hashes may run at once, each on its own low-priority thread; 0 means
    /// the number of cores.
    pub hash_concurrency: usize,
    /// For how long after a refresh token was rotated presenting it again yields the same
    /// successor instead of counting as reuse (two tabs or a client retry refreshing at
    /// once). Past it, presenting it revokes the family.
    pub refresh_grace_ms: u64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            issuer: "orderd".into(),
            audience: "orderd-api".into(),
            access_ttl_secs: 15 * 60,
            refresh_ttl_secs: 14 * 24 * 3600,
            hash_concurrency: 0,
            refresh_grace_ms: 5_000,
        }
    }
}

impl Settings {
    /// Loads defaults → `file` (or the file named by `ORDERD_CONFIG`) → Node system variables
    /// → `ORDERD_*` variables.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        Self::from_figment(&Self::figment(file)?)
    }

    /// The settings in `figment`.
    pub fn from_figment(figment: &Figment) -> anyhow::Result<Self> {
        figment.extract().context("Failed to read the settings")
    }

    /// The layered sources [`Settings::load`] reads, for tools that also say where each
    /// value came from (`orderd config show`).
    pub fn figment(file: Option<&Path>) -> anyhow::Result<Figment> {
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os(CONFIG_ENV).map(PathBuf::from));
        let mut figment = Figment::new();
        if let Some(path) = &file {
            if !path.is_file() {
                bail!("configuration file {} does not exist", path.display());
            }
            figment = figment.merge(Toml::file(path));
        }
        figment = figment.merge(crate::node_env::NodeAliases::from_env());
        // `ORDERD_TEST_*` belongs to the test harness (service endpoints), never to settings.
        figment = figment.merge(
            Env::prefixed("ORDERD_")
                .filter(|key| !key.as_str().to_ascii_lowercase().starts_with("test_"))
                .split("__")
                .ignore(&["config"]),
        );
        // The one test-harness variable that is a setting: the emulator's standalone MongoDB.
        if std::env::var(ALLOW_STANDALONE_ENV)
            .is_ok_and(|v| matches!(v.trim(), "1" | "true" | "TRUE" | "yes"))
        {
            figment = figment.merge(Serialized::default("store.mongodb_allow_standalone", true));
        }
        Ok(figment)
    }

    /// Whether this process must run with production safeguards.
    pub fn is_production(&self) -> bool {
        self.mode == Mode::Production || self.store.backend == StoreBackend::Mongodb
    }

    /// Path of the embedded SQLite database.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join(crate::storage::sqlite::DATABASE_FILE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print_their_value() {
        let s = Secret::new("super-secret-value");
        assert_eq!(format!("{s:?}"), "[redacted]");
        let mut settings = Settings::default();
        settings.auth.jwt_secret = Some(s);
        assert!(!format!("{settings:?}").contains("super-secret-value"));
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's closure type
    fn a_file_and_the_environment_override_the_defaults_in_that_order() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "orderd.toml",
                "data_dir = \"/srv/orderd\"\n[http]\nport = 9000\nhost = \"0.0.0.0\"\n",
            )?;
            jail.set_env("ORDERD_HTTP__PORT", "9100");
            jail.set_env("ORDERD_LOG__FORMAT", "json");
            let s = Settings::load(Some(Path::new("orderd.toml"))).expect("settings load");
            assert_eq!(s.data_dir, PathBuf::from("/srv/orderd"));
            assert_eq!(s.http.host, "0.0.0.0");
            assert_eq!(s.http.port, 9100);
            assert_eq!(s.log.format, LogFormat::Json);
            assert_eq!(s.auth.access_ttl_secs, 900);
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's closure type
    fn trusted_proxies_and_their_header_come_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("ORDERD_HTTP__TRUSTED_PROXIES", "[10.0.0.0/8, 192.0.2.7]");
            jail.set_env("ORDERD_HTTP__CLIENT_IP_HEADER", "forwarded");
            let s = Settings::load(None).expect("settings load");
            assert_eq!(s.http.trusted_proxies, ["10.0.0.0/8", "192.0.2.7"]);
            assert_eq!(s.http.client_ip_header, ClientIpHeader::Forwarded);
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's closure type
    fn the_harness_standalone_switch_reaches_the_mongodb_options_and_nothing_else_does() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("ORDERD_STORE__INBOX_RETENTION_SECS", "60");
            let strict = Settings::load(None).expect("settings load").store;
            assert!(!strict.mongo_options().allow_standalone);
            assert_eq!(strict.mongo_options().inbox_retention.as_secs(), 60);
            jail.set_env(ALLOW_STANDALONE_ENV, "1");
            let lax = Settings::load(None).expect("settings load").store;
            assert!(lax.mongo_options().allow_standalone);
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's closure type
    fn unknown_settings_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("ORDERD_HTTP__PROT", "9100");
            assert!(Settings::load(None).is_err());
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's closure type
    fn test_harness_variables_are_not_settings() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("ORDERD_TEST_SQS_ENDPOINT", "http://127.0.0.1:1");
            jail.set_env("ORDERD_HTTP__PORT", "9100");
            let settings = Settings::load(None).expect("test variables are ignored");
            assert_eq!(settings.http.port, 9100);
            Ok(())
        });
    }

    #[test]
    fn production_mode_refuses_to_start_without_a_jwt_secret() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings {
            mode: Mode::Production,
            data_dir: dir.path().to_path_buf(),
            ..Settings::default()
        };
        assert!(settings.resolve_jwt_secret().is_err());
        assert!(!dir.path().join("jwt-secret").exists());
        settings.auth.jwt_secret = Some(Secret::new("short"));
        assert!(settings.resolve_jwt_secret().is_err());
        settings.auth.jwt_secret = Some(Secret::new("x".repeat(32)));
        assert!(settings.resolve_jwt_secret().is_err(), "low entropy");
        settings.auth.jwt_secret = Some(Secret::new(
            "local-compose-secret-change-me-0123456789abcdef",
        ));
        assert!(
            settings.resolve_jwt_secret().is_err(),
            "the old compose default"
        );
        settings.auth.jwt_secret = Some(Secret::new("9f2c4e1ab37d8c05e6f1a2b94d7c3e80"));
        assert!(settings.resolve_jwt_secret().is_ok());
    }

    #[test]
    fn development_mode_accepts_a_weak_configured_secret_with_a_warning() {
        let settings = Settings {
            auth: AuthSettings {
                jwt_secret: Some(Secret::new("x".repeat(32))),
                ..AuthSettings::default()
            },
            ..Settings::default()
        };
        assert!(settings.resolve_jwt_secret().is_ok());
    }

    #[test]
    fn development_mode_generates_the_jwt_secret_once_and_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            data_dir: dir.path().join("data"),
            ..Settings::default()
        };
        let first = settings.resolve_jwt_secret().unwrap();
        let second = settings.resolve_jwt_secret().unwrap();
        assert_eq!(first.expose(), second.expose());
        assert!(first.expose().len() >= MIN_JWT_SECRET_BYTES);
    }

    #[test]
    fn the_generated_jwt_secret_and_its_directory_are_owner_only() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            data_dir: dir.path().join("data"),
            ..Settings::default()
        };
        settings.resolve_jwt_secret().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode(&dir.path().join("data")), 0o700);
        assert_eq!(mode(&dir.path().join("data").join("jwt-secret")), 0o600);
    }

    #[test]
    fn a_kept_jwt_secret_that_others_may_write_is_refused_and_one_they_may_read_still_loads() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            data_dir: dir.path().to_path_buf(),
            ..Settings::default()
        };
        let path = dir.path().join("jwt-secret");
        std::fs::write(&path, "k".repeat(64)).unwrap();
        for mode in [0o666, 0o620, 0o602] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = settings.resolve_jwt_secret().unwrap_err();
            assert!(format!("{err:#}").contains("write"), "{mode:o}: {err:#}");
        }
        // Readable by others: loaded, with a warning in the log.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            settings.resolve_jwt_secret().unwrap().expose(),
            "k".repeat(64)
        );
    }
}
