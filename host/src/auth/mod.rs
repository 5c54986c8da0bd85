//! Authentication primitives with no HTTP in them: password hashing ([`password`]), access
//! and refresh tokens ([`tokens`]), the failed-login throttle ([`throttle`]) and the strength
//! check of configured secrets ([`secret_strength`]). The HTTP routes and extractors built on them live in
//! `http::auth` and `http::extract`.

pub mod password;
pub mod secret_strength;
pub mod throttle;
pub mod tokens;

pub use password::PasswordHasher;
pub use throttle::LoginThrottle;
pub use tokens::{AccessToken, Principal, RefreshToken, TokenService};
