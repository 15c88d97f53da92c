//! Two-way SMS on the local stack with the sandbox carrier: send → queued → sent → delivered through
//! signed webhooks; a reply lands in the same conversation; opt-out; refusals that queue nothing;
//! receipts that arrive late or twice never move a status backwards.

use patchbay_e2e::{s, user, Parts, TestEnv};
use serde_json::{json, Value};

const PARTS: Parts = Parts { api: true, worker: true };

struct Sender {
    uid: String,
    token: String,
    number: String,
    profile: String,
}

async fn call(env: &TestEnv, token: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    env.call(token, method, path, body).await
}

async fn until(env: &TestEnv, token: &str, path: &str, f: impl Fn(&Value) -> bool) -> Value {
    env.until(token, path, f).await
}

/// A user with an active number on their active profile (bought and assigned through the API).
async fn sender(env: &TestEnv, number: &str) -> Sender {
    let (uid, token) = user();
    use reqwest::Method;
    assert_eq!(call(env, &token, Method::POST, "/v1/phone-numbers", Some(json!({"phone_number": number}))).await.0, 202);
    until(env, &token, &format!("/v1/phone-numbers/{number}"), |n| n["status"] == "active").await;
    let (_, p) = call(env, &token, Method::POST, "/v1/messaging-profiles", Some(json!({"name": "Main"}))).await;
    let profile = p["id"].as_str().unwrap().to_owned();
    assert_eq!(call(env, &token, Method::POST, &format!("/v1/messaging-profiles/{profile}/activate"), None).await.0, 200);
    assert_eq!(call(env, &token, Method::PUT, &format!("/v1/messaging-profiles/{profile}/phone-numbers/{number}"), None).await.0, 202);
    Sender { uid, token, number: number.to_owned(), profile }
}

async fn inject(env: &TestEnv, from: &str, to: &str, text: &str) {
    let res = env.http.post(env.api("/local/sandbox/inbound")).json(&json!({"from": from, "to": to, "text": text})).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

fn message_count(items: &[std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>]) -> usize {
    items.iter().filter(|i| s(i, "sk").starts_with("MSG#")).count()
}

#[tokio::test]
async fn send_queued_sent_delivered_then_a_reply_in_the_same_conversation() {
    let env = TestEnv::new(PARTS).await;
    let a = sender(&env, "+13125550101").await;
    let contact = "+14155550150";
    let text = "Your order shipped €";
    let (st, m) =
        call(&env, &a.token, reqwest::Method::POST, "/v1/messages", Some(json!({"from": a.number, "to": contact, "text": text}))).await;
    assert_eq!(
        (st, m["status"].as_str(), m["segments"].as_u64(), m["encoding"].as_str()),
        (202, Some("queued"), Some(1), Some("gsm7")),
        "{m}"
    );
    let conv = m["conversation_id"].as_str().unwrap().to_owned();
    let msgs = until(&env, &a.token, &format!("/v1/conversations/{conv}/messages"), |b| b["data"][0]["status"] == "delivered").await;
    assert_eq!((msgs["data"][0]["direction"].as_str(), msgs["data"][0]["text"].as_str()), (Some("outbound"), Some(text)));
    assert_eq!(msgs["data"][0].get("failure"), Some(&Value::Null), "a delivered message has no failure: {msgs}");

    inject(&env, contact, &a.number, "Thanks!").await;
    let convs = until(&env, &a.token, "/v1/conversations", |b| b["data"][0]["unread"] == 1).await;
    assert_eq!((convs["data"].as_array().unwrap().len(), convs["data"][0]["id"].as_str()), (1, Some(conv.as_str())));
    let msgs = until(&env, &a.token, &format!("/v1/conversations/{conv}/messages"), |b| b["data"].as_array().unwrap().len() == 2).await;
    assert_eq!((msgs["data"][0]["direction"].as_str(), msgs["data"][1]["direction"].as_str()), (Some("inbound"), Some("outbound")));
    let (st, read) = call(&env, &a.token, reqwest::Method::POST, &format!("/v1/conversations/{conv}/read"), None).await;
    assert_eq!((st, read["unread"].as_u64()), (200, Some(0)));
}

/// A text the carrier cannot deliver (the sandbox refuses numbers ending in 0199 as Telnyx does,
/// `40008 Undeliverable`, in its `message.finalized` receipt) ends `failed`, and the messages list
/// answers why; the conversation's other messages answer `failure: null`.
#[tokio::test]
async fn an_undeliverable_text_fails_with_the_carriers_reason() {
    let env = TestEnv::new(PARTS).await;
    let a = sender(&env, "+13125550105").await;
    let contact = "+14155550199";
    let (st, m) =
        call(&env, &a.token, reqwest::Method::POST, "/v1/messages", Some(json!({"from": a.number, "to": contact, "text": "hello?"}))).await;
    assert_eq!(st, 202, "{m}");
    let conv = m["conversation_id"].as_str().unwrap().to_owned();
    let msgs = until(&env, &a.token, &format!("/v1/conversations/{conv}/messages"), |b| b["data"][0]["status"] == "failed").await;
    assert_eq!(msgs["data"][0]["failure"], json!({"code": "40008", "message": "Undeliverable"}), "{msgs}");
    inject(&env, contact, &a.number, "got nothing").await;
    let msgs = until(&env, &a.token, &format!("/v1/conversations/{conv}/messages"), |b| b["data"].as_array().unwrap().len() == 2).await;
    assert_eq!((msgs["data"][0]["status"].as_str(), &msgs["data"][0]["failure"]), (Some("received"), &Value::Null), "{msgs}");
    assert_eq!(msgs["data"][1]["failure"]["code"], "40008");
}

#[tokio::test]
async fn refused_sends_queue_nothing() {
    let env = TestEnv::new(PARTS).await;
    use reqwest::Method;
    let a = sender(&env, "+13125550102").await;
    let b = sender(&env, "+13125550103").await;
    let contact = "+14155550151";
    let send = |token: String, from: String| {
        let env = &env;
        async move { call(env, &token, Method::POST, "/v1/messages", Some(json!({"from": from, "to": contact, "text": "hi"}))).await }
    };
    // Another user's number.
    let (st, body) = send(a.token.clone(), b.number.clone()).await;
    assert_eq!((st, body["code"].as_str(), body["field"].as_str()), (422, Some("number_not_owned"), Some("from")));
    // A number on no profile.
    assert_eq!(
        call(&env, &a.token, Method::DELETE, &format!("/v1/messaging-profiles/{}/phone-numbers/{}", a.profile, a.number), None).await.0,
        202
    );
    let (st, body) = send(a.token.clone(), a.number.clone()).await;
    assert_eq!((st, body["code"].as_str()), (409, Some("number_not_on_profile")));
    // A number on a profile that is not the active one.
    let (_, other) = call(&env, &a.token, Method::POST, "/v1/messaging-profiles", Some(json!({"name": "Other"}))).await;
    let other = other["id"].as_str().unwrap();
    assert_eq!(call(&env, &a.token, Method::PUT, &format!("/v1/messaging-profiles/{other}/phone-numbers/{}", a.number), None).await.0, 202);
    let (st, body) = send(a.token.clone(), a.number.clone()).await;
    assert_eq!((st, body["code"].as_str()), (409, Some("profile_not_active")));
    // Bad bodies.
    for (body, field) in [
        (json!({"from": a.number, "to": "4155550151", "text": "x"}), "to"),
        (json!({"from": a.number, "to": contact, "text": ""}), "text"),
        (json!({"from": a.number, "to": a.number, "text": "x"}), "to"),
    ] {
        let (st, problem) = call(&env, &a.token, Method::POST, "/v1/messages", Some(body)).await;
        assert_eq!((st, problem["field"].as_str()), (422, Some(field)), "{problem}");
    }
    assert_eq!(message_count(&env.user_items(&a.uid).await), 0, "nothing stored, nothing queued");

    // Opt-out: B's contact says STOP; B's sends to them are refused until START.
    inject(&env, contact, &b.number, "Stop.").await;
    let (st, body) = send(b.token.clone(), b.number.clone()).await;
    assert_eq!((st, body["code"].as_str()), (409, Some("contact_opted_out")));
    let before = message_count(&env.user_items(&b.uid).await);
    inject(&env, contact, &b.number, "start").await;
    assert_eq!(send(b.token.clone(), b.number.clone()).await.0, 202);
    assert_eq!(message_count(&env.user_items(&b.uid).await), before + 2, "the START and the new send");
}

#[tokio::test]
async fn an_idempotent_send_is_one_message() {
    let env = TestEnv::new(PARTS).await;
    let a = sender(&env, "+13125550104").await;
    let post = || {
        env.http
            .post(env.api("/v1/messages"))
            .bearer_auth(&a.token)
            .header("Idempotency-Key", "send-1")
            .json(&json!({"from": a.number, "to": "+14155550152", "text": "once"}))
            .send()
    };
    let first: Value = post().await.unwrap().json().await.unwrap();
    let again = post().await.unwrap();
    assert_eq!(again.headers().get("idempotent-replayed").map(|v| v.to_str().unwrap()), Some("true"));
    let again: Value = again.json().await.unwrap();
    assert_eq!(first["id"], again["id"]);
    assert_eq!(message_count(&env.user_items(&a.uid).await), 1);
}
