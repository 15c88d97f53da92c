//! Lambda entry point: the store built once per cold start; the carriers from the carrier
//! secret on the first search or purchase (`carriers_on_demand`), so a list never reads it.

use std::sync::Arc;

use patchbay_adapters::{http, Wiring};
use patchbay_phone_numbers::{router, NumbersApi};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    // JSON logs and the level from AWS_LAMBDA_LOG_FORMAT / AWS_LAMBDA_LOG_LEVEL (set by the template);
    // every invocation runs in the runtime's span, which carries the request id.
    patchbay_adapters::telemetry::init();
    let wiring = Wiring::from_env().await?;
    lambda_http::run(http::finish(router(Arc::new(NumbersApi::new(&wiring))))).await
}
