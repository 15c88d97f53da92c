//! Webhook endpoints: where a user wants their events delivered, signed by the Standard Webhooks
//! specification, and what each delivery attempt did.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::{Duration, OffsetDateTime};

use crate::kernel::error::ValidationError;
use crate::kernel::event::EventType;
use crate::kernel::ids::{EndpointId, UserId};

/// How long the previous secret still signs after a rotation.
pub const ROTATION_OVERLAP: Duration = Duration::hours(24);
/// An endpoint that has failed every delivery for this long is disabled.
pub const DISABLE_AFTER_FAILING: Duration = Duration::days(5);
/// Endpoints a user may have.
pub const MAX_ENDPOINTS: usize = 20;

/// An endpoint URL, as given: `https` with a host (or, where the deployment allows it, `http` to a
/// loopback address: the local stack), no credentials, no fragment, at most 2,048 bytes. Where it
/// points is checked apart, by resolving it (`UrlGuard`), at registration and at every send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointUrl {
    raw: String,
    host: String,
    https: bool,
}

impl EndpointUrl {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let bad = |why: &str| ValidationError::new("url", "invalid_url", why.to_owned());
        if raw.len() > 2048 {
            return Err(bad("must be at most 2048 bytes"));
        }
        if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(bad("must not contain spaces or control characters"));
        }
        let (scheme, rest) = raw.split_once("://").ok_or_else(|| bad("must be an absolute https URL"))?;
        let https = match scheme {
            "https" => true,
            "http" => false,
            _ => return Err(bad("must be an https URL")),
        };
        if rest.contains('#') {
            return Err(bad("must not have a fragment"));
        }
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        if authority.contains('@') {
            return Err(bad("must not carry credentials"));
        }
        let host = match authority.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default().to_owned(),
            None => authority.rsplit_once(':').map_or(authority, |(h, _)| h).to_owned(),
        };
        if host.is_empty() {
            return Err(bad("must name a host"));
        }
        Ok(Self { raw: raw.to_owned(), host: host.to_ascii_lowercase(), https })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The host, lowercase (an IPv6 literal without its brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn is_https(&self) -> bool {
        self.https
    }
}

/// Whether an address is one no webhook may reach: loopback, private, link-local (the cloud
/// metadata service at 169.254.169.254 among them), shared (CGNAT), unspecified, multicast,
/// broadcast, documentation and benchmarking ranges, IPv6 unique-local and link-local, and IPv4
/// addresses mapped or translated into IPv6.
pub fn forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            let s = v6.segments();
            // NAT64 (64:ff9b::/96) carries an IPv4 address in its last 32 bits.
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                return forbidden_v4(Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8));
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local (fd00:ec2::254, the EC2 metadata service, is one)
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || v6 == Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 1)
        }
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

/// A signing secret: `whsec_` and the base64 of 32 random bytes (Standard Webhooks). Shown once, in
/// the answer that creates or rotates it; kept in the secret store, never in the table or a log.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    pub fn generate() -> Self {
        use rand::TryRngCore;
        let mut key = [0u8; 32];
        rand::rngs::OsRng.try_fill_bytes(&mut key).expect("the operating system's random source");
        Self(format!("whsec_{}", STANDARD.encode(key)))
    }

    /// A secret read back from the secret store.
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    fn key(&self) -> Vec<u8> {
        STANDARD.decode(self.0.trim_start_matches("whsec_")).unwrap_or_default()
    }

    /// `v1,` and the base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key()).expect("HMAC takes any key length");
        mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([redacted])")
    }
}

/// What signs an endpoint's deliveries: the current secret, and during a rotation's overlap the
/// previous one too.
#[derive(Debug, Clone)]
pub struct SigningKeys {
    pub current: WebhookSecret,
    pub previous: Option<(WebhookSecret, OffsetDateTime)>,
}

impl SigningKeys {
    /// The `webhook-signature` header at `now`: the current secret's signature, and the previous
    /// one's while its overlap lasts, space-separated.
    pub fn header(&self, id: &str, timestamp: i64, body: &str, now: OffsetDateTime) -> String {
        let mut sigs = vec![self.current.sign(id, timestamp, body)];
        if let Some((previous, until)) = &self.previous {
            if now < *until {
                sigs.push(previous.sign(id, timestamp, body));
            }
        }
        sigs.join(" ")
    }
}

/// A user's webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    pub user_id: UserId,
    pub id: EndpointId,
    pub url: EndpointUrl,
    /// The types it receives; empty: every type.
    pub event_types: Vec<EventType>,
    pub description: Option<String>,
    pub enabled: bool,
    /// Why Patchbay disabled it (`gone`: it answered 410; `failing`: it failed for five days).
    pub disabled_reason: Option<String>,
    /// Since when every delivery to it has failed (cleared by a success).
    pub failing_since: Option<OffsetDateTime>,
    pub version: u64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl WebhookEndpoint {
    pub fn new(user_id: UserId, new: NewEndpoint, now: OffsetDateTime) -> Self {
        Self {
            user_id,
            id: EndpointId::new_v7(),
            url: new.url,
            event_types: new.event_types,
            description: new.description,
            enabled: new.enabled,
            disabled_reason: None,
            failing_since: None,
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }

    /// Whether an event of `t` goes to it (a test event goes only to the endpoint it names).
    pub fn wants(&self, t: EventType) -> bool {
        self.enabled && t != EventType::WebhookEndpointTest && (self.event_types.is_empty() || self.event_types.contains(&t))
    }
}

/// What a create asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEndpoint {
    pub url: EndpointUrl,
    pub event_types: Vec<EventType>,
    pub description: Option<String>,
    pub enabled: bool,
}

/// What a PATCH changes (absent: unchanged; `description: Some(None)` clears it).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EndpointPatch {
    pub url: Option<EndpointUrl>,
    pub event_types: Option<Vec<EventType>>,
    pub description: Option<Option<String>>,
    pub enabled: Option<bool>,
}

/// `event_types`: each a catalogue type, at most once; empty means every type.
pub fn parse_event_types(raw: &[String]) -> Result<Vec<EventType>, ValidationError> {
    let mut out = Vec::new();
    for (i, t) in raw.iter().enumerate() {
        let t = EventType::parse(&format!("event_types[{i}]"), t)?;
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

/// `description`: at most 200 characters, no control characters; blank is none.
pub fn parse_description(raw: Option<&str>) -> Result<Option<String>, ValidationError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(d) if d.chars().count() > 200 || d.chars().any(char::is_control) => {
            Err(ValidationError::new("description", "invalid_description", "must be at most 200 characters, no control characters"))
        }
        Some(d) => Ok(Some(d.to_owned())),
    }
}

/// One delivery attempt, as `GET …/deliveries` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    /// Time-ordered (a UUIDv7).
    pub id: String,
    pub endpoint_id: EndpointId,
    pub event_id: String,
    pub event_type: EventType,
    pub at: OffsetDateTime,
    /// The endpoint's HTTP status, when it answered.
    pub status: Option<u16>,
    pub duration_ms: u64,
    /// Why it failed, in words (a timeout, a refused address, a non-2xx answer).
    pub error: Option<String>,
    /// A replay asked for by the user (not the event's own delivery).
    pub replay: bool,
}

impl DeliveryAttempt {
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_https_with_a_host_and_nothing_hidden() {
        let u = EndpointUrl::parse("https://Hooks.Example.com:8443/in?x=1").unwrap();
        assert_eq!((u.host(), u.is_https()), ("hooks.example.com", true));
        assert_eq!(EndpointUrl::parse("https://[2001:db8::1]/x").unwrap().host(), "2001:db8::1");
        for bad in [
            "",
            "ftp://x.example",
            "https://",
            "https://user:pw@x.example/",
            "https://x.example/#f",
            "hooks.example.com",
            "https://x .example",
        ] {
            assert_eq!(EndpointUrl::parse(bad).unwrap_err().field, "url", "{bad}");
        }
    }

    #[test]
    fn private_metadata_and_mapped_addresses_are_forbidden() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(forbidden(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"] {
            assert!(!forbidden(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn signatures_follow_standard_webhooks_and_rotation_signs_twice() {
        // The specification's example: secret, id, timestamp and body, and the signature it gives.
        let secret = WebhookSecret::from_stored("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into());
        let sig = secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, r#"{"test": 2432232314}"#);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let now = OffsetDateTime::now_utc();
        let keys = SigningKeys { current: WebhookSecret::generate(), previous: Some((secret.clone(), now + Duration::hours(1))) };
        assert_eq!(keys.header("e", 1, "{}", now).split(' ').count(), 2, "both while the overlap lasts");
        assert_eq!(keys.header("e", 1, "{}", now + Duration::hours(2)).split(' ').count(), 1, "then only the new one");
        assert!(format!("{:?}", keys.current).contains("redacted"));
        assert!(WebhookSecret::generate().expose().starts_with("whsec_"));
    }

    #[test]
    fn event_types_parse_and_name_the_bad_one() {
        assert_eq!(parse_event_types(&["message.received".into(), "message.received".into()]).unwrap(), vec![EventType::MessageReceived]);
        assert_eq!(parse_event_types(&["call.ended".into(), "nope".into()]).unwrap_err().field, "event_types[1]");
    }
}
