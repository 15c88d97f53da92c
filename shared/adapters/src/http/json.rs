//! Strict request parsing: a JSON body is checked for its media type, its syntax (400) and its shape
//! (422), and every error names the field; a query string is decoded without ever panicking.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;
use std::collections::HashMap;

use super::ApiError;

/// Request bodies are small; anything larger is refused with 413 before it is parsed.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub struct JsonBody<T>(pub T);

fn is_json(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else { return false };
    let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parse JSON into `T`, naming the field on failure.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize::<_, T>(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof | serde_json::error::Category::Io => {
                ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", format!("the body is not valid JSON: {message}"))
                    .with_field("body")
            }
            serde_json::error::Category::Data => {
                // A missing field is reported against its parent; name the field itself.
                let missing = message.starts_with("missing field").then(|| backticked(&message)).flatten();
                let field = match (path.as_str(), missing) {
                    (".", Some(f)) => f.to_owned(),
                    (".", None) => "body".to_owned(),
                    (p, Some(f)) => format!("{p}.{f}"),
                    (p, None) => p.to_owned(),
                };
                let code = if message.starts_with("unknown field") {
                    "unknown_field"
                } else if message.starts_with("missing field") {
                    "missing_field"
                } else {
                    "invalid_type"
                };
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, strip_expected(&message)).with_field(field)
            }
        }
    })
}

/// Parse a JSON object body. serde would also build a struct from an array (`["x"]`); a request
/// body that is not an object is refused instead.
pub fn parse_json_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => parse_json(bytes),
        Some(_) if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() => {
            Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_type", "the body must be a JSON object").with_field("body"))
        }
        _ => parse_json(bytes),
    }
}

/// For optional body fields: absent is `None` (with `#[serde(default)]`), but an explicit `null` is
/// refused like any other wrong type, so `{"name": null}` is an error and not a silent no-op.
pub fn not_null<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// For optional body fields a `null` clears (a PATCH's): absent is `None` (with `#[serde(default)]`),
/// `null` is `Some(None)`, a value `Some(Some(v))`.
pub fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}

fn backticked(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    Some(&message[start..end])
}

/// serde's messages end with a position; keep the sentence.
fn strip_expected(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        if !is_json(ct.as_deref()) {
            return Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "send the body as application/json")
                .with_field("Content-Type"));
        }
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        parse_json_object(&bytes).map(JsonBody)
    }
}

/// The request body as bytes (webhooks verify the exact bytes), under the body limit; an oversized or
/// unreadable body is a problem+json like every other bad input.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(req, state).await.map(RawBody).map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", format!("the body must be at most {MAX_BODY_BYTES} bytes"))
                    .with_field("body")
            } else {
                ApiError::new(StatusCode::BAD_REQUEST, "unreadable_body", "the body could not be read").with_field("body")
            }
        })
    }
}

/// The query string as name → value (the last one wins), decoded leniently: a bad percent-escape or
/// stray byte can't make the request fail here; the typed parse of each value decides.
pub struct QueryParams(pub HashMap<String, String>);

impl QueryParams {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let raw = parts.uri.query().unwrap_or("");
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw).map_err(|_| {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", "the query string is not form-encoded").with_field("query")
        })?;
        Ok(QueryParams(pairs.into_iter().collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        tags: Option<Vec<String>>,
    }

    fn err(json: &str) -> ApiError {
        parse_json::<Body>(json.as_bytes()).unwrap_err()
    }

    #[test]
    fn names_the_field() {
        let e = err("{");
        assert_eq!((e.status.as_u16(), e.code.as_str()), (400, "malformed_json"));
        let e = err(r#"{"name": 5}"#);
        assert_eq!((e.status.as_u16(), e.code.as_str(), e.field.as_deref()), (422, "invalid_type", Some("name")));
        let e = err(r#"{}"#);
        assert_eq!((e.code.as_str(), e.field.as_deref()), ("missing_field", Some("name")));
        let e = err(r#"{"name":"x","colour":1}"#);
        assert_eq!((e.code.as_str(), e.field.as_deref()), ("unknown_field", Some("colour")));
        let e = err(r#"{"name":"x","tags":["a",3]}"#);
        assert_eq!(e.field.as_deref(), Some("tags[1]"));
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Outer {
            inner: Body,
        }
        let e = parse_json::<Outer>(br#"{"inner": {"tags": []}}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("inner.name"));
        let e = parse_json::<Outer>(br#"{"inner": {"name": "x", "extra": 1}}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("inner.extra"));
        for body in [&b"[\"x\"]"[..], b" 1", b"null"] {
            let e = parse_json_object::<Body>(body).unwrap_err();
            assert_eq!((e.status.as_u16(), e.code.as_str(), e.field.as_deref()), (422, "invalid_type", Some("body")));
        }
        assert_eq!(parse_json_object::<Body>(b"").unwrap_err().code, "malformed_json");
        assert_eq!(parse_json_object::<Body>(b" {\"name\": \"n\"}").unwrap().name, "n");
    }

    #[test]
    fn media_types() {
        assert!(is_json(Some("application/json")));
        assert!(is_json(Some("Application/JSON; charset=utf-8")));
        assert!(is_json(Some("application/merge-patch+json")));
        assert!(!is_json(Some("text/plain")));
        assert!(!is_json(None));
    }
}
