//! Attacks on the refactored run flow (`Flow` phases of `upgrade`, `execute::{node,steps,
//! poll}`, `StateDir::ensure_no_live_run` moved first in `upgrade`, `restart`, `recover`
//! and `rollback`): the real `wkctl` against the real `wksim`, each judged on exit codes,
//! the message an operator reads and the simulator's event log.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{Sim, SimOpts, rollout_was_safe};
use crate::matrix::touched_after;
use crate::support::{FAST_POLICY, Opts, Run, Streaming, Ws, ctl_ok, lifecycle, now_ms};

const RUN_T: Duration = Duration::from_secs(90);
const UP: [&str; 5] = ["upgrade", "--to", "v2.1.2", "--yes", "--json"];
const RESUME: [&str; 4] = ["upgrade", "--resume", "--yes", "--json"];
const NEW: &str = "v2.1.2-20250120";
const LOCKED: &str = "another wkctl run holds the cluster lock";

fn count(sim: &Sim, verb: &str, node: u64) -> usize {
    lifecycle(sim)
        .iter()
        .filter(|(_, v, n)| v == verb && *n == node)
        .count()
}

fn values(run: &Streaming) -> Vec<Value> {
    run.values().into_iter().map(|(_, v)| v).collect()
}

/// A shell prefix for a playbook step: when `<sim>/hold-<step>-<node>` exists, it is
/// removed, the step's output is detached (it may outlive a killed wkctl) and the step
/// waits (at most `cap_s`) for `<sim>/go-<step>`; when `<sim>/cancel-<step>` appears
/// instead, the step ends without doing anything.
pub(crate) fn held(sim: &Sim, step: &str, cap_s: u32, cmd: &str) -> String {
    let dir = sim.state_dir().display().to_string();
    let flag = format!("{dir}/hold-{step}-{{{{node.id}}}}");
    let go = format!("{dir}/go-{step}");
    let cancel = format!("{dir}/cancel-{step}");
    let polls = cap_s * 10;
    let line = format!(
        "if [ -f {flag} ]; then rm -f {flag}; exec >/dev/null 2>&1 </dev/null; i=0; \
         while [ ! -f {go} ] && [ $i -lt {polls} ]; do \
         if [ -f {cancel} ]; then exit 0; fi; sleep 0.1; i=$((i+1)); done; fi; {cmd}"
    );
    serde_json::to_string(&line).unwrap()
}

/// A workspace whose playbook's `stop` and `backup` can be held (see [`held`]), with a
/// policy of `node_timeout` and `step_timeout`.
fn held_ws(sim: &Sim, node_timeout: &str, step_timeout: &str) -> Ws {
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
    let backup = "{{wksim}} ctl --state-dir {{state_dir}} config {{node.id}} > /dev/null";
    let pb = include_str!("../../playbooks/sim.yaml")
        .replace("name: sim", "name: sim-held")
        .replace(
            &format!("  stop: \"{stop}\""),
            &format!("  stop: {}", held(sim, "stop", 40, stop)),
        );
    // The multi-line `backup` is replaced whole.
    let start = pb.find("  backup: >-").unwrap();
    let end = pb[start..].find("  stop:").unwrap() + start;
    let pb = format!(
        "{}  backup: {}\n{}",
        &pb[..start],
        held(sim, "backup", 15, backup),
        &pb[end..]
    );
    assert!(
        pb.contains("hold-stop-") && pb.contains("hold-backup-"),
        "{pb}"
    );
    std::fs::write(ws.dir.path().join("pb.yaml"), pb).unwrap();
    let m = std::fs::read_to_string(&ws.manifest)
        .unwrap()
        .replace("playbook: sim", "playbook: ./pb.yaml");
    std::fs::write(&ws.manifest, m).unwrap();
    ws
}

fn touch(sim: &Sim, name: &str) {
    std::fs::write(sim.state_dir().join(name), "").unwrap();
}

/// Waits until the held step removed its flag (its shell runs and waits).
fn parked(sim: &Sim, flag: &str) {
    let path = sim.state_dir().join(flag);
    let t = Instant::now();
    while path.exists() {
        assert!(t.elapsed() < RUN_T, "the held step never began ({flag})");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A live upgrade in `ws`, parked in 1001's `backup` (1001 stopped): the state says
/// 1001 is in progress after its stop, so only the lock can keep another command out.
fn live_run_parked_in_backup(sim: &Sim, ws: &Ws, env: &[(&str, &str)]) -> Streaming {
    touch(sim, "hold-backup-1001");
    let mut run = ws.spawn(&UP, env);
    run.wait_for("the run started", RUN_T, |v| v["type"] == "run_started");
    run.wait_for("1001's backup", RUN_T, |v| {
        v["type"] == "step_started" && v["data"]["node"] == 1001 && v["data"]["step"] == "backup"
    });
    parked(sim, "hold-backup-1001");
    assert_eq!(sim.node_state(1001), "stopped", "1001 is down mid-run");
    run
}

/// `r` is refused (exit 1) naming the live run's lock and pid, and nothing else.
fn refused_by_the_lock(r: &Run, what: &str, pid: u32) {
    let all = r.all();
    assert_eq!(r.code, 1, "{what}: {all}");
    assert!(
        all.contains(&format!("{LOCKED} (pid {pid} on host")),
        "{what}: names the live run's lock first: {all}"
    );
    for wrong in [
        "unfinished",
        "not a restart",
        "not an upgrade",
        "full outage",
        "not broken",
        "confirmation",
        "no unfinished",
    ] {
        assert!(!all.contains(wrong), "{what}: says `{wrong}`: {all}");
    }
}

/// The live run ends on its own, on the target, every node stopped once, never two down.
fn live_run_finishes(sim: &Sim, run: &mut Streaming) {
    touch(sim, "go-backup");
    let (code, err) = run.finish(RUN_T);
    assert_eq!(code, 0, "the live run was disturbed: {err}\n{}", run.text());
    let lines = values(run);
    assert_eq!(lines.last().unwrap()["type"], "summary", "{}", run.text());
    for id in [1001, 1002, 1003] {
        assert_eq!(count(sim, "stop", id), 1, "node {id} stopped once");
        assert_eq!(count(sim, "start", id), 1, "node {id} started once");
        assert_eq!(
            crate::support::varz_version(sim, id, None),
            NEW,
            "node {id}"
        );
    }
    rollout_was_safe(&sim.events()).unwrap();
}

fn pid_of(run: &Streaming) -> u32 {
    run.child.id()
}

/// Task 1: `kill -9` during 1002's `stop`, whose command outlives wkctl and has not yet
/// taken effect (1002 still answers on the old version). `upgrade --resume` must observe
/// 1002 and wait for that stop, not stop it a second time, not touch 1003 meanwhile, and
/// go on to 1003 only once 1002 is back: never two nodes down.
#[test]
fn resume_waits_for_an_interrupted_stop_still_under_way() {
    let sim = Sim::start(SimOpts::default());
    let ws = held_ws(&sim, "30s", "20s");
    touch(&sim, "hold-stop-1002");
    let mut run = ws.spawn(&UP, &[]);
    run.wait_for("1002's stop", RUN_T, |v| {
        v["type"] == "step_started" && v["data"]["node"] == 1002 && v["data"]["step"] == "stop"
    });
    parked(&sim, "hold-stop-1002");
    run.kill9();
    assert_eq!(count(&sim, "stop", 1002), 0, "the stop has not landed yet");
    assert_eq!(sim.node_state(1002), "settled", "1002 still serves");
    let state = ws.state();
    let n1002 = state["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == 1002)
        .unwrap();
    assert_eq!(n1002["step"], "stop", "killed in 1002's stop: {state}");

    let t0 = now_ms();
    let mut resume = ws.spawn(&RESUME, &[]);
    let waiting = resume.wait_for("the resume watches 1002's stop", RUN_T, |v| {
        v["type"] == "waiting"
            && v["data"]["node"] == 1002
            && v["data"]["what"]
                .as_str()
                .is_some_and(|w| w.contains("still answers after its interrupted `stop`"))
    });
    assert!(
        waiting["data"]["what"].as_str().unwrap().contains("20s"),
        "the stop step's timeout is the patience: {waiting}"
    );
    // While it waits, nothing is stopped or started by the resume.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        touched_after(&sim, t0).is_empty(),
        "the resume touched a node while 1002's stop was still under way: {:?}",
        touched_after(&sim, t0)
    );
    assert!(resume.child.try_wait().unwrap().is_none(), "still waiting");
    // The orphaned stop now takes effect.
    touch(&sim, "go-stop");
    let (code, err) = resume.finish(RUN_T);
    assert_eq!(code, 0, "{err}\n{}", resume.text());
    let lines = values(&resume);
    assert!(
        lines.iter().any(|l| l["type"] == "step_skipped"
            && l["data"]["node"] == 1002
            && l["data"]["step"] == "stop"),
        "the stop that took effect is not run again: {}",
        resume.text()
    );
    assert!(
        !lines.iter().any(|l| l["type"] == "waiting"
            && l["data"]["what"]
                .as_str()
                .is_some_and(|w| w.contains("planning it again"))),
        "1002 was not replanned: {}",
        resume.text()
    );
    assert_eq!(
        count(&sim, "stop", 1002),
        1,
        "1002 stopped once (the orphan)"
    );
    assert_eq!(count(&sim, "start", 1002), 1);
    assert_eq!(count(&sim, "stop", 1001), 1, "1001 re-verified only");
    assert_eq!(count(&sim, "stop", 1003), 1);
    // 1003 is touched only after 1002 rejoined, by the simulator's own judgement.
    let events = sim.events();
    let rejoined_1002 = events
        .iter()
        .rposition(|e| e["kind"] == "rejoined" && e["node"] == 1002)
        .expect("1002 rejoined");
    let first_1003 = events
        .iter()
        .position(|e| e["kind"] == "ctl" && e["node"] == 1003)
        .expect("1003 touched");
    assert!(
        rejoined_1002 < first_1003,
        "1003 touched before 1002 was back"
    );
    rollout_was_safe(&events).unwrap();
    for id in [1001, 1002, 1003] {
        assert_eq!(crate::support::varz_version(&sim, id, None), NEW, "{id}");
    }
}

/// The interrupted stop never takes effect (its command gave up): after the stop step's
/// timeout the resume plans 1002 again from the start (pre-stop check first) and stops it
/// itself, once; 1003 is not touched before 1002 is back.
#[test]
fn an_interrupted_stop_that_never_lands_is_planned_again_and_done_once() {
    let sim = Sim::start(SimOpts::default());
    let ws = held_ws(&sim, "30s", "3s");
    touch(&sim, "hold-stop-1002");
    let mut run = ws.spawn(&UP, &[]);
    run.wait_for("1002's stop", RUN_T, |v| {
        v["type"] == "step_started" && v["data"]["node"] == 1002 && v["data"]["step"] == "stop"
    });
    parked(&sim, "hold-stop-1002");
    run.kill9();
    touch(&sim, "cancel-stop");
    let t0 = now_ms();
    let r = ws.run(&RESUME, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let lines = r.lines();
    let said = |needle: &str| {
        lines.iter().position(|l| {
            l["type"] == "waiting"
                && l["data"]["node"] == 1002
                && l["data"]["what"]
                    .as_str()
                    .is_some_and(|w| w.contains(needle))
        })
    };
    let watched = said("still answers after its interrupted `stop`").expect("watched");
    let replanned = said("planning it again from the start").expect("replanned");
    assert!(watched < replanned, "{}", r.all());
    let touched = touched_after(&sim, t0);
    let only = |n: u64| -> Vec<&str> {
        touched
            .iter()
            .filter(|(_, id)| *id == n)
            .map(|(v, _)| v.as_str())
            .collect()
    };
    assert_eq!(only(1001), Vec::<&str>::new(), "1001 re-verified only");
    assert_eq!(only(1002), ["stop", "start"], "{touched:?}");
    assert_eq!(only(1003), ["stop", "start"], "{touched:?}");
    let first_1003 = touched.iter().position(|(_, id)| *id == 1003).unwrap();
    assert!(
        touched[..first_1003].iter().all(|(_, id)| *id == 1002),
        "1002 first: {touched:?}"
    );
    rollout_was_safe(&sim.events()).unwrap();
}

/// `kill -9` in 1002's `stop`; the orphaned stop lands (1002 down), and the operator
/// brings 1002 back by hand on the target, as the run would have (`docker compose up -d`
/// with the new image). Returns the workspace for `--resume`.
fn killed_in_stop_then_started_by_hand(sim: &Sim, fault: Option<&[&str]>) -> Ws {
    let ws = held_ws(sim, "30s", "20s");
    touch(sim, "hold-stop-1002");
    let mut run = ws.spawn(&UP, &[]);
    run.wait_for("1002's stop", RUN_T, |v| {
        v["type"] == "step_started" && v["data"]["node"] == 1002 && v["data"]["step"] == "stop"
    });
    parked(sim, "hold-stop-1002");
    run.kill9();
    touch(sim, "go-stop");
    sim.wait_until("the orphaned stop landed", RUN_T, |s| {
        s.node_state(1002) == "stopped"
    });
    if let Some(f) = fault {
        ctl_ok(sim, f);
    }
    ctl_ok(sim, &["start", "1002", "--version", NEW]);
    ws
}

/// Hole: killed in 1002's `stop`; the stop landed, and the operator brought 1002 back by
/// hand on the target. The resume sees a new process on the target (`still_serving` says
/// so), yet runs the interrupted `stop` again (`already_done` only skips a stop whose node
/// is down) and restarts a node that needed none: DESIGN §6 "already on the target: skip".
#[test]

fn resume_does_not_stop_again_a_node_brought_back_on_the_target_by_hand() {
    let sim = Sim::start(SimOpts::default());
    let ws = killed_in_stop_then_started_by_hand(&sim, None);
    sim.wait_settled(1002, RUN_T);
    let t0 = now_ms();
    let r = ws.run(&RESUME, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let touched = touched_after(&sim, t0);
    assert!(
        !touched.iter().any(|(_, id)| *id == 1002),
        "1002, already on the target with a new process, was stopped again: {touched:?}\n{}",
        r.all()
    );
    assert_eq!(count(&sim, "stop", 1003), 1);
    rollout_was_safe(&sim.events()).unwrap();
}

/// Hole (the same path, made unsafe): as above, but 1002's leaders migrate back slowly
/// (`slow-migrate`), so the cluster is not settled when the resume begins. Its pre-upgrade
/// check relaxes the cluster-wide findings (1002's stop began: "mid-upgrade: resuming"),
/// the pre-stop check is skipped (`stop_began`), and the interrupted `stop` is run again:
/// wkctl stops 1002 while a leader migration is under way, which DESIGN §5 forbids ("before
/// stopping each node every node must be fully back ... and F must hold"). The simulator's
/// `stop` event says `cluster_settled: false`.
#[test]

fn resume_never_stops_a_node_while_leaders_migrate() {
    let sim = Sim::start(SimOpts::default());
    let ws =
        killed_in_stop_then_started_by_hand(&sim, Some(&["fault", "1002", "slow-migrate", "200"]));
    let since = now_ms();
    sim.wait_until("1002's leaders migrating back", RUN_T, |s| {
        s.events().iter().any(|e| {
            e["kind"] == "slots"
                && e["node"] == 1002
                && e["to"] == "migrating"
                && e["ts_ms"].as_i64().unwrap_or(0) >= since
        })
    });
    assert_ne!(sim.state()["cluster_settled"], true, "migrating");
    let t0 = now_ms();
    let r = ws.run(&RESUME, &[]);
    let after: Vec<Value> = sim
        .events()
        .into_iter()
        .filter(|e| e["ts_ms"].as_i64().unwrap_or(0) >= t0)
        .collect();
    crate::harness::every_stop_settled(&after).unwrap_or_else(|e| panic!("{e}\n{}", r.all()));
    let touched = touched_after(&sim, t0);
    assert!(
        !touched.iter().any(|(_, id)| *id == 1002),
        "1002 stopped again: {touched:?}"
    );
    assert_eq!(r.code, 0, "{}", r.all());
    rollout_was_safe(&sim.events()).unwrap();
}

/// Task 2: while an upgrade runs, `upgrade --discard` and `upgrade --resume` are refused
/// naming the lock holder; its state stays where it is and the run finishes.
#[test]
fn a_live_upgrade_is_neither_discarded_nor_resumed() {
    let sim = Sim::start(SimOpts::default());
    let ws = held_ws(&sim, "60s", "20s");
    let mut run = live_run_parked_in_backup(&sim, &ws, &[]);
    let pid = pid_of(&run);
    let before = std::fs::read_to_string(ws.state_file()).unwrap();
    let t0 = now_ms();
    for (what, args) in [
        ("upgrade --discard", vec!["upgrade", "--discard"]),
        (
            "upgrade --discard --json",
            vec!["upgrade", "--discard", "--json"],
        ),
        ("upgrade --resume", RESUME.to_vec()),
        (
            "upgrade --resume (plain)",
            vec!["upgrade", "--resume", "--yes"],
        ),
    ] {
        let r = ws.run(&args, &[]);
        refused_by_the_lock(&r, what, pid);
        assert!(ws.state_file().exists(), "{what}: the state file is gone");
        assert_eq!(
            std::fs::read_to_string(ws.state_file()).unwrap(),
            before,
            "{what}: the live run's state was changed"
        );
    }
    let archived: Vec<_> = std::fs::read_dir(ws.state_file().parent().unwrap())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("state-"))
        .collect();
    assert!(archived.is_empty(), "nothing archived: {archived:?}");
    assert_eq!(ws.state()["status"], "running");
    assert!(touched_after(&sim, t0).is_empty(), "nothing touched");
    live_run_finishes(&sim, &mut run);
    assert_eq!(ws.state()["status"], "completed");
}

/// Task 3: while an upgrade runs (1001 down, in progress after its stop), `restart`,
/// `recover` and `rollback` in every form are refused with the lock message, not one about
/// the run's kind, the unfinished upgrade or the full outage; none stops anything.
#[test]
fn a_live_upgrade_is_named_first_by_restart_recover_and_rollback() {
    let sim = Sim::start(SimOpts::default());
    let ws = held_ws(&sim, "60s", "20s");
    let mut run = live_run_parked_in_backup(&sim, &ws, &[]);
    let pid = pid_of(&run);
    let before = std::fs::read_to_string(ws.state_file()).unwrap();
    let t0 = now_ms();
    let tries: [&[&str]; 11] = [
        &["restart", "--resume", "--yes", "--json"],
        &["restart", "--resume", "--yes"],
        &["restart", "--yes"],
        &["restart", "--discard"],
        &["recover", "--resume", "--yes-full-outage", "--json"],
        &["recover"],
        &["recover", "--json"],
        &["recover", "--yes-full-outage"],
        &["recover", "--discard"],
        &["rollback", "--node", "1001"],
        &["rollback", "--node", "1001", "--yes", "--json"],
    ];
    for args in tries {
        let what = args.join(" ");
        let r = ws.run(args, &[]);
        refused_by_the_lock(&r, &what, pid);
        assert!(
            touched_after(&sim, t0).is_empty(),
            "{what} touched a node: {:?}",
            touched_after(&sim, t0)
        );
        assert_eq!(
            std::fs::read_to_string(ws.state_file()).unwrap(),
            before,
            "{what}: the live run's state was changed"
        );
        assert!(
            !ws.state_base().join("t").join("recover.json").exists(),
            "{what}: a recover state appeared"
        );
    }
    assert_eq!(sim.node_state(1002), "settled");
    assert_eq!(sim.node_state(1003), "settled");
    live_run_finishes(&sim, &mut run);
}

/// From a second directory (same manifest, same per-user lock directory), mid-run: a
/// `recover --yes-full-outage`, a `restart` and an `upgrade` are refused by the cluster
/// lock and stop nothing.
#[test]
fn from_another_directory_a_live_upgrade_keeps_every_run_out() {
    let sim = Sim::start(SimOpts::default());
    let a = held_ws(&sim, "60s", "20s");
    let b = Ws::new(&sim, &Opts::default());
    let locks = a.dir.path().join("locks").display().to_string();
    let env = [("WKCTL_LOCK_DIR", locks.as_str())];
    let mut run = live_run_parked_in_backup(&sim, &a, &env);
    let pid = pid_of(&run);
    let t0 = now_ms();
    for args in [
        &["recover", "--yes-full-outage", "--json"][..],
        &["restart", "--yes", "--json"],
        &["upgrade", "--to", "v2.1.2", "--yes", "--json"],
    ] {
        let what = args.join(" ");
        let r = b.run(args, &env);
        assert_eq!(r.code, 1, "{what}: {}", r.all());
        let all = r.all();
        // `recover` judges the cluster first: one node down mid-upgrade is not broken.
        let not_broken = args[0] == "recover" && all.contains("is not broken");
        assert!(
            not_broken
                || (all.contains(&format!("{LOCKED} (pid {pid} on host"))
                    && all.contains(&a.state_base().display().to_string())),
            "{what}: names the live run's lock and where it keeps its state: {all}"
        );
        assert!(touched_after(&sim, t0).is_empty(), "{what} touched a node");
        assert!(
            !b.state_base().join("t").join("recover.json").exists() && !b.state_file().exists(),
            "{what} left a state in the second directory"
        );
    }
    live_run_finishes(&sim, &mut run);
}

/// Hole: from a second directory, mid-run, a plain `recover` (no `--yes-full-outage`, no
/// terminal) and `upgrade --resume` do not name the live run: the first reports the
/// cluster broken (`cluster.no_controller`: the run's node 1001 is down) and refuses only
/// for want of confirmation, exit 2 (on a terminal it would ask the FULL OUTAGE question
/// while another run holds the cluster), the second says "no unfinished run to resume;
/// start one with `wkctl upgrade --to`". `ensure_no_live_run` reads only the state directory's lock, not the
/// cluster's per-user lock, so "a run in progress is always named first" holds only in
/// the directory the run was started from.
#[test]

fn from_another_directory_a_live_run_is_named_first() {
    let sim = Sim::start(SimOpts::default());
    let a = held_ws(&sim, "60s", "20s");
    let b = Ws::new(&sim, &Opts::default());
    let locks = a.dir.path().join("locks").display().to_string();
    let env = [("WKCTL_LOCK_DIR", locks.as_str())];
    let mut run = live_run_parked_in_backup(&sim, &a, &env);
    let pid = pid_of(&run);
    let t0 = now_ms();
    let mut wrong = Vec::new();
    for args in [
        &["recover"][..],
        &["upgrade", "--resume", "--yes", "--json"],
    ] {
        let r = b.run(args, &env);
        if r.code != 1 || !r.all().contains(&format!("{LOCKED} (pid {pid} on host")) {
            wrong.push(format!(
                "`{}` (exit {}): {}",
                args.join(" "),
                r.code,
                r.all()
            ));
        }
    }
    assert!(touched_after(&sim, t0).is_empty(), "nothing touched");
    live_run_finishes(&sim, &mut run);
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

/// Task 4, as DESIGN §6 says: one run per cluster wherever it is started, and a lock whose
/// owner is gone is stale: a fresh run (`upgrade`, `restart`) from another directory is
/// refused, naming the gone run and where its state is, and pointing to `--resume`; the
/// run's own directory refuses a fresh run (its state is unfinished) and its `--resume`
/// takes the stale lock over, says so, and finishes. Nothing is touched by the refusals.
#[test]
fn a_stale_run_keeps_fresh_runs_out_until_it_is_resumed() {
    let sim = Sim::start(SimOpts::default());
    let a = held_ws(&sim, "30s", "3s");
    let b = Ws::new(&sim, &Opts::default());
    let locks = a.dir.path().join("locks").display().to_string();
    let env = [("WKCTL_LOCK_DIR", locks.as_str())];
    // Killed in 1002's stop before it lands; the orphan is cancelled: all nodes serve.
    touch(&sim, "hold-stop-1002");
    let mut run = a.spawn(&UP, &env);
    run.wait_for("1002's stop", RUN_T, |v| {
        v["type"] == "step_started" && v["data"]["node"] == 1002 && v["data"]["step"] == "stop"
    });
    parked(&sim, "hold-stop-1002");
    let pid = pid_of(&run);
    run.kill9();
    touch(&sim, "cancel-stop");
    assert!(lock_pid(&a.state_base().join("t").join("lock")) == Some(pid));
    sim.wait_settled(1002, RUN_T);
    let t0 = now_ms();
    for args in [
        &["upgrade", "--to", "v2.1.2", "--yes", "--json"][..],
        &["restart", "--yes", "--json"],
    ] {
        let what = args.join(" ");
        let r = b.run(args, &env);
        assert_eq!(r.code, 1, "{what}: {}", r.all());
        let all = r.all();
        assert!(
            all.contains(&format!(
                "cluster is locked by a run that is gone (pid {pid} on host"
            )),
            "{what}: {all}"
        );
        assert!(
            all.contains(&a.state_base().display().to_string()) && all.contains("--resume"),
            "{what}: names the gone run's state and `--resume`: {all}"
        );
        assert!(
            !all.contains(LOCKED),
            "{what}: a gone run is not live: {all}"
        );
        assert!(!b.state_file().exists(), "{what} left a state in b");
    }
    // In its own directory a fresh run is refused because its state is unfinished (the
    // stale lock is not taken for a live one).
    let r = a.run(&UP, &env);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.all().contains("an unfinished upgrade") && !r.all().contains(LOCKED),
        "{}",
        r.all()
    );
    assert!(
        touched_after(&sim, t0).is_empty(),
        "the refusals touched a node"
    );
    let r = a.run(&RESUME, &env);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stderr
            .contains(&format!("took over the lock of pid {pid}")),
        "says so: {}",
        r.all()
    );
    for id in [1001, 1002, 1003] {
        assert_eq!(count(&sim, "stop", id), 1, "node {id} stopped once");
    }
    rollout_was_safe(&sim.events()).unwrap();
    assert!(!a.state_base().join("t").join("lock").exists(), "released");
    // The second directory now finds nothing to do.
    let r = b.run(&UP, &env);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(lifecycle(&sim).len(), 6, "nothing restarted by b");
}

fn lock_pid(path: &Path) -> Option<u32> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    v["pid"].as_u64().and_then(|p| u32::try_from(p).ok())
}
