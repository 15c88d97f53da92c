//! Webhooks end to end on the local stack: endpoints registered on a loopback receiver that checks
//! every delivery with the reference Standard Webhooks verifier (`standardwebhooks` from PyPI, not
//! Patchbay's code: `tests/webhooks/receiver.py`). Purchases (one refused), sends (one
//! undeliverable), inbound texts (one STOP), an assistant with a number, a sandbox call and a release:
//! every delivery verifies and a tampered body does not; each state change is one event id and a
//! redelivery repeats it; the receiver down for 30 s loses nothing; after a rotation both secrets
//! verify during the overlap; the log lists the same ids; another user's endpoint receives none of it;
//! a metadata URL is refused.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use patchbay_e2e::{eventually, user, Parts, TestEnv};
use reqwest::Method;
use serde_json::{json, Value};

const PARTS: Parts = Parts { api: true, worker: true };

/// The reference-verifier receiver (a child process, gone with its stdin).
struct Receiver {
    _child: Child,
    base: String,
    http: reqwest::Client,
}

impl Receiver {
    fn start() -> Self {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut child = Command::new(root.join(".venv/bin/python"))
            .arg(root.join("tests/webhooks/receiver.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the receiver (run local/bootstrap.sh first)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("the receiver's port");
        let port = serde_json::from_str::<Value>(&line).expect("a port line")["port"].as_u64().unwrap();
        Self { _child: child, base: format!("http://127.0.0.1:{port}"), http: reqwest::Client::new() }
    }

    async fn control(&self, path: &str, body: Value) -> Value {
        self.http.post(format!("{}/_control/{path}", self.base)).json(&body).send().await.unwrap().json().await.unwrap()
    }

    async fn received(&self) -> Vec<Value> {
        let v: Value = self.http.get(format!("{}/_control/received", self.base)).send().await.unwrap().json().await.unwrap();
        v["received"].as_array().unwrap().clone()
    }
}

async fn create_endpoint(env: &TestEnv, token: &str, url: &str) -> (u16, Value) {
    env.call(token, Method::POST, "/v1/webhook-endpoints", Some(json!({"url": url, "description": "receiver"}))).await
}

#[tokio::test]
async fn every_change_reaches_the_endpoints_signed_once_per_id_and_survives_a_down_receiver() {
    let env = TestEnv::new(PARTS).await;
    let receiver = Receiver::start();
    let (uid, token) = user();
    let (_other_uid, other) = user();

    // Untrusted URLs are refused, naming `url`.
    for bad in ["https://169.254.169.254/latest/meta-data/", "http://10.0.0.7/hook", "https://[fd00:ec2::254]/", "ftp://x.example/"] {
        let (st, p) = create_endpoint(&env, &token, bad).await;
        assert_eq!((st, p["field"].as_str()), (422, Some("url")), "{bad}: {p}");
    }

    // Two users, an endpoint each on the receiver (a path each).
    let (st, a) = create_endpoint(&env, &token, &format!("{}/a", receiver.base)).await;
    assert_eq!(st, 201, "{a}");
    let secret = a["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let eid = a["id"].as_str().unwrap().to_owned();
    let (st, b) = create_endpoint(&env, &other, &format!("{}/b", receiver.base)).await;
    assert_eq!(st, 201, "{b}");
    receiver.control("secrets", json!({"secrets": [secret, b["secret"]]})).await;
    // Shown once: never again.
    let (_, shown) = env.call(&token, Method::GET, &format!("/v1/webhook-endpoints/{eid}"), None).await;
    assert!(shown.get("secret").is_none(), "{shown}");

    // The receiver is down (503) for 30 s while every change happens: each event's first delivery
    // is refused, so what it takes once it is back is every event, each at least once more.
    receiver.control("status", json!({"status": 503})).await;
    let down_until = std::time::Instant::now() + Duration::from_secs(30);

    // The test delivery reaches this endpoint only.
    assert_eq!(env.call(&token, Method::POST, &format!("/v1/webhook-endpoints/{eid}/test"), None).await.0, 202);

    // Purchases, one refused (the sandbox sells only NPA 555 0100-0149).
    let number = "+14155550121";
    assert_eq!(env.call(&token, Method::POST, "/v1/phone-numbers", Some(json!({"phone_number": number}))).await.0, 202);
    assert_eq!(env.call(&token, Method::POST, "/v1/phone-numbers", Some(json!({"phone_number": "+14155550188"}))).await.0, 202);
    env.until(&token, &format!("/v1/phone-numbers/{number}"), |n| n["status"] == "active").await;
    let (_, p) = env.call(&token, Method::POST, "/v1/messaging-profiles", Some(json!({"name": "Hooks"}))).await;
    let profile = p["id"].as_str().unwrap().to_owned();
    assert_eq!(env.call(&token, Method::POST, &format!("/v1/messaging-profiles/{profile}/activate"), None).await.0, 200);
    assert_eq!(env.call(&token, Method::PUT, &format!("/v1/messaging-profiles/{profile}/phone-numbers/{number}"), None).await.0, 202);
    env.until(&token, &format!("/v1/phone-numbers/{number}"), |n| n["profile_sync"] == "synced").await;
    // Sends, one undeliverable (the sandbox fails numbers ending 0199).
    for to in ["+14155550177", "+14155550199"] {
        let (st, m) =
            env.call(&token, Method::POST, "/v1/messages", Some(json!({"from": number, "to": to, "text": "Your order shipped"}))).await;
        assert_eq!(st, 202, "{m}");
    }
    // Inbound texts, one a STOP.
    let tag = &uid[uid.len() - 8..];
    for (id, text) in [("hi", "Hello"), ("stop", "STOP")] {
        assert_eq!(env.send_inbound(&format!("wh-{tag}-{id}"), "+14155550166", number, text).await, 200);
    }
    // An assistant with a number bought for it, and a sandbox call to it.
    let assistant_number = "+14155550122";
    let (st, asst) =
        env.call(&token, Method::POST, "/v1/assistants", Some(json!({"name": "Desk", "selected_phone_number": assistant_number}))).await;
    assert_eq!(st, 202, "{asst}");
    env.until(&token, &format!("/v1/assistants/{}", asst["id"].as_str().unwrap()), |a| a["status"] == "active").await;
    let call = env
        .http
        .post(env.api("/local/sandbox/calls"))
        .json(&json!({"to": assistant_number, "from": "+14155550155", "duration_seconds": 42}))
        .send()
        .await
        .unwrap();
    assert!(call.status().is_success(), "{}", call.text().await.unwrap());
    // A release.
    let (_, p) = env.call(&token, Method::DELETE, &format!("/v1/messaging-profiles/{profile}/phone-numbers/{number}"), None).await;
    let _ = p;
    env.until(&token, &format!("/v1/phone-numbers/{number}"), |n| n["messaging_profile_id"].is_null()).await;
    assert_eq!(env.call(&token, Method::DELETE, &format!("/v1/phone-numbers/{number}"), None).await.0, 202);

    // What the log says happened.
    let want: BTreeMap<&str, usize> = [
        ("webhook_endpoint.test", 1),
        ("phone_number.active", 2),
        ("phone_number.purchase_failed", 1),
        ("message.queued", 2),
        ("message.sent", 2),
        ("message.delivered", 1),
        ("message.failed", 1),
        ("message.received", 2),
        ("contact.opted_out", 1),
        ("assistant.active", 1),
        ("call.ended", 1),
        ("phone_number.released", 1),
    ]
    .into_iter()
    .collect();
    let last = std::sync::Mutex::new(BTreeMap::new());
    let log: Vec<Value> = eventually(60, || async {
        let (_, page) = env.call(&token, Method::GET, "/v1/events?limit=100", None).await;
        let events = page["data"].as_array().cloned().unwrap_or_default();
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for e in &events {
            *counts.entry(e["type"].as_str().unwrap().to_owned()).or_default() += 1;
        }
        let got: BTreeMap<&str, usize> = counts.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        let done = got == want;
        *last.lock().unwrap() = counts;
        done.then_some(events)
    })
    .await
    .unwrap_or_else(|| panic!("the log never held {want:?}: {:?}", last.lock().unwrap()));
    let ids: BTreeSet<String> = log.iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect();

    // The receiver was down: deliveries were refused and retried, none lost.
    while std::time::Instant::now() < down_until {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(receiver.received().await.iter().any(|r| r["path"] == "/a"), "attempts were made while it was down");
    // What the receiver took (answered 200) came after it was back up (the time taken before the
    // switch, so that no delivery answered 200 is older than it).
    let up_at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    receiver.control("status", json!({"status": 200})).await;
    let delivered = eventually(90, || async {
        let ok: BTreeSet<String> = receiver
            .received()
            .await
            .iter()
            .filter(|r| r["path"] == "/a" && r["verified"] == true && r["at"].as_f64().unwrap() > up_at)
            .map(|r| r["webhook_id"].as_str().unwrap().to_owned())
            .collect();
        (ok == ids).then_some(ok)
    })
    .await;
    let got: BTreeSet<String> = receiver
        .received()
        .await
        .iter()
        .filter(|r| r["path"] == "/a" && r["at"].as_f64().unwrap() > up_at)
        .map(|r| r["webhook_id"].as_str().unwrap().to_owned())
        .collect();
    assert!(delivered.is_some(), "missing after the receiver came back: {:?}", ids.difference(&got).collect::<Vec<_>>());

    let all = receiver.received().await;
    let a_hits: Vec<&Value> = all.iter().filter(|r| r["path"] == "/a").collect();
    // Every request verified with the reference verifier; each body is the event of its id.
    for r in &a_hits {
        assert_eq!(r["verified"], true, "{r}");
        let body: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["id"], r["webhook_id"], "webhook-id is the event id");
        assert_eq!(body["user_id"], uid.as_str());
        assert!(log.contains(&body), "the body is the log's envelope: {body}");
    }
    // Redeliveries repeat the id: ids refused while the receiver was down came again, same id.
    let mut per_id: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &a_hits {
        *per_id.entry(r["webhook_id"].as_str().unwrap()).or_default() += 1;
    }
    assert!(per_id.values().any(|n| *n > 1), "some event was delivered more than once (a retry): {per_id:?}");
    // A tampered body fails the reference verifier.
    let sample = a_hits.last().unwrap();
    let tampered = sample["body"].as_str().unwrap().replace(&uid, "mallory");
    let headers = json!({"webhook-id": sample["webhook_id"], "webhook-timestamp": sample["webhook_timestamp"], "webhook-signature": sample["webhook_signature"]});
    let verdict = receiver.control("verify", json!({"headers": headers, "body": tampered})).await;
    assert_eq!(verdict["verified"], false, "{verdict}");
    // The other user's endpoint received none of this user's events (only its own test, none here).
    assert!(
        all.iter().filter(|r| r["path"] == "/b").all(|r| !r["body"].as_str().unwrap().contains(&uid)),
        "another user's endpoint got nothing of ours"
    );

    // Each attempt is listed with its status and time.
    let (st, attempts) = env.call(&token, Method::GET, &format!("/v1/webhook-endpoints/{eid}/deliveries?limit=100"), None).await;
    assert_eq!(st, 200, "{attempts}");
    let attempts = attempts["data"].as_array().unwrap();
    assert!(attempts.iter().any(|a| a["status"] == 503 && a["succeeded"] == false), "a refused attempt is listed");
    assert!(attempts.iter().any(|a| a["status"] == 200 && a["succeeded"] == true));

    // A rotation: during the overlap every delivery carries both signatures, and both verify.
    let (st, rotated) = env.call(&token, Method::POST, &format!("/v1/webhook-endpoints/{eid}/rotate-secret"), None).await;
    assert_eq!(st, 200, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    receiver.control("secrets", json!({"secrets": [secret, new_secret, b["secret"]]})).await;
    receiver.control("reset", json!({})).await;
    let (_, replayed) = env
        .call(&token, Method::POST, &format!("/v1/webhook-endpoints/{eid}/replay"), Some(json!({"since": "2020-01-01T00:00:00Z"})))
        .await;
    assert_eq!(replayed["replayed"].as_u64(), Some(ids.len() as u64), "{replayed}");
    let again = eventually(60, || async {
        let r = receiver.received().await;
        let got: BTreeSet<String> = r.iter().filter(|r| r["path"] == "/a").map(|r| r["webhook_id"].as_str().unwrap().to_owned()).collect();
        (got == ids).then_some(r)
    })
    .await
    .expect("the replay delivered every event again, with the same ids");
    for r in again.iter().filter(|r| r["path"] == "/a") {
        assert_eq!((r["signatures"].as_u64(), r["verified_by"].clone()), (Some(2), json!([0, 1])), "both secrets verify: {r}");
    }
}

#[tokio::test]
async fn an_endpoint_that_answers_gone_or_fails_for_five_days_is_turned_off() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let env = TestEnv::new(PARTS).await;
    let receiver = Receiver::start();
    let (uid, token) = user();
    let show = |id: String| {
        let (env, token) = (&env, token.clone());
        async move { env.call(&token, Method::GET, &format!("/v1/webhook-endpoints/{id}"), None).await.1 }
    };

    // 410 Gone: off at once, and no retry.
    receiver.control("status", json!({"status": 410})).await;
    let (_, gone) = create_endpoint(&env, &token, &format!("{}/gone", receiver.base)).await;
    let gone_id = gone["id"].as_str().unwrap().to_owned();
    assert_eq!(env.call(&token, Method::POST, &format!("/v1/webhook-endpoints/{gone_id}/test"), None).await.0, 202);
    env.until(&token, &format!("/v1/webhook-endpoints/{gone_id}"), |e| e["enabled"] == false).await;
    assert_eq!(show(gone_id.clone()).await["disabled_reason"], "gone");

    // Failing for five days: the next failure turns it off.
    receiver.control("status", json!({"status": 500})).await;
    let (_, failing) = create_endpoint(&env, &token, &format!("{}/failing", receiver.base)).await;
    let failing_id = failing["id"].as_str().unwrap().to_owned();
    let six_days_ago = patchbay_adapters::wire::rfc3339(time::OffsetDateTime::now_utc() - time::Duration::days(6));
    env.dynamo
        .update_item()
        .table_name(&env.shared.info.table)
        .key("pk", AttributeValue::S(format!("USER#{uid}")))
        .key("sk", AttributeValue::S(format!("WHEP#{failing_id}")))
        .update_expression("SET failing_since = :t")
        .expression_attribute_values(":t", AttributeValue::S(six_days_ago))
        .send()
        .await
        .unwrap();
    assert_eq!(env.call(&token, Method::POST, &format!("/v1/webhook-endpoints/{failing_id}/test"), None).await.0, 202);
    env.until(&token, &format!("/v1/webhook-endpoints/{failing_id}"), |e| e["enabled"] == false).await;
    assert_eq!(show(failing_id.clone()).await["disabled_reason"], "failing");

    // Its user turns it back on: a fresh start.
    let (st, on) = env.call(&token, Method::PATCH, &format!("/v1/webhook-endpoints/{failing_id}"), Some(json!({"enabled": true}))).await;
    assert_eq!(
        (st, on["enabled"].clone(), on["disabled_reason"].clone(), on["failing_since"].clone()),
        (200, json!(true), Value::Null, Value::Null),
        "{on}"
    );
    // Bad input names its field; an unknown endpoint is 404.
    let (st, p) =
        env.call(&token, Method::PATCH, &format!("/v1/webhook-endpoints/{failing_id}"), Some(json!({"event_types": ["nope"]}))).await;
    assert_eq!((st, p["field"].as_str()), (422, Some("event_types[0]")), "{p}");
    let (st, p) =
        env.call(&token, Method::POST, &format!("/v1/webhook-endpoints/{failing_id}/replay"), Some(json!({"since": "yesterday"}))).await;
    assert_eq!((st, p["field"].as_str()), (422, Some("since")), "{p}");
    let (st, _) = env.call(&token, Method::GET, "/v1/webhook-endpoints/01a24b85-f0ea-7cfe-9fb5-4adc071e2876", None).await;
    assert_eq!(st, 404);
    let (other_uid, other) = user();
    let _ = other_uid;
    let (st, _) = env.call(&other, Method::GET, &format!("/v1/webhook-endpoints/{failing_id}"), None).await;
    assert_eq!(st, 404, "another user's endpoint is not found");
}
