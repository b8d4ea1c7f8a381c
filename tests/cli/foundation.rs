//! Offline commands: `plan`, `check --offline`, `releases`, input errors.

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn wkctl() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wkctl"));
    c.env_remove("WKCTL_MANIFEST").env("NO_COLOR", "1");
    c
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const THREE: &str = "name: t\nplaybook: systemd\nnodes:\n  - { id: 1003, host: c, version: v2.0.10-20241221 }\n  - { id: 1001, host: a, version: v2.0.10-20241221 }\n  - { id: 1002, host: b, version: v2.0.10-20241221 }\n";

fn run(args: &[&str], manifest: &Path) -> (i32, String, String) {
    let o = wkctl().args(args).arg("-m").arg(manifest).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

#[test]
fn plan_orders_nodes_by_id_1001_first() {
    let d = tempfile::tempdir().unwrap();
    let m = write(d.path(), "c.yaml", THREE);
    let (code, out, err) = run(&["plan", "--to", "v2.1.2", "--offline", "--json"], &m);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let ids: Vec<u64> = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [1001, 1002, 1003]);
    assert_eq!(v["format_version"], 1);
    assert_eq!(v["cluster"], "t");
    assert_eq!(v["to"], "v2.1.2-20250120");
    let n = &v["nodes"][0];
    assert_eq!(n["from"], "v2.0.10-20241221");
    assert_eq!(n["action"], "upgrade");
    let kinds: Vec<&str> = n["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "prepare",
            "check_settled",
            "stop",
            "backup",
            "install",
            "start",
            "wait_ready",
            "soak"
        ]
    );
    assert_eq!(
        n["steps"][2]["command"],
        "systemctl stop wukongim && ! systemctl is-active --quiet wukongim"
    );
    assert_eq!(n["steps"][6]["timeout_s"], 600.0);
    assert!(
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["id"] == "version.crosses_cluster_rewrite")
    );
    // human output lists the same order
    let (_, human, _) = run(&["plan", "--to", "v2.1.2", "--offline"], &m);
    let p1 = human.find("node 1001").unwrap();
    assert!(
        p1 < human.find("node 1002").unwrap()
            && human.find("node 1002").unwrap() < human.find("node 1003").unwrap()
    );
}

#[test]
fn downgrade_blocks_with_exit_1() {
    let d = tempfile::tempdir().unwrap();
    let m = write(
        d.path(),
        "c.yaml",
        &THREE.replace(
            "1002, host: b, version: v2.0.10-20241221",
            "1002, host: b, version: v2.2.0-20250426",
        ),
    );
    let (code, out, _) = run(&["check", "--to", "v2.1.2", "--offline", "--json"], &m);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], false);
    let f = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "version.downgrade")
        .unwrap();
    assert_eq!(f["severity"], "block");
    assert_eq!(f["node"], 1002);
    assert!(f["hint"].as_str().unwrap().contains("--allow-downgrade"));
    assert!(
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["id"] == "version.mixed")
    );
    let (code, _, _) = run(
        &["check", "--to", "v2.1.2", "--offline", "--allow-downgrade"],
        &m,
    );
    assert_eq!(code, 0);
}

#[test]
fn v1_to_v2_is_a_major_change() {
    let d = tempfile::tempdir().unwrap();
    let m = write(
        d.path(),
        "c.yaml",
        &THREE.replace("v2.0.10-20241221", "v1.2.6"),
    );
    let (code, out, _) = run(&["check", "--to", "v2.1.2", "--offline"], &m);
    assert_eq!(code, 1);
    assert!(out.contains("version.major_change"), "{out}");
    assert!(out.contains("oldV1Api"), "{out}");
}

#[test]
fn duplicate_ids_exit_2_naming_the_line() {
    let d = tempfile::tempdir().unwrap();
    let m = write(
        d.path(),
        "c.yaml",
        "name: t\nnodes:\n  - id: 1001\n    host: a\n  - id: 1001\n    host: b\n",
    );
    let (code, out, err) = run(&["check", "--to", "v2.1.2", "--offline"], &m);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(err.contains("c.yaml:5:9: duplicate node id 1001"), "{err}");
    assert!(err.contains("hint:"), "{err}");
}

#[test]
fn bad_flags_and_versions_exit_2() {
    let d = tempfile::tempdir().unwrap();
    let m = write(d.path(), "c.yaml", THREE);
    let (code, _, err) = run(&["check", "--to", "v2.1.9", "--offline"], &m);
    assert_eq!(code, 2);
    assert!(
        err.contains("nearest known") && err.contains("v2.1.5-20250424"),
        "{err}"
    );
    let (code, _, _) = run(&["check", "--offline", "--bogus"], &m);
    assert_eq!(code, 2);
    let (code, _, err) = run(
        &["check", "--to", "v2.1.2", "--offline"],
        &d.path().join("missing.yaml"),
    );
    assert_eq!(code, 2);
    assert!(err.contains("missing.yaml"), "{err}");
}

#[test]
fn manifest_comes_from_env_when_no_flag() {
    let d = tempfile::tempdir().unwrap();
    let m = write(d.path(), "c.yaml", THREE);
    let o = wkctl()
        .args(["plan", "--to", "v2.1.2", "--offline", "--json"])
        .env("WKCTL_MANIFEST", &m)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn releases_json_lists_every_tag_with_notes() {
    let o = wkctl().args(["releases", "--json"]).output().unwrap();
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rel = v["releases"].as_array().unwrap();
    assert_eq!(rel.len(), 24);
    assert_eq!(rel[0]["tag"], "v2.2.5-20260422");
    let v224 = rel.iter().find(|r| r["tag"] == "v2.2.4-20260313").unwrap();
    assert!(
        v224["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["issue"] == 522)
    );
    assert!(
        v["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == "version.downgrade")
    );
}

#[test]
fn example_manifest_plans_offline() {
    let m = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/cluster.yaml");
    let (code, out, err) = run(&["plan", "--to", "v2.1.2", "--offline", "--json"], &m);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["nodes"].as_array().unwrap().len(), 3);
}
