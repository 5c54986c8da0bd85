//! `Idempotency-Key` support: the key's syntax, the fingerprint of the request it was first
//! used with, and how long a stored response is replayed.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::domain::ParseError;

/// How long a stored response is replayed for its key.
pub const REPLAY_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

/// Longest key accepted, in characters.
pub const MAX_KEY_LEN: usize = 255;

/// A client-chosen key: 1 to 255 visible ASCII characters (`!` through `~`), so it can be
/// logged and stored without escaping. Scoped to the user who sent it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Parses a header value as sent.
    pub fn parse(value: &[u8]) -> Result<Self, ParseError> {
        if value.is_empty() || value.len() > MAX_KEY_LEN {
            return Err(ParseError::new(
                "invalid-length",
                format!("must be 1 to {MAX_KEY_LEN} characters"),
            ));
        }
        if !value.iter().all(|b| (b'!'..=b'~').contains(b)) {
            return Err(ParseError::new(
                "invalid-format",
                "may contain only visible ASCII characters",
            ));
        }
        // All bytes are ASCII, so this never fails.
        let text = String::from_utf8(value.to_vec())
            .map_err(|_| ParseError::new("invalid-format", "must be ASCII"))?;
        Ok(Self(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// SHA-256 of the request a key was used with. Callers hash a canonical form (the parsed
/// body serialized again), so whitespace and key order do not make two equal requests differ.
pub fn request_fingerprint(canonical_body: &[u8]) -> [u8; 32] {
    Sha256::digest(canonical_body).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_one_to_255_visible_characters_are_accepted() {
        for good in ["a", "order-2024-06-01#7", &"k".repeat(MAX_KEY_LEN), "!~"] {
            assert_eq!(
                IdempotencyKey::parse(good.as_bytes()).unwrap().as_str(),
                good
            );
        }
    }

    #[test]
    fn empty_overlong_and_invisible_keys_are_refused() {
        assert_eq!(
            IdempotencyKey::parse(b"").unwrap_err().code,
            "invalid-length"
        );
        assert_eq!(
            IdempotencyKey::parse("k".repeat(MAX_KEY_LEN + 1).as_bytes())
                .unwrap_err()
                .code,
            "invalid-length"
        );
        for bad in ["with space", "tab\t", "é", "nul\0"] {
            assert_eq!(
                IdempotencyKey::parse(bad.as_bytes()).unwrap_err().code,
                "invalid-format",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn equal_bodies_share_a_fingerprint_and_different_ones_do_not() {
        assert_eq!(
            request_fingerprint(b"{\"a\":1}"),
            request_fingerprint(b"{\"a\":1}")
        );
        assert_ne!(
            request_fingerprint(b"{\"a\":1}"),
            request_fingerprint(b"{\"a\":2}")
        );
    }
}
