//! `reconcile` and `dlq list|redrive`: calls to the running stack's operator routes.

use std::time::Duration;

use super::{parse_env, Error};

/// One operator call to the running local stack (`PATCHBAY_PORT`), its JSON answer printed.
pub(crate) async fn ops_call(method: reqwest::Method, path: &str) -> Result<(), Error> {
    let port: u16 = parse_env("PATCHBAY_PORT", 3000)?;
    let url = format!("http://127.0.0.1:{port}{path}");
    let res = patchbay_adapters::tls::reqwest_builder()
        .build()?
        .request(method, &url)
        .timeout(Duration::from_secs(600))
        .send()
        .await
        .map_err(|e| format!("no local stack answered at {url} (start it with scripts/up): {e}"))?;
    let status = res.status();
    let body: serde_json::Value = res.json().await.unwrap_or(serde_json::Value::Null);
    println!("{}", serde_json::to_string_pretty(&body)?);
    if !status.is_success() {
        return Err(format!("{url} answered {status}").into());
    }
    Ok(())
}

/// `events tail`: every event the running local stack publishes, as the bus delivers it to a rule of
/// the stack's own, one JSON line each, until interrupted.
pub(crate) async fn events_tail() -> Result<(), Error> {
    let port: u16 = parse_env("PATCHBAY_PORT", 3000)?;
    let url = format!("http://127.0.0.1:{port}/local/events/tail");
    let client = patchbay_adapters::tls::reqwest_builder().timeout(Duration::from_secs(30)).build()?;
    loop {
        let res = client.get(&url).send().await.map_err(|e| format!("no local stack answered at {url} (start it with scripts/up): {e}"))?;
        if !res.status().is_success() {
            return Err(format!("{url} answered {}", res.status()).into());
        }
        let body: serde_json::Value = res.json().await?;
        let events = body["events"].as_array().cloned().unwrap_or_default();
        for e in &events {
            println!("{}", serde_json::to_string(e)?);
        }
        if events.is_empty() {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}
