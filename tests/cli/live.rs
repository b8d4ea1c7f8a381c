//! Live commands against the simulator: `check`, `status`, token handling, and the gate
//! turning ready only once the simulated node has really settled (issue "live cluster").

use std::time::Duration;

use serde_json::Value;

use crate::harness::{Sim, SimOpts};
use crate::support::{Opts, TOKEN_ENV, Ws, ctl_ok, finding_ids, keys, sorted};

const T: Duration = Duration::from_secs(30);

fn assert_finding_shape(f: &Value) {
    let k = keys(f);
    for want in ["id", "severity", "node", "message", "hint"] {
        assert!(k.contains(&want.to_string()), "finding lacks `{want}`: {f}");
    }
    assert!(
        k.iter().all(
            |k| ["id", "severity", "node", "message", "hint", "allowed_by"].contains(&k.as_str())
        ),
        "unexpected key in {f}"
    );
    assert!(f["id"].as_str().is_some_and(|s| s.contains('.')), "{f}");
    assert!(
        ["block", "warn", "info"].contains(&f["severity"].as_str().unwrap_or("")),
        "{f}"
    );
    assert!(f["node"].is_null() || f["node"].is_u64(), "{f}");
    assert!(f["message"].as_str().is_some_and(|s| !s.is_empty()), "{f}");
    assert!(f["hint"].as_str().is_some_and(|s| !s.is_empty()), "{f}");
}

fn assert_check_doc(doc: &Value) {
    assert_eq!(
        keys(doc),
        sorted(&[
            "format_version",
            "cluster",
            "to",
            "source",
            "ok",
            "findings"
        ]),
        "{doc}"
    );
    assert_eq!(doc["format_version"], 1);
    assert!(doc["ok"].is_boolean());
    assert!(doc["to"].as_str().is_some_and(|s| s.starts_with('v')));
    for f in doc["findings"].as_array().expect("findings[]") {
        assert_finding_shape(f);
    }
}

#[test]
fn check_healthy_cluster_passes_with_json_shape() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    let r = ws.run(&["check", "--to", "v2.1.2"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("ok:"), "{}", r.all());

    let r = ws.run(&["check", "--to", "v2.1.2", "--json"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let doc = r.json();
    assert_check_doc(&doc);
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["cluster"], "t");
    assert_eq!(doc["to"], "v2.1.2-20250120");
    assert_eq!(doc["source"], "live");
    assert!(
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["severity"] != "block"),
        "{doc}"
    );
}

#[test]
fn check_blocks_when_a_node_is_stopped() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    ctl_ok(&sim, &["stop", "1002"]);
    sim.wait_until("controller marks 1002 offline", T, |s| {
        s.events()
            .iter()
            .any(|e| e["kind"] == "offline_marked" && e["node"] == 1002)
    });
    let r = ws.run(&["check", "--to", "v2.1.2", "--json"], &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    let doc = r.json();
    assert_check_doc(&doc);
    assert_eq!(doc["ok"], false);
    let ids = finding_ids(&doc);
    assert!(
        ids.iter().any(
            |(id, n)| (id == "cluster.node_offline" || id == "node.unreachable")
                && *n == Some(1002)
        ),
        "{ids:?}"
    );
    let blocking = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "block" && f["node"] == 1002)
        .count();
    assert!(blocking >= 1, "{doc}");
    // The human form says it too, and exits 1.
    let r = ws.run(&["check", "--to", "v2.1.2"], &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stdout.contains("1002") && r.stdout.contains("blocked"),
        "{}",
        r.all()
    );
}

#[test]
fn status_shows_membership_mismatch_first() {
    let sim = Sim::start(SimOpts {
        joined: Some(1),
        ..SimOpts::default()
    });
    let ws = Ws::new(&sim, &Opts::default());
    let r = ws.run(&["status"], &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    let out = &r.stdout;
    let mism = out
        .find("MEMBERSHIP")
        .unwrap_or_else(|| panic!("no membership line:\n{out}"));
    let hint = out
        .find("start node 1001 first")
        .unwrap_or_else(|| panic!("no hint:\n{out}"));
    let table = out
        .find("ID ")
        .unwrap_or_else(|| panic!("no table:\n{out}"));
    assert!(
        mism < table && hint < table,
        "membership mismatch must come before the table:\n{out}"
    );
    assert!(
        out.trim_start().starts_with("MEMBERSHIP"),
        "first thing shown:\n{out}"
    );
    assert!(
        out[mism..table].contains("1002") && out[mism..table].contains("1003"),
        "{out}"
    );

    let r = ws.run(&["status", "--json"], &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    let doc = r.json();
    assert_eq!(
        keys(&doc),
        sorted(&[
            "format_version",
            "cluster",
            "controller",
            "config_version",
            "membership",
            "slots",
            "nodes",
            "findings"
        ]),
        "{doc}"
    );
    assert_eq!(doc["format_version"], 1);
    assert_eq!(doc["cluster"], "t");
    assert_eq!(doc["controller"], 1001);
    assert_eq!(doc["membership"], serde_json::json!([1001]));
    let rows = doc["nodes"].as_array().unwrap();
    assert_eq!(
        rows.iter()
            .map(|r| r["id"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [1001, 1002, 1003]
    );
    for row in rows {
        assert_eq!(
            keys(row),
            sorted(&[
                "id",
                "api",
                "reachable",
                "error",
                "version",
                "in_cluster",
                "online",
                "controller",
                "slots_led",
                "health",
                "uptime_s",
                "config_version",
                "connections"
            ]),
            "{row}"
        );
    }
    assert_eq!(rows[0]["in_cluster"], true);
    assert_eq!(rows[0]["reachable"], true);
    assert_eq!(rows[0]["controller"], true);
    assert_eq!(rows[0]["version"], "v2.0.10-20241221");
    assert_eq!(rows[0]["health"], "ok");
    assert_eq!(rows[1]["in_cluster"], false);
    assert_eq!(rows[1]["reachable"], false);
    assert!(rows[1]["error"].as_str().is_some_and(|e| !e.is_empty()));
    for f in doc["findings"].as_array().unwrap() {
        assert_finding_shape(f);
    }
    let m = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "cluster.membership_mismatch")
        .expect("membership finding");
    assert_eq!(m["severity"], "block");
    assert!(
        m["hint"]
            .as_str()
            .unwrap()
            .contains("start node 1001 first"),
        "{m}"
    );
}

#[test]
fn status_json_shape_on_healthy_cluster() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    let r = ws.run(&["status", "--json"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let doc = r.json();
    assert_eq!(doc["format_version"], 1);
    assert_eq!(doc["membership"], serde_json::json!([1001, 1002, 1003]));
    assert_eq!(
        keys(&doc["slots"]),
        sorted(&["total", "leaderless", "candidate", "migrating"])
    );
    assert_eq!(doc["slots"]["total"], 64);
    assert_eq!(doc["slots"]["leaderless"], 0);
    let ctrl = sim.state()["controller"].as_u64().unwrap();
    assert_eq!(doc["controller"], ctrl);
    let rows = doc["nodes"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    let mut led = 0;
    for (row, n) in rows.iter().zip(&sim.nodes) {
        assert_eq!(row["id"], n.id);
        assert_eq!(row["api"], n.api.as_str());
        assert_eq!(row["reachable"], true);
        assert!(row["error"].is_null());
        assert_eq!(row["in_cluster"], true);
        assert_eq!(row["online"], true);
        assert_eq!(row["controller"], n.id == ctrl);
        assert_eq!(row["health"], "ok");
        assert!(row["uptime_s"].as_f64().is_some_and(|u| u >= 0.0));
        assert!(row["config_version"].is_u64());
        led += row["slots_led"].as_u64().unwrap();
    }
    assert_eq!(led, 64, "every slot led once: {doc}");
    assert!(
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["severity"] != "block")
    );
}

#[test]
fn token_wrong_is_auth_failed_right_passes_never_printed() {
    let secret = "tok-Zq8-very-secret-41";
    let (_sim, ws) = Ws::with_token(secret);

    let wrong = "tok-wrong-value-77";
    let r = ws.run(
        &["check", "--to", "v2.1.2", "--json"],
        &[(TOKEN_ENV, wrong)],
    );
    assert_eq!(r.code, 1, "{}", r.all());
    let ids = finding_ids(&r.json());
    assert!(
        ids.iter().any(|(id, _)| id == "node.auth_failed"),
        "{ids:?}"
    );
    assert!(
        !r.all().contains(wrong),
        "the wrong token leaked:\n{}",
        r.all()
    );

    let r = ws.run(&["check", "--to", "v2.1.2"], &[(TOKEN_ENV, wrong)]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("node.auth_failed"), "{}", r.all());
    assert!(!r.all().contains(wrong));

    for args in [
        &["check", "--to", "v2.1.2"][..],
        &["check", "--to", "v2.1.2", "--json"],
        &["status"],
        &["status", "--json"],
    ] {
        let r = ws.run(args, &[(TOKEN_ENV, secret)]);
        assert_eq!(r.code, 0, "{args:?}: {}", r.all());
        assert!(
            !r.all().contains(secret),
            "{args:?} leaked the token:\n{}",
            r.all()
        );
    }
    // Without the variable the nodes answer 401 too.
    let r = ws.run(&["check", "--to", "v2.1.2", "--json"], &[]);
    assert_eq!(r.code, 1, "{}", r.all());
}

/// A v2.1.3 node mid-rejoin answers `/health` ok from its stale view; `check` must still say
/// it is not ready. Run at speed 1 so the stale window (1.5 s) outlasts one `check`.
#[test]
fn check_not_ok_while_a_v2_1_3_node_rejoins() {
    let v = "v2.1.3-20250210";
    let sim = Sim::start(SimOpts {
        version: v.into(),
        speed: 1.0,
        ..SimOpts::default()
    });
    let ws = Ws::new(&sim, &Opts::default());
    let mut caught = false;
    for _attempt in 0..3 {
        sim.wait_settled(1002, T);
        ctl_ok(&sim, &["restart", "1002", "--version", v]);
        sim.wait_until("1002 stale", T, |s| s.node_state(1002) == "stale");
        assert_eq!(
            sim.get(1002, "/health", None).0,
            200,
            "v2.1.3 /health is always ok"
        );
        let r = ws.run(&["check", "--to", "v2.1.4", "--json"], &[]);
        let still_stale = sim.node_state(1002) == "stale";
        if !still_stale {
            continue; // the check outlasted the window: not a valid observation, retry
        }
        assert_eq!(r.code, 1, "{}", r.all());
        let doc = r.json();
        assert_eq!(doc["ok"], false, "{doc}");
        let blocks: Vec<_> = doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["severity"] == "block")
            .collect();
        assert!(
            blocks.iter().any(|f| f["node"] == 1002),
            "the live findings must show 1002 not ready: {doc}"
        );
        caught = true;
        break;
    }
    assert!(caught, "never caught node 1002 while stale");
}

/// For every node, the simulator's `settled` (after its `start`) precedes wkctl's
/// `node_ready`. With `stable_for` 50 ms, shorter than the simulator's stale → settled
/// phase (about 150 ms at ×20), only C–F can hold the gate until then.
#[test]
fn gate_ready_only_after_simulator_settled() {
    let sim = Sim::start(SimOpts {
        version: "v2.1.3-20250210".into(),
        ..SimOpts::default()
    });
    let ws = Ws::new(
        &sim,
        &Opts {
            policy: crate::support::FAST_POLICY.replace("stable_for: 400ms", "stable_for: 50ms"),
            ..Opts::default()
        },
    );
    let mut run = ws.spawn(&["upgrade", "--to", "v2.1.4", "--yes", "--json"], &[]);
    let (code, err) = run.finish(Duration::from_secs(90));
    assert_eq!(code, 0, "{err}\n{}", run.text());
    let lines = run.values();
    let events = sim.events();
    for id in [1001u64, 1002, 1003] {
        let (ready_at, _) = lines
            .iter()
            .find(|(_, v)| v["type"] == "node_ready" && v["data"]["node"] == id)
            .unwrap_or_else(|| panic!("no node_ready for {id}:\n{}", run.text()));
        let start = events
            .iter()
            .position(|e| {
                e["kind"] == "ctl"
                    && e["node"] == id
                    && e["detail"].as_str().unwrap_or("").starts_with("start")
            })
            .unwrap_or_else(|| panic!("no start ctl event for {id}"));
        let settled = events[start..]
            .iter()
            .find(|e| e["kind"] == "state" && e["node"] == id && e["to"] == "settled")
            .unwrap_or_else(|| panic!("node {id} never settled after its start"));
        let settled_at = settled["ts_ms"].as_i64().unwrap();
        assert!(
            settled_at <= *ready_at,
            "node {id}: wkctl said ready at {ready_at}, the simulator settled it at {settled_at}"
        );
    }
    crate::harness::rollout_was_safe(&events).unwrap();
}

/// `status --watch` draws a timestamped frame every poll interval until Ctrl-C, then
/// exits 130 (13.12); into a pipe it writes no screen-clearing escapes.
#[test]
fn status_watch_redraws_until_ctrl_c() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    let mut child = ws
        .cmd(&["status", "--watch"], &[])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = std::io::Read::read(&mut out, &mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    // Wait for the third frame, however slow the machine.
    let frames = |t: &str| t.lines().filter(|l| l.starts_with("--- 20")).count();
    let mut text = String::new();
    let deadline = std::time::Instant::now() + Duration::from_mins(1);
    while frames(&text) < 3 {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(chunk) => text.push_str(&String::from_utf8_lossy(&chunk)),
            Err(e) => panic!("fewer than 3 frames within a minute ({e}):\n{text}"),
        }
    }
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let status = child.wait().unwrap();
    reader.join().unwrap();
    while let Ok(chunk) = rx.try_recv() {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert_eq!(status.code(), Some(130), "{text}");
    assert!(text.contains("1001") && !text.contains("\x1b[2J"), "{text}");
}
