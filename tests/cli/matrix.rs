//! The fault matrix: one test per row of the README table. Each asserts, from the
//! simulator's event log, that wkctl never had two nodes down and touched nothing after
//! the failure, plus wkctl's exit code and message.

use std::time::Duration;

use serde_json::Value;

use crate::harness::{Sim, SimOpts, http_get, rollout_was_safe};
use crate::support::{
    FAST_POLICY, Opts, TOKEN_ENV, UP_WITH_ROLLBACK, Ws, ctl_ok, lifecycle, node_state_of, now_ms,
};

const RUN_T: Duration = Duration::from_secs(90);
const UP: [&str; 5] = ["upgrade", "--to", "v2.1.2", "--yes", "--json"];

/// Nodes in upgrade order.
const ORDER: [u64; 3] = [1001, 1002, 1003];

fn short_timeout_ws(sim: &Sim) -> Ws {
    let policy = FAST_POLICY.replace("node_timeout: 8s", "node_timeout: 4s");
    Ws::new(
        sim,
        &Opts {
            policy,
            ..Opts::default()
        },
    )
}

/// wkctl's own lifecycle commands: those it sent after `since` (the test's own `ctl`
/// calls are excluded by the caller through `since`).
pub fn touched_after(sim: &Sim, since: i64) -> Vec<(String, u64)> {
    lifecycle(sim)
        .into_iter()
        .filter(|(t, _, _)| *t >= since)
        .map(|(_, v, n)| (v, n))
        .collect()
}

fn failed_event(lines: &[Value]) -> Value {
    lines
        .iter()
        .find(|l| l["type"] == "node_failed")
        .cloned()
        .unwrap_or(Value::Null)
}

/// The common assertions of a run that must stop at `node`. `fault_at`: when the test
/// injected its fault at the node's stop (the fault and wkctl's stop command land together,
/// so that one stop may find the cluster unsettled by the test itself).
fn assert_stopped_at(
    sim: &Sim,
    ws: &Ws,
    node: u64,
    code: i32,
    lines: &[Value],
    fault_at: Option<i64>,
) {
    assert_eq!(code, 1, "{lines:?}");
    let f = failed_event(lines);
    assert_eq!(f["data"]["node"], node, "{f}");
    assert_eq!(lines.last().unwrap()["type"], "summary");
    // No row stops a second node itself: both invariants hold over the whole log, or up to
    // a fault injected at the stop, and never two nodes down after it.
    let events = sim.events();
    match fault_at {
        None => rollout_was_safe(&events).unwrap(),
        Some(t) => {
            crate::harness::safe_before(&events, t).unwrap();
            crate::harness::down_intervals_never_overlap(&events).unwrap();
        }
    }
    // Nothing after the failed node was touched.
    let later: Vec<u64> = ORDER.iter().copied().filter(|n| *n > node).collect();
    for (verb, n) in lifecycle(sim).into_iter().map(|(_, v, n)| (v, n)) {
        assert!(
            !later.contains(&n),
            "node {n} was touched ({verb}) after node {node} failed"
        );
    }
    assert_eq!(node_state_of(ws, node)["status"], "failed");
    for n in later {
        assert_eq!(node_state_of(ws, n)["status"], "pending");
    }
}

// ---- every start-time fault on the first, a middle and the last node ------------------

/// When a fault is injected: before the run (it acts at the node's next start) or when
/// the node's stop step starts (faults that act at once).
#[derive(Clone, Copy)]
enum Inject {
    BeforeRun,
    AtStop,
}

/// Injects `fault` into `node`, runs the upgrade, and checks that it stopped at that node
/// naming one of `expect` (a gate signal letter or words of the reason).
fn fault_stops_the_run(fault: &[&str], node: u64, expect: &[&str], inject: Inject) {
    let sim = Sim::start(SimOpts::default());
    let ws = short_timeout_ws(&sim);
    let id = node.to_string();
    let mut args = vec!["fault", id.as_str()];
    args.extend_from_slice(fault);
    if matches!(inject, Inject::BeforeRun) {
        ctl_ok(&sim, &args);
    }
    let mut run = ws.spawn(&UP, &[]);
    let mut fault_at = None;
    if matches!(inject, Inject::AtStop) {
        run.wait_for("stop step of the node", RUN_T, |v| {
            v["type"] == "step_started" && v["data"]["node"] == node && v["data"]["step"] == "stop"
        });
        fault_at = Some(now_ms());
        ctl_ok(&sim, &args);
    }
    let (code, err) = run.finish(RUN_T);
    let lines: Vec<Value> = run.values().into_iter().map(|(_, v)| v).collect();
    assert_stopped_at(&sim, &ws, node, code, &lines, fault_at);
    let f = failed_event(&lines);
    let said = format!(
        "{} {}",
        f["data"]["signal"].as_str().unwrap_or(""),
        f["data"]["reason"].as_str().unwrap_or("")
    );
    assert!(
        expect.iter().any(|s| said.contains(s)),
        "{fault:?} on {node}: expected one of {expect:?} in `{said}` ({err})"
    );
    assert!(
        f["data"]["logs_tail"]
            .as_str()
            .is_some_and(|t| t.contains("WuKongIM")),
        "logs tail shown"
    );
}

fn start_fault(fault: &[&str], node: u64, expect: &[&str]) {
    fault_stops_the_run(fault, node, expect, Inject::BeforeRun);
}

macro_rules! start_faults {
    ($($name:ident: [$($f:expr),+] on $node:expr => [$($sig:expr),+],)*) => {$(
        #[test]
        fn $name() {
            start_fault(&[$($f),+], $node, &[$($sig),+]);
        }
    )*};
}

start_faults! {
    never_starts_on_first: ["never-starts"] on 1001 => ["A "],
    never_starts_on_middle: ["never-starts"] on 1002 => ["A "],
    never_starts_on_last: ["never-starts"] on 1003 => ["A "],
    wrong_version_on_first: ["wrong-version"] on 1001 => ["B "],
    wrong_version_on_middle: ["wrong-version"] on 1002 => ["B "],
    wrong_version_on_last: ["wrong-version"] on 1003 => ["B "],
    slow_start_on_first: ["slow-start", "600"] on 1001 => ["A "],
    slow_start_on_middle: ["slow-start", "600"] on 1002 => ["A "],
    slow_start_on_last: ["slow-start", "600"] on 1003 => ["A "],
    no_rejoin_on_first: ["no-rejoin"] on 1001 => ["C ", "D "],
    no_rejoin_on_middle: ["no-rejoin"] on 1002 => ["C ", "D "],
    no_rejoin_on_last: ["no-rejoin"] on 1003 => ["C ", "D "],
    // The node is up and online, but its config lags (E) or a slot stays migrating to it
    // (F) for 30 s: only C–F can stop these runs.
    slow_catch_up_beyond_the_timeout_on_middle: ["slow-catch-up", "600"] on 1002 => ["E "],
    slow_migrate_beyond_the_timeout_on_middle: ["slow-migrate", "600"] on 1002 => ["F "],
}

// ---- a crash loop is caught at once, not at `node_timeout` ------------------------------

/// The node crashes shortly after its API opened, again and again. The run must stop
/// naming the crash loop, long before `node_timeout` (30 s here): an ordinary timeout
/// (which also reports G) does not pass.
fn crash_loop_fails_at_once(node: u64) {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::with_node_timeout(&sim, "30s");
    ctl_ok(&sim, &["fault", &node.to_string(), "crash-loop"]);
    let mut run = ws.spawn(&UP, &[]);
    let (code, err) = run.finish(RUN_T);
    let timed = run.values();
    let lines: Vec<Value> = timed.iter().map(|(_, v)| v.clone()).collect();
    assert_stopped_at(&sim, &ws, node, code, &lines, None);
    let reason = failed_event(&lines)["data"]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(reason.contains("crash loop"), "{reason} ({err})");
    let at = |pred: &dyn Fn(&Value) -> bool| {
        timed
            .iter()
            .find(|(_, v)| pred(v))
            .map_or_else(|| panic!("missing line:\n{}", run.text()), |(t, _)| *t)
    };
    let started = at(&|v| {
        v["type"] == "step_finished" && v["data"]["node"] == node && v["data"]["step"] == "start"
    });
    let failed = at(&|v| v["type"] == "node_failed");
    assert!(
        failed - started < 10_000,
        "crash loop reported {} ms after the start, not well before the 30 s node_timeout",
        failed - started
    );
}

#[test]
fn crash_loop_on_first() {
    crash_loop_fails_at_once(1001);
}

#[test]
fn crash_loop_on_middle() {
    crash_loop_fails_at_once(1002);
}

#[test]
fn crash_loop_on_last() {
    crash_loop_fails_at_once(1003);
}

// ---- C–F decide: a lag shorter than the timeout is waited out ----------------------------

/// `slow-catch-up` / `slow-migrate` of 2 s (×20) on 1002, `stable_for` 400 ms: a gate
/// that checked only A, B and G would call 1002 ready while its config still lags or a
/// slot still migrates to it. The run succeeds, and wkctl's `node_ready` for 1002 comes
/// only after the simulator's own `settled` for it.
fn lag_is_waited_out(fault: &str) {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::with_node_timeout(&sim, "30s");
    ctl_ok(&sim, &["fault", "1002", fault, "40"]);
    let mut run = ws.spawn(&UP, &[]);
    let (code, err) = run.finish(RUN_T);
    assert_eq!(code, 0, "{err}\n{}", run.text());
    let events = sim.events();
    rollout_was_safe(&events).unwrap();
    let (ready_at, _) = run
        .values()
        .into_iter()
        .find(|(_, v)| v["type"] == "node_ready" && v["data"]["node"] == 1002)
        .unwrap_or_else(|| panic!("no node_ready for 1002:\n{}", run.text()));
    let start = events
        .iter()
        .position(|e| {
            e["kind"] == "ctl"
                && e["node"] == 1002
                && e["detail"].as_str().unwrap_or("").starts_with("start")
        })
        .expect("start of 1002");
    let settled = events[start..]
        .iter()
        .find(|e| e["kind"] == "state" && e["node"] == 1002 && e["to"] == "settled")
        .expect("1002 settled")["ts_ms"]
        .as_i64()
        .unwrap();
    let started = events[start]["ts_ms"].as_i64().unwrap();
    assert!(
        settled - started >= 2_000,
        "the fault held 1002 back ({} ms)",
        settled - started
    );
    assert!(
        settled <= ready_at,
        "wkctl said 1002 ready at {ready_at}, the simulator settled it at {settled} ({fault})"
    );
}

#[test]
fn slow_catch_up_is_waited_out_by_e() {
    lag_is_waited_out("slow-catch-up");
}

#[test]
fn slow_migrate_is_waited_out_by_f() {
    lag_is_waited_out("slow-migrate");
}

// ---- faults that act at once, injected when the node's stop step starts -----------------

fn runtime_fault(fault: &[&str], node: u64, expect: &[&str]) {
    fault_stops_the_run(fault, node, expect, Inject::AtStop);
}

macro_rules! runtime_faults {
    ($($name:ident: [$($f:expr),+] on $node:expr => [$($sig:expr),+],)*) => {$(
        #[test]
        fn $name() {
            runtime_fault(&[$($f),+], $node, &[$($sig),+]);
        }
    )*};
}

runtime_faults! {
    blackhole_on_first: ["blackhole"] on 1001 => ["A "],
    blackhole_on_middle: ["blackhole"] on 1002 => ["A "],
    blackhole_on_last: ["blackhole"] on 1003 => ["A "],
    http500_on_first: ["http500"] on 1001 => ["A "],
    http500_on_middle: ["http500"] on 1002 => ["A "],
    http500_on_last: ["http500"] on 1003 => ["A "],
    partition_on_first: ["partition"] on 1001 => ["C ", "D ", "E ", "F "],
    partition_on_middle: ["partition"] on 1002 => ["C ", "D ", "E ", "F "],
    partition_on_last: ["partition"] on 1003 => ["C ", "D ", "E ", "F "],
}

// ---- the controller ------------------------------------------------------------------

#[test]
fn upgrading_the_controller_itself_succeeds() {
    let sim = Sim::start(SimOpts::default());
    let controller = sim.state()["controller"].as_u64().expect("a controller");
    let ws = Ws::new(&sim, &Opts::default());
    let t0 = now_ms();
    let r = ws.run(&UP, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    rollout_was_safe(&sim.events()).unwrap();
    // The controller was restarted, and the cluster elected another one meanwhile.
    assert!(
        touched_after(&sim, t0)
            .iter()
            .any(|(v, n)| v == "stop" && *n == controller)
    );
    let elections = sim
        .events()
        .iter()
        .filter(|e| e["kind"] == "controller" && e["ts_ms"].as_i64().unwrap_or(0) >= t0)
        .count();
    assert!(
        elections >= 1,
        "the controller's restart must move the controller"
    );
}

/// Holds 1002's gate open (it starts slowly: its API stays closed) under a 30 s
/// `node_timeout`, so that only the peer watch can end the run in time.
fn gate_held_open(sim: &Sim) -> (Ws, crate::support::Streaming) {
    ctl_ok(sim, &["fault", "1002", "slow-start", "600"]);
    let ws = Ws::with_node_timeout(sim, "30s");
    let mut run = ws.spawn(&UP, &[]);
    run.wait_for("gate of 1002", RUN_T, |v| {
        v["type"] == "step_started"
            && v["data"]["node"] == 1002
            && v["data"]["step"] == "wait_ready"
    });
    (ws, run)
}

/// The arrival time (ms) of wkctl's `node_failed` line.
fn failed_at(run: &crate::support::Streaming) -> i64 {
    run.values()
        .into_iter()
        .find(|(_, v)| v["type"] == "node_failed")
        .map_or_else(|| panic!("no node_failed:\n{}", run.text()), |(t, _)| t)
}

/// 3 polls of 100 ms (`PEER_DOWN_POLLS`) plus 1 s of slack.
const WITHIN_MS: i64 = 3 * 100 + 1_000;

#[test]
fn controller_dying_during_another_nodes_gate_stops_the_run() {
    let sim = Sim::start(SimOpts::default());
    let (_ws, mut run) = gate_held_open(&sim);
    let controller = sim.state()["controller"].as_u64().unwrap_or(1001);
    let victim = if controller == 1002 { 1001 } else { controller };
    let before_fault = now_ms();
    ctl_ok(&sim, &["stop", &victim.to_string()]);
    let t_fault = now_ms();
    let (code, _) = run.finish(RUN_T);
    let lines: Vec<Value> = run.values().into_iter().map(|(_, v)| v).collect();
    assert_eq!(code, 1, "an unexpected second failure must stop the run");
    let f = failed_event(&lines);
    assert_eq!(f["data"]["node"], 1002);
    let reason = f["data"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&format!("node {victim} went down")),
        "names the peer and why: {reason}"
    );
    let took = failed_at(&run) - t_fault;
    assert!(
        took <= WITHIN_MS,
        "stopped {took} ms after the fault, not within 3 polls + 1 s"
    );
    // wkctl touched nothing after the second failure (the test's own stop is excluded).
    let after: Vec<_> = touched_after(&sim, before_fault)
        .into_iter()
        .filter(|(v, n)| !(v == "stop" && *n == victim))
        .collect();
    assert!(
        after.is_empty(),
        "wkctl touched {after:?} after the controller died"
    );
    assert!(
        lifecycle(&sim).iter().all(|(_, _, n)| *n != 1003),
        "1003 untouched"
    );
    // The test stops a second node itself: the invariants hold up to that moment.
    crate::harness::safe_before(&sim.events(), before_fault).unwrap();
}

#[test]
fn quorum_loss_during_soak_stops_the_run() {
    let sim = Sim::start(SimOpts::default());
    let policy = FAST_POLICY.replace("soak: 300ms", "soak: 20s");
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
    let t_fault = now_ms();
    ctl_ok(&sim, &["stop", "1002"]);
    ctl_ok(&sim, &["stop", "1003"]);
    let (code, _) = run.finish(RUN_T);
    // The test takes two nodes down itself: the invariants hold up to that moment.
    crate::harness::safe_before(&sim.events(), t_fault).unwrap();
    let lines: Vec<Value> = run.values().into_iter().map(|(_, v)| v).collect();
    assert_eq!(code, 1);
    let soak = lines
        .iter()
        .find(|l| l["type"] == "soak_finished")
        .expect("soak_finished");
    assert_eq!(soak["data"]["ok"], false);
    let after: Vec<_> = touched_after(&sim, t_fault)
        .into_iter()
        .filter(|(v, _)| v != "stop")
        .collect();
    assert!(
        after.is_empty(),
        "wkctl started something after quorum loss: {after:?}"
    );
    assert_eq!(
        lines.iter().filter(|l| l["type"] == "node_started").count(),
        1
    );
}

// ---- auth and fan-out ------------------------------------------------------------------

#[test]
fn a_node_answering_401_mid_run_stops_the_run_at_once() {
    let token = "matrix-token-1";
    let (sim, ws) = Ws::with_token(token);
    ctl_ok(&sim, &["fault", "1002", "slow-start", "600"]);
    let m = std::fs::read_to_string(&ws.manifest)
        .unwrap()
        .replace("node_timeout: 8s", "node_timeout: 30s");
    std::fs::write(&ws.manifest, m).unwrap();
    let mut run = ws.spawn(&UP, &[(TOKEN_ENV, token)]);
    run.wait_for("gate of 1002", RUN_T, |v| {
        v["type"] == "step_started"
            && v["data"]["node"] == 1002
            && v["data"]["step"] == "wait_ready"
    });
    ctl_ok(&sim, &["fault", "1003", "token", "rotated-token-2"]);
    let t_fault = now_ms();
    let (code, err) = run.finish(RUN_T);
    let lines: Vec<Value> = run.values().into_iter().map(|(_, v)| v).collect();
    assert_eq!(code, 1, "{err}");
    let f = failed_event(&lines);
    let reason = f["data"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("node 1003 answered 401"),
        "names the node and the 401: {f}"
    );
    let took = failed_at(&run) - t_fault;
    assert!(
        took <= WITHIN_MS,
        "a 401 fails at once: {took} ms after the token changed"
    );
    assert!(lifecycle(&sim).iter().all(|(_, _, n)| *n != 1003));
    assert!(!run.text().contains(token) && !err.contains(token));
    rollout_was_safe(&sim.events()).unwrap();
}

/// wkctl never asks `/cluster/nodes` (on any node, 1001 included): that endpoint fans out
/// to every online peer and fails as a whole (400) while one of them is down but not yet
/// marked offline, which is exactly the situation of a rolling upgrade.
#[test]
fn cluster_nodes_is_never_polled_and_fails_while_a_peer_is_down() {
    let sim = Sim::start(SimOpts {
        speed: 10.0,
        ..SimOpts::default()
    });
    let ws = Ws::new(&sim, &Opts::default());
    let r = ws.run(&UP, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    rollout_was_safe(&sim.events()).unwrap();
    let (_, req) = http_get(&sim.control, "/requests", None, Duration::from_secs(5));
    let req: Value = serde_json::from_str(&req).unwrap();
    for n in ORDER {
        let n = n.to_string();
        assert!(
            req[&n]["/health"].as_u64().unwrap_or(0) > 0,
            "node {n} was polled at all: {req}"
        );
        assert_eq!(
            req[&n]["/cluster/nodes"].as_u64().unwrap_or(0),
            0,
            "wkctl asked /cluster/nodes of node {n}: {req}"
        );
    }
    // The endpoint itself, at speed 1 (the controller's ≈ 6 s offline window is real time):
    // a peer down and not yet marked offline fails the whole call.
    let slow = Sim::start(SimOpts {
        speed: 1.0,
        ..SimOpts::default()
    });
    ctl_ok(&slow, &["stop", "1002"]);
    let (status, body) = http_get(
        slow.api(1001),
        "/cluster/nodes",
        None,
        Duration::from_secs(10),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("connection refused"), "{body}");
}

// ---- playbook steps ---------------------------------------------------------------------

/// A playbook file whose install step runs the node's `install_cmd` var.
fn custom_playbook_ws(sim: &Sim, per_node: &[(u64, &str)]) -> Ws {
    let ws = short_timeout_ws(sim);
    let sim_pb = include_str!("../../playbooks/sim.yaml");
    let pb = sim_pb.replace("name: sim", "name: sim-custom").replace(
        "install: echo simulated pull of {{to}}",
        "install: sh -c {{install_cmd}}",
    ) + "timeouts:\n  install: 1s\n";
    std::fs::write(ws.dir.path().join("pb.yaml"), pb).unwrap();
    let mut m = std::fs::read_to_string(&ws.manifest)
        .unwrap()
        .replace("playbook: sim", "playbook: ./pb.yaml");
    m = m.replace("vars:\n", "vars:\n  install_cmd: \"true\"\n");
    for (id, cmd) in per_node {
        m = m.replace(
            &format!("  - id: {id}\n    host: 127.0.0.1\n"),
            &format!("  - id: {id}\n    host: 127.0.0.1\n    vars: {{ install_cmd: {cmd:?} }}\n"),
        );
    }
    std::fs::write(&ws.manifest, m).unwrap();
    ws
}

#[test]
fn a_hanging_step_times_out_and_stops_the_run() {
    let sim = Sim::start(SimOpts::default());
    let ws = custom_playbook_ws(&sim, &[(1002, "sleep 30")]);
    let mut run = ws.spawn(&UP, &[]);
    let (code, _) = run.finish(RUN_T);
    let lines: Vec<Value> = run.values().into_iter().map(|(_, v)| v).collect();
    assert_stopped_at(&sim, &ws, 1002, code, &lines, None);
    let step = lines
        .iter()
        .find(|l| {
            l["type"] == "step_finished"
                && l["data"]["node"] == 1002
                && l["data"]["step"] == "install"
        })
        .unwrap();
    assert_eq!(step["data"]["timed_out"], true);
    assert!(
        failed_event(&lines)["data"]["reason"]
            .as_str()
            .unwrap()
            .contains("timed out")
    );
}

#[test]
fn a_failing_step_stops_the_run_with_its_output() {
    let sim = Sim::start(SimOpts::default());
    let ws = custom_playbook_ws(
        &sim,
        &[(1002, "echo pull failed: manifest unknown >&2; exit 3")],
    );
    let mut run = ws.spawn(&UP, &[]);
    let (code, _) = run.finish(RUN_T);
    let lines: Vec<Value> = run.values().into_iter().map(|(_, v)| v).collect();
    assert_stopped_at(&sim, &ws, 1002, code, &lines, None);
    let reason = failed_event(&lines)["data"]["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        reason.contains("exited with 3") && reason.contains("manifest unknown"),
        "{reason}"
    );
}

// ---- SIGKILL at every step kind, then --resume ------------------------------------------

/// SIGKILL when 1002's `step` starts, then `--resume`. Exact counts, from the simulator:
/// every node was really stopped once and really booted once. The commands wkctl sent
/// (`ctl` events) are exact too: one `stop` and one `start` per node, except a second
/// `stop` only for a kill during `stop` and a second `start` only for a kill during
/// `start`: the killed run's own command may still land after wkctl died (its shell is
/// orphaned), and the simulator then records it as a no-op (`stop_noop`/`start_noop`),
/// never as a second restart. 1001, upgraded by the killed run, is re-verified on resume
/// without a restart (its failing re-verification:
/// `holes::resume_re_verification_of_an_upgraded_node_can_fail`).
fn kill_at_then_resume(step: &str) {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    let mut run = ws.spawn(&UP, &[]);
    run.wait_for(step, RUN_T, |v| {
        v["type"] == "step_started" && v["data"]["node"] == 1002 && v["data"]["step"] == step
    });
    run.kill9();
    let st = ws.state();
    assert_eq!(
        st["status"], "running",
        "a killed run leaves `running` in its state"
    );
    let r = ws.run(&["upgrade", "--resume", "--yes", "--json"], &[]);
    assert_eq!(r.code, 0, "resume after kill at {step}: {}", r.all());
    let events = sim.events();
    rollout_was_safe(&events).unwrap();
    let sent = |verb: &str, n: u64| {
        lifecycle(&sim)
            .iter()
            .filter(|(_, v, id)| v == verb && *id == n)
            .count()
    };
    let acted = |kind: &str, to: Option<&str>, n: u64| {
        events
            .iter()
            .filter(|e| {
                e["kind"] == kind
                    && e["node"] == n
                    && to.is_none_or(|t| e["to"] == t)
                    && e["ts_ms"].as_i64().unwrap_or(0) >= events_start(&events)
            })
            .count()
    };
    for n in ORDER {
        assert_eq!(acted("stop", None, n), 1, "node {n} really stopped once");
        assert_eq!(
            acted("state", Some("booting"), n),
            1,
            "node {n} really booted once"
        );
        let (stops, starts) = (sent("stop", n), sent("start", n));
        let extra_stop = usize::from(n == 1002 && step == "stop");
        let extra_start = usize::from(n == 1002 && step == "start");
        assert!(
            stops == 1 || (extra_stop == 1 && stops == 2 && acted("stop_noop", None, n) == 1),
            "node {n}: {stops} stop commands after a kill at {step}"
        );
        assert!(
            starts == 1 || (extra_start == 1 && starts == 2 && acted("start_noop", None, n) == 1),
            "node {n}: {starts} start commands after a kill at {step}"
        );
    }
    let lines = r.lines();
    assert!(
        lines.iter().any(|l| l["type"] == "step_started"
            && l["data"]["node"] == 1001
            && l["data"]["step"] == "verify"),
        "1001 is re-verified on resume:\n{}",
        r.all()
    );
    assert!(
        lines.iter().any(|l| l["type"] == "node_skipped"
            && l["data"]["node"] == 1001
            && l["data"]["reason"]
                .as_str()
                .is_some_and(|s| s.contains("re-verified"))),
        "{}",
        r.all()
    );
    assert_eq!(ws.state()["status"], "completed");
    for n in ORDER {
        assert_eq!(
            crate::support::varz_version(&sim, n, None),
            "v2.1.2-20250120"
        );
    }
}

/// The end of the initial settle: the first `ctl` event (the tests' events of interest).
fn events_start(events: &[Value]) -> i64 {
    events
        .iter()
        .find(|e| e["kind"] == "ctl")
        .and_then(|e| e["ts_ms"].as_i64())
        .unwrap_or(0)
}

macro_rules! kill_tests {
    ($($name:ident: $step:expr,)*) => {$(
        #[test]
        fn $name() {
            kill_at_then_resume($step);
        }
    )*};
}

kill_tests! {
    kill9_at_check_settled: "check_settled",
    kill9_at_backup: "backup",
    kill9_at_stop: "stop",
    kill9_at_install: "install",
    kill9_at_start: "start",
    kill9_at_wait_ready: "wait_ready",
    kill9_at_soak: "soak",
}

/// A workspace whose `stop` and `start` lines first look for a flag file
/// `hold-STEP-NODE` in the sim's state dir: when it is there, the step removes it and
/// hangs doing nothing (`exec sleep`), so the command a `kill -9`'d run orphans never
/// lands. Without the flag the step is the `sim` playbook's.
pub fn holdable_ws(sim: &Sim) -> Ws {
    let ws = Ws::new(sim, &Opts::default());
    let dir = sim.state_dir().display().to_string();
    let hold = |step: &str, cmd: &str| {
        let flag = format!("{dir}/hold-{step}-{{{{node.id}}}}");
        let line = format!(
            "if [ -f {flag} ]; then rm -f {flag}; exec sleep 30 >/dev/null 2>&1 </dev/null; fi; {cmd}"
        );
        format!("  {step}: {}", serde_json::to_string(&line).unwrap())
    };
    let pb = include_str!("../../playbooks/sim.yaml")
        .replace("name: sim", "name: sim-holdable")
        .replace(
            "  stop: \"{{wksim}} ctl --state-dir {{state_dir}} stop {{node.id}}\"",
            &hold("stop", "{{wksim}} ctl --state-dir {{state_dir}} stop {{node.id}}"),
        )
        .replace(
            "  start: \"{{wksim}} ctl --state-dir {{state_dir}} start {{node.id}} --version {{to}}\"",
            &hold(
                "start",
                "{{wksim}} ctl --state-dir {{state_dir}} start {{node.id}} --version {{to}}",
            ),
        );
    assert!(pb.contains("hold-stop-") && pb.contains("hold-start-"));
    std::fs::write(ws.dir.path().join("pb.yaml"), pb).unwrap();
    let m = std::fs::read_to_string(&ws.manifest)
        .unwrap()
        .replace("playbook: sim", "playbook: ./pb.yaml");
    std::fs::write(&ws.manifest, m).unwrap();
    ws
}

/// A node other than 1002 that is not the controller (`leader-lost` needs a follower).
pub fn follower_peer(sim: &Sim) -> u64 {
    sim.wait_until("a controller", RUN_T, |s| s.state()["controller"].is_u64());
    let ctrl = sim.state()["controller"].as_u64();
    [1001, 1003]
        .into_iter()
        .find(|id| Some(*id) != ctrl)
        .unwrap()
}

/// Waits until the step a `kill -9`'d run orphaned has parked (it removed its flag), or,
/// if the shell never started before wkctl died, removes the flag itself: either way the
/// orphaned command never lands.
pub fn park_or_unflag(sim: &Sim, flag: &str) {
    let path = sim.state_dir().join(flag);
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while path.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::fs::remove_file(path);
}

/// Node `id`'s `/cluster/info` answers `leader not found` (it does not know the controller).
pub fn lost_the_controller(sim: &Sim, id: u64) -> bool {
    let (code, body) = sim.get(id, "/cluster/info", None);
    code == 400 && body.contains("leader not found")
}

/// The race `kill9_at_start` once lost under load, made on purpose: wkctl is killed
/// when 1002's `start` begins (its orphaned `wksim ctl start` ran, or never lands), then
/// a peer (1001, or 1003 when 1001 is the controller) loses track of the controller
/// (`leader-lost`: it answers, pings, is never marked offline, but `/cluster/info` says
/// `leader not found`) while the pre-upgrade check of `--resume` runs. 1002 is the only
/// node that may be down; the resumed run only starts it, so the peer's
/// `cluster.node_rejoining` is a warning naming why, and the resumed run finishes once the
/// peer follows again. Exactly one stop and one boot per node, one `start`
/// command for 1002, and the simulator's log shows never two nodes down and every stop on
/// a settled cluster. Without the policy, the resume is refused (exit 1).
fn kill_at_start_then_resume_with_a_stale_peer(orphan_runs: bool) {
    let sim = Sim::start(SimOpts::default());
    let ws = holdable_ws(&sim);
    if !orphan_runs {
        std::fs::write(sim.state_dir().join("hold-start-1002"), "").unwrap();
    }
    let mut run = ws.spawn(&UP, &[]);
    run.wait_for("1002's start", RUN_T, |v| {
        v["type"] == "step_started" && v["data"]["node"] == 1002 && v["data"]["step"] == "start"
    });
    run.kill9();
    let sent = |verb: &str, n: u64| {
        lifecycle(&sim)
            .iter()
            .filter(|(_, v, id)| v == verb && *id == n)
            .count()
    };
    if orphan_runs {
        // wkctl may die before it spawned the step's shell: then the test runs the very
        // command the orphan would have run.
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        while sent("start", 1002) == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if sent("start", 1002) == 0 {
            ctl_ok(&sim, &["start", "1002", "--version", "v2.1.2-20250120"]);
        }
        assert_eq!(sent("start", 1002), 1, "the orphan's start");
        assert_ne!(sim.node_state(1002), "stopped");
    } else {
        park_or_unflag(&sim, "hold-start-1002");
        assert_eq!(sent("start", 1002), 0, "the orphaned start never lands");
        assert_eq!(sim.node_state(1002), "stopped");
    }
    let peer = follower_peer(&sim);
    let peer_s = peer.to_string();
    ctl_ok(&sim, &["fault", &peer_s, "leader-lost"]);
    sim.wait_until("the peer lost the controller", RUN_T, |s| {
        lost_the_controller(s, peer)
    });
    let mut resume = ws.spawn(&["upgrade", "--resume", "--yes", "--json"], &[]);
    let check = resume.wait_for("the pre-upgrade check", RUN_T, |v| {
        v["type"] == "check_finished"
    });
    // The check saw the peer not knowing the controller, and let the run go on.
    assert!(lost_the_controller(&sim, peer), "still lost at the check");
    let f = check["data"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "cluster.node_rejoining" && f["node"] == peer)
        .cloned()
        .unwrap_or_else(|| panic!("{peer}'s finding: {check}"));
    assert_eq!(f["severity"], "warn", "{f}");
    assert!(
        f["message"]
            .as_str()
            .is_some_and(|m| m.contains("node 1002 is mid-upgrade and down")
                && m.contains("resuming only starts it")),
        "{f}"
    );
    assert_eq!(check["data"]["ok"], true, "{check}");
    // The peer follows the controller again.
    ctl_ok(&sim, &["clear", &peer_s]);
    let (code, err) = resume.finish(RUN_T);
    assert_eq!(code, 0, "{err}\n{}", resume.text());
    let events = sim.events();
    rollout_was_safe(&events).unwrap_or_else(|e| panic!("{e}\n{}", resume.text()));
    let acted = |kind: &str, to: Option<&str>, n: u64| {
        events
            .iter()
            .filter(|e| {
                e["kind"] == kind
                    && e["node"] == n
                    && to.is_none_or(|t| e["to"] == t)
                    && e["ts_ms"].as_i64().unwrap_or(0) >= events_start(&events)
            })
            .count()
    };
    for n in ORDER {
        assert_eq!(acted("stop", None, n), 1, "node {n} really stopped once");
        assert_eq!(sent("stop", n), 1, "node {n}: one stop command");
        assert_eq!(
            acted("state", Some("booting"), n),
            1,
            "node {n} really booted once"
        );
        assert_eq!(sent("start", n), 1, "node {n}: one start command");
        assert_eq!(
            crate::support::varz_version(&sim, n, None),
            "v2.1.2-20250120"
        );
    }
    assert_eq!(ws.state()["status"], "completed");
}

#[test]
fn kill9_at_start_orphan_ran_then_a_stale_peer_at_resume() {
    kill_at_start_then_resume_with_a_stale_peer(true);
}

#[test]
fn kill9_at_start_orphan_never_ran_then_a_stale_peer_at_resume() {
    kill_at_start_then_resume_with_a_stale_peer(false);
}

/// The converse: killed when 1002's `stop` began, its orphaned stop never landing, 1002 is
/// still up and the resumed run's next action is a stop. While a peer does not know the
/// controller, `--resume` refuses (exit 1) naming `cluster.node_rejoining` on it and
/// touches nothing; once the peer follows again it finishes, safely.
#[test]
fn a_resume_whose_next_action_is_a_stop_refuses_while_a_peer_has_not_rejoined() {
    let sim = Sim::start(SimOpts::default());
    let ws = holdable_ws(&sim);
    std::fs::write(sim.state_dir().join("hold-stop-1002"), "").unwrap();
    let mut run = ws.spawn(&UP, &[]);
    run.wait_for("1002's stop", RUN_T, |v| {
        v["type"] == "step_started" && v["data"]["node"] == 1002 && v["data"]["step"] == "stop"
    });
    run.kill9();
    park_or_unflag(&sim, "hold-stop-1002");
    assert_eq!(node_state_of(&ws, 1002)["step"], "stop");
    let peer = follower_peer(&sim);
    let peer_s = peer.to_string();
    ctl_ok(&sim, &["fault", &peer_s, "leader-lost"]);
    sim.wait_until("the peer lost the controller", RUN_T, |s| {
        lost_the_controller(s, peer)
    });
    let t0 = now_ms();
    let r = ws.run(&["upgrade", "--resume", "--yes", "--json"], &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    let check = r
        .lines()
        .into_iter()
        .find(|l| l["type"] == "check_finished")
        .unwrap_or_else(|| panic!("{}", r.all()));
    assert_eq!(check["data"]["ok"], false, "{check}");
    let f = check["data"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "cluster.node_rejoining" && f["node"] == peer)
        .cloned()
        .unwrap_or_else(|| panic!("{peer}'s finding: {check}"));
    assert_eq!(f["severity"], "block", "{f}");
    assert!(touched_after(&sim, t0).is_empty(), "nothing touched");
    assert_eq!(sim.node_state(1002), "settled", "1002 still up");
    ctl_ok(&sim, &["clear", &peer_s]);
    sim.wait_settled(peer, RUN_T);
    let r = ws.run(&["upgrade", "--resume", "--yes", "--json"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    rollout_was_safe(&sim.events()).unwrap_or_else(|e| panic!("{e}\n{}", r.all()));
    assert_eq!(ws.state()["status"], "completed");
}

// ---- state dir and drift ------------------------------------------------------------------

#[test]
fn an_unwritable_state_dir_refuses_to_start() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    // A file where the state directory should be: nothing can be saved there.
    std::fs::write(ws.state_base(), "not a directory").unwrap();
    let t0 = now_ms();
    let r = ws.run(&["upgrade", "--to", "v2.1.2", "--yes"], &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains("not writable") && r.stderr.contains("hint:"),
        "{}",
        r.stderr
    );
    assert!(
        touched_after(&sim, t0).is_empty(),
        "nothing may run without state"
    );
    rollout_was_safe(&sim.events()).unwrap();
}

/// The refusal shows the changed lines: each of `expect` must be in it.
fn drift(edit: impl FnOnce(&Ws), expect: &[&str]) {
    let sim = Sim::start(SimOpts::default());
    let ws = custom_playbook_ws(&sim, &[]);
    let mut run = ws.spawn(&UP, &[]);
    run.wait_for("gate of 1002", RUN_T, |v| {
        v["type"] == "step_started"
            && v["data"]["node"] == 1002
            && v["data"]["step"] == "wait_ready"
    });
    run.kill9();
    edit(&ws);
    let t0 = now_ms();
    let r = ws.run(&["upgrade", "--resume", "--yes"], &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains("refusing to resume") && expect.iter().all(|e| r.stderr.contains(e)),
        "{}",
        r.stderr
    );
    assert!(touched_after(&sim, t0).is_empty());
    rollout_was_safe(&sim.events()).unwrap();
}

#[test]
fn manifest_edited_before_resume_is_drift() {
    drift(
        |ws| {
            let m = std::fs::read_to_string(&ws.manifest)
                .unwrap()
                .replace("soak: 300ms", "soak: 1s");
            std::fs::write(&ws.manifest, m).unwrap();
        },
        &["manifest `", "  -   soak: 300ms", "  +   soak: 1s"],
    );
}

#[test]
fn playbook_edited_before_resume_is_drift() {
    drift(
        |ws| {
            let p = ws.dir.path().join("pb.yaml");
            let pb = std::fs::read_to_string(&p)
                .unwrap()
                .replace("install: 1s", "install: 2s");
            std::fs::write(&p, pb).unwrap();
        },
        &[
            "playbook `sim-custom` changed",
            "  -     \"install\": \"1s\"",
            "  +     \"install\": \"2s\"",
        ],
    );
}

// ---- found in review: a long backup, resuming a failed gate, rollback with a peer down --

/// A peer that dies during a node's (long) backup, which runs after the stop: the gate's
/// peer watch names it and the run stops; nothing else is touched.
#[test]
fn a_peer_dying_during_the_backup_stops_the_run_naming_it() {
    let sim = Sim::start(SimOpts::default());
    let ws = short_timeout_ws(&sim);
    let pb = include_str!("../../playbooks/sim.yaml")
        .replace("name: sim", "name: sim-slow-backup")
        .replace("  backup: >-\n", "  backup: >-\n    sleep 2 &&\n");
    std::fs::write(ws.dir.path().join("pb.yaml"), pb).unwrap();
    let m = std::fs::read_to_string(&ws.manifest)
        .unwrap()
        .replace("playbook: sim", "playbook: ./pb.yaml");
    std::fs::write(&ws.manifest, m).unwrap();
    let mut run = ws.spawn(&UP, &[]);
    run.wait_for("backup of 1002", RUN_T, |v| {
        v["type"] == "step_started" && v["data"]["node"] == 1002 && v["data"]["step"] == "backup"
    });
    // The pre-stop check came right before the stop: the stop happened on a settled cluster.
    assert!(
        lifecycle(&sim)
            .iter()
            .any(|(_, v, n)| v == "stop" && *n == 1002),
        "the backup runs after the stop"
    );
    let t_fault = now_ms();
    ctl_ok(&sim, &["stop", "1003"]);
    let (code, _) = run.finish(RUN_T);
    let lines: Vec<Value> = run.values().into_iter().map(|(_, v)| v).collect();
    assert_eq!(code, 1);
    let f = failed_event(&lines);
    assert_eq!(f["data"]["node"], 1002);
    let reason = f["data"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("node 1003 went down"), "{reason}");
    let ev = lifecycle(&sim);
    assert_eq!(
        ev.iter()
            .filter(|(_, v, n)| v == "stop" && *n == 1001)
            .count(),
        1,
        "1001 was stopped once, for its upgrade"
    );
    assert!(
        !ev.iter().any(|(_, v, n)| v == "start" && *n == 1003),
        "1003 left as the fault left it: {ev:?}"
    );
    // The test stops 1003 itself while 1002 is down: checked up to that moment.
    crate::harness::safe_before(&sim.events(), t_fault).unwrap();
}

/// "Fix the cause, then `wkctl upgrade --resume`": a node whose gate timed out (it started
/// too slowly) is re-gated on resume, against its old process, and the run completes.
#[test]
fn resume_after_a_failed_gate_completes_once_the_node_is_up() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::with_node_timeout(&sim, "2s");
    ctl_ok(&sim, &["fault", "1002", "slow-start", "60"]);
    let r = ws.run(&UP, &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert_eq!(node_state_of(&ws, 1002)["status"], "failed");
    // The cause goes away: the node finishes starting.
    sim.wait_until("1002 settled", Duration::from_secs(30), |s| {
        s.node_state(1002) == "settled"
    });
    let r = ws.run(&["upgrade", "--resume", "--yes", "--json"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let stops = |n: u64| {
        lifecycle(&sim)
            .iter()
            .filter(|(_, v, id)| v == "stop" && *id == n)
            .count()
    };
    assert_eq!((stops(1001), stops(1002), stops(1003)), (1, 1, 1));
    assert_eq!(ws.state()["status"], "completed");
    rollout_was_safe(&sim.events()).unwrap();
}

/// `--rollback-on-failure` does not restart the gated node when the failure is another
/// node going down: that would make two nodes down.
#[test]
fn no_rollback_while_another_node_is_down() {
    let sim = Sim::start(SimOpts::default());
    let ws = short_timeout_ws(&sim);
    let mut run = ws.spawn(&UP_WITH_ROLLBACK, &[]);
    run.wait_for("gate of 1002", RUN_T, |v| {
        v["type"] == "step_started"
            && v["data"]["node"] == 1002
            && v["data"]["step"] == "wait_ready"
    });
    let t = now_ms();
    ctl_ok(&sim, &["stop", "1003"]);
    let (code, _) = run.finish(RUN_T);
    assert_eq!(code, 1);
    let lines: Vec<Value> = run.values().into_iter().map(|(_, v)| v).collect();
    let rb = lines
        .iter()
        .find(|l| l["type"] == "rollback_finished")
        .expect("rollback_finished");
    assert_eq!(rb["data"]["ok"], false);
    assert!(
        rb["data"]["reason"].as_str().unwrap().contains("skipped"),
        "{rb}"
    );
    let by_wkctl: Vec<_> = touched_after(&sim, t)
        .into_iter()
        .filter(|(v, n)| !(v == "stop" && *n == 1003))
        .collect();
    assert!(by_wkctl.is_empty(), "{by_wkctl:?}");
    // The test stops 1003 itself while 1002 is down: checked up to that moment.
    crate::harness::safe_before(&sim.events(), t).unwrap();
}
