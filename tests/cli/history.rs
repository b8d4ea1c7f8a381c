//! `wkctl history` (issue 13.17) over real state files: a completed run archived the way
//! the executor archives it, and a failed run moved aside by `upgrade --discard`.

use serde_json::Value;
use wkctl::state::StateDir;

use crate::harness::{Sim, SimOpts};
use crate::support::{Ws, ctl_ok};

const UP: [&str; 5] = ["upgrade", "--to", "v2.1.2", "--yes", "--json"];

fn history(ws: &Ws) -> Value {
    let state_dir = ws.state_base();
    let r = ws.run(
        &[
            "history",
            "--json",
            "--state-dir",
            state_dir.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    r.json()
}

#[test]
fn a_completed_run_shows_who_when_from_to_and_each_node() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &crate::support::Opts::default());
    assert_eq!(history(&ws)["runs"], serde_json::json!([]));

    let r = ws.run(&UP, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    crate::harness::rollout_was_safe(&sim.events()).unwrap();
    // What the executor does when a run ends (wired by `upgrade`): archive its state.
    let dir = StateDir::new(&ws.state_base(), &ws.name);
    let state = dir.load().unwrap().expect("the run's state");
    let path = dir.archive_run(&state).unwrap();
    assert_eq!(
        path.file_name().unwrap().to_str().unwrap(),
        format!(
            "{}-{}.json",
            state.started_at_ms,
            &state
                .plan_digest
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(12)
                .collect::<String>()
        )
    );

    let doc = history(&ws);
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{doc}");
    let run = &runs[0];
    assert_eq!(run["who"], wkctl::state::operator());
    assert!(
        run["who"]
            .as_str()
            .unwrap()
            .ends_with(&format!("@{}", wkctl::state::hostname()))
    );
    assert_eq!(run["status"], "completed");
    assert_eq!(run["discarded"], false);
    assert_eq!(run["from"], serde_json::json!(["v2.0.10-20241221"]));
    assert_eq!(run["to"], "v2.1.2-20250120");
    let nodes: Vec<(u64, &str)> = run["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_u64().unwrap(), n["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        nodes,
        [(1001, "upgraded"), (1002, "upgraded"), (1003, "upgraded")]
    );
    for n in run["nodes"].as_array().unwrap() {
        assert!(n["duration_s"].as_f64().unwrap() > 0.0, "{n}");
    }

    let human = ws.run(
        &["history", "--state-dir", ws.state_base().to_str().unwrap()],
        &[],
    );
    assert_eq!(human.code, 0, "{}", human.all());
    let first = human.stdout.lines().next().unwrap();
    assert!(first.contains(&wkctl::state::operator()), "{first}");
    assert!(
        first.contains("v2.0.10-20241221 → v2.1.2-20250120  completed in "),
        "{first}"
    );
    assert!(
        human
            .stdout
            .contains("  1002  v2.0.10-20241221  upgraded  "),
        "{}",
        human.stdout
    );
}

#[test]
fn a_discarded_failed_run_is_listed_with_the_failed_node() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::with_node_timeout(&sim, "3s");
    ctl_ok(&sim, &["fault", "1002", "never-starts"]);
    let r = ws.run(&UP, &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    crate::harness::rollout_was_safe(&sim.events()).unwrap();
    let d = ws.run(&["upgrade", "--discard"], &[]);
    assert_eq!(d.code, 0, "{}", d.all());

    let doc = history(&ws);
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{doc}");
    assert_eq!(runs[0]["status"], "failed");
    assert_eq!(runs[0]["discarded"], true);
    let statuses: Vec<&str> = runs[0]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["upgraded", "failed", "pending"]);
    assert!(
        runs[0]["nodes"][1]["error"]
            .as_str()
            .is_some_and(|e| !e.is_empty())
    );

    let human = ws.run(
        &["history", "--state-dir", ws.state_base().to_str().unwrap()],
        &[],
    );
    assert!(
        human.stdout.contains("failed (discarded)"),
        "{}",
        human.stdout
    );
}

#[test]
fn a_corrupt_history_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cluster.yaml"),
        "name: c\nnodes:\n  - { id: 1001, host: a }\n",
    )
    .unwrap();
    let hist = dir.path().join(".wkctl/c/history");
    std::fs::create_dir_all(&hist).unwrap();
    std::fs::write(hist.join("1-x.json"), "{not json").unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_wkctl"))
        .args(["history", "-m"])
        .arg(dir.path().join("cluster.yaml"))
        .env_remove("WKCTL_STATE_DIR")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("1-x.json` is not a wkctl history file"),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
}
