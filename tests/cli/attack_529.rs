//! Attacks on the #529 carried acceptance (`Tracker::accept_stuck_joining`,
//! `joining_state_carried`) and the simulator's `rejoined`-as-predicate semantics, in the
//! 4-node seed-join setup of `holes::a_node_stuck_in_joining_by_529_...`: each is judged
//! on the simulator's event log and wkctl's exit code.

use std::time::Duration;

use serde_json::Value;

use crate::harness::{Sim, SimOpts, down_intervals_never_overlap, rollout_was_safe};
use crate::matrix::lost_the_controller;
use crate::support::{Opts, Streaming, Ws, ctl_ok, lifecycle, now_ms};

const RUN_T: Duration = Duration::from_mins(2);
const UP: [&str; 5] = ["upgrade", "--to", "v2.2.5", "--yes", "--json"];
const OLD: &str = "v2.2.4-20260313";

/// Four nodes, 1004 seed-joined and stuck at status 2 by #529 (online, caught up,
/// holding a replica of every slot).
pub fn stuck_cluster() -> Sim {
    let sim = Sim::start(SimOpts {
        nodes: 4,
        joined: Some(3),
        version: OLD.into(),
        extra_args: vec!["--replicas".into(), "4".into()],
        ..SimOpts::default()
    });
    ctl_ok(&sim, &["fault", "1004", "stuck-joining"]);
    ctl_ok(&sim, &["start", "1004"]);
    sim.wait_until("1004 online, caught up, stuck at status 2", RUN_T, |s| {
        let (_, v) = s.get_json(1001, "/cluster/info");
        s.node_state(1004) == "settled"
            && v["nodes"].as_array().is_some_and(|ns| {
                ns.iter()
                    .any(|n| n["id"] == 1004 && n["online"] == true && n["status"] == 2)
            })
    });
    sim
}

/// A default run on `sim`, held at 1002's `wait_ready`: the workspace, the run, and the
/// moment the attack begins.
fn in_the_gate_of_1002(sim: &Sim) -> (Ws, Streaming, i64) {
    let ws = Ws::new(sim, &Opts::default());
    let mut run = ws.spawn(&UP, &[]);
    at_wait_ready(&mut run, 1002);
    (ws, run, now_ms())
}

fn at_wait_ready(run: &mut Streaming, node: u64) {
    run.wait_for(&format!("{node}'s wait_ready"), RUN_T, |v| {
        v["type"] == "step_started"
            && v["data"]["node"] == node
            && v["data"]["step"] == "wait_ready"
    });
}

/// wkctl's (not the test's) stops of nodes other than `except` at or after `since`.
fn stops_after(sim: &Sim, since: i64, except: u64) -> Vec<(i64, u64)> {
    lifecycle(sim)
        .into_iter()
        .filter(|(t, v, n)| *t >= since && v == "stop" && *n != except)
        .map(|(t, _, n)| (t, n))
        .collect()
}

/// The first `rejoined` event of `node` at or after `since` (ts_ms).
fn rejoined_at(events: &[Value], node: u64, since: i64) -> Option<i64> {
    events
        .iter()
        .filter(|e| e["kind"] == "rejoined" && e["node"] == node)
        .filter_map(|e| e["ts_ms"].as_i64())
        .find(|t| *t >= since)
}

/// The stuck node restarts (stays down with `no-rejoin`) during 1002's gate: its carried
/// acceptance must not keep it "counted Joined" while it is down, so the gate must not
/// pass and no other node may be stopped.
#[test]
fn stuck_node_restarted_during_a_gate_blocks_the_next_stop() {
    let sim = stuck_cluster();
    let (_ws, mut run, t0) = in_the_gate_of_1002(&sim);
    ctl_ok(&sim, &["fault", "1004", "no-rejoin"]);
    ctl_ok(&sim, &["restart", "--version", OLD, "1004"]);
    let (code, err) = run.finish(RUN_T);
    assert_ne!(code, 0, "must not finish with 1004 never rejoining: {err}");
    let stops = stops_after(&sim, t0, 1004);
    assert!(stops.is_empty(), "no stop while 1004 is down: {stops:?}");
    assert!(
        rejoined_at(&sim.events(), 1004, t0).is_none(),
        "1004 stayed out"
    );
}

/// The stuck node restarts and comes back (still stuck) during 1002's gate: any stop
/// wkctl does after the restart must come after 1004's `rejoined`, and the rollout stays
/// safe once the test's own restart is over.
#[test]
fn stuck_node_bounced_during_a_gate_is_waited_for() {
    let sim = stuck_cluster();
    let (_ws, mut run, t0) = in_the_gate_of_1002(&sim);
    ctl_ok(&sim, &["fault", "1004", "slow-rejoin", "6"]);
    ctl_ok(&sim, &["bounce", "1004"]);
    let (code, err) = run.finish(RUN_T);
    let events = sim.events();
    let back = rejoined_at(&events, 1004, t0);
    for (t, n) in stops_after(&sim, t0, 1004) {
        assert!(
            back.is_some_and(|b| b <= t),
            "{n} stopped at {t} before 1004 rejoined ({back:?}): {err}"
        );
    }
    let stop_1004: Vec<_> = lifecycle(&sim)
        .into_iter()
        .filter(|(t, v, n)| *t >= t0 && v == "stop" && *n == 1004)
        .collect();
    if code == 0 {
        assert!(back.is_some(), "finished, so 1004 came back");
        assert_eq!(stop_1004.len(), 1, "1004 upgraded once: {stop_1004:?}");
    }
}

/// The stuck node loses the controller (`leader-lost`) during 1002's gate: its
/// /cluster/info answers `leader not found`, it is no longer "stuck but serving" on the
/// whole evidence. The carried acceptance must not let the gate pass: no further stop
/// while it stays stale.
#[test]
fn stuck_node_losing_the_controller_during_a_gate_blocks_the_next_stop() {
    let sim = stuck_cluster();
    let (_ws, mut run, t0) = in_the_gate_of_1002(&sim);
    lose_controller(&sim, "1004");
    assert!(lost_the_controller(&sim, 1004));
    let (code, err) = run.finish(RUN_T);
    assert!(lost_the_controller(&sim, 1004), "1004 stayed stale");
    assert_ne!(code, 0, "must not finish while 1004 is stale: {err}");
    let stops = stops_after(&sim, t0, 0);
    assert!(stops.is_empty(), "no stop while 1004 is stale: {stops:?}");
    down_intervals_never_overlap(&sim.events()).unwrap();
}

/// `accept_stuck_joining: false` with the stuck node: refused before any stop (the
/// policy is read for the focused polls too, not only for the pre-check).
#[test]
fn strict_policy_refuses_and_a_later_default_run_is_safe() {
    let sim = stuck_cluster();
    let strict = Ws::new(
        &sim,
        &Opts {
            policy: format!(
                "{}  accept_stuck_joining: false\n",
                crate::support::FAST_POLICY
            ),
            ..Opts::default()
        },
    );
    let t0 = now_ms();
    let r = strict.run(&UP, &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        stops_after(&sim, t0, 0).is_empty(),
        "refused before anything"
    );
    let ws = Ws::new(&sim, &Opts::default());
    let r = ws.run(&UP, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    rollout_was_safe(&sim.events()).unwrap();
}

/// Retries `leader-lost` until an election under way is over.
fn lose_controller(sim: &Sim, node: &str) {
    for _ in 0..100 {
        if sim.ctl(&["fault", node, "leader-lost"]).status.success() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{node} never lost the controller");
}

/// A node that really is joining (slow-join, no replicas yet) arrives during 1001's gate:
/// it is never "stuck by #529"; every stop wkctl makes must be on a settled cluster by
/// the simulator's truth (which counts only a really-stuck node as settled).
#[test]
#[ignore = "not a hole: setup unfinished (an unstarted 1004 blocks the pre-check as unreachable)"]
fn a_really_joining_node_during_a_gate_holds_the_next_stop() {
    let sim = Sim::start(SimOpts {
        nodes: 4,
        joined: Some(3),
        version: OLD.into(),
        extra_args: vec!["--replicas".into(), "4".into()],
        ..SimOpts::default()
    });
    let ws = Ws::new(&sim, &Opts::default());
    let mut run = ws.spawn(&UP, &[]);
    at_wait_ready(&mut run, 1001);
    ctl_ok(&sim, &["fault", "1004", "slow-join", "10"]);
    ctl_ok(&sim, &["start", "1004"]);
    let (code, err) = run.finish(RUN_T);
    let events = sim.events();
    rollout_was_safe(&events).unwrap_or_else(|e| panic!("{e}\n{err}"));
    let _ = code;
}

/// A stale node (bounced, `slow-rejoin`) that is also `leader-lost`: after `clear` it
/// finds the controller again; the sim's `rejoined` must only come when its config is
/// live, and wkctl must not stop a peer before that event.
#[test]
fn a_stale_peer_found_again_is_counted_back_only_when_caught_up() {
    let sim = stuck_cluster();
    let (_ws, mut run, t0) = in_the_gate_of_1002(&sim);
    ctl_ok(&sim, &["fault", "1003", "slow-catch-up", "5"]);
    lose_controller(&sim, "1003");
    std::thread::sleep(Duration::from_secs(2));
    ctl_ok(&sim, &["clear", "1003"]);
    let (code, err) = run.finish(RUN_T);
    let events = sim.events();
    down_intervals_never_overlap(&events).unwrap_or_else(|e| panic!("{e}\n{err}"));
    if code == 0 {
        rollout_was_safe(&events).unwrap_or_else(|e| panic!("{e}\n{err}"));
    }
    // Every stop after t0 happened on a cluster the simulator called settled.
    for e in events.iter().filter(|e| e["kind"] == "stop") {
        if e["ts_ms"].as_i64().is_some_and(|t| t >= t0) {
            assert_eq!(e["cluster_settled"], true, "{e}\n{err}");
        }
    }
}
