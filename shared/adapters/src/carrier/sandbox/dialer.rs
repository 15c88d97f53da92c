//! The sandbox dialer: credential connections and WebRTC tokens without a carrier (the tokens are
//! JWTs signed with a fixed development key).

use async_trait::async_trait;
use patchbay_domain::dialer::{CarrierConnection, ConnectionSpec, DialerCarrier, WebrtcToken, TOKEN_LIFETIME};
use patchbay_domain::kernel::provider::CarrierError;
use patchbay_domain::CarrierName;

/// The sandbox's dialer side: credential connections kept in memory (one process: the local stack),
/// ids derived from the SIP user name, telephony credentials derived from the connection, and
/// WebRTC tokens that are HS256 JWTs signed with the sandbox's own key (`exp` 24 h ahead, naming the
/// connection, carrying no password). A connection named `sandbox-reject…` is refused like a Telnyx 422.
#[derive(Default)]
pub struct SandboxDialer {
    connections: std::sync::Mutex<std::collections::BTreeMap<String, CarrierConnection>>,
}

/// The key the sandbox signs its tokens with: fixed, public, and good for nothing but the sandbox.
pub const SANDBOX_TOKEN_KEY: &[u8] = b"patchbay-sandbox-webrtc-token-key";

impl SandboxDialer {
    fn with<T>(&self, f: impl FnOnce(&mut std::collections::BTreeMap<String, CarrierConnection>) -> T) -> T {
        let mut guard = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }
}

fn refused_name(name: &str) -> Result<(), CarrierError> {
    if name.starts_with("sandbox-reject") {
        return Err(CarrierError::Permanent {
            status: 422,
            code: "10015".into(),
            message: "Invalid connection name: the sandbox refuses names starting with sandbox-reject".into(),
        });
    }
    Ok(())
}

#[async_trait]
impl DialerCarrier for SandboxDialer {
    fn name(&self) -> CarrierName {
        CarrierName::Sandbox
    }

    async fn create_credential_connection(&self, spec: &ConnectionSpec) -> Result<String, CarrierError> {
        refused_name(&spec.name)?;
        let id = format!("sbx-conn-{}", spec.user_name);
        let c = CarrierConnection { id: id.clone(), name: spec.name.clone(), user_name: Some(spec.user_name.clone()), active: spec.active };
        self.with(|m| m.insert(id.clone(), c));
        Ok(id)
    }

    async fn find_credential_connection(&self, user_name: &str) -> Result<Option<String>, CarrierError> {
        Ok(self.with(|m| m.values().find(|c| c.user_name.as_deref() == Some(user_name)).map(|c| c.id.clone())))
    }

    async fn update_credential_connection(&self, id: &str, spec: &ConnectionSpec) -> Result<(), CarrierError> {
        refused_name(&spec.name)?;
        self.with(|m| match m.get_mut(id) {
            Some(c) => {
                c.name = spec.name.clone();
                c.active = spec.active;
                Ok(())
            }
            None => Err(CarrierError::NotFound),
        })
    }

    async fn delete_credential_connection(&self, id: &str) -> Result<(), CarrierError> {
        self.with(|m| m.remove(id)).map(|_| ()).ok_or(CarrierError::NotFound)
    }

    async fn list_credential_connections(&self) -> Result<Vec<CarrierConnection>, CarrierError> {
        Ok(self.with(|m| m.values().cloned().collect()))
    }

    async fn create_telephony_credential(&self, connection_id: &str, _name: &str) -> Result<String, CarrierError> {
        Ok(format!("sbx-cred-{connection_id}"))
    }

    async fn delete_telephony_credential(&self, _id: &str) -> Result<(), CarrierError> {
        Ok(())
    }

    async fn webrtc_token(&self, credential_id: &str, now: time::OffsetDateTime) -> Result<WebrtcToken, CarrierError> {
        use base64::Engine;
        use hmac::Mac;
        let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let expires_at = now + TOKEN_LIFETIME;
        let header = b64(br#"{"alg":"HS256","typ":"JWT"}"#);
        let claims = serde_json::json!({
            "iss": "patchbay-sandbox",
            "sub": credential_id,
            "connection_id": credential_id.trim_start_matches("sbx-cred-"),
            "iat": now.unix_timestamp(),
            "exp": expires_at.unix_timestamp(),
        });
        let payload = b64(claims.to_string().as_bytes());
        let mut mac =
            hmac::Hmac::<sha2::Sha256>::new_from_slice(SANDBOX_TOKEN_KEY).map_err(|e| CarrierError::NotConfigured(e.to_string()))?;
        mac.update(format!("{header}.{payload}").as_bytes());
        let sig = b64(&mac.finalize().into_bytes());
        Ok(WebrtcToken { token: format!("{header}.{payload}.{sig}"), expires_at })
    }

    async fn set_number_connection(&self, _carrier_number_id: &str, _connection_id: Option<&str>) -> Result<(), CarrierError> {
        Ok(())
    }
}
