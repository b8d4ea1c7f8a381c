//! The simulator can show every situation the safety core must handle (issues 11, 12, 14 §5):
//! a stale peer the controller never marked offline, a partitioned peer whose `/health` is ok,
//! slow catch-up and slow migration, #529 "stuck in Joining" next to a node really still
//! joining, pass-through of forwarded answers, `-dev` builds, and idempotent `start`.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{T, ctl_ok, sim};
use crate::harness::{Sim, SimOpts, down_intervals_never_overlap, every_stop_settled, http_get};

fn online_in(s: &Sim, asked: u64, node: u64) -> bool {
    let (_, v) = s.get_json(asked, "/cluster/simpleNodes");
    v["data"]
        .as_array()
        .is_some_and(|d| d.iter().any(|n| n["id"] == node && n["online"] == 1))
}

fn info_version(s: &Sim, asked: u64) -> u64 {
    s.get_json(asked, "/cluster/info").1["version"]
        .as_u64()
        .unwrap_or(0)
}

fn own_config_version(s: &Sim, node: u64) -> u64 {
    s.get_json(node, "/cluster/node").1["config_version"]
        .as_u64()
        .unwrap_or(0)
}

/// Events of `kind` for `node` since the first control command (the initial boot's are not
/// counted).
fn count(s: &Sim, kind: &str, node: u64) -> usize {
    let ev = s.events();
    let start = ev
        .iter()
        .position(|e| e["kind"] == "ctl")
        .unwrap_or(ev.len());
    ev[start..]
        .iter()
        .filter(|e| e["kind"] == kind && e["node"] == node)
        .count()
}

fn other_than(ids: &[u64]) -> u64 {
    [1001, 1002, 1003]
        .into_iter()
        .find(|id| !ids.contains(id))
        .unwrap()
}

/// Issue 11 hole 1: a node bounced inside the controller's offline window is never marked
/// offline; it answers `/health` 200 from its stale config while it has not rejoined.
#[test]
fn bounced_peer_is_stale_but_never_marked_offline() {
    let s = sim("v2.2.5-20260422");
    let ctrl = s.state()["controller"].as_u64().unwrap();
    let witness = other_than(&[ctrl]);
    let uptime_before = s.get_json(ctrl, "/varz").1["uptime"].clone();
    // The controller bounces: the others elect a new one, so its config lags as well.
    ctl_ok(&s, &["fault", &ctrl.to_string(), "slow-rejoin", "40"]);
    ctl_ok(&s, &["bounce", &ctrl.to_string()]);
    s.wait_until("port open again", T, |s| {
        s.get(ctrl, "/health", None).0 != 0
    });
    s.wait_until("a new controller", T, |s| {
        s.state()["controller"].as_u64().is_some_and(|c| c != ctrl)
    });
    // 40 s simulated at ×20: about 2 s real of staleness; check it for a while.
    let until = Instant::now() + Duration::from_millis(1200);
    while Instant::now() < until {
        assert_eq!(
            s.get(ctrl, "/health", None),
            (200, r#"{"status":"ok"}"#.into()),
            "stale /health says ok"
        );
        assert_eq!(
            s.get(ctrl, "/cluster/info", None),
            (400, r#"{"msg":"leader not found","status":400}"#.into())
        );
        assert!(online_in(&s, witness, ctrl), "never marked offline");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        own_config_version(&s, ctrl) < info_version(&s, witness),
        "config lags"
    );
    let uptime = s.get_json(ctrl, "/varz").1["uptime"].clone();
    assert_ne!(uptime, uptime_before);
    assert!(
        uptime.as_str().unwrap().len() <= 3,
        "uptime reset: {uptime}"
    );
    assert_eq!(count(&s, "offline_marked", ctrl), 0);
    assert_eq!(count(&s, "rejoined", ctrl), 0);
    assert_eq!(s.state()["cluster_settled"], false);

    // Stopping another node now is exactly hole 1: the strict invariants catch it.
    ctl_ok(&s, &["stop", &witness.to_string()]);
    let ev = s.events();
    let err = down_intervals_never_overlap(&ev).unwrap_err();
    assert!(err.contains(&ctrl.to_string()), "{err}");
    let err = every_stop_settled(&ev).unwrap_err();
    assert!(err.contains(&witness.to_string()), "{err}");
    let first_stop = ev.iter().find(|e| e["kind"] == "stop").unwrap();
    assert_eq!(
        (
            &first_stop["node"],
            &first_stop["detail"],
            &first_stop["cluster_settled"]
        ),
        (
            &Value::from(ctrl),
            &Value::from("bounce"),
            &Value::from(true)
        )
    );
    ctl_ok(&s, &["start", &witness.to_string()]);
    s.wait_until("both rejoined", Duration::from_mins(1), |s| {
        count(s, "rejoined", ctrl) == 1 && count(s, "rejoined", witness) == 1
    });
    s.wait_settled(ctrl, T);
}

/// Issue 11 hole 2: a partitioned peer still answers `/health` 200 while the controller marks
/// it offline and its own `/cluster/info` says `leader not found`.
#[test]
fn partitioned_peer_answers_health_but_is_offline() {
    let s = sim("v2.2.5-20260422");
    let ctrl = s.state()["controller"].as_u64().unwrap();
    let cut = other_than(&[ctrl]);
    ctl_ok(&s, &["fault", &cut.to_string(), "partition"]);
    s.wait_until("marked offline by the controller", T, |s| {
        !online_in(s, ctrl, cut)
    });
    let (_, info) = s.get_json(ctrl, "/cluster/info");
    let entry = info["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == cut)
        .unwrap();
    assert!(
        entry.get("online").is_none() && entry["offlineCount"] == 1,
        "{entry}"
    );
    assert_eq!(
        s.get(cut, "/health", None),
        (200, r#"{"status":"ok"}"#.into())
    );
    assert_eq!(
        s.get(cut, "/cluster/info", None),
        (400, r#"{"msg":"leader not found","status":400}"#.into())
    );
    assert_eq!(count(&s, "offline_marked", cut), 1);
    ctl_ok(&s, &["clear", &cut.to_string()]);
    s.wait_settled(cut, T);
    assert_eq!(count(&s, "rejoined", cut), 1);
    down_intervals_never_overlap(&s.events()).unwrap();
}

/// Issue 12 §3: `slow-catch-up` keeps signal E false after the node is back online.
#[test]
fn slow_catch_up_lags_the_config_version() {
    let s = sim("v2.1.4-20250319");
    ctl_ok(&s, &["fault", "1003", "slow-catch-up", "30"]);
    ctl_ok(&s, &["stop", "1003"]);
    s.wait_until("marked offline", T, |s| {
        count(s, "offline_marked", 1003) == 1
    });
    ctl_ok(&s, &["start", "1003"]);
    s.wait_until("online in the controller's view", T, |s| {
        online_in(s, 1001, 1003)
    });
    let until = Instant::now() + Duration::from_millis(800);
    while Instant::now() < until {
        let (own, ctrl) = (own_config_version(&s, 1003), info_version(&s, 1001));
        assert!(own < ctrl, "config_version {own} lags {ctrl}");
        assert_eq!(
            s.get(1003, "/cluster/info", None).0,
            200,
            "it knows the controller"
        );
        assert_eq!(s.state()["cluster_settled"], false);
        std::thread::sleep(Duration::from_millis(100));
    }
    s.wait_until("caught up", T, |s| count(s, "rejoined", 1003) == 1);
    assert!(own_config_version(&s, 1003) >= info_version(&s, 1001));
    s.wait_settled(1003, T);
    every_stop_settled(&s.events()).unwrap();
    down_intervals_never_overlap(&s.events()).unwrap();
}

/// Issue 12 §3: `slow-migrate` keeps slots migrating (signal F false) after the catch-up.
#[test]
fn slow_migrate_keeps_slots_migrating() {
    let s = sim("v2.2.5-20260422");
    ctl_ok(&s, &["fault", "1002", "slow-migrate", "30"]);
    ctl_ok(&s, &["restart", "1002", "--version", "v2.2.5-20260422"]);
    s.wait_until("rejoined", T, |s| count(s, "rejoined", 1002) == 1);
    let migrating = |s: &Sim| -> Vec<Value> {
        s.get_json(1001, "/cluster/info").1["slots"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["migrateTo"] == 1002)
            .cloned()
            .collect()
    };
    let until = Instant::now() + Duration::from_millis(800);
    while Instant::now() < until {
        let m = migrating(&s);
        assert!(!m.is_empty(), "slots migrating to 1002");
        assert!(
            m.iter()
                .all(|x| x["migrateFrom"].as_u64().unwrap_or(0) != 0)
        );
        assert_eq!(s.state()["cluster_settled"], false);
        std::thread::sleep(Duration::from_millis(100));
    }
    s.wait_settled(1002, T);
    assert!(migrating(&s).is_empty());
}

/// Issue 12 §5: starting a node that already runs that build is a no-op, logged as an event.
#[test]
fn start_of_a_running_node_is_a_noop() {
    let s = sim("v2.1.2-20250120");
    let uptime = |s: &Sim| s.state()["nodes"][1]["uptime"].clone();
    let states_before = count(&s, "state", 1002);
    ctl_ok(&s, &["start", "1002", "--version", "v2.1.2-20250120"]);
    ctl_ok(&s, &["start", "1002"]);
    assert_eq!(count(&s, "start_noop", 1002), 2);
    assert_eq!(count(&s, "state", 1002), states_before, "not restarted");
    assert_ne!(uptime(&s), "");
    let out = s.ctl(&["start", "1002", "--version", "v2.2.5-20260422"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already running"));
}

/// Issue 14 §1 / upstream #529: "stuck in Joining but serving" and "really still joining"
/// look different from outside.
#[test]
fn stuck_joining_and_still_joining_differ() {
    let s = Sim::start(SimOpts {
        nodes: 4,
        joined: Some(3),
        version: "v2.2.4-20260313".into(),
        ..SimOpts::default()
    });
    ctl_ok(&s, &["fault", "1002", "stuck-joining"]);
    ctl_ok(&s, &["fault", "1004", "slow-join", "30"]);
    ctl_ok(&s, &["start", "1004"]);
    s.wait_until("1004 joining", T, |s| {
        let (_, info) = s.get_json(1001, "/cluster/info");
        info["nodes"]
            .as_array()
            .is_some_and(|ns| ns.iter().any(|n| n["id"] == 1004 && n["status"] == 2))
    });
    let (_, info) = s.get_json(1001, "/cluster/info");
    let node = |id: u64| {
        info["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == id)
            .unwrap()
            .clone()
    };
    let replicas = |id: u64| {
        info["slots"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["replicas"].as_array().unwrap().contains(&Value::from(id)))
            .count()
    };
    let (stuck, joining) = (node(1002), node(1004));
    for n in [&stuck, &joining] {
        assert_eq!(
            (&n["status"], &n["join"], &n["online"]),
            (&2.into(), &true.into(), &true.into()),
            "{n}"
        );
    }
    assert!(replicas(1002) > 0, "#529: it holds slot replicas");
    assert_eq!(replicas(1004), 0, "a really joining node holds none yet");
    let (_, own) = s.get_json(1002, "/cluster/node");
    assert_eq!(
        (&own["status"], &own["status_format"]),
        (&2.into(), &"加入中".into())
    );
    assert!(own["slot_count"].as_u64().unwrap() > 0);
    assert!(
        own_config_version(&s, 1002) >= info_version(&s, 1001),
        "caught up"
    );
    let (st, own) = s.get_json(1004, "/cluster/node");
    assert!(
        st == 500 || own["config_version"].as_u64().unwrap_or(0) < info_version(&s, 1001),
        "not caught up: {st} {own}"
    );
    assert_eq!(s.state()["cluster_settled"], false);
    // #529 never resolves on its own; clearing the fault is `ProposeJoined` at last.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(node(1002)["status"], 2);
    ctl_ok(&s, &["clear", "1002"]);
    ctl_ok(&s, &["clear", "1004"]);
    s.wait_settled(1004, Duration::from_mins(1));
    let (_, info) = s.get_json(1001, "/cluster/info");
    assert!(
        info["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["status"] == 3)
    );
}

/// Issue 14 §5: forwarded answers pass through as upstream's `ForwardWithBody` does.
#[test]
fn forwarded_answers_pass_through_unchanged() {
    let s = sim("v2.2.5-20260422");
    let ctrl = s.state()["controller"].as_u64().unwrap();
    let asked = other_than(&[ctrl]);
    ctl_ok(&s, &["fault", &ctrl.to_string(), "http500"]);
    assert_eq!(s.get(asked, "/cluster/info", None), (500, String::new()));
    let q = format!("/varz?node_id={ctrl}");
    assert_eq!(s.get(asked, &q, None), (500, String::new()));
    ctl_ok(&s, &["clear", &ctrl.to_string()]);
    ctl_ok(&s, &["fault", &ctrl.to_string(), "token", "other"]);
    assert_eq!(s.get(asked, "/cluster/info", None), (401, String::new()));
    ctl_ok(&s, &["clear", &ctrl.to_string()]);
    ctl_ok(&s, &["fault", &ctrl.to_string(), "blackhole"]);
    // The old model answered 400 after 3 s simulated (150 ms here); upstream never times out.
    let (st, body) = http_get(
        s.api(asked),
        "/cluster/info",
        None,
        Duration::from_millis(1500),
    );
    assert_eq!(st, 0, "hangs: {body}");
    ctl_ok(&s, &["clear", &ctrl.to_string()]);
    assert_eq!(s.get(asked, "/cluster/info", None).0, 200);
}

/// Facts §7.4: a `-dev` image reports the previous release tag but its own commit.
#[test]
fn dev_image_reports_previous_release_and_own_commit() {
    let s = sim("v2.1.2-20250120");
    ctl_ok(&s, &["restart", "1001", "--version", "v2.1.3-20250210-dev"]);
    s.wait_settled(1001, T);
    let (dev, rel) = (s.get_json(1001, "/varz").1, s.get_json(1002, "/varz").1);
    assert_eq!(dev["version"], "v2.1.2-20250120");
    assert_eq!(rel["version"], "v2.1.2-20250120");
    assert_ne!(dev["commit"], rel["commit"]);
    assert_eq!(dev["commit"].as_str().unwrap().len(), 40);
    let show: Value = serde_json::from_str(&ctl_ok(&s, &["show", "--json"])).unwrap();
    assert_eq!(show["nodes"][0]["build"], "v2.1.3-20250210-dev");
    assert_eq!(show["nodes"][0]["version"], "v2.1.2-20250120");
    assert!(
        ctl_ok(&s, &["logs", "1001"]).contains(&format!("-{}", dev["commit"].as_str().unwrap()))
    );

    let rel_style = Sim::start(SimOpts {
        version: "v2.1.3-20250210-dev".into(),
        extra_args: vec!["--version-style".into(), "release".into()],
        ..SimOpts::default()
    });
    let v = rel_style.get_json(1001, "/varz").1["version"].clone();
    assert!(
        v.as_str().unwrap().starts_with("2.1.2-20250120-3-g"),
        "git describe of an off-tag build: {v}"
    );
}
