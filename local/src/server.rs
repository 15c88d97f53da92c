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
use patchbay_calls::CallsFunction;
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
        http: patchbay_adapters::outbound::Client::new(std::time::Duration::from_secs(30)),
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

/// The local-only sandbox routes (never deployed): `POST /local/sandbox/inbound {from, to, text}` and
/// `POST /local/sandbox/calls {to, from, duration_seconds, ended_reason?, direction?}` (`direction`
/// `inbound`, the default, or `outbound`: see `sandbox_call`).
pub fn sandbox_routes(hooks: Arc<SandboxWebhooks>, w: &Wiring) -> Router {
    let calls = Arc::new(SandboxCalls {
        hooks: hooks.clone(),
        store: w.store.clone(),
        vapi_secret: w.webhooks.vapi_secret.clone().unwrap_or_else(|| SecretString::from(DEV_VAPI_SECRET)),
    });
    Router::new()
        .route("/local/sandbox/inbound", axum::routing::post(inject_inbound))
        .with_state(hooks)
        .merge(Router::new().route("/local/sandbox/calls", axum::routing::post(sandbox_call)).with_state(calls))
}

struct SandboxCalls {
    hooks: Arc<SandboxWebhooks>,
    store: Arc<patchbay_adapters::DynamoStore>,
    vapi_secret: SecretString,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CallBody {
    to: String,
    from: String,
    duration_seconds: u32,
    #[serde(default)]
    ended_reason: Option<String>,
    #[serde(default)]
    direction: SandboxDirection,
}

/// Which way a sandbox call goes: to one of our numbers (`inbound`, the default), or from one, as a
/// browser dialer's call out through its SIP connection (`outbound`).
#[derive(serde::Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum SandboxDirection {
    #[default]
    Inbound,
    Outbound,
}

/// What the sandbox charges for an assistant's call: 0.15 USD a minute, to the micro-dollar.
const SANDBOX_USD_PER_SECOND: f64 = 0.0025;

/// Local only: a call from the sandbox, through the verified webhook path. Inbound (the default, the
/// owner found by `to`): to a number on an assistant, a Vapi end-of-call report (with
/// `X-Vapi-Secret`); to a number on a SIP connection, Telnyx's call.initiated, call.answered and
/// call.hangup, signed like Telnyx's. Outbound (`"direction": "outbound"`, the owner found by `from`,
/// which must be on one of their SIP connections, else 422 naming `from`): the same three Telnyx
/// events on that connection with `"direction": "outgoing"`, as Telnyx reports a call a browser
/// dialer places.
async fn sandbox_call(
    axum::extract::State(c): axum::extract::State<Arc<SandboxCalls>>,
    http::JsonBody(body): http::JsonBody<CallBody>,
) -> Result<axum::response::Response, http::ApiError> {
    use axum::response::IntoResponse;
    use patchbay_domain::numbers::NumberReader;
    use patchbay_domain::voice_ai::AssistantReader;
    use secrecy::ExposeSecret;
    let to = patchbay_domain::E164::parse(&body.to).map_err(|e| http::ApiError::unprocessable(e.at("to")))?;
    let from = patchbay_domain::E164::parse(&body.from).map_err(|e| http::ApiError::unprocessable(e.at("from")))?;
    let ours = if body.direction == SandboxDirection::Outbound { ("from", &from) } else { ("to", &to) };
    let Some((owner, _)) = patchbay_domain::calls::CallLedger::number_route(c.store.as_ref(), ours.1).await? else {
        return Err(bad(ours.0, "nobody owns this number"));
    };
    let number = c.store.get_number(&owner, ours.1).await?;
    let now = time::OffsetDateTime::now_utc();
    let started = now - time::Duration::seconds(i64::from(body.duration_seconds));
    if body.direction == SandboxDirection::Outbound {
        let Some(v) = number.voice else { return Err(bad("from", "the number is on no SIP connection")) };
        return sip_call_events(&c, &owner, v.connection_id, ("from", "outgoing"), (&from, &to), started, &body).await;
    }
    if let Some(aid) = number.assistant_id {
        let a = c.store.get_assistant(&owner, aid).await?;
        let report = serde_json::json!({"message": {
            "type": "end-of-call-report",
            "endedReason": body.ended_reason.as_deref().unwrap_or("customer-ended-call"),
            "call": {"id": uuid::Uuid::new_v4().to_string(), "type": "inboundPhoneCall", "assistantId": a.vapi_assistant_id, "customer": {"number": from.as_str()}},
            "phoneNumber": {"number": to.as_str()},
            "customer": {"number": from.as_str()},
            "startedAt": crate_rfc3339(started),
            "endedAt": crate_rfc3339(now),
            "durationSeconds": body.duration_seconds,
            "cost": f64::from(body.duration_seconds) * SANDBOX_USD_PER_SECOND,
            "analysis": {"summary": "A sandbox call."},
            "artifact": {},
        }});
        let url = c.hooks.url.replace("/webhooks/telnyx", "/webhooks/vapi");
        let res = c
            .hooks
            .http
            .post(url)
            .header("x-vapi-secret", c.vapi_secret.expose_secret())
            .json(&report)
            .send()
            .await
            .map_err(unavailable)?;
        return Ok(axum::http::StatusCode::from_u16(res.status()).unwrap_or(axum::http::StatusCode::BAD_GATEWAY).into_response());
    }
    if let Some(v) = number.voice {
        return sip_call_events(&c, &owner, v.connection_id, ("to", "incoming"), (&from, &to), started, &body).await;
    }
    Err(bad("to", "the number is on no assistant and no SIP connection"))
}

/// A 422 naming `field`.
fn bad(field: &str, why: &str) -> http::ApiError {
    http::ApiError::unprocessable(patchbay_domain::ValidationError::new(field, "invalid", why.to_owned()))
}

fn unavailable(e: patchbay_adapters::outbound::Error) -> http::ApiError {
    http::ApiError::unavailable("local receiver", &e)
}

/// Telnyx's call.initiated, call.answered and call.hangup of one call on the user's SIP connection
/// `connection` (its carrier id, as Telnyx names it), `direction` as Telnyx spells it (`incoming`,
/// `outgoing`), signed and posted to the receiver; `ours` is the field that named our number.
async fn sip_call_events(
    c: &SandboxCalls,
    owner: &patchbay_domain::UserId,
    connection: patchbay_domain::ConnectionId,
    (ours, direction): (&str, &str),
    (from, to): (&patchbay_domain::E164, &patchbay_domain::E164),
    started: time::OffsetDateTime,
    body: &CallBody,
) -> Result<axum::response::Response, http::ApiError> {
    use axum::response::IntoResponse;
    use patchbay_domain::dialer::ConnectionReader;
    let conn = c.store.get_connection(owner, connection).await?;
    let Some(carrier_id) = conn.carrier_connection_id else { return Err(bad(ours, "the number's SIP connection is not synced yet")) };
    let session = uuid::Uuid::new_v4().to_string();
    let answered = started + time::Duration::seconds(2);
    let ended = answered + time::Duration::seconds(i64::from(body.duration_seconds));
    for (event, at) in [("call.initiated", started), ("call.answered", answered), ("call.hangup", ended)] {
        let mut payload = serde_json::json!({
            "call_control_id": format!("v3:{session}"), "call_session_id": session, "connection_id": carrier_id,
            "from": from.as_str(), "to": to.as_str(), "direction": direction,
        });
        if event == "call.hangup" {
            payload["start_time"] = serde_json::Value::String(crate_rfc3339(started));
            payload["end_time"] = serde_json::Value::String(crate_rfc3339(ended));
            payload["hangup_cause"] = serde_json::Value::String(body.ended_reason.clone().unwrap_or_else(|| "normal_clearing".into()));
        }
        let status = c.hooks.post_event_at(event, payload, at).await.map_err(unavailable)?;
        if status != 200 {
            return Ok(axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::BAD_GATEWAY).into_response());
        }
    }
    Ok(axum::http::StatusCode::OK.into_response())
}

fn crate_rfc3339(t: time::OffsetDateTime) -> String {
    patchbay_adapters::wire::rfc3339(t)
}

/// The local default Vapi webhook secret (`X-Vapi-Secret`, and the key of Vapi's timed HMAC).
pub const DEV_VAPI_SECRET: &str = "patchbay-local-vapi-secret";

/// The local default Twilio auth token.
pub const DEV_TWILIO_AUTH_TOKEN: &str = "patchbay-local-twilio-token";

/// What the webhook receiver verifies with locally: `TELNYX_PUBLIC_KEY`, `TWILIO_AUTH_TOKEN`,
/// `VAPI_WEBHOOK_SECRET` and `PATCHBAY_PUBLIC_URL` when set, the development values otherwise.
pub fn dev_webhook_keys(default_public_url: &str) -> Result<WebhookKeys, WebhookError> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    Ok(WebhookKeys::new(
        Some(&env("TELNYX_PUBLIC_KEY").unwrap_or_else(|| DEV_TELNYX_PUBLIC_KEY.to_owned())),
        Some(SecretString::from(env("TWILIO_AUTH_TOKEN").unwrap_or_else(|| DEV_TWILIO_AUTH_TOKEN.to_owned()))),
        Some(env("PATCHBAY_PUBLIC_URL").unwrap_or_else(|| default_public_url.to_owned())),
    )?
    .with_vapi_secret(Some(SecretString::from(env("VAPI_WEBHOOK_SECRET").unwrap_or_else(|| DEV_VAPI_SECRET.to_owned())))))
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
    let calls = patchbay_calls::router(Arc::new(CallsFunction::new(w)));
    let events = patchbay_events::router(Arc::new(patchbay_events::EventsFunction::new(w)));
    http::finish(
        profiles
            .merge(activate)
            .merge(numbers)
            .merge(assign)
            .merge(conversations)
            .merge(receiver)
            .merge(send)
            .merge(dialer)
            .merge(assistants)
            .merge(calls)
            .merge(events),
    )
}

/// The local API: the function routes behind the dev JWT authorizer.
pub fn router(w: &Wiring, auth: DevAuth, sandbox: Option<Arc<SandboxWebhooks>>) -> Router {
    let mut routes = function_routes(w);
    if let Some(hooks) = sandbox {
        routes = sandbox_routes(hooks, w).merge(routes);
    }
    // Each request is one invocation (the fault layer may kill it, as a Lambda dies mid-request).
    routes
        .layer(axum::middleware::from_fn_with_state(auth, devauth::middleware))
        .layer(axum::middleware::from_fn(crate::faults::invocation_layer))
}

/// Serve on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}
