//! Benchmarks (ignored by default; they print figures, measured in one run):
//!
//! ```sh
//! cargo test --release --test cli bench -- --ignored --nocapture --test-threads 1
//! ```
//!
//! 1. gate detection latency (sim "settled" → wkctl `node_ready`, minus `stable_for`),
//! 2. rollout overhead (wkctl time ÷ the simulator's intrinsic time),
//! 3. scale (`status` / live `check` against 10 and 1000 simulated nodes),
//! 4. footprint (`plan --offline` cold start and peak RSS, 3 and 1000 nodes),
//! 5. load on the cluster while gating (requests per second per node, no fan-out).
#![allow(
    clippy::print_stdout,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::format_push_string
)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::harness::{Sim, SimOpts, http_get, wksim_bin};

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn write_manifest(sim: &Sim, dir: &Path, policy: &str) -> PathBuf {
    let mut s = format!(
        "name: bench\nplaybook: sim\napi:\n  timeout: 5s\nvars:\n  wksim: {:?}\n  state_dir: {:?}\nnodes:\n",
        wksim_bin().display().to_string(),
        sim.state_dir().display().to_string()
    );
    for n in &sim.nodes {
        s.push_str(&format!(
            "  - id: {}\n    host: 127.0.0.1\n    api: {}\n",
            n.id, n.api
        ));
    }
    s.push_str(policy);
    let p = dir.join("cluster.yaml");
    std::fs::write(&p, s).unwrap();
    p
}

/// Peak RSS (KiB) of the largest child that has exited so far.
fn children_max_rss_kib() -> i64 {
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .map_or(0, |r| r.max_rss())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Runs `wkctl upgrade --json` and returns each line with its arrival time (ms epoch).
fn upgrade_timed(manifest: &Path, state_dir: &Path, to: &str) -> Vec<(u64, Value)> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wkctl"))
        .args(["upgrade", "--yes", "--json", "--to", to, "-m"])
        .arg(manifest)
        .arg("--state-dir")
        .arg(state_dir)
        .env_remove("WKCTL_MANIFEST")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let t = now_ms();
        out.push((t, serde_json::from_str(&line).unwrap()));
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "upgrade to {to} failed: {:?}", out.last());
    out
}

#[test]
#[ignore = "benchmark: run with --ignored --nocapture"]
fn bench_gate_latency_rollout_overhead_and_load() {
    // 7 upgrades × 3 nodes = 21 restarts, with short windows so that wkctl's own
    // overhead is as visible as it can be.
    rollouts(
        10.0,
        500,
        500,
        200,
        &[
            "v2.1.0", "v2.1.1", "v2.1.2", "v2.1.3", "v2.1.4", "v2.1.5", "v2.2.0",
        ],
    );
}

#[test]
#[ignore = "benchmark: run with --ignored --nocapture"]
fn bench_rollout_at_the_default_poll_interval() {
    // The default poll interval (1 s), where the load budget of ≤ 5 requests/s per node
    // applies, with 2 s stability and soak windows, and the simulator at ×2 so that a
    // restart's timeline (boot, stale phase, rejoin, rebalancing) is close to real.
    rollouts(2.0, 2000, 2000, 1000, &["v2.1.2", "v2.1.3"]);
}

#[allow(clippy::too_many_lines)]
fn rollouts(speed: f64, stable_ms: u64, soak_ms: u64, poll_ms: u64, targets: &[&str]) {
    let sim = Sim::start(SimOpts {
        speed,
        ..SimOpts::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let policy = format!(
        "policy:\n  stable_for: {stable_ms}ms\n  soak: {soak_ms}ms\n  poll_interval: {poll_ms}ms\n  node_timeout: 60s\n  step_timeout: 30s\n"
    );
    let m = write_manifest(&sim, dir.path(), &policy);
    let requests_before = requests(&sim);
    let (mut latencies, mut wkctl_ms, mut intrinsic_ms) = (Vec::new(), 0u64, 0u64);
    let bench_start = Instant::now();
    for to in targets {
        let run_from = now_ms();
        let lines = upgrade_timed(&m, &dir.path().join("state"), to);
        let events = sim.events();
        let started = lines
            .iter()
            .find(|(_, v)| v["type"] == "run_started")
            .unwrap()
            .0;
        let ended = lines.last().unwrap().0;
        wkctl_ms += ended - started;
        for (t_ready, v) in lines.iter().filter(|(_, v)| v["type"] == "node_ready") {
            let node = v["data"]["node"].as_u64().unwrap();
            let ev = |f: &dyn Fn(&Value) -> bool| {
                events
                    .iter()
                    .filter(|e| e["node"] == node && e["ts_ms"].as_u64().unwrap() >= run_from)
                    .find(|e| f(e))
                    .map(|e| e["ts_ms"].as_u64().unwrap())
            };
            let stop = ev(&|e| {
                e["kind"] == "ctl" && e["detail"].as_str().is_some_and(|d| d.starts_with("stop"))
            })
            .unwrap();
            let start = ev(&|e| {
                e["kind"] == "ctl" && e["detail"].as_str().is_some_and(|d| d.starts_with("start"))
            })
            .unwrap();
            let settled = events
                .iter()
                .filter(|e| {
                    e["node"] == node
                        && e["kind"] == "state"
                        && e["to"] == "settled"
                        && e["ts_ms"].as_u64().unwrap() >= start
                })
                .map(|e| e["ts_ms"].as_u64().unwrap())
                .next()
                .unwrap();
            latencies.push(*t_ready as f64 - settled as f64 - stable_ms as f64);
            intrinsic_ms += settled - stop + stable_ms + soak_ms;
        }
    }
    let elapsed = bench_start.elapsed().as_secs_f64();
    let requests_after = requests(&sim);
    latencies.sort_by(f64::total_cmp);
    let (median, p95) = (percentile(&latencies, 0.5), percentile(&latencies, 0.95));
    println!(
        "\n== poll {poll_ms} ms, stable_for {stable_ms} ms, soak {soak_ms} ms, sim ×{speed}, {} restarts",
        latencies.len()
    );
    println!(
        "gate detection latency: median {median:.0} ms, p95 {p95:.0} ms, max {:.0} ms (target ≤ poll + 50 ms = {} ms)",
        latencies.last().unwrap(),
        poll_ms + 50
    );
    let ratio = wkctl_ms as f64 / intrinsic_ms as f64;
    println!(
        "rollout overhead: wkctl {wkctl_ms} ms ÷ intrinsic {intrinsic_ms} ms = {ratio:.3} (target ≤ 1.05)"
    );
    println!("load on the cluster over {elapsed:.1} s of upgrades:");
    let mut fanout = 0;
    for (node, paths) in &requests_after {
        let before: u64 = requests_before.get(node).map_or(0, |p| p.values().sum());
        let total: u64 = paths.values().sum::<u64>() - before;
        fanout += paths.get("/cluster/nodes").copied().unwrap_or(0);
        println!(
            "  node {node}: {total} requests, {:.2} req/s",
            total as f64 / elapsed
        );
    }
    println!("  `/cluster/nodes` (fan-out) requests: {fanout}");
    assert!(latencies.len() >= 3 * targets.len());
    assert_eq!(fanout, 0, "the poll loop must not use /cluster/nodes");
}

fn requests(sim: &Sim) -> BTreeMap<String, BTreeMap<String, u64>> {
    let (_, body) = http_get(&sim.control, "/requests", None, Duration::from_secs(5));
    serde_json::from_str(&body).unwrap_or_default()
}

/// Runs wkctl once and returns (wall time, exit code).
fn timed(args: &[&str], manifest: &Path) -> (Duration, i32) {
    let t = Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_wkctl"))
        .args(args)
        .arg("-m")
        .arg(manifest)
        .env_remove("WKCTL_MANIFEST")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    (t.elapsed(), o.code().unwrap_or(-1))
}

#[test]
#[ignore = "benchmark: run with --ignored --nocapture"]
fn bench_scale_status_and_check() {
    let mut results = BTreeMap::new();
    for n in [10usize, 1000] {
        let sim = Sim::start(SimOpts {
            nodes: n,
            first_id: 1,
            speed: 20.0,
            ..SimOpts::default()
        });
        let dir = tempfile::tempdir().unwrap();
        let m = write_manifest(&sim, dir.path(), "");
        // warm-up (page cache), then measured runs; best of 3
        let _ = timed(&["status", "--json"], &m);
        let best = |args: &[&str]| (0..3).map(|_| timed(args, &m).0).min().unwrap();
        let status = best(&["status", "--json"]);
        let check = best(&["check", "--to", "v2.1.2", "--json"]);
        results.insert(n, (status, check));
    }
    let rss = children_max_rss_kib();
    println!("\n== scale (best of 3, wall time)");
    for (n, (s, c)) in &results {
        println!(
            "  {n:>4} nodes: status {:.3} s, check {:.3} s",
            s.as_secs_f64(),
            c.as_secs_f64()
        );
    }
    let (s10, c10) = results[&10];
    let (s1k, c1k) = results[&1000];
    println!(
        "  ratio 1000/10: status {:.1}, check {:.1} (target ≤ 10)",
        s1k.as_secs_f64() / s10.as_secs_f64(),
        c1k.as_secs_f64() / c10.as_secs_f64()
    );
    println!(
        "  peak RSS of any child process so far (wkctl or wksim): {:.1} MiB",
        rss as f64 / 1024.0
    );
}

#[test]
#[ignore = "benchmark: run with --ignored --nocapture"]
fn bench_wkctl_peak_rss_at_1000_nodes() {
    // Measured alone so the simulator's own RSS is not counted: wksim is started by the
    // harness (a child), so we read wkctl's peak from /proc while it runs.
    let sim = Sim::start(SimOpts {
        nodes: 1000,
        first_id: 1,
        speed: 20.0,
        ..SimOpts::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let m = write_manifest(&sim, dir.path(), "");
    for args in [
        &["status", "--json"][..],
        &["check", "--to", "v2.1.2", "--json"][..],
    ] {
        let (d, peak) = run_peak_rss(args, &m);
        println!(
            "== {:?} at 1000 nodes: {:.3} s, peak RSS {:.1} MiB (target < 2 s, < 64 MiB)",
            args,
            d.as_secs_f64(),
            peak as f64 / 1024.0
        );
    }
}

/// Runs wkctl, sampling `VmHWM` from /proc every 2 ms; returns (wall, peak KiB).
fn run_peak_rss(args: &[&str], manifest: &Path) -> (Duration, u64) {
    let t = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wkctl"))
        .args(args)
        .arg("-m")
        .arg(manifest)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    loop {
        if let Ok(s) = std::fs::read_to_string(&status)
            && let Some(kib) = s
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        {
            peak = peak.max(kib);
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    (t.elapsed(), peak)
}

#[test]
#[ignore = "benchmark: run with --ignored --nocapture"]
fn bench_plan_offline_footprint() {
    let dir = tempfile::tempdir().unwrap();
    println!("\n== `plan --offline` cold start (best of 5) and peak RSS");
    for n in [3u64, 1000] {
        let mut s = String::from("name: fp\nplaybook: systemd\nnodes:\n");
        for i in 1..=n {
            s.push_str(&format!(
                "  - {{ id: {i}, host: 10.0.{}.{}, version: v2.0.10-20241221 }}\n",
                i / 250,
                i % 250
            ));
        }
        let m = dir.path().join(format!("c{n}.yaml"));
        std::fs::write(&m, s).unwrap();
        let args = ["plan", "--to", "v2.1.2", "--offline", "--json"];
        let best = (0..5).map(|_| timed(&args, &m)).map(|(d, code)| {
            assert_eq!(code, 0);
            d
        });
        let best = best.min().unwrap();
        let (_, peak) = run_peak_rss(&args, &m);
        println!(
            "  {n:>4} nodes: {:.1} ms, peak RSS {:.1} MiB",
            best.as_secs_f64() * 1000.0,
            peak as f64 / 1024.0
        );
    }
}
