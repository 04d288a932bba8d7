//! The dev dashboard's page: the static files `cargo mero dev` serves at `/`
//! and `/assets/{name}` of its control server (see `super::control`, which
//! merges [`router`] and owns the key, the session routes and the Host check).
//!
//! The page is plain ES modules compiled into the binary with `include_str!`
//! (no build step, nothing fetched from elsewhere). It reads the session from
//! `/session` with the key the printed URL carries in its fragment, observes
//! the nodes through their own API and sends commands to `/control`.
//!
//! This module must stay stateless and must not serve anything but these
//! files: no data, no tokens, nothing computed per request.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The page's content policy: scripts and styles from this server only,
/// fetches to this server and to the loopback nodes (any port: nodes are
/// added and restarted on ports the OS picks).
pub const CSP: &str = "default-src 'self'; connect-src 'self' http://127.0.0.1:*; \
                       style-src 'self'; img-src 'self' data:";

/// One embedded file.
struct Asset {
    name: &'static str,
    mime: &'static str,
    body: &'static str,
}

macro_rules! asset {
    ($name:literal, $mime:expr) => {
        Asset {
            name: $name,
            mime: $mime,
            body: include_str!(concat!("assets/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of the page; `/assets/{name}` serves exactly these.
const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("store.js", JS),
    asset!("nodes.js", JS),
    asset!("state.js", JS),
    asset!("dag.js", JS),
    asset!("events.js", JS),
    asset!("console.js", JS),
    asset!("faults.js", JS),
    asset!("reloads.js", JS),
];

/// The dashboard's routes, for the control server to merge.
pub fn router() -> Router {
    Router::new()
        .route("/", get(index))
        .route("/assets/{name}", get(asset))
}

async fn index() -> Response {
    serve("index.html")
}

async fn asset(Path(name): Path<String>) -> Response {
    serve(&name)
}

/// The named file with its type, the CSP and no caching (a rebuilt
/// `cargo-mero` serves a new page; a stale cached module would mix versions).
fn serve(name: &str) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, "no such dashboard file").into_response();
    };
    let mut resp = asset.body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.mime));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_the_page_imports_is_served() {
        // A module imported but missing from ASSETS would 404 only in a browser.
        for a in ASSETS
            .iter()
            .filter(|a| a.name.ends_with(".js") || a.name.ends_with(".html"))
        {
            for part in a.body.split(['"', '\'']) {
                if let Some(file) = part.strip_prefix("./").or(part.strip_prefix("/assets/"))
                    && (file.ends_with(".js") || file.ends_with(".css"))
                {
                    assert!(
                        ASSETS.iter().any(|b| b.name == file),
                        "{} imports {file}",
                        a.name
                    );
                }
            }
        }
    }

    #[test]
    fn files_carry_type_policy_and_no_store() {
        let resp = serve("app.js");
        assert_eq!(resp.status(), StatusCode::OK);
        let h = resp.headers();
        assert_eq!(h[header::CONTENT_TYPE], JS);
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], CSP);
        assert_eq!(serve("../Cargo.toml").status(), StatusCode::NOT_FOUND);
        assert_eq!(
            serve("index.html").headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
    }
}
