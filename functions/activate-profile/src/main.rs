//! Lambda entry point: clients built once, then the router serves every invocation.

use std::sync::Arc;

use patchbay_activate_profile::{router, ActivateApi};
use patchbay_adapters::{config, http, telemetry, Config, DynamoStore};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init();
    let config = Config::from_env()?;
    let aws = config::aws_sdk_config().await;
    let api = Arc::new(ActivateApi {
        store: Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), &config.table_name)),
    });
    lambda_http::run(http::finish(router(api))).await
}
