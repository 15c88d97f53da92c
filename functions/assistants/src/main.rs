//! Lambda entry point for the voice-AI assistant routes: the store built once per cold start,
//! the carriers on the first creation (the saga itself runs in the worker).

use std::sync::Arc;

use patchbay_adapters::{http, Wiring};
use patchbay_assistants::{router, AssistantsApi};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    // JSON logs and the level from AWS_LAMBDA_LOG_FORMAT / AWS_LAMBDA_LOG_LEVEL (set by the template);
    // every invocation runs in the runtime's span, which carries the request id.
    patchbay_adapters::telemetry::init();
    let wiring = Wiring::from_env().await?;
    lambda_http::run(http::finish(router(Arc::new(AssistantsApi::new(&wiring))))).await
}
