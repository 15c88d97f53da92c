//! Webhook signatures, checked before anything in a webhook is parsed or stored.
//!
//! - Telnyx: Ed25519 over `"{telnyx-timestamp}|{raw body}"`, headers `telnyx-signature-ed25519`
//!   (base64, 64 bytes) and `telnyx-timestamp` (Unix seconds), 300 s tolerance either way.
//! - Twilio: `X-Twilio-Signature` = base64(HMAC-SHA1(auth token, URL + every POST parameter's name
//!   and value, sorted)). The URL is the public one Twilio called, tried without its port and with
//!   the default port, as the official validators do. For JSON bodies Twilio puts
//!   `bodySHA256=<hex sha256 of the body>` in the URL and signs the URL alone.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{Signature, VerifyingKey};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// How far a Telnyx timestamp may be from now, either way.
pub const TELNYX_TOLERANCE_SECS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("malformed header {0}")]
    Malformed(&'static str),
    #[error("timestamp outside the {TELNYX_TOLERANCE_SECS} s window")]
    Stale,
    #[error("signature does not match")]
    BadSignature,
}

/// What the webhook receiver verifies with. A missing key or token refuses every webhook of that carrier.
#[derive(Clone, Default)]
pub struct WebhookKeys {
    /// `TELNYX_PUBLIC_KEY`.
    pub telnyx_key: Option<VerifyingKey>,
    /// The Twilio auth token, from the carrier secret.
    pub twilio_token: Option<SecretString>,
    /// `PATCHBAY_PUBLIC_URL`: the base URL Twilio signs against (the function cannot see it).
    pub public_url: Option<String>,
    /// Vapi's webhook secret (`vapi_webhook_secret` in the carrier secret).
    pub vapi_secret: Option<SecretString>,
}

impl WebhookKeys {
    pub fn with_vapi_secret(self, vapi_secret: Option<SecretString>) -> Self {
        Self { vapi_secret, ..self }
    }

    /// `telnyx_key` in the portal's base64 format.
    pub fn new(telnyx_key: Option<&str>, twilio_token: Option<SecretString>, public_url: Option<String>) -> Result<Self, WebhookError> {
        Ok(Self { telnyx_key: telnyx_key.map(telnyx_public_key).transpose()?, twilio_token, public_url, vapi_secret: None })
    }
}

/// A Telnyx public key: base64 of the 32 raw bytes (the portal's format).
pub fn telnyx_public_key(b64: &str) -> Result<VerifyingKey, WebhookError> {
    let bytes = STANDARD.decode(b64.trim()).map_err(|_| WebhookError::Malformed("public key"))?;
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| WebhookError::Malformed("public key"))?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| WebhookError::Malformed("public key"))
}

pub fn verify_telnyx(
    key: &VerifyingKey,
    signature: Option<&str>,
    timestamp: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), WebhookError> {
    let signature = signature.ok_or(WebhookError::MissingHeader("telnyx-signature-ed25519"))?;
    let timestamp = timestamp.ok_or(WebhookError::MissingHeader("telnyx-timestamp"))?;
    let ts: i64 = timestamp.trim().parse().map_err(|_| WebhookError::Malformed("telnyx-timestamp"))?;
    if (now - ts).abs() > TELNYX_TOLERANCE_SECS {
        return Err(WebhookError::Stale);
    }
    let sig = STANDARD.decode(signature.trim()).map_err(|_| WebhookError::Malformed("telnyx-signature-ed25519"))?;
    let sig: [u8; 64] = sig.try_into().map_err(|_| WebhookError::Malformed("telnyx-signature-ed25519"))?;
    let mut signed = Vec::with_capacity(timestamp.len() + 1 + body.len());
    signed.extend_from_slice(timestamp.trim().as_bytes());
    signed.push(b'|');
    signed.extend_from_slice(body);
    key.verify_strict(&signed, &Signature::from_bytes(&sig)).map_err(|_| WebhookError::BadSignature)
}

type HmacSha1 = Hmac<Sha1>;

fn twilio_mac(token: &SecretString, url: &str, params: &[(String, String)]) -> Result<HmacSha1, WebhookError> {
    let mut mac = HmacSha1::new_from_slice(token.expose_secret().as_bytes()).map_err(|_| WebhookError::Malformed("auth token"))?;
    mac.update(url.as_bytes());
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    Ok(mac)
}

/// The signature Twilio would send for `url` and `params` (for tests and the sandbox).
pub fn twilio_signature(token: &SecretString, url: &str, params: &[(String, String)]) -> Result<String, WebhookError> {
    Ok(STANDARD.encode(twilio_mac(token, url, params)?.finalize().into_bytes()))
}

/// `url` without an explicit port, and with the scheme's default port when it has none.
fn port_variants(url: &str) -> Vec<String> {
    let Some((scheme, rest)) = url.split_once("://") else { return vec![url.to_owned()] };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = match authority.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => authority,
    };
    let default_port = if scheme.eq_ignore_ascii_case("https") { "443" } else { "80" };
    let with_port = if host == authority { format!("{scheme}://{host}:{default_port}{path}") } else { url.to_owned() };
    vec![format!("{scheme}://{host}{path}"), with_port]
}

/// Form-encoded webhooks: the signature over the URL and the sorted parameters.
pub fn verify_twilio(token: &SecretString, signature: Option<&str>, url: &str, params: &[(String, String)]) -> Result<(), WebhookError> {
    let signature = signature.ok_or(WebhookError::MissingHeader("X-Twilio-Signature"))?;
    let sig = STANDARD.decode(signature.trim()).map_err(|_| WebhookError::Malformed("X-Twilio-Signature"))?;
    for candidate in port_variants(url) {
        if twilio_mac(token, &candidate, params)?.verify_slice(&sig).is_ok() {
            return Ok(());
        }
    }
    Err(WebhookError::BadSignature)
}

/// JSON-bodied webhooks: the URL carries `bodySHA256`; the signature is over the URL alone, and the
/// body must hash to that value.
pub fn verify_twilio_json(token: &SecretString, signature: Option<&str>, url: &str, body: &[u8]) -> Result<(), WebhookError> {
    verify_twilio(token, signature, url, &[])?;
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    let claimed = query.split('&').find_map(|kv| kv.strip_prefix("bodySHA256=")).ok_or(WebhookError::Malformed("bodySHA256"))?;
    let actual = hex::encode(Sha256::digest(body));
    if hmac_free_eq(claimed.as_bytes(), actual.as_bytes()) {
        Ok(())
    } else {
        Err(WebhookError::BadSignature)
    }
}

/// Constant-time equality of two byte strings (for hashes).
fn hmac_free_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// How far a Vapi `x-timestamp` may be from now, either way.
pub const VAPI_TOLERANCE_SECS: i64 = 300;

type HmacSha256 = Hmac<Sha256>;

/// The `x-signature` Vapi sends: hex of HMAC-SHA256 over `"{x-timestamp}.{raw body}"`.
pub fn vapi_signature(secret: &SecretString, timestamp: &str, body: &[u8]) -> Result<String, WebhookError> {
    let mut mac = HmacSha256::new_from_slice(secret.expose_secret().as_bytes()).map_err(|_| WebhookError::Malformed("vapi secret"))?;
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(hex::encode(mac.finalize().into_bytes()))
}

/// A Vapi webhook: either `X-Vapi-Secret` equal to the configured secret (compared in constant time),
/// or `x-signature` = hex HMAC-SHA256 of `"{x-timestamp}.{body}"` with `x-timestamp` (Unix seconds)
/// within 300 s of now.
pub fn verify_vapi(
    secret: &SecretString,
    header_secret: Option<&str>,
    signature: Option<&str>,
    timestamp: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), WebhookError> {
    if let Some(given) = header_secret {
        return if hmac_free_eq(given.as_bytes(), secret.expose_secret().as_bytes()) { Ok(()) } else { Err(WebhookError::BadSignature) };
    }
    let signature = signature.ok_or(WebhookError::MissingHeader("x-vapi-secret or x-signature"))?;
    let timestamp = timestamp.ok_or(WebhookError::MissingHeader("x-timestamp"))?.trim();
    let ts: i64 = timestamp.parse().map_err(|_| WebhookError::Malformed("x-timestamp"))?;
    if (now - ts).abs() > VAPI_TOLERANCE_SECS {
        return Err(WebhookError::Stale);
    }
    let given = hex::decode(signature.trim()).map_err(|_| WebhookError::Malformed("x-signature"))?;
    let mut mac = HmacSha256::new_from_slice(secret.expose_secret().as_bytes()).map_err(|_| WebhookError::Malformed("vapi secret"))?;
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&given).map_err(|_| WebhookError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    #[test]
    fn vapi_webhooks_verify_by_secret_header_or_timed_hmac() {
        let secret = SecretString::from("vapi-webhook-secret");
        let body = br#"{"message":{"type":"end-of-call-report"}}"#;
        let now = 1_795_316_400;
        // The shared secret header, compared whole.
        assert_eq!(verify_vapi(&secret, Some("vapi-webhook-secret"), None, None, body, now), Ok(()));
        assert_eq!(verify_vapi(&secret, Some("vapi-webhook-secreT"), None, None, body, now), Err(WebhookError::BadSignature));
        assert_eq!(verify_vapi(&secret, Some("vapi-webhook-secret-and-more"), None, None, body, now), Err(WebhookError::BadSignature));
        assert_eq!(verify_vapi(&secret, Some(""), None, None, body, now), Err(WebhookError::BadSignature));
        // The timed HMAC.
        let ts = now.to_string();
        let sig = vapi_signature(&secret, &ts, body).unwrap();
        assert_eq!(verify_vapi(&secret, None, Some(&sig), Some(&ts), body, now), Ok(()));
        assert_eq!(verify_vapi(&secret, None, Some(&sig), Some(&ts), body, now + VAPI_TOLERANCE_SECS), Ok(()));
        let wrong = vapi_signature(&SecretString::from("another"), &ts, body).unwrap();
        assert_eq!(verify_vapi(&secret, None, Some(&wrong), Some(&ts), body, now), Err(WebhookError::BadSignature));
        let tampered = br#"{"message":{"type":"end-of-call-report","x":1}}"#;
        assert_eq!(verify_vapi(&secret, None, Some(&sig), Some(&ts), tampered, now), Err(WebhookError::BadSignature));
        assert_eq!(verify_vapi(&secret, None, Some(&sig), Some(&ts), body, now + VAPI_TOLERANCE_SECS + 1), Err(WebhookError::Stale));
        assert_eq!(verify_vapi(&secret, None, Some(&sig), Some(&ts), body, now - VAPI_TOLERANCE_SECS - 1), Err(WebhookError::Stale));
        // The signature is over this timestamp: another one (in the window) does not verify.
        assert_eq!(verify_vapi(&secret, None, Some(&sig), Some(&(now + 1).to_string()), body, now), Err(WebhookError::BadSignature));
        assert!(matches!(verify_vapi(&secret, None, None, None, body, now), Err(WebhookError::MissingHeader(_))));
        assert!(matches!(verify_vapi(&secret, None, Some(&sig), None, body, now), Err(WebhookError::MissingHeader("x-timestamp"))));
        assert_eq!(verify_vapi(&secret, None, Some("zz"), Some(&ts), body, now), Err(WebhookError::Malformed("x-signature")));
    }

    // The fixed test key pair the Telnyx PHP SDK's tests publish (see ../shared/providers/README.md).
    const TELNYX_PUBLIC: &str = "+7E99DXiiQXvceNX4nHm3Lbm5mqPWad5RhDr2ufuCik=";
    const TELNYX_SECRET: &str = "p68GNpDl9oAQohBiK0MEOFIjxnoFnz0uGGeJqxQ5PSb7sT30NeKJBe9x41ficebctubmao9Zp3lGEOva5+4KKQ==";

    fn telnyx_signer() -> SigningKey {
        let bytes = STANDARD.decode(TELNYX_SECRET).unwrap();
        SigningKey::from_bytes(&bytes[..32].try_into().unwrap())
    }

    fn sign(ts: &str, body: &[u8]) -> String {
        let mut m = format!("{ts}|").into_bytes();
        m.extend_from_slice(body);
        STANDARD.encode(telnyx_signer().sign(&m).to_bytes())
    }

    #[test]
    fn the_published_pair_matches() {
        assert_eq!(STANDARD.encode(telnyx_signer().verifying_key().to_bytes()), TELNYX_PUBLIC);
    }

    #[test]
    fn telnyx_signatures() {
        let key = telnyx_public_key(TELNYX_PUBLIC).unwrap();
        let body = br#"{"data":{"event_type":"message.received","id":"e1"}}"#;
        let now = 1_795_316_400;
        let ts = now.to_string();
        let sig = sign(&ts, body);
        assert_eq!(verify_telnyx(&key, Some(&sig), Some(&ts), body, now), Ok(()));
        // Within the window either way.
        assert_eq!(verify_telnyx(&key, Some(&sig), Some(&ts), body, now + 300), Ok(()));
        assert_eq!(verify_telnyx(&key, Some(&sig), Some(&ts), body, now - 300), Ok(()));
        // Tampered body, stale or future timestamp, wrong key, missing or malformed headers.
        assert_eq!(
            verify_telnyx(&key, Some(&sig), Some(&ts), br#"{"data":{"event_type":"message.received","id":"e2"}}"#, now),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(verify_telnyx(&key, Some(&sig), Some(&ts), body, now + 301), Err(WebhookError::Stale));
        let future = (now + 301).to_string();
        assert_eq!(verify_telnyx(&key, Some(&sign(&future, body)), Some(&future), body, now), Err(WebhookError::Stale));
        let other = SigningKey::from_bytes(&[7u8; 32]).verifying_key();
        assert_eq!(verify_telnyx(&other, Some(&sig), Some(&ts), body, now), Err(WebhookError::BadSignature));
        // A signature for another timestamp does not carry over.
        let earlier = (now - 10).to_string();
        assert_eq!(verify_telnyx(&key, Some(&sig), Some(&earlier), body, now), Err(WebhookError::BadSignature));
        assert_eq!(verify_telnyx(&key, None, Some(&ts), body, now), Err(WebhookError::MissingHeader("telnyx-signature-ed25519")));
        assert_eq!(verify_telnyx(&key, Some(&sig), None, body, now), Err(WebhookError::MissingHeader("telnyx-timestamp")));
        assert_eq!(
            verify_telnyx(&key, Some("not base64!"), Some(&ts), body, now),
            Err(WebhookError::Malformed("telnyx-signature-ed25519"))
        );
        assert_eq!(verify_telnyx(&key, Some(&sig), Some("yesterday"), body, now), Err(WebhookError::Malformed("telnyx-timestamp")));
        assert!(telnyx_public_key("AAAA").is_err());
    }

    // Vectors from twilio-python's tests/unit/test_request_validator.py.
    fn token() -> SecretString {
        SecretString::from("12345")
    }
    const URI: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    fn params() -> Vec<(String, String)> {
        [("CallSid", "CA1234567890ABCDE"), ("Digits", "1234"), ("From", "+14158675309"), ("To", "+18005551212"), ("Caller", "+14158675309")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn twilio_signatures_match_the_official_vectors() {
        assert_eq!(twilio_signature(&token(), URI, &params()).unwrap(), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
        let dup: Vec<(String, String)> = [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(twilio_signature(&token(), URI, &dup).unwrap(), "IK+Dwps556ElfBT0I3Rgjkr1wJU=");
        assert_eq!(verify_twilio(&token(), Some("RSOYDt4T1cUTdK1PDd93/VVr8B8="), URI, &params()), Ok(()));
    }

    #[test]
    fn twilio_urls_with_and_without_ports() {
        let p = params();
        // Signed without a port, received with one: the port is removed.
        assert_eq!(
            verify_twilio(&token(), Some("RSOYDt4T1cUTdK1PDd93/VVr8B8="), "https://mycompany.com:1234/myapp.php?foo=1&bar=2", &p),
            Ok(())
        );
        assert_eq!(
            verify_twilio(&token(), Some("Zmvh+3yNM1Phv2jhDCwEM3q5ebU="), "http://mycompany.com:1234/myapp.php?foo=1&bar=2", &p),
            Ok(())
        );
        // Signed with the default port, received without: the port is added.
        assert_eq!(verify_twilio(&token(), Some("kvajT1Ptam85bY51eRf/AJRuM3w="), URI, &p), Ok(()));
        assert_eq!(verify_twilio(&token(), Some("0ZXoZLH/DfblKGATFgpif+LLRf4="), "http://mycompany.com/myapp.php?foo=1&bar=2", &p), Ok(()));
    }

    #[test]
    fn twilio_rejections() {
        let mut tampered = params();
        tampered[1].1 = "9999".into();
        assert_eq!(verify_twilio(&token(), Some("RSOYDt4T1cUTdK1PDd93/VVr8B8="), URI, &tampered), Err(WebhookError::BadSignature));
        assert_eq!(
            verify_twilio(&SecretString::from("other"), Some("RSOYDt4T1cUTdK1PDd93/VVr8B8="), URI, &params()),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify_twilio(&token(), Some("RSOYDt4T1cUTdK1PDd93/VVr8B8="), "https://attacker.example/myapp.php?foo=1&bar=2", &params()),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(verify_twilio(&token(), None, URI, &params()), Err(WebhookError::MissingHeader("X-Twilio-Signature")));
        assert_eq!(verify_twilio(&token(), Some("%%%"), URI, &params()), Err(WebhookError::Malformed("X-Twilio-Signature")));
    }

    #[test]
    fn twilio_json_body_variant() {
        let body = br#"{"property": "value", "boolean": true}"#;
        let url = format!("{URI}&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620");
        assert_eq!(verify_twilio_json(&token(), Some("a9nBmqA0ju/hNViExpshrM61xv4="), &url, body), Ok(()));
        assert_eq!(
            verify_twilio_json(&token(), Some("a9nBmqA0ju/hNViExpshrM61xv4="), &url, br#"{"property": "other", "boolean": true}"#),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(verify_twilio_json(&token(), Some("a9nBmqA0ju/hNViExpshrM61xv4="), URI, body), Err(WebhookError::BadSignature));
    }
}
