//! The provider vocabulary: which carrier, one client per carrier, and how a provider call fails.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::kernel::error::ValidationError;

/// The carriers Patchbay buys numbers from. `Sandbox` is the simulated one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CarrierName {
    Twilio,
    Telnyx,
    Sandbox,
}

impl CarrierName {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        match raw {
            "twilio" => Ok(Self::Twilio),
            "telnyx" => Ok(Self::Telnyx),
            "sandbox" => Ok(Self::Sandbox),
            _ => Err(ValidationError::new("carrier", "invalid_carrier", "must be one of twilio, telnyx, sandbox")),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Twilio => "twilio",
            Self::Telnyx => "telnyx",
            Self::Sandbox => "sandbox",
        }
    }
}

impl fmt::Display for CarrierName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One client per carrier this deployment has credentials for, of one kind (numbers, the dialer, …).
pub struct ByCarrier<T: ?Sized> {
    pub twilio: Option<Arc<T>>,
    pub telnyx: Option<Arc<T>>,
    pub sandbox: Option<Arc<T>>,
    /// Used when a request names none.
    pub default: Option<CarrierName>,
}

impl<T: ?Sized> Default for ByCarrier<T> {
    fn default() -> Self {
        Self::none()
    }
}

impl<T: ?Sized> Clone for ByCarrier<T> {
    fn clone(&self) -> Self {
        Self { twilio: self.twilio.clone(), telnyx: self.telnyx.clone(), sandbox: self.sandbox.clone(), default: self.default }
    }
}

impl<T: ?Sized> ByCarrier<T> {
    /// No carrier at all: for operations that never pick one (a list, a lookup), so that a handler
    /// need not build its carriers for them.
    pub const fn none() -> Self {
        Self { twilio: None, telnyx: None, sandbox: None, default: None }
    }

    pub fn get(&self, name: CarrierName) -> Option<&Arc<T>> {
        match name {
            CarrierName::Twilio => self.twilio.as_ref(),
            CarrierName::Telnyx => self.telnyx.as_ref(),
            CarrierName::Sandbox => self.sandbox.as_ref(),
        }
    }

    /// The requested carrier, or the deployment's default (the sandbox when none is set); `Err`
    /// names the carrier this deployment has no client for.
    pub fn pick(&self, requested: Option<CarrierName>) -> Result<(CarrierName, &Arc<T>), CarrierName> {
        let name = requested.or(self.default).unwrap_or(CarrierName::Sandbox);
        self.get(name).map(|c| (name, c)).ok_or(name)
    }
}

/// How a create went: a new record, or the record an earlier request with the same key made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created<T> {
    New(T),
    Replayed(T),
}

impl<T> Created<T> {
    pub fn into_inner(self) -> T {
        match self {
            Created::New(t) | Created::Replayed(t) => t,
        }
    }
}

/// A carrier call that did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CarrierError {
    /// The carrier refused the request and will refuse it again (a 4xx other than 408/429).
    #[error("carrier refused the request ({status}): {code}: {message}")]
    Permanent { status: u16, code: String, message: String },
    /// Worth retrying after a pause: 408, 429, 5xx, timeouts, connection failures.
    #[error("carrier call failed, retryable: {0}")]
    Transient(String),
    /// The carrier has no such resource.
    #[error("carrier has no such resource")]
    NotFound,
    /// The carrier is not configured (missing credentials).
    #[error("carrier not configured: {0}")]
    NotConfigured(String),
}
