//! The JSON of the authentication routes: request bodies and the user and token answers.

use super::*;

/// `POST /api/auth/register` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// 3–32 characters of `[a-z0-9_]`, case-folded.
    pub username: String,
    /// An e-mail address; stored lower-cased.
    pub email: String,
    /// 8–128 characters.
    pub password: String,
}

/// `POST /api/auth/login` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// `POST /api/auth/refresh` and `/logout` body, for clients that do not keep cookies.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// A user as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserDto {
    /// 24-hex id.
    pub id: String,
    pub username: String,
    pub email: String,
    /// "customer" or "admin".
    pub role: String,
    pub created_at: DateTime<Utc>,
}

impl From<&User> for UserDto {
    fn from(user: &User) -> Self {
        Self {
            id: user.id.to_hex(),
            username: user.username.as_str().to_owned(),
            email: user.email.as_str().to_owned(),
            role: user.role.as_str().to_owned(),
            created_at: user.created_at,
        }
    }
}

/// `POST /api/auth/register` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegisterResponse {
    pub user: UserDto,
}

/// Login and refresh answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenResponse {
    /// JWT for `Authorization: Bearer …`.
    pub access_token: String,
    /// Always "Bearer".
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Opaque token for `POST /api/auth/refresh` (also set as a cookie).
    pub refresh_token: String,
    pub user: UserDto,
}
