//! A reconciliation pass: the segments, the lease and cursor, the walk through each segment.

use std::collections::{HashMap, HashSet};

use time::OffsetDateTime;

use crate::dialer::model::CarrierConnection;
use crate::dialer::ops::Dialers;
use crate::kernel::provider::{CarrierError, CarrierName};
use crate::numbers::ops::Carriers;
use crate::numbers::ports::ListedNumber;
use crate::profiles::ports::{ListedProfile, ProfileCarrier, ProfileReader};
use crate::reconcile::model::{Kind, PassCursor, ReconcileError, Report, Segment};
use crate::reconcile::ports::ReconcileLedger;
use crate::voice_ai::ports::{AssistantReader, ListedAssistant, ListedVoiceNumber, VoiceAi};

/// What a pass reads and writes.
pub struct Reconciler<'a> {
    pub ledger: &'a dyn ReconcileLedger,
    pub profiles: &'a dyn ProfileReader,
    pub assistants: &'a dyn AssistantReader,
    pub carriers: &'a Carriers,
    pub profile_carrier: &'a dyn ProfileCarrier,
    pub dialers: &'a Dialers,
    pub voice_ai: &'a dyn VoiceAi,
    /// How long a record may stay in flight before a pass writes its command again.
    pub stale_after: std::time::Duration,
}

/// In flight longer than this, a record's command is written again (every command normally settles
/// within a minute; the queue's own retries within about 15).
pub const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// How long a pass holds its lease: longer than any run (the function's timeout is 300 s).
pub const LEASE_SECONDS: i64 = 900;

const ALL_CARRIERS: [CarrierName; 3] = [CarrierName::Telnyx, CarrierName::Twilio, CarrierName::Sandbox];

/// The provider's copies of one segment, listed once per run.
pub(super) enum Listed {
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
}
