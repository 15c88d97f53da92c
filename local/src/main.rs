//! `patchbay-local`: the whole stack on loopback.
//!
//!   patchbay-local up                 emulator + resources from the SAM template + API on :3000 + worker
//!   patchbay-local token --sub alice  a development token for user `alice` (24 h)
//!   patchbay-local reconcile          one reconciliation pass on the running stack; prints its report
//!   patchbay-local dlq list           what waits in the running stack's dead-letter queue
//!   patchbay-local dlq redrive        every dead letter back onto the work queue
//!
//! Environment: PATCHBAY_PORT (3000), PATCHBAY_MOTO_PORT (0: any free port), PATCHBAY_DEV_JWT_SECRET,
//! PATCHBAY_CARRIER (sandbox), TELNYX_BASE_URL, TELNYX_API_KEY (stored in the local carrier secret),
//! PATCHBAY_LOCAL_VISIBILITY_TIMEOUT (seconds before a failed work message is retried; default: the
//! queue's), PATCHBAY_FAULTS (the contention fault layer in front of the functions' DynamoDB calls,
//! e.g. `conflict=0.25,throttle=0.1`; default off), RUST_LOG.

use std::time::Duration;

use std::sync::Arc;

use patchbay_adapters::carrier::SandboxCarrier;
use patchbay_adapters::Wiring;
use patchbay_local::devauth::DevAuth;
use patchbay_local::faults::{FaultControl, Faults};
use patchbay_local::poller::Poller;
use patchbay_local::server;
use patchbay_local::telemetry;
use patchbay_local::{LocalStack, StackOptions};
use patchbay_worker::Worker;
use tokio::signal::unix::{signal, SignalKind};

type Error = Box<dyn std::error::Error + Send + Sync>;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned())
}

fn parse_env<T: std::str::FromStr>(name: &str, default: T) -> Result<T, Error> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v.parse().map_err(|_| format!("{name}={v:?} is not valid").into()),
        _ => Ok(default),
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("up") => up().await,
        Some("bench-webhooks") => {
            let mut n: usize = 2000;
            let mut concurrency: usize = 32;
            let mut it = args.iter().skip(1);
            while let Some(a) = it.next() {
                match a.as_str() {
                    "--n" => n = it.next().and_then(|v| v.parse().ok()).ok_or("--n takes a count")?,
                    "--concurrency" => concurrency = it.next().and_then(|v| v.parse().ok()).ok_or("--concurrency takes a count")?,
                    other => return Err(format!("unknown argument {other}").into()),
                }
            }
            bench_webhooks(n, concurrency).await
        }
        Some("token") => {
            let mut sub = None;
            let mut ttl: i64 = 86_400;
            let mut it = args.iter().skip(1);
            while let Some(a) = it.next() {
                match a.as_str() {
                    "--sub" => sub = it.next().cloned(),
                    "--ttl" => ttl = it.next().and_then(|t| t.parse().ok()).ok_or("--ttl takes seconds")?,
                    other => return Err(format!("unknown argument {other}").into()),
                }
            }
            let sub = sub.ok_or("usage: patchbay-local token --sub USER [--ttl SECONDS]")?;
            println!("{}", DevAuth::from_env().mint(&sub, ttl)?);
            Ok(())
        }
        Some("bench-cold") => {
            let (mut dir, mut rounds, mut warm) = (String::from("target/release"), 5usize, 20usize);
            let mut it = args.iter().skip(1);
            while let Some(a) = it.next() {
                match a.as_str() {
                    "--dir" => dir = it.next().cloned().ok_or("--dir takes a directory")?,
                    "--rounds" => rounds = it.next().and_then(|v| v.parse().ok()).ok_or("--rounds takes a count")?,
                    "--warm" => warm = it.next().and_then(|v| v.parse().ok()).ok_or("--warm takes a count")?,
                    other => return Err(format!("unknown argument {other}").into()),
                }
            }
            bench_cold(&dir, rounds, warm).await
        }
        Some("bench-calls") => bench_calls().await,
        Some("reconcile") => ops_call(reqwest::Method::POST, "/local/reconcile").await,
        Some("dlq") => match args.get(1).map(String::as_str) {
            Some("list") => ops_call(reqwest::Method::GET, "/local/dlq").await,
            Some("redrive") => ops_call(reqwest::Method::POST, "/local/dlq/redrive").await,
            _ => Err("usage: patchbay-local dlq list | dlq redrive".into()),
        },
        Some(other) => Err(format!("unknown command {other}; use up, token --sub USER, reconcile, dlq list|redrive").into()),
    }
}

/// The functions `scripts/bench cold` measures, beside `bench-baseline`.
const FUNCTIONS: [&str; 12] = [
    "messaging-profiles",
    "activate-profile",
    "phone-numbers",
    "assign-number",
    "conversations",
    "send-sms",
    "sip-connections",
    "assistants",
    "calls",
    "webhook-receiver",
    "worker",
    "reconciler",
];

async fn bench_cold(dir: &str, rounds: usize, warm: usize) -> Result<(), Error> {
    use patchbay_local::coldbench::{event_for, measure, Subject};
    let stack = LocalStack::start(StackOptions { stack_name: "patchbay-cold".into(), ..Default::default() }).await?;
    // The template's environment, the sandbox providers, every AWS call to the local emulator.
    let endpoint = stack.emulator.endpoint();
    let mut env: Vec<(String, String)> = stack.function_env().into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    for (k, v) in [
        ("PATCHBAY_CARRIER", "sandbox"),
        ("PATCHBAY_VOICE_AI", "sandbox"),
        ("PATCHBAY_STACK", "patchbay-cold"),
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
        ("AWS_LAMBDA_LOG_LEVEL", "WARN"),
    ] {
        env.push((k.to_owned(), v.to_owned()));
    }
    let mut subjects =
        vec![Subject { name: "baseline".into(), binary: format!("{dir}/bench-baseline").into(), event: event_for("baseline") }];
    subjects.extend(FUNCTIONS.iter().map(|f| Subject { name: (*f).into(), binary: format!("{dir}/{f}").into(), event: event_for(f) }));
    let figures = measure(&subjects, &env, rounds, warm).await?;
    let base = figures[0].clone();
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    println!("cold starts through a loopback Lambda Runtime API: medians of {rounds} cold starts, warm = median of {warm} invokes");
    println!(
        "{:<20} {:>8} {:>6} {:>9} {:>6} {:>8} {:>6} {:>8} {:>6} {:>9} {:>6}",
        "function", "init ms", "x", "first ms", "x", "warm ms", "x", "RSS MiB", "x", "size MiB", "x"
    );
    for (s, f) in subjects.iter().zip(&figures) {
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        println!(
            "{:<20} {:>8.1} {:>6.2} {:>9.1} {:>6.2} {:>8.2} {:>6.2} {:>8.1} {:>6.2} {:>9.2} {:>6.2}{}",
            s.name,
            ms(f.init),
            ratio(ms(f.init), ms(base.init)),
            ms(f.first),
            ratio(ms(f.first), ms(base.first)),
            ms(f.warm),
            ratio(ms(f.warm), ms(base.warm)),
            f.rss_kib as f64 / 1024.0,
            ratio(f.rss_kib as f64, base.rss_kib as f64),
            f.size as f64 / 1048576.0,
            ratio(f.size as f64, base.size as f64),
            if f.errored { "  (first invoke answered an error)" } else { "" }
        );
    }
    Ok(())
}

/// The AWS requests each operation makes, counted at the emulator (its `/_patchbay/requests`): the
/// API's send, the worker's send, a delivery receipt, an inbound message, an activation, a purchase
/// (API and worker). The queue's own receive and delete (Lambda's event source mapping does them)
/// are left out of the worker's figures.
async fn bench_calls() -> Result<(), Error> {
    use patchbay_domain::{CarrierName, E164};
    use std::collections::BTreeMap;
    type Counts = BTreeMap<String, u64>;

    let stack = LocalStack::start(StackOptions { stack_name: "patchbay-calls".into(), ..Default::default() }).await?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let base = format!("http://{}", listener.local_addr()?);
    // The sandbox without its receipts: nothing moves between the operations measured.
    let wiring = Wiring::new(&stack.sdk, stack.config()?).with_webhooks(server::dev_webhook_keys(&base)?);
    let auth = DevAuth::from_env();
    tokio::spawn(server::serve(listener, server::router(&wiring, auth.clone(), None), std::future::pending()));
    let worker = Worker::new(&wiring);
    let poller = Poller {
        sqs: aws_sdk_sqs::Client::new(&stack.sdk),
        queue_url: wiring.config.work_queue_url.clone(),
        visibility_timeout: Some(1),
        idle: Duration::ZERO,
    };
    let http = patchbay_adapters::tls::reqwest_builder().build()?;
    let counter = format!("{}/_patchbay/requests", stack.emulator.endpoint());
    let reset = || async { http.delete(&counter).send().await?.json::<Counts>().await };
    let read = || async { http.get(&counter).send().await?.json::<Counts>().await };
    let token = auth.mint("bench-user", 3600)?;
    let api = |method: reqwest::Method, path: &str, body: Option<serde_json::Value>| {
        let mut req = http.request(method, format!("{base}{path}")).bearer_auth(&token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send()
    };
    let drain = || async {
        while poller.poll_once(&worker).await? > 0 {}
        Ok::<(), aws_sdk_sqs::Error>(())
    };
    let queue_ops = ["AmazonSQS.ReceiveMessage", "AmazonSQS.DeleteMessage", "AmazonSQS.DeleteMessageBatch"];
    let mut rows: Vec<(&str, Counts)> = Vec::new();

    // Setup: a profile, synced.
    let p: serde_json::Value =
        api(reqwest::Method::POST, "/v1/messaging-profiles", Some(serde_json::json!({"name": "Bench"}))).await?.json().await?;
    let pid = p["id"].as_str().ok_or("no profile id")?.to_owned();
    drain().await?;

    reset().await?;
    api(reqwest::Method::POST, &format!("/v1/messaging-profiles/{pid}/activate"), None).await?.error_for_status()?;
    rows.push(("activation", read().await?));

    let number = "+12125550100";
    reset().await?;
    api(reqwest::Method::POST, "/v1/phone-numbers", Some(serde_json::json!({"phone_number": number, "carrier": CarrierName::Sandbox})))
        .await?
        .error_for_status()?;
    rows.push(("purchase (API)", read().await?));
    reset().await?;
    drain().await?;
    rows.push(("purchase (worker)", read().await?));

    api(reqwest::Method::PUT, &format!("/v1/messaging-profiles/{pid}/phone-numbers/{number}"), None).await?.error_for_status()?;
    drain().await?;

    reset().await?;
    api(reqwest::Method::POST, "/v1/messages", Some(serde_json::json!({"from": number, "to": "+14155550123", "text": "bench"})))
        .await?
        .error_for_status()?;
    rows.push(("send (API)", read().await?));
    reset().await?;
    drain().await?;
    rows.push(("send (worker)", read().await?));

    // The carrier's id for that message, read around the counter.
    let items = aws_sdk_dynamodb::Client::new(&stack.sdk)
        .query()
        .table_name(&stack.info.table)
        .key_condition_expression("pk = :pk AND begins_with(sk, :m)")
        .expression_attribute_values(":pk", aws_sdk_dynamodb::types::AttributeValue::S("USER#bench-user".into()))
        .expression_attribute_values(":m", aws_sdk_dynamodb::types::AttributeValue::S("MSG#".into()))
        .send()
        .await?;
    let carrier_id = items
        .items()
        .iter()
        .find_map(|i| i.get("carrier_message_id").and_then(|v| v.as_s().ok()).cloned())
        .ok_or("the sent message has no carrier id")?;
    let hooks = server::sandbox_webhooks(&base).ok_or("no sandbox signing key")?;
    reset().await?;
    let st = hooks
        .post_event("message.finalized", serde_json::json!({"id": carrier_id, "direction": "outbound", "type": "SMS", "from": {"phone_number": number}, "to": [{"phone_number": "+14155550123", "status": "delivered"}]}))
        .await?;
    rows.push(("receipt", read().await?));
    reset().await?;
    let st2 = hooks
        .post_event("message.received", serde_json::json!({"id": "bench-inbound-1", "direction": "inbound", "type": "SMS", "from": {"phone_number": "+14155550123"}, "to": [{"phone_number": number}], "text": "hello"}))
        .await?;
    rows.push(("inbound message", read().await?));
    if (st, st2) != (200, 200) {
        return Err(format!("webhooks answered {st} and {st2}").into());
    }
    let _ = E164::parse(number)?;

    println!("AWS requests per operation, counted at the emulator (the event source mapping's receive/delete left out)");
    println!("{:<20} {:>8}  by operation", "operation", "requests");
    for (name, counts) in rows {
        let own: Vec<(String, u64)> = counts.into_iter().filter(|(k, _)| !queue_ops.contains(&k.as_str())).collect();
        let total: u64 = own.iter().map(|(_, n)| n).sum();
        let detail: Vec<String> = own.iter().map(|(k, n)| format!("{}×{n}", k.rsplit('.').next().unwrap_or(k))).collect();
        println!("{name:<20} {total:>8}  {}", detail.join(", "));
    }
    Ok(())
}

/// One operator call to the running local stack (`PATCHBAY_PORT`), its JSON answer printed.
async fn ops_call(method: reqwest::Method, path: &str) -> Result<(), Error> {
    let port: u16 = parse_env("PATCHBAY_PORT", 3000)?;
    let url = format!("http://127.0.0.1:{port}{path}");
    let res = patchbay_adapters::tls::reqwest_builder()
        .build()?
        .request(method, &url)
        .timeout(Duration::from_secs(600))
        .send()
        .await
        .map_err(|e| format!("no local stack answered at {url} (start it with scripts/up): {e}"))?;
    let status = res.status();
    let body: serde_json::Value = res.json().await.unwrap_or(serde_json::Value::Null);
    println!("{}", serde_json::to_string_pretty(&body)?);
    if !status.is_success() {
        return Err(format!("{url} answered {status}").into());
    }
    Ok(())
}

/// Pushes `n` signed Telnyx inbound webhooks (distinct events, to a number with an owner) through the
/// receiver on a fresh local stack, `concurrency` at a time, and prints throughput and latency.
async fn bench_webhooks(n: usize, concurrency: usize) -> Result<(), Error> {
    use futures::stream::{self, StreamExt};
    use patchbay_domain::numbers::NumberWriter;

    let stack = LocalStack::start(StackOptions { stack_name: "patchbay-bench".into(), ..Default::default() }).await?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let wiring = Wiring::new(&stack.sdk, stack.config()?).with_webhooks(server::dev_webhook_keys(&base)?);
    let owner = patchbay_domain::UserId::parse("bench-user")?;
    let number = patchbay_domain::E164::parse("+12125550100")?;
    let purchase = patchbay_domain::numbers::PhoneNumber::new_purchase(
        owner,
        number.clone(),
        patchbay_domain::CarrierName::Sandbox,
        time::OffsetDateTime::now_utc(),
    );
    wiring.store.create_purchase(&purchase, None).await?;
    let router = server::router(&wiring, DevAuth::from_env(), None);
    tokio::spawn(server::serve(listener, router, std::future::pending()));
    let hooks = server::sandbox_webhooks(&base).ok_or("no sandbox signing key")?;

    let started = std::time::Instant::now();
    let results: Vec<(u16, Duration)> = stream::iter(0..n)
        .map(|i| {
            let hooks = hooks.clone();
            let number = number.clone();
            async move {
                let payload = serde_json::json!({"id": format!("bench-{i}"), "direction": "inbound", "type": "SMS", "from": {"phone_number": "+14155550123"}, "to": [{"phone_number": number.as_str()}], "text": format!("bench {i}")});
                let t = std::time::Instant::now();
                let status = hooks.post_event("message.received", payload).await.unwrap_or(0);
                (status, t.elapsed())
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let elapsed = started.elapsed();
    let ok = results.iter().filter(|(s, _)| *s == 200).count();
    let mut latencies: Vec<Duration> = results.iter().map(|(_, d)| *d).collect();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1).min(latencies.len() - 1)];
    println!("webhooks: {n} sent, {ok} answered 200, concurrency {concurrency}");
    println!("elapsed: {:.2} s, throughput: {:.1} webhooks/s", elapsed.as_secs_f64(), n as f64 / elapsed.as_secs_f64());
    println!(
        "latency: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        pct(1.0).as_secs_f64() * 1e3
    );
    println!("(local stack: moto single-threaded on this machine; Lambda + DynamoDB latencies differ)");
    Ok(())
}

async fn up() -> Result<(), Error> {
    telemetry::init();
    let port: u16 = parse_env("PATCHBAY_PORT", 3000)?;
    // What real-carrier settings say goes into the local carrier secret, as on AWS.
    let mut secret = serde_json::Map::new();
    for (var, field) in
        [("TELNYX_API_KEY", "telnyx_api_key"), ("TWILIO_ACCOUNT_SID", "twilio_account_sid"), ("TWILIO_AUTH_TOKEN", "twilio_auth_token")]
    {
        if let Some(v) = std::env::var(var).ok().filter(|v| !v.is_empty()) {
            secret.insert(field.to_owned(), serde_json::Value::String(v));
        }
    }
    let secret_json = (!secret.is_empty()).then(|| serde_json::Value::Object(secret).to_string());
    let stack = LocalStack::start(StackOptions {
        emulator_port: parse_env("PATCHBAY_MOTO_PORT", 0)?,
        stack_name: env_or("PATCHBAY_STACK_NAME", "patchbay-local"),
        secret_json,
    })
    .await?;

    // The contention fault layer, when asked for: between the functions and the emulator.
    let faults = Faults::from_env()?.map(FaultControl::new);
    let functions_sdk = match &faults {
        Some(control) => control.wrap(&stack.sdk),
        None => stack.sdk.clone(),
    };
    // The functions' configuration, exactly as the template's environment gives it on Lambda, and
    // the carriers from the local carrier secret.
    let wiring = Wiring::new(&functions_sdk, stack.config()?).load_carriers().await?;
    let mut carriers = wiring.carriers().clone();
    // The sandbox sends its signed receipts to this stack's own receiver.
    let sandbox_hooks = server::sandbox_webhooks(&format!("http://127.0.0.1:{port}"));
    if carriers.sandbox.is_some() {
        carriers.sandbox = Some(Arc::new(SandboxCarrier { webhooks: sandbox_hooks.clone(), ..Default::default() }));
    }
    let wiring = wiring.with_carriers(carriers).with_webhooks(server::dev_webhook_keys(&format!("http://127.0.0.1:{port}"))?);
    let worker = Worker::new(&wiring);

    let auth = DevAuth::from_env();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let poller = Poller {
        sqs: aws_sdk_sqs::Client::new(&stack.sdk),
        queue_url: wiring.config.work_queue_url.clone(),
        visibility_timeout: std::env::var("PATCHBAY_LOCAL_VISIBILITY_TIMEOUT").ok().and_then(|v| v.parse().ok()),
        idle: Duration::from_millis(250),
    };
    let poll_task = tokio::spawn(poller.run(worker, stop_rx.clone()));

    let example = auth.mint("alice", 86_400)?;
    println!(
        "\npatchbay local stack is up\n  API        http://127.0.0.1:{port}  (GET /healthz)\n  emulator   {} (moto; table {}, queue {})\n  carrier    {}\n  faults     {}\n  token      cargo run -q -p patchbay-local -- token --sub alice\n             e.g. curl -H 'Authorization: Bearer {example}' http://127.0.0.1:{port}/v1/messaging-profiles\nCtrl-C stops everything.\n",
        stack.emulator.endpoint(),
        stack.info.table,
        stack.info.work_queue_url,
        env_or("PATCHBAY_CARRIER", "sandbox"),
        faults.as_ref().map_or("off (PATCHBAY_FAULTS=conflict=0.25,throttle=0.1 turns on DynamoDB's contention)".to_owned(), |c| c.faults().to_string()),
    );

    let mut stopped = stop_rx;
    let shutdown = async move {
        let _ = stopped.changed().await;
    };
    let routes = server::router(&wiring, auth, sandbox_hooks).merge(patchbay_local::ops::ops_routes(
        &wiring,
        aws_sdk_sqs::Client::new(&stack.sdk),
        stack.info.dlq_url.clone(),
    ));
    let serve = tokio::spawn(server::serve(listener, routes, shutdown));

    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    if let Some(c) = &faults {
        let (calls, conflicts, throttles) = c.snapshot();
        eprintln!("fault layer: {calls} DynamoDB calls, {conflicts} answered with a collision, {throttles} throttled");
    }
    eprintln!("stopping: API, worker, emulator");
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), serve).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), poll_task).await;
    drop(stack); // kills the emulator
    Ok(())
}
