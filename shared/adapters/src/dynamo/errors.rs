//! Classifying DynamoDB failures. Only a failed condition is an outcome (a conflict, a duplicate, a
//! missing item), and in a transaction only a failed condition *on a named item*: every item of a
//! transaction carries a [`Role`], and a cancellation is read as (role, reason) pairs, never by the
//! position of a reason.
//!
//! Everything that is not a failed condition falls in one of two kinds:
//! - a collision or throttling (`TransactionConflict` / `ThrottlingError` inside a cancellation,
//!   `TransactionConflictException`, `ThrottlingException`, `ProvisionedThroughputExceededException`,
//!   `RequestLimitExceeded` outside one): DynamoDB applied nothing and a retry can succeed, so the
//!   table toolkit retries it with jittered backoff and, when that runs out, reports
//!   `StoreError::Contended` (503 to a client, 5xx to a carrier, a batch item failure to SQS);
//! - anything else: the store is unavailable (or the request was invalid, which is a bug).

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::CancellationReason;
use patchbay_domain::StoreError;

/// What an item does in its transaction; a cancellation names the roles whose condition failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The record the operation is about (a profile, a number, a message).
    Record,
    /// An `Idempotency-Key` guard.
    Idempotency,
    /// A number's global one-owner guard.
    OwnerGuard,
    /// A webhook event's once-only guard.
    EventGuard,
    /// The per-user active-profile pointer.
    ActivePointer,
    /// The profile an activation turns off.
    PreviousProfile,
    /// The profile whose assigned-number count moves with the operation.
    ProfileCount,
    /// The sending number, checked in a send's transaction.
    SendingNumber,
    /// A contact (created on first contact; opted-out contacts refuse sends).
    Contact,
    /// A conversation (created on its first message).
    Conversation,
    /// A message written beside its record (an inbound message).
    Message,
    /// The route from a carrier's message id to our message.
    CarrierRoute,
    /// The SIP connection a number joins or leaves (its count and its primary slot move with it).
    Connection,
    /// A voice-AI assistant (created with its number's reservation, or checked when a number joins it).
    Assistant,
    /// A dashboard counter moved with the event it counts.
    Stats,
    /// A provider's id → our resource (a SIP connection's call events, a Vapi assistant's reports),
    /// written and deleted in the same transaction as the state it belongs to.
    ProviderRoute,
    /// The work a state change starts (an outbox item), relayed from the stream to the work queue.
    Outbox,
    /// The event a state change reports (an `EVT#` item), relayed from the stream to the event bus.
    Event,
}

/// Why DynamoDB cancelled one item of a transaction (`CancellationReason.Code`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The item's condition was false: an outcome.
    ConditionalCheckFailed,
    /// Another transaction was writing the item: no effect, retry.
    TransactionConflict,
    /// `ThrottlingError` or `ProvisionedThroughputExceeded`: no effect, retry.
    Throttling,
    /// The request was invalid (a bug: two operations on one item, an expression error).
    Validation(String),
    /// Anything else DynamoDB may answer (`ItemCollectionSizeLimitExceeded`, ...).
    Other(String),
}

impl Reason {
    /// The reason for one item; `None` for an item that was fine (DynamoDB answers `"None"`).
    pub fn parse(code: Option<&str>, message: Option<&str>) -> Option<Reason> {
        let with_message = |c: &str| match message {
            Some(m) => format!("{c}: {m}"),
            None => c.to_owned(),
        };
        match code? {
            "None" | "" => None,
            "ConditionalCheckFailed" => Some(Reason::ConditionalCheckFailed),
            "TransactionConflict" => Some(Reason::TransactionConflict),
            "ThrottlingError" | "ProvisionedThroughputExceeded" | "RequestLimitExceeded" => Some(Reason::Throttling),
            "ValidationError" => Some(Reason::Validation(with_message("ValidationError"))),
            other => Some(Reason::Other(with_message(other))),
        }
    }

    fn retryable(&self) -> bool {
        matches!(self, Reason::TransactionConflict | Reason::Throttling)
    }
}

/// A cancelled transaction, read by role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancellation {
    /// The items that had a reason, with their role; items that were fine are left out.
    pub reasons: Vec<(Role, Reason)>,
}

impl Cancellation {
    /// Pairs DynamoDB's reasons (one per item, in request order) with the roles the items were sent
    /// with. A reason without a matching item (DynamoDB never sends one) is kept as `Record`'s.
    pub fn new(roles: &[Role], reasons: &[CancellationReason]) -> Self {
        let reasons = reasons
            .iter()
            .enumerate()
            .filter_map(|(i, r)| Reason::parse(r.code(), r.message()).map(|reason| (roles.get(i).copied().unwrap_or(Role::Record), reason)))
            .collect();
        Self { reasons }
    }

    /// Did the condition of the item with this role fail?
    pub fn failed(&self, role: Role) -> bool {
        self.reasons.iter().any(|(r, why)| *r == role && *why == Reason::ConditionalCheckFailed)
    }

    /// Did any condition fail? Only then is the cancellation an outcome.
    pub fn any_condition_failed(&self) -> bool {
        self.reasons.iter().any(|(_, why)| *why == Reason::ConditionalCheckFailed)
    }

    fn kind(&self) -> Kind {
        if self.any_condition_failed() {
            Kind::Refused
        } else if let Some((role, why)) = self.reasons.iter().find(|(_, why)| !why.retryable()) {
            Kind::Other(format!("transaction cancelled on {role:?}: {why:?}"))
        } else {
            Kind::Retryable(format!("transaction cancelled: {:?}", self.reasons))
        }
    }
}

/// How a failed transaction ended, after the toolkit's retries.
#[derive(Debug)]
pub enum TxFailure {
    /// At least one condition failed: an outcome, to be read by role.
    Refused(Cancellation),
    /// Unavailable, invalid, or `Contended` once retries ran out.
    Other(StoreError),
}

/// How a failed single-item write ended, after the toolkit's retries.
#[derive(Debug)]
pub enum WriteFailure {
    ConditionFailed,
    Other(StoreError),
}

/// What one attempt's failure means.
pub(crate) enum Kind {
    Refused,
    Retryable(String),
    Other(String),
}

/// Error codes outside a cancellation that mean "no effect, retry" (collisions and throttling).
const RETRYABLE_CODES: &[&str] = &[
    "TransactionConflictException",
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "Throttling",
];

/// One attempt of a single-item call or a read.
pub(crate) fn classify_call<E, R>(err: &SdkError<E, R>) -> Kind
where
    E: ProvideErrorMetadata,
{
    match err.code() {
        Some("ConditionalCheckFailedException") => Kind::Refused,
        // A TransactGetItems cancelled because a transaction was writing one of its items (reads
        // have no conditions; a write transaction's cancellation is read in `classify_tx`).
        Some("TransactionCanceledException") => Kind::Retryable("TransactionCanceledException on a read".into()),
        Some(code) if RETRYABLE_CODES.contains(&code) => Kind::Retryable(format!("{code}: {}", err.message().unwrap_or(""))),
        _ => Kind::Other(String::new()),
    }
}

/// One attempt of a transaction: its cancellation read by role, or the call's own error.
pub(crate) fn classify_tx(err: &SdkError<TransactWriteItemsError, HttpResponse>, roles: &[Role]) -> (Kind, Option<Cancellation>) {
    if let SdkError::ServiceError(service) = err {
        if let TransactWriteItemsError::TransactionCanceledException(cancel) = service.err() {
            let c = Cancellation::new(roles, cancel.cancellation_reasons());
            return (c.kind(), Some(c));
        }
    }
    match classify_call(err) {
        // A transaction has no condition of its own; a bare ConditionalCheckFailed cannot happen.
        Kind::Refused => (Kind::Other("unexpected ConditionalCheckFailedException".into()), None),
        k => (k, None),
    }
}

pub fn unavailable<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    StoreError::unavailable(err)
}

/// The HTTP response type the SDK's errors carry.
pub use aws_sdk_dynamodb::config::http::HttpResponse;

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(code: &str) -> CancellationReason {
        CancellationReason::builder().code(code).build()
    }

    #[test]
    fn reasons_are_read_by_role_and_none_is_no_reason() {
        let roles = [Role::OwnerGuard, Role::Record, Role::Idempotency];
        let c = Cancellation::new(&roles, &[reason("None"), reason("None"), reason("ConditionalCheckFailed")]);
        assert_eq!(c.reasons, vec![(Role::Idempotency, Reason::ConditionalCheckFailed)]);
        assert!(c.failed(Role::Idempotency));
        assert!(!c.failed(Role::OwnerGuard));
        assert!(matches!(c.kind(), Kind::Refused));
    }

    #[test]
    fn a_collision_or_throttling_alone_is_retryable_and_never_an_outcome() {
        let roles = [Role::EventGuard, Role::Record];
        for code in ["TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"] {
            let c = Cancellation::new(&roles, &[reason("None"), reason(code)]);
            assert!(!c.any_condition_failed(), "{code}");
            assert!(matches!(c.kind(), Kind::Retryable(_)), "{code}");
        }
        // A failed condition next to a collision is still an outcome.
        let c = Cancellation::new(&roles, &[reason("ConditionalCheckFailed"), reason("TransactionConflict")]);
        assert!(c.failed(Role::EventGuard));
        assert!(matches!(c.kind(), Kind::Refused));
    }

    #[test]
    fn validation_and_unknown_reasons_are_neither_outcomes_nor_retried() {
        let c = Cancellation::new(&[Role::Record], &[CancellationReason::builder().code("ValidationError").message("bad").build()]);
        assert_eq!(c.reasons, vec![(Role::Record, Reason::Validation("ValidationError: bad".into()))]);
        assert!(matches!(c.kind(), Kind::Other(_)));
        let c = Cancellation::new(&[Role::Record], &[reason("ItemCollectionSizeLimitExceeded")]);
        assert!(matches!(c.kind(), Kind::Other(_)));
    }

    /// DynamoDB's own answers, byte for byte, parsed by the SDK's own deserialisers: what the
    /// classification sees in production.
    mod wire {
        use super::super::*;
        use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
        use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem};
        use aws_smithy_runtime_api::client::http::{
            HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
        };
        use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
        use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
        use aws_smithy_types::body::SdkBody;
        use aws_smithy_types::retry::RetryConfig;

        /// Answers every call with HTTP 400 and `body`, as DynamoDB does.
        #[derive(Debug, Clone)]
        struct Canned(&'static str);

        impl HttpConnector for Canned {
            fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
                let mut res = HttpResponse::new(400.try_into().expect("status"), SdkBody::from(self.0));
                res.headers_mut().insert("content-type", "application/x-amz-json-1.0");
                HttpConnectorFuture::ready(Ok(res))
            }
        }

        impl HttpClient for Canned {
            fn http_connector(&self, _: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
                SharedHttpConnector::new(self.clone())
            }
        }

        fn client(body: &'static str) -> aws_sdk_dynamodb::Client {
            let conf = aws_sdk_dynamodb::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .credentials_provider(Credentials::new("a", "b", None, None, "test"))
                .retry_config(RetryConfig::disabled())
                .http_client(Canned(body))
                .build();
            aws_sdk_dynamodb::Client::from_conf(conf)
        }

        async fn transact(body: &'static str, roles: &[Role]) -> (Kind, Option<Cancellation>) {
            let check = ConditionCheck::builder()
                .table_name("t")
                .key("pk", AttributeValue::S("k".into()))
                .condition_expression("attribute_exists(pk)")
                .build()
                .expect("check");
            let err = client(body)
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().condition_check(check).build())
                .send()
                .await;
            classify_tx(&err.expect_err("a canned error"), roles)
        }

        const ROLES: [Role; 3] = [Role::OwnerGuard, Role::Record, Role::Idempotency];

        #[tokio::test]
        async fn condition_failed_without_item_next_to_none_reasons() {
            let body = r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","Message":"Transaction cancelled, please refer cancellation reasons for specific reasons [None, None, ConditionalCheckFailed]","CancellationReasons":[{"Code":"None"},{"Code":"None"},{"Code":"ConditionalCheckFailed","Message":"The conditional request failed"}]}"#;
            let (kind, c) = transact(body, &ROLES).await;
            let c = c.expect("a cancellation");
            assert!(matches!(kind, Kind::Refused));
            assert_eq!(c.reasons, vec![(Role::Idempotency, Reason::ConditionalCheckFailed)]);
        }

        #[tokio::test]
        async fn condition_failed_with_the_old_item() {
            // ReturnValuesOnConditionCheckFailure=ALL_OLD puts the item in the reason.
            let body = r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","Message":"Transaction cancelled, please refer cancellation reasons for specific reasons [ConditionalCheckFailed, None, None]","CancellationReasons":[{"Code":"ConditionalCheckFailed","Item":{"pk":{"S":"NUMBER#+12125550100"},"sk":{"S":"OWNER"},"user_id":{"S":"u-1"}},"Message":"The conditional request failed"},{"Code":"None"},{"Code":"None"}]}"#;
            let (kind, c) = transact(body, &ROLES).await;
            assert!(matches!(kind, Kind::Refused));
            assert!(c.expect("a cancellation").failed(Role::OwnerGuard));
        }

        #[tokio::test]
        async fn transaction_conflict_and_throttling_error_are_retried_not_decided() {
            for body in [
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","Message":"Transaction cancelled, please refer cancellation reasons for specific reasons [None, TransactionConflict, None]","CancellationReasons":[{"Code":"None"},{"Code":"TransactionConflict","Message":"Transaction is ongoing for the item"},{"Code":"None"}]}"#,
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","Message":"Transaction cancelled, please refer cancellation reasons for specific reasons [ThrottlingError, None, None]","CancellationReasons":[{"Code":"ThrottlingError","Message":"Throughput exceeds the current capacity of your table or index."},{"Code":"None"},{"Code":"None"}]}"#,
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Throughput exceeds the current capacity of your table or index."}"#,
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded."}"#,
            ] {
                let (kind, c) = transact(body, &ROLES).await;
                assert!(matches!(kind, Kind::Retryable(_)), "{body}");
                assert!(!c.is_some_and(|c| c.any_condition_failed()), "{body}");
            }
        }

        #[tokio::test]
        async fn a_validation_error_is_neither_an_outcome_nor_retried() {
            let body = r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","Message":"Transaction cancelled, please refer cancellation reasons for specific reasons [ValidationError]","CancellationReasons":[{"Code":"ValidationError","Message":"One or more parameter values were invalid"}]}"#;
            let (kind, _) = transact(body, &ROLES).await;
            assert!(matches!(kind, Kind::Other(ref why) if why.contains("ValidationError")));
        }

        #[tokio::test]
        async fn single_item_writes_are_classified_the_same_way() {
            let update = |body| async move {
                let err = client(body)
                    .update_item()
                    .table_name("t")
                    .key("pk", AttributeValue::S("k".into()))
                    .update_expression("SET a = :a")
                    .expression_attribute_values(":a", AttributeValue::N("1".into()))
                    .send()
                    .await;
                classify_call(&err.expect_err("a canned error"))
            };
            assert!(matches!(
                update(r#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed"}"#).await,
                Kind::Refused
            ));
            assert!(matches!(
                update(r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionConflictException","message":"Transaction is ongoing for the item"}"#).await,
                Kind::Retryable(_)
            ));
            assert!(matches!(
                update(r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Throughput exceeds the current capacity"}"#).await,
                Kind::Retryable(_)
            ));
            assert!(matches!(
                update(
                    r#"{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"Requested resource not found"}"#
                )
                .await,
                Kind::Other(_)
            ));
        }
    }
}
