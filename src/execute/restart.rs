//! What a restart (`wkctl restart`, issue 19) changes in the one executor: each node's
//! gate target is its own version, from a process started after wkctl issued its stop.
//! Everything else (order, pre-stop check, gate, soak, state, locks, resume, Ctrl-C) is
//! the upgrade's.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::Runner;
use crate::gate::GateTarget;
use crate::plan::PlanKind;
use crate::version::WkVersion;

impl Runner<'_> {
    /// The gate's target for node `id`: the plan's for an upgrade; for a restart, the
    /// version the node ran before its stop and a process newer than that stop.
    pub(super) fn gate_target(&self, id: u64) -> GateTarget {
        match self.plan.kind {
            PlanKind::Upgrade => self.target.clone(),
            PlanKind::Restart => {
                let stop = self
                    .state
                    .node(id)
                    .and_then(|n| n.stop_issued_at_ms)
                    .map_or_else(
                        // Before the stop (or a state without its time): the baseline,
                        // taken right before it, is the bound.
                        || self.baseline(id).observed_at,
                        |ms| UNIX_EPOCH + Duration::from_millis(ms),
                    );
                GateTarget::restart(self.node_version(id), stop)
            }
        }
    }

    /// The version node `id` runs for this run: the plan's target for an upgrade; for a
    /// restart, what it reported right before its stop (else what the plan saw).
    pub(super) fn node_version(&self, id: u64) -> WkVersion {
        if self.plan.kind == PlanKind::Upgrade {
            return self.plan.to.clone();
        }
        let run = self.state.node(id);
        run.and_then(|n| n.baseline.as_ref())
            .and_then(|b| b.version.as_deref())
            .or_else(|| run.and_then(|n| n.from.as_deref()))
            .or_else(|| {
                self.plan
                    .nodes
                    .iter()
                    .find(|n| n.id == id)
                    .and_then(|n| n.from.as_deref())
            })
            .and_then(|v| WkVersion::parse(v).ok())
            .unwrap_or_else(|| self.plan.to.clone())
    }

    /// Records that the node's `stop` is being issued now (a restart's B is judged
    /// against it; a re-issued stop moves it later, which only makes B stricter).
    pub(super) fn stop_issued(&mut self, id: u64) {
        let ms = u64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis(),
        )
        .unwrap_or(u64::MAX);
        self.node_run(id).stop_issued_at_ms = Some(ms);
    }

    /// `wkctl upgrade --resume` or `wkctl restart --resume`, as the run is.
    pub(super) fn resume_cmd(&self) -> String {
        format!("`wkctl {} --resume`", self.plan.kind)
    }
}
