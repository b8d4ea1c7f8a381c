//! Holes an outside review of the safety core (issue 11) found after it landed. Each test
//! sets up the situation on the simulator and asserts what DESIGN §5–§6 promise: never two
//! nodes down, every stop on a settled cluster, a clean exit on a signal, no panic.

use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::harness::{
    Sim, SimOpts, down_intervals_never_overlap, every_stop_settled, rollout_was_safe,
};
use crate::support::{FAST_POLICY, Opts, UP_WITH_ROLLBACK, Ws, ctl_ok, lifecycle, node_state_of};

const RUN_T: Duration = Duration::from_secs(90);
const UP: [&str; 5] = ["upgrade", "--to", "v2.1.2", "--yes", "--json"];
const RESUME: [&str; 4] = ["upgrade", "--resume", "--yes", "--json"];

fn count(sim: &Sim, verb: &str, node: u64) -> usize {
    lifecycle(sim)
        .iter()
        .filter(|(_, v, n)| v == verb && *n == node)
        .count()
}

fn events_of(sim: &Sim, kind: &str, node: u64) -> usize {
    sim.events()
        .iter()
        .filter(|e| e["kind"] == kind && e["node"] == node)
        .count()
}

/// Points the workspace at a copy of the `sim` playbook whose `stop` line is `stop`.
fn with_stop_step(ws: &Ws, name: &str, stop: &str) {
    let pb = include_str!("../../playbooks/sim.yaml")
        .replace("name: sim", &format!("name: {name}"))
        .replace(
            "  stop: \"{{wksim}} ctl --state-dir {{state_dir}} stop {{node.id}}\"",
            &format!("  stop: {}", serde_json::to_string(stop).unwrap()),
        );
    assert!(pb.contains(stop), "the stop line was replaced");
    std::fs::write(ws.dir.path().join("pb.yaml"), pb).unwrap();
    let m = std::fs::read_to_string(&ws.manifest)
        .unwrap()
        .replace("playbook: sim", "playbook: ./pb.yaml");
    std::fs::write(&ws.manifest, m).unwrap();
}

/// A `stop` that failed (the `binary-daemon` playbook's stop fails on a stale pid file,
/// issue 11 hole 6) leaves `step: stop` in the state. `--resume` then treats the node as
/// "stop began, may be down": it skips the pre-stop check, observes the node is up, and
/// runs the stop again at once, whatever the rest of the cluster looks like. Here node
/// 1003 came back but has not caught up on the config (signal E false; the pre-upgrade
/// check only warns about that), and the resumed run stops 1002 next to it.
///
/// At fault: `Runner::node` (`src/execute.rs`) skips `pre_stop` whenever
/// `stop_began()`, and `already_done` falls through to running the stop when the node is
/// not down. A node found still up must go through the pre-stop check (keeping its
/// recorded baseline) before its stop is run again.
#[test]
fn resume_runs_a_failed_stop_again_only_after_the_pre_stop_check() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    let dir = sim.state_dir().display().to_string();
    let wksim = crate::harness::wksim_bin().display().to_string();
    // The first stop of a node fails (stale pid file); later ones work. Only 1002's
    // first stop is left to fail.
    with_stop_step(
        &ws,
        "sim-stale-pid",
        &format!(
            "if [ -f {dir}/stop-ok-{{{{node.id}}}} ]; then {wksim} ctl --state-dir {dir} stop {{{{node.id}}}}; else touch {dir}/stop-ok-{{{{node.id}}}}; echo 'stale pid file' >&2; exit 1; fi"
        ),
    );
    for id in [1001, 1003] {
        std::fs::write(sim.state_dir().join(format!("stop-ok-{id}")), "").unwrap();
    }
    let r = ws.run(&UP, &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    let n = node_state_of(&ws, 1002);
    assert_eq!(
        (&n["status"], &n["step"]),
        (&"failed".into(), &"stop".into()),
        "{n}"
    );
    assert_eq!(node_state_of(&ws, 1001)["status"], "ready");
    assert_eq!(count(&sim, "stop", 1002), 0, "the failed stop did nothing");
    sim.wait_settled(1001, RUN_T);

    // Meanwhile 1003 is restarted by someone else and comes back slowly: online in the
    // controller's view, knows the controller, but its config lags for ~5 s real.
    let rejoined_before = events_of(&sim, "rejoined", 1003);
    ctl_ok(&sim, &["fault", "1003", "slow-catch-up", "100"]);
    ctl_ok(&sim, &["stop", "1003"]);
    sim.wait_until("1003 marked offline", RUN_T, |s| {
        events_of(s, "offline_marked", 1003) == 1
    });
    ctl_ok(&sim, &["start", "1003"]);
    sim.wait_until("1003 online, not caught up", RUN_T, |s| {
        s.node_state(1003) == "online"
    });
    assert_eq!(events_of(&sim, "rejoined", 1003), rejoined_before);

    // The pid file is fixed; resume. It must wait until 1003 has caught up (within
    // node_timeout: 8 s) before it stops 1002.
    let r = ws.run(&RESUME, &[]);
    let ev = sim.events();
    every_stop_settled(&ev).unwrap_or_else(|e| panic!("{e}\n{}", r.all()));
    down_intervals_never_overlap(&ev).unwrap_or_else(|e| panic!("{e}\n{}", r.all()));
    assert_eq!(r.code, 0, "{}", r.all());
}

/// `--rollback-on-failure` after a gate that failed because a *peer* went down: the
/// rollback restarts the failed node while that peer has not rejoined. Here 1002 is
/// bounced (killed and restarted at once, inside the controller's offline window) and
/// comes back stale: `/health` ok, never marked offline, `leader not found`. The tracker
/// rightly stops the run (node 1002 restarted), but `rollback_blocker` only looks for a
/// peer that does not answer or is marked offline, so it lets the rollback restart
/// 1001 too: two nodes down.
///
/// At fault: `gate::rollback_blocker` (`src/gate.rs`) judges peers with a weaker rule than
/// the tracker's peer watch and pre-stop. A rollback is a stop: it must need what a stop
/// needs (every other node fully back: A, C, D, E, no restart seen, F), or at least the
/// tracker's `peer_down_cause` plus "restarted since last seen".
#[test]
fn a_rollback_never_restarts_the_node_while_a_peer_is_not_rejoined() {
    let sim = Sim::start(SimOpts::default());
    // A long hold, so the peer can be bounced while 1001's gate holds.
    let policy = FAST_POLICY.replace("stable_for: 400ms", "stable_for: 4s");
    let ws = Ws::new(
        &sim,
        &Opts {
            policy,
            ..Opts::default()
        },
    );
    let mut run = ws.spawn(&UP_WITH_ROLLBACK, &[]);
    run.wait_for("1001's gate", RUN_T, |v| {
        v["type"] == "step_started"
            && v["data"]["node"] == 1001
            && v["data"]["step"] == "wait_ready"
    });
    // Its first `rejoined` is the initial settle; the second follows its restart.
    sim.wait_until("1001 rejoined", RUN_T, |s| {
        events_of(s, "rejoined", 1001) >= 2
    });
    let rejoined_1002 = events_of(&sim, "rejoined", 1002);
    ctl_ok(&sim, &["fault", "1002", "slow-rejoin", "200"]);
    ctl_ok(&sim, &["bounce", "1002"]);
    let (code, err) = run.finish(RUN_T);
    assert_eq!(code, 1, "{err}\n{}", run.text());
    let failed = run
        .values()
        .into_iter()
        .map(|(_, v)| v)
        .find(|v| v["type"] == "node_failed")
        .unwrap_or_else(|| panic!("no node_failed:\n{}", run.text()));
    assert_eq!(failed["data"]["node"], 1001, "{failed}");
    assert_eq!(
        events_of(&sim, "rejoined", 1002),
        rejoined_1002,
        "1002 is still stale (slow-rejoin) when the run ends"
    );
    assert_eq!(
        count(&sim, "restart", 1001),
        0,
        "1001 was rolled back while 1002 had not rejoined:\n{}",
        run.text()
    );
    // The test bounces 1002 itself: only the strict down-interval check applies.
    down_intervals_never_overlap(&sim.events()).unwrap();
}

/// An interrupted `start` whose node is still booting is run a second time after a fixed
/// 5 s (`START_PATIENCE`, or `stable_for` + 3 polls if longer), although the first one
/// took effect: with the `binary-daemon` playbook that is a second `wukongim -d` (issue 11
/// hole 6). A real node's API opens only after its slots are loaded (facts §4.1: up to the
/// 1-minute `MustWaitAllSlotsReady`), so a boot longer than 5 s is ordinary. Here 1002
/// boots for ~10 s real (`slow-start`), the run is killed while its `start` step is still
/// running, and the resume starts it again.
///
/// At fault: `Runner::already_done` (`src/execute.rs`): a node that is down after an
/// interrupted `start` should be given the gate's whole budget (`node_timeout` from the
/// resume) to come up, and only then be reported, not started again blindly.
#[test]
fn resume_does_not_start_a_booting_node_a_second_time() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::with_node_timeout(&sim, "30s");
    let dir = sim.state_dir().display().to_string();
    let pb = include_str!("../../playbooks/sim.yaml")
        .replace("name: sim", "name: sim-slow-start-step")
        .replace(
            "  start: \"{{wksim}} ctl --state-dir {{state_dir}} start {{node.id}} --version {{to}}\"",
            &format!(
                "  start: \"{{{{wksim}}}} ctl --state-dir {{{{state_dir}}}} start {{{{node.id}}}} --version {{{{to}}}} && if [ {{{{node.id}}}} = 1002 ] && [ ! -f {dir}/started-once ]; then touch {dir}/started-once; sleep 30; fi\""
            ),
        );
    assert!(pb.contains("started-once"), "the start line was replaced");
    std::fs::write(ws.dir.path().join("pb.yaml"), pb).unwrap();
    let m = std::fs::read_to_string(&ws.manifest)
        .unwrap()
        .replace("playbook: sim", "playbook: ./pb.yaml");
    std::fs::write(&ws.manifest, m).unwrap();
    ctl_ok(&sim, &["fault", "1002", "slow-start", "200"]);
    let mut run = ws.spawn(&UP, &[]);
    sim.wait_until("1002 started once", RUN_T, |s| {
        s.dir.path().join("started-once").exists() && count(s, "start", 1002) == 1
    });
    run.kill9();
    assert_eq!(
        sim.node_state(1002),
        "booting",
        "the first start took effect"
    );
    let r = ws.run(&RESUME, &[]);
    assert_eq!(
        count(&sim, "start", 1002),
        1,
        "1002 was started a second time while it was booting:\n{}",
        r.all()
    );
    assert_eq!(r.code, 0, "{}", r.all());
    crate::harness::rollout_was_safe(&sim.events()).unwrap();
}

/// A gate that failed because the node came back on the old image (`wrong-version`: the
/// image was not pulled, #310) without `--rollback-on-failure`: wkctl says "fix the cause,
/// then `wkctl upgrade --resume`". The operator pulls the image and resumes, but the
/// resumed run only re-gates the node (every step is recorded as done) and never runs
/// `install`/`start` again, so it waits `node_timeout` for a version that cannot come and
/// fails again: the same dead end issue 11 hole 3 removed for the rollback case.
///
/// At fault: `Runner::node` (`src/execute.rs`) skips every step in `done`; a node
/// whose gate failed and that still runs its old process (B: version not the target,
/// or the same uptime/commit as its baseline) must have `install` and `start` run again
/// on resume (it is down for the cluster already, so no pre-stop is needed; observe first).
#[test]
fn resume_after_a_failed_gate_on_the_old_image_starts_the_node_again() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::with_node_timeout(&sim, "4s");
    ctl_ok(&sim, &["fault", "1002", "wrong-version"]);
    let r = ws.run(&UP, &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert_eq!(node_state_of(&ws, 1002)["status"], "failed");
    assert_eq!(
        crate::support::varz_version(&sim, 1002, None),
        "v2.0.10-20241221"
    );
    // The cause is fixed: the image is there now.
    ctl_ok(&sim, &["clear", "1002"]);
    let r = ws.run(&RESUME, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(
        crate::support::varz_version(&sim, 1002, None),
        "v2.1.2-20250120"
    );
    rollout_was_safe(&sim.events()).unwrap();
}

/// SIGHUP from a dropped ssh session also ends the pipeline wkctl writes to
/// (`wkctl upgrade … 2>&1 | tee upgrade.log`): its stderr and stdout become broken pipes.
/// wkctl's plain progress lines use `eprintln!`, which panics on a write error, so the
/// first line after the signal kills the process in the middle of a node: the node it was
/// stopping is left down, the state says `running`, and nobody is told.
///
/// At fault: `Printer::note`/`warn`/`detail` and `eprint_error` (`src/output.rs`) use
/// `eprintln!`; a write error there must be ignored (as `Reporter::emit` already does for
/// JSON on stdout), so the run finishes the node's gate and saves state as on Ctrl-C.
#[test]
fn sighup_with_a_broken_output_pipe_does_not_leave_a_node_down() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    let mut child = ws
        .cmd(
            &["upgrade", "--to", "v2.1.2", "--yes", "--no-progress"],
            &[],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wkctl");
    let out = child.stdout.take();
    let err = child.stderr.take();
    sim.wait_until("1002 stopped", RUN_T, |s| count(s, "stop", 1002) == 1);
    // The ssh session drops: `tee` dies (both pipes close), then wkctl gets SIGHUP.
    drop(out);
    drop(err);
    kill(
        Pid::from_raw(i32::try_from(child.id()).unwrap()),
        Signal::SIGHUP,
    )
    .unwrap();
    let deadline = Instant::now() + RUN_T;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "wkctl did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    let state = ws.state();
    let n = node_state_of(&ws, 1002);
    assert_eq!(
        count(&sim, "start", 1002),
        1,
        "node 1002 was left down (exit {status}; state {state})"
    );
    assert_eq!(status.code(), Some(130), "state {state}");
    assert_eq!(state["status"], "interrupted", "{state}");
    assert_eq!(n["status"], "in_progress", "{n}");
    assert_eq!(count(&sim, "stop", 1003), 0);
    sim.wait_until("1002 rejoined after its stop", RUN_T, |s| {
        events_of(s, "rejoined", 1002) >= 2
    });
    rollout_was_safe(&sim.events()).unwrap();
}

/// A policy duration beyond what `Instant` can hold (`node_timeout: 500000000000y`, a typo
/// for "forever") is accepted by the manifest parser and then panics in the tracker
/// (`Instant + Duration` overflows), after the run has started. Bad input must be a
/// one-line error naming the place, with a hint (STYLE), before anything is touched.
///
/// At fault: `manifest::duration` (`src/manifest.rs`) has no upper bound; `Tracker::begin`
/// (`at + node_timeout`), `Tracker::start_returned` (`stable_for + poll * 2`) and
/// `Runner::already_done` (`poll * 3`) use panicking arithmetic.
#[test]
fn an_absurd_policy_duration_is_an_input_error_not_a_panic() {
    for (key, value) in [
        ("node_timeout: 8s", "node_timeout: 500000000000y"),
        ("poll_interval: 100ms", "poll_interval: 500000000000y"),
        ("stable_for: 400ms", "stable_for: 500000000000y"),
    ] {
        let sim = Sim::start(SimOpts::default());
        let ws = Ws::new(
            &sim,
            &Opts {
                policy: FAST_POLICY.replace(key, value),
                ..Opts::default()
            },
        );
        let r = ws.run(&UP, &[]);
        assert!(!r.stderr.contains("panicked"), "{value}: {}", r.all());
        assert_eq!(r.code, 2, "{value}: {}", r.all());
        assert!(r.stderr.contains("hint:"), "{value}: {}", r.all());
        assert_eq!(count(&sim, "stop", 1001), 0, "{value}: nothing touched");
    }
}

/// A node (or anything between wkctl and it) that answers `/varz` with an absurd uptime,
/// `18446744073709549568s2047s` (`u64::MAX` seconds), is parsed as a valid `Duration`; the
/// tracker then adds its 2 s slack to it (`uptime + UPTIME_SLACK`) and panics, and a
/// baseline taken from it cannot be read back on `--resume` (`from_secs_f64` of the
/// rounded-up f64). A hostile or broken answer must be "unknown", never a panic.
///
/// At fault: `probe::parse_go_uptime` (`src/probe/models.rs`) accepts any `Duration`;
/// `Tracker::remember` (`src/gate/tracker.rs`) and `signals::new_process` use `+`
/// instead of `saturating_add`. Cap the parsed uptime (say at 100 years) and saturate.
#[test]
fn an_absurd_uptime_from_a_peer_is_unknown_not_a_panic() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    let proxy = hostile_uptime_proxy(sim.api(1003).to_string(), "18446744073709549568s2047s");
    let m = std::fs::read_to_string(&ws.manifest)
        .unwrap()
        .replace(sim.api(1003), &proxy);
    std::fs::write(&ws.manifest, m).unwrap();
    let r = ws.run(&UP, &[]);
    assert!(!r.stderr.contains("panicked"), "{}", r.all());
    assert!(matches!(r.code, 0 | 1), "{}", r.all());
    for id in [1001, 1002, 1003] {
        assert_eq!(
            count(&sim, "stop", id),
            count(&sim, "start", id),
            "node {id} left down:\n{}",
            r.all()
        );
    }
    rollout_was_safe(&sim.events()).unwrap();
}

/// A loopback HTTP proxy to `real` that rewrites `/varz`'s `uptime` to `uptime`.
/// Returns its base URL.
fn hostile_uptime_proxy(real: String, uptime: &'static str) -> String {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let real = real.clone();
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match conn.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                let token = head.lines().find_map(|l| {
                    l.to_ascii_lowercase()
                        .starts_with("token:")
                        .then(|| l[6..].trim().to_string())
                });
                let (status, mut body) = crate::harness::http_get(
                    &real,
                    &path,
                    token.as_deref(),
                    Duration::from_secs(5),
                );
                if status == 0 {
                    return; // the node does not answer: neither does the proxy
                }
                if path.starts_with("/varz")
                    && let Ok(mut v) = serde_json::from_str::<serde_json::Value>(&body)
                {
                    v["uptime"] = uptime.into();
                    body = v.to_string();
                }
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    format!("http://{addr}")
}
