//! A storm of Telnyx webhooks on the local stack: 450 outbound messages' receipts (`sent`, then a
//! final status) and 650 inbound messages, 30% duplicated, shuffled, 32 at a time; every status and
//! count ends exact. Its own binary without the worker: the test itself plays the worker for the
//! outbound messages (claims them and records their carrier ids), which a running worker, taking the
//! same sends from the outbox, would race.

use futures::stream::{self, StreamExt};
use patchbay_domain::messaging::OutboundSms;
use patchbay_domain::messaging::{Outbox, SendLedger};
use patchbay_domain::numbers::NumberReader;
use patchbay_domain::{CommandEnvelope, UserId, E164};
use patchbay_e2e::telnyx::{signed, signer};
use patchbay_e2e::{as_client, record, s, user, Parts, TestEnv};
use patchbay_worker::{Handled, Worker};
use reqwest::Method;
use serde_json::{json, Value};
use time::OffsetDateTime;

const PARTS: Parts = Parts { api: true, worker: false };

struct Sender {
    uid: String,
    token: String,
    number: String,
}

/// A user with an active number on their active profile: bought through the API (the purchase run
/// by hand through the worker, as nothing polls the queue here), a profile made active, the number
/// put on it.
async fn sender(env: &TestEnv, number: &str) -> Sender {
    let (uid, token) = user();
    let user_id = UserId::parse(&uid).unwrap();
    let e164 = E164::parse(number).unwrap();
    assert_eq!(env.call(&token, Method::POST, "/v1/phone-numbers", Some(json!({"phone_number": number}))).await.0, 202);
    let worker = Worker::new(&env.wiring);
    for receive in 1..10 {
        let n = as_client(|| env.store.get_number(&user_id, &e164)).await;
        if n.status == patchbay_domain::numbers::NumberStatus::Active {
            break;
        }
        let cmd = CommandEnvelope::sync_number(user_id.clone(), e164.clone(), n.version);
        assert!(matches!(worker.handle(&record(&cmd, receive)).await, Handled::Done(_) | Handled::Retry(_)));
    }
    let (_, p) = env.call(&token, Method::POST, "/v1/messaging-profiles", Some(json!({"name": "Main"}))).await;
    let profile = p["id"].as_str().unwrap().to_owned();
    assert_eq!(env.call(&token, Method::POST, &format!("/v1/messaging-profiles/{profile}/activate"), None).await.0, 200);
    assert_eq!(env.call(&token, Method::PUT, &format!("/v1/messaging-profiles/{profile}/phone-numbers/{number}"), None).await.0, 202);
    Sender { uid, token, number: number.to_owned() }
}

fn event(kind: &str, event_id: &str, payload: Value) -> String {
    json!({"data": {"event_type": kind, "id": event_id, "occurred_at": "2026-11-22T03:00:00Z", "record_type": "event", "payload": payload}, "meta": {"attempt": 1}}).to_string()
}

/// 450 outbound messages get `sent` and a final receipt (2 in 3 delivered, 1 in 3 failed) while
/// 650 inbound messages arrive; 30% of all webhooks come twice, everything shuffled and concurrent.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn receipts_and_inbound_out_of_order_and_duplicated() {
    let env = TestEnv::new(PARTS).await;
    let a = sender(&env, "+13125550105").await;
    let user = UserId::parse(&a.uid).unwrap();
    let contacts: Vec<String> = (0..10).map(|i| format!("+1646555{:04}", 3000 + i)).collect();
    let mut outbound = Vec::new();
    let sender = env.store.get_number(&user, &E164::parse(&a.number).unwrap()).await.unwrap();
    for i in 0..450 {
        let sms = OutboundSms::new(E164::parse(&a.number).unwrap(), E164::parse(&contacts[i % 10]).unwrap(), format!("out {i}")).unwrap();
        let m = sms.into_message(&user, patchbay_domain::CarrierName::Telnyx, OffsetDateTime::now_utc());
        // Set-up, done as a client would: a call that ran out of the store's tries is made again.
        let (id, carrier_id) = (m.id.to_string(), format!("tx-{}", m.id));
        as_client(|| env.store.queue_outbound(&sms, &sender, &m, None)).await;
        let lease = std::time::Duration::from_secs(60);
        let claim = as_client(|| env.store.claim_send(&m.user_id, &m.conversation_id, &id, OffsetDateTime::now_utc(), lease)).await;
        assert!(matches!(claim, patchbay_domain::messaging::Claim::Fresh(_)), "{claim:?}");
        as_client(|| env.store.record_sent(&m, &carrier_id, time::OffsetDateTime::now_utc())).await;
        outbound.push(m);
    }
    let mut hooks = Vec::new();
    let mut want_final = std::collections::HashMap::new();
    for (i, m) in outbound.iter().enumerate() {
        let id = format!("tx-{}", m.id);
        let final_status = if i % 3 == 2 { "delivery_failed" } else { "delivered" };
        want_final.insert(m.id.to_string(), if i % 3 == 2 { "failed" } else { "delivered" });
        for (kind, status) in [("message.sent", "sent"), ("message.finalized", final_status)] {
            let mut payload = json!({"id": id, "direction": "outbound", "to": [{"phone_number": m.to.as_str(), "status": status}]});
            if status == "delivery_failed" {
                payload["errors"] = json!([{"code": "40300", "title": "Blocked as spam by carrier"}]);
            }
            hooks.push(event(kind, &format!("r-{i}-{kind}"), payload));
        }
    }
    let mut inbound_want: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    for i in 0..650 {
        let from = &contacts[(i * 7) % 10];
        *inbound_want.entry(from.clone()).or_default() += 1;
        hooks.push(event("message.received", &format!("in-{i}"), json!({"id": format!("m-in-{i}"), "direction": "inbound", "from": {"phone_number": from}, "to": [{"phone_number": a.number}], "text": format!("in {i}")})));
    }
    let distinct = hooks.len();
    let dups: Vec<String> = hooks.iter().enumerate().filter(|(i, _)| i % 10 < 3).map(|(_, h)| h.clone()).collect();
    hooks.extend(dups);
    patchbay_e2e::shuffle(&mut hooks, 0xfeed);
    let total = hooks.len();
    assert!(total >= 2000, "{total}");
    let key = signer();
    let statuses: Vec<u16> = stream::iter(hooks)
        .map(|body| {
            let (env, key) = (&env, &key);
            async move {
                let (sig, ts) = signed(key, OffsetDateTime::now_utc().unix_timestamp(), &body);
                env.post_telnyx(&body, Some(&sig), Some(&ts)).await
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 200), "every webhook answered 200: {:?}", statuses.iter().filter(|s| **s != 200).count());

    let items = env.user_items(&a.uid).await;
    for m in &outbound {
        let item = items.iter().find(|i| s(i, "id") == m.id.to_string()).expect("message");
        assert_eq!(s(item, "status"), want_final[&m.id.to_string()], "message {}", m.id);
    }
    let (_, convs) = env.call(&a.token, Method::GET, "/v1/conversations?limit=100", None).await;
    for c in convs["data"].as_array().unwrap() {
        let contact = c["contact"].as_str().unwrap();
        assert_eq!(c["unread"].as_u64(), Some(inbound_want.get(contact).copied().unwrap_or(0)), "unread with {contact}");
    }
    let inbound_stored = items.iter().filter(|i| s(i, "sk").starts_with("MSG#") && s(i, "direction") == "inbound").count();
    assert_eq!(inbound_stored, 650);
    eprintln!("storm: {total} webhooks ({distinct} distinct: 900 receipts, 650 inbound), all 200, every status and count exact");
}
