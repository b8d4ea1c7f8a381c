//! The service-level gate (issue #18): clients come back, messages keep flowing, and the
//! opt-in smoke test, against the simulator's own client and message model.

use std::time::Duration;

use serde_json::Value;

use crate::harness::{Sim, SimOpts, rollout_was_safe};
use crate::support::{FAST_POLICY, Opts, Ws, ctl_ok};

pub(crate) const UP: [&str; 5] = ["upgrade", "--to", "v2.1.2", "--yes", "--json"];
pub(crate) const RUN_T: Duration = Duration::from_secs(90);
pub(crate) const SMOKE: &str = "  smoke:\n    channel: wkctl-probe\n    uid: wkctl-probe\n";

/// A simulator with `per_node` clients per node, once all of them are connected.
pub(crate) fn sim_with_clients(per_node: u64) -> Sim {
    let sim = Sim::start(SimOpts {
        extra_args: vec!["--clients".into(), per_node.to_string()],
        ..SimOpts::default()
    });
    sim.wait_until("every client connected", Duration::from_secs(20), |s| {
        (1001..=1003)
            .map(|id| {
                s.get_json(id, "/varz").1["connections"]
                    .as_u64()
                    .unwrap_or(0)
            })
            .sum::<u64>()
            == 3 * per_node
    });
    sim
}

/// [`ws`], for tests that shadow the name with a workspace.
fn ws_for(sim: &Sim, extra_policy: &str) -> Ws {
    ws(sim, extra_policy)
}

pub(crate) fn ws(sim: &Sim, extra_policy: &str) -> Ws {
    Ws::new(
        sim,
        &Opts {
            policy: format!("{FAST_POLICY}{extra_policy}"),
            ..Opts::default()
        },
    )
}

pub(crate) fn of_type<'a>(lines: &'a [Value], t: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["type"] == t).collect()
}

pub(crate) fn run_upgrade(ws: &Ws) -> (i32, Vec<Value>, String) {
    let mut run = ws.spawn(&UP, &[]);
    let (code, err) = run.finish(RUN_T);
    let lines = run.values().into_iter().map(|(_, v)| v).collect();
    (code, lines, err)
}

/// `clients_moved_off` events of the simulator: (node, moved, total then).
fn sim_moves(sim: &Sim) -> Vec<(u64, u64, u64)> {
    sim.events()
        .iter()
        .filter(|e| e["kind"] == "clients_moved_off")
        .filter_map(|e| {
            let d = e["detail"].as_str()?;
            let (m, t) = d.split_once(" of ")?;
            Some((e["node"].as_u64()?, m.parse().ok()?, t.parse().ok()?))
        })
        .collect()
}

#[test]
fn a_happy_upgrade_with_traffic_waits_for_the_clients_and_reports_the_simulators_numbers() {
    let sim = sim_with_clients(1600);
    let ws = ws(&sim, "");
    let (code, lines, err) = run_upgrade(&ws);
    assert_eq!(code, 0, "{err}\n{lines:#?}");
    let sim_log = sim_moves(&sim);
    let soaks = of_type(&lines, "soak_finished");
    assert_eq!(soaks.len(), 3);
    for s in &soaks {
        let node = s["data"]["node"].as_u64().unwrap();
        let c = &s["data"]["clients"];
        assert_eq!(c["check"], "passed", "{s}");
        assert_eq!(c["baseline"], 4800, "the sim's 3 × 1600 clients: {s}");
        assert_eq!(c["connections"], 4800, "all back: {s}");
        assert_eq!(c["recovered_pct"], 100);
        assert_eq!(c["required_pct"], 90);
        let moved = c["moved_off"].as_u64().unwrap();
        let (_, sim_moved, sim_total) = *sim_log
            .iter()
            .find(|(n, _, _)| *n == node)
            .unwrap_or_else(|| panic!("sim moved no clients off {node}: {sim_log:?}"));
        assert_eq!(sim_total, 4800);
        assert!(
            moved.abs_diff(sim_moved) <= 48,
            "node {node}: wkctl saw {moved} before the stop, the sim moved {sim_moved}"
        );
        assert_eq!(c["back"], moved, "{s}");
        if node != 1001 {
            assert_eq!(c["messages"], "flowing", "{s}");
        }
    }
    let ready = of_type(&lines, "node_ready");
    assert_eq!(ready.len(), 3);
    assert!(
        ready
            .iter()
            .all(|r| r["data"]["clients"]["baseline"] == 4800)
    );
    assert!(
        of_type(&lines, "warning").is_empty(),
        "{:?}",
        of_type(&lines, "warning")
    );
    rollout_was_safe(&sim.events()).unwrap();
}

#[test]
fn the_progress_line_shows_the_clients_moving_off_and_back() {
    let sim = sim_with_clients(1600);
    let ws = ws(&sim, "");
    let r = ws.run(
        &["upgrade", "--to", "v2.1.2", "--yes", "--no-progress"],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let text = r.all();
    let line = text
        .lines()
        .find(|l| l.starts_with("1002: ") && l.contains("clients moved off;"))
        .unwrap_or_else(|| panic!("no clients line for 1002:\n{text}"));
    assert!(line.ends_with("(100%)"), "{line}");
    assert!(line.contains(','), "thousands separators: {line}");
}

#[test]
fn clients_stuck_stops_the_run_at_the_node_whose_restart_triggered_it() {
    let sim = sim_with_clients(1600);
    let ws = ws(&sim, "");
    ctl_ok(&sim, &["fault", "1003", "clients-stuck"]);
    let (code, lines, err) = run_upgrade(&ws);
    assert_eq!(code, 1, "{err}");
    let failed = of_type(&lines, "node_failed");
    assert_eq!(failed.len(), 1, "{lines:#?}");
    let f = &failed[0]["data"];
    assert_eq!(f["node"], 1001, "{f}");
    assert_eq!(f["step"], "soak");
    let reason = f["reason"].as_str().unwrap();
    // 1003's clients (its own and those that moved to it from 1001) are gone.
    assert!(
        reason.contains("clients did not come back: ")
            && reason.contains("% of the 4,800 before the stop (policy.clients.recover 90%)"),
        "{reason}"
    );
    let soak = of_type(&lines, "soak_finished");
    assert_eq!(soak[0]["data"]["clients"]["check"], "shortfall");
    // Nothing after the failed node was touched.
    let stops: Vec<u64> = sim
        .events()
        .iter()
        .filter(|e| e["kind"] == "stop")
        .filter_map(|e| e["node"].as_u64())
        .collect();
    assert_eq!(stops, [1001]);
    assert!(
        sim.events()
            .iter()
            .any(|e| e["kind"] == "clients_stuck" && e["node"] == 1003)
    );
}

#[test]
fn traffic_stops_stops_the_run_at_that_node_naming_the_messages() {
    let sim = sim_with_clients(1600);
    let ws = ws(&sim, "");
    ctl_ok(&sim, &["fault", "1002", "traffic-stops"]);
    let (code, lines, err) = run_upgrade(&ws);
    assert_eq!(code, 1, "{err}");
    let failed = of_type(&lines, "node_failed");
    assert_eq!(failed.len(), 1);
    let f = &failed[0]["data"];
    assert_eq!(f["node"], 1002, "{f}");
    assert!(
        f["reason"].as_str().unwrap().contains(
            "messages stopped flowing: in_msgs/out_msgs were growing before node 1002 was stopped"
        ),
        "{f}"
    );
    let soak = of_type(&lines, "soak_finished");
    assert_eq!(soak[1]["data"]["clients"]["messages"], "stopped");
}

#[test]
fn on_shortfall_warn_finishes_the_run_and_warns() {
    let sim = sim_with_clients(1600);
    let ws = ws(&sim, "  clients:\n    on_shortfall: warn\n");
    ctl_ok(&sim, &["fault", "1003", "clients-stuck"]);
    let (code, lines, err) = run_upgrade(&ws);
    assert_eq!(code, 0, "{err}\n{lines:#?}");
    let warnings = of_type(&lines, "warning");
    assert!(
        warnings.iter().any(|w| w["data"]["node"] == 1001
            && w["data"]["message"]
                .as_str()
                .unwrap()
                .contains("clients did not come back")
            && w["data"]["message"]
                .as_str()
                .unwrap()
                .contains("on_shortfall: warn")),
        "{warnings:#?}"
    );
    assert_eq!(of_type(&lines, "node_failed").len(), 0);
    let summary = lines.iter().find(|l| l["type"] == "summary").unwrap();
    assert_eq!(summary["data"]["status"], "completed", "{summary}");
}

#[test]
fn below_the_floor_the_client_check_is_skipped_and_says_so() {
    // The sim's default: 14 clients per node, 42 in all, below the default floor of 50.
    let sim = Sim::start(SimOpts::default());
    let ws = ws(&sim, "");
    let (code, lines, err) = run_upgrade(&ws);
    assert_eq!(code, 0, "{err}");
    let soaks = of_type(&lines, "soak_finished");
    for s in &soaks {
        assert_eq!(s["data"]["clients"]["check"], "skipped", "{s}");
        assert_eq!(s["data"]["clients"]["baseline"], 42, "{s}");
    }
    // Every node's soak says it was skipped, but the warning is said once per run.
    assert_eq!(soaks.len(), 3, "{lines:#?}");
    let warnings = of_type(&lines, "warning");
    let skipped = warnings
        .iter()
        .filter(|w| {
            w["data"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("client check skipped"))
        })
        .count();
    assert_eq!(skipped, 1, "{warnings:#?}");
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    // The plain output says so too.
    let sim2 = Sim::start(SimOpts::default());
    let ws2 = ws_for(&sim2, "");
    let r = ws2.run(
        &["upgrade", "--to", "v2.1.2", "--yes", "--no-progress"],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.all().contains(
            "— 42 connections before the stop, below policy.clients.min 50: client check skipped"
        ),
        "{}",
        r.all()
    );
    // The plain output's warning lines: one.
    let said = r
        .all()
        .lines()
        .filter(|l| l.contains("client check skipped") && !l.contains("clients moved off"))
        .count();
    assert_eq!(said, 1, "{}", r.all());
    assert!(warnings[0]["data"]["message"].as_str().unwrap().contains(
        "42 connections before the stop, below policy.clients.min 50: client check skipped"
    ));
}

/// Every `message_sent` of the sim's log went to the probe channel.
pub(crate) fn probe_channel_only(sim: &Sim) -> usize {
    let sent: Vec<String> = sim
        .events()
        .iter()
        .filter(|e| e["kind"] == "message_sent")
        .map(|e| e["detail"].as_str().unwrap().to_string())
        .collect();
    for d in &sent {
        assert!(
            d.starts_with("channel_id=wkctl-probe channel_type=2 client_msg_no=wkctl-smoke-"),
            "wkctl wrote outside the probe channel: {d}"
        );
    }
    sent.len()
}

#[test]
fn the_smoke_test_passes_on_every_node_and_writes_only_the_probe_channel() {
    let sim = sim_with_clients(100);
    let ws = ws(&sim, SMOKE);
    let (code, lines, err) = run_upgrade(&ws);
    assert_eq!(code, 0, "{err}\n{lines:#?}");
    let smokes = of_type(&lines, "smoke_finished");
    let got: Vec<(u64, bool, u64)> = smokes
        .iter()
        .map(|s| {
            (
                s["data"]["node"].as_u64().unwrap(),
                s["data"]["ok"].as_bool().unwrap(),
                s["data"]["read_via"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [(1001, true, 1002), (1002, true, 1003), (1003, true, 1001)]
    );
    assert_eq!(probe_channel_only(&sim), 3);
    // `wkctl smoke` alone: every node, exit 0.
    let r = ws.run(&["smoke", "--json"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let doc = r.json();
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["nodes"].as_array().unwrap().len(), 3);
    assert_eq!(probe_channel_only(&sim), 6);
}

#[test]
fn the_smoke_test_fails_under_no_replicate_at_that_node() {
    let sim = sim_with_clients(100);
    let ws = ws(&sim, SMOKE);
    ctl_ok(&sim, &["fault", "1002", "no-replicate"]);
    let (code, lines, err) = run_upgrade(&ws);
    assert_eq!(code, 1, "{err}");
    let failed = of_type(&lines, "node_failed");
    assert_eq!(failed.len(), 1);
    let f = &failed[0]["data"];
    assert_eq!(f["node"], 1002, "{f}");
    let reason = f["reason"].as_str().unwrap();
    assert!(
        reason.contains("smoke test failed: probe message wkctl-smoke-1002-")
            && reason.contains("sent through node 1002 is not readable through node 1003"),
        "{reason}"
    );
    assert_eq!(probe_channel_only(&sim), 2);
    // Alone: exit 1, naming node 1002 only.
    let r = ws.run(&["smoke"], &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stdout.contains("✗ node 1002: probe message"),
        "{}",
        r.all()
    );
    assert!(r.stdout.contains("✓ node 1001"), "{}", r.all());
    assert!(r.stdout.contains("✓ node 1003"), "{}", r.all());
}

#[test]
fn smoke_without_a_probe_channel_refuses_and_the_token_is_never_printed() {
    let (sim, ws) = Ws::with_token("s3cr3t-token-xyz");
    let r = ws.run(
        &["smoke"],
        &[(crate::support::TOKEN_ENV, "s3cr3t-token-xyz")],
    );
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("`policy.smoke` is not set"),
        "{}",
        r.all()
    );
    assert!(r.stderr.contains("hint:"), "{}", r.all());
    // With a probe channel and a token: it passes, and the token appears nowhere.
    let text = std::fs::read_to_string(&ws.manifest).unwrap() + SMOKE;
    std::fs::write(&ws.manifest, text).unwrap();
    let r = ws.run(
        &["smoke", "-v"],
        &[(crate::support::TOKEN_ENV, "s3cr3t-token-xyz")],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(!r.all().contains("s3cr3t-token-xyz"), "{}", r.all());
    // A wrong token: a one-line failure, not the token.
    let r = ws.run(&["smoke"], &[(crate::support::TOKEN_ENV, "wrong-token")]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stdout.contains("401"), "{}", r.all());
    assert!(!r.all().contains("wrong-token"), "{}", r.all());
    drop(sim);
}

#[test]
fn status_shows_the_clients_of_every_node() {
    let sim = sim_with_clients(1600);
    let ws = ws(&sim, "");
    sim.wait_until("clients connected", Duration::from_secs(20), |s| {
        (1001..=1003).all(|id| {
            s.get_json(id, "/varz").1["connections"]
                .as_u64()
                .is_some_and(|c| c > 1000)
        })
    });
    let r = ws.run(&["status", "--json"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let doc = r.json();
    let conns: Vec<u64> = doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["connections"].as_u64().unwrap())
        .collect();
    assert_eq!(conns.iter().sum::<u64>(), 4800, "{conns:?}");
    let r = ws.run(&["status"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("CLIENTS"), "{}", r.stdout);
    let shown = format!("{},{:03}", conns[0] / 1000, conns[0] % 1000);
    assert!(r.stdout.contains(&shown), "{shown} in {}", r.stdout);
}

/// Requests per node and path, from the simulator's counters.
pub(crate) fn requests(
    sim: &Sim,
) -> std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>> {
    let (_, body) =
        crate::harness::http_get(&sim.control, "/requests", None, Duration::from_secs(5));
    serde_json::from_str(&body).unwrap()
}

/// The load the service level adds while gating: nothing per poll (connections and
/// counters come from `/varz`, which the gate polls anyway), and the smoke test's three
/// requests per upgraded node (`/route` and `/message/send` on it, `/channel/messagesync`
/// on its neighbour), counted by the simulator.
#[test]
fn the_service_level_adds_no_poll_requests_and_three_per_node_for_the_smoke() {
    let sim = sim_with_clients(100);
    let ws = ws(&sim, SMOKE);
    let (code, _, err) = run_upgrade(&ws);
    assert_eq!(code, 0, "{err}");
    let req = requests(&sim);
    let polled = [
        "/health",
        "/varz",
        "/cluster/node",
        "/cluster/info",
        "/cluster/simpleNodes",
    ];
    for (node, paths) in &req {
        let extra: Vec<(&String, &u64)> = paths
            .iter()
            .filter(|(p, _)| !polled.contains(&p.as_str()))
            .collect();
        assert_eq!(
            extra,
            [
                (&"/channel/messagesync".to_string(), &1),
                (&"/message/send".to_string(), &1),
                (&"/route".to_string(), &1),
            ],
            "node {node}: {paths:?}"
        );
    }
}
