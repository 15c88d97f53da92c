//! Lambda entry point (function URL): store and the Telnyx key built once per cold start; the
//! carrier secret's keys on the first Twilio or Vapi webhook.

use std::sync::Arc;

use patchbay_adapters::{http, Wiring};
use patchbay_webhook_receiver::{router, ReceiverApi};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    // JSON logs and the level from AWS_LAMBDA_LOG_FORMAT / AWS_LAMBDA_LOG_LEVEL (set by the template);
    // every invocation runs in the runtime's span, which carries the request id.
    patchbay_adapters::telemetry::init();
    let wiring = Wiring::from_env().await?;
    lambda_http::run(http::finish(router(Arc::new(ReceiverApi::new(&wiring))))).await
}
