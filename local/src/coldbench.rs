//! `scripts/bench cold`: every function's cold start, measured through a minimal Lambda Runtime API
//! on loopback, beside a baseline built in the same run.
//!
//! For each binary, `rounds` times: a fresh process is started with `AWS_LAMBDA_RUNTIME_API` pointing
//! at this server and the template's environment (AWS calls go to the local emulator). *init* is
//! process start → its first `GET …/invocation/next`; *first* is the first event handed over → its
//! response; then `warm` more events give the *warm* invoke. Peak RSS is the process's `VmHWM` after
//! the last invoke; size is the stripped binary's. Medians over the rounds; every figure also as a
//! ratio to the baseline.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// One function to measure: its binary and the event each invoke hands it.
pub struct Subject {
    pub name: String,
    pub binary: PathBuf,
    pub event: Value,
}

#[derive(Debug, Clone, Default)]
pub struct Figures {
    pub init: Duration,
    pub first: Duration,
    pub warm: Duration,
    pub rss_kib: u64,
    pub size: u64,
    /// The first invoke's answer was an error (`/error`) rather than a response.
    pub errored: bool,
}

struct Runtime {
    first_next: Mutex<Option<Instant>>,
    events: tokio::sync::Mutex<mpsc::Receiver<(String, Value)>>,
    answers: Mutex<HashMap<String, oneshot::Sender<bool>>>,
}

async fn next(State(rt): State<Arc<Runtime>>) -> impl IntoResponse {
    {
        let mut first = rt.first_next.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert_with(Instant::now);
    }
    let got = rt.events.lock().await.recv().await;
    let Some((id, event)) = got else { return (StatusCode::GONE, HeaderMap::new(), String::new()) };
    let mut h = HeaderMap::new();
    let deadline = time::OffsetDateTime::now_utc().unix_timestamp() * 1000 + 30_000;
    if let Ok(v) = HeaderValue::from_str(&id) {
        h.insert("lambda-runtime-aws-request-id", v);
    }
    h.insert("lambda-runtime-deadline-ms", HeaderValue::from(deadline));
    h.insert("lambda-runtime-invoked-function-arn", HeaderValue::from_static("arn:aws:lambda:us-east-1:123456789012:function:bench"));
    h.insert("lambda-runtime-trace-id", HeaderValue::from_static("Root=1-00000000-000000000000000000000000"));
    (StatusCode::OK, h, event.to_string())
}

fn answer(rt: &Runtime, id: &str, ok: bool) -> StatusCode {
    if let Some(tx) = rt.answers.lock().unwrap_or_else(|p| p.into_inner()).remove(id) {
        let _ = tx.send(ok);
    }
    StatusCode::ACCEPTED
}

async fn response(State(rt): State<Arc<Runtime>>, Path(id): Path<String>) -> StatusCode {
    answer(&rt, &id, true)
}

async fn error(State(rt): State<Arc<Runtime>>, Path(id): Path<String>, body: String) -> StatusCode {
    eprintln!("  invoke {id} answered an error: {}", body.chars().take(300).collect::<String>());
    answer(&rt, &id, false)
}

async fn init_error(body: String) -> StatusCode {
    eprintln!("  init error: {}", body.chars().take(300).collect::<String>());
    StatusCode::ACCEPTED
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

/// One cold start and `warm` warm invokes of one binary.
async fn once(subject: &Subject, env: &[(String, String)], warm: usize) -> Result<Figures, Error> {
    let (tx, rx) = mpsc::channel(1);
    let rt = Arc::new(Runtime { first_next: Mutex::new(None), events: tokio::sync::Mutex::new(rx), answers: Mutex::new(HashMap::new()) });
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(rt.clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let started = Instant::now();
    let mut child = tokio::process::Command::new(&subject.binary)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", &subject.name)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().unwrap_or(0);
    let init = loop {
        if let Some(t) = *rt.first_next.lock().unwrap_or_else(|p| p.into_inner()) {
            break t - started;
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{} exited during init: {status}", subject.name).into());
        }
        if started.elapsed() > Duration::from_secs(30) {
            return Err(format!("{} did not ask for an event in 30 s", subject.name).into());
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    };
    let mut times = Vec::with_capacity(warm + 1);
    let mut errored = false;
    for i in 0..=warm {
        let id = format!("bench-{i}-{}", uuid::Uuid::new_v4().simple());
        let (atx, arx) = oneshot::channel();
        rt.answers.lock().unwrap_or_else(|p| p.into_inner()).insert(id.clone(), atx);
        let t0 = Instant::now();
        tx.send((id, subject.event.clone())).await?;
        let ok =
            tokio::time::timeout(Duration::from_secs(30), arx).await.map_err(|_| format!("{} did not answer in 30 s", subject.name))??;
        times.push(t0.elapsed());
        errored |= i == 0 && !ok;
    }
    let rss = rss_kib(pid);
    let _ = child.kill().await;
    server.abort();
    let first = times[0];
    let mut rest: Vec<Duration> = times[1..].to_vec();
    rest.sort();
    let warm = rest.get(rest.len() / 2).copied().unwrap_or_default();
    let size = std::fs::metadata(&subject.binary)?.len();
    Ok(Figures { init, first, warm, rss_kib: rss, size, errored })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Every subject, `rounds` cold starts each (interleaved, so drift on a noisy machine hits all alike).
pub async fn measure(subjects: &[Subject], env: &[(String, String)], rounds: usize, warm: usize) -> Result<Vec<Figures>, Error> {
    let mut all: Vec<Vec<Figures>> = vec![Vec::new(); subjects.len()];
    for _ in 0..rounds.max(1) {
        for (i, s) in subjects.iter().enumerate() {
            all[i].push(once(s, env, warm).await?);
        }
    }
    Ok(all
        .into_iter()
        .map(|runs| Figures {
            init: median(runs.iter().map(|f| f.init).collect()),
            first: median(runs.iter().map(|f| f.first).collect()),
            warm: median(runs.iter().map(|f| f.warm).collect()),
            rss_kib: {
                let mut r: Vec<u64> = runs.iter().map(|f| f.rss_kib).collect();
                r.sort();
                r[r.len() / 2]
            },
            size: runs[0].size,
            errored: runs.iter().any(|f| f.errored),
        })
        .collect())
}

/// The events: what each function is handed (a read of the table where the function makes one).
pub fn event_for(function: &str) -> Value {
    let http = |method: &str, path: &str, body: Option<Value>| {
        json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": path,
            "rawQueryString": "",
            "headers": {"content-type": "application/json", "host": "bench.local"},
            "requestContext": {
                "accountId": "123456789012", "apiId": "bench", "domainName": "bench.local", "domainPrefix": "bench",
                "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "bench"},
                "requestId": "bench", "routeKey": "$default", "stage": "$default", "time": "23/Nov/2026:00:00:00 +0000", "timeEpoch": 0,
                "authorizer": {"jwt": {"claims": {"sub": "bench-user"}, "scopes": null}}
            },
            "body": body.map(|b| b.to_string()),
            "isBase64Encoded": false
        })
    };
    let id = "01890000-0000-7000-8000-000000000000";
    match function {
        "messaging-profiles" => http("GET", "/v1/messaging-profiles", None),
        "activate-profile" => http("POST", &format!("/v1/messaging-profiles/{id}/activate"), None),
        "phone-numbers" => http("GET", "/v1/phone-numbers", None),
        "assign-number" => http("PUT", &format!("/v1/messaging-profiles/{id}/phone-numbers/+12125550100"), None),
        "conversations" => http("GET", "/v1/conversations", None),
        "send-sms" => http("POST", "/v1/messages", Some(json!({"from": "+12125550100", "to": "+14155550123", "text": "hi"}))),
        "sip-connections" => http("GET", "/v1/sip-connections", None),
        "assistants" => http("GET", "/v1/assistants", None),
        "calls" => http("GET", "/v1/dashboard", None),
        "events" => http("GET", "/v1/events", None),
        "webhook-receiver" => http("POST", "/webhooks/telnyx", Some(json!({"data": {}}))),
        "worker" => json!({"Records": [{
            "messageId": "bench-1", "receiptHandle": "r", "eventSource": "aws:sqs", "awsRegion": "us-east-1",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:bench.fifo",
            "attributes": {"ApproximateReceiveCount": "1", "MessageGroupId": "g", "MessageDeduplicationId": "d", "SentTimestamp": "0"},
            "messageAttributes": {}, "md5OfBody": "",
            "body": json!({"id": "bench", "command": {"type": "sync_messaging_profile", "user_id": "bench-user", "profile_id": id}}).to_string()
        }]}),
        "webhook-dispatcher" => json!({"Records": [{
            "messageId": "bench-1", "receiptHandle": "r", "eventSource": "aws:sqs", "awsRegion": "us-east-1",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:bench-webhooks",
            "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0"},
            "messageAttributes": {}, "md5OfBody": "",
            "body": json!({"source": "patchbay", "detail-type": "message.received", "detail": {
                "id": "evt_01a24ab222c5776591dd379dc705222c", "type": "message.received", "version": 1,
                "timestamp": "2026-12-06T09:00:00Z", "user_id": "bench-user",
                "resource": {"type": "message", "id": id, "version": 4}, "data": {}
            }}).to_string()
        }]}),
        "reconciler" => {
            json!({"version": "0", "id": "bench", "detail-type": "Scheduled Event", "source": "aws.events", "account": "123456789012",
                               "time": "2026-11-23T00:00:00Z", "region": "us-east-1", "resources": [], "detail": {}})
        }
        _ => http("GET", "/", None),
    }
}
