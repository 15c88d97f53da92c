//! The sample events in `events/` are real Lambda payloads: each API Gateway v2 request is parsed by
//! lambda_http exactly as on Lambda (claims in the request context, no dev authorizer) and served
//! by the functions' routers against the emulator; the SQS batch runs through the worker.

use patchbay_adapters::webhooks::WebhookKeys;
use patchbay_domain::dialer::{ConnectionName, ConnectionWriter, SipConnection, SipPassword};
use patchbay_domain::profiles::{MessagingProfile, NewProfile, ProfileName, ProfileWriter, WhitelistedDestinations};
use patchbay_domain::voice_ai::{Assistant, AssistantName, AssistantWriter};
use patchbay_domain::{AssistantId, CarrierName, ConnectionId, ProfileId, UserId};
use patchbay_e2e::{Parts, TestEnv};
use patchbay_local::server::function_routes;
use patchbay_worker::Worker;
use serde_json::Value;
use time::OffsetDateTime;
use tower::ServiceExt;

const PID: &str = "01a20000-0000-7000-8000-000000000001";
const CID: &str = "01a20000-0000-7000-8000-0000000000c1";
const AID: &str = "01a20000-0000-7000-8000-0000000000a1";

fn event(name: &str) -> String {
    std::fs::read_to_string(patchbay_local::emulator::repo_root().join("events").join(name)).unwrap()
}

async fn invoke(router: &axum::Router, name: &str) -> (u16, Value) {
    let req = lambda_http::request::from_str(&event(name)).unwrap_or_else(|e| panic!("{name} is not an API Gateway event: {e}"));
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    let body = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn sample_events_drive_the_functions() {
    let env = TestEnv::new(Parts { api: false, worker: false }).await;
    let keys = WebhookKeys::new(Some(patchbay_local::server::DEV_TELNYX_PUBLIC_KEY), None, None).unwrap();
    let wiring = env.wiring.clone().with_webhooks(keys);
    let router = function_routes(&wiring);
    let worker = Worker::new(&wiring);
    let user = UserId::parse("events-user").unwrap();
    let mut p = MessagingProfile::new(
        user.clone(),
        NewProfile { name: ProfileName::parse("Fixture").unwrap(), whitelisted_destinations: WhitelistedDestinations::all() },
        OffsetDateTime::now_utc(),
    );
    p.id = ProfileId::parse(PID).unwrap();
    env.store.create_profile(&p, None).await.unwrap();

    assert_eq!(invoke(&router, "messaging-profiles/healthz.json").await.0, 200);
    let (s, shown) = invoke(&router, "messaging-profiles/show.json").await;
    assert_eq!((s, shown["id"].as_str()), (200, Some(PID)));
    let (s, renamed) = invoke(&router, "messaging-profiles/rename.json").await;
    assert_eq!((s, renamed["name"].as_str()), (202, Some("Support (renamed)")));
    let (s, activated) = invoke(&router, "activate-profile/activate.json").await;
    assert_eq!((s, activated["active_profile"]["id"].as_str()), (200, Some(PID)));
    let (s, created) = invoke(&router, "messaging-profiles/create.json").await;
    assert_eq!(s, 202, "{created}");
    let (s, replayed) = invoke(&router, "messaging-profiles/create.json").await;
    assert_eq!((s, &replayed["id"]), (202, &created["id"]), "the event's Idempotency-Key replays");
    let (s, problem) = invoke(&router, "messaging-profiles/create-invalid.json").await;
    assert_eq!((s, problem["field"].as_str()), (422, Some("name")));
    let (s, list) = invoke(&router, "messaging-profiles/list.json").await;
    assert_eq!((s, list["data"].as_array().map(Vec::len)), (200, Some(2)));
    // Numbers: search, buy (the sample SQS batch buys it), assign, unassign, release.
    let (s, found) = invoke(&router, "phone-numbers/search.json").await;
    assert_eq!((s, found["data"].as_array().map(Vec::len)), (200, Some(5)));
    let (s, bought) = invoke(&router, "phone-numbers/buy.json").await;
    assert_eq!((s, bought["status"].as_str()), (202, Some("pending")), "{bought}");
    let numbers_batch: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_str(&event("worker/sync-number.json")).unwrap();
    assert!(worker.handle_batch(numbers_batch).await.batch_item_failures.is_empty());
    let (s, shown) = invoke(&router, "phone-numbers/show.json").await;
    assert_eq!((s, shown["status"].as_str()), (200, Some("active")));

    // Voice AI: an assistant (fixed id, as the samples name it) made by the sample saga command, the
    // number connected to it by the sample PATCH, another assistant created with a picked number.
    let assistant = Assistant::new(
        user.clone(),
        AssistantName::parse("Sample").unwrap(),
        Default::default(),
        None,
        CarrierName::Sandbox,
        OffsetDateTime::now_utc(),
    );
    let assistant = Assistant { id: AssistantId::parse(AID).unwrap(), ..assistant };
    env.store.create_assistant(&assistant, None, None).await.unwrap();
    let saga: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_str(&event("worker/sync-assistant.json")).unwrap();
    assert!(worker.handle_batch(saga).await.batch_item_failures.is_empty());
    let (s, connected) = invoke(&router, "phone-numbers/connect.json").await;
    assert_eq!((s, connected["assistant_id"].as_str()), (202, Some(AID)), "{connected}");
    let (s, shown) = invoke(&router, "assistants/show.json").await;
    assert_eq!((s, shown["status"].as_str(), shown["phone_numbers"].as_array().map(Vec::len)), (200, Some("active"), Some(1)), "{shown}");
    let (s, created) = invoke(&router, "assistants/create.json").await;
    assert_eq!(
        (s, created["status"].as_str(), created["phone_number"].as_str()),
        (202, Some("pending"), Some("+12125550143")),
        "{created}"
    );
    let (s, listed) = invoke(&router, "assistants/list.json").await;
    assert_eq!((s, listed["data"].as_array().map(Vec::len)), (200, Some(2)), "{listed}");
    // Disconnected again, so that the dialer can take the number's calls below.
    env.store.connect_number(&user, &patchbay_domain::E164::parse("+12125550142").unwrap(), None, OffsetDateTime::now_utc()).await.unwrap();

    // The dialer: a create answers the password once; a connection (fixed id, as the samples name
    // it) synced by the sample SQS batch takes the number as primary and issues a token.
    let (s, created) = invoke(&router, "sip-connections/create.json").await;
    assert_eq!((s, created["sync_state"].as_str()), (202, Some("pending")), "{created}");
    assert!(created["sip_password"].as_str().is_some_and(|p| p.len() >= 24), "{created}");
    let mut c =
        SipConnection::new(user.clone(), ConnectionName::parse("Sample desk").unwrap(), CarrierName::Sandbox, OffsetDateTime::now_utc());
    c.id = ConnectionId::parse(CID).unwrap();
    c.sip_username = c.id.sip_username();
    env.store.create_connection(&c, None).await.unwrap();
    wiring.sip_secrets().create_password(c.id, &SipPassword::generate()).await.unwrap();
    let connection_batch: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_str(&event("worker/sync-connection.json")).unwrap();
    assert!(worker.handle_batch(connection_batch).await.batch_item_failures.is_empty());
    let (s, synced) = invoke(&router, "sip-connections/show.json").await;
    assert_eq!((s, synced["sync_state"].as_str()), (200, Some("synced")), "{synced}");
    let (s, on) = invoke(&router, "sip-connections/assign.json").await;
    assert_eq!((s, on["default_caller_id"].as_str()), (202, Some("+12125550142")), "{on}");
    let (s, tok) = invoke(&router, "sip-connections/token.json").await;
    assert_eq!((s, tok["caller_ids"].clone()), (201, serde_json::json!(["+12125550142"])), "{tok}");
    let (s, listed) = invoke(&router, "sip-connections/list.json").await;
    assert_eq!((s, listed["data"].as_array().map(Vec::len)), (200, Some(2)), "{listed}");
    // The bought number, and the one the sample assistant reserved.
    assert_eq!(invoke(&router, "phone-numbers/list.json").await.1["data"].as_array().map(Vec::len), Some(2));
    let (s, assigned) = invoke(&router, "assign-number/assign.json").await;
    assert_eq!((s, assigned["messaging_profile_id"].as_str()), (202, Some(PID)));
    assert_eq!(invoke(&router, "assign-number/unassign.json").await.0, 202);
    // While the number is on no profile, the sample send is refused and nothing is queued.
    let (s, refused) = invoke(&router, "send-sms/send.json").await;
    assert_eq!((s, refused["code"].as_str()), (409, Some("number_not_on_profile")), "{refused}");
    let (s, releasing) = invoke(&router, "phone-numbers/release.json").await;
    assert_eq!((s, releasing["status"].as_str()), (202, Some("releasing")));

    // Conversations: none yet for this user; reading an unknown one is 404.
    let (s, convs) = invoke(&router, "conversations/list.json").await;
    assert_eq!((s, &convs["data"]), (200, &serde_json::json!([])));
    assert_eq!(invoke(&router, "conversations/read.json").await.0, 404);
    // The sample function URL webhooks carry placeholder signatures: refused before anything is read.
    for hook in [
        "webhook-receiver/telnyx-message-received.json",
        "webhook-receiver/telnyx-call-initiated.json",
        "webhook-receiver/telnyx-call-answered.json",
        "webhook-receiver/telnyx-call-hangup.json",
        "webhook-receiver/vapi-end-of-call-report.json",
    ] {
        assert_eq!(invoke(&router, hook).await.0, 401, "{hook}");
    }
    // Calls and the dashboard: none yet; the sample's November has its 30 days.
    let (s, calls) = invoke(&router, "calls/list.json").await;
    assert_eq!((s, &calls["data"]), (200, &serde_json::json!([])));
    let (s, dashboard) = invoke(&router, "calls/dashboard.json").await;
    assert_eq!((s, dashboard["days"].as_array().map(Vec::len)), (200, Some(30)), "{dashboard}");

    let (s, deleting) = invoke(&router, "messaging-profiles/delete.json").await;
    assert_eq!((s, deleting["sync_state"].as_str()), (202, Some("deleting")));

    // The sample SQS batch carries the sync command for the same profile: the worker purges it.
    let batch: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_str(&event("worker/sync-profile.json")).unwrap();
    assert!(worker.handle_batch(batch).await.batch_item_failures.is_empty());
    assert_eq!(invoke(&router, "messaging-profiles/show.json").await.0, 404);
}

/// The SDK configuration the functions build from their environment on Lambda (no aws-config):
/// signed requests reach the emulator's table, queue and Secrets Manager with it.
#[tokio::test]
async fn the_functions_sdk_configuration_from_the_environment_reaches_every_service() {
    let env = TestEnv::new(Parts { api: false, worker: false }).await;
    let endpoint = env.shared.endpoint.clone();
    let vars = move |k: &str| match k {
        "AWS_REGION" => Some("us-east-1".to_owned()),
        "AWS_ACCESS_KEY_ID" => Some("testing".to_owned()),
        "AWS_SECRET_ACCESS_KEY" => Some("testing".to_owned()),
        "AWS_SESSION_TOKEN" => Some("token".to_owned()),
        "AWS_ENDPOINT_URL" => Some(endpoint.clone()),
        _ => None,
    };
    let sdk = patchbay_adapters::config::aws_sdk_config_from(vars).unwrap();
    let table = aws_sdk_dynamodb::Client::new(&sdk).describe_table().table_name(&env.shared.info.table).send().await.unwrap();
    assert_eq!(table.table().and_then(|t| t.table_name()), Some(env.shared.info.table.as_str()));
    let attrs = aws_sdk_sqs::Client::new(&sdk)
        .get_queue_attributes()
        .queue_url(&env.shared.info.work_queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::FifoQueue)
        .send()
        .await
        .unwrap();
    assert_eq!(
        attrs.attributes().and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::FifoQueue)).map(String::as_str),
        Some("true")
    );
    aws_sdk_secretsmanager::Client::new(&sdk).list_secrets().send().await.unwrap();
    // Retries are the standard ones (3 attempts unless AWS_MAX_ATTEMPTS says otherwise).
    assert_eq!(sdk.retry_config().map(|r| r.max_attempts()), Some(3));
}

/// The API functions and the webhook receiver read the carrier secret on the first request that
/// needs it, not at cold start: a list and a Telnyx webhook never wait for it; a search, a token or a
/// Vapi webhook answer 503 while it cannot be read (nothing of it in the answer), and succeed once it
/// can; after that it is kept for the container's life.
#[tokio::test]
async fn carrier_ports_are_built_from_the_secret_on_the_first_request_that_needs_one() {
    let env = TestEnv::new(Parts { api: false, worker: false }).await;
    let sdk = patchbay_local::stack::sdk_config(&env.shared.endpoint).await;
    let secret_id = format!("patchbay-test/on-demand-{}", uuid::Uuid::new_v4());
    let vars = [
        ("TABLE_NAME", env.shared.info.table.clone()),
        ("WORK_QUEUE_URL", env.shared.info.work_queue_url.clone()),
        ("CARRIER_SECRET_ID", secret_id.clone()),
        ("PATCHBAY_PUBLIC_URL", "https://hooks.example.com".to_owned()),
    ];
    let config = patchbay_adapters::Config::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())).unwrap();
    // What `Wiring::from_env` builds on Lambda: nothing read from the secret yet.
    let router = function_routes(&patchbay_adapters::Wiring::deferred(&sdk, config).unwrap());

    assert_eq!(invoke(&router, "phone-numbers/list.json").await.0, 200);
    assert_eq!(invoke(&router, "sip-connections/list.json").await.0, 200);
    assert_eq!(invoke(&router, "assistants/list.json").await.0, 200);
    assert_eq!(invoke(&router, "webhook-receiver/telnyx-message-received.json").await.0, 401, "refused by the Telnyx key alone");
    for needs_secret in ["phone-numbers/search.json", "sip-connections/token.json", "webhook-receiver/vapi-end-of-call-report.json"] {
        let (status, problem) = invoke(&router, needs_secret).await;
        assert_eq!(status, 503, "{needs_secret}: {problem}");
        assert_eq!(problem["code"], "service_unavailable", "{needs_secret}: {problem}");
        assert!(!problem.to_string().contains("on-demand"), "the answer names no secret: {problem}");
    }

    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    secrets
        .create_secret()
        .name(&secret_id)
        .secret_string(r#"{"vapi_webhook_secret": "vapi-on-demand", "twilio_auth_token": "twilio-on-demand"}"#)
        .send()
        .await
        .unwrap();
    let (status, found) = invoke(&router, "phone-numbers/search.json").await;
    assert_eq!(status, 200, "read on this request, after the failures: {found}");
    assert!(found["data"].as_array().is_some_and(|d| !d.is_empty()), "{found}");
    assert_eq!(invoke(&router, "webhook-receiver/vapi-end-of-call-report.json").await.0, 401, "verified with the secret's key now");

    // Kept: the secret is not read again.
    secrets.delete_secret().secret_id(&secret_id).force_delete_without_recovery(true).send().await.unwrap();
    assert_eq!(invoke(&router, "phone-numbers/search.json").await.0, 200);
}
