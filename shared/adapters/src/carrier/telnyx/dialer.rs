//! The dialer at Telnyx (`DialerCarrier`): credential connections, telephony credentials, WebRTC tokens, and a number's voice route.

use async_trait::async_trait;
use patchbay_domain::dialer::{jwt_expiry, CarrierConnection, ConnectionSpec, DialerCarrier, WebrtcToken, TOKEN_LIFETIME};
use patchbay_domain::kernel::provider::CarrierError;
use patchbay_domain::CarrierName;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{id_string, unreadable, ListEnvelope, TelnyxClient};

/// A credential connection as Telnyx answers it. Its answer also carries `password`: never read,
/// never logged.
#[derive(Deserialize)]
struct TelnyxConnection {
    id: serde_json::Value,
    #[serde(default)]
    connection_name: Option<String>,
    #[serde(default)]
    user_name: Option<String>,
    #[serde(default)]
    active: Option<bool>,
}

#[derive(Deserialize)]
struct ConnectionEnvelope {
    data: TelnyxConnection,
}

#[derive(Deserialize)]
struct IdOnly {
    id: serde_json::Value,
}

#[derive(Deserialize)]
struct IdEnvelope {
    data: IdOnly,
}

#[derive(Serialize)]
struct ConnectionBody<'a> {
    connection_name: &'a str,
    user_name: &'a str,
    password: &'a str,
    active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    webhook_event_url: Option<&'a str>,
}

impl<'a> ConnectionBody<'a> {
    fn of(spec: &'a ConnectionSpec) -> Self {
        Self {
            connection_name: &spec.name,
            user_name: &spec.user_name,
            password: spec.password.expose(),
            active: spec.active,
            webhook_event_url: spec.webhook_event_url.as_deref(),
        }
    }
}

/// How many connections one list page asks for, and how many pages are read at most.
const CONNECTION_PAGE: usize = 250;

const CONNECTION_PAGES: u32 = 40;

impl TelnyxClient {
    /// The account's credential connections, every page (optionally those whose name contains `name`).
    async fn connections(&self, name: Option<&str>) -> Result<Vec<CarrierConnection>, CarrierError> {
        let mut out = Vec::new();
        for page in 1..=CONNECTION_PAGES {
            let mut query = vec![("page[number]".to_owned(), page.to_string()), ("page[size]".to_owned(), CONNECTION_PAGE.to_string())];
            if let Some(n) = name {
                query.push(("filter[connection_name][contains]".to_owned(), n.to_owned()));
            }
            let res = self.send(self.http.get(self.url("/credential_connections")).query(&query)).await?;
            let list: ListEnvelope<TelnyxConnection> = res.json().map_err(unreadable)?;
            let n = list.data.len();
            out.extend(list.data.into_iter().map(|c| CarrierConnection {
                id: id_string(&c.id),
                name: c.connection_name.unwrap_or_default(),
                user_name: c.user_name,
                active: c.active.unwrap_or(true),
            }));
            if n < CONNECTION_PAGE {
                break;
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl DialerCarrier for TelnyxClient {
    fn name(&self) -> CarrierName {
        CarrierName::Telnyx
    }

    async fn create_credential_connection(&self, spec: &ConnectionSpec) -> Result<String, CarrierError> {
        let res = self.send(self.http.post(self.url("/credential_connections")).json(&ConnectionBody::of(spec))).await?;
        let created: ConnectionEnvelope = res.json().map_err(unreadable)?;
        Ok(id_string(&created.data.id))
    }

    async fn find_credential_connection(&self, user_name: &str) -> Result<Option<String>, CarrierError> {
        Ok(self.connections(None).await?.into_iter().find(|c| c.user_name.as_deref() == Some(user_name)).map(|c| c.id))
    }

    async fn update_credential_connection(&self, id: &str, spec: &ConnectionSpec) -> Result<(), CarrierError> {
        self.send(self.http.patch(self.url(&format!("/credential_connections/{id}"))).json(&ConnectionBody::of(spec))).await?;
        Ok(())
    }

    async fn delete_credential_connection(&self, id: &str) -> Result<(), CarrierError> {
        self.send(self.http.delete(self.url(&format!("/credential_connections/{id}")))).await?;
        Ok(())
    }

    async fn list_credential_connections(&self) -> Result<Vec<CarrierConnection>, CarrierError> {
        self.connections(None).await
    }

    async fn create_telephony_credential(&self, connection_id: &str, name: &str) -> Result<String, CarrierError> {
        let body = serde_json::json!({"connection_id": connection_id, "name": name});
        let res = self.send(self.http.post(self.url("/telephony_credentials")).json(&body)).await?;
        let created: IdEnvelope = res.json().map_err(unreadable)?;
        Ok(id_string(&created.data.id))
    }

    async fn delete_telephony_credential(&self, id: &str) -> Result<(), CarrierError> {
        self.send(self.http.delete(self.url(&format!("/telephony_credentials/{id}")))).await?;
        Ok(())
    }

    async fn webrtc_token(&self, credential_id: &str, now: OffsetDateTime) -> Result<WebrtcToken, CarrierError> {
        let res =
            self.send_accepting(self.http.post(self.url(&format!("/telephony_credentials/{credential_id}/token"))), "text/plain").await?;
        let token = res.text().map_err(unreadable)?.trim().to_owned();
        if token.split('.').count() != 3 {
            return Err(CarrierError::Transient("telnyx answered a token that is not a JWT".into()));
        }
        let expires_at = jwt_expiry(&token).unwrap_or(now + TOKEN_LIFETIME);
        Ok(WebrtcToken { token, expires_at })
    }

    async fn set_number_connection(&self, carrier_number_id: &str, connection_id: Option<&str>) -> Result<(), CarrierError> {
        let body = serde_json::json!({"connection_id": connection_id.unwrap_or("")});
        self.send(self.http.patch(self.url(&format!("/phone_numbers/{carrier_number_id}"))).json(&body)).await?;
        Ok(())
    }
}
