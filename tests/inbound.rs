//! Inbound SMS through the webhook receiver on the local stack: verified first (nothing stored for a
//! refused webhook), routed to the number's owner, stored once whatever is retried, unread counted
//! with the message, mark read; and a storm of concurrent, duplicated, shuffled webhooks.

use std::collections::HashMap;

use ed25519_dalek::SigningKey;
use futures::stream::{self, StreamExt};
use patchbay_adapters::webhooks::twilio_signature;
use patchbay_domain::numbers::{NumberWriter, PhoneNumber};
use patchbay_domain::{CarrierName, UserId, E164};
use patchbay_e2e::{parts, s, user, Parts, TestEnv};
use patchbay_local::server::DEV_TWILIO_AUTH_TOKEN;
use serde_json::Value;
use time::OffsetDateTime;

const PARTS: Parts = Parts { api: true, worker: false };

use patchbay_e2e::telnyx::{inbound_body as telnyx_body, signed, signer};

async fn post_telnyx(env: &TestEnv, body: &str, sig: Option<&str>, ts: Option<&str>) -> u16 {
    env.post_telnyx(body, sig, ts).await
}

async fn send_inbound(env: &TestEnv, event_id: &str, from: &str, to: &str, text: &str) -> u16 {
    env.send_inbound(event_id, from, to, text).await
}

/// A user who owns `number` (the purchase's owner guard is what routes inbound traffic).
async fn owner_of(env: &TestEnv, number: &str) -> (String, String) {
    let (uid, token) = user();
    own(env, &uid, number).await;
    (uid, token)
}

/// `uid` owns `number` too.
async fn own(env: &TestEnv, uid: &str, number: &str) {
    let n = PhoneNumber::new_purchase(
        UserId::parse(uid).unwrap(),
        E164::parse(number).unwrap(),
        CarrierName::Sandbox,
        OffsetDateTime::now_utc(),
    );
    env.store.create_purchase(&n, None).await.unwrap();
}

/// A contact of the caller's, through the API.
async fn contact(env: &TestEnv, token: &str, number: &str, name: &str) {
    let (st, body) =
        env.call(token, reqwest::Method::POST, "/v1/contacts", Some(serde_json::json!({"phone_number": number, "name": name}))).await;
    assert_eq!(st, 201, "{body}");
}

async fn event_guard_exists(env: &TestEnv, carrier: &str, id: &str) -> bool {
    env.dynamo
        .get_item()
        .table_name(&env.shared.info.table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("EVENT#{carrier}#{id}")))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("EVENT".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .is_some()
}

async fn conversations(env: &TestEnv, token: &str) -> Vec<Value> {
    let (st, body, _) = parts(env.http.get(env.api("/v1/conversations?limit=100")).bearer_auth(token).send().await.unwrap()).await;
    assert_eq!(st, 200, "{body}");
    body["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn an_inbound_sms_lands_once_in_the_owners_conversation() {
    let env = TestEnv::new(PARTS).await;
    let ours = "+12125550161";
    let (uid, token) = owner_of(&env, ours).await;
    assert_eq!(send_inbound(&env, "ev-1", "+14155550123", ours, "Hi there").await, 200);

    let convs = conversations(&env, &token).await;
    assert_eq!(convs.len(), 1);
    assert_eq!(
        (convs[0]["unread"].as_u64(), convs[0]["contact"].as_str(), convs[0]["our_number"].as_str()),
        (Some(1), Some("+14155550123"), Some(ours))
    );
    let id = convs[0]["id"].as_str().unwrap().to_owned();
    let (_, msgs, _) =
        parts(env.http.get(env.api(&format!("/v1/conversations/{id}/messages"))).bearer_auth(&token).send().await.unwrap()).await;
    assert_eq!(msgs["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        (msgs["data"][0]["direction"].as_str(), msgs["data"][0]["text"].as_str(), msgs["data"][0]["status"].as_str()),
        (Some("inbound"), Some("Hi there"), Some("received"))
    );

    let (st, read, _) =
        parts(env.http.post(env.api(&format!("/v1/conversations/{id}/read"))).bearer_auth(&token).send().await.unwrap()).await;
    assert_eq!((st, read["unread"].as_u64()), (200, Some(0)));
    // Telnyx retries the same event: acknowledged, nothing changes (not even unread).
    assert_eq!(send_inbound(&env, "ev-1", "+14155550123", ours, "Hi there").await, 200);
    let convs = conversations(&env, &token).await;
    assert_eq!(convs[0]["unread"].as_u64(), Some(0));
    let messages = env.user_items(&uid).await.into_iter().filter(|i| s(i, "sk").starts_with("MSG#")).count();
    assert_eq!(messages, 1);
    // The contact was created with the conversation.
    assert!(env.user_items(&uid).await.iter().any(|i| s(i, "sk") == "CONTACT#+14155550123"));
    // Another user sees none of it.
    let (_, other) = user();
    assert!(conversations(&env, &other).await.is_empty());
    assert_eq!(
        parts(env.http.get(env.api(&format!("/v1/conversations/{id}/messages"))).bearer_auth(&other).send().await.unwrap()).await.0,
        404
    );
}

#[tokio::test]
async fn refused_webhooks_store_nothing() {
    let env = TestEnv::new(PARTS).await;
    let ours = "+12125550162";
    let (uid, _) = owner_of(&env, ours).await;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let body = telnyx_body("ev-bad", "+14155550124", ours, "x");
    let (sig, ts) = signed(&signer(), now, &body);
    let tampered = body.replace("\"x\"", "\"y\"");
    let (stale_sig, stale_ts) = signed(&signer(), now - 330, &body);
    let (future_sig, future_ts) = signed(&signer(), now + 330, &body);
    let (wrong_sig, wrong_ts) = signed(&SigningKey::from_bytes(&[9u8; 32]), now, &body);
    for (b, sg, t) in [
        (tampered.as_str(), Some(sig.as_str()), Some(ts.as_str())),
        (body.as_str(), Some(stale_sig.as_str()), Some(stale_ts.as_str())),
        (body.as_str(), Some(future_sig.as_str()), Some(future_ts.as_str())),
        (body.as_str(), Some(wrong_sig.as_str()), Some(wrong_ts.as_str())),
        (body.as_str(), None, Some(ts.as_str())),
        (body.as_str(), Some(sig.as_str()), None),
    ] {
        assert_eq!(post_telnyx(&env, b, sg, t).await, 401);
    }
    assert!(!event_guard_exists(&env, "telnyx", "ev-bad").await);
    // The number and the purchase's outbox item: nothing from the webhooks.
    assert!(
        env.user_items(&uid).await.iter().all(|i| s(i, "sk").starts_with("NUMBER#") || s(i, "sk").starts_with("OUT#")),
        "only the number: nothing from the webhooks"
    );
    // The genuine one goes through.
    assert_eq!(post_telnyx(&env, &body, Some(&sig), Some(&ts)).await, 200);
    assert!(event_guard_exists(&env, "telnyx", "ev-bad").await);
}

#[tokio::test]
async fn a_message_to_a_number_nobody_owns_is_acknowledged_and_dropped() {
    let env = TestEnv::new(PARTS).await;
    assert_eq!(send_inbound(&env, "ev-orphan", "+14155550125", "+12125550163", "hello?").await, 200);
    assert!(!event_guard_exists(&env, "telnyx", "ev-orphan").await);
}

#[tokio::test]
async fn twilio_inbound_is_verified_against_the_public_url() {
    let env = TestEnv::new(PARTS).await;
    let ours = "+12125550164";
    let (uid, token) = owner_of(&env, ours).await;
    let params: Vec<(String, String)> = [
        ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
        ("AccountSid", "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
        ("From", "+14155550126"),
        ("To", ours),
        ("Body", "from twilio"),
        ("NumMedia", "0"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let url = env.api("/webhooks/twilio/messages");
    let token_secret = secrecy::SecretString::from(DEV_TWILIO_AUTH_TOKEN);
    let good = twilio_signature(&token_secret, &url, &params).unwrap();
    let elsewhere = twilio_signature(&token_secret, "https://elsewhere.example/webhooks/twilio/messages", &params).unwrap();
    let post = |sig: &str| env.http.post(&url).header("x-twilio-signature", sig).form(&params).send();
    assert_eq!(post(&elsewhere).await.unwrap().status(), 401);
    assert_eq!(post("bm9wZQ==").await.unwrap().status(), 401);
    assert!(env.user_items(&uid).await.iter().all(|i| s(i, "sk").starts_with("NUMBER#") || s(i, "sk").starts_with("OUT#")));
    let res = post(&good).await.unwrap();
    assert_eq!((res.status().as_u16(), res.headers()["content-type"].to_str().unwrap()), (200, "text/xml"));
    assert_eq!(post(&good).await.unwrap().status(), 200, "a retried webhook answers 2xx");
    let convs = conversations(&env, &token).await;
    assert_eq!((convs.len(), convs[0]["unread"].as_u64()), (1, Some(1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_storm_of_duplicated_shuffled_webhooks_counts_everything_exactly_once() {
    let env = TestEnv::new(PARTS).await;
    let numbers = ["+12125550171", "+12125550172", "+12125550173"];
    let mut owners = Vec::new();
    for n in numbers {
        owners.push(owner_of(&env, n).await);
    }
    let contacts: Vec<String> = (0..10).map(|i| format!("+1415555{:04}", 2000 + i)).collect();
    // 1,540 distinct events, 30% of them sent twice or three times: 2,002 webhooks.
    let mut expected: HashMap<(usize, usize), u64> = HashMap::new();
    let mut sends = Vec::new();
    for e in 0..1540usize {
        let (n, c) = (e % numbers.len(), (e / numbers.len()) % contacts.len());
        *expected.entry((n, c)).or_default() += 1;
        let body = telnyx_body(&format!("storm-{e}"), &contacts[c], numbers[n], &format!("message {e}"));
        let copies = if e % 10 < 3 {
            if e % 20 == 0 {
                2
            } else {
                1
            }
        } else {
            0
        } + 1;
        for _ in 0..copies {
            sends.push(body.clone());
        }
    }
    let total = sends.len();
    assert!(total >= 2000, "{total}");
    patchbay_e2e::shuffle(&mut sends, 0x5eed);
    let key = signer();
    let statuses: Vec<u16> = stream::iter(sends)
        .map(|body| {
            let env = &env;
            let key = &key;
            async move {
                let (sig, ts) = signed(key, OffsetDateTime::now_utc().unix_timestamp(), &body);
                post_telnyx(env, &body, Some(&sig), Some(&ts)).await
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let failures = statuses.iter().filter(|s| **s != 200).count();
    assert_eq!(failures, 0, "every webhook answered 200");

    for (n, (uid, token)) in owners.iter().enumerate() {
        let convs = conversations(&env, token).await;
        let items = env.user_items(uid).await;
        for (c, contact) in contacts.iter().enumerate() {
            let want = expected.get(&(n, c)).copied().unwrap_or(0);
            let conv = convs.iter().find(|v| v["contact"] == contact.as_str()).expect("conversation");
            assert_eq!(conv["unread"].as_u64(), Some(want), "unread of {} with {contact}", numbers[n]);
            let id = conv["id"].as_str().unwrap();
            let stored = items.iter().filter(|i| s(i, "sk").starts_with(&format!("MSG#{id}#"))).count() as u64;
            assert_eq!(stored, want, "messages of {} with {contact}", numbers[n]);
        }
    }
    eprintln!("storm: {total} webhooks ({} distinct), all 200, every count exact", 1540);
}

#[tokio::test]
async fn an_oversized_webhook_is_a_problem_not_a_crash() {
    let env = TestEnv::new(PARTS).await;
    let res = env
        .http
        .post(env.api("/webhooks/telnyx"))
        .header("content-type", "application/json")
        .body(vec![b'x'; 70 * 1024])
        .send()
        .await
        .unwrap();
    let (st, body, ct) = parts(res).await;
    assert_eq!((st, body["code"].as_str(), ct.as_str()), (413, Some("body_too_large"), "application/problem+json"));
}

/// Conversations are listed by their last activity, newest first, also within one second: a reply at
/// a whole second and another half a second later list the later one first (the index key is the
/// fixed-width time; an RFC 3339 key without trailing zeros sorted `…:00.5Z` before `…:00Z`).
#[tokio::test]
async fn conversations_are_listed_by_last_activity_within_a_second() {
    use patchbay_domain::messaging::{ConversationStore, InboundSms, Inbox};
    let env = TestEnv::new(PARTS).await;
    let (uid, _) = owner_of(&env, "+13125550199").await;
    let owner = UserId::parse(&uid).unwrap();
    let second = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    for (contact, at) in [("+14155550191", second), ("+14155550192", second + time::Duration::milliseconds(500))] {
        let sms = InboundSms {
            event_id: format!("order-{contact}-{}", uuid::Uuid::new_v4()),
            carrier: CarrierName::Sandbox,
            carrier_message_id: format!("m-{contact}"),
            from: E164::parse(contact).unwrap(),
            to: E164::parse("+13125550199").unwrap(),
            text: "hi".into(),
        };
        patchbay_e2e::as_client(|| env.store.record_inbound(&owner, &sms, at)).await;
    }
    let page =
        patchbay_e2e::as_client(|| env.store.list_conversations(&owner, None, patchbay_domain::Limit::parse(Some("10")).unwrap())).await;
    let contacts: Vec<&str> = page.data.iter().map(|c| c.contact.as_str()).collect();
    assert_eq!(contacts, vec!["+14155550192", "+14155550191"], "the later activity first");
}

/// A conversation answers its contact's name as the contact is now: read with the list (and with
/// mark read), never copied onto the conversation, so a rename shows at once; a contact without a
/// name (or no contact) answers null.
#[tokio::test]
async fn a_conversation_names_its_contact_as_the_contact_is_now() {
    let env = TestEnv::new(PARTS).await;
    let ours = "+12125550165";
    let (uid, token) = owner_of(&env, ours).await;
    contact(&env, &token, "+14155550131", "Ada Lovelace").await;
    assert_eq!(send_inbound(&env, "name-1", "+14155550131", ours, "Hello").await, 200);
    assert_eq!(send_inbound(&env, "name-2", "+14155550132", ours, "Who is this?").await, 200);
    let convs = conversations(&env, &token).await;
    let name_of =
        |convs: &[Value], contact: &str| convs.iter().find(|c| c["contact"] == contact).expect("conversation")["contact_name"].clone();
    assert_eq!(name_of(&convs, "+14155550131"), "Ada Lovelace");
    assert_eq!(convs.iter().find(|c| c["contact"] == "+14155550132").unwrap().get("contact_name"), Some(&Value::Null), "null, not absent");

    // Renamed (as any later write of the contact's name would): the list and mark read show the new name.
    env.dynamo
        .update_item()
        .table_name(&env.shared.info.table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("USER#{uid}")))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("CONTACT#+14155550131".into()))
        .update_expression("SET #n = :n")
        .expression_attribute_names("#n", "name")
        .expression_attribute_values(":n", aws_sdk_dynamodb::types::AttributeValue::S("Ada King".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(name_of(&conversations(&env, &token).await, "+14155550131"), "Ada King");
    let id = convs.iter().find(|c| c["contact"] == "+14155550131").unwrap()["id"].as_str().unwrap().to_owned();
    let (st, read) = env.call(&token, reqwest::Method::POST, &format!("/v1/conversations/{id}/read"), None).await;
    assert_eq!((st, read["contact_name"].as_str(), read["unread"].as_u64()), (200, Some("Ada King"), Some(0)), "{read}");
    // Another user's contact of the same number names nothing of this user's.
    let (_, other) = owner_of(&env, "+12125550166").await;
    contact(&env, &other, "+14155550132", "Grace Hopper").await;
    assert_eq!(name_of(&conversations(&env, &token).await, "+14155550132"), Value::Null);
}

/// A contact that texted first has no name; `PATCH /v1/contacts/{e164}` names it (the conversation
/// list shows the name at once), `null` clears it, and nothing else of the contact moves (its opt-out
/// stays, no event is written). Unknown numbers, another user's contacts and bad bodies are refused.
#[tokio::test]
async fn a_contact_that_texted_first_is_named_and_unnamed() {
    use reqwest::Method;
    let env = TestEnv::new(PARTS).await;
    let ours = "+12125550169";
    let (uid, token) = owner_of(&env, ours).await;
    let them = "+14155550151";
    let path = format!("/v1/contacts/{them}");
    assert_eq!(send_inbound(&env, "rename-1", them, ours, "Hi, it's me").await, 200);
    let (st, c) = env.call(&token, Method::GET, &path, None).await;
    assert_eq!((st, &c["phone_number"], &c["name"], &c["opted_out"]), (200, &Value::from(them), &Value::Null, &Value::Bool(false)), "{c}");
    let name_in_list = |convs: Vec<Value>| convs.iter().find(|c| c["contact"] == them).expect("conversation")["contact_name"].clone();
    assert_eq!(name_in_list(conversations(&env, &token).await), Value::Null);

    // Named (trimmed), with `%2B` for the `+`: answered, shown by GET and on the conversation list.
    let (st, c) = env.call(&token, Method::PATCH, "/v1/contacts/%2B14155550151", Some(serde_json::json!({"name": "  Ada King "}))).await;
    assert_eq!((st, c["name"].as_str(), &c["external_id"]), (200, Some("Ada King"), &Value::Null), "{c}");
    assert_eq!(env.call(&token, Method::GET, &path, None).await.1["name"], "Ada King");
    assert_eq!(name_in_list(conversations(&env, &token).await), "Ada King");
    // The external id alone leaves the name.
    let (st, c) = env.call(&token, Method::PATCH, &path, Some(serde_json::json!({"external_id": "crm-9"}))).await;
    assert_eq!((st, c["name"].as_str(), c["external_id"].as_str()), (200, Some("Ada King"), Some("crm-9")), "{c}");

    // The contact opts out; a rename keeps it opted out.
    assert_eq!(send_inbound(&env, "rename-stop", them, ours, "STOP").await, 200);
    let events = |items: Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>| {
        items.iter().filter(|i| s(i, "sk").starts_with("EVT#")).count()
    };
    let events_before = events(env.user_items(&uid).await);
    let (st, c) = env.call(&token, Method::PATCH, &path, Some(serde_json::json!({"name": "Ada K."}))).await;
    assert_eq!((st, c["name"].as_str(), &c["opted_out"]), (200, Some("Ada K."), &Value::Bool(true)), "{c}");
    assert_eq!(env.call(&token, Method::GET, &path, None).await.1["opted_out"], true);

    // Null clears the name (and only the name); blank clears it too.
    let (st, c) = env.call(&token, Method::PATCH, &path, Some(serde_json::json!({"name": null}))).await;
    assert_eq!((st, &c["name"], c["external_id"].as_str(), &c["opted_out"]), (200, &Value::Null, Some("crm-9"), &Value::Bool(true)), "{c}");
    assert_eq!(name_in_list(conversations(&env, &token).await), Value::Null);
    let (st, c) = env.call(&token, Method::PATCH, &path, Some(serde_json::json!({"name": "Ada", "external_id": null}))).await;
    assert_eq!((st, c["name"].as_str(), &c["external_id"]), (200, Some("Ada"), &Value::Null), "{c}");
    let (st, c) = env.call(&token, Method::PATCH, &path, Some(serde_json::json!({"name": "   "}))).await;
    assert_eq!((st, &c["name"]), (200, &Value::Null), "{c}");
    // The stored contact: no name, no external id, still opted out; and no event for any of it.
    let items = env.user_items(&uid).await;
    let stored = items.iter().find(|i| s(i, "sk") == format!("CONTACT#{them}")).expect("the contact");
    assert!(!stored.contains_key("name") && !stored.contains_key("external_id"), "{stored:?}");
    assert_eq!(stored.get("opted_out").and_then(|v| v.as_bool().ok()), Some(&true));
    assert_eq!(events(items), events_before, "a rename writes no event");

    // An unknown number, and another user's contact, are 404 (and the other user's stays as it was).
    let (st, body) = env.call(&token, Method::PATCH, "/v1/contacts/+14155550152", Some(serde_json::json!({"name": "Nobody"}))).await;
    assert_eq!((st, body["code"].as_str()), (404, Some("not_found")), "{body}");
    assert_eq!(env.call(&token, Method::GET, "/v1/contacts/+14155550152", None).await.0, 404);
    let (_, other) = user();
    contact(&env, &other, "+14155550153", "Grace Hopper").await;
    let (st, body) = env.call(&token, Method::PATCH, "/v1/contacts/+14155550153", Some(serde_json::json!({"name": "Mine now"}))).await;
    assert_eq!(st, 404, "{body}");
    assert_eq!(env.call(&token, Method::GET, "/v1/contacts/+14155550153", None).await.0, 404);
    assert_eq!(env.call(&other, Method::GET, "/v1/contacts/+14155550153", None).await.1["name"], "Grace Hopper");
    assert_eq!(env.call(&other, Method::PATCH, &path, Some(serde_json::json!({"name": "x"}))).await.0, 404);

    // Bad input names the field: a 101-character name, an empty external id, an unknown property,
    // a wrong type, an empty object (422); no body at all (400); a number that is not E.164 (400).
    for (body, field, code) in [
        (serde_json::json!({"name": "a".repeat(101)}), "name", "invalid_name"),
        (serde_json::json!({"external_id": ""}), "external_id", "invalid_external_id"),
        (serde_json::json!({"name": "x", "opted_out": false}), "opted_out", "unknown_field"),
        (serde_json::json!({"name": 7}), "name", "invalid_type"),
        (serde_json::json!({}), "body", "empty_patch"),
    ] {
        let (st, problem) = env.call(&token, Method::PATCH, &path, Some(body.clone())).await;
        assert_eq!((st, problem["field"].as_str(), problem["code"].as_str()), (422, Some(field), Some(code)), "{body}: {problem}");
    }
    let (st, problem, ct) =
        parts(env.http.patch(env.api(&path)).bearer_auth(&token).header("content-type", "application/json").send().await.unwrap()).await;
    assert_eq!((st, problem["field"].as_str(), ct.as_str()), (400, Some("body"), "application/problem+json"), "{problem}");
    let (st, problem) = env.call(&token, Method::PATCH, "/v1/contacts/14155550151", Some(serde_json::json!({"name": "x"}))).await;
    assert_eq!((st, problem["field"].as_str()), (400, Some("e164")), "{problem}");
    // None of it changed the contact.
    let (_, c) = env.call(&token, Method::GET, &path, None).await;
    assert_eq!((&c["name"], &c["external_id"], &c["opted_out"]), (&Value::Null, &Value::Null, &Value::Bool(true)), "{c}");
}

/// `?q=` keeps the conversations whose contact's number or our number contains the query's digits,
/// or whose contact's name contains it (any case); pages of a search carry on from their cursor and
/// miss nothing; a bad `q` is a 400 naming `q`.
#[tokio::test]
async fn conversations_are_searched_by_number_digits_and_contact_name_across_pages() {
    let env = TestEnv::new(PARTS).await;
    let (ours, other_ours) = ("+12125550167", "+13125550168");
    let (uid, token) = owner_of(&env, ours).await;
    own(&env, &uid, other_ours).await;
    contact(&env, &token, "+14155550141", "Grace Hopper").await;
    contact(&env, &token, "+14155550144", "grace brewster MURRAY").await;
    contact(&env, &token, "+14155550147", "Alan Turing").await;
    // Newest activity first: 148 (to the other number), 147 … 141.
    for (i, n) in (141..=148).enumerate() {
        let to = if n >= 147 { other_ours } else { ours };
        assert_eq!(send_inbound(&env, &format!("q-{uid}-{i}"), &format!("+1415555{n:04}"), to, "hi").await, 200);
    }
    let search = |q: String| {
        let (env, token) = (&env, &token);
        async move {
            let (st, body) = env.call(token, reqwest::Method::GET, &format!("/v1/conversations?{q}"), None).await;
            assert_eq!(st, 200, "{q}: {body}");
            let contacts: Vec<String> =
                body["data"].as_array().unwrap().iter().map(|c| c["contact"].as_str().unwrap().to_owned()).collect();
            (contacts, body["next_cursor"].as_str().map(str::to_owned))
        }
    };
    let numbers = |ns: &[u32]| ns.iter().map(|n| format!("+1415555{n:04}")).collect::<Vec<_>>();
    // By the contact's name, any case.
    assert_eq!(search("q=GRACE".into()).await, (numbers(&[144, 141]), None));
    assert_eq!(search("q=%20murray%20".into()).await, (numbers(&[144]), None));
    // By the contact's digits, however they are written.
    assert_eq!(search("q=(415)%20555-0147".into()).await, (numbers(&[147]), None));
    // By our number's digits.
    assert_eq!(search("q=312-555".into()).await, (numbers(&[148, 147]), None));
    // Nothing matches.
    assert_eq!(search("q=nobody".into()).await, (vec![], None));
    // Paged: the conversations of our first number (not the two newest, which are the other's),
    // every one once, in list order, page after page.
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..5 {
        let after = cursor.as_deref().map(|c| format!("&cursor={c}")).unwrap_or_default();
        let (page, next) = search(format!("q=%2B1%20212%20555%200167&limit=4{after}")).await;
        pages.push(page);
        cursor = next;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(pages, vec![numbers(&[146, 145, 144, 143]), numbers(&[142, 141])]);
    // A name search paged one at a time lands on each match and ends.
    let (first, next) = search("q=grace&limit=1".into()).await;
    assert_eq!(first, numbers(&[144]));
    let (second, next) = search(format!("q=grace&limit=1&cursor={}", next.expect("a next page"))).await;
    assert_eq!(second, numbers(&[141]));
    let (third, next) = search(format!("q=grace&limit=1&cursor={}", next.expect("a next page"))).await;
    assert_eq!((third, next), (vec![], None));
    // Bad queries name `q`.
    for q in ["q=", "q=%20%20%20", &format!("q={}", "a".repeat(101))] {
        let (st, body) = env.call(&token, reqwest::Method::GET, &format!("/v1/conversations?{q}"), None).await;
        assert_eq!((st, body["field"].as_str()), (400, Some("q")), "{q}: {body}");
    }
    // Another user's search finds none of it.
    let (_, stranger) = user();
    let (st, body) = env.call(&stranger, reqwest::Method::GET, "/v1/conversations?q=grace", None).await;
    assert_eq!((st, body["data"].as_array().map(Vec::len)), (200, Some(0)));
}
