//! What the webhook receiver does once a webhook is verified and parsed: store an inbound SMS with
//! its owner, or move a sent message's status. Every answer but `Ok` makes the carrier deliver the
//! webhook again, so nothing here may fail in a way a retry cannot fix without saying so.

use time::OffsetDateTime;

use crate::calls::{CallSource, CallUpdate};
use crate::messaging::{Inbound, InboundSms, Receipt, ReceiptOutcome};
use crate::ports::{CallLedger, CallOutcome, Inbox};
use crate::{StoreError, E164};

/// Why a webhook's effect was not stored. Every variant means "deliver it again": the receiver
/// answers 5xx, never 2xx (the effect would be lost) and never 4xx (the carrier would give up).
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    /// A receipt for a carrier message id no send has recorded yet (the worker's `record_sent` is
    /// still running): the carrier's redelivery finds it.
    #[error("no message has this carrier id yet")]
    UnknownMessage,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An inbound SMS: to the owner of the number it was sent to, once per carrier event.
pub async fn receive_sms(inbox: &dyn Inbox, sms: &InboundSms, now: OffsetDateTime) -> Result<Inbound, InboxError> {
    let Some(owner) = inbox.number_owner(&sms.to).await? else {
        return Ok(Inbound::NoOwner);
    };
    Ok(inbox.record_inbound(&owner, sms, now).await?)
}

/// A delivery receipt: the status only moves forward, once per carrier event.
pub async fn apply_receipt(inbox: &dyn Inbox, receipt: &Receipt, now: OffsetDateTime) -> Result<ReceiptOutcome, InboxError> {
    match inbox.apply_receipt(receipt, now).await? {
        ReceiptOutcome::Unknown => Err(InboxError::UnknownMessage),
        outcome => Ok(outcome),
    }
}

/// A Vapi call message (`end-of-call-report`, or a `status-update`), as the receiver parsed it.
#[derive(Debug, Clone)]
pub struct VapiCallMessage {
    /// Vapi's call id.
    pub call_id: String,
    /// Once-only key of this message (`{call id}:end-of-call-report`, `{call id}:status:{status}`).
    pub event_id: String,
    /// The Patchbay number the call was on (`phoneNumber.number`).
    pub number: Option<E164>,
    /// `assistant.id` / `call.assistantId`.
    pub vapi_assistant_id: Option<String>,
    pub update: CallUpdate,
}

/// A Telnyx call event on a credential connection (`call.initiated`, `call.answered`, `call.hangup`).
#[derive(Debug, Clone)]
pub struct SipCallEvent {
    pub event_id: String,
    /// `call_session_id`: every event of one call names it.
    pub call_id: String,
    pub carrier_connection_id: String,
    pub update: CallUpdate,
}

/// What became of a call event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallReceived {
    Stored,
    Duplicate,
    /// Neither the number nor the assistant (or the connection) is anyone's: acknowledged, dropped.
    NoOwner,
}

/// A Vapi call report: to the owner of the number it was on, or of the assistant (mapped to ours).
pub async fn receive_vapi_call(ledger: &dyn CallLedger, m: &VapiCallMessage, now: OffsetDateTime) -> Result<CallReceived, InboxError> {
    let by_assistant = match &m.vapi_assistant_id {
        Some(v) => ledger.assistant_route(v).await?,
        None => None,
    };
    let by_number = match &m.number {
        Some(e) => ledger.number_route(e).await?,
        None => None,
    };
    let mut update = m.update.clone();
    let user = match (by_number, by_assistant) {
        (Some((owner, number_assistant)), assistant) => {
            // The assistant counts only if it is the owner's too.
            match assistant.filter(|(u, _, _)| *u == owner) {
                Some((_, aid, name)) => {
                    update.assistant_id = Some(aid);
                    update.assistant_name = Some(name);
                }
                None => update.assistant_id = number_assistant,
            }
            update.phone_number = m.number.clone();
            owner
        }
        (None, Some((owner, aid, name))) => {
            update.assistant_id = Some(aid);
            update.assistant_name = Some(name);
            owner
        }
        (None, None) => return Ok(CallReceived::NoOwner),
    };
    let outcome =
        ledger.apply_call_event(&user, &format!("vapi-{}", m.call_id), CallSource::Assistant, ("vapi", &m.event_id), &update, now).await?;
    Ok(match outcome {
        CallOutcome::Applied => CallReceived::Stored,
        CallOutcome::Duplicate => CallReceived::Duplicate,
    })
}

/// A dialer call event: to the owner of the connection it names; unknown connections are dropped.
pub async fn receive_sip_call(ledger: &dyn CallLedger, e: &SipCallEvent, now: OffsetDateTime) -> Result<CallReceived, InboxError> {
    let Some((user, connection)) = ledger.connection_route(&e.carrier_connection_id).await? else {
        return Ok(CallReceived::NoOwner);
    };
    let update = CallUpdate { connection_id: Some(connection), ..e.update.clone() };
    let outcome =
        ledger.apply_call_event(&user, &format!("sip-{}", e.call_id), CallSource::Sip, ("telnyx-call", &e.event_id), &update, now).await?;
    Ok(match outcome {
        CallOutcome::Applied => CallReceived::Stored,
        CallOutcome::Duplicate => CallReceived::Duplicate,
    })
}
