//! The console's files, embedded at build time from `host/console/`: plain HTML, CSS and
//! JavaScript with no build step and no third-party code.

/// `GET /console`.
pub const INDEX_HTML: &str = include_str!("../../../console/index.html");
/// `GET /console/app.js`.
pub const APP_JS: &str = include_str!("../../../console/app.js");
/// `GET /console/app.css`.
pub const APP_CSS: &str = include_str!("../../../console/app.css");
