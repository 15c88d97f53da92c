//! The contention fault layer. The single-threaded emulator never makes two transactions collide
//! and never throttles; real DynamoDB does both all the time. This layer stands between the
//! functions' DynamoDB client and the emulator (it wraps the SDK's HTTP client) and answers a
//! share of the calls itself, with exactly what DynamoDB answers under contention, byte for byte
//! the service's JSON (so the SDK's own deserialisers and retry classifiers see the real thing),
//! and without forwarding them, so a fault never has an effect on the table:
//!
//! - `TransactWriteItems`: at the `conflict` rate, a `TransactionCanceledException` whose reason
//!   for one random item is `TransactionConflict` (the others `None`); at the `throttle` rate,
//!   either a `ThrottlingException` or a cancellation with `ThrottlingError` on one random item;
//! - `TransactGetItems`: a cancellation with `TransactionConflict` (`conflict`), or throttling;
//! - `PutItem`, `UpdateItem`, `DeleteItem`: a `TransactionConflictException` (a single-item write
//!   on an item a transaction is writing) at the `conflict` rate, throttling at the `throttle` rate;
//! - `GetItem`, `Query` and every other call: `ThrottlingException` or
//!   `ProvisionedThroughputExceededException` at the `throttle` rate.
//!
//!
//! Two more faults are the ones a Lambda deployment meets every day, and these do have effects:
//!
//! - **lost answers** (`lost`): a write (`PutItem`, `UpdateItem`, `DeleteItem`,
//!   `TransactWriteItems`, `BatchWriteItem`) is forwarded and applied, and its answer is replaced by
//!   DynamoDB's HTTP 500 `InternalServerError`, as when a connection drops after the commit; the
//!   SDK's own retry then sends it again. `TransactWriteItems` keeps DynamoDB's `ClientRequestToken`
//!   behaviour: a repeat of a token whose call succeeded (within 10 minutes) is answered with the
//!   first answer and not applied again. A single-item write has no token: its repeat meets its own
//!   effect (a conditional one fails its condition);
//! - **kills** (`kill`): that share of invocations (a worker batch, an API request, a webhook:
//!   whatever runs inside [`invocation`]) dies at a random one of its DynamoDB calls (each call of a
//!   doomed invocation is its last with probability 1/3), before the call is sent or after it was
//!   applied, the way a timeout, an out-of-memory or a deploy ends a Lambda: nothing after that point
//!   runs. A doomed invocation that makes fewer calls finishes; with `kill=1` every invocation dies
//!   at its first call. Calls made outside an invocation (a test's own set-up) are never killed.
//!
//! Only DynamoDB calls are touched (SQS and Secrets Manager pass through). The setting is
//! `PATCHBAY_FAULTS`, e.g. `conflict=0.25,throttle=0.1,lost=0.1,kill=0.05`; the tests build it
//! directly.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use rand::Rng;
use serde_json::{json, Value};

/// Fault rates, each the probability (0..=1) that one call is answered with that fault.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Faults {
    /// Transaction cancellations with `TransactionConflict`, and `TransactionConflictException` on single-item writes.
    pub conflict: f64,
    /// Throttling, inside a cancellation or as the call's error.
    pub throttle: f64,
    /// Writes applied whose answer is lost (HTTP 500 instead; the SDK sends them again).
    pub lost: f64,
    /// Calls at which their invocation dies (before the call is sent, or after it was applied).
    pub kill: f64,
}

/// The layer's live setting and what it did. Shared by every client it wraps; the rates can be
/// changed while the stack runs (a test runs the same scenario with faults on, then off).
#[derive(Debug, Default)]
pub struct FaultControl {
    conflict: AtomicU64,
    throttle: AtomicU64,
    lost: AtomicU64,
    kill: AtomicU64,
    /// DynamoDB calls seen.
    pub calls: AtomicU64,
    /// Calls answered with a collision (cancellation or `TransactionConflictException`).
    pub conflicts: AtomicU64,
    /// Calls answered with throttling.
    pub throttles: AtomicU64,
    /// Writes applied and answered 500.
    pub losts: AtomicU64,
    /// Invocations killed at a call.
    pub kills: AtomicU64,
    /// Transactions repeated with a token whose first call succeeded: answered from here.
    pub replays: AtomicU64,
    /// `ClientRequestToken` → the first successful answer's body, and when it was given.
    tokens: Mutex<HashMap<String, (Instant, Vec<u8>)>>,
}

/// How long DynamoDB remembers a transaction's `ClientRequestToken`.
const TOKEN_WINDOW: Duration = Duration::from_secs(600);

impl FaultControl {
    pub fn new(faults: Faults) -> Arc<Self> {
        let c = Arc::new(Self::default());
        c.set(faults);
        c
    }

    pub fn set(&self, faults: Faults) {
        self.conflict.store(faults.conflict.to_bits(), Ordering::Relaxed);
        self.throttle.store(faults.throttle.to_bits(), Ordering::Relaxed);
        self.lost.store(faults.lost.to_bits(), Ordering::Relaxed);
        self.kill.store(faults.kill.to_bits(), Ordering::Relaxed);
    }

    pub fn faults(&self) -> Faults {
        let rate = |a: &AtomicU64| f64::from_bits(a.load(Ordering::Relaxed));
        Faults { conflict: rate(&self.conflict), throttle: rate(&self.throttle), lost: rate(&self.lost), kill: rate(&self.kill) }
    }

    /// (lost answers, kills, token replays).
    pub fn snapshot_effects(&self) -> (u64, u64, u64) {
        (self.losts.load(Ordering::Relaxed), self.kills.load(Ordering::Relaxed), self.replays.load(Ordering::Relaxed))
    }

    /// The first answer to a transaction with this token, if it succeeded within the window.
    fn replay(&self, token: &str) -> Option<Vec<u8>> {
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        tokens.retain(|_, (at, _)| now.duration_since(*at) < TOKEN_WINDOW);
        tokens.get(token).map(|(_, body)| body.clone())
    }

    fn remember(&self, token: String, body: Vec<u8>) {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner()).entry(token).or_insert((Instant::now(), body));
    }

    /// (calls, collisions injected, throttles injected).
    pub fn snapshot(&self) -> (u64, u64, u64) {
        (self.calls.load(Ordering::Relaxed), self.conflicts.load(Ordering::Relaxed), self.throttles.load(Ordering::Relaxed))
    }

    /// `sdk` with this layer in front of its HTTP client (DynamoDB calls only are touched). The
    /// emulator is plain HTTP on loopback; without a client of its own, `sdk` gets hyper's.
    pub fn wrap(self: &Arc<Self>, sdk: &aws_types::SdkConfig) -> aws_types::SdkConfig {
        let inner = sdk.http_client().unwrap_or_else(|| aws_smithy_http_client::Builder::new().build_http());
        let client = FaultyClient { inner, control: self.clone() };
        sdk.to_builder().http_client(SharedHttpClient::new(client)).build()
    }
}

impl Faults {
    /// `conflict=0.25,throttle=0.1,lost=0.1,kill=0.05` (any may be left out; rates are 0..=1).
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut faults = Faults::OFF;
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').ok_or_else(|| format!("{part:?}: expected name=rate"))?;
            let rate: f64 = value.trim().parse().map_err(|_| format!("{part:?}: {value:?} is not a number"))?;
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{part:?}: a rate is between 0 and 1"));
            }
            match name.trim() {
                "conflict" => faults.conflict = rate,
                "throttle" => faults.throttle = rate,
                "lost" => faults.lost = rate,
                "kill" => faults.kill = rate,
                other => return Err(format!("{other:?}: the faults are conflict, throttle, lost and kill")),
            }
        }
        Ok(faults)
    }

    /// `PATCHBAY_FAULTS`, if set (and not empty or `off`).
    pub fn from_env() -> Result<Option<Self>, String> {
        match std::env::var("PATCHBAY_FAULTS") {
            Ok(v) if !v.trim().is_empty() && v.trim() != "off" => Self::parse(&v).map(Some).map_err(|e| format!("PATCHBAY_FAULTS: {e}")),
            _ => Ok(None),
        }
    }

    pub const OFF: Faults = Faults { conflict: 0.0, throttle: 0.0, lost: 0.0, kill: 0.0 };
}

impl std::fmt::Display for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "conflict={},throttle={},lost={},kill={}", self.conflict, self.throttle, self.lost, self.kill)
    }
}

/// One invocation's kill switch: set by the layer at the call where the invocation dies.
#[derive(Debug, Default)]
pub struct Invocation {
    killed: AtomicBool,
    /// Whether it is one of the `kill` share that die, decided at its first call: 0 not yet, 1 lives, 2 dies.
    fate: std::sync::atomic::AtomicU8,
    notify: tokio::sync::Notify,
}

/// The chance that a doomed invocation dies at any one of its calls.
const DIE_AT_CALL: f64 = 1.0 / 3.0;

impl Invocation {
    /// Whether this call is where the invocation dies.
    fn dies_here(&self, kill_rate: f64, rng: &mut impl rand::Rng) -> bool {
        let fate = match self.fate.load(Ordering::SeqCst) {
            0 => {
                let doomed = if rng.random_bool(kill_rate.clamp(0.0, 1.0)) { 2 } else { 1 };
                match self.fate.compare_exchange(0, doomed, Ordering::SeqCst, Ordering::SeqCst) {
                    Ok(_) => doomed,
                    Err(decided) => decided,
                }
            }
            decided => decided,
        };
        // `kill=1` (every invocation dies) dies at the first call: what the layer's own tests pin down.
        fate == 2 && (kill_rate >= 1.0 || rng.random_bool(DIE_AT_CALL))
    }

    fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }
}

tokio::task_local! {
    static INVOCATION: Arc<Invocation>;
}

/// The invocation was killed by the fault layer: nothing after the call it died at ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Killed;

/// Runs `work` as one invocation (what one Lambda invocation runs): if the fault layer kills it at
/// one of its DynamoDB calls, `work` is dropped right there and this answers `Killed`.
pub async fn invocation<F: Future>(work: F) -> Result<F::Output, Killed> {
    let inv = Arc::new(Invocation::default());
    let run = INVOCATION.scope(inv.clone(), work);
    tokio::pin!(run);
    tokio::select! {
        biased;
        _ = inv.notify.notified() => Err(Killed),
        out = &mut run => if inv.killed.load(Ordering::SeqCst) { Err(Killed) } else { Ok(out) },
    }
}

/// An axum middleware: each request is one invocation; a killed one is answered as API Gateway
/// answers a Lambda that died (503 `{"message":"Service Unavailable"}`), and the client retries.
pub async fn invocation_layer(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::response::IntoResponse;
    match invocation(next.run(req)).await {
        Ok(res) => res,
        Err(Killed) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            r#"{"message":"Service Unavailable"}"#,
        )
            .into_response(),
    }
}

#[derive(Debug, Clone)]
struct FaultyClient {
    inner: SharedHttpClient,
    control: Arc<FaultControl>,
}

impl HttpClient for FaultyClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(FaultyConnector { inner: self.inner.http_connector(settings, components), control: self.control.clone() })
    }
}

#[derive(Debug)]
struct FaultyConnector {
    inner: SharedHttpConnector,
    control: Arc<FaultControl>,
}

impl HttpConnector for FaultyConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let operation = request.headers().get("x-amz-target").and_then(|t| t.strip_prefix("DynamoDB_20120810.")).map(str::to_owned);
        let Some(op) = operation else { return self.inner.call(request) };
        let control = self.control.clone();
        control.calls.fetch_add(1, Ordering::Relaxed);
        let token = (op == "TransactWriteItems")
            .then(|| request.body().bytes().and_then(|b| serde_json::from_slice::<Value>(b).ok()))
            .flatten()
            .and_then(|v| v["ClientRequestToken"].as_str().map(str::to_owned));
        // DynamoDB answers a repeat of a token that succeeded with the first answer, unapplied.
        if let Some(first) = token.as_deref().and_then(|t| control.replay(t)) {
            control.replays.fetch_add(1, Ordering::Relaxed);
            return HttpConnectorFuture::ready(Ok(ok_response(first)));
        }
        if let Some((fault, response)) = self.decide(&op, request.body().bytes()) {
            match fault {
                Fault::Conflict => control.conflicts.fetch_add(1, Ordering::Relaxed),
                Fault::Throttle => control.throttles.fetch_add(1, Ordering::Relaxed),
            };
            tracing::debug!(operation = %op, ?fault, "fault layer: answered without forwarding");
            return HttpConnectorFuture::ready(Ok(response));
        }
        let faults = control.faults();
        let mut rng = rand::rng();
        let is_write = matches!(op.as_str(), "PutItem" | "UpdateItem" | "DeleteItem" | "TransactWriteItems" | "BatchWriteItem");
        let lose = is_write && rng.random_bool(faults.lost.clamp(0.0, 1.0));
        // A kill needs an invocation to end; half die before the call is sent, half after it applied.
        let kill = INVOCATION.try_with(Arc::clone).ok().filter(|inv| inv.dies_here(faults.kill, &mut rng));
        let kill_before = rng.random_bool(0.5);
        if let (Some(inv), true) = (&kill, kill_before) {
            control.kills.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(operation = %op, "fault layer: the invocation dies before this call");
            inv.kill();
            return HttpConnectorFuture::new(std::future::pending());
        }
        let forwarded = self.inner.call(request);
        HttpConnectorFuture::new(async move {
            let response = forwarded.await?;
            let ok = response.status().is_success();
            // The answer is read whole (it is streamed from the emulator) so that it can be kept.
            let (status, headers) = (response.status(), response.headers().clone());
            let body = aws_smithy_types::byte_stream::ByteStream::new(response.into_body())
                .collect()
                .await
                .map_err(|e| aws_smithy_runtime_api::client::result::ConnectorError::io(Box::new(e)))?
                .into_bytes()
                .to_vec();
            if let (true, Some(token)) = (ok, token) {
                control.remember(token, body.clone());
            }
            let mut response = HttpResponse::new(status, SdkBody::from(body));
            *response.headers_mut() = headers;
            if let Some(inv) = kill {
                control.kills.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(operation = %op, "fault layer: the invocation dies after this call");
                inv.kill();
                return std::future::pending().await;
            }
            // Only an applied write's answer is lost (a refused one's loss would be a plain retry).
            if lose && ok {
                control.losts.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(operation = %op, "fault layer: applied, and the answer is lost (500)");
                let mut lost = HttpResponse::new(
                    StatusCode::try_from(500).expect("500 is a status"),
                    SdkBody::from(
                        json!({"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError", "message": "Internal server error"})
                            .to_string(),
                    ),
                );
                lost.headers_mut().insert("content-type", "application/x-amz-json-1.0");
                lost.headers_mut().insert("x-amzn-requestid", uuid::Uuid::new_v4().simple().to_string());
                return Ok(lost);
            }
            Ok(response)
        })
    }
}

/// A 200 with `body`, as DynamoDB answers a replayed token.
fn ok_response(body: Vec<u8>) -> HttpResponse {
    let mut res = HttpResponse::new(StatusCode::try_from(200).expect("200 is a status"), SdkBody::from(body));
    res.headers_mut().insert("content-type", "application/x-amz-json-1.0");
    res.headers_mut().insert("x-amzn-requestid", uuid::Uuid::new_v4().simple().to_string());
    res
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    Conflict,
    Throttle,
}

impl FaultyConnector {
    fn decide(&self, op: &str, body: Option<&[u8]>) -> Option<(Fault, HttpResponse)> {
        let faults = self.control.faults();
        let mut rng = rand::rng();
        let roll: f64 = rng.random();
        let fault = if roll < faults.conflict {
            Fault::Conflict
        } else if roll < faults.conflict + faults.throttle {
            Fault::Throttle
        } else {
            return None;
        };
        let items = || body.and_then(|b| serde_json::from_slice::<Value>(b).ok()).and_then(|v| v["TransactItems"].as_array().map(Vec::len));
        let response = match (op, fault) {
            ("TransactWriteItems" | "TransactGetItems", Fault::Conflict) => cancelled(items().unwrap_or(1), "TransactionConflict"),
            // Half the throttled transactions are cancelled with a reason, half refused outright.
            ("TransactWriteItems" | "TransactGetItems", Fault::Throttle) if rng.random_bool(0.5) => {
                cancelled(items().unwrap_or(1), "ThrottlingError")
            }
            ("PutItem" | "UpdateItem" | "DeleteItem", Fault::Conflict) => {
                error("TransactionConflictException", "Transaction is ongoing for the item")
            }
            // Only writes and transactions collide; a read or a Query under `conflict` passes.
            (_, Fault::Conflict) => return None,
            (_, Fault::Throttle) if rng.random_bool(0.5) => error(
                "ProvisionedThroughputExceededException",
                "The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.",
            ),
            (_, Fault::Throttle) => error(
                "ThrottlingException",
                "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling your table or index so please try again shortly.",
            ),
        };
        Some((fault, response))
    }
}

/// DynamoDB's error answer: HTTP 400, `application/x-amz-json-1.0`, `__type` naming the shape.
fn response(body: Value) -> HttpResponse {
    let mut res = HttpResponse::new(StatusCode::try_from(400).expect("400 is a status"), SdkBody::from(body.to_string()));
    res.headers_mut().insert("content-type", "application/x-amz-json-1.0");
    res.headers_mut().insert("x-amzn-requestid", uuid::Uuid::new_v4().simple().to_string());
    res
}

fn error(shape: &str, message: &str) -> HttpResponse {
    response(json!({"__type": format!("com.amazonaws.dynamodb.v20120810#{shape}"), "message": message}))
}

/// A cancellation with `code` on one random item of `n` and `None` on the rest.
fn cancelled(n: usize, code: &str) -> HttpResponse {
    let hit = rand::rng().random_range(0..n.max(1));
    let message = match code {
        "TransactionConflict" => "Transaction is ongoing for the item",
        _ => "Throughput exceeds the current capacity of your table or index.",
    };
    let reasons: Vec<Value> =
        (0..n.max(1)).map(|i| if i == hit { json!({"Code": code, "Message": message}) } else { json!({"Code": "None"}) }).collect();
    let codes: Vec<&str> = (0..n.max(1)).map(|i| if i == hit { code } else { "None" }).collect();
    response(json!({
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "Message": format!("Transaction cancelled, please refer cancellation reasons for specific reasons [{}]", codes.join(", ")),
        "CancellationReasons": reasons,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_setting() {
        assert_eq!(Faults::parse("conflict=0.25,throttle=0.1").unwrap(), Faults { conflict: 0.25, throttle: 0.1, ..Faults::OFF });
        assert_eq!(Faults::parse("throttle=1").unwrap(), Faults { throttle: 1.0, ..Faults::OFF });
        assert_eq!(Faults::parse("lost=0.1,kill=0.05").unwrap(), Faults { lost: 0.1, kill: 0.05, ..Faults::OFF });
        assert!(Faults::parse("conflict=2").is_err());
        assert!(Faults::parse("conflicts=0.1").is_err());
        assert!(Faults::parse("conflict").is_err());
    }
}
