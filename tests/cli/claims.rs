//! README claims that had no test (issue 12): the lock's takeover and refusal messages,
//! `--break-lock`, racing resumes, resume after a second Ctrl-C, a full disk, a closed
//! stdout, an invalid playbook, the global flags' environment variables, every `demo
//! --fault`, and the CI recipe run as written.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use crate::harness::{Sim, SimOpts, rollout_was_safe};
use crate::support::{Opts, Ws, commands_in, ctl_ok, demo_with_sim_log, lifecycle, varz_version};

const RUN_T: Duration = Duration::from_secs(90);
const UP: [&str; 5] = ["upgrade", "--to", "v2.1.2", "--yes", "--json"];
const RESUME: [&str; 4] = ["upgrade", "--resume", "--yes", "--json"];
const NEW: &str = "v2.1.2-20250120";

fn stops(sim: &Sim, node: u64) -> usize {
    lifecycle(sim)
        .iter()
        .filter(|(_, v, n)| v == "stop" && *n == node)
        .count()
}

/// Every file named `lock` under `dir` (the state dir's and the per-user cluster locks).
fn lock_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(lock_files(&p));
        } else if p.file_name().is_some_and(|n| n == "lock") {
            out.push(p);
        }
    }
    out
}

/// Starts an upgrade, kills it with SIGKILL during 1002's gate (its locks stay behind,
/// owned by a dead pid on this host) and returns that pid once the cluster settled again
/// (1002 was started: it comes up by itself; a resume's pre-check would otherwise refuse a
/// cluster still electing a controller).
fn killed_run(sim: &Sim, ws: &Ws) -> u32 {
    let mut run = ws.spawn(&UP, &[]);
    run.wait_for("gate of 1002", RUN_T, |v| {
        v["type"] == "step_started"
            && v["data"]["node"] == 1002
            && v["data"]["step"] == "wait_ready"
    });
    let pid = run.child.id();
    run.kill9();
    // The state directory's lock, one per address key of the nodes and one per member
    // the cluster reported (`state::cluster_lock_keys`, `state::member_lock_keys`).
    let apis: Vec<&str> = sim.nodes.iter().map(|n| n.api.as_str()).collect();
    let expected = 1 + wkctl::state::cluster_lock_keys(&apis).len() + sim.nodes.len();
    assert_eq!(
        lock_files(ws.dir.path()).len(),
        expected,
        "every lock stays behind"
    );
    sim.wait_settled(1002, RUN_T);
    pid
}

fn assert_finished_once_each(sim: &Sim, ws: &Ws) {
    assert_eq!(ws.state()["status"], "completed");
    for n in [1001, 1002, 1003] {
        assert_eq!(stops(sim, n), 1, "node {n} stopped once");
        assert_eq!(varz_version(sim, n, None), NEW);
    }
    rollout_was_safe(&sim.events()).unwrap();
}

/// `--resume` takes over a lock whose process is gone (same host, dead pid) and says so,
/// naming the pid and the host.
#[test]
fn resume_takes_over_a_stale_lock_and_says_so() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    let pid = killed_run(&sim, &ws);
    // A plain run is refused and pointed at --resume.
    let r = ws.run(&["upgrade", "--to", "v2.1.2", "--yes"], &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    let r = ws.run(&RESUME, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let host = wkctl::state::hostname();
    assert!(
        r.stderr
            .contains(&format!("took over the lock of pid {pid} on `{host}`")),
        "{}",
        r.all()
    );
    assert!(lock_files(ws.dir.path()).is_empty(), "locks released");
    assert_finished_once_each(&sim, &ws);
}

/// A lock held by a run on another host is never taken by `--resume`: the refusal names
/// that host and pid. `--break-lock` takes it, says whose it was, and the run completes.
#[test]
fn break_lock_takes_a_foreign_lock_and_the_refusal_names_host_and_pid() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    let pid = killed_run(&sim, &ws);
    for lock in lock_files(ws.dir.path()) {
        let mut owner: Value = serde_json::from_str(&std::fs::read_to_string(&lock).unwrap())
            .expect("the lock is JSON");
        owner["host"] = "build-host-7".into();
        std::fs::write(&lock, owner.to_string()).unwrap();
    }
    let before = lifecycle(&sim);
    let r = ws.run(&RESUME, &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains(&format!("pid {pid}")) && r.stderr.contains("build-host-7"),
        "the refusal names host and pid: {}",
        r.all()
    );
    assert!(r.stderr.contains("--break-lock"), "{}", r.all());
    assert_eq!(lifecycle(&sim), before, "the refused run touched nothing");

    let mut args = RESUME.to_vec();
    args.push("--break-lock");
    let r = ws.run(&args, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stderr.contains(&format!(
            "took over the lock of pid {pid} on `build-host-7`"
        )),
        "{}",
        r.all()
    );
    assert!(lock_files(ws.dir.path()).is_empty(), "locks released");
    assert_finished_once_each(&sim, &ws);
}

/// Two `--resume` started together for one stale lock: exactly one takes it and finishes;
/// the other is refused with a lock message; every node is stopped once.
#[test]
fn two_resumes_racing_for_one_stale_lock() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    killed_run(&sim, &ws);
    let mut a = ws.spawn(&RESUME, &[]);
    let mut b = ws.spawn(&RESUME, &[]);
    let (code_a, err_a) = a.finish(RUN_T);
    let (code_b, err_b) = b.finish(RUN_T);
    let mut codes = [code_a, code_b];
    codes.sort_unstable();
    assert_eq!(codes, [0, 1], "one wins, one is refused:\n{err_a}\n{err_b}");
    let loser = if code_a == 1 { &err_a } else { &err_b };
    assert!(
        loser.contains("lock"),
        "the loser says it lost the lock: {loser}"
    );
    assert_finished_once_each(&sim, &ws);
}

/// After a second Ctrl-C (exit now, the node may be down), `--resume` finishes the run:
/// the node left down is finished first, nothing is stopped twice.
#[test]
fn resume_after_a_second_ctrl_c_completes() {
    let sim = Sim::start(SimOpts::default());
    // 1001 starts slowly (3 s): its gate is open long enough for two Ctrl-Cs.
    ctl_ok(&sim, &["fault", "1001", "slow-start", "60"]);
    let ws = Ws::with_node_timeout(&sim, "30s");
    let mut run = ws.spawn(&UP, &[]);
    run.wait_for("gate of 1001", RUN_T, |v| {
        v["type"] == "step_started"
            && v["data"]["node"] == 1001
            && v["data"]["step"] == "wait_ready"
    });
    let pid = Pid::from_raw(i32::try_from(run.child.id()).unwrap());
    let t = Instant::now();
    while run.child.try_wait().expect("try_wait").is_none() && t.elapsed() < RUN_T {
        let _ = kill(pid, Signal::SIGINT);
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, err) = run.finish(RUN_T);
    assert_eq!(code, 130, "{err}\n{}", run.text());
    assert!(
        run.text().contains("node 1001 may be DOWN"),
        "{}",
        run.text()
    );
    let r = ws.run(&RESUME, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_finished_once_each(&sim, &ws);
}

/// A full disk (here: a file-size limit of 0 through the shell's `ulimit -f`, with
/// SIGXFSZ ignored so writes fail with EFBIG as they would with ENOSPC; `pre_exec` with
/// `setrlimit` would need `unsafe`, which the crate forbids): the run is refused before
/// anything is touched, with the state directory named and a hint.
#[test]
fn a_full_disk_refuses_the_run_before_anything_is_touched() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    let cmd = ws.cmd(&["upgrade", "--to", "v2.1.2", "--yes"], &[]);
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg("trap '' XFSZ; ulimit -f 0; exec \"$0\" \"$@\"")
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .current_dir(ws.dir.path())
        .env("NO_COLOR", "1")
        .env("WKCTL_LOCK_DIR", ws.dir.path().join("locks"))
        .stdin(Stdio::null());
    let o = sh.output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("not writable") && err.contains("hint:"),
        "names the problem and a hint: {err}"
    );
    assert!(lifecycle(&sim).is_empty(), "nothing touched");
}

/// `wkctl releases | head -1`: stdout closed early is not an error (exit 0, no panic), both
/// with the real pipeline and with a pipe whose reader is already gone.
#[test]
fn releases_into_a_closed_pipe_exits_0() {
    let wkctl = env!("CARGO_BIN_EXE_wkctl");
    let o = Command::new("bash")
        .args(["-o", "pipefail", "-c", "\"$0\" releases | head -1", wkctl])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 1);
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let o = Command::new(wkctl)
        .arg("releases")
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// An invalid playbook file is bad input, end to end: exit 2 from `check`, `plan` and
/// `upgrade`, naming the file, line and column, with a hint; nothing touched.
#[test]
fn an_invalid_playbook_exits_2_end_to_end() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    let pb = include_str!("../../playbooks/sim.yaml")
        .replace("name: sim", "name: broken")
        .replace("  install: echo", "  instal: echo");
    std::fs::write(ws.dir.path().join("pb.yaml"), pb).unwrap();
    let m = std::fs::read_to_string(&ws.manifest)
        .unwrap()
        .replace("playbook: sim", "playbook: ./pb.yaml");
    std::fs::write(&ws.manifest, m).unwrap();
    for args in [
        &["check", "--to", "v2.1.2"][..],
        &["plan", "--to", "v2.1.2"][..],
        &["upgrade", "--to", "v2.1.2", "--yes"][..],
    ] {
        let r = ws.run(args, &[]);
        assert_eq!(r.code, 2, "{args:?}: {}", r.all());
        assert!(
            r.stderr.contains("pb.yaml:") && r.stderr.contains("instal"),
            "{args:?} names the place: {}",
            r.all()
        );
        assert!(r.stderr.contains("hint:"), "{args:?}: {}", r.all());
    }
    assert!(lifecycle(&sim).is_empty(), "nothing touched");
}

/// An offline manifest (the nodes' versions declared) in a fresh directory.
fn offline_manifest(dir: &Path, version: &str) -> PathBuf {
    let mut s = String::from("name: envs\nplaybook: systemd\nnodes:\n");
    for id in [1001, 1002, 1003] {
        let _ = writeln!(
            s,
            "  - {{ id: {id}, host: 10.0.0.{}, version: {version} }}",
            id - 1000
        );
    }
    let p = dir.join("cluster.yaml");
    std::fs::write(&p, s).unwrap();
    p
}

/// `wkctl ARGS` in `dir` with only the given `WKCTL_*` variables set.
fn wkctl_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wkctl"));
    for (k, _) in std::env::vars() {
        if k.starts_with("WKCTL_") {
            c.env_remove(k);
        }
    }
    c.env("NO_COLOR", "1")
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .stdin(Stdio::null());
    let o = c.output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

/// `-q` and each global flag's `WKCTL_*` variable change what wkctl does, not just parse.
#[test]
#[allow(clippy::many_single_char_names)] // d(ir), m(anifest), a(rgs), c(ommand), o(utput)
fn quiet_and_every_wkctl_env_var_change_behaviour() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let m = offline_manifest(d, "v2.0.10-20241221");
    let other = d.join("other");
    std::fs::create_dir(&other).unwrap();
    let m_str = m.display().to_string();
    let base = ["plan", "--offline", "-m", m_str.as_str()];
    let with = |extra: &[&str], env: &[(&str, &str)]| {
        let mut a = base.to_vec();
        a.extend_from_slice(extra);
        wkctl_env(d, &a, env)
    };

    // WKCTL_TO stands in for --to.
    let (code, _, err) = with(&[], &[]);
    assert_eq!(code, 2, "no target: {err}");
    let (code, out, err) = with(&["--json"], &[("WKCTL_TO", "v2.1.2")]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("v2.1.2-20250120"), "{out}");

    // -q and WKCTL_QUIET drop the notes on stderr, never the result (`init`: the file).
    let (code, _, err_loud) = wkctl_env(d, &["init", "-o", "loud.yaml"], &[]);
    assert_eq!(code, 0, "{err_loud}");
    assert!(err_loud.contains("wrote `loud.yaml`"), "{err_loud}");
    for (args, env) in [
        (&["-q", "init", "-o", "q.yaml"][..], &[][..]),
        (&["init", "-o", "env.yaml"][..], &[("WKCTL_QUIET", "1")][..]),
    ] {
        let (code, _, err) = wkctl_env(d, args, env);
        assert_eq!(code, 0, "{err}");
        assert!(
            err.trim().is_empty(),
            "{args:?} {env:?} leaves stderr empty: {err}"
        );
        let written = std::fs::read_to_string(d.join(args[args.len() - 1])).unwrap();
        assert_eq!(
            written,
            std::fs::read_to_string(d.join("loud.yaml")).unwrap(),
            "the same file"
        );
    }
    let (_, out_loud, err_loud) = with(&["--to", "v2.1.2"], &[]);

    // WKCTL_MANIFEST names the manifest when -m is not given.
    let (code, _, err) = wkctl_env(&other, &["plan", "--offline", "--to", "v2.1.2"], &[]);
    assert_eq!(code, 2, "no ./cluster.yaml there: {err}");
    let (code, _, err) = wkctl_env(
        &other,
        &["plan", "--offline", "--to", "v2.1.2"],
        &[("WKCTL_MANIFEST", &m_str)],
    );
    assert_eq!(code, 0, "{err}");

    // WKCTL_ALLOW_DOWNGRADE and WKCTL_ALLOW_UNKNOWN_VERSION.
    let newer = d.join("newer");
    std::fs::create_dir(&newer).unwrap();
    let mn = offline_manifest(&newer, "v2.1.4-20250319");
    let mn = mn.display().to_string();
    let down = ["plan", "--offline", "-m", mn.as_str(), "--to", "v2.1.2"];
    assert_eq!(wkctl_env(d, &down, &[]).0, 1, "a downgrade is blocked");
    assert_eq!(
        wkctl_env(d, &down, &[("WKCTL_ALLOW_DOWNGRADE", "1")]).0,
        0,
        "WKCTL_ALLOW_DOWNGRADE allows it"
    );
    let (code, _, err) = with(&["--to", "v2.9.9"], &[]);
    assert_eq!(code, 2, "an unknown version is bad input: {err}");
    let (code, _, err) = with(&["--to", "v2.9.9"], &[("WKCTL_ALLOW_UNKNOWN_VERSION", "1")]);
    assert_ne!(code, 2, "WKCTL_ALLOW_UNKNOWN_VERSION accepts it: {err}");

    // WKCTL_COLOR=always colours even into a pipe (NO_COLOR aside).
    let mut a = base.to_vec();
    a.extend_from_slice(&["--to", "v2.1.2"]);
    let mut c = Command::new(env!("CARGO_BIN_EXE_wkctl"));
    let o = c
        .args(&a)
        .env_remove("NO_COLOR")
        .env("WKCTL_COLOR", "always")
        .current_dir(d)
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(all.contains("\x1b["), "WKCTL_COLOR=always: {all}");
    assert!(!format!("{out_loud}{err_loud}").contains("\x1b["));
}

/// The live variables: WKCTL_VERBOSE logs the probe's requests, WKCTL_STATE_DIR moves the
/// state, WKCTL_NOTIFY runs a notification command, WKCTL_YES confirms, and
/// WKCTL_NO_PROGRESS is accepted with the same result (bars are only drawn on a terminal).
#[test]
fn live_wkctl_env_vars_change_behaviour() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    let r = ws.run(&["status"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(!r.stderr.contains("GET "), "{}", r.stderr);
    let r = ws.run(&["status"], &[("WKCTL_VERBOSE", "1")]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stderr.contains("/health"),
        "WKCTL_VERBOSE=1 logs the requests: {}",
        r.stderr
    );

    let state = ws.dir.path().join("elsewhere");
    let notified = ws.dir.path().join("notified.jsonl");
    let notify = format!("cat >> {}", notified.display());
    let st = state.display().to_string();
    // `Ws::cmd` passes --state-dir for `upgrade`; run it by hand to use the variable.
    let o = Command::new(env!("CARGO_BIN_EXE_wkctl"))
        .args(["upgrade", "--to", "v2.1.2", "--json", "-m"])
        .arg(&ws.manifest)
        .env("NO_COLOR", "1")
        .env("WKCTL_LOCK_DIR", ws.dir.path().join("locks"))
        .env("WKCTL_STATE_DIR", &st)
        .env("WKCTL_NOTIFY", &notify)
        .env("WKCTL_YES", "1")
        .env("WKCTL_NO_PROGRESS", "1")
        .current_dir(ws.dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        state.join(&ws.name).join("state.json").exists()
            || std::fs::read_dir(&state).is_ok_and(|mut d| d.next().is_some()),
        "WKCTL_STATE_DIR holds the state"
    );
    assert!(!ws.state_base().exists(), "not the default state dir");
    let text = std::fs::read_to_string(&notified).unwrap_or_default();
    assert!(
        !text.trim().is_empty(),
        "WKCTL_NOTIFY ran the command with the events"
    );
    rollout_was_safe(&sim.events()).unwrap();
}

// ---- `demo --fault` for every kind it offers -------------------------------------------

/// `wkctl demo --fault KIND`: the run fails at 1002, and the demo's own simulator shows the
/// fault on 1002, 1003 never touched, and the invariants held.
fn demo_fault(kind: &str) {
    let d = demo_with_sim_log(&["--speed", "20", "--fault", kind]);
    assert_eq!(d.code, Some(1), "{kind}: {}", d.all);
    // `blackhole` is armed at 1002's stop (13.11), so it fails like the others instead of
    // being refused by the pre-check; `node.unreachable` has its own test.
    assert!(d.all.contains("node 1002: FAILED"), "{kind}: {}", d.all);
    assert!(
        d.events.iter().any(|e| e["kind"] == "fault"
            && e["node"] == 1002
            && e["detail"].as_str().is_some_and(|s| s.contains(kind))),
        "{kind}: the simulator recorded the fault on 1002"
    );
    let cmds = commands_in(&d.events);
    assert!(
        cmds.iter().all(|(_, n, _)| *n != 1003),
        "{kind}: 1003 was touched: {cmds:?}"
    );
    assert!(
        cmds.iter().any(|(v, n, _)| v == "stop" && *n == 1001),
        "{kind}: 1001 was upgraded first: {cmds:?}"
    );
    rollout_was_safe(&d.events).unwrap();
}

macro_rules! demo_faults {
    ($($name:ident: $kind:expr,)*) => {$(
        #[test]
        fn $name() {
            demo_fault($kind);
        }
    )*};
}

demo_faults! {
    demo_fault_never_starts: "never-starts",
    demo_fault_crash_loop: "crash-loop",
    demo_fault_wrong_version: "wrong-version",
    demo_fault_slow_start: "slow-start",
    demo_fault_no_rejoin: "no-rejoin",
    demo_fault_blackhole: "blackhole",
}

// ---- the CI recipe, as written ---------------------------------------------------------

/// Runs `examples/ci/github-actions.yml`'s `run:` steps (all but the install) as GitHub
/// would (`bash -eo pipefail`, the workflow's `env`, `$GITHUB_ENV` carried between steps),
/// with `wkctl` on `PATH`, in a checkout whose `cluster.yaml` describes a wksim cluster:
/// every step passes and the report holds the check and the plan. Then the same manifest
/// and target upgrade that cluster, and the run executes the plan the reviewer saw.
#[test]
fn the_ci_recipe_runs_as_written_against_wksim() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    // The checkout's cluster.yaml: the live manifest plus the nodes' declared versions.
    let mut m = std::fs::read_to_string(&ws.manifest).unwrap();
    for n in &sim.nodes {
        m = m.replace(
            &format!("    api: {}\n", n.api),
            &format!("    api: {}\n    version: v2.0.10-20241221\n", n.api),
        );
    }
    std::fs::write(&ws.manifest, &m).unwrap();

    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("examples/ci/github-actions.yml")).unwrap();
    let wf: Value = serde_saphyr::from_str(&text).unwrap();
    let bin_dir = PathBuf::from(env!("CARGO_BIN_EXE_wkctl"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let github_env = ws.dir.path().join("github_env");
    std::fs::write(&github_env, "").unwrap();
    let mut ran = 0;
    for step in wf["jobs"]["plan"]["steps"].as_array().expect("steps") {
        let Some(script) = step["run"].as_str() else {
            continue;
        };
        if script.contains("cargo install") {
            continue;
        }
        let mut c = Command::new("bash");
        c.args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
            .current_dir(ws.dir.path())
            .env("PATH", &path)
            .env("NO_COLOR", "1")
            .env("GITHUB_ENV", &github_env)
            .env("WKCTL_LOCK_DIR", ws.dir.path().join("locks"))
            .stdin(Stdio::null());
        for (k, v) in wf["env"].as_object().expect("env") {
            c.env(k, v.as_str().map_or_else(|| v.to_string(), str::to_string));
        }
        for line in std::fs::read_to_string(&github_env).unwrap().lines() {
            if let Some((k, v)) = line.split_once('=') {
                c.env(k, v);
            }
        }
        let o = c.output().unwrap();
        assert!(
            o.status.success(),
            "step `{}` failed: {}",
            step["name"],
            String::from_utf8_lossy(&o.stderr)
        );
        ran += 1;
    }
    assert_eq!(ran, 3, "check, plan and the final test ran");
    let report = ws.dir.path().join("wkctl-report");
    let check: Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("check.json")).unwrap()).unwrap();
    assert_eq!(check["ok"], true, "{check}");
    let plan: Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("plan.json")).unwrap()).unwrap();
    let order: Vec<u64> = plan["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_u64().unwrap())
        .collect();
    assert_eq!(order, [1001, 1002, 1003]);
    assert_eq!(
        std::fs::read_to_string(&github_env).unwrap().trim(),
        "check_exit=0"
    );

    // The reviewed plan is what runs.
    let r = ws.run(
        &["upgrade", "--yes", "--json"],
        &[("WKCTL_TO", wf["env"]["WKCTL_TO"].as_str().unwrap())],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let stops: Vec<u64> = lifecycle(&sim)
        .iter()
        .filter(|(_, v, _)| v == "stop")
        .map(|(_, _, n)| *n)
        .collect();
    assert_eq!(stops, order, "the run follows the reviewed order");
    rollout_was_safe(&sim.events()).unwrap();
}
