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
mod tests {
    use super::*;
    use crate::probe::ProbeError;
    use crate::probe::fixtures::{at, node, v};

    const NEW: &str = "v2.1.2-20250120";

    /// B's uptime rule, with a baseline of 100 s seen at t=0 (its version unknown, so only
    /// the uptimes decide), judged `secs` later with the node reporting `uptime`.
    fn b(uptime: Duration, secs_ms: u64) -> SignalState {
        let before = NodeBaseline {
            id: 1002,
            version: None,
            commit: None,
            uptime: Some(Duration::from_secs(100)),
            observed_at: at(0),
        };
        let mut n = node(1002, NEW, 0);
        n.uptime = Some(uptime);
        let now = at(0) + Duration::from_millis(secs_ms);
        new_process(&before, &n, now, &GateTarget::new(v(NEW)))
    }

    #[test]
    fn b_sees_a_new_process_by_its_uptime_with_two_resolutions_of_slack() {
        let s = Duration::from_secs;
        // Lower than the old uptime, right away: new.
        assert!(b(s(99), 0).is_met());
        // The same uptime at the same moment: the old process.
        assert!(!b(s(100), 0).is_met());
        // Grew less than the time passed (100 → 120 s in 60 s): new.
        assert!(b(s(120), 60_000).is_met());
        // Grew with the clock: old.
        assert!(!b(s(160), 60_000).is_met());
        // The edge: uptime + 2 s == old + elapsed is still the old process; 1 ms less is new.
        assert!(!b(s(108), 10_000).is_met());
        assert!(b(Duration::from_millis(107_999), 10_000).is_met());
    }

    /// B of a restart: same version, and an uptime shorter than the time since the stop
    /// (issued at t=10 s here; the baseline at t=9 s saw `old_uptime`).
    fn b_restart(
        old_uptime: Option<u64>,
        version: &str,
        uptime: Option<u64>,
        at_ms: u64,
    ) -> SignalState {
        let before = NodeBaseline {
            id: 1002,
            version: Some(v(OLD)),
            commit: None,
            uptime: old_uptime.map(Duration::from_secs),
            observed_at: at(9),
        };
        let mut n = node(1002, version, 0);
        n.uptime = uptime.map(Duration::from_secs);
        let target = GateTarget::restart(v(OLD), at(10));
        new_process(&before, &n, at(0) + Duration::from_millis(at_ms), &target)
    }

    const OLD: &str = "v2.0.10-20241221";

    #[test]
    fn b_of_a_restart_needs_the_same_version_and_a_process_younger_than_the_stop() {
        // 3 s after the stop, uptime 2 s: a new process.
        assert!(b_restart(Some(100), OLD, Some(2), 13_000).is_met());
        // The old process never went away: its uptime kept growing past the stop.
        let SignalState::NotYet(why) = b_restart(Some(100), OLD, Some(104), 13_000) else {
            panic!("old process");
        };
        assert!(why.contains("still the old process"), "{why}");
        // What the old process (2 s old at the baseline) would report 2.5 s after the
        // stop: not proven.
        assert!(!b_restart(Some(2), OLD, Some(5), 12_500).is_met());
        // Another version is not a restart of this one.
        assert!(matches!(
            b_restart(Some(100), NEW, Some(1), 13_000),
            SignalState::NotYet(_)
        ));
        // Unknown uptime is not ready.
        assert!(matches!(
            b_restart(Some(100), OLD, None, 13_000),
            SignalState::Unknown(_)
        ));
        // An old process that was under a second old at the baseline: a full second of
        // slack (uptime 2 s at 2.5 s after the stop is not proof; at 3 s it is).
        assert!(!b_restart(Some(0), OLD, Some(2), 12_500).is_met());
        assert!(b_restart(Some(0), OLD, Some(2), 13_000).is_met());
        // No old uptime (gone at the baseline, or B proven earlier in the gate): as for
        // an upgrade, the version decides.
        assert!(b_restart(None, OLD, Some(2), 12_500).is_met());
        // A restart quicker than the probe's latency (uptime 3 s, 3.05 s after the stop):
        // below the old process's 100 s, so a new one.
        assert!(b_restart(Some(100), OLD, Some(3), 13_050).is_met());
        // …and what a young old process (2 s at the baseline) reports then is not.
        assert!(!b_restart(Some(2), OLD, Some(6), 13_050).is_met());
        // A restart target is never a `-dev` one, even for a `-dev` version string.
        assert!(!GateTarget::restart(v("v2.1.3-dev"), at(0)).is_dev());
    }

    #[test]
    fn only_a_node_without_an_answer_is_not_yet_up_other_errors_are_unknown() {
        let mut n = node(1002, NEW, 10);
        n.reachable = false;
        n.error = Some(ProbeError::Refused);
        assert!(matches!(unreachable_state(&n, "x"), SignalState::NotYet(_)));
        n.error = Some(ProbeError::ServerError(500));
        assert!(matches!(
            unreachable_state(&n, "x"),
            SignalState::Unknown(_)
        ));
        n.reachable = true;
        n.error = Some(ProbeError::Timeout);
        assert!(matches!(
            unreachable_state(&n, "x"),
            SignalState::Unknown(_)
        ));
        n.error = None;
        assert!(matches!(
            unreachable_state(&n, "x"),
            SignalState::Unknown(_)
        ));
    }

    #[test]
    fn a_dev_build_without_an_old_commit_is_proven_only_by_a_version_change() {
        let before = |version: &str| NodeBaseline {
            id: 1002,
            version: Some(v(version)),
            commit: None,
            uptime: Some(Duration::from_secs(100)),
            observed_at: at(0),
        };
        let n = node(1002, NEW, 1);
        assert!(dev_build_proven(&before("v2.0.10-20241221"), &n).is_met());
        assert!(matches!(
            dev_build_proven(&before(NEW), &n),
            SignalState::Unknown(_)
        ));
    }

    #[test]
    fn the_same_dev_build_is_the_same_commit_on_a_dev_target_only() {
        let before = NodeBaseline {
            id: 1002,
            version: Some(v(NEW)),
            commit: Some("abc".into()),
            uptime: None,
            observed_at: at(0),
        };
        let mut n = node(1002, NEW, 1);
        n.commit = Some("abc".into());
        let dev = GateTarget::new(v("v2.1.3-dev"));
        assert!(dev.is_dev());
        assert!(same_dev_build(&before, &n, &dev));
        assert!(!same_dev_build(&before, &n, &GateTarget::new(v(NEW))));
        n.commit = Some("def".into());
        assert!(!same_dev_build(&before, &n, &dev));
    }

    #[test]
    fn an_unreachable_node_is_not_yet_a_failed_answer_is_unknown() {
        let mut n = node(1002, NEW, 1);
        n.info_answer = InfoAnswer::Failed("connection refused".into());
        n.reachable = false;
        assert!(matches!(knows_controller(&n), SignalState::NotYet(_)));
        n.reachable = true;
        assert!(matches!(knows_controller(&n), SignalState::Unknown(_)));

        let mut view = crate::probe::fixtures::settled(NEW, 0);
        let n = view.node_mut(1003).unwrap();
        n.health = HealthState::Unknown;
        n.reachable = false;
        let SignalState::NotYet(why) = cluster_settled(&view) else {
            panic!("not yet");
        };
        assert_eq!(why, "node 1003 does not answer");
        view.node_mut(1003).unwrap().reachable = true;
        assert_eq!(
            cluster_settled(&view),
            SignalState::Unknown("node 1003 `/health` unknown".into())
        );
    }

    #[test]
    fn long_id_lists_are_cut_after_eight() {
        assert_eq!(short_ids(&[1, 2, 3]), "1, 2, 3");
        assert_eq!(
            short_ids(&[1, 2, 3, 4, 5, 6, 7, 8]),
            "1, 2, 3, 4, 5, 6, 7, 8"
        );
        assert_eq!(
            short_ids(&[1, 2, 3, 4, 5, 6, 7, 8, 9]),
            "1, 2, 3, 4, 5, 6, 7, 8, …"
        );
    }

    #[test]
    fn an_uptime_that_stays_the_same_across_one_resolution_is_growing() {
        let prev_view = crate::probe::fixtures::settled(NEW, 0);
        let now_view = crate::probe::fixtures::settled(NEW, 1);
        let mut p = node(1002, NEW, 5);
        let n = node(1002, NEW, 5);
        assert!(uptime_growing(Some((&prev_view, &p)), &now_view, &n).is_met());
        p.uptime = Some(Duration::from_secs(6));
        assert!(matches!(
            uptime_growing(Some((&prev_view, &p)), &now_view, &n),
            SignalState::NotYet(_)
        ));
    }

    // ---- edges found by cargo-mutants (MUTANTS.md) -------------------------------------

    /// B of a restart with the baseline taken 0.2 s before the stop (at t=10 s), as the
    /// upgrade takes it, so each of the three rules can decide alone. Returns whether B
    /// is met `now_ms` after t=0 for a node reporting `uptime` (whole seconds).
    fn b_restart_near(old_uptime: u64, uptime: u64, now_ms: u64) -> bool {
        let before = NodeBaseline {
            id: 1002,
            version: Some(v(OLD)),
            commit: None,
            uptime: Some(Duration::from_secs(old_uptime)),
            observed_at: at(9) + Duration::from_millis(800),
        };
        let mut n = node(1002, OLD, 0);
        n.uptime = Some(Duration::from_secs(uptime));
        let target = GateTarget::restart(v(OLD), at(10));
        new_process(&before, &n, at(0) + Duration::from_millis(now_ms), &target).is_met()
    }

    #[test]
    fn b_of_a_restart_each_rule_decides_alone_at_its_edge() {
        // Younger than the stop (old process 1 s old at the baseline, so no other rule
        // holds): uptime 2 s at 2.5 s after the stop is new; at exactly 2 s after the
        // stop it may have started up to a second before it.
        assert!(b_restart_near(1, 2, 12_500));
        assert!(!b_restart_near(1, 2, 12_000));
        // Below the old process's uptime, 0.1 s after the stop: new; the same uptime
        // is the old process.
        assert!(b_restart_near(100, 99, 10_100));
        assert!(!b_restart_near(100, 100, 10_100));
        // Grew less than the clock (10 s since the baseline): 100 → 107 s is new; 108 s
        // (uptime + 2 s == old + elapsed) is still the old process.
        assert!(b_restart_near(100, 107, 19_800));
        assert!(!b_restart_near(100, 108, 19_800));
    }
}
