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

// --- edges found by cargo-mutants (issue #12, MUTANTS.md) ---

#[test]
fn a_restart_names_b_after_the_same_version_and_every_form_carries_letter_and_name() {
    use crate::plan::PlanKind;
    let b = Signal::NewProcessOnTarget;
    assert_eq!(
        b.name_in(PlanKind::Upgrade),
        "new process on target version"
    );
    assert_eq!(
        b.name_in(PlanKind::Restart),
        "new process on the same version"
    );
    assert_eq!(
        Signal::ConfigCaughtUp.name_in(PlanKind::Restart),
        "cluster config caught up"
    );
    assert_eq!(
        b.label_in(PlanKind::Restart),
        "B new process on the same version"
    );
    assert_eq!(
        b.display_in(PlanKind::Restart),
        "B (new process on the same version)"
    );
    assert_eq!(
        SignalIn {
            signal: b,
            kind: PlanKind::Restart
        }
        .label(),
        "B new process on the same version"
    );
    assert_eq!(Signal::UptimeGrowing.label(), "G uptime growing");
}

#[test]
fn the_event_forms_of_a_signal_are_its_letter_and_its_label() {
    use crate::plan::PlanKind;
    #[derive(Serialize)]
    struct Event {
        #[serde(serialize_with = "signal_serde::letter")]
        signal: Signal,
        #[serde(serialize_with = "signal_serde::label")]
        failed: Option<SignalIn>,
    }
    let e = Event {
        signal: Signal::KnowsController,
        failed: Some(SignalIn {
            signal: Signal::NewProcessOnTarget,
            kind: PlanKind::Upgrade,
        }),
    };
    assert_eq!(
        serde_json::to_string(&e).unwrap(),
        r#"{"signal":"C","failed":"B new process on target version"}"#
    );
    let e = Event {
        signal: Signal::UptimeGrowing,
        failed: None,
    };
    assert_eq!(
        serde_json::to_string(&e).unwrap(),
        r#"{"signal":"G","failed":null}"#
    );
}

#[test]
fn a_state_splits_into_its_word_and_its_reason() {
    assert_eq!(SignalState::Met.split(), (SignalWord::Met, None));
    assert_eq!(
        SignalState::NotYet("not yet".into()).split(),
        (SignalWord::NotYet, Some("not yet".into()))
    );
    assert_eq!(
        SignalState::Unknown("why".into()).split(),
        (SignalWord::Unknown, Some("why".into()))
    );
    let words: Vec<String> = [SignalWord::Met, SignalWord::NotYet, SignalWord::Unknown]
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(words, ["met", "not_yet", "unknown"]);
    assert_eq!(SignalWord::NotYet.as_str(), "not_yet");
}

#[test]
fn down_is_no_answer_at_all_not_a_failed_answer() {
    let mut now = after(60, 20);
    let n = now.node_mut(1002).unwrap();
    assert!(!is_down(n), "a node that answers is up");
    n.reachable = false;
    n.error = Some(ProbeError::Refused);
    assert!(is_down(n));
    n.error = Some(ProbeError::Timeout);
    assert!(is_down(n));
    n.error = Some(ProbeError::ServerError(502));
    assert!(!is_down(n), "a 502 is an answer");
    n.error = None;
    assert!(!is_down(n), "no error, no evidence");
    n.reachable = true;
    n.error = Some(ProbeError::Refused);
    assert!(!is_down(n), "reachable on another endpoint");
}

#[test]
fn runs_new_process_is_b() {
    let now = after(60, 20);
    let n = now.node(1002).unwrap();
    assert!(runs_new_process(&baseline(), n, now.observed_at, &t(NEW)));
    let mut old = settled(OLD, 5);
    old.node_mut(1002).unwrap().uptime = Some(Duration::from_secs(505));
    let n = old.node(1002).unwrap();
    assert!(!runs_new_process(&baseline(), n, old.observed_at, &t(NEW)));
}

#[test]
fn health_proves_the_cluster_from_v2_1_4() {
    assert!(health_proves_cluster(&v("v2.1.4-20250301")));
    assert!(!health_proves_cluster(&v("v2.1.3-20250210")));
}

#[test]
fn the_baseline_is_the_nodes_last_observation() {
    let mut view = settled(OLD, 7);
    view.node_mut(1002).unwrap().uptime = Some(Duration::from_secs(500));
    let b = NodeBaseline::from_view(&view, 1002);
    assert_eq!(b.id, 1002);
    assert_eq!(b.version, Some(v(OLD)));
    assert_eq!(b.uptime, Some(Duration::from_secs(500)));
    assert_eq!(b.observed_at, at(7));
    assert_eq!(b.commit, view.node(1002).unwrap().commit);
    let missing = NodeBaseline::from_view(&view, 9999);
    assert_eq!((missing.version, missing.uptime), (None, None));
}

#[test]
fn exact_and_restart_targets_accept_only_their_own_build_and_say_so() {
    let exact = GateTarget::exact(v(OLD));
    assert_eq!(
        (exact.dev_base.clone(), exact.restarted_after),
        (None, None)
    );
    assert!(exact.accepts(&v(OLD)));
    assert!(!exact.accepts(&v(NEW)));
    assert!(!exact.is_dev());
    assert_eq!(exact.to_string(), OLD);
    let restart = GateTarget::restart(v(NEW), at(3));
    assert_eq!(restart.restarted_after, Some(at(3)));
    assert_eq!(restart.dev_base, None);
    assert!(restart.accepts(&v(NEW)));
    assert!(!restart.accepts(&v(OLD)));
    assert_eq!(restart.to_string(), format!("{NEW} (unchanged)"));
    let dev = t("v2.1.3-20250210-dev");
    assert!(dev.is_dev());
    assert!(!t(NEW).is_dev());
    assert_eq!(
        dev.to_string(),
        format!("v2.1.3-20250210-dev (reports {NEW})")
    );
    assert_eq!(t(NEW).to_string(), NEW);
}

#[test]
fn a_dev_target_outside_the_catalog_accepts_a_release_of_its_major_up_to_its_triple() {
    // Newer than every catalog release has a base; this is the case with none.
    let dev = GateTarget {
        dev_base: None,
        ..t("v9.4.2-dev")
    };
    assert!(dev.is_dev());
    assert!(dev.accepts(&v("v9.4.2")));
    assert!(dev.accepts(&v("v9.4.1")));
    assert!(dev.accepts(&v("v9.0.0")));
    assert!(!dev.accepts(&v("v9.4.3")), "newer than the dev tag");
    assert!(!dev.accepts(&v("v8.9.9")), "another major");
    assert!(!dev.accepts(&v("v10.0.0")));
    let node = |s: Option<&str>| {
        let mut view = settled(NEW, 1);
        view.node_mut(1002).unwrap().version = s.map(v);
        view.node(1002).unwrap().clone()
    };
    assert!(dev.accepts_version(&node(Some("v9.4.0"))));
    assert!(!dev.accepts_version(&node(Some("v8.0.0"))));
    assert!(!dev.accepts_version(&node(None)));
}

#[test]
fn the_dev_base_is_the_newest_stable_release_strictly_below() {
    // v2.1.2 is in the catalog: its dev tag builds on the release below it, not on itself.
    assert_eq!(dev_base(&v("v2.1.3-20250210-dev")), Some(v(NEW)));
    let base = dev_base(&v(NEW)).unwrap();
    assert!(base < v(NEW), "{base}");
    assert!(base.is_release() && !base.is_beta(), "{base}");
    assert_eq!(dev_base(&v("v0.0.1")), None);
}

#[test]
fn ready_needs_every_signal_and_no_crash_loop() {
    let mut g = evaluate(&baseline(), Some(&after(59, 19)), &after(60, 20), &t(NEW));
    assert!(g.ready_now());
    g.crash_loop = true;
    assert!(!g.ready_now(), "a crash loop is never ready");
    g.crash_loop = false;
    g.signals[2].1 = SignalState::NotYet("x".into());
    assert!(!g.ready_now());
    assert_eq!(g.waiting_on().unwrap().0, Signal::KnowsController);
    assert_eq!(g.state(Signal::KnowsController), Some(&g.signals[2].1));
    assert_eq!(g.state(Signal::ApiHealthy), Some(&SignalState::Met));
}

#[test]
fn a_crash_loop_needs_both_polls_on_the_target() {
    // The uptime fell, but the earlier answer was still the old version: the restart
    // itself, not a crash loop.
    let mut prev = settled(OLD, 30);
    prev.node_mut(1002).unwrap().uptime = Some(Duration::from_secs(530));
    let g = evaluate(&baseline(), Some(&prev), &after(31, 1), &t(NEW));
    assert!(!g.crash_loop, "{g:?}");
    // The new answer fell back to the old version with a lower uptime.
    let mut now = settled(OLD, 31);
    now.node_mut(1002).unwrap().uptime = Some(Duration::from_secs(1));
    let g = evaluate(&baseline(), Some(&after(30, 25)), &now, &t(NEW));
    assert!(!g.crash_loop, "{g:?}");
    // A dev target: the old image (same commit as the baseline) restarting is B's
    // business, not a crash loop; the new build restarting is one.
    let dev = t("v2.1.3-20250210-dev");
    let mut b = baseline();
    b.version = Some(v(NEW));
    b.commit = Some(format!("commit-{NEW}"));
    let g = evaluate(&b, Some(&after(30, 25)), &after(31, 2), &dev);
    assert!(!g.crash_loop, "the old build: {g:?}");
    let (mut prev, mut now) = (after(30, 25), after(31, 2));
    for view in [&mut prev, &mut now] {
        view.node_mut(1002).unwrap().commit = Some("0a1b2c3".into());
    }
    let g = evaluate(&b, Some(&prev), &now, &dev);
    assert!(g.crash_loop, "the new build: {g:?}");
}
