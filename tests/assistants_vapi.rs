//! The assistant saga against a Vapi fake and a Twilio fake (wiremock, the specs' shapes), through
//! the real store: each step once whatever is redelivered, a lost Vapi answer adopted (found by its
//! metadata) instead of repeated, and each failure step ending in its recorded state with its
//! compensation.

use std::sync::Arc;
use std::time::Duration;

use patchbay_adapters::carrier::TwilioClient;
use patchbay_adapters::voice_ai::vapi::{ImportCredentials, VapiClient};
use patchbay_domain::kernel::sync::SyncOutcome;
use patchbay_domain::numbers::{Carriers, NumberCarrier, NumberReader, NumberStatus};
use patchbay_domain::voice_ai::{
    Assistant, AssistantName, AssistantReader, AssistantSettings, AssistantStatus, Assistants, ProviderChoice, VoiceAi,
};
use patchbay_domain::{CarrierName, CommandEnvelope, SyncState, UserId, E164};
use patchbay_e2e::{record, user, Parts, TestEnv};
use patchbay_worker::{Handled, Worker};
use secrecy::SecretString;
use serde_json::json;
use time::OffsetDateTime;
use wiremock::matchers::{body_partial_json, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const PARTS: Parts = Parts { api: false, worker: false };
const SID: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

struct Fakes {
    twilio: MockServer,
    vapi: MockServer,
}

impl Fakes {
    async fn start() -> Self {
        Self { twilio: MockServer::start().await, vapi: MockServer::start().await }
    }

    fn carriers(&self) -> Carriers {
        let twilio = TwilioClient::new(&self.twilio.uri(), SID, SecretString::from("token"), None, Duration::from_secs(2)).unwrap();
        Carriers { twilio: Some(Arc::new(twilio) as Arc<dyn NumberCarrier>), default: Some(CarrierName::Twilio), ..Default::default() }
    }

    fn vapi(&self) -> Arc<dyn VoiceAi> {
        let import = ImportCredentials { telnyx_credential_id: None, twilio: Some((SID.into(), SecretString::from("token"))) };
        Arc::new(VapiClient::new(&self.vapi.uri(), SecretString::from("vapi-key"), import, Duration::from_secs(2)).unwrap())
    }

    fn worker(&self, env: &TestEnv) -> Worker {
        let mut w = Worker { carriers: self.carriers(), voice_ai: self.vapi(), max_receive_count: 3, ..Worker::new(&env.wiring) };
        w.vapi_server.url = Some("https://hooks.example.com".into());
        w.vapi_server.secret = Some("vapi-webhook-secret".into());
        w
    }

    /// Vapi: no assistant was made for this one yet (a lookup by metadata finds none); creating it
    /// answers `id`, once.
    async fn vapi_creates_assistant(&self, id: &str) {
        Mock::given(method("GET"))
            .and(path("/assistant"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
            .mount(&self.vapi)
            .await;
        Mock::given(method("POST"))
            .and(path("/assistant"))
            .respond_with(
                ResponseTemplate::new(201).set_body_json(
                    json!({"id": id, "orgId": "o", "createdAt": "2026-11-23T00:00:00Z", "updatedAt": "2026-11-23T00:00:00Z"}),
                ),
            )
            .expect(1)
            .mount(&self.vapi)
            .await;
    }

    /// Vapi: no number is imported (a lookup by digits finds none).
    async fn vapi_has_no_numbers(&self) {
        Mock::given(method("GET"))
            .and(path("/phone-number"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
            .mount(&self.vapi)
            .await;
    }

    /// Twilio: the account does not have the number; buying it answers `sid` (or `refuse` with 21422).
    async fn twilio_purchase(&self, e164: &E164, sid: &str, refuse: bool) {
        let base = format!("/2010-04-01/Accounts/{SID}/IncomingPhoneNumbers.json");
        Mock::given(method("GET"))
            .and(path(base.clone()))
            .and(query_param("PhoneNumber", e164.as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"incoming_phone_numbers": [], "page": 0, "page_size": 50})))
            .mount(&self.twilio)
            .await;
        let answer = if refuse {
            ResponseTemplate::new(400).set_body_json(json!({"code": 21422, "message": "PhoneNumber is not available", "status": 400}))
        } else {
            ResponseTemplate::new(201)
                .set_body_json(json!({"sid": sid, "account_sid": SID, "phone_number": e164.as_str(), "status": "in-use"}))
        };
        Mock::given(method("POST")).and(path(base)).respond_with(answer).expect(1).mount(&self.twilio).await;
    }
}

async fn start(env: &TestEnv, fakes: &Fakes, name: &str, number: &E164) -> (UserId, Assistant, CommandEnvelope) {
    let u = UserId::parse(&user().0).unwrap();
    let carriers = fakes.carriers();
    let ops = Assistants { store: env.wiring.store.as_ref(), carriers: &carriers };
    let settings = AssistantSettings {
        first_message: Some("Hello".into()),
        system_prompt: Some("Be brief.".into()),
        model: Some(ProviderChoice { provider: "openai".into(), name: "gpt-4o".into() }),
        voice: None,
    };
    let a = ops
        .create(&u, AssistantName::parse(name).unwrap(), settings, Some(number.clone()), None, None, OffsetDateTime::now_utc())
        .await
        .unwrap()
        .into_inner()
        .assistant;
    let cmd = CommandEnvelope::sync_assistant(u.clone(), a.id, a.version);
    (u, a, cmd)
}

#[tokio::test]
async fn the_saga_runs_each_step_once_and_adopts_a_lost_vapi_answer() {
    let env = TestEnv::new(PARTS).await;
    let fakes = Fakes::start().await;
    let e164 = E164::parse("+14155550301").unwrap();
    let (u, a, cmd) = start(&env, &fakes, "Front desk", &e164).await;
    fakes.twilio_purchase(&e164, "PN0000000000000000000000000000301", false).await;
    // Vapi made the assistant but its answer was lost (500); the next delivery finds it by metadata.
    Mock::given(method("GET"))
        .and(path("/assistant"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .up_to_n_times(1)
        .expect(1)
        .mount(&fakes.vapi)
        .await;
    Mock::given(method("POST"))
        .and(path("/assistant"))
        .and(body_partial_json(json!({
            "name": "Front desk", "firstMessage": "Hello",
            "model": {"provider": "openai", "model": "gpt-4o", "messages": [{"role": "system", "content": "Be brief."}]},
            "server": {"url": "https://hooks.example.com/webhooks/vapi", "headers": {"X-Vapi-Secret": "vapi-webhook-secret"}},
            "metadata": {"patchbay_assistant_id": a.id.to_string()}
        })))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"message": "upstream timeout", "statusCode": 500})))
        .expect(1)
        .mount(&fakes.vapi)
        .await;
    Mock::given(method("GET"))
        .and(path("/assistant"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"id": "asst-other", "orgId": "o", "createdAt": "2026-11-23T00:00:00Z", "updatedAt": "2026-11-23T00:00:00Z"},
            {"id": "asst-1", "orgId": "o", "createdAt": "2026-11-23T00:00:00Z", "updatedAt": "2026-11-23T00:00:00Z", "metadata": {"patchbay_assistant_id": a.id.to_string()}}
        ])))
        .mount(&fakes.vapi)
        .await;
    Mock::given(method("GET"))
        .and(path("/phone-number"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&fakes.vapi)
        .await;
    Mock::given(method("POST"))
        .and(path("/phone-number"))
        .and(body_partial_json(json!({"provider": "twilio", "number": e164.as_str(), "twilioAccountSid": SID, "assistantId": "asst-1"})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "pn-1", "provider": "twilio", "number": e164.as_str()})))
        .expect(1)
        .mount(&fakes.vapi)
        .await;
    let w = fakes.worker(&env);

    // First delivery: bought, then Vapi's answer lost: back to the queue.
    assert!(matches!(w.handle(&record(&cmd, 1)).await, Handled::Retry(_)));
    let n = env.store.get_number(&u, &e164).await.unwrap();
    assert_eq!((n.status, n.carrier_number_id.as_deref()), (NumberStatus::Active, Some("PN0000000000000000000000000000301")));
    // Redelivered: no second purchase, the assistant adopted, the number imported once, active.
    assert_eq!(w.handle(&record(&cmd, 2)).await, Handled::Done(SyncOutcome::Created));
    let done = env.store.get_assistant(&u, a.id).await.unwrap();
    assert_eq!((done.status, done.vapi_assistant_id.as_deref()), (AssistantStatus::Active, Some("asst-1")));
    let n = env.store.get_number(&u, &e164).await.unwrap();
    assert_eq!((n.assistant_sync, n.vapi_phone_number_id.as_deref()), (Some(SyncState::Synced), Some("pn-1")));
    // Once more (SQS delivers at least once): nothing at all.
    assert_eq!(w.handle(&record(&cmd, 3)).await, Handled::Done(SyncOutcome::UpToDate));
}

#[tokio::test]
async fn a_refused_purchase_fails_with_no_assistant_and_the_reservation_freed() {
    let env = TestEnv::new(PARTS).await;
    let fakes = Fakes::start().await;
    let e164 = E164::parse("+14155550302").unwrap();
    let (u, a, cmd) = start(&env, &fakes, "Never", &e164).await;
    fakes.twilio_purchase(&e164, "", true).await;
    Mock::given(method("POST")).and(path("/assistant")).respond_with(ResponseTemplate::new(201)).expect(0).mount(&fakes.vapi).await;
    Mock::given(method("GET")).and(path("/assistant")).respond_with(ResponseTemplate::new(200)).expect(0).mount(&fakes.vapi).await;
    let w = fakes.worker(&env);
    let Handled::Done(SyncOutcome::Failed(reason)) = w.handle(&record(&cmd, 1)).await else { panic!("the refusal is recorded") };
    assert_eq!(reason.code, "21422");
    let failed = env.store.get_assistant(&u, a.id).await.unwrap();
    assert_eq!((failed.status, failed.failure.map(|f| f.code)), (AssistantStatus::Failed, Some("21422".to_owned())));
    assert_eq!(env.owner_in_table(e164.as_str()).await, None, "the reservation is freed");
}

#[tokio::test]
async fn a_refused_assistant_releases_the_bought_number() {
    let env = TestEnv::new(PARTS).await;
    let fakes = Fakes::start().await;
    let e164 = E164::parse("+14155550303").unwrap();
    let (u, a, cmd) = start(&env, &fakes, "Refused", &e164).await;
    fakes.twilio_purchase(&e164, "PN0000000000000000000000000000303", false).await;
    Mock::given(method("GET"))
        .and(path("/assistant"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&fakes.vapi)
        .await;
    Mock::given(method("POST"))
        .and(path("/assistant"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"message": ["model.model must be one of ..."], "error": "Bad Request", "statusCode": 400})),
        )
        .expect(1)
        .mount(&fakes.vapi)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/IncomingPhoneNumbers/PN0000000000000000000000000000303.json"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&fakes.twilio)
        .await;
    let w = fakes.worker(&env);
    let Handled::Done(SyncOutcome::Failed(reason)) = w.handle(&record(&cmd, 1)).await else { panic!("the refusal is recorded") };
    assert_eq!((reason.code.as_str(), reason.message.as_str()), ("vapi_400", "model.model must be one of ..."));
    assert_eq!(env.store.get_assistant(&u, a.id).await.unwrap().status, AssistantStatus::Failed);
    // Compensation: the number is releasing, and its release command (as enqueued) gives it back.
    let n = env.store.get_number(&u, &e164).await.unwrap();
    assert_eq!(n.status, NumberStatus::Releasing);
    let release = CommandEnvelope::sync_number(u.clone(), e164.clone(), n.version);
    assert_eq!(w.handle(&record(&release, 1)).await, Handled::Done(SyncOutcome::Deleted));
    assert_eq!(env.owner_in_table(e164.as_str()).await, None);
}

#[tokio::test]
async fn a_refused_attach_leaves_the_assistant_active_and_is_repaired_by_connecting_again() {
    let env = TestEnv::new(PARTS).await;
    let fakes = Fakes::start().await;
    let e164 = E164::parse("+14155550304").unwrap();
    let (u, a, cmd) = start(&env, &fakes, "Attach", &e164).await;
    fakes.twilio_purchase(&e164, "PN0000000000000000000000000000304", false).await;
    fakes.vapi_creates_assistant("asst-4").await;
    fakes.vapi_has_no_numbers().await;
    Mock::given(method("POST"))
        .and(path("/phone-number"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"message": "twilioAuthToken is invalid", "statusCode": 400})))
        .up_to_n_times(1)
        .expect(1)
        .mount(&fakes.vapi)
        .await;
    let w = fakes.worker(&env);
    assert_eq!(w.handle(&record(&cmd, 1)).await, Handled::Done(SyncOutcome::Created));
    let active = env.store.get_assistant(&u, a.id).await.unwrap();
    assert_eq!(active.status, AssistantStatus::Active);
    let n = env.store.get_number(&u, &e164).await.unwrap();
    assert_eq!(
        (n.status, n.assistant_sync, n.assistant_sync_error.map(|e| e.code)),
        (NumberStatus::Active, Some(SyncState::Failed), Some("vapi_400".into()))
    );

    // Repaired by connecting it again: the import goes through now.
    Mock::given(method("POST"))
        .and(path("/phone-number"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "pn-4"})))
        .expect(1)
        .mount(&fakes.vapi)
        .await;
    let carriers = fakes.carriers();
    let ops = Assistants { store: env.wiring.store.as_ref(), carriers: &carriers };
    let n = ops.connect(&u, &e164, Some(a.id), OffsetDateTime::now_utc()).await.unwrap();
    let sync = CommandEnvelope::sync_number(u.clone(), e164.clone(), n.version);
    assert_eq!(w.handle(&record(&sync, 1)).await, Handled::Done(SyncOutcome::Updated));
    let n = env.store.get_number(&u, &e164).await.unwrap();
    assert_eq!((n.assistant_sync, n.vapi_phone_number_id.as_deref()), (Some(SyncState::Synced), Some("pn-4")));
}

#[tokio::test]
async fn a_lost_import_answer_is_found_again_not_imported_twice() {
    let env = TestEnv::new(PARTS).await;
    let fakes = Fakes::start().await;
    let e164 = E164::parse("+14155550305").unwrap();
    let (u, a, cmd) = start(&env, &fakes, "Lost import", &e164).await;
    fakes.twilio_purchase(&e164, "PN0000000000000000000000000000305", false).await;
    fakes.vapi_creates_assistant("asst-5").await;
    // Vapi imported the number but the answer was lost: the next delivery finds it by its digits
    // and attaches it (PATCH, typed by provider) instead of importing it again.
    Mock::given(method("GET"))
        .and(path("/phone-number"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .up_to_n_times(1)
        .mount(&fakes.vapi)
        .await;
    Mock::given(method("POST"))
        .and(path("/phone-number"))
        .respond_with(ResponseTemplate::new(502).set_body_json(json!({"message": "bad gateway", "statusCode": 502})))
        .expect(1)
        .mount(&fakes.vapi)
        .await;
    Mock::given(method("GET"))
        .and(path("/phone-number"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"id": "pn-5", "provider": "twilio", "number": e164.as_str()}])))
        .mount(&fakes.vapi)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/phone-number/pn-5"))
        .and(body_partial_json(json!({"provider": "twilio", "assistantId": "asst-5"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "pn-5"})))
        .expect(1)
        .mount(&fakes.vapi)
        .await;
    let w = fakes.worker(&env);
    assert!(matches!(w.handle(&record(&cmd, 1)).await, Handled::Retry(_)), "the lost import goes back to the queue");
    assert_eq!(env.store.get_assistant(&u, a.id).await.unwrap().vapi_assistant_id.as_deref(), Some("asst-5"));
    assert_eq!(w.handle(&record(&cmd, 2)).await, Handled::Done(SyncOutcome::Created));
    let n = env.store.get_number(&u, &e164).await.unwrap();
    assert_eq!((n.assistant_sync, n.vapi_phone_number_id.as_deref()), (Some(SyncState::Synced), Some("pn-5")));
    assert_eq!(env.store.get_assistant(&u, a.id).await.unwrap().status, AssistantStatus::Active);
}

#[tokio::test]
async fn releasing_a_number_imported_at_vapi_removes_the_import_before_the_carrier_release() {
    let env = TestEnv::new(PARTS).await;
    let fakes = Fakes::start().await;
    let e164 = E164::parse("+14155550306").unwrap();
    let (u, a, cmd) = start(&env, &fakes, "Released", &e164).await;
    fakes.twilio_purchase(&e164, "PN0000000000000000000000000000306", false).await;
    fakes.vapi_creates_assistant("asst-6").await;
    fakes.vapi_has_no_numbers().await;
    Mock::given(method("POST"))
        .and(path("/phone-number"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "pn-6", "provider": "twilio", "number": e164.as_str()})))
        .expect(1)
        .mount(&fakes.vapi)
        .await;
    let w = fakes.worker(&env);
    assert_eq!(w.handle(&record(&cmd, 1)).await, Handled::Done(SyncOutcome::Created));
    let n = env.store.get_number(&u, &e164).await.unwrap();
    assert_eq!((n.assistant_id, n.vapi_phone_number_id.as_deref()), (Some(a.id), Some("pn-6")));

    // Released: `releasing`, still naming its Vapi import (the worker removes it).
    let carriers = fakes.carriers();
    let numbers = patchbay_domain::numbers::Numbers { store: env.wiring.store.as_ref(), carriers: &carriers };
    let patchbay_domain::numbers::Release::Releasing(releasing) = numbers.release(&u, &e164, OffsetDateTime::now_utc()).await.unwrap()
    else {
        panic!("an active number is released at the carrier")
    };
    assert_eq!((releasing.status, releasing.vapi_phone_number_id.as_deref()), (NumberStatus::Releasing, Some("pn-6")));

    // Vapi first: while Vapi cannot remove the import, the carrier keeps the number (calls would
    // otherwise still reach the assistant through a number someone else may buy).
    Mock::given(method("DELETE"))
        .and(path("/phone-number/pn-6"))
        .respond_with(ResponseTemplate::new(503).set_body_json(json!({"message": "unavailable", "statusCode": 503})))
        .up_to_n_times(1)
        .expect(1)
        .mount(&fakes.vapi)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/phone-number/pn-6"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "pn-6"})))
        .expect(1)
        .mount(&fakes.vapi)
        .await;
    Mock::given(method("DELETE"))
        .and(path(format!("/2010-04-01/Accounts/{SID}/IncomingPhoneNumbers/PN0000000000000000000000000000306.json")))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&fakes.twilio)
        .await;
    let release = CommandEnvelope::sync_number(u.clone(), e164.clone(), releasing.version);
    assert!(matches!(w.handle(&record(&release, 1)).await, Handled::Retry(_)), "Vapi's 503 is retried");
    let twilio_deletes = |requests: Vec<wiremock::Request>| requests.iter().filter(|r| r.method.as_str() == "DELETE").count();
    assert_eq!(twilio_deletes(fakes.twilio.received_requests().await.unwrap()), 0, "no carrier release before Vapi lets go");
    assert_eq!(env.store.get_number(&u, &e164).await.unwrap().status, NumberStatus::Releasing);

    assert_eq!(w.handle(&record(&release, 2)).await, Handled::Done(SyncOutcome::Deleted));
    assert_eq!(twilio_deletes(fakes.twilio.received_requests().await.unwrap()), 1);
    assert!(env.store.get_number(&u, &e164).await.is_err(), "the record is gone");
    assert_eq!(env.owner_in_table(e164.as_str()).await, None, "the number is free again");
    // The assistant stays, active at Vapi, with no number.
    let ops = Assistants { store: env.wiring.store.as_ref(), carriers: &carriers };
    let page = ops.get(&u, a.id).await.unwrap();
    assert_eq!((page.assistant.status, page.assistant.vapi_assistant_id.as_deref()), (AssistantStatus::Active, Some("asst-6")));
    assert!(page.numbers.is_empty(), "{:?}", page.numbers);
    let vapi = fakes.vapi.received_requests().await.unwrap();
    assert!(!vapi.iter().any(|r| r.url.path().starts_with("/assistant/")), "the assistant is not touched at Vapi: {vapi:?}");
}

/// crash-audit F12: a number imported at Vapi whose id was never stored (the record had moved on, or
/// the worker died before recording it) is still found and removed when it is disconnected: the
/// disconnect's sync looks the number up by its digits instead of assuming nothing is there.
#[tokio::test]
async fn a_disconnect_removes_an_import_whose_id_was_never_stored() {
    let env = TestEnv::new(PARTS).await;
    let fakes = Fakes::start().await;
    let e164 = E164::parse("+14155550307").unwrap();
    let (u, _a, cmd) = start(&env, &fakes, "Forgotten import", &e164).await;
    fakes.twilio_purchase(&e164, "PN0000000000000000000000000000307", false).await;
    fakes.vapi_creates_assistant("asst-7").await;
    Mock::given(method("GET"))
        .and(path("/phone-number"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .up_to_n_times(1)
        .mount(&fakes.vapi)
        .await;
    Mock::given(method("POST"))
        .and(path("/phone-number"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "pn-7", "provider": "twilio", "number": e164.as_str()})))
        .expect(1)
        .mount(&fakes.vapi)
        .await;
    let w = fakes.worker(&env);
    assert_eq!(w.handle(&record(&cmd, 1)).await, Handled::Done(SyncOutcome::Created));
    // The import's id is lost from the record (what a `Stale` record write used to drop).
    env.dynamo
        .update_item()
        .table_name(&env.shared.info.table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("USER#{u}")))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S(format!("NUMBER#{}", e164.as_str())))
        .update_expression("REMOVE vapi_phone_number_id")
        .send()
        .await
        .unwrap();
    // Vapi still has it, attached: the disconnect finds it by its digits and removes it, once.
    Mock::given(method("GET"))
        .and(path("/phone-number"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([{"id": "pn-7", "provider": "twilio", "number": e164.as_str(), "assistantId": "asst-7"}])),
        )
        .mount(&fakes.vapi)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/phone-number/pn-7"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "pn-7"})))
        .expect(1)
        .mount(&fakes.vapi)
        .await;
    let carriers = fakes.carriers();
    let ops = Assistants { store: env.wiring.store.as_ref(), carriers: &carriers };
    let off = ops.connect(&u, &e164, None, OffsetDateTime::now_utc()).await.unwrap();
    let disconnect = CommandEnvelope::sync_number(u.clone(), e164.clone(), off.version);
    assert_eq!(w.handle(&record(&disconnect, 1)).await, Handled::Done(SyncOutcome::Updated));
    let n = env.store.get_number(&u, &e164).await.unwrap();
    assert_eq!((n.assistant_id, n.assistant_sync, n.vapi_phone_number_id), (None, Some(SyncState::Synced), None));
}

#[tokio::test]
async fn a_settings_change_given_up_is_pushed_again_when_redriven() {
    use patchbay_domain::kernel::sync::exhausted;
    use patchbay_domain::voice_ai::AssistantSyncLedger;
    let env = TestEnv::new(PARTS).await;
    let fakes = Fakes::start().await;
    let u = UserId::parse(&user().0).unwrap();
    let carriers = fakes.carriers();
    let ops = Assistants { store: env.wiring.store.as_ref(), carriers: &carriers };
    let now = OffsetDateTime::now_utc();
    let settings = AssistantSettings { first_message: Some("Hi".into()), ..Default::default() };
    let a = ops.create(&u, AssistantName::parse("Desk").unwrap(), settings, None, None, None, now).await.unwrap().into_inner().assistant;
    env.store.record_vapi_assistant(&u, a.id, "asst-9").await.unwrap();
    env.store.record_assistant_active(&u, a.id, a.version, now).await.unwrap();
    // Its settings change's last delivery gave up (what `give_up` writes).
    let active = env.store.get_assistant(&u, a.id).await.unwrap();
    env.store.record_assistant_sync(&u, a.id, active.version, Err(&exhausted("vapi answered 503")), now).await.unwrap();
    Mock::given(method("PATCH"))
        .and(path("/assistant/asst-9"))
        .and(body_partial_json(json!({"name": "Desk", "firstMessage": "Hi"})))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"id": "asst-9", "orgId": "o", "createdAt": "2026-11-23T00:00:00Z", "updatedAt": "2026-11-23T00:00:00Z"}),
            ),
        )
        .expect(1)
        .mount(&fakes.vapi)
        .await;
    let w = fakes.worker(&env);

    // An operator redrives the dead command: the change goes back to pending and is pushed.
    let cmd = CommandEnvelope::sync_assistant(u.clone(), a.id, active.version);
    assert_eq!(w.handle(&record(&cmd, 1)).await, Handled::Done(SyncOutcome::Updated));
    let got = env.store.get_assistant(&u, a.id).await.unwrap();
    assert_eq!((got.status, got.sync_state, got.sync_error), (AssistantStatus::Active, SyncState::Synced, None));
}
