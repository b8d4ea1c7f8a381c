//! Live checks: the manifest held against one [`ClusterView`] (facts §11.3).
//!
//! Pure. Every result is a [`Finding`] with a stable id, a one-line message naming the
//! node, and a hint that says what to do.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::finding::{Finding, FindingId, hints};
use crate::manifest::Manifest;
use crate::probe::{
    ClusterView, HealthState, InfoAnswer, NodeStatus, NodeView, ProbeError, SlotSummary,
};
use crate::releases::{Capabilities, mixed_finding};
use crate::version::WkVersion;

pub mod joining;
pub mod playbook;

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

/// Everything about one node: a node that refuses the token or does not answer gets that
/// one finding; else what it reports, its `/health`, and its state in the controller's view.
fn node_findings(
    manifest: &Manifest,
    declared: Option<&WkVersion>,
    n: &NodeView,
    view: &ClusterView,
    out: &mut Vec<Finding>,
) {
    let id = n.id;
    if n.error == Some(ProbeError::Unauthorized) {
        out.push(Finding::block(
            FindingId::NodeAuthFailed,
            Some(id),
            format!("node {id} at {} refused the token (HTTP 401)", n.api),
            hints::node_auth_failed(manifest.api.token_env.as_deref()),
        ));
        return;
    }
    if !n.reachable {
        let why = n
            .error
            .as_ref()
            .map_or_else(|| "no answer".to_string(), ToString::to_string);
        out.push(Finding::block(
            FindingId::NodeUnreachable,
            Some(id),
            format!("node {id} at {} does not answer: {why}", n.api),
            hints::NODE_UNREACHABLE,
        ));
        return;
    }
    identity_findings(declared, n, out);
    health_findings(n, view, out);
    controller_view_findings(manifest, n, view, out);
}

/// What the node says it is: its id (`/varz` `server_id`, else `/cluster/node`) and its
/// version, held against the manifest.
fn identity_findings(declared: Option<&WkVersion>, n: &NodeView, out: &mut Vec<Finding>) {
    let id = n.id;
    let reported = n
        .server_id
        .as_deref()
        .map(|s| (s.trim().parse::<u64>().ok(), s))
        .or_else(|| n.self_id.map(|i| (Some(i), "")));
    if let Some((num, raw)) = reported
        && num != Some(id)
    {
        let what = num.map_or_else(|| format!("`{raw}`"), |v| v.to_string());
        out.push(Finding::block(
            FindingId::NodeIdMismatch,
            Some(id),
            format!("node {id} at {} reports node id {what}", n.api),
            hints::NODE_ID_MISMATCH,
        ));
    }
    if let (Some(want), Some(live)) = (declared, &n.version)
        && !want.same_build(live)
    {
        out.push(Finding::warn(
            FindingId::VersionManifestDisagrees,
            Some(id),
            format!("node {id} runs {live}, the manifest says {want}"),
            hints::version_manifest_disagrees(id, live),
        ));
    }
}

/// The node's `/health`: before v2.1.4 it does not check the cluster, so a failure there
/// only warns.
fn health_findings(n: &NodeView, view: &ClusterView, out: &mut Vec<Finding>) {
    let id = n.id;
    match &n.health {
        // `CheckClusterStatus` (pkg/cluster/cluster/iserver.go, v2.1.4+) compares the
        // slots it knows with this node's `cluster.slotCount`; only `/health` says it.
        HealthState::Failing(m) if m.contains("slot count not match") => {
            let slots = view
                .slot_count
                .map(|c| format!(" ({c} in the cluster config)"))
                .unwrap_or_default();
            out.push(Finding::block(
                FindingId::ClusterSlotCountMismatch,
                Some(id),
                format!(
                    "node {id} `/health` fails: slot count not match: its `cluster.slotCount` \
                     differs from the cluster's slots{slots}"
                ),
                hints::CLUSTER_SLOT_COUNT_MISMATCH,
            ));
        }
        HealthState::Failing(m) => {
            let aware = n
                .version
                .as_ref()
                .is_none_or(|v| Capabilities::of(v).health_cluster_aware);
            let msg = format!("node {id} `/health` fails: {m}");
            let hint = hints::CLUSTER_HEALTH_FAILING;
            out.push(if aware {
                Finding::block(FindingId::ClusterHealthFailing, Some(id), msg, hint)
            } else {
                Finding::warn(FindingId::ClusterHealthFailing, Some(id), msg, hint)
            });
        }
        HealthState::Unknown => {
            if let Some(e) = &n.error {
                out.push(Finding::block(
                    FindingId::ClusterHealthFailing,
                    Some(id),
                    format!("node {id} `/health` gives no answer: {e}"),
                    hints::CLUSTER_HEALTH_NO_ANSWER,
                ));
            }
        }
        HealthState::Ok => {}
    }
}

/// The node as the controller sees it: online and Joined, knowing the controller, its
/// config caught up, its cluster port reachable.
fn controller_view_findings(
    manifest: &Manifest,
    n: &NodeView,
    view: &ClusterView,
    out: &mut Vec<Finding>,
) {
    let id = n.id;
    if view.slots.is_some() && view.membership.as_ref().is_some_and(|m| m.contains(&id)) {
        match (n.info_online, n.info_status) {
            (Some(true), Some(NodeStatus::Joined)) => {}
            (Some(true), Some(NodeStatus::Joining)) => {
                out.push(joining_finding(manifest, view, id));
            }
            (Some(true), s) => out.push(Finding::block(
                FindingId::ClusterNodeOffline,
                Some(id),
                format!(
                    "node {id} is online but not Joined in the controller's view (status {s:?})"
                ),
                hints::CLUSTER_NODE_NOT_JOINED,
            )),
            _ => out.push(Finding::block(
                FindingId::ClusterNodeOffline,
                Some(id),
                format!("node {id} is offline in the controller's view"),
                hints::cluster_node_offline(id),
            )),
        }
    }
    // A restarted node answers from its stale persisted view (online, Joined, `/health`
    // ok before v2.1.4) until it knows the controller again (facts §4.3).
    if matches!(n.info_answer, InfoAnswer::LeaderNotFound) && view.controller.is_some() {
        out.push(Finding::block(
            FindingId::ClusterNodeRejoining,
            Some(id),
            format!(
                "node {id} does not know the controller yet (`/cluster/info` answers 400 \
                 `leader not found`): it is still rejoining"
            ),
            hints::CLUSTER_NODE_REJOINING,
        ));
    }
    if let (Some(mine), Some(ctl)) = (n.config_version, view.config_version)
        && mine != ctl
        && n.info_online == Some(true)
    {
        out.push(Finding::warn(
            FindingId::ClusterConfigLagging,
            Some(id),
            format!("node {id} has applied cluster config {mine}, the controller is at {ctl}"),
            hints::CLUSTER_CONFIG_LAGGING,
        ));
    }
    if n.cluster_port_reachable == Some(false) {
        let addr = n.cluster_addr.as_deref().unwrap_or("its cluster address");
        out.push(Finding::block(
            FindingId::ClusterClusterPortUnreachable,
            Some(id),
            format!("node {id} cluster port {addr} is not reachable from here"),
            hints::CLUSTER_PORT_UNREACHABLE,
        ));
    }
}

/// A node the controller lists as Joining: the #529 stuck state, or still joining.
fn joining_finding(manifest: &Manifest, view: &ClusterView, id: u64) -> Finding {
    match joining::joining_state(view, id) {
        joining::JoiningState::Stuck529 => {
            let msg = format!(
                "node {id} stays `Joining` (status 2) although it serves: online, config caught \
                 up, holding slot replicas, nothing left to migrate (WuKongIM #529)"
            );
            if manifest.policy.accept_stuck_joining {
                Finding::warn(
                    FindingId::ClusterStuckJoining529,
                    Some(id),
                    msg,
                    hints::CLUSTER_STUCK_JOINING_529_ACCEPTED,
                )
            } else {
                Finding::block(
                    FindingId::ClusterStuckJoining529,
                    Some(id),
                    msg,
                    hints::CLUSTER_STUCK_JOINING_529_REFUSED,
                )
            }
        }
        joining::JoiningState::StillJoining(why) => Finding::block(
            FindingId::ClusterNodeOffline,
            Some(id),
            format!("node {id} is online but still `Joining` in the controller's view: {why}"),
            hints::CLUSTER_NODE_STILL_JOINING,
        ),
        joining::JoiningState::NotJoining => Finding::block(
            FindingId::ClusterNodeOffline,
            Some(id),
            format!("node {id} is online but not Joined in the controller's view"),
            hints::CLUSTER_NODE_NOT_JOINED,
        ),
    }
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
