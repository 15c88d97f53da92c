//! Webhook deliveries go out here: the URL a user gave is untrusted. Only `https` (the local stack may
//! allow `http` to loopback: `PATCHBAY_WEBHOOKS_ALLOW_LOOPBACK`); a host is resolved at registration
//! and again at every send by a resolver that drops every forbidden address (private, loopback,
//! link-local and metadata, shared, reserved: `events::forbidden`), and the connection goes to what
//! that resolver answered, so DNS cannot rebind it between the check and the send; an IP literal is
//! checked as written. No redirect is followed, the call is bounded by a short timeout, and at most
//! a kilobyte of the answer is read and ignored.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_smithy_runtime_api::client::dns::{DnsFuture, ResolveDns, ResolveDnsError};
use patchbay_domain::events::{forbidden, EndpointUrl, SendOutcome, UrlGuard, WebhookSender};
use patchbay_domain::ValidationError;

use crate::outbound;

/// A delivery's whole call, connect to last byte read.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// A host name's lookup.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);
/// What is read of a receiver's answer.
const ANSWER_CAP: usize = 1024;

/// Resolves a host and keeps only the addresses a webhook may reach.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    allow_loopback: bool,
}

impl GuardedResolver {
    fn allowed(&self, ip: IpAddr) -> bool {
        !forbidden(ip) || (self.allow_loopback && ip.is_loopback())
    }

    async fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, String> {
        let found: Vec<IpAddr> = match tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((host, 443))).await {
            Ok(Ok(addrs)) => addrs.map(|a| a.ip()).collect(),
            Ok(Err(_)) | Err(_) => return Err("does not resolve".into()),
        };
        let allowed: Vec<IpAddr> = found.iter().copied().filter(|ip| self.allowed(*ip)).collect();
        match (found.is_empty(), allowed.is_empty()) {
            (true, _) => Err("does not resolve".into()),
            (false, true) => Err("resolves only to private, loopback, link-local or metadata addresses".into()),
            (false, false) => Ok(allowed),
        }
    }
}

impl ResolveDns for GuardedResolver {
    fn resolve_dns<'a>(&'a self, name: &'a str) -> DnsFuture<'a> {
        DnsFuture::new(async move { self.resolve(name).await.map_err(ResolveDnsError::new) })
    }
}

/// The webhook sender and the registration check, one guard for both.
#[derive(Clone)]
pub struct WebhookHttp {
    resolver: GuardedResolver,
    client: outbound::Client,
}

impl WebhookHttp {
    pub fn new(allow_loopback: bool) -> Self {
        let resolver = GuardedResolver { allow_loopback };
        Self { client: outbound::Client::with_resolver(DELIVERY_TIMEOUT, resolver.clone(), ANSWER_CAP), resolver }
    }

    /// The scheme and an IP literal, checked as written (a name is checked by the resolver).
    fn precheck(&self, url: &EndpointUrl) -> Result<(), String> {
        if !url.is_https() && !self.resolver.allow_loopback {
            return Err("must be an https URL".into());
        }
        if let Ok(ip) = url.host().parse::<IpAddr>() {
            if !self.resolver.allowed(ip) {
                return Err("points at a private, loopback, link-local or metadata address".into());
            }
            if !url.is_https() && !ip.is_loopback() {
                return Err("must be an https URL".into());
            }
        } else if !url.is_https() && url.host() != "localhost" {
            return Err("must be an https URL".into());
        }
        Ok(())
    }
}

#[async_trait]
impl UrlGuard for WebhookHttp {
    async fn check(&self, url: &EndpointUrl) -> Result<(), ValidationError> {
        let refuse = |why: String| ValidationError::new("url", "url_not_allowed", why);
        self.precheck(url).map_err(refuse)?;
        if url.host().parse::<IpAddr>().is_err() {
            self.resolver.resolve(url.host()).await.map_err(refuse)?;
        }
        Ok(())
    }
}

#[async_trait]
impl WebhookSender for WebhookHttp {
    async fn post(&self, url: &EndpointUrl, headers: &[(&'static str, String)], body: &str) -> SendOutcome {
        let started = Instant::now();
        let elapsed = |s: Instant| s.elapsed().as_millis() as u64;
        if let Err(why) = self.precheck(url) {
            return SendOutcome { status: None, duration_ms: 0, error: Some(format!("refused: the URL {why}")), retry_after: None };
        }
        let mut req = self.client.post(url.as_str()).body(body.as_bytes().to_vec());
        for (name, value) in headers {
            req = req.header(name, value.clone());
        }
        match req.send().await {
            Ok(res) => {
                let status = res.status();
                let ok = (200..300).contains(&status);
                SendOutcome {
                    status: Some(status),
                    duration_ms: elapsed(started),
                    error: (!ok).then(|| format!("answered {status}")),
                    retry_after: res.retry_after().and_then(|v| v.trim().parse::<u64>().ok()).map(Duration::from_secs),
                }
            }
            Err(e) => SendOutcome { status: None, duration_ms: elapsed(started), error: Some(e.to_string()), retry_after: None },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> EndpointUrl {
        EndpointUrl::parse(s).unwrap()
    }

    #[tokio::test]
    async fn private_loopback_and_metadata_urls_are_refused_naming_url() {
        let guard = WebhookHttp::new(false);
        for bad in [
            "https://169.254.169.254/latest/meta-data/",
            "https://127.0.0.1/hook",
            "https://10.0.0.5/hook",
            "https://[::1]/hook",
            "https://[fd00:ec2::254]/hook",
            "https://localhost/hook",
            "http://93.184.216.34/hook",
        ] {
            let e = guard.check(&url(bad)).await.unwrap_err();
            assert_eq!((e.field.as_str(), e.code), ("url", "url_not_allowed"), "{bad}");
        }
    }

    #[tokio::test]
    async fn the_local_setting_allows_http_to_loopback_only() {
        let guard = WebhookHttp::new(true);
        guard.check(&url("http://127.0.0.1:9/hook")).await.unwrap();
        for bad in ["http://10.0.0.5/hook", "https://169.254.169.254/", "http://93.184.216.34/hook"] {
            assert!(guard.check(&url(bad)).await.is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_refused_url_is_never_called() {
        let sent = WebhookHttp::new(false).post(&url("https://169.254.169.254/"), &[], "{}").await;
        assert_eq!(sent.status, None);
        assert!(sent.error.unwrap().starts_with("refused"));
    }
}
