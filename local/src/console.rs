//! The console on the local stack: the built app (`web/dist`, or `PATCHBAY_CONSOLE_DIR`) at `/`, on
//! the API's own port, so the browser calls the API same-origin with no CORS. A layer in front of the
//! API's routes: a GET or HEAD outside the API's paths gets the file it names, or `index.html` when it
//! names none (the app routes in the browser: `/profiles/…`, `/messages/…`); every other request, and
//! every API path, goes on to the API (whose unknown routes stay problem+json 404s). Also
//! `GET /config.json` (sign in with development tokens, API on this origin) and the local-only
//! `POST /local/dev-token {sub, ttl_seconds?}` that mints them, never deployed.

use std::path::{Component, Path, PathBuf};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use patchbay_adapters::http::{self, ApiError};
use patchbay_domain::ValidationError;

use crate::devauth::DevAuth;
use crate::emulator::repo_root;

/// The policy the console's pages are served with, here and (the same directives) by CloudFront on
/// AWS: only this origin's scripts; the API on this origin; the dialer's Telnyx socket and call
/// reports; microphone audio as blob: media.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; connect-src 'self' wss://rtc.telnyx.com https://rtc.telnyx.com; media-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Paths the API (and the local stack's own pages) answer; the console never shadows them.
const API_PREFIXES: [&str; 6] = ["/v1/", "/webhooks/", "/local/", "/healthz", "/docs", "/openapi.yaml"];

/// The built console's directory: `PATCHBAY_CONSOLE_DIR`, else `web/dist` in the working tree.
pub fn default_dir() -> PathBuf {
    std::env::var_os("PATCHBAY_CONSOLE_DIR").map(PathBuf::from).unwrap_or_else(|| repo_root().join("web/dist"))
}

#[derive(Clone)]
pub struct Console {
    dir: PathBuf,
}

impl Console {
    /// The console in `dir`, if it has been built there (an `index.html`).
    pub fn open(dir: PathBuf) -> Option<Self> {
        dir.join("index.html").is_file().then_some(Self { dir })
    }

    /// What a GET or HEAD for `path` serves, if the console serves it: the file, or the app's page.
    fn file_for(&self, path: &str) -> Option<(PathBuf, bool)> {
        if API_PREFIXES.iter().any(|p| path == p.trim_end_matches('/') || path.starts_with(p)) {
            return None;
        }
        let rel = Path::new(path.trim_start_matches('/'));
        // Only plain names: no `..`, no root, no prefix (a request cannot leave the directory).
        if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            return None;
        }
        let file = self.dir.join(rel);
        if !rel.as_os_str().is_empty() && file.is_file() {
            return Some((file, false));
        }
        // A path naming a file that is not there (`/assets/gone.js`) is a 404, not the app's page.
        if rel.extension().is_some() {
            return None;
        }
        Some((self.dir.join("index.html"), true))
    }
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

/// The layer in front of the API (see the module's comment).
pub async fn layer(State(console): State<Option<Console>>, req: Request, next: Next) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return next.run(req).await;
    }
    let path = req.uri().path();
    if path == "/config.json" {
        return no_cache(Json(serde_json::json!({"auth": {"mode": "dev"}, "apiBase": ""})).into_response());
    }
    let Some(console) = console else { return next.run(req).await };
    let Some((file, app_page)) = console.file_for(path) else { return next.run(req).await };
    let head = req.method() == Method::HEAD;
    // Read at each request, not once at start: a rebuild (`npm --prefix web run build`) shows on the
    // next reload of a running stack. Local only; on AWS CloudFront serves the files.
    match tokio::fs::read(&file).await {
        Ok(bytes) => {
            let immutable = !app_page && path.starts_with("/assets/");
            let mut res = if head { Response::new(Body::empty()) } else { Response::new(Body::from(bytes)) };
            let h = res.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(&file)));
            h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
            h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
            h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static(if immutable { "public, max-age=31536000, immutable" } else { "no-cache" }),
            );
            res
        }
        Err(e) => ApiError::unavailable("the console's files", &e).into_response(),
    }
}

fn no_cache(mut res: Response) -> Response {
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    sub: String,
    #[serde(default)]
    ttl_seconds: Option<i64>,
}

/// Twelve hours: a working day at the console.
const DEFAULT_TTL: i64 = 12 * 3600;

/// `POST /local/dev-token {sub, ttl_seconds?}` → 201 `{token, expires_at}`: what the console's local
/// sign-in calls. Local only, like every `/local/` route.
async fn dev_token(State(auth): State<DevAuth>, http::JsonBody(body): http::JsonBody<TokenBody>) -> Result<Response, ApiError> {
    let sub = body.sub.trim();
    if sub.is_empty() || sub.chars().count() > 128 || sub.chars().any(char::is_control) {
        return Err(ApiError::unprocessable(ValidationError::new("sub", "invalid", "1 to 128 characters, no control characters")));
    }
    let ttl = body.ttl_seconds.unwrap_or(DEFAULT_TTL);
    if !(60..=7 * 86_400).contains(&ttl) {
        return Err(ApiError::unprocessable(ValidationError::new("ttl_seconds", "invalid", "from 60 to 604800 seconds")));
    }
    let token = auth.mint(sub, ttl).map_err(|e| ApiError::unavailable("the development token", &e))?;
    let expires = time::OffsetDateTime::now_utc() + time::Duration::seconds(ttl);
    Ok((StatusCode::CREATED, Json(serde_json::json!({"token": token, "expires_at": patchbay_adapters::wire::rfc3339(expires)})))
        .into_response())
}

pub fn dev_token_route(auth: DevAuth) -> Router {
    Router::new().route("/local/dev-token", axum::routing::post(dev_token)).with_state(auth)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built() -> (tempdir::Dir, Console) {
        let d = tempdir::Dir::new();
        std::fs::create_dir_all(d.0.join("assets")).unwrap();
        std::fs::write(d.0.join("index.html"), "<!doctype html><title>app</title>").unwrap();
        std::fs::write(d.0.join("assets/app-1234.js"), "console.log(1)").unwrap();
        let c = Console::open(d.0.clone()).unwrap();
        (d, c)
    }

    mod tempdir {
        pub struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub fn new() -> Self {
                let p = std::env::temp_dir().join(format!("patchbay-console-{}", uuid::Uuid::new_v4()));
                std::fs::create_dir_all(&p).unwrap();
                Self(p)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn the_app_routes_get_its_page_and_files_get_themselves() {
        let (_d, c) = built();
        assert_eq!(c.file_for("/").unwrap(), (c.dir.join("index.html"), true));
        assert_eq!(c.file_for("/profiles/8c1a").unwrap(), (c.dir.join("index.html"), true));
        assert!(c.file_for("/messages/c12125550100-15551234567").unwrap().1);
        assert_eq!(c.file_for("/assets/app-1234.js").unwrap(), (c.dir.join("assets/app-1234.js"), false));
        // A file that is not there is a 404 (the API's), not the app's page.
        assert!(c.file_for("/assets/gone-9999.js").is_none());
    }

    #[test]
    fn api_paths_and_escapes_are_never_the_consoles() {
        let (_d, c) = built();
        for p in ["/v1/phone-numbers", "/v1/nothing-here", "/webhooks/telnyx", "/local/dev-token", "/healthz", "/docs", "/openapi.yaml"] {
            assert!(c.file_for(p).is_none(), "{p}");
        }
        for p in ["/../Cargo.toml", "/assets/../../x", "//etc/passwd"] {
            assert!(c.file_for(p).is_none_or(|(f, _)| f.starts_with(&c.dir)), "{p}");
        }
    }

    #[test]
    fn no_console_without_a_build() {
        let d = tempdir::Dir::new();
        assert!(Console::open(d.0.clone()).is_none());
    }
}
