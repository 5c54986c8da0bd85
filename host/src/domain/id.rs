//! Identifiers: 24-hex ObjectId strings in every backend, as clients of the Node system send.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ParseError;

/// A 12-byte MongoDB-style ObjectId (4-byte timestamp, 5 random bytes, 3-byte counter), so ids
/// sort roughly by creation time in every backend.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(bson::oid::ObjectId);

impl Id {
    /// A new id for the current time.
    pub fn new() -> Self {
        Self(bson::oid::ObjectId::new())
    }

    /// Parses exactly 24 hexadecimal characters.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if s.len() != 24 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ParseError::new(
                "invalid-id",
                "must be a 24-character hexadecimal ObjectId",
            ));
        }
        bson::oid::ObjectId::parse_str(s).map(Self).map_err(|_| {
            ParseError::new("invalid-id", "must be a 24-character hexadecimal ObjectId")
        })
    }

    /// The smallest id made during the second `at` falls in: ids made at or after that second
    /// sort at or after it, so a time window of orders is a range of ids.
    pub fn first_at(at: chrono::DateTime<chrono::Utc>) -> Self {
        let seconds = u32::try_from(at.timestamp().max(0)).unwrap_or(u32::MAX);
        let mut bytes = [0u8; 12];
        bytes[..4].copy_from_slice(&seconds.to_be_bytes());
        Self::from_bytes(bytes)
    }

    pub fn from_bytes(bytes: [u8; 12]) -> Self {
        Self(bson::oid::ObjectId::from_bytes(bytes))
    }

    pub fn bytes(&self) -> [u8; 12] {
        self.0.bytes()
    }

    /// The lower-case 24-hex form.
    pub fn to_hex(&self) -> String {
        self.0.to_hex()
    }

    /// The BSON ObjectId, for the MongoDB backend.
    pub fn as_object_id(&self) -> bson::oid::ObjectId {
        self.0
    }
}

impl Default for Id {
    fn default() -> Self {
        Self::new()
    }
}

impl From<bson::oid::ObjectId> for Id {
    fn from(oid: bson::oid::ObjectId) -> Self {
        Self(oid)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_hex())
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", self.0.to_hex())
    }
}

impl FromStr for Id {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_id_round_trips_through_its_hex_form() {
        let id = Id::new();
        assert_eq!(Id::parse(&id.to_hex()).unwrap(), id);
        assert_eq!(id.to_hex().len(), 24);
    }

    #[test]
    fn malformed_ids_are_refused() {
        for bad in [
            "",
            "abc",
            "zzzzzzzzzzzzzzzzzzzzzzzz",
            "0123456789abcdef012345678",
            " 0123456789abcdef0123456",
        ] {
            assert_eq!(Id::parse(bad).unwrap_err().code, "invalid-id", "{bad:?}");
        }
    }

    #[test]
    fn ids_serialize_as_plain_hex_strings() {
        let id = Id::parse("65a1b2c3d4e5f60718293a4b").unwrap();
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            "\"65a1b2c3d4e5f60718293a4b\""
        );
    }
}
