//! Every function's router on one listener, behind the dev authorizer: the same handler code that
//! runs on Lambda, merged the way API Gateway's routes split it.

use std::sync::Arc;

use axum::Router;
use patchbay_activate_profile::ActivateApi;
use patchbay_adapters::{http, DynamoStore, SqsQueue};
use patchbay_assign_number::AssignApi;
use patchbay_domain::number_ops::Carriers;
use patchbay_messaging_profiles::ProfilesApi;
use patchbay_phone_numbers::NumbersApi;

use crate::devauth::{self, DevAuth};

/// The clients the functions share locally (on Lambda each function builds its own in `main`).
#[derive(Clone)]
pub struct Backends {
    pub store: Arc<DynamoStore>,
    pub queue: Arc<SqsQueue>,
    pub carriers: Carriers,
}

impl Backends {
    pub fn new(sdk: &aws_types::SdkConfig, table: &str, queue_url: &str, carriers: Carriers) -> Self {
        Self {
            store: Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), table)),
            queue: Arc::new(SqsQueue::new(aws_sdk_sqs::Client::new(sdk), queue_url)),
            carriers,
        }
    }
}

/// Every API function's routes, as API Gateway routes them to the functions (no authorizer: on AWS
/// API Gateway verifies the token before the function runs).
pub fn function_routes(b: &Backends) -> Router {
    let profiles = patchbay_messaging_profiles::router(Arc::new(ProfilesApi {
        store: b.store.clone(),
        numbers: b.store.clone(),
        queue: b.queue.clone(),
    }));
    let activate = patchbay_activate_profile::router(Arc::new(ActivateApi { store: b.store.clone() }));
    let numbers = patchbay_phone_numbers::router(Arc::new(NumbersApi {
        store: b.store.clone(),
        queue: b.queue.clone(),
        carriers: b.carriers.clone(),
    }));
    let assign = patchbay_assign_number::router(Arc::new(AssignApi { store: b.store.clone(), queue: b.queue.clone() }));
    http::finish(profiles.merge(activate).merge(numbers).merge(assign))
}

/// The local API: the function routes behind the dev JWT authorizer.
pub fn router(b: &Backends, auth: DevAuth) -> Router {
    function_routes(b).layer(axum::middleware::from_fn_with_state(auth, devauth::middleware))
}

/// Serve on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}
