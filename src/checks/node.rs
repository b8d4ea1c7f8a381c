//! The findings of one node: whether it answers (and takes the token), what it reports
//! about itself, its `/health`, and its state in the controller's view.

use super::joining;
use crate::finding::{Finding, FindingId, hints};
use crate::manifest::Manifest;
use crate::probe::{ClusterView, HealthState, InfoAnswer, NodeStatus, NodeView, ProbeError};
use crate::releases::Capabilities;
use crate::version::WkVersion;

/// Everything about one node: a node that refuses the token or does not answer gets that
/// one finding; else what it reports, its `/health`, and its state in the controller's view.
pub(super) fn node_findings(
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
