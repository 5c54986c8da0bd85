//! `order-email`, the default e-mail rule: order-confirmation and order-cancellation
//! messages, each as a subject, a complete HTML document and a plain-text alternative.
//!
//! # Config
//!
//! | key | value | default |
//! |---|---|---|
//! | `shop-name` | shown in the subject, heading and signature; 1..=100 printable characters | `orderd` |
//! | `support-email` | adds a "Questions? Write to …" line | none |
//!
//! Any other key or an invalid value fails the call with `bad-config`.
//!
//! # Safety of inserted text
//!
//! Every string that comes from the order (names, SKUs, address, ids, dates, currency codes)
//! or the config is HTML-escaped in the HTML part ([`escape_html`]), so a product named
//! `<script>alert(1)</script>` shows as text. In the subject and the plain text, control
//! characters (CR, LF, …) in inserted text become spaces ([`one_line`]), so the subject stays
//! one line and no one can forge lines of the message. Subjects are cut to 256 bytes.
//!
//! # Amounts
//!
//! `INR 1,234.50`: the ISO 4217 code, a space, the amount from minor units with the
//! currency's exponent (0 for JPY, KRW, VND, CLP…; 3 for BHD, KWD, OMR, JOD, TND…; 2
//! otherwise), thousands grouped with commas. See [`format_money`].
//!
//! The logic is plain Rust; [`OrderEmail`] implements the SDK's `EmailRenderer` with it and
//! `orderd_rules::export_email_renderer!` makes it a `shop:rules/email` component when built
//! for `wasm32-wasip2`.

mod config;
mod escape;
mod money;
mod render;

pub use config::{DEFAULT_SHOP_NAME, EmailConfig};
pub use escape::{escape_html, one_line};
pub use money::{currency_exponent, format_money};
pub use render::{
    MAX_HTML_BYTES, MAX_SUBJECT_BYTES, MAX_TEXT_BYTES, render_cancellation, render_confirmation,
};

use orderd_rules::{EmailRenderer, PluginError, RenderedEmail, StoredOrder};

/// The renderer as the SDK exports it.
pub struct OrderEmail;

impl EmailRenderer for OrderEmail {
    fn render_confirmation(
        order: &StoredOrder,
        config: &[(String, String)],
    ) -> Result<RenderedEmail, PluginError> {
        render_confirmation(order, config)
    }

    fn render_cancellation(
        order: &StoredOrder,
        config: &[(String, String)],
    ) -> Result<RenderedEmail, PluginError> {
        render_cancellation(order, config)
    }
}

orderd_rules::export_email_renderer!(OrderEmail);
