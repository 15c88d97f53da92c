//! Phone numbers at Telnyx (`NumberCarrier`): search, number orders (followed, never placed twice), release, the messaging profile a number is on, sending SMS.

use async_trait::async_trait;
use patchbay_domain::kernel::provider::CarrierError;
use patchbay_domain::numbers::{AvailableNumber, ListedNumber, NumberCarrier, NumberSearch, Ownership, Purchase};
use patchbay_domain::{CarrierName, CarrierProfileId, E164};
use serde::{Deserialize, Serialize};

use super::{unreadable, DataEnvelope, ListEnvelope, TelnyxClient};

#[derive(Deserialize)]
struct TelnyxAvailable {
    phone_number: Option<String>,
    #[serde(default)]
    region_information: Vec<RegionInfo>,
    #[serde(default)]
    features: Vec<Feature>,
}

#[derive(Deserialize)]
struct RegionInfo {
    region_type: Option<String>,
    region_name: Option<String>,
}

#[derive(Deserialize)]
struct Feature {
    name: Option<String>,
}

/// A number of the account (`GET /phone_numbers`): its id and `status`.
#[derive(Deserialize)]
struct OwnedNumber {
    id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    phone_number: Option<String>,
    #[serde(default)]
    messaging_profile_id: Option<String>,
    #[serde(default)]
    customer_reference: Option<String>,
}

/// The order reference Patchbay puts on every number it orders: how the reconciler tells its numbers
/// from the rest of the account.
const CUSTOMER_REFERENCE: &str = "patchbay";

#[derive(Deserialize)]
struct OrderEnvelope {
    data: NumberOrder,
}

#[derive(Deserialize)]
struct NumberOrder {
    id: Option<String>,
    status: Option<String>,
}

#[derive(Serialize)]
struct OrderBody<'a> {
    phone_numbers: [OrderNumber<'a>; 1],
    customer_reference: &'static str,
}

#[derive(Serialize)]
struct OrderNumber<'a> {
    phone_number: &'a str,
}

#[derive(Serialize)]
struct MessagingBody<'a> {
    /// A profile id assigns; `""` takes the number off its profile.
    messaging_profile_id: &'a str,
}

impl TelnyxClient {
    async fn order(&self, order_id: &str) -> Result<NumberOrder, CarrierError> {
        let res = self.send(self.http.get(self.url(&format!("/number_orders/{order_id}")))).await?;
        Ok(res.json::<OrderEnvelope>().map_err(unreadable)?.data)
    }

    /// An order's outcome: its number's id once it succeeded.
    async fn settle(&self, order: NumberOrder, e164: &E164) -> Result<Purchase, CarrierError> {
        let id = order.id.clone().unwrap_or_default();
        match order.status.as_deref() {
            Some("success") => match self.find_owned(e164).await? {
                Ownership::Owned(number_id) => Ok(Purchase::Done(number_id)),
                Ownership::Pending | Ownership::NotOwned => Ok(Purchase::Ordered(id)),
            },
            Some("failure") => Err(CarrierError::Permanent {
                status: 200,
                code: "number_order_failed".into(),
                message: format!("telnyx number order {id} failed"),
            }),
            _ if id.is_empty() => Err(CarrierError::Transient("telnyx answered an order without an id".into())),
            _ => Ok(Purchase::Ordered(id)),
        }
    }
}

#[async_trait]
impl NumberCarrier for TelnyxClient {
    fn name(&self) -> CarrierName {
        CarrierName::Telnyx
    }

    async fn search(&self, q: &NumberSearch) -> Result<Vec<AvailableNumber>, CarrierError> {
        let mut query: Vec<(&str, String)> = vec![
            ("filter[country_code]", q.country.as_str().to_owned()),
            ("filter[limit]", q.limit.to_string()),
            ("filter[features][]", "sms".to_owned()),
        ];
        if let Some(a) = &q.area_code {
            query.push(("filter[national_destination_code]", a.as_str().to_owned()));
        }
        let res = self.send(self.http.get(self.url("/available_phone_numbers")).query(&query)).await?;
        let list: ListEnvelope<TelnyxAvailable> = res.json().map_err(unreadable)?;
        Ok(list
            .data
            .into_iter()
            .filter_map(|a| {
                let e164 = E164::parse(a.phone_number.as_deref()?).ok()?;
                let region = |kind: &str| {
                    a.region_information.iter().find(|r| r.region_type.as_deref() == Some(kind)).and_then(|r| r.region_name.clone())
                };
                let has = |name: &str| a.features.iter().any(|f| f.name.as_deref() == Some(name));
                Some(AvailableNumber {
                    phone_number: e164,
                    region: region("state"),
                    locality: region("rate_center"),
                    sms: has("sms"),
                    voice: has("voice"),
                })
            })
            .take(usize::from(q.limit))
            .collect())
    }

    async fn find_owned(&self, e164: &E164) -> Result<Ownership, CarrierError> {
        let res = self.send(self.http.get(self.url("/phone_numbers")).query(&[("filter[phone_number]", e164.as_str())])).await?;
        let list: ListEnvelope<OwnedNumber> = res.json().map_err(unreadable)?;
        // Only a number in service is owned; `purchase-pending` is an order that has not completed
        // (and may still fail); `purchase-failed`, `deleted` and the like are not ours.
        let mut pending = false;
        for n in list.data {
            match (n.id, n.status.as_deref()) {
                (Some(id), Some("active") | None) => return Ok(Ownership::Owned(id)),
                (_, Some("purchase-pending")) => pending = true,
                _ => {}
            }
        }
        Ok(if pending { Ownership::Pending } else { Ownership::NotOwned })
    }

    async fn list_numbers(&self) -> Result<Vec<ListedNumber>, CarrierError> {
        let list: Vec<OwnedNumber> = self.list_all("/phone_numbers").await?;
        Ok(list
            .into_iter()
            // In service, or on its way out but still the account's; not an order or a port that has not completed.
            .filter(|n| {
                !matches!(
                    n.status.as_deref(),
                    Some("deleted" | "ported-out" | "purchase-failed" | "purchase-pending" | "port-pending" | "port-failed")
                )
            })
            .filter_map(|n| {
                let e164 = E164::parse(n.phone_number.as_deref()?).ok()?;
                let patchbay = n.customer_reference.as_deref() == Some(CUSTOMER_REFERENCE);
                Some(ListedNumber { e164, id: n.id?, messaging_profile_id: n.messaging_profile_id.filter(|m| !m.is_empty()), patchbay })
            })
            .collect())
    }

    async fn buy(&self, e164: &E164) -> Result<Purchase, CarrierError> {
        let body = OrderBody { phone_numbers: [OrderNumber { phone_number: e164.as_str() }], customer_reference: CUSTOMER_REFERENCE };
        let res = self.send(self.http.post(self.url("/number_orders")).json(&body)).await?;
        let order = res.json::<OrderEnvelope>().map_err(unreadable)?.data;
        self.settle(order, e164).await
    }

    async fn order_status(&self, order_id: &str, e164: &E164) -> Result<Purchase, CarrierError> {
        let order = self.order(order_id).await?;
        self.settle(order, e164).await
    }

    async fn release(&self, carrier_number_id: &str) -> Result<(), CarrierError> {
        self.send(self.http.delete(self.url(&format!("/phone_numbers/{carrier_number_id}")))).await?;
        Ok(())
    }

    async fn set_messaging_profile(&self, carrier_number_id: &str, profile: Option<&CarrierProfileId>) -> Result<(), CarrierError> {
        let body = MessagingBody { messaging_profile_id: profile.map(|p| p.as_str()).unwrap_or("") };
        self.send(self.http.patch(self.url(&format!("/phone_numbers/{carrier_number_id}/messaging"))).json(&body)).await?;
        Ok(())
    }

    async fn send_sms(&self, from: &E164, to: &E164, text: &str, profile: Option<&CarrierProfileId>) -> Result<String, CarrierError> {
        let mut body = serde_json::json!({"from": from.as_str(), "to": to.as_str(), "text": text});
        if let Some(p) = profile {
            body["messaging_profile_id"] = serde_json::Value::String(p.as_str().to_owned());
        }
        let res = self.send(self.http.post(self.url("/messages")).json(&body)).await?;
        let sent: DataEnvelope = res.json().map_err(unreadable)?;
        Ok(sent.data.id)
    }
}
