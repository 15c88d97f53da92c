//! What a product team is told: the event log (`GET /v1/events`). The envelope and the catalogue are
//! kernel vocabulary (`kernel::event`), since every capability builds its own events; this module is
//! what reads them back (and, with the webhooks, what delivers them).

pub mod ops;
pub mod ports;

pub use ops::*;
pub use ports::*;
