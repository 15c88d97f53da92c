//! The worker side of messaging: send one queued message through its number's carrier, once.

use time::OffsetDateTime;

use crate::kernel::error::StoreError;
use crate::kernel::ids::{ConversationId, UserId};
use crate::kernel::provider::CarrierError;
use crate::kernel::sync::{SyncError, SyncOutcome, SyncRetry};
use crate::messaging::model::Message;
use crate::messaging::ports::SendLedger;
use crate::numbers::ops::Carriers;
use crate::numbers::ports::NumberReader;
use crate::profiles::ports::ProfileReader;

/// What the worker's send needs.
pub struct SendPorts<'a> {
    pub messages: &'a dyn SendLedger,
    pub numbers: &'a dyn NumberReader,
    pub profiles: &'a dyn ProfileReader,
    pub carriers: &'a Carriers,
}

/// The worker side: send one queued message through its number's carrier, once.
pub async fn send_sms(
    ports: SendPorts<'_>,
    user: &UserId,
    conversation: &ConversationId,
    message_id: &str,
    final_attempt: bool,
    now: OffsetDateTime,
) -> Result<SyncOutcome, SyncRetry> {
    let SendPorts { messages: store, numbers, profiles, carriers } = ports;
    // Claimed first, in the request that reads it: a redelivered command finds it `sending` and
    // stops, so the carrier is never asked twice.
    let Some(m) = store.claim_send(user, conversation, message_id).await.map_err(SyncRetry::Store)? else {
        return Ok(SyncOutcome::UpToDate);
    };
    let Some(carrier) = carriers.get(m.carrier) else {
        let e = CarrierError::NotConfigured(format!("no credentials for {}", m.carrier));
        return record_failed(store, &m, e.failure_reason(), now).await;
    };
    // Telnyx sends with the number's messaging profile. A store that cannot say which profile that
    // is means a retry (the claim given back), never a send without it.
    let profile = match numbers.get_number(user, &m.from).await {
        Ok(n) => match n.messaging_profile_id {
            Some(pid) => match profiles.get_profile(user, pid).await {
                Ok(p) => p.carrier_profile_id,
                Err(StoreError::NotFound) => None,
                Err(e) => return unclaim(store, &m, e).await,
            },
            None => None,
        },
        Err(StoreError::NotFound) => {
            let reason = SyncError { code: "number_released".into(), message: "the sending number is no longer yours".into() };
            return record_failed(store, &m, reason, now).await;
        }
        Err(e) => return unclaim(store, &m, e).await,
    };
    match carrier.send_sms(&m.from, &m.to, &m.text, profile.as_ref()).await {
        // The carrier has it: the store keeps retrying collisions (a long budget, since nothing
        // else knows the carrier's id); if it still cannot, the delivery fails and the message
        // stays `sending` rather than risk a second send.
        Ok(id) => match store.record_sent(&m, &id, now).await {
            Ok(()) => Ok(SyncOutcome::Created),
            Err(e) => {
                tracing::error!(message = %m.id, carrier_message = %id, error = %e, "sent, but the carrier's id could not be recorded");
                Err(SyncRetry::Store(e))
            }
        },
        Err(CarrierError::Transient(why)) if !final_attempt => {
            store.release_send(&m).await.map_err(SyncRetry::Store)?;
            Err(SyncRetry::Carrier(CarrierError::Transient(why)))
        }
        Err(e) => record_failed(store, &m, e.failure_reason(), now).await,
    }
}

/// The store could not be read after the claim: give the claim back and retry the delivery.
async fn unclaim(store: &dyn SendLedger, m: &Message, cause: StoreError) -> Result<SyncOutcome, SyncRetry> {
    store.release_send(m).await.map_err(SyncRetry::Store)?;
    Err(SyncRetry::Store(cause))
}

async fn record_failed(store: &dyn SendLedger, m: &Message, reason: SyncError, now: OffsetDateTime) -> Result<SyncOutcome, SyncRetry> {
    store.record_send_failed(m, &reason, now).await.map_err(SyncRetry::Store)?;
    Ok(SyncOutcome::Failed(reason))
}
