//! What a product team is told: the event log (`GET /v1/events`) and the webhook endpoints that
//! receive events signed by the Standard Webhooks specification. The envelope and the catalogue are
//! kernel vocabulary (`kernel::event`), since every capability builds its own events; this module
//! reads them back and delivers them.

pub mod dispatch;
pub mod model;
pub mod ops;
pub mod ports;

pub use dispatch::*;
pub use model::*;
pub use ops::*;
pub use ports::*;
