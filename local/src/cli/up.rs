//! `up`: the whole stack on loopback until Ctrl-C.

use std::sync::Arc;
use std::time::Duration;

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

use super::{env_or, parse_env, Error};

pub(crate) async fn up() -> Result<(), Error> {
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
    let visibility: Option<i32> = std::env::var("PATCHBAY_LOCAL_VISIBILITY_TIMEOUT").ok().and_then(|v| v.parse().ok());
    // A shortened visibility timeout shortens a send's claim lease with it (twice the timeout), so
    // that a killed delivery's message is taken over on its next deliveries, not sent to the DLQ.
    let worker = match visibility {
        Some(v) => Worker { send_lease: Duration::from_secs(2 * v.max(1) as u64), ..Worker::new(&wiring) },
        None => Worker::new(&wiring),
    };

    let auth = DevAuth::from_env();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let poller = Poller {
        sqs: aws_sdk_sqs::Client::new(&stack.sdk),
        queue_url: wiring.config.work_queue_url.clone(),
        visibility_timeout: visibility,
        idle: Duration::from_millis(250),
    };
    let poll_task = tokio::spawn(poller.run(worker, stop_rx.clone()));
    // The webhook dispatcher on the queue the bus's rule feeds, as its event source mapping runs it
    // on AWS (failed messages come back when the dispatcher says: it moves their visibility).
    let webhooks = Poller {
        sqs: aws_sdk_sqs::Client::new(&stack.sdk),
        queue_url: stack.info.webhook_queue_url.clone(),
        visibility_timeout: None,
        idle: Duration::from_millis(250),
    };
    let webhook_task = tokio::spawn(webhooks.run(patchbay_webhook_dispatcher::WebhookDispatcher::new(&wiring), stop_rx.clone()));
    // The outbox relay: the table's stream to the work queue, as the stream's event source mapping
    // runs it on AWS.
    let streams = patchbay_local::streams::StreamPoller {
        client: aws_sdk_dynamodbstreams::Client::new(&stack.sdk),
        stream_arn: stack.info.stream_arn.clone(),
        idle: Duration::from_millis(100),
    };
    let relay_task =
        tokio::spawn(streams.run(patchbay_outbox_relay::Relay { queue: wiring.queue.clone(), bus: wiring.event_bus() }, stop_rx.clone()));

    // The API reference at /docs: the document in the working tree, rendered in the browser by Redoc.
    let reference = patchbay_local::docs::Reference::load();
    if let Some(why) = reference.unavailable() {
        tracing::warn!(%why, "the API reference at /docs is not available");
    }

    let example = auth.mint("alice", 86_400)?;
    println!(
        "\npatchbay local stack is up\n  console    http://127.0.0.1:{port}/  (sign in with any user name)\n  API        http://127.0.0.1:{port}  (GET /healthz)\n  reference  http://127.0.0.1:{port}/docs  (openapi/patchbay.yaml, rendered by Redoc)\n  emulator   {} (moto; table {}, queue {})\n  carrier    {}\n  faults     {}\n  token      cargo run -q -p patchbay-local -- token --sub alice\n             e.g. curl -H 'Authorization: Bearer {example}' http://127.0.0.1:{port}/v1/messaging-profiles\nCtrl-C stops everything.\n",
        stack.emulator.endpoint(),
        stack.info.table,
        stack.info.work_queue_url,
        env_or("PATCHBAY_CARRIER", "sandbox"),
        faults.as_ref().map_or("off (PATCHBAY_FAULTS=conflict=0.25,throttle=0.1,lost=0.1,kill=0.05 turns on DynamoDB's contention, lost answers and killed invocations)".to_owned(), |c| c.faults().to_string()),
    );

    let mut stopped = stop_rx;
    let shutdown = async move {
        let _ = stopped.changed().await;
    };
    // `patchbay-local events tail`: a rule of our own on the bus, to a queue of our own.
    let tail = patchbay_local::ops::EventsTail::subscribe(&stack.sdk, &stack.info.event_bus_name, &stack.info.stack).await?;
    // The console at /: the built app in web/dist (scripts/up builds it when its sources changed).
    let console = patchbay_local::console::Console::open(patchbay_local::console::default_dir());
    if console.is_none() {
        tracing::warn!("the console is not built (npm --prefix web run build): / answers 404");
    }
    let routes = server::router(&wiring, auth.clone(), sandbox_hooks)
        .merge(patchbay_local::ops::ops_routes(&wiring, aws_sdk_sqs::Client::new(&stack.sdk), stack.info.dlq_url.clone()))
        .merge(tail.routes())
        .merge(reference.routes())
        .merge(patchbay_local::console::dev_token_route(auth))
        .layer(axum::middleware::from_fn_with_state(console, patchbay_local::console::layer));
    let serve = tokio::spawn(server::serve(listener, routes, shutdown));

    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    if let Some(c) = &faults {
        let (calls, conflicts, throttles) = c.snapshot();
        let (lost, kills, replays) = c.snapshot_effects();
        eprintln!(
            "fault layer: {calls} DynamoDB calls, {conflicts} answered with a collision, {throttles} throttled, {lost} applied with their answer lost, {kills} invocations killed, {replays} transactions answered from their token"
        );
    }
    eprintln!("stopping: API, worker, outbox relay, emulator");
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), serve).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), poll_task).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), webhook_task).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), relay_task).await;
    drop(stack); // kills the emulator
    Ok(())
}
