//! The test rig. Each test binary starts, once, the real local stack: the moto emulator
//! (single-threaded), the SAM template's resources created through its CloudFormation, and, where the
//! binary asks for it, the API on a free loopback port with the worker polling the queue. It runs on
//! its own thread and runtime, so it outlives any one test; the emulator exits with the process.
//!
//! Tests isolate themselves by user id (every test makes fresh users), and check outcomes both
//! through the API and by reading the table.
//!
//! Contention is normal: the functions' DynamoDB clients (and `TestEnv::store`) sit behind the fault
//! layer, which cancels transactions with `TransactionConflict` and throttles calls the way real
//! DynamoDB does under load (`PATCHBAY_TEST_FAULTS`, default `conflict=0.2,throttle=0.1`; `off`
//! turns it off). Test clients retry 503 as real clients do (`TestEnv::http`); what tests read back
//! from the table to check outcomes goes around the layer (`TestEnv::dynamo`).

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use patchbay_adapters::carrier::SandboxCarrier;
use patchbay_adapters::webhooks::telnyx_public_key;
use patchbay_adapters::webhooks::WebhookKeys;
use patchbay_adapters::{Config, DynamoStore, SqsQueue, Wiring};
use patchbay_domain::numbers::Carriers;
use patchbay_domain::CarrierName;
use patchbay_local::devauth::DevAuth;
use patchbay_local::faults::{FaultControl, Faults};
use patchbay_local::poller::Poller;
use patchbay_local::server::{self, DEV_TELNYX_PUBLIC_KEY, DEV_TWILIO_AUTH_TOKEN, DEV_VAPI_SECRET};
use patchbay_local::stack::sdk_config;
use patchbay_local::{LocalStack, StackInfo, StackOptions};
use patchbay_worker::Worker;
use serde_json::Value;

pub const DEV_SECRET: &str = "patchbay-test-secret";

/// What a test needs to reach the shared stack.
#[derive(Clone)]
pub struct Shared {
    pub endpoint: String,
    pub info: StackInfo,
    /// `http://127.0.0.1:PORT` when the API runs in this binary.
    pub api: Option<String>,
    /// The fault layer in front of the functions' DynamoDB clients (and `TestEnv::store`).
    pub faults: Option<std::sync::Arc<FaultControl>>,
}

/// The faults every test binary runs its functions with (`PATCHBAY_TEST_FAULTS`).
pub const DEFAULT_TEST_FAULTS: Faults = Faults { conflict: 0.2, throttle: 0.1, ..Faults::OFF };

fn test_faults() -> Option<std::sync::Arc<FaultControl>> {
    match std::env::var("PATCHBAY_TEST_FAULTS").ok().as_deref().map(str::trim) {
        Some("off") => None,
        Some(spec) if !spec.is_empty() => Some(FaultControl::new(Faults::parse(spec).expect("PATCHBAY_TEST_FAULTS"))),
        _ => Some(FaultControl::new(DEFAULT_TEST_FAULTS)),
    }
}

static SHARED: OnceLock<Shared> = OnceLock::new();

/// The webhook retry schedule of the test stack, in seconds (the real one runs for a day).
pub const WEBHOOK_TEST_SCHEDULE: [u64; 7] = [1, 2, 4, 8, 16, 16, 16];

/// Which parts of the stack a test binary runs.
#[derive(Clone, Copy)]
pub struct Parts {
    pub api: bool,
    /// Poll the work queue with the sandbox carrier (visibility 1 s, so retries come quickly), and
    /// relay the outbox from the table's stream to the queue.
    pub worker: bool,
}

pub fn shared(parts: Parts) -> Shared {
    SHARED
        .get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
                rt.block_on(async move {
                    let stack = LocalStack::start(StackOptions { stack_name: "patchbay-test".into(), ..Default::default() })
                        .await
                        .expect("local stack (run local/bootstrap.sh first)");
                    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
                    let addr = listener.local_addr().expect("addr");
                    let webhooks = WebhookKeys {
                        telnyx_key: Some(telnyx_public_key(DEV_TELNYX_PUBLIC_KEY).expect("dev key")),
                        twilio_token: Some(secrecy::SecretString::from(DEV_TWILIO_AUTH_TOKEN)),
                        public_url: Some(format!("http://{addr}")),
                        vapi_secret: Some(secrecy::SecretString::from(DEV_VAPI_SECRET)),
                    };
                    let hooks = server::sandbox_webhooks(&format!("http://{addr}"));
                    let mut carriers = sandbox_carriers();
                    carriers.sandbox = Some(std::sync::Arc::new(SandboxCarrier { webhooks: hooks.clone(), ..Default::default() }));
                    let faults = test_faults();
                    let functions_sdk = match &faults {
                        Some(control) => control.wrap(&stack.sdk),
                        None => stack.sdk.clone(),
                    };
                    let wiring =
                        Wiring::new(&functions_sdk, stack.config().expect("config")).with_carriers(carriers).with_webhooks(webhooks);
                    let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
                    if parts.worker {
                        // The outbox relay with the worker, as on AWS: the commands of state changes
                        // reach the queue through it. (A binary without the worker drives commands by
                        // hand, and its queue holds only what its tests put there.)
                        let streams = patchbay_local::streams::StreamPoller {
                            client: aws_sdk_dynamodbstreams::Client::new(&stack.sdk),
                            stream_arn: stack.info.stream_arn.clone(),
                            idle: Duration::from_millis(50),
                        };
                        tokio::spawn(
                            streams.run(
                                patchbay_outbox_relay::Relay { queue: wiring.queue.clone(), bus: wiring.event_bus() },
                                stop_rx.clone(),
                            ),
                        );
                        let poller = Poller {
                            sqs: aws_sdk_sqs::Client::new(&stack.sdk),
                            queue_url: stack.info.work_queue_url.clone(),
                            visibility_timeout: Some(1),
                            idle: Duration::from_millis(50),
                        };
                        // Messages come back 1 s after a failed delivery: a send's claim lease of 2 s
                        // lets the next deliveries take over a claim whose holder was killed.
                        let worker = Worker { send_lease: Duration::from_secs(2), ..Worker::new(&wiring) };
                        tokio::spawn(poller.run(worker, stop_rx.clone()));
                        // The webhook dispatcher, its retry schedule shortened to seconds.
                        let webhooks = Poller {
                            sqs: aws_sdk_sqs::Client::new(&stack.sdk),
                            queue_url: stack.info.webhook_queue_url.clone(),
                            visibility_timeout: None,
                            idle: Duration::from_millis(50),
                        };
                        let dispatcher = patchbay_webhook_dispatcher::WebhookDispatcher {
                            schedule: WEBHOOK_TEST_SCHEDULE.iter().map(|s| Duration::from_secs(*s)).collect(),
                            ..patchbay_webhook_dispatcher::WebhookDispatcher::new(&wiring)
                        };
                        tokio::spawn(webhooks.run(dispatcher, stop_rx.clone()));
                    }
                    let api = if parts.api {
                        let router = server::router(&wiring, DevAuth::new(DEV_SECRET), hooks.clone());
                        tokio::spawn(server::serve(listener, router, std::future::pending()));
                        Some(format!("http://{addr}"))
                    } else {
                        None
                    };
                    tx.send(Shared { endpoint: stack.emulator.endpoint(), info: stack.info.clone(), api, faults }).expect("send");
                    let _keep = (stack, _stop_tx);
                    std::future::pending::<()>().await;
                });
            });
            rx.recv_timeout(Duration::from_secs(120)).expect("the local stack did not start within 120 s")
        })
        .clone()
}

/// Number carriers as the local stack has them: the sandbox, as the default.
pub fn sandbox_carriers() -> Carriers {
    Carriers { sandbox: Some(std::sync::Arc::new(SandboxCarrier::default())), default: Some(CarrierName::Sandbox), ..Default::default() }
}

/// Per-test handles: SDK clients built in the test's own runtime.
pub struct TestEnv {
    pub shared: Shared,
    /// Straight to the emulator, around the fault layer: for reading back what is in the table.
    pub dynamo: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    /// The store as the functions have it: behind the fault layer.
    pub store: DynamoStore,
    pub queue: SqsQueue,
    /// What functions built in this test are made of: `store` and `queue`, the sandbox carriers, no
    /// webhook keys. `XApi::new(&env.wiring)`, `Worker { carriers, ..Worker::new(&env.wiring) }`.
    pub wiring: Wiring,
    /// Retries 503 (up to 6 times), as a real client or carrier would.
    pub http: reqwest::Client,
}

/// An HTTP client that retries 503 answers from the local stack, as real clients and carriers do.
pub fn retrying_http() -> reqwest::Client {
    let retry = reqwest::retry::for_host("127.0.0.1".to_owned()).no_budget().max_retries_per_request(6).classify_fn(|rr| {
        if rr.status() == Some(reqwest::StatusCode::SERVICE_UNAVAILABLE) {
            rr.retryable()
        } else {
            rr.success()
        }
    });
    patchbay_adapters::tls::reqwest_builder().timeout(Duration::from_secs(60)).retry(retry).build().expect("http client")
}

impl TestEnv {
    pub async fn new(parts: Parts) -> Self {
        let shared = tokio::task::spawn_blocking(move || shared(parts)).await.expect("stack thread");
        let sdk = sdk_config(&shared.endpoint).await;
        let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let functions_sdk = match &shared.faults {
            Some(control) => control.wrap(&sdk),
            None => sdk.clone(),
        };
        let env = [
            ("TABLE_NAME", shared.info.table.clone()),
            ("WORK_QUEUE_URL", shared.info.work_queue_url.clone()),
            ("EVENT_BUS_NAME", shared.info.event_bus_name.clone()),
            ("WEBHOOK_QUEUE_URL", shared.info.webhook_queue_url.clone()),
            ("PATCHBAY_WEBHOOKS_ALLOW_LOOPBACK", "true".to_owned()),
        ];
        let config = Config::from_lookup(|k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())).expect("config");
        let wiring = Wiring::new(&functions_sdk, config).with_carriers(sandbox_carriers());
        Self { store: (*wiring.store).clone(), queue: (*wiring.queue).clone(), wiring, dynamo, sqs, http: retrying_http(), shared }
    }

    /// The API and the local operator routes (`/local/reconcile`, `/local/dlq…`) built from `wiring`,
    /// served on a free loopback port; answers their base URL. For tests that hold their own providers.
    pub async fn serve(&self, wiring: &Wiring) -> String {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let routes = server::router(wiring, DevAuth::new(DEV_SECRET), None).merge(patchbay_local::ops::ops_routes(
            wiring,
            self.sqs.clone(),
            self.shared.info.dlq_url.clone(),
        ));
        tokio::spawn(server::serve(listener, routes, std::future::pending()));
        base
    }

    /// The outbox relay (the table's stream to the work queue), for a binary that runs its own worker;
    /// it runs until the answered sender is dropped.
    pub async fn spawn_relay(&self) -> tokio::sync::watch::Sender<bool> {
        let streams = patchbay_local::streams::StreamPoller {
            client: aws_sdk_dynamodbstreams::Client::new(&sdk_config(&self.shared.endpoint).await),
            stream_arn: self.shared.info.stream_arn.clone(),
            idle: Duration::from_millis(50),
        };
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(
            streams.run(
                patchbay_outbox_relay::Relay { queue: std::sync::Arc::new(self.queue.clone()), bus: self.wiring.event_bus() },
                stop_rx,
            ),
        );
        stop
    }

    /// The bodies of up to 10 messages on the work queue, looked at without taking them (visibility 0).
    pub async fn peek_work_queue(&self) -> Vec<String> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.shared.info.work_queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .send()
            .await
            .expect("receive from the work queue");
        out.messages().iter().filter_map(|m| m.body().map(str::to_owned)).collect()
    }

    /// A poller of the work queue (the local event source mapping), failed messages back after 1 s.
    pub fn poller(&self) -> Poller {
        Poller {
            sqs: self.sqs.clone(),
            queue_url: self.shared.info.work_queue_url.clone(),
            visibility_timeout: Some(1),
            idle: Duration::from_millis(100),
        }
    }

    pub fn api(&self, path: &str) -> String {
        format!("{}{path}", self.shared.api.as_deref().expect("this binary runs no API"))
    }

    /// All items of a user's partition, straight from the table (consistent read).
    pub async fn user_items(&self, user: &str) -> Vec<HashMap<String, AttributeValue>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .dynamo
                .query()
                .table_name(&self.shared.info.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", AttributeValue::S(format!("USER#{user}")))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("query");
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                return items;
            }
        }
    }

    /// (profile id, active, sync_state) of every profile item of the user, from the table.
    pub async fn table_profiles(&self, user: &str) -> Vec<(String, bool, String)> {
        self.user_items(user)
            .await
            .into_iter()
            .filter(|i| s(i, "sk").starts_with("PROFILE#"))
            .map(|i| (s(&i, "id"), matches!(i.get("active"), Some(AttributeValue::Bool(true))), s(&i, "sync_state")))
            .collect()
    }

    /// The user whose owner guard holds `number`, from the table.
    pub async fn owner_in_table(&self, number: &str) -> Option<String> {
        let out = self
            .dynamo
            .get_item()
            .table_name(&self.shared.info.table)
            .key("pk", AttributeValue::S(format!("NUMBER#{number}")))
            .key("sk", AttributeValue::S("OWNER".into()))
            .consistent_read(true)
            .send()
            .await
            .expect("get owner guard");
        out.item.map(|i| s(&i, "user_id"))
    }

    /// The profile the user's active pointer names, from the table.
    pub async fn table_pointer(&self, user: &str) -> Option<String> {
        self.user_items(user).await.into_iter().find(|i| s(i, "sk") == "ACTIVE_PROFILE").map(|i| s(&i, "profile_id"))
    }
}

pub fn s(item: &HashMap<String, AttributeValue>, k: &str) -> String {
    match item.get(k) {
        Some(AttributeValue::S(v)) => v.clone(),
        Some(AttributeValue::N(v)) => v.clone(),
        _ => String::new(),
    }
}

/// A store call made the way a client makes a request: `Contended` (collisions or throttling that
/// outlasted the store's own retries; the contract is that nothing was applied) is sent again, as a
/// client sends a request again after a 503. Any other error fails the test. For set-up done straight
/// on the store behind the fault layer, where one call in ~15,000 runs out of the store's tries.
pub async fn as_client<T, F, Fut>(mut call: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, patchbay_domain::StoreError>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match call().await {
            Err(patchbay_domain::StoreError::Contended(why)) if attempt < 5 => tracing::debug!(%why, attempt, "contended; again"),
            r => return r.unwrap_or_else(|e| panic!("store call failed after {attempt} attempt(s): {e}")),
        }
    }
}

/// An SQS record of `env` as Lambda hands it to the worker on its `receive_count`th delivery.
pub fn record(env: &patchbay_domain::CommandEnvelope, receive_count: u32) -> aws_lambda_events::event::sqs::SqsMessage {
    serde_json::from_value(serde_json::json!({
        "messageId": format!("m-{}-{receive_count}", env.id),
        "body": serde_json::to_string(env).unwrap(),
        "attributes": {"ApproximateReceiveCount": receive_count.to_string()},
    }))
    .unwrap()
}

/// A fresh user id and a dev token for it.
pub fn user() -> (String, String) {
    let id = format!("user-{}", uuid::Uuid::new_v4().simple());
    let token = DevAuth::new(DEV_SECRET).mint(&id, 3600).expect("token");
    (id, token)
}

/// A response's status and JSON body (`Null` if the body is not JSON).
pub async fn parts(res: reqwest::Response) -> (u16, Value, String) {
    let status = res.status().as_u16();
    let ct = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let body = res.text().await.unwrap_or_default();
    (status, serde_json::from_str(&body).unwrap_or(Value::Null), ct)
}

/// Poll `f` until it returns `Some`, for up to `secs` seconds (the worker is asynchronous).
pub async fn eventually<T, F, Fut>(secs: u64, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if tokio::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Signed Telnyx webhooks, as Telnyx (and the sandbox) send them.
pub mod telnyx {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use ed25519_dalek::{Signer, SigningKey};
    use serde_json::json;

    /// The secret half of the published Telnyx test pair whose public half the local stack trusts.
    pub const TEST_SECRET: &str = "p68GNpDl9oAQohBiK0MEOFIjxnoFnz0uGGeJqxQ5PSb7sT30NeKJBe9x41ficebctubmao9Zp3lGEOva5+4KKQ==";

    pub fn signer() -> SigningKey {
        SigningKey::from_bytes(&STANDARD.decode(TEST_SECRET).expect("base64")[..32].try_into().expect("32 bytes"))
    }

    /// A `message.received` webhook body.
    pub fn inbound_body(event_id: &str, from: &str, to: &str, text: &str) -> String {
        json!({
            "data": {
                "event_type": "message.received",
                "id": event_id,
                "occurred_at": "2026-11-22T03:00:00.000+00:00",
                "record_type": "event",
                "payload": {"id": format!("msg-{event_id}"), "direction": "inbound", "from": {"phone_number": from}, "to": [{"phone_number": to}], "text": text, "type": "SMS"}
            },
            "meta": {"attempt": 1, "delivered_to": "https://example.com/webhooks/telnyx"}
        })
        .to_string()
    }

    /// (`telnyx-signature-ed25519`, `telnyx-timestamp`) for `body` at `ts`.
    pub fn signed(key: &SigningKey, ts: i64, body: &str) -> (String, String) {
        let ts = ts.to_string();
        let sig = STANDARD.encode(key.sign(format!("{ts}|{body}").as_bytes()).to_bytes());
        (sig, ts)
    }
}

/// Call webhooks as the providers send them: Telnyx call-control events and Vapi end-of-call reports.
pub mod calls {
    use serde_json::{json, Value};

    /// A Telnyx call event body (sign it with `telnyx::signed`).
    pub fn call_event(event_id: &str, kind: &str, session: &str, connection: &str, at: time::OffsetDateTime, extra: Value) -> String {
        let mut payload = json!({"call_control_id": format!("v3:{session}"), "call_session_id": session, "connection_id": connection,
            "from": "+14155550123", "to": "+17185550141", "direction": "incoming"});
        if let (Some(p), Some(e)) = (payload.as_object_mut(), extra.as_object()) {
            p.extend(e.clone());
        }
        json!({"data": {"event_type": kind, "id": event_id, "occurred_at": patchbay_adapters::wire::rfc3339(at), "record_type": "event", "payload": payload},
            "meta": {"attempt": 1, "delivered_to": "https://example.com/webhooks/telnyx"}})
        .to_string()
    }

    /// A Vapi end-of-call report for a call to `number` that lasted `seconds`.
    pub fn report(call_id: &str, number: &str, seconds: u32, cost: f64) -> String {
        let end = time::OffsetDateTime::now_utc();
        let start = end - time::Duration::seconds(i64::from(seconds));
        json!({"message": {
            "type": "end-of-call-report", "endedReason": "customer-ended-call",
            "call": {"id": call_id, "type": "inboundPhoneCall", "customer": {"number": "+14155550123"}},
            "phoneNumber": {"number": number},
            "startedAt": patchbay_adapters::wire::rfc3339(start), "endedAt": patchbay_adapters::wire::rfc3339(end),
            "durationSeconds": seconds, "cost": cost, "artifact": {}, "analysis": {}
        }})
        .to_string()
    }
}

impl TestEnv {
    /// POST a Vapi webhook with the given headers; answers the status.
    pub async fn post_vapi(&self, body: &str, headers: &[(&str, String)]) -> u16 {
        let mut req = self.http.post(self.api("/webhooks/vapi")).header("content-type", "application/json").body(body.to_owned());
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        req.send().await.expect("webhook").status().as_u16()
    }

    /// A signed Telnyx call event, signed now.
    pub async fn send_call_event(&self, body: &str) -> u16 {
        let (sig, ts) = telnyx::signed(&telnyx::signer(), time::OffsetDateTime::now_utc().unix_timestamp(), body);
        self.post_telnyx(body, Some(&sig), Some(&ts)).await
    }

    /// POST a Telnyx webhook (with whichever signature headers are given); answers the status.
    pub async fn post_telnyx(&self, body: &str, sig: Option<&str>, ts: Option<&str>) -> u16 {
        let mut req = self.http.post(self.api("/webhooks/telnyx")).header("content-type", "application/json").body(body.to_owned());
        if let Some(sig) = sig {
            req = req.header("telnyx-signature-ed25519", sig);
        }
        if let Some(ts) = ts {
            req = req.header("telnyx-timestamp", ts);
        }
        req.send().await.expect("webhook").status().as_u16()
    }

    /// A signed `message.received` from `from` to `to`, signed now.
    pub async fn send_inbound(&self, event_id: &str, from: &str, to: &str, text: &str) -> u16 {
        let body = telnyx::inbound_body(event_id, from, to, text);
        let (sig, ts) = telnyx::signed(&telnyx::signer(), time::OffsetDateTime::now_utc().unix_timestamp(), &body);
        self.post_telnyx(&body, Some(&sig), Some(&ts)).await
    }

    /// An API call as `token`: the status and the JSON body.
    pub async fn call(&self, token: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(method, self.api(path)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let (st, b, _) = parts(req.send().await.expect("request")).await;
        (st, b)
    }

    /// GET `path` until `f` holds (30 s), answering the body; panics with the last body otherwise.
    pub async fn until(&self, token: &str, path: &str, f: impl Fn(&Value) -> bool) -> Value {
        let last = std::sync::Mutex::new(Value::Null);
        eventually(30, || async {
            let (st, b) = self.call(token, reqwest::Method::GET, path, None).await;
            *last.lock().expect("lock") = b.clone();
            (st == 200 && f(&b)).then_some(b)
        })
        .await
        .unwrap_or_else(|| panic!("{path} never reached the expected state; last: {}", last.lock().expect("lock")))
    }
}

/// A deterministic shuffle (the same order on every run).
pub fn shuffle<T>(v: &mut [T], mut seed: u64) {
    for i in (1..v.len()).rev() {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        v.swap(i, (seed >> 33) as usize % (i + 1));
    }
}
