//! The catalog on MongoDB. Prices and stock are Int64; the order transaction changes stock
//! with conditional `$inc` (see `orders.rs`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::ReturnDocument;

use super::MongoStore;
use super::codec::{
    date, get_currency, get_i64, get_id, get_opt_str, get_str, get_time, oid, oids,
};
use super::error::{MongoContext, unique_violation};
use crate::domain::{Id, Product, ProductPatch};
use crate::storage::{Conflict, ProductStore, StoreError, StoreResult, UniqueField};

/// The unique index on `sku` and what a duplicate reports.
const SKU_UNIQUE: &[(&str, Conflict)] = &[("sku", Conflict::Taken(UniqueField::Sku))];

fn product_doc(p: &Product) -> Document {
    doc! {
        "_id": oid(p.id),
        "name": &p.name,
        "sku": &p.sku,
        "description": p.description.as_deref().map(Bson::from).unwrap_or(Bson::Null),
        "category": &p.category,
        "price": p.price,
        "currency": p.currency.as_str(),
        "stock": p.stock,
        "createdAt": date(p.created_at),
        "updatedAt": date(p.updated_at),
    }
}

fn product_from_doc(d: &Document) -> StoreResult<Product> {
    Ok(Product {
        id: get_id(d, "_id")?,
        name: get_str(d, "name")?,
        sku: get_str(d, "sku")?,
        description: get_opt_str(d, "description")?,
        category: get_str(d, "category")?,
        price: get_i64(d, "price")?,
        currency: get_currency(d, "currency")?,
        stock: get_i64(d, "stock")?,
        created_at: get_time(d, "createdAt")?,
        updated_at: get_time(d, "updatedAt")?,
    })
}

impl MongoStore {
    async fn find_products(
        &self,
        filter: Document,
        sort: Document,
        limit: Option<i64>,
    ) -> StoreResult<Vec<Product>> {
        let docs: Vec<Document> = self
            .c
            .products
            .find(filter)
            .sort(sort)
            .limit(limit.unwrap_or(0))
            .await
            .ctx("Failed to query products")?
            .try_collect()
            .await
            .ctx("Failed to read products")?;
        docs.iter().map(product_from_doc).collect()
    }
}

#[async_trait]
impl ProductStore for MongoStore {
    async fn create_product(&self, product: &Product) -> StoreResult<()> {
        self.c
            .products
            .insert_one(product_doc(product))
            .await
            .map_err(|e| unique_violation(e, SKU_UNIQUE, "Failed to insert a product"))?;
        Ok(())
    }

    async fn product(&self, id: Id) -> StoreResult<Option<Product>> {
        let found = self
            .c
            .products
            .find_one(doc! { "_id": oid(id) })
            .await
            .ctx("Failed to look up a product")?;
        found.as_ref().map(product_from_doc).transpose()
    }

    async fn products_by_ids(&self, ids: &[Id]) -> StoreResult<Vec<Product>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.find_products(
            doc! { "_id": { "$in": oids(ids) } },
            doc! { "_id": 1 },
            None,
        )
        .await
    }

    async fn list_products(&self, after: Option<Id>, limit: u32) -> StoreResult<Vec<Product>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let filter = match after {
            Some(id) => doc! { "_id": { "$gt": oid(id) } },
            None => doc! {},
        };
        self.find_products(filter, doc! { "_id": 1 }, Some(i64::from(limit)))
            .await
    }

    async fn update_product(
        &self,
        id: Id,
        patch: &ProductPatch,
        at: DateTime<Utc>,
    ) -> StoreResult<Product> {
        let mut set = doc! { "updatedAt": date(at) };
        if let Some(name) = &patch.name {
            set.insert("name", name);
        }
        if let Some(description) = &patch.description {
            set.insert("description", description);
        }
        if let Some(category) = &patch.category {
            set.insert("category", category);
        }
        if let Some(price) = patch.price {
            set.insert("price", price);
        }
        if let Some(stock) = patch.stock {
            set.insert("stock", stock);
        }
        let updated = self
            .c
            .products
            .find_one_and_update(doc! { "_id": oid(id) }, doc! { "$set": set })
            .return_document(ReturnDocument::After)
            .await
            .ctx("Failed to update a product")?;
        updated
            .as_ref()
            .map(product_from_doc)
            .transpose()?
            .ok_or(StoreError::NotFound)
    }
}
