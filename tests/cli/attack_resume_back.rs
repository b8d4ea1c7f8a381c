//! Attacks on two safety changes: `Runner::back_on_target` (a node whose stop began in an
//! earlier run, observed answering with a new process on the target, skips its owed
//! stop/install/start and goes to its gate) and `Context::ensure_no_live_run` (a live run's
//! per-user cluster lock is named first from any directory). The real `wkctl` against the
//! real `wksim`, judged on the simulator's event log.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{Sim, SimOpts, every_stop_settled, rollout_was_safe};
use crate::matrix::touched_after;
use crate::support::{FAST_POLICY, Opts, Run, Streaming, Ws, ctl_ok, lifecycle, now_ms};

pub(crate) const RUN_T: Duration = Duration::from_secs(90);
const OLD: &str = "v2.0.10-20241221";
pub(crate) const NEW: &str = "v2.1.2-20250120";
const OTHER: &str = "v2.1.3-20250210";
const DEV: &str = "v2.1.3-20250210-dev";
pub(crate) const UP: [&str; 5] = ["upgrade", "--to", "v2.1.2", "--yes", "--json"];
pub(crate) const RESUME: [&str; 4] = ["upgrade", "--resume", "--yes", "--json"];
const RESTART: [&str; 3] = ["restart", "--yes", "--json"];
const RESTART_RESUME: [&str; 4] = ["restart", "--resume", "--yes", "--json"];
use crate::attack_refactor::held;

pub(crate) const LOCKED: &str = "another wkctl run holds the cluster lock";

/// A workspace whose `stop`, `install` and `start` can be held, with `node_timeout` and
/// `step_timeout`.
pub(crate) fn held_ws(sim: &Sim, node_timeout: &str, step_timeout: &str) -> Ws {
    let policy = FAST_POLICY
        .replace("node_timeout: 8s", &format!("node_timeout: {node_timeout}"))
        .replace(
            "step_timeout: 20s",
            &format!("step_timeout: {step_timeout}"),
        );
    let ws = Ws::new(
        sim,
        &Opts {
            policy,
            ..Opts::default()
        },
    );
    let stop = "{{wksim}} ctl --state-dir {{state_dir}} stop {{node.id}}";
    let install = "echo simulated pull of {{to}}";
    let start = "{{wksim}} ctl --state-dir {{state_dir}} start {{node.id}} --version {{to}}";
    let pb = include_str!("../../playbooks/sim.yaml")
        .replace("name: sim", "name: sim-held")
        .replace(
            &format!("  stop: \"{stop}\""),
            &format!("  stop: {}", held(sim, "stop", 40, stop)),
        )
        .replace(
            &format!("  install: {install}"),
            &format!("  install: {}", held(sim, "install", 40, install)),
        )
        .replace(
            &format!("  start: \"{start}\""),
            &format!("  start: {}", held(sim, "start", 40, start)),
        );
    assert!(
        pb.contains("hold-stop-") && pb.contains("hold-install-") && pb.contains("hold-start-"),
        "{pb}"
    );
    std::fs::write(ws.dir.path().join("pb.yaml"), pb).unwrap();
    let m = std::fs::read_to_string(&ws.manifest)
        .unwrap()
        .replace("playbook: sim", "playbook: ./pb.yaml");
    std::fs::write(&ws.manifest, m).unwrap();
    ws
}

pub(crate) fn touch(sim: &Sim, name: &str) {
    std::fs::write(sim.state_dir().join(name), "").unwrap();
}

pub(crate) fn parked(sim: &Sim, flag: &str) {
    let path = sim.state_dir().join(flag);
    let t = Instant::now();
    while path.exists() {
        assert!(t.elapsed() < RUN_T, "the held step never began ({flag})");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn count(sim: &Sim, verb: &str, node: u64) -> usize {
    lifecycle(sim)
        .iter()
        .filter(|(_, v, n)| v == verb && *n == node)
        .count()
}

fn verbs_of(sim: &Sim, since: i64, node: u64) -> Vec<String> {
    touched_after(sim, since)
        .into_iter()
        .filter(|(_, n)| *n == node)
        .map(|(v, _)| v)
        .collect()
}

fn events_after(sim: &Sim, since: i64) -> Vec<Value> {
    sim.events()
        .into_iter()
        .filter(|e| e["ts_ms"].as_i64().unwrap_or(0) >= since)
        .collect()
}

fn skipped(lines: &[Value], node: u64) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l["type"] == "step_skipped" && l["data"]["node"] == node)
        .map(|l| l["data"]["step"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn replanned(lines: &[Value], node: u64) -> bool {
    lines.iter().any(|l| {
        l["type"] == "waiting"
            && l["data"]["node"] == node
            && l["data"]["what"]
                .as_str()
                .is_some_and(|w| w.contains("planning it again from the start"))
    })
}

/// `args` (an upgrade or restart) spawned, killed with -9 while 1002's `step` is held;
/// the orphaned step is then released (`go`) or cancelled.
pub(crate) fn killed_in(sim: &Sim, ws: &Ws, args: &[&str], step: &str, go: bool) {
    let flag = format!("hold-{step}-1002");
    touch(sim, &flag);
    let mut run = ws.spawn(args, &[]);
    run.wait_for(&format!("1002's {step}"), RUN_T, |v| {
        v["type"] == "step_started" && v["data"]["node"] == 1002 && v["data"]["step"] == step
    });
    parked(sim, &flag);
    run.kill9();
    let release = if go {
        format!("go-{step}")
    } else {
        format!("cancel-{step}")
    };
    touch(sim, &release);
    if go && step == "stop" {
        sim.wait_until("the orphaned stop landed", RUN_T, |s| {
            s.node_state(1002) == "stopped"
        });
    }
}

/// Every node ends on `version`, the whole log was safe.
pub(crate) fn all_on(sim: &Sim, version: &str) {
    for id in [1001, 1002, 1003] {
        assert_eq!(
            crate::support::varz_version(sim, id, None),
            version,
            "node {id}"
        );
    }
    rollout_was_safe(&sim.events()).unwrap();
}

/// A resume that must plan 1002 again (pre-stop check first) and stop it itself, once,
/// with the cluster settled; nothing skipped for 1002.
fn replanned_and_done_once(sim: &Sim, r: &Run, t0: i64) {
    assert_eq!(r.code, 0, "{}", r.all());
    let lines = r.lines();
    assert_eq!(
        skipped(&lines, 1002),
        Vec::<String>::new(),
        "1002 does not run the new process on the target: nothing of it may be skipped\n{}",
        r.all()
    );
    assert!(replanned(&lines, 1002), "{}", r.all());
    assert_eq!(verbs_of(sim, t0, 1002), ["stop", "start"], "{}", r.all());
    assert_eq!(verbs_of(sim, t0, 1001), Vec::<String>::new());
    assert_eq!(verbs_of(sim, t0, 1003), ["stop", "start"]);
    every_stop_settled(&events_after(sim, t0)).unwrap();
}

/// Killed in 1002's `stop`; the stop landed and the operator brought 1002 back by hand
/// on its OLD version (rolled the image back). A new process, not on the target: the
/// resume must not skip its steps; it plans 1002 again (pre-stop check) and upgrades it.
#[test]
fn back_by_hand_on_the_old_version_is_planned_again_not_skipped() {
    let sim = Sim::start(SimOpts::default());
    let ws = held_ws(&sim, "30s", "3s");
    killed_in(&sim, &ws, &UP, "stop", true);
    ctl_ok(&sim, &["start", "1002", "--version", OLD]);
    sim.wait_settled(1002, RUN_T);
    let t0 = now_ms();
    let r = ws.run(&RESUME, &[]);
    replanned_and_done_once(&sim, &r, t0);
    all_on(&sim, NEW);
}

/// As above, but the old version comes back with slow leader migration, so the cluster is
/// unsettled when the resume begins: the re-planned pre-stop check must wait for it; the
/// simulator must never see a stop while the cluster is unsettled.
#[test]
fn back_by_hand_on_the_old_version_while_leaders_migrate_is_not_stopped_unsettled() {
    let sim = Sim::start(SimOpts::default());
    let ws = held_ws(&sim, "40s", "3s");
    killed_in(&sim, &ws, &UP, "stop", true);
    ctl_ok(&sim, &["fault", "1002", "slow-migrate", "120"]);
    let since = now_ms();
    ctl_ok(&sim, &["start", "1002", "--version", OLD]);
    sim.wait_until("1002's leaders migrating back", RUN_T, |s| {
        s.events().iter().any(|e| {
            e["kind"] == "slots"
                && e["node"] == 1002
                && e["to"] == "migrating"
                && e["ts_ms"].as_i64().unwrap_or(0) >= since
        })
    });
    let t0 = now_ms();
    let r = ws.run(&RESUME, &[]);
    every_stop_settled(&events_after(&sim, t0)).unwrap_or_else(|e| panic!("{e}\n{}", r.all()));
    replanned_and_done_once(&sim, &r, t0);
    all_on(&sim, NEW);
}

/// Killed in 1002's `stop`; the operator brought 1002 back on a different, non-target
/// version (v2.1.3): it must not be taken as upgraded; 1002 is planned again.
#[test]
fn back_by_hand_on_another_version_is_not_taken_as_upgraded() {
    let sim = Sim::start(SimOpts::default());
    let ws = held_ws(&sim, "30s", "3s");
    killed_in(&sim, &ws, &UP, "stop", true);
    ctl_ok(&sim, &["start", "1002", "--version", OTHER]);
    sim.wait_settled(1002, RUN_T);
    let t0 = now_ms();
    let r = ws.run(&RESUME, &[]);
    let lines = r.lines();
    assert_eq!(skipped(&lines, 1002), Vec::<String>::new(), "{}", r.all());
    assert!(
        !lines
            .iter()
            .any(|l| l["type"] == "node_ready" && l["data"]["node"] == 1002)
            || crate::support::varz_version(&sim, 1002, None) == NEW,
        "1002 on {OTHER} passed its gate for {NEW}: {}",
        r.all()
    );
    every_stop_settled(&events_after(&sim, t0)).unwrap();
    rollout_was_safe(&sim.events()).unwrap();
    if r.code == 0 {
        assert!(replanned(&lines, 1002), "{}", r.all());
        assert_eq!(verbs_of(&sim, t0, 1002), ["stop", "start"]);
        all_on(&sim, NEW);
    } else {
        // Refusing is safe too, as long as nothing else was touched.
        assert!(touched_after(&sim, t0).is_empty(), "{}", r.all());
    }
}

/// Killed in 1002's `stop`; brought back by hand on the target but it never rejoins
/// (`no-rejoin`): the skip is taken, yet the gate must fail, the run stop, 1003 untouched.
#[test]
fn back_on_the_target_but_never_rejoining_fails_the_gate_and_touches_no_one_else() {
    let sim = Sim::start(SimOpts::default());
    let ws = held_ws(&sim, "4s", "3s");
    killed_in(&sim, &ws, &UP, "stop", true);
    ctl_ok(&sim, &["fault", "1002", "no-rejoin"]);
    ctl_ok(&sim, &["start", "1002", "--version", NEW]);
    sim.wait_until("1002 answers", RUN_T, |s| {
        crate::support::varz_version(s, 1002, None) == NEW
    });
    let t0 = now_ms();
    let r = ws.run(&RESUME, &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    let lines = r.lines();
    assert!(
        !lines
            .iter()
            .any(|l| l["type"] == "node_ready" && l["data"]["node"] == 1002),
        "{}",
        r.all()
    );
    let failed = lines
        .iter()
        .find(|l| l["type"] == "node_failed")
        .unwrap_or_else(|| panic!("node_failed: {}", r.all()));
    assert_eq!(failed["data"]["node"], 1002, "{failed}");
    assert_eq!(count(&sim, "stop", 1003), 0, "1003 touched: {}", r.all());
    assert!(
        verbs_of(&sim, t0, 1003).is_empty() && verbs_of(&sim, t0, 1001).is_empty(),
        "{:?}",
        touched_after(&sim, t0)
    );
    assert_eq!(ws.state()["status"], "failed", "{}", r.all());
}

/// As above with a crash loop: whichever way the one observation of `back_on_target`
/// lands (up or crashed), the gate fails and no other node is touched.
#[test]
fn back_on_the_target_then_crash_looping_fails_the_gate() {
    let sim = Sim::start(SimOpts::default());
    let ws = held_ws(&sim, "5s", "3s");
    killed_in(&sim, &ws, &UP, "stop", true);
    ctl_ok(&sim, &["fault", "1002", "crash-loop"]);
    ctl_ok(&sim, &["start", "1002", "--version", NEW]);
    let t0 = now_ms();
    let r = ws.run(&RESUME, &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    let lines = r.lines();
    assert!(
        !lines
            .iter()
            .any(|l| l["type"] == "node_ready" && l["data"]["node"] == 1002),
        "a crash-looping node passed its gate: {}",
        r.all()
    );
    assert_eq!(count(&sim, "stop", 1003), 0, "{}", r.all());
    assert!(verbs_of(&sim, t0, 1003).is_empty());
    assert!(verbs_of(&sim, t0, 1001).is_empty());
}

/// Rolling restart killed in 1002's `stop`; the stop landed and the operator started 1002
/// again by hand (a new process, same version): it may skip, and is not restarted again.
#[test]
fn restart_resume_skips_a_node_restarted_by_hand() {
    let sim = Sim::start(SimOpts::default());
    let ws = held_ws(&sim, "30s", "3s");
    killed_in(&sim, &ws, &RESTART, "stop", true);
    ctl_ok(&sim, &["start", "1002", "--version", OLD]);
    sim.wait_settled(1002, RUN_T);
    let t0 = now_ms();
    let r = ws.run(&RESTART_RESUME, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let lines = r.lines();
    assert!(
        skipped(&lines, 1002).contains(&"stop".to_string()),
        "{}",
        r.all()
    );
    assert_eq!(
        verbs_of(&sim, t0, 1002),
        Vec::<String>::new(),
        "{}",
        r.all()
    );
    assert_eq!(verbs_of(&sim, t0, 1003), ["stop", "start"]);
    for id in [1001, 1002, 1003] {
        assert_eq!(count(&sim, "start", id), 1, "node {id} restarted once");
    }
    all_on(&sim, OLD);
}

/// Rolling restart killed in 1002's `stop`, the stop never landed: the SAME old process
/// still answers. It must not be skipped: the resume restarts it itself, once, settled.
#[test]
fn restart_resume_restarts_a_node_whose_stop_never_landed() {
    let sim = Sim::start(SimOpts::default());
    let ws = held_ws(&sim, "30s", "3s");
    killed_in(&sim, &ws, &RESTART, "stop", false);
    assert_eq!(count(&sim, "stop", 1002), 0, "the stop never landed");
    let t0 = now_ms();
    let r = ws.run(&RESTART_RESUME, &[]);
    replanned_and_done_once(&sim, &r, t0);
    for id in [1001, 1002, 1003] {
        assert_eq!(count(&sim, "stop", id), 1, "node {id} restarted once");
    }
    all_on(&sim, OLD);
}

/// Rolling restart killed in 1002's `stop`, the stop never landed and no new process is
/// there, but the node was up only briefly before the kill was noticed: the resume runs
/// at once (no delay). Same as above without the wait: the old process must not pass
/// `restarted_since` merely because time passed.
#[test]
fn restart_resume_at_once_still_restarts_the_old_process() {
    let sim = Sim::start(SimOpts::default());
    let ws = held_ws(&sim, "30s", "1s");
    killed_in(&sim, &ws, &RESTART, "stop", false);
    let t0 = now_ms();
    let r = ws.run(&RESTART_RESUME, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(
        skipped(&r.lines(), 1002),
        Vec::<String>::new(),
        "{}",
        r.all()
    );
    assert_eq!(verbs_of(&sim, t0, 1002), ["stop", "start"]);
    every_stop_settled(&events_after(&sim, t0)).unwrap();
    all_on(&sim, OLD);
}

/// Killed in 1002's `install` (its stop finished, the node down); the operator brought it
/// back by hand on the target: install and start are skipped, the gate passes, 1002 is not
/// touched again, 1003 once after it.
#[test]
fn killed_in_install_back_on_the_target_goes_to_its_gate() {
    let sim = Sim::start(SimOpts::default());
    let ws = held_ws(&sim, "30s", "3s");
    killed_in(&sim, &ws, &UP, "install", false);
    assert_eq!(sim.node_state(1002), "stopped");
    ctl_ok(&sim, &["start", "1002", "--version", NEW]);
    sim.wait_settled(1002, RUN_T);
    let t0 = now_ms();
    let r = ws.run(&RESUME, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let s = skipped(&r.lines(), 1002);
    assert!(
        s.contains(&"install".to_string()) && s.contains(&"start".to_string()),
        "{s:?}: {}",
        r.all()
    );
    assert!(!s.contains(&"stop".to_string()), "the stop had finished");
    assert_eq!(verbs_of(&sim, t0, 1002), Vec::<String>::new());
    assert_eq!(verbs_of(&sim, t0, 1003), ["stop", "start"]);
    all_on(&sim, NEW);
}

/// Killed in 1002's `install`; the operator brought it back on the OLD version: planned
/// again (pre-stop check), stopped once more while settled, upgraded.
#[test]
fn killed_in_install_back_on_the_old_version_is_planned_again() {
    let sim = Sim::start(SimOpts::default());
    let ws = held_ws(&sim, "30s", "3s");
    killed_in(&sim, &ws, &UP, "install", false);
    ctl_ok(&sim, &["start", "1002", "--version", OLD]);
    sim.wait_settled(1002, RUN_T);
    let t0 = now_ms();
    let r = ws.run(&RESUME, &[]);
    replanned_and_done_once(&sim, &r, t0);
    all_on(&sim, NEW);
}

/// Killed in 1002's `start` before it ran (held, then cancelled: the node is down); the
/// operator started it on the target: the start is skipped, the gate passes.
#[test]
fn killed_before_start_back_on_the_target_goes_to_its_gate() {
    let sim = Sim::start(SimOpts::default());
    let ws = held_ws(&sim, "30s", "3s");
    killed_in(&sim, &ws, &UP, "start", false);
    assert_eq!(sim.node_state(1002), "stopped");
    ctl_ok(&sim, &["start", "1002", "--version", NEW]);
    sim.wait_settled(1002, RUN_T);
    let t0 = now_ms();
    let r = ws.run(&RESUME, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(skipped(&r.lines(), 1002).contains(&"start".to_string()));
    assert_eq!(verbs_of(&sim, t0, 1002), Vec::<String>::new());
    all_on(&sim, NEW);
}

fn commit_of(sim: &Sim, node: u64) -> String {
    sim.get_json(node, "/varz").1["commit"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

const UP_DEV: [&str; 5] = ["upgrade", "--to", DEV, "--yes", "--json"];

/// A `-dev` target reports the release it builds on (here: the cluster's own version).
/// Killed in 1002's stop; the operator brought back the OLD image (same commit, same
/// reported version, a new process): it must not skip; only its commit can tell.
#[test]
fn dev_target_old_image_back_by_hand_is_not_skipped() {
    let sim = Sim::start(SimOpts {
        version: NEW.into(),
        ..SimOpts::default()
    });
    let ws = held_ws(&sim, "30s", "3s");
    let old_commit = commit_of(&sim, 1002);
    killed_in(&sim, &ws, &UP_DEV, "stop", true);
    ctl_ok(&sim, &["start", "1002", "--version", NEW]);
    sim.wait_settled(1002, RUN_T);
    assert_eq!(commit_of(&sim, 1002), old_commit);
    let t0 = now_ms();
    let r = ws.run(&RESUME, &[]);
    replanned_and_done_once(&sim, &r, t0);
    for id in [1001, 1002, 1003] {
        assert_ne!(
            commit_of(&sim, id),
            old_commit,
            "node {id} on the dev build"
        );
    }
    rollout_was_safe(&sim.events()).unwrap();
}

/// The same with the dev image brought back by hand: its new commit proves it, skipped.
#[test]
fn dev_target_new_image_back_by_hand_is_skipped() {
    let sim = Sim::start(SimOpts {
        version: NEW.into(),
        ..SimOpts::default()
    });
    let ws = held_ws(&sim, "30s", "3s");
    let old_commit = commit_of(&sim, 1002);
    killed_in(&sim, &ws, &UP_DEV, "stop", true);
    ctl_ok(&sim, &["start", "1002", "--version", DEV]);
    sim.wait_settled(1002, RUN_T);
    let t0 = now_ms();
    let r = ws.run(&RESUME, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(skipped(&r.lines(), 1002).contains(&"stop".to_string()));
    assert_eq!(verbs_of(&sim, t0, 1002), Vec::<String>::new());
    for id in [1001, 1002, 1003] {
        assert_ne!(
            commit_of(&sim, id),
            old_commit,
            "node {id} on the dev build"
        );
    }
    rollout_was_safe(&sim.events()).unwrap();
}

// ---- the locks ----

pub(crate) fn locks_of(ws: &Ws) -> PathBuf {
    ws.dir.path().join("locks")
}

/// One of the per-user cluster lock files of `sim`'s cluster under `base` (the first of
/// its keys; a live run holds them all).
pub(crate) fn cluster_lock(sim: &Sim, base: &Path) -> PathBuf {
    let apis: Vec<&str> = sim.nodes.iter().map(|n| n.api.as_str()).collect();
    let keys = wkctl::state::cluster_lock_keys(&apis);
    base.join(wkctl::state::lock_dir_name(&keys[0]))
        .join("lock")
}

pub(crate) fn forge_lock(path: &Path, pid: u32, state_dir: Option<&Path>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut v = serde_json::json!({
        "pid": pid,
        "host": wkctl::state::hostname(),
        "started_at_ms": u64::try_from(now_ms()).unwrap() - 60_000,
    });
    if let Some(d) = state_dir {
        v["state_dir"] = Value::String(d.display().to_string());
    }
    std::fs::write(path, v.to_string()).unwrap();
}

/// A pid that is surely dead: a child that exited and was reaped.
pub(crate) fn dead_pid() -> u32 {
    let mut c = std::process::Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    pid
}

/// Killed in 1002's stop (cancelled: all serve), then the operator removed the state
/// directory's stale lock; the per-user cluster lock still names the dead pid. The resume
/// in the run's own directory is not blocked by it, and finishes safely.
#[test]
fn a_stale_cluster_lock_does_not_block_the_resume_in_its_own_directory() {
    let sim = Sim::start(SimOpts::default());
    let ws = held_ws(&sim, "30s", "3s");
    killed_in(&sim, &ws, &UP, "stop", false);
    let cl = cluster_lock(&sim, &locks_of(&ws));
    assert!(cl.exists(), "the killed run left its cluster lock");
    std::fs::remove_file(ws.state_base().join("t").join("lock")).unwrap();
    let r = ws.run(&RESUME, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(!r.all().contains(LOCKED), "{}", r.all());
    assert!(!cl.exists(), "released");
    all_on(&sim, NEW);
}

/// A forged cluster lock of a dead pid from another directory: a fresh upgrade in this
/// directory is not refused as "live" (`ensure_no_live_run` reads only live locks).
#[test]
fn a_dead_pids_cluster_lock_is_not_named_as_a_live_run() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    let other = tempfile::tempdir().unwrap();
    forge_lock(
        &cluster_lock(&sim, &locks_of(&ws)),
        dead_pid(),
        Some(other.path()),
    );
    let r = ws.run(&UP, &[]);
    assert!(!r.all().contains(LOCKED), "{}", r.all());
    // Whatever it decides about the gone run, it is not "live" and it is safe.
    rollout_was_safe(&sim.events()).unwrap();
}

/// A cluster lock held by a live process (forged with a live pid on this host): a plain
/// `upgrade --to`, `upgrade --resume`, `restart`, `recover` and `rollback` are refused
/// naming it, create no state, touch nothing; `--break-lock` still proceeds and finishes.
#[test]
fn a_live_cluster_lock_refuses_everything_and_break_lock_still_works() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    let mut sleeper = std::process::Command::new("sleep")
        .arg("300")
        .spawn()
        .unwrap();
    let pid = sleeper.id();
    let cl = cluster_lock(&sim, &locks_of(&ws));
    forge_lock(&cl, pid, None);
    let before = std::fs::read_to_string(&cl).unwrap();
    let t0 = now_ms();
    let tries: [&[&str]; 7] = [
        &UP,
        &["upgrade", "--to", "v2.1.2", "--yes"],
        &RESUME,
        &RESTART,
        &["recover", "--yes-full-outage", "--json"],
        &["recover"],
        &["rollback", "--node", "1001", "--yes", "--json"],
    ];
    let mut wrong = Vec::new();
    for args in tries {
        let r = ws.run(args, &[]);
        if r.code != 1 || !r.all().contains(&format!("{LOCKED} (pid {pid} on host")) {
            wrong.push(format!(
                "`{}` (exit {}): {}",
                args.join(" "),
                r.code,
                r.all()
            ));
        }
        assert!(!ws.state_file().exists(), "{args:?} created a state");
        assert!(
            !ws.state_base().join("t").join("lock").exists(),
            "{args:?} left a lock"
        );
        assert_eq!(std::fs::read_to_string(&cl).unwrap(), before, "{args:?}");
    }
    assert!(touched_after(&sim, t0).is_empty(), "touched");
    let r = ws.run(
        &[
            "upgrade",
            "--to",
            "v2.1.2",
            "--yes",
            "--json",
            "--break-lock",
        ],
        &[],
    );
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
    assert_eq!(r.code, 0, "--break-lock: {}", r.all());
    assert!(!cl.exists(), "released after the run");
    all_on(&sim, NEW);
}

/// `--dry-run` creates nothing in the lock directory (nor any state), with or without a
/// lock held elsewhere.
#[test]
fn dry_runs_create_nothing_in_the_lock_dir() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    for args in [
        &["upgrade", "--to", "v2.1.2", "--dry-run"][..],
        &["upgrade", "--to", "v2.1.2", "--dry-run", "--json"],
        &["restart", "--dry-run"],
    ] {
        let r = ws.run(args, &[]);
        assert_eq!(r.code, 0, "{args:?}: {}", r.all());
        assert!(
            !locks_of(&ws).exists(),
            "{args:?} created the lock dir: {:?}",
            std::fs::read_dir(locks_of(&ws))
                .map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>())
        );
        assert!(!ws.state_file().exists(), "{args:?}");
        assert!(!ws.state_base().join("t").join("lock").exists());
    }
    assert!(lifecycle(&sim).is_empty(), "a dry run touched a node");
}

/// A live run in A (parked in 1001's held `start`, 1001 down): a plain `upgrade --to` from B is refused naming it, B gets no state,
/// no lock, the cluster lock file is unchanged, nothing is touched; A finishes safely.
#[test]
fn a_plain_upgrade_from_another_directory_is_refused_untouched_while_a_run_is_live() {
    let sim = Sim::start(SimOpts::default());
    let a = held_ws(&sim, "60s", "30s");
    let b = Ws::new(&sim, &Opts::default());
    let locks = locks_of(&a).display().to_string();
    let env = [("WKCTL_LOCK_DIR", locks.as_str())];
    touch(&sim, "hold-start-1001");
    let mut run = a.spawn(&UP, &env);
    run.wait_for("1001's start", RUN_T, |v| {
        v["type"] == "step_started" && v["data"]["node"] == 1001 && v["data"]["step"] == "start"
    });
    parked(&sim, "hold-start-1001");
    assert_eq!(sim.node_state(1001), "stopped");
    let pid = run.child.id();
    let cl = cluster_lock(&sim, &locks_of(&a));
    let before = std::fs::read_to_string(&cl).unwrap();
    let t0 = now_ms();
    for args in [
        &UP[..],
        &["upgrade", "--to", "v2.1.2", "--yes"],
        &RESUME,
        &RESTART_RESUME,
        &["rollback", "--node", "1001", "--yes", "--json"],
    ] {
        let r = b.run(args, &env);
        assert_eq!(r.code, 1, "{args:?}: {}", r.all());
        assert!(
            r.all().contains(&format!("{LOCKED} (pid {pid} on host")),
            "{args:?}: {}",
            r.all()
        );
        assert!(!b.state_file().exists(), "{args:?} left a state in b");
        assert!(!b.state_base().join("t").join("lock").exists(), "{args:?}");
        assert_eq!(std::fs::read_to_string(&cl).unwrap(), before, "{args:?}");
        assert!(touched_after(&sim, t0).is_empty(), "{args:?} touched");
    }
    touch(&sim, "go-start");
    let (code, err) = finish(&mut run);
    assert_eq!(code, 0, "{err}");
    all_on(&sim, NEW);
}

pub(crate) fn finish(run: &mut Streaming) -> (i32, String) {
    run.finish(RUN_T)
}

// ---- probes beyond the brief's list ----

/// Was a hole (fixed): one run per cluster (DESIGN §6: "a per-user lock keyed by the cluster's identity,
/// not by the working directory"). A second manifest for the SAME nodes under another
/// `name` (`u` instead of `t`: a colleague's copy, `prod` vs `wk-prod`) while run A is live,
/// its stop of 1001 issued but not landed yet (a slow `docker compose stop`). B's run is not
/// refused: its state dir (`.wkctl/u`) and its cluster lock (`<lock dir>/u-<hash of the
/// APIs>`) are both other files than A's, its pre-upgrade check sees a settled cluster (A's
/// stop has not landed), and it stops and upgrades 1003 (`--nodes 1003`) while A's stop of
/// 1001 is under way: two nodes down as soon as that stop lands during B's. Cause:
/// `state::lock::cluster_identity` puts the manifest's `name` in the key (the node APIs,
/// normalised, are the cluster's identity); `Context::ensure_no_live_run` and
/// `acquire_cluster_lock` both use it. (Same nodes under other addresses, e.g. `localhost`
/// vs `127.0.0.1`, escaped it too: the next test.)
#[test]
fn another_manifest_name_for_the_same_nodes_is_the_same_cluster() {
    let sim = Sim::start(SimOpts::default());
    let a = held_ws(&sim, "60s", "30s");
    let b = Ws::new(
        &sim,
        &Opts {
            name: "u",
            ..Opts::default()
        },
    );
    second_run_is_refused_while_a_is_live(&sim, &a, &b, "manifest name `u`");
}

/// Was a hole (fixed): the same nodes under other addresses are the same cluster. While
/// run A (manifest `t`, `http://127.0.0.1:PORT`) is live with 1001's stop under way, run B
/// from another directory, whose manifest `u` spells the same nodes `http://localhost:PORT/`,
/// is refused naming A and touches nothing (was: its lock key, a hash of the URL texts,
/// was another file, so B upgraded 1003 while 1001 went down). The lock keys are the
/// nodes' addresses as this machine reaches them (`state::cluster_lock_keys`); once A is
/// done every lock file it took is gone.
#[test]
fn the_same_nodes_under_another_address_are_the_same_cluster() {
    let sim = Sim::start(SimOpts::default());
    let a = held_ws(&sim, "60s", "30s");
    let b = Ws::new(
        &sim,
        &Opts {
            name: "u",
            ..Opts::default()
        },
    );
    let mut text = std::fs::read_to_string(&b.manifest).unwrap();
    for n in &sim.nodes {
        let (was, alias) = (
            format!("api: {}\n", n.api),
            format!("api: {}/\n", n.api.replace("127.0.0.1", "LocalHost")),
        );
        assert!(text.contains(&was), "{text}");
        text = text.replace(&was, &alias);
    }
    std::fs::write(&b.manifest, text).unwrap();
    second_run_is_refused_while_a_is_live(&sim, &a, &b, "nodes spelled `localhost`");
}

/// Run A (`a`, its steps held) is parked in 1001's stop, issued but not landed; B (`b`,
/// the same nodes under another name or spelling, `what`) runs `upgrade --nodes 1003`
/// from its own directory. B must be refused naming A, leave no state and touch nothing;
/// A's stop then lands and A finishes safely, every lock file it took gone.
pub(crate) fn second_run_is_refused_while_a_is_live(sim: &Sim, a: &Ws, b: &Ws, what: &str) {
    let locks = locks_of(a).display().to_string();
    let env = [("WKCTL_LOCK_DIR", locks.as_str())];
    touch(sim, "hold-stop-1001");
    let mut run = a.spawn(&UP, &env);
    run.wait_for("1001's stop", RUN_T, |v| {
        v["type"] == "step_started" && v["data"]["node"] == 1001 && v["data"]["step"] == "stop"
    });
    parked(sim, "hold-stop-1001");
    let pid = run.child.id();
    let t0 = now_ms();
    let r = b.run(
        &[
            "upgrade", "--to", "v2.1.2", "--yes", "--json", "--nodes", "1003",
        ],
        &env,
    );
    let touched_by_b = touched_after(sim, t0);
    // A's stop now lands, whatever B did.
    touch(sim, "go-stop");
    let (code, err) = finish(&mut run);
    let safe = rollout_was_safe(&sim.events());
    assert!(
        touched_by_b.is_empty(),
        "a second run for the same nodes ({what}) touched {touched_by_b:?} while run pid \
         {pid} was live\n{}",
        r.all()
    );
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.all().contains(&format!("{LOCKED} (pid {pid} on host")),
        "{}",
        r.all()
    );
    assert!(!b.state_file().exists(), "B left a state");
    assert_eq!(code, 0, "{err}");
    safe.unwrap();
    let left: Vec<PathBuf> = std::fs::read_dir(locks_of(a))
        .unwrap()
        .flatten()
        .map(|e| e.path().join("lock"))
        .filter(|p| p.exists())
        .collect();
    assert!(left.is_empty(), "lock files left after the run: {left:?}");
}

/// Was a hole (fixed): a rolling restart killed in 1002's `stop` (it landed); the operator brought 1002
/// back by hand on ANOTHER version (v2.1.2, the cluster on v2.0.10). A restart never
/// changes a version, and a downgrade is blocked without `--allow-downgrade` (DESIGN §4),
/// across the v2.1.0 rewrite above all. What happens: `replan_if_serving` sees "not the
/// new process on the target" (the target of a restart is its own old version), plans 1002
/// again, its pre-stop check passes, and the playbook's `stop` and `start --version
/// v2.0.10` run: 1002 is DOWNGRADED across the rewrite behind the operator's back. The gate
/// then waits for v2.1.2 (`gate_target` takes the version from the new baseline) and fails
/// after `node_timeout`, leaving 1002 on v2.0.10 and the run failed. Cause:
/// `execute::node::replan_if_serving` / `execute::steps::still_serving` treat any other
/// version as "serving, plan again" for a restart too, while the start's `{{to}}` comes
/// from the plan (`restart::node_version` and the baseline then disagree); a restart should
/// stop the run when a node now runs another version than the restart's.
#[test]
fn restart_resume_never_downgrades_a_node_upgraded_by_hand() {
    let sim = Sim::start(SimOpts::default());
    let ws = held_ws(&sim, "30s", "2s");
    killed_in(&sim, &ws, &RESTART, "stop", true);
    ctl_ok(&sim, &["start", "1002", "--version", NEW]);
    sim.wait_settled(1002, RUN_T);
    let t0 = now_ms();
    let r = ws.run(&RESTART_RESUME, &[]);
    let after = events_after(&sim, t0);
    let v1002 = crate::support::varz_version(&sim, 1002, None);
    assert_eq!(
        v1002,
        NEW,
        "the restart's resume put 1002 back on {v1002} (touched {:?}), exit {}\n{}",
        verbs_of(&sim, t0, 1002),
        r.code,
        r.all()
    );
    every_stop_settled(&after).unwrap();
    rollout_was_safe(&sim.events()).unwrap();
}

/// Was a hole (fixed): a `-dev` target (v2.1.3-20250210-dev, reporting v2.1.2-20250120 like the
/// cluster); killed in 1002's stop (1001 upgraded, its commit proven and saved by this
/// run). The operator brought 1002 back by hand on ANOTHER dev image of the same release
/// (`-dev-jsonrpc`: same reported version, a commit of its own). `back_on_target` takes it
/// as upgraded (stop, install, start skipped), the gate passes, the run reports success
/// with 1002 on a build that is not the target. Before this commit the interrupted stop
/// was run again and wkctl's own `start` put the target image there. Cause:
/// `execute::steps::back_on_target` trusts `gate::runs_new_process`, whose `-dev` proof
/// (`gate::signals::dev_build_proven`) only asks for a commit other than the old
/// process's; for a process wkctl did not start, the commit should match the one this run
/// proved on its earlier nodes (`NodeRun::proven_commit`), else no skip.
#[test]
fn dev_target_another_dev_image_back_by_hand_is_not_taken_as_upgraded() {
    let sim = Sim::start(SimOpts {
        version: NEW.into(),
        ..SimOpts::default()
    });
    let ws = held_ws(&sim, "30s", "3s");
    killed_in(&sim, &ws, &UP_DEV, "stop", true);
    let target_commit = commit_of(&sim, 1001);
    ctl_ok(
        &sim,
        &["start", "1002", "--version", "v2.1.3-20250210-dev-jsonrpc"],
    );
    sim.wait_settled(1002, RUN_T);
    assert_eq!(crate::support::varz_version(&sim, 1002, None), NEW);
    assert_ne!(commit_of(&sim, 1002), target_commit);
    let r = ws.run(&RESUME, &[]);
    let on_1002 = commit_of(&sim, 1002);
    assert!(
        r.code != 0 || on_1002 == target_commit,
        "the run succeeded with 1002 on another build (commit {on_1002}, the target's is \
         {target_commit}); skipped {:?}\n{}",
        skipped(&r.lines(), 1002),
        r.all()
    );
    rollout_was_safe(&sim.events()).unwrap();
}

/// Killed in 1002's stop (it landed); the operator brought 1002 back on the target but
/// also stopped 1003 by hand meanwhile. The skip to 1002's gate must not let that gate
/// pass with 1003 down (signal F), and wkctl must not touch 1003 or 1001.
#[test]
fn back_on_the_target_with_another_node_down_never_passes_the_gate() {
    let sim = Sim::start(SimOpts::default());
    let ws = held_ws(&sim, "4s", "3s");
    killed_in(&sim, &ws, &UP, "stop", true);
    ctl_ok(&sim, &["start", "1002", "--version", NEW]);
    sim.wait_settled(1002, RUN_T);
    ctl_ok(&sim, &["stop", "1003"]);
    let t0 = now_ms();
    let r = ws.run(&RESUME, &[]);
    assert_ne!(r.code, 0, "{}", r.all());
    let lines = r.lines();
    assert!(
        !lines
            .iter()
            .any(|l| l["type"] == "node_ready" && l["data"]["node"] == 1002),
        "1002's gate passed with 1003 down: {}",
        r.all()
    );
    assert_eq!(
        touched_after(&sim, t0),
        Vec::<(String, u64)>::new(),
        "{}",
        r.all()
    );
    assert_eq!(sim.node_state(1003), "stopped");
}
