//! The local stack, as a library so the tests drive exactly what `patchbay-local up` runs:
//! the moto emulator (single-threaded), the SAM template's resources created through it, every
//! function's router on one port behind a dev JWT authorizer, and the worker polling the queue.

pub mod coldbench;
pub mod console;
pub mod devauth;
pub mod docs;
pub mod emulator;
pub mod faults;
pub mod ops;
pub mod poller;
pub mod server;
pub mod stack;
pub mod streams;
pub mod telemetry;

pub use emulator::Emulator;
pub use stack::{LocalStack, StackInfo, StackOptions};
