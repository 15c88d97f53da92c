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
//! Only DynamoDB calls are touched (SQS and Secrets Manager pass through). The setting is
//! `PATCHBAY_FAULTS`, e.g. `conflict=0.25,throttle=0.1`; the tests build it directly.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

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
}

/// The layer's live setting and what it did. Shared by every client it wraps; the rates can be
/// changed while the stack runs (a test runs the same scenario with faults on, then off).
#[derive(Debug, Default)]
pub struct FaultControl {
    conflict: AtomicU64,
    throttle: AtomicU64,
    /// DynamoDB calls seen.
    pub calls: AtomicU64,
    /// Calls answered with a collision (cancellation or `TransactionConflictException`).
    pub conflicts: AtomicU64,
    /// Calls answered with throttling.
    pub throttles: AtomicU64,
}

impl FaultControl {
    pub fn new(faults: Faults) -> Arc<Self> {
        let c = Arc::new(Self::default());
        c.set(faults);
        c
    }

    pub fn set(&self, faults: Faults) {
        self.conflict.store(faults.conflict.to_bits(), Ordering::Relaxed);
        self.throttle.store(faults.throttle.to_bits(), Ordering::Relaxed);
    }

    pub fn faults(&self) -> Faults {
        Faults {
            conflict: f64::from_bits(self.conflict.load(Ordering::Relaxed)),
            throttle: f64::from_bits(self.throttle.load(Ordering::Relaxed)),
        }
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
    /// `conflict=0.25,throttle=0.1` (either may be left out; rates are 0..=1).
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut faults = Faults { conflict: 0.0, throttle: 0.0 };
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').ok_or_else(|| format!("{part:?}: expected name=rate"))?;
            let rate: f64 = value.trim().parse().map_err(|_| format!("{part:?}: {value:?} is not a number"))?;
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{part:?}: a rate is between 0 and 1"));
            }
            match name.trim() {
                "conflict" => faults.conflict = rate,
                "throttle" => faults.throttle = rate,
                other => return Err(format!("{other:?}: the faults are conflict and throttle")),
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

    pub const OFF: Faults = Faults { conflict: 0.0, throttle: 0.0 };
}

impl std::fmt::Display for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "conflict={},throttle={}", self.conflict, self.throttle)
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
        if let Some(op) = operation {
            self.control.calls.fetch_add(1, Ordering::Relaxed);
            if let Some((fault, response)) = self.decide(&op, request.body().bytes()) {
                match fault {
                    Fault::Conflict => self.control.conflicts.fetch_add(1, Ordering::Relaxed),
                    Fault::Throttle => self.control.throttles.fetch_add(1, Ordering::Relaxed),
                };
                tracing::debug!(operation = %op, ?fault, "fault layer: answered without forwarding");
                return HttpConnectorFuture::ready(Ok(response));
            }
        }
        self.inner.call(request)
    }
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
        assert_eq!(Faults::parse("conflict=0.25,throttle=0.1").unwrap(), Faults { conflict: 0.25, throttle: 0.1 });
        assert_eq!(Faults::parse("throttle=1").unwrap(), Faults { conflict: 0.0, throttle: 1.0 });
        assert!(Faults::parse("conflict=2").is_err());
        assert!(Faults::parse("conflicts=0.1").is_err());
        assert!(Faults::parse("conflict").is_err());
    }
}
