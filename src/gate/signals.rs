//! The signal evaluators A–G, one function each, and `cluster_settled` (F), which is
//! also the pre-stop check before each node.

use std::time::{Duration, SystemTime};

use super::{GateTarget, NodeBaseline, SignalState};
use crate::probe::{ClusterView, HealthState, InfoAnswer, NodeStatus, NodeView};

/// Go's uptime has a resolution of one second.
const UPTIME_RESOLUTION: Duration = Duration::from_secs(1);

fn unreachable_state(node: &NodeView, what: &str) -> SignalState {
    match &node.error {
        Some(e) if e.is_unreachable() && !node.reachable => {
            SignalState::NotYet(format!("node {}: {what}: {e}", node.id))
        }
        Some(e) => SignalState::Unknown(format!("node {}: {what}: {e}", node.id)),
        None => SignalState::Unknown(format!("node {}: {what}: no answer", node.id)),
    }
}

/// A. Before v2.1.4 this only proves the API answers (facts §3.1).
pub(super) fn api_healthy(node: &NodeView) -> SignalState {
    match &node.health {
        HealthState::Ok => SignalState::Met,
        HealthState::Failing(m) => {
            SignalState::NotYet(format!("node {}: `/health` is 500 `{m}`", node.id))
        }
        HealthState::Unknown => unreachable_state(node, "`/health`"),
    }
}

/// B. Target version and a process started after the baseline: an answer from the old
/// process never passes.
pub(super) fn new_process(
    before: &NodeBaseline,
    node: &NodeView,
    now_at: SystemTime,
    target: &GateTarget,
) -> SignalState {
    if !node.reachable {
        return unreachable_state(node, "version");
    }
    let Some(version) = &node.version else {
        return SignalState::Unknown(match &node.version_raw {
            Some(raw) => format!("node {} reports an unparsable version `{raw}`", node.id),
            None => format!(
                "node {} reports no version (`/varz` missing and `/cluster/node.app_version` empty)",
                node.id
            ),
        });
    };
    if !target.accepts(version) {
        return SignalState::NotYet(format!(
            "node {} runs {version}, target is {target}",
            node.id
        ));
    }
    if let Some(stop) = target.restarted_after {
        return restarted_since(before, node, now_at, stop);
    }
    if target.is_dev() {
        return dev_build_proven(before, node);
    }
    // A process cannot change its version without restarting: a version other than the
    // one the baseline saw is a new process, whatever the uptimes say (they have a
    // one-second resolution, which cannot tell apart a restart right after a start).
    if before
        .version
        .as_ref()
        .is_some_and(|v| !v.same_build(version))
    {
        return SignalState::Met;
    }
    let (uptime, old) = match uptimes(before, node) {
        Ok(pair) => pair,
        Err(state) => return state,
    };
    // Started after the baseline observation? Old start = base_at - old; new start = now - uptime.
    let elapsed = now_at
        .duration_since(before.observed_at)
        .unwrap_or_default();
    let restarted = uptime < old || uptime + UPTIME_RESOLUTION * 2 < old + elapsed;
    if restarted {
        SignalState::Met
    } else {
        SignalState::NotYet(format!(
            "node {} uptime {}s has not reset (was {}s before the stop): still the old process",
            node.id,
            uptime.as_secs(),
            old.as_secs()
        ))
    }
}

/// The node's uptime and the one its old process reported at the baseline, for B. Unknown
/// (not ready) when the node reports no uptime. Met when the baseline has none: the old
/// process was already gone when it was taken, or B was proven earlier in this gate (the
/// tracker then stops comparing with the clock; a later restart is a crash loop, signal G).
fn uptimes(before: &NodeBaseline, node: &NodeView) -> Result<(Duration, Duration), SignalState> {
    let Some(uptime) = node.uptime else {
        return Err(SignalState::Unknown(format!(
            "node {} reports no uptime: cannot prove a new process",
            node.id
        )));
    };
    let Some(old) = before.uptime else {
        return Err(SignalState::Met);
    };
    Ok((uptime, old))
}

/// B for a restart (same version): the process started after wkctl issued the stop, i.e.
/// its uptime is shorter than the time since then. Go's uptime is whole seconds, rounded
/// down (facts §3.2), so an old process that started less than a second before the stop
/// could look new; the baseline rules that out when it reported an uptime of at least
/// 1 s before the stop (that process then started ≥ 1 s before the stop, and reports at
/// least the elapsed time plus 1 s). Without such a baseline a full second of slack is
/// required. Unknown uptime is not ready.
///
/// The uptime is read some time after the observation's timestamp (the probe's latency),
/// so a restart quicker than that latency cannot be told by the stop alone; the upgrade's
/// baseline rule also proves it then: an uptime below the one the old process reported
/// before the stop, or one that grew less than the clock since (that process only ages).
fn restarted_since(
    before: &NodeBaseline,
    node: &NodeView,
    now_at: SystemTime,
    stop: SystemTime,
) -> SignalState {
    let (uptime, old) = match uptimes(before, node) {
        Ok(pair) => pair,
        Err(state) => return state,
    };
    let since_stop = now_at.duration_since(stop).unwrap_or_default();
    let old_ran_long = old >= UPTIME_RESOLUTION;
    let after_stop = if old_ran_long {
        uptime < since_stop
    } else {
        uptime + UPTIME_RESOLUTION <= since_stop
    };
    let elapsed = now_at
        .duration_since(before.observed_at)
        .unwrap_or_default();
    let not_the_baselines = uptime < old || uptime + UPTIME_RESOLUTION * 2 < old + elapsed;
    let new = after_stop || not_the_baselines;
    if new {
        SignalState::Met
    } else {
        SignalState::NotYet(format!(
            "node {} uptime {}s is not shorter than the {}s since its stop: still the old process (it never restarted)",
            node.id,
            uptime.as_secs(),
            since_stop.as_secs()
        ))
    }
}

/// B for a `-dev` target: its version string is a release tag (facts §7.4), so only the
/// build's `/varz.commit`, different from the old process's, proves the new image runs.
fn dev_build_proven(before: &NodeBaseline, node: &NodeView) -> SignalState {
    match (before.commit.as_deref(), node.commit.as_deref()) {
        (_, None) => SignalState::Unknown(format!(
            "node {} reports no `/varz.commit`: a -dev build cannot be told from the release it reports",
            node.id
        )),
        (Some(old), Some(new)) if old == new => SignalState::NotYet(format!(
            "node {} still runs commit {new} (the build from before the stop)",
            node.id
        )),
        (Some(_), Some(_)) => SignalState::Met,
        (None, Some(_)) => {
            // No commit recorded before the stop: only a version change proves the restart.
            match (&before.version, &node.version) {
                (Some(a), Some(b)) if !a.same_build(b) => SignalState::Met,
                _ => SignalState::Unknown(format!(
                    "node {}: the old process's commit is unknown, and the version did not change: cannot prove the -dev build",
                    node.id
                )),
            }
        }
    }
}

/// The node still runs the old process's `-dev`-lookalike build (same commit).
pub(super) fn same_dev_build(before: &NodeBaseline, node: &NodeView, target: &GateTarget) -> bool {
    target.is_dev()
        && before
            .commit
            .as_deref()
            .is_some_and(|c| node.commit.as_deref() == Some(c))
}

/// C. A node that just restarted answers `/cluster/info` 400 until it knows the controller.
pub(super) fn knows_controller(node: &NodeView) -> SignalState {
    match &node.info_answer {
        InfoAnswer::Ok => SignalState::Met,
        InfoAnswer::LeaderNotFound => SignalState::NotYet(format!(
            "node {}: `/cluster/info` answers 400 `leader not found`",
            node.id
        )),
        InfoAnswer::Failed(e) if !node.reachable => {
            SignalState::NotYet(format!("node {}: `/cluster/info`: {e}", node.id))
        }
        InfoAnswer::Failed(e) => {
            SignalState::Unknown(format!("node {}: `/cluster/info`: {e}", node.id))
        }
        InfoAnswer::NotAsked => {
            SignalState::Unknown(format!("node {}: `/cluster/info` not asked", node.id))
        }
    }
}

/// D. Online and Joined in `/cluster/info` (answered by the controller) and, when
/// available, in `/cluster/simpleNodes` of another node. The node's own `/cluster/node`
/// does not count: it is stale right after a restart (facts §4.3).
pub(super) fn online_in_controller_view(node: &NodeView, now: &ClusterView) -> SignalState {
    let mut seen = false;
    let simple_other = now.simple_nodes_from.is_some_and(|f| f != node.id);
    let views = [
        (
            "`/cluster/info`",
            now.info_from.is_some(),
            node.info_online,
            node.info_status,
        ),
        (
            "`/cluster/simpleNodes`",
            simple_other,
            node.simple_online,
            node.simple_status,
        ),
    ];
    for (name, available, online, status) in views {
        if !available {
            continue;
        }
        seen = true;
        match (online, status) {
            (Some(true), Some(NodeStatus::Joined)) => {}
            (None, _) => {
                return SignalState::NotYet(format!("node {} is not listed in {name}", node.id));
            }
            (Some(false), _) => {
                return SignalState::NotYet(format!("node {} is offline in {name}", node.id));
            }
            (Some(true), s) => {
                return SignalState::NotYet(format!(
                    "node {} is online but not Joined in {name} (status {s:?})",
                    node.id
                ));
            }
        }
    }
    if seen {
        SignalState::Met
    } else {
        SignalState::Unknown(
            "no controller view: no node answered `/cluster/info` or `/cluster/simpleNodes`".into(),
        )
    }
}

/// E. The node has applied the controller's config (including its own offline→online).
pub(super) fn config_caught_up(node: &NodeView, now: &ClusterView) -> SignalState {
    match (node.config_version, now.config_version) {
        (Some(n), Some(c)) if n >= c => SignalState::Met,
        (Some(n), Some(c)) => SignalState::NotYet(format!(
            "node {} config_version {n} is behind the controller's {c}",
            node.id
        )),
        (None, _) => SignalState::Unknown(format!(
            "node {}: no `/cluster/node.config_version`",
            node.id
        )),
        (_, None) => SignalState::Unknown(
            "the controller's config version is unknown (no `/cluster/info`)".into(),
        ),
    }
}

/// F, alone: also the pre-stop check before each node (never make a degraded cluster worse).
pub fn cluster_settled(view: &ClusterView) -> SignalState {
    let mut not_yet = Vec::new();
    let mut unknown = Vec::new();
    match &view.slots {
        None => unknown.push("no `/cluster/info` answer: slots unknown".to_string()),
        Some(s) if s.total == 0 => not_yet.push("the cluster reports no slots".to_string()),
        Some(s) => {
            let mut list = |what: &str, ids: &[u64]| {
                if !ids.is_empty() {
                    not_yet.push(format!("{} slot(s) {what} ({})", ids.len(), short_ids(ids)));
                }
            };
            list("without leader", &s.leaderless);
            list("Candidate (election pending)", &s.candidate);
            list("in leader transfer", &s.leader_transfer);
            list("migrating", &s.migrating);
        }
    }
    if view.cluster_migrating {
        not_yet.push("a config-level migration is in progress".into());
    }
    for n in &view.nodes {
        match &n.health {
            HealthState::Ok => {}
            HealthState::Failing(m) => {
                not_yet.push(format!("node {} `/health` is 500 `{m}`", n.id));
            }
            HealthState::Unknown if !n.reachable => {
                not_yet.push(format!("node {} does not answer", n.id));
            }
            HealthState::Unknown => unknown.push(format!("node {} `/health` unknown", n.id)),
        }
        if view.slots.is_some() {
            match (n.info_online, n.info_status) {
                (Some(true), Some(NodeStatus::Joined)) => {}
                (Some(true), _) => not_yet.push(format!(
                    "node {} is not Joined in the controller's view",
                    n.id
                )),
                (Some(false), _) => {
                    not_yet.push(format!("node {} is offline in the controller's view", n.id));
                }
                (None, _) => not_yet.push(format!(
                    "node {} is not a member in the controller's view",
                    n.id
                )),
            }
        }
    }
    if !not_yet.is_empty() {
        not_yet.extend(unknown);
        SignalState::NotYet(not_yet.join("; "))
    } else if !unknown.is_empty() {
        SignalState::Unknown(unknown.join("; "))
    } else {
        SignalState::Met
    }
}

fn short_ids(ids: &[u64]) -> String {
    let mut s = ids
        .iter()
        .take(8)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if ids.len() > 8 {
        s.push_str(", …");
    }
    s
}

/// G. Uptime is not decreasing (Go reports whole seconds, so equal values within the
/// resolution are fine) and actually moves over longer gaps.
pub(super) fn uptime_growing(
    prev: Option<(&ClusterView, &NodeView)>,
    now: &ClusterView,
    node: &NodeView,
) -> SignalState {
    let Some((prev_view, p)) = prev else {
        return SignalState::NotYet("needs a second observation".into());
    };
    match (p.uptime, node.uptime) {
        (Some(a), Some(b)) if b < a => SignalState::NotYet(format!(
            "node {} uptime went down from {}s to {}s: it restarted",
            node.id,
            a.as_secs(),
            b.as_secs()
        )),
        (Some(a), Some(b)) if b > a => SignalState::Met,
        (Some(_), Some(b)) => {
            let gap = now
                .observed_at
                .duration_since(prev_view.observed_at)
                .unwrap_or_default();
            if gap <= UPTIME_RESOLUTION * 2 {
                SignalState::Met
            } else {
                SignalState::NotYet(format!(
                    "node {} uptime stuck at {}s for {}s",
                    node.id,
                    b.as_secs(),
                    gap.as_secs()
                ))
            }
        }
        (None, Some(_)) => SignalState::NotYet("needs a second observation with an uptime".into()),
        (_, None) => SignalState::Unknown(format!("node {} reports no uptime", node.id)),
    }
}

#[cfg(test)]
mod tests;
