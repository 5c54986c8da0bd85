//! The HTTP API: [`router`] merges one `router()` per resource module and wraps them in the
//! middleware every request passes through, outermost first:
//!
//! 1. request id: `x-request-id` is taken from the client or generated (UUID v4), recorded on
//!    the request's tracing span and echoed on the response;
//! 2. tracing of every request and response;
//! 3. panics caught → 500 problem;
//! 4. bare error responses (axum's empty 404/405, the timeout's 503) rewritten as problems;
//! 5. a per-request timeout (`http.request_timeout_ms`) → 503;
//! 6. a 64 KiB body limit → 413 (a route may raise its own with `DefaultBodyLimit`);
//! 7. per route: request count and latency metrics; on the order routes, load shedding
//!    ([`admission`]: 503 `overloaded` with `Retry-After` when too many order writes are in
//!    flight).

pub mod admin_delivery;
pub mod admin_orders;
pub mod admin_outbox;
pub mod admin_plugin_stats;
pub mod admin_plugin_trials;
pub mod admin_plugins;
pub mod admission;
pub mod auth;
pub mod client_ip;
pub mod console;
pub mod error;
pub mod extract;
pub mod health;
pub mod metrics;
pub mod openapi;
pub mod orders;
pub mod products;
pub mod rate_limit;
pub mod readiness;
pub mod state;

use std::any::Any;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

pub use error::{ApiError, FieldError, Problem};
pub use state::AppState;

/// Largest request body accepted by default, in bytes.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Header carrying the request id.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole API with its middleware, ready to serve.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .merge(auth::router(&state))
        .merge(products::router())
        .merge(orders::router().route_layer(middleware::from_fn_with_state(
            admission::Admission::new(&state.settings.http, state.delivery.clone()),
            admission::admit,
        )))
        .merge(admin_plugins::router())
        .merge(admin_plugin_trials::router())
        .merge(admin_outbox::router())
        .merge(admin_plugin_stats::router())
        .merge(admin_delivery::router())
        .merge(admin_orders::router())
        .merge(console::router())
        .merge(health::router(true));
    finish(routes, state)
}

/// Only the operational routes (health, readiness, metrics, the OpenAPI document), with
/// state and the common middleware, for a process that does not play the `api` role.
/// `processor_route`: see [`health::router`].
pub fn operational_router(state: AppState, processor_route: bool) -> Router {
    finish(health::router(processor_route), state)
}

/// `routes` plus the OpenAPI document, with per-route metrics, the problem+json fallbacks,
/// `state` and the middleware stack.
fn finish(routes: Router<AppState>, state: AppState) -> Router {
    let timeout = state.settings.http.request_timeout();
    let routes = routes
        .merge(openapi::router())
        .route_layer(middleware::from_fn(metrics::track))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state);
    with_middleware(routes, timeout)
}

/// Wraps `routes` in the middleware stack described in the module doc (all but the
/// per-route metrics).
pub fn with_middleware(routes: Router, timeout: std::time::Duration) -> Router {
    routes.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
            .layer(
                TraceLayer::new_for_http()
                    .on_response(DefaultOnResponse::new().level(tracing::Level::INFO))
                    .make_span_with(|req: &Request| {
                        let request_id = req
                            .headers()
                            .get(REQUEST_ID)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("-");
                        tracing::info_span!(
                            "request",
                            method = %req.method(),
                            path = %req.uri().path(),
                            request_id = %request_id,
                        )
                    }),
            )
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(CatchPanicLayer::custom(panic_response))
            .layer(middleware::from_fn(problem_for_bare_errors))
            .layer(TimeoutLayer::with_status_code(
                StatusCode::SERVICE_UNAVAILABLE,
                timeout,
            ))
            .layer(DefaultBodyLimit::max(BODY_LIMIT)),
    )
}

/// The current time at millisecond precision, the finest every storage backend keeps, so a
/// response built from it equals what a later read returns.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 3)
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::NotFound
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("non-string panic payload");
    ApiError::internal(anyhow::anyhow!("handler panicked: {message}")).into_response()
}

/// Rewrites error responses that carry no body type (axum's own 404/405/413, the timeout's
/// 503) as problem documents, so every error a client sees has the same shape.
async fn problem_for_bare_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_error = status.is_client_error() || status.is_server_error();
    if !is_error || response.headers().contains_key(header::CONTENT_TYPE) {
        return response;
    }
    let problem = match status {
        StatusCode::NOT_FOUND => ApiError::NotFound.problem(),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed.problem(),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge.problem(),
        StatusCode::SERVICE_UNAVAILABLE => ApiError::Unavailable {
            code: "timeout",
            detail: "the request took too long and was abandoned".to_owned(),
        }
        .problem(),
        other => {
            let reason = other.canonical_reason().unwrap_or("Error").to_owned();
            Problem {
                problem_type: format!("{}http-{}", error::PROBLEM_TYPE_PREFIX, other.as_u16()),
                title: reason.clone(),
                status: other.as_u16(),
                detail: reason,
                errors: vec![],
            }
        }
    };
    let (parts, _) = response.into_parts();
    let mut rewritten = error::problem_response(status, &problem);
    for (name, value) in &parts.headers {
        if name != header::CONTENT_LENGTH {
            rewritten
                .headers_mut()
                .entry(name)
                .or_insert_with(|| value.clone());
        }
    }
    rewritten
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    async fn boom() -> &'static str {
        panic!("secret detail")
    }

    fn app() -> Router {
        let routes = Router::new()
            .route("/fast", get(|| async { "done" }))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "too late"
                }),
            )
            .route("/panic", get(boom))
            .fallback(not_found);
        with_middleware(routes, Duration::from_secs(1))
    }

    async fn call(path: &str) -> (StatusCode, Option<String>, String) {
        let response = app()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (
            status,
            content_type,
            String::from_utf8(bytes.to_vec()).unwrap(),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_within_the_timeout_is_served_and_one_beyond_it_is_a_503_problem() {
        assert_eq!(call("/fast").await.0, StatusCode::OK);
        let (status, content_type, body) = call("/slow").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(content_type.as_deref(), Some(error::PROBLEM_JSON));
        assert!(body.contains("urn:orderd:problem:timeout"), "{body}");
    }

    #[tokio::test]
    async fn a_panicking_handler_becomes_a_500_problem_without_its_message() {
        let (status, content_type, body) = call("/panic").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(content_type.as_deref(), Some(error::PROBLEM_JSON));
        assert!(body.contains("urn:orderd:problem:internal"), "{body}");
        assert!(!body.contains("secret"), "{body}");
    }
}
