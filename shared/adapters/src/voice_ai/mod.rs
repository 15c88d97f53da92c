//! Voice AI behind the domain's `VoiceAi` port: Vapi (built from `../shared/providers/vapi_openapi.json`)
//! and the sandbox. Which one runs is configuration (`PATCHBAY_VOICE_AI`).

pub mod sandbox;
pub mod vapi;

pub use sandbox::SandboxVoiceAi;
pub use vapi::VapiClient;
