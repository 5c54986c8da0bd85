//! The operator settings of the e-mail slot: the shop name shown in every message and an
//! optional support address, parsed once per call and rejected whole when a key is bad.

use orderd_rules::PluginError;

/// Shop name used when the config sets none.
pub const DEFAULT_SHOP_NAME: &str = "orderd";

/// The settings one call renders with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailConfig {
    /// Shown in the subject, heading and signature (`shop-name`).
    pub shop_name: String,
    /// Where customers can write with questions (`support-email`); no line when unset.
    pub support_email: Option<String>,
}

impl Default for EmailConfig {
    fn default() -> Self {
        Self {
            shop_name: DEFAULT_SHOP_NAME.to_string(),
            support_email: None,
        }
    }
}

impl EmailConfig {
    /// Parses the slot config. Later entries override earlier ones; an unknown key, a shop
    /// name that is empty, longer than 100 characters or holds a control character, or a
    /// support address that does not look like one is a `bad-config` error naming the key.
    pub fn parse(config: &[(String, String)]) -> Result<Self, PluginError> {
        let mut parsed = Self::default();
        for (key, value) in config {
            let value = value.trim();
            match key.as_str() {
                "shop-name" => {
                    let valid = !value.is_empty()
                        && value.chars().count() <= 100
                        && !value.chars().any(char::is_control);
                    if !valid {
                        return Err(bad_config(key, "expected 1 to 100 printable characters"));
                    }
                    parsed.shop_name = value.to_string();
                }
                "support-email" => {
                    if !looks_like_email(value) {
                        return Err(bad_config(key, "expected an address like help@example.com"));
                    }
                    parsed.support_email = Some(value.to_string());
                }
                _ => {
                    return Err(bad_config(
                        key,
                        "unknown key (expected shop-name or support-email)",
                    ));
                }
            }
        }
        Ok(parsed)
    }
}

/// One `@` between a non-empty local part and a dotted domain, no spaces or control
/// characters, at most 254 bytes: enough to catch a misplaced value, not a full RFC 5322 parse.
fn looks_like_email(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    value.len() <= 254
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn bad_config(key: &str, reason: &str) -> PluginError {
    let key: String = key.chars().take(64).collect();
    PluginError::new("bad-config", format!("config key `{key}`: {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<EmailConfig, PluginError> {
        let config: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        EmailConfig::parse(&config)
    }

    #[test]
    fn an_empty_config_gives_the_defaults() {
        assert_eq!(parse(&[]).unwrap(), EmailConfig::default());
    }

    #[test]
    fn a_shop_name_and_support_address_are_taken() {
        let config = parse(&[
            ("shop-name", "Chai & Co"),
            ("support-email", "help@chai.example"),
        ])
        .unwrap();
        assert_eq!(config.shop_name, "Chai & Co");
        assert_eq!(config.support_email.as_deref(), Some("help@chai.example"));
    }

    #[test]
    fn a_shop_name_of_100_characters_is_accepted() {
        assert!(parse(&[("shop-name", &"a".repeat(100))]).is_ok());
    }

    #[test]
    fn an_empty_long_or_multi_line_shop_name_is_refused() {
        for value in [" ", &"a".repeat(101), "Acme\r\nBcc: x@evil.test"] {
            let err = parse(&[("shop-name", value)]).unwrap_err();
            assert_eq!(err.code, "bad-config");
            assert!(err.message.contains("shop-name"), "{}", err.message);
        }
    }

    #[test]
    fn a_support_address_that_is_not_one_is_refused() {
        for value in [
            "help",
            "@example.com",
            "help@localhost",
            "help@example.com extra",
            "a@b@c.d",
        ] {
            let err = parse(&[("support-email", value)]).unwrap_err();
            assert_eq!(err.code, "bad-config", "{value}");
            assert!(err.message.contains("support-email"), "{}", err.message);
        }
    }

    #[test]
    fn an_unknown_key_is_refused() {
        let err = parse(&[("shop_name", "x")]).unwrap_err();
        assert_eq!(err.code, "bad-config");
        assert!(err.message.contains("shop_name"), "{}", err.message);
    }
}
