//! Gate tests over hand-built views.

use std::time::{Duration, Instant};

use super::*;
use crate::probe::fixtures::{at, settled, v};
use crate::probe::{HealthState, InfoAnswer, ProbeError, SlotSummary, VersionSource};

const OLD: &str = "v2.0.10-20241221";
const NEW: &str = "v2.1.2-20250120";

/// Node 1002 was up 500 s on the old version when it was stopped at t=0.
fn baseline() -> NodeBaseline {
    NodeBaseline {
        id: 1002,
        version: Some(v(OLD)),
        commit: Some(format!("commit-{OLD}")),
        uptime: Some(Duration::from_secs(500)),
        observed_at: at(0),
    }
}

/// The cluster at `secs`, with node 1002 on the new version up `uptime` seconds.
fn after(secs: u64, uptime: u64) -> ClusterView {
    let mut view = settled(NEW, secs);
    view.node_mut(1002).unwrap().uptime = Some(Duration::from_secs(uptime));
    view
}

fn t(s: &str) -> GateTarget {
    GateTarget::new(v(s))
}

fn state(g: &GateState, s: Signal) -> SignalState {
    g.state(s).cloned().unwrap()
}

fn not_yet(s: &SignalState) -> bool {
    matches!(s, SignalState::NotYet(_))
}

#[test]
fn a_rejoined_node_is_ready() {
    let g = evaluate(&baseline(), Some(&after(59, 19)), &after(60, 20), &t(NEW));
    assert_eq!(g.signals.len(), 7);
    assert!(g.ready_now(), "{g:?}");
    assert!(!g.crash_loop);
    assert!(g.waiting_on().is_none());
}

#[test]
fn first_observation_waits_for_uptime_growth() {
    let g = evaluate(&baseline(), None, &after(60, 20), &t(NEW));
    assert!(not_yet(&state(&g, Signal::UptimeGrowing)));
    assert!(!g.ready_now());
    assert_eq!(g.waiting_on().unwrap().0, Signal::UptimeGrowing);
}

#[test]
fn the_old_process_never_passes() {
    // Still the old version, uptime grown since the baseline: the stop has not happened.
    let mut now = settled(OLD, 5);
    now.node_mut(1002).unwrap().uptime = Some(Duration::from_secs(505));
    let mut prev = now.clone();
    prev.observed_at = at(4);
    prev.node_mut(1002).unwrap().uptime = Some(Duration::from_secs(504));
    let g = evaluate(&baseline(), Some(&prev), &now, &t(NEW));
    assert!(
        matches!(state(&g, Signal::NewProcessOnTarget), SignalState::NotYet(m) if m.contains("v2.0.10"))
    );
    assert!(!g.ready_now());

    // Re-run on a node already on the target: the version matches but uptime never reset.
    let base = NodeBaseline {
        version: Some(v(NEW)),
        ..baseline()
    };
    let g = evaluate(&base, Some(&after(4, 504)), &after(5, 505), &t(NEW));
    assert!(
        matches!(state(&g, Signal::NewProcessOnTarget), SignalState::NotYet(m) if m.contains("old process"))
    );
    assert!(!g.ready_now());
}

#[test]
fn a_new_process_older_than_a_short_baseline_still_counts() {
    // Baseline uptime was 5 s; the new process started later and is now 30 s old.
    let base = NodeBaseline {
        uptime: Some(Duration::from_secs(5)),
        ..baseline()
    };
    let g = evaluate(&base, Some(&after(59, 29)), &after(60, 30), &t(NEW));
    assert_eq!(state(&g, Signal::NewProcessOnTarget), SignalState::Met);
    // Baseline process already gone: the version decides.
    let base = NodeBaseline {
        uptime: None,
        ..baseline()
    };
    assert_eq!(
        state(
            &evaluate(&base, None, &after(60, 900), &t(NEW)),
            Signal::NewProcessOnTarget
        ),
        SignalState::Met
    );
}

#[test]
fn stale_view_after_restart_does_not_pass() {
    // facts §4.3: own /cluster/node says online, /health ok, but /cluster/info is 400,
    // the controller says offline and config_version is old.
    let mut now = after(10, 3);
    now.leader_not_found = vec![1002];
    let n = now.node_mut(1002).unwrap();
    n.info_answer = InfoAnswer::LeaderNotFound;
    n.info_online = Some(false);
    n.simple_online = Some(false);
    n.config_version = Some(400);
    assert_eq!((n.self_online, &n.health), (Some(true), &HealthState::Ok));
    let mut prev = now.clone();
    prev.observed_at = at(9);
    prev.node_mut(1002).unwrap().uptime = Some(Duration::from_secs(2));
    let g = evaluate(&baseline(), Some(&prev), &now, &t(NEW));
    assert_eq!(state(&g, Signal::ApiHealthy), SignalState::Met);
    assert_eq!(state(&g, Signal::NewProcessOnTarget), SignalState::Met);
    assert!(
        matches!(state(&g, Signal::KnowsController), SignalState::NotYet(m) if m.contains("leader not found"))
    );
    assert!(
        matches!(state(&g, Signal::OnlineInControllerView), SignalState::NotYet(m) if m.contains("offline"))
    );
    assert!(
        matches!(state(&g, Signal::ConfigCaughtUp), SignalState::NotYet(m) if m.contains("400"))
    );
    assert!(not_yet(&state(&g, Signal::ClusterSettled)));
    assert!(!g.ready_now());
}

#[test]
fn d_ignores_the_nodes_own_simple_nodes() {
    let mut now = after(60, 20);
    now.info_from = None;
    now.simple_nodes_from = Some(1002);
    let g = evaluate(&baseline(), None, &now, &t(NEW));
    assert!(matches!(
        state(&g, Signal::OnlineInControllerView),
        SignalState::Unknown(_)
    ));
}

#[test]
fn crash_loop_is_a_failure() {
    let g = evaluate(&baseline(), Some(&after(30, 25)), &after(31, 2), &t(NEW));
    assert!(g.crash_loop);
    assert!(
        matches!(state(&g, Signal::UptimeGrowing), SignalState::NotYet(m) if m.contains("restarted"))
    );
    assert!(!g.ready_now());
    // An uptime stuck over a long gap is not growth either.
    let g = evaluate(&baseline(), Some(&after(30, 25)), &after(40, 25), &t(NEW));
    assert!(not_yet(&state(&g, Signal::UptimeGrowing)));
    assert!(!g.crash_loop);
}

#[test]
fn version_less_answers_are_unknown_not_met() {
    let mut now = after(60, 20);
    let n = now.node_mut(1002).unwrap();
    (n.version, n.version_raw, n.version_source) = (None, None, VersionSource::None);
    let g = evaluate(&baseline(), Some(&after(59, 19)), &now, &t(NEW));
    assert!(
        matches!(state(&g, Signal::NewProcessOnTarget), SignalState::Unknown(m) if m.contains("no version"))
    );
    assert!(!g.ready_now());
    // From app_version (no /varz): fine.
    let mut now = after(60, 20);
    now.node_mut(1002).unwrap().version_source = VersionSource::AppVersion;
    assert!(evaluate(&baseline(), Some(&after(59, 19)), &now, &t(NEW)).ready_now());
    // No uptime at all: the version change alone proves a new process (a process cannot
    // change its version), but G cannot be judged, so the node is not ready.
    let mut now = after(60, 20);
    now.node_mut(1002).unwrap().uptime = None;
    let g = evaluate(&baseline(), Some(&after(59, 19)), &now, &t(NEW));
    assert!(state(&g, Signal::NewProcessOnTarget).is_met());
    assert!(!g.ready_now());
    // Same version before and after, and no uptime: nothing proves a new process.
    let mut same = baseline();
    same.version = Some(v(NEW));
    let g = evaluate(&same, Some(&after(59, 19)), &now, &t(NEW));
    assert!(matches!(
        state(&g, Signal::NewProcessOnTarget),
        SignalState::Unknown(_)
    ));
    assert!(matches!(
        state(&g, Signal::UptimeGrowing),
        SignalState::Unknown(_)
    ));
}

#[test]
fn v2_1_3_health_always_ok_mid_rejoin_is_not_ready() {
    let target = "v2.1.3-20250210";
    assert!(!health_proves_cluster(&v(target)));
    let mut prev = settled(target, 19);
    let mut now = settled(target, 20);
    for (view, up) in [(&mut prev, 9), (&mut now, 10)] {
        let n = view.node_mut(1002).unwrap();
        n.uptime = Some(Duration::from_secs(up));
        n.info_online = Some(false);
        n.config_version = Some(410);
    }
    let g = evaluate(&baseline(), Some(&prev), &now, &t(target));
    assert_eq!(
        state(&g, Signal::ApiHealthy),
        SignalState::Met,
        "always ok before v2.1.4"
    );
    assert!(not_yet(&state(&g, Signal::OnlineInControllerView)));
    assert!(not_yet(&state(&g, Signal::ConfigCaughtUp)));
    assert!(!g.ready_now());
}

#[test]
fn unreachable_and_unusable_answers() {
    let mut now = after(60, 20);
    let n = now.node_mut(1002).unwrap();
    (n.reachable, n.error, n.health, n.info_answer) = (
        false,
        Some(ProbeError::Refused),
        HealthState::Unknown,
        InfoAnswer::Failed("connection refused".into()),
    );
    let g = evaluate(&baseline(), None, &now, &t(NEW));
    assert!(
        matches!(state(&g, Signal::ApiHealthy), SignalState::NotYet(m) if m.contains("refused"))
    );
    assert!(not_yet(&state(&g, Signal::KnowsController)));

    let mut now = after(60, 20);
    let n = now.node_mut(1002).unwrap();
    (n.error, n.health) = (Some(ProbeError::ServerError(502)), HealthState::Unknown);
    let g = evaluate(&baseline(), None, &now, &t(NEW));
    assert!(matches!(state(&g, Signal::ApiHealthy), SignalState::Unknown(m) if m.contains("502")));

    let g = evaluate(
        &NodeBaseline {
            id: 9999,
            ..baseline()
        },
        None,
        &now,
        &t(NEW),
    );
    assert!(
        g.signals
            .iter()
            .all(|(_, s)| matches!(s, SignalState::Unknown(_)))
    );
}

type Change = Box<dyn Fn(&mut ClusterView)>;

#[test]
fn cluster_settled_checks_every_condition() {
    assert_eq!(cluster_settled(&settled(NEW, 0)), SignalState::Met);
    let cases: Vec<(&str, Change)> = vec![
        (
            "without leader",
            Box::new(|c| c.slots.as_mut().unwrap().leaderless = vec![3]),
        ),
        (
            "Candidate",
            Box::new(|c| c.slots.as_mut().unwrap().candidate = vec![4, 5]),
        ),
        (
            "leader transfer",
            Box::new(|c| c.slots.as_mut().unwrap().leader_transfer = vec![6]),
        ),
        (
            "migrating",
            Box::new(|c| c.slots.as_mut().unwrap().migrating = vec![7]),
        ),
        ("config-level", Box::new(|c| c.cluster_migrating = true)),
        (
            "no slots",
            Box::new(|c| c.slots = Some(SlotSummary::default())),
        ),
        (
            "slot not ready",
            Box::new(|c| {
                c.node_mut(1003).unwrap().health = HealthState::Failing("slot not ready".into());
            }),
        ),
        (
            "offline",
            Box::new(|c| c.node_mut(1003).unwrap().info_online = Some(false)),
        ),
        (
            "not a member",
            Box::new(|c| {
                (
                    c.node_mut(1003).unwrap().info_online,
                    c.node_mut(1003).unwrap().info_status,
                ) = (None, None);
            }),
        ),
        (
            "does not answer",
            Box::new(|c| {
                (
                    c.node_mut(1003).unwrap().reachable,
                    c.node_mut(1003).unwrap().health,
                ) = (false, HealthState::Unknown);
            }),
        ),
    ];
    for (want, change) in cases {
        let mut view = settled(NEW, 0);
        change(&mut view);
        assert!(
            matches!(cluster_settled(&view), SignalState::NotYet(ref m) if m.contains(want)),
            "{want}: {:?}",
            cluster_settled(&view)
        );
    }
    let mut view = settled(NEW, 0);
    view.slots = None;
    assert!(
        matches!(cluster_settled(&view), SignalState::Unknown(m) if m.contains("/cluster/info"))
    );
}

#[test]
fn stability_needs_an_unbroken_run() {
    let ready = evaluate(&baseline(), Some(&after(59, 19)), &after(60, 20), &t(NEW));
    let not_ready = evaluate(&baseline(), None, &after(60, 20), &t(NEW));
    let mut s = Stability::new(Duration::from_secs(10));
    let t0 = Instant::now();
    let t = |secs| t0 + Duration::from_secs(secs);
    assert!(!s.update(&ready, t(0)));
    assert!(!s.update(&ready, t(6)));
    assert!(!s.update(&not_ready, t(7)), "a miss resets the clock");
    assert_eq!(s.held_for(t(7)), None);
    assert!(!s.update(&ready, t(8)));
    assert!(!s.update(&ready, t(17)));
    assert!(s.update(&ready, t(18)));
    assert_eq!(s.held_for(t(18)), Some(Duration::from_secs(10)));
}

#[test]
fn signals_have_letters_and_names() {
    let letters: String = Signal::ALL.iter().map(|s| s.letter()).collect();
    assert_eq!(letters, "ABCDEFG");
    assert_eq!(
        Signal::ConfigCaughtUp.to_string(),
        "E (cluster config caught up)"
    );
    assert_eq!(
        serde_json::to_string(&SignalState::NotYet("x".into())).unwrap(),
        r#"{"state":"not_yet","reason":"x"}"#
    );
}

#[test]
fn a_dev_target_is_proven_by_a_new_commit_not_by_its_reported_tag() {
    // A `-dev` image reports the previous release tag (facts §7.4).
    let dev = t("v2.1.3-20250210-dev");
    assert_eq!(dev.dev_base, Some(v(NEW)), "builds on v2.1.2");
    let mut b = baseline();
    b.version = Some(v(NEW));
    b.commit = Some(format!("commit-{NEW}"));
    // The new build: reports v2.1.2 with another commit.
    let mut now = after(60, 20);
    now.node_mut(1002).unwrap().commit = Some("0a1b2c3".into());
    let mut prev = after(59, 19);
    prev.node_mut(1002).unwrap().commit = Some("0a1b2c3".into());
    let g = evaluate(&b, Some(&prev), &now, &dev);
    assert!(state(&g, Signal::NewProcessOnTarget).is_met(), "{g:?}");
    // The old image came back (restarted, same commit): never met, uptime reset or not.
    let g = evaluate(&b, Some(&after(59, 19)), &after(60, 20), &dev);
    assert!(not_yet(&state(&g, Signal::NewProcessOnTarget)), "{g:?}");
    // No commit reported: unknown, not ready.
    now.node_mut(1002).unwrap().commit = None;
    let g = evaluate(&b, None, &now, &dev);
    assert!(matches!(
        state(&g, Signal::NewProcessOnTarget),
        SignalState::Unknown(_)
    ));
    // The version it came back on is not the release the dev tag builds on.
    let mut wrong = settled(OLD, 60);
    wrong.node_mut(1002).unwrap().commit = Some("0a1b2c3".into());
    let g = evaluate(&baseline(), None, &wrong, &dev);
    assert!(not_yet(&state(&g, Signal::NewProcessOnTarget)), "{g:?}");
    let g = evaluate(&b, None, &settled("v1.2.6", 60), &dev);
    assert!(!state(&g, Signal::NewProcessOnTarget).is_met());
}
