//! The dialer end to end on the local stack (sandbox carrier, fault layer on): a connection with its
//! password shown once, three numbers by role, the default caller id, a WebRTC token, a rotation,
//! delete refused then accepted; every answer and log line searched for the passwords; races on the
//! primary slot and on one number joining two connections; bad input.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use patchbay_e2e::{user, Parts, TestEnv};
use reqwest::Method;
use serde_json::{json, Value};

const PARTS: Parts = Parts { api: true, worker: true };

/// Every log line of this binary (the functions and the worker run in-process).
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .try_init();
        buf
    })
}

struct Sink(Arc<Mutex<Vec<u8>>>);
impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every answer's raw body, in order.
#[derive(Default)]
struct Transcript(Mutex<Vec<String>>);

impl Transcript {
    async fn call(&self, env: &TestEnv, token: &str, method: Method, path: &str, body: Option<Value>, key: Option<&str>) -> (u16, Value) {
        let mut req = env.http.request(method, env.api(path)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        self.0.lock().unwrap().push(text.clone());
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

async fn buy(env: &TestEnv, token: &str, number: &str) {
    let (st, b) = env.call(token, Method::POST, "/v1/phone-numbers", Some(json!({"phone_number": number}))).await;
    assert_eq!(st, 202, "{b}");
    env.until(token, &format!("/v1/phone-numbers/{number}"), |b| b["status"] == "active").await;
}

async fn new_connection(env: &TestEnv, t: &Transcript, token: &str, name: &str) -> (String, String) {
    let (st, b) =
        t.call(env, token, Method::POST, "/v1/sip-connections", Some(json!({"name": name})), Some(&uuid::Uuid::new_v4().to_string())).await;
    assert_eq!(st, 202, "{b}");
    let id = b["id"].as_str().unwrap().to_owned();
    env.until(token, &format!("/v1/sip-connections/{id}"), |b| b["sync_state"] == "synced").await;
    (id, b["sip_password"].as_str().unwrap_or_default().to_owned())
}

fn roles(b: &Value) -> Vec<(String, String, bool)> {
    b["phone_numbers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["phone_number"].as_str().unwrap().to_owned(), n["role"].as_str().unwrap().to_owned(), n["active"] == true))
        .collect()
}

#[tokio::test]
async fn a_whole_dialer_run_shows_each_password_once_and_never_again() {
    logs();
    let env = TestEnv::new(PARTS).await;
    let t = Transcript::default();
    let (uid, token) = user();
    let nums = ["+13035550101", "+13035550102", "+13035550103"];
    for n in nums {
        buy(&env, &token, n).await;
    }

    // Create: 202, the password in this answer only.
    let (st, created) =
        t.call(&env, &token, Method::POST, "/v1/sip-connections", Some(json!({"name": "Front desk"})), Some("dialer-create-1")).await;
    assert_eq!(st, 202, "{created}");
    assert_eq!(created["sync_state"], "pending");
    assert_eq!(created["active"], true);
    let password = created["sip_password"].as_str().expect("the password, shown once").to_owned();
    assert!(password.len() >= 24 && password.chars().all(|c| c.is_ascii_alphanumeric()), "{password}");
    let id = created["id"].as_str().unwrap().to_owned();
    let after_create = t.0.lock().unwrap().len();
    // A replay of the same create answers the connection without the password.
    let (st, replay) =
        t.call(&env, &token, Method::POST, "/v1/sip-connections", Some(json!({"name": "Front desk"})), Some("dialer-create-1")).await;
    assert_eq!((st, replay["id"].as_str()), (202, Some(id.as_str())));
    assert!(replay.get("sip_password").is_none(), "{replay}");

    let path = format!("/v1/sip-connections/{id}");
    let synced = env.until(&token, &path, |b| b["sync_state"] == "synced").await;
    assert!(synced["carrier_connection_id"].as_str().unwrap().starts_with("sbx-conn-"), "{synced}");
    // Straight from the carrier account: ours is known, with its Patchbay id; another user's is not listed.
    let (st, at_carrier) = t.call(&env, &token, Method::GET, "/v1/sip-connections?source=carrier", None, None).await;
    assert_eq!(st, 200, "{at_carrier}");
    let listed = at_carrier["data"].as_array().unwrap();
    let mine = listed.iter().find(|c| c["id"] == synced["carrier_connection_id"]).expect("at the carrier");
    assert_eq!((mine["known"].as_bool(), mine["patchbay_id"].as_str()), (Some(true), Some(id.as_str())));
    assert!(listed.iter().all(|c| c["known"] == true || !c["user_name"].as_str().unwrap_or("").starts_with("pb")), "{at_carrier}");

    // Three numbers, assigned backup first: the list is in role order, the primary the default.
    for (n, role) in [(nums[2], "backup"), (nums[1], "secondary"), (nums[0], "primary")] {
        let (st, b) = t.call(&env, &token, Method::PUT, &format!("{path}/phone-numbers/{n}"), Some(json!({"role": role})), None).await;
        assert_eq!(st, 202, "{b}");
    }
    let (_, listed) = t.call(&env, &token, Method::GET, "/v1/sip-connections", None, None).await;
    let conn = listed["data"].as_array().unwrap().iter().find(|c| c["id"] == id.as_str()).expect("listed").clone();
    assert_eq!(
        roles(&conn),
        vec![
            (nums[0].to_owned(), "primary".to_owned(), true),
            (nums[1].to_owned(), "secondary".to_owned(), true),
            (nums[2].to_owned(), "backup".to_owned(), true)
        ]
    );
    assert_eq!(conn["default_caller_id"], nums[0]);
    // The carrier routes all three to the connection.
    env.until(&token, &path, |b| b["phone_numbers"].as_array().unwrap().iter().all(|n| n["sync_state"] == "synced")).await;

    // The primary's assignment deactivated: the secondary is the default.
    let (st, b) =
        t.call(&env, &token, Method::PATCH, &format!("{path}/phone-numbers/{}", nums[0]), Some(json!({"active": false})), None).await;
    assert_eq!((st, &b["default_caller_id"]), (200, &json!(nums[1])), "{b}");

    // A token: a JWT, `exp` at most 24 h ahead, caller ids without the deactivated one.
    let (st, tok) = t.call(&env, &token, Method::POST, &format!("{path}/webrtc-token"), None, None).await;
    assert_eq!(st, 201, "{tok}");
    let jwt = tok["token"].as_str().unwrap();
    let exp = patchbay_domain::dialer::jwt_expiry(jwt).expect("a JWT with exp");
    let now = time::OffsetDateTime::now_utc();
    assert!(exp > now && exp <= now + time::Duration::hours(24) + time::Duration::seconds(5), "{exp}");
    assert_eq!(tok["caller_ids"], json!([nums[1], nums[2]]));
    assert_eq!(tok["connection_id"], id.as_str());

    // Rotation: a new password, shown once, pushed to the carrier.
    let before_rotate = t.0.lock().unwrap().len();
    let (st, rotated) = t.call(&env, &token, Method::POST, &format!("{path}/password"), None, None).await;
    assert_eq!(st, 202, "{rotated}");
    let rotated_pw = rotated["sip_password"].as_str().expect("the new password").to_owned();
    assert_ne!(rotated_pw, password);
    env.until(&token, &path, |b| b["sync_state"] == "synced").await;

    // Delete: refused while numbers are on it, accepted after, then gone.
    let (st, b) = t.call(&env, &token, Method::DELETE, &path, None, None).await;
    assert_eq!((st, b["code"].as_str()), (409, Some("connection_has_numbers")), "{b}");
    for n in nums {
        let (st, b) = t.call(&env, &token, Method::DELETE, &format!("{path}/phone-numbers/{n}"), None, None).await;
        assert_eq!(st, 202, "{b}");
    }
    let (st, b) = t.call(&env, &token, Method::DELETE, &path, None, None).await;
    assert_eq!(st, 202, "{b}");
    patchbay_e2e::eventually(30, || async { (env.call(&token, Method::GET, &path, None).await.0 == 404).then_some(()) })
        .await
        .expect("the connection is gone once the carrier's copy and the secret are");

    // Neither password anywhere but in the two answers that showed them.
    let bodies = t.0.lock().unwrap().clone();
    for (i, body) in bodies.iter().enumerate() {
        if i != after_create - 1 {
            assert!(!body.contains(&password), "answer {i} shows the first password: {body}");
        }
        if i != before_rotate {
            assert!(!body.contains(&rotated_pw), "answer {i} shows the rotated password: {body}");
        }
    }
    let log = String::from_utf8_lossy(&logs().lock().unwrap()).into_owned();
    assert!(log.contains("command done"), "the log capture works");
    assert!(!log.contains(&password) && !log.contains(&rotated_pw), "a password reached the logs");
    // Nor in the table (the user's items, the number records) or on the queue.
    let items = format!("{:?}", env.user_items(&uid).await);
    assert!(!items.contains(&password) && !items.contains(&rotated_pw));
    let queued = format!("{:?}", env.peek_work_queue().await);
    assert!(!queued.contains(&password) && !queued.contains(&rotated_pw));
    // The secret is gone with the connection.
    let secrets = aws_sdk_secretsmanager_list(&env).await;
    assert!(!secrets.iter().any(|n| n.ends_with(&id)), "{secrets:?}");
}

async fn aws_sdk_secretsmanager_list(env: &TestEnv) -> Vec<String> {
    let sdk = patchbay_local::stack::sdk_config(&env.shared.endpoint).await;
    let out = aws_sdk_secretsmanager::Client::new(&sdk).list_secrets().send().await.unwrap();
    out.secret_list().iter().filter_map(|s| s.name().map(str::to_owned)).collect()
}

#[tokio::test]
async fn one_primary_per_connection_and_one_connection_per_number_under_races() {
    let env = TestEnv::new(PARTS).await;
    let t = Transcript::default();
    let (_, token) = user();
    let nums: Vec<String> = (0..8).map(|i| format!("+17205550{}", 110 + i)).collect();
    for n in &nums {
        buy(&env, &token, n).await;
    }
    let (a, _) = new_connection(&env, &t, &token, "Race A").await;
    let (b, _) = new_connection(&env, &t, &token, "Race B").await;
    for round in 0..10 {
        // Eight different numbers as primary of one connection at once: exactly one wins.
        let paths: Vec<String> = nums.iter().map(|n| format!("/v1/sip-connections/{a}/phone-numbers/{n}")).collect();
        let answers =
            futures::future::join_all(paths.iter().map(|p| t.call(&env, &token, Method::PUT, p, Some(json!({"role": "primary"})), None)))
                .await;
        let won = answers.iter().filter(|(s, _)| *s == 202).count();
        let lost = answers.iter().filter(|(s, b)| *s == 409 && b["code"] == "primary_taken").count();
        assert_eq!((won, lost), (1, 7), "round {round}: {answers:?}");
        let (_, page) = env.call(&token, Method::GET, &format!("/v1/sip-connections/{a}"), None).await;
        assert_eq!(roles(&page).iter().filter(|(_, r, _)| r == "primary").count(), 1, "{page}");
        // One number onto both connections at once: on exactly one.
        let n = &nums[round % nums.len()];
        let winner = answers.iter().position(|(s, _)| *s == 202).unwrap();
        let free = if &nums[winner] == n { &nums[(round + 1) % nums.len()] } else { n };
        let (pa, pb) = (format!("/v1/sip-connections/{a}/phone-numbers/{free}"), format!("/v1/sip-connections/{b}/phone-numbers/{free}"));
        let (x, y) = futures::join!(
            t.call(&env, &token, Method::PUT, &pa, Some(json!({"role": "backup"})), None),
            t.call(&env, &token, Method::PUT, &pb, Some(json!({"role": "backup"})), None),
        );
        let oks = [x.0, y.0].iter().filter(|s| **s == 202).count();
        assert_eq!(oks, 1, "round {round}: {x:?} {y:?}");
        let other = if x.0 == 202 { &y } else { &x };
        assert_eq!(other.1["code"], "number_on_another_connection", "{other:?}");
        // Clear both connections for the next round.
        for c in [&a, &b] {
            let (_, page) = env.call(&token, Method::GET, &format!("/v1/sip-connections/{c}"), None).await;
            for (n, _, _) in roles(&page) {
                let (st, body) = env.call(&token, Method::DELETE, &format!("/v1/sip-connections/{c}/phone-numbers/{n}"), None).await;
                assert_eq!(st, 202, "{body}");
            }
        }
    }
    // The counts came back to zero: both delete.
    for c in [&a, &b] {
        let (st, body) = env.call(&token, Method::DELETE, &format!("/v1/sip-connections/{c}"), None).await;
        assert_eq!(st, 202, "{body}");
    }
}

#[tokio::test]
async fn bad_input_and_foreign_connections_are_4xx_naming_the_field() {
    let env = TestEnv::new(PARTS).await;
    let t = Transcript::default();
    let (_, token) = user();
    let (_, stranger) = user();
    buy(&env, &token, "+15125550121").await;
    let (id, _) = new_connection(&env, &t, &token, "Mine").await;
    let path = format!("/v1/sip-connections/{id}");
    let cases: Vec<(Method, String, Option<Value>, u16, &str)> = vec![
        (Method::POST, "/v1/sip-connections".into(), Some(json!({"name": ""})), 422, "name"),
        (Method::POST, "/v1/sip-connections".into(), Some(json!({"name": "x".repeat(65)})), 422, "name"),
        (Method::POST, "/v1/sip-connections".into(), Some(json!({"name": "ok", "carrier": "twilio"})), 422, "carrier"),
        (Method::PUT, format!("{path}/phone-numbers/+15125550121"), Some(json!({"role": "boss"})), 422, "role"),
        (Method::PUT, format!("{path}/phone-numbers/12345"), Some(json!({"role": "primary"})), 400, "e164"),
        (Method::GET, "/v1/sip-connections/not-an-id".into(), None, 400, "id"),
        (Method::GET, "/v1/sip-connections?include_inactive=maybe".into(), None, 400, "include_inactive"),
        (Method::GET, "/v1/sip-connections?source=elsewhere".into(), None, 400, "source"),
    ];
    for (method, p, body, status, field) in cases {
        let (st, b) = t.call(&env, &token, method.clone(), &p, body, None).await;
        assert_eq!((st, b["field"].as_str()), (status, Some(field)), "{method} {p}: {b}");
    }
    // A number the caller does not own.
    let (st, b) =
        t.call(&env, &token, Method::PUT, &format!("{path}/phone-numbers/+15125550122"), Some(json!({"role": "primary"})), None).await;
    assert_eq!(st, 404, "{b}");
    // Another user's connection does not exist for them, on every route.
    for (method, p, body) in [
        (Method::GET, path.clone(), None),
        (Method::PATCH, path.clone(), Some(json!({"name": "theirs"}))),
        (Method::DELETE, path.clone(), None),
        (Method::POST, format!("{path}/password"), None),
        (Method::POST, format!("{path}/webrtc-token"), None),
        (Method::PUT, format!("{path}/phone-numbers/+15125550121"), Some(json!({"role": "primary"}))),
        (Method::DELETE, format!("{path}/phone-numbers/+15125550121"), None),
    ] {
        let (st, b) = t.call(&env, &stranger, method.clone(), &p, body, None).await;
        assert_eq!(st, 404, "{method} {p}: {b}");
    }
    // A deactivated connection issues no token; the sandbox refusal is recorded as `failed`.
    let (st, _) = t.call(&env, &token, Method::PATCH, &path, Some(json!({"active": false})), None).await;
    assert_eq!(st, 202);
    env.until(&token, &path, |b| b["sync_state"] == "synced").await;
    let (st, b) = t.call(&env, &token, Method::POST, &format!("{path}/webrtc-token"), None, None).await;
    assert_eq!((st, b["code"].as_str()), (409, Some("connection_inactive")), "{b}");
    let (st, b) = t.call(&env, &token, Method::POST, "/v1/sip-connections", Some(json!({"name": "sandbox-reject me"})), None).await;
    assert_eq!(st, 202, "{b}");
    let failed = env.until(&token, &format!("/v1/sip-connections/{}", b["id"].as_str().unwrap()), |b| b["sync_state"] == "failed").await;
    assert_eq!(failed["sync_error"]["code"], "10015", "{failed}");
}

#[tokio::test]
async fn webrtc_tokens_are_limited_per_user_per_minute() {
    use patchbay_domain::dialer::ConnectionWriter;
    let env = TestEnv::new(PARTS).await;
    let t = Transcript::default();
    let (uid, token) = user();
    let user_id = patchbay_domain::UserId::parse(&uid).unwrap();
    let (id, _) = new_connection(&env, &t, &token, "Busy").await;
    // The counter itself, at fixed times: 30 a minute, then refused; the next minute starts again.
    let minute = time::OffsetDateTime::from_unix_timestamp(1_795_316_400).unwrap();
    let other = patchbay_domain::UserId::parse(&user().0).unwrap();
    let mut taken = Vec::new();
    for _ in 0..31 {
        taken.push(env.store.take_token(&other, minute, 30).await.unwrap());
    }
    assert_eq!((taken.iter().filter(|t| **t).count(), taken.last()), (30, Some(&false)));
    assert!(env.store.take_token(&other, minute + time::Duration::seconds(60), 30).await.unwrap());
    // Raced: 40 at once for one minute, exactly 30 taken.
    let racer = patchbay_domain::UserId::parse(&user().0).unwrap();
    let raced = futures::future::join_all((0..40).map(|_| env.store.take_token(&racer, minute, 30))).await;
    assert_eq!(raced.iter().filter(|r| matches!(r, Ok(true))).count(), 30, "{raced:?}");
    assert!(raced.iter().all(|r| r.is_ok()));
    // Through the API, whatever minute the request lands in: this minute's and the next one's 30
    // are already taken, so the next token is 429 with Retry-After, and nothing reached the carrier.
    let now = time::OffsetDateTime::now_utc();
    for at in [now, now + time::Duration::seconds(60)] {
        for _ in 0..30 {
            env.store.take_token(&user_id, at, 30).await.unwrap();
        }
    }
    let res = env.http.post(env.api(&format!("/v1/sip-connections/{id}/webrtc-token"))).bearer_auth(&token).send().await.unwrap();
    let retry_after: u64 = res.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0);
    let (st, b, _) = patchbay_e2e::parts(res).await;
    assert_eq!((st, b["code"].as_str()), (429, Some("rate_limited")), "{b}");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
}
