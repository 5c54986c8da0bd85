//! Size limits end to end: an order the API accepts can always be rendered by the e-mail slot.
//! The stored order the e-mail slot receives is larger than the draft the validation and tax
//! slots see, so a draft just under the plugin input cap must already be refused at placement
//! (422 `order-too-large` on `items`, nothing written) rather than accepted and then failed by
//! the consumer on every retry.

use orderd::delivery::consumer::email::stored_order;
use orderd::domain::{Currency, Id, OrderStatus, Product};
use serde_json::Value;

use super::{order_body, place};
use crate::helpers::{TestApp, assert_problem, error_fields, spawn_app_with, unique};

/// The plugin input cap these tests run with: small, so a few lines of long names reach it.
const CAP: usize = 8 << 10;

async fn long_named_product(app: &TestApp) -> Product {
    let now = orderd::http::now();
    let product = Product {
        id: Id::new(),
        name: "N".repeat(200),
        sku: unique("SKU-"),
        description: None,
        category: "general".into(),
        price: 100,
        currency: Currency::parse("INR").unwrap(),
        stock: 100,
        created_at: now,
        updated_at: now,
    };
    app.store.create_product(&product).await.unwrap();
    product
}

/// Renders both e-mails of the stored order `id` with the app's e-mail slot.
async fn renders(app: &TestApp, id: Id) -> Result<(), String> {
    let mut order = app.store.order(id).await.unwrap().unwrap();
    let customer = app.store.user_by_id(order.user_id).await.unwrap().unwrap();
    order.status = OrderStatus::Processing;
    let plugins = &app.state.plugins;
    plugins
        .render_confirmation(&stored_order(&order, &customer))
        .await
        .map_err(|e| format!("confirmation: {e:?}"))?;
    order.status = OrderStatus::Cancelled;
    order.cancelled_at = Some(order.created_at);
    plugins
        .render_cancellation(&stored_order(&order, &customer))
        .await
        .map_err(|e| format!("cancellation: {e:?}"))?;
    Ok(())
}

#[tokio::test]
async fn every_accepted_order_renders_its_emails_and_the_first_too_large_one_is_a_422_writing_nothing()
 {
    let app = spawn_app_with(|s| s.plugins.input_cap_bytes = CAP).await;
    let customer = app.customer().await;
    let mut products = Vec::new();
    let mut accepted = 0;
    // One more long line per order, until the order no longer fits.
    for lines in 1..=40 {
        products.push(long_named_product(&app).await);
        let body = order_body(&products.iter().map(|p| (p, 1)).collect::<Vec<_>>());
        let response = place(&app, &customer, &body).await;
        if response.status() == 201 {
            let order: Value = response.json().await.unwrap();
            let id = Id::parse(order["id"].as_str().unwrap()).unwrap();
            renders(&app, id)
                .await
                .unwrap_or_else(|e| panic!("an accepted order of {lines} lines: {e}"));
            accepted = lines;
            continue;
        }
        let stock_before = app.stock_of(products[0].id).await;
        let orders_before = app.store.count_orders().await.unwrap();
        let problem = assert_problem(response, 422, "validation").await;
        assert_eq!(error_fields(&problem), vec!["items"], "{problem}");
        assert_eq!(problem["errors"][0]["code"], "order-too-large", "{problem}");
        // The draft itself was under the cap: what did not fit is the e-mail slot's input.
        let message = problem["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("e-mail input"), "{message}");
        assert_eq!(app.stock_of(products[0].id).await, stock_before);
        assert_eq!(app.store.count_orders().await.unwrap(), orders_before);
        assert!(accepted >= 5, "only {accepted} lines fit in {CAP} bytes");
        return;
    }
    panic!("no order was too large for a {CAP}-byte cap");
}
