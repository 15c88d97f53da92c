//! Reconciliation: what the table says against what each provider's account has.
//!
//! A pass walks *segments*, one kind of resource at one provider (the numbers bought from Telnyx,
//! the messaging profiles, the SIP connections at the sandbox, the assistants at Vapi, …). For each
//! segment it lists the provider's copies once, then pages through Patchbay's own records of that
//! segment on the provider index (never a Scan) and acts on each difference:
//!
//! - a number we hold as active that the carrier no longer has → `lost` (kept and visible, so the
//!   user can still see and release it); a lost number that is back at the carrier → active again;
//! - a purchase we recorded as pending or failed whose number the carrier does hold → adopted;
//! - a profile, connection or assistant whose provider copy differs from ours (missing, name,
//!   active flag), a number on another messaging profile than ours, a number detached from its
//!   assistant → marked pending with a new version and its sync queued: the worker pushes our copy;
//! - a provider resource that looks like Patchbay's but matches nothing here → reported, never deleted.
//!
//! Every action is a conditional write on the version read, so a pass racing a user's change loses
//! cleanly, and a second pass over unchanged state finds nothing. A pass stops between segments (or
//! pages) when its time is up and saves where it stopped; the next pass resumes there.

pub mod judge;
pub mod model;
pub mod ops;
pub mod ports;

pub use model::*;
pub use ops::*;
pub use ports::*;
