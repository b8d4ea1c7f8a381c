//! Reusable test harness: spawns `wksim serve` on free loopback ports and offers blocking
//! helpers (raw HTTP GET, `wksim ctl`, event log, polling with a deadline).
#![allow(dead_code)]

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Sim {
    pub dir: tempfile::TempDir,
    pub control: String,
    pub nodes: Vec<SimNode>,
    child: Child,
}

#[derive(Debug, Clone)]
pub struct SimNode {
    pub id: u64,
    pub api: String,
    pub cluster_addr: String,
}

#[derive(Debug, Clone)]
pub struct SimOpts {
    pub nodes: usize,
    pub first_id: u64,
    pub version: String,
    pub token: Option<String>,
    pub speed: f64,
    pub joined: Option<usize>,
    pub extra_args: Vec<String>,
}

impl Default for SimOpts {
    fn default() -> Self {
        SimOpts {
            nodes: 3,
            first_id: 1001,
            version: "v2.0.10-20241221".into(),
            token: None,
            speed: 20.0,
            joined: None,
            extra_args: Vec::new(),
        }
    }
}

pub fn wksim_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wksim"))
}

/// Blocking `GET http://host:port/path` with a 5 s timeout: (status, body). Status 0 = no answer.
pub fn http_get(base: &str, path: &str, token: Option<&str>, timeout: Duration) -> (u16, String) {
    let hostport = base.trim_start_matches("http://").trim_end_matches('/');
    let Ok(addr) = hostport.parse::<std::net::SocketAddr>() else {
        return (0, format!("bad address {base}"));
    };
    let Ok(mut s) = TcpStream::connect_timeout(&addr, timeout) else {
        return (0, "connection refused".into());
    };
    let _ = s.set_read_timeout(Some(timeout));
    let _ = s.set_write_timeout(Some(timeout));
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n");
    if let Some(t) = token {
        let _ = write!(req, "token: {t}\r\n");
    }
    req.push_str("\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return (0, "write failed".into());
    }
    let mut buf = Vec::new();
    if s.read_to_end(&mut buf).is_err() && buf.is_empty() {
        return (0, "no answer".into());
    }
    let text = String::from_utf8_lossy(&buf).to_string();
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return (0, text);
    };
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    (
        status,
        if chunked {
            dechunk(body)
        } else {
            body.to_string()
        },
    )
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

impl Sim {
    #[allow(clippy::needless_pass_by_value)] // the shared API takes the options by value
    pub fn start(opts: SimOpts) -> Sim {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cmd = Command::new(wksim_bin());
        cmd.arg("serve")
            .args([
                "--nodes",
                &opts.nodes.to_string(),
                "--first-id",
                &opts.first_id.to_string(),
            ])
            .args([
                "--version",
                &opts.version,
                "--speed",
                &opts.speed.to_string(),
                "--base-port",
                "0",
            ])
            .arg("--state-dir")
            .arg(dir.path());
        if let Some(t) = &opts.token {
            cmd.args(["--token", t]);
        }
        if let Some(j) = opts.joined {
            cmd.args(["--joined", &j.to_string()]);
        }
        cmd.args(&opts.extra_args);
        let log = std::fs::File::create(dir.path().join("serve.log")).expect("serve.log");
        cmd.stdout(log.try_clone().expect("log"))
            .stderr(log)
            .stdin(Stdio::null());
        let mut child = cmd.spawn().expect("spawn wksim serve");
        let cluster_json = dir.path().join("cluster.json");
        let deadline = Instant::now() + Duration::from_secs(30);
        let doc: Value = loop {
            if let Ok(text) = std::fs::read_to_string(&cluster_json)
                && let Ok(v) = serde_json::from_str(&text)
            {
                break v;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default();
                panic!("wksim serve exited with {status}: {log}");
            }
            assert!(
                Instant::now() < deadline,
                "wksim serve did not write cluster.json"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let nodes = doc["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| SimNode {
                id: n["id"].as_u64().expect("id"),
                api: n["api"].as_str().expect("api").to_string(),
                cluster_addr: n["cluster_addr"]
                    .as_str()
                    .expect("cluster_addr")
                    .to_string(),
            })
            .collect();
        let sim = Sim {
            control: doc["control"].as_str().expect("control").to_string(),
            nodes,
            dir,
            child,
        };
        let joined = opts.joined.unwrap_or(opts.nodes).min(opts.nodes);
        let ids: Vec<u64> = sim.nodes.iter().take(joined).map(|n| n.id).collect();
        sim.wait_until("initial settle", Duration::from_mins(1), |s| {
            let st = s.state();
            st["cluster_settled"] == true
                && ids.iter().all(|id| node_state_in(&st, *id) == "settled")
        });
        sim
    }

    /// Process id of `wksim serve` (CPU measurements in scale tests).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn state_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn ctl(&self, args: &[&str]) -> Output {
        Command::new(wksim_bin())
            .arg("ctl")
            .arg("--state-dir")
            .arg(self.dir.path())
            .args(args)
            .output()
            .expect("run wksim ctl")
    }

    pub fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("events.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    pub fn api(&self, node: u64) -> &str {
        &self
            .nodes
            .iter()
            .find(|n| n.id == node)
            .unwrap_or_else(|| panic!("no node {node}"))
            .api
    }

    pub fn get(&self, node: u64, path: &str, token: Option<&str>) -> (u16, String) {
        http_get(self.api(node), path, token, Duration::from_secs(5))
    }

    /// GET on the node, body parsed as JSON (`Value::Null` if not JSON).
    pub fn get_json(&self, node: u64, path: &str) -> (u16, Value) {
        let (s, b) = self.get(node, path, None);
        (s, serde_json::from_str(&b).unwrap_or(Value::Null))
    }

    /// The control server's `/state` (node table, controller, settled flag).
    pub fn state(&self) -> Value {
        let (_, body) = http_get(&self.control, "/state", None, Duration::from_secs(5));
        serde_json::from_str(&body).unwrap_or(Value::Null)
    }

    pub fn node_state(&self, node: u64) -> String {
        node_state_in(&self.state(), node)
    }

    pub fn wait_until(&self, what: &str, timeout: Duration, mut f: impl FnMut(&Sim) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            if f(self) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for: {what}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Node `settled` and the whole cluster settled (all online, leaders Normal, no migration).
    pub fn wait_settled(&self, node: u64, timeout: Duration) {
        self.wait_until(&format!("node {node} settled"), timeout, |s| {
            let st = s.state();
            st["cluster_settled"] == true && node_state_in(&st, node) == "settled"
        });
    }
}

fn node_state_in(st: &Value, node: u64) -> String {
    st["nodes"]
        .as_array()
        .and_then(|ns| ns.iter().find(|n| n["id"] == node))
        .and_then(|n| n["state"].as_str())
        .unwrap_or("")
        .to_string()
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// "Never two nodes down at once", strictly (issue 11 hole 12), over the events after the
/// initial settle (the first `ctl` event marks its end). A node is down from the moment it
/// stops, boots, crashes or is marked offline by the controller until the simulator's own
/// `rejoined` event: online in the controller's view AND caught up on the config. A node that
/// is back but stale (its `/health` ok, not rejoined) still counts as down.
pub fn down_intervals_never_overlap(events: &[Value]) -> Result<(), String> {
    let start = events
        .iter()
        .position(|e| e["kind"] == "ctl")
        .unwrap_or(events.len());
    let mut down = std::collections::BTreeSet::new();
    for e in &events[start..] {
        let node = e["node"].as_u64().unwrap_or(0);
        match (
            e["kind"].as_str().unwrap_or(""),
            e["to"].as_str().unwrap_or(""),
        ) {
            ("state", "stopped" | "booting" | "crashed") | ("offline_marked", _) => {
                down.insert(node);
            }
            ("rejoined", _) => {
                down.remove(&node);
            }
            _ => {}
        }
        if down.len() > 1 {
            return Err(format!(
                "nodes {down:?} down (stopped or not rejoined) at the same time (at ts_ms {}, {})",
                e["ts_ms"], e
            ));
        }
    }
    Ok(())
}

/// Every `stop` the simulator carried out happened while the cluster was settled, by the
/// simulator's own judgement (`cluster_settled` on the `stop` event: every node up, online,
/// Joined and caught up; every slot led, Normal, not migrating).
pub fn every_stop_settled(events: &[Value]) -> Result<(), String> {
    let bad: Vec<String> = events
        .iter()
        .filter(|e| e["kind"] == "stop" && e["cluster_settled"] != true)
        .map(|e| {
            format!(
                "node {} at ts_ms {} ({})",
                e["node"], e["ts_ms"], e["detail"]
            )
        })
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "stopped while the cluster was not settled: {}",
            bad.join("; ")
        ))
    }
}

/// Both safety invariants of a rolling upgrade over one event log.
pub fn rollout_was_safe(events: &[Value]) -> Result<(), String> {
    down_intervals_never_overlap(events)?;
    every_stop_settled(events)
}

/// [`rollout_was_safe`] over the events before `ts_ms`: for a test that stops a node itself
/// at `ts_ms` (a second node down is then the test's doing, not wkctl's). What wkctl did
/// after that moment is checked by the test (it must touch nothing).
pub fn safe_before(events: &[Value], ts_ms: i64) -> Result<(), String> {
    let before: Vec<Value> = events
        .iter()
        .filter(|e| e["ts_ms"].as_i64().unwrap_or(i64::MAX) < ts_ms)
        .cloned()
        .collect();
    rollout_was_safe(&before)
}
