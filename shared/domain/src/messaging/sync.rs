//! The worker side of messaging: send one queued message through its number's carrier, once.

use std::time::Duration;

use time::OffsetDateTime;

use crate::kernel::error::StoreError;
use crate::kernel::ids::{ConversationId, UserId};
use crate::kernel::provider::CarrierError;
use crate::kernel::sync::{SyncError, SyncOutcome, SyncRetry};
use crate::messaging::model::{Message, MessageStatus};
use crate::messaging::ports::{Claim, SendLedger};
use crate::numbers::ops::Carriers;
use crate::numbers::ports::NumberReader;
use crate::profiles::ports::ProfileReader;

/// What the worker's send needs.
pub struct SendPorts<'a> {
    pub messages: &'a dyn SendLedger,
    pub numbers: &'a dyn NumberReader,
    pub profiles: &'a dyn ProfileReader,
    pub carriers: &'a Carriers,
    /// How long a claim holds a message: longer than any invocation that holds it (the worker's
    /// timeout is 30 s); after it, the next delivery takes the message over.
    pub lease: Duration,
}

/// The lease of a send's claim on AWS (the worker's timeout is 30 s, the queue's visibility 180 s).
pub const SEND_LEASE: Duration = Duration::from_secs(60);

/// The worker side: send one queued message through its number's carrier, once.
pub async fn send_sms(
    ports: SendPorts<'_>,
    user: &UserId,
    conversation: &ConversationId,
    message_id: &str,
    final_attempt: bool,
    now: OffsetDateTime,
) -> Result<SyncOutcome, SyncRetry> {
    let SendPorts { messages: store, numbers, profiles, carriers, lease } = ports;
    // Claimed first, with a lease, in the request that reads it: a redelivered command finds it
    // `sending` and stops, so the carrier is never asked twice while the claim's holder may live.
    let (m, stale) = match store.claim_send(user, conversation, message_id, now, lease).await.map_err(SyncRetry::Store)? {
        Claim::Fresh(m) => (m, false),
        Claim::Stale(m) => (m, true),
        Claim::Done => return Ok(SyncOutcome::UpToDate),
        // Its holder may have died: this delivery comes back after the lease and takes it over.
        Claim::Held => return Err(SyncRetry::Carrier(CarrierError::Transient("the message is claimed by another delivery".into()))),
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
    if stale {
        // An earlier delivery claimed it and never recorded an outcome: it died before the carrier,
        // or after it. Ask the carrier; adopt what it has, send only if it has nothing.
        let since = m.created_at - SINCE_SLACK;
        match carrier.find_sent(&m.from, &m.to, &m.text, since).await {
            Ok(Some(id)) => return record_sent(store, &m, &id, now, SyncOutcome::Updated).await,
            Ok(None) => {}
            Err(CarrierError::Transient(why)) => return Err(SyncRetry::Carrier(CarrierError::Transient(why))),
            // No way to know (Telnyx): visible and counted, never sent twice.
            Err(_) => {
                let reason = SyncError {
                    code: "send_outcome_unknown".into(),
                    message: "the send was interrupted and the carrier cannot say whether it went out".into(),
                };
                return record_failed(store, &m, reason, now).await;
            }
        }
    }
    match carrier.send_sms(&m.from, &m.to, &m.text, profile.as_ref()).await {
        // The carrier has it: the store keeps retrying collisions (a long budget, since nothing
        // else knows the carrier's id); if it still cannot, the delivery fails and the message
        // stays `sending` rather than risk a second send.
        Ok(id) => record_sent(store, &m, &id, now, SyncOutcome::Created).await,
        Err(CarrierError::Transient(why)) if !final_attempt => {
            store.release_send(&m).await.map_err(SyncRetry::Store)?;
            Err(SyncRetry::Carrier(CarrierError::Transient(why)))
        }
        Err(e) => record_failed(store, &m, e.failure_reason(), now).await,
    }
}

/// How far before the message was written a carrier's record of it is looked for (clocks differ).
const SINCE_SLACK: Duration = Duration::from_secs(60);

/// The carrier has it: record its id. The store retries collisions for a long time (nothing else
/// knows the id); if it still cannot, the delivery fails, the message stays `sending` and the next
/// delivery, once the lease runs out, finds the carrier's copy and adopts it.
async fn record_sent(
    store: &dyn SendLedger,
    m: &Message,
    id: &str,
    now: OffsetDateTime,
    outcome: SyncOutcome,
) -> Result<SyncOutcome, SyncRetry> {
    match store.record_sent(m, id, now).await {
        Ok(()) => Ok(outcome),
        Err(e) => {
            tracing::error!(message = %m.id, carrier_message = %id, error = %e, "sent, but the carrier's id could not be recorded");
            Err(SyncRetry::Store(e))
        }
    }
}

/// The last delivery of a send failed: a message not yet at the carrier's word is recorded `failed`
/// (`retries_exhausted`, or `send_outcome_unknown` for one that was claimed: the carrier may have
/// it), counted, and never left `queued` or `sending`.
pub async fn give_up(
    store: &dyn SendLedger,
    user: &UserId,
    conversation: &ConversationId,
    message_id: &str,
    reason: &SyncError,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let m = match store.get_message(user, conversation, message_id).await {
        Ok(m) => m,
        Err(StoreError::NotFound) => return Ok(()),
        Err(e) => return Err(e),
    };
    match m.status {
        MessageStatus::Queued => store.record_send_failed(&m, reason, now).await,
        MessageStatus::Sending if m.carrier_message_id.is_none() => {
            let unknown = SyncError { code: "send_outcome_unknown".into(), message: reason.message.clone() };
            store.record_send_failed(&m, &unknown, now).await
        }
        _ => Ok(()),
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
