//! The dialer: SIP connections, the numbers on them by role, WebRTC tokens; and `SipRoute`, the number's
//! SIP call route.

pub mod model;
pub mod ops;
pub mod ports;
pub mod sync;

pub use model::*;
pub use ops::*;
pub use ports::*;
pub use sync::*;
