//! `bench-cold`, `bench-calls` and `bench-webhooks`: measurements on a fresh local stack.

use std::time::Duration;

use patchbay_adapters::Wiring;
use patchbay_local::devauth::DevAuth;
use patchbay_local::poller::Poller;
use patchbay_local::server;
use patchbay_local::{LocalStack, StackOptions};
use patchbay_worker::Worker;

use super::Error;

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

pub(crate) async fn bench_cold(dir: &str, rounds: usize, warm: usize) -> Result<(), Error> {
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
pub(crate) async fn bench_calls() -> Result<(), Error> {
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
    // The outbox relay, run by hand between the operations (as the stream's event source mapping
    // runs it on AWS), so that its requests are counted on a row of their own.
    let streams = patchbay_local::streams::StreamPoller {
        client: aws_sdk_dynamodbstreams::Client::new(&stack.sdk),
        stream_arn: stack.info.stream_arn.clone(),
        idle: Duration::ZERO,
    };
    let outbox_relay = patchbay_outbox_relay::Relay { queue: wiring.queue.clone(), bus: wiring.event_bus() };
    let shards = tokio::sync::Mutex::new(Vec::new());
    let relay = || async {
        let mut shards = shards.lock().await;
        while streams.poll(&outbox_relay, &mut shards).await? {}
        Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    };
    let drain_queue = || async {
        while poller.poll_once(&worker).await? > 0 {}
        Ok::<(), aws_sdk_sqs::Error>(())
    };
    let drain = || async {
        relay().await?;
        drain_queue().await?;
        Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
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
    relay().await?;
    rows.push(("purchase (relay)", read().await?));
    reset().await?;
    drain_queue().await?;
    rows.push(("purchase (worker)", read().await?));

    api(reqwest::Method::PUT, &format!("/v1/messaging-profiles/{pid}/phone-numbers/{number}"), None).await?.error_for_status()?;
    drain().await?;

    reset().await?;
    api(reqwest::Method::POST, "/v1/messages", Some(serde_json::json!({"from": number, "to": "+14155550123", "text": "bench"})))
        .await?
        .error_for_status()?;
    rows.push(("send (API)", read().await?));
    reset().await?;
    relay().await?;
    rows.push(("send (relay)", read().await?));
    reset().await?;
    drain_queue().await?;
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

/// Pushes `n` signed Telnyx inbound webhooks (distinct events, to a number with an owner) through the
/// receiver on a fresh local stack, `concurrency` at a time, and prints throughput and latency.
pub(crate) async fn bench_webhooks(n: usize, concurrency: usize) -> Result<(), Error> {
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
