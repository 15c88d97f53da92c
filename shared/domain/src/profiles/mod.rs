//! Messaging profiles: a user's profiles, the one active profile, and their mirror at Telnyx.

pub mod model;
pub mod ops;
pub mod ports;
pub mod sync;

pub use model::*;
pub use ops::*;
pub use ports::*;
pub use sync::*;
