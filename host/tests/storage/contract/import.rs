//! Imported orders (`orderd migrate node`): written as given — status and timestamps kept, no
//! stock taken — with their event when they have one, and never twice.

use chrono::Duration;
use orderd::domain::{OrderStatus, OutboxStatus};

use super::{Harness, now, order_of, order_total, outbox_total, stock_of, stocked, user};

pub async fn an_imported_order_is_kept_as_given_and_importing_it_again_writes_nothing(
    h: &dyn Harness,
) {
    let store = h.store();
    let tea = stocked(&store, 1, 10).await.remove(0);
    let buyer = user();
    store.create_user(&buyer).await.unwrap();

    // A processed order from the other system: no event, its own times.
    let (mut processed, _, _) = order_of(buyer.id, &[(&tea, 3)]);
    let long_ago = now() - Duration::days(40);
    processed.created_at = long_ago;
    processed.updated_at = long_ago + Duration::hours(1);
    processed.mark(OrderStatus::Processed, long_ago + Duration::hours(1));
    assert!(store.import_order(&processed, None).await.unwrap());
    assert_eq!(
        store.order(processed.id).await.unwrap(),
        Some(processed.clone())
    );
    assert_eq!(outbox_total(&store).await, 0);

    // A pending one, with the event that publishes it.
    let (pending, _, event) = order_of(buyer.id, &[(&tea, 2)]);
    assert!(store.import_order(&pending, Some(&event)).await.unwrap());
    let listed = store.list_outbox(OutboxStatus::Pending, 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].id, listed[0].order_id), (event.id, pending.id));

    // Again, even with a new event: nothing is written.
    let (_, _, another) = order_of(buyer.id, &[(&tea, 2)]);
    let mut again = pending.clone();
    again.status = OrderStatus::Processed;
    assert!(!store.import_order(&again, Some(&another)).await.unwrap());
    assert_eq!(store.order(pending.id).await.unwrap(), Some(pending));
    assert_eq!(outbox_total(&store).await, 1);
    assert_eq!(order_total(&store).await, 2);
    // The source system took the stock already.
    assert_eq!(stock_of(&store, tea.id).await, 10);
}
