//! The sandbox voice AI: Vapi's behaviour without an account, for local runs and tests. Ids are
//! derived from ours (an assistant from its Patchbay id, an imported number from its digits), kept in
//! memory (one process: the local stack), so a lost answer is found again like at Vapi. An assistant
//! whose name starts with `sandbox-reject` is refused like a Vapi 400, so the failure path can be seen.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use patchbay_domain::ports::{CarrierError, VoiceAi};
use patchbay_domain::voice_ai::{AssistantId, AssistantSpec, NumberImport};
use patchbay_domain::{CarrierName, E164};

#[derive(Default)]
pub struct SandboxVoiceAi {
    /// Vapi assistant id → its spec's name.
    assistants: Mutex<BTreeMap<String, String>>,
    /// Vapi phone number id → (number, attached assistant).
    numbers: Mutex<BTreeMap<String, (String, String)>>,
}

fn refused(name: &str) -> Result<(), CarrierError> {
    if name.starts_with("sandbox-reject") {
        return Err(CarrierError::Permanent {
            status: 400,
            code: "vapi_400".into(),
            message: "name: the sandbox refuses assistants named sandbox-reject…".into(),
        });
    }
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[async_trait]
impl VoiceAi for SandboxVoiceAi {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    async fn create_assistant(&self, spec: &AssistantSpec) -> Result<String, CarrierError> {
        refused(&spec.name)?;
        let id = format!("sbx-asst-{}", spec.local_id);
        lock(&self.assistants).insert(id.clone(), spec.name.clone());
        Ok(id)
    }

    async fn find_assistant(&self, local_id: AssistantId) -> Result<Option<String>, CarrierError> {
        let id = format!("sbx-asst-{local_id}");
        Ok(lock(&self.assistants).contains_key(&id).then_some(id))
    }

    async fn update_assistant(&self, id: &str, spec: &AssistantSpec) -> Result<(), CarrierError> {
        refused(&spec.name)?;
        match lock(&self.assistants).get_mut(id) {
            Some(name) => {
                *name = spec.name.clone();
                Ok(())
            }
            None => Err(CarrierError::NotFound),
        }
    }

    async fn delete_assistant(&self, id: &str) -> Result<(), CarrierError> {
        lock(&self.assistants).remove(id).map(|_| ()).ok_or(CarrierError::NotFound)
    }

    async fn import_number(&self, import: &NumberImport) -> Result<String, CarrierError> {
        let id = format!("sbx-pn-{}", import.e164.as_str().trim_start_matches('+'));
        lock(&self.numbers).insert(id.clone(), (import.e164.to_string(), import.assistant_id.clone()));
        Ok(id)
    }

    async fn find_number(&self, e164: &E164) -> Result<Option<String>, CarrierError> {
        Ok(lock(&self.numbers).iter().find(|(_, (n, _))| n == e164.as_str()).map(|(id, _)| id.clone()))
    }

    async fn attach_number(&self, id: &str, _carrier: CarrierName, assistant_id: &str) -> Result<(), CarrierError> {
        match lock(&self.numbers).get_mut(id) {
            Some(entry) => {
                entry.1 = assistant_id.to_owned();
                Ok(())
            }
            None => Err(CarrierError::NotFound),
        }
    }

    async fn remove_number(&self, id: &str) -> Result<(), CarrierError> {
        lock(&self.numbers).remove(id).map(|_| ()).ok_or(CarrierError::NotFound)
    }
}
