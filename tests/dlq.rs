//! Dead-letter redrive on the local stack: a command that keeps failing (the carrier down) lands in
//! the dead-letter queue after the template's maxReceiveCount; once the cause is fixed,
//! `POST /local/dlq/redrive` (what `patchbay-local dlq redrive` calls) puts it back and it completes
//! once. Its own binary: it runs its own worker on the work queue.

use std::sync::Arc;
use std::time::Duration;

use patchbay_e2e::{eventually, Parts, TestEnv, DEV_SECRET};
use patchbay_local::devauth::DevAuth;
use patchbay_worker::Worker;
use serde_json::{json, Value};

#[tokio::test]
async fn a_poisoned_command_lands_in_the_dead_letter_queue_and_a_redrive_after_the_fix_completes_it_once() {
    use patchbay_domain::profiles::ProfileCarrier;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let env = TestEnv::new(Parts { api: false, worker: false }).await;
    let server = MockServer::start().await;
    // The carrier is down: every create answers 500 until it is fixed.
    let outage = Mock::given(method("POST"))
        .and(path("/messaging_profiles"))
        .respond_with(ResponseTemplate::new(500))
        .mount_as_scoped(&server)
        .await;
    let telnyx: Arc<dyn ProfileCarrier> = Arc::new(
        patchbay_adapters::carrier::TelnyxClient::new(&server.uri(), secrecy::SecretString::from("KEY"), Duration::from_millis(2000))
            .unwrap(),
    );
    let wiring = env.wiring.clone().with_profile_carrier(telnyx);
    let base = env.serve(&wiring).await;
    let poller = || env.poller();
    // The template's maxReceiveCount (5), as the local stack deploys it.
    let worker = || Worker { max_receive_count: 5, ..Worker::new(&wiring) };
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(poller().run(worker(), stop_rx));
    // The API's command reaches the queue through the outbox.
    let _relay = env.spawn_relay().await;

    let uid = format!("user-{}", uuid::Uuid::new_v4().simple());
    let token = DevAuth::new(DEV_SECRET).mint(&uid, 3600).unwrap();
    let res =
        env.http.post(format!("{base}/v1/messaging-profiles")).bearer_auth(&token).json(&json!({"name": "Doomed"})).send().await.unwrap();
    let (s, p, _) = patchbay_e2e::parts(res).await;
    assert_eq!(s, 202, "{p}");
    let pid = p["id"].as_str().unwrap().to_owned();

    // Five deliveries, then the dead-letter queue.
    let dead = eventually(60, || async {
        let res = env.http.get(format!("{base}/local/dlq")).send().await.unwrap();
        let list: Value = res.json().await.unwrap();
        (list.as_array().map(Vec::len) == Some(1)).then_some(list)
    })
    .await
    .expect("the command lands in the dead-letter queue");
    assert_eq!(dead[0]["command"], "sync_messaging_profile", "{dead}");
    assert_eq!(dead[0]["command_id"], format!("sync-profile-{pid}-v1"), "{dead}");
    let get = || async {
        let res = env.http.get(format!("{base}/v1/messaging-profiles/{pid}")).bearer_auth(&token).send().await.unwrap();
        patchbay_e2e::parts(res).await.1
    };
    let failed = get().await;
    assert_eq!(
        (failed["sync_state"].as_str(), failed["sync_error"]["code"].as_str()),
        (Some("failed"), Some("retries_exhausted")),
        "{failed}"
    );

    // The cause is fixed: the carrier answers again.
    drop(outage);
    Mock::given(method("POST"))
        .and(path("/messaging_profiles"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"data": {"id": "40017f8e-49bd-4f16-9e3d-ef103f916228", "name": "Doomed", "record_type": "messaging_profile"}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let res = env.http.post(format!("{base}/local/dlq/redrive")).send().await.unwrap();
    let (s, moved, _) = patchbay_e2e::parts(res).await;
    assert_eq!((s, moved["moved"].as_u64()), (200, Some(1)), "{moved}");

    let synced = eventually(30, || async {
        let p = get().await;
        (p["sync_state"] == "synced").then_some(p)
    })
    .await
    .expect("the redriven command completes");
    assert_eq!(synced["sync_error"], Value::Null, "{synced}");
    // Once: the queues are empty and the carrier saw exactly one successful create (`expect(1)`).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let res = env.http.get(format!("{base}/local/dlq")).send().await.unwrap();
    assert_eq!(res.json::<Value>().await.unwrap(), json!([]));
    let _ = stop.send(true);
    let _ = running.await;
    server.verify().await;
}
