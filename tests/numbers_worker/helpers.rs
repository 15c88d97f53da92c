//! The number worker tests' helpers: carrier clients and wiremock fakes, the worker, SQS records, pending purchases.

use std::sync::Arc;
use std::time::Duration;

use patchbay_adapters::carrier::{TelnyxClient, TwilioClient};
use patchbay_domain::numbers::{Carriers, NumberCarrier, NumberWriter, PhoneNumber};
use patchbay_domain::{CarrierName, UserId, E164};
use patchbay_e2e::{user, TestEnv};
use patchbay_worker::Worker;
use secrecy::SecretString;
use serde_json::json;
use time::OffsetDateTime;
use wiremock::matchers::{body_json, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The Twilio account of the fakes.
pub(super) const SID: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

pub(super) fn twilio(server: &MockServer, timeout_ms: u64) -> Arc<dyn NumberCarrier> {
    Arc::new(
        TwilioClient::new(
            &server.uri(),
            SID,
            SecretString::from("token"),
            Some("https://hooks.example.com".into()),
            Duration::from_millis(timeout_ms),
        )
        .unwrap(),
    )
}

pub(super) fn telnyx(server: &MockServer) -> Arc<dyn NumberCarrier> {
    Arc::new(TelnyxClient::new(&server.uri(), SecretString::from("KEY_test"), Duration::from_secs(2)).unwrap())
}

pub(super) fn worker(env: &TestEnv, carriers: Carriers, max: u32) -> Worker {
    Worker { carriers, max_receive_count: max, ..Worker::new(&env.wiring) }
}

pub(super) fn with(name: CarrierName, c: Arc<dyn NumberCarrier>) -> Carriers {
    let mut carriers = Carriers { default: Some(name), ..Default::default() };
    match name {
        CarrierName::Twilio => carriers.twilio = Some(c),
        CarrierName::Telnyx => carriers.telnyx = Some(c),
        CarrierName::Sandbox => carriers.sandbox = Some(c),
    }
    carriers
}

pub(super) fn uid() -> UserId {
    UserId::parse(&user().0).unwrap()
}

/// A number unique to this test run (the emulator is shared by the binary's tests).
pub(super) fn number(line: u32) -> E164 {
    E164::parse(&format!("+1415555{line:04}")).unwrap()
}

pub(super) async fn pending_purchase(env: &TestEnv, user: &UserId, e164: &E164, carrier: CarrierName) -> PhoneNumber {
    let n = PhoneNumber::new_purchase(user.clone(), e164.clone(), carrier, OffsetDateTime::now_utc());
    env.store.create_purchase(&n, None).await.unwrap();
    n
}

pub(super) fn twilio_number(sid: &str, e164: &E164) -> serde_json::Value {
    json!({"sid": sid, "account_sid": SID, "phone_number": e164.as_str(), "friendly_name": e164.as_str(), "status": "in-use"})
}

pub(super) fn empty_incoming() -> serde_json::Value {
    json!({"incoming_phone_numbers": [], "page": 0, "page_size": 50, "start": 0, "end": 0, "uri": "/x", "first_page_uri": "/x", "next_page_uri": null, "previous_page_uri": null})
}

/// A Telnyx fake for a number's whole life: not owned before its order and owned after it, the
/// order pending then successful, one assignment to the carrier profile `cid`, one release.
pub(super) async fn telnyx_number_life(server: &MockServer, e164: &E164, number_id: &str, cid: &str) {
    // Not owned before the order; owned after it succeeded.
    Mock::given(method("GET"))
        .and(path("/phone_numbers"))
        .and(query_param("filter[phone_number]", e164.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": []})))
        .up_to_n_times(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/phone_numbers"))
        .and(query_param("filter[phone_number]", e164.as_str()))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": [{"id": number_id, "phone_number": e164.as_str(), "record_type": "phone_number"}]})),
        )
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/number_orders"))
        .and(body_json(json!({"phone_numbers": [{"phone_number": e164.as_str()}], "customer_reference": "patchbay"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"id": "12ade33a-21c0-473b-b055-b3c836e1c292", "status": "pending", "record_type": "number_order", "phone_numbers_count": 1}})))
        .expect(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/number_orders/12ade33a-21c0-473b-b055-b3c836e1c292"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"data": {"id": "12ade33a-21c0-473b-b055-b3c836e1c292", "status": "success", "record_type": "number_order"}}),
        ))
        .expect(1)
        .mount(server)
        .await;
    Mock::given(method("PATCH"))
        .and(path(format!("/phone_numbers/{number_id}/messaging")))
        .and(body_json(json!({"messaging_profile_id": cid})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"id": number_id, "messaging_profile_id": cid}})))
        .expect(1)
        .mount(server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(format!("/phone_numbers/{number_id}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"id": number_id}})))
        .expect(1)
        .mount(server)
        .await;
}

/// An active number of `carrier` on the user's active profile (which the carrier knows as `cid`),
/// ready to send from, and one queued message from it to `to` saying `text`.
pub(super) async fn queued_message(
    env: &TestEnv,
    user: &UserId,
    e164: &E164,
    carrier: CarrierName,
    cid: &str,
    to: &str,
    text: &str,
) -> patchbay_domain::messaging::Message {
    use patchbay_domain::messaging::{OutboundSms, Outbox};
    use patchbay_domain::numbers::{NumberReader, NumberSyncLedger};
    use patchbay_domain::profiles::{MessagingProfile, NewProfile, ProfileName, ProfileSyncLedger, ProfileWriter, WhitelistedDestinations};
    let n = pending_purchase(env, user, e164, carrier).await;
    env.store.record_active(user, e164, n.version, &format!("id-{}", e164.as_str()), OffsetDateTime::now_utc()).await.unwrap();
    let profile = MessagingProfile::new(
        user.clone(),
        NewProfile { name: ProfileName::parse("Sends").unwrap(), whitelisted_destinations: WhitelistedDestinations::all() },
        OffsetDateTime::now_utc(),
    );
    env.store.create_profile(&profile, None).await.unwrap();
    let carrier_profile = patchbay_domain::CarrierProfileId::parse(cid).unwrap();
    env.store.record_synced(user, profile.id, 1, &carrier_profile, OffsetDateTime::now_utc()).await.unwrap();
    env.store.activate_profile(user, profile.id, OffsetDateTime::now_utc()).await.unwrap();
    patchbay_domain::numbers::assign(&env.store, user, e164, profile.id, OffsetDateTime::now_utc()).await.unwrap();
    let sms = OutboundSms::new(e164.clone(), E164::parse(to).unwrap(), text.into()).unwrap();
    let m = sms.into_message(user, carrier, OffsetDateTime::now_utc());
    env.store.queue_outbound(&sms, &env.store.get_number(user, e164).await.unwrap(), &m, None).await.unwrap();
    m
}
