//! Phone numbers on the local stack with the sandbox carrier: search, buy, active, assign, the
//! profile page, unassign, release, buy again; races, idempotency, failures and bad input.

use futures::future::join_all;
use patchbay_e2e::{eventually, parts, s, user, Parts, TestEnv};
use serde_json::{json, Value};

const PARTS: Parts = Parts { api: true, worker: true };

async fn get(env: &TestEnv, token: &str, path: &str) -> (u16, Value) {
    let (st, b, _) = parts(env.http.get(env.api(path)).bearer_auth(token).send().await.unwrap()).await;
    (st, b)
}

async fn buy(env: &TestEnv, token: &str, number: &str) -> (u16, Value) {
    let (st, b, _) =
        parts(env.http.post(env.api("/v1/phone-numbers")).bearer_auth(token).json(&json!({"phone_number": number})).send().await.unwrap())
            .await;
    (st, b)
}

async fn wait_number(env: &TestEnv, token: &str, number: &str, f: impl Fn(&Value) -> bool) -> Value {
    eventually(30, || async {
        let (st, b) = get(env, token, &format!("/v1/phone-numbers/{number}")).await;
        (st == 200 && f(&b)).then_some(b)
    })
    .await
    .unwrap_or_else(|| panic!("{number} never reached the expected state"))
}

/// A number of the sandbox inventory nobody else in this test binary uses.
fn fresh_number(area: &str, line: u32) -> String {
    format!("+1{area}5550{line}")
}

async fn owner_in_table(env: &TestEnv, number: &str) -> Option<String> {
    env.owner_in_table(number).await
}

#[tokio::test]
async fn search_buy_assign_unassign_release_and_buy_again() {
    let env = TestEnv::new(PARTS).await;
    let (uid, token) = user();
    let (st, found) = get(&env, &token, "/v1/available-phone-numbers?country=US&area_code=646&limit=5").await;
    assert_eq!(st, 200, "{found}");
    let numbers: Vec<&str> = found["data"].as_array().unwrap().iter().map(|n| n["phone_number"].as_str().unwrap()).collect();
    assert_eq!(numbers.len(), 5);
    assert!(numbers.iter().all(|n| n.starts_with("+1646555")));
    let number = numbers[0].to_owned();

    let (st, pending) = buy(&env, &token, &number).await;
    assert_eq!((st, pending["status"].as_str()), (202, Some("pending")), "{pending}");
    let active = wait_number(&env, &token, &number, |n| n["status"] == "active").await;
    assert_eq!(active["carrier"], "sandbox");
    assert_eq!(owner_in_table(&env, &number).await.as_deref(), Some(uid.as_str()));

    let (_, profile, _) =
        parts(env.http.post(env.api("/v1/messaging-profiles")).bearer_auth(&token).json(&json!({"name": "Sales"})).send().await.unwrap())
            .await;
    let pid = profile["id"].as_str().unwrap().to_owned();
    let assign_url = env.api(&format!("/v1/messaging-profiles/{pid}/phone-numbers/{number}"));
    let (st, assigned, _) = parts(env.http.put(&assign_url).bearer_auth(&token).send().await.unwrap()).await;
    assert_eq!((st, assigned["messaging_profile_id"].as_str()), (202, Some(pid.as_str())), "{assigned}");

    let (_, page) = get(&env, &token, &format!("/v1/messaging-profiles/{pid}")).await;
    assert_eq!(
        page["assigned_numbers"].as_array().unwrap().iter().map(|n| n["phone_number"].clone()).collect::<Vec<_>>(),
        vec![json!(number)]
    );
    assert_eq!(page["available_numbers"], json!([]));
    wait_number(&env, &token, &number, |n| n["profile_sync"] == "synced").await;

    // A profile with numbers on it cannot be deleted.
    let (st, problem, _) =
        parts(env.http.delete(env.api(&format!("/v1/messaging-profiles/{pid}"))).bearer_auth(&token).send().await.unwrap()).await;
    assert_eq!((st, problem["code"].as_str()), (409, Some("profile_has_numbers")));

    let (st, _, _) = parts(env.http.delete(&assign_url).bearer_auth(&token).send().await.unwrap()).await;
    assert_eq!(st, 202);
    let (_, page) = get(&env, &token, &format!("/v1/messaging-profiles/{pid}")).await;
    assert_eq!(page["assigned_numbers"], json!([]));
    assert_eq!(page["available_numbers"].as_array().unwrap().len(), 1, "{page}");

    let (st, releasing, _) =
        parts(env.http.delete(env.api(&format!("/v1/phone-numbers/{number}"))).bearer_auth(&token).send().await.unwrap()).await;
    assert_eq!((st, releasing["status"].as_str()), (202, Some("releasing")));
    eventually(30, || async { (get(&env, &token, &format!("/v1/phone-numbers/{number}")).await.0 == 404).then_some(()) })
        .await
        .expect("released");
    assert_eq!(owner_in_table(&env, &number).await, None, "the owner guard is gone");

    // Free again: someone else can buy it.
    let (_, other) = user();
    assert_eq!(buy(&env, &other, &number).await.0, 202);
    wait_number(&env, &other, &number, |n| n["status"] == "active").await;
    // And the profile, now empty, can be deleted.
    let (st, _, _) =
        parts(env.http.delete(env.api(&format!("/v1/messaging-profiles/{pid}"))).bearer_auth(&token).send().await.unwrap()).await;
    assert_eq!(st, 202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn users_racing_for_one_number_get_one_owner() {
    let env = TestEnv::new(PARTS).await;
    for round in 0..5 {
        let number = fresh_number("917", 100 + round);
        let users: Vec<(String, String)> = (0..8).map(|_| user()).collect();
        let results = join_all(users.iter().map(|(_, t)| buy(&env, t, &number))).await;
        let winners: Vec<usize> = results.iter().enumerate().filter(|(_, r)| r.0 == 202).map(|(i, _)| i).collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        for (i, (st, body)) in results.iter().enumerate() {
            if i != winners[0] {
                assert_eq!((*st, body["code"].as_str()), (409, Some("number_unavailable")), "{body}");
                assert!(env.user_items(&users[i].0).await.is_empty(), "a loser stored nothing");
            }
        }
        assert_eq!(owner_in_table(&env, &number).await.as_deref(), Some(users[winners[0]].0.as_str()));
        // The owner buying it again within minutes is a retry of the first buy (its answer lost):
        // answered with it. Later, the owner is told it is theirs already.
        let owner = &users[winners[0]];
        env.until(&owner.1, &format!("/v1/phone-numbers/{number}"), |n| n["status"] == "active").await;
        let (st, body) = buy(&env, &owner.1, &number).await;
        assert_eq!((st, body["status"].as_str()), (202, Some("active")), "{body}");
        let long_ago = patchbay_adapters::wire::rfc3339(time::OffsetDateTime::now_utc() - time::Duration::minutes(10));
        env.dynamo
            .update_item()
            .table_name(&env.shared.info.table)
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("USER#{}", owner.0)))
            .key("sk", aws_sdk_dynamodb::types::AttributeValue::S(format!("NUMBER#{number}")))
            .update_expression("SET created_at = :t")
            .expression_attribute_values(":t", aws_sdk_dynamodb::types::AttributeValue::S(long_ago))
            .send()
            .await
            .unwrap();
        let (st, body) = buy(&env, &owner.1, &number).await;
        assert_eq!((st, body["code"].as_str()), (409, Some("number_already_owned")));
    }
}

#[tokio::test]
async fn a_retried_buy_with_the_same_key_is_one_purchase() {
    let env = TestEnv::new(PARTS).await;
    let (uid, token) = user();
    let number = fresh_number("718", 120);
    let send = |n: &str| {
        env.http
            .post(env.api("/v1/phone-numbers"))
            .bearer_auth(&token)
            .header("Idempotency-Key", "buy-1")
            .json(&json!({"phone_number": n}))
            .send()
    };
    let first = send(&number).await.unwrap();
    assert_eq!(first.status(), 202);
    let again = send(&number).await.unwrap();
    assert_eq!((again.status().as_u16(), again.headers().get("idempotent-replayed").is_some()), (202, true));
    let (st, body, _) = parts(send(&fresh_number("718", 121)).await.unwrap()).await;
    assert_eq!((st, body["code"].as_str()), (409, Some("idempotency_key_reused")));
    let numbers: Vec<_> = env.user_items(&uid).await.into_iter().filter(|i| s(i, "sk").starts_with("NUMBER#")).collect();
    assert_eq!(numbers.len(), 1);
}

#[tokio::test]
async fn a_refused_purchase_is_failed_with_the_reason_and_frees_the_number() {
    let env = TestEnv::new(PARTS).await;
    let (_, token) = user();
    let number = fresh_number("347", 150); // the sandbox refuses 0150-0199 like Twilio's 21422
    assert_eq!(buy(&env, &token, &number).await.0, 202);
    let failed = wait_number(&env, &token, &number, |n| n["status"] == "failed").await;
    assert_eq!(failed["failure"]["code"], "21422");
    assert_eq!(owner_in_table(&env, &number).await, None, "the guard was freed with the failure");
    // The failed record can be cleared, and the number tried again.
    let (st, _, _) =
        parts(env.http.delete(env.api(&format!("/v1/phone-numbers/{number}"))).bearer_auth(&token).send().await.unwrap()).await;
    assert_eq!(st, 204);
    assert_eq!(buy(&env, &token, &number).await.0, 202);
}

#[tokio::test]
async fn numbers_are_private_and_checked() {
    let env = TestEnv::new(PARTS).await;
    let (_, a) = user();
    let (_, b) = user();
    let number = fresh_number("212", 130);
    assert_eq!(buy(&env, &a, &number).await.0, 202);
    wait_number(&env, &a, &number, |n| n["status"] == "active").await;
    assert_eq!(get(&env, &b, &format!("/v1/phone-numbers/{number}")).await.0, 404);
    assert_eq!(parts(env.http.delete(env.api(&format!("/v1/phone-numbers/{number}"))).bearer_auth(&b).send().await.unwrap()).await.0, 404);
    assert_eq!(get(&env, &b, "/v1/phone-numbers").await.1["data"], json!([]));
    // B cannot put A's number on B's profile, nor A's number on A's profile from B's account.
    let (_, bp, _) =
        parts(env.http.post(env.api("/v1/messaging-profiles")).bearer_auth(&b).json(&json!({"name": "B"})).send().await.unwrap()).await;
    let bp = bp["id"].as_str().unwrap();
    let (st, _, _) =
        parts(env.http.put(env.api(&format!("/v1/messaging-profiles/{bp}/phone-numbers/{number}"))).bearer_auth(&b).send().await.unwrap())
            .await;
    assert_eq!(st, 404);
    let (_, ap, _) =
        parts(env.http.post(env.api("/v1/messaging-profiles")).bearer_auth(&a).json(&json!({"name": "A"})).send().await.unwrap()).await;
    let ap = ap["id"].as_str().unwrap();
    let (st, _, _) =
        parts(env.http.put(env.api(&format!("/v1/messaging-profiles/{bp}/phone-numbers/{number}"))).bearer_auth(&a).send().await.unwrap())
            .await;
    assert_eq!(st, 404, "A cannot use B's profile");
    // On one profile at most.
    let (st, _, _) =
        parts(env.http.put(env.api(&format!("/v1/messaging-profiles/{ap}/phone-numbers/{number}"))).bearer_auth(&a).send().await.unwrap())
            .await;
    assert_eq!(st, 202);
    let (_, ap2, _) =
        parts(env.http.post(env.api("/v1/messaging-profiles")).bearer_auth(&a).json(&json!({"name": "A2"})).send().await.unwrap()).await;
    let ap2 = ap2["id"].as_str().unwrap();
    let (st, body, _) =
        parts(env.http.put(env.api(&format!("/v1/messaging-profiles/{ap2}/phone-numbers/{number}"))).bearer_auth(&a).send().await.unwrap())
            .await;
    assert_eq!((st, body["code"].as_str()), (409, Some("number_on_another_profile")));
    let (st, body, _) = parts(
        env.http.delete(env.api(&format!("/v1/messaging-profiles/{ap2}/phone-numbers/{number}"))).bearer_auth(&a).send().await.unwrap(),
    )
    .await;
    assert_eq!((st, body["code"].as_str()), (409, Some("number_not_on_profile")));
}

#[tokio::test]
async fn bad_number_requests_name_the_field() {
    let env = TestEnv::new(PARTS).await;
    let (uid, token) = user();
    for (path, field) in [
        ("/v1/available-phone-numbers?country=US&area_code=012", "area_code"),
        ("/v1/available-phone-numbers?country=US&area_code=21", "area_code"),
        ("/v1/available-phone-numbers?country=usa", "country"),
        ("/v1/available-phone-numbers?country=US&limit=51", "limit"),
        ("/v1/available-phone-numbers?carrier=verizon", "carrier"),
        ("/v1/phone-numbers/12125550123", "e164"),
        ("/v1/phone-numbers?cursor=bm9wZQ", "cursor"),
    ] {
        let (st, body) = get(&env, &token, path).await;
        assert_eq!((st, body["field"].as_str()), (400, Some(field)), "{path}: {body}");
    }
    for (body, status, field) in [
        (json!({"phone_number": "2125550123"}), 422, "phone_number"),
        (json!({"phone_number": "+12125550123", "carrier": "verizon"}), 422, "carrier"),
        (json!({"phone_number": "+12125550123", "carrier": "twilio"}), 422, "carrier"),
        (json!({"number": "+12125550123"}), 422, "number"),
    ] {
        let (st, problem, _) =
            parts(env.http.post(env.api("/v1/phone-numbers")).bearer_auth(&token).json(&body).send().await.unwrap()).await;
        assert_eq!((st, problem["field"].as_str()), (status, Some(field)), "{body}: {problem}");
    }
    assert_eq!(get(&env, &token, "/v1/phone-numbers/+12125550199").await.0, 404);
    assert!(env.user_items(&uid).await.is_empty());
}

/// Racing assignments: one number wanted by several profiles at once ends on exactly one, and a
/// profile deleted while numbers are being put on it never ends `deleting` with a number on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn assignments_race_to_one_profile_and_never_onto_a_deleted_one() {
    let env = TestEnv::new(PARTS).await;
    let (uid, token) = user();
    let numbers: Vec<String> = (0..3).map(|i| fresh_number("332", 100 + i)).collect();
    for n in &numbers {
        assert_eq!(buy(&env, &token, n).await.0, 202);
        wait_number(&env, &token, n, |v| v["status"] == "active").await;
    }
    let mut profiles = Vec::new();
    for i in 0..4 {
        let (_, p, _) = parts(
            env.http
                .post(env.api("/v1/messaging-profiles"))
                .bearer_auth(&token)
                .json(&json!({"name": format!("r{i}")}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        profiles.push(p["id"].as_str().unwrap().to_owned());
    }
    // Four profiles want numbers[0] at once: one wins, the rest are told it is taken.
    let url = |p: &str, n: &str| env.api(&format!("/v1/messaging-profiles/{p}/phone-numbers/{n}"));
    let results = join_all(profiles.iter().map(|p| env.http.put(url(p, &numbers[0])).bearer_auth(&token).send())).await;
    let statuses: Vec<u16> = results.into_iter().map(|r| r.unwrap().status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 202).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 202 || *s == 409), "{statuses:?}");

    // Numbers[1] and [2] go onto profiles[3] while profiles[3] is deleted.
    let victim = &profiles[3];
    let reqs = vec![
        env.http.put(url(victim, &numbers[1])).bearer_auth(&token).send(),
        env.http.delete(env.api(&format!("/v1/messaging-profiles/{victim}"))).bearer_auth(&token).send(),
        env.http.put(url(victim, &numbers[2])).bearer_auth(&token).send(),
    ];
    for r in join_all(reqs).await {
        let st = r.unwrap().status().as_u16();
        assert!([202, 404, 409].contains(&st), "{st}");
    }
    let items = env.user_items(&uid).await;
    let on_victim = items.iter().filter(|i| s(i, "sk").starts_with("NUMBER#") && s(i, "messaging_profile_id") == *victim).count();
    match items.iter().find(|i| s(i, "sk") == format!("PROFILE#{victim}")) {
        // Already purged by the worker: it was deleted, so nothing may point at it.
        None => assert_eq!(on_victim, 0, "no number on a deleted profile"),
        Some(victim_item) => {
            assert_eq!(s(victim_item, "assigned_count").parse::<usize>().unwrap_or(0), on_victim, "the count moved with the numbers");
            if s(victim_item, "sync_state") == "deleting" {
                assert_eq!(on_victim, 0, "no number on a deleting profile");
            }
        }
    }
}
