//! What a reconciliation pass compares, what it found, and its report.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::dialer::model::SipConnection;
use crate::kernel::error::StoreError;
use crate::kernel::ids::UserId;
use crate::kernel::provider::CarrierName;
use crate::kernel::sync::SyncState;
use crate::kernel::work::CommandEnvelope;
use crate::numbers::model::PhoneNumber;
use crate::profiles::model::MessagingProfile;
use crate::voice_ai::model::Assistant;

/// The kinds of resource a pass compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Number,
    Profile,
    Connection,
    Assistant,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Number => "number",
            Kind::Profile => "profile",
            Kind::Connection => "connection",
            Kind::Assistant => "assistant",
        }
    }
}

/// One kind of resource at one provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub kind: Kind,
    /// The carrier for numbers and connections (each record names its own); `None` for profiles and
    /// assistants, which go to the one messaging carrier and the one voice AI of the deployment.
    pub carrier: Option<CarrierName>,
    /// The provider's name, for the report.
    pub provider: String,
}

impl Segment {
    pub fn label(&self) -> String {
        format!("{}:{}", self.kind.as_str(), self.provider)
    }
}

/// One of Patchbay's records, as the provider index lists it.
#[derive(Debug, Clone)]
pub enum Indexed {
    Number(PhoneNumber),
    Profile(MessagingProfile),
    Connection(SipConnection),
    Assistant(Assistant),
}

impl Indexed {
    pub(super) fn updated_at(&self) -> OffsetDateTime {
        match self {
            Indexed::Number(n) => n.updated_at,
            Indexed::Profile(p) => p.updated_at,
            Indexed::Connection(c) => c.updated_at,
            Indexed::Assistant(a) => a.updated_at,
        }
    }

    /// How the provider's listing names it (what `seen` holds).
    pub(super) fn provider_key(&self) -> String {
        match self {
            Indexed::Number(n) => n.e164.as_str().to_owned(),
            Indexed::Profile(p) => p.carrier_profile_id.as_ref().map(|c| c.as_str().to_owned()).unwrap_or_default(),
            Indexed::Connection(c) => c.carrier_connection_id.clone().unwrap_or_default(),
            Indexed::Assistant(a) => a.vapi_assistant_id.clone().unwrap_or_default(),
        }
    }
}

/// What a re-sync marks pending (each a conditional write on the version read).
#[derive(Debug, Clone, Copy)]
pub enum Resync<'a> {
    /// The number's messaging-profile side.
    NumberProfile(&'a PhoneNumber),
    /// The number's assistant side (the voice AI's copy of the number); `true`: the voice AI no
    /// longer has the import, so its id is forgotten and the next sync imports the number again.
    NumberAssistant(&'a PhoneNumber, bool),
    /// `recreate`: the carrier has no copy any more, so the next sync creates one.
    Profile(&'a MessagingProfile, bool),
    Connection(&'a SipConnection),
    Assistant(&'a Assistant),
}

impl Indexed {
    /// The command that moves this record on, when it is in flight (a purchase, a release, a delete,
    /// a side or a settings change waiting for its provider), with when it last changed; `None` when
    /// it is settled. A number reserved for an assistant is the assistant's saga's to move.
    pub fn in_flight(&self) -> Option<(CommandEnvelope, OffsetDateTime)> {
        use crate::numbers::model::NumberStatus;
        use crate::voice_ai::model::AssistantStatus;
        let pending = Some(SyncState::Pending);
        match self {
            Indexed::Number(n) => {
                let moving = match n.status {
                    NumberStatus::Pending => n.assistant_id.is_none(),
                    NumberStatus::Releasing => true,
                    NumberStatus::Active | NumberStatus::Lost => {
                        n.profile_sync == SyncState::Pending || n.voice_sync == pending || n.assistant_sync == pending
                    }
                    NumberStatus::Failed => false,
                };
                moving.then(|| (CommandEnvelope::sync_number(n.user_id.clone(), n.e164.clone(), n.version), n.updated_at))
            }
            Indexed::Profile(p) => matches!(p.sync_state, SyncState::Pending | SyncState::Deleting)
                .then(|| (CommandEnvelope::sync_profile(p.user_id.clone(), p.id, p.version), p.updated_at)),
            Indexed::Connection(c) => matches!(c.sync_state, SyncState::Pending | SyncState::Deleting)
                .then(|| (CommandEnvelope::sync_connection(c.user_id.clone(), c.id, c.version), c.updated_at)),
            Indexed::Assistant(a) => {
                let moving = matches!(a.status, AssistantStatus::Pending | AssistantStatus::Deleting)
                    || (a.status == AssistantStatus::Active && a.sync_state == SyncState::Pending);
                moving.then(|| (CommandEnvelope::sync_assistant(a.user_id.clone(), a.id, a.version), a.updated_at))
            }
        }
    }

    /// Whose it is, its id as the report names it, and its version.
    pub fn identity(&self) -> (&UserId, String, u64) {
        match self {
            Indexed::Number(n) => (&n.user_id, n.e164.to_string(), n.version),
            Indexed::Profile(p) => (&p.user_id, p.id.to_string(), p.version),
            Indexed::Connection(c) => (&c.user_id, c.id.to_string(), c.version),
            Indexed::Assistant(a) => (&a.user_id, a.id.to_string(), a.version),
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Indexed::Number(_) => Kind::Number,
            Indexed::Profile(_) => Kind::Profile,
            Indexed::Connection(_) => Kind::Connection,
            Indexed::Assistant(_) => Kind::Assistant,
        }
    }
}

impl Resync<'_> {
    /// The sync that pushes our copy again at `version` (written with the mark, in its transaction).
    pub fn command(&self, version: u64) -> CommandEnvelope {
        match *self {
            Resync::NumberProfile(n) | Resync::NumberAssistant(n, _) => {
                CommandEnvelope::sync_number(n.user_id.clone(), n.e164.clone(), version)
            }
            Resync::Profile(p, _) => CommandEnvelope::sync_profile(p.user_id.clone(), p.id, version),
            Resync::Connection(c) => CommandEnvelope::sync_connection(c.user_id.clone(), c.id, version),
            Resync::Assistant(a) => CommandEnvelope::sync_assistant(a.user_id.clone(), a.id, version),
        }
    }
}

/// Where a pass stands, saved between runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassCursor {
    /// The segment the next run starts with.
    pub segment: usize,
    /// Inside it, the index position after which to go on (`None`: its start).
    pub after: Option<String>,
    /// Complete passes so far.
    pub passes: u64,
}

/// What a pass did to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Lost,
    Found,
    Adopted,
    Resynced,
    Unknown,
    /// In flight (pending, releasing, deleting) past the deadline: its command written again.
    Requeued,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: Kind,
    pub provider: String,
    pub action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Ours (number, profile id, …) or, for an unknown resource, the provider's.
    pub id: String,
    pub detail: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub checked: u64,
    pub lost: u64,
    pub found: u64,
    pub adopted: u64,
    pub resynced: u64,
    pub unknown: u64,
    /// Records still in flight past the deadline whose command was written again.
    pub requeued: u64,
    /// Look-alikes reported by an earlier pass and still there (listed, not drift).
    pub unknown_known: u64,
    /// Records a write could not act on this pass (changed meanwhile, or an error): the next pass looks again.
    pub skipped: u64,
}

impl Counts {
    /// Everything that was out of step: the alarm's metric.
    pub fn drift(&self) -> u64 {
        self.lost + self.found + self.adopted + self.resynced + self.unknown + self.requeued
    }
}

/// One pass's structured report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub pass_id: String,
    /// Every segment was walked to its end in this run.
    pub complete: bool,
    pub segments: Vec<String>,
    /// Where the next run starts when this one ran out of time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resume_at: Option<String>,
    pub counts: Counts,
    pub drift: u64,
    pub findings: Vec<Finding>,
    /// Look-alikes an earlier pass reported that are still at the provider (`kind:provider:id`).
    pub still_unknown: Vec<String>,
    /// Segments whose provider could not be listed (the pass goes on with the others).
    pub errors: Vec<String>,
    /// Another pass held the lease: this one did nothing.
    pub skipped_busy: bool,
}

impl Report {
    pub(super) fn find(&mut self, kind: Kind, provider: &str, action: Action, user: Option<&UserId>, id: String, detail: String) {
        match action {
            Action::Lost => self.counts.lost += 1,
            Action::Found => self.counts.found += 1,
            Action::Adopted => self.counts.adopted += 1,
            Action::Resynced => self.counts.resynced += 1,
            Action::Unknown => self.counts.unknown += 1,
            Action::Requeued => self.counts.requeued += 1,
        }
        self.findings.push(Finding { kind, provider: provider.to_owned(), action, user_id: user.map(|u| u.to_string()), id, detail });
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The report's counts as one CloudWatch Embedded Metric Format line (namespace `Patchbay`,
/// dimension `Stack`): written to stdout, CloudWatch Logs turns it into metrics, no SDK call.
pub fn emf_line(stack: &str, report: &Report, at: OffsetDateTime) -> String {
    let c = &report.counts;
    let names = ["Drift", "Checked", "Lost", "Found", "Adopted", "Resynced", "Unknown", "Requeued", "Skipped", "ListErrors"];
    let values =
        [c.drift(), c.checked, c.lost, c.found, c.adopted, c.resynced, c.unknown, c.requeued, c.skipped, report.errors.len() as u64];
    let mut line = serde_json::json!({
        "_aws": {
            "Timestamp": at.unix_timestamp() * 1000 + i64::from(at.millisecond()),
            "CloudWatchMetrics": [{
                "Namespace": "Patchbay",
                "Dimensions": [["Stack"]],
                "Metrics": names.iter().map(|n| serde_json::json!({"Name": n, "Unit": "Count"})).collect::<Vec<_>>(),
            }],
        },
        "Stack": stack,
        "pass_id": report.pass_id,
        "complete": report.complete,
    });
    for (n, v) in names.iter().zip(values) {
        line[*n] = serde_json::json!(v);
    }
    line.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_names_every_metric_it_sets() {
        let mut r = Report { pass_id: "p1".into(), ..Default::default() };
        r.counts.lost = 2;
        r.counts.unknown = 1;
        let v: serde_json::Value = serde_json::from_str(&emf_line("stack-a", &r, OffsetDateTime::UNIX_EPOCH)).unwrap();
        let metrics = v["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().unwrap();
        for m in metrics {
            assert!(v[m["Name"].as_str().unwrap()].is_u64(), "{m} has no value");
        }
        assert_eq!(v["Drift"], 3);
        assert_eq!(v["Stack"], "stack-a");
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Patchbay");
    }
}
