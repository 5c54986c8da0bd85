//! Extractors whose every rejection is an [`ApiError`] problem, never axum's plain text.
//!
//! - [`JsonBody<T>`] / [`MaybeJsonBody<T>`]: the body must be `application/json` (or
//!   `application/*+json`) → else 415; over the route's body limit → 413; not syntactically
//!   JSON (or trailing garbage) → 400 `malformed-json`; syntactically fine but missing, unknown
//!   (DTOs use `deny_unknown_fields`) or wrongly typed fields → 422 `validation` with the field
//!   path (`items[2].quantity`). Syntax errors are 400 because the request cannot even be read;
//!   everything about its content is 422.
//! - [`QueryParams<T>`]: query string → 422 `validation` naming the parameter.
//! - [`IdPath`]: the route's one path parameter as an [`Id`] → 422 `invalid-id` when malformed.
//! - [`AuthUser`], [`AdminUser`], [`MaybeAuthUser`]: the bearer access token of the
//!   `Authorization` header → 401 when missing or invalid, 403 when not an admin. A token with
//!   the admin role is also checked against the store (the user exists, is still an admin and
//!   the token's version is the user's current one), so a demotion, a deleted account or "log
//!   out everywhere" ends admin access at once; customer tokens are checked by signature
//!   only, which keeps the order path free of an extra store read, and stay usable until
//!   they expire (`auth.access_ttl_secs`). [`CurrentUser`] checks any token against the store.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use super::error::{ApiError, FieldError};
use super::state::AppState;
use crate::auth::Principal;
use crate::domain::{Id, Role};

/// The media type JSON bodies must declare.
const JSON: &str = "application/json";

/// Detail of every 401: the same whatever was wrong with the credentials.
pub const INVALID_TOKEN: &str = "a valid access token is required";

/// A JSON request body deserialized into `T`, with problem+json rejections.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

/// Like [`JsonBody`], but an empty body (with or without a content type) is `None`.
#[derive(Debug, Clone)]
pub struct MaybeJsonBody<T>(pub Option<T>);

fn is_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == JSON || (essence.starts_with("application/") && essence.ends_with("+json"))
}

async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::BadRequest("the request body could not be read".to_owned())
        }
    })
}

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json_content_type(req.headers()) {
            return Err(ApiError::UnsupportedMediaType(JSON));
        }
        let bytes = read_body(req, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

impl<S, T> FromRequest<S> for MaybeJsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let declared_json = is_json_content_type(req.headers());
        let bytes = read_body(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(MaybeJsonBody(None));
        }
        if !declared_json {
            return Err(ApiError::UnsupportedMediaType(JSON));
        }
        parse_json(&bytes).map(|v| MaybeJsonBody(Some(v)))
    }
}

/// Deserializes `bytes` as JSON into `T` with the rejections described in the module doc.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => ApiError::Validation(vec![field_error(
                &path,
                &strip_position(&inner.to_string()),
            )]),
            // Inside a document that parsed this far, "trailing characters" is an array with
            // more elements than the value it fills (serde also reads a struct from an array
            // of its fields); characters after the document are caught by `de.end()` below.
            serde_json::error::Category::Syntax
                if inner.to_string().starts_with("trailing characters") =>
            {
                let at = if path.is_empty() || path == "." {
                    "body"
                } else {
                    &path
                };
                ApiError::Validation(vec![FieldError::new(
                    at,
                    "invalid-length",
                    "has more elements than expected",
                )])
            }
            _ => ApiError::MalformedJson(strip_position(&inner.to_string())),
        }
    })?;
    de.end()
        .map_err(|err| ApiError::MalformedJson(strip_position(&err.to_string())))?;
    Ok(value)
}

/// serde_json appends " at line L column C"; the field path says more to a client.
fn strip_position(message: &str) -> String {
    let cut = message.rfind(" at line ").unwrap_or(message.len());
    let mut text = message[..cut].to_owned();
    if text.len() > 200 {
        let mut end = 200;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

fn backticked(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(&message[start..start + len])
}

fn join_path(path: &str, field: &str) -> String {
    if path.is_empty() || path == "." {
        field.to_owned()
    } else if path.ends_with(field) {
        path.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

/// One field error from serde's message and the path where it happened.
fn field_error(path: &str, message: &str) -> FieldError {
    let at = if path.is_empty() || path == "." {
        "body"
    } else {
        path
    };
    if let Some(rest) = message.strip_prefix("missing field ") {
        let name = backticked(rest).unwrap_or(rest);
        return FieldError::new(join_path(path, name), "missing-field", "is required");
    }
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let name = backticked(rest).unwrap_or(rest);
        return FieldError::new(join_path(path, name), "unknown-field", "is not allowed");
    }
    if let Some(rest) = message.strip_prefix("duplicate field ") {
        let name = backticked(rest).unwrap_or(rest);
        return FieldError::new(
            join_path(path, name),
            "duplicate-field",
            "appears more than once",
        );
    }
    let code = if message.starts_with("invalid type") {
        "invalid-type"
    } else {
        "invalid-value"
    };
    FieldError::new(at, code, message)
}

/// Query parameters deserialized into `T` (use `deny_unknown_fields`), 422 on failure.
#[derive(Debug, Clone)]
pub struct QueryParams<T>(pub T);

impl<S, T> FromRequestParts<S> for QueryParams<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(QueryParams)
            .map_err(|err| {
                let path = err.path().to_string();
                let message = err.into_inner().to_string();
                let mut error = field_error(&path, &strip_position(&message));
                if error.field == "body" {
                    error.field = "query".to_owned();
                }
                ApiError::Validation(vec![error])
            })
    }
}

/// Parses a path segment or other string as an [`Id`], naming `field` in the 422.
pub fn parse_id(field: &str, value: &str) -> Result<Id, ApiError> {
    Id::parse(value).map_err(|err| {
        ApiError::Validation(vec![FieldError::new(field, "invalid-id", err.message)])
    })
}

/// The route's single path parameter as an [`Id`] (`/api/products/{id}`).
#[derive(Debug, Clone, Copy)]
pub struct IdPath(pub Id);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|err| {
                ApiError::internal(anyhow::anyhow!(
                    "IdPath on a route without parameters: {err}"
                ))
            })?;
        let mut iter = params.iter();
        let (Some((name, value)), None) = (iter.next(), iter.next()) else {
            return Err(ApiError::internal(anyhow::anyhow!(
                "IdPath needs exactly one path parameter"
            )));
        };
        parse_id(name, value).map(IdPath)
    }
}

/// A caller authenticated by a valid access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthUser {
    pub id: Id,
    pub role: Role,
    /// The token version the access token was issued under.
    pub token_version: u64,
}

impl AuthUser {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// An authenticated caller with the `admin` role; customers get 403.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminUser(pub AuthUser);

/// The caller if a bearer token was sent (it must then be valid), else `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaybeAuthUser(pub Option<AuthUser>);

/// The token of an `Authorization: Bearer …` header: `Ok(None)` when there is no header,
/// 401 when there is one that is not a bearer token.
fn bearer(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::Unauthorized(INVALID_TOKEN))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or(ApiError::Unauthorized(INVALID_TOKEN))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::Unauthorized(INVALID_TOKEN));
    }
    Ok(Some(token.trim()))
}

/// Verifies the token's signature and claims; an admin token is also checked against the
/// store ([`ensure_current`]).
async fn authenticate(state: &AppState, token: &str) -> Result<AuthUser, ApiError> {
    let Principal {
        user_id,
        role,
        token_version,
    } = state.tokens.verify_access(token).map_err(|err| {
        tracing::debug!(error = %err, "refused an access token");
        ApiError::Unauthorized(INVALID_TOKEN)
    })?;
    let user = AuthUser {
        id: user_id,
        role,
        token_version,
    };
    if user.is_admin() {
        ensure_current(state, &user).await?;
    }
    Ok(user)
}

/// 401 unless the user still exists with the token's role and token version.
pub async fn ensure_current(state: &AppState, user: &AuthUser) -> Result<(), ApiError> {
    match state.store.session_state(user.id).await? {
        Some(now) if now.role == user.role && now.token_version == user.token_version => Ok(()),
        _ => {
            tracing::info!(user_id = %user.id, "refused an access token issued before the user's sessions were ended or role changed");
            Err(ApiError::Unauthorized(INVALID_TOKEN))
        }
    }
}

/// An authenticated caller whose token was checked against the store whatever its role: the
/// user exists, with the token's role and current token version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrentUser(pub AuthUser);

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        if !user.is_admin() {
            ensure_current(state, &user).await?;
        }
        Ok(CurrentUser(user))
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(&parts.headers)?.ok_or(ApiError::Unauthorized(INVALID_TOKEN))?;
        authenticate(state, token).await
    }
}

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        if !user.is_admin() {
            return Err(ApiError::Forbidden);
        }
        Ok(AdminUser(user))
    }
}

impl FromRequestParts<AppState> for MaybeAuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match bearer(&parts.headers)? {
            None => Ok(MaybeAuthUser(None)),
            Some(token) => authenticate(state, token)
                .await
                .map(|u| MaybeAuthUser(Some(u))),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Line {
        quantity: i64,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Draft {
        name: String,
        items: Vec<Line>,
    }

    fn first_error(body: &str) -> (u16, FieldError) {
        let err = parse_json::<Draft>(body.as_bytes()).unwrap_err();
        let status = err.status().as_u16();
        let error = err
            .problem()
            .errors
            .into_iter()
            .next()
            .unwrap_or(FieldError::new("", "", ""));
        (status, error)
    }

    #[test]
    fn syntax_errors_are_400_and_content_errors_are_422_with_the_field_path() {
        assert_eq!(first_error("{\"name\": ").0, 400);
        assert_eq!(
            first_error("{\"name\": \"a\", \"items\": []} trailing").0,
            400
        );
        let (status, e) = first_error(r#"{"name": "a", "items": [{"quantity": "2"}]}"#);
        assert_eq!(
            (status, e.field.as_str(), e.code.as_str()),
            (422, "items[0].quantity", "invalid-type")
        );
        let (status, e) = first_error(r#"{"items": []}"#);
        assert_eq!(
            (status, e.field.as_str(), e.code.as_str()),
            (422, "name", "missing-field")
        );
        let (status, e) = first_error(r#"{"name": "a", "items": [], "admin": true}"#);
        assert_eq!(
            (status, e.field.as_str(), e.code.as_str()),
            (422, "admin", "unknown-field")
        );
        let (status, e) = first_error("[]");
        assert_eq!((status, e.field.as_str()), (422, "body"));
        // A line written as an array with an element too many is valid JSON: 422, not 400.
        let (status, e) = first_error(r#"{"name": "a", "items": [[2, null]]}"#);
        assert_eq!(
            (status, e.field.as_str(), e.code.as_str()),
            (422, "items[0]", "invalid-length")
        );
    }

    #[test]
    fn json_content_types_with_parameters_and_suffixes_are_accepted() {
        let mut headers = HeaderMap::new();
        for (value, ok) in [
            ("application/json", true),
            ("Application/JSON; charset=utf-8", true),
            ("application/merge-patch+json", true),
            ("text/plain", false),
            ("application/x-www-form-urlencoded", false),
        ] {
            headers.insert(CONTENT_TYPE, value.parse().unwrap());
            assert_eq!(is_json_content_type(&headers), ok, "{value}");
        }
    }

    #[test]
    fn only_bearer_authorization_headers_carry_a_token() {
        let mut headers = HeaderMap::new();
        assert!(matches!(bearer(&headers), Ok(None)));
        headers.insert(AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert!(matches!(bearer(&headers), Ok(Some("abc"))));
        headers.insert(AUTHORIZATION, "Basic abc".parse().unwrap());
        assert!(bearer(&headers).is_err());
        headers.insert(AUTHORIZATION, "Bearer ".parse().unwrap());
        assert!(bearer(&headers).is_err());
    }
}
