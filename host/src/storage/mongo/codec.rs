//! Field-level conversions between stored documents and domain values. Reading never panics:
//! a missing or malformed field is a `Backend` error naming it. Integers are accepted as
//! Int32 or Int64 (documents edited by hand in a shell, or written by other tools, hold
//! either); they are always written as Int64 where the value is money or may exceed 2^31.

use chrono::{DateTime, Utc};
use mongodb::bson::{Bson, DateTime as BsonDateTime, Document, oid::ObjectId};

use crate::domain::{Currency, Id};
use crate::storage::{StoreError, StoreResult};

/// A corrupt stored field.
pub fn corrupt(field: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::backend(anyhow::anyhow!(
        "Corrupt field {field:?} in MongoDB: {detail}"
    ))
}

pub fn oid(id: Id) -> ObjectId {
    id.as_object_id()
}

pub fn oids(ids: &[Id]) -> Vec<ObjectId> {
    ids.iter().map(|id| id.as_object_id()).collect()
}

pub fn date(at: DateTime<Utc>) -> BsonDateTime {
    BsonDateTime::from_chrono(at)
}

pub fn opt_date(at: Option<DateTime<Utc>>) -> Bson {
    at.map(|t| Bson::DateTime(date(t))).unwrap_or(Bson::Null)
}

fn field<'a>(doc: &'a Document, key: &str) -> StoreResult<&'a Bson> {
    doc.get(key).ok_or_else(|| corrupt(key, "missing"))
}

/// The field, or `None` when it is missing or null.
fn opt_field<'a>(doc: &'a Document, key: &str) -> Option<&'a Bson> {
    match doc.get(key) {
        None | Some(Bson::Null) => None,
        Some(value) => Some(value),
    }
}

pub fn get_id(doc: &Document, key: &str) -> StoreResult<Id> {
    match field(doc, key)? {
        Bson::ObjectId(oid) => Ok(Id::from(*oid)),
        other => Err(corrupt(key, format!("expected an ObjectId, found {other}"))),
    }
}

pub fn get_opt_id(doc: &Document, key: &str) -> StoreResult<Option<Id>> {
    match opt_field(doc, key) {
        None => Ok(None),
        Some(Bson::ObjectId(oid)) => Ok(Some(Id::from(*oid))),
        Some(other) => Err(corrupt(key, format!("expected an ObjectId, found {other}"))),
    }
}

pub fn get_str(doc: &Document, key: &str) -> StoreResult<String> {
    match field(doc, key)? {
        Bson::String(s) => Ok(s.clone()),
        other => Err(corrupt(key, format!("expected a string, found {other}"))),
    }
}

pub fn get_opt_str(doc: &Document, key: &str) -> StoreResult<Option<String>> {
    match opt_field(doc, key) {
        None => Ok(None),
        Some(Bson::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(corrupt(key, format!("expected a string, found {other}"))),
    }
}

pub fn get_bool(doc: &Document, key: &str) -> StoreResult<bool> {
    match opt_field(doc, key) {
        None => Ok(false),
        Some(Bson::Boolean(b)) => Ok(*b),
        Some(other) => Err(corrupt(key, format!("expected a boolean, found {other}"))),
    }
}

pub fn get_i64(doc: &Document, key: &str) -> StoreResult<i64> {
    match field(doc, key)? {
        Bson::Int64(n) => Ok(*n),
        Bson::Int32(n) => Ok(i64::from(*n)),
        other => Err(corrupt(key, format!("expected an integer, found {other}"))),
    }
}

pub fn get_u32(doc: &Document, key: &str) -> StoreResult<u32> {
    let n = get_i64(doc, key)?;
    u32::try_from(n).map_err(|_| corrupt(key, format!("{n} is out of range")))
}

pub fn get_u64(doc: &Document, key: &str) -> StoreResult<u64> {
    let n = get_i64(doc, key)?;
    u64::try_from(n).map_err(|_| corrupt(key, format!("{n} is out of range")))
}

pub fn get_time(doc: &Document, key: &str) -> StoreResult<DateTime<Utc>> {
    match field(doc, key)? {
        Bson::DateTime(t) => Ok(t.to_chrono()),
        other => Err(corrupt(key, format!("expected a date, found {other}"))),
    }
}

pub fn get_opt_time(doc: &Document, key: &str) -> StoreResult<Option<DateTime<Utc>>> {
    match opt_field(doc, key) {
        None => Ok(None),
        Some(Bson::DateTime(t)) => Ok(Some(t.to_chrono())),
        Some(other) => Err(corrupt(key, format!("expected a date, found {other}"))),
    }
}

pub fn get_bytes(doc: &Document, key: &str) -> StoreResult<Vec<u8>> {
    match field(doc, key)? {
        Bson::Binary(b) => Ok(b.bytes.clone()),
        other => Err(corrupt(key, format!("expected binary data, found {other}"))),
    }
}

pub fn get_opt_doc<'a>(doc: &'a Document, key: &str) -> StoreResult<Option<&'a Document>> {
    match opt_field(doc, key) {
        None => Ok(None),
        Some(Bson::Document(d)) => Ok(Some(d)),
        Some(other) => Err(corrupt(key, format!("expected a document, found {other}"))),
    }
}

/// An array of sub-documents.
pub fn get_docs<'a>(doc: &'a Document, key: &str) -> StoreResult<Vec<&'a Document>> {
    match field(doc, key)? {
        Bson::Array(items) => items
            .iter()
            .map(|item| match item {
                Bson::Document(d) => Ok(d),
                other => Err(corrupt(
                    key,
                    format!("expected documents in the array, found {other}"),
                )),
            })
            .collect(),
        other => Err(corrupt(key, format!("expected an array, found {other}"))),
    }
}

pub fn get_currency(doc: &Document, key: &str) -> StoreResult<Currency> {
    let code = get_str(doc, key)?;
    Currency::parse(&code).map_err(|e| corrupt(key, e))
}

/// A stored enum value (status, role, event type) parsed by `parse`.
pub fn get_enum<T>(doc: &Document, key: &str, parse: fn(&str) -> Option<T>) -> StoreResult<T> {
    let s = get_str(doc, key)?;
    parse(&s).ok_or_else(|| corrupt(key, format!("unknown value {s:?}")))
}

/// A hex-encoded SHA-256 (token hashes are stored as hex: readable in a shell, and compared by
/// plain string equality).
pub fn hash_hex(hash: &[u8; 32]) -> String {
    hex::encode(hash)
}

/// Free-form JSON (event payloads) as BSON, through serde so that no `$`-prefixed key is
/// mistaken for extended JSON. Integers become Int64, fractions Double.
pub fn json_to_bson(value: &serde_json::Value) -> StoreResult<Bson> {
    mongodb::bson::to_bson(value).map_err(|e| {
        StoreError::backend(
            anyhow::Error::new(e).context("Failed to encode a JSON payload as BSON"),
        )
    })
}

pub fn bson_to_json(key: &str, value: Option<&Bson>) -> StoreResult<serde_json::Value> {
    match value {
        None => Ok(serde_json::Value::Null),
        Some(v) => mongodb::bson::from_bson(v.clone()).map_err(|e| corrupt(key, e)),
    }
}

#[cfg(test)]
mod tests {
    use mongodb::bson::doc;

    use super::*;

    #[test]
    fn integers_are_read_whether_stored_as_int32_or_int64() {
        let d = doc! { "a": 5_i32, "b": 10_000_000_000_i64, "c": "x", "n": -1_i32 };
        assert_eq!(get_i64(&d, "a").unwrap(), 5);
        assert_eq!(get_i64(&d, "b").unwrap(), 10_000_000_000);
        assert!(get_i64(&d, "c").is_err());
        assert!(get_u32(&d, "n").is_err());
        assert!(get_i64(&d, "missing").is_err());
    }

    #[test]
    fn json_payloads_round_trip_without_extended_json_interpretation() {
        let value = serde_json::json!({"total": 118, "ratio": 1.5, "$date": "not a date", "tags": ["a", null, true]});
        let bson = json_to_bson(&value).unwrap();
        assert_eq!(bson_to_json("payload", Some(&bson)).unwrap(), value);
    }

    #[test]
    fn times_keep_millisecond_precision() {
        let at = DateTime::from_timestamp_millis(1_767_268_800_123).unwrap();
        let d = doc! { "at": date(at), "none": Bson::Null };
        assert_eq!(get_time(&d, "at").unwrap(), at);
        assert_eq!(get_opt_time(&d, "none").unwrap(), None);
        assert_eq!(get_opt_time(&d, "absent").unwrap(), None);
    }
}
