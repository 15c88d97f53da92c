//! Call logs and the dashboard. Calls arrive by webhook only: there is no worker side.

pub mod events;
pub mod model;
pub mod ops;
pub mod ports;

pub use model::*;
pub use ops::*;
pub use ports::*;
