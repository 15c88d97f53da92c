//! The SQS worker: performs queued carrier work and records the outcome on the resource.
//!
//! The queue is FIFO (one message group per resource), so a batch is processed in order, and the
//! first message of a group that must be retried stops that group: it and every later message of
//! the same group are reported as failures (`ReportBatchItemFailures`) and come back in order, while
//! the other groups of the batch go on (ordering is per resource, so one poisoned resource does not
//! spend the receives of healthy ones). A batch near the invocation's deadline gives the rest back
//! unattempted. Nothing is ever dropped silently; a message that keeps failing reaches the
//! dead-letter queue with its reason logged.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use patchbay_adapters::Wiring;
use patchbay_domain::dialer::{sync_connection, ConnectionSyncLedger, Dialers, SipRoute, SipSecrets};
use patchbay_domain::kernel::sync::SyncOutcome;
use patchbay_domain::kernel::sync::{exhausted, SyncError};
use patchbay_domain::messaging::{send_sms, SendLedger, SendPorts, SEND_LEASE};
use patchbay_domain::numbers::{sync_number, Carriers, NumberPorts, NumberSyncLedger, PurchasePorts};
use patchbay_domain::profiles::{sync_profile, ProfileCarrier, ProfileSyncLedger};
use patchbay_domain::voice_ai::{sync_assistant, AssistantRoute, AssistantSyncLedger, SagaPorts, VapiServer, VoiceAi};
use patchbay_domain::{dialer, messaging, numbers, profiles, voice_ai, Command, CommandEnvelope, StoreError};
use time::OffsetDateTime;

pub struct Worker {
    pub profiles: Arc<dyn ProfileSyncLedger>,
    pub numbers: Arc<dyn NumberSyncLedger>,
    pub sends: Arc<dyn SendLedger>,
    pub carrier: Arc<dyn ProfileCarrier>,
    pub carriers: Carriers,
    pub connections: Arc<dyn ConnectionSyncLedger>,
    pub dialers: Dialers,
    pub sip_secrets: Arc<dyn SipSecrets>,
    /// `PATCHBAY_PUBLIC_URL`: credential connections send their call events to its `/webhooks/telnyx`.
    pub public_url: Option<String>,
    pub assistants: Arc<dyn AssistantSyncLedger>,
    pub voice_ai: Arc<dyn VoiceAi>,
    pub vapi_server: VapiServer,
    /// The queue's `maxReceiveCount`: the delivery with this count is the last one.
    pub max_receive_count: u32,
    /// How long a send's claim holds its message (`PATCHBAY_SEND_LEASE_SECONDS`, default 60 s; the
    /// local stack and tests shorten it with their visibility timeout).
    pub send_lease: Duration,
}

/// The time one command may take (several carrier calls of up to 8 s are rare; two are common): a
/// command is started only with at least this much of the invocation left.
pub const COMMAND_TIME: Duration = Duration::from_secs(10);

/// The message group of a command read from its body, when SQS did not say (a test's record).
fn group_of(record: &SqsMessage) -> Option<String> {
    let envelope: CommandEnvelope = serde_json::from_str(record.body.as_deref()?).ok()?;
    Some(envelope.group())
}

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    Done(SyncOutcome),
    /// Back to the queue (or, on its last delivery, on to the dead-letter queue).
    Retry(String),
}

impl Worker {
    /// The number's assistant side (Vapi).
    fn assistant_route(&self) -> AssistantRoute<'_> {
        AssistantRoute { store: self.assistants.as_ref(), voice_ai: self.voice_ai.as_ref() }
    }

    /// The composition root of a number's sync: its call routes are the dialer's and the voice AI's.
    fn number_ports<'a>(&'a self, sip: &'a SipRoute<'a>, assistant: &'a AssistantRoute<'a>) -> NumberPorts<'a> {
        NumberPorts { store: self.numbers.as_ref(), profiles: self.profiles.as_ref(), carriers: &self.carriers, sip, assistant }
    }

    /// The number's SIP side (the dialer carriers).
    fn sip_route(&self) -> SipRoute<'_> {
        SipRoute { store: self.connections.as_ref(), dialers: &self.dialers }
    }

    pub fn new(w: &Wiring) -> Self {
        Self {
            profiles: w.store.clone(),
            numbers: w.store.clone(),
            sends: w.store.clone(),
            carrier: w.profile_carrier().clone(),
            carriers: w.carriers().clone(),
            connections: w.store.clone(),
            dialers: w.dialers().clone(),
            sip_secrets: w.sip_secrets().clone(),
            public_url: w.config.public_url.clone(),
            assistants: w.store.clone(),
            voice_ai: w.voice_ai().clone(),
            vapi_server: w.vapi_server.clone(),
            max_receive_count: w.max_receive_count(),
            send_lease: std::env::var("PATCHBAY_SEND_LEASE_SECONDS")
                .ok()
                .and_then(|v| v.parse().ok())
                .map_or(SEND_LEASE, Duration::from_secs),
        }
    }

    /// A batch with no deadline (tests, and the local poller without one).
    pub async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        self.handle_batch_until(event, None).await
    }

    /// A batch, in order. A failure stops only its own message group: the later messages of that
    /// group go back unattempted (FIFO order within a resource), every other group goes on. Once
    /// less than [`COMMAND_TIME`] is left before `deadline` (the invocation's), the rest of the batch
    /// goes back unattempted, instead of being cut off between two writes by the timeout.
    pub async fn handle_batch_until(&self, event: SqsEvent, deadline: Option<Instant>) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        let mut stopped_groups: HashSet<String> = HashSet::new();
        let mut out_of_time = false;
        for record in event.records {
            let id = record.message_id.clone().unwrap_or_default();
            let group = record.attributes.get("MessageGroupId").cloned().or_else(|| group_of(&record));
            out_of_time = out_of_time || deadline.is_some_and(|d| d.saturating_duration_since(Instant::now()) < COMMAND_TIME);
            if out_of_time || group.as_ref().is_some_and(|g| stopped_groups.contains(g)) {
                response.add_failure(id);
                continue;
            }
            if let Handled::Retry(_) = self.handle(&record).await {
                response.add_failure(id);
                match group {
                    Some(g) => {
                        stopped_groups.insert(g);
                    }
                    // A message with no group to tell by (an unreadable body): stop everything after it.
                    None => out_of_time = true,
                }
            }
        }
        if out_of_time {
            tracing::warn!("the rest of the batch goes back unattempted");
        }
        response
    }

    pub async fn handle(&self, record: &SqsMessage) -> Handled {
        let message_id = record.message_id.as_deref().unwrap_or("");
        let receive_count: u32 = record.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(1);
        let final_attempt = receive_count >= self.max_receive_count;
        let envelope: CommandEnvelope = match record.body.as_deref().map(serde_json::from_str) {
            Some(Ok(env)) => env,
            Some(Err(e)) => return self.give_back(message_id, receive_count, final_attempt, format!("unreadable command: {e}")),
            None => return self.give_back(message_id, receive_count, final_attempt, "message has no body".into()),
        };
        let result = match &envelope.command {
            Command::SyncMessagingProfile { user_id, profile_id } => {
                sync_profile(self.profiles.as_ref(), self.carrier.as_ref(), user_id, *profile_id, final_attempt, OffsetDateTime::now_utc())
                    .await
            }
            Command::SendSms { user_id, conversation_id, message_id } => {
                let ports = SendPorts {
                    messages: self.sends.as_ref(),
                    numbers: self.numbers.as_ref(),
                    profiles: self.profiles.as_ref(),
                    carriers: &self.carriers,
                    lease: self.send_lease,
                };
                send_sms(ports, user_id, conversation_id, message_id, final_attempt, OffsetDateTime::now_utc()).await
            }
            Command::SyncPhoneNumber { user_id, phone_number } => {
                let (sip, assistant) = (self.sip_route(), self.assistant_route());
                sync_number(self.number_ports(&sip, &assistant), user_id, phone_number, final_attempt, OffsetDateTime::now_utc()).await
            }
            Command::SyncAssistant { user_id, assistant_id } => {
                let ports = SagaPorts {
                    assistants: self.assistant_route(),
                    purchase: PurchasePorts { store: self.numbers.as_ref(), carriers: &self.carriers },
                    server: &self.vapi_server,
                };
                sync_assistant(ports, user_id, *assistant_id, final_attempt, OffsetDateTime::now_utc()).await
            }
            Command::SyncSipConnection { user_id, connection_id } => {
                sync_connection(
                    self.connections.as_ref(),
                    self.sip_secrets.as_ref(),
                    &self.dialers,
                    self.public_url.as_deref(),
                    user_id,
                    *connection_id,
                    final_attempt,
                    OffsetDateTime::now_utc(),
                )
                .await
            }
        };
        match result {
            Ok(outcome) => {
                tracing::info!(message_id, command = %envelope.id, ?outcome, "command done");
                Handled::Done(outcome)
            }
            Err(e) => {
                let reason = format!("{}: {e}", envelope.id);
                if final_attempt {
                    // The queue will not deliver this again: the resource records why, instead of
                    // waiting in flight for a command that is now in the dead-letter queue.
                    if let Err(store) = self.give_up(&envelope.command, &exhausted(&e.to_string())).await {
                        tracing::error!(message_id, command = %envelope.id, error = %store, "could not record the give-up");
                    }
                }
                self.give_back(message_id, receive_count, final_attempt, reason)
            }
        }
    }

    /// Record on the command's resource that its last delivery failed (each capability's
    /// `give_up`: whatever is still in flight becomes `failed` with `retries_exhausted`).
    async fn give_up(&self, command: &Command, reason: &SyncError) -> Result<(), StoreError> {
        let now = OffsetDateTime::now_utc();
        match command {
            Command::SyncMessagingProfile { user_id, profile_id } => {
                profiles::give_up(self.profiles.as_ref(), user_id, *profile_id, reason, now).await
            }
            Command::SendSms { user_id, conversation_id, message_id } => {
                messaging::give_up(self.sends.as_ref(), user_id, conversation_id, message_id, reason, now).await
            }
            Command::SyncPhoneNumber { user_id, phone_number } => {
                let (sip, assistant) = (self.sip_route(), self.assistant_route());
                numbers::give_up(self.number_ports(&sip, &assistant), user_id, phone_number, reason, now).await
            }
            Command::SyncAssistant { user_id, assistant_id } => {
                voice_ai::give_up(self.assistants.as_ref(), self.numbers.as_ref(), user_id, *assistant_id, reason, now).await
            }
            Command::SyncSipConnection { user_id, connection_id } => {
                dialer::give_up(self.connections.as_ref(), user_id, *connection_id, reason, now).await
            }
        }
    }

    fn give_back(&self, message_id: &str, receive_count: u32, final_attempt: bool, reason: String) -> Handled {
        if final_attempt {
            tracing::error!(message_id, receive_count, %reason, "giving up on this delivery; the queue moves the message to the dead-letter queue");
        } else {
            tracing::warn!(message_id, receive_count, %reason, "command failed; it will be retried");
        }
        Handled::Retry(reason)
    }
}
