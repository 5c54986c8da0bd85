//! What a restart keeps: everything committed.

use orderd::domain::{Id, OutboxStatus};

use super::{Harness, place, stocked, user};

pub async fn committed_data_survives_reopening_the_store(h: &dyn Harness) {
    let store = h.store();
    let ada = user();
    store.create_user(&ada).await.unwrap();
    let tea = stocked(&store, 1, 10).await.remove(0);
    let (order, event) = place(&store, ada.id, &[(&tea, 4)]).await;
    let event_id = Id::new();
    store
        .inbox_record(event_id, order.created_at)
        .await
        .unwrap();

    let reopened = h.reopen().await;

    assert_eq!(reopened.user_by_id(ada.id).await.unwrap(), Some(ada));
    assert_eq!(reopened.product(tea.id).await.unwrap().unwrap().stock, 6);
    assert_eq!(reopened.order(order.id).await.unwrap(), Some(order));
    assert_eq!(
        reopened
            .list_outbox(OutboxStatus::Pending, 10)
            .await
            .unwrap(),
        vec![event]
    );
    assert!(reopened.inbox_contains(event_id).await.unwrap());
}
