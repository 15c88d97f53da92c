//! Events (issue: tell the product when something happens): every state change of a send, a reply, an
//! opt-out and an opt-in is exactly one event, written with the change; the log (`GET /v1/events`)
//! lists them oldest first after a cursor; the relay publishes each to the stack's event bus, and a
//! rule with an SQS target receives each once (on the emulator, the bus from the template).

use std::collections::{BTreeMap, HashSet};

use patchbay_e2e::{eventually, user, Parts, TestEnv};
use reqwest::Method;
use serde_json::{json, Value};

const PARTS: Parts = Parts { api: true, worker: true };

/// Every event of the caller's log, page by page (`limit` a page), following `next_cursor`.
async fn log(env: &TestEnv, token: &str, query: &str, limit: u32) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut path = format!("/v1/events?limit={limit}{query}");
        if let Some(a) = &after {
            path.push_str(&format!("&after={a}"));
        }
        let (st, page) = env.call(token, Method::GET, &path, None).await;
        assert_eq!(st, 200, "{page}");
        out.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => return out,
        }
    }
}

fn counts(events: &[Value]) -> BTreeMap<String, usize> {
    let mut c = BTreeMap::new();
    for e in events {
        *c.entry(e["type"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    c
}

#[tokio::test]
async fn each_change_is_one_event_in_the_log_and_on_the_bus() {
    let env = TestEnv::new(PARTS).await;
    let (uid, token) = user();
    let number = "+13125550141";
    let contact = "+14155550191";
    // A rule of our own on the bus, as `patchbay-local events tail` adds one (and a team would).
    let sdk = patchbay_local::stack::sdk_config(&env.shared.endpoint).await;
    let tail = patchbay_local::ops::EventsTail::subscribe(&sdk, &env.shared.info.event_bus_name, "event-log-test").await.unwrap();

    // A number bought, a profile made active with it, a text sent and delivered.
    assert_eq!(env.call(&token, Method::POST, "/v1/phone-numbers", Some(json!({"phone_number": number}))).await.0, 202);
    env.until(&token, &format!("/v1/phone-numbers/{number}"), |n| n["status"] == "active").await;
    let (_, p) = env.call(&token, Method::POST, "/v1/messaging-profiles", Some(json!({"name": "Main"}))).await;
    let profile = p["id"].as_str().unwrap().to_owned();
    assert_eq!(env.call(&token, Method::POST, &format!("/v1/messaging-profiles/{profile}/activate"), None).await.0, 200);
    assert_eq!(env.call(&token, Method::PUT, &format!("/v1/messaging-profiles/{profile}/phone-numbers/{number}"), None).await.0, 202);
    let (st, m) = env.call(&token, Method::POST, "/v1/messages", Some(json!({"from": number, "to": contact, "text": "Hello"}))).await;
    assert_eq!(st, 202, "{m}");
    let conv = m["conversation_id"].as_str().unwrap().to_owned();
    env.until(&token, &format!("/v1/conversations/{conv}/messages"), |b| b["data"][0]["status"] == "delivered").await;

    // Replies: one delivered twice (the carrier's retry), two STOPs (one change), a START.
    let tag = &uid[uid.len() - 8..];
    for (id, text) in [("thanks", "Thanks!"), ("thanks", "Thanks!"), ("stop-1", "STOP"), ("stop-2", "stop"), ("start", "START")] {
        assert_eq!(env.send_inbound(&format!("ev-{tag}-{id}"), contact, number, text).await, 200);
    }

    let want: BTreeMap<String, usize> = [
        ("phone_number.active", 1),
        ("message.queued", 1),
        ("message.sent", 1),
        ("message.delivered", 1),
        ("message.received", 4),
        ("contact.opted_out", 1),
        ("contact.opted_in", 1),
    ]
    .into_iter()
    .map(|(t, n)| (t.to_owned(), n))
    .collect();
    let last = std::sync::Mutex::new(BTreeMap::new());
    let all = eventually(30, || async {
        let all = log(&env, &token, "", 100).await;
        *last.lock().unwrap() = counts(&all);
        (counts(&all) == want).then_some(all)
    })
    .await
    .unwrap_or_else(|| panic!("the log never held {want:?}; it holds {:?}", last.lock().unwrap()));

    // Oldest first, one id each, all the caller's, each in the envelope.
    let ids: Vec<&str> = all.iter().map(|e| e["id"].as_str().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "oldest first");
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len(), "one id per event");
    for e in &all {
        assert_eq!(e["user_id"], uid.as_str());
        assert_eq!(e["version"], 1);
        assert!(e["type"].as_str().unwrap().starts_with(e["resource"]["type"].as_str().unwrap()), "{e}");
        assert!(e["timestamp"].is_string() && e["data"].is_object(), "{e}");
    }
    let delivered = all.iter().find(|e| e["type"] == "message.delivered").unwrap();
    assert_eq!((delivered["data"]["from"].as_str(), delivered["data"]["to"].as_str()), (Some(number), Some(contact)));
    assert_eq!(delivered["resource"]["id"], m["id"]);
    let sent = all.iter().find(|e| e["type"] == "message.sent").unwrap();
    assert!(sent["resource"]["version"].as_u64() < delivered["resource"]["version"].as_u64(), "a later status, a higher version");
    let out = all.iter().find(|e| e["type"] == "contact.opted_out").unwrap();
    assert_eq!((out["data"]["contact"].as_str(), out["data"]["phone_number"].as_str()), (Some(contact), Some(number)));

    // Paged two at a time, after a cursor, and by type: the same events.
    assert_eq!(log(&env, &token, "", 2).await, all);
    let after_third = log(&env, &token, &format!("&after={}", ids[2]), 100).await;
    assert_eq!(after_third, all[3..].to_vec());
    let received = log(&env, &token, "&type=message.received", 3).await;
    assert_eq!(received, all.iter().filter(|e| e["type"] == "message.received").cloned().collect::<Vec<_>>());

    // Bad input names its field; another user sees none of it.
    let (st, problem) = env.call(&token, Method::GET, "/v1/events?after=evt_nope", None).await;
    assert_eq!((st, problem["field"].as_str()), (400, Some("after")), "{problem}");
    let (st, problem) = env.call(&token, Method::GET, "/v1/events?type=message.exploded", None).await;
    assert_eq!((st, problem["field"].as_str()), (400, Some("type")), "{problem}");
    let (_, other) = user();
    assert!(log(&env, &other, "", 100).await.is_empty());

    // On the bus: a rule with an SQS target (the tail's, as a team would add one) received each
    // event once, as EventBridge wraps it (Source patchbay, DetailType the type, Detail the envelope).
    // (The stack's own webhook rule feeds the dispatcher, which the harness runs.)
    let tailed: std::sync::Mutex<Vec<Value>> = Default::default();
    eventually(30, || async {
        for wrapped in tail.take().await.unwrap() {
            if wrapped["detail"]["user_id"] == uid.as_str() {
                assert_eq!(
                    (wrapped["source"].as_str(), &wrapped["detail-type"]),
                    (Some("patchbay"), &wrapped["detail"]["type"]),
                    "{wrapped}"
                );
                tailed.lock().unwrap().push(wrapped["detail"].clone());
            }
        }
        (tailed.lock().unwrap().len() >= all.len()).then_some(())
    })
    .await;
    let mut tailed = tailed.into_inner().unwrap();
    tailed.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    assert_eq!(tailed, all, "events tail prints what the bus published, each once");
}
