//! What counts as drift, record by record, and what a pass does about it: each action a conditional
//! write on the version read, so a pass racing a user's change loses cleanly.

use std::collections::{HashMap, HashSet};

use time::OffsetDateTime;

use crate::dialer::model::is_patchbay_user_name;
use crate::kernel::error::StoreError;
use crate::kernel::ids::{AssistantId, ProfileId, UserId};
use crate::kernel::provider::CarrierName;
use crate::kernel::sync::SyncState;
use crate::numbers::model::{NumberStatus, PhoneNumber};
use crate::numbers::ports::ListedNumber;
use crate::reconcile::model::{Action, Indexed, Kind, ReconcileError, Report, Resync, Segment};
use crate::reconcile::ops::{Listed, Reconciler};
use crate::voice_ai::model::AssistantStatus;
use crate::voice_ai::ports::ListedVoiceNumber;

impl Reconciler<'_> {
    // The `if`s inside the arms are writes that may lose a race, not guards.
    #[allow(clippy::too_many_arguments, clippy::collapsible_match)]
    pub(super) async fn check(
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
        // In flight for longer than any command takes: its command is written again (a command lost
        // to a dead-letter queue, or a state from before the outbox), and that is drift.
        if let Some((command, since)) = record.in_flight() {
            if now - since >= self.stale_after {
                // Its provider copy is ours (not a look-alike), whatever state it is in.
                let provider_id = match record {
                    Indexed::Number(n) => Some(n.e164.as_str().to_owned()),
                    Indexed::Profile(prof) => prof.carrier_profile_id.as_ref().map(|c| c.as_str().to_owned()),
                    Indexed::Connection(c) => c.carrier_connection_id.clone(),
                    Indexed::Assistant(a) => a.vapi_assistant_id.clone(),
                };
                seen.extend(provider_id);
                let (user, id, version) = record.identity();
                let kind = record.kind();
                if self.wrote(self.ledger.requeue(user, kind, &id, version, &command).await, report)? {
                    let detail = format!("in flight for {} min; {} written again", (now - since).whole_minutes(), command.id);
                    report.find(kind, p, Action::Requeued, Some(user), id, detail);
                }
                return Ok(());
            }
        }
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
        // Marked pending with its sync in the same transaction.
        if let Err(e) = self.ledger.mark_resync(what, now).await {
            self.wrote(Err::<(), _>(e), report)?;
            return Ok(());
        }
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

    pub(super) async fn report_unknown(
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
                .filter(|c| c.user_name.as_deref().is_some_and(is_patchbay_user_name) && !seen.contains(&c.id))
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
