//! Lambda entry point (function URL): store, keys and secrets built once per cold start.

use std::sync::Arc;

use patchbay_adapters::secrets::CarrierSecrets;
use patchbay_adapters::webhooks::telnyx_public_key;
use patchbay_adapters::{config, http, Config, DynamoStore};
use patchbay_webhook_receiver::{router, ReceiverApi};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let aws = config::aws_sdk_config().await;
    let secrets = CarrierSecrets::load_configured(&aws, &config).await?;
    let telnyx_key = match std::env::var("TELNYX_PUBLIC_KEY").ok().filter(|k| !k.is_empty()) {
        Some(k) => Some(telnyx_public_key(&k)?),
        None => None,
    };
    let api = Arc::new(ReceiverApi {
        store: Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), &config.table_name)),
        telnyx_key,
        twilio_token: secrets.twilio_auth_token,
        public_url: config.public_url.clone(),
    });
    lambda_http::run(http::finish(router(api))).await
}
