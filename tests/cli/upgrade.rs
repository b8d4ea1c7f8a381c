//! `wkctl upgrade` and `wkctl demo` against the simulator (issue "upgrade and demo"): the
//! simulator's event log is the witness of what really happened to each node.

use std::time::Duration;

use serde_json::Value;

use crate::harness::{Sim, SimOpts, rollout_was_safe};
use crate::support::{
    FAST_POLICY, Opts, Run, TOKEN_ENV, Ws, commands_in, ctl_events, ctl_ok, demo_with_sim_log,
    json_lines, lifecycle, node_state_of, varz_version,
};

const TARGET: &str = "v2.1.2-20250120";
const RUN_T: Duration = Duration::from_secs(90);

fn upgrade(ws: &Ws, extra: &[&str], env: &[(&str, &str)]) -> Run {
    let mut args = vec!["upgrade", "--to", "v2.1.2", "--yes", "--json"];
    args.extend_from_slice(extra);
    ws.run(&args, env)
}

fn assert_all_on(sim: &Sim, version: &str, token: Option<&str>) {
    for n in &sim.nodes {
        assert_eq!(
            varz_version(sim, n.id, token),
            version,
            "node {} /varz",
            n.id
        );
    }
}

fn assert_last_is_summary(lines: &[Value], ok: bool) {
    let last = lines.last().expect("some JSON lines");
    assert_eq!(last["type"], "summary", "{last}");
    assert_eq!(last["data"]["ok"], ok, "{last}");
}

/// `stable_for` is 50 ms here, shorter than the simulator's stale → settled phase (about
/// 150 ms at ×20): a gate that checked only A, B and G would let the next node be stopped
/// before the previous one settled, and the event-log checks below would fail. C–F decide.
#[test]
fn happy_path_one_node_at_a_time_1001_first() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(
        &sim,
        &Opts {
            policy: FAST_POLICY.replace("stable_for: 400ms", "stable_for: 50ms"),
            ..Opts::default()
        },
    );
    let r = upgrade(&ws, &[], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_all_on(&sim, TARGET, None);
    let shown = ctl_ok(&sim, &["show"]);
    assert_eq!(shown.matches(TARGET).count(), 3, "{shown}");

    let events = sim.events();
    let life = lifecycle(&sim);
    let stops: Vec<u64> = life
        .iter()
        .filter(|(_, v, _)| v == "stop")
        .map(|(_, _, n)| *n)
        .collect();
    assert_eq!(stops, [1001, 1002, 1003], "{life:?}");
    rollout_was_safe(&events).unwrap();
    // Each node's start came only after the previous node settled on its new process.
    let ids = [1001u64, 1002, 1003];
    for w in ids.windows(2) {
        let (prev, next) = (w[0], w[1]);
        let prev_start = events
            .iter()
            .position(|e| {
                e["kind"] == "ctl"
                    && e["node"] == prev
                    && e["detail"].as_str().unwrap_or("").starts_with("start")
            })
            .expect("prev start");
        let settled = events[prev_start..]
            .iter()
            .find(|e| e["kind"] == "state" && e["node"] == prev && e["to"] == "settled")
            .expect("prev settled")["ts_ms"]
            .as_i64()
            .unwrap();
        let (next_stop, _, _) = life
            .iter()
            .find(|(_, v, n)| v == "stop" && *n == next)
            .expect("next stop");
        let (next_start, _, _) = life
            .iter()
            .find(|(_, v, n)| v == "start" && *n == next)
            .expect("next start");
        assert!(
            settled <= *next_stop,
            "node {next} stopped at {next_stop} before {prev} settled at {settled}"
        );
        assert!(
            settled <= *next_start,
            "node {next} started at {next_start} before {prev} settled at {settled}"
        );
    }
    let lines = r.lines();
    assert_last_is_summary(&lines, true);
    let st = ws.state();
    assert_eq!(st["status"], "completed");
    for id in ids {
        assert_eq!(node_state_of(&ws, id)["status"], "ready", "{st}");
    }
}

#[test]
fn json_stream_every_line_parses_and_ends_with_summary() {
    let sim = Sim::start(SimOpts {
        version: "v2.1.3-20250210".into(),
        ..SimOpts::default()
    });
    let ws = Ws::new(&sim, &Opts::default());
    let r = ws.run(&["upgrade", "--to", "v2.1.4", "--yes", "--json"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let lines = json_lines(&r.stdout); // panics on any non-JSON line
    for l in &lines {
        assert!(l["type"].is_string() && l["data"].is_object(), "{l}");
    }
    let types: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
    assert_eq!(types.first(), Some(&"check_finished"), "{types:?}");
    assert!(types.contains(&"run_started"));
    assert_eq!(types.iter().filter(|t| **t == "node_ready").count(), 3);
    assert_eq!(types.iter().filter(|t| **t == "soak_finished").count(), 3);
    assert_last_is_summary(&lines, true);
    let s = &lines.last().unwrap()["data"];
    assert_eq!(s["status"], "completed");
    assert_eq!(s["to"], "v2.1.4-20250319");
    let st: Vec<&str> = s["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["status"].as_str().unwrap())
        .collect();
    assert_eq!(st, ["upgraded", "upgraded", "upgraded"]);
    let order: Vec<u64> = lines
        .iter()
        .filter(|l| l["type"] == "node_started")
        .map(|l| l["data"]["node"].as_u64().unwrap())
        .collect();
    assert_eq!(order, [1001, 1002, 1003]);
    rollout_was_safe(&sim.events()).unwrap();
}

/// Injects `fault` on 1002, runs the upgrade: 1001 done, 1002 failed, 1003 never touched.
fn fault_on_1002(fault: &[&str], signals: &[&str]) {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::with_node_timeout(&sim, "4s");
    let mut args = vec!["fault", "1002"];
    args.extend_from_slice(fault);
    ctl_ok(&sim, &args);
    let r = upgrade(&ws, &[], &[]);
    assert_eq!(r.code, 1, "{fault:?}: {}", r.all());
    let ctl = ctl_events(&sim);
    assert!(
        ctl.iter().all(|(_, _, n)| *n != Some(1003)),
        "{fault:?}: node 1003 was touched: {ctl:?}"
    );
    assert_eq!(varz_version(&sim, 1003, None), "v2.0.10-20241221");
    let lines = r.lines();
    let failed = lines
        .iter()
        .find(|l| l["type"] == "node_failed")
        .unwrap_or_else(|| panic!("{fault:?}: no node_failed:\n{}", r.all()));
    assert_eq!(failed["data"]["node"], 1002, "{failed}");
    let said = format!(
        "{} {}",
        failed["data"]["signal"].as_str().unwrap_or(""),
        failed["data"]["reason"].as_str().unwrap_or("")
    );
    assert!(
        signals.iter().any(|s| said.contains(s)),
        "{fault:?}: node_failed should name one of {signals:?}, got `{said}`"
    );
    assert_last_is_summary(&lines, false);
    let st = ws.state();
    assert_eq!(st["status"], "failed", "{st}");
    assert_eq!(node_state_of(&ws, 1001)["status"], "ready", "{st}");
    assert_eq!(node_state_of(&ws, 1002)["status"], "failed", "{st}");
    assert_eq!(node_state_of(&ws, 1003)["status"], "pending", "{st}");
    rollout_was_safe(&sim.events()).unwrap();
}

#[test]
fn fault_never_starts_stops_the_run() {
    fault_on_1002(&["never-starts"], &["A "]);
}

#[test]
fn fault_crash_loop_stops_the_run() {
    fault_on_1002(&["crash-loop"], &["G", "crash loop"]);
}

#[test]
fn fault_wrong_version_stops_the_run() {
    fault_on_1002(&["wrong-version"], &["B "]);
}

#[test]
fn fault_slow_start_beyond_timeout_stops_the_run() {
    fault_on_1002(&["slow-start", "600"], &["A "]);
}

#[test]
fn fault_no_rejoin_stops_the_run() {
    fault_on_1002(&["no-rejoin"], &["C ", "D "]);
}

/// `blackhole` acts immediately: injected before the run, the pre-upgrade check refuses
/// (1002 does not answer) and nothing at all is touched.
#[test]
fn fault_blackhole_before_the_run_is_refused() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    ctl_ok(&sim, &["fault", "1002", "blackhole"]);
    let r = upgrade(&ws, &[], &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(lifecycle(&sim).is_empty(), "{:?}", lifecycle(&sim));
    let lines = r.lines();
    let check = lines
        .iter()
        .find(|l| l["type"] == "check_finished")
        .expect("check_finished");
    assert_eq!(check["data"]["ok"], false);
    assert!(
        check["data"]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["node"] == 1002
                && f["severity"] == "block"
                && f["id"] == "node.unreachable"),
        "the refusal names `node.unreachable` for 1002: {check}"
    );
    rollout_was_safe(&sim.events()).unwrap();
}

/// `blackhole` hitting 1002 while it is being upgraded: the gate never sees A, the run stops.
#[test]
fn fault_blackhole_during_the_run_stops_it() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::with_node_timeout(&sim, "5s");
    let mut run = ws.spawn(&["upgrade", "--to", "v2.1.2", "--yes", "--json"], &[]);
    run.wait_for("step_started stop 1002", RUN_T, |v| {
        v["type"] == "step_started" && v["data"]["node"] == 1002 && v["data"]["step"] == "stop"
    });
    ctl_ok(&sim, &["fault", "1002", "blackhole"]);
    let (code, err) = run.finish(RUN_T);
    assert_eq!(code, 1, "{err}\n{}", run.text());
    let lines: Vec<Value> = run.values().into_iter().map(|(_, v)| v).collect();
    let failed = lines
        .iter()
        .find(|l| l["type"] == "node_failed")
        .expect("node_failed");
    assert_eq!(failed["data"]["node"], 1002);
    let said = format!(
        "{} {}",
        failed["data"]["signal"].as_str().unwrap_or(""),
        failed["data"]["reason"].as_str().unwrap_or("")
    );
    assert!(
        said.contains("A "),
        "blackhole: expected signal A, got `{said}`"
    );
    assert!(ctl_events(&sim).iter().all(|(_, _, n)| *n != Some(1003)));
    assert_eq!(node_state_of(&ws, 1002)["status"], "failed");
    rollout_was_safe(&sim.events()).unwrap();
}

#[test]
fn degraded_cluster_is_refused_before_anything_is_touched() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    ctl_ok(&sim, &["stop", "1003"]);
    sim.wait_until("1003 offline", Duration::from_secs(30), |s| {
        s.events()
            .iter()
            .any(|e| e["kind"] == "offline_marked" && e["node"] == 1003)
    });
    let before = lifecycle(&sim);
    let r = upgrade(&ws, &[], &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert_eq!(
        lifecycle(&sim),
        before,
        "wkctl touched a node of a degraded cluster"
    );
    let lines = r.lines();
    assert_eq!(lines[0]["type"], "check_finished");
    assert_eq!(lines[0]["data"]["ok"], false);
    assert!(!lines.iter().any(|l| l["type"] == "run_started"));
    // The human form says so too.
    let r = ws.run(&["upgrade", "--to", "v2.1.2", "--yes"], &[]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.contains("refused") && r.stdout.contains("nothing was changed"),
        "{}",
        r.all()
    );
}

#[test]
fn kill9_in_gate_then_resume_finishes_without_restarting_1001() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    let mut run = ws.spawn(&["upgrade", "--to", "v2.1.2", "--yes", "--json"], &[]);
    run.wait_for("1002 in its gate", RUN_T, |v| {
        v["type"] == "step_started"
            && v["data"]["node"] == 1002
            && v["data"]["step"] == "wait_ready"
    });
    run.kill9();
    let st = ws.state();
    assert_eq!(st["status"], "running", "{st}");
    assert_eq!(node_state_of(&ws, 1001)["status"], "ready");
    assert_eq!(node_state_of(&ws, 1002)["status"], "in_progress");

    let r = ws.run(&["upgrade", "--resume", "--yes", "--json"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_all_on(&sim, TARGET, None);
    let life = lifecycle(&sim);
    let count = |verb: &str, id: u64| {
        life.iter()
            .filter(|(_, v, n)| v == verb && *n == id)
            .count()
    };
    assert_eq!(count("stop", 1001), 1, "1001 restarted again: {life:?}");
    assert_eq!(count("start", 1001), 1, "{life:?}");
    assert_eq!(count("stop", 1003), 1, "{life:?}");
    rollout_was_safe(&sim.events()).unwrap();
    let lines = r.lines();
    let started = lines
        .iter()
        .find(|l| l["type"] == "run_started")
        .expect("run_started");
    assert_eq!(started["data"]["resume"], true);
    assert_last_is_summary(&lines, true);
    assert_eq!(ws.state()["status"], "completed");
}

#[test]
fn concurrent_second_run_is_refused_by_the_lock() {
    let sim = Sim::start(SimOpts::default());
    let policy = FAST_POLICY.replace("soak: 300ms", "soak: 30s");
    let ws = Ws::new(
        &sim,
        &Opts {
            policy,
            ..Opts::default()
        },
    );
    let mut first = ws.spawn(&["upgrade", "--to", "v2.1.2", "--yes", "--json"], &[]);
    first.wait_for("run_started", RUN_T, |v| v["type"] == "run_started");
    let pid = first.child.id().to_string();
    for extra in [&[][..], &["--resume"]] {
        let mut args = vec!["upgrade", "--to", "v2.1.2", "--yes"];
        args.extend_from_slice(extra);
        let r = ws.run(&args, &[]);
        assert_eq!(r.code, 1, "{args:?}: {}", r.all());
        assert!(r.stderr.contains("lock"), "{args:?}: {}", r.all());
        assert!(
            r.stderr.contains(&pid),
            "{args:?}: stderr should name the owner pid {pid}: {}",
            r.all()
        );
    }
    first.kill9();
    let stops = lifecycle(&sim)
        .iter()
        .filter(|(_, v, _)| v == "stop")
        .count();
    assert!(stops <= 1, "only the first run touched a node");
    rollout_was_safe(&sim.events()).unwrap();
}

#[test]
fn plain_upgrade_with_an_unfinished_run_points_to_resume_and_discard() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::with_node_timeout(&sim, "3s");
    ctl_ok(&sim, &["fault", "1001", "wrong-version"]);
    let r = upgrade(&ws, &[], &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    let before = lifecycle(&sim);
    let r = ws.run(&["upgrade", "--to", "v2.1.2", "--yes"], &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains("--resume") && r.stderr.contains("--discard"),
        "{}",
        r.all()
    );
    assert_eq!(lifecycle(&sim), before, "the refused run touched nothing");
    rollout_was_safe(&sim.events()).unwrap();
}

#[test]
fn token_never_appears_in_output_state_or_plan() {
    let secret = "mgr-TOKEN-5f1c-secret";
    let (sim, ws) = Ws::with_token(secret);
    let env = [(TOKEN_ENV, secret)];
    let r = upgrade(&ws, &[], &env);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(!r.all().contains(secret), "upgrade output leaked the token");
    assert_all_on(&sim, TARGET, Some(secret));
    let r = ws.run(&["upgrade", "--to", "v2.1.2", "--yes"], &env); // human form: nothing to do
    assert!(!r.all().contains(secret));
    let plan = ws.run(&["plan", "--to", "v2.1.4", "--json"], &env);
    assert_eq!(plan.code, 0, "{}", plan.all());
    assert!(!plan.all().contains(secret), "plan leaked the token");
    let mut files = 0;
    for e in walk(&ws.state_base()) {
        files += 1;
        let bytes = std::fs::read(&e).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(secret),
            "{} contains the token",
            e.display()
        );
    }
    assert!(files >= 1, "the state dir has files");
    let manifest = std::fs::read_to_string(&ws.manifest).unwrap();
    assert!(!manifest.contains(secret));
    rollout_was_safe(&sim.events()).unwrap();
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    let r = ws.run(&["upgrade", "--to", "v2.1.2", "--dry-run"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    for id in ["1001", "1002", "1003"] {
        assert!(r.stdout.contains(id), "{}", r.all());
    }
    assert!(
        r.stdout.contains("stop") && r.stdout.contains("wait_ready"),
        "{}",
        r.all()
    );
    assert!(r.stderr.contains("dry run"), "{}", r.all());
    let r = ws.run(&["upgrade", "--to", "v2.1.2", "--dry-run", "--json"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let plan = r.json();
    let ids: Vec<u64> = plan["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [1001, 1002, 1003]);
    assert!(ctl_events(&sim).is_empty(), "{:?}", ctl_events(&sim));
    assert!(!ws.state_base().exists(), "the dry run created a state dir");
    assert_all_on(&sim, "v2.0.10-20241221", None);
}

/// The demo's own simulator is the witness: every node really stopped once and started
/// once on the target, one at a time, each stop on a settled cluster.
#[test]
fn demo_succeeds_in_under_a_minute() {
    let d = demo_with_sim_log(&["--speed", "8"]);
    assert_eq!(d.code, Some(0), "{}", d.all);
    assert!(d.took < Duration::from_mins(1), "demo took {:?}", d.took);
    assert!(d.all.contains("done:"), "{}", d.all);
    assert!(!d.all.contains("FAILED"), "{}", d.all);
    // The client check runs (over the floor) and reports the movement.
    assert!(!d.all.contains("client check skipped"), "{}", d.all);
    for id in [1001u64, 1002, 1003] {
        assert!(
            d.all
                .lines()
                .any(|l| l.starts_with(&format!("{id}: ")) && l.contains("clients moved off")),
            "no client movement shown for {id}:\n{}",
            d.all
        );
    }
    rollout_was_safe(&d.events).unwrap();
    let cmds = commands_in(&d.events);
    let stops: Vec<u64> = cmds
        .iter()
        .filter(|(v, _, _)| v == "stop")
        .map(|(_, n, _)| *n)
        .collect();
    assert_eq!(stops, [1001, 1002, 1003], "{cmds:?}");
    for id in [1001u64, 1002, 1003] {
        assert!(
            cmds.iter()
                .any(|(v, n, d)| v == "start" && *n == id && d.contains("v2.1.2")),
            "node {id} started on v2.1.2: {cmds:?}"
        );
    }
}

/// `demo --fault crash-loop`: the simulator shows 1002 crashing and 1003 never touched
/// (not wkctl's own "not touched" line).
#[test]
fn demo_with_a_crash_loop_fails_and_touches_no_other_node() {
    let d = demo_with_sim_log(&["--speed", "20", "--fault", "crash-loop"]);
    assert_eq!(d.code, Some(1), "{}", d.all);
    assert!(d.all.contains("node 1002: FAILED"), "{}", d.all);
    assert!(
        d.events
            .iter()
            .any(|e| e["kind"] == "state" && e["node"] == 1002 && e["to"] == "crashed"),
        "the simulator saw 1002 crash"
    );
    let cmds = commands_in(&d.events);
    assert!(
        cmds.iter().all(|(_, n, _)| *n != 1003),
        "1003 was touched: {cmds:?}"
    );
    rollout_was_safe(&d.events).unwrap();
}
