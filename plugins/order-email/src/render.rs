//! The two messages: the facts of an order gathered once as plain text, then laid out as an
//! HTML document (every inserted string escaped) and as plain text (every inserted string
//! kept on one line). Pure Rust on `orderd_rules`.

use std::fmt::Write as _;

use orderd_rules::{Address, PluginError, RenderedEmail, StoredOrder};

use crate::config::EmailConfig;
use crate::escape::{escape_html, one_line};
use crate::money::format_money;

/// Largest subject the host accepts, in bytes.
pub const MAX_SUBJECT_BYTES: usize = 256;
/// Largest HTML part the host accepts, in bytes.
pub const MAX_HTML_BYTES: usize = 512 * 1024;
/// Largest plain-text part the host accepts, in bytes.
pub const MAX_TEXT_BYTES: usize = 256 * 1024;

/// Which message to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Confirmation,
    Cancellation,
}

/// The order-confirmation e-mail for `order`. Fails with `bad-config`, or `output-too-large`
/// when the order is too big for the host's size limits.
pub fn render_confirmation(
    order: &StoredOrder,
    config: &[(String, String)],
) -> Result<RenderedEmail, PluginError> {
    render(Kind::Confirmation, order, &EmailConfig::parse(config)?)
}

/// The order-cancellation e-mail for `order`; errors as [`render_confirmation`].
pub fn render_cancellation(
    order: &StoredOrder,
    config: &[(String, String)],
) -> Result<RenderedEmail, PluginError> {
    render(Kind::Cancellation, order, &EmailConfig::parse(config)?)
}

/// Everything a message says, as plain single-line text; both parts are built from it, so
/// they state the same facts.
struct Facts {
    subject: String,
    shop: String,
    greeting: String,
    headline: String,
    /// (label, value) lines under the headline: dates.
    dates: Vec<(&'static str, String)>,
    items: Vec<ItemFacts>,
    /// (label, amount) lines under the items: subtotal, tax, total.
    totals: Vec<(&'static str, String)>,
    /// Shipping address lines, if the order has an address.
    address: Option<Vec<String>>,
    support: Option<String>,
}

/// One line of the items table.
struct ItemFacts {
    name: String,
    sku: String,
    quantity: u32,
    unit_price: String,
    subtotal: String,
}

fn render(
    kind: Kind,
    order: &StoredOrder,
    config: &EmailConfig,
) -> Result<RenderedEmail, PluginError> {
    let facts = gather(kind, order, config);
    let email = RenderedEmail {
        html: html(&facts),
        text: text(&facts),
        subject: facts.subject,
    };
    for (part, len, max) in [
        ("html", email.html.len(), MAX_HTML_BYTES),
        ("text", email.text.len(), MAX_TEXT_BYTES),
    ] {
        if len > max {
            return Err(PluginError::new(
                "output-too-large",
                format!("the {part} part would be {len} bytes; the limit is {max}"),
            ));
        }
    }
    Ok(email)
}

fn gather(kind: Kind, order: &StoredOrder, config: &EmailConfig) -> Facts {
    let id = one_line(&order.order_id);
    let shop = one_line(&config.shop_name);
    let subject = match kind {
        Kind::Confirmation => format!("{shop}: Your order {id} is confirmed"),
        Kind::Cancellation => format!("{shop}: Your order {id} has been cancelled"),
    };
    let headline = match kind {
        Kind::Confirmation => format!("Thank you for your order. Your order {id} is confirmed."),
        Kind::Cancellation => format!("Your order {id} has been cancelled."),
    };
    let mut dates = vec![("Placed on", one_line(&order.created_at))];
    if let (Kind::Cancellation, Some(at)) = (kind, &order.cancelled_at) {
        dates.push(("Cancelled on", one_line(at)));
    }
    Facts {
        subject: clip_bytes(&subject, MAX_SUBJECT_BYTES),
        shop,
        greeting: format!("Hello {},", one_line(&order.customer.name)),
        headline,
        dates,
        items: order
            .items
            .iter()
            .map(|line| ItemFacts {
                name: one_line(&line.name),
                sku: one_line(&line.sku),
                quantity: line.quantity,
                unit_price: one_line(&format_money(&line.unit_price)),
                subtotal: one_line(&format_money(&line.subtotal)),
            })
            .collect(),
        totals: vec![
            ("Subtotal", one_line(&format_money(&order.subtotal))),
            ("Tax", one_line(&format_money(&order.tax_total))),
            ("Total", one_line(&format_money(&order.total))),
        ],
        address: order.shipping_address.as_ref().map(address_lines),
        support: config.support_email.as_deref().map(one_line),
    }
}

/// Region, postal code and country, each on its own line when given.
fn address_lines(address: &Address) -> Vec<String> {
    [
        address.region.as_deref(),
        address.postal_code.as_deref(),
        Some(address.country.as_str()),
    ]
    .into_iter()
    .flatten()
    .map(one_line)
    .filter(|line| !line.is_empty())
    .collect()
}

/// The HTML part: a complete document whose every inserted string goes through
/// [`escape_html`]. Writing to a `String` cannot fail, hence the ignored results.
fn html(f: &Facts) -> String {
    let e = escape_html;
    let mut h = String::with_capacity(2048 + f.items.len() * 256);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n</head>\n\
         <body style=\"font-family: Arial, sans-serif; color: #222222;\">\n\
         <h1>{}</h1>\n<p>{}</p>\n<p>{}</p>\n",
        e(&f.subject),
        e(&f.shop),
        e(&f.greeting),
        e(&f.headline)
    );
    for (label, value) in &f.dates {
        let _ = writeln!(h, "<p>{label}: {}</p>", e(value));
    }
    h.push_str(
        "<table cellpadding=\"6\" style=\"border-collapse: collapse;\">\n<thead>\n<tr>\
         <th align=\"left\">Item</th><th align=\"left\">SKU</th><th align=\"right\">Qty</th>\
         <th align=\"right\">Unit price</th><th align=\"right\">Subtotal</th></tr>\n</thead>\n<tbody>\n",
    );
    for item in &f.items {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td align=\"right\">{}</td>\
             <td align=\"right\">{}</td><td align=\"right\">{}</td></tr>",
            e(&item.name),
            e(&item.sku),
            item.quantity,
            e(&item.unit_price),
            e(&item.subtotal)
        );
    }
    h.push_str("</tbody>\n<tfoot>\n");
    for (label, amount) in &f.totals {
        let _ = writeln!(
            h,
            "<tr><th colspan=\"4\" align=\"right\">{label}</th><td align=\"right\">{}</td></tr>",
            e(amount)
        );
    }
    h.push_str("</tfoot>\n</table>\n");
    if let Some(lines) = &f.address {
        h.push_str("<h2>Shipping address</h2>\n<p>");
        let escaped: Vec<String> = lines.iter().map(|l| e(l)).collect();
        h.push_str(&escaped.join("<br>\n"));
        h.push_str("</p>\n");
    }
    if let Some(support) = &f.support {
        let _ = writeln!(h, "<p>Questions? Write to {}.</p>", e(support));
    }
    let _ = write!(h, "<p>{}</p>\n</body>\n</html>\n", e(&f.shop));
    h
}

/// The plain-text part: the same facts, one per line.
fn text(f: &Facts) -> String {
    let mut t = String::with_capacity(1024 + f.items.len() * 128);
    let _ = write!(t, "{}\n\n{}\n\n{}\n", f.shop, f.greeting, f.headline);
    for (label, value) in &f.dates {
        let _ = writeln!(t, "{label}: {value}");
    }
    t.push_str("\nItems:\n");
    for item in &f.items {
        let _ = writeln!(
            t,
            "- {} (SKU {})\n  {} x {} = {}",
            item.name, item.sku, item.quantity, item.unit_price, item.subtotal
        );
    }
    t.push('\n');
    for (label, amount) in &f.totals {
        let _ = writeln!(t, "{label}: {amount}");
    }
    if let Some(lines) = &f.address {
        t.push_str("\nShipping address:\n");
        for line in lines {
            let _ = writeln!(t, "{line}");
        }
    }
    if let Some(support) = &f.support {
        let _ = writeln!(t, "\nQuestions? Write to {support}.");
    }
    let _ = writeln!(t, "\n-- \n{}", f.shop);
    t
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn clip_bytes(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}
