//! The catalog: creation, look-ups (alone and with the customer, as the order path reads
//! them), SKU uniqueness, patches, pagination.

use chrono::Duration;
use orderd::domain::{Id, ProductPatch};
use orderd::storage::{Conflict, StoreError, UniqueField};

use super::{Harness, now, product, stocked, user};

pub async fn a_created_product_is_found_by_id_and_among_ids(h: &dyn Harness) {
    let store = h.store();
    let tea = product(10, 25_000);
    let mut coffee = product(0, 41_050);
    coffee.description = None;
    store.create_product(&tea).await.unwrap();
    store.create_product(&coffee).await.unwrap();

    assert_eq!(store.product(tea.id).await.unwrap(), Some(tea.clone()));
    assert_eq!(store.product(Id::new()).await.unwrap(), None);
    let mut found = store
        .products_by_ids(&[coffee.id, Id::new(), tea.id])
        .await
        .unwrap();
    found.sort_by_key(|p| p.id);
    let mut expected = vec![tea, coffee];
    expected.sort_by_key(|p| p.id);
    assert_eq!(found, expected);
    assert!(store.products_by_ids(&[]).await.unwrap().is_empty());
}

/// The order path's combined read answers as the two separate reads do.
pub async fn order_inputs_are_the_customer_and_the_known_products(h: &dyn Harness) {
    let store = h.store();
    let customer = user();
    store.create_user(&customer).await.unwrap();
    let tea = product(10, 25_000);
    store.create_product(&tea).await.unwrap();

    let (found, products) = store
        .order_inputs(customer.id, &[Id::new(), tea.id])
        .await
        .unwrap();
    assert_eq!(found, Some(customer.clone()));
    assert_eq!(products, vec![tea]);

    let (nobody, none) = store.order_inputs(Id::new(), &[]).await.unwrap();
    assert_eq!(nobody, None);
    assert!(none.is_empty());
}

pub async fn a_taken_sku_is_a_conflict_naming_the_sku(h: &dyn Harness) {
    let store = h.store();
    let tea = product(10, 25_000);
    store.create_product(&tea).await.unwrap();
    let mut twin = product(5, 100);
    twin.sku = tea.sku.clone();

    let err = store.create_product(&twin).await.unwrap_err();

    assert!(
        matches!(err, StoreError::Conflict(Conflict::Taken(UniqueField::Sku))),
        "{err:?}"
    );
    assert_eq!(store.product(twin.id).await.unwrap(), None);
}

pub async fn patching_a_product_changes_only_the_given_fields(h: &dyn Harness) {
    let store = h.store();
    let tea = product(10, 25_000);
    store.create_product(&tea).await.unwrap();
    let later = now() + Duration::seconds(5);
    let patch = ProductPatch {
        price: Some(27_500),
        stock: Some(3),
        ..ProductPatch::default()
    };

    let updated = store.update_product(tea.id, &patch, later).await.unwrap();

    let mut expected = tea.clone();
    expected.price = 27_500;
    expected.stock = 3;
    expected.updated_at = later;
    assert_eq!(updated, expected);
    assert_eq!(store.product(tea.id).await.unwrap(), Some(expected));
    let err = store
        .update_product(Id::new(), &patch, later)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
}

pub async fn products_are_listed_in_id_order_page_by_page(h: &dyn Harness) {
    let store = h.store();
    let mut all = stocked(&store, 5, 1).await;
    all.sort_by_key(|p| p.id);

    let first = store.list_products(None, 2).await.unwrap();
    let second = store.list_products(Some(first[1].id), 2).await.unwrap();
    let third = store.list_products(Some(second[1].id), 2).await.unwrap();
    let past_end = store.list_products(Some(third[0].id), 2).await.unwrap();

    let ids = |ps: &[orderd::domain::Product]| ps.iter().map(|p| p.id).collect::<Vec<_>>();
    assert_eq!(ids(&first), ids(&all[0..2]));
    assert_eq!(ids(&second), ids(&all[2..4]));
    assert_eq!(ids(&third), ids(&all[4..5]));
    assert!(past_end.is_empty());
}
