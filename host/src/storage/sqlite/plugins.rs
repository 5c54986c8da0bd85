//! Plugin versions and the active pointer per slot on SQLite.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, Row, params};

use super::SqliteStore;
use super::error::{SqlContext, get, get_id, get_json, get_opt_id, get_time, micros, to_json};
use crate::domain::Id;
use crate::storage::{ActivePlugin, PluginStore, PluginVersion, StoreError, StoreResult};

fn version_from_row(row: &Row<'_>) -> StoreResult<PluginVersion> {
    Ok(PluginVersion {
        id: get_id(row, "id")?,
        slot: get(row, "slot")?,
        sha256: get(row, "sha256")?,
        wasm: get(row, "wasm")?,
        config: get_json(row, "config")?,
        policy: get(row, "policy")?,
        created_at: get_time(row, "created_at")?,
        created_by: get_opt_id(row, "created_by")?,
    })
}

fn active_from_row(row: &Row<'_>) -> StoreResult<ActivePlugin> {
    let generation: i64 = get(row, "generation")?;
    Ok(ActivePlugin {
        slot: get(row, "slot")?,
        version_id: get_opt_id(row, "version_id")?,
        generation: u64::try_from(generation).map_err(|_| {
            StoreError::backend(anyhow::anyhow!("Corrupt plugin generation {generation}"))
        })?,
        updated_at: get_time(row, "updated_at")?,
    })
}

fn collect<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    decode: fn(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut stmt = conn
        .prepare_cached(sql)
        .ctx("Failed to prepare a plugin query")?;
    let mut rows = stmt.query(params).ctx("Failed to query plugins")?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().ctx("Failed to read a plugin row")? {
        out.push(decode(row)?);
    }
    Ok(out)
}

#[async_trait]
impl PluginStore for SqliteStore {
    async fn put_plugin_version(&self, version: &PluginVersion) -> StoreResult<()> {
        let v = version.clone();
        self.db
            .write(move |tx| {
                tx.prepare_cached(
                    "INSERT INTO plugin_versions (id, slot, sha256, wasm, config, policy, created_at, created_by)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .ctx("Failed to prepare the plugin version insert")?
                .execute(params![
                    v.id.to_hex(),
                    v.slot,
                    v.sha256,
                    v.wasm,
                    to_json(&v.config)?,
                    v.policy,
                    micros(v.created_at),
                    v.created_by.map(|id| id.to_hex()),
                ])
                .ctx("Failed to insert a plugin version")?;
                Ok(())
            })
            .await
    }

    async fn plugin_version(&self, id: Id) -> StoreResult<Option<PluginVersion>> {
        self.db
            .read(move |conn| {
                Ok(collect(
                    conn,
                    "SELECT id, slot, sha256, wasm, config, policy, created_at, created_by
                     FROM plugin_versions WHERE id = ?1",
                    [id.to_hex()],
                    version_from_row,
                )?
                .pop())
            })
            .await
    }

    async fn plugin_versions(&self, slot: &str) -> StoreResult<Vec<PluginVersion>> {
        let slot = slot.to_owned();
        self.db
            .read(move |conn| {
                collect(
                    conn,
                    "SELECT id, slot, sha256, X'' AS wasm, config, policy, created_at, created_by
                     FROM plugin_versions WHERE slot = ?1 ORDER BY id DESC",
                    [slot],
                    version_from_row,
                )
            })
            .await
    }

    async fn set_active_plugin(
        &self,
        slot: &str,
        version_id: Option<Id>,
        at: DateTime<Utc>,
    ) -> StoreResult<ActivePlugin> {
        let slot = slot.to_owned();
        self.db
            .write(move |tx| {
                collect(
                    tx,
                    "INSERT INTO active_plugins (slot, version_id, generation, updated_at)
                     VALUES (?1, ?2, 1, ?3)
                     ON CONFLICT (slot) DO UPDATE SET version_id = excluded.version_id,
                         generation = active_plugins.generation + 1, updated_at = excluded.updated_at
                     RETURNING slot, version_id, generation, updated_at",
                    params![slot, version_id.map(|id| id.to_hex()), micros(at)],
                    active_from_row,
                )?
                .pop()
                .ok_or_else(|| StoreError::backend(anyhow::anyhow!("The active-plugin upsert returned no row")))
            })
            .await
    }

    async fn active_plugins(&self) -> StoreResult<Vec<ActivePlugin>> {
        self.db
            .read(|conn| {
                collect(
                    conn,
                    "SELECT slot, version_id, generation, updated_at FROM active_plugins ORDER BY slot",
                    [],
                    active_from_row,
                )
            })
            .await
    }
}
