//! Live observation shared by `check`, `plan`, `status`, `doctor` and `upgrade`: probe the
//! cluster once, judge it with the pure checks, and plan with the versions it reports.
//! Also what the state directory says about runs (an unfinished one, a live lock).
//! Below the commands: they all depend down on it, none on another for it.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::checks;
use crate::finding::{self, Finding};
use crate::inputs::Context;
use crate::plan;
use crate::plan::Plan;
use crate::probe::{self, Client, ClusterView};
use crate::releases::{RuleOptions, Target};
use crate::version::WkVersion;

/// What `check` and `plan` learn before printing.
pub struct Observed {
    pub ctx: Context,
    pub plan: Plan,
}

/// Probes every manifest node once.
pub async fn cluster(ctx: &Context) -> anyhow::Result<(Client, ClusterView)> {
    let client = Client::from_manifest(&ctx.manifest)?;
    let view = probe::observe(&client, &ctx.manifest).await;
    Ok((client, view))
}

/// Versions to plan with: live where the node answered, else what the manifest declares.
pub fn versions(ctx: &Context, view: &ClusterView) -> BTreeMap<u64, Option<WkVersion>> {
    let live = checks::live_versions(view);
    ctx.manifest
        .nodes
        .iter()
        .map(|n| {
            (
                n.id,
                live.get(&n.id)
                    .cloned()
                    .flatten()
                    .or_else(|| n.version.clone()),
            )
        })
        .collect()
}

/// Observes the cluster, then builds the plan whose findings are the live check.
pub async fn observe_and_plan(
    ctx: Context,
    target: &Target,
    rules: RuleOptions,
) -> anyhow::Result<Observed> {
    let (_, view) = cluster(&ctx).await?;
    let plan = plan_from_view(&ctx, &view, target, rules, None)?;
    Ok(Observed { ctx, plan })
}

/// `--offline`: nothing is observed; the plan uses the versions the manifest declares, and
/// its findings are the plan's and the playbook's.
pub fn offline_plan(ctx: &Context, target: &Target, rules: RuleOptions) -> anyhow::Result<Plan> {
    let versions: BTreeMap<u64, _> = ctx
        .manifest
        .nodes
        .iter()
        .map(|n| (n.id, n.version.clone()))
        .collect();
    let mut plan = plan::build(&plan::Input {
        manifest: &ctx.manifest,
        playbook: &ctx.playbook,
        target,
        versions: &versions,
        controller: None,
        live: false,
        rules,
        kind: plan::PlanKind::Upgrade,
    })?;
    plan.findings.extend(checks::playbook::findings(
        &ctx.manifest,
        &ctx.playbook,
        None,
    ));
    crate::finding::sort(&mut plan.findings);
    Ok(plan)
}

/// The plan and live findings for one observation. `versions_override` replaces the
/// versions (used by `--resume`, which plans with each node's version before the run).
pub fn plan_from_view(
    ctx: &Context,
    view: &ClusterView,
    target: &Target,
    rules: RuleOptions,
    versions_override: Option<&BTreeMap<u64, Option<WkVersion>>>,
) -> anyhow::Result<plan::Plan> {
    let versions = versions_override
        .cloned()
        .unwrap_or_else(|| versions(ctx, view));
    plan_with(ctx, view, target, rules, &versions, plan::PlanKind::Upgrade)
}

/// `wkctl restart`'s plan for one observation (issue 19): every node on the version it
/// runs (`versions_override` as for [`plan_from_view`]), the same live findings.
pub fn restart_plan_from_view(
    ctx: &Context,
    view: &ClusterView,
    versions_override: Option<&BTreeMap<u64, Option<WkVersion>>>,
) -> anyhow::Result<plan::Plan> {
    let versions = versions_override
        .cloned()
        .unwrap_or_else(|| versions(ctx, view));
    let Some(version) = plan::cluster_version(&versions) else {
        return Err(crate::error::WkError::no(
            "no node of the cluster reports its version: a restart could not prove any node came back",
            "check that the nodes answer (`wkctl status`); a restart needs each node's `/varz.version`",
        )
        .into());
    };
    let target = Target {
        version,
        source: crate::releases::TargetSource::Catalog,
    };
    plan_with(
        ctx,
        view,
        &target,
        RuleOptions::default(),
        &versions,
        plan::PlanKind::Restart,
    )
}

fn plan_with(
    ctx: &Context,
    view: &ClusterView,
    target: &Target,
    rules: RuleOptions,
    versions: &BTreeMap<u64, Option<WkVersion>>,
    kind: plan::PlanKind,
) -> anyhow::Result<plan::Plan> {
    let mut plan = plan::build(&plan::Input {
        manifest: &ctx.manifest,
        playbook: &ctx.playbook,
        target,
        versions,
        controller: checks::controller(view),
        live: true,
        rules,
        kind,
    })?;
    let mut live: Vec<Finding> = checks::live_findings(&ctx.manifest, view);
    live.extend(checks::playbook::findings(
        &ctx.manifest,
        &ctx.playbook,
        Some(view),
    ));
    merge_findings(&mut plan.findings, live);
    // A manifest listing fewer nodes than the cluster has is the problem to report, not
    // "a small cluster": `cluster.membership_mismatch` says what to add (13.9).
    if view
        .membership
        .as_ref()
        .is_some_and(|m| m.len() > ctx.manifest.nodes.len())
    {
        plan.findings
            .retain(|f| f.id != crate::finding::FindingId::ManifestTooFewNodes);
    }
    Ok(plan)
}

/// Adds live findings, dropping a plan finding that a live one repeats (same id and node).
pub fn merge_findings(into: &mut Vec<Finding>, live: Vec<Finding>) {
    for f in live {
        if !into.iter().any(|g| g.id == f.id && g.node == f.node) {
            into.push(f);
        }
    }
    finding::sort(into);
}

/// An unfinished run (from the state directory next to the manifest, or
/// `$WKCTL_STATE_DIR`) and the live holder of the cluster lock.
#[derive(Serialize, Clone)]
pub struct RunDoc {
    pub to: Option<String>,
    pub status: Option<String>,
    pub state_file: Option<String>,
    pub locked_by: Option<String>,
}

/// What `status` says about runs: an unfinished one, and a live lock on the cluster.
pub fn run_doc(ctx: &Context) -> Option<RunDoc> {
    use crate::state::{self, StateDir};
    let base = std::env::var_os("WKCTL_STATE_DIR")
        .filter(|d| !d.is_empty())
        .map_or_else(
            || crate::inputs::default_state_base(&ctx.manifest.path),
            std::path::PathBuf::from,
        );
    let dir = StateDir::new(&base, &ctx.manifest.name);
    let st = dir.load().ok().flatten().filter(|s| s.status.unfinished());
    let locked_by = state::live_owner(&ctx.cluster_lock_locations()).map(|o| o.describe());
    if st.is_none() && locked_by.is_none() {
        return None;
    }
    Some(RunDoc {
        to: st.as_ref().map(|s| s.to.clone()),
        status: st.as_ref().map(|s| {
            serde_json::to_value(s.status)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default()
        }),
        state_file: st.map(|_| dir.state_path().display().to_string()),
        locked_by,
    })
}
