//! The `summary` event that ends every run: per node old → new, status and time taken.

use super::Runner;
use crate::error::Outcome;
use crate::events::{Event, NodeSummary, Summary};
use crate::state::{NodeStatus, RunStatus};

impl Runner<'_> {
    pub(super) fn summary(&self, outcome: Outcome) {
        let nodes = self
            .plan
            .nodes
            .iter()
            .map(|pn| {
                let st = self.state.node(pn.id);
                NodeSummary {
                    id: pn.id,
                    from: st.and_then(|s| s.from.clone()).or_else(|| pn.from.clone()),
                    to: self.node_version(pn.id).to_string(),
                    status: st.map_or(NodeStatus::Pending, |s| s.status),
                    duration_s: st.and_then(|s| match (s.started_at_ms, s.finished_at_ms) {
                        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / 1000.0),
                        _ => None,
                    }),
                    kind: self.plan.kind,
                }
            })
            .collect();
        let status = match outcome {
            Outcome::Success => RunStatus::Completed,
            Outcome::No => RunStatus::Failed,
            Outcome::Interrupted => RunStatus::Interrupted,
        };
        self.emit(&Event::Summary(Summary {
            kind: self.plan.kind,
            ok: outcome == Outcome::Success,
            status,
            cluster: self.plan.cluster.clone(),
            to: self.plan.to.to_string(),
            duration_s: self.started.elapsed().as_secs_f64(),
            nodes,
        }));
    }
}
