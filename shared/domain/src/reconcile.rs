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

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::dialer::{CarrierConnection, SipConnection};
use crate::dialer_ops::Dialers;
use crate::number_ops::Carriers;
use crate::ports::{AssistantReader, CarrierError, ProfileCarrier, ProfileReader, QueueError, VoiceAi, WorkQueue};
use crate::voice_ai::{Assistant, AssistantId, AssistantStatus};
use crate::{CarrierName, CommandEnvelope, MessagingProfile, NumberStatus, PhoneNumber, ProfileId, StoreError, SyncState, UserId, E164};

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

/// A number as the carrier lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedNumber {
    pub e164: E164,
    pub id: String,
    /// The carrier's messaging profile id the number is on (carriers without profiles: `None`).
    pub messaging_profile_id: Option<String>,
    /// Marked as Patchbay's (bought through Patchbay: its order reference, its webhook URL).
    pub patchbay: bool,
}

/// A messaging profile as the carrier lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedProfile {
    pub id: String,
    pub name: String,
    pub patchbay: bool,
}

/// An assistant as the voice AI lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedAssistant {
    pub id: String,
    pub name: String,
    /// `metadata.patchbay_assistant_id`: set on every assistant Patchbay creates.
    pub patchbay_id: Option<String>,
}

/// A number imported into the voice AI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedVoiceNumber {
    pub id: String,
    pub e164: String,
    pub assistant_id: Option<String>,
}

/// Whether a carrier connection carries a SIP user name of Patchbay's shape (`pb` + 30 hex digits).
pub fn patchbay_connection(c: &CarrierConnection) -> bool {
    c.user_name.as_deref().is_some_and(|u| u.len() == 32 && u.starts_with("pb") && u[2..].bytes().all(|b| b.is_ascii_hexdigit()))
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
    fn updated_at(&self) -> OffsetDateTime {
        match self {
            Indexed::Number(n) => n.updated_at,
            Indexed::Profile(p) => p.updated_at,
            Indexed::Connection(c) => c.updated_at,
            Indexed::Assistant(a) => a.updated_at,
        }
    }

    /// How the provider's listing names it (what `seen` holds).
    fn provider_key(&self) -> String {
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

/// The store side of reconciliation.
#[async_trait]
pub trait ReconcileLedger: Send + Sync {
    /// One page of Patchbay's records of a segment on the provider index, and where the next starts.
    async fn indexed_page(&self, segment: &Segment, after: Option<&str>) -> Result<(Vec<Indexed>, Option<String>), StoreError>;
    /// `active` → `lost` (or back, `lost` → `active`), on the version read.
    async fn set_number_lost(&self, n: &PhoneNumber, lost: bool, now: OffsetDateTime) -> Result<(), StoreError>;
    /// A pending or failed purchase the carrier completed: active with the carrier's id, the owner
    /// guard taken again in the same transaction (`Conflict(NumberUnavailable)`: someone else holds it).
    async fn adopt_number(&self, n: &PhoneNumber, carrier_number_id: &str, now: OffsetDateTime) -> Result<(), StoreError>;
    /// Mark one side pending with a new version; answers that version (its sync command's).
    async fn mark_resync(&self, what: Resync<'_>, now: OffsetDateTime) -> Result<u64, StoreError>;
    /// Take the pass lease (`None`: another pass holds it) and answer the saved cursor.
    async fn begin_pass(&self, pass_id: &str, now: OffsetDateTime, lease_seconds: i64) -> Result<Option<PassCursor>, StoreError>;
    /// Remember a reported unknown resource; `true` the first time it is seen (only then is it drift:
    /// the alarm fires once per look-alike, the report keeps listing it).
    async fn note_unknown(&self, kind: Kind, provider: &str, id: &str, now: OffsetDateTime) -> Result<bool, StoreError>;
    /// Save the cursor and give the lease back.
    async fn end_pass(&self, pass_id: &str, cursor: &PassCursor) -> Result<(), StoreError>;
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
    /// Look-alikes reported by an earlier pass and still there (listed, not drift).
    pub unknown_known: u64,
    /// Records a write could not act on this pass (changed meanwhile, or an error): the next pass looks again.
    pub skipped: u64,
}

impl Counts {
    /// Everything that was out of step: the alarm's metric.
    pub fn drift(&self) -> u64 {
        self.lost + self.found + self.adopted + self.resynced + self.unknown
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
    fn find(&mut self, kind: Kind, provider: &str, action: Action, user: Option<&UserId>, id: String, detail: String) {
        match action {
            Action::Lost => self.counts.lost += 1,
            Action::Found => self.counts.found += 1,
            Action::Adopted => self.counts.adopted += 1,
            Action::Resynced => self.counts.resynced += 1,
            Action::Unknown => self.counts.unknown += 1,
        }
        self.findings.push(Finding { kind, provider: provider.to_owned(), action, user_id: user.map(|u| u.to_string()), id, detail });
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// What a pass reads and writes.
pub struct Reconciler<'a> {
    pub ledger: &'a dyn ReconcileLedger,
    pub profiles: &'a dyn ProfileReader,
    pub assistants: &'a dyn AssistantReader,
    pub queue: &'a dyn WorkQueue,
    pub carriers: &'a Carriers,
    pub profile_carrier: &'a dyn ProfileCarrier,
    pub dialers: &'a Dialers,
    pub voice_ai: &'a dyn VoiceAi,
}

/// How long a pass holds its lease: longer than any run (the function's timeout is 300 s).
pub const LEASE_SECONDS: i64 = 900;

const ALL_CARRIERS: [CarrierName; 3] = [CarrierName::Telnyx, CarrierName::Twilio, CarrierName::Sandbox];

/// The provider's copies of one segment, listed once per run.
enum Listed {
    Numbers(HashMap<String, ListedNumber>),
    Profiles(HashMap<String, ListedProfile>),
    Connections(HashMap<String, CarrierConnection>),
    Assistants(HashMap<String, ListedAssistant>),
}

impl Reconciler<'_> {
    /// The segments of this deployment, in a fixed order (the cursor is an index into it).
    pub fn segments(&self) -> Vec<Segment> {
        let mut out = Vec::new();
        for c in ALL_CARRIERS {
            if self.carriers.get(c).is_some() {
                out.push(Segment { kind: Kind::Number, carrier: Some(c), provider: c.as_str().to_owned() });
            }
        }
        out.push(Segment { kind: Kind::Profile, carrier: None, provider: self.profile_carrier.name().to_owned() });
        for c in ALL_CARRIERS {
            if self.dialers.get(c).is_some() {
                out.push(Segment { kind: Kind::Connection, carrier: Some(c), provider: c.as_str().to_owned() });
            }
        }
        out.push(Segment { kind: Kind::Assistant, carrier: None, provider: self.voice_ai.name().to_owned() });
        out
    }

    /// One run: from the saved cursor until every segment is done or `out_of_time()` says stop.
    pub async fn run(&self, pass_id: &str, now: OffsetDateTime, out_of_time: &(dyn Fn() -> bool + Sync)) -> Result<Report, ReconcileError> {
        let mut report = Report { pass_id: pass_id.to_owned(), ..Default::default() };
        let Some(mut cursor) = self.ledger.begin_pass(pass_id, now, LEASE_SECONDS).await? else {
            report.skipped_busy = true;
            return Ok(report);
        };
        let segments = self.segments();
        if cursor.segment >= segments.len() {
            cursor = PassCursor { passes: cursor.passes, ..Default::default() };
        }
        let result = self.walk(&segments, &mut cursor, &mut report, now, out_of_time).await;
        // The cursor is saved whatever happened: a failed run resumes where it failed.
        let saved = self.ledger.end_pass(pass_id, &cursor).await;
        result?;
        saved?;
        report.drift = report.counts.drift();
        Ok(report)
    }

    async fn walk(
        &self,
        segments: &[Segment],
        cursor: &mut PassCursor,
        report: &mut Report,
        now: OffsetDateTime,
        out_of_time: &(dyn Fn() -> bool + Sync),
    ) -> Result<(), ReconcileError> {
        let mut voice_numbers: Option<HashMap<String, ListedVoiceNumber>> = None;
        let mut voice_listed = false;
        while cursor.segment < segments.len() {
            let seg = &segments[cursor.segment];
            if out_of_time() {
                report.resume_at = Some(seg.label());
                return Ok(());
            }
            let from_start = cursor.after.is_none();
            let listed = match self.list(seg).await {
                Ok(l) => l,
                Err(e) => {
                    // A provider we cannot list is skipped whole: nothing is marked lost on a failed listing.
                    report.errors.push(format!("{}: {e}", seg.label()));
                    cursor.segment += 1;
                    cursor.after = None;
                    continue;
                }
            };
            if seg.kind == Kind::Number && !voice_listed {
                // Without the voice AI's list, attachments are not judged (never "detached" by default).
                voice_listed = true;
                match self.voice_ai.list_numbers().await {
                    Ok(list) => voice_numbers = Some(list.into_iter().map(|n| (n.id.clone(), n)).collect()),
                    Err(e) => report.errors.push(format!("assistant numbers:{}: {e}", self.voice_ai.name())),
                }
            }
            let mut seen: HashSet<String> = HashSet::new();
            loop {
                let (page, next) = self.ledger.indexed_page(seg, cursor.after.as_deref()).await?;
                for record in &page {
                    report.counts.checked += 1;
                    // Written since the pass began: the provider's listing may predate it (a purchase
                    // completed, a profile created meanwhile). Seen, so never reported unknown, but
                    // judged by the next pass.
                    if record.updated_at() >= now {
                        seen.insert(record.provider_key());
                        report.counts.skipped += 1;
                        continue;
                    }
                    self.check(seg, &listed, voice_numbers.as_ref(), record, &mut seen, report, now).await?;
                }
                cursor.after = next;
                if cursor.after.is_none() {
                    break;
                }
                if out_of_time() {
                    report.resume_at = Some(seg.label());
                    return Ok(());
                }
            }
            // Unknown look-alikes need every record of the segment seen in this run.
            if from_start {
                self.report_unknown(seg, &listed, &seen, report, now).await?;
            }
            report.segments.push(seg.label());
            cursor.segment += 1;
        }
        cursor.segment = 0;
        cursor.passes += 1;
        report.complete = true;
        Ok(())
    }

    async fn list(&self, seg: &Segment) -> Result<Listed, CarrierError> {
        let not_configured = || CarrierError::NotConfigured(seg.label());
        Ok(match seg.kind {
            Kind::Number => {
                let c = seg.carrier.and_then(|c| self.carriers.get(c)).ok_or_else(not_configured)?;
                Listed::Numbers(c.list_numbers().await?.into_iter().map(|n| (n.e164.as_str().to_owned(), n)).collect())
            }
            Kind::Profile => {
                Listed::Profiles(self.profile_carrier.list_messaging_profiles().await?.into_iter().map(|p| (p.id.clone(), p)).collect())
            }
            Kind::Connection => {
                let d = seg.carrier.and_then(|c| self.dialers.get(c)).ok_or_else(not_configured)?;
                Listed::Connections(d.list_credential_connections().await?.into_iter().map(|c| (c.id.clone(), c)).collect())
            }
            Kind::Assistant => Listed::Assistants(self.voice_ai.list_assistants().await?.into_iter().map(|a| (a.id.clone(), a)).collect()),
        })
    }

    // The `if`s inside the arms are writes that may lose a race, not guards.
    #[allow(clippy::too_many_arguments, clippy::collapsible_match)]
    async fn check(
        &self,
        seg: &Segment,
        listed: &Listed,
        voice_numbers: Option<&HashMap<String, ListedVoiceNumber>>,
        record: &Indexed,
        seen: &mut HashSet<String>,
        report: &mut Report,
        now: OffsetDateTime,
    ) -> Result<(), ReconcileError> {
        let p = seg.provider.as_str();
        match (record, listed) {
            (Indexed::Number(n), Listed::Numbers(at)) => {
                seen.insert(n.e164.as_str().to_owned());
                let there = at.get(n.e164.as_str());
                let user = Some(&n.user_id);
                let id = n.e164.to_string();
                match (n.status, there) {
                    (NumberStatus::Active, None) => {
                        if self.wrote(self.ledger.set_number_lost(n, true, now).await, report)? {
                            report.find(Kind::Number, p, Action::Lost, user, id, "the carrier no longer has this number".into());
                        }
                    }
                    (NumberStatus::Lost, Some(_)) => {
                        if self.wrote(self.ledger.set_number_lost(n, false, now).await, report)? {
                            report.find(Kind::Number, p, Action::Found, user, id, "the carrier has this number again".into());
                        }
                    }
                    (NumberStatus::Pending | NumberStatus::Failed, Some(c)) => {
                        if self.wrote(self.ledger.adopt_number(n, &c.id, now).await, report)? {
                            let was = if n.status == NumberStatus::Failed { "failed" } else { "pending" };
                            report.find(
                                Kind::Number,
                                p,
                                Action::Adopted,
                                user,
                                id,
                                format!("recorded {was}; the carrier completed the order ({})", c.id),
                            );
                        }
                    }
                    (NumberStatus::Active, Some(c)) => {
                        if let Some(why) = self.profile_drift(n, c).await? {
                            self.resync(Resync::NumberProfile(n), Kind::Number, p, user, id.clone(), why, report, now).await?;
                        }
                        if let Some((why, gone)) = self.assistant_drift(n, voice_numbers).await? {
                            self.resync(Resync::NumberAssistant(n, gone), Kind::Number, p, user, id, why, report, now).await?;
                        }
                    }
                    _ => {}
                }
            }
            (Indexed::Profile(prof), Listed::Profiles(at)) => {
                let Some(cid) = prof.carrier_profile_id.as_ref().map(|c| c.as_str().to_owned()) else { return Ok(()) };
                seen.insert(cid.clone());
                if prof.sync_state != SyncState::Synced {
                    return Ok(()); // a sync is under way or failed visibly: not drift
                }
                let why = match at.get(&cid) {
                    None => Some((format!("the carrier has no profile {cid}; it is created again"), true)),
                    Some(l) if l.name != prof.name.as_str() => {
                        Some((format!("named {:?} at the carrier, {:?} here", l.name, prof.name.as_str()), false))
                    }
                    Some(_) => None,
                };
                if let Some((why, recreate)) = why {
                    self.resync(
                        Resync::Profile(prof, recreate),
                        Kind::Profile,
                        p,
                        Some(&prof.user_id),
                        prof.id.to_string(),
                        why,
                        report,
                        now,
                    )
                    .await?;
                }
            }
            (Indexed::Connection(c), Listed::Connections(at)) => {
                let Some(cid) = c.carrier_connection_id.clone() else { return Ok(()) };
                seen.insert(cid.clone());
                if c.sync_state != SyncState::Synced {
                    return Ok(());
                }
                let why = match at.get(&cid) {
                    None => Some(format!("the carrier has no connection {cid}")),
                    Some(l) if l.name != c.name.as_str() => Some(format!("named {:?} at the carrier, {:?} here", l.name, c.name.as_str())),
                    Some(l) if l.active != c.active => Some(format!("active={} at the carrier, {} here", l.active, c.active)),
                    Some(_) => None,
                };
                if let Some(why) = why {
                    self.resync(Resync::Connection(c), Kind::Connection, p, Some(&c.user_id), c.id.to_string(), why, report, now).await?;
                }
            }
            (Indexed::Assistant(a), Listed::Assistants(at)) => {
                let Some(vid) = a.vapi_assistant_id.clone() else { return Ok(()) };
                seen.insert(vid.clone());
                if a.status != AssistantStatus::Active || a.sync_state != SyncState::Synced {
                    return Ok(());
                }
                let why = match at.get(&vid) {
                    None => Some(format!("{} has no assistant {vid}", self.voice_ai.name())),
                    Some(l) if l.name != a.name.as_str() => Some(format!("named {:?} there, {:?} here", l.name, a.name.as_str())),
                    Some(_) => None,
                };
                if let Some(why) = why {
                    self.resync(Resync::Assistant(a), Kind::Assistant, p, Some(&a.user_id), a.id.to_string(), why, report, now).await?;
                }
            }
            // A record of another kind on this segment's index would be a corrupt index entry.
            _ => report.counts.skipped += 1,
        }
        Ok(())
    }

    /// The carrier has the number on another messaging profile than ours (carriers with profiles only).
    async fn profile_drift(&self, n: &PhoneNumber, listed: &ListedNumber) -> Result<Option<String>, ReconcileError> {
        if n.carrier == CarrierName::Twilio || n.profile_sync != SyncState::Synced || n.carrier_number_id.is_none() {
            return Ok(None);
        }
        let ours = match n.messaging_profile_id {
            None => None,
            Some(pid) => self.carrier_profile(&n.user_id, pid).await?,
        };
        if ours == listed.messaging_profile_id {
            return Ok(None);
        }
        Ok(Some(format!(
            "on messaging profile {} at the carrier, {} here",
            listed.messaging_profile_id.as_deref().unwrap_or("none"),
            ours.as_deref().unwrap_or("none")
        )))
    }

    async fn carrier_profile(&self, user: &UserId, pid: ProfileId) -> Result<Option<String>, ReconcileError> {
        match self.profiles.get_profile(user, pid).await {
            Ok(p) => Ok(p.carrier_profile_id.map(|c| c.as_str().to_owned())),
            Err(StoreError::NotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The voice AI has the number detached from (or attached to another than) its assistant.
    async fn assistant_drift(
        &self,
        n: &PhoneNumber,
        voice_numbers: Option<&HashMap<String, ListedVoiceNumber>>,
    ) -> Result<Option<(String, bool)>, ReconcileError> {
        let (Some(aid), Some(SyncState::Synced), Some(vpn), Some(listed)) =
            (n.assistant_id, n.assistant_sync, n.vapi_phone_number_id.as_deref(), voice_numbers)
        else {
            return Ok(None);
        };
        let expected = self.vapi_assistant(&n.user_id, aid).await?;
        let Some(expected) = expected else { return Ok(None) };
        let there = listed.get(vpn);
        match there.and_then(|v| v.assistant_id.as_deref()) {
            Some(a) if a == expected => Ok(None),
            Some(a) => Ok(Some((format!("attached to assistant {a} at {}, {expected} here", self.voice_ai.name()), false))),
            None if there.is_none() => Ok(Some((format!("{} no longer has the number {vpn}", self.voice_ai.name()), true))),
            None => Ok(Some((format!("detached from its assistant at {}", self.voice_ai.name()), false))),
        }
    }

    async fn vapi_assistant(&self, user: &UserId, id: AssistantId) -> Result<Option<String>, ReconcileError> {
        match self.assistants.get_assistant(user, id).await {
            Ok(a) if a.status == AssistantStatus::Active => Ok(a.vapi_assistant_id),
            Ok(_) | Err(StoreError::NotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn resync(
        &self,
        what: Resync<'_>,
        kind: Kind,
        provider: &str,
        user: Option<&UserId>,
        id: String,
        why: String,
        report: &mut Report,
        now: OffsetDateTime,
    ) -> Result<(), ReconcileError> {
        let version = match self.ledger.mark_resync(what, now).await {
            Ok(v) => v,
            Err(e) => {
                self.wrote(Err::<(), _>(e), report)?;
                return Ok(());
            }
        };
        let command = match what {
            Resync::NumberProfile(n) | Resync::NumberAssistant(n, _) => {
                CommandEnvelope::sync_number(n.user_id.clone(), n.e164.clone(), version)
            }
            Resync::Profile(p, _) => CommandEnvelope::sync_profile(p.user_id.clone(), p.id, version),
            Resync::Connection(c) => CommandEnvelope::sync_connection(c.user_id.clone(), c.id, version),
            Resync::Assistant(a) => CommandEnvelope::sync_assistant(a.user_id.clone(), a.id, version),
        };
        // Marked pending first, then queued: a lost enqueue leaves a visible `pending` that the next
        // pass does not count as drift, and the user's next change queues it again.
        self.queue.enqueue(&command).await?;
        report.find(kind, provider, Action::Resynced, user, id, why);
        Ok(())
    }

    /// A conditional write's outcome: done, or lost to a concurrent change (skipped, looked at again
    /// next pass). Store outages end the run.
    fn wrote(&self, result: Result<impl Sized, StoreError>, report: &mut Report) -> Result<bool, ReconcileError> {
        match result {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict(_) | StoreError::NotFound) => {
                report.counts.skipped += 1;
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn report_unknown(
        &self,
        seg: &Segment,
        listed: &Listed,
        seen: &HashSet<String>,
        report: &mut Report,
        now: OffsetDateTime,
    ) -> Result<(), ReconcileError> {
        let p = seg.provider.as_str();
        let mut unknown: Vec<(String, String)> = match listed {
            Listed::Numbers(m) => m
                .values()
                .filter(|n| n.patchbay && !seen.contains(n.e164.as_str()))
                .map(|n| (n.e164.to_string(), format!("carrier number {} is marked as Patchbay's but no user holds it", n.id)))
                .collect(),
            Listed::Profiles(m) => m
                .values()
                .filter(|l| l.patchbay && !seen.contains(&l.id))
                .map(|l| (l.id.clone(), format!("messaging profile {:?} looks like Patchbay's but is not in the table", l.name)))
                .collect(),
            Listed::Connections(m) => m
                .values()
                .filter(|c| patchbay_connection(c) && !seen.contains(&c.id))
                .map(|c| (c.id.clone(), format!("connection {:?} has a Patchbay SIP user name but is not in the table", c.name)))
                .collect(),
            Listed::Assistants(m) => m
                .values()
                .filter(|a| a.patchbay_id.is_some() && !seen.contains(&a.id))
                .map(|a| {
                    let ours = a.patchbay_id.as_deref().unwrap_or_default();
                    (a.id.clone(), format!("assistant {:?} carries patchbay_assistant_id {ours} but is not in the table", a.name))
                })
                .collect(),
        };
        unknown.sort();
        for (id, detail) in unknown {
            if self.ledger.note_unknown(seg.kind, p, &id, now).await? {
                report.find(seg.kind, p, Action::Unknown, None, id, detail);
            } else {
                report.counts.unknown_known += 1;
                report.still_unknown.push(format!("{}:{p}:{id}", seg.kind.as_str()));
            }
        }
        Ok(())
    }
}

/// The report's counts as one CloudWatch Embedded Metric Format line (namespace `Patchbay`,
/// dimension `Stack`): written to stdout, CloudWatch Logs turns it into metrics, no SDK call.
pub fn emf_line(stack: &str, report: &Report, at: OffsetDateTime) -> String {
    let c = &report.counts;
    let names = ["Drift", "Checked", "Lost", "Found", "Adopted", "Resynced", "Unknown", "Skipped", "ListErrors"];
    let values = [c.drift(), c.checked, c.lost, c.found, c.adopted, c.resynced, c.unknown, c.skipped, report.errors.len() as u64];
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
    fn connection_lookalikes_are_patchbay_user_names() {
        let c = |u: Option<&str>| CarrierConnection { id: "1".into(), name: "x".into(), user_name: u.map(Into::into), active: true };
        assert!(patchbay_connection(&c(Some(&crate::dialer::ConnectionId::new_v7().sip_username()))));
        assert!(!patchbay_connection(&c(Some("alice"))));
        assert!(!patchbay_connection(&c(Some("pbzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"))));
        assert!(!patchbay_connection(&c(None)));
    }

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
