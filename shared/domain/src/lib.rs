//! Patchbay's domain: the types every edge parses into, the rules that hold between them, and the
//! port traits the adapters implement. Nothing here performs I/O or knows about AWS or HTTP.

pub mod assistant_ops;
pub mod calls;
pub mod conversations;
pub mod dialer;
pub mod dialer_ops;
pub mod error;
pub mod ids;
pub mod inbox;
pub mod message_ops;
pub mod messaging;
pub mod number_ops;
pub mod numbers;
pub mod page;
pub mod phone;
pub mod ports;
pub mod profile;
pub mod profiles;
pub mod reconcile;
pub mod sms;
pub mod voice_ai;
pub mod work;

pub use error::{Conflict, StoreError, ValidationError};
pub use ids::{CarrierProfileId, IdempotencyKey, ProfileId, UserId};
pub use numbers::{AreaCode, AvailableNumber, CarrierName, NumberSearch, NumberStatus, PhoneNumber};
pub use page::{Cursor, Limit, Page};
pub use phone::{CountryCode, Destination, E164};
pub use profile::{Activation, MessagingProfile, NewProfile, ProfileName, ProfilePatch, SyncError, SyncState, WhitelistedDestinations};
pub use work::{Command, CommandEnvelope};
