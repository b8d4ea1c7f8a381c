//! Drain hooks (issue 19.3): a playbook's `drain` runs before a node's pre-stop check and
//! stop, its `undrain` once the node's gate held (before the soak). The order is checked
//! against the simulator's own event log (its `ctl` stops and `rejoined` events), with the
//! hooks' own timestamps.

use serde_json::Value;

use crate::harness::{Sim, SimOpts, rollout_was_safe};
use crate::support::{Opts, Ws, lifecycle};

const UP: [&str; 5] = ["upgrade", "--to", "v2.1.2", "--yes", "--json"];
const RESUME: [&str; 4] = ["upgrade", "--resume", "--yes", "--json"];

/// A workspace whose playbook is the sim's plus `drain`/`undrain` steps (shell text, with
/// `{{node.id}}` and `{{state_dir}}` available). Each hook appends `<kind> <id> <ms>` to
/// `hooks.log` in the simulator's state dir unless its text says otherwise.
pub(crate) fn ws_with_hooks(sim: &Sim, drain: &str, undrain: &str) -> Ws {
    let pb = format!(
        "{}  drain: {}\n  undrain: {}\n",
        include_str!("../../playbooks/sim.yaml").replace("name: sim", "name: sim-hooks"),
        serde_json::to_string(drain).unwrap(),
        serde_json::to_string(undrain).unwrap(),
    );
    let ws = Ws::new(sim, &Opts::default());
    std::fs::write(ws.dir.path().join("pb.yaml"), pb).unwrap();
    let m = std::fs::read_to_string(&ws.manifest)
        .unwrap()
        .replace("playbook: sim", "playbook: ./pb.yaml");
    std::fs::write(&ws.manifest, m).unwrap();
    ws
}

pub(crate) fn log_line(kind: &str) -> String {
    format!("echo \"{kind} {{{{node.id}}}} $(date +%s%3N)\" >> {{{{state_dir}}}}/hooks.log")
}

/// `(kind, node, ms)` of every hook that ran, in order.
pub(crate) fn hooks(sim: &Sim) -> Vec<(String, u64, i64)> {
    std::fs::read_to_string(sim.state_dir().join("hooks.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[0].to_string(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
            )
        })
        .collect()
}

/// When the simulator saw `kind` for `node` (the first at or after `after`).
fn sim_event_at(sim: &Sim, kind: &str, node: u64, after: i64) -> Option<i64> {
    if kind == "stop" {
        return lifecycle(sim)
            .into_iter()
            .find(|(t, v, n)| v == "stop" && *n == node && *t >= after)
            .map(|(t, _, _)| t);
    }
    sim.events()
        .iter()
        .filter(|e| e["kind"] == kind && e["node"] == node)
        .filter_map(|e| e["ts_ms"].as_i64())
        .find(|t| *t >= after)
}

fn event_kinds(lines: &[Value], node: u64) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l["data"]["node"] == node)
        .filter_map(|l| match l["type"].as_str()? {
            "step_started" => Some(l["data"]["step"].as_str()?.to_string()),
            "node_ready" => Some("ready".to_string()),
            "soak_finished" => Some("soaked".to_string()),
            _ => None,
        })
        .collect()
}

#[test]
fn drain_runs_before_the_stop_and_undrain_after_the_gate_for_each_node() {
    let sim = Sim::start(SimOpts::default());
    let ws = ws_with_hooks(&sim, &log_line("drain"), &log_line("undrain"));
    let r = ws.run(&UP, &[]);
    assert_eq!(r.code, 0, "{}", r.all());

    let h = hooks(&sim);
    let order: Vec<(String, u64)> = h.iter().map(|(k, n, _)| (k.clone(), *n)).collect();
    let mut want = Vec::new();
    for id in [1001, 1002, 1003] {
        want.push(("drain".to_string(), id));
        want.push(("undrain".to_string(), id));
    }
    assert_eq!(
        order, want,
        "one drain and one undrain per node, node by node"
    );

    // On the simulator's clock: drain < stop < rejoined < undrain < next drain.
    for (i, id) in [1001u64, 1002, 1003].into_iter().enumerate() {
        let drained = h[2 * i].2;
        let undrained = h[2 * i + 1].2;
        let stop = sim_event_at(&sim, "stop", id, drained).expect("stopped after its drain");
        let rejoined = sim_event_at(&sim, "rejoined", id, stop).expect("rejoined");
        assert!(
            drained <= stop,
            "node {id}: drain {drained} before stop {stop}"
        );
        assert!(
            rejoined <= undrained,
            "node {id}: undrain {undrained} only after it rejoined ({rejoined})"
        );
        if let Some(next) = h.get(2 * i + 2) {
            assert!(
                undrained <= next.2,
                "node {id} undrained before the next drain"
            );
        }
    }
    // And in wkctl's own events: drain, then the pre-stop check, …, the gate, undrain, soak.
    let lines = r.lines();
    assert_eq!(
        event_kinds(&lines, 1002),
        [
            "drain",
            "check_settled",
            "stop",
            "backup",
            "install",
            "start",
            "wait_ready",
            "ready",
            "undrain",
            "soak",
            "soaked"
        ]
    );
    rollout_was_safe(&sim.events()).unwrap();
}

#[test]
fn a_failed_drain_leaves_the_node_serving_and_stops_the_run() {
    let sim = Sim::start(SimOpts::default());
    let drain = format!(
        "if [ {{{{node.id}}}} = 1002 ]; then echo 'lb api: 503' >&2; exit 3; fi; {}",
        log_line("drain")
    );
    let ws = ws_with_hooks(&sim, &drain, &log_line("undrain"));
    let r = ws.run(&UP, &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    let failed = r
        .lines()
        .into_iter()
        .find(|l| l["type"] == "node_failed")
        .unwrap_or_else(|| panic!("no node_failed:\n{}", r.all()));
    assert_eq!(failed["data"]["node"], 1002);
    assert_eq!(failed["data"]["step"], "drain");
    assert!(
        failed["data"]["reason"]
            .as_str()
            .unwrap()
            .contains("lb api: 503"),
        "{failed}"
    );
    // 1001 was upgraded; 1002 and 1003 were never stopped.
    let stops: Vec<u64> = lifecycle(&sim)
        .into_iter()
        .filter(|(_, v, _)| v == "stop")
        .map(|(_, _, n)| n)
        .collect();
    assert_eq!(stops, [1001]);
    assert_eq!(sim.node_state(1002), "settled");
    rollout_was_safe(&sim.events()).unwrap();
}

#[test]
fn a_failed_undrain_stops_the_run_and_resume_runs_it_again_without_a_restart() {
    let sim = Sim::start(SimOpts::default());
    // 1001's first undrain fails; every later one works.
    let undrain = format!(
        "if [ {{{{node.id}}}} = 1001 ] && [ ! -e {{{{state_dir}}}}/undrain-failed ]; then touch {{{{state_dir}}}}/undrain-failed; echo 'lb api down' >&2; exit 1; fi; {}",
        log_line("undrain")
    );
    let ws = ws_with_hooks(&sim, &log_line("drain"), &undrain);
    let r = ws.run(&UP, &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    let failed = r
        .lines()
        .into_iter()
        .find(|l| l["type"] == "node_failed")
        .unwrap_or_else(|| panic!("no node_failed:\n{}", r.all()));
    assert_eq!(failed["data"]["node"], 1001);
    assert_eq!(failed["data"]["step"], "undrain");
    // The run stopped there: 1002 was not drained, nothing else was stopped.
    assert_eq!(
        hooks(&sim)
            .iter()
            .map(|(k, n, _)| (k.as_str(), *n))
            .collect::<Vec<_>>(),
        [("drain", 1001)]
    );

    let r = ws.run(&RESUME, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let order: Vec<(String, u64)> = hooks(&sim).into_iter().map(|(k, n, _)| (k, n)).collect();
    assert_eq!(
        order[..2],
        [("drain".to_string(), 1001), ("undrain".to_string(), 1001)],
        "resume re-ran 1001's undrain (not its drain)"
    );
    // 1001 was stopped once: the resume re-gated it and ran undrain, without a restart.
    let stops_1001 = lifecycle(&sim)
        .into_iter()
        .filter(|(_, v, n)| v == "stop" && *n == 1001)
        .count();
    assert_eq!(stops_1001, 1);
    rollout_was_safe(&sim.events()).unwrap();
}

/// A drained node whose pre-stop check then fails is not stopped, and goes back into
/// client traffic (its `undrain` runs).
#[test]
fn a_pre_stop_check_that_fails_after_the_drain_undrains_the_node() {
    let sim = Sim::start(SimOpts::default());
    // 1002's drain takes 1003 down behind wkctl's back: the pre-stop check must refuse.
    let drain = format!(
        "{}; if [ {{{{node.id}}}} = 1002 ]; then {{{{wksim}}}} ctl --state-dir {{{{state_dir}}}} stop 1003; fi",
        log_line("drain")
    );
    let ws = ws_with_hooks(&sim, &drain, &log_line("undrain"));
    let policy_fast_fail = std::fs::read_to_string(&ws.manifest)
        .unwrap()
        .replace("node_timeout: 8s", "node_timeout: 3s");
    std::fs::write(&ws.manifest, policy_fast_fail).unwrap();
    let r = ws.run(&UP, &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    let failed = r
        .lines()
        .into_iter()
        .find(|l| l["type"] == "node_failed")
        .unwrap_or_else(|| panic!("no node_failed:\n{}", r.all()));
    assert_eq!(failed["data"]["node"], 1002);
    assert_eq!(failed["data"]["step"], "check_settled");
    let order: Vec<(String, u64)> = hooks(&sim).into_iter().map(|(k, n, _)| (k, n)).collect();
    assert_eq!(
        order,
        [
            ("drain".to_string(), 1001),
            ("undrain".to_string(), 1001),
            ("drain".to_string(), 1002),
            ("undrain".to_string(), 1002),
        ]
    );
    let stops: Vec<u64> = lifecycle(&sim)
        .into_iter()
        .filter(|(_, v, _)| v == "stop")
        .map(|(_, _, n)| n)
        .collect();
    assert_eq!(
        stops,
        [1001, 1003],
        "1002 was never stopped (1003 by the hook)"
    );
}
