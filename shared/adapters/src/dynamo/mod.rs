//! The DynamoDB store: one table, keys from `keys`, item shapes from `items`, every call through the
//! `table` toolkit (roles on transaction items, collisions retried), every invariant a condition
//! expression or a transaction. One file per part of the domain: `profiles`, `numbers`, `messages`,
//! `connections`, `assistants`.

mod assistants;
mod calls;
mod connections;
pub mod errors;
pub mod items;
pub mod keys;
mod messages;
mod numbers;
mod profiles;
mod reconcile;
mod table;

pub use errors::{Cancellation, Reason, Role};
pub use table::{DynamoStore, RetryPolicy, IDEMPOTENCY_TTL, RACE_ATTEMPTS};
