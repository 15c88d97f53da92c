//! What the webhook receiver does with a verified, parsed SMS webhook: store an inbound SMS with its
//! owner, or move a sent message's status. Every answer but `Ok` makes the carrier deliver the
//! webhook again, so nothing here may fail in a way a retry cannot fix without saying so.

use time::OffsetDateTime;

use crate::kernel::error::StoreError;
use crate::messaging::model::{Inbound, InboundSms, Receipt, ReceiptOutcome};
use crate::messaging::ports::Inbox;

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
