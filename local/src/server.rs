//! Every function's router on one listener, behind the dev authorizer: the same handler code that
//! runs on Lambda, merged the way API Gateway's routes split it.

use std::sync::Arc;

use axum::Router;
use patchbay_activate_profile::ActivateApi;
use patchbay_adapters::carrier::sandbox::SandboxWebhooks;
use patchbay_adapters::webhooks::{WebhookError, WebhookKeys};
use patchbay_adapters::{http, Wiring};
use patchbay_assign_number::AssignApi;
use patchbay_assistants::AssistantsApi;
use patchbay_conversations::ConversationsApi;
use patchbay_messaging_profiles::ProfilesApi;
use patchbay_phone_numbers::NumbersApi;
use patchbay_send_sms::SendApi;
use patchbay_sip_connections::SipConnectionsApi;
use patchbay_webhook_receiver::ReceiverApi;
use secrecy::SecretString;

use crate::devauth::{self, DevAuth};

/// The public half of the Telnyx SDK's published test key pair (../shared/providers/README.md): the
/// local default, so that locally signed webhooks (tests, the sandbox) verify. Never a production key.
pub const DEV_TELNYX_PUBLIC_KEY: &str = "+7E99DXiiQXvceNX4nHm3Lbm5mqPWad5RhDr2ufuCik=";
/// The secret half of that published test pair (seed ‖ public key, base64): what the sandbox signs
/// its webhooks with locally.
pub const DEV_TELNYX_SECRET: &str = "p68GNpDl9oAQohBiK0MEOFIjxnoFnz0uGGeJqxQ5PSb7sT30NeKJBe9x41ficebctubmao9Zp3lGEOva5+4KKQ==";

/// The sandbox's webhook sender: Telnyx-format events signed with the development key, posted to
/// the local receiver at `receiver_base` (`http://127.0.0.1:PORT`).
pub fn sandbox_webhooks(receiver_base: &str) -> Option<Arc<SandboxWebhooks>> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD.decode(DEV_TELNYX_SECRET).ok()?;
    let seed: [u8; 32] = bytes.get(..32)?.try_into().ok()?;
    Some(Arc::new(SandboxWebhooks {
        url: format!("{}/webhooks/telnyx", receiver_base.trim_end_matches('/')),
        key: ed25519_dalek::SigningKey::from_bytes(&seed),
        http: reqwest::Client::new(),
    }))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct InjectBody {
    from: String,
    to: String,
    text: String,
}

/// Local only: an inbound SMS from the sandbox, sent through the verified webhook path.
async fn inject_inbound(
    axum::extract::State(w): axum::extract::State<Arc<SandboxWebhooks>>,
    http::JsonBody(body): http::JsonBody<InjectBody>,
) -> Result<axum::http::StatusCode, http::ApiError> {
    let payload = serde_json::json!({
        "id": uuid::Uuid::new_v4().to_string(), "direction": "inbound", "type": "SMS",
        "from": {"phone_number": body.from}, "to": [{"phone_number": body.to}], "text": body.text,
    });
    let status = w.post_event("message.received", payload).await.map_err(|e| http::ApiError::unavailable("local receiver", &e))?;
    Ok(axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::BAD_GATEWAY))
}

/// The local-only sandbox routes (never deployed): `POST /local/sandbox/inbound {from, to, text}`.
pub fn sandbox_routes(w: Arc<SandboxWebhooks>) -> Router {
    Router::new().route("/local/sandbox/inbound", axum::routing::post(inject_inbound)).with_state(w)
}

/// The local default Twilio auth token.
pub const DEV_TWILIO_AUTH_TOKEN: &str = "patchbay-local-twilio-token";

/// What the webhook receiver verifies with locally: `TELNYX_PUBLIC_KEY`, `TWILIO_AUTH_TOKEN` and
/// `PATCHBAY_PUBLIC_URL` when set, the development values otherwise.
pub fn dev_webhook_keys(default_public_url: &str) -> Result<WebhookKeys, WebhookError> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    WebhookKeys::new(
        Some(&env("TELNYX_PUBLIC_KEY").unwrap_or_else(|| DEV_TELNYX_PUBLIC_KEY.to_owned())),
        Some(SecretString::from(env("TWILIO_AUTH_TOKEN").unwrap_or_else(|| DEV_TWILIO_AUTH_TOKEN.to_owned()))),
        Some(env("PATCHBAY_PUBLIC_URL").unwrap_or_else(|| default_public_url.to_owned())),
    )
}

/// Every API function's routes, as API Gateway routes them to the functions (no authorizer: on AWS
/// API Gateway verifies the token before the function runs).
pub fn function_routes(w: &Wiring) -> Router {
    let profiles = patchbay_messaging_profiles::router(Arc::new(ProfilesApi::new(w)));
    let activate = patchbay_activate_profile::router(Arc::new(ActivateApi::new(w)));
    let numbers = patchbay_phone_numbers::router(Arc::new(NumbersApi::new(w)));
    let assign = patchbay_assign_number::router(Arc::new(AssignApi::new(w)));
    let conversations = patchbay_conversations::router(Arc::new(ConversationsApi::new(w)));
    let send = patchbay_send_sms::router(Arc::new(SendApi::new(w)));
    let receiver = patchbay_webhook_receiver::router(Arc::new(ReceiverApi::new(w)));
    let dialer = patchbay_sip_connections::router(Arc::new(SipConnectionsApi::new(w)));
    let assistants = patchbay_assistants::router(Arc::new(AssistantsApi::new(w)));
    http::finish(
        profiles
            .merge(activate)
            .merge(numbers)
            .merge(assign)
            .merge(conversations)
            .merge(receiver)
            .merge(send)
            .merge(dialer)
            .merge(assistants),
    )
}

/// The local API: the function routes behind the dev JWT authorizer.
pub fn router(w: &Wiring, auth: DevAuth, sandbox: Option<Arc<SandboxWebhooks>>) -> Router {
    let mut routes = function_routes(w);
    if let Some(hooks) = sandbox {
        routes = sandbox_routes(hooks).merge(routes);
    }
    routes.layer(axum::middleware::from_fn_with_state(auth, devauth::middleware))
}

/// Serve on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}
