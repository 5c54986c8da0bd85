//! Accounts carried over from the Node system keep their bcrypt hashes: the password logs in
//! as before and the hash is upgraded to argon2id in the same request. The hashes are made by
//! an independent implementation (Python's `bcrypt`, from the test services' environment).

use chrono::Utc;
use orderd::domain::{Email, Id, Role, User, Username};
use reqwest::StatusCode;

use crate::helpers::{spawn_app, unique};

#[path = "../support/bcrypt.rs"]
mod support_bcrypt;
#[path = "../support/skip.rs"]
mod support_skip;
use support_bcrypt::python_bcrypt;
use support_skip::{Need, skip};

async fn legacy_user(app: &crate::helpers::TestApp, hash: String) -> User {
    let username = unique("node");
    let user = User {
        id: Id::new(),
        username: Username::parse(&username).unwrap(),
        email: Email::parse(&format!("{username}@example.com")).unwrap(),
        password_hash: hash,
        role: Role::Customer,
        created_at: Utc::now(),
    };
    app.store.create_user(&user).await.unwrap();
    user
}

#[tokio::test]
async fn a_node_user_logs_in_with_a_bcrypt_hash_which_is_upgraded_to_argon2id_in_the_same_request()
{
    let test = "a_node_user_logs_in_with_a_bcrypt_hash_which_is_upgraded_to_argon2id";
    let app = spawn_app().await;
    for prefix in ["$2b$", "$2a$", "$2y$"] {
        // Passwords from the Node system need not meet today's rules: short ones too.
        let password = "node pw é";
        let Some(hash) = python_bcrypt(password, prefix) else {
            return skip(test, Need::Service("ORDERD_TEST_PYTHON"));
        };
        let user = legacy_user(&app, hash.clone()).await;

        let wrong = app.login(user.email.as_str(), "not the password").await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{prefix}");
        let stored = app.store.user_by_id(user.id).await.unwrap().unwrap();
        assert_eq!(stored.password_hash, hash, "a failed login changes nothing");

        let ok = app.login(user.email.as_str(), password).await;
        assert_eq!(
            ok.status(),
            StatusCode::OK,
            "{prefix}: {}",
            ok.text().await.unwrap()
        );
        let stored = app.store.user_by_id(user.id).await.unwrap().unwrap();
        assert!(
            stored.password_hash.starts_with("$argon2id$"),
            "{prefix}: still {}",
            stored.password_hash
        );

        // The upgraded hash keeps the same password working, and only it.
        let again = app.login(user.email.as_str(), password).await;
        assert_eq!(again.status(), StatusCode::OK, "{prefix}");
        let wrong = app.login(user.email.as_str(), "node pw e").await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{prefix}");
    }
}
