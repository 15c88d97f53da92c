//! The scheduled reconciler: one pass of `patchbay_domain::reconcile` over this deployment's
//! providers, its report logged as one structured line and its counts printed as one Embedded
//! Metric Format line (CloudWatch turns it into the `Patchbay` metrics the drift alarm watches).

use std::sync::Arc;
use std::time::{Duration, Instant};

use patchbay_adapters::{DynamoStore, Wiring};
use patchbay_domain::dialer::Dialers;
use patchbay_domain::numbers::Carriers;
use patchbay_domain::profiles::ProfileCarrier;
use patchbay_domain::reconcile::{emf_line, ReconcileError, Reconciler, Report, STALE_AFTER};
use patchbay_domain::voice_ai::VoiceAi;
use time::OffsetDateTime;

/// What a pass is made of, built once per cold start.
pub struct ReconcilerFunction {
    store: Arc<DynamoStore>,
    carriers: Carriers,
    profile_carrier: Arc<dyn ProfileCarrier>,
    dialers: Dialers,
    voice_ai: Arc<dyn VoiceAi>,
    stack: String,
    /// `PATCHBAY_STALE_AFTER_SECONDS` (default 30 min): how long a record may stay in flight before
    /// a pass writes its command again.
    pub stale_after: Duration,
}

impl ReconcilerFunction {
    pub fn new(w: &Wiring) -> Self {
        Self {
            store: w.store.clone(),
            carriers: w.carriers().clone(),
            profile_carrier: w.profile_carrier().clone(),
            dialers: w.dialers().clone(),
            voice_ai: w.voice_ai().clone(),
            stale_after: std::env::var("PATCHBAY_STALE_AFTER_SECONDS")
                .ok()
                .and_then(|v| v.parse().ok())
                .map_or(STALE_AFTER, Duration::from_secs),
            stack: std::env::var("PATCHBAY_STACK").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| "patchbay".to_owned()),
        }
    }

    /// One run, stopping between pages once `budget` is spent (the next run resumes there). Logs
    /// the report and prints the metrics line.
    pub async fn pass(&self, budget: Duration) -> Result<Report, ReconcileError> {
        let started = Instant::now();
        let pass_id = uuid::Uuid::now_v7().to_string();
        let reconciler = Reconciler {
            ledger: self.store.as_ref(),
            profiles: self.store.as_ref(),
            assistants: self.store.as_ref(),
            carriers: &self.carriers,
            profile_carrier: self.profile_carrier.as_ref(),
            dialers: &self.dialers,
            voice_ai: self.voice_ai.as_ref(),
            stale_after: self.stale_after,
        };
        let out_of_time = move || started.elapsed() >= budget;
        let report = reconciler.run(&pass_id, OffsetDateTime::now_utc(), &out_of_time).await?;
        let json = serde_json::to_string(&report).unwrap_or_default();
        if report.drift > 0 || !report.errors.is_empty() {
            tracing::warn!(report = %json, drift = report.drift, "reconciliation found drift");
        } else {
            tracing::info!(report = %json, "reconciliation found nothing out of step");
        }
        if !report.skipped_busy {
            println!("{}", emf_line(&self.stack, &report, OffsetDateTime::now_utc()));
        }
        Ok(report)
    }
}
