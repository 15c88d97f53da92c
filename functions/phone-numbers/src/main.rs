//! Lambda entry point: store, queue, carrier clients and secrets built once per cold start.

use std::sync::Arc;

use patchbay_adapters::secrets::CarrierSecrets;
use patchbay_adapters::{carrier, config, http, Config, DynamoStore, SqsQueue};
use patchbay_phone_numbers::{router, NumbersApi};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let aws = config::aws_sdk_config().await;
    let secrets = CarrierSecrets::load_configured(&aws, &config).await?;
    let api = Arc::new(NumbersApi {
        store: Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), &config.table_name)),
        queue: Arc::new(SqsQueue::new(aws_sdk_sqs::Client::new(&aws), &config.work_queue_url)),
        carriers: carrier::number_carriers(&config, &secrets)?,
    });
    lambda_http::run(http::finish(router(api))).await
}
