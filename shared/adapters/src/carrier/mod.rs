//! Carrier clients behind the domain's carrier ports: Telnyx and Twilio (built from their official
//! OpenAPI specs) and the sandbox. Which ones a deployment builds is `providers`' business.

pub mod sandbox;
pub mod telnyx;
pub mod twilio;

pub use sandbox::{SandboxCarrier, SandboxDialer};
pub use telnyx::TelnyxClient;
pub use twilio::TwilioClient;
