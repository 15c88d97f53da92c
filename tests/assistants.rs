//! Voice-AI assistants end to end on the local stack (sandbox carrier and sandbox voice AI, fault
//! layer on): an assistant made with a selected number (reserved, bought, attached), a second number
//! connected and disconnected, the delete keeping its numbers; the failure paths; one place for a
//! number's calls (assistant or SIP connection); two users racing for one selected number; bad input.

use patchbay_e2e::{user, Parts, TestEnv};
use reqwest::Method;
use serde_json::{json, Value};

const PARTS: Parts = Parts { api: true, worker: true };

async fn create(env: &TestEnv, token: &str, body: Value) -> (u16, Value) {
    let res = env
        .http
        .post(env.api("/v1/assistants"))
        .bearer_auth(token)
        .header("idempotency-key", uuid::Uuid::new_v4().to_string())
        .json(&body)
        .send()
        .await
        .unwrap();
    let (st, b, _) = patchbay_e2e::parts(res).await;
    (st, b)
}

async fn buy(env: &TestEnv, token: &str, number: &str) {
    let (st, b) = env.call(token, Method::POST, "/v1/phone-numbers", Some(json!({"phone_number": number}))).await;
    assert_eq!(st, 202, "{b}");
    env.until(token, &format!("/v1/phone-numbers/{number}"), |b| b["status"] == "active").await;
}

#[tokio::test]
async fn an_assistant_with_a_picked_number_goes_active_and_its_numbers_connect_and_stay() {
    let env = TestEnv::new(PARTS).await;
    let (uid, token) = user();
    // Search by area code while filling in the form; pick one without buying it.
    let (st, found) = env.call(&token, Method::GET, "/v1/available-phone-numbers?country=US&area_code=404&limit=5", None).await;
    assert_eq!(st, 200, "{found}");
    let picked = found["data"][0]["phone_number"].as_str().unwrap().to_owned();
    assert_eq!(env.owner_in_table(&picked).await, None, "nothing bought by the search");

    let (st, a) = create(
        &env,
        &token,
        json!({"name": "Front desk", "first_message": "Hello!", "system_prompt": "Be brief.", "model": {"provider": "openai", "model": "gpt-4o"},
               "voice": {"provider": "11labs", "voice_id": "burt"}, "selected_phone_number": picked}),
    )
    .await;
    assert_eq!((st, a["status"].as_str(), a["phone_number"].as_str()), (202, Some("pending"), Some(picked.as_str())), "{a}");
    // Reserved at once, with the same guard a purchase takes.
    assert_eq!(env.owner_in_table(&picked).await.as_deref(), Some(uid.as_str()));
    let id = a["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/assistants/{id}");
    let active = env.until(&token, &path, |b| b["status"] == "active").await;
    assert!(active["vapi_assistant_id"].as_str().unwrap().starts_with("sbx-asst-"), "{active}");
    assert_eq!(active["phone_number_sync"], "synced", "{active}");
    let (_, n) = env.call(&token, Method::GET, &format!("/v1/phone-numbers/{picked}"), None).await;
    assert_eq!(
        (n["status"].as_str(), n["assistant_id"].as_str(), n["assistant_sync"].as_str()),
        (Some("active"), Some(id.as_str()), Some("synced")),
        "{n}"
    );

    // A second number, connected, then disconnected.
    let second = "+14045550111";
    buy(&env, &token, second).await;
    let (st, b) = env.call(&token, Method::PATCH, &format!("/v1/phone-numbers/{second}"), Some(json!({"assistant_id": id}))).await;
    assert_eq!((st, b["assistant_id"].as_str()), (202, Some(id.as_str())), "{b}");
    env.until(&token, &format!("/v1/phone-numbers/{second}"), |b| b["assistant_sync"] == "synced").await;
    let shown = env.until(&token, &path, |b| b["phone_numbers"].as_array().unwrap().len() == 2).await;
    assert_eq!(shown["phone_numbers"].as_array().unwrap().len(), 2);
    // The list of numbers shows each one's assistant in one call.
    let (_, list) = env.call(&token, Method::GET, "/v1/phone-numbers", None).await;
    assert!(list["data"].as_array().unwrap().iter().all(|n| n["assistant_id"] == id.as_str()), "{list}");

    // One place for a number's calls: a number on an assistant cannot join a SIP connection, and back.
    let (st, conn) = env.call(&token, Method::POST, "/v1/sip-connections", Some(json!({"name": "Desk phones"}))).await;
    assert_eq!(st, 202, "{conn}");
    let conn_id = conn["id"].as_str().unwrap().to_owned();
    let (st, b) = env
        .call(&token, Method::PUT, &format!("/v1/sip-connections/{conn_id}/phone-numbers/{second}"), Some(json!({"role": "primary"})))
        .await;
    assert_eq!((st, b["code"].as_str()), (409, Some("number_voice_in_use")), "{b}");

    let (st, b) = env.call(&token, Method::PATCH, &format!("/v1/phone-numbers/{second}"), Some(json!({"assistant_id": null}))).await;
    assert_eq!((st, &b["assistant_id"]), (202, &Value::Null), "{b}");
    env.until(&token, &format!("/v1/phone-numbers/{second}"), |b| b["assistant_sync"] == "synced").await;
    let (st, b) = env
        .call(&token, Method::PUT, &format!("/v1/sip-connections/{conn_id}/phone-numbers/{second}"), Some(json!({"role": "primary"})))
        .await;
    assert_eq!(st, 202, "{b}");
    let (st, b) = env.call(&token, Method::PATCH, &format!("/v1/phone-numbers/{second}"), Some(json!({"assistant_id": id}))).await;
    assert_eq!((st, b["code"].as_str()), (409, Some("number_voice_in_use")), "{b}");

    // Settings change, synced to Vapi.
    let (st, b) = env.call(&token, Method::PATCH, &path, Some(json!({"first_message": "Hi there"}))).await;
    assert_eq!((st, b["sync_state"].as_str()), (202, Some("pending")), "{b}");
    env.until(&token, &path, |b| b["sync_state"] == "synced" && b["first_message"] == "Hi there").await;

    // Delete: the assistant goes, its number stays owned, active and disconnected.
    let (st, b) = env.call(&token, Method::DELETE, &path, None).await;
    assert_eq!((st, b["status"].as_str()), (202, Some("deleting")), "{b}");
    patchbay_e2e::eventually(30, || async { (env.call(&token, Method::GET, &path, None).await.0 == 404).then_some(()) })
        .await
        .expect("the assistant is gone");
    let (_, n) = env.call(&token, Method::GET, &format!("/v1/phone-numbers/{picked}"), None).await;
    assert_eq!((n["status"].as_str(), &n["assistant_id"]), (Some("active"), &Value::Null), "{n}");
    assert_eq!(env.owner_in_table(&picked).await.as_deref(), Some(uid.as_str()));
}

#[tokio::test]
async fn a_refused_purchase_or_assistant_fails_the_saga_and_frees_the_number() {
    let env = TestEnv::new(PARTS).await;
    let (_, token) = user();
    // The sandbox refuses 0150–0199 at purchase (Twilio's 21422): failed, reservation freed, no assistant.
    let refused = "+16175550150";
    let (st, a) = create(&env, &token, json!({"name": "Never", "selected_phone_number": refused})).await;
    assert_eq!(st, 202, "{a}");
    let failed = env.until(&token, &format!("/v1/assistants/{}", a["id"].as_str().unwrap()), |b| b["status"] == "failed").await;
    assert_eq!(failed["failure"]["code"], "21422", "{failed}");
    assert_eq!(failed["vapi_assistant_id"], Value::Null);
    assert_eq!(env.owner_in_table(refused).await, None, "the reservation is freed");

    // The voice AI refuses the assistant: the bought number is released (compensation).
    let bought = "+16175550121";
    let (st, a) = create(&env, &token, json!({"name": "sandbox-reject me", "selected_phone_number": bought})).await;
    assert_eq!(st, 202, "{a}");
    let failed = env.until(&token, &format!("/v1/assistants/{}", a["id"].as_str().unwrap()), |b| b["status"] == "failed").await;
    assert_eq!(failed["failure"]["code"], "vapi_400", "{failed}");
    patchbay_e2e::eventually(30, || async { env.owner_in_table(bought).await.is_none().then_some(()) })
        .await
        .expect("the number bought for it is released");
}

#[tokio::test]
async fn two_users_picking_one_number_one_reserves_it_the_other_stores_nothing() {
    let env = TestEnv::new(PARTS).await;
    for round in 0..5 {
        let number = format!("+17025550{}", 120 + round);
        let (a_uid, a) = user();
        let (b_uid, b) = user();
        let body = |name: &str| json!({"name": name, "selected_phone_number": number});
        let (x, y) = futures::join!(create(&env, &a, body("A")), create(&env, &b, body("B")));
        let mut answers = [(x.0, x.1["code"].clone(), a_uid), (y.0, y.1["code"].clone(), b_uid)];
        answers.sort_by_key(|(s, _, _)| *s);
        assert_eq!((answers[0].0, answers[1].0, &answers[1].1), (202, 409, &json!("number_unavailable")), "round {round}: {answers:?}");
        let loser = &answers[1].2;
        assert!(env.user_items(loser).await.is_empty(), "round {round}: the loser stored nothing");
        assert_eq!(env.owner_in_table(&number).await.as_deref(), Some(answers[0].2.as_str()));
    }
}

#[tokio::test]
async fn bad_input_and_foreign_ids_are_4xx_naming_the_field_and_reserve_nothing() {
    let env = TestEnv::new(PARTS).await;
    let (uid, token) = user();
    let (_, stranger) = user();
    for (body, field) in [
        (json!({"name": "x".repeat(41)}), "name"),
        (json!({"name": "ok", "carrier": "pigeon"}), "carrier"),
        (json!({"name": "ok", "selected_phone_number": "12345"}), "selected_phone_number"),
        (json!({"name": "ok", "model": {"provider": "", "model": "gpt-4o"}}), "model.provider"),
        (json!({"name": "ok", "voice": {"provider": "11labs", "voice_id": ""}}), "voice.voice_id"),
    ] {
        let (st, b) = create(&env, &token, body.clone()).await;
        assert_eq!((st, b["field"].as_str()), (422, Some(field)), "{body}: {b}");
    }
    assert!(env.user_items(&uid).await.iter().all(|i| !patchbay_e2e::s(i, "sk").starts_with("ASSISTANT#")), "nothing stored");
    // Another user's assistant does not exist for them, on every route, nor as a number's target.
    let (st, a) = create(&env, &token, json!({"name": "Mine"})).await;
    assert_eq!(st, 202, "{a}");
    let id = a["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/assistants/{id}");
    env.until(&token, &path, |b| b["status"] == "active").await;
    for (method, body) in [(Method::GET, None), (Method::PATCH, Some(json!({"name": "theirs"}))), (Method::DELETE, None)] {
        let (st, b) = env.call(&stranger, method.clone(), &path, body).await;
        assert_eq!(st, 404, "{method}: {b}");
    }
    buy(&env, &stranger, "+19175550131").await;
    let (st, b) = env.call(&stranger, Method::PATCH, "/v1/phone-numbers/+19175550131", Some(json!({"assistant_id": id}))).await;
    assert_eq!(st, 404, "{b}");
    let (st, b) = env.call(&stranger, Method::PATCH, "/v1/phone-numbers/+19175550131", Some(json!({"assistant_id": "nope"}))).await;
    assert_eq!((st, b["field"].as_str()), (422, Some("assistant_id")), "{b}");
    let (st, b) = env.call(&stranger, Method::PATCH, "/v1/phone-numbers/+19175550131", Some(json!({}))).await;
    assert_eq!((st, b["field"].as_str()), (422, Some("assistant_id")), "{b}");
    // An unknown field is named, whatever else the body holds.
    let body = json!({"assistant_id": null, "colour": "red"});
    let (st, b) = env.call(&stranger, Method::PATCH, "/v1/phone-numbers/+19175550131", Some(body)).await;
    assert_eq!((st, b["field"].as_str(), b["code"].as_str()), (422, Some("colour"), Some("unknown_field")), "{b}");
    let (st, b) = env.call(&stranger, Method::PATCH, "/v1/phone-numbers/+19175550131", Some(json!({"assistant_id": 7}))).await;
    assert_eq!((st, b["field"].as_str()), (422, Some("assistant_id")), "{b}");
    let (st, b) = env.call(&token, Method::GET, "/v1/assistants/not-an-id", None).await;
    assert_eq!((st, b["field"].as_str()), (400, Some("id")), "{b}");
}

#[tokio::test]
async fn a_number_raced_onto_an_assistant_and_a_sip_connection_ends_on_exactly_one() {
    let env = TestEnv::new(PARTS).await;
    let (_, token) = user();
    let (st, a) = create(&env, &token, json!({"name": "Racer"})).await;
    assert_eq!(st, 202, "{a}");
    let id = a["id"].as_str().unwrap().to_owned();
    env.until(&token, &format!("/v1/assistants/{id}"), |b| b["status"] == "active").await;
    let (st, conn) = env.call(&token, Method::POST, "/v1/sip-connections", Some(json!({"name": "Race phones"}))).await;
    assert_eq!(st, 202, "{conn}");
    let conn_id = conn["id"].as_str().unwrap().to_owned();
    let number = "+15035550141";
    buy(&env, &token, number).await;
    let (to_assistant, to_connection) =
        (format!("/v1/phone-numbers/{number}"), format!("/v1/sip-connections/{conn_id}/phone-numbers/{number}"));
    for round in 0..5 {
        let (x, y) = futures::join!(
            env.call(&token, Method::PATCH, &to_assistant, Some(json!({"assistant_id": id}))),
            env.call(&token, Method::PUT, &to_connection, Some(json!({"role": "primary"}))),
        );
        assert_eq!([x.0, y.0].iter().filter(|s| **s == 202).count(), 1, "round {round}: {x:?} {y:?}");
        let loser = if x.0 == 202 { &y } else { &x };
        assert_eq!((loser.0, loser.1["code"].as_str()), (409, Some("number_voice_in_use")), "round {round}: {loser:?}");
        // Back to neither for the next round.
        let (st, b) = if x.0 == 202 {
            env.call(&token, Method::PATCH, &to_assistant, Some(json!({"assistant_id": null}))).await
        } else {
            env.call(&token, Method::DELETE, &to_connection, None).await
        };
        assert_eq!(st, 202, "{b}");
    }
}
