//! Calls and the dashboard on the local stack (sandbox carrier and voice AI, fault layer on): sandbox
//! calls to an assistant's number and to a connection's number, listed and counted with the day's
//! messages; a storm of duplicated, reordered, concurrent call events counted exactly and recomputed
//! from what is stored; both Vapi signature schemes; privacy; a report nobody owns dropped.

use std::collections::HashMap;

use futures::stream::{self, StreamExt};
use patchbay_adapters::webhooks::vapi_signature;
use patchbay_e2e::calls::{call_event, report};
use patchbay_e2e::{s, telnyx, user, Parts, TestEnv};
use patchbay_local::server::DEV_VAPI_SECRET;
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{json, Value};

const PARTS: Parts = Parts { api: true, worker: true };

async fn buy(env: &TestEnv, token: &str, number: &str) {
    let (st, b) = env.call(token, Method::POST, "/v1/phone-numbers", Some(json!({"phone_number": number}))).await;
    assert_eq!(st, 202, "{b}");
    env.until(token, &format!("/v1/phone-numbers/{number}"), |b| b["status"] == "active").await;
}

/// An assistant (active) with `number` connected, and a SIP connection (synced) with `sip_number` on it.
async fn setup(env: &TestEnv, token: &str, number: &str, sip_number: &str) -> (String, String) {
    let (st, a) = env.call(token, Method::POST, "/v1/assistants", Some(json!({"name": "Desk", "selected_phone_number": number}))).await;
    assert_eq!(st, 202, "{a}");
    let aid = a["id"].as_str().unwrap().to_owned();
    env.until(token, &format!("/v1/assistants/{aid}"), |b| b["status"] == "active").await;
    buy(env, token, sip_number).await;
    let (_, c) = env.call(token, Method::POST, "/v1/sip-connections", Some(json!({"name": "Phones"}))).await;
    let cid = c["id"].as_str().unwrap().to_owned();
    env.until(token, &format!("/v1/sip-connections/{cid}"), |b| b["sync_state"] == "synced").await;
    let (st, b) = env
        .call(token, Method::PUT, &format!("/v1/sip-connections/{cid}/phone-numbers/{sip_number}"), Some(json!({"role": "primary"})))
        .await;
    assert_eq!(st, 202, "{b}");
    (aid, cid)
}

async fn sandbox_call(env: &TestEnv, to: &str, seconds: u32) {
    let res = env
        .http
        .post(env.api("/local/sandbox/calls"))
        .json(&json!({"to": to, "from": "+14155550123", "duration_seconds": seconds}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap_or_default());
}

fn today() -> String {
    let d = time::OffsetDateTime::now_utc().date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

#[tokio::test]
async fn sandbox_calls_appear_in_the_calls_and_on_the_dashboard_with_the_days_messages() {
    let env = TestEnv::new(PARTS).await;
    let (_, token) = user();
    let (_, stranger) = user();
    let (aid, cid) = setup(&env, &token, "+12065550101", "+12065550102").await;
    // Messages: one received on the assistant's number; two sent from a number on the active
    // profile, one delivered and one the sandbox cannot deliver (a number ending in 0199).
    assert_eq!(env.send_inbound(&uuid::Uuid::new_v4().to_string(), "+14155550123", "+12065550101", "hello").await, 200);
    buy(&env, &token, "+12065550103").await;
    let (_, p) = env.call(&token, Method::POST, "/v1/messaging-profiles", Some(json!({"name": "Main"}))).await;
    let profile = p["id"].as_str().unwrap().to_owned();
    assert_eq!(env.call(&token, Method::POST, &format!("/v1/messaging-profiles/{profile}/activate"), None).await.0, 200);
    assert_eq!(env.call(&token, Method::PUT, &format!("/v1/messaging-profiles/{profile}/phone-numbers/+12065550103"), None).await.0, 202);
    let mut sent = Vec::new();
    for to in ["+14155550124", "+14155550199"] {
        let (st, m) = env.call(&token, Method::POST, "/v1/messages", Some(json!({"from": "+12065550103", "to": to, "text": "hi"}))).await;
        assert_eq!(st, 202, "{m}");
        sent.push((m["conversation_id"].as_str().unwrap().to_owned(), m["id"].as_str().unwrap().to_owned()));
    }
    for ((conv, id), want) in sent.iter().zip(["delivered", "failed"]) {
        env.until(&token, &format!("/v1/conversations/{conv}/messages"), |b| {
            b["data"].as_array().unwrap().iter().any(|m| m["id"] == id.as_str() && m["status"] == want)
        })
        .await;
    }

    sandbox_call(&env, "+12065550101", 60).await;
    sandbox_call(&env, "+12065550102", 30).await;
    let calls = env.until(&token, "/v1/calls", |b| b["data"].as_array().unwrap().len() == 2).await;
    let by_source = |s: &str| calls["data"].as_array().unwrap().iter().find(|c| c["source"] == s).unwrap().clone();
    let ai = by_source("assistant");
    assert_eq!(
        (
            ai["duration_seconds"].as_u64(),
            ai["cost"].as_str(),
            ai["assistant_id"].as_str(),
            ai["phone_number"].as_str(),
            ai["status"].as_str()
        ),
        (Some(60), Some("0.15"), Some(aid.as_str()), Some("+12065550101"), Some("ended")),
        "{ai}"
    );
    let sip = by_source("sip");
    assert_eq!(
        (sip["duration_seconds"].as_u64(), sip["connection_id"].as_str(), sip["hangup_cause"].as_str(), &sip["cost"]),
        (Some(30), Some(cid.as_str()), Some("normal_clearing"), &Value::Null),
        "{sip}"
    );
    // Filters.
    let (_, only_sip) = env.call(&token, Method::GET, "/v1/calls?source=sip", None).await;
    assert_eq!(only_sip["data"].as_array().unwrap().len(), 1);
    let (_, by_assistant) = env.call(&token, Method::GET, &format!("/v1/calls?assistant_id={aid}"), None).await;
    assert_eq!(by_assistant["data"].as_array().unwrap().len(), 1);

    let (st, d) = env.call(&token, Method::GET, "/v1/dashboard", None).await;
    assert_eq!(st, 200, "{d}");
    let t = &d["totals"];
    assert_eq!(
        (t["calls"].as_i64(), t["call_seconds"].as_i64(), t["cost"].as_str(), t["messages_received"].as_i64()),
        (Some(2), Some(90), Some("0.15"), Some(1)),
        "{d}"
    );
    assert_eq!(
        (t["messages_sent"].as_i64(), t["messages_delivered"].as_i64(), t["messages_failed"].as_i64()),
        (Some(2), Some(1), Some(1)),
        "{d}"
    );
    assert_eq!(d["days"].as_array().unwrap().len(), 30);
    let day = d["days"].as_array().unwrap().iter().find(|x| x["date"] == today().as_str()).unwrap();
    assert_eq!(
        (day["calls"].as_i64(), day["call_seconds"].as_i64(), day["messages_sent"].as_i64(), day["messages_failed"].as_i64()),
        (Some(2), Some(90), Some(2), Some(1)),
        "{day}"
    );
    assert_eq!(d["assistants"], json!([{"assistant_id": aid, "name": "Desk", "calls": 1, "call_seconds": 60, "cost": "0.15"}]));

    // Another user sees none of it.
    let (_, theirs) = env.call(&stranger, Method::GET, "/v1/calls", None).await;
    assert_eq!(theirs["data"], json!([]));
    let (_, their_d) = env.call(&stranger, Method::GET, "/v1/dashboard", None).await;
    assert_eq!((their_d["totals"]["calls"].as_i64(), their_d["totals"]["messages_received"].as_i64()), (Some(0), Some(0)));
    // Bad input names the field.
    for (path, field) in [
        ("/v1/dashboard?from=2026-13-01", "from"),
        ("/v1/dashboard?from=2024-01-01&to=2026-01-01", "from"),
        ("/v1/calls?source=fax", "source"),
        ("/v1/calls?phone_number=123", "phone_number"),
    ] {
        let (st, b) = env.call(&token, Method::GET, path, None).await;
        assert_eq!((st, b["field"].as_str()), (400, Some(field)), "{path}: {b}");
    }
}

/// A browser dialer's call out, as the sandbox reports it (`"direction": "outbound"`): Telnyx's
/// call.initiated, call.answered and call.hangup on the connection that holds `from`, with
/// `direction: outgoing`, through the verified path: a `sip` call of that connection, listed, found
/// by its number and counted on the dashboard. A `from` on no SIP connection is a 422 naming `from`.
#[tokio::test]
async fn an_outbound_sandbox_call_from_a_connections_number_is_a_sip_call_of_it() {
    let env = TestEnv::new(PARTS).await;
    let (_, token) = user();
    let (ours, loose) = ("+15035550121", "+15035550122");
    buy(&env, &token, ours).await;
    buy(&env, &token, loose).await;
    let (_, c) = env.call(&token, Method::POST, "/v1/sip-connections", Some(json!({"name": "Browser"}))).await;
    let cid = c["id"].as_str().unwrap().to_owned();
    env.until(&token, &format!("/v1/sip-connections/{cid}"), |b| b["sync_state"] == "synced").await;
    let (st, b) =
        env.call(&token, Method::PUT, &format!("/v1/sip-connections/{cid}/phone-numbers/{ours}"), Some(json!({"role": "primary"}))).await;
    assert_eq!(st, 202, "{b}");

    let call = |from: &str, direction: &str| {
        env.http
            .post(env.api("/local/sandbox/calls"))
            .json(&json!({"to": "+14155550177", "from": from, "duration_seconds": 42, "direction": direction}))
            .send()
    };
    // Refused, nothing posted: a number of the caller's on no connection, a number nobody owns, a
    // direction that is neither.
    for from in [loose, "+15035550123"] {
        let (st, body, _) = patchbay_e2e::parts(call(from, "outbound").await.unwrap()).await;
        assert_eq!((st, body["field"].as_str()), (422, Some("from")), "{from}: {body}");
    }
    assert_eq!(call(ours, "sideways").await.unwrap().status(), 422);

    let res = call(ours, "outbound").await.unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap_or_default());
    let calls = env.until(&token, "/v1/calls", |b| b["data"].as_array().unwrap().iter().any(|c| c["status"] == "ended")).await;
    assert_eq!(calls["data"].as_array().unwrap().len(), 1, "{calls}");
    let sip = &calls["data"][0];
    assert_eq!(
        (
            sip["source"].as_str(),
            sip["direction"].as_str(),
            sip["connection_id"].as_str(),
            sip["from"].as_str(),
            sip["to"].as_str(),
            sip["duration_seconds"].as_u64(),
            sip["hangup_cause"].as_str()
        ),
        (Some("sip"), Some("outgoing"), Some(cid.as_str()), Some(ours), Some("+14155550177"), Some(42), Some("normal_clearing")),
        "{sip}"
    );
    let (_, by_number) =
        env.call(&token, Method::GET, &format!("/v1/calls?source=sip&phone_number={}", ours.replace('+', "%2B")), None).await;
    assert_eq!(by_number["data"].as_array().unwrap().len(), 1, "{by_number}");
    let (_, d) = env.call(&token, Method::GET, "/v1/dashboard", None).await;
    assert_eq!((d["totals"]["calls"].as_i64(), d["totals"]["call_seconds"].as_i64()), (Some(1), Some(42)), "{d}");
    let day = d["days"].as_array().unwrap().iter().find(|x| x["date"] == today().as_str()).unwrap();
    assert_eq!((day["calls"].as_i64(), day["call_seconds"].as_i64()), (Some(1), Some(42)), "{day}");
}

#[tokio::test]
async fn vapi_webhooks_are_verified_before_anything_is_stored() {
    let env = TestEnv::new(PARTS).await;
    let (_, token) = user();
    setup(&env, &token, "+13035550131", "+13035550132").await;
    let secret = SecretString::from(DEV_VAPI_SECRET);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let body = report("sig-ok-1", "+13035550131", 10, 0.01);
    // The shared secret header, and the timed HMAC.
    assert_eq!(env.post_vapi(&body, &[("x-vapi-secret", DEV_VAPI_SECRET.into())]).await, 200);
    let body2 = report("sig-ok-2", "+13035550131", 20, 0.02);
    let sig = vapi_signature(&secret, &now.to_string(), body2.as_bytes()).unwrap();
    assert_eq!(env.post_vapi(&body2, &[("x-signature", sig.clone()), ("x-timestamp", now.to_string())]).await, 200);
    // Refused, nothing stored: a wrong secret, a tampered body, a stale or future timestamp, no header.
    let refused = [
        (report("sig-bad-1", "+13035550131", 5, 0.0), vec![("x-vapi-secret", "not-the-secret".to_owned())]),
        (body2.replace("sig-ok-2", "sig-bad-2"), vec![("x-signature", sig), ("x-timestamp", now.to_string())]),
        (report("sig-bad-3", "+13035550131", 5, 0.0), {
            let b = report("sig-bad-3", "+13035550131", 5, 0.0);
            let old = (now - 400).to_string();
            vec![("x-signature", vapi_signature(&secret, &old, b.as_bytes()).unwrap()), ("x-timestamp", old)]
        }),
        (report("sig-bad-4", "+13035550131", 5, 0.0), vec![]),
    ];
    for (b, h) in &refused {
        // The stale case signs the exact body it sends.
        let h: Vec<(&str, String)> = h.iter().map(|(k, v)| (*k, v.clone())).collect();
        assert_eq!(env.post_vapi(b, &h).await, 401, "{h:?}");
    }
    let future = (now + 400).to_string();
    let b = report("sig-bad-5", "+13035550131", 5, 0.0);
    let h = vec![("x-signature", vapi_signature(&secret, &future, b.as_bytes()).unwrap()), ("x-timestamp", future)];
    assert_eq!(env.post_vapi(&b, &h).await, 401);
    let calls = env.until(&token, "/v1/calls", |b| b["data"].as_array().unwrap().len() == 2).await;
    assert!(calls["data"].as_array().unwrap().iter().all(|c| c["id"].as_str().unwrap().starts_with("vapi-sig-ok-")), "{calls}");
    // A duplicate changes nothing; a report for a number nobody owns is acknowledged and dropped.
    assert_eq!(env.post_vapi(&body, &[("x-vapi-secret", DEV_VAPI_SECRET.into())]).await, 200);
    assert_eq!(env.post_vapi(&report("nobody-1", "+13035550199", 5, 0.0), &[("x-vapi-secret", DEV_VAPI_SECRET.into())]).await, 200);
    let (_, d) = env.call(&token, Method::GET, "/v1/dashboard", None).await;
    assert_eq!(
        (d["totals"]["calls"].as_i64(), d["totals"]["call_seconds"].as_i64(), d["totals"]["cost"].as_str()),
        (Some(2), Some(30), Some("0.03"))
    );
}

#[tokio::test]
async fn a_storm_of_duplicated_reordered_call_events_counts_each_call_once() {
    let env = TestEnv::new(PARTS).await;
    let (uid, token) = user();
    let (aid, cid) = setup(&env, &token, "+17185550140", "+17185550141").await;
    let (_, conn) = env.call(&token, Method::GET, &format!("/v1/sip-connections/{cid}"), None).await;
    let carrier_conn = conn["carrier_connection_id"].as_str().unwrap().to_owned();
    let now = time::OffsetDateTime::now_utc();
    // 200 SIP calls (initiated, answered, hangup; every 10th never answered) and 200 Vapi reports.
    enum Hook {
        Telnyx(String),
        Vapi(String),
    }
    let mut distinct: Vec<Hook> = Vec::new();
    let (mut want_calls, mut want_seconds, mut want_cost) = (0i64, 0i64, 0i64);
    for i in 0..200u32 {
        let session = format!("storm-{uid}-{i}");
        let start = now - time::Duration::seconds(600);
        let answered = start + time::Duration::seconds(3);
        let talk = i64::from(10 + i % 50);
        let end = answered + time::Duration::seconds(talk);
        let never_answered = i % 10 == 0;
        distinct.push(Hook::Telnyx(call_event(&format!("{session}-i"), "call.initiated", &session, &carrier_conn, start, json!({}))));
        if !never_answered {
            distinct.push(Hook::Telnyx(call_event(&format!("{session}-a"), "call.answered", &session, &carrier_conn, answered, json!({}))));
        }
        distinct.push(Hook::Telnyx(call_event(
            &format!("{session}-h"),
            "call.hangup",
            &session,
            &carrier_conn,
            end,
            json!({"hangup_cause": "normal_clearing", "end_time": patchbay_adapters::wire::rfc3339(end)}),
        )));
        want_calls += 1;
        want_seconds += if never_answered { 0 } else { talk };
    }
    for i in 0..200u32 {
        let seconds = 5 + i % 100;
        let cost_micros = i64::from(seconds) * 2_500;
        distinct.push(Hook::Vapi(report(&format!("storm-{uid}-{i}"), "+17185550140", seconds, cost_micros as f64 / 1e6)));
        want_calls += 1;
        want_seconds += i64::from(seconds);
        want_cost += cost_micros;
    }
    // And 60 inbound texts to the assistant's number, in the same storm.
    for i in 0..60u32 {
        distinct.push(Hook::Telnyx(telnyx::inbound_body(&format!("storm-sms-{uid}-{i}"), "+14155550123", "+17185550140", "hi")));
    }
    // 30% duplicated, all shuffled (so hangups come before their answers), 16 at a time.
    let n = distinct.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.extend((0..n).filter(|i| i % 10 < 3));
    patchbay_e2e::shuffle(&mut order, 20261123);
    let total = order.len();
    assert!(total >= 1000, "{total}");
    let answers: Vec<u16> = stream::iter(order)
        .map(|i| {
            let env = &env;
            let hook = &distinct[i];
            async move {
                match hook {
                    Hook::Telnyx(body) => {
                        let (sig, ts) = telnyx::signed(&telnyx::signer(), time::OffsetDateTime::now_utc().unix_timestamp(), body);
                        env.post_telnyx(body, Some(&sig), Some(&ts)).await
                    }
                    Hook::Vapi(body) => env.post_vapi(body, &[("x-vapi-secret", DEV_VAPI_SECRET.into())]).await,
                }
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(answers.iter().all(|s| *s == 200), "{:?}", answers.iter().filter(|s| **s != 200).collect::<Vec<_>>());

    // The dashboard, and the same figures recomputed from the stored calls.
    let (_, d) = env.call(&token, Method::GET, "/v1/dashboard", None).await;
    let t = &d["totals"];
    assert_eq!(
        (t["calls"].as_i64(), t["call_seconds"].as_i64(), t["cost"].as_str()),
        (Some(want_calls), Some(want_seconds), Some(patchbay_domain::calls::dollars(want_cost).as_str())),
        "{d}"
    );
    let items = env.user_items(&uid).await;
    let is_ended = |i: &HashMap<String, aws_sdk_dynamodb::types::AttributeValue>| {
        matches!(i.get("ended"), Some(aws_sdk_dynamodb::types::AttributeValue::Bool(true)))
    };
    let stored: Vec<_> = items.iter().filter(|i| s(i, "sk").starts_with("CALL#")).collect();
    assert!(stored.iter().all(|i| is_ended(i)), "every stored call ended");
    assert_eq!(stored.len() as i64, want_calls);
    let mut stored_calls = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/calls?limit=100&cursor={c}"),
            None => "/v1/calls?limit=100".to_owned(),
        };
        let (_, page) = env.call(&token, Method::GET, &path, None).await;
        stored_calls.extend(page["data"].as_array().unwrap().clone());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(stored_calls.len() as i64, want_calls);
    let seconds: i64 = stored_calls.iter().map(|c| c["duration_seconds"].as_i64().unwrap()).sum();
    let micros = |d: &str| -> i64 {
        let (whole, frac) = d.split_once('.').unwrap_or((d, "0"));
        whole.parse::<i64>().unwrap() * 1_000_000 + format!("{frac:0<6}")[..6].parse::<i64>().unwrap()
    };
    let cost: i64 = stored_calls.iter().filter_map(|c| c["cost"].as_str()).map(micros).sum();
    assert_eq!(cost, micros(t["cost"].as_str().unwrap()), "cost recomputed from the stored calls");
    let assistant_calls = stored_calls.iter().filter(|c| c["assistant_id"] == aid.as_str()).count() as i64;
    assert_eq!(seconds, t["call_seconds"].as_i64().unwrap());
    let a = &d["assistants"][0];
    assert_eq!((a["calls"].as_i64(), a["assistant_id"].as_str()), (Some(assistant_calls), Some(aid.as_str())), "{d}");
    // Messages recomputed from the stored messages: every counter.
    let messages: Vec<_> = items.iter().filter(|i| s(i, "sk").starts_with("MSG#")).collect();
    let count = |dir: &str, status: Option<&str>| {
        messages.iter().filter(|m| s(m, "direction") == dir && status.is_none_or(|st| s(m, "status") == st)).count() as i64
    };
    assert_eq!((t["messages_received"].as_i64(), count("inbound", None)), (Some(60), 60));
    assert_eq!(t["messages_sent"].as_i64(), Some(count("outbound", None)));
    assert_eq!(t["messages_delivered"].as_i64(), Some(count("outbound", Some("delivered"))));
    assert_eq!(t["messages_failed"].as_i64(), Some(count("outbound", Some("failed"))));
}

async fn route_of(env: &TestEnv, pk: &str) -> Option<HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    let key = [("pk", s_attr(pk)), ("sk", s_attr("ROUTE"))];
    env.dynamo
        .get_item()
        .table_name(&env.shared.info.table)
        .set_key(Some(key.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
}

fn s_attr(v: &str) -> aws_sdk_dynamodb::types::AttributeValue {
    aws_sdk_dynamodb::types::AttributeValue::S(v.to_owned())
}

/// Crash-audit F1, F2 and F16: a SIP connection's call-event route and an assistant's report route
/// are written with the id they route (one transaction), put again by a redelivered sync when they
/// are missing (damage from before), and deleted with their resource; a report found through its
/// number alone still names the assistant on the dashboard.
#[tokio::test]
async fn provider_routes_live_and_die_with_their_resource() {
    let env = TestEnv::new(PARTS).await;
    let (uid, token) = user();
    let (aid, cid) = setup(&env, &token, "+13125550104", "+13125550105").await;
    let (_, conn) = env.call(&token, Method::GET, &format!("/v1/sip-connections/{cid}"), None).await;
    let (_, asst) = env.call(&token, Method::GET, &format!("/v1/assistants/{aid}"), None).await;
    let conn_route = format!("TELNYXCONN#{}", conn["carrier_connection_id"].as_str().unwrap());
    let asst_route = format!("VAPIASST#{}", asst["vapi_assistant_id"].as_str().unwrap());
    assert!(route_of(&env, &conn_route).await.is_some(), "the connection's route was written with `synced`");
    assert!(route_of(&env, &asst_route).await.is_some(), "the assistant's route was written with its Vapi id");

    // Damage from before routes went with their state: both gone. A redelivered sync puts them back.
    for pk in [&conn_route, &asst_route] {
        let key = [("pk".to_owned(), s_attr(pk)), ("sk".to_owned(), s_attr("ROUTE"))];
        env.dynamo.delete_item().table_name(&env.shared.info.table).set_key(Some(key.into())).send().await.unwrap();
    }
    let user_id = patchbay_domain::UserId::parse(&uid).unwrap();
    let commands = [
        patchbay_domain::CommandEnvelope::sync_connection(user_id.clone(), patchbay_domain::ConnectionId::parse(&cid).unwrap(), 1),
        patchbay_domain::CommandEnvelope::sync_assistant(user_id.clone(), patchbay_domain::AssistantId::parse(&aid).unwrap(), 1),
    ];
    let worker = patchbay_worker::Worker::new(&env.wiring);
    for c in &commands {
        // Redelivered as SQS would (a store collision is retried by the next delivery).
        let mut done = false;
        for receive in 2..8 {
            match worker.handle(&patchbay_e2e::record(c, receive)).await {
                patchbay_worker::Handled::Done(_) => {
                    done = true;
                    break;
                }
                patchbay_worker::Handled::Retry(_) => continue,
            }
        }
        assert!(done, "the redelivery of {c:?} never completed");
    }
    assert!(route_of(&env, &conn_route).await.is_some(), "the connection's route is back");
    assert!(route_of(&env, &asst_route).await.is_some(), "the assistant's route is back");

    // A report that names no assistant, on the assistant's number: the dashboard names it all the same.
    let body = report("f16-by-number", "+13125550104", 30, 0.05);
    assert_eq!(env.post_vapi(&body, &[("x-vapi-secret", DEV_VAPI_SECRET.to_owned())]).await, 200);
    let dash = env.until(&token, "/v1/dashboard", |b| b["assistants"].as_array().is_some_and(|a| !a.is_empty())).await;
    assert_eq!(dash["assistants"][0]["name"], "Desk", "{dash}");

    // Deleted with their resource.
    let (st, _) = env.call(&token, Method::DELETE, &format!("/v1/sip-connections/{cid}/phone-numbers/+13125550105"), None).await;
    assert_eq!(st, 202);
    env.until(&token, &format!("/v1/sip-connections/{cid}"), |b| b["phone_numbers"].as_array().is_some_and(|p| p.is_empty())).await;
    let (st, b) = env.call(&token, Method::DELETE, &format!("/v1/sip-connections/{cid}"), None).await;
    assert_eq!(st, 202, "{b}");
    let (st, b) = env.call(&token, Method::DELETE, &format!("/v1/assistants/{aid}"), None).await;
    assert_eq!(st, 202, "{b}");
    for path in [format!("/v1/sip-connections/{cid}"), format!("/v1/assistants/{aid}")] {
        let gone =
            patchbay_e2e::eventually(30, || async { (env.call(&token, Method::GET, &path, None).await.0 == 404).then_some(()) }).await;
        assert!(gone.is_some(), "{path} was never purged");
    }
    assert!(route_of(&env, &conn_route).await.is_none(), "the connection's route went with it");
    assert!(route_of(&env, &asst_route).await.is_none(), "the assistant's route went with it");
}

/// `/v1/calls` is newest first by when each call started, whatever order the reports came in: ten
/// reports a quarter of a second apart (so several share a second, and some start on a whole
/// second), posted shuffled.
#[tokio::test]
async fn calls_are_listed_by_when_they_started_newest_first() {
    let env = TestEnv::new(PARTS).await;
    let (_, token) = user();
    setup(&env, &token, "+13125550106", "+13125550107").await;
    let base = time::OffsetDateTime::now_utc().replace_nanosecond(0).unwrap() - time::Duration::minutes(30);
    let mut order: Vec<i64> = (0..10).collect();
    patchbay_e2e::shuffle(&mut order, 7);
    for i in &order {
        let start = base + time::Duration::milliseconds(250 * i);
        let end = start + time::Duration::seconds(20);
        let body = json!({"message": {
            "type": "end-of-call-report", "endedReason": "customer-ended-call",
            "call": {"id": format!("order-{i}"), "type": "inboundPhoneCall", "customer": {"number": "+14155550123"}},
            "phoneNumber": {"number": "+13125550106"},
            "startedAt": patchbay_adapters::wire::rfc3339(start), "endedAt": patchbay_adapters::wire::rfc3339(end),
            "durationSeconds": 20, "cost": 0.01, "artifact": {}, "analysis": {}
        }})
        .to_string();
        assert_eq!(env.post_vapi(&body, &[("x-vapi-secret", DEV_VAPI_SECRET.to_owned())]).await, 200);
    }
    let list = env.until(&token, "/v1/calls?limit=50", |b| b["data"].as_array().is_some_and(|d| d.len() == 10)).await;
    let ids: Vec<&str> = list["data"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    let want: Vec<String> = (0..10).rev().map(|i| format!("vapi-order-{i}")).collect();
    assert_eq!(ids, want, "newest start first");
}
