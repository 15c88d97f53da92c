//! Lambda entry point: clients built once, then the router serves every invocation.

use std::sync::Arc;

use patchbay_adapters::{config, http, telemetry, Config, DynamoStore, SqsQueue};
use patchbay_messaging_profiles::{router, ProfilesApi};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init();
    let config = Config::from_env()?;
    let aws = config::aws_sdk_config().await;
    let api = Arc::new(ProfilesApi {
        store: Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), &config.table_name)),
        queue: Arc::new(SqsQueue::new(aws_sdk_sqs::Client::new(&aws), &config.work_queue_url)),
    });
    lambda_http::run(http::finish(router(api))).await
}
