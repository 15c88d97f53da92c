//! Lambda entry point for the webhook dispatcher (the webhook queue's event source): the store, the
//! secret store and the guarded HTTP client built once per cold start.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use patchbay_adapters::Wiring;
use patchbay_webhook_dispatcher::WebhookDispatcher;

#[tokio::main]
async fn main() -> Result<(), Error> {
    patchbay_adapters::telemetry::init();
    let dispatcher = Arc::new(WebhookDispatcher::new(&Wiring::from_env().await?));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let dispatcher = dispatcher.clone();
        async move { Ok::<SqsBatchResponse, Error>(dispatcher.handle_batch(event.payload).await) }
    }))
    .await
}
