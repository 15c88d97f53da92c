//! Lambda entry point for the SQS worker: store, secrets and carrier client built once.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use patchbay_adapters::Wiring;
use patchbay_worker::Worker;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // JSON logs and the level from AWS_LAMBDA_LOG_FORMAT / AWS_LAMBDA_LOG_LEVEL (set by the template);
    // every invocation runs in the runtime's span, which carries the request id.
    patchbay_adapters::telemetry::init();
    let worker = Arc::new(Worker::new(&Wiring::from_env().await?.load_carriers().await?));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let worker = worker.clone();
        // The invocation's deadline (ms since the epoch) as an Instant: the batch stops starting
        // commands once too little of it is left.
        let left = event.context.deadline.saturating_sub(now_ms());
        let deadline = Instant::now() + Duration::from_millis(left);
        async move { Ok::<SqsBatchResponse, Error>(worker.handle_batch_until(event.payload, Some(deadline)).await) }
    }))
    .await
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
