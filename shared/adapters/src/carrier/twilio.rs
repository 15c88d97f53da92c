//! Twilio REST API 2010-04-01 client (numbers), following `../shared/providers/twilio_api_v2010.json`:
//! `GET /AvailablePhoneNumbers/{Country}/Local.json`, `GET/POST /IncomingPhoneNumbers.json`,
//! `DELETE /IncomingPhoneNumbers/{Sid}.json`; HTTP Basic with the account SID and auth token; form
//! bodies; errors `{code, message, more_info, status}`.

use std::time::Duration;

use async_trait::async_trait;
use patchbay_domain::kernel::provider::CarrierError;
use patchbay_domain::numbers::{AvailableNumber, ListedNumber, NumberCarrier, NumberSearch, Ownership, Purchase};
use patchbay_domain::{CarrierName, CarrierProfileId, E164};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::outbound::is_retryable_status;
use crate::outbound::{self as http, RequestBuilder, Response};

pub struct TwilioClient {
    http: http::Client,
    base: String,
    account_sid: String,
    auth_token: SecretString,
    /// Where Twilio sends inbound SMS for numbers we buy (`{public}/webhooks/twilio/messages`).
    public_url: Option<String>,
}

#[derive(Deserialize)]
struct AvailableList {
    #[serde(default)]
    available_phone_numbers: Vec<TwilioAvailable>,
}

#[derive(Deserialize)]
struct TwilioAvailable {
    phone_number: Option<String>,
    locality: Option<String>,
    region: Option<String>,
    #[serde(default)]
    capabilities: Option<Capabilities>,
}

#[derive(Deserialize, Default)]
struct Capabilities {
    // The spec spells them in lower case; the live API answers `SMS`.
    #[serde(default, alias = "SMS")]
    sms: bool,
    #[serde(default)]
    voice: bool,
}

#[derive(Deserialize)]
struct IncomingList {
    #[serde(default)]
    incoming_phone_numbers: Vec<Incoming>,
    /// The next page's path from the API root (`None` on the last page).
    #[serde(default)]
    next_page_uri: Option<String>,
}

#[derive(Deserialize)]
struct Incoming {
    sid: Option<String>,
    #[serde(default)]
    phone_number: Option<String>,
    #[serde(default)]
    sms_url: Option<String>,
}

#[derive(Deserialize)]
struct MessageList {
    #[serde(default)]
    messages: Vec<SentMessage>,
}

#[derive(Deserialize)]
struct SentMessage {
    sid: Option<String>,
    #[serde(default)]
    body: Option<String>,
    /// RFC 2822, as Twilio writes dates.
    #[serde(default)]
    date_created: Option<String>,
}

/// Pages the reconciler follows at most (1,000 numbers each) before it gives up on a listing.
const LIST_PAGES: usize = 1000;

#[derive(Deserialize, Default)]
struct TwilioError {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
}

impl TwilioClient {
    pub fn new(
        base: &str,
        account_sid: &str,
        auth_token: SecretString,
        public_url: Option<String>,
        timeout: Duration,
    ) -> Result<Self, CarrierError> {
        if !account_sid.starts_with("AC") || account_sid.len() != 34 || !account_sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(CarrierError::NotConfigured("twilio_account_sid must be AC followed by 32 hex digits".into()));
        }
        Ok(Self {
            http: http::Client::new(timeout),
            base: base.trim_end_matches('/').to_owned(),
            account_sid: account_sid.to_owned(),
            auth_token,
            public_url: public_url.map(|u| u.trim_end_matches('/').to_owned()),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/2010-04-01/Accounts/{}{path}", self.base, self.account_sid)
    }

    async fn send(&self, req: RequestBuilder<'_>) -> Result<Response, CarrierError> {
        let res =
            req.basic_auth(&self.account_sid, self.auth_token.expose_secret()).header("accept", "application/json").send().await.map_err(
                |e| {
                    CarrierError::Transient(if e.is_timeout() {
                        "twilio did not answer in time".into()
                    } else if e.is_connect() {
                        "could not connect to twilio".into()
                    } else {
                        format!("twilio request failed: {}", e)
                    })
                },
            )?;
        let status = res.status();
        if res.is_success() {
            return Ok(res);
        }
        let body: TwilioError = res.json().unwrap_or_default();
        let code = body.code.map(|c| c.to_string()).unwrap_or_default();
        let message = body.message.unwrap_or_else(|| format!("HTTP {status}"));
        // 20429: too many requests (also sent as HTTP 429).
        if is_retryable_status(status) || code == "20429" {
            return Err(CarrierError::Transient(format!("twilio answered {status}: {code} {message}")));
        }
        if status == 404 {
            return Err(CarrierError::NotFound);
        }
        Err(CarrierError::Permanent { status, code, message })
    }
}

fn unreadable(e: http::Error) -> CarrierError {
    CarrierError::Transient(format!("twilio answer unreadable: {}", e))
}

#[async_trait]
impl NumberCarrier for TwilioClient {
    fn name(&self) -> CarrierName {
        CarrierName::Twilio
    }

    async fn search(&self, q: &NumberSearch) -> Result<Vec<AvailableNumber>, CarrierError> {
        let mut query: Vec<(&str, String)> = vec![("SmsEnabled", "true".into()), ("PageSize", q.limit.to_string())];
        if let Some(a) = &q.area_code {
            query.push(("AreaCode", a.as_str().to_owned()));
        }
        let res =
            self.send(self.http.get(self.url(&format!("/AvailablePhoneNumbers/{}/Local.json", q.country.as_str()))).query(&query)).await?;
        let list: AvailableList = res.json().map_err(unreadable)?;
        Ok(list
            .available_phone_numbers
            .into_iter()
            .filter_map(|a| {
                let e164 = E164::parse(a.phone_number.as_deref()?).ok()?;
                let caps = a.capabilities.unwrap_or_default();
                Some(AvailableNumber { phone_number: e164, region: a.region, locality: a.locality, sms: caps.sms, voice: caps.voice })
            })
            .take(usize::from(q.limit))
            .collect())
    }

    async fn find_owned(&self, e164: &E164) -> Result<Ownership, CarrierError> {
        // Twilio buys synchronously: a listed number is in service.
        let res = self.send(self.http.get(self.url("/IncomingPhoneNumbers.json")).query(&[("PhoneNumber", e164.as_str())])).await?;
        let list: IncomingList = res.json().map_err(unreadable)?;
        Ok(list.incoming_phone_numbers.into_iter().find_map(|n| n.sid).map_or(Ownership::NotOwned, Ownership::Owned))
    }

    async fn list_numbers(&self) -> Result<Vec<ListedNumber>, CarrierError> {
        let mut out = Vec::new();
        let mut req = self.http.get(self.url("/IncomingPhoneNumbers.json")).query(&[("PageSize", "1000")]);
        for _ in 0..LIST_PAGES {
            let list: IncomingList = self.send(req).await?.json().map_err(unreadable)?;
            for n in list.incoming_phone_numbers {
                let (Some(id), Some(e164)) = (n.sid, n.phone_number.as_deref().and_then(|p| E164::parse(p).ok())) else { continue };
                // Bought through Patchbay: its inbound SMS comes to this deployment's receiver.
                let patchbay = match (&self.public_url, &n.sms_url) {
                    (Some(base), Some(url)) => url.starts_with(base.as_str()),
                    _ => false,
                };
                out.push(ListedNumber { e164, id, messaging_profile_id: None, patchbay });
            }
            match list.next_page_uri.filter(|u| !u.is_empty()) {
                Some(next) => req = self.http.get(format!("{}{next}", self.base)),
                None => return Ok(out),
            }
        }
        Err(CarrierError::Transient(format!("twilio listed more than {LIST_PAGES} pages of numbers")))
    }

    async fn buy(&self, e164: &E164) -> Result<Purchase, CarrierError> {
        let mut form: Vec<(&str, String)> = vec![("PhoneNumber", e164.as_str().to_owned())];
        if let Some(base) = &self.public_url {
            form.push(("SmsUrl", format!("{base}/webhooks/twilio/messages")));
            form.push(("SmsMethod", "POST".into()));
        }
        let res = self.send(self.http.post(self.url("/IncomingPhoneNumbers.json")).form(&form)).await?;
        let bought: Incoming = res.json().map_err(unreadable)?;
        bought.sid.map(Purchase::Done).ok_or_else(|| CarrierError::Transient("twilio answered no sid".into()))
    }

    async fn order_status(&self, _order_id: &str, e164: &E164) -> Result<Purchase, CarrierError> {
        // Twilio buys synchronously; there is no order to follow.
        match self.find_owned(e164).await? {
            Ownership::Owned(sid) => Ok(Purchase::Done(sid)),
            _ => Err(CarrierError::Transient("twilio does not list the number yet".into())),
        }
    }

    async fn release(&self, carrier_number_id: &str) -> Result<(), CarrierError> {
        self.send(self.http.delete(self.url(&format!("/IncomingPhoneNumbers/{carrier_number_id}.json")))).await?;
        Ok(())
    }

    async fn set_messaging_profile(&self, _carrier_number_id: &str, _profile: Option<&CarrierProfileId>) -> Result<(), CarrierError> {
        // Messaging profiles are Patchbay's (and Telnyx's) notion; a Twilio number has nothing to change.
        Ok(())
    }

    async fn find_sent(&self, from: &E164, to: &E164, text: &str, since: OffsetDateTime) -> Result<Option<String>, CarrierError> {
        // `DateSent>` filters by day; the creation time and the body pick the message out of it.
        let day = since.date().to_string();
        let query = [("From", from.as_str()), ("To", to.as_str()), ("DateSent>", day.as_str()), ("PageSize", "100")];
        let res = self.send(self.http.get(self.url("/Messages.json")).query(&query)).await?;
        let list: MessageList = res.json().map_err(unreadable)?;
        Ok(list.messages.into_iter().find_map(|m| {
            let created =
                m.date_created.as_deref().and_then(|d| OffsetDateTime::parse(d, &time::format_description::well_known::Rfc2822).ok());
            (m.body.as_deref() == Some(text) && created.is_none_or(|c| c >= since)).then_some(m.sid).flatten()
        }))
    }

    async fn send_sms(&self, from: &E164, to: &E164, text: &str, _profile: Option<&CarrierProfileId>) -> Result<String, CarrierError> {
        let mut form: Vec<(&str, String)> =
            vec![("From", from.as_str().to_owned()), ("To", to.as_str().to_owned()), ("Body", text.to_owned())];
        if let Some(base) = &self.public_url {
            form.push(("StatusCallback", format!("{base}/webhooks/twilio/status")));
        }
        let res = self.send(self.http.post(self.url("/Messages.json")).form(&form)).await?;
        let sent: Incoming = res.json().map_err(unreadable)?;
        sent.sid.ok_or_else(|| CarrierError::Transient("twilio answered no sid".into()))
    }
}
