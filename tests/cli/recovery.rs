//! Recovery paths of `upgrade`: `--rollback-on-failure`, the first and the second Ctrl-C,
//! each followed by what the operator does next.

use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use crate::harness::{Sim, SimOpts, rollout_was_safe};
use crate::support::{
    FAST_POLICY, Opts, Streaming, UP_WITH_ROLLBACK, Ws, ctl_ok, lifecycle, node_state_of,
    varz_version,
};

const RUN_T: Duration = Duration::from_secs(90);
const UP: [&str; 5] = ["upgrade", "--to", "v2.1.2", "--yes", "--json"];

pub fn sigint(run: &Streaming) {
    let pid = i32::try_from(run.child.id()).unwrap();
    kill(Pid::from_raw(pid), Signal::SIGINT).unwrap();
}

fn values(run: &Streaming) -> Vec<Value> {
    run.values().into_iter().map(|(_, v)| v).collect()
}

fn stops(sim: &Sim, node: u64) -> usize {
    lifecycle(sim)
        .iter()
        .filter(|(_, v, n)| v == "stop" && *n == node)
        .count()
}

#[test]
fn rollback_on_failure_puts_the_old_version_back() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::with_node_timeout(&sim, "4s");
    ctl_ok(&sim, &["fault", "1002", "wrong-version"]);
    let mut run = ws.spawn(&UP_WITH_ROLLBACK, &[]);
    let (code, err) = run.finish(RUN_T);
    assert_eq!(code, 1, "{err}");
    let lines = values(&run);
    let rb = lines
        .iter()
        .find(|l| l["type"] == "rollback_finished")
        .expect("rollback_finished");
    assert_eq!(rb["data"]["node"], 1002);
    assert_eq!(rb["data"]["ok"], true, "{rb}");
    assert_eq!(node_state_of(&ws, 1002)["status"], "rolled_back");
    assert_eq!(varz_version(&sim, 1002, None), "v2.0.10-20241221");
    assert_eq!(varz_version(&sim, 1001, None), "v2.1.2-20250120");
    assert_eq!(stops(&sim, 1003), 0, "1003 untouched");
    rollout_was_safe(&sim.events()).unwrap();
}

#[test]
fn first_ctrl_c_brings_the_down_node_back_then_exits_130() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    let mut run = ws.spawn(&UP, &[]);
    run.wait_for("1002 stopping", RUN_T, |v| {
        v["type"] == "step_started" && v["data"]["node"] == 1002 && v["data"]["step"] == "stop"
    });
    sigint(&run);
    let (code, err) = run.finish(RUN_T);
    assert_eq!(code, 130, "{err}");
    let lines = values(&run);
    // The node that was going down was brought up and gated before stopping: the
    // simulator's own log shows it started again after its stop, and rejoined (online in
    // the controller's view and caught up) before wkctl exited; it is settled now.
    let events = sim.events();
    let ts = |pred: &dyn Fn(&Value) -> bool| {
        events
            .iter()
            .filter(|e| e["node"] == 1002 && pred(e))
            .filter_map(|e| e["ts_ms"].as_i64())
            .collect::<Vec<_>>()
    };
    let stopped = ts(&|e| e["kind"] == "stop");
    let started =
        ts(&|e| e["kind"] == "ctl" && e["detail"].as_str().is_some_and(|d| d.starts_with("start")));
    let rejoined = ts(&|e| e["kind"] == "rejoined");
    assert_eq!(stopped.len(), 1, "1002 really stopped once");
    assert!(
        started.iter().any(|t| *t >= stopped[0]) && rejoined.iter().any(|t| *t >= stopped[0]),
        "1002 was started again and rejoined: {events:?}"
    );
    assert_eq!(sim.node_state(1002), "settled");
    assert!(lines.iter().any(|l| l["type"] == "interrupted"));
    assert_eq!(lines.last().unwrap()["data"]["status"], "interrupted");
    assert_eq!(ws.state()["status"], "interrupted");
    // Up and gated, not soaked: the resumed run re-gates it and runs its soak.
    let n = node_state_of(&ws, 1002);
    assert_eq!(n["status"], "in_progress", "{n}");
    assert!(
        n["done"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d == "wait_ready"),
        "{n}"
    );
    assert!(
        !n["done"].as_array().unwrap().iter().any(|d| d == "soak"),
        "{n}"
    );
    assert_eq!(stops(&sim, 1003), 0);
    // Resume finishes without restarting the nodes already done.
    let r = ws.run(&["upgrade", "--resume", "--yes", "--json"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.lines().iter().any(|l| l["type"] == "soak_finished"
            && l["data"]["node"] == 1002
            && l["data"]["ok"] == true),
        "the interrupted node's soak runs on resume:\n{}",
        r.all()
    );
    assert_eq!(
        (stops(&sim, 1001), stops(&sim, 1002), stops(&sim, 1003)),
        (1, 1, 1)
    );
    rollout_was_safe(&sim.events()).unwrap();
}

#[test]
fn second_ctrl_c_saves_and_exits_at_once_saying_the_node_may_be_down() {
    let sim = Sim::start(SimOpts::default());
    let policy = FAST_POLICY.replace("stable_for: 400ms", "stable_for: 20s");
    let ws = Ws::new(
        &sim,
        &Opts {
            policy,
            ..Opts::default()
        },
    );
    let mut run = ws.spawn(
        &UP.iter()
            .copied()
            .chain(["--no-progress"])
            .collect::<Vec<_>>(),
        &[],
    );
    run.wait_for("gate of 1001", RUN_T, |v| {
        v["type"] == "step_started"
            && v["data"]["node"] == 1001
            && v["data"]["step"] == "wait_ready"
    });
    let t = std::time::Instant::now();
    // Two signals sent back to back may reach the process as one: send Ctrl-C until
    // wkctl exits. The first alone never ends a 20 s gate (it finishes the node's gate),
    // so an exit well before that proves the second was taken.
    while run.child.try_wait().expect("try_wait").is_none() && t.elapsed() < RUN_T {
        sigint(&run);
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, err) = run.finish(RUN_T);
    assert_eq!(code, 130, "{err}");
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "the second Ctrl-C exits now, not after the 20 s gate"
    );
    let lines = values(&run);
    let msg = lines
        .iter()
        .find(|l| l["type"] == "interrupted")
        .expect("interrupted")["data"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("node 1001 may be DOWN") && msg.contains("--resume"),
        "{msg}"
    );
    assert_eq!(node_state_of(&ws, 1001)["status"], "in_progress");
    assert_eq!(node_state_of(&ws, 1001)["step"], "wait_ready");
    rollout_was_safe(&sim.events()).unwrap();
}

/// `policy.canary: true` on a terminal: the first confirmation is answered `y`, the canary
/// question after node 1001 `n` → the run stops there (exit 130), 1002 and 1003 untouched,
/// and `--resume` continues. The terminal comes from `script(1)` (util-linux).
#[test]
fn canary_pauses_after_the_first_node_and_asks() {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    if Command::new("script").arg("--version").output().is_err() {
        crate::support::skip(
            "canary_pauses_after_the_first_node_and_asks",
            "`script` (util-linux) is not installed",
        );
        return;
    }
    let sim = Sim::start(SimOpts::default());
    let policy = FAST_POLICY.replace("canary: false", "canary: true");
    let ws = Ws::new(
        &sim,
        &Opts {
            policy,
            ..Opts::default()
        },
    );
    let cmd = format!(
        "{} upgrade --to v2.1.2 --no-progress -m {} --state-dir {}",
        env!("CARGO_BIN_EXE_wkctl"),
        ws.manifest.display(),
        ws.state_base().display()
    );
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = std::io::Read::read(&mut stdout, &mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen = String::new();
    let wait_text = |what: &str, seen: &mut String| {
        let deadline = std::time::Instant::now() + RUN_T;
        while !seen.contains(what) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(chunk) => seen.push_str(&String::from_utf8_lossy(&chunk)),
                Err(e) => panic!("never saw `{what}` ({e}):\n{seen}"),
            }
        }
    };
    // Answer each question once it is on the terminal.
    wait_text("[y/N]", &mut seen);
    stdin.write_all(b"y\n").unwrap();
    wait_text(
        "canary: node 1001 is upgraded and healthy. Continue with the other nodes? [y/N]",
        &mut seen,
    );
    stdin.write_all(b"n\n").unwrap();
    drop(stdin);
    let status = child.wait().unwrap();
    reader.join().unwrap();
    while let Ok(chunk) = rx.try_recv() {
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let text = seen;
    assert_eq!(status.code(), Some(130), "{text}");
    assert!(
        text.contains("canary: node 1001 is upgraded and healthy"),
        "{text}"
    );
    assert_eq!(
        stops(&sim, 1002) + stops(&sim, 1003),
        0,
        "nothing after the canary"
    );
    assert_eq!(ws.state()["status"], "interrupted");
    let r = ws.run(&["upgrade", "--resume", "--yes"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(
        (stops(&sim, 1001), stops(&sim, 1002), stops(&sim, 1003)),
        (1, 1, 1)
    );
    rollout_was_safe(&sim.events()).unwrap();
}
