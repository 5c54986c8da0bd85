//! Plugin versions and the active pointer per slot on MongoDB. The wasm bytes are stored as
//! BSON binary in the version document, or, above [`WASM_PART_BYTES`] (a component with an
//! interpreter inside is tens of MiB; MongoDB refuses documents over 16 MiB), in parts in
//! `plugin_wasm_parts`, written before the version document so a visible version always has
//! all its bytes. Config is an array of `{key, value}` so keys keep their order and may
//! contain any character.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::bson::{Binary, Bson, Document, doc, spec::BinarySubtype};
use mongodb::options::ReturnDocument;

use super::MongoStore;
use super::codec::{
    date, get_bytes, get_docs, get_i64, get_id, get_opt_id, get_opt_str, get_str, get_time,
    get_u64, oid,
};
use super::error::{MongoContext, backend, is_duplicate_key};
use crate::domain::Id;
use crate::storage::{ActivePlugin, PluginStore, PluginVersion, StoreError, StoreResult};

/// Largest component stored inline in its version document.
const WASM_PART_BYTES: usize = 8 << 20;

fn binary(bytes: &[u8]) -> Binary {
    Binary {
        subtype: BinarySubtype::Generic,
        bytes: bytes.to_vec(),
    }
}

/// The version document; `wasm` holds the bytes, or `wasmParts` their number of parts.
fn version_doc(v: &PluginVersion, parts: usize) -> Document {
    let wasm = if parts == 0 {
        ("wasm", Bson::Binary(binary(&v.wasm)))
    } else {
        ("wasmParts", Bson::Int64(parts as i64))
    };
    doc! {
        "_id": oid(v.id),
        "slot": &v.slot,
        "sha256": &v.sha256,
        wasm.0: wasm.1,
        "config": v.config.iter().map(|(k, val)| doc! { "key": k, "value": val }).collect::<Vec<_>>(),
        "policy": v.policy.as_deref().map(Bson::from).unwrap_or(Bson::Null),
        "createdAt": date(v.created_at),
        "createdBy": v.created_by.map(|id| Bson::ObjectId(oid(id))).unwrap_or(Bson::Null),
    }
}

fn version_from_doc(d: &Document) -> StoreResult<PluginVersion> {
    let config = get_docs(d, "config")?
        .into_iter()
        .map(|kv| Ok((get_str(kv, "key")?, get_str(kv, "value")?)))
        .collect::<StoreResult<_>>()?;
    Ok(PluginVersion {
        id: get_id(d, "_id")?,
        slot: get_str(d, "slot")?,
        sha256: get_str(d, "sha256")?,
        // Listings leave the bytes out.
        wasm: if d.contains_key("wasm") {
            get_bytes(d, "wasm")?
        } else {
            Vec::new()
        },
        config,
        policy: get_opt_str(d, "policy")?,
        created_at: get_time(d, "createdAt")?,
        created_by: get_opt_id(d, "createdBy")?,
    })
}

fn active_from_doc(d: &Document) -> StoreResult<ActivePlugin> {
    Ok(ActivePlugin {
        slot: get_str(d, "_id")?,
        version_id: get_opt_id(d, "versionId")?,
        generation: get_u64(d, "generation")?,
        updated_at: get_time(d, "updatedAt")?,
    })
}

/// The `_id` of one part of a component: the version id and the part's index.
fn part_id(version: Id, part: i64) -> String {
    format!("{}:{part}", version.to_hex())
}

impl MongoStore {
    /// The bytes of a component stored in `count` parts, each read by its `_id`.
    async fn wasm_parts(&self, id: Id, count: i64) -> StoreResult<Vec<u8>> {
        let mut wasm = Vec::new();
        for part in 0..count {
            let found = self
                .c
                .plugin_wasm_parts
                .find_one(doc! { "_id": part_id(id, part) })
                .await
                .ctx("Failed to read a part of a plugin component")?;
            let Some(found) = found else {
                return Err(StoreError::backend(anyhow::anyhow!(
                    "part {part} of the {count} parts of plugin version {id} is missing"
                )));
            };
            wasm.extend(get_bytes(&found, "bytes")?);
        }
        Ok(wasm)
    }
}

#[async_trait]
impl PluginStore for MongoStore {
    async fn put_plugin_version(&self, version: &PluginVersion) -> StoreResult<()> {
        let mut parts = 0;
        if version.wasm.len() > WASM_PART_BYTES {
            for (part, bytes) in (0..).zip(version.wasm.chunks(WASM_PART_BYTES)) {
                let id = part_id(version.id, part);
                self.c
                    .plugin_wasm_parts
                    .insert_one(doc! { "_id": id, "bytes": binary(bytes) })
                    .await
                    .ctx("Failed to insert a part of a plugin component")?;
                parts += 1;
            }
        }
        self.c
            .plugin_versions
            .insert_one(version_doc(version, parts))
            .await
            .ctx("Failed to insert a plugin version")?;
        Ok(())
    }

    async fn plugin_version(&self, id: Id) -> StoreResult<Option<PluginVersion>> {
        let found = self
            .c
            .plugin_versions
            .find_one(doc! { "_id": oid(id) })
            .await
            .ctx("Failed to look up a plugin version")?;
        let Some(found) = found else {
            return Ok(None);
        };
        let mut version = version_from_doc(&found)?;
        if found.contains_key("wasmParts") {
            let parts = get_i64(&found, "wasmParts")?;
            version.wasm = self.wasm_parts(id, parts).await?;
        }
        Ok(Some(version))
    }

    async fn plugin_versions(&self, slot: &str) -> StoreResult<Vec<PluginVersion>> {
        let docs: Vec<Document> = self
            .c
            .plugin_versions
            .find(doc! { "slot": slot })
            .projection(doc! { "wasm": 0 })
            .sort(doc! { "_id": -1 })
            .await
            .ctx("Failed to query plugin versions")?
            .try_collect()
            .await
            .ctx("Failed to read plugin versions")?;
        docs.iter().map(version_from_doc).collect()
    }

    async fn set_active_plugin(
        &self,
        slot: &str,
        version_id: Option<Id>,
        at: DateTime<Utc>,
    ) -> StoreResult<ActivePlugin> {
        let version = version_id
            .map(|id| Bson::ObjectId(oid(id)))
            .unwrap_or(Bson::Null);
        let update = doc! {
            "$set": { "versionId": version, "updatedAt": date(at) },
            "$inc": { "generation": 1_i64 },
        };
        // Two first activations of a slot racing may both try to insert it; the loser's
        // duplicate key means the document now exists, so its second try updates it.
        for attempt in 0..2 {
            let result = self
                .c
                .active_plugins
                .find_one_and_update(doc! { "_id": slot }, update.clone())
                .upsert(true)
                .return_document(ReturnDocument::After)
                .await;
            match result {
                Ok(Some(d)) => return active_from_doc(&d),
                Ok(None) => break,
                Err(e) if attempt == 0 && is_duplicate_key(&e) => continue,
                Err(e) => return Err(backend(e, "Failed to set the active plugin")),
            }
        }
        Err(StoreError::backend(anyhow::anyhow!(
            "The active-plugin upsert returned no document"
        )))
    }

    async fn active_plugins(&self) -> StoreResult<Vec<ActivePlugin>> {
        let docs: Vec<Document> = self
            .c
            .active_plugins
            .find(doc! {})
            .sort(doc! { "_id": 1 })
            .await
            .ctx("Failed to query the active plugins")?
            .try_collect()
            .await
            .ctx("Failed to read the active plugins")?;
        docs.iter().map(active_from_doc).collect()
    }
}
