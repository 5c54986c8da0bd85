//! Authentication routes under `/api/auth`: register, login, refresh, logout, me.
//!
//! Login and refresh answer `{accessToken, tokenType, expiresIn, refreshToken, user}` and set
//! the refresh token as an `HttpOnly; SameSite=Strict; Path=/api/auth` cookie (`Secure` unless
//! `http.plain_http_cookies`). Refresh and logout take the token from a `{refreshToken}` body
//! or from that cookie. Every refresh rotates the token; presenting a rotated one revokes its
//! whole family. Login and register are rate-limited per client IP.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tower_governor::GovernorLayer;
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::key_extractor::PeerIpKeyExtractor;
use utoipa::{OpenApi, ToSchema};

use super::error::{ApiError, FieldErrors, Problem};
use super::extract::{AuthUser, JsonBody, MaybeJsonBody};
use super::state::AppState;
use crate::auth::tokens::refresh_hash;
use crate::configuration::RateLimitSettings;
use crate::domain::{Email, Id, Password, Role, User, Username};
use crate::storage::{RefreshGrant, RotateOutcome};

/// Name of the refresh-token cookie.
pub const REFRESH_COOKIE: &str = "orderd_refresh";

/// Path the refresh cookie is scoped to.
const COOKIE_PATH: &str = "/api/auth";

/// Detail of every failed login: it never says which field was wrong.
const BAD_CREDENTIALS: &str = "invalid e-mail or password";

/// Detail of every refused refresh token.
const BAD_REFRESH: &str = "the refresh token is invalid, expired or revoked; sign in again";

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

/// Routes under `/api/auth`; login and register share a per-client-IP rate limit.
pub fn router(limits: &RateLimitSettings) -> Router<AppState> {
    let limited = Router::new()
        .route("/api/auth/register", post(register))
        .route("/api/auth/login", post(login));
    Router::new()
        .route("/api/auth/refresh", post(refresh))
        .route("/api/auth/logout", post(logout))
        .route("/api/auth/me", get(me))
        .merge(with_rate_limit(limited, limits))
}

/// `routes` behind a per-client-IP rate limiter (unless disabled): over the limit → 429 with
/// `Retry-After`.
fn with_rate_limit(routes: Router<AppState>, limits: &RateLimitSettings) -> Router<AppState> {
    if !limits.enabled {
        return routes;
    }
    let Some(config) = GovernorConfigBuilder::default()
        .key_extractor(PeerIpKeyExtractor)
        .period(Duration::from_millis(limits.replenish_ms.max(1)))
        .burst_size(limits.burst.max(1))
        .finish()
    else {
        tracing::error!("invalid rate-limit settings; login and register are not rate-limited");
        return routes;
    };
    let config = Arc::new(config);
    // Forget idle clients now and then, so the limiter's memory stays bounded. The task ends
    // when the router (the last strong reference) is dropped.
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        let weak = Arc::downgrade(&config);
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(config) = weak.upgrade() else { break };
                config.limiter().retain_recent();
            }
        });
    }
    routes.route_layer(GovernorLayer::new(config).error_handler(|error| {
        match error {
            tower_governor::GovernorError::TooManyRequests { wait_time, .. } => {
                ApiError::TooManyRequests {
                    retry_after_secs: wait_time + 1,
                }
                .into_response()
            }
            other => {
                ApiError::internal(anyhow::anyhow!("rate limiter failed: {other}")).into_response()
            }
        }
    }))
}

/// The `Set-Cookie` value carrying `token`, or clearing the cookie when `token` is `None`.
fn refresh_cookie(state: &AppState, token: Option<&str>) -> HeaderValue {
    let secure = if state.settings.http.plain_http_cookies {
        ""
    } else {
        "; Secure"
    };
    let (value, max_age) = match token {
        Some(token) => (token, state.tokens.refresh_ttl().as_secs()),
        None => ("", 0),
    };
    let cookie = format!(
        "{REFRESH_COOKIE}={value}; HttpOnly; SameSite=Strict; Path={COOKIE_PATH}; Max-Age={max_age}{secure}"
    );
    // Tokens are base64url, so the value is always a valid header.
    HeaderValue::from_str(&cookie)
        .unwrap_or_else(|_| HeaderValue::from_static("orderd_refresh=; Max-Age=0"))
}

/// The refresh token of the `Cookie` header, if any.
fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == REFRESH_COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|v| !v.is_empty())
}

/// The response of a failed refresh: 401 and the cookie cleared.
fn refused_refresh(state: &AppState) -> Response {
    (
        [(header::SET_COOKIE, refresh_cookie(state, None))],
        ApiError::Unauthorized(BAD_REFRESH),
    )
        .into_response()
}

/// Signs an access token for `user`, mints a refresh token in family `family` (a new one when
/// `None`, i.e. on login) and builds the response.
async fn session_response(
    state: &AppState,
    user: &User,
    family: Option<&str>,
) -> Result<Response, ApiError> {
    let access = state.tokens.issue_access(user.id, user.role)?;
    let refresh = state.tokens.new_refresh();
    if family.is_none() {
        let now = Utc::now();
        let grant = RefreshGrant {
            family_id: Id::new(),
            user_id: user.id,
            token_hash: refresh.hash,
            issued_at: now,
            expires_at: now + state.tokens.refresh_ttl(),
        };
        state.store.create_family(&grant).await?;
    }
    let body = TokenResponse {
        access_token: access.token,
        token_type: "Bearer",
        expires_in: access.expires_in,
        refresh_token: refresh.token.clone(),
        user: UserDto::from(user),
    };
    Ok((
        [
            (
                header::SET_COOKIE,
                refresh_cookie(state, Some(&refresh.token)),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        Json(body),
    )
        .into_response())
}

/// Creates a customer account.
#[utoipa::path(post, path = "/api/auth/register", tag = "auth", request_body = RegisterRequest,
    responses(
        (status = 201, description = "Registered", body = RegisterResponse),
        (status = 409, description = "E-mail or username taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn register(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<RegisterRequest>,
) -> Result<(StatusCode, Json<RegisterResponse>), ApiError> {
    let mut errors = FieldErrors::new();
    let username = errors.check("username", Username::parse(&req.username));
    let email = errors.check("email", Email::parse(&req.email));
    let password = errors.check("password", Password::parse(&req.password));
    errors.finish()?;
    let (Some(username), Some(email), Some(password)) = (username, email, password) else {
        return Err(ApiError::internal(anyhow::anyhow!(
            "register: parsed fields missing"
        )));
    };
    let user = User {
        id: Id::new(),
        username,
        email,
        password_hash: state.passwords.hash(&password).await?,
        role: Role::Customer,
        created_at: super::now(),
    };
    state.store.create_user(&user).await?;
    tracing::info!(user_id = %user.id, "user registered");
    Ok((
        StatusCode::CREATED,
        Json(RegisterResponse {
            user: UserDto::from(&user),
        }),
    ))
}

/// Exchanges e-mail and password for an access and a refresh token.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in; the refresh token is also set as a cookie", body = TokenResponse),
        (status = 401, description = "Wrong e-mail or password", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn login(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<LoginRequest>,
) -> Result<Response, ApiError> {
    let user = match Email::parse_known(&req.email) {
        Ok(email) => state.store.user_by_email(email.as_str()).await?,
        Err(_) => None,
    };
    // Verify even when there is no such user (against a dummy hash), so both cost the same.
    let verified = state
        .passwords
        .verify(
            &req.password,
            user.as_ref().map(|u| u.password_hash.as_str()),
        )
        .await?;
    match user {
        Some(user) if verified => {
            tracing::info!(user_id = %user.id, "user signed in");
            session_response(&state, &user, None).await
        }
        _ => Err(ApiError::Unauthorized(BAD_CREDENTIALS)),
    }
}

/// Rotates a refresh token (from the body or the cookie) into a new token pair.
#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth", request_body(content = Option<RefreshRequest>,
        description = "Optional: the refresh token, when not sent as the cookie"),
    responses(
        (status = 200, description = "Rotated", body = TokenResponse),
        (status = 401, description = "Invalid, expired, revoked or reused refresh token (reuse revokes the family)",
            body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    headers: HeaderMap,
    MaybeJsonBody(body): MaybeJsonBody<RefreshRequest>,
) -> Result<Response, ApiError> {
    let presented = body
        .map(|b| b.refresh_token)
        .or_else(|| cookie_token(&headers));
    let Some(hash) = presented.as_deref().and_then(refresh_hash) else {
        return Ok(refused_refresh(&state));
    };
    let next = state.tokens.new_refresh();
    let now = Utc::now();
    let outcome = state
        .store
        .rotate_refresh(hash, next.hash, now, now + state.tokens.refresh_ttl())
        .await?;
    let user_id = match outcome {
        RotateOutcome::Rotated { user_id, .. } => user_id,
        RotateOutcome::Reused { family_id } => {
            tracing::warn!(%family_id, "a rotated refresh token was presented again; its family is revoked");
            return Ok(refused_refresh(&state));
        }
        RotateOutcome::Invalid => return Ok(refused_refresh(&state)),
    };
    let Some(user) = state.store.user_by_id(user_id).await? else {
        return Ok(refused_refresh(&state));
    };
    let access = state.tokens.issue_access(user.id, user.role)?;
    let body = TokenResponse {
        access_token: access.token,
        token_type: "Bearer",
        expires_in: access.expires_in,
        refresh_token: next.token.clone(),
        user: UserDto::from(&user),
    };
    Ok((
        [
            (
                header::SET_COOKIE,
                refresh_cookie(&state, Some(&next.token)),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        Json(body),
    )
        .into_response())
}

/// Revokes the refresh-token family of the presented token and clears the cookie.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", request_body(content = Option<RefreshRequest>,
        description = "Optional: the refresh token, when not sent as the cookie"),
    responses((status = 204, description = "Signed out (also when the token was unknown)")))]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    MaybeJsonBody(body): MaybeJsonBody<RefreshRequest>,
) -> Result<Response, ApiError> {
    let presented = body
        .map(|b| b.refresh_token)
        .or_else(|| cookie_token(&headers));
    if let Some(hash) = presented.as_deref().and_then(refresh_hash) {
        state.store.revoke_family_of(hash).await?;
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, refresh_cookie(&state, None))],
    )
        .into_response())
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/auth/me", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "The user", body = UserDto),
        (status = 401, description = "Missing or invalid access token", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn me(State(state): State<AppState>, user: AuthUser) -> Result<Json<UserDto>, ApiError> {
    let stored = state
        .store
        .user_by_id(user.id)
        .await?
        .ok_or(ApiError::Unauthorized(super::extract::INVALID_TOKEN))?;
    Ok(Json(UserDto::from(&stored)))
}

/// The auth routes in the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(register, login, refresh, logout, me),
    components(schemas(
        RegisterRequest,
        LoginRequest,
        RefreshRequest,
        UserDto,
        RegisterResponse,
        TokenResponse
    ))
)]
pub struct AuthApi;
