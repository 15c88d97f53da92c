//! The sandbox voice AI: Vapi's behaviour without an account, for local runs and tests. Ids are
//! derived from ours (an assistant from its Patchbay id, an imported number from its digits), kept in
//! memory (one process: the local stack), so a lost answer is found again like at Vapi. An assistant
//! whose name starts with `sandbox-reject` is refused like a Vapi 400, so the failure path can be seen.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use patchbay_domain::kernel::provider::CarrierError;
use patchbay_domain::voice_ai::{AssistantSpec, ListedAssistant, ListedVoiceNumber, NumberImport, VoiceAi};
use patchbay_domain::{AssistantId, CarrierName, E164};

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

    async fn list_assistants(&self) -> Result<Vec<ListedAssistant>, CarrierError> {
        Ok(lock(&self.assistants)
            .iter()
            .map(|(id, name)| ListedAssistant {
                id: id.clone(),
                name: name.clone(),
                // Every sandbox assistant Patchbay makes carries its id, as at Vapi.
                patchbay_id: id.strip_prefix("sbx-asst-").map(str::to_owned),
            })
            .collect())
    }

    async fn list_numbers(&self) -> Result<Vec<ListedVoiceNumber>, CarrierError> {
        Ok(lock(&self.numbers)
            .iter()
            .map(|(id, (e164, a))| ListedVoiceNumber {
                id: id.clone(),
                e164: e164.clone(),
                assistant_id: Some(a.clone()).filter(|a| !a.is_empty()),
            })
            .collect())
    }
}

/// What an operator could do in Vapi's dashboard behind Patchbay's back (the reconciler's tests).
impl SandboxVoiceAi {
    /// Rename an assistant at the provider.
    pub fn rename_assistant(&self, id: &str, name: &str) -> bool {
        lock(&self.assistants).get_mut(id).map(|n| *n = name.to_owned()).is_some()
    }

    /// Take a number off its assistant (it stays imported).
    pub fn detach_number(&self, e164: &str) -> bool {
        lock(&self.numbers).values_mut().find(|(n, _)| n == e164).map(|(_, a)| a.clear()).is_some()
    }

    /// The assistant a number's calls go to at the provider (`None`: detached or not imported).
    pub fn number_assistant(&self, e164: &str) -> Option<String> {
        lock(&self.numbers).values().find(|(n, _)| n == e164).map(|(_, a)| a.clone()).filter(|a| !a.is_empty())
    }

    /// An assistant made outside Patchbay that carries a Patchbay id (a copy of a template, an old deployment's).
    pub fn plant_assistant(&self, local_id: &str, name: &str) -> String {
        let id = format!("sbx-asst-{local_id}");
        lock(&self.assistants).insert(id.clone(), name.to_owned());
        id
    }

    pub fn assistant_name(&self, id: &str) -> Option<String> {
        lock(&self.assistants).get(id).cloned()
    }
}
