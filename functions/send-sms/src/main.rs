//! Lambda entry point: clients built once, then the router serves every invocation.

use std::sync::Arc;

use patchbay_adapters::{config, http, Config, DynamoStore, SqsQueue};
use patchbay_send_sms::{router, SendApi};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let aws = config::aws_sdk_config().await;
    let store = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), &config.table_name));
    let api = Arc::new(SendApi {
        messages: store.clone(),
        numbers: store,
        queue: Arc::new(SqsQueue::new(aws_sdk_sqs::Client::new(&aws), &config.work_queue_url)),
    });
    lambda_http::run(http::finish(router(api))).await
}
