//! `wkctl recover` against the real simulator (issue #19 point 2): from the #310 state
//! (every node restarted at once across the v2.1.0/v2.1.1 rewrite, each seeing only
//! itself) to N of N, in the maintainers' order, proven on the simulator's event log.

use std::time::Duration;

use serde_json::Value;

use crate::harness::{Sim, SimOpts};
use crate::support::{Opts, Ws, ctl_events, ctl_ok};

pub const T: Duration = Duration::from_mins(1);
pub const IDS: [u64; 3] = [1001, 1002, 1003];
pub const TO: &str = "v2.1.2-20250120";

/// Node ids the node's own `/cluster/simpleNodes` lists (what the console shows on it).
pub fn seen_by(sim: &Sim, id: u64) -> Option<Vec<u64>> {
    let (status, v) = sim.get_json(id, "/cluster/simpleNodes");
    (status == 200).then(|| {
        v["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n["id"].as_u64())
            .collect()
    })
}

/// A settled v2.0.10 cluster, then `docker compose down && up` on every host with the
/// v2.1.2 image (#310): every node answers and lists only itself.
pub fn broken() -> (Sim, Ws) {
    let sim = Sim::start(SimOpts::default());
    sim.wait_until("the cluster settles", T, |s| {
        s.state()["cluster_settled"] == true
    });
    ctl_ok(&sim, &["restart-all", "--version", TO]);
    sim.wait_until("every node answers, alone", T, |s| {
        IDS.iter().all(|id| seen_by(s, *id) == Some(vec![*id]))
    });
    let ws = Ws::new(&sim, &Opts::default());
    (sim, ws)
}

fn position(events: &[Value], what: &str, f: impl Fn(&Value) -> bool) -> usize {
    events
        .iter()
        .position(f)
        .unwrap_or_else(|| panic!("no {what} in the event log:\n{events:#?}"))
}

fn is(e: &Value, kind: &str, node: u64, to: Option<&str>) -> bool {
    e["kind"] == kind && e["node"] == node && to.is_none_or(|t| e["to"] == t)
}

/// The order the maintainers ask for, read from the simulator's own events after `mark`:
/// every stop in reverse id order and every node down before any start; 1001 started
/// first; 1002 only after 1001 was back in the (rebuilt) cluster; 1003 only after 1002
/// joined; the split healed at the end.
pub fn assert_maintainers_order(events: &[Value]) {
    let stops: Vec<u64> = events
        .iter()
        .filter(|e| e["kind"] == "stop")
        .filter_map(|e| e["node"].as_u64())
        .collect();
    assert_eq!(stops, vec![1003, 1002, 1001], "stops in reverse id order");
    let boots: Vec<u64> = events
        .iter()
        .filter(|e| e["kind"] == "state" && e["to"] == "booting")
        .filter_map(|e| e["node"].as_u64())
        .collect();
    assert_eq!(boots, vec![1001, 1002, 1003], "one start each, 1001 first");
    let first_boot = position(events, "a start", |e| e["to"] == "booting");
    for id in IDS {
        let down = position(events, "a stopped node", |e| {
            is(e, "state", id, Some("stopped"))
        });
        assert!(down < first_boot, "node {id} was down before any start");
    }
    let seeded = position(events, "1001 seeding", |e| {
        is(e, "split", 1001, Some("seeded"))
    });
    let api_1001 = position(events, "1001's API open", |e| {
        is(e, "state", 1001, Some("stale"))
    });
    let back_1001 = position(events, "1001 rejoined", |e| is(e, "rejoined", 1001, None));
    let boot_1002 = position(events, "1002 start", |e| {
        is(e, "state", 1002, Some("booting"))
    });
    let joined_1002 = position(events, "1002 joined", |e| {
        is(e, "join", 1002, Some("joined"))
    });
    let back_1002 = position(events, "1002 rejoined", |e| is(e, "rejoined", 1002, None));
    let boot_1003 = position(events, "1003 start", |e| {
        is(e, "state", 1003, Some("booting"))
    });
    let healed = position(events, "the split healed", |e| {
        e["kind"] == "split" && e["to"] == "healed"
    });
    let log = || {
        events
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    };
    // Step 3 waits for 1001's API only; step 4 for the controller and both Joined (and
    // caught up) before the next start. Whether 1001 caught up before or after 1002's join
    // is the simulator's own timing, not wkctl's order, so it is not asserted.
    assert!(
        seeded < api_1001 && api_1001 < boot_1002,
        "1002 started after 1001's API answered:\n{}",
        log()
    );
    assert!(
        joined_1002 < boot_1003 && back_1001 < boot_1003 && back_1002 < boot_1003,
        "1003 after 1001 and 1002 joined and caught up:\n{}",
        log()
    );
    assert!(boot_1003 < healed, "{}", log());
    assert!(
        !events
            .iter()
            .any(|e| e["kind"] == "split" && e["to"] == "island"),
        "no node came up alone during the recovery"
    );
}

pub fn three_of_three(sim: &Sim) {
    for id in IDS {
        assert_eq!(seen_by(sim, id), Some(IDS.to_vec()), "node {id} sees all");
    }
    let st = sim.state();
    for n in st["nodes"].as_array().unwrap() {
        assert_eq!(n["status"], 3, "Joined: {n}");
        assert_eq!(n["online"], true, "online: {n}");
    }
}

#[test]
fn recovers_the_310_state_to_three_of_three_in_the_maintainers_order() {
    let (sim, ws) = broken();
    // What `upgrade` refuses: the live check blocks on the membership mismatch.
    let check = ws.run(&["check", "--to", "v2.1.2", "--json"], &[]);
    assert_eq!(check.code, 1, "{}", check.all());
    assert!(
        crate::support::finding_ids(&check.json())
            .iter()
            .any(|(id, _)| id == "cluster.membership_mismatch"),
        "{}",
        check.all()
    );
    let mark = sim.events().len();
    let r = ws.run(&["recover", "--yes-full-outage", "--json"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stderr.contains("broken: cluster.membership_mismatch"),
        "{}",
        r.all()
    );
    assert_maintainers_order(&sim.events()[mark..]);
    three_of_three(&sim);

    let lines = r.lines();
    let last = lines.last().expect("events");
    assert_eq!(last["type"], "recover_finished", "{}", r.all());
    assert_eq!(last["data"]["ok"], true);
    assert_eq!(last["data"]["members"], 3);
    assert_eq!(last["data"]["nodes"], 3);
    let steps: Vec<&str> = lines
        .iter()
        .filter(|l| l["type"] == "recover_step")
        .filter_map(|l| l["data"]["step"].as_str())
        .collect();
    assert_eq!(
        steps,
        [
            "doctor", "stop", "stop", "stop", "start", "start", "start", "settle"
        ]
    );

    // Step 1's doctor report, beside the state, read on the broken cluster.
    let path = last["data"]["doctor_report"].as_str().expect("report path");
    assert!(path.starts_with(&ws.state_base().join("t").display().to_string()));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("report file")).expect("JSON");
    assert_eq!(report["cluster"], "t");
    let ids: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["id"].as_str())
        .collect();
    assert!(ids.contains(&"cluster.membership_mismatch"), "{ids:?}");
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(ws.state_base().join("t").join("recover.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["status"], "done");
    assert_eq!(state["cursor"], 8);
}

#[test]
fn starting_every_node_together_again_leaves_it_broken() {
    let (sim, _ws) = broken();
    ctl_ok(&sim, &["restart-all"]);
    sim.wait_until("every node answers again", T, |s| {
        IDS.iter().all(|id| seen_by(s, *id).is_some())
    });
    std::thread::sleep(Duration::from_millis(500));
    for id in IDS {
        assert_eq!(seen_by(&sim, id), Some(vec![id]), "node {id} still alone");
    }
}

#[test]
fn refuses_a_healthy_cluster_and_points_to_restart() {
    let sim = Sim::start(SimOpts::default());
    sim.wait_until("the cluster settles", T, |s| {
        s.state()["cluster_settled"] == true
    });
    let ws = Ws::new(&sim, &Opts::default());
    let mark = sim.events().len();
    let r = ws.run(&["recover", "--yes-full-outage"], &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("is not broken"), "{}", r.all());
    assert!(r.stderr.contains("hint:") && r.stderr.contains("`wkctl restart`"));
    let touched: Vec<Value> = sim.events()[mark..]
        .iter()
        .filter(|e| e["kind"] == "ctl" || e["kind"] == "stop")
        .cloned()
        .collect();
    assert!(touched.is_empty(), "{touched:?}");
}

#[test]
fn refuses_the_full_outage_without_confirmation_off_a_terminal() {
    let (sim, ws) = broken();
    let mark = ctl_events(&sim).len();
    let r = ws.run(&["recover"], &[]);
    assert_eq!(r.code, 2, "{}", r.all());
    let lines: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert_eq!(lines.len(), 1, "{}", r.all());
    assert!(
        lines[0].contains("1001, 1002, 1003"),
        "names every node: {}",
        lines[0]
    );
    assert!(r.stderr.contains("hint:") && r.stderr.contains("--yes-full-outage"));
    assert_eq!(ctl_events(&sim).len(), mark, "nothing touched");
    assert!(!ws.state_base().join("t").join("recover.json").exists());
}

#[test]
fn dry_run_prints_the_ordered_plan_and_touches_nothing() {
    let (sim, ws) = broken();
    let mark = sim.events().len();
    let r = ws.run(&["recover", "--dry-run", "--json"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let plan = r.json();
    let order: Vec<(String, Value)> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["kind"].as_str().unwrap().to_string(), s["node"].clone()))
        .collect();
    let want: Vec<(String, Value)> = [
        ("doctor", Value::Null),
        ("stop", 1003.into()),
        ("stop", 1002.into()),
        ("stop", 1001.into()),
        ("start", 1001.into()),
        ("start", 1002.into()),
        ("start", 1003.into()),
        ("settle", Value::Null),
    ]
    .into_iter()
    .map(|(k, n)| (k.to_string(), n))
    .collect();
    assert_eq!(order, want);
    assert_eq!(plan["steps"][5]["wait"]["until"], "controller_and_joined");
    let after = &sim.events()[mark..];
    assert!(
        !after
            .iter()
            .any(|e| ["ctl", "stop", "state", "join"].contains(&e["kind"].as_str().unwrap_or(""))),
        "the dry run touched the cluster: {after:?}"
    );
    assert!(!ws.state_base().join("t").join("recover.json").exists());
}

#[test]
fn kill_9_mid_recover_then_resume_finishes_without_a_second_start() {
    let (sim, ws) = broken();
    let mark = sim.events().len();
    let mut run = ws.spawn(&["recover", "--yes-full-outage", "--json"], &[]);
    // Killed right after 1002's `start` ran, while it joins.
    run.wait_for("1002's start", T, |v| {
        v["type"] == "step_finished" && v["data"]["step"] == "start" && v["data"]["node"] == 1002
    });
    run.kill9();
    let state_file = ws.state_base().join("t").join("recover.json");
    let st: Value = serde_json::from_str(&std::fs::read_to_string(&state_file).unwrap()).unwrap();
    assert_eq!(st["status"], "in_progress");
    assert_eq!(st["in_step"], 5, "inside `start 1002`: {st}");

    let plain = ws.run(&["recover", "--yes-full-outage"], &[]);
    assert_eq!(plain.code, 1, "{}", plain.all());
    assert!(plain.stderr.contains("--resume"), "{}", plain.all());
    let up = ws.run(&["upgrade", "--to", "v2.1.2", "--yes"], &[]);
    assert_eq!(up.code, 1, "{}", up.all());
    assert!(
        up.stderr.contains("`wkctl recover --resume`"),
        "{}",
        up.all()
    );

    let r = ws.run(&["recover", "--resume", "--yes-full-outage", "--json"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let lines = r.lines();
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "step_skipped" && l["data"]["node"] == 1002),
        "the interrupted start was observed, not re-run:\n{}",
        r.all()
    );
    assert_eq!(lines.last().unwrap()["data"]["ok"], true, "{}", r.all());
    let events = &sim.events()[mark..];
    assert_maintainers_order(events);
    let starts_1002 = events
        .iter()
        .filter(|e| {
            e["kind"] == "ctl"
                && e["node"] == 1002
                && e["detail"].as_str().is_some_and(|d| d.starts_with("start"))
        })
        .count();
    assert_eq!(starts_1002, 1, "1002 started once");
    three_of_three(&sim);
}

#[test]
fn refuses_while_an_unfinished_upgrade_run_exists() {
    let sim = Sim::start(SimOpts::default());
    sim.wait_until("the cluster settles", T, |s| {
        s.state()["cluster_settled"] == true
    });
    let ws = Ws::new(&sim, &Opts::default());
    let mut up = ws.spawn(&["upgrade", "--to", "v2.1.2", "--yes", "--json"], &[]);
    up.wait_for("1001's stop", T, |v| {
        v["type"] == "step_finished" && v["data"]["step"] == "stop"
    });
    up.kill9();
    let mark = ctl_events(&sim).len();
    let r = ws.run(&["recover", "--yes-full-outage"], &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("unfinished upgrade run"), "{}", r.all());
    assert!(r.stderr.contains("`wkctl upgrade --resume`"), "{}", r.all());
    assert_eq!(ctl_events(&sim).len(), mark, "nothing touched");
}

/// On a terminal (`script(1)`), `recover` names every node it will stop and asks; "n"
/// stops nothing (the simulator logs no stop), "y" runs the cold start to 3 of 3.
#[test]
fn on_a_terminal_the_full_outage_is_asked_naming_every_node() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(std::env::var_os("CI").is_none(), "`script` is needed in CI");
        return;
    }
    let (sim, ws) = broken();
    let pty = |answer: &[u8]| {
        let cmd = format!(
            "{} recover -m {} --state-dir {}",
            env!("CARGO_BIN_EXE_wkctl"),
            ws.manifest.display(),
            ws.state_base().display()
        );
        let mut child = std::process::Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .env("WKCTL_LOCK_DIR", ws.dir.path().join("locks"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        std::io::Write::write_all(&mut stdin, answer).unwrap();
        drop(stdin);
        let mut out = String::new();
        let _ = std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out);
        (child.wait().unwrap().code(), out)
    };
    let stops = |sim: &Sim| sim.events().iter().filter(|e| e["kind"] == "stop").count();
    let before = stops(&sim);
    let (code, out) = pty(b"n\n");
    assert_eq!(code, Some(1), "{out}");
    let asked = out
        .lines()
        .find(|l| l.contains("FULL OUTAGE [y/N]"))
        .unwrap_or_else(|| panic!("no question:\n{out}"));
    for id in IDS {
        assert!(asked.contains(&id.to_string()), "{id} not named: {asked}");
    }
    assert!(out.contains("nothing was changed"), "{out}");
    assert_eq!(stops(&sim), before, "a stop after \"n\":\n{out}");

    let (code, out) = pty(b"y\n");
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(stops(&sim), before + 3, "{out}");
    for id in IDS {
        assert_eq!(seen_by(&sim, id), Some(IDS.to_vec()), "{out}");
    }
}
