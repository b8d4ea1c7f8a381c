//! Attacks on the `--resume` relaxation of `cluster.node_rejoining` (`src/plan/resume.rs`):
//! each checks, on the simulator's event log, that the relaxed resume never takes a second
//! node down and never stops a node while a peer has not rejoined.

use std::time::Duration;

use crate::harness::{Sim, SimOpts, down_intervals_never_overlap};
use crate::matrix::{
    follower_peer, holdable_ws, lost_the_controller, park_or_unflag, touched_after,
};
use crate::support::{ctl_ok, now_ms};

const RUN_T: Duration = Duration::from_secs(90);
const UP: [&str; 5] = ["upgrade", "--to", "v2.1.2", "--yes", "--json"];

/// Kills wkctl at 1002's `start` with the orphaned start never landing (1002 down).
fn killed_at_start_1002_down(sim: &Sim) -> crate::support::Ws {
    let ws = holdable_ws(sim);
    std::fs::write(sim.state_dir().join("hold-start-1002"), "").unwrap();
    let mut run = ws.spawn(&UP, &[]);
    run.wait_for("1002's start", RUN_T, |v| {
        v["type"] == "step_started" && v["data"]["node"] == 1002 && v["data"]["step"] == "start"
    });
    run.kill9();
    park_or_unflag(sim, "hold-start-1002");
    assert_eq!(sim.node_state(1002), "stopped");
    ws
}

/// 1002 is down mid-upgrade and the operator also stopped the peer 1003 by hand: the
/// peer is down (not merely stale), so `--resume` must refuse and touch nothing.
#[test]
fn resume_refuses_when_a_peer_was_stopped_by_hand_while_the_busy_node_is_down() {
    let sim = Sim::start(SimOpts::default());
    let ws = killed_at_start_1002_down(&sim);
    ctl_ok(&sim, &["stop", "1003"]);
    let t0 = now_ms();
    let r = ws.run(&["upgrade", "--resume", "--yes", "--json"], &[]);
    assert_ne!(r.code, 0, "{}", r.all());
    assert!(
        touched_after(&sim, t0).is_empty(),
        "nothing touched: {}",
        r.all()
    );
    assert_eq!(sim.node_state(1002), "stopped");
    assert_eq!(sim.node_state(1003), "stopped");
}

/// The stale peer never recovers: the relaxed resume may start 1002, but must then never
/// stop another node while the peer still does not know the controller.
#[test]
fn relaxed_resume_never_stops_a_node_while_the_stale_peer_stays_stale() {
    let sim = Sim::start(SimOpts::default());
    let ws = killed_at_start_1002_down(&sim);
    let peer = follower_peer(&sim);
    let peer_s = peer.to_string();
    ctl_ok(&sim, &["fault", &peer_s, "leader-lost"]);
    sim.wait_until("the peer lost the controller", RUN_T, |s| {
        lost_the_controller(s, peer)
    });
    let t0 = now_ms();
    let r = ws.run(&["upgrade", "--resume", "--yes", "--json"], &[]);
    assert!(lost_the_controller(&sim, peer), "peer stayed stale");
    assert_ne!(
        r.code,
        0,
        "must not finish while {peer} is stale: {}",
        r.all()
    );
    let touched = touched_after(&sim, t0);
    assert!(
        touched.iter().all(|(v, _)| v != "stop" && v != "restart"),
        "no stop while {peer} is stale: {touched:?}"
    );
    down_intervals_never_overlap(&sim.events()).unwrap();
    assert_ne!(sim.node_state(1003), "stopped", "1003 untouched");
}

/// Killed at 1002's `wait_ready` (1002 up on the new version, its stop finished, so the
/// relax applies) while a peer stays stale: the resumed gate must not pass early, and
/// nothing may be stopped (1003 untouched).
#[test]
fn relaxed_resume_at_the_gate_does_not_pass_while_the_peer_stays_stale() {
    let sim = Sim::start(SimOpts::default());
    let ws = holdable_ws(&sim);
    let mut run = ws.spawn(&UP, &[]);
    run.wait_for("1002's gate", RUN_T, |v| {
        v["type"] == "step_started"
            && v["data"]["node"] == 1002
            && v["data"]["step"] == "wait_ready"
    });
    run.kill9();
    let peer = follower_peer(&sim);
    let peer_s = peer.to_string();
    ctl_ok(&sim, &["fault", &peer_s, "leader-lost"]);
    sim.wait_until("the peer lost the controller", RUN_T, |s| {
        lost_the_controller(s, peer)
    });
    let t0 = now_ms();
    let r = ws.run(&["upgrade", "--resume", "--yes", "--json"], &[]);
    assert!(lost_the_controller(&sim, peer), "peer stayed stale");
    assert_ne!(r.code, 0, "gate passed while {peer} is stale: {}", r.all());
    let touched = touched_after(&sim, t0);
    assert!(
        touched.iter().all(|(v, _)| v != "stop" && v != "restart"),
        "no stop while {peer} is stale: {touched:?}"
    );
    down_intervals_never_overlap(&sim.events()).unwrap();
    assert_ne!(sim.node_state(1003), "stopped", "1003 untouched");
}

/// Killed at 1002's `wait_ready`, then 1002 is brought back by hand on another version
/// (v2.1.1) than the run installed: the busy node is up on a version the run did not
/// install. The version finding is never relaxed to let the wrong version pass: the
/// resumed run says so, plans 1002 again from the pre-stop check, and re-upgrades it (one
/// real stop and one start on the target, in that order) with the cluster settled, then
/// goes on to 1003 only once 1002 is ready. Judged on the simulator's log.
#[test]
fn resume_with_the_busy_node_up_on_the_old_version() {
    let sim = Sim::start(SimOpts::default());
    let ws = holdable_ws(&sim);
    let mut run = ws.spawn(&UP, &[]);
    run.wait_for("1002's gate", RUN_T, |v| {
        v["type"] == "step_started"
            && v["data"]["node"] == 1002
            && v["data"]["step"] == "wait_ready"
    });
    run.kill9();
    ctl_ok(&sim, &["stop", "1002"]);
    ctl_ok(&sim, &["start", "1002", "--version", "v2.1.1-20250110"]);
    sim.wait_settled(1002, RUN_T);
    let t0 = now_ms();
    let r = ws.run(&["upgrade", "--resume", "--yes", "--json"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let lines = r.lines();
    assert!(
        lines.iter().any(|l| l["type"] == "waiting"
            && l["data"]["node"] == 1002
            && l["data"]["what"]
                .as_str()
                .is_some_and(|w| w.contains("(v2.1.1-20250110): planning it again"))),
        "the resume says why 1002 is done again: {}",
        r.all()
    );
    // What wkctl sent after the resume began: 1002 stopped once and started once on the
    // target, before 1003 is touched; 1001 (upgraded by the killed run) is not touched.
    let touched = touched_after(&sim, t0);
    let only = |n: u64| -> Vec<&str> {
        touched
            .iter()
            .filter(|(_, id)| *id == n)
            .map(|(v, _)| v.as_str())
            .collect()
    };
    assert_eq!(only(1001), Vec::<&str>::new(), "1001 re-verified only");
    assert_eq!(only(1002), ["stop", "start"], "1002 re-upgraded once");
    assert_eq!(only(1003), ["stop", "start"]);
    let first_1003 = touched.iter().position(|(_, id)| *id == 1003).unwrap();
    assert!(
        touched[..first_1003].iter().all(|(_, id)| *id == 1002),
        "1002 first: {touched:?}"
    );
    // The simulator's view: 1002's new stop happened on a settled cluster, never two
    // nodes down, and every node ends on the target.
    let events = sim.events();
    let after: Vec<_> = events
        .iter()
        .filter(|e| e["ts_ms"].as_i64().unwrap_or(0) >= t0)
        .cloned()
        .collect();
    crate::harness::every_stop_settled(&after).unwrap();
    down_intervals_never_overlap(&events).unwrap();
    for n in [1001, 1002, 1003] {
        assert_eq!(
            crate::support::varz_version(&sim, n, None),
            "v2.1.2-20250120",
            "node {n}"
        );
    }
}
