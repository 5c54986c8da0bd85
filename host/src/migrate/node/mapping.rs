//! The Node system's documents as orderd's domain values: users and products here, orders in
//! `orders`; each is mapped whole or refused with every problem it has. Pure: no I/O; the
//! runner decides what exists already. docs/migrating.md lists the field mapping and every
//! assumption made here.

use chrono::{DateTime, SubsecRound, Utc};
use mongodb::bson::{Bson, Document};

use super::fields::{
    FieldProblem, FieldResult, Paise, object_id, opt_date, opt_string, rupees, string, type_name,
    whole,
};
use crate::domain::product::{MAX_STOCK, parse_category, parse_description, parse_name, parse_sku};
use crate::domain::{Currency, Email, Id, Product, Role, User, Username};

/// The Node system priced in Indian rupees.
pub const CURRENCY: &str = "INR";
/// Its tax: 18% GST on every line.
pub const GST_BPS: u32 = 1800;
/// Name of that rate in orderd's tax lines (the default tax plugin's name for it).
pub const GST_RATE_NAME: &str = "gst";
/// Category of a product whose document has none (the Node system had no categories).
pub const DEFAULT_CATEGORY: &str = "general";

/// A remark on a mapped document that did not stop it: a rounding, a recomputed total, a
/// status carried over differently. Printed with the document's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub field: String,
    pub message: String,
}

impl Note {
    pub(super) fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    pub(super) fn rounding(field: &str, p: Paise) -> Option<Self> {
        p.rounded_from.map(|from| {
            Self::new(
                field,
                format!(
                    "{from:?} rupees is not a whole number of paise; rounded to {} paise",
                    p.paise
                ),
            )
        })
    }
}

/// A document mapped to `value`, with its remarks.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped<T> {
    pub value: T,
    pub notes: Vec<Note>,
}

/// Why a document was not mapped: every problem found in it.
pub type Refused = Vec<FieldProblem>;

/// Collects the problems of one document so that all of them are reported at once.
#[derive(Default)]
pub(super) struct Problems(Vec<FieldProblem>);

impl Problems {
    pub(super) fn check<T>(&mut self, r: FieldResult<T>) -> Option<T> {
        r.map_err(|p| self.0.push(p)).ok()
    }

    pub(super) fn parsed<T>(
        &mut self,
        field: &str,
        r: Result<T, crate::domain::ParseError>,
    ) -> Option<T> {
        r.map_err(|e| self.0.push(FieldProblem::new(field, e.message)))
            .ok()
    }

    pub(super) fn push(&mut self, field: &str, reason: impl Into<String>) {
        self.0.push(FieldProblem::new(field, reason));
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }
}

/// The document's `_id` as text for a report, whatever its type.
pub fn id_text(doc: &Document) -> String {
    match doc.get("_id") {
        Some(Bson::ObjectId(oid)) => oid.to_hex(),
        Some(Bson::String(s)) => format!("{s:?}"),
        Some(other) => format!("({})", type_name(other)),
        None => "(no _id)".to_owned(),
    }
}

/// Creation time: Mongoose's `createdAt`, else the time inside the ObjectId.
pub(super) fn created_at(doc: &Document, id: Id, p: &mut Problems) -> DateTime<Utc> {
    p.check(opt_date(doc, "createdAt", "createdAt"))
        .flatten()
        .unwrap_or_else(|| id.as_object_id().timestamp().to_chrono())
        .trunc_subsecs(3)
}

pub(super) fn updated_at(
    doc: &Document,
    created: DateTime<Utc>,
    p: &mut Problems,
) -> DateTime<Utc> {
    p.check(opt_date(doc, "updatedAt", "updatedAt"))
        .flatten()
        .map(|t| t.trunc_subsecs(3))
        .unwrap_or(created)
}

pub(super) fn finish<T>(
    p: Problems,
    value: Option<T>,
    notes: Vec<Note>,
) -> Result<Mapped<T>, Refused> {
    match value {
        Some(value) if p.0.is_empty() => Ok(Mapped { value, notes }),
        _ => Err(p.0),
    }
}

/// A user: `username`, `email`, `password` (its bcrypt hash, kept as is: the first login
/// upgrades it to argon2id), `role` when it is `"admin"`, `createdAt`.
pub fn user(doc: &Document) -> Result<Mapped<User>, Refused> {
    let mut p = Problems::default();
    let id = p.check(object_id(doc, "_id", "_id"));
    let username = p
        .check(string(doc, "username", "username"))
        .and_then(|s| p.parsed("username", Username::parse(s)));
    let email = p
        .check(string(doc, "email", "email"))
        .and_then(|s| p.parsed("email", Email::parse_known(s)));
    let hash = p.check(string(doc, "password", "password")).and_then(|h| {
        let known = ["$2a$", "$2b$", "$2y$", "$argon2id$"]
            .iter()
            .any(|prefix| h.starts_with(prefix));
        if known {
            Some(h.to_owned())
        } else {
            p.push(
                "password",
                "is not a bcrypt ($2a$/$2b$/$2y$) or argon2id hash",
            );
            None
        }
    });
    let role = match p.check(opt_string(doc, "role", "role")).flatten() {
        Some("admin") => Role::Admin,
        _ => Role::Customer,
    };
    let created = id.map(|id| created_at(doc, id, &mut p));
    let value = match (id, username, email, hash, created) {
        (Some(id), Some(username), Some(email), Some(password_hash), Some(created_at)) => {
            Some(User {
                id,
                username,
                email,
                password_hash,
                role,
                created_at,
            })
        }
        _ => None,
    };
    finish(p, value, Vec::new())
}

/// A product: `name`, `description`, `price` (rupees), `stock`, `sku` and `category` when
/// present (else `node-<id>` and [`DEFAULT_CATEGORY`]), `createdAt`, `updatedAt`.
pub fn product(doc: &Document) -> Result<Mapped<Product>, Refused> {
    let mut p = Problems::default();
    let mut notes = Vec::new();
    let id = p.check(object_id(doc, "_id", "_id"));
    let name = p
        .check(string(doc, "name", "name"))
        .and_then(|s| p.parsed("name", parse_name(s)));
    let description = p
        .check(opt_string(doc, "description", "description"))
        .map(|d| d.map(|d| p.parsed("description", parse_description(d))));
    let price = p.check(rupees(doc, "price", "price"));
    if let Some(n) = price.and_then(|x| Note::rounding("price", x)) {
        notes.push(n);
    }
    let stock = p.check(whole(doc, "stock", "stock")).and_then(|s| {
        if s < 0 {
            p.push("stock", format!("is {s}, negative"));
            None
        } else if s > MAX_STOCK {
            p.push("stock", format!("is {s}, above {MAX_STOCK}"));
            None
        } else {
            Some(s)
        }
    });
    let sku = match p.check(opt_string(doc, "sku", "sku")) {
        Some(Some(s)) => p.parsed("sku", parse_sku(s)),
        Some(None) => id.map(|id| format!("node-{}", id.to_hex())),
        None => None,
    };
    let category = match p.check(opt_string(doc, "category", "category")) {
        Some(Some(c)) => p.parsed("category", parse_category(c)),
        Some(None) => Some(DEFAULT_CATEGORY.to_owned()),
        None => None,
    };
    let created = id.map(|id| created_at(doc, id, &mut p));
    let updated = created.map(|c| updated_at(doc, c, &mut p));
    let value = match (
        id,
        name,
        description,
        price,
        stock,
        sku,
        category,
        created,
        updated,
    ) {
        (
            Some(id),
            Some(name),
            Some(description),
            Some(price),
            Some(stock),
            Some(sku),
            Some(category),
            Some(created_at),
            Some(updated_at),
        ) => Some(Product {
            id,
            name,
            sku,
            // A refused description was pushed as a problem, so `flatten` drops nothing kept.
            description: description.flatten(),
            category,
            price: price.paise,
            currency: inr(),
            stock,
            created_at,
            updated_at,
        }),
        _ => None,
    };
    finish(p, value, notes)
}

pub(super) fn inr() -> Currency {
    Currency::parse(CURRENCY).expect("INR is an ISO 4217 code")
}

#[cfg(test)]
mod tests {
    use mongodb::bson::{doc, oid::ObjectId};

    use super::*;

    #[test]
    fn a_product_without_sku_or_category_gets_defaults_and_a_bad_hash_refuses_a_user() {
        let id = ObjectId::new();
        let p = product(&doc! { "_id": id, "name": "Tea", "price": 5, "stock": 1 }).unwrap();
        assert_eq!(p.value.sku, format!("node-{}", id.to_hex()));
        assert_eq!(p.value.category, DEFAULT_CATEGORY);
        assert_eq!((p.value.price, p.value.currency.as_str()), (500, CURRENCY));
        let refused = user(&doc! {
            "_id": ObjectId::new(), "username": "ada", "email": "ada@example.com",
            "password": "plaintext",
        })
        .unwrap_err();
        assert_eq!(refused[0].field, "password");
    }
}
