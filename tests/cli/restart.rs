//! `wkctl restart` (issue 19 point 1) against the simulator: a rolling restart with no
//! version change, through the upgrade's executor, gate, state and lock. The simulator's
//! event log is the witness: each node stopped and started exactly once, in order, never
//! two down, each back on its own version with a new process.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{Sim, SimOpts, rollout_was_safe};
use crate::support::{Opts, Run, Ws, ctl_events, ctl_ok, lifecycle, node_state_of, varz_version};

const OLD: &str = "v2.0.10-20241221";
const RUN_T: Duration = Duration::from_secs(90);
const IDS: [u64; 3] = [1001, 1002, 1003];

fn restart(ws: &Ws, extra: &[&str]) -> Run {
    let mut args = vec!["restart", "--yes", "--json"];
    args.extend_from_slice(extra);
    ws.run(&args, &[])
}

/// `/varz.uptime` of a node, parsed (Go's `myUptime`).
fn uptime(sim: &Sim, id: u64) -> Option<Duration> {
    let (_, v) = sim.get_json(id, "/varz");
    wkctl::probe::models::parse_go_uptime(v["uptime"].as_str()?)
}

/// Waits (with a deadline) until every node reports at least `secs` of uptime, so that a
/// reset is visible (a freshly started simulator's processes are under a second old, and
/// its restarts take a tenth of one: too close for whole-second uptimes to tell apart).
fn wait_uptimes(sim: &Sim, secs: u64) {
    sim.wait_until("every node up for a while", RUN_T, |s| {
        IDS.iter()
            .all(|id| uptime(s, *id).is_some_and(|u| u >= Duration::from_secs(secs)))
    });
}

/// (verb, node) of every `stop`/`start`/`restart` the simulator carried out, in order.
fn verbs(sim: &Sim) -> Vec<(String, u64)> {
    lifecycle(sim).into_iter().map(|(_, v, n)| (v, n)).collect()
}

fn count(sim: &Sim, verb: &str, node: u64) -> usize {
    verbs(sim)
        .iter()
        .filter(|(v, n)| v == verb && *n == node)
        .count()
}

fn last(lines: &[Value]) -> &Value {
    lines.last().expect("some JSON lines")
}

fn node_failed(lines: &[Value]) -> &Value {
    lines
        .iter()
        .find(|l| l["type"] == "node_failed")
        .expect("a node_failed event")
}

#[test]
fn restart_each_node_once_in_order_on_its_own_version_with_a_new_process() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    wait_uptimes(&sim, 3);
    let before: Vec<Duration> = IDS.iter().map(|id| uptime(&sim, *id).unwrap()).collect();
    let t0 = Instant::now();
    let r = restart(&ws, &[]);
    assert_eq!(r.code, 0, "{}", r.all());

    // Exactly one stop and one start per node, node after node, 1001 first, and no
    // `restart` verb (no shortcut around the gate).
    let expected: Vec<(String, u64)> = IDS
        .iter()
        .flat_map(|id| [("stop".to_string(), *id), ("start".to_string(), *id)])
        .collect();
    assert_eq!(verbs(&sim), expected);
    // Each start asked for the version the node ran: no version change.
    for (_, detail, node) in ctl_events(&sim) {
        if detail.starts_with("start") {
            assert!(detail.contains(OLD), "node {node:?}: {detail}");
        }
    }
    // Never two nodes down; every stop with the cluster settled.
    rollout_was_safe(&sim.events()).unwrap();

    // Version unchanged; uptime reset: younger than the run, and than before it.
    let took = t0.elapsed();
    for (i, id) in IDS.iter().enumerate() {
        assert_eq!(varz_version(&sim, *id, None), OLD, "node {id}");
        let now = uptime(&sim, *id).expect("uptime");
        assert!(
            now <= took,
            "node {id}: uptime {now:?} is older than the run ({took:?})"
        );
        assert!(
            now < before[i] + took,
            "node {id}: uptime {now:?} did not reset (was {:?})",
            before[i]
        );
        // The simulator saw the process stop and boot again.
        let seq: Vec<String> = sim
            .events()
            .iter()
            .filter(|e| e["kind"] == "state" && e["node"] == *id)
            .filter_map(|e| e["to"].as_str().map(ToString::to_string))
            .collect();
        let stopped = seq.iter().position(|s| s == "stopped").expect("stopped");
        assert_eq!(seq[stopped + 1], "booting", "node {id}: {seq:?}");
    }

    let lines = r.lines();
    let started = lines
        .iter()
        .find(|l| l["type"] == "run_started")
        .expect("run_started");
    assert_eq!(started["data"]["kind"], "restart", "{started}");
    let order: Vec<u64> = lines
        .iter()
        .filter(|l| l["type"] == "node_ready")
        .map(|l| {
            assert_eq!(l["data"]["version"], OLD, "{l}");
            l["data"]["node"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(order, IDS);
    // The plan's steps, as run: no prepare, backup or install.
    let steps: Vec<&str> = lines
        .iter()
        .filter(|l| l["type"] == "step_started" && l["data"]["node"] == 1002)
        .map(|l| l["data"]["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        ["check_settled", "stop", "start", "wait_ready", "soak"]
    );
    let summary = last(&lines);
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["data"]["ok"], true, "{summary}");
    assert_eq!(summary["data"]["to"], OLD);
    // A restart's vocabulary (issue 19): its kind, and each node restarted, not upgraded.
    assert_eq!(summary["data"]["kind"], "restart", "{summary}");
    let statuses: Vec<(u64, &str)> = summary["data"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_u64().unwrap(), n["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [
            (1001, "restarted"),
            (1002, "restarted"),
            (1003, "restarted")
        ]
    );
    // The gate's B, as a restart names it.
    assert!(
        lines.iter().any(|l| l["type"] == "gate_signal"
            && l["data"]["signal"] == "B"
            && l["data"]["name"] == "new process on the same version"),
        "no restart-named B"
    );
    assert!(
        !r.stdout.contains("new process on target version"),
        "an upgrade's B in a restart"
    );
    // `wkctl history` says restarted too, in JSON and text.
    let h = ws.run(&["history", "--json"], &[]);
    assert_eq!(h.code, 0, "{}", h.all());
    let run = &h.json()["runs"][0];
    assert_eq!(run["kind"], "restart", "{run}");
    let words: Vec<&str> = run["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["status"].as_str().unwrap())
        .collect();
    assert_eq!(words, ["restarted", "restarted", "restarted"], "{run}");
    let h = ws.run(&["history"], &[]);
    assert_eq!(h.code, 0, "{}", h.all());
    assert!(
        h.stdout.contains(&format!("restart on {OLD}")),
        "{}",
        h.stdout
    );
    assert_eq!(h.stdout.matches("restarted").count(), 3, "{}", h.stdout);
    assert!(!h.stdout.contains("upgraded"), "{}", h.stdout);
    let st = ws.state();
    assert_eq!(st["kind"], "restart", "{st}");
    assert_eq!(st["status"], "completed");
    for id in IDS {
        let n = node_state_of(&ws, id);
        assert_eq!(n["status"], "ready", "{n}");
        assert!(n["stop_issued_at_ms"].as_u64().is_some(), "{n}");
    }
}

#[test]
fn restart_nodes_1002_restarts_only_1002() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    wait_uptimes(&sim, 3);
    let r = restart(&ws, &["--nodes", "1002"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(
        verbs(&sim),
        [("stop".to_string(), 1002), ("start".to_string(), 1002)]
    );
    assert!(
        ctl_events(&sim).iter().all(|(_, _, n)| *n == Some(1002)),
        "{:?}",
        ctl_events(&sim)
    );
    rollout_was_safe(&sim.events()).unwrap();
    assert_eq!(node_state_of(&ws, 1002)["status"], "ready");
    assert_eq!(node_state_of(&ws, 1001)["status"], "skipped");
    assert_eq!(node_state_of(&ws, 1003)["status"], "skipped");
}

#[test]
fn dry_run_json_prints_the_restart_plan_and_touches_nothing() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    let r = ws.run(&["restart", "--dry-run", "--json"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let plan = r.json();
    assert_eq!(plan["kind"], "restart", "{plan}");
    assert_eq!(plan["to"], OLD);
    let nodes = plan["nodes"].as_array().expect("nodes");
    assert_eq!(
        nodes
            .iter()
            .map(|n| n["id"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        IDS
    );
    for n in nodes {
        assert_eq!(n["action"], "restart", "{n}");
        assert_eq!(n["from"], OLD, "{n}");
        let kinds: Vec<&str> = n["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            ["check_settled", "stop", "start", "wait_ready", "soak"],
            "{n}"
        );
    }
    assert!(lifecycle(&sim).is_empty(), "{:?}", lifecycle(&sim));
    assert!(ctl_events(&sim).is_empty(), "{:?}", ctl_events(&sim));
    assert!(!ws.state_file().exists(), "a dry run writes no state");
    // An upgrade's plan has no `kind`: its JSON is as it was.
    let up = ws.run(&["upgrade", "--to", "v2.1.2", "--dry-run", "--json"], &[]);
    assert_eq!(up.code, 0, "{}", up.all());
    assert!(up.json().get("kind").is_none(), "{}", up.stdout);
}

#[test]
fn a_crash_loop_during_the_restart_stops_at_that_node() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::with_node_timeout(&sim, "4s");
    wait_uptimes(&sim, 3);
    ctl_ok(&sim, &["fault", "1002", "crash-loop"]);
    let r = restart(&ws, &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    let lines = r.lines();
    let failed = node_failed(&lines);
    assert_eq!(failed["data"]["node"], 1002, "{failed}");
    let said = format!("{} {}", failed["data"]["signal"], failed["data"]["reason"]);
    assert!(
        said.contains('G') || said.contains("crash loop"),
        "a crash loop: {said}"
    );
    assert!(
        ctl_events(&sim).iter().all(|(_, _, n)| *n != Some(1003)),
        "node 1003 was touched: {:?}",
        ctl_events(&sim)
    );
    assert_eq!(count(&sim, "stop", 1001), 1);
    assert_eq!(count(&sim, "stop", 1002), 1);
    assert_eq!(last(&lines)["data"]["ok"], false);
    rollout_was_safe(&sim.events()).unwrap();
    let st = ws.state();
    assert_eq!(st["status"], "failed", "{st}");
    assert_eq!(node_state_of(&ws, 1001)["status"], "ready");
    assert_eq!(node_state_of(&ws, 1002)["status"], "failed");
    assert_eq!(node_state_of(&ws, 1003)["status"], "pending");
    // A restart changed no version: there is nothing to roll back to.
    let rb = ws.run(&["rollback", "--node", "1002", "--yes"], &[]);
    assert_eq!(rb.code, 1, "{}", rb.all());
    assert!(rb.stderr.contains("is a restart"), "{}", rb.all());
}

/// B means a new process: a playbook whose `stop` and `start` do nothing (the node never
/// goes down) fails the gate on B, with the old process named.
#[test]
fn a_start_that_does_not_restart_the_process_fails_the_gate_on_b() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::with_node_timeout(&sim, "3s");
    let noop = ws.dir.path().join("noop.yaml");
    std::fs::write(
        &noop,
        "name: noop\ndescription: stop and start that do nothing\nsteps:\n  stop: \"true\"\n  start: \"true\"\n",
    )
    .unwrap();
    let text = std::fs::read_to_string(&ws.manifest).unwrap();
    std::fs::write(
        &ws.manifest,
        text.replace("playbook: sim", &format!("playbook: {}", noop.display())),
    )
    .unwrap();
    let r = restart(&ws, &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    let lines = r.lines();
    let failed = node_failed(&lines);
    assert_eq!(failed["data"]["node"], 1001, "{failed}");
    assert_eq!(failed["data"]["step"], "wait_ready", "{failed}");
    // B as a restart names it (issue 19): a new process on the same version.
    assert_eq!(
        failed["data"]["signal"], "B new process on the same version",
        "{failed}"
    );
    let reason = failed["data"]["reason"].as_str().unwrap_or("");
    assert!(reason.contains("still the old process"), "{reason}");
    assert!(
        reason.contains("gate signal B (new process on the same version) never held"),
        "{reason}"
    );
    assert!(!r.all().contains("on target version"), "{}", r.all());
    let summary = last(&lines);
    assert_eq!(summary["data"]["kind"], "restart", "{summary}");
    assert_eq!(summary["data"]["nodes"][0]["status"], "failed", "{summary}");
    // The simulator's witness: the node never went down, nothing else was touched.
    assert!(
        !sim.events()
            .iter()
            .any(|e| e["kind"] == "state" && e["to"] == "stopped"),
        "a node stopped"
    );
    assert!(ctl_events(&sim).is_empty(), "{:?}", ctl_events(&sim));
    assert_eq!(node_state_of(&ws, 1002)["status"], "pending");
}

/// kill -9 during 1002's gate: `upgrade --resume` (and a plain `upgrade`) are refused,
/// naming the restart; `restart --resume` finishes it with exactly one stop and one start
/// per node.
#[test]
fn kill_9_mid_restart_then_restart_resume_finishes_with_exact_counts() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    wait_uptimes(&sim, 3);
    let mut run = ws.spawn(&["restart", "--yes", "--json"], &[]);
    run.wait_for("gate of 1002", RUN_T, |v| {
        v["type"] == "step_started"
            && v["data"]["node"] == 1002
            && v["data"]["step"] == "wait_ready"
    });
    run.kill9();
    sim.wait_settled(1002, RUN_T);
    let touched = verbs(&sim);

    let up = ws.run(&["upgrade", "--resume", "--yes", "--json"], &[]);
    assert_eq!(up.code, 1, "{}", up.all());
    assert!(
        up.stderr.contains("is a restart, not an upgrade")
            && up.stderr.contains("hint:")
            && up.stderr.contains("wkctl restart --resume"),
        "{}",
        up.all()
    );
    let plain = ws.run(&["upgrade", "--to", "v2.1.2", "--yes"], &[]);
    assert_eq!(plain.code, 1, "{}", plain.all());
    assert!(
        plain.stderr.contains("an unfinished restart"),
        "{}",
        plain.all()
    );
    assert_eq!(verbs(&sim), touched, "the refused runs touched nothing");

    let r = ws.run(&["restart", "--resume", "--yes", "--json"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    for id in IDS {
        assert_eq!(count(&sim, "stop", id), 1, "node {id}: {:?}", verbs(&sim));
        assert_eq!(count(&sim, "start", id), 1, "node {id}: {:?}", verbs(&sim));
        assert_eq!(count(&sim, "restart", id), 0, "node {id}");
        assert_eq!(varz_version(&sim, id, None), OLD);
    }
    rollout_was_safe(&sim.events()).unwrap();
    let st = ws.state();
    assert_eq!(st["kind"], "restart");
    assert_eq!(st["status"], "completed", "{st}");
    // 1001, restarted before the kill, was re-verified (new process since its stop).
    let lines = r.lines();
    assert!(
        lines.iter().any(|l| l["type"] == "node_skipped"
            && l["data"]["node"] == 1001
            && l["data"]["reason"]
                .as_str()
                .is_some_and(|s| s.contains("re-verified"))),
        "{}",
        r.stdout
    );
}

/// The other way round: `restart --resume` (and a plain `restart`) on an unfinished
/// upgrade is refused, naming the upgrade.
#[test]
fn restart_resume_on_an_unfinished_upgrade_is_refused() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::with_node_timeout(&sim, "2s");
    ctl_ok(&sim, &["fault", "1001", "never-starts"]);
    let up = ws.run(&["upgrade", "--to", "v2.1.2", "--yes", "--json"], &[]);
    assert_eq!(up.code, 1, "{}", up.all());
    let touched = verbs(&sim);
    let r = ws.run(&["restart", "--resume", "--yes"], &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains("is an upgrade, not a restart")
            && r.stderr.contains("wkctl upgrade --resume"),
        "{}",
        r.all()
    );
    assert_eq!(
        r.stderr.lines().filter(|l| !l.trim().is_empty()).count(),
        2,
        "{}",
        r.all()
    );
    let r = ws.run(&["restart", "--yes"], &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("an unfinished upgrade"), "{}", r.all());
    assert_eq!(verbs(&sim), touched, "the refused runs touched nothing");
}
