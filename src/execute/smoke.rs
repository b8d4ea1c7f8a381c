//! The opt-in smoke test after each node's soak (`policy.smoke`, issue #18): through the
//! upgraded node, `/route` and a probe message; read back through another node.

use crate::events::Event;
use crate::plan::{PlanStepKind, PlannedNode};

use super::{NodeEnd, Runner};

/// The node to read back through: the first other node of the manifest that answered in
/// the last observation (or, without one, the next node of the manifest).
pub fn read_via(
    manifest: &crate::manifest::Manifest,
    view: Option<&crate::probe::ClusterView>,
    node: u64,
) -> Option<(u64, String)> {
    let others = manifest.nodes.iter().filter(|n| n.id != node);
    let up = |id: u64| view.is_none_or(|v| v.node(id).is_some_and(|n| n.reachable));
    let mut candidates: Vec<_> = others.collect();
    // Start after `node` in manifest order, so each node is read back by its neighbour.
    if let Some(pos) = manifest.nodes.iter().position(|n| n.id == node) {
        candidates.sort_by_key(|n| {
            let i = manifest
                .nodes
                .iter()
                .position(|m| m.id == n.id)
                .unwrap_or(0);
            (i + manifest.nodes.len() - pos) % manifest.nodes.len()
        });
    }
    candidates
        .into_iter()
        .find(|n| up(n.id))
        .map(|n| (n.id, n.api.clone()))
}

impl Runner<'_> {
    /// `None`: passed (or not configured); `Some(end)`: it failed and the run stops.
    pub(super) async fn smoke(&mut self, pn: &PlannedNode) -> anyhow::Result<Option<NodeEnd>> {
        let Some(policy) = self.ctx.manifest.policy.smoke.clone() else {
            return Ok(None);
        };
        let Some(node) = self.ctx.manifest.node(pn.id) else {
            return Ok(None);
        };
        let via = read_via(&self.ctx.manifest, self.last_view.as_ref(), pn.id);
        let out = crate::smoke::run(
            &self.client,
            &policy,
            pn.id,
            &node.api,
            via.as_ref().map(|(id, api)| (*id, api.as_str())),
            self.ctx.manifest.policy.poll_interval,
        )
        .await;
        self.emit(&Event::SmokeFinished {
            node: pn.id,
            ok: out.failure.is_none(),
            read_via: out.read_via,
            client_msg_no: out.client_msg_no.clone(),
            reason: out.failure.clone(),
        });
        let Some(why) = out.failure else {
            return Ok(None);
        };
        self.fail(
            pn,
            PlanStepKind::Soak,
            &format!("smoke test failed: {why}"),
            None,
            Some(why.clone()),
            false,
        )
        .await
        .map(Some)
    }
}
