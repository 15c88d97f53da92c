//! Lambda entry point for the event log: the store built once per cold start.

use std::sync::Arc;

use patchbay_adapters::{http, Wiring};
use patchbay_events::{router, EventsFunction};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    patchbay_adapters::telemetry::init();
    let wiring = Wiring::from_env().await?;
    lambda_http::run(http::finish(router(Arc::new(EventsFunction::new(&wiring))))).await
}
