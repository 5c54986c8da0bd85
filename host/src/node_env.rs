//! The Node system's environment variables as aliases of orderd settings, so a deployment of
//! the Node/Express order services can switch to orderd with its environment unchanged.
//!
//! [`NodeAliases`] is a figment provider merged after the settings file and before the
//! `ORDERD_*` variables: a Node variable overrides the file, and an `ORDERD_*` variable for the
//! same setting wins over it. [`ALIASES`] is the mapping README documents.
//!
//! Choices where the Node system's meaning is open:
//! * `MONGODB_URI` selects the MongoDB store and takes the database from the URI's path
//!   (`mongodb://host/shop` → `shop`); without a path the default database name stays.
//! * `SQS_QUEUE_URL` selects the SQS queue; `MAILTRAP_SMTP_HOST` selects SMTP, with STARTTLS
//!   (implicit TLS on port 465), since MailTrap offers it and the credentials must not cross
//!   the network in clear.
//! * `JWT_EXPIRY` / `JWT_REFRESH_EXPIRY` accept `1h`, `15m`, `7d`, `2 days` (the `ms` package's
//!   style); a bare number is seconds.
//! * `JWT_REFRESH_SECRET` has no meaning for orderd's opaque refresh tokens: it is ignored with
//!   a warning ([`warnings`]).

use std::collections::BTreeMap;
use std::time::Duration;

use figment::providers::Serialized;
use figment::value::{Dict, Map};
use figment::{Error, Metadata, Profile, Provider};
use serde_json::{Value, json};

/// One Node variable and the orderd setting it feeds.
pub struct Alias {
    /// The Node system's variable.
    pub variable: &'static str,
    /// The orderd setting (dotted path).
    pub setting: &'static str,
    /// How the value is read, for README.
    pub note: &'static str,
}

/// Every alias, in README's order.
pub const ALIASES: &[Alias] = &[
    Alias {
        variable: "PORT",
        setting: "http.port",
        note: "",
    },
    Alias {
        variable: "MONGODB_URI",
        setting: "store.mongodb_uri",
        note: "also sets `store.backend = mongodb` and `store.mongodb_database` from the URI path",
    },
    Alias {
        variable: "JWT_SECRET",
        setting: "auth.jwt_secret",
        note: "",
    },
    Alias {
        variable: "JWT_EXPIRY",
        setting: "auth.access_ttl_secs",
        note: "`1h`, `15m`, `7d` style; a bare number is seconds",
    },
    Alias {
        variable: "JWT_REFRESH_EXPIRY",
        setting: "auth.refresh_ttl_secs",
        note: "as `JWT_EXPIRY`",
    },
    Alias {
        variable: "AWS_REGION",
        setting: "queue.region",
        note: "",
    },
    Alias {
        variable: "SQS_QUEUE_URL",
        setting: "queue.url",
        note: "also sets `queue.backend = sqs`",
    },
    Alias {
        variable: "SQS_ENDPOINT",
        setting: "queue.endpoint",
        note: "",
    },
    Alias {
        variable: "OUTBOX_PROCESSING_BATCH_SIZE",
        setting: "relay.claim_limit",
        note: "",
    },
    Alias {
        variable: "VISIBILITY_TIMEOUT",
        setting: "consumer.visibility_ms",
        note: "seconds, converted to milliseconds",
    },
    Alias {
        variable: "BATCH_SIZE",
        setting: "consumer.batch_size",
        note: "",
    },
    Alias {
        variable: "MAILTRAP_SMTP_HOST",
        setting: "mail.smtp.host",
        note: "also sets `mail.transport = smtp` and `mail.smtp.security = starttls` (`tls` on port 465)",
    },
    Alias {
        variable: "MAILTRAP_SMTP_PORT",
        setting: "mail.smtp.port",
        note: "",
    },
    Alias {
        variable: "MAILTRAP_SMTP_USER",
        setting: "mail.smtp.username",
        note: "",
    },
    Alias {
        variable: "MAILTRAP_SMTP_PASS",
        setting: "mail.smtp.password",
        note: "",
    },
];

/// The provider's name in figment's metadata (and in `orderd config show`).
pub const SOURCE_NAME: &str = "Node system variable";

/// The Node variables found in the environment, as settings.
#[derive(Debug, Clone, Default)]
pub struct NodeAliases {
    /// Setting (dotted path) → its value.
    values: BTreeMap<String, Value>,
    /// Setting (dotted path) → the variable it came from.
    sources: BTreeMap<String, &'static str>,
}

impl NodeAliases {
    /// Reads the process environment.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `lookup` (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let mut aliases = Self::default();
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        if let Some(port) = get("PORT") {
            aliases.set("http.port", number(&port), "PORT");
        }
        if let Some(uri) = get("MONGODB_URI") {
            aliases.set("store.backend", json!("mongodb"), "MONGODB_URI");
            if let Some(database) = database_of(&uri) {
                aliases.set("store.mongodb_database", json!(database), "MONGODB_URI");
            }
            aliases.set("store.mongodb_uri", json!(uri), "MONGODB_URI");
        }
        if let Some(secret) = get("JWT_SECRET") {
            aliases.set("auth.jwt_secret", json!(secret), "JWT_SECRET");
        }
        for (variable, setting) in [
            ("JWT_EXPIRY", "auth.access_ttl_secs"),
            ("JWT_REFRESH_EXPIRY", "auth.refresh_ttl_secs"),
        ] {
            if let Some(text) = get(variable) {
                let value =
                    parse_lifetime(&text).map_or_else(|| json!(text), |d| json!(d.as_secs()));
                aliases.set(setting, value, variable);
            }
        }
        if let Some(region) = get("AWS_REGION") {
            aliases.set("queue.region", json!(region), "AWS_REGION");
        }
        if let Some(url) = get("SQS_QUEUE_URL") {
            aliases.set("queue.backend", json!("sqs"), "SQS_QUEUE_URL");
            aliases.set("queue.url", json!(url), "SQS_QUEUE_URL");
        }
        if let Some(endpoint) = get("SQS_ENDPOINT") {
            aliases.set("queue.endpoint", json!(endpoint), "SQS_ENDPOINT");
        }
        if let Some(n) = get("OUTBOX_PROCESSING_BATCH_SIZE") {
            aliases.set(
                "relay.claim_limit",
                number(&n),
                "OUTBOX_PROCESSING_BATCH_SIZE",
            );
        }
        if let Some(secs) = get("VISIBILITY_TIMEOUT") {
            let value = secs
                .trim()
                .parse::<u64>()
                .ok()
                .and_then(|s| s.checked_mul(1000))
                .map_or_else(|| json!(secs), |ms| json!(ms));
            aliases.set("consumer.visibility_ms", value, "VISIBILITY_TIMEOUT");
        }
        if let Some(n) = get("BATCH_SIZE") {
            aliases.set("consumer.batch_size", number(&n), "BATCH_SIZE");
        }
        if let Some(host) = get("MAILTRAP_SMTP_HOST") {
            let port = get("MAILTRAP_SMTP_PORT");
            let security = if port.as_deref().map(str::trim) == Some("465") {
                "tls"
            } else {
                "starttls"
            };
            aliases.set("mail.transport", json!("smtp"), "MAILTRAP_SMTP_HOST");
            aliases.set("mail.smtp.security", json!(security), "MAILTRAP_SMTP_HOST");
            aliases.set("mail.smtp.host", json!(host), "MAILTRAP_SMTP_HOST");
        }
        if let Some(port) = get("MAILTRAP_SMTP_PORT") {
            aliases.set("mail.smtp.port", number(&port), "MAILTRAP_SMTP_PORT");
        }
        if let Some(user) = get("MAILTRAP_SMTP_USER") {
            aliases.set("mail.smtp.username", json!(user), "MAILTRAP_SMTP_USER");
        }
        if let Some(pass) = get("MAILTRAP_SMTP_PASS") {
            aliases.set("mail.smtp.password", json!(pass), "MAILTRAP_SMTP_PASS");
        }
        aliases
    }

    fn set(&mut self, setting: &str, value: Value, variable: &'static str) {
        self.values.insert(setting.to_owned(), value);
        self.sources.insert(setting.to_owned(), variable);
    }

    /// The Node variable a setting (dotted path) was taken from, if any.
    pub fn source_of(&self, setting: &str) -> Option<&'static str> {
        self.sources.get(setting).copied()
    }

    /// Whether no Node variable was found.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The settings as one nested JSON object.
    fn tree(&self) -> Value {
        let mut root = Value::Object(Default::default());
        for (path, value) in &self.values {
            let mut node = &mut root;
            let mut parts = path.split('.').peekable();
            while let Some(part) = parts.next() {
                let Value::Object(map) = node else {
                    unreachable!("the alias paths never make a value a parent");
                };
                if parts.peek().is_none() {
                    map.insert(part.to_owned(), value.clone());
                    break;
                }
                node = map
                    .entry(part.to_owned())
                    .or_insert_with(|| Value::Object(Default::default()));
            }
        }
        root
    }
}

impl Provider for NodeAliases {
    fn metadata(&self) -> Metadata {
        Metadata::named(SOURCE_NAME)
    }

    fn data(&self) -> Result<Map<Profile, Dict>, Error> {
        Serialized::defaults(self.tree()).data()
    }
}

/// What the environment holds that orderd reads but does not use, one sentence each.
pub fn warnings() -> Vec<String> {
    warnings_from(|name| std::env::var(name).ok())
}

/// [`warnings`] through `lookup`.
pub fn warnings_from(lookup: impl Fn(&str) -> Option<String>) -> Vec<String> {
    let mut out = Vec::new();
    if lookup("JWT_REFRESH_SECRET").is_some() {
        out.push(
            "JWT_REFRESH_SECRET is set but unused: orderd's refresh tokens are opaque random \
             values stored hashed, not signed JWTs, so they need no secret"
                .to_owned(),
        );
    }
    out
}

/// The database named in a MongoDB connection string's path, if any.
fn database_of(uri: &str) -> Option<String> {
    let rest = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    let (_, path) = rest.split_once('/')?;
    let name = path.split('?').next().unwrap_or_default();
    (!name.is_empty()).then(|| name.to_owned())
}

/// A whole number as JSON, or the text as is (settings extraction then names the setting
/// and says what it expected).
fn number(text: &str) -> Value {
    text.trim()
        .parse::<u64>()
        .map_or_else(|_| json!(text), |n| json!(n))
}

/// `1h`, `15m`, `7d`, `2 days`, `90s`; a bare number is seconds. `None` when unreadable.
fn parse_lifetime(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    humantime::parse_duration(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::configuration::Settings;
    use std::path::Path;

    fn aliases(pairs: &[(&str, &str)]) -> NodeAliases {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        NodeAliases::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn lifetimes_read_the_node_style_and_bare_seconds() {
        assert_eq!(parse_lifetime("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_lifetime("7d"), Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_lifetime("15m"), Some(Duration::from_secs(900)));
        assert_eq!(
            parse_lifetime("2 days"),
            Some(Duration::from_secs(2 * 86_400))
        );
        assert_eq!(parse_lifetime("3600"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_lifetime("soon"), None);
    }

    #[test]
    fn the_database_comes_from_the_uri_path() {
        assert_eq!(
            database_of("mongodb://localhost:27017/shop"),
            Some("shop".into())
        );
        assert_eq!(
            database_of("mongodb+srv://u:p@cluster.example.net/orders?retryWrites=true"),
            Some("orders".into())
        );
        assert_eq!(database_of("mongodb://localhost:27017"), None);
        assert_eq!(
            database_of("mongodb://localhost:27017/?replicaSet=rs0"),
            None
        );
    }

    #[test]
    fn each_setting_remembers_its_variable() {
        let a = aliases(&[("MONGODB_URI", "mongodb://db/shop"), ("PORT", "8000")]);
        assert_eq!(a.source_of("store.mongodb_database"), Some("MONGODB_URI"));
        assert_eq!(a.source_of("http.port"), Some("PORT"));
        assert_eq!(a.source_of("auth.jwt_secret"), None);
    }

    #[test]
    fn empty_variables_count_as_unset() {
        assert!(aliases(&[("PORT", ""), ("JWT_SECRET", "  ")]).is_empty());
    }

    #[test]
    fn the_refresh_secret_is_warned_about_not_refused() {
        assert_eq!(warnings_from(|_| None).len(), 0);
        let warned = warnings_from(|name| (name == "JWT_REFRESH_SECRET").then(|| "x".to_owned()));
        assert_eq!(warned.len(), 1);
        assert!(warned[0].contains("JWT_REFRESH_SECRET"));
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's closure type
    fn every_node_variable_reaches_its_setting() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("PORT", "8000");
            jail.set_env("MONGODB_URI", "mongodb://mongo:27017/orders?replicaSet=rs0");
            jail.set_env("JWT_SECRET", "a-node-secret-that-is-long-enough-for-hs256");
            jail.set_env("JWT_EXPIRY", "1h");
            jail.set_env("JWT_REFRESH_EXPIRY", "7d");
            jail.set_env("AWS_REGION", "ap-south-1");
            jail.set_env(
                "SQS_QUEUE_URL",
                "http://localstack:4566/000000000000/orders",
            );
            jail.set_env("SQS_ENDPOINT", "http://localstack:4566");
            jail.set_env("OUTBOX_PROCESSING_BATCH_SIZE", "50");
            jail.set_env("VISIBILITY_TIMEOUT", "45");
            jail.set_env("BATCH_SIZE", "5");
            jail.set_env("MAILTRAP_SMTP_HOST", "sandbox.smtp.mailtrap.io");
            jail.set_env("MAILTRAP_SMTP_PORT", "2525");
            jail.set_env("MAILTRAP_SMTP_USER", "node-user");
            jail.set_env("MAILTRAP_SMTP_PASS", "node-pass");
            let s = Settings::load(None).expect("settings load");
            assert_eq!(s.http.port, 8000);
            assert_eq!(s.store.backend, crate::configuration::StoreBackend::Mongodb);
            assert_eq!(
                s.store.mongodb_uri.as_ref().map(|u| u.expose()),
                Some("mongodb://mongo:27017/orders?replicaSet=rs0")
            );
            assert_eq!(s.store.mongodb_database, "orders");
            assert_eq!(
                s.auth.jwt_secret.as_ref().map(|j| j.expose()),
                Some("a-node-secret-that-is-long-enough-for-hs256")
            );
            assert_eq!(s.auth.access_ttl_secs, 3600);
            assert_eq!(s.auth.refresh_ttl_secs, 7 * 86_400);
            assert_eq!(s.queue.backend, crate::delivery::queue::QueueBackend::Sqs);
            assert_eq!(s.queue.region.as_deref(), Some("ap-south-1"));
            assert_eq!(
                s.queue.url.as_deref(),
                Some("http://localstack:4566/000000000000/orders")
            );
            assert_eq!(s.queue.endpoint.as_deref(), Some("http://localstack:4566"));
            assert_eq!(s.relay.claim_limit, 50);
            assert_eq!(s.consumer.visibility_ms, 45_000);
            assert_eq!(s.consumer.batch_size, 5);
            assert_eq!(s.mail.transport, crate::mail::MailTransportKind::Smtp);
            assert_eq!(s.mail.smtp.security, crate::mail::SmtpSecurity::Starttls);
            assert_eq!(s.mail.smtp.host, "sandbox.smtp.mailtrap.io");
            assert_eq!(s.mail.smtp.port, Some(2525));
            assert_eq!(s.mail.smtp.username.as_deref(), Some("node-user"));
            assert_eq!(s.mail.smtp.password.as_deref(), Some("node-pass"));
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's closure type
    fn orderd_variables_win_over_node_ones_which_win_over_the_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "orderd.toml",
                "[http]\nport = 7000\n[consumer]\nbatch_size = 3\n[relay]\nclaim_limit = 9\n",
            )?;
            jail.set_env("PORT", "8000");
            jail.set_env("ORDERD_HTTP__PORT", "9100");
            jail.set_env("BATCH_SIZE", "5");
            jail.set_env("MONGODB_URI", "mongodb://mongo/orders");
            jail.set_env("ORDERD_STORE__MONGODB_DATABASE", "orderd_prod");
            let s = Settings::load(Some(Path::new("orderd.toml"))).expect("settings load");
            assert_eq!(s.http.port, 9100, "ORDERD_* beats the Node alias");
            assert_eq!(s.consumer.batch_size, 5, "the Node alias beats the file");
            assert_eq!(s.relay.claim_limit, 9, "the file beats the default");
            assert_eq!(s.store.mongodb_database, "orderd_prod");
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's closure type
    fn a_malformed_node_value_is_refused_naming_the_setting() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("PORT", "eighty");
            let err = format!("{:#}", Settings::load(None).expect_err("PORT=eighty"));
            assert!(err.contains("port"), "{err}");
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's closure type
    fn config_show_names_each_source_and_redacts_secrets() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("orderd.toml", "[relay]\nclaim_limit = 9\n")?;
            jail.set_env("PORT", "8000");
            jail.set_env("JWT_SECRET", "a-node-secret-that-is-long-enough-for-hs256");
            jail.set_env("ORDERD_LOG__FORMAT", "json");
            let figment = Settings::figment(Some(Path::new("orderd.toml"))).expect("figment");
            let settings = Settings::from_figment(&figment).expect("settings");
            let lines = crate::cli::config::render(&settings, &figment, &NodeAliases::from_env())
                .expect("render");
            let line = |key: &str| {
                lines
                    .iter()
                    .find(|l| l.starts_with(&format!("{key} ")))
                    .cloned()
                    .unwrap_or_else(|| panic!("no line for {key}: {lines:#?}"))
            };
            assert!(
                line("http.port").contains("= 8000  # Node variable PORT"),
                "{}",
                line("http.port")
            );
            assert!(
                line("relay.claim_limit").contains("= 9  # file "),
                "{}",
                line("relay.claim_limit")
            );
            assert!(
                line("log.format").ends_with("# ORDERD_LOG__FORMAT variable"),
                "{}",
                line("log.format")
            );
            assert!(
                line("http.host").ends_with("# default"),
                "{}",
                line("http.host")
            );
            let secret = line("auth.jwt_secret");
            assert!(
                secret.contains("<redacted>") && secret.contains("Node variable JWT_SECRET"),
                "{secret}"
            );
            assert!(
                !lines.iter().any(|l| l.contains("a-node-secret")),
                "a secret printed: {lines:#?}"
            );
            Ok(())
        });
    }
}
