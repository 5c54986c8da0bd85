//! Users: usernames, e-mail addresses, passwords and roles, parsed at the edge.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Id, ParseError};

/// 3–32 characters of `[a-z0-9_]`, case-folded on parse.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let folded = s.to_lowercase();
        let len = folded.chars().count();
        if !(3..=32).contains(&len) {
            return Err(ParseError::new(
                "invalid-length",
                "must be 3 to 32 characters",
            ));
        }
        if !folded
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(ParseError::new(
                "invalid-format",
                "may contain only letters a-z, digits and underscores",
            ));
        }
        Ok(Self(folded))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An e-mail address every SMTP server accepts, lower-cased: a plain ASCII `local@domain`
/// (RFC 5321/5322 syntax via `email_address`, with a dot-atom local part of at most 64 bytes
/// and a domain with a dot). Quoted local parts (`"a b"@example.com`) and non-ASCII addresses
/// are refused when an address is first accepted ([`Email::parse`]): many servers refuse them
/// and orderd does not send with SMTPUTF8, so every e-mail to such a customer would fail. A
/// non-ASCII domain is accepted in its ASCII (`xn--`) form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

/// Characters RFC 5322 allows unquoted in a local part, besides letters and digits.
const ATEXT_SPECIALS: &[u8] = b"!#$%&'*+-/=?^_`{|}~";

fn invalid_email() -> ParseError {
    ParseError::new(
        "invalid-format",
        "must be an e-mail address such as ada@example.com",
    )
}

impl Email {
    /// Parses an address given for a new account (registration, `orderd admin create`).
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let email = Self::parse_known(s)?;
        let (local, _) = email.0.rsplit_once('@').ok_or_else(invalid_email)?;
        if !email.0.is_ascii() {
            return Err(ParseError::new(
                "unsupported-address",
                "must be ASCII (write an international domain in its xn-- form)",
            ));
        }
        let dot_atom = local.split('.').all(|atom| {
            !atom.is_empty()
                && atom
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || ATEXT_SPECIALS.contains(&b))
        });
        if !dot_atom {
            return Err(ParseError::new(
                "unsupported-address",
                "must not have a quoted local part or unusual characters before the @",
            ));
        }
        if local.len() > 64 {
            return Err(ParseError::new(
                "invalid-length",
                "the part before the @ must be at most 64 characters",
            ));
        }
        Ok(email)
    }

    /// Parses an address that may have been accepted before [`Email::parse`] became strict:
    /// stored accounts and sign-in lookups, so such a customer can still sign in.
    pub fn parse_known(s: &str) -> Result<Self, ParseError> {
        let trimmed = s.trim();
        if trimmed.len() > 254 {
            return Err(ParseError::new(
                "invalid-length",
                "must be at most 254 characters",
            ));
        }
        let lowered = trimmed.to_lowercase();
        let parsed = email_address::EmailAddress::parse_with_options(
            &lowered,
            email_address::Options::default()
                .without_display_text()
                .without_domain_literal(),
        )
        .map_err(|_| invalid_email())?;
        // A bare host ("a@localhost") is legal but never a customer address.
        if !parsed.domain().contains('.') {
            return Err(invalid_email());
        }
        Ok(Self(lowered))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password as typed: 8–128 characters. Never stored or logged; only its argon2id hash is.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let len = s.chars().count();
        if len < 8 {
            return Err(ParseError::new(
                "too-short",
                "must be at least 8 characters",
            ));
        }
        if len > 128 {
            return Err(ParseError::new(
                "too-long",
                "must be at most 128 characters",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// What a user may do: customers order, admins also manage the catalog and plugins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Customer,
    Admin,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "customer" => Some(Role::Customer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// A registered user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: Id,
    pub username: Username,
    pub email: Email,
    /// PHC string of the argon2id hash.
    pub password_hash: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_case_folded_and_limited_to_a_small_alphabet() {
        assert_eq!(Username::parse("Ada_99").unwrap().as_str(), "ada_99");
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse(&"a".repeat(33)).is_err());
        assert!(Username::parse(&"a".repeat(32)).is_ok());
        for bad in ["ada lovelace", "ada-l", "adá", "ada;drop", "😀😀😀"] {
            assert!(Username::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn emails_are_lower_cased_and_must_look_like_addresses() {
        assert_eq!(
            Email::parse("Ada@Example.COM").unwrap().as_str(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@localhost",
            "a b@example.com",
            "{\"$gt\": \"\"}",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn quoted_and_non_ascii_addresses_are_refused_for_new_accounts_but_still_known() {
        for odd in [
            "\"ada lovelace\"@example.com",
            "\"ada\"@example.com",
            "adá@example.com",
            "ada@exämple.com",
            "用户@example.com",
        ] {
            let err = Email::parse(odd).unwrap_err();
            assert_eq!(err.code, "unsupported-address", "{odd:?}");
            // Stored before the rule: still readable, so the customer can sign in.
            assert!(Email::parse_known(odd).is_ok(), "{odd:?}");
        }
        for fine in [
            "ada.lovelace+orders@example.com",
            "o'brien@example.co.uk",
            "ada@xn--exmple-cua.com",
        ] {
            assert!(Email::parse(fine).is_ok(), "{fine:?}");
        }
        for bad in [".ada@example.com", "ada.@example.com", "a..b@example.com"] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(65))).is_err());
    }

    #[test]
    fn passwords_must_be_8_to_128_characters() {
        assert!(Password::parse("1234567").is_err());
        assert!(Password::parse("12345678").is_ok());
        assert!(Password::parse(&"x".repeat(128)).is_ok());
        assert!(Password::parse(&"x".repeat(129)).is_err());
        assert_eq!(
            format!("{:?}", Password::parse("secret-password").unwrap()),
            "Password(***)"
        );
    }
}
