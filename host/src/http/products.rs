//! Catalog routes under `/api/products`: anyone may list and read products; admins create
//! and change them. Prices are integer minor units of the product's currency.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::error::{ApiError, FieldError, FieldErrors, Problem};
use super::extract::{AdminUser, IdPath, JsonBody, QueryParams, parse_id};
use super::state::AppState;
use crate::domain::money::parse_price;
use crate::domain::product::{
    parse_category, parse_description, parse_name, parse_sku, parse_stock,
};
use crate::domain::{Currency, Id, PageLimit, Product, ProductPatch};

/// Page size when `limit` is not given.
pub const DEFAULT_LIMIT: u32 = 20;
/// Largest page size.
pub const MAX_LIMIT: u32 = 100;

/// A product as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductDto {
    /// 24-hex id.
    pub id: String,
    pub name: String,
    pub sku: String,
    pub description: Option<String>,
    pub category: String,
    /// Price of one unit in minor units of `currency`.
    pub price: i64,
    /// ISO 4217 code.
    pub currency: String,
    pub stock: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Product> for ProductDto {
    fn from(p: &Product) -> Self {
        Self {
            id: p.id.to_hex(),
            name: p.name.clone(),
            sku: p.sku.clone(),
            description: p.description.clone(),
            category: p.category.clone(),
            price: p.price,
            currency: p.currency.as_str().to_owned(),
            stock: p.stock,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// A page of products.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductPage {
    pub items: Vec<ProductDto>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// `GET /api/products` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page size, 1–100 (default 20).
    pub limit: Option<i64>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

/// `POST /api/products` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateProduct {
    /// 1–200 characters of any script.
    pub name: String,
    /// 1–64 characters of `[A-Za-z0-9._-]`, unique.
    pub sku: String,
    /// At most 2000 characters.
    #[serde(default)]
    pub description: Option<String>,
    /// 1–64 characters of `[a-z0-9_-]`, lower-cased.
    pub category: String,
    /// Minor units, 0–10^12.
    pub price: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// 0–10^9.
    pub stock: i64,
}

/// `PATCH /api/products/{id}` body: the fields to change (at least one).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PatchProduct {
    pub name: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub price: Option<i64>,
    pub stock: Option<i64>,
}

/// Routes under `/api/products`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/products", get(list_products).post(create_product))
        .route("/api/products/{id}", get(get_product).patch(patch_product))
}

/// Lists products in id order, a page at a time.
#[utoipa::path(get, path = "/api/products", tag = "products", params(ListQuery),
    responses(
        (status = 200, description = "A page of products", body = ProductPage),
        (status = 422, description = "Invalid limit or cursor", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_products(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<ProductPage>, ApiError> {
    let limit = PageLimit::parse(query.limit, DEFAULT_LIMIT, MAX_LIMIT)
        .map_err(|e| ApiError::from_parse("limit", e))?;
    let after = query
        .cursor
        .as_deref()
        .map(|c| parse_id("cursor", c))
        .transpose()?;
    // One extra row tells whether there is a next page.
    let mut products = state.store.list_products(after, limit.probe()).await?;
    let more = products.len() > limit.get() as usize;
    products.truncate(limit.get() as usize);
    let next_cursor = if more {
        products.last().map(|p| p.id.to_hex())
    } else {
        None
    };
    Ok(Json(ProductPage {
        items: products.iter().map(ProductDto::from).collect(),
        next_cursor,
    }))
}

/// One product.
#[utoipa::path(get, path = "/api/products/{id}", tag = "products",
    params(("id" = String, Path, description = "24-hex product id")),
    responses(
        (status = 200, description = "The product", body = ProductDto),
        (status = 404, description = "No such product", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Malformed id", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_product(
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> Result<Json<ProductDto>, ApiError> {
    let product = state.store.product(id).await?.ok_or(ApiError::NotFound)?;
    Ok(Json(ProductDto::from(&product)))
}

/// Adds a product to the catalog (admin).
#[utoipa::path(post, path = "/api/products", tag = "products", security(("bearer" = [])),
    request_body = CreateProduct,
    responses(
        (status = 201, description = "Created", body = ProductDto),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "SKU taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_product(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    JsonBody(req): JsonBody<CreateProduct>,
) -> Result<Response, ApiError> {
    let mut errors = FieldErrors::new();
    let name = errors.check("name", parse_name(&req.name));
    let sku = errors.check("sku", parse_sku(&req.sku));
    let description = match &req.description {
        Some(d) => errors.check("description", parse_description(d)).map(Some),
        None => Some(None),
    };
    let category = errors.check("category", parse_category(&req.category));
    let price = errors.check("price", parse_price(req.price));
    let currency = errors.check("currency", Currency::parse(&req.currency));
    let stock = errors.check("stock", parse_stock(req.stock));
    errors.finish()?;
    let (
        Some(name),
        Some(sku),
        Some(description),
        Some(category),
        Some(price),
        Some(currency),
        Some(stock),
    ) = (name, sku, description, category, price, currency, stock)
    else {
        return Err(ApiError::internal(anyhow::anyhow!(
            "create product: parsed fields missing"
        )));
    };
    let now = super::now();
    let product = Product {
        id: Id::new(),
        name,
        sku,
        description,
        category,
        price,
        currency,
        stock,
        created_at: now,
        updated_at: now,
    };
    state.store.create_product(&product).await?;
    tracing::info!(product_id = %product.id, admin_id = %admin.id, "product created");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/products/{}", product.id))],
        Json(ProductDto::from(&product)),
    )
        .into_response())
}

/// Changes name, description, category, price or stock of a product (admin).
#[utoipa::path(patch, path = "/api/products/{id}", tag = "products", security(("bearer" = [])),
    params(("id" = String, Path, description = "24-hex product id")),
    request_body = PatchProduct,
    responses(
        (status = 200, description = "The changed product", body = ProductDto),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such product", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn patch_product(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    IdPath(id): IdPath,
    JsonBody(req): JsonBody<PatchProduct>,
) -> Result<Json<ProductDto>, ApiError> {
    let mut errors = FieldErrors::new();
    let patch = ProductPatch {
        name: req
            .name
            .as_deref()
            .and_then(|v| errors.check("name", parse_name(v))),
        description: req
            .description
            .as_deref()
            .and_then(|v| errors.check("description", parse_description(v))),
        category: req
            .category
            .as_deref()
            .and_then(|v| errors.check("category", parse_category(v))),
        price: req
            .price
            .and_then(|v| errors.check("price", parse_price(v))),
        stock: req
            .stock
            .and_then(|v| errors.check("stock", parse_stock(v))),
    };
    if errors.is_empty() && patch == ProductPatch::default() {
        errors.push(FieldError::new(
            "body",
            "empty-patch",
            "give at least one field to change",
        ));
    }
    errors.finish()?;
    let product = state.store.update_product(id, &patch, super::now()).await?;
    tracing::info!(product_id = %id, admin_id = %admin.id, "product changed");
    Ok(Json(ProductDto::from(&product)))
}

/// The catalog routes in the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(list_products, get_product, create_product, patch_product),
    components(schemas(ProductDto, ProductPage, CreateProduct, PatchProduct))
)]
pub struct ProductsApi;
