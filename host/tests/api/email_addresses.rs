//! E-mail addresses at registration: an address many SMTP servers refuse (a quoted or
//! non-ASCII local part) is refused up front with a 422 naming the field, instead of being
//! accepted and failing every order e-mail later. Accounts stored before the rule still sign in.

use orderd::domain::{Email, Id, Password, Role, User, Username};

use crate::helpers::{assert_problem, error_fields, spawn_app, unique};

#[tokio::test]
async fn registering_with_a_quoted_or_non_ascii_address_is_a_422_naming_the_email_and_stores_nothing()
 {
    let app = spawn_app().await;
    for address in [
        "\"ada lovelace\"@example.com",
        "\"ada\"@example.com",
        "adá@example.com",
        "ada@exämple.com",
    ] {
        let response = app
            .register(&unique("odd"), address, "correct horse battery")
            .await;
        let problem = assert_problem(response, 422, "validation").await;
        assert_eq!(
            error_fields(&problem),
            vec!["email"],
            "{address}: {problem}"
        );
        assert_eq!(
            problem["errors"][0]["code"], "unsupported-address",
            "{address}: {problem}"
        );
        assert!(
            app.store
                .user_by_email(&address.to_lowercase())
                .await
                .unwrap()
                .is_none(),
            "{address} was stored"
        );
    }
}

#[tokio::test]
async fn a_plain_address_with_plus_and_dots_still_registers() {
    let app = spawn_app().await;
    let response = app
        .register(
            &unique("plain"),
            &format!("{}.l+orders@example.com", unique("ada")),
            "correct horse battery",
        )
        .await;
    assert_eq!(response.status().as_u16(), 201);
}

#[tokio::test]
async fn an_account_stored_with_a_quoted_address_before_the_rule_can_still_sign_in() {
    let app = spawn_app().await;
    let address = "\"old customer\"@example.com";
    let user = User {
        id: Id::new(),
        username: Username::parse(&unique("old")).unwrap(),
        email: Email::parse_known(address).unwrap(),
        password_hash: app
            .state
            .passwords
            .hash(&Password::parse("correct horse battery").unwrap())
            .await
            .unwrap(),
        role: Role::Customer,
        created_at: orderd::http::now(),
    };
    app.store.create_user(&user).await.unwrap();
    let response = app.login(address, "correct horse battery").await;
    assert_eq!(response.status().as_u16(), 200);
}
