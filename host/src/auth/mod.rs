//! Authentication primitives with no HTTP in them: password hashing ([`password`]) and access
//! and refresh tokens ([`tokens`]). The HTTP routes and extractors built on them live in
//! `http::auth` and `http::extract`.

pub mod password;
pub mod tokens;

pub use password::PasswordHasher;
pub use tokens::{AccessToken, Principal, RefreshToken, TokenService};
