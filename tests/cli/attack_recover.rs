//! Attacks on `wkctl recover` (issue #19 point 2) from outside: the real binary against
//! the real simulator, judged on the simulator's own event log.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Sim, SimOpts};
use crate::recover::{IDS, T, TO, assert_maintainers_order, broken, seen_by, three_of_three};
use crate::support::{Opts, Run, Ws, ctl_events, ctl_ok};

fn settled() -> (Sim, Ws) {
    let sim = Sim::start(SimOpts::default());
    sim.wait_until("the cluster settles", T, |s| {
        s.state()["cluster_settled"] == true
    });
    let ws = Ws::new(&sim, &Opts::default());
    (sim, ws)
}

fn recover_json(ws: &Ws) -> PathBuf {
    ws.state_base().join("t").join("recover.json")
}

/// Exactly one `error:` line with a `hint:`, and no panic.
fn one_line_error(r: &Run) {
    assert!(!r.stderr.contains("panicked"), "{}", r.all());
    let errors = r.stderr.lines().filter(|l| l.starts_with("error:")).count();
    assert_eq!(errors, 1, "one error line:\n{}", r.all());
    assert!(r.stderr.contains("hint:"), "{}", r.all());
}

/// Stops and starts the simulator saw after `mark` (its `ctl` commands and state moves).
fn touched(sim: &Sim, mark: usize) -> Vec<Value> {
    sim.events()[mark..]
        .iter()
        .filter(|e| {
            e["kind"] == "ctl"
                || e["kind"] == "stop"
                || (e["kind"] == "state" && e["to"] == "booting")
        })
        .cloned()
        .collect()
}

#[test]
fn attack_recover_degraded_one_node_down_is_refused_untouched() {
    let (sim, ws) = settled();
    ctl_ok(&sim, &["stop", "1003"]);
    sim.wait_until("1003 is down", T, |s| seen_by(s, 1003).is_none());
    let mark = sim.events().len();
    // Two of three, one controller, every node a member: degraded, not broken. A cold
    // start would turn one node down into all of them down.
    for args in [
        &["recover", "--yes-full-outage"][..],
        &["recover", "--yes-full-outage", "--json"],
        &["recover", "--dry-run"],
    ] {
        let r = ws.run(args, &[]);
        assert_eq!(r.code, 1, "{args:?}: {}", r.all());
        assert!(r.stderr.contains("is not broken"), "{}", r.all());
        one_line_error(&r);
    }
    assert!(touched(&sim, mark).is_empty(), "{:?}", touched(&sim, mark));
    assert!(!recover_json(&ws).exists());
    for id in [1001, 1002] {
        assert!(seen_by(&sim, id).is_some(), "node {id} still answers");
    }
}

#[test]
fn attack_recover_corrupt_state_file_is_one_clear_error_everywhere() {
    let (sim, ws) = settled();
    std::fs::create_dir_all(ws.state_base().join("t")).unwrap();
    for text in [
        "{not json",
        "",
        r#"{"format_version":1}"#,
        r#"{"format_version":1,"cluster":"t","status":"exploded","started_at_ms":0,"updated_at_ms":0,"versions":{},"cursor":0,"in_step":null,"doctor_report":null,"error":null,"last_seen":null}"#,
    ] {
        std::fs::write(recover_json(&ws), text).unwrap();
        let mark = sim.events().len();
        for args in [
            &["recover", "--yes-full-outage"][..],
            &["recover", "--resume", "--yes-full-outage"],
            &["recover", "--dry-run"],
            &["recover", "--yes-full-outage", "--json"],
            // `upgrade` must not read a broken recover.json as "no recover run".
            &["upgrade", "--to", "v2.1.2", "--yes"],
        ] {
            let r = ws.run(args, &[]);
            assert_eq!(r.code, 2, "{args:?} with {text:?}: {}", r.all());
            one_line_error(&r);
            assert!(r.stderr.contains("recover.json"), "{}", r.all());
        }
        assert!(touched(&sim, mark).is_empty(), "{:?}", touched(&sim, mark));
        assert_eq!(std::fs::read_to_string(recover_json(&ws)).unwrap(), text);
    }
    // The hint's way out works on the broken file and keeps a copy.
    let r = ws.run(&["recover", "--discard"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(!recover_json(&ws).exists());
    let kept = std::fs::read_dir(ws.state_base().join("t"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("recover-"))
        .count();
    assert_eq!(kept, 1);
}

#[test]
fn attack_recover_resume_refuses_a_state_that_does_not_fit_the_plan() {
    let (sim, ws) = settled();
    std::fs::create_dir_all(ws.state_base().join("t")).unwrap();
    let versions = |ids: &[u64]| -> Value {
        ids.iter()
            .map(|id| (id.to_string(), Value::from(TO)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let state = |cluster: &str, vs: Value, cursor: usize, in_step: Option<usize>| {
        json!({
            "format_version": 1, "cluster": cluster, "status": "interrupted",
            "started_at_ms": 1, "updated_at_ms": 1, "versions": vs,
            "cursor": cursor, "in_step": in_step,
            "doctor_report": null, "error": null, "last_seen": null
        })
    };
    for (why, st) in [
        // Past the last step: a resume that "finishes" without doing anything.
        ("cursor past the end", state("t", versions(&IDS), 99, None)),
        (
            "in_step past the end",
            state("t", versions(&IDS), 3, Some(42)),
        ),
        // Started for four nodes; the manifest now has three: the cursor means another step.
        (
            "another node set",
            state("t", versions(&[1001, 1002, 1003, 1004]), 5, Some(5)),
        ),
        ("another cluster", state("prod", versions(&IDS), 4, None)),
    ] {
        let text = serde_json::to_string_pretty(&st).unwrap();
        std::fs::write(recover_json(&ws), &text).unwrap();
        let mark = sim.events().len();
        let r = ws.run(&["recover", "--resume", "--yes-full-outage", "--json"], &[]);
        assert_eq!(r.code, 2, "{why}: {}", r.all());
        one_line_error(&r);
        assert!(r.stderr.contains("cannot resume"), "{why}: {}", r.all());
        assert!(
            !r.stdout.contains("recover_finished"),
            "{why}: no run: {}",
            r.all()
        );
        assert!(
            touched(&sim, mark).is_empty(),
            "{why}: {:?}",
            touched(&sim, mark)
        );
        assert_eq!(std::fs::read_to_string(recover_json(&ws)).unwrap(), text);
    }
}

#[test]
fn attack_recover_confirmation_cannot_be_bypassed() {
    let (sim, ws) = broken();
    let mark = sim.events().len();
    let env_yes = [
        ("YES", "1"),
        ("WKCTL_YES", "1"),
        ("WKCTL_YES_FULL_OUTAGE", "1"),
        ("CI", "true"),
    ];
    for args in [
        &["recover"][..],
        &["recover", "--json"],
        &["recover", "--yes"],
        &["recover", "-y"],
        &["recover", "--yes-full-outage=false"],
        &["recover", "--break-lock"],
        &["recover", "--resume"],
    ] {
        let r = ws.run(args, &env_yes);
        assert_ne!(r.code, 0, "{args:?}: {}", r.all());
        assert!(!r.stderr.contains("panicked"), "{}", r.all());
    }
    assert!(touched(&sim, mark).is_empty(), "{:?}", touched(&sim, mark));
    assert!(!recover_json(&ws).exists());
    for id in IDS {
        assert_eq!(seen_by(&sim, id), Some(vec![id]), "node {id} untouched");
    }
}

/// Kill -9 once the stop of `node` finished, `--dry-run` and a confirmation-less resume
/// in between (neither touches anything), then `--resume` to the end.
fn kill_then_resume(kill_after: (&str, u64)) {
    let (sim, ws) = broken();
    let mark = sim.events().len();
    let mut run = ws.spawn(&["recover", "--yes-full-outage", "--json"], &[]);
    run.wait_for("the step", T, |v| {
        v["type"] == "step_finished"
            && v["data"]["step"] == kill_after.0
            && v["data"]["node"] == kill_after.1
    });
    run.kill9();
    let before = std::fs::read_to_string(recover_json(&ws)).unwrap();
    let st: Value = serde_json::from_str(&before).unwrap();
    assert_eq!(st["status"], "in_progress", "{st}");
    std::thread::sleep(Duration::from_millis(300));
    let ctl_mark = ctl_events(&sim).len();

    // Broken or not by now, a dry run only reads.
    let dry = ws.run(&["recover", "--dry-run", "--json"], &[]);
    assert!([0, 1].contains(&dry.code), "{}", dry.all());
    assert!(!dry.stderr.contains("panicked"), "{}", dry.all());
    let no_yes = ws.run(&["recover", "--resume"], &[]);
    assert_eq!(no_yes.code, 2, "{}", no_yes.all());
    assert!(
        no_yes.stderr.contains("--yes-full-outage"),
        "{}",
        no_yes.all()
    );
    assert_eq!(ctl_events(&sim).len(), ctl_mark, "nothing touched");
    assert_eq!(
        std::fs::read_to_string(recover_json(&ws)).unwrap(),
        before,
        "the state file is the killed run's"
    );

    let r = ws.run(&["recover", "--resume", "--yes-full-outage", "--json"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let events = &sim.events()[mark..];
    assert_maintainers_order(events);
    for id in IDS {
        for verb in ["stop", "start"] {
            let n = events
                .iter()
                .filter(|e| {
                    e["kind"] == "ctl"
                        && e["node"] == id
                        && e["detail"].as_str().is_some_and(|d| d.starts_with(verb))
                })
                .count();
            assert_eq!(n, 1, "node {id}: one `{verb}`:\n{events:#?}");
        }
    }
    three_of_three(&sim);
    // Done: nothing to resume, and the healed cluster is refused a second cold start.
    let mark = sim.events().len();
    let again = ws.run(&["recover", "--resume", "--yes-full-outage"], &[]);
    assert_eq!(again.code, 1, "{}", again.all());
    assert!(again.stderr.contains("no unfinished"), "{}", again.all());
    let fresh = ws.run(&["recover", "--yes-full-outage"], &[]);
    assert_eq!(fresh.code, 1, "{}", fresh.all());
    assert!(fresh.stderr.contains("is not broken"), "{}", fresh.all());
    assert!(touched(&sim, mark).is_empty(), "{:?}", touched(&sim, mark));
}

#[test]
fn attack_recover_kill_9_between_the_stops_then_resume() {
    kill_then_resume(("stop", 1002));
}

#[test]
fn attack_recover_kill_9_right_after_the_first_start_then_resume() {
    kill_then_resume(("start", 1001));
}

#[test]
fn attack_recover_resume_does_not_seed_1001_beside_a_node_that_came_back() {
    let (sim, ws) = broken();
    let mut run = ws.spawn(&["recover", "--yes-full-outage", "--json"], &[]);
    run.wait_for("1001's stop", T, |v| {
        v["type"] == "step_finished" && v["data"]["step"] == "stop" && v["data"]["node"] == 1001
    });
    run.kill9();
    std::thread::sleep(Duration::from_millis(300));
    // Whatever the killed run began, every node is down; then a supervisor (or a
    // colleague) brings 1003 back on its own.
    let _ = sim.ctl(&["stop", "1001"]);
    ctl_ok(&sim, &["start", "1003"]);
    sim.wait_until("1003 answers", T, |s| seen_by(s, 1003).is_some());
    let mark = sim.events().len();
    let r = ws.run(&["recover", "--resume", "--yes-full-outage", "--json"], &[]);
    let events = &sim.events()[mark..];
    let boot_1001 = events
        .iter()
        .position(|e| e["kind"] == "state" && e["node"] == 1001 && e["to"] == "booting");
    if let Some(boot) = boot_1001 {
        assert!(
            events[..boot]
                .iter()
                .any(|e| e["kind"] == "state" && e["node"] == 1003 && e["to"] == "stopped"),
            "1001 started while 1003 ran alone:\n{events:#?}\n{}",
            r.all()
        );
    } else {
        assert_eq!(r.code, 1, "{}", r.all());
        assert!(r.stdout.contains("1003"), "names the node: {}", r.all());
        let st: Value =
            serde_json::from_str(&std::fs::read_to_string(recover_json(&ws)).unwrap()).unwrap();
        assert_eq!(st["status"], "failed", "{st}");
        // Once 1003 is down again, the resume goes on in order.
        ctl_ok(&sim, &["stop", "1003"]);
        let r = ws.run(&["recover", "--resume", "--yes-full-outage", "--json"], &[]);
        assert_eq!(r.code, 0, "{}", r.all());
        three_of_three(&sim);
    }
}

#[test]
fn attack_recover_two_directories_two_runs_one_cluster() {
    let (sim, _) = broken();
    // Slow first start: run A is inside its cold start for several seconds.
    ctl_ok(&sim, &["fault", "1001", "slow-start", "200"]);
    let a = Ws::with_node_timeout(&sim, "40s");
    let b = Ws::new(&sim, &Opts::default());
    let shared = a.dir.path().join("locks");
    let lock = [("WKCTL_LOCK_DIR", shared.to_str().unwrap())];
    let mark = sim.events().len();
    let mut run = a.spawn(&["recover", "--yes-full-outage", "--json"], &[]);
    run.wait_for("1001's start", T, |v| {
        v["type"] == "step_finished" && v["data"]["step"] == "start" && v["data"]["node"] == 1001
    });
    let second = b.run(&["recover", "--yes-full-outage", "--json"], &lock);
    assert_ne!(second.code, 0, "a second recover ran: {}", second.all());
    assert!(!recover_json(&b).exists(), "{}", second.all());
    let up = b.run(&["upgrade", "--to", "v2.1.2", "--yes"], &lock);
    assert_ne!(up.code, 0, "an upgrade ran beside recover: {}", up.all());
    let discard = a.run(&["recover", "--discard"], &[]);
    assert_ne!(discard.code, 0, "discarded a live run: {}", discard.all());
    assert!(recover_json(&a).exists());
    let resume = a.run(&["recover", "--resume", "--yes-full-outage"], &[]);
    assert_ne!(resume.code, 0, "resumed a live run: {}", resume.all());
    assert!(
        run.child.try_wait().unwrap().is_none(),
        "run A still in its cold start (else this proved nothing)"
    );
    let (code, err) = run.finish(Duration::from_mins(2));
    assert_eq!(code, 0, "{err}");
    assert_maintainers_order(&sim.events()[mark..]);
    three_of_three(&sim);
}

#[test]
fn attack_recover_slow_first_start_and_slow_join_hold_back_the_next_node() {
    let (sim, _) = broken();
    ctl_ok(&sim, &["fault", "1001", "slow-start", "60"]);
    ctl_ok(&sim, &["fault", "1002", "slow-join", "60"]);
    let ws = Ws::with_node_timeout(&sim, "40s");
    let mark = sim.events().len();
    let r = ws.run(&["recover", "--yes-full-outage", "--json"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_maintainers_order(&sim.events()[mark..]);
    three_of_three(&sim);
}

#[test]
fn attack_recover_resume_does_not_adopt_a_foreign_version_process_as_its_start() {
    let (sim, ws) = broken();
    let mut run = ws.spawn(&["recover", "--yes-full-outage", "--json"], &[]);
    run.wait_for("1001's start", T, |v| {
        v["type"] == "step_finished" && v["data"]["step"] == "start" && v["data"]["node"] == 1001
    });
    run.kill9();
    std::thread::sleep(Duration::from_millis(300));
    let st: Value =
        serde_json::from_str(&std::fs::read_to_string(recover_json(&ws)).unwrap()).unwrap();
    assert_eq!(st["in_step"], 4, "killed inside `start 1001`: {st}");
    // A colleague "fixes" it by hand with the old binary: 1001 answers, on v2.0.10.
    ctl_ok(&sim, &["stop", "1001"]);
    ctl_ok(&sim, &["start", "1001", "--version", "v2.0.10-20241221"]);
    sim.wait_until("1001 answers", T, |s| seen_by(s, 1001).is_some());
    let r = ws.run(&["recover", "--resume", "--yes-full-outage", "--json"], &[]);
    let on_old = crate::support::varz_version(&sim, 1001, None).starts_with("v2.0.10");
    assert!(
        r.code != 0 || !on_old,
        "recover adopted 1001 on v2.0.10 as its own start and went on: {}",
        r.all()
    );
    if r.code != 0 {
        assert!(r.stdout.contains("v2.0.10"), "says why: {}", r.all());
        assert!(
            !r.lines()
                .iter()
                .any(|l| l["type"] == "step_started" && l["data"]["node"] == 1002),
            "went on to 1002: {}",
            r.all()
        );
    }
}
