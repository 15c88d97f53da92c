//! Lambda entry point for the outbox relay (a DynamoDB stream event source): the queue client built
//! once per cold start.

use std::sync::Arc;

use aws_lambda_events::event::dynamodb::Event;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use patchbay_adapters::Wiring;
use patchbay_outbox_relay::Relay;

#[tokio::main]
async fn main() -> Result<(), Error> {
    patchbay_adapters::telemetry::init();
    let wiring = Wiring::from_env().await?;
    let relay = Arc::new(Relay { queue: wiring.queue.clone(), bus: wiring.event_bus() });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| {
        let relay = relay.clone();
        async move { Ok::<_, Error>(relay.handle(event.payload).await) }
    }))
    .await
}
