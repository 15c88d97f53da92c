//! The API reference on the local stack: `GET /docs` renders `openapi/patchbay.yaml` with Redoc 2's
//! standalone bundle (pinned in local/contract/package.json, served from here: no CDN, no web
//! fonts), `GET /openapi.yaml` is the document itself. Both are read at start from the working tree,
//! so the page shows the document the tests hold the API to.

use axum::body::Bytes;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::emulator::repo_root;

/// What the page may load: only this stack (its own script, the document), inline styles (Redoc's
/// styled-components), data: images and a blob: worker (Redoc's search). A renderer that reached for
/// a CDN or a font host would show as a blocked request and a console error, not pass silently.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The files behind the three routes, each read once (or the reason it could not be).
pub struct Reference {
    page: Result<Bytes, String>,
    script: Result<Bytes, String>,
    document: Result<Bytes, String>,
}

impl Reference {
    /// Reads `local/docs/index.html`, Redoc's bundle from `local/contract/node_modules` (installed by
    /// local/bootstrap.sh) and `openapi/patchbay.yaml`.
    pub fn load() -> Self {
        let root = repo_root();
        let read = |rel: &str, hint: &str| std::fs::read(root.join(rel)).map(Bytes::from).map_err(|e| format!("{rel}: {e}{hint}"));
        Self {
            page: read("local/docs/index.html", ""),
            script: read("local/contract/node_modules/redoc/bundles/redoc.standalone.js", " (run local/bootstrap.sh)").map(offline),
            document: read("openapi/patchbay.yaml", ""),
        }
    }

    /// Why `/docs` cannot be shown, if it cannot.
    pub fn unavailable(&self) -> Option<&str> {
        [&self.page, &self.script, &self.document].into_iter().find_map(|r| r.as_ref().err().map(String::as_str))
    }

    /// `GET /docs`, `GET /docs/redoc.standalone.js`, `GET /openapi.yaml`: no token needed.
    pub fn routes(self) -> Router {
        let serve = |file: Result<Bytes, String>, content_type: &'static str| {
            get(move || {
                let file = file.clone();
                async move {
                    match file {
                        Ok(bytes) => {
                            let mut res = bytes.into_response();
                            let h = res.headers_mut();
                            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
                            h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
                            h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
                            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                            res
                        }
                        Err(why) => unavailable(why),
                    }
                }
            })
        };
        Router::new()
            .route("/docs", serve(self.page, "text/html; charset=utf-8"))
            .route("/docs/redoc.standalone.js", serve(self.script, "text/javascript; charset=utf-8"))
            .route("/openapi.yaml", serve(self.document, "application/yaml"))
    }
}

/// The one thing the bundle would fetch from outside: the logo beside its "API docs by Redocly" link,
/// from cdn.redoc.ly. It becomes an empty inline SVG (the link and its text stay).
const CDN_LOGO: &str = "https://cdn.redoc.ly/redoc/logo-mini.svg";
const NO_LOGO: &str = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='1' height='1'/%3E";

fn offline(bundle: Bytes) -> Bytes {
    match std::str::from_utf8(&bundle) {
        Ok(text) if text.contains(CDN_LOGO) => Bytes::from(text.replace(CDN_LOGO, NO_LOGO)),
        _ => bundle,
    }
}

fn unavailable(why: String) -> Response {
    let body = serde_json::json!({
        "type": "https://patchbay.dev/problems/service_unavailable", "title": "Service Unavailable", "status": 503,
        "detail": format!("the API reference cannot be served: {why}"), "code": "service_unavailable",
    });
    (StatusCode::SERVICE_UNAVAILABLE, [(header::CONTENT_TYPE, "application/problem+json")], body.to_string()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundles_cdn_logo_becomes_an_inline_image() {
        let bundle = Bytes::from(format!("a({{src:\"{CDN_LOGO}\"}})"));
        let served = offline(bundle);
        let text = std::str::from_utf8(&served).unwrap();
        assert!(!text.contains("cdn.redoc.ly"), "{text}");
        assert!(text.contains("src:\"data:image/svg+xml,"), "{text}");
    }

    #[test]
    fn the_pinned_bundle_names_no_other_host_than_the_logos() {
        // What the browser test would find only when a page happens to reach the code: the pinned
        // Redoc's bundle, as served, has no CDN or font host left in it.
        let Ok(bundle) = std::fs::read(repo_root().join("local/contract/node_modules/redoc/bundles/redoc.standalone.js")) else {
            panic!("Redoc's bundle is missing: run local/bootstrap.sh");
        };
        let served = offline(Bytes::from(bundle));
        let text = String::from_utf8_lossy(&served);
        for host in ["cdn.redoc.ly", "cdn.redocly.com", "fonts.googleapis.com", "fonts.gstatic.com", "unpkg.com", "jsdelivr"] {
            assert!(!text.contains(host), "the served bundle still names {host}");
        }
    }
}
