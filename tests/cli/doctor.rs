//! `wkctl doctor` end to end against `wksim`: log signatures, the network matrix,
//! settings that must agree, and the seed incident.
#![allow(clippy::format_push_string)]

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::harness::{Sim, SimOpts, wksim_bin};

/// A manifest for the simulator (playbook `sim`), written into the sim's state dir.
fn manifest(sim: &Sim, token_env: Option<&str>) -> PathBuf {
    let mut s = format!(
        "name: doc\nplaybook: sim\nvars:\n  wksim: {:?}\n  state_dir: {:?}\n",
        wksim_bin().display().to_string(),
        sim.state_dir().display().to_string()
    );
    if let Some(env) = token_env {
        s.push_str(&format!("api:\n  token_env: {env}\n"));
    }
    s.push_str("nodes:\n");
    for n in &sim.nodes {
        s.push_str(&format!(
            "  - id: {}\n    host: 127.0.0.1\n    api: {}\n",
            n.id, n.api
        ));
    }
    let p = sim.state_dir().join("cluster.yaml");
    std::fs::write(&p, s).unwrap();
    p
}

fn doctor(sim: &Sim, extra: &[&str], env: &[(&str, &str)]) -> (i32, Value, String) {
    let m = manifest(sim, env.first().map(|(k, _)| *k));
    let mut c = Command::new(env!("CARGO_BIN_EXE_wkctl"));
    c.env_remove("WKCTL_MANIFEST")
        .env("NO_COLOR", "1")
        .args(["doctor", "--json", "-m"])
        .arg(&m)
        .args(extra);
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    let v: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("doctor --json: {e}: {stdout}"));
    (
        o.status.code().unwrap_or(-1),
        v,
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

fn finding<'a>(v: &'a Value, id: &str) -> Option<&'a Value> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == id)
}

fn signature_test(line: &str, id: &str) {
    let sim = Sim::start(SimOpts::default());
    let out = sim.ctl(&["fault", "1002", "log", line]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, v, _) = doctor(&sim, &[], &[]);
    let m = v["logs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["signature"] == id)
        .unwrap_or_else(|| panic!("{id} not found in {}", v["logs"]));
    assert_eq!(m["node"], 1002);
    assert!(m["line"].as_str().unwrap().contains(line), "{m}");
    assert!(
        m["time"].as_str().is_some_and(|t| t.starts_with("20")),
        "{m}"
    );
    let f = finding(&v, id).unwrap();
    assert_eq!(f["node"], 1002);
    assert!(!f["hint"].as_str().unwrap().is_empty());
    // a warning, not a block: a healthy cluster with an old log line is still healthy
    assert_eq!(code, 0, "{v}");
}

macro_rules! signature_tests {
    ($($name:ident: $line:expr => $id:expr,)*) => {$(
        #[test]
        fn $name() {
            signature_test($line, $id);
        }
    )*};
}

signature_tests! {
    sig_slots_ready_timeout: "panic: wait all slots ready timeout" => "logs.slots_ready_timeout",
    sig_applied_index: "panic: applied index > last log index" => "logs.applied_index_panic",
    sig_catch_up_crash: "panic: apply slot logs failed: context deadline exceeded" => "logs.catch_up_crash_loop",
    sig_apply_log_err: "【store】apply log err" => "logs.apply_log_err",
    sig_connect_not_authed: "connect not authed 127.0.0.1:11110" => "logs.peer_unreachable",
    sig_address_changed: "Send event to node is nil" => "logs.address_changed",
    sig_applied_index_repaired: "detected inconsistent state: appliedIndex > lastLogIndex, auto-fixing" => "logs.applied_index_repaired",
    sig_panic: "panic: runtime error: index out of range" => "logs.panic",
}

#[test]
fn a_healthy_cluster_is_clean_and_the_matrix_is_full() {
    let sim = Sim::start(SimOpts::default());
    let (code, v, stderr) = doctor(&sim, &[], &[]);
    assert_eq!(code, 0, "{v} {stderr}");
    assert_eq!(v["format_version"], 1);
    let links = v["network"].as_array().unwrap();
    assert_eq!(links.len(), 12, "3×2 pairs × 2 ports");
    assert!(
        links.iter().all(|l| l["reach"]["state"] == "ok"),
        "{links:?}"
    );
    let rows = v["settings"].as_array().unwrap();
    assert!(rows.iter().all(|r| r["agree"] == true), "{rows:?}");
    assert!(v["logs"].as_array().unwrap().is_empty());
}

#[test]
fn a_one_way_network_failure_is_found() {
    let sim = Sim::start(SimOpts::default());
    assert!(
        sim.ctl(&["fault", "1002", "netsplit", "1003"])
            .status
            .success()
    );
    let (code, v, _) = doctor(&sim, &[], &[]);
    assert_eq!(code, 1);
    let link = |from: u64, to: u64| {
        v["network"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["from"] == from && l["to"] == to && l["port"] == "cluster")
            .unwrap()
            .clone()
    };
    assert_eq!(link(1002, 1003)["reach"]["state"], "unreachable");
    assert_eq!(link(1003, 1002)["reach"]["state"], "ok");
    let f = finding(&v, "network.one_way").unwrap();
    assert_eq!(f["node"], 1002);
    assert!(f["message"].as_str().unwrap().contains("1003"));
}

#[test]
fn an_inconsistent_slot_count_is_found() {
    let sim = Sim::start(SimOpts::default());
    assert!(
        sim.ctl(&["fault", "1003", "config", "WK_CLUSTER_SLOTCOUNT", "128"])
            .status
            .success()
    );
    let (code, v, _) = doctor(&sim, &[], &[]);
    assert_eq!(code, 1);
    let row = v["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "cluster.slotCount")
        .unwrap();
    assert_eq!(row["agree"], false);
    assert_eq!(row["values"]["1003"], "128");
    let f = finding(&v, "settings.mismatch").unwrap();
    assert!(f["message"].as_str().unwrap().contains("cluster.slotCount"));
}

#[test]
fn a_differing_manager_token_is_reported_without_revealing_it() {
    let token = "sim-secret-7f3a";
    let sim = Sim::start(SimOpts {
        token: Some(token.into()),
        ..SimOpts::default()
    });
    assert!(
        sim.ctl(&[
            "fault",
            "1002",
            "config",
            "WK_MANAGERTOKEN",
            "other-secret-91b2"
        ])
        .status
        .success()
    );
    let report = sim.state_dir().join("report.md");
    let (code, v, stderr) = doctor(
        &sim,
        &["--output", report.to_str().unwrap()],
        &[("WKCTL_TEST_TOKEN", token)],
    );
    assert_eq!(code, 1, "{v}");
    let f = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| {
            f["id"] == "settings.mismatch"
                && f["message"].as_str().unwrap().contains("managerToken")
        })
        .unwrap();
    // Fingerprints keyed by a random per-report key, never an unsalted hash.
    assert!(f["message"].as_str().unwrap().contains("fp:"), "{f}");
    assert!(!f["message"].as_str().unwrap().contains("sha256:"), "{f}");
    let md = std::fs::read_to_string(&report).unwrap();
    for text in [v.to_string(), stderr, md.clone()] {
        assert!(
            !text.contains(token) && !text.contains("other-secret-91b2"),
            "secret leaked"
        );
    }
    assert!(md.contains("## Settings that must agree") && md.contains("## Network: cluster port"));
}

#[test]
fn the_seed_incident_is_diagnosed_with_the_maintainers_hint() {
    let sim = Sim::start(SimOpts {
        joined: Some(1),
        ..SimOpts::default()
    });
    let (code, v, _) = doctor(&sim, &[], &[]);
    assert_eq!(code, 1);
    let f =
        finding(&v, "cluster.membership_mismatch").unwrap_or_else(|| panic!("{}", v["findings"]));
    assert!(f["hint"].as_str().unwrap().contains("1001 first"), "{f}");
}
