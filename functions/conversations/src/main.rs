//! Lambda entry point: clients built once, then the router serves every invocation.

use std::sync::Arc;

use patchbay_adapters::{config, http, Config, DynamoStore};
use patchbay_conversations::{router, ConversationsApi};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let aws = config::aws_sdk_config().await;
    let api = Arc::new(ConversationsApi { store: Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), &config.table_name)) });
    lambda_http::run(http::finish(router(api))).await
}
