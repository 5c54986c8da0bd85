//! The one error type of the HTTP layer, [`ApiError`], and its RFC 9457
//! `application/problem+json` rendering.
//!
//! Every problem carries a stable `type` of the form `urn:orderd:problem:<code>` that clients
//! branch on, a short `title`, the `status`, a human `detail`, and `errors: [{field, code,
//! message}]` naming the fields at fault (empty when no field is). Internal errors are logged
//! with their whole cause chain; the client only ever sees a generic text.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::password::HashQueueFull;
pub use crate::domain::FieldError;
use crate::domain::{Id, ParseError};
use crate::storage::{Conflict, StoreError};

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Prefix of every problem `type`; the code after it is stable and kebab-case.
pub const PROBLEM_TYPE_PREFIX: &str = "urn:orderd:problem:";

/// An RFC 9457 problem document, as sent to clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// `urn:orderd:problem:<code>`; stable, for branching.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// Short summary of the problem type.
    pub title: String,
    /// The HTTP status code, repeated for convenience.
    pub status: u16,
    /// What happened in this occurrence.
    pub detail: String,
    /// The fields at fault; empty when the problem is not about a particular field.
    #[serde(default)]
    pub errors: Vec<FieldError>,
}

/// Everything a handler can fail with. Each variant's doc names its HTTP status and problem
/// code; build them with the constructors below where one exists.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 `malformed-json`: the body is not syntactically valid JSON.
    #[error("malformed JSON body: {0}")]
    MalformedJson(String),
    /// 400 `bad-request`: some other part of the request (a header) is unusable.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 401 `unauthorized`: missing, malformed, expired, forged or revoked credentials. The
    /// string is the client-facing detail; it never says which credential part was wrong.
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    /// 403 `forbidden`: authenticated, but the role does not allow this.
    #[error("forbidden")]
    Forbidden,
    /// 404 `not-found`: no such resource, or one the caller may not see.
    #[error("not found")]
    NotFound,
    /// 405 `method-not-allowed`.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409 with `code` (`conflict`, `invalid-state`, `insufficient-stock`, …): the request is
    /// valid but clashes with the current state.
    #[error("conflict ({code}): {detail}")]
    Conflict {
        code: &'static str,
        detail: String,
        errors: Vec<FieldError>,
    },
    /// 413 `payload-too-large`: the body exceeds the route's limit.
    #[error("payload too large")]
    PayloadTooLarge,
    /// 415 `unsupported-media-type`: the body is not of the expected media type.
    #[error("unsupported media type, expected {0}")]
    UnsupportedMediaType(&'static str),
    /// 422 `validation`: the body parsed but fields are missing, unknown, of the wrong type
    /// or out of range. Lists every field at fault.
    #[error("validation failed: {0:?}")]
    Validation(Vec<FieldError>),
    /// 422 with a code of its own (`unknown-products`, `rule-violation`,
    /// `idempotency-key-reused`, `plugin-rejected`, …).
    #[error("unprocessable ({code}): {detail}")]
    Unprocessable {
        code: &'static str,
        detail: String,
        errors: Vec<FieldError>,
    },
    /// 429 `rate-limited`, with a `Retry-After` header of `retry_after_secs`.
    #[error("rate limited")]
    TooManyRequests { retry_after_secs: u64 },
    /// 429 with a code of its own (`too-many-open-orders`): a per-user cap is reached; it
    /// frees up through the user's own progress, not with time, so there is no `Retry-After`.
    #[error("limit reached ({code}): {detail}")]
    LimitReached {
        code: &'static str,
        detail: String,
        errors: Vec<FieldError>,
    },
    /// 503 with `code` (`unavailable`, `plugin-unavailable`, …): a dependency is down; the
    /// detail is client-safe.
    #[error("unavailable ({code}): {detail}")]
    Unavailable { code: &'static str, detail: String },
    /// 503 `overloaded`, with a `Retry-After` header of `retry_after_secs`: the server is
    /// at capacity and refused the request before doing any of it.
    #[error("overloaded")]
    Overloaded { retry_after_secs: u64 },
    /// 500 `internal`: a bug or backend failure. Logged with its cause chain; the client sees
    /// a generic text only.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// 422 `validation` for one field.
    pub fn invalid(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ApiError::Validation(vec![FieldError::new(field, code, message)])
    }

    /// 422 `validation` for one field from a domain parse failure.
    pub fn from_parse(field: impl Into<String>, err: ParseError) -> Self {
        ApiError::Validation(vec![FieldError::from_parse(field, err)])
    }

    /// 409 `conflict` naming the field whose value is already taken ("email", "sku").
    pub fn taken(field: &str) -> Self {
        ApiError::Conflict {
            code: "conflict",
            detail: format!("a resource with this {field} already exists"),
            errors: vec![FieldError::new(field, "taken", "is already taken")],
        }
    }

    /// 409 `insufficient-stock` listing every product that is short.
    pub fn insufficient_stock(ids: &[Id]) -> Self {
        ApiError::Conflict {
            code: "insufficient-stock",
            detail: "some products do not have enough stock; nothing was ordered".to_owned(),
            errors: ids
                .iter()
                .map(|id| {
                    FieldError::new(
                        "items",
                        "insufficient-stock",
                        format!("product {id} does not have enough stock"),
                    )
                })
                .collect(),
        }
    }

    /// 500 `internal` from anything that converts into `anyhow::Error`.
    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(err.into())
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MalformedJson(_) | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Validation(_) | ApiError::Unprocessable { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::TooManyRequests { .. } | ApiError::LimitReached { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::Unavailable { .. } | ApiError::Overloaded { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The client-facing problem document of this error.
    pub fn problem(&self) -> Problem {
        let (code, detail, errors): (&str, String, Vec<FieldError>) = match self {
            ApiError::MalformedJson(msg) => (
                "malformed-json",
                format!("the request body is not valid JSON: {msg}"),
                vec![],
            ),
            ApiError::BadRequest(msg) => ("bad-request", msg.clone(), vec![]),
            ApiError::Unauthorized(msg) => ("unauthorized", (*msg).to_owned(), vec![]),
            ApiError::Forbidden => (
                "forbidden",
                "you are not allowed to do this".to_owned(),
                vec![],
            ),
            ApiError::NotFound => ("not-found", "no such resource".to_owned(), vec![]),
            ApiError::MethodNotAllowed => (
                "method-not-allowed",
                "this method is not allowed on this resource".to_owned(),
                vec![],
            ),
            ApiError::Conflict {
                code,
                detail,
                errors,
            } => (code, detail.clone(), errors.clone()),
            ApiError::PayloadTooLarge => (
                "payload-too-large",
                "the request body is too large".to_owned(),
                vec![],
            ),
            ApiError::UnsupportedMediaType(expected) => (
                "unsupported-media-type",
                format!("the request body must be sent as {expected}"),
                vec![],
            ),
            ApiError::Validation(errors) => (
                "validation",
                "the request is invalid; see errors".to_owned(),
                errors.clone(),
            ),
            ApiError::Unprocessable {
                code,
                detail,
                errors,
            } => (code, detail.clone(), errors.clone()),
            ApiError::TooManyRequests { retry_after_secs } => (
                "rate-limited",
                format!("too many requests; retry in {retry_after_secs} s"),
                vec![],
            ),
            ApiError::LimitReached {
                code,
                detail,
                errors,
            } => (code, detail.clone(), errors.clone()),
            ApiError::Unavailable { code, detail } => (code, detail.clone(), vec![]),
            ApiError::Overloaded { retry_after_secs } => (
                "overloaded",
                format!("the server is at capacity; retry in {retry_after_secs} s"),
                vec![],
            ),
            ApiError::Internal(_) => (
                "internal",
                "an internal error occurred; it has been logged".to_owned(),
                vec![],
            ),
        };
        let status = self.status();
        Problem {
            problem_type: format!("{PROBLEM_TYPE_PREFIX}{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            errors,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(err) = &self {
            tracing::error!(error = ?err, "request failed with an internal error");
        }
        let mut response = problem_response(self.status(), &self.problem());
        if let ApiError::TooManyRequests { retry_after_secs }
        | ApiError::Overloaded { retry_after_secs } = self
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        response
    }
}

/// A `application/problem+json` response with `status` and `problem` as its body.
pub fn problem_response(status: StatusCode, problem: &Problem) -> Response {
    let mut response = (status, Json(problem)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    response
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => ApiError::NotFound,
            StoreError::Conflict(conflict) => match conflict {
                Conflict::OrderStatus(_) | Conflict::OutboxStatus(_) => ApiError::Conflict {
                    code: "invalid-state",
                    detail: format!(
                        "not allowed while the resource is {}",
                        conflict.current_status().unwrap_or_default()
                    ),
                    errors: vec![],
                },
                Conflict::Taken(field) => ApiError::taken(field.as_str()),
                Conflict::IdempotencyKeyTaken => ApiError::taken("idempotency-key"),
                Conflict::OpenOrders | Conflict::Changed(_) => ApiError::Conflict {
                    code: "conflict",
                    detail: conflict.to_string(),
                    errors: vec![],
                },
            },
            StoreError::InsufficientStock(ids) => ApiError::insufficient_stock(&ids),
            StoreError::Backend(cause) => {
                ApiError::Internal(cause.context("storage backend failed"))
            }
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        if err.downcast_ref::<HashQueueFull>().is_some() {
            return ApiError::Overloaded {
                retry_after_secs: 1,
            };
        }
        ApiError::Internal(err)
    }
}

/// Collects field errors from several parses, so one response lists every field at fault.
#[derive(Debug, Default)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the error of `result` under `field` and returns its value, if any.
    pub fn check<T>(&mut self, field: &str, result: Result<T, ParseError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(err) => {
                self.0.push(FieldError::from_parse(field, err));
                None
            }
        }
    }

    /// Records an error directly.
    pub fn push(&mut self, error: FieldError) {
        self.0.push(error);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when nothing was recorded, else a 422 `validation` listing every error.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::OrderStatus;
    use crate::storage::UniqueField;

    #[test]
    fn a_backend_failure_becomes_a_500_whose_body_hides_the_cause() {
        let err: ApiError =
            StoreError::backend(anyhow::anyhow!("disk /secret/path is full")).into();
        assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_string(&err.problem()).unwrap();
        assert!(!body.contains("secret"), "{body}");
        assert!(body.contains("urn:orderd:problem:internal"));
    }

    #[test]
    fn store_conflicts_name_the_taken_field_or_the_current_state() {
        let taken: ApiError = StoreError::Conflict(Conflict::Taken(UniqueField::Sku)).into();
        let p = taken.problem();
        assert_eq!(
            (p.status, p.problem_type.as_str()),
            (409, "urn:orderd:problem:conflict")
        );
        assert_eq!(p.errors[0].field, "sku");
        let state: ApiError =
            StoreError::Conflict(Conflict::OrderStatus(OrderStatus::Processed)).into();
        assert_eq!(
            state.problem().problem_type,
            "urn:orderd:problem:invalid-state"
        );
    }

    #[test]
    fn insufficient_stock_lists_every_short_product() {
        let ids = [Id::new(), Id::new()];
        let p = ApiError::from(StoreError::InsufficientStock(ids.to_vec())).problem();
        assert_eq!(p.status, 409);
        assert_eq!(p.errors.len(), 2);
        assert!(p.errors[1].message.contains(&ids[1].to_hex()));
    }

    #[test]
    fn field_errors_collect_every_failure() {
        let mut errors = FieldErrors::new();
        assert_eq!(errors.check("a", Ok::<_, ParseError>(1)), Some(1));
        assert_eq!(
            errors.check::<i32>("b", Err(ParseError::new("too-short", "x"))),
            None
        );
        match errors.finish() {
            Err(ApiError::Validation(list)) => assert_eq!(list[0].field, "b"),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }
}
