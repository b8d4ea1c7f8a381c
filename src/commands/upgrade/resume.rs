//! The glue between the run state and the pure resume policy (`plan::resume`): the
//! state's node records and the observation, as the policy reads them; and the inputs
//! a run started from (snapshotted at its start, compared on `--resume`).

use std::collections::BTreeMap;

use crate::error::WkError;
use crate::inputs::Context;
use crate::observe;
use crate::plan::Plan;
use crate::plan::resume::{self, NodeProgress};
use crate::probe::ClusterView;
use crate::state::{NodeRun, RunState, StartedFrom, StateDir};
use crate::version::WkVersion;

/// On resume, plan with each node's version from before the run, so upgraded and
/// interrupted nodes keep their place (and are re-verified rather than skipped blindly).
pub(crate) fn resume_versions(
    st: &RunState,
    ctx: &Context,
    view: &ClusterView,
) -> BTreeMap<u64, Option<WkVersion>> {
    resume::versions(&progress(&st.nodes), observe::versions(ctx, view))
}

/// The run state's node records as the resume policy reads them.
fn progress(nodes: &[NodeRun]) -> Vec<NodeProgress> {
    nodes.iter().map(Into::into).collect()
}

/// The resume policy (`plan::resume::relax`) with the nodes observed down now.
pub(super) fn relax_for_resume(plan: &mut Plan, st: &RunState, view: &ClusterView) {
    let down = view
        .nodes
        .iter()
        .filter(|n| crate::gate::is_down(n))
        .map(|n| n.id)
        .collect();
    resume::relax(&mut plan.findings, &progress(&st.nodes), &down);
}

/// `plan::resume::skip_proven_dev_builds` against the earlier run `st`, with the commit
/// each planned node is observed running now.
pub(super) fn skip_proven_dev_builds(plan: &mut Plan, st: &RunState, view: &ClusterView) {
    let running: BTreeMap<u64, String> = plan
        .nodes
        .iter()
        .filter_map(|pn| {
            let commit = view.node(pn.id).and_then(|n| n.commit.clone())?;
            Some((pn.id, commit))
        })
        .collect();
    resume::skip_proven_dev_builds(plan, &st.to, &progress(&st.nodes), &running);
}

/// What the new run records of its inputs.
pub(super) fn started_from(ctx: &Context) -> StartedFrom {
    StartedFrom {
        manifest_digest: ctx.manifest.digest.clone(),
        playbook: ctx.playbook.name.clone(),
        playbook_digest: ctx.playbook.digest.clone(),
    }
}

/// Copies the manifest and playbook as they were when the run started, so `--resume`
/// can show exactly what changed.
pub(super) fn snapshot_inputs(ctx: &Context, dir: &StateDir) -> Result<(), WkError> {
    let manifest = std::fs::read(&ctx.manifest.path).unwrap_or_default();
    let playbook = serde_json::to_vec_pretty(&ctx.playbook).unwrap_or_default();
    dir.save_snapshots(&manifest, &playbook)
}

/// `--resume` refuses when the manifest or playbook changed since the run started.
pub(super) fn check_drift(st: &RunState, ctx: &Context, dir: &StateDir) -> Result<(), WkError> {
    let mut diffs = Vec::new();
    if st.manifest_digest != ctx.manifest.digest {
        let old = dir.manifest_snapshot();
        let new = std::fs::read_to_string(&ctx.manifest.path).unwrap_or_default();
        diffs.push(format!(
            "manifest `{}` changed:\n{}",
            ctx.manifest.path.display(),
            crate::planfile::line_diff(&old, &new)
        ));
    }
    if st.playbook_digest != ctx.playbook.digest {
        let old = dir.playbook_snapshot();
        let new = serde_json::to_string_pretty(&ctx.playbook).unwrap_or_default();
        diffs.push(format!(
            "playbook `{}` changed:\n{}",
            ctx.playbook.name,
            crate::planfile::line_diff(&old, &new)
        ));
    }
    if diffs.is_empty() {
        return Ok(());
    }
    Err(WkError::no(
        format!(
            "refusing to resume: the inputs changed since the run started\n{}",
            diffs.join("\n")
        ),
        format!(
            "restore the files, or `wkctl {} --discard` and plan again",
            st.kind
        ),
    ))
}
