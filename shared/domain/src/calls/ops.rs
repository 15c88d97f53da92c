//! Calls' API side: the calls function's list and dashboard, and what the webhook receiver does with
//! a verified call event (Vapi's reports, Telnyx's call events on a credential connection).

use time::{Date, OffsetDateTime};

use crate::calls::model::{Call, CallFilter, CallSource, CallUpdate, Dashboard};
use crate::calls::ports::{CallLedger, CallOutcome, CallReader};
use crate::kernel::error::StoreError;
use crate::kernel::ids::UserId;
use crate::kernel::page::{Cursor, Limit, Page};
use crate::kernel::phone::E164;

/// What the calls function calls.
pub struct CallsApi<'a> {
    pub store: &'a dyn CallReader,
}

impl CallsApi<'_> {
    /// The user's calls, newest first, filtered; a page may come back short when the filter is narrow.
    pub async fn list(&self, user: &UserId, filter: &CallFilter, cursor: Option<&Cursor>, limit: Limit) -> Result<Page<Call>, StoreError> {
        let mut out = Vec::new();
        let mut cursor = cursor.cloned();
        for _ in 0..FILTER_PAGES {
            let page = self.store.list_calls(user, cursor.as_ref(), limit).await?;
            for c in page.data {
                if filter.matches(&c) {
                    out.push(c);
                    if out.len() == usize::from(limit.get()) {
                        let next = out.last().map(|c| Cursor::encode(&c.id));
                        return Ok(Page { data: out, next_cursor: next });
                    }
                }
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(Page { data: out, next_cursor: None }),
            }
        }
        let next = out.last().map(|c| Cursor::encode(&c.id)).or(cursor);
        Ok(Page { data: out, next_cursor: next })
    }

    pub async fn dashboard(&self, user: &UserId, from: Date, to: Date) -> Result<Dashboard, StoreError> {
        let rows = self.store.stats(user, from, to).await?;
        Ok(Dashboard::from_rows(from, to, &rows))
    }
}

/// How many store pages one filtered list reads at most before answering a short page.
const FILTER_PAGES: usize = 10;

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
pub async fn receive_vapi_call(ledger: &dyn CallLedger, m: &VapiCallMessage, now: OffsetDateTime) -> Result<CallReceived, StoreError> {
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
            update.assistant_id = match assistant.filter(|(u, _)| *u == owner) {
                Some((_, aid)) => Some(aid),
                None => number_assistant,
            };
            update.phone_number = m.number.clone();
            owner
        }
        (None, Some((owner, aid))) => {
            update.assistant_id = Some(aid);
            owner
        }
        (None, None) => return Ok(CallReceived::NoOwner),
    };
    // Named as it is called now, however the report found it (by its Vapi id or by its number).
    if let Some(aid) = update.assistant_id {
        update.assistant_name = ledger.assistant_name(&user, aid).await?;
    }
    let outcome =
        ledger.apply_call_event(&user, &format!("vapi-{}", m.call_id), CallSource::Assistant, ("vapi", &m.event_id), &update, now).await?;
    Ok(match outcome {
        CallOutcome::Applied => CallReceived::Stored,
        CallOutcome::Duplicate => CallReceived::Duplicate,
    })
}

/// A dialer call event: to the owner of the connection it names; unknown connections are dropped.
pub async fn receive_sip_call(ledger: &dyn CallLedger, e: &SipCallEvent, now: OffsetDateTime) -> Result<CallReceived, StoreError> {
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
