//! One active profile per user, under concurrent activations through the HTTP API.
//!
//! Each round fires 50 activations at once across 5 profiles of one user. After every round the table
//! must hold exactly one active profile, the per-user pointer must name that same profile, and a
//! request that activated it must have answered 200. Losers answer 200 (their activation committed
//! and was later superseded) or 409 (they lost the race more often than the store retries): never
//! anything else.

use futures::future::join_all;
use patchbay_e2e::{parts, user, Parts, TestEnv};
use serde_json::json;

const PARTS: Parts = Parts { api: true, worker: false };
const ROUNDS: usize = 10;
const PROFILES: usize = 5;
const CONCURRENT: usize = 50;

async fn create(env: &TestEnv, token: &str, name: &str) -> String {
    let res = env.http.post(env.api("/v1/messaging-profiles")).bearer_auth(token).json(&json!({"name": name})).send().await.unwrap();
    let (status, body, _) = parts(res).await;
    assert_eq!(status, 202, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_activations_leave_exactly_one_active_profile() {
    let env = TestEnv::new(PARTS).await;
    let (uid, token) = user();
    let mut ids = Vec::new();
    for i in 0..PROFILES {
        ids.push(create(&env, &token, &format!("profile {i}")).await);
    }

    let mut conflicts = 0;
    for round in 0..ROUNDS {
        let requests = (0..CONCURRENT).map(|i| {
            let target = ids[(i + round) % PROFILES].clone();
            let url = env.api(&format!("/v1/messaging-profiles/{target}/activate"));
            let req = env.http.post(url).bearer_auth(&token);
            async move {
                let (status, body, _) = parts(req.send().await.unwrap()).await;
                (target, status, body)
            }
        });
        let results = join_all(requests).await;

        for (target, status, body) in &results {
            assert!(*status == 200 || *status == 409, "activation of {target} answered {status}: {body}");
            if *status == 409 {
                assert_eq!(body["code"], "activation_conflict", "{body}");
                conflicts += 1;
            } else {
                assert_eq!(body["active_profile"]["id"], target.as_str());
                assert_eq!(body["active_profile"]["active"], true);
            }
        }

        let table = env.table_profiles(&uid).await;
        let active: Vec<&String> = table.iter().filter(|p| p.1).map(|p| &p.0).collect();
        assert_eq!(active.len(), 1, "round {round}: exactly one active profile, found {active:?}");
        let pointer = env.table_pointer(&uid).await;
        assert_eq!(pointer.as_ref(), Some(active[0]), "round {round}: the pointer names the active profile");
        assert!(
            results.iter().any(|(t, s, _)| t == active[0] && *s == 200),
            "round {round}: the active profile {} had a successful activation",
            active[0]
        );
        // The API agrees with the table.
        let (_, list, _) = parts(env.http.get(env.api("/v1/messaging-profiles")).bearer_auth(&token).send().await.unwrap()).await;
        let api_active: Vec<&str> =
            list["data"].as_array().unwrap().iter().filter(|p| p["active"] == true).map(|p| p["id"].as_str().unwrap()).collect();
        assert_eq!(api_active, vec![active[0].as_str()]);
    }
    eprintln!("{ROUNDS} rounds x {CONCURRENT} concurrent activations: {conflicts} answered 409 after retries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deletes_racing_activations_never_leave_a_deleting_profile_active() {
    let env = TestEnv::new(PARTS).await;
    let (uid, token) = user();
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(create(&env, &token, &format!("p{i}")).await);
    }
    // Activations of all four race the deletion of two of them.
    let mut reqs = Vec::new();
    for i in 0..24 {
        let id = ids[i % 4].clone();
        reqs.push(env.http.post(env.api(&format!("/v1/messaging-profiles/{id}/activate"))).bearer_auth(&token));
        if i % 12 == 5 {
            let victim = ids[i / 12].clone();
            reqs.push(env.http.delete(env.api(&format!("/v1/messaging-profiles/{victim}"))).bearer_auth(&token));
        }
    }
    let results = join_all(reqs.into_iter().map(|r| async move { parts(r.send().await.unwrap()).await })).await;
    for (status, body, _) in &results {
        assert!([200, 202, 409].contains(status), "{status}: {body}");
    }
    let table = env.table_profiles(&uid).await;
    let active: Vec<_> = table.iter().filter(|p| p.1).collect();
    assert!(active.len() <= 1, "at most one active: {table:?}");
    for (id, is_active, state) in &table {
        assert!(!(*is_active && state == "deleting"), "{id} is active and deleting");
    }
    let pointer = env.table_pointer(&uid).await;
    assert_eq!(pointer.as_ref(), active.first().map(|p| &p.0), "pointer and flags agree: {table:?}");
}
