//! The console's files, embedded at build time from `host/console/`: plain HTML, CSS and
//! JavaScript modules with no build step and no third-party code.

/// `GET /console`.
pub const INDEX_HTML: &str = include_str!("../../../console/index.html");

/// The files under `/console/`: name, content type, content.
pub const FILES: &[(&str, &str, &str)] = &[
    ("app.css", CSS, include_str!("../../../console/app.css")),
    ("app.js", JS, include_str!("../../../console/app.js")),
    ("core.js", JS, include_str!("../../../console/core.js")),
    ("rules.js", JS, include_str!("../../../console/rules.js")),
    (
        "delivery.js",
        JS,
        include_str!("../../../console/delivery.js"),
    ),
    ("orders.js", JS, include_str!("../../../console/orders.js")),
];

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// The file called `name`, with its content type.
pub fn file(name: &str) -> Option<(&'static str, &'static str)> {
    FILES
        .iter()
        .find(|(file, _, _)| *file == name)
        .map(|(_, content_type, body)| (*content_type, *body))
}
