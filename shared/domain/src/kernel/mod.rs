//! The kernel: the vocabulary every capability speaks, and nothing else: ids, phone numbers, pages,
//! errors, the provider vocabulary (carrier names, one client per carrier, carrier errors), the
//! worker's sync protocol and the work queue. It depends on no capability; every capability on it.

pub mod error;
pub mod event;
pub mod ids;
pub mod page;
pub mod phone;
pub mod provider;
pub mod sync;
pub mod text;
pub mod work;
