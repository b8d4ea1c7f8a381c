//! What keeps a view from being safe: the problems of one node, of the whole cluster
//! before a stop, during a soak, and before a rollback (pure functions of the view).

use super::Tracker;
use crate::gate::SignalState;
use crate::probe::{ClusterView, HealthState, InfoAnswer, NodeStatus, NodeView, ProbeError};

/// `view` with the nodes `stuck` counted as Joined.
pub(super) fn with_joined(view: &ClusterView, stuck: &[u64]) -> ClusterView {
    let mut out = view.clone();
    for n in out.nodes.iter_mut().filter(|n| stuck.contains(&n.id)) {
        for status in [&mut n.info_status, &mut n.simple_status] {
            if status.is_some() {
                *status = Some(NodeStatus::Joined);
            }
        }
    }
    out
}

pub(super) fn reason_of(st: &SignalState) -> String {
    match st {
        SignalState::Met => String::new(),
        SignalState::NotYet(r) | SignalState::Unknown(r) => r.clone(),
    }
}

/// Why a peer counts as down in this observation, if it does.
pub(super) fn peer_down_cause(n: &NodeView, view: &ClusterView) -> Option<String> {
    if !n.reachable && n.error.as_ref().is_some_and(ProbeError::is_unreachable) {
        let why = n
            .error
            .as_ref()
            .map_or_else(|| "no answer".to_string(), ToString::to_string);
        return Some(format!("does not answer ({why})"));
    }
    if n.info_online == Some(false) {
        return Some("is marked offline by the controller (`/cluster/info`)".into());
    }
    if n.simple_online == Some(false) {
        return Some("is marked offline by the controller (`/cluster/simpleNodes`)".into());
    }
    // Cut off from the controller while others know it. During a controller election
    // nobody knows it, and that is not this node's failure.
    if n.info_answer == InfoAnswer::LeaderNotFound
        && let Some(from) = view.info_from.filter(|f| *f != n.id)
    {
        return Some(format!(
            "is cut off from the controller: its `/cluster/info` answers `leader not found` while node {from} knows the controller"
        ));
    }
    None
}

/// What keeps `view` from being safe to stop a node: every node must be fully back
/// (A, C, D, E) and the cluster settled (F). Empty when safe.
pub fn fully_back_problems(view: &ClusterView) -> Vec<String> {
    let mut out: Vec<String> = view
        .nodes
        .iter()
        .flat_map(|n| node_problems(n, view))
        .collect();
    match crate::gate::cluster_settled(view) {
        SignalState::Met => {}
        SignalState::NotYet(r) | SignalState::Unknown(r) => {
            // F repeats per-node problems already listed; keep its cluster-level part.
            out.push(format!("cluster not settled: {r}"));
        }
    }
    out
}

/// What keeps one node from being fully back (A, C, D, E). Empty when it is.
pub fn node_problems(n: &NodeView, view: &ClusterView) -> Vec<String> {
    let mut out = Vec::new();
    if !n.reachable {
        let why = n
            .error
            .as_ref()
            .map_or_else(|| "no answer".to_string(), ToString::to_string);
        out.push(format!("node {} does not answer ({why})", n.id));
        return out;
    }
    match &n.health {
        HealthState::Ok => {}
        HealthState::Failing(m) => out.push(format!("node {} `/health` is 500 `{m}`", n.id)),
        HealthState::Unknown => out.push(format!("node {} `/health` unknown", n.id)),
    }
    match &n.info_answer {
        InfoAnswer::Ok => {}
        InfoAnswer::LeaderNotFound => out.push(format!(
            "node {} does not know the controller (`/cluster/info` answers `leader not found`)",
            n.id
        )),
        InfoAnswer::Failed(e) => out.push(format!("node {} `/cluster/info`: {e}", n.id)),
        InfoAnswer::NotAsked => out.push(format!("node {}: `/cluster/info` not asked", n.id)),
    }
    match (n.info_online, n.info_status) {
        (Some(true), Some(NodeStatus::Joined)) => {}
        (Some(true), s) => out.push(format!(
            "node {} is online but not Joined in the controller's view (status {s:?})",
            n.id
        )),
        (Some(false), _) => out.push(format!("node {} is offline in the controller's view", n.id)),
        (None, _) => out.push(format!("node {} is not in the controller's view", n.id)),
    }
    match (n.config_version, view.config_version) {
        (Some(a), Some(c)) if a >= c => {}
        (Some(a), Some(c)) => out.push(format!(
            "node {} config_version {a} is behind the controller's {c}",
            n.id
        )),
        (None, _) => out.push(format!("node {}: config_version unknown", n.id)),
        (_, None) => out.push("the controller's config version is unknown".into()),
    }
    out
}

/// Why restarting `node` now (a rollback is a stop) would take a second node down: any
/// other node not fully back (A, C, D, E), or seen restarting by the tracker.
pub fn rollback_blockers(tracker: &Tracker, view: &ClusterView, node: u64) -> Vec<String> {
    let mut out: Vec<String> = view
        .nodes
        .iter()
        .filter(|n| n.id != node)
        .flat_map(|n| node_problems(n, view))
        .collect();
    for n in view.nodes.iter().filter(|n| n.id != node) {
        if let (Some(up), Some(seen)) = (n.uptime, tracker.seen.get(&n.id))
            && seen.restarted(up, view.observed_at)
        {
            out.push(format!("node {} restarted since it was last seen", n.id));
        }
    }
    out
}

/// What makes the cluster unhealthy during a soak (slot leader migrations are normal
/// balancing after a restart, facts §4.4, and do not count).
pub fn soak_problem(view: &ClusterView) -> Option<String> {
    for n in &view.nodes {
        if !n.reachable {
            let why = n
                .error
                .as_ref()
                .map_or_else(|| "no answer".to_string(), ToString::to_string);
            return Some(format!("node {} unreachable ({why})", n.id));
        }
        if let HealthState::Failing(m) = &n.health {
            return Some(format!("node {} /health failing: {m}", n.id));
        }
        if n.info_online == Some(false) || n.simple_online == Some(false) {
            return Some(format!("node {} offline in the controller's view", n.id));
        }
    }
    if view.controller.is_none() && view.slots.is_none() {
        return Some("no controller known".to_string());
    }
    if let Some(s) = &view.slots
        && !s.leaderless.is_empty()
    {
        return Some(format!("{} slot(s) without a leader", s.leaderless.len()));
    }
    None
}
