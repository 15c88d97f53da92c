//! The sandbox carrier: a deterministic stand-in for Telnyx, for local runs and demos. A profile's
//! carrier id is derived from its Patchbay id, so a repeated create answers the same id, as an
//! idempotent carrier would. A name that starts with `sandbox-reject` is refused the way Telnyx
//! refuses a bad request (422), so the `failed` path can be seen end to end.
//!
//! Numbers: a deterministic inventory per area code (US and CA): `+1 {area code} 555 0100` to `0149`
//! are for sale; `0150` to `0199` exist but are refused at purchase the way Twilio refuses a number
//! someone else took (21422), for the failure path. Without an area code: 212 (US) or 416 (CA).

mod dialer;

use async_trait::async_trait;
use patchbay_domain::kernel::provider::CarrierError;
use patchbay_domain::numbers::{AvailableNumber, ListedNumber, NumberCarrier, NumberSearch, Ownership, Purchase};
use patchbay_domain::profiles::{CarrierProfileSpec, ListedProfile, ProfileCarrier};
use patchbay_domain::{CarrierName, CarrierProfileId, E164};
use uuid::Uuid;

pub use dialer::{SandboxDialer, SANDBOX_TOKEN_KEY};

#[derive(Default, Clone)]
pub struct SandboxCarrier {
    /// Where the sandbox sends its signed delivery receipts (local stack only).
    pub webhooks: Option<std::sync::Arc<SandboxWebhooks>>,
    /// The simulated account: its numbers, messaging profiles and open orders (in memory, per process).
    pub account: std::sync::Arc<std::sync::Mutex<SandboxAccount>>,
}

/// What the sandbox account holds.
#[derive(Default, Debug)]
pub struct SandboxAccount {
    /// Number → (its id, the messaging profile it is on).
    pub numbers: std::collections::BTreeMap<String, (String, Option<String>)>,
    /// Profile id → name.
    pub profiles: std::collections::BTreeMap<String, String>,
    /// While set, a purchase is an order that stays pending until `complete_orders`.
    pub hold_orders: bool,
    /// Order id → (number, completed).
    pub orders: std::collections::BTreeMap<String, (String, bool)>,
    /// Every text sent, in order: (its id, from, to, text, when).
    pub sent: Vec<(String, String, String, String, time::OffsetDateTime)>,
}

/// The sandbox's delivery receipts: Telnyx-format `message.sent` then `message.finalized`, signed
/// with a local Ed25519 key, posted to the receiver so they take the verified path real ones take.
pub struct SandboxWebhooks {
    pub url: String,
    pub key: ed25519_dalek::SigningKey,
    pub http: crate::outbound::Client,
}

impl SandboxWebhooks {
    pub async fn post_event(&self, event_type: &str, body: serde_json::Value) -> Result<u16, crate::outbound::Error> {
        self.post_event_at(event_type, body, time::OffsetDateTime::now_utc()).await
    }

    /// An event that says it occurred at `at`.
    pub async fn post_event_at(
        &self,
        event_type: &str,
        body: serde_json::Value,
        at: time::OffsetDateTime,
    ) -> Result<u16, crate::outbound::Error> {
        use base64::Engine;
        use ed25519_dalek::Signer;
        let body = serde_json::json!({"data": {"event_type": event_type, "id": Uuid::new_v4().to_string(), "occurred_at": crate::wire::rfc3339(at), "record_type": "event", "payload": body}, "meta": {"attempt": 1, "delivered_to": self.url}}).to_string();
        let ts = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
        let sig = base64::engine::general_purpose::STANDARD.encode(self.key.sign(format!("{ts}|{body}").as_bytes()).to_bytes());
        let res = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("telnyx-timestamp", ts)
            .header("telnyx-signature-ed25519", sig)
            .body(body)
            .send()
            .await?;
        Ok(res.status())
    }

    fn receipts(self: std::sync::Arc<Self>, id: String, from: String, to: String) {
        tokio::spawn(async move {
            // A text to a number ending in 0199 is not delivered (Telnyx's 40008), so the failure
            // path can be seen locally.
            let undeliverable = to.ends_with("0199");
            let last = if undeliverable { "delivery_failed" } else { "delivered" };
            for (event, status) in [("message.sent", "sent"), ("message.finalized", last)] {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                let mut payload = serde_json::json!({"id": id, "direction": "outbound", "from": {"phone_number": from}, "to": [{"phone_number": to, "status": status}], "type": "SMS"});
                if status == "delivery_failed" {
                    payload["errors"] = serde_json::json!([{"code": "40008", "title": "Undeliverable", "detail": "The sandbox does not deliver to numbers ending in 0199."}]);
                }
                // The receiver answers 503 until the worker has recorded the id: retry like Telnyx would.
                for attempt in 0..10u64 {
                    match self.post_event(event, payload.clone()).await {
                        Ok(200) => break,
                        answer => {
                            tracing::debug!(event, ?answer, attempt, "sandbox receipt not taken yet");
                            tokio::time::sleep(std::time::Duration::from_millis(200 * (attempt + 1))).await
                        }
                    }
                }
            }
        });
    }
}

/// Namespace of the sandbox's derived ids.
const SANDBOX_NS: Uuid = Uuid::from_u128(0x5a1d_b0c5_0000_4000_8000_7061_7463_6862);

impl SandboxCarrier {
    fn with<T>(&self, f: impl FnOnce(&mut SandboxAccount) -> T) -> T {
        let mut guard = self.account.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    fn number_id(e164: &E164) -> String {
        format!("sbx-PN{}", e164.as_str().trim_start_matches('+'))
    }

    // What an operator could do in the carrier's portal behind Patchbay's back (the reconciler's tests).

    /// Delete a number from the account.
    pub fn drop_number(&self, e164: &E164) -> bool {
        self.with(|a| a.numbers.remove(e164.as_str()).is_some())
    }

    /// Rename a messaging profile.
    pub fn rename_profile(&self, id: &str, name: &str) -> bool {
        self.with(|a| a.profiles.get_mut(id).map(|n| *n = name.to_owned()).is_some())
    }

    pub fn profile_name(&self, id: &str) -> Option<String> {
        self.with(|a| a.profiles.get(id).cloned())
    }

    pub fn owns(&self, e164: &E164) -> bool {
        self.with(|a| a.numbers.contains_key(e164.as_str()))
    }

    /// Purchases become orders that stay pending (`true`) until `complete_orders`.
    pub fn hold_orders(&self, hold: bool) {
        self.with(|a| a.hold_orders = hold)
    }

    /// Every open order completes: its number joins the account.
    pub fn complete_orders(&self) {
        self.with(|a| {
            let done: Vec<String> = a
                .orders
                .values_mut()
                .filter(|(_, d)| !*d)
                .map(|(n, d)| {
                    *d = true;
                    n.clone()
                })
                .collect();
            for e164 in done {
                let id = format!("sbx-PN{}", e164.trim_start_matches('+'));
                a.numbers.insert(e164, (id, None));
            }
        })
    }

    fn check(spec: &CarrierProfileSpec) -> Result<(), CarrierError> {
        if spec.name.as_str().starts_with("sandbox-reject") {
            return Err(CarrierError::Permanent {
                status: 422,
                code: "10015".into(),
                message: "Invalid parameter: the sandbox rejects names that start with sandbox-reject".into(),
            });
        }
        Ok(())
    }

    pub fn carrier_id_for(spec: &CarrierProfileSpec) -> Result<CarrierProfileId, CarrierError> {
        let id = Uuid::new_v5(&SANDBOX_NS, spec.local_id.to_string().as_bytes());
        CarrierProfileId::parse(&format!("sbx-{}", id.hyphenated())).map_err(|e| CarrierError::Transient(e.message))
    }
}

#[async_trait]
impl ProfileCarrier for SandboxCarrier {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    async fn create_messaging_profile(&self, spec: &CarrierProfileSpec) -> Result<CarrierProfileId, CarrierError> {
        Self::check(spec)?;
        let id = Self::carrier_id_for(spec)?;
        self.with(|a| a.profiles.insert(id.as_str().to_owned(), spec.name.as_str().to_owned()));
        Ok(id)
    }

    async fn update_messaging_profile(&self, id: &CarrierProfileId, spec: &CarrierProfileSpec) -> Result<(), CarrierError> {
        Self::check(spec)?;
        self.with(|a| a.profiles.insert(id.as_str().to_owned(), spec.name.as_str().to_owned()));
        Ok(())
    }

    async fn delete_messaging_profile(&self, id: &CarrierProfileId) -> Result<(), CarrierError> {
        self.with(|a| a.profiles.remove(id.as_str()));
        Ok(())
    }

    async fn list_messaging_profiles(&self) -> Result<Vec<ListedProfile>, CarrierError> {
        // The sandbox account is Patchbay's alone: everything in it looks like Patchbay's.
        Ok(self
            .with(|a| a.profiles.iter().map(|(id, name)| ListedProfile { id: id.clone(), name: name.clone(), patchbay: true }).collect()))
    }
}

impl SandboxCarrier {
    fn inventory(q: &NumberSearch) -> Vec<AvailableNumber> {
        let area = match (q.country.as_str(), &q.area_code) {
            ("US" | "CA", Some(a)) => a.as_str().to_owned(),
            ("US", None) => "212".to_owned(),
            ("CA", None) => "416".to_owned(),
            _ => return Vec::new(),
        };
        (100..150)
            .filter_map(|line| E164::parse(&format!("+1{area}5550{line}")).ok())
            .take(usize::from(q.limit))
            .map(|e| AvailableNumber { phone_number: e, region: None, locality: Some(format!("Sandbox {area}")), sms: true, voice: true })
            .collect()
    }
}

#[async_trait]
impl NumberCarrier for SandboxCarrier {
    fn name(&self) -> CarrierName {
        CarrierName::Sandbox
    }

    async fn search(&self, q: &NumberSearch) -> Result<Vec<AvailableNumber>, CarrierError> {
        Ok(Self::inventory(q))
    }

    async fn find_owned(&self, e164: &E164) -> Result<Ownership, CarrierError> {
        Ok(self.with(|a| match a.numbers.get(e164.as_str()) {
            Some((id, _)) => Ownership::Owned(id.clone()),
            None if a.orders.values().any(|(n, done)| n == e164.as_str() && !done) => Ownership::Pending,
            None => Ownership::NotOwned,
        }))
    }

    async fn list_numbers(&self) -> Result<Vec<ListedNumber>, CarrierError> {
        Ok(self.with(|a| {
            a.numbers
                .iter()
                .filter_map(|(e164, (id, profile))| {
                    Some(ListedNumber {
                        e164: E164::parse(e164).ok()?,
                        id: id.clone(),
                        messaging_profile_id: profile.clone(),
                        patchbay: true,
                    })
                })
                .collect()
        }))
    }

    async fn buy(&self, e164: &E164) -> Result<Purchase, CarrierError> {
        let digits = e164.as_str().trim_start_matches('+');
        let line: u32 = digits.get(digits.len().saturating_sub(4)..).and_then(|l| l.parse().ok()).unwrap_or(0);
        let sandbox_exchange = digits.len() == 11 && digits.starts_with('1') && &digits[4..7] == "555";
        if !sandbox_exchange || !(100..150).contains(&line) {
            return Err(CarrierError::Permanent {
                status: 400,
                code: "21422".into(),
                message: "Phone number is not available (sandbox: only +1 NPA 555 0100-0149 are for sale)".into(),
            });
        }
        let id = Self::number_id(e164);
        Ok(self.with(|a| {
            if a.hold_orders {
                let order = format!("sbx-order-{digits}");
                a.orders.insert(order.clone(), (e164.as_str().to_owned(), false));
                Purchase::Ordered(order)
            } else {
                a.numbers.insert(e164.as_str().to_owned(), (id.clone(), None));
                Purchase::Done(id)
            }
        }))
    }

    async fn order_status(&self, order_id: &str, e164: &E164) -> Result<Purchase, CarrierError> {
        match self.with(|a| a.orders.get(order_id).map(|(_, done)| *done)) {
            Some(true) => Ok(Purchase::Done(Self::number_id(e164))),
            Some(false) => Ok(Purchase::Ordered(order_id.to_owned())),
            None => self.buy(e164).await,
        }
    }

    async fn release(&self, carrier_number_id: &str) -> Result<(), CarrierError> {
        self.with(|a| a.numbers.retain(|_, (id, _)| id != carrier_number_id));
        Ok(())
    }

    async fn set_messaging_profile(&self, carrier_number_id: &str, profile: Option<&CarrierProfileId>) -> Result<(), CarrierError> {
        self.with(|a| {
            if let Some((_, on)) = a.numbers.values_mut().find(|(id, _)| id == carrier_number_id) {
                *on = profile.map(|p| p.as_str().to_owned());
            }
        });
        Ok(())
    }

    async fn find_sent(&self, from: &E164, to: &E164, text: &str, since: time::OffsetDateTime) -> Result<Option<String>, CarrierError> {
        Ok(self.with(|a| {
            a.sent
                .iter()
                .find(|(_, f, t, x, at)| f == from.as_str() && t == to.as_str() && x == text && *at >= since)
                .map(|(id, ..)| id.clone())
        }))
    }

    async fn send_sms(&self, from: &E164, to: &E164, text: &str, _profile: Option<&CarrierProfileId>) -> Result<String, CarrierError> {
        let id = format!("sbx-msg-{}", Uuid::new_v4());
        self.with(|a| a.sent.push((id.clone(), from.to_string(), to.to_string(), text.to_owned(), time::OffsetDateTime::now_utc())));
        if let Some(w) = &self.webhooks {
            w.clone().receipts(id.clone(), from.to_string(), to.to_string());
        }
        Ok(id)
    }
}
