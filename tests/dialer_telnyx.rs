//! The dialer against a Telnyx fake (wiremock) serving the spec's shapes, through the real store and
//! Secrets Manager on the emulator: the credential connection created with the stored password and
//! our webhook URL, a rotation pushed, a lost create adopted, telephony credential and token, the
//! number's voice routed; 5xx retried, 4xx recorded (scrubbed of the password), timeouts bounded.

use std::sync::Arc;
use std::time::Duration;

use patchbay_adapters::carrier::TelnyxClient;
use patchbay_domain::dialer::{ConnectionName, ConnectionReader, Dialer, DialerCarrier, Dialers};
use patchbay_domain::kernel::sync::SyncOutcome;
use patchbay_domain::numbers::{NumberCarrier, NumberReader, NumberSyncLedger, NumberWriter, PhoneNumber};
use patchbay_domain::{CarrierName, CommandEnvelope, SyncState, UserId, E164};
use patchbay_e2e::{record, user, Parts, TestEnv};
use patchbay_worker::{Handled, Worker};
use secrecy::SecretString;
use serde_json::json;
use time::OffsetDateTime;
use wiremock::matchers::{body_json, body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const PARTS: Parts = Parts { api: false, worker: false };
const JWT: &str = "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.eyJleHAiOjE5MDAwMDAwMDB9.c2lnbmF0dXJl";

fn client(server: &MockServer, timeout_ms: u64) -> Arc<TelnyxClient> {
    Arc::new(TelnyxClient::new(&server.uri(), SecretString::from("KEY_test"), Duration::from_millis(timeout_ms)).unwrap())
}

fn dialers(c: &Arc<TelnyxClient>) -> Dialers {
    Dialers { telnyx: Some(c.clone() as Arc<dyn DialerCarrier>), default: Some(CarrierName::Telnyx), ..Default::default() }
}

fn worker(env: &TestEnv, c: &Arc<TelnyxClient>) -> Worker {
    let mut carriers = patchbay_domain::numbers::Carriers { default: Some(CarrierName::Telnyx), ..Default::default() };
    carriers.telnyx = Some(c.clone() as Arc<dyn NumberCarrier>);
    Worker {
        dialers: dialers(c),
        carriers,
        public_url: Some("https://hooks.example.com".into()),
        max_receive_count: 3,
        ..Worker::new(&env.wiring)
    }
}

/// What every test here starts from: the stack, a Telnyx fake with its client as the number and
/// dialer carrier (a `timeout_ms` per call), a worker on it, and a fresh user.
struct Rig {
    env: TestEnv,
    server: MockServer,
    dialers: Dialers,
    worker: Worker,
    user: UserId,
}

impl Rig {
    async fn start(timeout_ms: u64) -> Self {
        let env = TestEnv::new(PARTS).await;
        let server = MockServer::start().await;
        let c = client(&server, timeout_ms);
        let worker = worker(&env, &c);
        Self { dialers: dialers(&c), worker, server, env, user: UserId::parse(&user().0).unwrap() }
    }

    fn ops(&self) -> Dialer<'_> {
        let env = &self.env;
        Dialer { store: env.wiring.store.as_ref(), secrets: env.wiring.sip_secrets().as_ref(), dialers: &self.dialers }
    }

    /// An active Telnyx number of the user's, with the carrier's id `carrier_id`.
    async fn active_number(&self, e164: &E164, carrier_id: &str) {
        let n = PhoneNumber::new_purchase(self.user.clone(), e164.clone(), CarrierName::Telnyx, OffsetDateTime::now_utc());
        self.env.store.create_purchase(&n, None).await.unwrap();
        self.env.store.record_active(&self.user, e164, 1, carrier_id, OffsetDateTime::now_utc()).await.unwrap();
    }
}

fn connection(id: &str, name: &str, user_name: &str) -> serde_json::Value {
    json!({"data": {"id": id, "record_type": "credential_connection", "connection_name": name, "user_name": user_name, "active": true, "password": "never-read"}})
}

async fn list_mock(server: &MockServer, body: serde_json::Value) {
    Mock::given(method("GET"))
        .and(path("/credential_connections"))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(server)
        .await;
}

#[tokio::test]
async fn a_connection_is_created_rotated_and_issues_tokens_at_telnyx() {
    let rig = Rig::start(2000).await;
    let (env, server, ops, u) = (&rig.env, &rig.server, rig.ops(), rig.user.clone());
    let now = OffsetDateTime::now_utc();
    let (created, shown) = ops.create(&u, ConnectionName::parse("Front desk").unwrap(), None, None, now).await.unwrap();
    let conn = created.into_inner();
    let password = shown.expect("shown once");
    assert_eq!(conn.carrier, CarrierName::Telnyx);

    list_mock(server, json!({"data": []})).await;
    Mock::given(method("POST"))
        .and(path("/credential_connections"))
        .and(body_json(json!({
            "connection_name": "Front desk", "user_name": conn.sip_username, "password": password.expose(), "active": true,
            "webhook_event_url": "https://hooks.example.com/webhooks/telnyx"
        })))
        .respond_with(ResponseTemplate::new(201).set_body_json(connection("1234567890", "Front desk", &conn.sip_username)))
        .expect(1)
        .mount(server)
        .await;
    let w = &rig.worker;
    let cmd = CommandEnvelope::sync_connection(u.clone(), conn.id, conn.version);
    assert_eq!(w.handle(&record(&cmd, 1)).await, Handled::Done(SyncOutcome::Created));
    // Redelivered: nothing more at the carrier.
    assert_eq!(w.handle(&record(&cmd, 2)).await, Handled::Done(SyncOutcome::UpToDate));
    let synced = env.store.get_connection(&u, conn.id).await.unwrap();
    assert_eq!((synced.sync_state, synced.carrier_connection_id.as_deref()), (SyncState::Synced, Some("1234567890")));

    // Rotation: the new password goes to Telnyx with a PATCH.
    let (rotated, new_password) = ops.rotate_password(&u, conn.id, OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(
        env.wiring
            .sip_secrets()
            .get_password(conn.id, env.wiring.store.get_connection(&u, conn.id).await.unwrap().password_version.as_ref())
            .await
            .unwrap()
            .as_ref(),
        Some(&new_password)
    );
    Mock::given(method("PATCH"))
        .and(path("/credential_connections/1234567890"))
        .and(body_partial_json(json!({"password": new_password.expose(), "user_name": conn.sip_username})))
        .respond_with(ResponseTemplate::new(200).set_body_json(connection("1234567890", "Front desk", &conn.sip_username)))
        .expect(1)
        .mount(server)
        .await;
    let cmd = CommandEnvelope::sync_connection(u.clone(), conn.id, rotated.version);
    assert_eq!(w.handle(&record(&cmd, 1)).await, Handled::Done(SyncOutcome::Updated));

    // Tokens: one telephony credential, created on first use and remembered; a JWT each time.
    Mock::given(method("POST"))
        .and(path("/telephony_credentials"))
        .and(body_partial_json(json!({"connection_id": "1234567890"})))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"data": {"id": "cred-1", "record_type": "credential", "resource_id": "connection:1234567890"}})),
        )
        .expect(1)
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/telephony_credentials/cred-1/token"))
        .respond_with(ResponseTemplate::new(201).insert_header("content-type", "text/plain").set_body_string(JWT))
        .expect(2)
        .mount(server)
        .await;
    for _ in 0..2 {
        let t = ops.token(&u, conn.id, OffsetDateTime::now_utc()).await.unwrap();
        assert_eq!(t.token.token, JWT);
        // The token says 2030; the answer never promises more than 24 h.
        assert!(t.token.expires_at <= OffsetDateTime::now_utc() + time::Duration::hours(24));
    }
    assert_eq!(env.store.get_connection(&u, conn.id).await.unwrap().telephony_credential_id.as_deref(), Some("cred-1"));

    // A Telnyx number on it: its voice is routed with PATCH /phone_numbers/{id}.
    let e164 = E164::parse("+13125550177").unwrap();
    rig.active_number(&e164, "1293384261075731499").await;
    Mock::given(method("PATCH"))
        .and(path("/phone_numbers/1293384261075731499"))
        .and(body_json(json!({"connection_id": "1234567890"})))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": {"id": "1293384261075731499", "connection_id": "1234567890"}})),
        )
        .expect(1)
        .mount(server)
        .await;
    ops.assign(&u, conn.id, &e164, patchbay_domain::numbers::NumberRole::Primary, OffsetDateTime::now_utc()).await.unwrap();
    let n = env.store.get_number(&u, &e164).await.unwrap();
    let cmd = CommandEnvelope::sync_number(u.clone(), e164.clone(), n.version);
    assert_eq!(w.handle(&record(&cmd, 1)).await, Handled::Done(SyncOutcome::Updated));
    assert_eq!(env.store.get_number(&u, &e164).await.unwrap().voice_sync, Some(SyncState::Synced));
}

#[tokio::test]
async fn a_lost_create_is_adopted_5xx_retried_4xx_recorded_timeouts_bounded() {
    let rig = Rig::start(500).await;
    let (env, server, ops, w, u) = (&rig.env, &rig.server, rig.ops(), &rig.worker, rig.user.clone());

    // A create whose answer was lost: the account already has our user name; it is adopted (PATCH).
    let (lost, _) = ops.create(&u, ConnectionName::parse("Lost").unwrap(), None, None, OffsetDateTime::now_utc()).await.unwrap();
    let lost = lost.into_inner();
    Mock::given(method("GET"))
        .and(path("/credential_connections"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [connection("555", "Lost", &lost.sip_username)["data"]]})))
        .mount(server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/credential_connections/555"))
        .respond_with(ResponseTemplate::new(200).set_body_json(connection("555", "Lost", &lost.sip_username)))
        .expect(1)
        .mount(server)
        .await;
    let cmd = CommandEnvelope::sync_connection(u.clone(), lost.id, lost.version);
    assert_eq!(w.handle(&record(&cmd, 1)).await, Handled::Done(SyncOutcome::Updated));
    assert_eq!(env.store.get_connection(&u, lost.id).await.unwrap().carrier_connection_id.as_deref(), Some("555"));

    // 500, then a slow answer past the timeout: retried each time (still pending); then a 422 is
    // recorded as failed with Telnyx's code, the password scrubbed from its message.
    let (refused, password) =
        ops.create(&u, ConnectionName::parse("Refused").unwrap(), None, None, OffsetDateTime::now_utc()).await.unwrap();
    let refused = refused.into_inner();
    let password = password.unwrap();
    Mock::given(method("POST"))
        .and(path("/credential_connections"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"errors": [{"code": "10007", "title": "Unexpected error"}]})))
        .up_to_n_times(1)
        .expect(1)
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/credential_connections"))
        .respond_with(ResponseTemplate::new(201).set_delay(Duration::from_secs(3)).set_body_json(connection("9", "Refused", "x")))
        .up_to_n_times(1)
        .expect(1)
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/credential_connections"))
        .respond_with(ResponseTemplate::new(422).set_body_json(
            json!({"errors": [{"code": "10015", "title": "Invalid password", "detail": format!("{} is too weak", password.expose())}]}),
        ))
        .expect(1)
        .mount(server)
        .await;
    let cmd = CommandEnvelope::sync_connection(u.clone(), refused.id, refused.version);
    for attempt in 1..=2 {
        let handled = tokio::time::timeout(Duration::from_secs(20), w.handle(&record(&cmd, attempt))).await.expect("bounded");
        assert!(matches!(handled, Handled::Retry(_)), "attempt {attempt}: {handled:?}");
        assert_eq!(env.store.get_connection(&u, refused.id).await.unwrap().sync_state, SyncState::Pending);
    }
    let Handled::Done(SyncOutcome::Failed(reason)) = w.handle(&record(&cmd, 3)).await else { panic!("the 422 is recorded") };
    assert_eq!(reason.code, "10015");
    let stored = env.store.get_connection(&u, refused.id).await.unwrap();
    assert_eq!(stored.sync_state, SyncState::Failed);
    let message = &stored.sync_error.as_ref().unwrap().message;
    assert!(!message.contains(password.expose()) && message.contains("[redacted]"), "{message}");
}

#[tokio::test]
async fn releasing_a_number_on_a_sip_connection_frees_its_slot_and_releases_it_at_telnyx() {
    let rig = Rig::start(2000).await;
    let (env, server, ops, w, u) = (&rig.env, &rig.server, rig.ops(), &rig.worker, rig.user.clone());

    // A synced connection with a Telnyx number on it as its primary, its voice routed there.
    let (created, _) = ops.create(&u, ConnectionName::parse("Desk").unwrap(), None, None, OffsetDateTime::now_utc()).await.unwrap();
    let conn = created.into_inner();
    list_mock(server, json!({"data": []})).await;
    Mock::given(method("POST"))
        .and(path("/credential_connections"))
        .respond_with(ResponseTemplate::new(201).set_body_json(connection("777", "Desk", &conn.sip_username)))
        .mount(server)
        .await;
    let cmd = CommandEnvelope::sync_connection(u.clone(), conn.id, conn.version);
    assert_eq!(w.handle(&record(&cmd, 1)).await, Handled::Done(SyncOutcome::Created));
    let e164 = E164::parse("+13125550178").unwrap();
    rig.active_number(&e164, "1293384261075731500").await;
    Mock::given(method("PATCH"))
        .and(path("/phone_numbers/1293384261075731500"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"id": "1293384261075731500", "connection_id": "777"}})))
        .expect(1)
        .mount(server)
        .await;
    ops.assign(&u, conn.id, &e164, patchbay_domain::numbers::NumberRole::Primary, OffsetDateTime::now_utc()).await.unwrap();
    let n = env.store.get_number(&u, &e164).await.unwrap();
    let cmd = CommandEnvelope::sync_number(u.clone(), e164.clone(), n.version);
    assert_eq!(w.handle(&record(&cmd, 1)).await, Handled::Done(SyncOutcome::Updated));
    let before = env.store.get_connection(&u, conn.id).await.unwrap();
    assert_eq!(before.number_count, 1);

    // Released: off the connection in the same write that marks it releasing.
    let numbers = patchbay_domain::numbers::Numbers { store: env.wiring.store.as_ref(), carriers: &w.carriers };
    let patchbay_domain::numbers::Release::Releasing(releasing) = numbers.release(&u, &e164, OffsetDateTime::now_utc()).await.unwrap()
    else {
        panic!("an active number is released at the carrier")
    };
    assert_eq!((releasing.status, releasing.voice.as_ref()), (patchbay_domain::numbers::NumberStatus::Releasing, None));
    let conn_item = |items: Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>| {
        items.into_iter().find(|i| patchbay_e2e::s(i, "sk") == format!("SIPCONN#{}", conn.id)).expect("the connection's item")
    };
    let item = conn_item(env.user_items(u.as_str()).await);
    assert_eq!(patchbay_e2e::s(&item, "number_count"), "0", "the count goes down with the release");
    assert!(!item.contains_key("primary_number"), "the primary slot is free: {item:?}");
    assert!(ops.get(&u, conn.id).await.unwrap().numbers.is_empty(), "the connection lists no number");

    // The worker releases it at Telnyx (one DELETE; no routing call: the carrier drops the route
    // with the number), then the record and its owner guard go.
    Mock::given(method("DELETE"))
        .and(path("/phone_numbers/1293384261075731500"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"id": "1293384261075731500"}})))
        .expect(1)
        .mount(server)
        .await;
    let cmd = CommandEnvelope::sync_number(u.clone(), e164.clone(), releasing.version);
    assert_eq!(w.handle(&record(&cmd, 1)).await, Handled::Done(SyncOutcome::Deleted));
    assert!(env.store.get_number(&u, &e164).await.is_err(), "the record is gone");
    assert_eq!(env.owner_in_table(e164.as_str()).await, None, "the number is free again");
    // The connection itself is untouched at the carrier and in the table, and can now be deleted.
    let after = env.store.get_connection(&u, conn.id).await.unwrap();
    assert_eq!((after.sync_state, after.carrier_connection_id.as_deref(), after.number_count), (SyncState::Synced, Some("777"), 0));
    ops.delete(&u, conn.id, OffsetDateTime::now_utc()).await.expect("no number left on it");
    let requests = server.received_requests().await.unwrap();
    let to_number = requests.iter().filter(|r| r.url.path() == "/phone_numbers/1293384261075731500").count();
    assert_eq!(to_number, 2, "one routing PATCH before, one release DELETE: {requests:?}");
}
