//! Lambda entry point for the SQS worker: store, secrets and carrier client built once.

use std::sync::Arc;

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
        async move { Ok::<SqsBatchResponse, Error>(worker.handle_batch(event.payload).await) }
    }))
    .await
}
