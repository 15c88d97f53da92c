//! Commands the API hands to the SQS worker, and the queue they go through. Each carries what makes
//! it idempotent end to end.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::kernel::ids::{AssistantId, ConnectionId, ConversationId, ProfileId, UserId};
use crate::kernel::phone::E164;

/// A unit of slow carrier work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    /// Make the carrier's copy of this profile match ours (create, update or delete it). The worker
    /// reads the current record, so a stale or repeated command converges on the latest state.
    SyncMessagingProfile { user_id: UserId, profile_id: ProfileId },
    /// Bring the carrier in line with this number's record: buy it (following an order), put it on
    /// its messaging profile and its SIP connection, or release it.
    SyncPhoneNumber {
        user_id: UserId,
        // Written by Patchbay from a validated number: its shape is enough (no libphonenumber load).
        #[serde(deserialize_with = "E164::deserialize_stored")]
        phone_number: E164,
    },
    /// Send a queued outbound message through its number's carrier.
    SendSms { user_id: UserId, conversation_id: ConversationId, message_id: String },
    /// Make the carrier's credential connection match ours (create, update, or delete it and its secret).
    SyncSipConnection { user_id: UserId, connection_id: ConnectionId },
    /// Run a voice-AI assistant's saga (buy its number, create it at Vapi, attach the number), push
    /// a settings change, or delete it (its numbers disconnected and kept).
    SyncAssistant { user_id: UserId, assistant_id: AssistantId },
}

/// A command with the ids the queue needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandEnvelope {
    /// Deduplication id: the same logical request enqueued twice (a retried Lambda, a replayed
    /// idempotent request) carries the same id, and the FIFO queue drops the copy.
    pub id: String,
    pub command: Command,
}

impl CommandEnvelope {
    /// The sync for one version of a profile: every user write bumps the version, so each write
    /// gets its own command and a retry of the same write does not.
    pub fn sync_profile(user_id: UserId, profile_id: ProfileId, version: u64) -> Self {
        Self { id: format!("sync-profile-{profile_id}-v{version}"), command: Command::SyncMessagingProfile { user_id, profile_id } }
    }

    /// The sync for one version of a number's record.
    pub fn sync_number(user_id: UserId, phone_number: E164, version: u64) -> Self {
        Self {
            id: format!("sync-number-{}-v{version}", phone_number.as_str().trim_start_matches('+')),
            command: Command::SyncPhoneNumber { user_id, phone_number },
        }
    }

    /// The send of one message: a retried request or a redelivery carries the same id.
    pub fn send_sms(user_id: UserId, conversation_id: ConversationId, message_id: String) -> Self {
        Self { id: format!("send-sms-{message_id}"), command: Command::SendSms { user_id, conversation_id, message_id } }
    }

    /// The sync for one version of a SIP connection.
    pub fn sync_connection(user_id: UserId, connection_id: ConnectionId, version: u64) -> Self {
        Self { id: format!("sync-connection-{connection_id}-v{version}"), command: Command::SyncSipConnection { user_id, connection_id } }
    }

    /// The saga step for one version of an assistant.
    pub fn sync_assistant(user_id: UserId, assistant_id: AssistantId, version: u64) -> Self {
        Self { id: format!("sync-assistant-{assistant_id}-v{version}"), command: Command::SyncAssistant { user_id, assistant_id } }
    }

    /// Commands about the same resource are applied in order (SQS FIFO message group).
    pub fn group(&self) -> String {
        match &self.command {
            Command::SyncMessagingProfile { profile_id, .. } => format!("profile-{profile_id}"),
            Command::SyncPhoneNumber { phone_number, .. } => format!("number-{}", phone_number.as_str().trim_start_matches('+')),
            Command::SendSms { message_id, .. } => format!("sms-{message_id}"),
            Command::SyncSipConnection { connection_id, .. } => format!("connection-{connection_id}"),
            Command::SyncAssistant { assistant_id, .. } => format!("assistant-{assistant_id}"),
        }
    }
}

/// Why the queue could not take a command.
#[derive(Debug, thiserror::Error)]
#[error("work queue unavailable: {0}")]
pub struct QueueError(#[source] pub Box<dyn std::error::Error + Send + Sync + 'static>);

/// The SQS work queue.
#[async_trait]
pub trait WorkQueue: Send + Sync {
    async fn enqueue(&self, command: &CommandEnvelope) -> Result<(), QueueError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queued_number_is_read_by_its_shape_only() {
        let cmd: Command =
            serde_json::from_str(r#"{"type": "sync_phone_number", "user_id": "u1", "phone_number": "+12125550123"}"#).unwrap();
        assert!(matches!(cmd, Command::SyncPhoneNumber { phone_number, .. } if phone_number.as_str() == "+12125550123"));
        assert!(serde_json::from_str::<Command>(r#"{"type": "sync_phone_number", "user_id": "u1", "phone_number": "12"}"#).is_err());
    }

    #[test]
    fn envelope_json_is_stable() {
        let pid = ProfileId::parse("0190f3c4-5c2a-7b3e-8f00-000000000001").unwrap();
        let env = CommandEnvelope::sync_profile(UserId::parse("u1").unwrap(), pid, 3);
        let json = serde_json::to_value(&env).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"id": "sync-profile-0190f3c4-5c2a-7b3e-8f00-000000000001-v3",
                "command": {"type": "sync_messaging_profile", "user_id": "u1", "profile_id": "0190f3c4-5c2a-7b3e-8f00-000000000001"}})
        );
        assert_eq!(serde_json::from_value::<CommandEnvelope>(json).unwrap(), env);
        assert_eq!(env.group(), "profile-0190f3c4-5c2a-7b3e-8f00-000000000001");
    }
}
