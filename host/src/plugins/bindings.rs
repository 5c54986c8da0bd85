//! The only `bindgen!` in the host: typed bindings for the three slot worlds of
//! `wit/` (`tax-rules`, `order-validation`, `email-render`), sharing one generated `types`
//! module, plus conversions between those types and the `rule_types` contract types the rest
//! of the host speaks. Exports are generated `async` so calls run on fibers that yield to
//! tokio at every epoch tick.

/// Bindings of the `tax-rules` world; also owns the shared `shop:rules/types` module.
pub mod tax {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "tax-rules",
        exports: { default: async },
    });
}

/// Bindings of the `order-validation` world.
pub mod validation {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "order-validation",
        exports: { default: async },
        with: { "shop:rules/types": super::tax::shop::rules::types },
    });
}

/// Bindings of the `email-render` world.
pub mod email {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "email-render",
        exports: { default: async },
        with: { "shop:rules/types": super::tax::shop::rules::types },
    });
}

/// The generated `shop:rules/types` values, shared by all three worlds.
pub use tax::shop::rules::types as wit;

/// Converts a value into its WIT-generated twin (the host → guest direction).
macro_rules! to_wit {
    ($($ty:ident { $($field:ident),* $(,)? })*) => {$(
        impl From<&rule_types::$ty> for wit::$ty {
            fn from(v: &rule_types::$ty) -> Self {
                Self { $($field: Conv::conv(&v.$field)),* }
            }
        }
    )*};
}

/// Converts a WIT-generated value into the contract type (the guest → host direction).
macro_rules! from_wit {
    ($($ty:ident { $($field:ident),* $(,)? })*) => {$(
        impl From<wit::$ty> for rule_types::$ty {
            fn from(v: wit::$ty) -> Self {
                Self { $($field: Back::back(v.$field)),* }
            }
        }
    )*};
}

/// Field-level host → guest conversion, so the macros can treat every field alike.
trait Conv<T> {
    fn conv(&self) -> T;
}

impl<T: Clone> Conv<T> for T {
    fn conv(&self) -> T {
        self.clone()
    }
}

/// Field-level guest → host conversion.
trait Back<T> {
    fn back(self) -> T;
}

impl<T> Back<T> for T {
    fn back(self) -> T {
        self
    }
}

/// Implements the field-level conversions of record types (and their lists and options)
/// in the host → guest direction.
macro_rules! conv_records {
    ($($ty:ident),*) => {$(
        impl Conv<wit::$ty> for rule_types::$ty {
            fn conv(&self) -> wit::$ty {
                wit::$ty::from(self)
            }
        }
        impl Conv<Vec<wit::$ty>> for Vec<rule_types::$ty> {
            fn conv(&self) -> Vec<wit::$ty> {
                self.iter().map(wit::$ty::from).collect()
            }
        }
        impl Conv<Option<wit::$ty>> for Option<rule_types::$ty> {
            fn conv(&self) -> Option<wit::$ty> {
                self.as_ref().map(wit::$ty::from)
            }
        }
    )*};
}

/// The same, guest → host.
macro_rules! back_records {
    ($($ty:ident),*) => {$(
        impl Back<rule_types::$ty> for wit::$ty {
            fn back(self) -> rule_types::$ty {
                rule_types::$ty::from(self)
            }
        }
        impl Back<Vec<rule_types::$ty>> for Vec<wit::$ty> {
            fn back(self) -> Vec<rule_types::$ty> {
                self.into_iter().map(rule_types::$ty::from).collect()
            }
        }
        impl Back<Option<rule_types::$ty>> for Option<wit::$ty> {
            fn back(self) -> Option<rule_types::$ty> {
                self.map(rule_types::$ty::from)
            }
        }
    )*};
}

conv_records!(Money, LineItem, Customer, Address, OrderLine);
back_records!(
    Money, LineItem, Customer, Address, OrderLine, TaxLine, RateTotal, Violation
);

to_wit! {
    Money { amount, currency }
    LineItem { product_id, sku, name, category, unit_price, quantity }
    Customer { id, email, name }
    Address { country, region, postal_code }
    OrderDraft { order_id, customer, items, currency, shipping_address }
    OrderLine { product_id, sku, name, category, unit_price, quantity, subtotal, tax }
    StoredOrder {
        order_id, status, customer, items, currency, subtotal, tax_total, total,
        shipping_address, created_at, cancelled_at,
    }
}

from_wit! {
    Money { amount, currency }
    LineItem { product_id, sku, name, category, unit_price, quantity }
    Customer { id, email, name }
    Address { country, region, postal_code }
    OrderLine { product_id, sku, name, category, unit_price, quantity, subtotal, tax }
    TaxLine { item_index, rate_name, rate_bps, taxable, tax }
    RateTotal { rate_name, rate_bps, taxable, tax }
    TaxBreakdown { lines, by_rate, total_tax }
    Violation { code, message, item_index }
    RenderedEmail { subject, html, text }
    PluginError { code, message }
}
