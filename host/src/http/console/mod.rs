//! The operator console: one web page served at `GET /console` by the api role, from files
//! embedded in the binary ([`assets`]), with its script and style sheet beside it. The page
//! itself carries no data and is served to anyone; everything it shows comes from the admin
//! JSON endpoints (`/api/admin/…`), each of which answers 401 without a token and 403 to a
//! customer.
//!
//! Every console response carries [`CONTENT_SECURITY_POLICY`]: scripts, styles and fetches
//! only from this origin, no inline script or style, no framing.

pub mod assets;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use utoipa::OpenApi;

use super::error::ApiError;
use super::state::AppState;

/// The console's Content-Security-Policy: nothing inline, nothing from another origin.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
    frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The page's path.
pub const PATH: &str = "/console";

/// Routes of the console's files.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(PATH, get(page))
        .route("/console/{file}", get(file))
}

#[derive(OpenApi)]
#[openapi(paths(page))]
pub struct ConsoleApi;

/// The operator console, an HTML page (its data comes from the admin endpoints, which need an
/// admin's token).
#[utoipa::path(get, path = "/console", tag = "console",
    responses(
        (status = 200, description = "The console page, under a Content-Security-Policy that allows only this origin and no inline script", content_type = "text/html"),
    ))]
pub async fn page() -> Response {
    asset(assets::INDEX_HTML, "text/html; charset=utf-8")
}

/// One of the page's scripts or its style sheet; any other name is a 404 problem.
async fn file(Path(name): Path<String>) -> Result<Response, ApiError> {
    let (content_type, body) = assets::file(&name).ok_or(ApiError::NotFound)?;
    Ok(asset(body, content_type))
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ),
    ];
    (headers, body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_its_own_script_and_style_and_nothing_inline() {
        let html = assets::INDEX_HTML;
        assert!(html.contains(r#"<script type="module" src="/console/app.js"></script>"#));
        assert!(html.contains(r#"<link rel="stylesheet" href="/console/app.css">"#));
        assert_eq!(
            html.matches("<script").count(),
            1,
            "one script, loaded by URL"
        );
        assert!(!html.contains("<style"), "no inline style sheet");
        assert!(!html.contains(" style="), "no inline style attribute");
        let handler = html.split(" on").skip(1).any(|rest| {
            let name: String = rest.chars().take_while(char::is_ascii_lowercase).collect();
            !name.is_empty() && rest[name.len()..].starts_with('=')
        });
        assert!(!handler, "no inline event handler");
        let texts = std::iter::once(html).chain(assets::FILES.iter().map(|(_, _, body)| *body));
        for text in texts {
            // The SVG namespace is a name, not a place anything is fetched from.
            let text = text.replace("http://www.w3.org/2000/svg", "");
            assert!(
                !text.contains("http://") && !text.contains("https://"),
                "no other origin"
            );
            assert!(
                !text.contains("eval(") && !text.contains("innerHTML"),
                "text goes in as text"
            );
        }
        // Every module a script imports is served.
        for (_, _, body) in assets::FILES {
            for import in body.split("from \"/console/").skip(1) {
                let name = import.split('"').next().unwrap_or_default();
                assert!(assets::file(name).is_some(), "{name} is served");
            }
        }
    }
}
