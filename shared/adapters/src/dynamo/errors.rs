//! Classifying SDK failures: a failed condition is an outcome (a conflict, a missing item), never a
//! string; anything else is the store being unavailable.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use patchbay_domain::StoreError;

/// The outcome of a failed single-item write.
pub enum WriteFailure {
    ConditionFailed,
    Other(StoreError),
}

pub fn classify_write<E, R>(err: SdkError<E, R>) -> WriteFailure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    if err.code() == Some("ConditionalCheckFailedException") {
        return WriteFailure::ConditionFailed;
    }
    WriteFailure::Other(unavailable(err))
}

/// Why a transaction was cancelled, item by item, in the order the items were sent.
pub enum TxFailure {
    /// `reasons[i]` is the cancellation code of item i (`None` when that item was fine).
    Cancelled {
        reasons: Vec<Option<String>>,
    },
    Other(StoreError),
}

impl TxFailure {
    pub fn condition_failed_at(reasons: &[Option<String>], i: usize) -> bool {
        reasons.get(i).and_then(|r| r.as_deref()) == Some("ConditionalCheckFailed")
    }
    /// Another transaction touched the same items at the same time; a retry can succeed.
    pub fn conflicted(reasons: &[Option<String>]) -> bool {
        reasons.iter().any(|r| r.as_deref() == Some("TransactionConflict"))
    }
}

pub fn classify_tx(err: SdkError<TransactWriteItemsError, aws_smithy_runtime_api_response::HttpResponse>) -> TxFailure {
    if let SdkError::ServiceError(service) = &err {
        if let TransactWriteItemsError::TransactionCanceledException(cancel) = service.err() {
            let reasons = cancel.cancellation_reasons().iter().map(|r| r.code().filter(|c| *c != "None").map(str::to_owned)).collect();
            return TxFailure::Cancelled { reasons };
        }
    }
    TxFailure::Other(unavailable(err))
}

pub fn unavailable<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    StoreError::unavailable(err)
}

/// The HTTP response type the SDK's errors carry.
pub mod aws_smithy_runtime_api_response {
    pub use aws_sdk_dynamodb::config::http::HttpResponse;
}
