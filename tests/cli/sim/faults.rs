//! One test per fault of `wksim ctl fault` (DESIGN §7), plus token auth (facts §2.1).

use std::time::{Duration, Instant};

use super::{T, ctl_ok, sim};
use crate::harness::{Sim, SimOpts, http_get};

#[test]
fn token_auth_everywhere() {
    let s = Sim::start(SimOpts {
        token: Some("s3cret".into()),
        ..SimOpts::default()
    });
    for p in [
        "/health",
        "/varz",
        "/cluster/nodes",
        "/cluster/info",
        "/nope",
    ] {
        assert_eq!(
            s.get(1001, p, None),
            (401, String::new()),
            "{p} without token"
        );
        assert_eq!(
            s.get(1001, p, Some("wrong")),
            (401, String::new()),
            "{p} with a wrong token"
        );
    }
    assert_eq!(s.get(1001, "/health", Some("s3cret")).0, 200);
    assert_eq!(
        s.get(1001, "/cluster/nodes", Some("s3cret")).0,
        200,
        "token forwarded in fan-out"
    );
    assert_eq!(s.get_json(1001, "/varz").0, 401);
    let cfg = ctl_ok(&s, &["config", "1001"]);
    assert!(cfg.contains("WK_MANAGERTOKEN=s3cret"));
    ctl_ok(&s, &["fault", "1002", "token", "other"]);
    assert_eq!(s.get(1002, "/health", Some("s3cret")), (401, String::new()));
    assert_eq!(s.get(1002, "/health", Some("other")).0, 200);
    assert_eq!(
        s.get(1001, "/cluster/nodes", Some("s3cret")).0,
        400,
        "peer with another token fails the fan-out"
    );
}

#[test]
fn start_time_faults() {
    let s = Sim::start(SimOpts {
        version: "v2.1.4-20250319".into(),
        ..SimOpts::default()
    });
    // wrong-version: comes back on its old version.
    ctl_ok(&s, &["fault", "1001", "wrong-version"]);
    ctl_ok(&s, &["restart", "1001", "--version", "v2.2.5-20260422"]);
    s.wait_settled(1001, T);
    assert_eq!(s.get_json(1001, "/varz").1["version"], "v2.1.4-20250319");
    ctl_ok(&s, &["clear", "1001"]);
    // slow-start: the port stays closed longer than a normal boot (2 s).
    ctl_ok(&s, &["fault", "1002", "slow-start", "20"]);
    ctl_ok(&s, &["restart", "1002", "--version", "v2.1.4-20250319"]);
    let t0 = Instant::now();
    s.wait_until("slow start done", T, |s| {
        s.get(1002, "/health", None).0 != 0
    });
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "slow-start 20 s at speed 20 ≥ 1 s real"
    );
    s.wait_settled(1002, T);
    // no-rejoin: stale forever, never marked online.
    ctl_ok(&s, &["clear", "1002"]);
    ctl_ok(&s, &["fault", "1003", "no-rejoin"]);
    ctl_ok(&s, &["restart", "1003", "--version", "v2.1.4-20250319"]);
    s.wait_until("stale", T, |s| s.node_state(1003) == "stale");
    std::thread::sleep(Duration::from_millis(600)); // 12 s simulated: would have rejoined long ago
    assert_eq!(s.node_state(1003), "stale");
    assert_eq!(s.get(1003, "/cluster/info", None).0, 400);
    let logs = ctl_ok(&s, &["logs", "1003"]);
    assert!(logs.contains("connect not authed") && logs.contains("leader not found"));
    ctl_ok(&s, &["clear", "1003"]);
    s.wait_settled(1003, T);
}

#[test]
fn never_starts_and_crash_loop() {
    let s = Sim::start(SimOpts {
        speed: 60.0,
        ..SimOpts::default()
    });
    ctl_ok(&s, &["fault", "1003", "never-starts"]);
    ctl_ok(&s, &["restart", "1003", "--version", "v2.1.2-20250120"]);
    s.wait_until("panic logged", T, |s| {
        ctl_ok(s, &["logs", "1003"]).contains("panic: wait all slots ready timeout")
    });
    assert!(
        s.events()
            .iter()
            .any(|e| e["node"] == 1003 && e["to"] == "crashed")
    );
    assert_eq!(s.get(1003, "/health", None).0, 0);
    ctl_ok(&s, &["stop", "1003"]);
    ctl_ok(&s, &["clear", "1003"]);
    ctl_ok(&s, &["start", "1003"]);
    s.wait_settled(1003, T);

    ctl_ok(&s, &["fault", "1002", "crash-loop"]);
    ctl_ok(&s, &["restart", "1002", "--version", "v2.2.5-20260422"]);
    s.wait_until("two crashes", T, |s| {
        s.events()
            .iter()
            .filter(|e| e["node"] == 1002 && e["to"] == "crashed")
            .count()
            >= 2
    });
    assert!(ctl_ok(&s, &["logs", "1002"]).contains("panic: apply slot logs failed"));
    let boots = s
        .events()
        .iter()
        .filter(|e| e["node"] == 1002 && e["to"] == "booting")
        .count();
    assert!(boots >= 3, "restarted after each crash");
    ctl_ok(&s, &["clear", "1002"]);
    s.wait_settled(1002, T);
}

#[test]
fn runtime_faults() {
    let s = sim("v2.2.5-20260422");
    ctl_ok(&s, &["fault", "1003", "http500"]);
    assert_eq!(s.get(1003, "/health", None), (500, String::new()));
    assert_eq!(s.get(1001, "/cluster/nodes", None).0, 400);
    assert_eq!(
        s.get(1001, "/cluster/simpleNodes", None).0,
        200,
        "simpleNodes never fans out"
    );
    ctl_ok(&s, &["clear", "1003"]);

    ctl_ok(&s, &["fault", "1003", "blackhole"]);
    let t0 = Instant::now();
    let (st, _) = http_get(s.api(1003), "/health", None, Duration::from_millis(300));
    assert_eq!(st, 0, "accepts but never answers");
    assert!(t0.elapsed() >= Duration::from_millis(250));
    let (st, body) = s.get(1001, "/cluster/nodes", None);
    assert_eq!(st, 400, "{body}");
    ctl_ok(&s, &["clear", "1003"]);

    ctl_ok(&s, &["fault", "1003", "partition"]);
    s.wait_until("partitioned node marked offline", T, |s| {
        let (_, v) = s.get_json(1001, "/cluster/simpleNodes");
        v["data"][2]["id"] == 1003 && v["data"][2].get("online").is_none()
    });
    assert_eq!(
        s.get_json(1003, "/cluster/node").1["online"],
        1,
        "it believes it is fine"
    );
    assert_eq!(s.get(1003, "/health", None).0, 200);
    assert!(ctl_ok(&s, &["logs", "1003"]).contains("connect not authed"));
    ctl_ok(&s, &["clear", "1003"]);
    s.wait_settled(1003, T);

    ctl_ok(&s, &["fault", "1001", "log", "hello from the test"]);
    assert!(
        ctl_ok(&s, &["logs", "1001"])
            .lines()
            .any(|l| l.ends_with("hello from the test"))
    );
    ctl_ok(
        &s,
        &["fault", "1001", "config", "WK_CLUSTER_SLOTCOUNT", "128"],
    );
    assert!(ctl_ok(&s, &["config", "1001"]).contains("WK_CLUSTER_SLOTCOUNT=128"));
    assert_eq!(
        s.get(1001, "/health", None),
        (
            500,
            r#"{"message":"slot count not match","status":"error"}"#.into()
        )
    );

    let peer = s.nodes[1].cluster_addr.clone();
    ctl_ok(&s, &["netcheck", "1001", &peer]);
    ctl_ok(&s, &["fault", "1001", "netsplit", "1002"]);
    let out = s.ctl(&["netcheck", "1001", &peer]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unreachable"));
    ctl_ok(&s, &["netcheck", "1002", &s.nodes[0].cluster_addr]);
    assert!(!s.ctl(&["fault", "1001", "bogus"]).status.success());
}
