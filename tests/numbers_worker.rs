//! The number worker against the real store and Twilio/Telnyx fakes (wiremock) with the specs'
//! shapes: one purchase per number whatever is retried or redelivered, failures recorded with the
//! carrier's reason and the number freed, Telnyx orders followed, assignments mirrored, releases.

use std::sync::Arc;
use std::time::Duration;

use patchbay_domain::kernel::sync::SyncOutcome;
use patchbay_domain::numbers; // FIXME
use patchbay_domain::numbers::{NumberReader, NumberStatus, NumberSyncLedger, NumberWriter, Numbers};
use patchbay_domain::profiles::{MessagingProfile, NewProfile, ProfileName, ProfileSyncLedger, ProfileWriter, WhitelistedDestinations};
use patchbay_domain::{CarrierName, CarrierProfileId, CommandEnvelope, IdempotencyKey, E164};
use patchbay_e2e::{record, Parts, TestEnv};
use patchbay_local::poller::Poller;
use patchbay_worker::{Handled, Worker};
use serde_json::json;
use time::OffsetDateTime;
use wiremock::matchers::{body_json, body_string_contains, header_exists, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[path = "numbers_worker/helpers.rs"]
mod helpers;

use helpers::{
    empty_incoming, number, pending_purchase, queued_message, telnyx, telnyx_number_life, twilio, twilio_number, uid, with, worker, SID,
};

const PARTS: Parts = Parts { api: false, worker: false };

/// The tests share the work queue: one at a time, so that no test's poller takes (and, with the
/// wrong carriers, gives back until the dead-letter queue) another test's command.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn a_twilio_purchase_retried_by_the_client_and_redelivered_by_sqs_buys_once() {
    let _one = SERIAL.lock().await;
    let env = TestEnv::new(PARTS).await;
    let server = MockServer::start().await;
    let e164 = number(1001);
    let base = format!("/2010-04-01/Accounts/{SID}/IncomingPhoneNumbers.json");
    Mock::given(method("GET"))
        .and(path(base.clone()))
        .and(query_param("PhoneNumber", e164.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(empty_incoming()))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(base))
        .and(header_exists("authorization"))
        .and(body_string_contains("PhoneNumber=%2B14155551001"))
        .and(body_string_contains("SmsUrl=https%3A%2F%2Fhooks.example.com%2Fwebhooks%2Ftwilio%2Fmessages"))
        .respond_with(ResponseTemplate::new(201).set_body_json(twilio_number("PN11111111111111111111111111111111", &e164)))
        .expect(1)
        .mount(&server)
        .await;
    let carriers = with(CarrierName::Twilio, twilio(&server, 2000));
    let w = worker(&env, carriers.clone(), 5);
    // This test drains the shared queue itself: commands other tests left there (given back by
    // workers without their carrier) would stop its FIFO batches and push its command to the DLQ.
    env.sqs.purge_queue().queue_url(&env.shared.info.work_queue_url).send().await.unwrap();
    let u = uid();
    let key = IdempotencyKey::parse("buy-twice").unwrap();
    let ops = Numbers { store: &env.store, carriers: &carriers };
    // The client sends the same buy twice (a retry after a lost answer).
    for _ in 0..2 {
        ops.buy(&u, e164.clone(), Some(CarrierName::Twilio), Some(&key), OffsetDateTime::now_utc()).await.unwrap();
    }
    // The purchase's command is an outbox item of its transaction: the relay takes it from the
    // table's stream to the queue, and the worker drains the queue as Lambda would.
    let _relay = env.spawn_relay().await;
    let poller = Poller {
        sqs: env.sqs.clone(),
        queue_url: env.shared.info.work_queue_url.clone(),
        visibility_timeout: Some(1),
        idle: Duration::ZERO,
    };
    // Other tests of this binary share the queue: a batch may hold their commands too, and one that
    // this worker must give back stops the batch (FIFO), so poll until this number settles.
    let settled = patchbay_e2e::eventually(30, || async {
        poller.poll_once(&w).await.unwrap();
        let n = env.store.get_number(&u, &e164).await.unwrap();
        (n.status != NumberStatus::Pending).then_some(())
    })
    .await;
    assert!(settled.is_some(), "the purchase never settled: {:?}", env.store.get_number(&u, &e164).await);
    let n = env.store.get_number(&u, &e164).await.unwrap();
    assert_eq!((n.status, n.carrier_number_id.as_deref()), (NumberStatus::Active, Some("PN11111111111111111111111111111111")));
    // SQS redelivers the command anyway: nothing is bought again.
    let cmd = CommandEnvelope::sync_number(u.clone(), e164.clone(), 1);
    assert_eq!(w.handle(&record(&cmd, 2)).await, Handled::Done(SyncOutcome::UpToDate));
}

#[tokio::test]
async fn a_purchase_that_went_through_before_a_lost_answer_is_adopted_not_repeated() {
    let _one = SERIAL.lock().await;
    let env = TestEnv::new(PARTS).await;
    let server = MockServer::start().await;
    let e164 = number(1002);
    let base = format!("/2010-04-01/Accounts/{SID}/IncomingPhoneNumbers.json");
    Mock::given(method("GET"))
        .and(path(base.clone()))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"incoming_phone_numbers": [twilio_number("PN22222222222222222222222222222222", &e164)]})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST")).and(path(base)).respond_with(ResponseTemplate::new(500)).expect(0).mount(&server).await;
    let w = worker(&env, with(CarrierName::Twilio, twilio(&server, 2000)), 5);
    let u = uid();
    let n = pending_purchase(&env, &u, &e164, CarrierName::Twilio).await;
    let cmd = CommandEnvelope::sync_number(u.clone(), e164.clone(), n.version);
    assert_eq!(w.handle(&record(&cmd, 2)).await, Handled::Done(SyncOutcome::Created));
    assert_eq!(env.store.get_number(&u, &e164).await.unwrap().carrier_number_id.as_deref(), Some("PN22222222222222222222222222222222"));
}

#[tokio::test]
async fn twilio_21422_fails_the_purchase_with_the_reason_and_frees_the_number() {
    let _one = SERIAL.lock().await;
    let env = TestEnv::new(PARTS).await;
    let server = MockServer::start().await;
    let e164 = number(1003);
    let base = format!("/2010-04-01/Accounts/{SID}/IncomingPhoneNumbers.json");
    Mock::given(method("GET"))
        .and(path(base.clone()))
        .respond_with(ResponseTemplate::new(200).set_body_json(empty_incoming()))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(base))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"code": 21422, "message": "PhoneNumber requested is not available", "more_info": "https://www.twilio.com/docs/errors/21422", "status": 400})))
        .expect(1)
        .mount(&server)
        .await;
    let w = worker(&env, with(CarrierName::Twilio, twilio(&server, 2000)), 5);
    let u = uid();
    let n = pending_purchase(&env, &u, &e164, CarrierName::Twilio).await;
    let cmd = CommandEnvelope::sync_number(u.clone(), e164.clone(), n.version);
    let Handled::Done(SyncOutcome::Failed(reason)) = w.handle(&record(&cmd, 1)).await else { panic!("expected a recorded failure") };
    assert_eq!(reason.code, "21422");
    let stored = env.store.get_number(&u, &e164).await.unwrap();
    assert_eq!(
        (stored.status, stored.failure.map(|f| f.message)),
        (NumberStatus::Failed, Some("PhoneNumber requested is not available".to_owned()))
    );
    // The guard is gone: another user can start a purchase of it.
    let other = pending_purchase(&env, &uid(), &e164, CarrierName::Twilio).await;
    assert_eq!(other.status, NumberStatus::Pending);
    // Redelivery of the failed one: no second carrier call.
    assert_eq!(w.handle(&record(&cmd, 2)).await, Handled::Done(SyncOutcome::UpToDate));
}

#[tokio::test]
async fn a_500_then_success_is_active_after_a_retry() {
    let _one = SERIAL.lock().await;
    let env = TestEnv::new(PARTS).await;
    let server = MockServer::start().await;
    let e164 = number(1004);
    let base = format!("/2010-04-01/Accounts/{SID}/IncomingPhoneNumbers.json");
    Mock::given(method("GET"))
        .and(path(base.clone()))
        .respond_with(ResponseTemplate::new(200).set_body_json(empty_incoming()))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(base.clone()))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"code": 20500, "message": "Internal Server Error", "status": 500})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(base))
        .respond_with(ResponseTemplate::new(201).set_body_json(twilio_number("PN44444444444444444444444444444444", &e164)))
        .expect(1)
        .mount(&server)
        .await;
    let w = worker(&env, with(CarrierName::Twilio, twilio(&server, 2000)), 5);
    let u = uid();
    let n = pending_purchase(&env, &u, &e164, CarrierName::Twilio).await;
    let cmd = CommandEnvelope::sync_number(u.clone(), e164.clone(), n.version);
    assert!(matches!(w.handle(&record(&cmd, 1)).await, Handled::Retry(_)));
    assert_eq!(env.store.get_number(&u, &e164).await.unwrap().status, NumberStatus::Pending);
    assert_eq!(w.handle(&record(&cmd, 2)).await, Handled::Done(SyncOutcome::Created));
    assert_eq!(env.store.get_number(&u, &e164).await.unwrap().status, NumberStatus::Active);
}

#[tokio::test]
async fn timeouts_never_leave_a_number_pending_for_ever() {
    let _one = SERIAL.lock().await;
    let env = TestEnv::new(PARTS).await;
    let server = MockServer::start().await;
    let e164 = number(1005);
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(empty_incoming()).set_delay(Duration::from_millis(600)))
        .mount(&server)
        .await;
    let w = worker(&env, with(CarrierName::Twilio, twilio(&server, 100)), 3);
    let u = uid();
    let n = pending_purchase(&env, &u, &e164, CarrierName::Twilio).await;
    let cmd = CommandEnvelope::sync_number(u.clone(), e164.clone(), n.version);
    for attempt in 1..=3 {
        assert!(matches!(w.handle(&record(&cmd, attempt)).await, Handled::Retry(_)), "attempt {attempt}");
    }
    let stored = env.store.get_number(&u, &e164).await.unwrap();
    assert_eq!((stored.status, stored.failure.map(|f| f.code)), (NumberStatus::Failed, Some("retries_exhausted".to_owned())));
    assert!(pending_purchase(&env, &uid(), &e164, CarrierName::Twilio).await.status == NumberStatus::Pending, "the number is free again");
}

#[tokio::test]
async fn telnyx_orders_are_followed_assignments_mirrored_and_releases_done() {
    let _one = SERIAL.lock().await;
    let env = TestEnv::new(PARTS).await;
    let server = MockServer::start().await;
    let e164 = number(1006);
    let number_id = "1293384261075731499";
    let cid = "3fa85f64-5717-4562-b3fc-2c963f66afa6";
    telnyx_number_life(&server, &e164, number_id, cid).await;
    let w = worker(&env, with(CarrierName::Telnyx, telnyx(&server)), 5);
    let u = uid();
    let n = pending_purchase(&env, &u, &e164, CarrierName::Telnyx).await;
    let cmd = CommandEnvelope::sync_number(u.clone(), e164.clone(), n.version);
    // The order is pending: remembered, and the message comes back to follow it, even from the
    // queue's last delivery: an open order is never given up, the number and its guard stay ours
    // (crash-audit F15), and the reconciler's sweep writes the command again later.
    assert!(matches!(w.handle(&record(&cmd, 5)).await, Handled::Retry(r) if r.contains("pending")));
    let ordered = env.store.get_number(&u, &e164).await.unwrap();
    assert_eq!((ordered.status, ordered.carrier_order_id.is_some()), (NumberStatus::Pending, true));
    assert_eq!(env.owner_in_table(e164.as_str()).await.as_deref(), Some(u.as_str()), "the guard is kept while the order runs");
    assert_eq!(w.handle(&record(&cmd, 2)).await, Handled::Done(SyncOutcome::Created));
    let active = env.store.get_number(&u, &e164).await.unwrap();
    assert_eq!(
        (active.status, active.carrier_number_id.as_deref(), active.carrier_order_id),
        (NumberStatus::Active, Some(number_id), None)
    );

    // Put it on a profile that Telnyx knows.
    let profile = MessagingProfile::new(
        u.clone(),
        NewProfile { name: ProfileName::parse("Ops").unwrap(), whitelisted_destinations: WhitelistedDestinations::all() },
        OffsetDateTime::now_utc(),
    );
    env.store.create_profile(&profile, None).await.unwrap();
    env.store.record_synced(&u, profile.id, 1, &CarrierProfileId::parse(cid).unwrap(), OffsetDateTime::now_utc()).await.unwrap();
    let assigned = numbers::assign(&env.store, &u, &e164, profile.id, OffsetDateTime::now_utc()).await.unwrap();
    let cmd = CommandEnvelope::sync_number(u.clone(), e164.clone(), assigned.version);
    assert_eq!(w.handle(&record(&cmd, 1)).await, Handled::Done(SyncOutcome::Updated));
    assert_eq!(env.store.get_number(&u, &e164).await.unwrap().profile_sync, patchbay_domain::SyncState::Synced);

    // Telnyx refuses the next change for good: recorded on the number, not retried.
    Mock::given(method("PATCH"))
        .and(path(format!("/phone_numbers/{number_id}/messaging")))
        .and(body_json(json!({"messaging_profile_id": ""})))
        .respond_with(
            ResponseTemplate::new(422)
                .set_body_json(json!({"errors": [{"code": "10015", "title": "Invalid parameter", "detail": "messaging_profile_id"}]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let off = numbers::unassign(&env.store, &u, &e164, profile.id, OffsetDateTime::now_utc()).await.unwrap();
    let cmd = CommandEnvelope::sync_number(u.clone(), e164.clone(), off.version);
    assert!(matches!(w.handle(&record(&cmd, 1)).await, Handled::Done(SyncOutcome::Failed(e)) if e.code == "10015"));
    let refused = env.store.get_number(&u, &e164).await.unwrap();
    assert_eq!(
        (refused.profile_sync, refused.profile_sync_error.map(|e| e.code)),
        (patchbay_domain::SyncState::Failed, Some("10015".to_owned()))
    );
    // Back on the profile for the release below.
    numbers::assign(&env.store, &u, &e164, profile.id, OffsetDateTime::now_utc()).await.unwrap();

    // Release: off the profile (its count back to zero), then gone at the carrier and here.
    let releasing = env.store.mark_releasing(&u, &e164, OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!((releasing.status, releasing.messaging_profile_id), (NumberStatus::Releasing, None));
    let cmd = CommandEnvelope::sync_number(u.clone(), e164.clone(), releasing.version);
    assert_eq!(w.handle(&record(&cmd, 1)).await, Handled::Done(SyncOutcome::Deleted));
    assert!(env.store.get_number(&u, &e164).await.is_err());
    // The profile can go now that no number is on it.
    env.store.mark_deleting(&u, profile.id, OffsetDateTime::now_utc()).await.unwrap();
}

/// The search route with a real Twilio client against a fake: a carrier refusal is 502 and a carrier
/// failure 503, each with the carrier's own code and message; never a 500.
#[tokio::test]
async fn search_carrier_failures_are_502_or_503_with_the_carriers_words() {
    use tower::ServiceExt;
    let _one = SERIAL.lock().await;
    let env = TestEnv::new(PARTS).await;
    let server = MockServer::start().await;
    let list = format!("/2010-04-01/Accounts/{SID}/AvailablePhoneNumbers/US/Local.json");
    Mock::given(method("GET"))
        .and(path(list.clone()))
        .and(query_param("AreaCode", "999"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"code": 21451, "message": "Invalid area code", "status": 400})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(list.clone()))
        .and(query_param("AreaCode", "998"))
        .respond_with(ResponseTemplate::new(503).set_body_json(json!({"code": 20503, "message": "Service Unavailable", "status": 503})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(list))
        .and(query_param("AreaCode", "212"))
        .and(query_param("PageSize", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"available_phone_numbers": [
            {"phone_number": "+12125550181", "locality": "New York", "region": "NY", "capabilities": {"SMS": true, "voice": true}},
            {"phone_number": "not a number", "capabilities": {"sms": true}}
        ]})))
        .mount(&server)
        .await;
    let api = patchbay_phone_numbers::NumbersApi::new(&env.wiring.clone().with_carriers(with(CarrierName::Twilio, twilio(&server, 2000))));
    let router = patchbay_adapters::http::finish(patchbay_phone_numbers::router(Arc::new(api)));
    let claims = serde_json::Map::from_iter([("sub".to_owned(), json!("searcher"))]);
    let call = |area: &str, limit: &str| {
        let mut req =
            axum::http::Request::get(format!("/v1/available-phone-numbers?country=US&area_code={area}&limit={limit}&carrier=twilio"))
                .body(axum::body::Body::empty())
                .unwrap();
        req.extensions_mut().insert(patchbay_local::devauth::request_context("GET", "/v1/available-phone-numbers", &claims).unwrap());
        let router = router.clone();
        async move {
            let res = router.oneshot(req).await.unwrap();
            let status = res.status().as_u16();
            let body: serde_json::Value = serde_json::from_slice(&axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap()).unwrap();
            (status, body)
        }
    };
    let (st, body) = call("999", "10").await;
    assert_eq!(
        (st, body["code"].as_str(), body["carrier"]["code"].as_str(), body["carrier"]["message"].as_str()),
        (502, Some("carrier_error"), Some("21451"), Some("Invalid area code"))
    );
    let (st, body) = call("998", "10").await;
    assert_eq!((st, body["carrier"]["name"].as_str()), (503, Some("twilio")), "{body}");
    let (st, body) = call("212", "2").await;
    assert_eq!(st, 200);
    assert_eq!(
        body["data"],
        json!([{"phone_number": "+12125550181", "region": "NY", "locality": "New York", "sms": true, "voice": true}]),
        "unusable numbers are dropped"
    );
}

/// The send path through a Telnyx fake: a 500 releases the claim and the retry sends; a redelivery
/// after that sends nothing more.
#[tokio::test]
async fn a_send_is_retried_after_a_5xx_and_never_sent_twice() {
    use patchbay_domain::kernel::provider::Created;
    use patchbay_domain::messaging::OutboundSms;
    use patchbay_domain::messaging::{Outbox, SendLedger};
    let _one = SERIAL.lock().await;
    let env = TestEnv::new(PARTS).await;
    let server = MockServer::start().await;
    let cid = "6a09cdc3-8948-47f0-aa62-74ac943d6c58";
    Mock::given(method("POST"))
        .and(path("/messages"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"errors": [{"code": "10007", "title": "Unexpected error"}]})))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/messages"))
        .and(body_json(json!({"from": "+14155551007", "to": "+16465550100", "text": "hello", "messaging_profile_id": cid})))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": {"id": "40385f64-5717-4562-b3fc-2c963f66afa6", "record_type": "message"}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let w = worker(&env, with(CarrierName::Telnyx, telnyx(&server)), 5);
    // A Telnyx number, active, on the user's active profile, which Telnyx knows.
    let u = uid();
    let e164 = number(1007);
    let n = pending_purchase(&env, &u, &e164, CarrierName::Telnyx).await;
    env.store.record_active(&u, &e164, n.version, "1293384261075731499", OffsetDateTime::now_utc()).await.unwrap();
    let profile = MessagingProfile::new(
        u.clone(),
        NewProfile { name: ProfileName::parse("Sends").unwrap(), whitelisted_destinations: WhitelistedDestinations::all() },
        OffsetDateTime::now_utc(),
    );
    env.store.create_profile(&profile, None).await.unwrap();
    env.store.record_synced(&u, profile.id, 1, &CarrierProfileId::parse(cid).unwrap(), OffsetDateTime::now_utc()).await.unwrap();
    env.store.activate_profile(&u, profile.id, OffsetDateTime::now_utc()).await.unwrap();
    numbers::assign(&env.store, &u, &e164, profile.id, OffsetDateTime::now_utc()).await.unwrap();

    let sms = OutboundSms::new(e164.clone(), E164::parse("+16465550100").unwrap(), "hello".into()).unwrap();
    // Queued through the store, not the queue: this binary's tests share the queue, and one of them polls it.
    let m = sms.into_message(&u, CarrierName::Telnyx, OffsetDateTime::now_utc());
    assert!(matches!(
        env.store.queue_outbound(&sms, &env.store.get_number(&u, &sms.from).await.unwrap(), &m, None).await.unwrap(),
        Created::New(_)
    ));
    let cmd = CommandEnvelope::send_sms(u.clone(), m.conversation_id.clone(), m.id.to_string());
    assert!(matches!(w.handle(&record(&cmd, 1)).await, Handled::Retry(_)));
    let stored = env.store.get_message(&u, &m.conversation_id, &m.id.to_string()).await.unwrap();
    assert_eq!(stored.status, patchbay_domain::messaging::MessageStatus::Queued, "the claim was released for the retry");
    assert_eq!(w.handle(&record(&cmd, 2)).await, Handled::Done(SyncOutcome::Created));
    let sent = env.store.get_message(&u, &m.conversation_id, &m.id.to_string()).await.unwrap();
    assert_eq!(
        (sent.status, sent.carrier_message_id.as_deref()),
        (patchbay_domain::messaging::MessageStatus::Sent, Some("40385f64-5717-4562-b3fc-2c963f66afa6"))
    );
    // SQS delivers the command once more: nothing is sent again (wiremock checks the counts on drop).
    assert_eq!(w.handle(&record(&cmd, 3)).await, Handled::Done(SyncOutcome::UpToDate));
}

/// crash-audit F3: a send's claim has a lease. A delivery that died between its claim and the
/// carrier (or between the carrier and `record_sent`) left the message `sending` with no carrier id;
/// once the lease has run out, the next delivery asks the carrier, adopts what it sent, and sends
/// only what it has not. A claim whose lease still runs is retried, never dropped.
#[tokio::test]
async fn a_send_whose_delivery_died_is_taken_over_after_its_lease() {
    use patchbay_domain::messaging::{Claim, MessageStatus, SendLedger};
    let _one = SERIAL.lock().await;
    let env = TestEnv::new(PARTS).await;
    let server = MockServer::start().await;
    let lease = Duration::from_secs(2);
    let w = Worker { send_lease: lease, ..worker(&env, with(CarrierName::Twilio, twilio(&server, 2000)), 5) };
    let u = uid();
    let cid = "7a09cdc3-8948-47f0-aa62-74ac943d6c58";
    let before = queued_message(&env, &u, &number(1010), CarrierName::Twilio, cid, "+16465550110", "died before the carrier").await;
    let after = queued_message(&env, &u, &number(1011), CarrierName::Twilio, cid, "+16465550111", "died after the carrier").await;
    let held = queued_message(&env, &u, &number(1012), CarrierName::Twilio, cid, "+16465550112", "still held").await;
    let messages = format!("/2010-04-01/Accounts/{SID}/Messages.json");
    // The carrier has the second message only (its delivery died before recording it).
    Mock::given(method("GET"))
        .and(path(messages.clone()))
        .and(query_param("To", "+16465550111"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"messages": [
            {"sid": "SM_other", "body": "something else", "date_created": "Mon, 01 Jan 2024 00:00:00 +0000"},
            {"sid": "SM_after", "body": "died after the carrier"}
        ]})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(messages.clone()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"messages": []})))
        .mount(&server)
        .await;
    // Sent exactly once, and only the message the carrier does not have.
    Mock::given(method("POST"))
        .and(path(messages.clone()))
        .and(body_string_contains("Body=died+before+the+carrier"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"sid": "SM_before"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(messages))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"sid": "SM_twice"})))
        .expect(0)
        .mount(&server)
        .await;
    // Three deliveries claimed the messages and died: two long ago, one just now.
    let long_ago = OffsetDateTime::now_utc() - Duration::from_secs(30);
    for (m, at) in [(&before, long_ago), (&after, long_ago), (&held, OffsetDateTime::now_utc())] {
        let claim = env.store.claim_send(&u, &m.conversation_id, &m.id.to_string(), at, lease).await.unwrap();
        assert!(matches!(claim, Claim::Fresh(_)), "{claim:?}");
    }
    let cmd = |m: &patchbay_domain::messaging::Message| CommandEnvelope::send_sms(u.clone(), m.conversation_id.clone(), m.id.to_string());
    assert_eq!(w.handle(&record(&cmd(&before), 2)).await, Handled::Done(SyncOutcome::Created));
    assert_eq!(w.handle(&record(&cmd(&after), 2)).await, Handled::Done(SyncOutcome::Updated));
    assert!(matches!(w.handle(&record(&cmd(&held), 2)).await, Handled::Retry(r) if r.contains("claimed")));
    for (m, want) in [(&before, Some("SM_before")), (&after, Some("SM_after")), (&held, None)] {
        let got = env.store.get_message(&u, &m.conversation_id, &m.id.to_string()).await.unwrap();
        let status = if want.is_some() { MessageStatus::Sent } else { MessageStatus::Sending };
        assert_eq!((got.status, got.carrier_message_id.as_deref()), (status, want), "{}", m.text);
    }
    // Redelivered once more: nothing is sent or looked up again.
    assert_eq!(w.handle(&record(&cmd(&before), 3)).await, Handled::Done(SyncOutcome::UpToDate));
    assert_eq!(w.handle(&record(&cmd(&after), 3)).await, Handled::Done(SyncOutcome::UpToDate));
}

/// crash-audit F3, for a carrier that cannot be asked (Telnyx has no message search): a send whose
/// delivery died is recorded `failed` with `send_outcome_unknown` (visible and counted), never sent
/// a second time.
#[tokio::test]
async fn a_telnyx_send_whose_delivery_died_fails_visibly_and_is_not_sent_twice() {
    use patchbay_domain::messaging::{MessageStatus, SendLedger};
    let _one = SERIAL.lock().await;
    let env = TestEnv::new(PARTS).await;
    let server = MockServer::start().await;
    Mock::given(method("POST")).and(path("/messages")).respond_with(ResponseTemplate::new(200)).expect(0).mount(&server).await;
    let lease = Duration::from_secs(2);
    let w = Worker { send_lease: lease, ..worker(&env, with(CarrierName::Telnyx, telnyx(&server)), 5) };
    let u = uid();
    let m =
        queued_message(&env, &u, &number(1013), CarrierName::Telnyx, "8a09cdc3-8948-47f0-aa62-74ac943d6c58", "+16465550113", "hi").await;
    env.store
        .claim_send(&u, &m.conversation_id, &m.id.to_string(), OffsetDateTime::now_utc() - Duration::from_secs(30), lease)
        .await
        .unwrap();
    let cmd = CommandEnvelope::send_sms(u.clone(), m.conversation_id.clone(), m.id.to_string());
    assert!(matches!(w.handle(&record(&cmd, 2)).await, Handled::Done(SyncOutcome::Failed(r)) if r.code == "send_outcome_unknown"));
    let got = env.store.get_message(&u, &m.conversation_id, &m.id.to_string()).await.unwrap();
    // Failed with the worker's reason, as the messages list answers it (`failure`).
    assert_eq!((got.status, got.failure.map(|f| f.code)), (MessageStatus::Failed, Some("send_outcome_unknown".to_owned())));
}
