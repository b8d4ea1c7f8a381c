//! Live checks: the manifest held against one [`ClusterView`] (facts §11.3).
//!
//! Pure. Every result is a [`Finding`] with a stable id, a one-line message naming the
//! node, and a hint that says what to do.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::finding::{Finding, FindingId};
use crate::manifest::Manifest;
use crate::probe::{ClusterView, HealthState, InfoAnswer, NodeStatus, NodeView, ProbeError};
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
    let refused: Vec<String> = view
        .nodes
        .iter()
        .filter(|n| n.error == Some(ProbeError::Unauthorized))
        .map(|n| n.id.to_string())
        .collect();
    let token_unset = match &manifest.api.token_env {
        Some(var) if !refused.is_empty() && !token_sent => {
            out.push(Finding::block(
                FindingId::ApiTokenUnset,
                None,
                format!(
                    "`api.token_env` names `{var}`, which is not set (or empty) here, so no token was sent: node(s) {} answered 401",
                    refused.join(", ")
                ),
                format!("export {var}=<the cluster's managerToken> (it must equal `managerToken` on every node), then run again"),
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
                "run the check again",
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

fn node_findings(
    manifest: &Manifest,
    declared: Option<&WkVersion>,
    n: &NodeView,
    view: &ClusterView,
    out: &mut Vec<Finding>,
) {
    let id = n.id;
    if n.error == Some(ProbeError::Unauthorized) {
        let hint = match &manifest.api.token_env {
            Some(var) => format!("export the cluster's managerToken in `{var}` (named by `api.token_env`); it must equal `managerToken` on every node"),
            None => "the cluster has a managerToken: set `api.token_env` in the manifest to the environment variable holding it".into(),
        };
        out.push(Finding::block(
            FindingId::NodeAuthFailed,
            Some(id),
            format!("node {id} at {} refused the token (HTTP 401)", n.api),
            hint,
        ));
        return;
    }
    if !n.reachable {
        let why = n
            .error
            .as_ref()
            .map_or_else(|| "no answer".to_string(), ToString::to_string);
        out.push(Finding::block(FindingId::NodeUnreachable, Some(id), format!("node {id} at {} does not answer: {why}", n.api), "check that the node runs and that this machine reaches its API port (`api` in the manifest)"));
        return;
    }
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
            "fix the manifest: each `api` must point at the node with that id (`cluster.nodeId`)",
        ));
    }
    if let (Some(want), Some(live)) = (declared, &n.version)
        && !want.same_build(live)
    {
        out.push(Finding::warn(
            FindingId::VersionManifestDisagrees,
            Some(id),
            format!("node {id} runs {live}, the manifest says {want}"),
            format!("update `version` of node {id} in the manifest to {live}"),
        ));
    }
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
                format!("node {id} `/health` fails: slot count not match: its `cluster.slotCount` differs from the cluster's slots{slots}"),
                "set the same `cluster.slotCount` on every node (see `wkctl doctor`'s settings table); it cannot change after the cluster is created",
            ));
        }
        HealthState::Failing(m) => {
            let aware = n
                .version
                .as_ref()
                .is_none_or(|v| Capabilities::of(v).health_cluster_aware);
            let msg = format!("node {id} `/health` fails: {m}");
            let hint = "wait for the cluster to settle (slot leaders elected), then check again; see `wkctl doctor`";
            out.push(if aware {
                Finding::block(FindingId::ClusterHealthFailing, Some(id), msg, hint)
            } else {
                Finding::warn(FindingId::ClusterHealthFailing, Some(id), msg, hint)
            });
        }
        HealthState::Unknown => {
            if let Some(e) = &n.error {
                out.push(Finding::block(FindingId::ClusterHealthFailing, Some(id), format!("node {id} `/health` gives no answer: {e}"), "look at the node's logs (`wkctl doctor`); a 500 without body is a crashed handler"));
            }
        }
        HealthState::Ok => {}
    }
    if view.slots.is_some() && view.membership.as_ref().is_some_and(|m| m.contains(&id)) {
        match (n.info_online, n.info_status) {
            (Some(true), Some(NodeStatus::Joined)) => {}
            (Some(true), Some(NodeStatus::Joining)) => out.push(joining_finding(manifest, view, id)),
            (Some(true), s) => out.push(Finding::block(FindingId::ClusterNodeOffline, Some(id), format!("node {id} is online but not Joined in the controller's view (status {s:?})"), "wait for the join to finish before upgrading")),
            _ => out.push(Finding::block(FindingId::ClusterNodeOffline, Some(id), format!("node {id} is offline in the controller's view"), format!("start node {id} and wait until the controller marks it online; check its port 11110 from the other nodes"))),
        }
    }
    // A restarted node answers from its stale persisted view (online, Joined, `/health`
    // ok before v2.1.4) until it knows the controller again (facts §4.3).
    if matches!(n.info_answer, InfoAnswer::LeaderNotFound) && view.controller.is_some() {
        out.push(Finding::block(FindingId::ClusterNodeRejoining, Some(id), format!("node {id} does not know the controller yet (`/cluster/info` answers 400 `leader not found`): it is still rejoining"), "wait until it has rejoined (`wkctl status`), then check again; if it stays, see `wkctl doctor`"));
    }
    if let (Some(mine), Some(ctl)) = (n.config_version, view.config_version)
        && mine != ctl
        && n.info_online == Some(true)
    {
        out.push(Finding::warn(FindingId::ClusterConfigLagging, Some(id), format!("node {id} has applied cluster config {mine}, the controller is at {ctl}"), "usually transient after a restart; check again in a few seconds, and look at the node's logs if it stays"));
    }
    if n.cluster_port_reachable == Some(false) {
        let addr = n.cluster_addr.as_deref().unwrap_or("its cluster address");
        out.push(Finding::block(FindingId::ClusterClusterPortUnreachable, Some(id), format!("node {id} cluster port {addr} is not reachable from here"), "check the firewall and `cluster.serverAddr`; peers must reach port 11110 of every node (#388)"));
    }
}

/// A node the controller lists as Joining: the #529 stuck state, or still joining.
fn joining_finding(manifest: &Manifest, view: &ClusterView, id: u64) -> Finding {
    match joining::joining_state(view, id) {
        joining::JoiningState::Stuck529 => {
            let msg = format!(
                "node {id} stays `Joining` (status 2) although it serves: online, config caught up, holding slot replicas, nothing left to migrate (WuKongIM #529)"
            );
            if manifest.policy.accept_stuck_joining {
                Finding::warn(
                    FindingId::ClusterStuckJoining529,
                    Some(id),
                    msg,
                    "upstream bug #529 (open; fix PR #531 unmerged): the controller never promotes a seed-joined node that already holds its slots; wkctl accepts this node on that evidence (`policy.accept_stuck_joining: false` refuses it)",
                )
            } else {
                Finding::block(
                    FindingId::ClusterStuckJoining529,
                    Some(id),
                    msg,
                    "upstream bug #529: set `policy.accept_stuck_joining: true` to accept a node with this evidence, or run a build with PR #531",
                )
            }
        }
        joining::JoiningState::StillJoining(why) => Finding::block(
            FindingId::ClusterNodeOffline,
            Some(id),
            format!("node {id} is online but still `Joining` in the controller's view: {why}"),
            "wait for the join to finish before upgrading (`wkctl status`)",
        ),
        joining::JoiningState::NotJoining => Finding::block(
            FindingId::ClusterNodeOffline,
            Some(id),
            format!("node {id} is online but not Joined in the controller's view"),
            "wait for the join to finish before upgrading",
        ),
    }
}

fn membership(manifest: &Manifest, view: &ClusterView, out: &mut Vec<Finding>) {
    let Some(members) = &view.membership else {
        return;
    };
    let missing: Vec<u64> = manifest
        .nodes
        .iter()
        .map(|n| n.id)
        .filter(|id| !members.contains(id))
        .collect();
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
        "add the extra nodes to the manifest (or remove them from the cluster) so wkctl upgrades every node".to_string()
    } else {
        format!(
            "start node {first} first, then the others; check `cluster.initNodes`/`cluster.seed` on every node and the network on port 11110 (#310)"
        )
    };
    out.push(Finding::block(
        FindingId::ClusterMembershipMismatch,
        None,
        msg,
        hint,
    ));
}

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
        out.push(Finding::block(FindingId::ClusterNoController, None, msg, "a quorum of nodes must run and reach each other on port 11110; start the missing nodes (1001 first) and wait for the election"));
    }
    if let Some(s) = &view.slots {
        let mut bad: Vec<u64> = s.leaderless.iter().chain(&s.candidate).copied().collect();
        bad.sort_unstable();
        bad.dedup();
        if s.total == 0 {
            out.push(Finding::block(FindingId::ClusterSlotsNotReady, None, "the cluster reports no slots", "the initial config was never proposed: a quorum of `cluster.initNodes` must start (#197)"));
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
                "wait for slot leader election to finish (a node may be down); check again",
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
        if !moving.is_empty() || view.cluster_migrating {
            let what = if moving.is_empty() {
                "a cluster-level migration".to_string()
            } else {
                format!("{} slot(s) migrating ({})", moving.len(), ids(&moving))
            };
            out.push(Finding::block(
                FindingId::ClusterMigrationInProgress,
                None,
                format!("{what} is in progress"),
                "wait until the controller finishes rebalancing slot leaders, then check again",
            ));
        }
    }
}

/// Cluster-wide findings seen while some nodes do not answer or refuse the token may be
/// consequences of that: they say so and point at the cause (13.3).
fn mark_consequences(view: &ClusterView, found: &mut [Finding]) {
    let refused: Vec<String> = view
        .nodes
        .iter()
        .filter(|n| n.error == Some(ProbeError::Unauthorized))
        .map(|n| n.id.to_string())
        .collect();
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
                "{} (may follow from node(s) {} not answering: see `node.unreachable` first)",
                f.message,
                silent.join(", ")
            );
        } else {
            f.message = format!(
                "{} (seen without node(s) {}, which refused the token)",
                f.message,
                refused.join(", ")
            );
            f.hint = "fix the token first (`node.auth_failed`): the nodes that refused it could not be asked; then check again".into();
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
            "plan a maintenance window, or run at least 3 nodes with `cluster.slotReplicaCount` 3",
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
