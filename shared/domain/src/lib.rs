//! Patchbay's domain: the types every edge parses into, the rules that hold between them, and the
//! port traits the adapters implement. Nothing here performs I/O or knows about AWS or HTTP.
//!
//! One module per capability, each with the same rooms: `model` (what it is), `ports` (what it needs
//! from outside), `ops` (what the API functions call), `sync` (what the worker calls). The kernel is
//! below them all; a capability imports only the kernel and the capabilities below it (the table is
//! in ARCHITECTURE.md and `tests/layering.rs` holds it). In reading order:

pub mod kernel;

pub mod calls;
pub mod dialer;
pub mod events;
pub mod messaging;
pub mod numbers;
pub mod profiles;
pub mod reconcile;
pub mod voice_ai;

// The kernel vocabulary every capability and every edge uses, and only that.
pub use kernel::error::{Conflict, StoreError, ValidationError};
pub use kernel::ids::{AssistantId, CarrierProfileId, ConnectionId, ConversationId, IdempotencyKey, PathId, ProfileId, UserId};
pub use kernel::page::{Cursor, Limit, Page};
pub use kernel::phone::{CountryCode, Destination, E164};
pub use kernel::provider::CarrierName;
pub use kernel::sync::{SyncError, SyncState};
pub use kernel::work::{Command, CommandEnvelope};
