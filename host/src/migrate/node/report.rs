//! What a migration run did (or, in a dry run, would do): counts per collection, the orders
//! published, every refused document with its problems and every remark, each with its id.

use std::fmt;

use super::fields::FieldProblem;
use super::mapping::Note;

/// The collections a run reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collection {
    Users,
    Products,
    Orders,
}

impl Collection {
    pub fn as_str(&self) -> &'static str {
        match self {
            Collection::Users => "users",
            Collection::Products => "products",
            Collection::Orders => "orders",
        }
    }
}

/// Counts of one collection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Written by this run (in a dry run: would be written).
    pub created: u64,
    /// Already in orderd with the same id: left as it is.
    pub present: u64,
    /// Could not be mapped or would conflict: not written, listed in `refused`.
    pub refused: u64,
}

/// One document that was refused, or that carries remarks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub collection: Collection,
    /// The document's `_id` as text.
    pub id: String,
    /// `(field, text)` pairs.
    pub items: Vec<(String, String)>,
}

/// The outcome of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub dry_run: bool,
    pub users: Counts,
    pub products: Counts,
    pub orders: Counts,
    /// Orders written with an `order.created` event (published once, confirmation sent).
    pub published: u64,
    pub refused: Vec<Entry>,
    pub notes: Vec<Entry>,
}

impl Report {
    pub fn new(dry_run: bool) -> Self {
        Self {
            dry_run,
            users: Counts::default(),
            products: Counts::default(),
            orders: Counts::default(),
            published: 0,
            refused: Vec::new(),
            notes: Vec::new(),
        }
    }

    fn counts(&mut self, c: Collection) -> &mut Counts {
        match c {
            Collection::Users => &mut self.users,
            Collection::Products => &mut self.products,
            Collection::Orders => &mut self.orders,
        }
    }

    pub fn created(&mut self, c: Collection) {
        self.counts(c).created += 1;
    }

    pub fn present(&mut self, c: Collection) {
        self.counts(c).present += 1;
    }

    pub fn refuse(&mut self, c: Collection, id: String, problems: Vec<FieldProblem>) {
        self.counts(c).refused += 1;
        let items = problems.into_iter().map(|p| (p.field, p.reason)).collect();
        self.refused.push(Entry {
            collection: c,
            id,
            items,
        });
    }

    pub fn notes(&mut self, c: Collection, id: &str, notes: Vec<Note>) {
        if notes.is_empty() {
            return;
        }
        let items = notes.into_iter().map(|n| (n.field, n.message)).collect();
        self.notes.push(Entry {
            collection: c,
            id: id.to_owned(),
            items,
        });
    }

    /// Whether the run wrote (or would write) anything.
    pub fn changes_anything(&self) -> bool {
        self.users.created + self.products.created + self.orders.created > 0
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (verb, publish) = if self.dry_run {
            ("would copy", "would be published")
        } else {
            ("copied", "published")
        };
        if self.dry_run {
            writeln!(f, "dry run: nothing was written")?;
        }
        for (name, c) in [
            ("users", self.users),
            ("products", self.products),
            ("orders", self.orders),
        ] {
            writeln!(
                f,
                "{name:<9} {verb} {}, already in orderd {}, refused {}",
                c.created, c.present, c.refused
            )?;
        }
        writeln!(
            f,
            "pending orders {publish} once: {} (processed orders send no e-mail)",
            self.published
        )?;
        if !self.changes_anything() {
            writeln!(
                f,
                "nothing to change: orderd already holds every document that maps"
            )?;
        }
        for (title, entries) in [("refused", &self.refused), ("note", &self.notes)] {
            for e in entries {
                for (field, text) in &e.items {
                    writeln!(
                        f,
                        "{title}: {} {} {field}: {text}",
                        e.collection.as_str(),
                        e.id
                    )?;
                }
            }
        }
        Ok(())
    }
}
