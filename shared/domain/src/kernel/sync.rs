//! The worker's sync protocol, the same for every capability: a record says how far the provider's
//! copy is from it (`SyncState`, with the provider's reason when it refused), a sync step answers
//! what it did (`SyncOutcome`) or why it must be retried (`SyncRetry`), and a write after a
//! provider call that lost to a newer version is `Superseded` (`settle`).

use serde::{Deserialize, Serialize};

use crate::kernel::error::StoreError;
use crate::kernel::provider::CarrierError;

/// How far the carrier's copy of the profile is from ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncState {
    /// A create or change waits for the worker to mirror it.
    Pending,
    /// The carrier has what we have.
    Synced,
    /// The carrier refused the last change for good; `sync_error` says why.
    Failed,
    /// Deleted by the user; the worker removes the carrier's copy, then the record.
    Deleting,
}

/// The carrier's reason for a permanent failure, kept on the record for the user to read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncError {
    pub code: String,
    pub message: String,
}

/// What one sync step did; logged by the worker and asserted on by tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    /// The record is gone (purged earlier): nothing to do.
    Gone,
    /// Already in step with the carrier.
    UpToDate,
    Created,
    Updated,
    Deleted,
    /// The record moved on while the carrier call ran; the newer write's own command finishes the job.
    Superseded,
    /// The carrier refused for good; recorded on the profile.
    Failed(SyncError),
}

/// A sync's write after its carrier call: done, or `Superseded` when the record moved on meanwhile
/// (a failed version condition, or the record gone): the newer write's own command finishes the job.
pub fn settle(r: Result<(), StoreError>, done: SyncOutcome) -> Result<SyncOutcome, SyncRetry> {
    match r {
        Ok(()) => Ok(done),
        Err(StoreError::Conflict(_)) | Err(StoreError::NotFound) => Ok(SyncOutcome::Superseded),
        Err(e) => Err(SyncRetry::Store(e)),
    }
}

/// Why a sync step must be retried (the message goes back to the queue).
#[derive(Debug, thiserror::Error)]
pub enum SyncRetry {
    #[error("carrier: {0}")]
    Carrier(CarrierError),
    #[error("store: {0}")]
    Store(StoreError),
}

/// The recorded reason of a sync whose transient failures outlasted its deliveries.
pub const RETRIES_EXHAUSTED: &str = "retries_exhausted";

/// What a resource records when its command's last delivery failed (`retries_exhausted`, the last
/// failure's words): visible, instead of a state that waits for a command that will never come.
pub fn exhausted(last: &str) -> SyncError {
    SyncError { code: RETRIES_EXHAUSTED.to_owned(), message: format!("gave up after the queue's last delivery; last: {last}") }
}

/// Whether a sync state is what a command's last delivery recorded when it gave up (`failed` /
/// `retries_exhausted`): a later delivery of the command is an operator's redrive (the queue delivers
/// nothing else of a dead message), which resets it to `pending` and syncs again.
pub fn was_given_up(state: SyncState, error: Option<&SyncError>) -> bool {
    state == SyncState::Failed && error.is_some_and(|e| e.code == RETRIES_EXHAUSTED)
}

/// A give-up write's outcome: a record that moved on (or went) meanwhile has a newer command.
pub fn gave_up(r: Result<(), StoreError>) -> Result<(), StoreError> {
    match r {
        Err(StoreError::Conflict(_)) | Err(StoreError::NotFound) => Ok(()),
        other => other,
    }
}

/// The carrier's side of the protocol: what a sync records when a carrier call ends for good.
impl CarrierError {
    /// What is recorded on a resource when a carrier call ends for good: the carrier's own code
    /// (or `http_{status}` when it sent none) and message. The one mapping every sync uses.
    pub fn failure_reason(&self) -> SyncError {
        let (code, message) = match self {
            CarrierError::Permanent { status, code, message } => {
                (if code.is_empty() { format!("http_{status}") } else { code.clone() }, message.clone())
            }
            CarrierError::NotFound => ("not_found".to_owned(), "the carrier has no such resource".to_owned()),
            CarrierError::NotConfigured(m) => ("carrier_not_configured".to_owned(), m.clone()),
            CarrierError::Transient(m) => (RETRIES_EXHAUSTED.to_owned(), format!("gave up after repeated transient failures; last: {m}")),
        };
        SyncError { code, message }
    }
}
