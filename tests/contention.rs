//! Nothing lost, whatever DynamoDB and Lambda do. Real DynamoDB cancels colliding transactions
//! (`TransactionConflict`), throttles, and applies writes whose answers are then lost; Lambdas die
//! between two awaits. The emulator does none of it, so the fault layer injects all four between the
//! functions and the emulator. One scenario, run three times on the local stack (sandbox carrier,
//! the outbox relay and the worker polling, clients and the sandbox's receipts retrying 5xx as real
//! ones do): with 25% collisions and 10% throttling; with 20% collisions, 10% throttling, 10% lost
//! answers and 5% of invocations killed (API requests, webhooks, worker batches, relay batches);
//! and with the layer off. Each run drives purchases (some refused by the sandbox, some keyless),
//! releases, profiles (one keyless) with concurrent activations, assignments, 50 sends with their
//! receipts, 100 inbound webhooks (30 duplicates, shuffled, concurrent), SIP connections with a
//! number and their call events, assistants that buy a picked number (keyless) and their call
//! reports (every call webhook sent twice), and the release of a number on a connection and of one
//! on an assistant. It asserts from the table: every valid request ended 2xx (never 404/409/422/5xx),
//! every send `delivered`, every purchase `active` or `failed` with its number freed, every release
//! gone with its guard, unread counts exact, one active profile per user, every call counted once
//! (its route found) and the dashboard equal to a recount, and nothing left `pending`, `releasing`,
//! `sending`, `queued` or `deleting`.

use std::collections::HashMap;
use std::sync::Mutex;

use futures::stream::{self, StreamExt};
use patchbay_e2e::calls::{call_event, report};
use patchbay_e2e::{eventually, s, shuffle, user, Parts, TestEnv};
use patchbay_local::faults::Faults;
use patchbay_local::server::DEV_VAPI_SECRET;
use reqwest::Method;
use serde_json::{json, Value};

const PARTS: Parts = Parts { api: true, worker: true };
const USERS: usize = 4;
const SENDS: usize = 50;
const INBOUND_DISTINCT: usize = 70;
const INBOUND_DUPLICATES: usize = 30;

/// The runs share the stack and its fault layer: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Every valid request's final status (after the client's retries), by what it was.
#[derive(Default)]
struct Answers(Mutex<Vec<(String, u16)>>);

impl Answers {
    fn note(&self, what: impl Into<String>, status: u16) -> u16 {
        self.0.lock().unwrap().push((what.into(), status));
        status
    }

    fn not_2xx(&self) -> Vec<(String, u16)> {
        self.0.lock().unwrap().iter().filter(|(_, st)| !(200..300).contains(st)).cloned().collect()
    }

    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// A POST that creates something, with an Idempotency-Key so the client may retry it.
async fn create(env: &TestEnv, token: &str, path: &str, key: &str, body: Value) -> (u16, Value) {
    let res = env.http.post(env.api(path)).bearer_auth(token).header("idempotency-key", key).json(&body).send().await.unwrap();
    let (st, b, _) = patchbay_e2e::parts(res).await;
    (st, b)
}

struct Sender {
    uid: String,
    token: String,
    number: String,
}

/// What of a user is still on its way somewhere: a state that a command, a saga or a receipt has
/// yet to move (`pending`, `releasing`, `sending`, `queued`, `deleting`), as `sk attribute=value`.
async fn in_flight(env: &TestEnv, uid: &str) -> Vec<String> {
    let attributes = ["status", "sync_state", "profile_sync", "voice_sync", "assistant_sync"];
    env.user_items(uid)
        .await
        .iter()
        .flat_map(|it| attributes.iter().map(move |k| (s(it, "sk"), *k, s(it, k))))
        .filter(|(_, _, v)| matches!(v.as_str(), "pending" | "releasing" | "sending" | "queued" | "deleting"))
        .map(|(sk, k, v)| format!("{sk} {k}={v}"))
        .collect()
}

/// Every committed change of the scenario wrote exactly one event, whatever the faults: one
/// `message.queued`, `message.sent` and `message.delivered` per outbound message, one
/// `message.received` per stored inbound message, one `call.ended` per call, one `assistant.active` per
/// active assistant, one `phone_number.released` per released number, and no event about anything
/// that is not in the table.
async fn exactly_one_event_per_change(env: &TestEnv, u: usize, uid: &str, released: &[String]) {
    let items = env.user_items(uid).await;
    let events: Vec<Value> =
        items.iter().filter(|i| s(i, "sk").starts_with("EVT#")).map(|i| serde_json::from_str(&s(i, "body")).unwrap()).collect();
    let mut per: HashMap<(String, String), usize> = HashMap::new();
    for e in &events {
        *per.entry((e["type"].as_str().unwrap().to_owned(), e["resource"]["id"].as_str().unwrap().to_owned())).or_default() += 1;
    }
    let count = |t: &str| per.keys().filter(|(et, _)| et == t).count();
    let once = |t: &str, id: &str| per.get(&(t.to_owned(), id.to_owned())).copied().unwrap_or(0);
    let messages: Vec<_> = items.iter().filter(|i| s(i, "sk").starts_with("MSG#")).collect();
    for m in &messages {
        let id = s(m, "id");
        let types: &[&str] =
            if s(m, "direction") == "outbound" { &["message.queued", "message.sent", "message.delivered"] } else { &["message.received"] };
        for t in types {
            assert_eq!(once(t, &id), 1, "user {u}: {t} of message {id}");
        }
    }
    let outbound = messages.iter().filter(|m| s(m, "direction") == "outbound").count();
    let inbound = messages.len() - outbound;
    assert_eq!(
        (count("message.queued"), count("message.sent"), count("message.delivered"), count("message.received"), count("message.failed")),
        (outbound, outbound, outbound, inbound, 0),
        "user {u}: no message event about a message not in the table"
    );
    let calls: Vec<String> = items.iter().filter(|i| s(i, "sk").starts_with("CALL#")).map(|i| s(i, "id")).collect();
    for c in &calls {
        assert_eq!(once("call.ended", c), 1, "user {u}: call.ended of {c}");
    }
    assert_eq!(count("call.ended"), calls.len(), "user {u}: one call.ended per call");
    for n in released {
        assert_eq!(once("phone_number.released", n), 1, "user {u}: phone_number.released of {n}");
    }
    let assistants: Vec<String> =
        items.iter().filter(|i| s(i, "sk").starts_with("ASSISTANT#") && s(i, "status") == "active").map(|i| s(i, "id")).collect();
    for a in &assistants {
        assert_eq!(once("assistant.active", a), 1, "user {u}: assistant.active of {a}");
    }
    let twice: Vec<_> = per.iter().filter(|((t, _), n)| **n > 1 && !t.starts_with("call.updated") && t != "phone_number.active").collect();
    assert!(twice.is_empty(), "user {u}: a change reported twice: {twice:?}");
}

async fn scenario(env: &TestEnv, area: &str, tag: &str) {
    let answers = Answers::default();
    let num = |line: u32| format!("+1{area}5550{line}");

    // Users, their first numbers and two profiles each.
    let mut senders = Vec::new();
    let mut profiles = Vec::new();
    for i in 0..USERS {
        let (uid, token) = user();
        let number = num(100 + i as u32);
        let (st, _) = create(env, &token, "/v1/phone-numbers", &format!("{tag}-buy-{i}"), json!({"phone_number": number})).await;
        answers.note("buy first number", st);
        let mut ids = Vec::new();
        for name in ["Main", "Spare"] {
            let (st, p) = create(env, &token, "/v1/messaging-profiles", &format!("{tag}-{i}-{name}"), json!({"name": name})).await;
            answers.note("create profile", st);
            ids.push(p["id"].as_str().unwrap_or_default().to_owned());
        }
        profiles.push(ids);
        senders.push(Sender { uid, token, number });
    }

    // Concurrent activations of both profiles of each user; then the first one, for good.
    for (sender, ids) in senders.iter().zip(&profiles) {
        let statuses: Vec<u16> = stream::iter(0..6)
            .map(|k| {
                let path = format!("/v1/messaging-profiles/{}/activate", ids[k % 2]);
                async move { env.call(&sender.token, Method::POST, &path, None).await.0 }
            })
            .buffer_unordered(6)
            .collect()
            .await;
        for st in statuses {
            answers.note("concurrent activation", st);
        }
        let active: Vec<String> = env.table_profiles(&sender.uid).await.into_iter().filter(|p| p.1).map(|p| p.0).collect();
        assert_eq!(active.len(), 1, "exactly one active profile after concurrent activations: {active:?}");
        assert_eq!(env.table_pointer(&sender.uid).await.as_deref(), Some(active[0].as_str()), "the pointer names it");
        let (st, _) = env.call(&sender.token, Method::POST, &format!("/v1/messaging-profiles/{}/activate", ids[0]), None).await;
        answers.note("activation", st);
    }

    // Each first number active, then on the active profile.
    for (sender, ids) in senders.iter().zip(&profiles) {
        env.until(&sender.token, &format!("/v1/phone-numbers/{}", sender.number), |n| n["status"] == "active").await;
        let path = format!("/v1/messaging-profiles/{}/phone-numbers/{}", ids[0], sender.number);
        answers.note("assign", env.call(&sender.token, Method::PUT, &path, None).await.0);
    }

    // Eight more purchases: five the sandbox sells, three it refuses (21422).
    let lines: Vec<u32> = vec![110, 111, 112, 113, 114, 150, 151, 152];
    for (k, line) in lines.iter().enumerate() {
        let buyer = &senders[k % USERS];
        let (st, _) =
            create(env, &buyer.token, "/v1/phone-numbers", &format!("{tag}-buy-more-{k}"), json!({"phone_number": num(*line)})).await;
        answers.note("buy", st);
    }
    for (k, line) in lines.iter().enumerate() {
        let buyer = &senders[k % USERS];
        let n = env
            .until(&buyer.token, &format!("/v1/phone-numbers/{}", num(*line)), |n| n["status"] == "active" || n["status"] == "failed")
            .await;
        let owner = env.owner_in_table(&num(*line)).await;
        if *line < 150 {
            assert_eq!(n["status"], "active", "{n}");
            assert_eq!(owner.as_deref(), Some(buyer.uid.as_str()), "the buyer holds the guard of {}", num(*line));
        } else {
            assert_eq!((n["status"].as_str(), n["failure"]["code"].as_str()), (Some("failed"), Some("21422")), "{n}");
            assert_eq!(owner, None, "a refused purchase frees {}", num(*line));
        }
    }

    // Releases: three bought numbers go back (202, then gone with their guard); the refused
    // purchases' records are forgotten (204). One more bought number goes on a profile.
    for (k, line) in lines.iter().enumerate() {
        let owner = &senders[k % USERS];
        let path = format!("/v1/phone-numbers/{}", num(*line));
        match line {
            110..=112 | 150.. => {
                answers.note(format!("release {}", num(*line)), env.call(&owner.token, Method::DELETE, &path, None).await.0);
            }
            113 => {
                let p = &profiles[k % USERS][0];
                let assign = format!("/v1/messaging-profiles/{p}/phone-numbers/{}", num(*line));
                answers.note("assign", env.call(&owner.token, Method::PUT, &assign, None).await.0);
            }
            _ => {}
        }
    }
    for (k, line) in lines.iter().enumerate().filter(|(_, l)| matches!(l, 110..=112 | 150..)) {
        let owner = &senders[k % USERS];
        let path = format!("/v1/phone-numbers/{}", num(*line));
        let gone = eventually(60, || async { (env.call(&owner.token, Method::GET, &path, None).await.0 == 404).then_some(()) }).await;
        assert!(gone.is_some(), "{} was never released", num(*line));
        assert_eq!(env.owner_in_table(&num(*line)).await, None, "the guard of {} is gone", num(*line));
        let record = format!("NUMBER#{}", num(*line));
        assert!(!env.user_items(&owner.uid).await.iter().any(|i| s(i, "sk") == record), "the record of {} is gone", num(*line));
    }

    // Fifty sends, eight at a time, each with its key (so a retried 503 is the same send).
    let sends: Vec<(usize, String)> = (0..SENDS).map(|k| (k % USERS, format!("+1{area}777{:04}", k))).collect();
    let statuses: Vec<u16> = stream::iter(sends.iter().enumerate())
        .map(|(k, (u, to))| {
            let sender = &senders[*u];
            async move {
                let body = json!({"from": sender.number, "to": to, "text": format!("order {k} shipped")});
                create(env, &sender.token, "/v1/messages", &format!("{tag}-send-{k}"), body).await.0
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    for st in statuses {
        answers.note("send", st);
    }

    // A hundred inbound webhooks: 70 distinct, 30 of them again, shuffled, 16 at a time.
    let mut expected_unread: HashMap<(usize, String), u64> = HashMap::new();
    let mut hooks = Vec::new();
    for k in 0..INBOUND_DISTINCT {
        let u = k % USERS;
        let contact = format!("+1{area}888{:04}", k % 9);
        *expected_unread.entry((u, contact.clone())).or_default() += 1;
        hooks.push((format!("{tag}-in-{k}"), contact, senders[u].number.clone()));
    }
    let dups: Vec<_> = hooks.iter().take(INBOUND_DUPLICATES).cloned().collect();
    hooks.extend(dups);
    shuffle(&mut hooks, 0xc0ffee);
    let statuses: Vec<u16> = stream::iter(hooks)
        .map(|(event, from, to)| async move { env.send_inbound(&event, &from, &to, &format!("hello from {from}")).await })
        .buffer_unordered(16)
        .collect()
        .await;
    for st in statuses {
        answers.note("inbound webhook", st);
    }

    // Keyless creates, retried on 5xx with no key: a purchase's retry finds the caller's own pending
    // record and answers it; a profile's may make a second profile (the client's own doing).
    let line = |base: u32, i: usize| num(base + i as u32);
    for (i, sender) in senders.iter().enumerate() {
        let (st, _) = env.call(&sender.token, Method::POST, "/v1/phone-numbers", Some(json!({"phone_number": line(120, i)}))).await;
        answers.note("keyless buy", st);
        let (st, _) = env.call(&sender.token, Method::POST, "/v1/messaging-profiles", Some(json!({"name": "Keyless"}))).await;
        answers.note("keyless profile", st);
    }
    // Voice: per user a SIP connection with the keyless number as its primary, and an assistant that
    // buys the number picked for it (keyless).
    let mut voice = Vec::new();
    for (i, sender) in senders.iter().enumerate() {
        let (st, c) = create(env, &sender.token, "/v1/sip-connections", &format!("{tag}-conn-{i}"), json!({"name": "Phones"})).await;
        answers.note("create sip connection", st);
        let body = json!({"name": "Desk", "selected_phone_number": line(130, i)});
        let (st, a) = env.call(&sender.token, Method::POST, "/v1/assistants", Some(body)).await;
        answers.note("keyless assistant", st);
        voice.push((c["id"].as_str().unwrap_or_default().to_owned(), a["id"].as_str().unwrap_or_default().to_owned()));
    }
    let mut carrier_conns = Vec::new();
    for (i, (sender, (cid, aid))) in senders.iter().zip(&voice).enumerate() {
        env.until(&sender.token, &format!("/v1/phone-numbers/{}", line(120, i)), |n| n["status"] == "active").await;
        let conn = env.until(&sender.token, &format!("/v1/sip-connections/{cid}"), |c| c["sync_state"] == "synced").await;
        carrier_conns.push(conn["carrier_connection_id"].as_str().unwrap_or_default().to_owned());
        let path = format!("/v1/sip-connections/{cid}/phone-numbers/{}", line(120, i));
        answers.note("assign to a sip connection", env.call(&sender.token, Method::PUT, &path, Some(json!({"role": "primary"}))).await.0);
        env.until(&sender.token, &format!("/v1/assistants/{aid}"), |a| a["status"] == "active").await;
    }
    // Three calls on each connection and three to each assistant, every webhook sent twice, shuffled.
    let mut hooks: Vec<(bool, String)> = Vec::new();
    let start = time::OffsetDateTime::now_utc() - time::Duration::seconds(300);
    for (i, (sender, conn)) in senders.iter().zip(&carrier_conns).enumerate() {
        for k in 0..3 {
            let session = format!("{tag}-{}-{k}", sender.uid);
            let (answered, end) = (start + time::Duration::seconds(2), start + time::Duration::seconds(32));
            let to = json!({"to": line(120, i)});
            hooks.push((true, call_event(&format!("{session}-i"), "call.initiated", &session, conn, start, to.clone())));
            hooks.push((true, call_event(&format!("{session}-a"), "call.answered", &session, conn, answered, to.clone())));
            let hangup = json!({"to": line(120, i), "hangup_cause": "normal_clearing", "end_time": patchbay_adapters::wire::rfc3339(end)});
            hooks.push((true, call_event(&format!("{session}-h"), "call.hangup", &session, conn, end, hangup)));
            hooks.push((false, report(&format!("{session}-vapi"), &line(130, i), 20, 0.05)));
        }
    }
    let again = hooks.clone();
    hooks.extend(again);
    shuffle(&mut hooks, 0x5ca1ab1e);
    let statuses: Vec<u16> = stream::iter(hooks)
        .map(|(telnyx, body)| async move {
            match telnyx {
                true => env.send_call_event(&body).await,
                false => env.post_vapi(&body, &[("x-vapi-secret", DEV_VAPI_SECRET.into())]).await,
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    for st in statuses {
        answers.note("call webhook", st);
    }
    // A number on a SIP connection and a number on an assistant released.
    for (i, sender) in senders.iter().enumerate() {
        for base in [120, 130] {
            let path = format!("/v1/phone-numbers/{}", line(base, i));
            answers.note(format!("release {}", line(base, i)), env.call(&sender.token, Method::DELETE, &path, None).await.0);
        }
    }

    assert_eq!(answers.not_2xx(), vec![], "every valid request ends 2xx once clients retry 5xx ({} requests)", answers.count());

    // Every send delivered (the sandbox's receipts, retried on 5xx, went through).
    for (u, sender) in senders.iter().enumerate() {
        let want = sends.iter().filter(|(su, _)| *su == u).count();
        let delivered = eventually(90, || async {
            let items = env.user_items(&sender.uid).await;
            let outbound: Vec<_> = items.iter().filter(|i| s(i, "sk").starts_with("MSG#") && s(i, "direction") == "outbound").collect();
            let done = outbound.iter().filter(|i| s(i, "status") == "delivered").count();
            (outbound.len() == want && done == want).then_some(done)
        })
        .await;
        if delivered.is_none() {
            let items = env.user_items(&sender.uid).await;
            let stuck: Vec<String> = items
                .iter()
                .filter(|i| s(i, "sk").starts_with("MSG#") && s(i, "direction") == "outbound" && s(i, "status") != "delivered")
                .map(|i| format!("{} {}", s(i, "id"), s(i, "status")))
                .collect();
            panic!("user {u}: not every send reached delivered: {stuck:?}");
        }
    }

    // Unread counts exact, one stored message per distinct inbound event.
    for (u, sender) in senders.iter().enumerate() {
        let items = env.user_items(&sender.uid).await;
        for ((eu, contact), want) in expected_unread.iter().filter(|((eu, _), _)| *eu == u) {
            let conv = items
                .iter()
                .find(|i| s(i, "sk").starts_with("CONV#") && s(i, "contact") == *contact)
                .unwrap_or_else(|| panic!("user {eu}: no conversation with {contact}"));
            assert_eq!(s(conv, "unread"), want.to_string(), "user {eu}: unread with {contact}");
            let id = s(conv, "id");
            let stored = items.iter().filter(|i| s(i, "sk").starts_with(&format!("MSG#{id}#"))).count() as u64;
            assert_eq!(stored, *want, "user {eu}: messages from {contact}");
        }
        // One active profile, the one activated last, named by the pointer.
        let active: Vec<String> = env.table_profiles(&sender.uid).await.into_iter().filter(|p| p.1).map(|p| p.0).collect();
        assert_eq!(active, vec![profiles[u][0].clone()], "user {u}: one active profile");
        assert_eq!(env.table_pointer(&sender.uid).await, Some(profiles[u][0].clone()));
    }
    // Voice converged: both released numbers gone with their guards, every call counted once (each
    // found its route), the dashboard equal to a recount, and nothing left in flight anywhere.
    for (i, sender) in senders.iter().enumerate() {
        for base in [120, 130] {
            let path = format!("/v1/phone-numbers/{}", line(base, i));
            let gone = eventually(60, || async { (env.call(&sender.token, Method::GET, &path, None).await.0 == 404).then_some(()) }).await;
            assert!(gone.is_some(), "{} was never released", line(base, i));
            assert_eq!(env.owner_in_table(&line(base, i)).await, None, "the guard of {} is gone", line(base, i));
        }
        let items = env.user_items(&sender.uid).await;
        let calls = items.iter().filter(|it| s(it, "sk").starts_with("CALL#")).count();
        assert_eq!(calls, 6, "user {i}: three SIP calls and three assistant calls, each once");
        let (_, d) = env.call(&sender.token, Method::GET, "/v1/dashboard", None).await;
        assert_eq!(d["totals"]["calls"].as_u64(), Some(6), "user {i}: the dashboard counts what is stored: {d}");
        let settled = eventually(60, || async { in_flight(env, &sender.uid).await.is_empty().then_some(()) }).await;
        if settled.is_none() {
            panic!("user {i}: still in flight: {:?}", in_flight(env, &sender.uid).await);
        }
        exactly_one_event_per_change(env, i, &sender.uid, &[line(120, i), line(130, i)]).await;
    }
    eprintln!(
        "{tag}: {} requests, all 2xx; {SENDS} sends delivered; every purchase, release, unread count, activation and call exact; nothing in flight",
        answers.count()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_dynamodb_contention_every_valid_request_ends_2xx_and_every_state_is_exact() {
    let _one = SERIAL.lock().await;
    let env = TestEnv::new(PARTS).await;
    let control = env.shared.faults.clone().expect("this test needs the fault layer (PATCHBAY_TEST_FAULTS is off)");
    control.set(Faults { conflict: 0.25, throttle: 0.10, ..Faults::OFF });
    let (calls0, conflicts0, throttles0) = control.snapshot();
    scenario(&env, "646", "faults").await;
    let (calls, conflicts, throttles) = control.snapshot();
    let (calls, conflicts, throttles) = (calls - calls0, conflicts - conflicts0, throttles - throttles0);
    eprintln!("fault layer: {calls} DynamoDB calls, {conflicts} answered with a collision, {throttles} throttled");
    assert!(conflicts > 100 && throttles > 50, "the faults were injected: {conflicts} collisions, {throttles} throttles of {calls} calls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_lost_answers_and_killed_invocations_too_every_resource_converges() {
    let _one = SERIAL.lock().await;
    let env = TestEnv::new(PARTS).await;
    let control = env.shared.faults.clone().expect("this test needs the fault layer (PATCHBAY_TEST_FAULTS is off)");
    let before = control.faults();
    control.set(Faults { conflict: 0.20, throttle: 0.10, lost: 0.10, kill: 0.05 });
    let (lost0, killed0, _) = control.snapshot_effects();
    scenario(&env, "917", "every-fault").await;
    let (lost, killed, _) = control.snapshot_effects();
    control.set(before);
    eprintln!("fault layer: {} answers lost, {} invocations killed", lost - lost0, killed - killed0);
    assert!(lost - lost0 > 20 && killed - killed0 > 2, "the faults were injected: {} lost, {} killed", lost - lost0, killed - killed0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_contention_the_same_scenario_ends_the_same() {
    let _one = SERIAL.lock().await;
    let env = TestEnv::new(PARTS).await;
    let control = env.shared.faults.clone();
    let before = control.as_ref().map(|c| c.faults());
    if let Some(c) = &control {
        c.set(Faults::OFF);
    }
    scenario(&env, "718", "calm").await;
    if let (Some(c), Some(f)) = (&control, before) {
        c.set(f);
    }
}
