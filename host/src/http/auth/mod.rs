//! Authentication routes under `/api/auth`: register, login, refresh, logout, logout-all, me.
//!
//! Login and refresh answer `{accessToken, tokenType, expiresIn, refreshToken, user}` and set
//! the refresh token as an `HttpOnly; SameSite=Strict; Path=/api/auth` cookie (`Secure` unless
//! `http.plain_http_cookies`). Refresh and logout take the token from a `{refreshToken}` body
//! or from that cookie; a token that cannot be one of ours is refused before the store is
//! asked. Every refresh rotates the token; presenting the rotated one again within
//! `auth.refresh_grace_ms` (two tabs, a client retry) yields the same successor, and after
//! that revokes the whole family. `logout-all` ends every session of the caller at once.
//!
//! Limits (see `rate_limit`): login and register share a per-client-address bucket, refresh
//! and logout another; failed logins of one account wait longer and longer.

mod dto;
pub use dto::*;

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use super::error::{ApiError, FieldErrors, Problem};
use super::extract::{CurrentUser, JsonBody, MaybeJsonBody};
use super::rate_limit::per_client;
use super::state::AppState;
use crate::auth::tokens::refresh_hash;
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

/// Routes under `/api/auth`; login and register share a per-client rate limit, refresh and
/// logout another.
pub fn router(state: &AppState) -> Router<AppState> {
    let settings = &state.settings;
    let limits = &settings.rate_limit;
    let client_ip = &state.limits.client_ip;
    let sign_in = Router::new()
        .route("/api/auth/register", post(register))
        .route("/api/auth/login", post(login));
    let sessions = Router::new()
        .route("/api/auth/refresh", post(refresh))
        .route("/api/auth/logout", post(logout));
    Router::new()
        .route("/api/auth/me", get(me))
        .route("/api/auth/logout-all", post(logout_all))
        .merge(per_client(
            sign_in,
            settings,
            limits.replenish_ms,
            limits.burst,
            client_ip,
        ))
        .merge(per_client(
            sessions,
            settings,
            limits.session_replenish_ms,
            limits.session_burst,
            client_ip,
        ))
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
/// Signs an access token for `user` under `token_version`, starts a refresh-token family and
/// builds the login response.
async fn session_response(
    state: &AppState,
    user: &User,
    token_version: u64,
) -> Result<Response, ApiError> {
    let refresh = state.tokens.new_refresh();
    let now = Utc::now();
    let grant = RefreshGrant {
        family_id: Id::new(),
        user_id: user.id,
        token_hash: refresh.hash,
        issued_at: now,
        expires_at: now + state.tokens.refresh_ttl(),
    };
    state.store.create_family(&grant).await?;
    token_response(state, user, token_version, &refresh.token)
}

/// The token pair answer for `user`: a fresh access token and `refresh_token`, also set as the
/// cookie.
fn token_response(
    state: &AppState,
    user: &User,
    token_version: u64,
    refresh_token: &str,
) -> Result<Response, ApiError> {
    let access = state
        .tokens
        .issue_access_versioned(user.id, user.role, token_version)?;
    let body = TokenResponse {
        access_token: access.token,
        token_type: "Bearer",
        expires_in: access.expires_in,
        refresh_token: refresh_token.to_owned(),
        user: UserDto::from(user),
    };
    Ok((
        [
            (
                header::SET_COOKIE,
                refresh_cookie(state, Some(refresh_token)),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        Json(body),
    )
        .into_response())
}

/// The user's current token version (0 if the user vanished meanwhile: their tokens then
/// fail every check that reads the store anyway).
async fn token_version(state: &AppState, user: Id) -> Result<u64, ApiError> {
    Ok(state
        .store
        .session_state(user)
        .await?
        .map_or(0, |s| s.token_version))
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
        (status = 429, description = "Rate limited: this client sent too many, or this account failed too many logins in a row (`Retry-After` says how long to wait)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn login(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<LoginRequest>,
) -> Result<Response, ApiError> {
    // Only an address that parses can name an account, so only those are throttled (and kept
    // in memory); the per-client limit covers the rest.
    let email = Email::parse_known(&req.email).ok();
    let throttle = state.limits.logins.as_ref().zip(email.as_ref());
    if let Some((throttle, email)) = throttle
        && let Err(wait) = throttle.check(email.as_str(), Instant::now())
    {
        tracing::info!(
            wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            "login refused: the account failed too many logins in a row"
        );
        return Err(ApiError::TooManyRequests {
            retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
        });
    }
    let user = match &email {
        Some(email) => state.store.user_by_email(email.as_str()).await?,
        None => None,
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
            if let Some((throttle, email)) = throttle {
                throttle.succeeded(email.as_str());
            }
            tracing::info!(user_id = %user.id, "user signed in");
            upgrade_password_hash(&state, &user, &req.password).await;
            let version = token_version(&state, user.id).await?;
            session_response(&state, &user, version).await
        }
        _ => {
            if let Some((throttle, email)) = throttle {
                throttle.failed(email.as_str(), Instant::now());
            }
            Err(ApiError::Unauthorized(BAD_CREDENTIALS))
        }
    }
}

/// Replaces a legacy (bcrypt) hash with an argon2id hash of the password the user just proved.
/// A failure leaves the legacy hash working: it is logged and counted, and the next login
/// tries again, rather than refusing a login whose password was right.
async fn upgrade_password_hash(state: &AppState, user: &User, password: &str) {
    if !crate::auth::password::needs_upgrade(&user.password_hash) {
        return;
    }
    let outcome = match state.passwords.rehash(password).await {
        Ok(new_hash) => match state
            .store
            .replace_password_hash(user.id, &user.password_hash, &new_hash)
            .await
        {
            Ok(true) => "upgraded",
            Ok(false) => "changed-meanwhile",
            Err(err) => {
                tracing::warn!(user_id = %user.id, error = %err, "Failed to store the upgraded password hash");
                "error"
            }
        },
        Err(err) => {
            tracing::warn!(user_id = %user.id, error = format!("{err:#}"), "Failed to hash a password for its upgrade");
            "error"
        }
    };
    tracing::info!(user_id = %user.id, outcome, "legacy password hash upgrade");
    metrics::counter!("orderd_password_upgrades_total", "outcome" => outcome).increment(1);
}

/// Rotates a refresh token (from the body or the cookie) into a new token pair.
#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth", request_body(content = Option<RefreshRequest>,
        description = "Optional: the refresh token, when not sent as the cookie"),
    responses(
        (status = 200, description = "Rotated", body = TokenResponse),
        (status = 401, description = "Invalid, expired, revoked or reused refresh token (reuse after the grace window revokes the family)",
            body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    headers: HeaderMap,
    MaybeJsonBody(body): MaybeJsonBody<RefreshRequest>,
) -> Result<Response, ApiError> {
    let presented = body
        .map(|b| b.refresh_token)
        .or_else(|| cookie_token(&headers));
    // A token that cannot be one of ours never reaches the store.
    let Some((hash, next)) = presented
        .as_deref()
        .and_then(|t| refresh_hash(t).zip(state.tokens.successor_of(t)))
    else {
        return Ok(refused_refresh(&state));
    };
    let now = Utc::now();
    let grace = Duration::from_millis(state.settings.auth.refresh_grace_ms);
    let outcome = state
        .store
        .rotate_refresh_with_grace(
            hash,
            next.hash,
            now,
            now + state.tokens.refresh_ttl(),
            grace,
        )
        .await?;
    let user_id = match outcome {
        RotateOutcome::Rotated { user_id, .. } => user_id,
        RotateOutcome::Reused { family_id } => {
            tracing::warn!(%family_id, "a rotated refresh token was presented again after its grace window; its family is revoked");
            return Ok(refused_refresh(&state));
        }
        RotateOutcome::Invalid => return Ok(refused_refresh(&state)),
    };
    let (user, session) = futures::try_join!(
        state.store.user_by_id(user_id),
        state.store.session_state(user_id)
    )?;
    let (Some(user), Some(session)) = (user, session) else {
        return Ok(refused_refresh(&state));
    };
    token_response(&state, &user, session.token_version, &next.token)
}

/// Revokes the refresh-token family of the presented token and clears the cookie.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", request_body(content = Option<RefreshRequest>,
        description = "Optional: the refresh token, when not sent as the cookie"),
    responses(
        (status = 204, description = "Signed out (also when the token was unknown)"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ))]
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
pub async fn me(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<Json<UserDto>, ApiError> {
    let stored = state
        .store
        .user_by_id(user.id)
        .await?
        .ok_or(ApiError::Unauthorized(super::extract::INVALID_TOKEN))?;
    Ok(Json(UserDto::from(&stored)))
}

/// Signs the caller out everywhere at once: every refresh token of the account is revoked and
/// every access token issued so far is refused wherever tokens are checked against the store
/// (admin tokens on every route; `/api/auth/me`; this route).
#[utoipa::path(post, path = "/api/auth/logout-all", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 204, description = "Every session of the account is ended"),
        (status = 401, description = "Missing or invalid access token", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn logout_all(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<Response, ApiError> {
    let version = match state.store.end_sessions(user.id, Utc::now()).await {
        Ok(version) => version,
        Err(crate::storage::StoreError::NotFound) => {
            return Err(ApiError::Unauthorized(super::extract::INVALID_TOKEN));
        }
        Err(err) => return Err(err.into()),
    };
    tracing::info!(user_id = %user.id, token_version = version, "signed out everywhere");
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, refresh_cookie(&state, None))],
    )
        .into_response())
}

/// The auth routes in the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(register, login, refresh, logout, logout_all, me),
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
