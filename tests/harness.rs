//! The test rig. Each test binary starts, once, the real local stack: the moto emulator
//! (single-threaded), the SAM template's resources created through its CloudFormation, and, where the
//! binary asks for it, the API on a free loopback port with the worker polling the queue. It runs on
//! its own thread and runtime, so it outlives any one test; the emulator exits with the process.
//!
//! Tests isolate themselves by user id (every test makes fresh users), and check outcomes both
//! through the API and by reading the table.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use patchbay_adapters::carrier::SandboxCarrier;
use patchbay_adapters::webhooks::telnyx_public_key;
use patchbay_adapters::{DynamoStore, SqsQueue};
use patchbay_domain::number_ops::Carriers;
use patchbay_domain::CarrierName;
use patchbay_local::devauth::DevAuth;
use patchbay_local::poller::Poller;
use patchbay_local::server::{self, Backends, WebhookConfig, DEV_TELNYX_PUBLIC_KEY, DEV_TWILIO_AUTH_TOKEN};
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
}

static SHARED: OnceLock<Shared> = OnceLock::new();

/// Which parts of the stack a test binary runs.
#[derive(Clone, Copy)]
pub struct Parts {
    pub api: bool,
    /// Poll the work queue with the sandbox carrier (visibility 1 s, so retries come quickly).
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
                    let webhooks = WebhookConfig {
                        telnyx_key: Some(telnyx_public_key(DEV_TELNYX_PUBLIC_KEY).expect("dev key")),
                        twilio_token: Some(secrecy::SecretString::from(DEV_TWILIO_AUTH_TOKEN)),
                        public_url: Some(format!("http://{addr}")),
                    };
                    let hooks = server::sandbox_webhooks(&format!("http://{addr}"));
                    let mut carriers = sandbox_carriers();
                    carriers.sandbox = Some(std::sync::Arc::new(SandboxCarrier { webhooks: hooks.clone() }));
                    let backends = Backends::new(&stack.sdk, &stack.info.table, &stack.info.work_queue_url, carriers.clone(), webhooks);
                    let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
                    if parts.worker {
                        let poller = Poller {
                            sqs: aws_sdk_sqs::Client::new(&stack.sdk),
                            queue_url: stack.info.work_queue_url.clone(),
                            visibility_timeout: Some(1),
                            idle: Duration::from_millis(50),
                        };
                        let worker = Worker {
                            store: backends.store.clone(),
                            numbers: backends.store.clone(),
                            messages: backends.store.clone(),
                            carrier: std::sync::Arc::new(SandboxCarrier::default()),
                            carriers: carriers.clone(),
                            max_receive_count: 5,
                        };
                        tokio::spawn(poller.run(worker, stop_rx.clone()));
                    }
                    let api = if parts.api {
                        let router = server::router(&backends, DevAuth::new(DEV_SECRET), hooks.clone());
                        tokio::spawn(server::serve(listener, router, std::future::pending()));
                        Some(format!("http://{addr}"))
                    } else {
                        None
                    };
                    tx.send(Shared { endpoint: stack.emulator.endpoint(), info: stack.info.clone(), api }).expect("send");
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
    pub dynamo: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub store: DynamoStore,
    pub queue: SqsQueue,
    pub http: reqwest::Client,
}

impl TestEnv {
    pub async fn new(parts: Parts) -> Self {
        let shared = tokio::task::spawn_blocking(move || shared(parts)).await.expect("stack thread");
        let sdk = sdk_config(&shared.endpoint).await;
        let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        Self {
            store: DynamoStore::new(dynamo.clone(), &shared.info.table),
            queue: SqsQueue::new(sqs.clone(), &shared.info.work_queue_url),
            dynamo,
            sqs,
            http: reqwest::Client::builder().timeout(Duration::from_secs(60)).build().expect("http client"),
            shared,
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
