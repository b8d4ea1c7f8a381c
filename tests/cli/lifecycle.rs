//! The lifecycle commands' fault paths (issue #19 "Tests"): Ctrl-C during `restart` and
//! during `recover`, a failed `recover` step, and kill -9 during `recover`'s doctor and
//! final settle steps, each followed by what the operator does next. Judged on the
//! simulator's event log and the saved state, not on wkctl's word alone.

use serde_json::Value;

use crate::harness::Sim;
use crate::recover::{IDS, T, TO, assert_maintainers_order, broken, seen_by, three_of_three};
use crate::recovery::sigint;
use crate::support::{Opts, Streaming, Ws, ctl_ok, varz_version};

const RECOVER: [&str; 3] = ["recover", "--yes-full-outage", "--json"];
const RECOVER_RESUME: [&str; 4] = ["recover", "--resume", "--yes-full-outage", "--json"];

fn recover_state(ws: &Ws) -> Value {
    let path = ws.state_base().join("t").join("recover.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("recover.json")).expect("JSON")
}

/// `(kind, node)` of each stop and each boot the simulator logged in `events`.
fn stops_and_boots(events: &[Value]) -> Vec<(&'static str, u64)> {
    events
        .iter()
        .filter_map(|e| {
            let kind = if e["kind"] == "stop" {
                "stop"
            } else if e["kind"] == "state" && e["to"] == "booting" {
                "boot"
            } else {
                return None;
            };
            Some((kind, e["node"].as_u64()?))
        })
        .collect()
}

fn count(list: &[(&str, u64)], kind: &str, node: u64) -> usize {
    list.iter()
        .filter(|(k, n)| *k == kind && *n == node)
        .count()
}

fn values(run: &Streaming) -> Vec<Value> {
    run.values().into_iter().map(|(_, v)| v).collect()
}

/// A workspace for `sim` whose playbook is the bundled `sim` one with `edit` applied.
fn ws_with_playbook(sim: &Sim, edit: impl Fn(String) -> String) -> Ws {
    let ws = Ws::new(sim, &Opts::default());
    let pb =
        edit(include_str!("../../playbooks/sim.yaml").replace("name: sim", "name: sim-edited"));
    std::fs::write(ws.dir.path().join("pb.yaml"), pb).unwrap();
    let m = std::fs::read_to_string(&ws.manifest)
        .unwrap()
        .replace("playbook: sim", "playbook: ./pb.yaml");
    std::fs::write(&ws.manifest, m).unwrap();
    ws
}

// ---- Ctrl-C --------------------------------------------------------------------------

/// The first Ctrl-C of a rolling restart, while 1002 goes down: like `upgrade`, the node
/// is brought back and gated before wkctl exits 130 (the simulator shows it started again
/// and rejoined); `restart --resume` then soaks it without a second stop, and goes on to
/// 1003. Every node still runs the version it ran.
#[test]
fn ctrl_c_during_restart_brings_the_node_back_and_resume_finishes_with_one_stop_each() {
    let sim = Sim::start(crate::harness::SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    let before: Vec<String> = IDS.iter().map(|id| varz_version(&sim, *id, None)).collect();
    let mut run = ws.spawn(&["restart", "--yes", "--json"], &[]);
    run.wait_for("1002 stopping", T, |v| {
        v["type"] == "step_started" && v["data"]["node"] == 1002 && v["data"]["step"] == "stop"
    });
    sigint(&run);
    let (code, err) = run.finish(T);
    assert_eq!(code, 130, "{err}");
    let lines = values(&run);
    assert!(lines.iter().any(|l| l["type"] == "interrupted"), "{err}");
    assert_eq!(ws.state()["status"], "interrupted");
    assert_eq!(ws.state()["kind"], "restart");

    let ev = sim.events();
    let life = stops_and_boots(&ev);
    assert_eq!(count(&life, "stop", 1002), 1, "{life:?}");
    let stop_at = ev
        .iter()
        .position(|e| e["kind"] == "stop" && e["node"] == 1002)
        .unwrap();
    assert!(
        ev[stop_at..]
            .iter()
            .any(|e| e["kind"] == "rejoined" && e["node"] == 1002),
        "1002 was brought back and rejoined before wkctl exited: {ev:?}"
    );
    assert_eq!(sim.node_state(1002), "settled");
    assert_eq!(count(&life, "stop", 1003), 0, "1003 untouched");

    let r = ws.run(&["restart", "--resume", "--yes", "--json"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.lines().iter().any(|l| l["type"] == "soak_finished"
            && l["data"]["node"] == 1002
            && l["data"]["ok"] == true),
        "the interrupted node's soak runs on resume:\n{}",
        r.all()
    );
    let life = stops_and_boots(&sim.events());
    for id in IDS {
        assert_eq!(count(&life, "stop", id), 1, "node {id}: {life:?}");
    }
    let after: Vec<String> = IDS.iter().map(|id| varz_version(&sim, *id, None)).collect();
    assert_eq!(before, after, "a restart changes no version");
    crate::harness::rollout_was_safe(&sim.events()).unwrap();
}

/// Ctrl-C while `recover` waits for 1002 to join (a slow join holds the wait open): the
/// run stops there, saves `interrupted` with the step it was in, and exits 130 saying
/// nodes may be down. 1003 is not started. `--resume` observes that 1002's start took
/// effect (it is not run again) and finishes in the maintainers' order.
#[test]
fn ctrl_c_during_recover_saves_the_step_and_resume_finishes_in_order() {
    let (sim, ws) = broken();
    ctl_ok(&sim, &["fault", "1002", "slow-join", "60"]);
    let mark = sim.events().len();
    let mut run = ws.spawn(&RECOVER, &[]);
    run.wait_for("waiting for 1002", T, |v| {
        v["type"] == "waiting" && v["data"]["node"] == 1002
    });
    sigint(&run);
    let (code, err) = run.finish(T);
    assert_eq!(code, 130, "{err}");
    let lines = values(&run);
    let msg = lines
        .iter()
        .find(|l| l["type"] == "interrupted")
        .map(|l| l["data"]["message"].to_string())
        .unwrap_or_default();
    assert!(
        msg.contains("DOWN") && msg.contains("wkctl recover --resume"),
        "{msg}\n{err}"
    );
    let st = recover_state(&ws);
    assert_eq!(st["status"], "interrupted", "{st}");
    assert_eq!(st["in_step"], 5, "inside `start 1002`: {st}");
    let life = stops_and_boots(&sim.events()[mark..]);
    assert_eq!(count(&life, "boot", 1003), 0, "1003 not started: {life:?}");
    assert_eq!(count(&life, "boot", 1002), 1, "{life:?}");

    let r = ws.run(&RECOVER_RESUME, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.lines()
            .iter()
            .any(|l| l["type"] == "step_skipped" && l["data"]["node"] == 1002),
        "the interrupted start was observed, not re-run:\n{}",
        r.all()
    );
    assert_maintainers_order(&sim.events()[mark..]);
    three_of_three(&sim);
}

// ---- a failed step --------------------------------------------------------------------

/// 1002 never comes back during `recover`: the step fails at `node_timeout`, the output
/// names the node, shows its logs (the text its host's `logs` command prints) and what
/// was last seen, and the state keeps both for `--resume`. 1003 is never started: a node
/// started next to a failed join is what #408 warns against.
#[test]
fn a_failed_recover_step_shows_the_nodes_logs_and_what_was_last_seen() {
    let (sim, ws) = broken();
    ctl_ok(
        &sim,
        &["fault", "1002", "log", "MARKER-1002-raft-storage-corrupt"],
    );
    ctl_ok(&sim, &["fault", "1002", "never-starts"]);
    let mark = sim.events().len();
    let r = ws.run(&["recover", "--yes-full-outage"], &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.all().contains("1002"), "{}", r.all());
    assert!(
        r.all().contains("MARKER-1002-raft-storage-corrupt"),
        "the failed node's logs are shown:\n{}",
        r.all()
    );
    let st = recover_state(&ws);
    assert_eq!(st["status"], "failed", "{st}");
    assert!(
        st["error"]
            .as_str()
            .is_some_and(|e| e.contains("timed out")),
        "{st}"
    );
    assert!(
        st["last_seen"].as_str().is_some_and(|s| !s.is_empty()),
        "what was last seen is saved: {st}"
    );
    let life = stops_and_boots(&sim.events()[mark..]);
    assert_eq!(
        count(&life, "boot", 1003),
        0,
        "1003 never started: {life:?}"
    );
    assert_eq!(count(&life, "boot", 1001), 1, "{life:?}");

    // The same failure as JSON: `node_failed` carries the logs tail.
    let (sim, ws) = broken();
    ctl_ok(&sim, &["fault", "1002", "log", "MARKER-json"]);
    ctl_ok(&sim, &["fault", "1002", "never-starts"]);
    let r = ws.run(&RECOVER, &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    let failed = r
        .lines()
        .into_iter()
        .find(|l| l["type"] == "node_failed")
        .unwrap_or_else(|| panic!("no node_failed:\n{}", r.all()));
    assert_eq!(failed["data"]["node"], 1002, "{failed}");
    assert!(
        failed["data"]["logs_tail"]
            .as_str()
            .is_some_and(|t| t.contains("MARKER-json")),
        "{failed}"
    );
    assert!(failed["data"]["observed"].is_string(), "{failed}");
}

// ---- kill -9 during the doctor and the settle steps -----------------------------------

/// Killed while step 1 (doctor) reads the hosts' logs (a slow `logs` command holds it):
/// nothing was stopped yet, the state says so, and `--resume` runs the read-only doctor
/// again and then the whole procedure, each node stopped and started once.
#[test]
fn kill_9_during_the_doctor_step_then_resume_stops_each_node_once() {
    let (sim, _) = broken();
    let ws = ws_with_playbook(&sim, |pb| {
        pb.replace("  logs: \"{{wksim}}", "  logs: \"sleep 3; {{wksim}}")
    });
    let pb = std::fs::read_to_string(ws.dir.path().join("pb.yaml")).unwrap();
    assert!(pb.contains("sleep 3;"), "{pb}");
    let mark = sim.events().len();
    let mut run = ws.spawn(&RECOVER, &[]);
    run.wait_for("the doctor step", T, |v| {
        v["type"] == "recover_step" && v["data"]["step"] == "doctor"
    });
    run.kill9();
    let st = recover_state(&ws);
    assert_eq!(
        (&st["cursor"], &st["in_step"]),
        (&0.into(), &0.into()),
        "{st}"
    );
    assert!(
        stops_and_boots(&sim.events()[mark..]).is_empty(),
        "nothing stopped during the doctor step"
    );
    assert!(IDS.iter().all(|id| seen_by(&sim, *id) == Some(vec![*id])));

    let r = ws.run(&RECOVER_RESUME, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let doctor_steps = r
        .lines()
        .iter()
        .filter(|l| l["type"] == "recover_step" && l["data"]["step"] == "doctor")
        .count();
    assert_eq!(doctor_steps, 1, "the doctor step ran again: {}", r.all());
    assert_maintainers_order(&sim.events()[mark..]);
    three_of_three(&sim);
}

/// Killed during the last step (every node started, slots still migrating hold F): the
/// resumed run starts and stops nothing again; it only waits for F and N of N. The kill
/// comes right after the `recover_step` event, so the state must already know the step
/// (saved before announced; it was announced first until this test).
#[test]
fn kill_9_during_the_final_settle_then_resume_touches_no_node() {
    let (sim, ws) = broken();
    ctl_ok(&sim, &["fault", "1003", "slow-migrate", "100"]);
    let mut run = ws.spawn(&RECOVER, &[]);
    run.wait_for("the settle step", T, |v| {
        v["type"] == "recover_step" && v["data"]["step"] == "settle"
    });
    run.kill9();
    let st = recover_state(&ws);
    assert_eq!(st["status"], "in_progress", "{st}");
    assert_eq!(
        (&st["cursor"], &st["in_step"]),
        (&7.into(), &7.into()),
        "{st}"
    );
    let mark = sim.events().len();

    let r = ws.run(&RECOVER_RESUME, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let steps: Vec<String> = r
        .lines()
        .iter()
        .filter(|l| l["type"] == "recover_step")
        .map(|l| l["data"]["step"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(steps, ["settle"], "{}", r.all());
    let touched = stops_and_boots(&sim.events()[mark..]);
    assert!(touched.is_empty(), "the resume touched nodes: {touched:?}");
    three_of_three(&sim);
    let v: Vec<String> = IDS.iter().map(|id| varz_version(&sim, *id, None)).collect();
    assert!(v.iter().all(|x| x == TO), "{v:?}");
}
