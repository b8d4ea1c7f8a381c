//! Shared helpers for the live tests: a manifest for a running [`Sim`], running `wkctl`
//! against it (blocking or streaming its `--json` lines as they arrive), and reading the
//! simulator's event log.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::harness::{Sim, wksim_bin};

/// Fast policy for tests: the simulator runs ×20, the gate polls every 100 ms.
pub const FAST_POLICY: &str = "policy:\n  order: id\n  canary: false\n  soak: 300ms\n  stable_for: 400ms\n  node_timeout: 8s\n  poll_interval: 100ms\n  step_timeout: 20s\n";

/// `upgrade --json` with `--rollback-on-failure`.
pub const UP_WITH_ROLLBACK: [&str; 6] = [
    "upgrade",
    "--to",
    "v2.1.2",
    "--yes",
    "--json",
    "--rollback-on-failure",
];

pub const TOKEN_ENV: &str = "WKTEST_MANAGER_TOKEN";

pub struct Opts<'a> {
    pub name: &'a str,
    pub token_env: bool,
    pub policy: String,
}

impl Default for Opts<'_> {
    fn default() -> Self {
        Opts {
            name: "t",
            token_env: false,
            policy: FAST_POLICY.to_string(),
        }
    }
}

/// A test workspace: a temp dir holding `cluster.yaml` for `sim` and the `.wkctl` state.
pub struct Ws {
    pub dir: tempfile::TempDir,
    pub manifest: PathBuf,
    pub name: String,
}

impl Ws {
    pub fn new(sim: &Sim, opts: &Opts) -> Ws {
        let dir = tempfile::tempdir().expect("tempdir");
        let q = |p: &Path| serde_json::to_string(&p.display().to_string()).unwrap();
        let mut s = format!("name: {}\nplaybook: sim\napi:\n  timeout: 2s\n", opts.name);
        if opts.token_env {
            let _ = writeln!(s, "  token_env: {TOKEN_ENV}");
        }
        let _ = write!(
            s,
            "vars:\n  wksim: {}\n  state_dir: {}\nnodes:\n",
            q(&wksim_bin()),
            q(sim.state_dir())
        );
        for n in &sim.nodes {
            let _ = write!(
                s,
                "  - id: {}\n    host: 127.0.0.1\n    api: {}\n",
                n.id, n.api
            );
        }
        s.push_str(&opts.policy);
        let manifest = dir.path().join("cluster.yaml");
        std::fs::write(&manifest, s).expect("write manifest");
        Ws {
            dir,
            manifest,
            name: opts.name.to_string(),
        }
    }

    /// A workspace with [`FAST_POLICY`] but another `node_timeout` (fault tests).
    pub fn with_node_timeout(sim: &Sim, timeout: &str) -> Ws {
        let policy = FAST_POLICY.replace("node_timeout: 8s", &format!("node_timeout: {timeout}"));
        Ws::new(
            sim,
            &Opts {
                policy,
                ..Opts::default()
            },
        )
    }

    /// A simulator that requires `token` and a workspace whose manifest names
    /// [`TOKEN_ENV`] as `api.token_env` (pass the token in the env of each run).
    pub fn with_token(token: &str) -> (Sim, Ws) {
        let sim = Sim::start(crate::harness::SimOpts {
            token: Some(token.into()),
            ..Default::default()
        });
        let ws = Ws::new(
            &sim,
            &Opts {
                token_env: true,
                ..Opts::default()
            },
        );
        (sim, ws)
    }

    pub fn state_base(&self) -> PathBuf {
        self.dir.path().join(".wkctl")
    }

    pub fn state_file(&self) -> PathBuf {
        self.state_base().join(&self.name).join("state.json")
    }

    pub fn state(&self) -> Value {
        let text = std::fs::read_to_string(self.state_file()).expect("state.json");
        serde_json::from_str(&text).expect("state.json is JSON")
    }

    /// `wkctl ARGS -m cluster.yaml` (and `--state-dir` for `upgrade` and `restart`), env applied.
    pub fn cmd(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_wkctl"));
        c.env_remove("WKCTL_MANIFEST")
            .env_remove(TOKEN_ENV)
            .env("NO_COLOR", "1")
            .env("WKCTL_LOCK_DIR", self.dir.path().join("locks"));
        c.args(args).arg("-m").arg(&self.manifest);
        if matches!(args.first(), Some(&"upgrade" | &"restart")) {
            c.arg("--state-dir").arg(self.state_base());
        }
        for (k, v) in env {
            c.env(k, v);
        }
        c.current_dir(self.dir.path()).stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let o = self.cmd(args, env).output().expect("run wkctl");
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into(),
            stderr: String::from_utf8_lossy(&o.stderr).into(),
        }
    }

    /// Starts wkctl with stdout piped; each stdout line is delivered with its arrival time.
    pub fn spawn(&self, args: &[&str], env: &[(&str, &str)]) -> Streaming {
        let mut child = self
            .cmd(args, env)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wkctl");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send((now_ms(), line)).is_err() {
                    break;
                }
            }
        });
        let err = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut s);
            s
        });
        Streaming {
            child,
            rx,
            lines: Vec::new(),
            err: Some(err),
        }
    }
}

#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON doc ({e}):\n{}", self.stdout))
    }
    pub fn lines(&self) -> Vec<Value> {
        json_lines(&self.stdout)
    }
    pub fn all(&self) -> String {
        format!("--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr)
    }
}

/// Every stdout line parsed as JSON; panics on a line that is not.
pub fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A running wkctl whose JSON Lines are read as they arrive.
pub struct Streaming {
    pub child: Child,
    rx: Receiver<(i64, String)>,
    /// (arrival wall-clock ms, line) so far.
    pub lines: Vec<(i64, String)>,
    err: Option<std::thread::JoinHandle<String>>,
}

impl Streaming {
    /// Reads lines until `pred` matches one (returned) or the deadline passes (panic).
    pub fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        mut pred: impl FnMut(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok((t, line)) => {
                    self.lines.push((t, line.clone()));
                    if let Ok(v) = serde_json::from_str::<Value>(&line)
                        && pred(&v)
                    {
                        return v;
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!(
                    "timed out waiting for {what}; lines so far:\n{}",
                    self.text()
                ),
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("wkctl closed stdout before {what}; lines:\n{}", self.text())
                }
            }
        }
    }

    /// Waits for the exit (with a deadline), draining stdout: (exit code, stderr).
    pub fn finish(&mut self, timeout: Duration) -> (i32, String) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            while let Ok(l) = self.rx.try_recv() {
                self.lines.push(l);
            }
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                break st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "wkctl did not exit within {timeout:?}; lines:\n{}",
                    self.text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // The reader thread ends at EOF.
        while let Ok(l) = self.rx.recv_timeout(Duration::from_secs(5)) {
            self.lines.push(l);
        }
        let err = self
            .err
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        (status.code().unwrap_or(-1), err)
    }

    pub fn kill9(&mut self) {
        // SIGKILL: no chance to save state or release the lock.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn text(&self) -> String {
        self.lines
            .iter()
            .map(|(_, l)| l.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn values(&self) -> Vec<(i64, Value)> {
        self.lines
            .iter()
            .map(|(t, l)| {
                (
                    *t,
                    serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")),
                )
            })
            .collect()
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `ctl` events of the simulator, as (ts_ms, detail).
pub fn ctl_events(sim: &Sim) -> Vec<(i64, String, Option<u64>)> {
    sim.events()
        .iter()
        .filter(|e| e["kind"] == "ctl")
        .map(|e| {
            (
                e["ts_ms"].as_i64().unwrap_or(0),
                e["detail"].as_str().unwrap_or("").to_string(),
                e["node"].as_u64(),
            )
        })
        .collect()
}

/// Runs `wksim ctl ARGS` and asserts success.
pub fn ctl_ok(sim: &Sim, args: &[&str]) -> String {
    let o = sim.ctl(args);
    assert!(
        o.status.success(),
        "wksim ctl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into()
}

/// The version each node reports on `/varz`.
pub fn varz_version(sim: &Sim, node: u64, token: Option<&str>) -> String {
    let (_, body) = sim.get(node, "/varz", token);
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    v["version"].as_str().unwrap_or("").to_string()
}

/// Findings of a `check`/`status` JSON doc as (id, node).
pub fn finding_ids(doc: &Value) -> Vec<(String, Option<u64>)> {
    doc["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| {
                    (
                        f["id"].as_str().unwrap_or("").to_string(),
                        f["node"].as_u64(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    k.sort();
    k
}

pub fn sorted(list: &[&str]) -> Vec<String> {
    let mut k: Vec<String> = list.iter().map(|s| (*s).to_string()).collect();
    k.sort();
    k
}

/// `stop`/`start`/`restart` ctl events as (ts_ms, verb, node).
pub fn lifecycle(sim: &Sim) -> Vec<(i64, String, u64)> {
    ctl_events(sim)
        .into_iter()
        .filter_map(|(t, d, n)| {
            let verb = d.split_whitespace().next().unwrap_or("").to_string();
            ["stop", "start", "restart"]
                .contains(&verb.as_str())
                .then(|| (t, verb, n.unwrap_or(0)))
        })
        .collect()
}

pub fn node_state_of(ws: &Ws, id: u64) -> Value {
    let st = ws.state();
    st["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["id"] == id)
        .cloned()
        .unwrap_or(Value::Null)
}

/// What `wkctl demo` did, with the simulator's own event log as the witness.
pub struct DemoRun {
    pub code: Option<i32>,
    /// stdout and stderr.
    pub all: String,
    pub took: Duration,
    /// The demo's simulator's `events.jsonl`, read after the demo removed its temp dir.
    pub events: Vec<Value>,
}

/// Runs `wkctl demo ARGS --no-progress` with `TMPDIR` pointing at a fresh directory, opens
/// the event log of the simulator the demo starts (`$TMPDIR/wkctl-demo-*/sim/events.jsonl`)
/// as soon as it exists, and reads it through that open handle after the demo exited (the
/// demo deletes its temp dir; the open file stays readable).
pub fn demo_with_sim_log(args: &[&str]) -> DemoRun {
    use std::io::Read as _;
    let tmp = tempfile::tempdir().expect("tempdir");
    let out_dir = tempfile::tempdir().expect("tempdir");
    let out = std::fs::File::create(out_dir.path().join("out")).expect("out");
    let t0 = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wkctl"))
        .arg("demo")
        .args(args)
        .arg("--no-progress")
        .env("NO_COLOR", "1")
        .env("TMPDIR", tmp.path())
        .env("WKCTL_LOCK_DIR", out_dir.path().join("locks"))
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("out"))
        .stderr(out)
        .spawn()
        .expect("spawn wkctl demo");
    let deadline = t0 + Duration::from_mins(3);
    let mut log = None;
    let status = loop {
        if log.is_none()
            && let Some(dir) = std::fs::read_dir(tmp.path())
                .into_iter()
                .flatten()
                .flatten()
                .find(|e| e.file_name().to_string_lossy().starts_with("wkctl-demo-"))
        {
            log = std::fs::File::open(dir.path().join("sim").join("events.jsonl")).ok();
        }
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("wkctl demo {args:?} did not finish within 180 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = t0.elapsed();
    let mut text = String::new();
    log.expect("the demo's events.jsonl was never seen")
        .read_to_string(&mut text)
        .expect("read events.jsonl");
    let events = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    DemoRun {
        code: status.code(),
        all: std::fs::read_to_string(out_dir.path().join("out")).unwrap_or_default(),
        took,
        events,
    }
}

/// `stop`/`start`/`restart` commands in an event log, as (verb, node, detail).
pub fn commands_in(events: &[Value]) -> Vec<(String, u64, String)> {
    events
        .iter()
        .filter(|e| e["kind"] == "ctl")
        .filter_map(|e| {
            let d = e["detail"].as_str().unwrap_or("").to_string();
            let verb = d.split_whitespace().next().unwrap_or("").to_string();
            ["stop", "start", "restart"]
                .contains(&verb.as_str())
                .then(|| (verb, e["node"].as_u64().unwrap_or(0), d))
        })
        .collect()
}

/// Whether this is a CI run (`.ci/run` exports `CI=1`).
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// A test that cannot run here: under CI a failure (the tool must be there), locally a
/// visible `skipped: …` line. Written to the process's stderr directly, past the test
/// harness's capture, so that a skip never looks like a pass.
pub fn skip(test: &str, why: &str) {
    use std::io::Write as _;
    assert!(!in_ci(), "{test}: {why}, and CI is set: CI must provide it");
    let _ = writeln!(std::io::stderr().lock(), "skipped: {test}: {why}");
}
