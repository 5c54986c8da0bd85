//! The storage contract: one set of checks over `Arc<dyn Store>` that every backend must
//! pass. A backend instantiates them all with
//! `contract_tests!(backend_name, <expression giving a fresh Harness>)`, which expands to one
//! `#[tokio::test]` per case inside `mod backend_name`. The expression is evaluated inside the
//! async test, so it may `.await`.
//!
//! Times are built with millisecond precision (see [`now`]) because that is the finest every
//! backend keeps (BSON dates are milliseconds).

pub mod console;
pub mod delivery;
pub mod delivery_batches;
pub mod durability;
pub mod failed;
pub mod import;
pub mod inbox;
pub mod orders;
pub mod outbox;
pub mod plugins;
pub mod products;
pub mod retention;
pub mod sessions;
pub mod tokens;
pub mod users;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use orderd::domain::{
    Currency, Email, Id, Order, OutboxEvent, OutboxStatus, Product, Role, User, Username,
};
use orderd::storage::{StockTake, Store};
use orderd::testing::placement;

/// A backend under test: a store on a fresh, empty database, and a way to open that same
/// database again as a restarted process would.
#[async_trait]
pub trait Harness: Send + Sync {
    /// The store on this harness's database (the same one on every call).
    fn store(&self) -> Arc<dyn Store>;
    /// A new store on the same database.
    async fn reopen(&self) -> Arc<dyn Store>;
}

/// Expands to one test per contract case for a backend.
macro_rules! contract_tests {
    ($backend:ident, $make:expr) => {
        contract_tests!(@cases $backend, $make, [
            users::a_created_user_is_found_by_id_and_by_email,
            users::a_taken_email_is_a_conflict_naming_the_email,
            users::a_taken_username_is_a_conflict_naming_the_username,
            users::setting_a_role_changes_it_and_an_unknown_user_is_not_found,
            users::a_password_hash_is_replaced_only_while_it_is_the_one_expected,
            tokens::rotating_the_current_refresh_token_replaces_it,
            tokens::presenting_a_rotated_away_token_revokes_its_family,
            tokens::unknown_and_expired_refresh_tokens_are_invalid,
            tokens::a_revoked_family_accepts_none_of_its_tokens,
            tokens::two_concurrent_rotations_of_one_token_rotate_exactly_once,
            sessions::within_the_grace_window_a_rotated_token_yields_the_same_successor_and_after_it_revokes,
            sessions::concurrent_rotations_asking_for_the_same_successor_both_get_it,
            sessions::ending_sessions_bumps_the_token_version_and_revokes_every_family_of_the_user,
            sessions::an_order_beyond_the_open_order_cap_is_refused_and_writes_nothing,
            products::a_created_product_is_found_by_id_and_among_ids,
            products::order_inputs_are_the_customer_and_the_known_products,
            products::a_taken_sku_is_a_conflict_naming_the_sku,
            products::patching_a_product_changes_only_the_given_fields,
            products::products_are_listed_in_id_order_page_by_page,
            orders::placing_an_order_takes_stock_and_stores_order_event_and_idempotency_record,
            orders::a_short_line_refuses_the_order_naming_every_short_product_and_writing_nothing,
            orders::a_taken_idempotency_key_refuses_the_order_and_writes_nothing,
            orders::an_idempotency_record_is_returned_only_while_younger_than_the_max_age,
            orders::two_hundred_concurrent_orders_never_oversell_fifty_units,
            orders::allowed_transitions_move_the_order_and_stamp_the_time,
            orders::a_transition_from_another_status_is_a_conflict_naming_the_current_one,
            orders::cancelling_restocks_and_writes_the_event_together,
            orders::a_users_orders_come_newest_first_page_by_page,
            orders::orders_are_counted_by_status,
            outbox::a_claimed_event_is_leased_to_its_owner_until_the_lease_ends,
            outbox::concurrent_claims_never_hand_one_event_to_two_owners,
            outbox::the_events_of_one_order_are_claimed_in_write_order,
            outbox::a_dead_event_does_not_block_the_later_events_of_its_order,
            outbox::failed_events_back_off_then_die_and_a_retry_revives_them,
            outbox::outbox_counts_and_the_oldest_pending_time_follow_the_events,
            inbox::an_event_is_recorded_in_the_inbox_once,
            inbox::an_email_claim_excludes_others_until_it_expires_or_is_released,
            inbox::a_sent_email_is_never_claimed_again,
            inbox::concurrent_email_claims_grant_exactly_one,
            delivery::a_started_batch_moves_orders_to_processing_and_claims_their_emails,
            delivery::a_completed_batch_records_sends_processes_orders_and_fills_the_inbox,
            delivery::a_kept_claim_blocks_other_deliveries_until_it_expires_then_a_sent_email_is_never_resent,
            delivery::an_order_cancelled_before_its_confirmation_gets_none_and_its_cancellation_gets_one,
            delivery::completing_a_batch_twice_changes_nothing_the_second_time,
            delivery_batches::the_same_event_twice_in_one_batch_is_claimed_sent_and_processed_once,
            delivery_batches::the_items_of_a_batch_are_handled_in_order_each_seeing_the_earlier_ones,
            delivery_batches::a_batch_mixing_done_and_new_events_handles_each_on_its_own,
            delivery_batches::concurrent_batches_of_the_same_events_claim_each_send_once,
            plugins::plugin_versions_are_stored_and_listed_newest_first_without_their_bytes,
            plugins::every_change_of_the_active_plugin_bumps_its_generation,
            plugins::a_20_mib_component_is_stored_and_read_back_whole,
            durability::committed_data_survives_reopening_the_store,
            failed::orders_in_one_status_come_newest_first_across_customers_page_by_page,
            failed::a_customers_orders_in_one_status_are_only_theirs,
            failed::retrying_a_failed_order_makes_it_pending_and_republishes_its_created_event,
            import::an_imported_order_is_kept_as_given_and_importing_it_again_writes_nothing,
            failed::only_a_failed_order_can_be_retried,
            retention::a_prune_deletes_refresh_families_expired_longer_than_the_retention_with_their_tokens,
            retention::a_prune_deletes_published_events_past_the_retention_but_never_unpublished_ones_or_a_failed_orders,
            retention::a_prune_deletes_email_send_records_past_the_retention_but_not_a_failed_orders,
            retention::a_prune_deletes_old_plugin_versions_but_keeps_the_active_and_the_newest,
            console::order_counts_are_the_orders_placed_and_processed_in_the_window,
            console::an_orders_trail_is_its_events_in_write_order_each_with_the_email_it_sent,
        ]);
    };
    (@cases $backend:ident, $make:expr, [$($group:ident :: $case:ident),* $(,)?]) => {
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let harness = $make;
                    crate::contract::$group::$case(&harness).await;
                }
            )*
        }
    };
}

/// Now, at the millisecond precision every backend keeps.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

pub fn inr() -> Currency {
    Currency::parse("INR").expect("INR is a currency")
}

/// A customer with a unique username and e-mail address.
pub fn user() -> User {
    let tag = Id::new().to_hex();
    User {
        id: Id::new(),
        username: Username::parse(&format!("u_{}", &tag[12..])).expect("valid username"),
        email: Email::parse(&format!("{tag}@example.com")).expect("valid e-mail"),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
        role: Role::Customer,
        created_at: now(),
    }
}

/// A product with a unique SKU.
pub fn product(stock: i64, price: i64) -> Product {
    let at = now();
    Product {
        id: Id::new(),
        name: "Masala Chai ☕".to_owned(),
        sku: format!("SKU-{}", Id::new().to_hex()),
        description: Some("Loose-leaf tea".to_owned()),
        category: "grocery".to_owned(),
        price,
        currency: inr(),
        stock,
        created_at: at,
        updated_at: at,
    }
}

/// Creates `n` products with `stock` units each.
pub async fn stocked(store: &Arc<dyn Store>, n: usize, stock: i64) -> Vec<Product> {
    let mut out = Vec::new();
    for _ in 0..n {
        let p = product(stock, 25_000);
        store.create_product(&p).await.expect("create product");
        out.push(p);
    }
    out
}

/// A pending order of `lines` (product, quantity) for `user_id`, its stock takes and its
/// `order.created` event.
pub fn order_of(user_id: Id, lines: &[(&Product, u32)]) -> (Order, Vec<StockTake>, OutboxEvent) {
    let p = placement(user_id, lines, 1800, now());
    (p.order, p.takes, p.event)
}

/// Places an order of `lines` and returns it; panics if the store refuses.
pub async fn place(
    store: &Arc<dyn Store>,
    user_id: Id,
    lines: &[(&Product, u32)],
) -> (Order, OutboxEvent) {
    let (order, takes, event) = order_of(user_id, lines);
    store
        .place_order(&order, &takes, &event, None)
        .await
        .expect("place order");
    (order, event)
}

pub async fn stock_of(store: &Arc<dyn Store>, id: Id) -> i64 {
    store
        .product(id)
        .await
        .expect("read product")
        .expect("product exists")
        .stock
}

/// Every order, whatever its status.
pub async fn order_total(store: &Arc<dyn Store>) -> u64 {
    store
        .count_orders()
        .await
        .expect("count orders")
        .iter()
        .map(|(_, n)| n)
        .sum()
}

/// Every outbox event, whatever its status.
pub async fn outbox_total(store: &Arc<dyn Store>) -> u64 {
    let mut n = 0;
    for status in [
        OutboxStatus::Pending,
        OutboxStatus::Published,
        OutboxStatus::Dead,
    ] {
        n += store.count_outbox(status).await.expect("count outbox");
    }
    n
}
