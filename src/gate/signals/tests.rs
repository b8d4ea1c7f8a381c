//! Unit tests of the gate's signals, on fixture views.

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
