//! The restart timeline (facts §4.3, §4.4, §11.5), controller and quorum loss, and scale.

use std::time::Duration;

use super::{T, ctl_ok, sim, state_kinds};
use crate::harness::{Sim, SimOpts, down_intervals_never_overlap};

#[test]
fn timeline_after_stop_and_start() {
    let s = Sim::start(SimOpts {
        version: "v2.1.4-20250319".into(),
        speed: 2.5,
        ..SimOpts::default()
    });
    let ctrl = s.state()["controller"].as_u64().unwrap();
    let victim = [1001, 1002, 1003]
        .into_iter()
        .find(|id| *id != ctrl)
        .unwrap();
    let peer = ctrl;
    ctl_ok(&s, &["stop", &victim.to_string()]);
    assert_eq!(
        s.get(victim, "/health", None).0,
        0,
        "port refused right after `ctl stop`"
    );
    assert_eq!(
        s.get(peer, "/cluster/nodes", None).0,
        400,
        "/cluster/nodes fails before offline marking"
    );
    let mut seen_not_ready = false;
    s.wait_until("offline marked and re-elected", T, |s| {
        let (st, body) = s.get(peer, "/health", None);
        if st == 500 {
            assert!(body.contains("slot not ready"), "{body}");
            seen_not_ready = true;
        }
        seen_not_ready && st == 200
    });
    let ev = s.events();
    let pos = |kind: &str, to: &str| {
        ev.iter()
            .position(|e| e["kind"] == kind && (to.is_empty() || e["to"] == to))
            .unwrap()
    };
    assert!(pos("state", "stopped") < pos("offline_marked", ""));
    assert!(pos("offline_marked", "") < pos("slots", "candidate"));
    assert!(pos("slots", "candidate") < pos("slots", "elected"));
    let (_, nodes) = s.get_json(peer, "/cluster/nodes");
    let entry = nodes["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == victim)
        .unwrap()
        .clone();
    assert!(
        entry.get("online").is_none()
            && entry["offline_count"] == 1
            && entry.get("uptime").is_none()
    );

    start_signals_in_order(&s, victim, peer);
}

/// After a start: stale (port open, own view online, `/cluster/info` 400) → marked online →
/// config caught up → migrating visible → settled (facts §4.3, §11.5).
fn start_signals_in_order(s: &Sim, victim: u64, peer: u64) {
    let before = s.get_json(peer, "/cluster/info").1["version"]
        .as_u64()
        .unwrap();
    ctl_ok(
        s,
        &["start", &victim.to_string(), "--version", "v2.1.5-20250424"],
    );
    // Stale phase: port open, own view says online, but no controller known.
    s.wait_until("API port open", T, |s| {
        s.get(victim, "/health", None).0 != 0
    });
    assert_eq!(
        s.get_json(victim, "/cluster/node").1["online"],
        1,
        "stale view says online"
    );
    let (st, body) = s.get(victim, "/cluster/info", None);
    assert_eq!(
        (st, body.as_str()),
        (400, r#"{"msg":"leader not found","status":400}"#)
    );
    let online_in_ctrl = |s: &Sim| {
        let (_, v) = s.get_json(peer, "/cluster/simpleNodes");
        v["data"]
            .as_array()
            .is_some_and(|d| d.iter().any(|n| n["id"] == victim && n["online"] == 1))
    };
    assert!(!online_in_ctrl(s));
    s.wait_until("controller marks it online", T, online_in_ctrl);
    let mut migrating = false;
    s.wait_until("config caught up", T, |s| {
        let (_, info) = s.get_json(peer, "/cluster/info");
        migrating |= info["slots"]
            .as_array()
            .is_some_and(|sl| sl.iter().any(|x| x["migrateTo"] == victim));
        let cv = s.get_json(victim, "/cluster/node").1["config_version"]
            .as_u64()
            .unwrap_or(0);
        cv > before && cv >= info["version"].as_u64().unwrap_or(u64::MAX)
    });
    s.wait_until("migrating visible, then settled", T, |s| {
        let (_, info) = s.get_json(peer, "/cluster/info");
        migrating |= info["slots"]
            .as_array()
            .is_some_and(|sl| sl.iter().any(|x| x["migrateTo"] == victim));
        migrating && s.node_state(victim) == "settled"
    });
    s.wait_settled(victim, T);
    assert_eq!(s.get_json(victim, "/varz").1["version"], "v2.1.5-20250424");
    let kinds = state_kinds(s, victim);
    assert!(
        kinds.ends_with(
            &[
                "settled>stopped",
                "stopped>booting",
                "booting>stale",
                "stale>online",
                "online>settled"
            ]
            .map(String::from)
        ),
        "{kinds:?}"
    );
    down_intervals_never_overlap(&s.events()).unwrap();
}

#[test]
fn controller_loss_and_quorum_loss() {
    let s = sim("v2.2.5-20260422");
    let ctrl = s.state()["controller"].as_u64().unwrap();
    ctl_ok(&s, &["stop", &ctrl.to_string()]);
    let other = [1001, 1002, 1003]
        .into_iter()
        .find(|id| *id != ctrl)
        .unwrap();
    assert_eq!(
        s.get(other, "/cluster/info", None).0,
        400,
        "leader not found while re-electing"
    );
    s.wait_until("new controller", T, |s| {
        s.state()["controller"].as_u64().is_some_and(|c| c != ctrl)
    });
    s.wait_until("info back", T, |s| {
        s.get(other, "/cluster/info", None).0 == 200
    });
    let second = [1001, 1002, 1003]
        .into_iter()
        .find(|id| *id != ctrl && *id != other)
        .unwrap();
    ctl_ok(&s, &["stop", &second.to_string()]);
    s.wait_until("quorum lost: health 500, info 400", T, |s| {
        s.get(other, "/health", None).0 == 500 && s.get(other, "/cluster/info", None).0 == 400
    });
    let e = down_intervals_never_overlap(&s.events());
    assert!(e.is_err(), "two nodes were down at once");
}

/// CPU ticks (user + system) of a process, from `/proc/<pid>/stat`.
fn cpu_ticks(pid: u32) -> i64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    // After the command: state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
    // cmajflt utime stime.
    let f: Vec<i64> = after
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    f.get(10).copied().unwrap_or(0) + f.get(11).copied().unwrap_or(0)
}

#[test]
fn scale_1000_nodes_idle_and_fast() {
    let s = Sim::start(SimOpts {
        nodes: 1000,
        first_id: 1,
        speed: 20.0,
        ..SimOpts::default()
    });
    assert_eq!(s.nodes.len(), 1000);
    let t0 = std::time::Instant::now();
    let (st, info) = s.get_json(777, "/cluster/info");
    assert_eq!(st, 200);
    assert_eq!(info["nodes"].as_array().unwrap().len(), 1000);
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "/cluster/info took {:?}",
        t0.elapsed()
    );
    for id in [1, 500, 1000] {
        assert_eq!(s.get(id, "/health", None).0, 200);
    }
    // The one-shot startup timers (slot wait, 60 s simulated) must drain; then nothing runs.
    s.wait_until("no pending timers", T, |s| s.state()["pending_timers"] == 0);
    let before = cpu_ticks(s.pid());
    std::thread::sleep(Duration::from_secs(1));
    let used = cpu_ticks(s.pid()) - before;
    assert!(
        used <= 5,
        "idle 1000-node simulator used {used} ticks in 1 s"
    );
}
