//! SMS: sending, inbound messages and receipts, conversations and contacts.

pub mod events;
pub mod inbound;
pub mod model;
pub mod ops;
pub mod ports;
pub mod sms;
pub mod sync;

pub use inbound::*;
pub use model::*;
pub use ops::*;
pub use ports::*;
pub use sms::*;
pub use sync::*;
