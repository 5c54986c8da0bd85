//! The OpenAPI document served at `/openapi.json`: a base document (info, bearer security
//! scheme, the problem schema) merged with one `#[derive(OpenApi)]` struct per resource module,
//! each listing that module's `#[utoipa::path]` handlers and schemas. A new resource adds one
//! `merge` line to [`document`].

use std::sync::OnceLock;

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::error::{FieldError, Problem};
use super::state::AppState;

/// The route serving the document.
pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(openapi_json))
}

/// This API's OpenAPI 3.1 document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json")))]
pub async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document_json(),
    )
        .into_response()
}

/// The document's own route in the document.
#[derive(OpenApi)]
#[openapi(paths(openapi_json))]
struct DocumentApi;

/// Adds the `bearer` security scheme that authenticated paths refer to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("JWT".to_owned());
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "orderd",
        description = "Order processing whose tax, validation and e-mail rules are WebAssembly components. \
            Errors are RFC 9457 `application/problem+json` documents with a stable `type` \
            (`urn:orderd:problem:<code>`) and `errors: [{field, code, message}]`.",
    ),
    modifiers(&BearerAuth),
    components(schemas(Problem, FieldError)),
)]
struct BaseApi;

/// The whole document.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = BaseApi::openapi();
    doc.merge(super::auth::AuthApi::openapi());
    doc.merge(super::products::ProductsApi::openapi());
    doc.merge(super::orders::OrdersApi::openapi());
    doc.merge(super::admin_plugins::AdminPluginsApi::openapi());
    doc.merge(super::admin_plugin_trials::AdminPluginTrialsApi::openapi());
    doc.merge(super::admin_outbox::AdminOutboxApi::openapi());
    doc.merge(super::admin_plugin_stats::AdminPluginStatsApi::openapi());
    doc.merge(super::admin_delivery::AdminDeliveryApi::openapi());
    doc.merge(super::admin_orders::AdminOrdersApi::openapi());
    doc.merge(super::console::ConsoleApi::openapi());
    doc.merge(super::health::HealthApi::openapi());
    doc.merge(DocumentApi::openapi());
    doc
}

/// The document as JSON, rendered once per process.
pub fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        document()
            .to_pretty_json()
            .unwrap_or_else(|_| "{}".to_owned())
    })
}
