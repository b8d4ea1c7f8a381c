//! What an operator trying wkctl found (issue 13), each reproduced against `wksim`.

use std::time::Duration;

use serde_json::Value;

use crate::harness::{Sim, SimOpts, rollout_was_safe};
use crate::support::{Opts, Ws, lifecycle};

const RUN_T: Duration = Duration::from_secs(90);
const UP: [&str; 5] = ["upgrade", "--to", "v2.1.2", "--yes", "--json"];

/// Two copies of one manifest in two directories, started at once: one run per cluster.
/// The second is refused (naming the first run's pid, host and state directory), and the
/// simulator's event log shows one node down at a time and each node stopped once.
#[test]
fn two_runs_from_two_directories_never_take_two_nodes_down() {
    let sim = Sim::start(SimOpts::default());
    let a = Ws::new(&sim, &Opts::default());
    let b = Ws::new(&sim, &Opts::default());
    let locks = tempfile::tempdir().unwrap();
    let lock_env = locks.path().display().to_string();
    let env = [("WKCTL_LOCK_DIR", lock_env.as_str())];
    let mut first = a.spawn(&UP, &env);
    first.wait_for("first run started", RUN_T, |v: &Value| {
        v["type"] == "run_started"
    });
    let second = b.run(&UP, &env);
    assert_eq!(second.code, 1, "{}", second.all());
    let all = second.all();
    assert!(
        all.contains("another wkctl run holds the cluster lock") && all.contains("pid"),
        "{all}"
    );
    assert!(
        all.contains(&a.state_base().display().to_string()),
        "names where the other run keeps its state: {all}"
    );
    let (code, err) = first.finish(RUN_T);
    assert_eq!(code, 0, "{err}");
    for id in [1001, 1002, 1003] {
        let stops = lifecycle(&sim)
            .iter()
            .filter(|(_, v, n)| v == "stop" && *n == id)
            .count();
        assert_eq!(stops, 1, "node {id} stopped once");
    }
    rollout_was_safe(&sim.events()).unwrap();
    // Once the first run is done, the second directory's run finds nothing to do.
    let again = b.run(&UP, &env);
    assert_eq!(again.code, 0, "{}", again.all());
    assert_eq!(
        lifecycle(&sim).len(),
        6,
        "nothing restarted by the second run"
    );
}

/// `status` shows an unfinished run and who holds the cluster lock.
#[test]
fn status_shows_an_unfinished_run_and_the_lock_holder() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    let mut run = ws.spawn(&UP, &[]);
    run.wait_for("1001 soaking", RUN_T, |v: &Value| {
        v["type"] == "step_started" && v["data"]["node"] == 1001 && v["data"]["step"] == "soak"
    });
    let state_dir = ws.state_base().display().to_string();
    let env = [("WKCTL_STATE_DIR", state_dir.as_str())];
    let s = ws.run(&["status", "--json"], &env);
    let doc: Value = serde_json::from_str(&s.stdout).unwrap_or_else(|_| panic!("{}", s.all()));
    let locked_by = doc["run"]["locked_by"].as_str().unwrap_or_default();
    assert!(locked_by.contains("pid"), "{doc}");
    run.kill9();
    let s = ws.run(&["status"], &env);
    assert!(
        s.stdout.contains("unfinished") && s.stdout.contains("--resume"),
        "{}",
        s.all()
    );
    crate::harness::rollout_was_safe(&sim.events()).unwrap();
}

/// The team lock (the playbook's `lock`/`unlock`, once per run on the first node's host):
/// a lock held by another operator refuses the run before anything is touched and names
/// its owner; `--break-lock` runs `unlock` first and takes it; the lock is released at the
/// end of the run.
#[test]
fn the_team_lock_refuses_then_break_lock_takes_it() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    let lock = ws.dir.path().join("team.lock");
    let q = lock.display().to_string();
    let pb = include_str!("../../playbooks/sim.yaml")
        .replace("name: sim", "name: sim-team-lock")
        .replace(
            "steps:\n",
            &format!(
                "steps:\n  lock: \"mkdir {q} 2>/dev/null || {{ echo another wkctl run holds {q}: $(cat {q}/owner) >&2; exit 1; }}; echo alice@laptop > {q}/owner\"\n  unlock: \"rm -rf {q}\"\n"
            ),
        );
    std::fs::write(ws.dir.path().join("pb.yaml"), pb).unwrap();
    let m = std::fs::read_to_string(&ws.manifest)
        .unwrap()
        .replace("playbook: sim", "playbook: ./pb.yaml");
    std::fs::write(&ws.manifest, m).unwrap();
    // Another operator holds it.
    std::fs::create_dir(&lock).unwrap();
    std::fs::write(lock.join("owner"), "bob@desk\n").unwrap();
    let r = ws.run(&UP, &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.all().contains("bob@desk"), "names the owner: {}", r.all());
    assert!(lifecycle(&sim).is_empty(), "nothing touched");
    assert_eq!(
        std::fs::read_to_string(lock.join("owner")).unwrap(),
        "bob@desk\n",
        "the refused run leaves bob's lock alone"
    );
    let r = ws.run(&["upgrade", "--discard"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let mut args = UP.to_vec();
    args.push("--break-lock");
    let r = ws.run(&args, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(!lock.exists(), "released at the end of the run");
    rollout_was_safe(&sim.events()).unwrap();
}
