//! Contract tests: the Twilio and Telnyx clients against Prism serving the providers' official
//! OpenAPI specs (`../shared/providers/`). A recording proxy sits between client and mock and keeps
//! Prism's verdict on every request (`sl-violations`, and 422 for a request that breaks the spec).
//! Only request-side violations count: some of the specs' own examples break their response schemas.

use std::future::IntoFuture;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use patchbay_adapters::carrier::{TelnyxClient, TwilioClient};
use patchbay_domain::numbers::{NumberCarrier, NumberSearch};
use patchbay_domain::profiles::{CarrierProfileSpec, ProfileCarrier, ProfileName, WhitelistedDestinations};
use patchbay_domain::{CarrierProfileId, ProfileId, E164};
use patchbay_local::emulator::repo_root;
use secrecy::SecretString;

struct Prism(Child);

impl Drop for Prism {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `prism mock` on a free port, ready when it accepts connections.
async fn prism(spec: &str) -> (Prism, u16) {
    let bin = repo_root().join("local/contract/node_modules/.bin/prism");
    assert!(bin.exists(), "{} is missing: run local/bootstrap.sh", bin.display());
    let spec = repo_root().join("../shared/providers").join(spec);
    assert!(spec.exists(), "{} is missing: the providers' specs sit in ../shared/providers", spec.display());
    let port = free_port();
    let child = Command::new(bin)
        .args(["mock", "-h", "127.0.0.1", "-p", &port.to_string()])
        .arg(&spec)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prism");
    let guard = Prism(child);
    for _ in 0..240 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return (guard, port);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("prism did not start for {}", spec.display());
}

#[derive(Debug, Clone)]
struct Seen {
    request: String,
    status: u16,
    request_violations: Vec<String>,
}

#[derive(Clone)]
struct Proxy {
    upstream: String,
    http: reqwest::Client,
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn forward(State(p): State<Proxy>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    let url = format!("{}{}", p.upstream, parts.uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("/"));
    let mut out = p.http.request(parts.method.clone(), &url).body(bytes.to_vec());
    for (k, v) in parts.headers.iter() {
        if k != "host" && k != "content-length" {
            out = out.header(k, v);
        }
    }
    let res = out.send().await.expect("prism answered");
    let status = res.status().as_u16();
    let violations: Vec<serde_json::Value> =
        res.headers().get("sl-violations").and_then(|v| v.to_str().ok()).and_then(|v| serde_json::from_str(v).ok()).unwrap_or_default();
    let request_violations =
        violations.iter().filter(|v| v["location"].get(0).and_then(|l| l.as_str()) == Some("request")).map(|v| v.to_string()).collect();
    p.seen.lock().unwrap().push(Seen { request: format!("{} {}", parts.method, parts.uri), status, request_violations });
    let mut builder = Response::builder().status(status);
    for (k, v) in res.headers() {
        builder = builder.header(k, v);
    }
    builder.body(Body::from(res.bytes().await.unwrap_or_default())).unwrap()
}

async fn proxy_to(port: u16) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let state = Proxy {
        upstream: format!("http://127.0.0.1:{port}"),
        http: patchbay_adapters::tls::reqwest_builder().build().expect("http client"),
        seen: seen.clone(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(axum::serve(listener, axum::Router::new().fallback(forward).with_state(state)).into_future());
    (format!("http://{addr}"), seen)
}

fn assert_clean(seen: &Arc<Mutex<Vec<Seen>>>, expected: usize) {
    let seen = seen.lock().unwrap().clone();
    for s in &seen {
        eprintln!("{} -> {}", s.request, s.status);
    }
    assert!(seen.len() >= expected, "expected at least {expected} requests, saw {seen:?}");
    for s in &seen {
        assert!(s.request_violations.is_empty() && s.status != 422, "{} breaks the spec: {:?}", s.request, s.request_violations);
    }
}

fn search() -> NumberSearch {
    NumberSearch::parse(Some("US"), Some("212"), Some("5")).unwrap()
}

#[tokio::test]
async fn twilio_client_requests_validate_against_the_official_spec() {
    let (_prism, port) = prism("twilio_api_v2010.json").await;
    let (base, seen) = proxy_to(port).await;
    let c = TwilioClient::new(
        &base,
        "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        SecretString::from("token"),
        Some("https://hooks.example.com".into()),
        Duration::from_secs(10),
    )
    .unwrap();
    let e164 = E164::parse("+12125550123").unwrap();

    let found = c.search(&search()).await.expect("search");
    assert!(!found.is_empty(), "the spec's example offers a number");
    c.find_owned(&e164).await.expect("find owned");
    c.buy(&e164).await.expect("buy");
    c.release("PN0123456789abcdef0123456789abcdef").await.expect("release");
    c.send_sms(&e164, &E164::parse("+14155550123").unwrap(), "Hello from Patchbay", None).await.expect("send");
    // The reconciler's listing.
    c.list_numbers().await.expect("list numbers");
    assert_clean(&seen, 6);
}

#[tokio::test]
async fn telnyx_client_requests_validate_against_the_official_spec() {
    let (_prism, port) = prism("telnyx_spec3.yml").await;
    let (base, seen) = proxy_to(port).await;
    let c = TelnyxClient::new(&base, SecretString::from("KEY_test"), Duration::from_secs(10))
        .unwrap()
        .with_public_url(Some("https://hooks.example.com".into()));
    let e164 = E164::parse("+12125550123").unwrap();
    let spec = CarrierProfileSpec {
        local_id: ProfileId::new_v7(),
        name: ProfileName::parse("Support").unwrap(),
        whitelisted_destinations: WhitelistedDestinations::parse(&["US"]).unwrap(),
    };
    // Find-before-create: the name-filtered listing, then the create with the marked webhook URL.
    c.find_messaging_profile(&spec).await.expect("find messaging profile");
    let cid = c.create_messaging_profile(&spec).await.expect("create messaging profile");
    c.update_messaging_profile(&cid, &spec).await.expect("update messaging profile");
    c.delete_messaging_profile(&cid).await.expect("delete messaging profile");

    c.search(&search()).await.expect("search");
    c.find_owned(&e164).await.expect("find owned");
    let _ = c.buy(&e164).await.expect("order");
    let _ = c.order_status("12ade33a-21c0-473b-b055-b3c836e1c292", &e164).await.expect("order status");
    let profile = CarrierProfileId::parse("dd50eba1-a0c0-4563-9925-b25e842a7cb6").unwrap();
    c.set_messaging_profile("1293384261075731499", Some(&profile)).await.expect("assign to profile");
    c.set_messaging_profile("1293384261075731499", None).await.expect("unassign");
    c.release("1293384261075731499").await.expect("release");
    c.send_sms(&e164, &E164::parse("+14155550123").unwrap(), "Hello from Patchbay", Some(&profile)).await.expect("send");
    // The reconciler's listings.
    c.list_numbers().await.expect("list numbers");
    c.list_messaging_profiles().await.expect("list messaging profiles");
    assert_clean(&seen, 14);
}

#[tokio::test]
async fn telnyx_dialer_requests_validate_against_the_official_spec() {
    use patchbay_domain::dialer::DialerCarrier;
    use patchbay_domain::dialer::{ConnectionSpec, SipPassword};
    use patchbay_domain::ConnectionId;

    let (_prism, port) = prism("telnyx_spec3.yml").await;
    let (base, seen) = proxy_to(port).await;
    let c = TelnyxClient::new(&base, SecretString::from("KEY_test"), Duration::from_secs(10)).unwrap();
    let local_id = ConnectionId::new_v7();
    let spec = ConnectionSpec {
        local_id,
        name: "Front desk".into(),
        user_name: local_id.sip_username(),
        password: SipPassword::generate(),
        active: true,
        webhook_event_url: Some("https://hooks.example.com/webhooks/telnyx".into()),
    };
    let id = c.create_credential_connection(&spec).await.expect("create credential connection");
    c.find_credential_connection(&spec.user_name).await.expect("list credential connections");
    c.update_credential_connection(&id, &spec).await.expect("update credential connection");
    let credential = c.create_telephony_credential(&id, "patchbay-front-desk").await.expect("telephony credential");
    let token = c.webrtc_token(&credential, time::OffsetDateTime::now_utc()).await.expect("token");
    assert_eq!(token.token.split('.').count(), 3, "a JWT");
    c.set_number_connection("1293384261075731499", Some(&id)).await.expect("route the number to the connection");
    c.set_number_connection("1293384261075731499", None).await.expect("route it to none");
    c.delete_telephony_credential(&credential).await.expect("delete telephony credential");
    c.delete_credential_connection(&id).await.expect("delete credential connection");
    assert_clean(&seen, 9);
}

/// Recorded requests checked against a provider's document by `local/contract/validate_requests.py`:
/// `(exit code, report)`.
fn validate_requests(spec: &str, requests: &serde_json::Value) -> (i32, String) {
    let file = std::env::temp_dir().join(format!("patchbay-requests-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&file, requests.to_string()).unwrap();
    let out = Command::new(repo_root().join(".venv/bin/python"))
        .arg(repo_root().join("local/contract/validate_requests.py"))
        .arg(repo_root().join("../shared/providers").join(spec))
        .arg(&file)
        .output()
        .expect("run the request validator (local/bootstrap.sh installs it)");
    let _ = std::fs::remove_file(&file);
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Prism does not finish loading Vapi's document here (it resolves every reference up front), so the
/// Vapi client's requests go to a fake that answers like Vapi and are then checked against the same
/// official document, operation by operation, by a validator that is itself checked to refuse bad ones.
#[tokio::test]
async fn vapi_client_requests_validate_against_the_official_spec() {
    use patchbay_adapters::voice_ai::vapi::{ImportCredentials, VapiClient};
    use patchbay_domain::voice_ai::VoiceAi;
    use patchbay_domain::voice_ai::{AssistantSettings, AssistantSpec, NumberImport, ProviderChoice};
    use patchbay_domain::AssistantId;
    use patchbay_domain::CarrierName;
    use wiremock::matchers::any;
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let fake = MockServer::start().await;
    Mock::given(wiremock::matchers::method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!([])))
        .mount(&fake)
        .await;
    Mock::given(any()).respond_with(ResponseTemplate::new(201).set_body_json(serde_json::json!({"id": "vapi-1"}))).mount(&fake).await;
    let import = ImportCredentials {
        telnyx_credential_id: Some("c0ffee00-0000-4000-8000-000000000001".into()),
        twilio: Some(("ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".into(), SecretString::from("token"))),
    };
    let c = VapiClient::new(&fake.uri(), SecretString::from("vapi-key"), import, Duration::from_secs(10)).unwrap();
    let spec = AssistantSpec {
        local_id: AssistantId::new_v7(),
        name: "Front desk".into(),
        settings: AssistantSettings {
            first_message: Some("Hello!".into()),
            system_prompt: Some("Be brief.".into()),
            model: Some(ProviderChoice { provider: "openai".into(), name: "gpt-4o".into() }),
            // A voice-library id (a preset name like `burt` matches both of the document's own `oneOf`
            // branches for 11labs voices, so no strict validator accepts one).
            voice: Some(ProviderChoice { provider: "11labs".into(), name: "21m00Tcm4TlvDq8ikWAM".into() }),
        },
        server_url: Some("https://hooks.example.com/webhooks/vapi".into()),
        server_secret: Some("secret".into()),
    };
    let id = c.create_assistant(&spec).await.expect("create assistant");
    c.find_assistant(spec.local_id).await.expect("list assistants");
    c.update_assistant(&id, &spec).await.expect("update assistant");
    let e164 = E164::parse("+12125550123").unwrap();
    for carrier in [CarrierName::Twilio, CarrierName::Telnyx] {
        c.import_number(&NumberImport { e164: e164.clone(), carrier, assistant_id: id.clone() }).await.expect("import number");
        c.attach_number("pn-1", carrier, &id).await.expect("attach");
    }
    c.find_number(&e164).await.expect("list phone numbers");
    // The reconciler's listings.
    c.list_assistants().await.expect("list assistants (reconciler)");
    c.list_numbers().await.expect("list phone numbers (reconciler)");
    c.remove_number("pn-1").await.expect("remove");
    c.delete_assistant(&id).await.expect("delete assistant");

    let recorded: Vec<serde_json::Value> = fake
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| {
            serde_json::json!({
                "method": r.method.as_str(),
                "path": r.url.path(),
                "query": r.url.query_pairs().into_owned().collect::<std::collections::HashMap<String, String>>(),
                "body": serde_json::from_slice::<serde_json::Value>(&r.body).ok(),
            })
        })
        .collect();
    assert_eq!(recorded.len(), 12, "{recorded:?}");
    let (code, report) = validate_requests("vapi_openapi.json", &serde_json::Value::Array(recorded.clone()));
    eprintln!("{report}");
    assert_eq!(code, 0, "Vapi requests break the document:\n{report}");
    // The validator refuses what the document refuses: a wrong type, a missing discriminator, an
    // undeclared path.
    let bad = serde_json::json!([
        {"method": "POST", "path": "/assistant", "query": {}, "body": {"name": 123}},
        {"method": "PATCH", "path": "/phone-number/pn-1", "query": {}, "body": {"assistantId": "a"}},
        {"method": "POST", "path": "/assistants", "query": {}, "body": null}
    ]);
    let (code, report) = validate_requests("vapi_openapi.json", &bad);
    assert_eq!((code, report.matches('\n').count()), (1, 4), "{report}");
}
