//! Users: creation, look-ups, uniqueness of e-mail and username, roles.

use orderd::domain::{Id, Role, Username};
use orderd::storage::{Conflict, StoreError, UniqueField};

use super::{Harness, user};

pub async fn a_created_user_is_found_by_id_and_by_email(h: &dyn Harness) {
    let store = h.store();
    let ada = user();
    store.create_user(&ada).await.unwrap();

    assert_eq!(store.user_by_id(ada.id).await.unwrap(), Some(ada.clone()));
    assert_eq!(
        store.user_by_email(ada.email.as_str()).await.unwrap(),
        Some(ada)
    );
    assert_eq!(store.user_by_id(Id::new()).await.unwrap(), None);
    assert_eq!(
        store.user_by_email("nobody@example.com").await.unwrap(),
        None
    );
}

pub async fn a_taken_email_is_a_conflict_naming_the_email(h: &dyn Harness) {
    let store = h.store();
    let ada = user();
    store.create_user(&ada).await.unwrap();
    let mut twin = user();
    twin.email = ada.email.clone();

    let err = store.create_user(&twin).await.unwrap_err();

    assert!(
        matches!(
            err,
            StoreError::Conflict(Conflict::Taken(UniqueField::Email))
        ),
        "{err:?}"
    );
    assert_eq!(store.user_by_id(twin.id).await.unwrap(), None);
}

pub async fn a_taken_username_is_a_conflict_naming_the_username(h: &dyn Harness) {
    let store = h.store();
    let ada = user();
    store.create_user(&ada).await.unwrap();
    let mut twin = user();
    twin.username = Username::parse(ada.username.as_str()).unwrap();

    let err = store.create_user(&twin).await.unwrap_err();

    assert!(
        matches!(
            err,
            StoreError::Conflict(Conflict::Taken(UniqueField::Username))
        ),
        "{err:?}"
    );
    assert_eq!(store.user_by_id(twin.id).await.unwrap(), None);
    assert_eq!(
        store.user_by_email(twin.email.as_str()).await.unwrap(),
        None
    );
}

pub async fn setting_a_role_changes_it_and_an_unknown_user_is_not_found(h: &dyn Harness) {
    let store = h.store();
    let ada = user();
    store.create_user(&ada).await.unwrap();

    store.set_role(ada.id, Role::Admin).await.unwrap();

    assert_eq!(
        store.user_by_id(ada.id).await.unwrap().unwrap().role,
        Role::Admin
    );
    let err = store.set_role(Id::new(), Role::Admin).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
}

pub async fn a_password_hash_is_replaced_only_while_it_is_the_one_expected(h: &dyn Harness) {
    let store = h.store();
    let ada = user();
    store.create_user(&ada).await.unwrap();
    let legacy = ada.password_hash.clone();

    assert!(
        !store
            .replace_password_hash(ada.id, "$2b$04$some-other-hash", "$argon2id$new")
            .await
            .unwrap(),
        "a hash changed meanwhile is not overwritten"
    );
    assert_eq!(
        store
            .user_by_id(ada.id)
            .await
            .unwrap()
            .unwrap()
            .password_hash,
        legacy
    );
    assert!(
        store
            .replace_password_hash(ada.id, &legacy, "$argon2id$new")
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .user_by_id(ada.id)
            .await
            .unwrap()
            .unwrap()
            .password_hash,
        "$argon2id$new"
    );
    assert!(
        !store
            .replace_password_hash(Id::new(), &legacy, "$argon2id$other")
            .await
            .unwrap(),
        "an unknown user changes nothing"
    );
}
