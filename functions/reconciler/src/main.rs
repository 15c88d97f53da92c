//! Lambda entry point for the scheduled reconciler (EventBridge): clients built once per cold start.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lambda_runtime::{service_fn, Error, LambdaEvent};
use patchbay_adapters::Wiring;
use patchbay_reconciler::ReconcilerFunction;

/// Time kept back from the invocation's deadline to save the cursor and print the report.
const MARGIN: Duration = Duration::from_secs(20);

#[tokio::main]
async fn main() -> Result<(), Error> {
    patchbay_adapters::telemetry::init();
    let function = Arc::new(ReconcilerFunction::new(&Wiring::from_env().await?.load_carriers().await?));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let function = function.clone();
        async move {
            let left = event.context.deadline().duration_since(SystemTime::now()).unwrap_or_default();
            let report = function.pass(left.saturating_sub(MARGIN)).await?;
            Ok::<serde_json::Value, Error>(serde_json::json!({
                "pass_id": report.pass_id,
                "complete": report.complete,
                "drift": report.drift,
                "skipped_busy": report.skipped_busy,
            }))
        }
    }))
    .await
}
