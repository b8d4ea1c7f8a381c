//! The holes the independent review found in the safety core (issue 11), each as the
//! situation that broke wkctl, checked on the simulator's event log and the state file.

use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use crate::harness::{Sim, SimOpts, down_intervals_never_overlap, rollout_was_safe};
use crate::matrix::{holdable_ws, park_or_unflag};
use crate::support::{
    FAST_POLICY, Opts, Streaming, UP_WITH_ROLLBACK, Ws, ctl_ok, lifecycle, node_state_of,
    varz_version,
};

const RUN_T: Duration = Duration::from_secs(90);
const UP: [&str; 5] = ["upgrade", "--to", "v2.1.2", "--yes", "--json"];
const RESUME: [&str; 4] = ["upgrade", "--resume", "--yes", "--json"];
const NEW: &str = "v2.1.2-20250120";
const OLD: &str = "v2.0.10-20241221";

fn values(run: &Streaming) -> Vec<Value> {
    run.values().into_iter().map(|(_, v)| v).collect()
}

fn count(sim: &Sim, verb: &str, node: u64) -> usize {
    lifecycle(sim)
        .iter()
        .filter(|(_, v, n)| v == verb && *n == node)
        .count()
}

fn signal(run: &Streaming, sig: Signal) {
    let pid = i32::try_from(run.child.id()).unwrap();
    kill(Pid::from_raw(pid), sig).unwrap();
}

/// Hole 3: after `--rollback-on-failure` the node is back on its old version. A resume
/// plans it again from the start (pre-stop check included) and upgrades it, instead of
/// skipping its stop and waiting `node_timeout` for a version that never comes.
#[test]
fn resume_after_a_rollback_upgrades_the_node_again_from_the_start() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::with_node_timeout(&sim, "4s");
    ctl_ok(&sim, &["fault", "1002", "wrong-version"]);
    let mut run = ws.spawn(&UP_WITH_ROLLBACK, &[]);
    let (code, err) = run.finish(RUN_T);
    assert_eq!(code, 1, "{err}");
    assert_eq!(node_state_of(&ws, 1002)["status"], "rolled_back");
    assert_eq!(varz_version(&sim, 1002, None), OLD);
    let n = node_state_of(&ws, 1002);
    assert!(
        n["done"].as_array().unwrap().is_empty(),
        "a rolled-back node keeps no finished steps: {n}"
    );
    // Fix the cause, then resume.
    ctl_ok(&sim, &["clear", "1002"]);
    let stops_before = count(&sim, "stop", 1002);
    let r = ws.run(&RESUME, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let lines = r.lines();
    let steps: Vec<&str> = lines
        .iter()
        .filter(|l| l["type"] == "step_started" && l["data"]["node"] == 1002)
        .filter_map(|l| l["data"]["step"].as_str())
        .collect();
    assert_eq!(
        steps.first().copied(),
        Some("check_settled"),
        "the pre-stop check runs again first: {steps:?}"
    );
    assert!(steps.contains(&"stop"), "{steps:?}");
    assert_eq!(count(&sim, "stop", 1002), stops_before + 1);
    assert_eq!(varz_version(&sim, 1002, None), NEW);
    assert_eq!(varz_version(&sim, 1003, None), NEW);
    rollout_was_safe(&sim.events()).unwrap();
}

/// Hole 5: a soak that failed leaves the node unverified. The resume re-gates it (a new
/// process on the target, A–G held) before anything else, then soaks it.
#[test]
fn resume_after_a_failed_soak_re_gates_the_node() {
    let sim = Sim::start(SimOpts::default());
    let policy = FAST_POLICY.replace("soak: 300ms", "soak: 3s");
    let ws = Ws::new(
        &sim,
        &Opts {
            policy,
            ..Opts::default()
        },
    );
    let mut run = ws.spawn(&UP, &[]);
    run.wait_for("soak of 1001", RUN_T, |v| {
        v["type"] == "step_started" && v["data"]["node"] == 1001 && v["data"]["step"] == "soak"
    });
    ctl_ok(&sim, &["stop", "1003"]);
    let (code, err) = run.finish(RUN_T);
    assert_eq!(code, 1, "{err}");
    let n = node_state_of(&ws, 1001);
    assert_eq!(n["status"], "failed", "{n}");
    assert_eq!(count(&sim, "stop", 1002), 0, "1002 untouched");
    ctl_ok(&sim, &["start", "1003"]);
    sim.wait_settled(1003, RUN_T);
    let r = ws.run(&RESUME, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let lines = r.lines();
    let first_1001: Vec<&str> = lines
        .iter()
        .filter(|l| l["type"] == "step_started" && l["data"]["node"] == 1001)
        .filter_map(|l| l["data"]["step"].as_str())
        .collect();
    assert_eq!(
        first_1001,
        ["wait_ready", "soak"],
        "re-gated and soaked, never restarted"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "node_ready" && l["data"]["node"] == 1001),
        "{}",
        r.all()
    );
    assert_eq!(count(&sim, "stop", 1001), 1, "1001 was not restarted");
    // The test stops 1003 itself (during 1001's soak, after 1001 rejoined): only the
    // strict down-interval check applies, not "every stop settled" to its own stop.
    down_intervals_never_overlap(&sim.events()).unwrap();
}

/// Hole 5 (the other side): a node the earlier run upgraded that no longer runs the
/// target fails its re-verification, and nothing is touched after it.
#[test]
fn resume_re_verification_of_an_upgraded_node_can_fail() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::with_node_timeout(&sim, "3s");
    let mut run = ws.spawn(&UP, &[]);
    run.wait_for("pre-stop of 1002", RUN_T, |v| {
        v["type"] == "step_started"
            && v["data"]["node"] == 1002
            && v["data"]["step"] == "check_settled"
    });
    run.kill9();
    assert_eq!(node_state_of(&ws, 1001)["status"], "ready");
    // Someone put the old build back on 1001 meanwhile.
    ctl_ok(&sim, &["restart", "1001", "--version", OLD]);
    sim.wait_settled(1001, RUN_T);
    let r = ws.run(&RESUME, &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    let failed = r
        .lines()
        .into_iter()
        .find(|l| l["type"] == "node_failed")
        .unwrap_or_else(|| panic!("no node_failed:\n{}", r.all()));
    assert_eq!(failed["data"]["node"], 1001, "{failed}");
    assert_eq!(failed["data"]["step"], "verify", "{failed}");
    assert!(
        failed["data"]["signal"]
            .as_str()
            .is_some_and(|s| s.starts_with('B')),
        "{failed}"
    );
    assert_eq!(count(&sim, "stop", 1002), 0, "1002 untouched");
    assert_eq!(count(&sim, "stop", 1003), 0, "1003 untouched");
    // The test restarts 1001 itself (the old build put back): the strict down-interval
    // check only; that restart's stop is not wkctl's.
    down_intervals_never_overlap(&sim.events()).unwrap();
}

/// Hole 6: an interrupted `start` is not run again when the node already runs a new
/// process on the target; an interrupted `stop` is not run again when the node is down.
#[test]
fn an_interrupted_start_is_observed_before_it_is_run_again() {
    let sim = Sim::start(SimOpts::default());
    // The killed run's `start` is held (it parks and never lands), so no orphaned
    // `wksim ctl start` can arrive after the count below (CI once saw one land late);
    // the test then runs the start itself, as one that took effect before the kill.
    let ws = holdable_ws(&sim);
    std::fs::write(sim.state_dir().join("hold-start-1002"), "").unwrap();
    let mut run = ws.spawn(&UP, &[]);
    run.wait_for("1002 starting", RUN_T, |v| {
        v["type"] == "step_started" && v["data"]["node"] == 1002 && v["data"]["step"] == "start"
    });
    run.kill9();
    park_or_unflag(&sim, "hold-start-1002");
    assert_eq!(
        count(&sim, "start", 1002),
        0,
        "the orphaned start never lands"
    );
    ctl_ok(&sim, &["start", "1002", "--version", NEW]);
    sim.wait_until("1002 answers on the target", RUN_T, |s| {
        varz_version(s, 1002, None) == NEW
    });
    let starts = count(&sim, "start", 1002);
    assert_eq!(starts, 1);
    let r = ws.run(&RESUME, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let skipped = r
        .lines()
        .into_iter()
        .find(|l| l["type"] == "step_skipped" && l["data"]["node"] == 1002)
        .unwrap_or_else(|| panic!("no step_skipped:\n{}", r.all()));
    assert_eq!(skipped["data"]["step"], "start");
    assert_eq!(count(&sim, "start", 1002), starts, "no second start");
    rollout_was_safe(&sim.events()).unwrap();
}

#[test]
fn an_interrupted_stop_of_a_node_already_down_is_not_run_again() {
    let sim = Sim::start(SimOpts::default());
    let pb = include_str!("../../playbooks/sim.yaml")
        .replace("name: sim", "name: sim-slow-stop")
        // A stop that hangs (and does nothing: the orphan left by `kill -9` must not
        // stop the node later behind the resumed run's back).
        .replace(
            "  stop: \"{{wksim}} ctl --state-dir {{state_dir}} stop {{node.id}}\"",
            "  stop: \"if [ -e {{state_dir}}/hung-once ]; then {{wksim}} ctl --state-dir {{state_dir}} stop {{node.id}}; else touch {{state_dir}}/hung-once; sleep 30; fi\"",
        );
    let ws = Ws::new(&sim, &Opts::default());
    std::fs::write(ws.dir.path().join("pb.yaml"), pb).unwrap();
    let m = std::fs::read_to_string(&ws.manifest)
        .unwrap()
        .replace("playbook: sim", "playbook: ./pb.yaml");
    std::fs::write(&ws.manifest, m).unwrap();
    let mut run = ws.spawn(&UP, &[]);
    run.wait_for("1001 stopping", RUN_T, |v| {
        v["type"] == "step_started" && v["data"]["node"] == 1001 && v["data"]["step"] == "stop"
    });
    // The hanging stop has begun (its marker is there), then wkctl is killed.
    let marker = sim.state_dir().join("hung-once");
    let t = std::time::Instant::now();
    while !marker.exists() && t.elapsed() < RUN_T {
        std::thread::sleep(Duration::from_millis(20));
    }
    run.kill9();
    // The node went down meanwhile (as the step would have made it).
    ctl_ok(&sim, &["stop", "1001"]);
    let stops = count(&sim, "stop", 1001);
    let t = std::time::Instant::now();
    let r = ws.run(&RESUME, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let skipped = r
        .lines()
        .into_iter()
        .find(|l| l["type"] == "step_skipped" && l["data"]["node"] == 1001)
        .unwrap_or_else(|| panic!("no step_skipped:\n{}", r.all()));
    assert_eq!(skipped["data"]["step"], "stop");
    // The hanging stop (30 s) was not run again.
    assert!(t.elapsed() < Duration::from_secs(25), "{:?}", t.elapsed());
    assert_eq!(count(&sim, "stop", 1001), stops, "no second stop");
    // The test's own stop of 1001 stands in for the hanging step's, after wkctl's
    // pre-stop check: both invariants hold.
    rollout_was_safe(&sim.events()).unwrap();
}

/// Hole 8: SIGTERM (a cancelled CI job) and SIGHUP (a dropped ssh session) behave like
/// the first Ctrl-C: the node being worked on is brought back and gated, state is saved,
/// and the exit is non-zero.
#[test]
fn sigterm_and_sighup_behave_like_the_first_ctrl_c() {
    for sig in [Signal::SIGTERM, Signal::SIGHUP] {
        let sim = Sim::start(SimOpts::default());
        let ws = Ws::new(&sim, &Opts::default());
        let mut run = ws.spawn(&UP, &[]);
        run.wait_for("1002 stopping", RUN_T, |v| {
            v["type"] == "step_started" && v["data"]["node"] == 1002 && v["data"]["step"] == "stop"
        });
        signal(&run, sig);
        let (code, err) = run.finish(RUN_T);
        assert_eq!(code, 130, "{sig}: {err}");
        let lines = values(&run);
        assert!(
            lines
                .iter()
                .any(|l| l["type"] == "node_ready" && l["data"]["node"] == 1002),
            "{sig}: the node that was going down came back and was gated"
        );
        assert_eq!(ws.state()["status"], "interrupted", "{sig}");
        assert_eq!(count(&sim, "stop", 1003), 0, "{sig}");
        rollout_was_safe(&sim.events()).unwrap();
    }
}

/// Hole 9: `--discard` moves a corrupt state file aside (its own error points there).
#[test]
fn discard_moves_a_corrupt_state_aside() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    std::fs::create_dir_all(ws.state_file().parent().unwrap()).unwrap();
    std::fs::write(ws.state_file(), "{ not json").unwrap();
    let r = ws.run(&["upgrade", "--to", "v2.1.2", "--yes"], &[]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.all().contains("--discard"), "{}", r.all());
    let r = ws.run(&["upgrade", "--discard"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.all().contains("unreadable state file"), "{}", r.all());
    assert!(!ws.state_file().exists());
    let kept: Vec<_> = std::fs::read_dir(ws.state_file().parent().unwrap())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("state-"))
        .collect();
    assert_eq!(kept.len(), 1, "a copy is kept");
    assert_eq!(
        std::fs::read_to_string(kept[0].path()).unwrap(),
        "{ not json"
    );
    let r = ws.run(&["upgrade", "--discard"], &[]);
    assert_eq!(r.code, 0);
    assert!(r.all().contains("no unfinished run"), "{}", r.all());
}

fn dev_ws(sim: &Sim, node_timeout: &str) -> Ws {
    Ws::with_node_timeout(sim, node_timeout)
}

const DEV: &str = "v2.1.3-20250210-dev";
const UP_DEV: [&str; 5] = ["upgrade", "--to", DEV, "--yes", "--json"];

fn commit_of(sim: &Sim, node: u64) -> String {
    sim.get_json(node, "/varz").1["commit"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Hole 2: a peer cut off from the controller (its `/health` still 200, the controller
/// marks it offline) while another node is down is a second node down: the run stops
/// within 3 polls (+1 s), names the peer and says why, long before `node_timeout`.
#[test]
fn a_peer_partitioned_during_a_gate_stops_the_run_within_three_polls() {
    let sim = Sim::start(SimOpts::default());
    let policy = FAST_POLICY
        .replace("node_timeout: 8s", "node_timeout: 60s")
        .replace("stable_for: 400ms", "stable_for: 30s");
    let ws = Ws::new(
        &sim,
        &Opts {
            policy,
            ..Opts::default()
        },
    );
    let mut run = ws.spawn(&UP, &[]);
    run.wait_for("gate of 1001", RUN_T, |v| {
        v["type"] == "step_started"
            && v["data"]["node"] == 1001
            && v["data"]["step"] == "wait_ready"
    });
    let fault_at = std::time::Instant::now();
    let fault_ms = crate::support::now_ms();
    ctl_ok(&sim, &["fault", "1003", "partition"]);
    let (code, err) = run.finish(RUN_T);
    let took = fault_at.elapsed();
    assert_eq!(code, 1, "{err}");
    let lines = values(&run);
    let f = lines
        .iter()
        .find(|l| l["type"] == "node_failed")
        .expect("node_failed");
    let reason = f["data"]["reason"].as_str().unwrap_or_default().to_string();
    assert!(
        reason.contains("node 1003") && (reason.contains("offline") || reason.contains("cut off")),
        "names the peer and why: {reason}"
    );
    // The controller marks it offline after its ≈ 6 s window (scaled ×20 here), then
    // 3 polls of 100 ms: well under a second. The bound is generous for a loaded shared
    // machine and still far from the 30 s `stable_for` and the 60 s `node_timeout`.
    assert!(took < Duration::from_secs(10), "stopped after {took:?}");
    assert_eq!(count(&sim, "stop", 1002), 0, "nothing more touched");
    // The test cuts 1003 off itself while 1001 is down: checked up to that moment.
    crate::harness::safe_before(&sim.events(), fault_ms).unwrap();
}

/// Hole 4: a `-dev` target reports the release it builds on. The new build is proven by
/// its commit; a re-run restarts nothing; an old image that came back never passes.
#[test]
fn a_dev_target_is_proven_by_its_commit_and_a_rerun_restarts_nothing() {
    let sim = Sim::start(SimOpts {
        version: NEW.into(),
        ..SimOpts::default()
    });
    let ws = dev_ws(&sim, "8s");
    let old_commit = commit_of(&sim, 1001);
    let r = ws.run(&UP_DEV, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    for id in [1001, 1002, 1003] {
        assert_eq!(
            varz_version(&sim, id, None),
            NEW,
            "a dev image reports {NEW}"
        );
        assert_ne!(
            commit_of(&sim, id),
            old_commit,
            "node {id} runs the new build"
        );
    }
    let stops = lifecycle(&sim).len();
    let again = ws.run(&UP_DEV, &[]);
    assert_eq!(again.code, 0, "{}", again.all());
    assert_eq!(lifecycle(&sim).len(), stops, "the re-run restarted nothing");
    rollout_was_safe(&sim.events()).unwrap();
}

#[test]
fn a_dev_target_never_passes_when_the_old_image_comes_back() {
    let sim = Sim::start(SimOpts {
        version: NEW.into(),
        ..SimOpts::default()
    });
    let ws = dev_ws(&sim, "3s");
    ctl_ok(&sim, &["fault", "1002", "wrong-version"]);
    let r = ws.run(&UP_DEV, &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    let f = r
        .lines()
        .into_iter()
        .find(|l| l["type"] == "node_failed")
        .expect("node_failed");
    assert_eq!(f["data"]["node"], 1002);
    assert!(
        f["data"]["signal"]
            .as_str()
            .is_some_and(|s| s.starts_with('B')),
        "{f}"
    );
    assert_eq!(count(&sim, "stop", 1003), 0);
    rollout_was_safe(&sim.events()).unwrap();
}

#[test]
fn a_dev_target_can_be_resumed() {
    let sim = Sim::start(SimOpts {
        version: NEW.into(),
        ..SimOpts::default()
    });
    let ws = dev_ws(&sim, "8s");
    let mut run = ws.spawn(&UP_DEV, &[]);
    run.wait_for("1002 starting", RUN_T, |v| {
        v["type"] == "step_started" && v["data"]["node"] == 1002 && v["data"]["step"] == "start"
    });
    run.kill9();
    let r = ws.run(&RESUME, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(
        count(&sim, "stop", 1001),
        1,
        "1001 re-verified, not restarted"
    );
    assert_eq!(count(&sim, "stop", 1003), 1);
    rollout_was_safe(&sim.events()).unwrap();
}

/// Upstream #529 (open): a seed-joined node stays at status 2 (Joining) forever while it
/// serves. With `policy.accept_stuck_joining` (the default) the evidence-backed state
/// passes the pre-stop check and the gate; without it, the run refuses. The state is
/// reached as upstream reaches it: 1004 joins a 3-node cluster through the seed, receives
/// a replica of every slot, and the controller never proposes it Joined (the 4-node
/// seed-join setup of `sim::safety`).
#[test]
fn a_node_stuck_in_joining_by_529_is_accepted_only_on_evidence_and_by_policy() {
    // #529 exists from v2.1.1 on (handle_node_joining.go); a seed-joined node is stuck.
    // Four replicas per slot: 1004 receives a replica of every slot when it joins, so the
    // slots are balanced and upstream has nothing to migrate (#529's condition).
    let sim = crate::attack_529::stuck_cluster();
    let up = ["upgrade", "--to", "v2.2.5", "--yes", "--json"];
    let strict = Ws::new(
        &sim,
        &Opts {
            policy: format!("{FAST_POLICY}  accept_stuck_joining: false\n"),
            ..Opts::default()
        },
    );
    let r = strict.run(&up, &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert_eq!(count(&sim, "stop", 1001), 0, "refused before anything");
    let ws = Ws::new(&sim, &Opts::default());
    let r = ws.run(&up, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.all().contains("stuck_joining_529"), "named: {}", r.all());
    rollout_was_safe(&sim.events()).unwrap();
}
