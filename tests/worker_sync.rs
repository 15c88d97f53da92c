//! The worker against the real store and a Telnyx fake (wiremock) serving the spec's shapes:
//! requests as the spec names them, retries for 5xx and timeouts, permanent 4xx recorded, a
//! redelivered message never creates twice, and a message that keeps failing reaches the DLQ.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use patchbay_adapters::carrier::TelnyxClient;
use patchbay_domain::kernel::sync::SyncOutcome;
use patchbay_domain::kernel::work::WorkQueue;
use patchbay_domain::profiles::{
    MessagingProfile, NewProfile, ProfileCarrier, ProfileName, ProfilePatch, ProfileReader, ProfileWriter, WhitelistedDestinations,
};
use patchbay_domain::{CommandEnvelope, SyncState, UserId};
use patchbay_e2e::{record, user, Parts, TestEnv};
use patchbay_local::poller::Poller;
use patchbay_worker::{Handled, Worker};
use secrecy::SecretString;
use serde_json::json;
use time::OffsetDateTime;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const PARTS: Parts = Parts { api: false, worker: false };

fn telnyx(server: &MockServer, timeout_ms: u64) -> Arc<dyn ProfileCarrier> {
    Arc::new(TelnyxClient::new(&server.uri(), SecretString::from("KEY_test"), Duration::from_millis(timeout_ms)).unwrap())
}

fn worker(env: &TestEnv, carrier: Arc<dyn ProfileCarrier>) -> Worker {
    Worker { carrier, carriers: Default::default(), max_receive_count: 3, ..Worker::new(&env.wiring) }
}

async fn new_profile(env: &TestEnv, name: &str) -> (UserId, MessagingProfile) {
    let u = UserId::parse(&user().0).unwrap();
    let p = MessagingProfile::new(
        u.clone(),
        NewProfile { name: ProfileName::parse(name).unwrap(), whitelisted_destinations: WhitelistedDestinations::parse(&["US"]).unwrap() },
        OffsetDateTime::now_utc(),
    );
    env.store.create_profile(&p, None).await.unwrap();
    (u, p)
}

fn telnyx_profile(id: &str, name: &str) -> serde_json::Value {
    json!({"data": {"id": id, "record_type": "messaging_profile", "name": name, "enabled": true, "whitelisted_destinations": ["US"]}})
}

#[tokio::test]
async fn create_update_delete_follow_the_telnyx_spec() {
    let env = TestEnv::new(PARTS).await;
    let server = MockServer::start().await;
    let cid = "3fa85f64-5717-4562-b3fc-2c963f66afa6";
    Mock::given(method("POST"))
        .and(path("/messaging_profiles"))
        .and(header("authorization", "Bearer KEY_test"))
        .and(body_json(json!({"name": "Support", "whitelisted_destinations": ["US"]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(telnyx_profile(cid, "Support")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path(format!("/messaging_profiles/{cid}")))
        .and(body_json(json!({"name": "Help", "whitelisted_destinations": ["US"]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(telnyx_profile(cid, "Help")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(format!("/messaging_profiles/{cid}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(telnyx_profile(cid, "Help")))
        .expect(1)
        .mount(&server)
        .await;
    let w = worker(&env, telnyx(&server, 2000));
    let (u, p) = new_profile(&env, "Support").await;

    let cmd = CommandEnvelope::sync_profile(u.clone(), p.id, p.version);
    assert_eq!(w.handle(&record(&cmd, 1)).await, Handled::Done(SyncOutcome::Created));
    // The same message again (SQS delivers at least once): no second create.
    assert_eq!(w.handle(&record(&cmd, 2)).await, Handled::Done(SyncOutcome::UpToDate));
    let got = env.store.get_profile(&u, p.id).await.unwrap();
    assert_eq!((got.sync_state, got.carrier_profile_id.as_ref().map(|c| c.as_str())), (SyncState::Synced, Some(cid)));

    let patch = ProfilePatch::new(Some(ProfileName::parse("Help").unwrap()), None).unwrap();
    let renamed = env.store.update_profile(&u, p.id, &patch, OffsetDateTime::now_utc()).await.unwrap();
    let cmd = CommandEnvelope::sync_profile(u.clone(), p.id, renamed.version);
    assert_eq!(w.handle(&record(&cmd, 1)).await, Handled::Done(SyncOutcome::Updated));

    let deleting = env.store.mark_deleting(&u, p.id, OffsetDateTime::now_utc()).await.unwrap();
    let cmd = CommandEnvelope::sync_profile(u.clone(), p.id, deleting.version);
    assert_eq!(w.handle(&record(&cmd, 1)).await, Handled::Done(SyncOutcome::Deleted));
    assert!(env.table_profiles(u.as_str()).await.is_empty());
    assert_eq!(w.handle(&record(&cmd, 2)).await, Handled::Done(SyncOutcome::Gone));
}

#[tokio::test]
async fn a_create_whose_answer_was_lost_is_found_and_adopted_not_made_twice() {
    // crash-audit F11: Telnyx made the profile, its answer never came back. The redelivery finds it
    // by the mark its webhook URL carries (our id), brings it up to date, and records it.
    let env = TestEnv::new(PARTS).await;
    let server = MockServer::start().await;
    let cid = "4a9e2f3c-1b7d-4c55-9e21-0f3b2c1d4e5f";
    let (u, p) = new_profile(&env, "Support").await;
    let hook = format!("https://hooks.example.com/webhooks/telnyx?patchbay_profile={}", p.id);
    let listed = |webhook_url: &str| {
        json!({"data": [
            // Another profile of the same name (the user's own, or another record's): not ours.
            {"id": "0b0b0b0b-1111-4222-8333-444444444444", "record_type": "messaging_profile", "name": "Support",
             "webhook_url": format!("https://hooks.example.com/webhooks/telnyx?patchbay_profile={}", patchbay_domain::ProfileId::new_v7())},
            {"id": cid, "record_type": "messaging_profile", "name": "Support", "webhook_url": webhook_url},
        ], "meta": {"page_number": 1, "page_size": 250, "total_pages": 1, "total_results": 2}})
    };
    // Before the first create, no profile of ours yet; after it, the one Telnyx made.
    Mock::given(method("GET"))
        .and(path("/messaging_profiles"))
        .and(query_param("filter[name][eq]", "Support"))
        .respond_with(ResponseTemplate::new(200).set_body_json(listed("https://elsewhere.example.com/hook")))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/messaging_profiles"))
        .and(query_param("filter[name][eq]", "Support"))
        .respond_with(ResponseTemplate::new(200).set_body_json(listed(&hook)))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/messaging_profiles"))
        .and(body_json(json!({"name": "Support", "whitelisted_destinations": ["US"], "webhook_url": hook})))
        .respond_with(ResponseTemplate::new(504))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path(format!("/messaging_profiles/{cid}")))
        .and(body_json(json!({"name": "Support", "whitelisted_destinations": ["US"], "webhook_url": hook})))
        .respond_with(ResponseTemplate::new(200).set_body_json(telnyx_profile(cid, "Support")))
        .expect(1)
        .mount(&server)
        .await;
    let client = TelnyxClient::new(&server.uri(), SecretString::from("KEY_test"), Duration::from_secs(2))
        .unwrap()
        .with_public_url(Some("https://hooks.example.com/".into()));
    let w = worker(&env, Arc::new(client));

    let cmd = CommandEnvelope::sync_profile(u.clone(), p.id, p.version);
    assert!(matches!(w.handle(&record(&cmd, 1)).await, Handled::Retry(r) if r.contains("504")));
    assert_eq!(w.handle(&record(&cmd, 2)).await, Handled::Done(SyncOutcome::Updated));
    let got = env.store.get_profile(&u, p.id).await.unwrap();
    assert_eq!((got.sync_state, got.carrier_profile_id.as_ref().map(|c| c.as_str())), (SyncState::Synced, Some(cid)));
}

#[tokio::test]
async fn a_5xx_is_retried_and_then_succeeds_once() {
    let env = TestEnv::new(PARTS).await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/messaging_profiles"))
        .respond_with(ResponseTemplate::new(503).set_body_json(json!({"errors": [{"code": "10007", "title": "Unexpected error"}]})))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/messaging_profiles"))
        .respond_with(ResponseTemplate::new(200).set_body_json(telnyx_profile("11111111-2222-4333-8444-555555555555", "R")))
        .expect(1)
        .mount(&server)
        .await;
    let w = worker(&env, telnyx(&server, 2000));
    let (u, p) = new_profile(&env, "R").await;
    let cmd = CommandEnvelope::sync_profile(u.clone(), p.id, p.version);
    assert!(matches!(w.handle(&record(&cmd, 1)).await, Handled::Retry(r) if r.contains("503")));
    assert_eq!(env.store.get_profile(&u, p.id).await.unwrap().sync_state, SyncState::Pending);
    assert_eq!(w.handle(&record(&cmd, 2)).await, Handled::Done(SyncOutcome::Created));
}

#[tokio::test]
async fn a_permanent_4xx_is_recorded_and_not_retried() {
    let env = TestEnv::new(PARTS).await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/messaging_profiles"))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({"errors": [{"code": "10015", "title": "Invalid parameter", "detail": "whitelisted_destinations is invalid", "source": {"pointer": "/whitelisted_destinations"}}]})))
        .expect(1)
        .mount(&server)
        .await;
    let w = worker(&env, telnyx(&server, 2000));
    let (u, p) = new_profile(&env, "Bad").await;
    let cmd = CommandEnvelope::sync_profile(u.clone(), p.id, p.version);
    let Handled::Done(SyncOutcome::Failed(e)) = w.handle(&record(&cmd, 1)).await else { panic!("expected a recorded failure") };
    assert_eq!(e.code, "10015");
    let got = env.store.get_profile(&u, p.id).await.unwrap();
    assert_eq!(got.sync_state, SyncState::Failed);
    assert_eq!(got.sync_error.unwrap().message, "Invalid parameter: whitelisted_destinations is invalid");
    // A redelivery does not call the carrier again (wiremock checks `expect(1)` on drop).
    assert_eq!(w.handle(&record(&cmd, 2)).await, Handled::Done(SyncOutcome::UpToDate));
}

#[tokio::test]
async fn timeouts_are_retried_a_bounded_number_of_times_then_recorded() {
    let env = TestEnv::new(PARTS).await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/messaging_profiles"))
        .respond_with(ResponseTemplate::new(200).set_body_json(telnyx_profile("x", "Slow")).set_delay(Duration::from_millis(800)))
        .mount(&server)
        .await;
    let w = worker(&env, telnyx(&server, 100));
    let (u, p) = new_profile(&env, "Slow").await;
    let cmd = CommandEnvelope::sync_profile(u.clone(), p.id, p.version);
    assert!(matches!(w.handle(&record(&cmd, 1)).await, Handled::Retry(r) if r.contains("in time")));
    assert!(matches!(w.handle(&record(&cmd, 2)).await, Handled::Retry(_)));
    assert_eq!(env.store.get_profile(&u, p.id).await.unwrap().sync_state, SyncState::Pending);
    // The queue's last delivery (max_receive_count = 3): recorded as failed, not left pending, and
    // still failed back to the queue so that it moves to the dead-letter queue.
    assert!(matches!(w.handle(&record(&cmd, 3)).await, Handled::Retry(_)));
    let got = env.store.get_profile(&u, p.id).await.unwrap();
    assert_eq!((got.sync_state, got.sync_error.map(|e| e.code)), (SyncState::Failed, Some("retries_exhausted".to_owned())));
}

#[tokio::test]
async fn a_failure_stops_only_its_own_message_group() {
    let env = TestEnv::new(PARTS).await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/messaging_profiles"))
        .and(body_json(json!({"name": "fails", "whitelisted_destinations": ["US"]})))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/messaging_profiles"))
        .respond_with(ResponseTemplate::new(200).set_body_json(telnyx_profile("22222222-2222-4333-8444-555555555555", "ok")))
        .expect(2)
        .mount(&server)
        .await;
    let w = worker(&env, telnyx(&server, 2000));
    let mut records = Vec::new();
    let mut profiles = Vec::new();
    for name in ["ok", "fails", "ok"] {
        let (u, p) = new_profile(&env, name).await;
        records.push(record(&CommandEnvelope::sync_profile(u.clone(), p.id, p.version), 1));
        profiles.push((u, p));
    }
    // A second command of the failing profile's group, after the healthy third one.
    let (u, p) = &profiles[1];
    records.push(record(&CommandEnvelope::sync_profile(u.clone(), p.id, p.version + 1), 1));
    let ids: Vec<String> = records.iter().map(|r| r.message_id.clone().unwrap()).collect();
    let event: SqsEvent = serde_json::from_value(json!({"Records": records})).unwrap();
    let res = w.handle_batch(event).await;
    let failed: Vec<&str> = res.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    assert_eq!(failed, vec![ids[1].as_str(), ids[3].as_str()], "the failure and its group's later message go back, in order");
    // The other groups went on: both healthy profiles are at the carrier.
    for (u, p) in [&profiles[0], &profiles[2]] {
        assert_eq!(env.store.get_profile(u, p.id).await.unwrap().sync_state, SyncState::Synced);
    }
}

#[tokio::test]
async fn a_batch_near_its_deadline_gives_the_rest_back_unattempted() {
    let env = TestEnv::new(PARTS).await;
    let server = MockServer::start().await;
    Mock::given(method("POST")).and(path("/messaging_profiles")).respond_with(ResponseTemplate::new(500)).expect(0).mount(&server).await;
    let w = worker(&env, telnyx(&server, 2000));
    let (u, p) = new_profile(&env, "Late").await;
    let rec = record(&CommandEnvelope::sync_profile(u.clone(), p.id, p.version), 1);
    let id = rec.message_id.clone().unwrap();
    let event: SqsEvent = serde_json::from_value(json!({"Records": [rec]})).unwrap();
    // Less than one command's time left in the invocation: nothing is started.
    let deadline = std::time::Instant::now() + patchbay_worker::COMMAND_TIME / 2;
    let res = w.handle_batch_until(event, Some(deadline)).await;
    let failed: Vec<&str> = res.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    assert_eq!(failed, vec![id.as_str()]);
    assert_eq!(env.store.get_profile(&u, p.id).await.unwrap().sync_state, SyncState::Pending);
}

#[tokio::test]
async fn a_message_that_keeps_failing_lands_in_the_dead_letter_queue() {
    let env = TestEnv::new(PARTS).await;
    let server = MockServer::start().await;
    Mock::given(method("POST")).and(path("/messaging_profiles")).respond_with(ResponseTemplate::new(500)).mount(&server).await;
    // The template's redrive policy: maxReceiveCount 5. The worker agrees on the last attempt.
    let w = Worker { carrier: telnyx(&server, 2000), carriers: Default::default(), max_receive_count: 5, ..Worker::new(&env.wiring) };
    let (u, p) = new_profile(&env, "Doomed").await;
    // The command goes in exactly as the API enqueues it.
    env.queue.enqueue(&CommandEnvelope::sync_profile(u.clone(), p.id, p.version)).await.unwrap();
    let poller = Poller {
        sqs: env.sqs.clone(),
        queue_url: env.shared.info.work_queue_url.clone(),
        visibility_timeout: Some(1),
        idle: Duration::ZERO,
    };

    let mut dead = Vec::new();
    for _ in 0..40 {
        poller.poll_once(&w).await.unwrap();
        let out = env.sqs.receive_message().queue_url(&env.shared.info.dlq_url).wait_time_seconds(0).send().await.unwrap();
        dead.extend(out.messages.unwrap_or_default());
        if !dead.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(dead.len(), 1, "the message is in the DLQ");
    let body: CommandEnvelope = serde_json::from_str(dead[0].body().unwrap()).unwrap();
    assert_eq!(body.id, format!("sync-profile-{}-v1", p.id));
    // On its last delivery the worker recorded why, so the profile does not stay pending for ever.
    let got = env.store.get_profile(&u, p.id).await.unwrap();
    assert_eq!((got.sync_state, got.sync_error.map(|e| e.code)), (SyncState::Failed, Some("retries_exhausted".to_owned())));
    assert!(server.received_requests().await.unwrap().len() <= 5, "at most one carrier call per delivery");
}
