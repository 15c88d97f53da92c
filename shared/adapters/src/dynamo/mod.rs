//! The DynamoDB store: one table, keys from `keys`, item shapes from `items`, every call through the
//! `table` toolkit (roles on transaction items, collisions retried), every invariant a condition
//! expression or a transaction. One file per capability, named as the domain's modules are:
//! `profiles`, `numbers`, `messaging`, `dialer`, `voice_ai`, `calls` (with `stats`, the dashboard's
//! counters), `reconcile`; their item shapes in `items/`, under the same names.

mod calls;
mod dialer;
mod endpoints;
pub mod errors;
mod events;
pub mod items;
pub mod keys;
mod messaging;
mod numbers;
mod profiles;
mod reconcile;
mod stats;
mod table;
mod voice_ai;

pub use errors::{Cancellation, Reason, Role};
pub use table::{DynamoStore, RetryPolicy, IDEMPOTENCY_TTL, RACE_ATTEMPTS};
