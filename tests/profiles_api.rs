//! The messaging profile API on the local stack (API + worker with the sandbox carrier), as a client
//! sees it, with the table checked where the promise is about state.

use patchbay_e2e::{eventually, parts, user, Parts, TestEnv};
use serde_json::{json, Value};

const PARTS: Parts = Parts { api: true, worker: true };

async fn create(env: &TestEnv, token: &str, body: Value) -> (u16, Value) {
    let res = env.http.post(env.api("/v1/messaging-profiles")).bearer_auth(token).json(&body).send().await.unwrap();
    let (s, b, _) = parts(res).await;
    (s, b)
}

async fn show(env: &TestEnv, token: &str, id: &str) -> (u16, Value) {
    let (s, b, _) = parts(env.http.get(env.api(&format!("/v1/messaging-profiles/{id}"))).bearer_auth(token).send().await.unwrap()).await;
    (s, b)
}

async fn wait_for_state(env: &TestEnv, token: &str, id: &str, state: &str) -> Value {
    eventually(30, || async {
        let (s, b) = show(env, token, id).await;
        (s == 200 && b["sync_state"] == state).then_some(b)
    })
    .await
    .unwrap_or_else(|| panic!("profile {id} never reached {state}"))
}

#[tokio::test]
async fn healthz_answers_without_a_token() {
    let env = TestEnv::new(PARTS).await;
    let (s, b, _) = parts(env.http.get(env.api("/healthz")).send().await.unwrap()).await;
    assert_eq!((s, b), (200, json!({"status": "ok"})));
}

#[tokio::test]
async fn profile_lifecycle_is_mirrored_to_the_carrier() {
    let env = TestEnv::new(PARTS).await;
    let (uid, token) = user();
    let (s, created) = create(&env, &token, json!({"name": "  Support  ", "whitelisted_destinations": ["US", "CA"]})).await;
    assert_eq!(s, 202, "{created}");
    assert_eq!(created["name"], "Support");
    assert_eq!(created["sync_state"], "pending");
    assert_eq!(created["active"], false);
    let id = created["id"].as_str().unwrap().to_owned();

    let synced = wait_for_state(&env, &token, &id, "synced").await;
    assert!(synced["carrier_profile_id"].as_str().unwrap().starts_with("sbx-"));
    let carrier_id = synced["carrier_profile_id"].clone();

    let res = env
        .http
        .patch(env.api(&format!("/v1/messaging-profiles/{id}")))
        .bearer_auth(&token)
        .json(&json!({"name": "Help desk"}))
        .send()
        .await
        .unwrap();
    let (s, renamed, _) = parts(res).await;
    assert_eq!((s, renamed["name"].as_str(), renamed["sync_state"].as_str()), (202, Some("Help desk"), Some("pending")));
    assert_eq!(renamed["whitelisted_destinations"], json!(["US", "CA"]), "a rename keeps the other settings");
    let synced = wait_for_state(&env, &token, &id, "synced").await;
    assert_eq!(synced["carrier_profile_id"], carrier_id, "an update reuses the carrier's profile");

    let (s, deleting, _) =
        parts(env.http.delete(env.api(&format!("/v1/messaging-profiles/{id}"))).bearer_auth(&token).send().await.unwrap()).await;
    assert_eq!((s, deleting["sync_state"].as_str()), (202, Some("deleting")));
    eventually(30, || async { (show(&env, &token, &id).await.0 == 404).then_some(()) })
        .await
        .expect("the profile is purged once the carrier's copy is gone");
    assert!(env.table_profiles(&uid).await.is_empty());
    let (_, list, _) = parts(env.http.get(env.api("/v1/messaging-profiles")).bearer_auth(&token).send().await.unwrap()).await;
    assert_eq!(list, json!({"data": [], "next_cursor": null}));
}

#[tokio::test]
async fn a_carrier_refusal_is_recorded_on_the_profile() {
    let env = TestEnv::new(PARTS).await;
    let (_, token) = user();
    let (_, created) = create(&env, &token, json!({"name": "sandbox-reject me"})).await;
    let failed = wait_for_state(&env, &token, created["id"].as_str().unwrap(), "failed").await;
    assert_eq!(failed["sync_error"]["code"], "10015");
    assert!(failed["carrier_profile_id"].is_null());
}

#[tokio::test]
async fn activation_through_the_api_names_what_it_deactivated() {
    let env = TestEnv::new(PARTS).await;
    let (uid, token) = user();
    let a = create(&env, &token, json!({"name": "A"})).await.1["id"].as_str().unwrap().to_owned();
    let b = create(&env, &token, json!({"name": "B"})).await.1["id"].as_str().unwrap().to_owned();
    let activate = |id: &str| env.http.post(env.api(&format!("/v1/messaging-profiles/{id}/activate"))).bearer_auth(&token).send();
    let (s, first, _) = parts(activate(&a).await.unwrap()).await;
    assert_eq!((s, &first["deactivated_profile_id"]), (200, &Value::Null));
    let (s, second, _) = parts(activate(&b).await.unwrap()).await;
    assert_eq!((s, second["deactivated_profile_id"].as_str()), (200, Some(a.as_str())));
    assert_eq!(show(&env, &token, &a).await.1["active"], false);
    assert_eq!(show(&env, &token, &b).await.1["active"], true);

    // Deleting the active profile leaves the user with none.
    let (s, _, _) = parts(env.http.delete(env.api(&format!("/v1/messaging-profiles/{b}"))).bearer_auth(&token).send().await.unwrap()).await;
    assert_eq!(s, 202);
    assert_eq!(env.table_pointer(&uid).await, None);
    assert!(env.table_profiles(&uid).await.iter().all(|p| !p.1), "no profile is active");
    let (s, body, _) = parts(activate(&b).await.unwrap()).await;
    assert!(s == 409 || s == 404, "{s} {body}");
}

#[tokio::test]
async fn another_users_profile_is_404_for_every_verb_and_stays_untouched() {
    let env = TestEnv::new(PARTS).await;
    let (a_uid, a) = user();
    let (_, b) = user();
    let id = create(&env, &a, json!({"name": "Mine"})).await.1["id"].as_str().unwrap().to_owned();
    let url = env.api(&format!("/v1/messaging-profiles/{id}"));
    let attempts = [
        env.http.get(&url).bearer_auth(&b),
        env.http.patch(&url).bearer_auth(&b).json(&json!({"name": "Theirs"})),
        env.http.delete(&url).bearer_auth(&b),
        env.http.post(format!("{url}/activate")).bearer_auth(&b),
    ];
    for req in attempts {
        let (s, body, ct) = parts(req.send().await.unwrap()).await;
        assert_eq!((s, body["code"].as_str(), ct.as_str()), (404, Some("not_found"), "application/problem+json"), "{body}");
    }
    let (_, list, _) = parts(env.http.get(env.api("/v1/messaging-profiles")).bearer_auth(&b).send().await.unwrap()).await;
    assert_eq!(list["data"], json!([]));
    let mine = env.table_profiles(&a_uid).await;
    assert_eq!(mine.len(), 1);
    assert_eq!((mine[0].1, mine[0].2 != "deleting"), (false, true), "not activated, not deleted: {mine:?}");
    assert_eq!(show(&env, &a, &id).await.1["name"], "Mine");
}

#[tokio::test]
async fn idempotency_key_replays_the_first_create() {
    let env = TestEnv::new(PARTS).await;
    let (uid, token) = user();
    let send = |body: Value| {
        env.http.post(env.api("/v1/messaging-profiles")).bearer_auth(&token).header("Idempotency-Key", "k-123").json(&body).send()
    };
    let first = send(json!({"name": "Once"})).await.unwrap();
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.unwrap();
    let again = send(json!({"name": "Once"})).await.unwrap();
    assert_eq!(again.headers().get("idempotent-replayed").map(|v| v.to_str().unwrap()), Some("true"));
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    let (s, body, _) = parts(send(json!({"name": "Twice"})).await.unwrap()).await;
    assert_eq!((s, body["code"].as_str()), (409, Some("idempotency_key_reused")));
    assert_eq!(env.table_profiles(&uid).await.len(), 1);
}

#[tokio::test]
async fn auth_is_required_and_checked() {
    let env = TestEnv::new(PARTS).await;
    let (s, body, ct) = parts(env.http.get(env.api("/v1/messaging-profiles")).send().await.unwrap()).await;
    assert_eq!((s, body["code"].as_str(), ct.as_str()), (401, Some("unauthorized"), "application/problem+json"));
    let forged = patchbay_local::devauth::DevAuth::new("not-the-secret").mint("mallory", 60).unwrap();
    let (s, _, _) = parts(env.http.get(env.api("/v1/messaging-profiles")).bearer_auth(forged).send().await.unwrap()).await;
    assert_eq!(s, 401);
    let (s, _, _) = parts(env.http.get(env.api("/v1/messaging-profiles")).header("Authorization", "Basic abc").send().await.unwrap()).await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn bad_input_is_a_problem_naming_the_field_and_stores_nothing() {
    let env = TestEnv::new(PARTS).await;
    let (uid, token) = user();
    let post = |body: &'static str, ct: &'static str| {
        env.http.post(env.api("/v1/messaging-profiles")).bearer_auth(&token).header("content-type", ct).body(body).send()
    };
    let long_name = format!(r#"{{"name": "{}"}}"#, "x".repeat(101));
    let cases: Vec<(reqwest::RequestBuilder, u16, &str, &str)> = vec![
        (
            env.http.post(env.api("/v1/messaging-profiles")).bearer_auth(&token).header("content-type", "application/json").body("{"),
            400,
            "malformed_json",
            "body",
        ),
        (
            env.http
                .post(env.api("/v1/messaging-profiles"))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(r#"{"name": 7}"#),
            422,
            "invalid_type",
            "name",
        ),
        (
            env.http.post(env.api("/v1/messaging-profiles")).bearer_auth(&token).header("content-type", "application/json").body("{}"),
            422,
            "missing_field",
            "name",
        ),
        (
            env.http
                .post(env.api("/v1/messaging-profiles"))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(r#"{"name":"a","colour":"red"}"#),
            422,
            "unknown_field",
            "colour",
        ),
        (
            env.http.post(env.api("/v1/messaging-profiles")).bearer_auth(&token).header("content-type", "application/json").body(long_name),
            422,
            "too_long",
            "name",
        ),
        (
            env.http
                .post(env.api("/v1/messaging-profiles"))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(r#"{"name":"   "}"#),
            422,
            "empty",
            "name",
        ),
        (
            env.http
                .post(env.api("/v1/messaging-profiles"))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(r#"{"name":"a","whitelisted_destinations":["US","usa"]}"#),
            422,
            "invalid_country",
            "whitelisted_destinations[1]",
        ),
        (
            env.http
                .post(env.api("/v1/messaging-profiles"))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(r#"{"name":"a","whitelisted_destinations":[]}"#),
            422,
            "empty",
            "whitelisted_destinations",
        ),
        (
            env.http
                .post(env.api("/v1/messaging-profiles"))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(r#"{"name":"a","whitelisted_destinations":null}"#),
            422,
            "invalid_type",
            "whitelisted_destinations",
        ),
        (
            env.http
                .post(env.api("/v1/messaging-profiles"))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(r#"["a"]"#),
            422,
            "invalid_type",
            "body",
        ),
        (
            env.http
                .post(env.api("/v1/messaging-profiles"))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .header("Idempotency-Key", "has space")
                .body(r#"{"name":"a"}"#),
            400,
            "invalid_idempotency_key",
            "Idempotency-Key",
        ),
        (
            env.http
                .post(env.api("/v1/messaging-profiles"))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(vec![b'a'; 70 * 1024]),
            413,
            "body_too_large",
            "body",
        ),
        (env.http.get(env.api("/v1/messaging-profiles?limit=0")).bearer_auth(&token), 400, "out_of_range", "limit"),
        (env.http.get(env.api("/v1/messaging-profiles?limit=abc")).bearer_auth(&token), 400, "out_of_range", "limit"),
        (env.http.get(env.api("/v1/messaging-profiles?cursor=%%%")).bearer_auth(&token), 400, "invalid_cursor", "cursor"),
        (env.http.get(env.api("/v1/messaging-profiles?cursor=bm90LWFuLWlk")).bearer_auth(&token), 400, "invalid_cursor", "cursor"),
        (env.http.get(env.api("/v1/messaging-profiles/not-an-id")).bearer_auth(&token), 400, "invalid_id", "id"),
        (env.http.post(env.api("/v1/messaging-profiles/%FF%FE/activate")).bearer_auth(&token), 400, "invalid_id", "id"),
        (
            env.http.patch(env.api("/v1/messaging-profiles/01a2014a-6fcb-727e-ae47-638abad3cb57")).bearer_auth(&token).json(&json!({})),
            422,
            "empty_patch",
            "body",
        ),
    ];
    for (req, status, code, field) in cases {
        let (s, body, ct) = parts(req.send().await.unwrap()).await;
        assert_eq!((s, body["code"].as_str(), body["field"].as_str()), (status, Some(code), Some(field)), "{body}");
        assert_eq!(ct, "application/problem+json");
        assert_eq!(body["status"], status);
    }
    let (s, body, _) = parts(post(r#"{"name":"a"}"#, "text/plain").await.unwrap()).await;
    assert_eq!((s, body["code"].as_str()), (415, Some("unsupported_media_type")));
    let (s, body, _) = parts(env.http.put(env.api("/v1/messaging-profiles")).bearer_auth(&token).send().await.unwrap()).await;
    assert_eq!((s, body["code"].as_str()), (405, Some("method_not_allowed")));
    let (s, body, _) = parts(env.http.get(env.api("/v1/nothing-here")).bearer_auth(&token).send().await.unwrap()).await;
    assert_eq!((s, body["code"].as_str()), (404, Some("not_found")));
    assert!(env.user_items(&uid).await.is_empty(), "no bad request stored anything");
}

#[tokio::test]
async fn a_bad_rename_keeps_what_was_stored() {
    let env = TestEnv::new(PARTS).await;
    let (_, token) = user();
    let (_, p) = create(&env, &token, json!({"name": "Keep", "whitelisted_destinations": ["GB"]})).await;
    let id = p["id"].as_str().unwrap();
    let url = env.api(&format!("/v1/messaging-profiles/{id}"));
    for body in [
        json!({"name": ""}),
        json!({"whitelisted_destinations": ["*", "US"]}),
        json!({"name": null, "whitelisted_destinations": null}),
        json!({"name": ["x"]}),
    ] {
        let (s, problem, _) = parts(env.http.patch(&url).bearer_auth(&token).json(&body).send().await.unwrap()).await;
        assert_eq!(s, 422, "{body} -> {problem}");
    }
    let (_, now) = show(&env, &token, id).await;
    assert_eq!((now["name"].as_str(), &now["whitelisted_destinations"]), (Some("Keep"), &json!(["GB"])));
}

#[tokio::test]
async fn list_pages_through_the_api() {
    let env = TestEnv::new(PARTS).await;
    let (_, token) = user();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(create(&env, &token, json!({"name": format!("n{i}")})).await.1["id"].as_str().unwrap().to_owned());
    }
    let mut seen = Vec::new();
    let mut url = env.api("/v1/messaging-profiles?limit=2");
    loop {
        let (s, page, _) = parts(env.http.get(&url).bearer_auth(&token).send().await.unwrap()).await;
        assert_eq!(s, 200, "{page}");
        seen.extend(page["data"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => url = env.api(&format!("/v1/messaging-profiles?limit=2&cursor={c}")),
            None => break,
        }
    }
    assert_eq!(seen, ids);
}
