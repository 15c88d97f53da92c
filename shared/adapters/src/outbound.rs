//! The HTTP client the carrier and Vapi clients (and the sandbox's receipts) call out with. It is the
//! AWS SDK's own connector (hyper, rustls on ring, the same connection pool code), so a function links
//! one HTTP client stack rather than the SDK's beside reqwest's; `scripts/bench cold` measures the
//! difference. The request builder has the few things the carriers need: a query, a JSON or form
//! body, headers, bearer and basic auth. The whole call, body included, is bounded by the client's
//! timeout; the connection by a shorter one.

use std::time::Duration;

use aws_smithy_async::rt::sleep::TokioSleep;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use aws_smithy_runtime_api::client::http::{HttpConnector, HttpConnectorSettings, SharedHttpConnector};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Retry or not, from an HTTP status: 408, 425, 429 and 5xx are worth another try.
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 425 | 429) || status >= 500
}

/// The most a response body may be; carriers answer with a few KiB.
const MAX_BODY: usize = 8 * 1024 * 1024;
const USER_AGENT: &str = concat!("patchbay/", env!("CARGO_PKG_VERSION"));

/// What went wrong, in words that carry no URL, header or body.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: Kind,
    message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The request could not be built (a bad URL, a body that does not serialize).
    Request,
    Connect,
    Timeout,
    /// The connection failed after it was made, or the body could not be read.
    Transport,
    /// The body is not what the caller expected.
    Decode,
}

impl Error {
    fn new(kind: Kind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }

    /// No answer within the client's timeout (connecting, waiting or reading the body).
    pub fn is_timeout(&self) -> bool {
        self.kind == Kind::Timeout
    }

    /// The server could not be reached.
    pub fn is_connect(&self) -> bool {
        self.kind == Kind::Connect
    }

    /// The answer came but its body is not what was expected.
    pub fn is_decode(&self) -> bool {
        self.kind == Kind::Decode
    }
}

/// A client: cheap to clone (the connector and its pool are shared).
#[derive(Clone, Debug)]
pub struct Client {
    connector: SharedHttpConnector,
    timeout: Duration,
    /// When set, an answer's body is read up to this many bytes and the rest ignored (webhook
    /// receivers' answers are not ours to hold); otherwise a body over `MAX_BODY` is an error.
    body_cap: Option<usize>,
}

impl Client {
    /// `timeout` bounds a whole call (connect, send, the answer and its body); connecting alone gets
    /// at most 3 s of it.
    pub fn new(timeout: Duration) -> Self {
        let settings = HttpConnectorSettings::builder().connect_timeout(timeout.min(Duration::from_secs(3))).read_timeout(timeout).build();
        let connector = aws_smithy_http_client::Connector::builder()
            .connector_settings(settings)
            .sleep_impl(TokioSleep::new())
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build();
        Self { connector: SharedHttpConnector::new(connector), timeout, body_cap: None }
    }

    /// A client whose host names go through `resolver` (which may refuse addresses: webhook
    /// deliveries), reading at most `body_cap` bytes of an answer.
    pub fn with_resolver(
        timeout: Duration,
        resolver: impl aws_smithy_runtime_api::client::dns::ResolveDns + Clone + 'static,
        body_cap: usize,
    ) -> Self {
        let settings = HttpConnectorSettings::builder().connect_timeout(timeout.min(Duration::from_secs(3))).read_timeout(timeout).build();
        let connector = aws_smithy_http_client::Connector::builder()
            .connector_settings(settings)
            .sleep_impl(TokioSleep::new())
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_with_resolver(resolver);
        Self { connector: SharedHttpConnector::new(connector), timeout, body_cap: Some(body_cap) }
    }

    pub fn get(&self, url: impl Into<String>) -> RequestBuilder<'_> {
        self.request("GET", url)
    }

    pub fn post(&self, url: impl Into<String>) -> RequestBuilder<'_> {
        self.request("POST", url)
    }

    pub fn patch(&self, url: impl Into<String>) -> RequestBuilder<'_> {
        self.request("PATCH", url)
    }

    pub fn delete(&self, url: impl Into<String>) -> RequestBuilder<'_> {
        self.request("DELETE", url)
    }

    fn request(&self, method: &'static str, url: impl Into<String>) -> RequestBuilder<'_> {
        RequestBuilder { client: self, method, url: url.into(), headers: Vec::new(), body: Vec::new(), error: None }
    }
}

/// A request being built; errors in building surface at `send`.
#[must_use = "a request does nothing until it is sent"]
pub struct RequestBuilder<'c> {
    client: &'c Client,
    method: &'static str,
    url: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    error: Option<Error>,
}

impl RequestBuilder<'_> {
    /// Appends `query` (anything `serde_urlencoded` takes: pairs, a struct) to the URL's query.
    pub fn query<T: Serialize + ?Sized>(mut self, query: &T) -> Self {
        match serde_urlencoded::to_string(query) {
            Ok(q) if q.is_empty() => {}
            Ok(q) => {
                let sep = if self.url.contains('?') { '&' } else { '?' };
                self.url.push(sep);
                self.url.push_str(&q);
            }
            Err(e) => self.fail(Error::new(Kind::Request, format!("query does not encode: {e}"))),
        }
        self
    }

    /// A JSON body.
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Self {
        match serde_json::to_vec(body) {
            Ok(b) => self.with_body("application/json", b),
            Err(e) => {
                self.fail(Error::new(Kind::Request, format!("body does not serialize: {e}")));
                self
            }
        }
    }

    /// A form body (`application/x-www-form-urlencoded`).
    pub fn form<T: Serialize + ?Sized>(mut self, body: &T) -> Self {
        match serde_urlencoded::to_string(body) {
            Ok(b) => self.with_body("application/x-www-form-urlencoded", b.into_bytes()),
            Err(e) => {
                self.fail(Error::new(Kind::Request, format!("form does not encode: {e}")));
                self
            }
        }
    }

    /// A body as is (set its content type with `header`).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn bearer_auth(self, token: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }

    pub fn basic_auth(self, user: &str, password: &str) -> Self {
        let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        self.header("authorization", format!("Basic {credentials}"))
    }

    fn with_body(self, content_type: &'static str, body: Vec<u8>) -> Self {
        Self { body, ..self }.header("content-type", content_type)
    }

    fn fail(&mut self, error: Error) {
        self.error.get_or_insert(error);
    }

    /// Sends the request and reads the whole answer, within the client's timeout.
    pub async fn send(self) -> Result<Response, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let timeout = self.client.timeout;
        let cap = self.client.body_cap;
        let connector = self.client.connector.clone();
        let mut request = HttpRequest::new(SdkBody::from(self.body));
        request.set_method(self.method).map_err(|e| Error::new(Kind::Request, format!("method: {e}")))?;
        request.set_uri(self.url.as_str()).map_err(|_| Error::new(Kind::Request, "the URL is not valid"))?;
        let headers = request.headers_mut();
        headers.insert("user-agent", USER_AGENT);
        for (name, value) in self.headers {
            headers.try_insert(name, value).map_err(|_| Error::new(Kind::Request, format!("header {name} is not valid")))?;
        }
        match tokio::time::timeout(timeout, exchange(connector, request, cap)).await {
            Ok(answer) => answer,
            Err(_) => Err(Error::new(Kind::Timeout, format!("no answer within {} ms", timeout.as_millis()))),
        }
    }
}

async fn exchange(connector: SharedHttpConnector, request: HttpRequest, cap: Option<usize>) -> Result<Response, Error> {
    let answer = connector.call(request).await.map_err(|e| {
        let kind = if e.is_timeout() {
            Kind::Timeout
        } else if e.is_io() && !e.is_user() {
            // The connector reports a refused or reset connection as I/O; a request it could not
            // send at all as a user error.
            Kind::Connect
        } else {
            Kind::Transport
        };
        Error::new(kind, transport_message(kind, &e))
    })?;
    let status = answer.status().as_u16();
    let retry_after = answer.headers().get("retry-after").map(str::to_owned);
    let mut stream = ByteStream::new(answer.into_body());
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Error::new(Kind::Transport, format!("the answer's body could not be read: {e}")))?;
        if let Some(cap) = cap {
            body.extend_from_slice(&chunk[..chunk.len().min(cap - body.len())]);
            if body.len() >= cap {
                break;
            }
            continue;
        }
        if body.len() + chunk.len() > MAX_BODY {
            return Err(Error::new(Kind::Transport, format!("the answer's body is over {MAX_BODY} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Response { status, body, retry_after })
}

fn transport_message(kind: Kind, e: &aws_smithy_runtime_api::client::result::ConnectorError) -> String {
    // The innermost cause says what happened (refused, reset, certificate); none carries the URL.
    let mut cause: &dyn std::error::Error = e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    match kind {
        Kind::Timeout => "no answer in time".into(),
        Kind::Connect => format!("could not connect: {cause}"),
        _ => format!("the request failed: {cause}"),
    }
}

/// A whole answer: its status and body.
#[derive(Debug, Clone)]
pub struct Response {
    status: u16,
    body: Vec<u8>,
    retry_after: Option<String>,
}

impl Response {
    pub fn status(&self) -> u16 {
        self.status
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The `Retry-After` header, when the server sent one.
    pub fn retry_after(&self) -> Option<&str> {
        self.retry_after.as_deref()
    }

    /// The body as JSON of type `T`; an error names where it does not fit, never what it holds.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|e| Error::new(Kind::Decode, format!("not the expected JSON: {e}")))
    }

    /// The body as UTF-8 text.
    pub fn text(self) -> Result<String, Error> {
        String::from_utf8(self.body).map_err(|_| Error::new(Kind::Decode, "the body is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde::Deserialize;
    use wiremock::matchers::{body_json, body_string, header, method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::Client;

    #[tokio::test]
    async fn sends_method_query_headers_auth_and_a_json_body_and_reads_the_answer() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v2/things"))
            .and(query_param("filter[phone_number]", "+14155550100"))
            .and(query_param("page", "2"))
            .and(header("authorization", "Bearer k3y"))
            .and(header("content-type", "application/json"))
            .and(header("accept", "application/json"))
            .and(header("user-agent", concat!("patchbay/", env!("CARGO_PKG_VERSION"))))
            .and(body_json(serde_json::json!({"name": "a b", "n": 1})))
            .respond_with(ResponseTemplate::new(201).set_body_json(serde_json::json!({"id": "x1"})))
            .expect(1)
            .mount(&server)
            .await;
        #[derive(Deserialize)]
        struct Created {
            id: String,
        }
        let client = Client::new(Duration::from_secs(5));
        let res = client
            .post(format!("{}/v2/things?page=2", server.uri()))
            .query(&[("filter[phone_number]", "+14155550100")])
            .json(&serde_json::json!({"name": "a b", "n": 1}))
            .bearer_auth("k3y")
            .header("accept", "application/json")
            .send()
            .await
            .expect("an answer");
        assert_eq!(res.status(), 201);
        assert!(res.is_success());
        assert_eq!(res.json::<Created>().expect("json").id, "x1");
        assert!(res.json::<Vec<u8>>().expect_err("not a list").is_decode());
    }

    #[tokio::test]
    async fn sends_a_form_with_basic_auth_and_keeps_error_answers() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/Messages.json"))
            // base64("AC1:t0ken")
            .and(header("authorization", "Basic QUMxOnQwa2Vu"))
            .and(header("content-type", "application/x-www-form-urlencoded"))
            .and(body_string("To=%2B14155550100&Body=hi+there%26more"))
            .respond_with(ResponseTemplate::new(400).set_body_string("{\"code\":21211}"))
            .mount(&server)
            .await;
        let client = Client::new(Duration::from_secs(5));
        let res = client
            .post(format!("{}/Messages.json", server.uri()))
            .form(&[("To", "+14155550100"), ("Body", "hi there&more")])
            .basic_auth("AC1", "t0ken")
            .send()
            .await
            .expect("an answer, even a 400");
        assert_eq!(res.status(), 400);
        assert!(!res.is_success());
        assert_eq!(res.text().expect("text"), "{\"code\":21211}");
    }

    #[tokio::test]
    async fn a_slow_answer_is_a_timeout_and_a_closed_port_a_connect_error_neither_naming_the_url() {
        let server = MockServer::start().await;
        Mock::given(method("GET")).respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5))).mount(&server).await;
        let client = Client::new(Duration::from_millis(300));
        let e = client.get(format!("{}/slow?token=s3cret", server.uri())).send().await.expect_err("too slow");
        assert!(e.is_timeout(), "{e}");
        assert!(!e.to_string().contains("s3cret") && !e.to_string().contains("127.0.0.1"), "{e}");

        // A port nothing listens on (bound, then released).
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let e = client.get(format!("http://127.0.0.1:{port}/x?token=s3cret")).send().await.expect_err("nothing listens");
        assert!(e.is_connect() && !e.is_timeout(), "{e}");
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }

    #[tokio::test]
    async fn a_bad_url_or_body_fails_at_send_without_a_request() {
        let client = Client::new(Duration::from_secs(1));
        assert!(client.get("not a url").send().await.is_err());
        let mut bad = std::collections::HashMap::new();
        bad.insert(vec![1u8], 1);
        assert!(client.post("http://127.0.0.1:9/").json(&bad).send().await.is_err());
    }
}
