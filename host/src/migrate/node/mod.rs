//! `orderd migrate node`: copies the Node/Express system's users, products and orders from its
//! MongoDB database into orderd's store, keeping their ids.
//!
//! Users first, then products, then orders (an order needs its customer). Each document is
//! mapped whole ([`mapping`]) or refused with every problem it has; nothing is skipped
//! silently. A record whose id orderd already holds is left as it is, so a second run writes
//! nothing and says so. A pending order is written together with one `order.created` event
//! (it is published once, and its confirmation sent); a processed order gets none. With
//! `dry_run` nothing is written: the same checks run and the report says what would happen.

pub mod fields;
pub mod mapping;
pub mod orders;
pub mod report;

use std::collections::{HashMap, HashSet};

use anyhow::Context;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::Database;
use mongodb::bson::{Document, doc};

use self::mapping::Refused;
use self::orders::LineProduct;
use self::report::{Collection, Report};
use crate::domain::{Id, OutboxEvent};
use crate::storage::{Conflict, Store, StoreError};

/// The Node system's collections (Mongoose's pluralised model names).
const USERS: &str = "users";
const PRODUCTS: &str = "products";
const ORDERS: &str = "orders";

/// Opens the Node system's database named by the path of `uri`
/// (`mongodb://host:27017/order-service`).
pub async fn connect_source(uri: &str) -> anyhow::Result<Database> {
    let options = mongodb::options::ClientOptions::parse(uri)
        .await
        .context("Failed to parse the --from connection string")?;
    let name = options.default_database.clone().context(
        "the --from connection string names no database: add it as the path, \
         e.g. mongodb://localhost:27017/order-service",
    )?;
    let client =
        mongodb::Client::with_options(options).context("Failed to set up the MongoDB client")?;
    let db = client.database(&name);
    db.run_command(doc! { "ping": 1 })
        .await
        .with_context(|| format!("Failed to reach the Node system's database {name:?}"))?;
    Ok(db)
}

/// Every document of `collection`, in `_id` order.
async fn documents(db: &Database, collection: &str) -> anyhow::Result<mongodb::Cursor<Document>> {
    db.collection::<Document>(collection)
        .find(doc! {})
        .sort(doc! { "_id": 1 })
        .await
        .with_context(|| format!("Failed to read the Node system's {collection}"))
}

/// Runs the migration from `source` into `store` (or only checks it, with `dry_run`).
pub async fn run(
    source: &Database,
    store: &dyn Store,
    dry_run: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<Report> {
    let mut report = Report::new(dry_run);
    let users = migrate_users(source, store, &mut report).await?;
    let products = migrate_products(source, store, &mut report).await?;
    migrate_orders(source, store, &users, &products, now, &mut report).await?;
    Ok(report)
}

/// Ids of the users orderd holds or will hold after the run.
async fn migrate_users(
    source: &Database,
    store: &dyn Store,
    report: &mut Report,
) -> anyhow::Result<HashSet<Id>> {
    let mut known = HashSet::new();
    let mut emails: HashMap<String, Id> = HashMap::new();
    let mut usernames: HashMap<String, Id> = HashMap::new();
    let mut cursor = documents(source, USERS).await?;
    while let Some(raw) = cursor.try_next().await.context("Failed to read a user")? {
        let id = mapping::id_text(&raw);
        let mapped = match mapping::user(&raw) {
            Ok(m) => m,
            Err(problems) => {
                report.refuse(Collection::Users, id, problems);
                continue;
            }
        };
        let user = mapped.value;
        if store.user_by_id(user.id).await?.is_some() {
            known.insert(user.id);
            report.present(Collection::Users);
            continue;
        }
        let mut problems: Refused = Vec::new();
        for (field, value, seen) in [
            ("email", user.email.as_str(), &mut emails),
            ("username", user.username.as_str(), &mut usernames),
        ] {
            if let Some(first) = seen.get(value) {
                problems.push(fields::FieldProblem::new(
                    field,
                    format!(
                        "is the same as user {}'s (it must be unique)",
                        first.to_hex()
                    ),
                ));
            } else {
                seen.insert(value.to_owned(), user.id);
            }
        }
        if problems.is_empty()
            && let Some(other) = store.user_by_email(user.email.as_str()).await?
        {
            problems.push(fields::FieldProblem::new(
                "email",
                format!("is used by orderd account {}", other.id.to_hex()),
            ));
        }
        if !problems.is_empty() {
            report.refuse(Collection::Users, id, problems);
            continue;
        }
        if !report.dry_run {
            match store.create_user(&user).await {
                Ok(()) => {}
                Err(StoreError::Conflict(Conflict::Taken(field))) => {
                    let problem = fields::FieldProblem::new(field.as_str(), "is taken in orderd");
                    report.refuse(Collection::Users, id, vec![problem]);
                    continue;
                }
                Err(e) => return Err(anyhow::Error::new(e).context("Failed to write a user")),
            }
        }
        known.insert(user.id);
        report.created(Collection::Users);
    }
    Ok(known)
}

/// The catalog values order lines take, for every product orderd holds or will hold.
async fn migrate_products(
    source: &Database,
    store: &dyn Store,
    report: &mut Report,
) -> anyhow::Result<HashMap<Id, LineProduct>> {
    let mut lines = HashMap::new();
    let mut skus: HashMap<String, Id> = HashMap::new();
    let mut cursor = documents(source, PRODUCTS).await?;
    while let Some(raw) = cursor
        .try_next()
        .await
        .context("Failed to read a product")?
    {
        let id = mapping::id_text(&raw);
        let mapped = match mapping::product(&raw) {
            Ok(m) => m,
            Err(problems) => {
                report.refuse(Collection::Products, id, problems);
                continue;
            }
        };
        let product = mapped.value;
        if let Some(existing) = store.product(product.id).await? {
            lines.insert(existing.id, LineProduct::from(&existing));
            report.present(Collection::Products);
            continue;
        }
        if let Some(first) = skus.get(&product.sku) {
            let problem = fields::FieldProblem::new(
                "sku",
                format!(
                    "is the same as product {}'s (it must be unique)",
                    first.to_hex()
                ),
            );
            report.refuse(Collection::Products, id, vec![problem]);
            continue;
        }
        skus.insert(product.sku.clone(), product.id);
        if !report.dry_run {
            match store.create_product(&product).await {
                Ok(()) => {}
                Err(StoreError::Conflict(Conflict::Taken(field))) => {
                    let problem = fields::FieldProblem::new(field.as_str(), "is taken in orderd");
                    report.refuse(Collection::Products, id, vec![problem]);
                    continue;
                }
                Err(e) => return Err(anyhow::Error::new(e).context("Failed to write a product")),
            }
        }
        lines.insert(product.id, LineProduct::from(&product));
        report.notes(Collection::Products, &id, mapped.notes);
        report.created(Collection::Products);
    }
    Ok(lines)
}

async fn migrate_orders(
    source: &Database,
    store: &dyn Store,
    users: &HashSet<Id>,
    products: &HashMap<Id, LineProduct>,
    now: DateTime<Utc>,
    report: &mut Report,
) -> anyhow::Result<()> {
    let mut cursor = documents(source, ORDERS).await?;
    while let Some(raw) = cursor.try_next().await.context("Failed to read an order")? {
        let id = mapping::id_text(&raw);
        let mapped = match orders::order(&raw, products) {
            Ok(m) => m,
            Err(problems) => {
                report.refuse(Collection::Orders, id, problems);
                continue;
            }
        };
        let plan = mapped.value;
        if !users.contains(&plan.order.user_id) {
            let problem = fields::FieldProblem::new(
                "user",
                format!(
                    "names user {}, which was not migrated",
                    plan.order.user_id.to_hex()
                ),
            );
            report.refuse(Collection::Orders, id, vec![problem]);
            continue;
        }
        let event = plan
            .publish
            .then(|| OutboxEvent::order_created(&plan.order, now));
        let written = if report.dry_run {
            store.order(plan.order.id).await?.is_none()
        } else {
            store
                .import_order(&plan.order, event.as_ref())
                .await
                .context("Failed to write an order")?
        };
        if written {
            report.notes(Collection::Orders, &id, mapped.notes);
            report.created(Collection::Orders);
            if event.is_some() {
                report.published += 1;
            }
        } else {
            report.present(Collection::Orders);
        }
    }
    Ok(())
}
