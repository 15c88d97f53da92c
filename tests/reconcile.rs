//! The reconciler on the local stack (API, worker and sandbox providers built from one wiring, fault
//! layer on): each kind of drift made on purpose behind Patchbay's back — a number deleted at the
//! carrier, an order that completed after the queue gave its purchase up, a profile renamed in the
//! carrier's portal, a number detached from its assistant at the voice AI, resources that look like
//! Patchbay's but are unknown here — then one pass (`POST /local/reconcile`, what
//! `patchbay-local reconcile` calls) finds each, repairs or reports it, and a second pass finds nothing.

use std::sync::Arc;
use std::time::Duration;

use patchbay_adapters::carrier::{SandboxCarrier, SandboxDialer};
use patchbay_adapters::voice_ai::SandboxVoiceAi;
use patchbay_domain::dialer::{ConnectionSpec, DialerCarrier, Dialers, SipPassword};
use patchbay_domain::numbers::{Carriers, NumberCarrier};
use patchbay_domain::profiles::ProfileReader;
use patchbay_domain::{CarrierName, ConnectionId, ProfileId, UserId, E164};
use patchbay_e2e::{eventually, Parts, TestEnv, DEV_SECRET};
use patchbay_local::devauth::DevAuth;
use patchbay_worker::Worker;
use reqwest::Method;
use serde_json::{json, Value};

struct Stack {
    env: TestEnv,
    base: String,
    sandbox: SandboxCarrier,
    dialer: Arc<SandboxDialer>,
    voice: Arc<SandboxVoiceAi>,
    _stop: tokio::sync::watch::Sender<bool>,
    _relay: tokio::sync::watch::Sender<bool>,
}

impl Stack {
    /// The API, the ops routes and a worker, all on sandbox providers this test holds handles to.
    async fn start() -> Self {
        let env = TestEnv::new(Parts { api: false, worker: false }).await;
        let sandbox = SandboxCarrier::default();
        let dialer = Arc::new(SandboxDialer::default());
        let voice = Arc::new(SandboxVoiceAi::default());
        let wiring = env
            .wiring
            .clone()
            .with_carriers(Carriers { sandbox: Some(Arc::new(sandbox.clone())), default: Some(CarrierName::Sandbox), ..Default::default() })
            .with_profile_carrier(Arc::new(sandbox.clone()))
            .with_dialers(Dialers { sandbox: Some(dialer.clone()), default: Some(CarrierName::Sandbox), ..Default::default() })
            .with_voice_ai(voice.clone());
        let base = env.serve(&wiring).await;
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let poller = env.poller();
        tokio::spawn(poller.run(Worker { max_receive_count: 3, ..Worker::new(&wiring) }, stop_rx));
        // The API's (and the reconciler's) profile commands reach the queue through the outbox.
        let _relay = env.spawn_relay().await;
        Self { env, base, sandbox, dialer, voice, _stop: stop, _relay }
    }

    async fn call(&self, token: &str, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.env.http.request(method, format!("{}{path}", self.base)).bearer_auth(token);
        if let Some(b) = body {
            req = req.header("idempotency-key", uuid::Uuid::new_v4().to_string()).json(&b);
        }
        let (st, b, _) = patchbay_e2e::parts(req.send().await.unwrap()).await;
        (st, b)
    }

    async fn until(&self, token: &str, path: &str, f: impl Fn(&Value) -> bool) -> Value {
        let mut last = Value::Null;
        for _ in 0..150 {
            let (_, b) = self.call(token, Method::GET, path, None).await;
            if f(&b) {
                return b;
            }
            last = b;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("{path} never got there: {last}");
    }

    async fn reconcile(&self) -> Value {
        let res = self.env.http.post(format!("{}/local/reconcile", self.base)).send().await.unwrap();
        let (st, b, _) = patchbay_e2e::parts(res).await;
        assert_eq!(st, 200, "{b}");
        b
    }
}

fn actions(report: &Value) -> Vec<(String, String, String)> {
    let mut v: Vec<(String, String, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["kind"].as_str().unwrap().to_owned(), f["action"].as_str().unwrap().to_owned(), f["id"].as_str().unwrap().to_owned()))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn a_pass_finds_and_repairs_or_reports_every_kind_of_drift_and_a_second_pass_finds_nothing() {
    let st = Stack::start().await;
    let uid = format!("user-{}", uuid::Uuid::new_v4().simple());
    let token = DevAuth::new(DEV_SECRET).mint(&uid, 3600).unwrap();
    let user = UserId::parse(&uid).unwrap();
    let (lost, ordered, on_assistant, outside) = ("+12125550101", "+12125550102", "+12125550103", "+12125550104");

    // What Patchbay made: a number, a messaging profile, an assistant with its number.
    let (s, b) = st.call(&token, Method::POST, "/v1/phone-numbers", Some(json!({"phone_number": lost}))).await;
    assert_eq!(s, 202, "{b}");
    st.until(&token, &format!("/v1/phone-numbers/{lost}"), |b| b["status"] == "active").await;
    let (s, p) = st.call(&token, Method::POST, "/v1/messaging-profiles", Some(json!({"name": "Support"}))).await;
    assert_eq!(s, 202, "{p}");
    let pid = p["id"].as_str().unwrap().to_owned();
    st.until(&token, &format!("/v1/messaging-profiles/{pid}"), |b| b["sync_state"] == "synced").await;
    let carrier_profile =
        st.env.store.get_profile(&user, ProfileId::parse(&pid).unwrap()).await.unwrap().carrier_profile_id.unwrap().as_str().to_owned();
    let (s, a) = st
        .call(
            &token,
            Method::POST,
            "/v1/assistants",
            Some(json!({"name": "Front desk", "first_message": "Hello!", "system_prompt": "Be brief.", "model": {"provider": "openai", "model": "gpt-4o"},
                        "voice": {"provider": "11labs", "voice_id": "burt"}, "selected_phone_number": on_assistant})),
        )
        .await;
    assert_eq!(s, 202, "{a}");
    let aid = a["id"].as_str().unwrap().to_owned();
    let active =
        st.until(&token, &format!("/v1/assistants/{aid}"), |b| b["status"] == "active" && b["phone_number_sync"] == "synced").await;
    let vapi_id = active["vapi_assistant_id"].as_str().unwrap().to_owned();
    assert_eq!(st.voice.number_assistant(on_assistant).as_deref(), Some(vapi_id.as_str()));

    // A purchase whose order is still pending on its last delivery: the queue gives the command up
    // (dead-lettered), and the number stays pending with its order and its guard (an open order is
    // never given up: the carrier may still complete it).
    st.sandbox.hold_orders(true);
    let (s, b) = st.call(&token, Method::POST, "/v1/phone-numbers", Some(json!({"phone_number": ordered}))).await;
    assert_eq!(s, 202, "{b}");
    let dead = eventually(30, || async {
        let out = st.env.sqs.receive_message().queue_url(&st.env.shared.info.dlq_url).visibility_timeout(0).send().await.unwrap();
        out.messages().iter().any(|m| m.body().is_some_and(|b| b.contains(&ordered[1..]))).then_some(())
    })
    .await;
    assert!(dead.is_some(), "the purchase's command reached the dead-letter queue");
    let pending = st.until(&token, &format!("/v1/phone-numbers/{ordered}"), |b| b["status"] == "pending").await;
    assert_eq!(pending["failure"], Value::Null, "{pending}");
    assert_eq!(st.env.owner_in_table(ordered).await.as_deref(), Some(uid.as_str()), "the guard is kept while the order runs");
    st.sandbox.hold_orders(false);

    // A quiet account first: nothing to find but what exists.
    let calm = st.reconcile().await;
    assert_eq!((calm["drift"].as_u64(), calm["complete"].as_bool()), (Some(0), Some(true)), "{calm}");

    // Drift, made behind Patchbay's back.
    st.sandbox.complete_orders(); // the order completed after all
    assert!(st.sandbox.drop_number(&E164::parse(lost).unwrap())); // deleted in the carrier's portal
    assert!(st.sandbox.rename_profile(&carrier_profile, "Renamed in the portal"));
    assert!(st.voice.detach_number(on_assistant));
    let outside_id = st.sandbox.buy(&E164::parse(outside).unwrap()).await.unwrap(); // bought at the carrier, not here
    let orphan_conn = st
        .dialer
        .create_credential_connection(&ConnectionSpec {
            local_id: ConnectionId::new_v7(),
            name: "left over".into(),
            user_name: ConnectionId::new_v7().sip_username(),
            password: SipPassword::generate(),
            active: true,
            webhook_event_url: None,
        })
        .await
        .unwrap();
    let orphan_asst = st.voice.plant_assistant(&uuid::Uuid::now_v7().to_string(), "Copied by hand");
    assert!(format!("{outside_id:?}").contains("sbx-PN"));

    let first = st.reconcile().await;
    assert_eq!(first["complete"], true, "{first}");
    assert_eq!(
        actions(&first),
        {
            let mut want = vec![
                ("assistant".to_owned(), "unknown".to_owned(), orphan_asst.clone()),
                ("connection".to_owned(), "unknown".to_owned(), orphan_conn.clone()),
                ("number".to_owned(), "adopted".to_owned(), ordered.to_owned()),
                ("number".to_owned(), "lost".to_owned(), lost.to_owned()),
                ("number".to_owned(), "resynced".to_owned(), on_assistant.to_owned()),
                ("number".to_owned(), "unknown".to_owned(), outside.to_owned()),
                ("profile".to_owned(), "resynced".to_owned(), pid.clone()),
            ];
            want.sort();
            want
        },
        "{first}"
    );
    assert_eq!(first["drift"], 7, "{first}");
    assert_eq!(first["counts"]["unknown"], 3, "{first}");

    // Repairs, as a user and the providers see them.
    let l = st.until(&token, &format!("/v1/phone-numbers/{lost}"), |b| b["status"] == "lost").await;
    assert_eq!(l["carrier"], "sandbox", "a lost number stays visible: {l}");
    let adopted = st.until(&token, &format!("/v1/phone-numbers/{ordered}"), |b| b["status"] == "active").await;
    assert_eq!(adopted["failure"], Value::Null, "{adopted}");
    assert_eq!(st.env.owner_in_table(ordered).await.as_deref(), Some(uid.as_str()), "the owner guard is taken again");
    let renamed =
        eventually(30, || async { (st.sandbox.profile_name(&carrier_profile).as_deref() == Some("Support")).then_some(()) }).await;
    assert!(renamed.is_some(), "the carrier's profile got our name back: {:?}", st.sandbox.profile_name(&carrier_profile));
    let attached =
        eventually(30, || async { (st.voice.number_assistant(on_assistant).as_deref() == Some(vapi_id.as_str())).then_some(()) }).await;
    assert!(attached.is_some(), "the number is on its assistant again at the voice AI");
    st.until(&token, &format!("/v1/phone-numbers/{on_assistant}"), |b| b["assistant_sync"] == "synced").await;
    st.until(&token, &format!("/v1/messaging-profiles/{pid}"), |b| b["sync_state"] == "synced").await;
    // Reported, never deleted.
    assert!(st.sandbox.owns(&E164::parse(outside).unwrap()));
    assert!(st.voice.assistant_name(&orphan_asst).is_some());
    assert_eq!(st.dialer.list_credential_connections().await.unwrap().iter().filter(|c| c.id == orphan_conn).count(), 1);

    // A second pass: nothing new. The look-alikes are still listed, but they are not drift again.
    let second = st.reconcile().await;
    assert_eq!((second["drift"].as_u64(), second["complete"].as_bool()), (Some(0), Some(true)), "{second}");
    assert_eq!(second["findings"], json!([]), "{second}");
    assert_eq!(second["counts"]["unknown_known"], 3, "{second}");
    assert!(second["counts"]["checked"].as_u64().unwrap() >= 5, "{second}");

    // The lost number can still be released by its owner (the peer's bug: it could not be).
    let (s, b) = st.call(&token, Method::DELETE, &format!("/v1/phone-numbers/{lost}"), None).await;
    assert_eq!(s, 202, "{b}");
    st.until(&token, &format!("/v1/phone-numbers/{lost}"), |b| {
        b["status"] == Value::Null || b["type"].as_str().is_some_and(|t| t.contains("not_found"))
    })
    .await;
    assert_eq!(st.env.owner_in_table(lost).await, None);

    // A record stuck in flight, its command gone (dead-lettered, or from before commands were written
    // with their state): the profile made pending two hours ago, behind everyone's back. The next
    // pass writes its command again (drift), and the worker settles it.
    let old = patchbay_adapters::wire::rfc3339(time::OffsetDateTime::now_utc() - time::Duration::hours(2));
    st.env
        .dynamo
        .update_item()
        .table_name(&st.env.shared.info.table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("USER#{uid}")))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S(format!("PROFILE#{pid}")))
        .update_expression("SET sync_state = :p, updated_at = :old")
        .expression_attribute_values(":p", aws_sdk_dynamodb::types::AttributeValue::S("pending".into()))
        .expression_attribute_values(":old", aws_sdk_dynamodb::types::AttributeValue::S(old))
        .send()
        .await
        .unwrap();
    let third = st.reconcile().await;
    assert_eq!(actions(&third), vec![("profile".to_owned(), "requeued".to_owned(), pid.clone())], "{third}");
    assert_eq!((third["drift"].as_u64(), third["counts"]["requeued"].as_u64()), (Some(1), Some(1)), "{third}");
    st.until(&token, &format!("/v1/messaging-profiles/{pid}"), |b| b["sync_state"] == "synced").await;
    let fourth = st.reconcile().await;
    assert_eq!(fourth["drift"].as_u64(), Some(0), "{fourth}");
}
