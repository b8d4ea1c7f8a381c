//! Simulator tests: endpoint shapes per version band (facts §3, §3.11), the restart timeline
//! (facts §4.3, §4.4, §11.5), every fault, token auth (facts §2.1) and the event log.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use crate::harness::{Sim, SimOpts, down_intervals_never_overlap, every_stop_settled, http_get};

mod faults;
mod safety;
mod timeline;

pub(super) const T: Duration = Duration::from_secs(30);

pub(super) fn sim(version: &str) -> Sim {
    Sim::start(SimOpts {
        version: version.into(),
        ..SimOpts::default()
    })
}

pub(super) fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

pub(super) fn set(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_string()).collect()
}

pub(super) fn ctl_ok(s: &Sim, args: &[&str]) -> String {
    let out = s.ctl(args);
    assert!(
        out.status.success(),
        "wksim ctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

pub(super) fn state_kinds(s: &Sim, node: u64) -> Vec<String> {
    s.events()
        .iter()
        .filter(|e| e["kind"] == "state" && e["node"] == node)
        .map(|e| {
            format!(
                "{}>{}",
                e["from"].as_str().unwrap_or(""),
                e["to"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[test]
fn shapes_v2_2_5() {
    let s = sim("v2.2.5-20260422");
    assert_eq!(
        s.get(1002, "/health", None),
        (200, r#"{"status":"ok"}"#.into())
    );
    let (st, varz) = s.get_json(1002, "/varz");
    assert_eq!(st, 200);
    let expected = "server_id server_name version connections user_handler_count user_handler_conn_count uptime goroutine mem cpu in_msgs out_msgs in_bytes out_bytes slow_clients retry_queue tcp_addr ws_addr wss_addr manager_addr manager_on commit commit_date tree_state api_url manager_uid manager_token_on conversation_cache_count";
    assert_eq!(keys(&varz), set(&expected.split(' ').collect::<Vec<_>>()));
    assert_eq!(varz["server_id"], "1002");
    assert_eq!(varz["version"], "v2.2.5-20260422");
    assert!(
        varz["commit_date"]
            .as_str()
            .unwrap()
            .chars()
            .all(|c| c.is_ascii_digit())
    );
    assert!(varz["uptime"].as_str().unwrap().ends_with('s'));

    let (_, node) = s.get_json(1002, "/cluster/node");
    let ctrl = s.state()["controller"].as_u64().unwrap();
    let mut want = set(&[
        "id",
        "role",
        "cluster_addr",
        "api_server_addr",
        "online",
        "allow_vote",
        "slot_count",
        "term",
        "slot_leader_count",
        "uptime",
        "app_version",
        "config_version",
        "status",
        "status_format",
    ]);
    if ctrl == 1002 {
        want.insert("is_leader".into());
    }
    assert_eq!(keys(&node), want);
    assert_eq!(
        (
            node["online"].as_u64(),
            node["status"].as_u64(),
            node["role"].as_u64()
        ),
        (Some(1), Some(3), Some(0))
    );
    assert_eq!(node["status_format"], "已加入");

    cluster_shapes(&s);
}

fn cluster_shapes(s: &Sim) {
    let (st, nodes) = s.get_json(1001, "/cluster/nodes");
    assert_eq!(st, 200);
    assert_eq!(nodes["total"], 3);
    let ids: Vec<u64> = nodes["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, vec![1001, 1002, 1003]);
    let leaders = nodes["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["is_leader"] == 1)
        .count();
    assert_eq!(leaders, 1, "exactly one is_leader");

    let (_, simple) = s.get_json(1003, "/cluster/simpleNodes");
    for n in simple["data"].as_array().unwrap() {
        for absent in ["term", "uptime", "app_version", "config_version"] {
            assert!(
                n.get(absent).is_none(),
                "simpleNodes must not have {absent}: {n}"
            );
        }
    }

    let (st, info) = s.get_json(1003, "/cluster/info");
    assert_eq!(st, 200);
    for k in [
        "version",
        "slotCount",
        "slotReplicaCount",
        "channelReplicaCount",
        "term",
        "nodes",
        "slots",
    ] {
        assert!(info.get(k).is_some(), "info lacks {k}");
    }
    assert_eq!(info["slotCount"], 64);
    let slots = info["slots"].as_array().unwrap();
    assert_eq!(slots.len(), 64);
    assert!(slots[0].get("id").is_none(), "slot 0 has no id");
    assert_eq!(slots[1]["id"], 1);
    assert!(
        slots
            .iter()
            .all(|x| x.get("status").is_none() && x["leader"].as_u64().unwrap() > 0)
    );
    assert!(
        info.get("leader").is_none()
            && info["nodes"][0]["online"] == true
            && info["nodes"][0].get("role").is_none()
    );

    let (st, arr) = s.get_json(1001, "/cluster/slots?ids=0,1");
    assert_eq!(st, 200);
    assert_eq!(arr.as_array().unwrap().len(), 2);
    assert_eq!(
        keys(&arr[0]),
        set(&[
            "id",
            "leader_id",
            "term",
            "replicas",
            "channel_count",
            "log_index",
            "status",
            "status_format"
        ])
    );
    let (st, all) = s.get_json(1001, "/cluster/allslot");
    assert_eq!((st, all["total"].as_u64()), (200, Some(64)));
    assert_eq!(s.get(1001, "/cluster/logs", None), (500, String::new()));
    let (st, logs) = s.get_json(1001, "/cluster/logs?node_id=1002&log_type=1&limit=1");
    assert_eq!(st, 200);
    assert_eq!(logs["applied"], logs["last"]);
    assert_eq!(s.get(1001, "/nope", None).0, 404);
}

#[test]
fn version_bands() {
    let old = sim("v2.0.5-20240925");
    assert_eq!(
        old.get(1001, "/varz", None).0,
        404,
        "no /varz in v2.0.1–v2.0.5"
    );
    let (_, n) = old.get_json(1001, "/cluster/node");
    assert_eq!(n["app_version"], "v2.0.5-20240925");

    let mid = Sim::start(SimOpts {
        version: "v2.1.2-20250120".into(),
        extra_args: vec!["--version-style".into(), "release".into()],
        ..SimOpts::default()
    });
    let (_, n) = mid.get_json(1001, "/cluster/node");
    assert!(
        n.get("app_version").is_none(),
        "app_version absent in v2.1.1–v2.2.1"
    );
    assert_eq!(mid.get_json(1001, "/varz").1["version"], "2.1.2-20250120");
    // /health is always ok before v2.1.4, even while slots are Candidate.
    ctl_ok(&mid, &["stop", "1003"]);
    mid.wait_until("offline marked", T, |s| {
        s.events().iter().any(|e| e["kind"] == "offline_marked")
    });
    assert_eq!(
        mid.get(1001, "/health", None),
        (200, r#"{"status":"ok"}"#.into())
    );
}

#[test]
fn joined_one_of_three() {
    let s = Sim::start(SimOpts {
        joined: Some(1),
        ..SimOpts::default()
    });
    let (_, nodes) = s.get_json(1001, "/cluster/nodes");
    assert_eq!(nodes["total"], 1);
    assert_eq!(
        s.get(1002, "/health", None).0,
        0,
        "non-member is not running"
    );
    ctl_ok(&s, &["start", "1002"]);
    s.wait_settled(1002, T);
    assert_eq!(s.get_json(1001, "/cluster/nodes").1["total"], 2);
}

#[test]
fn event_log_and_ctl_commands() {
    let s = sim("v2.0.10-20241221");
    ctl_ok(&s, &["restart", "1002", "--version", "v2.1.2-20250120"]);
    s.wait_settled(1002, T);
    let ev = s.events();
    assert!(
        ev.iter()
            .all(|e| e["ts_ms"].as_i64().is_some() && e["kind"].is_string())
    );
    assert!(
        ev.iter()
            .any(|e| e["kind"] == "ctl" && e["detail"] == "restart v2.1.2-20250120")
    );
    let kinds = state_kinds(&s, 1002);
    assert_eq!(
        kinds[..3],
        ["stopped>booting", "booting>stale", "stale>online"].map(String::from)
    );
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
        )
    );
    let text = ctl_ok(&s, &["events"]);
    assert_eq!(text.lines().count(), s.events().len());
    let show: Value = serde_json::from_str(&ctl_ok(&s, &["show", "--json"])).unwrap();
    assert_eq!(show["nodes"][1]["version"], "v2.1.2-20250120");
    assert!(ctl_ok(&s, &["show"]).contains("1003"));
    let logs = ctl_ok(&s, &["logs", "1002"]);
    for line in [
        "【Server】WuKongIM is Starting...",
        "Version: v2.1.2-20250120",
        "ApiServer started",
        "Server is ready",
    ] {
        assert!(logs.contains(line), "log lacks {line}");
    }
    assert!(
        logs.lines()
            .all(|l| l.len() > 25 && &l[4..5] == "-" && &l[23..24] == "Z"),
        "{logs}"
    );
    assert!(!s.ctl(&["logs", "4242"]).status.success());
    assert!(!s.ctl(&["stop", "4242"]).status.success());
    let (st, body) = http_get(&s.control, "/requests", None, Duration::from_secs(5));
    assert_eq!(st, 200);
    let req: Value = serde_json::from_str(&body).unwrap();
    assert!(
        req.is_object() && req.get("1001").is_none(),
        "nothing has asked node 1001 yet: {req}"
    );
    s.get(1003, "/health", None);
    let (_, body) = http_get(&s.control, "/requests", None, Duration::from_secs(5));
    let req: Value = serde_json::from_str(&body).unwrap();
    assert!(req["1003"]["/health"].as_u64().unwrap() >= 1);
    assert!(req["1003"].get("/cluster/nodes").is_none());
}

#[test]
fn down_interval_checker() {
    let ev = |node: u64, to: &str| serde_json::json!({"ts_ms": 1, "kind": "state", "node": node, "to": to});
    let mark = |kind: &str, node: u64| serde_json::json!({"ts_ms": 1, "kind": kind, "node": node});
    let ctl = serde_json::json!({"ts_ms": 1, "kind": "ctl", "node": 1001});
    let ok = vec![
        ev(1001, "booting"),
        ev(1002, "booting"),
        ctl.clone(),
        ev(1001, "stopped"),
        ev(1001, "booting"),
        ev(1001, "stale"),
        ev(1001, "online"),
        mark("rejoined", 1001),
        ev(1002, "stopped"),
    ];
    assert!(down_intervals_never_overlap(&ok).is_ok());
    let bad = vec![ctl.clone(), ev(1001, "stopped"), ev(1002, "crashed")];
    assert!(down_intervals_never_overlap(&bad).is_err());
    // Strict: back on its port (stale, even online) but not rejoined is still down.
    let stale = vec![
        ctl.clone(),
        ev(1001, "stopped"),
        ev(1001, "booting"),
        ev(1001, "stale"),
        ev(1001, "online"),
        ev(1002, "stopped"),
    ];
    let err = down_intervals_never_overlap(&stale).unwrap_err();
    assert!(err.contains("1001") && err.contains("1002"), "{err}");
    // A peer the controller marked offline (partitioned) is down too.
    let cut = vec![ctl, mark("offline_marked", 1003), ev(1002, "stopped")];
    assert!(down_intervals_never_overlap(&cut).is_err());

    let stop = |settled: bool| serde_json::json!({"ts_ms": 1, "kind": "stop", "node": 1002, "cluster_settled": settled, "detail": "stop"});
    assert!(every_stop_settled(&[stop(true), stop(true)]).is_ok());
    let err = every_stop_settled(&[stop(true), stop(false)]).unwrap_err();
    assert!(err.contains("1002"), "{err}");
}

/// `wksim --help` describes the simulator, not wkctl (issue #16 point 5).
#[test]
fn wksim_help_describes_the_simulator() {
    let out = std::process::Command::new(crate::harness::wksim_bin())
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{help}");
    assert!(
        help.starts_with("A simulated WuKongIM v2 cluster"),
        "{help}"
    );
    assert!(!help.contains("Safe rolling upgrades"), "{help}");
}
