//! The catalog on SQLite.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, Row, params};

use super::SqliteStore;
use super::error::{SqlContext, get, get_currency, get_id, get_time, micros};
use crate::domain::{Id, Product, ProductPatch};
use crate::storage::{ProductStore, StoreError, StoreResult};

/// The product columns, as a literal so statements can be built with `concat!`.
macro_rules! columns {
    () => {
        "id, name, sku, description, category, price, currency, stock, created_at, updated_at"
    };
}

pub(super) fn product_from_row(row: &Row<'_>) -> StoreResult<Product> {
    Ok(Product {
        id: get_id(row, "id")?,
        name: get(row, "name")?,
        sku: get(row, "sku")?,
        description: get(row, "description")?,
        category: get(row, "category")?,
        price: get(row, "price")?,
        currency: get_currency(row, "currency")?,
        stock: get(row, "stock")?,
        created_at: get_time(row, "created_at")?,
        updated_at: get_time(row, "updated_at")?,
    })
}

/// Runs a product query and decodes every row.
fn query_products(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> StoreResult<Vec<Product>> {
    let mut stmt = conn
        .prepare_cached(sql)
        .ctx("Failed to prepare a product query")?;
    let mut rows = stmt.query(params).ctx("Failed to query products")?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().ctx("Failed to read a product")? {
        out.push(product_from_row(row)?);
    }
    Ok(out)
}

#[async_trait]
impl ProductStore for SqliteStore {
    async fn create_product(&self, product: &Product) -> StoreResult<()> {
        let p = product.clone();
        self.db
            .write(move |tx| {
                tx.prepare_cached(
                    "INSERT INTO products
                         (id, name, sku, description, category, price, currency, stock, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )
                .ctx("Failed to prepare the product insert")?
                .execute(params![
                    p.id.to_hex(),
                    p.name,
                    p.sku,
                    p.description,
                    p.category,
                    p.price,
                    p.currency.as_str(),
                    p.stock,
                    micros(p.created_at),
                    micros(p.updated_at),
                ])
                .ctx("Failed to insert a product")?;
                Ok(())
            })
            .await
    }

    async fn product(&self, id: Id) -> StoreResult<Option<Product>> {
        self.db
            .read(move |conn| {
                const SQL: &str = concat!("SELECT ", columns!(), " FROM products WHERE id = ?1");
                Ok(query_products(conn, SQL, [id.to_hex()])?.pop())
            })
            .await
    }

    async fn products_by_ids(&self, ids: &[Id]) -> StoreResult<Vec<Product>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // One JSON array parameter instead of a variable-length IN list keeps the statement
        // cacheable whatever the number of ids.
        let json = ids_json(ids)?;
        self.db.read(move |conn| products_in(conn, json)).await
    }

    async fn list_products(&self, after: Option<Id>, limit: u32) -> StoreResult<Vec<Product>> {
        let after = after.map(|id| id.to_hex()).unwrap_or_default();
        self.db
            .read(move |conn| {
                const SQL: &str = concat!(
                    "SELECT ",
                    columns!(),
                    " FROM products WHERE id > ?1 ORDER BY id LIMIT ?2"
                );
                query_products(conn, SQL, params![after, limit])
            })
            .await
    }

    async fn update_product(
        &self,
        id: Id,
        patch: &ProductPatch,
        at: DateTime<Utc>,
    ) -> StoreResult<Product> {
        let p = patch.clone();
        self.db
            .write(move |tx| {
                const SQL: &str = concat!(
                    "UPDATE products SET
                         name = COALESCE(?2, name),
                         description = COALESCE(?3, description),
                         category = COALESCE(?4, category),
                         price = COALESCE(?5, price),
                         stock = COALESCE(?6, stock),
                         updated_at = ?7
                     WHERE id = ?1
                     RETURNING ",
                    columns!()
                );
                query_products(
                    tx,
                    SQL,
                    params![
                        id.to_hex(),
                        p.name,
                        p.description,
                        p.category,
                        p.price,
                        p.stock,
                        micros(at)
                    ],
                )?
                .pop()
                .ok_or(StoreError::NotFound)
            })
            .await
    }
}

/// `ids` as a JSON array of hex strings, the parameter of [`products_in`].
pub(super) fn ids_json(ids: &[Id]) -> StoreResult<String> {
    let hex: Vec<String> = ids.iter().map(Id::to_hex).collect();
    serde_json::to_string(&hex).map_err(StoreError::backend)
}

/// The products whose ids are in the JSON array `ids_json`. One array parameter instead of a
/// variable-length IN list keeps the statement cacheable whatever the number of ids.
pub(super) fn products_in(conn: &Connection, ids_json: String) -> StoreResult<Vec<Product>> {
    const SQL: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM products WHERE id IN (SELECT value FROM json_each(?1))"
    );
    query_products(conn, SQL, [ids_json])
}
