//! The worker side of numbers: bring the carrier in line with one number's record (buy it, put it on
//! its messaging profile, push its call routes, release it).

use time::OffsetDateTime;

use crate::kernel::error::StoreError;
use crate::kernel::ids::UserId;
use crate::kernel::phone::E164;
use crate::kernel::provider::{CarrierError, CarrierName};
use crate::kernel::sync::{gave_up, settle, SyncError, SyncOutcome, SyncRetry, SyncState};
use crate::numbers::model::{NumberStatus, PhoneNumber};
use crate::numbers::ops::Carriers;
use crate::numbers::ports::{CallRoute, NumberCarrier, NumberSyncLedger, Ownership, Purchase};
use crate::profiles::ports::ProfileReader;

/// What the number sync touches: the number's record, its profile, the carriers, and the two places
/// its calls can go. The worker composes them (`functions/worker`): numbers never names the
/// capabilities behind its call routes.
#[derive(Clone, Copy)]
pub struct NumberPorts<'a> {
    pub store: &'a dyn NumberSyncLedger,
    pub profiles: &'a dyn ProfileReader,
    pub carriers: &'a Carriers,
    /// The number's SIP side (`dialer::sync::SipRoute`).
    pub sip: &'a dyn CallRoute,
    /// The number's assistant side (`voice_ai::sync::AssistantRoute`).
    pub assistant: &'a dyn CallRoute,
}

/// What a purchase touches: the number's record and the carriers. The assistant saga buys its
/// number through this, not through the whole number sync.
#[derive(Clone, Copy)]
pub struct PurchasePorts<'a> {
    pub store: &'a dyn NumberSyncLedger,
    pub carriers: &'a Carriers,
}

/// The worker side: bring the carrier in line with one number's record, in the order things
/// happen: the purchase; then, once active, its profile side, its SIP side and its assistant side,
/// each on the record as the one before left it; on release, its call routes let go before the
/// carrier releases it, then the record and its owner guard go.
/// The last delivery of a number's sync failed: each side still `pending` is recorded `failed`
/// (`retries_exhausted`), and a purchase with no carrier order open fails and frees the number (one
/// whose order is open stays pending: the order may still complete, and the reconciler follows it).
pub async fn give_up(
    ports: NumberPorts<'_>,
    user: &UserId,
    e164: &E164,
    reason: &SyncError,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let NumberPorts { store, sip, assistant, .. } = ports;
    let n = match store.get_number(user, e164).await {
        Ok(n) => n,
        Err(StoreError::NotFound) => return Ok(()),
        Err(e) => return Err(e),
    };
    match n.status {
        NumberStatus::Pending if n.carrier_order_id.is_none() && n.assistant_id.is_none() => {
            gave_up(store.record_purchase_failed(user, e164, n.version, reason, now).await)
        }
        NumberStatus::Active | NumberStatus::Lost => {
            if n.profile_sync == SyncState::Pending {
                gave_up(store.record_number_profile_failed(user, e164, n.version, reason, now).await)?;
            }
            sip.give_up(&n, reason, now).await?;
            assistant.give_up(&n, reason, now).await
        }
        _ => Ok(()),
    }
}

pub async fn sync_number(
    ports: NumberPorts<'_>,
    user: &UserId,
    e164: &E164,
    final_attempt: bool,
    now: OffsetDateTime,
) -> Result<SyncOutcome, SyncRetry> {
    let NumberPorts { store, profiles, carriers, sip, assistant } = ports;
    let mut n = match store.get_number(user, e164).await {
        Ok(n) => n,
        Err(StoreError::NotFound) => return Ok(SyncOutcome::Gone),
        Err(e) => return Err(SyncRetry::Store(e)),
    };
    // A redrive of a command whose last delivery gave up on a side: those sides back to pending
    // (no write when none did).
    if store.reset_given_up_sides(&n, now).await.map_err(SyncRetry::Store)? {
        n = match store.get_number(user, e164).await {
            Ok(n) => n,
            Err(StoreError::NotFound) => return Ok(SyncOutcome::Gone),
            Err(e) => return Err(SyncRetry::Store(e)),
        };
    }
    if n.status == NumberStatus::Pending {
        return buy(PurchasePorts { store, carriers }, &n, final_attempt, now).await;
    }
    let Some(carrier) = carriers.get(n.carrier).map(|c| c.as_ref()) else {
        return Err(SyncRetry::Carrier(CarrierError::NotConfigured(format!("no credentials for {}", n.carrier))));
    };

    match n.status {
        // A lost number has nothing at the carrier to bring in line; its release needs no carrier call.
        // (A pending one was bought above.)
        NumberStatus::Failed | NumberStatus::Lost | NumberStatus::Pending => Ok(SyncOutcome::UpToDate),
        NumberStatus::Active => {
            // Each side of an active number in turn, each on the record as the one before left it.
            let mut outcome = SyncOutcome::UpToDate;
            let mut n = n;
            for side in 0..3 {
                if side > 0 && outcome != SyncOutcome::UpToDate {
                    n = match store.get_number(user, e164).await {
                        Ok(n) => n,
                        Err(StoreError::NotFound) => return Ok(SyncOutcome::Gone),
                        Err(e) => return Err(SyncRetry::Store(e)),
                    };
                }
                let step = match side {
                    0 if n.profile_sync == SyncState::Pending => profile_step(store, profiles, carrier, &n, now).await?,
                    1 if sip.pending(&n) => sip.push(&n, final_attempt, now).await?,
                    2 if assistant.pending(&n) => assistant.push(&n, final_attempt, now).await?,
                    _ => continue,
                };
                if step == SyncOutcome::Superseded {
                    return Ok(step);
                }
                outcome = step;
            }
            Ok(outcome)
        }
        NumberStatus::Releasing => {
            // The call routes let go first (Vapi first: an imported number would keep routing calls
            // to an assistant).
            assistant.before_release(&n).await?;
            sip.before_release(&n).await?;
            if let Some(id) = n.carrier_number_id.as_deref() {
                match carrier.release(id).await {
                    Ok(()) | Err(CarrierError::NotFound) => {}
                    Err(e @ CarrierError::Transient(_)) => return Err(SyncRetry::Carrier(e)),
                    Err(e) => {
                        tracing::error!(number = %e164, error = %e, "the carrier refused the release; the number stays releasing");
                        return Err(SyncRetry::Carrier(e));
                    }
                }
            }
            settle(store.purge_released(user, e164, n.version).await, SyncOutcome::Deleted)
        }
    }
}

/// The purchase alone: buy a pending number (following its order, adopting a purchase whose answer
/// was lost), or record why it cannot be bought. A number that is no longer pending is left alone.
pub async fn purchase(
    ports: PurchasePorts<'_>,
    user: &UserId,
    e164: &E164,
    final_attempt: bool,
    now: OffsetDateTime,
) -> Result<SyncOutcome, SyncRetry> {
    let n = match ports.store.get_number(user, e164).await {
        Ok(n) => n,
        Err(StoreError::NotFound) => return Ok(SyncOutcome::Gone),
        Err(e) => return Err(SyncRetry::Store(e)),
    };
    if n.status != NumberStatus::Pending {
        return Ok(SyncOutcome::UpToDate);
    }
    buy(ports, &n, final_attempt, now).await
}

/// One purchase step of a pending number.
async fn buy(ports: PurchasePorts<'_>, n: &PhoneNumber, final_attempt: bool, now: OffsetDateTime) -> Result<SyncOutcome, SyncRetry> {
    let PurchasePorts { store, carriers } = ports;
    let (user, e164) = (&n.user_id, &n.e164);
    let Some(carrier) = carriers.get(n.carrier) else {
        let err = CarrierError::NotConfigured(format!("no credentials for {}", n.carrier));
        return purchase_failed(store, n, err, final_attempt, now).await;
    };
    let attempt = match &n.carrier_order_id {
        Some(order) => carrier.order_status(order, e164).await,
        // Look first: a purchase that went through before a lost answer is adopted, not repeated.
        None => match carrier.find_owned(e164).await {
            Ok(Ownership::Owned(id)) => Ok(Purchase::Done(id)),
            // An order from before a lost answer is still running: not ours yet, and a
            // second order would be refused. Wait for it (it becomes `Owned` or goes away).
            Ok(Ownership::Pending) => {
                Err(CarrierError::Transient("an earlier order for this number is still pending at the carrier".into()))
            }
            Ok(Ownership::NotOwned) => carrier.buy(e164).await,
            Err(e) => Err(e),
        },
    };
    match attempt {
        Ok(Purchase::Done(id)) => settle(store.record_active(user, e164, n.version, &id, now).await, SyncOutcome::Created),
        Ok(Purchase::Ordered(order)) => {
            if n.carrier_order_id.as_deref() != Some(order.as_str()) {
                match store.record_order(user, e164, n.version, &order, now).await {
                    Ok(()) => {}
                    // The record moved meanwhile: read it again on the next delivery and carry on
                    // (dropping the command here would leave the order unfollowed).
                    Err(StoreError::Conflict(_)) => {
                        return Err(SyncRetry::Carrier(CarrierError::Transient(format!(
                            "number order {order}: the record moved; read again"
                        ))))
                    }
                    Err(e) => return Err(SyncRetry::Store(e)),
                }
            }
            // An open order is followed, never given up (not even on the last delivery): the number
            // and its guard stay ours while the carrier may still complete it. After the queue's
            // retries the reconciler adopts it when the carrier lists it, and its sweep writes this
            // command again (crash-audit F15).
            Err(SyncRetry::Carrier(CarrierError::Transient(format!("number order {order} is still pending"))))
        }
        Err(e) => purchase_failed(store, n, e, final_attempt, now).await,
    }
}

/// Put an active number on the messaging profile its record names (or none) at the carrier.
async fn profile_step(
    store: &dyn NumberSyncLedger,
    profiles: &dyn ProfileReader,
    carrier: &dyn NumberCarrier,
    n: &PhoneNumber,
    now: OffsetDateTime,
) -> Result<SyncOutcome, SyncRetry> {
    let (user, e164) = (&n.user_id, &n.e164);
    let Some(id) = n.carrier_number_id.as_deref() else { return Ok(SyncOutcome::UpToDate) };
    let target = match n.messaging_profile_id {
        None => None,
        Some(pid) => match profiles.get_profile(user, pid).await {
            Ok(p) => match p.carrier_profile_id {
                Some(cid) => Some(cid),
                None if n.carrier == CarrierName::Telnyx => {
                    return Err(SyncRetry::Carrier(CarrierError::Transient("the messaging profile is not at the carrier yet".into())))
                }
                None => None,
            },
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(SyncRetry::Store(e)),
        },
    };
    match carrier.set_messaging_profile(id, target.as_ref()).await {
        Ok(()) => settle(store.record_number_profile_synced(user, e164, n.version, now).await, SyncOutcome::Updated),
        Err(e @ CarrierError::Transient(_)) => Err(SyncRetry::Carrier(e)),
        Err(e) => {
            let reason = e.failure_reason();
            settle(store.record_number_profile_failed(user, e164, n.version, &reason, now).await, SyncOutcome::Failed(reason))
        }
    }
}

/// A purchase that cannot go on: permanent errors, and transient ones on the last delivery, mark the
/// number failed and free it; a transient one before that is retried.
async fn purchase_failed(
    store: &dyn NumberSyncLedger,
    n: &PhoneNumber,
    error: CarrierError,
    final_attempt: bool,
    now: OffsetDateTime,
) -> Result<SyncOutcome, SyncRetry> {
    let transient = matches!(error, CarrierError::Transient(_));
    if transient && !final_attempt {
        return Err(SyncRetry::Carrier(error));
    }
    let reason = error.failure_reason();
    let recorded = store.record_purchase_failed(&n.user_id, &n.e164, n.version, &reason, now).await;
    if transient {
        return Err(SyncRetry::Carrier(error));
    }
    match recorded {
        Ok(()) => Ok(SyncOutcome::Failed(reason)),
        Err(StoreError::Conflict(_)) | Err(StoreError::NotFound) => Ok(SyncOutcome::Superseded),
        Err(e) => Err(SyncRetry::Store(e)),
    }
}
