//! Lambda entry point for the SQS worker: store, secrets and carrier client built once.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use patchbay_adapters::secrets::CarrierSecrets;
use patchbay_adapters::{carrier, config, Config, DynamoStore};
use patchbay_worker::Worker;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // JSON logs and the level from AWS_LAMBDA_LOG_FORMAT / AWS_LAMBDA_LOG_LEVEL (set by the template);
    // every invocation runs in the runtime's span, which carries the request id.
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let aws = config::aws_sdk_config().await;
    let secrets = CarrierSecrets::load_configured(&aws, &config).await?;
    let store = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), &config.table_name));
    let worker = Arc::new(Worker {
        store: store.clone(),
        numbers: store.clone(),
        messages: store,
        carrier: carrier::profile_carrier(&config, &secrets)?,
        carriers: carrier::number_carriers(&config, &secrets)?,
        max_receive_count: config.worker_max_receive_count,
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let worker = worker.clone();
        async move { Ok::<SqsBatchResponse, Error>(worker.handle_batch(event.payload).await) }
    }))
    .await
}
