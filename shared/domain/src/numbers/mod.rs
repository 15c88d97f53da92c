//! Phone numbers: search, buy, release, put on a messaging profile. The number record is the junction of
//! a number's three sides (profile, SIP connection, assistant); the last two reach the worker through
//! `CallRoute` (`ports.rs`), which `dialer` and `voice_ai` implement.

pub mod events;
pub mod model;
pub mod ops;
pub mod ports;
pub mod sync;

pub use model::*;
pub use ops::*;
pub use ports::*;
pub use sync::*;
