//! Voice AI: Vapi assistants, their creation saga, and `AssistantRoute`, the number's assistant call route.

pub mod events;
pub mod model;
pub mod ops;
pub mod ports;
pub mod sync;

pub use model::*;
pub use ops::*;
pub use ports::*;
pub use sync::*;
