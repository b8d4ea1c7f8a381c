//! Live checks: the manifest held against one [`ClusterView`] (facts §11.3).
//!
//! Pure. Every result is a [`Finding`] with a stable id, a one-line message naming the
//! node, and a hint that says what to do.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::finding::{Finding, FindingId, hints};
use crate::manifest::Manifest;
use crate::probe::{ClusterView, NodeView, ProbeError, SlotSummary};
use crate::releases::mixed_finding;
use crate::version::WkVersion;

pub mod joining;
mod node;
pub mod playbook;

use node::node_findings;

/// Every live finding for the cluster.
pub fn live_findings(manifest: &Manifest, view: &ClusterView) -> Vec<Finding> {
    findings_with_token(manifest, view, manifest.token().is_some())
}

/// [`live_findings`], told whether a token was sent (pure).
pub fn findings_with_token(
    manifest: &Manifest,
    view: &ClusterView,
    token_sent: bool,
) -> Vec<Finding> {
    let mut out = Vec::new();
    // The cause first (13.3): a token variable that is not set explains every 401, so
    // it is said once instead of a refused token per node.
    let refused = refused(view);
    let token_unset = match &manifest.api.token_env {
        Some(var) if !refused.is_empty() && !token_sent => {
            out.push(Finding::block(
                FindingId::ApiTokenUnset,
                None,
                format!(
                    "`api.token_env` names `{var}`, which is not set (or empty) here, so no \
                     token was sent: node(s) {} answered 401",
                    refused.join(", ")
                ),
                hints::api_token_unset(var),
            ));
            true
        }
        _ => false,
    };
    for mn in &manifest.nodes {
        let Some(n) = view.node(mn.id) else {
            out.push(Finding::block(
                FindingId::NodeUnreachable,
                Some(mn.id),
                format!("node {} was not probed", mn.id),
                hints::NODE_NOT_PROBED,
            ));
            continue;
        };
        if token_unset && n.error == Some(ProbeError::Unauthorized) {
            continue;
        }
        node_findings(manifest, mn.version.as_ref(), n, view, &mut out);
    }
    // What the cluster says about itself is only known from nodes that answered with the
    // token: when every answering node refused it, "no controller" or a membership
    // mismatch would be consequences of the 401s, not causes (13.3).
    let answering: Vec<&NodeView> = view.nodes.iter().filter(|n| n.reachable).collect();
    let blind = !answering.is_empty()
        && answering
            .iter()
            .all(|n| n.error == Some(ProbeError::Unauthorized));
    if !blind {
        let before = out.len();
        membership(manifest, view, &mut out);
        cluster_findings(view, &mut out);
        mark_consequences(view, &mut out[before..]);
    }
    zero_downtime(manifest, view, &mut out);
    let versions: Vec<(u64, WkVersion)> = live_versions(view)
        .into_iter()
        .filter_map(|(id, v)| v.map(|v| (id, v)))
        .collect();
    out.extend(mixed_finding(&versions));
    out
}

/// The ids of the nodes that refused the token (HTTP 401).
fn refused(view: &ClusterView) -> Vec<String> {
    view.nodes
        .iter()
        .filter(|n| n.error == Some(ProbeError::Unauthorized))
        .map(|n| n.id.to_string())
        .collect()
}

/// The manifest's nodes against the cluster's members: missing ones, extra ones.
fn membership(manifest: &Manifest, view: &ClusterView, out: &mut Vec<Finding>) {
    let Some(members) = &view.membership else {
        return;
    };
    let missing = manifest.missing_from(members);
    let extra: Vec<u64> = members
        .iter()
        .copied()
        .filter(|id| manifest.node(*id).is_none())
        .collect();
    if missing.is_empty() && extra.is_empty() {
        return;
    }
    let list = |ids: &[u64]| {
        ids.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (m, c) = (manifest.nodes.len(), members.len());
    let mut msg = format!(
        "the manifest has {m} node{}, the cluster reports {c} ({})",
        plural(m),
        list(members)
    );
    if !missing.is_empty() {
        let _ = write!(msg, ": {} missing from the cluster", list(&missing));
    }
    if !extra.is_empty() {
        let _ = write!(msg, ": {} not in the manifest", list(&extra));
    }
    let first = manifest.nodes.iter().map(|n| n.id).min().unwrap_or(1001);
    let hint = if missing.is_empty() {
        hints::CLUSTER_MEMBERSHIP_EXTRA.to_string()
    } else {
        hints::cluster_membership_missing(first)
    };
    out.push(Finding::block(
        FindingId::ClusterMembershipMismatch,
        None,
        msg,
        hint,
    ));
}

/// What the controller says about the whole cluster: a controller, slots ready, nothing
/// migrating.
fn cluster_findings(view: &ClusterView, out: &mut Vec<Finding>) {
    let any_reachable = view.nodes.iter().any(|n| n.reachable);
    if any_reachable && view.controller.is_none() {
        let mut msg = "the cluster has no controller (config-raft leader)".to_string();
        if !view.leader_not_found.is_empty() {
            let _ = write!(
                msg,
                ": node(s) {} answer `leader not found`",
                view.leader_not_found
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        } else if view.controller_claims.len() > 1 {
            let _ = write!(msg, ": nodes {:?} each claim it", view.controller_claims);
        }
        out.push(Finding::block(
            FindingId::ClusterNoController,
            None,
            msg,
            hints::CLUSTER_NO_CONTROLLER,
        ));
    }
    if let Some(s) = &view.slots {
        slot_findings(s, view.cluster_migrating, out);
    }
}

/// Slots without a leader or in election, and slots (or the cluster) migrating.
fn slot_findings(s: &SlotSummary, cluster_migrating: bool, out: &mut Vec<Finding>) {
    let mut bad: Vec<u64> = s.leaderless.iter().chain(&s.candidate).copied().collect();
    bad.sort_unstable();
    bad.dedup();
    if s.total == 0 {
        out.push(Finding::block(
            FindingId::ClusterSlotsNotReady,
            None,
            "the cluster reports no slots",
            hints::CLUSTER_NO_SLOTS,
        ));
    } else if !bad.is_empty() {
        out.push(Finding::block(
            FindingId::ClusterSlotsNotReady,
            None,
            format!(
                "{} of {} slots have no leader or are in election ({})",
                bad.len(),
                s.total,
                ids(&bad)
            ),
            hints::CLUSTER_SLOTS_NOT_READY,
        ));
    }
    let mut moving: Vec<u64> = s
        .migrating
        .iter()
        .chain(&s.leader_transfer)
        .copied()
        .collect();
    moving.sort_unstable();
    moving.dedup();
    if !moving.is_empty() || cluster_migrating {
        let what = if moving.is_empty() {
            "a cluster-level migration".to_string()
        } else {
            format!("{} slot(s) migrating ({})", moving.len(), ids(&moving))
        };
        out.push(Finding::block(
            FindingId::ClusterMigrationInProgress,
            None,
            format!("{what} is in progress"),
            hints::CLUSTER_MIGRATION_IN_PROGRESS,
        ));
    }
}

/// Cluster-wide findings seen while some nodes do not answer or refuse the token may be
/// consequences of that: they say so and point at the cause (13.3).
fn mark_consequences(view: &ClusterView, found: &mut [Finding]) {
    let refused = refused(view);
    let silent: Vec<String> = view
        .nodes
        .iter()
        .filter(|n| !n.reachable)
        .map(|n| n.id.to_string())
        .collect();
    if refused.is_empty() && silent.is_empty() {
        return;
    }
    for f in found.iter_mut().filter(|f| {
        f.node.is_none()
            && matches!(
                f.id,
                FindingId::ClusterNoController
                    | FindingId::ClusterSlotsNotReady
                    | FindingId::ClusterMigrationInProgress
                    | FindingId::ClusterMembershipMismatch
            )
    }) {
        if refused.is_empty() {
            f.message = format!(
                "{} (may follow from node(s) {} not answering: see `{}` first)",
                f.message,
                silent.join(", "),
                FindingId::NodeUnreachable
            );
        } else {
            f.message = format!(
                "{} (seen without node(s) {}, which refused the token)",
                f.message,
                refused.join(", ")
            );
            f.hint = hints::token_first();
        }
    }
}

/// Stopping one node interrupts service: fewer than 3 nodes or replicas.
fn zero_downtime(manifest: &Manifest, view: &ClusterView, out: &mut Vec<Finding>) {
    let replicas = view.slot_replica_count.filter(|r| *r > 0);
    // The cluster's own member count when known: a manifest that lists fewer nodes is a
    // membership mismatch, not a small cluster (13.9).
    let n = view
        .membership
        .as_ref()
        .map_or(0, Vec::len)
        .max(manifest.nodes.len());
    if n < 3 || replicas.is_some_and(|r| r < 3) {
        let why = if n < 3 {
            format!("the cluster has {n} node{}", plural(n))
        } else {
            format!("slotReplicaCount is {}", replicas.unwrap_or_default())
        };
        out.push(Finding::warn(
            FindingId::ClusterNotZeroDowntime,
            None,
            format!("{why}: stopping one node interrupts service"),
            hints::CLUSTER_NOT_ZERO_DOWNTIME,
        ));
    }
}

fn ids(list: &[u64]) -> String {
    let mut s = list
        .iter()
        .take(8)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if list.len() > 8 {
        s.push_str(", …");
    }
    s
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The live version of every observed node (`None` when it reports none).
pub fn live_versions(view: &ClusterView) -> BTreeMap<u64, Option<WkVersion>> {
    view.nodes
        .iter()
        .map(|n| (n.id, n.version.clone()))
        .collect()
}

/// The controller (config-raft leader), if the cluster has exactly one.
pub fn controller(view: &ClusterView) -> Option<u64> {
    view.controller
}

#[cfg(test)]
mod tests;
