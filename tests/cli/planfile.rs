//! Plan files (issue 17): `plan --out` then `upgrade --plan` runs exactly the reviewed plan,
//! every kind of drift is refused before anything is touched (checked on the simulator's
//! event log), offline plans, kill and `--resume`, other formats, `plan --diff`, the schema,
//! the CI recipe, and a fuzzed plan file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use proptest::prelude::*;
use serde_json::Value;
use sha2::Digest as _;

use crate::harness::{Sim, SimOpts, rollout_was_safe};
use crate::support::{Opts, Run, Ws, ctl_ok, lifecycle, varz_version};

const RUN_T: Duration = Duration::from_secs(90);
const NEW: &str = "v2.1.2-20250120";
const OLD: &str = "v2.0.10-20241221";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `plan --to v2.1.2 --out FILE` (plus `extra`): the run and the file's path.
fn plan_out(ws: &Ws, name: &str, extra: &[&str]) -> (Run, PathBuf) {
    let out = ws.dir.path().join(name);
    let o = out.display().to_string();
    let mut args = vec!["plan", "--to", "v2.1.2", "--out", o.as_str()];
    args.extend(extra);
    let r = ws.run(&args, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    (r, out)
}

fn sha(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    format!("sha256:{:x}", sha2::Sha256::digest(&bytes))
}

fn apply(ws: &Ws, plan: &Path, extra: &[&str]) -> Run {
    let p = plan.display().to_string();
    let mut args = vec!["upgrade", "--plan", p.as_str(), "--yes", "--json"];
    args.extend(extra);
    ws.run(&args, &[])
}

/// A refusal: exit 1, its own message, nothing touched (no stop/start/restart on the
/// simulator since `before`, no state file).
fn refused(sim: &Sim, ws: &Ws, r: &Run, before: usize, message: &str) {
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("refusing to apply plan"), "{}", r.all());
    assert!(r.stderr.contains(message), "want `{message}`:\n{}", r.all());
    assert!(
        r.stderr.contains("nothing was touched") && r.stderr.contains("hint:"),
        "{}",
        r.all()
    );
    assert!(!r.stderr.contains("panicked"), "{}", r.all());
    assert_eq!(lifecycle(sim).len(), before, "nothing touched: {}", r.all());
    assert!(!ws.state_file().exists(), "no run state was written");
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from} not in {}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

/// A workspace whose playbook is a file (`pb.yaml`) where each node step first logs the
/// exact command line its shell got (`sh -c COMMAND`, read from `/proc/$PPID/cmdline`).
fn logging_ws(sim: &Sim) -> Ws {
    let ws = Ws::new(sim, &Opts::default());
    let dir = ws.dir.path();
    std::fs::write(
        dir.join("log.sh"),
        "cat /proc/$PPID/cmdline >> \"$(dirname \"$0\")/commands.log\"\nprintf '\\036' >> \"$(dirname \"$0\")/commands.log\"\n",
    )
    .unwrap();
    let pb = r#"name: sim-logged
description: the simulator playbook, each step logging the command its shell ran
vars:
  wksim: wksim
  state_dir: ./wksim-state
  log: ./log.sh
steps:
  stop: "sh {{log}}; {{wksim}} ctl --state-dir {{state_dir}} stop {{node.id}}"
  install: "sh {{log}}; echo simulated pull of {{to}} for {{node.id}}"
  start: "sh {{log}}; {{wksim}} ctl --state-dir {{state_dir}} start {{node.id}} --version {{to}}"
  logs: "sh {{log}}; {{wksim}} ctl --state-dir {{state_dir}} logs {{node.id}}"
  rollback: "sh {{log}}; {{wksim}} ctl --state-dir {{state_dir}} restart {{node.id}} --version {{from}}"
  config: "{{wksim}} ctl --state-dir {{state_dir}} config {{node.id}}"
  netcheck: "{{wksim}} ctl --state-dir {{state_dir}} netcheck {{node.id}} {{peer}}"
"#;
    std::fs::write(dir.join("pb.yaml"), pb).unwrap();
    edit(&ws.manifest, "playbook: sim", "playbook: ./pb.yaml");
    let log = serde_json::to_string(&dir.join("log.sh").display().to_string()).unwrap();
    edit(&ws.manifest, "vars:\n", &format!("vars:\n  log: {log}\n"));
    ws
}

/// The commands the playbook's shells ran, in order.
fn logged(ws: &Ws) -> Vec<String> {
    let bytes = std::fs::read(ws.dir.path().join("commands.log")).unwrap_or_default();
    bytes
        .split(|b| *b == 0x1e)
        .filter(|r| !r.is_empty())
        .map(|r| {
            let argv: Vec<&[u8]> = r.split(|b| *b == 0).collect();
            assert_eq!(argv[1], b"-c", "run through `sh -c`");
            String::from_utf8(argv[2].to_vec()).unwrap()
        })
        .collect()
}

fn plan_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Every command of the file's plan in run order (what a successful run executes).
fn planned_commands(file: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for n in file["plan"]["nodes"].as_array().unwrap() {
        if n["action"] == "upgrade" {
            for s in n["steps"].as_array().unwrap() {
                if let Some(c) = s["command"].as_str() {
                    out.push(c.to_string());
                }
            }
        }
    }
    out
}

#[test]
fn plan_then_apply_runs_exactly_the_plans_commands() {
    let sim = Sim::start(SimOpts::default());
    let ws = logging_ws(&sim);
    let (r, path) = plan_out(&ws, "plan.json", &[]);
    let digest = sha(&path);
    assert_eq!(
        r.stdout.lines().last(),
        Some(digest.as_str()),
        "the digest is printed last"
    );
    assert!(
        r.stderr.contains(&format!("--expect-digest {digest}")),
        "{}",
        r.all()
    );
    let file = plan_json(&path);
    assert_eq!(file["format_version"], 1);
    assert_eq!(file["kind"], "wkctl-plan");
    let obs = &file["observed"];
    assert_eq!(obs["membership"], serde_json::json!([1001, 1002, 1003]));
    assert!(obs["controller"].as_u64().is_some(), "{obs}");
    assert!(obs["config_version"].as_u64().is_some(), "{obs}");
    for n in obs["nodes"].as_array().unwrap() {
        assert_eq!(n["version"], OLD, "{n}");
        assert!(n["commit"].as_str().is_some_and(|c| !c.is_empty()), "{n}");
        assert!(n["uptime_s"].as_f64().is_some(), "{n}");
    }
    assert!(
        file["wkctl"]["version"]
            .as_str()
            .unwrap()
            .starts_with(env!("CARGO_PKG_VERSION"))
    );
    assert!(file["created_at"].as_str().unwrap().ends_with('Z'));
    let expected = planned_commands(&file);
    assert_eq!(expected.len(), 9, "stop, install, start × 3: {expected:?}");
    assert!(logged(&ws).is_empty(), "planning runs nothing");

    let r = apply(&ws, &path, &["--expect-digest", &digest, "--max-age", "1h"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(
        logged(&ws),
        expected,
        "the commands run are byte for byte the plan's"
    );
    for id in [1001, 1002, 1003] {
        assert_eq!(varz_version(&sim, id, None), NEW);
    }
    rollout_was_safe(&sim.events()).unwrap();
    let st = ws.state();
    assert_eq!(
        st["plan_file"]["digest"],
        digest.as_str(),
        "the state records which plan"
    );
    assert_eq!(st["plan_digest"], file["plan"]["digest"]);
    let copy = ws.state_base().join(&ws.name).join("plan.json");
    assert_eq!(std::fs::read(copy).unwrap(), std::fs::read(&path).unwrap());
}

#[test]
fn each_drift_is_refused_with_its_own_message_and_nothing_touched() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    std::fs::write(
        ws.dir.path().join("pb.yaml"),
        include_str!("../../playbooks/sim.yaml"),
    )
    .unwrap();
    edit(&ws.manifest, "playbook: sim", "playbook: ./pb.yaml");
    let (_, path) = plan_out(&ws, "plan.json", &[]);
    let digest = sha(&path);
    let before = lifecycle(&sim).len();

    // A wrong digest: checked before the file is even read.
    let wrong = format!("sha256:{}", "0".repeat(64));
    let r = apply(&ws, &path, &["--expect-digest", &wrong]);
    refused(
        &sim,
        &ws,
        &r,
        before,
        &format!("the plan file's digest changed: it is {digest}, the approved digest is {wrong}"),
    );
    // Past --max-age.
    std::thread::sleep(Duration::from_millis(2100));
    let r = apply(&ws, &path, &["--max-age", "1s"]);
    refused(&sim, &ws, &r, before, "the plan is too old: made ");
    assert!(r.stderr.contains("`--max-age` is 1s"), "{}", r.all());
    // The manifest edited (the diff shows the line).
    edit(&ws.manifest, "soak: 300ms", "soak: 400ms");
    let r = apply(&ws, &path, &[]);
    refused(
        &sim,
        &ws,
        &r,
        before,
        "changed since the plan:\n  -   soak: 300ms\n  +   soak: 400ms",
    );
    assert!(r.stderr.contains("the manifest `"), "{}", r.all());
    edit(&ws.manifest, "soak: 400ms", "soak: 300ms");
    // The playbook edited.
    let pb = ws.dir.path().join("pb.yaml");
    edit(&pb, "install: echo simulated pull", "install: echo pulled");
    let r = apply(&ws, &path, &[]);
    refused(
        &sim,
        &ws,
        &r,
        before,
        "the playbook `sim` changed since the plan",
    );
    assert!(r.stderr.contains("echo pulled"), "{}", r.all());
    edit(&pb, "install: echo pulled", "install: echo simulated pull");
    // The plan edited by hand: one command changed.
    let mut v = plan_json(&path);
    v["plan"]["nodes"][0]["steps"][1]["command"] = Value::String("echo hacked".into());
    let hacked = ws.dir.path().join("hacked.json");
    std::fs::write(&hacked, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    let r = apply(&ws, &hacked, &[]);
    refused(
        &sim,
        &ws,
        &r,
        before,
        "the plan in the file is not the plan its inputs give",
    );
    assert!(
        r.stderr
            .contains("nodes.1001.steps.stop.command: \"echo hacked\" (file)"),
        "{}",
        r.all()
    );
    // A node upgraded by hand.
    ctl_ok(&sim, &["restart", "1002", "--version", NEW]);
    sim.wait_settled(1002, RUN_T);
    let before = lifecycle(&sim).len();
    let r = apply(&ws, &path, &["--expect-digest", &digest]);
    refused(
        &sim,
        &ws,
        &r,
        before,
        &format!("node 1002 changed since the plan: version {OLD} → {NEW}"),
    );
    assert!(
        !r.stderr.contains("membership"),
        "only what changed: {}",
        r.all()
    );

    // Put it back: the same plan then passes every check and runs (the refusals above
    // were the drift, not the plan).
    ctl_ok(&sim, &["restart", "1002", "--version", OLD]);
    sim.wait_settled(1002, RUN_T);
    let r = apply(&ws, &path, &["--expect-digest", &digest, "--max-age", "1h"]);
    assert_eq!(r.code, 0, "{}", r.all());
    rollout_was_safe(&sim.events()).unwrap();
}

#[test]
fn a_node_added_to_the_cluster_after_the_plan_is_refused() {
    let sim = Sim::start(SimOpts {
        nodes: 4,
        joined: Some(3),
        ..SimOpts::default()
    });
    let ws = Ws::new(&sim, &Opts::default());
    let api = sim.api(1004).to_string();
    edit(
        &ws.manifest,
        &format!("  - id: 1004\n    host: 127.0.0.1\n    api: {api}\n"),
        "",
    );
    let (_, path) = plan_out(&ws, "plan.json", &[]);
    assert_eq!(
        plan_json(&path)["observed"]["membership"],
        serde_json::json!([1001, 1002, 1003])
    );
    ctl_ok(&sim, &["start", "1004"]);
    sim.wait_until("1004 joined", RUN_T, |s| {
        s.get_json(1001, "/cluster/nodes").1["total"] == 4
    });
    let before = lifecycle(&sim).len();
    let r = apply(&ws, &path, &[]);
    refused(
        &sim,
        &ws,
        &r,
        before,
        "the membership changed since the plan: +1004",
    );
}

#[test]
fn an_offline_plan_applies_to_a_matching_cluster_and_is_refused_by_another() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    let text = std::fs::read_to_string(&ws.manifest).unwrap();
    std::fs::write(
        &ws.manifest,
        text.replace(
            "    host: 127.0.0.1\n",
            &format!("    host: 127.0.0.1\n    version: {OLD}\n"),
        ),
    )
    .unwrap();
    let (r, path) = plan_out(&ws, "offline.json", &["--offline"]);
    assert!(r.stderr.contains("nothing was observed"), "{}", r.all());
    let file = plan_json(&path);
    assert_eq!(
        file["observed"],
        Value::Null,
        "an offline plan records that nothing was observed"
    );
    assert_eq!(file["plan"]["source"], "offline");
    let r = apply(&ws, &path, &["--expect-digest", &sha(&path)]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(varz_version(&sim, 1003, None), NEW);
    rollout_was_safe(&sim.events()).unwrap();
    // The cluster now runs the target: the same offline plan no longer matches it.
    let _ = std::fs::remove_dir_all(ws.state_base());
    let before = lifecycle(&sim).len();
    let r = apply(&ws, &path, &[]);
    refused(
        &sim,
        &ws,
        &r,
        before,
        &format!("node 1001 runs {NEW}, the offline plan was made for {OLD}"),
    );
}

#[test]
fn a_plan_run_killed_mid_run_resumes_the_same_plan() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    let (_, path) = plan_out(&ws, "plan.json", &[]);
    let digest = sha(&path);
    let p = path.display().to_string();
    let mut run = ws.spawn(
        &[
            "upgrade",
            "--plan",
            &p,
            "--expect-digest",
            &digest,
            "--yes",
            "--json",
        ],
        &[],
    );
    run.wait_for("1002 stopping", RUN_T, |v| {
        v["type"] == "step_started" && v["data"]["node"] == 1002 && v["data"]["step"] == "stop"
    });
    run.kill9();
    assert_eq!(ws.state()["plan_file"]["digest"], digest.as_str());
    // Another plan cannot take over the unfinished run, and a new apply is refused.
    let (_, other) = plan_out(&ws, "other.json", &["--offline"]);
    let o = other.display().to_string();
    let r = ws.run(
        &["upgrade", "--resume", "--plan", &o, "--yes", "--json"],
        &[],
    );
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains(&format!(
            "the unfinished run executes plan `{p}` ({digest})"
        )),
        "{}",
        r.all()
    );
    let r = apply(&ws, &path, &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("an unfinished upgrade"), "{}", r.all());
    // Resume: the run's own copy of the plan, checked by its digest.
    let r = ws.run(&["upgrade", "--resume", "--yes", "--json"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let started = r
        .lines()
        .into_iter()
        .find(|l| l["type"] == "run_started")
        .unwrap();
    assert_eq!(started["data"]["resume"], true);
    assert_eq!(
        started["data"]["plan_digest"],
        plan_json(&path)["plan"]["digest"]
    );
    for id in [1001, 1002, 1003] {
        assert_eq!(varz_version(&sim, id, None), NEW);
    }
    let st = ws.state();
    assert_eq!(st["status"], "completed");
    assert_eq!(st["plan_file"]["digest"], digest.as_str());
    rollout_was_safe(&sim.events()).unwrap();
}

#[test]
fn plans_of_other_formats_or_rules_are_refused_and_another_wkctl_version_applies() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    let (_, path) = plan_out(&ws, "plan.json", &[]);
    let variant = |name: &str, f: &dyn Fn(&mut Value)| {
        let mut v = plan_json(&path);
        f(&mut v);
        let p = ws.dir.path().join(name);
        std::fs::write(&p, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
        p
    };
    let before = lifecycle(&sim).len();
    let old = variant("f0.json", &|v| v["format_version"] = 0.into());
    let r = apply(&ws, &old, &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains("is plan format 0 (written by wkctl")
            && r.stderr.contains("reads plan format 1 only"),
        "{}",
        r.all()
    );
    assert!(
        r.stderr.contains("hint: plan again with this wkctl"),
        "{}",
        r.all()
    );
    let newer = variant("f2.json", &|v| v["format_version"] = 2.into());
    let r = apply(&ws, &newer, &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr
            .contains("hint: apply it with the wkctl that planned it"),
        "{}",
        r.all()
    );
    let rules = variant("rules.json", &|v| v["wkctl"]["rules"] = 99.into());
    let r = apply(&ws, &rules, &[]);
    refused(&sim, &ws, &r, before, "under gate rules 99");
    let not_plan = ws.dir.path().join("doc.json");
    let r = ws.run(&["plan", "--to", "v2.1.2", "--json"], &[]);
    std::fs::write(&not_plan, &r.stdout).unwrap();
    let r = apply(&ws, &not_plan, &[]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr
            .contains("this is a `plan --json` document, not a plan file"),
        "{}",
        r.all()
    );
    assert_eq!(lifecycle(&sim).len(), before);
    // Same format and rules from another wkctl build: applied, and said.
    let other = variant("other.json", &|v| {
        v["wkctl"]["version"] = "0.0.9 (0ld)".into();
    });
    let r = apply(&ws, &other, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stderr
            .contains("planned by wkctl 0.0.9 (0ld), applied by wkctl"),
        "{}",
        r.all()
    );
    rollout_was_safe(&sim.events()).unwrap();
}

#[test]
fn plan_diff_shows_what_changed_as_text_json_and_markdown() {
    let d = tempfile::tempdir().unwrap();
    let example = root().join("examples/cluster.yaml");
    let write = |name: &str, to: &str| {
        let p = d.path().join(name);
        let o = crate::foundation::wkctl()
            .args(["plan", "--offline", "--to", to, "--out"])
            .arg(&p)
            .arg("-m")
            .arg(&example)
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        p
    };
    let a = write("a.json", "v2.1.2");
    let b = write("b.json", "v2.1.3");
    let diff = |args: &[&str]| {
        let o = crate::foundation::wkctl().args(args).output().unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    };
    let (sa, sb) = (a.display().to_string(), b.display().to_string());
    let text = diff(&["plan", "--diff", &sa, &sb]);
    assert!(
        text.starts_with(&format!(
            "plan diff {sa} ({}) → {sb} ({})",
            sha(&a),
            sha(&b)
        )),
        "{text}"
    );
    assert!(
        text.contains("- plan.nodes.1001.steps.install.command:")
            && text.contains("wukongim/wukongim:v2.1.3-20250210"),
        "{text}"
    );
    assert!(
        text.contains("- plan.to: v2.1.2-20250120\n+ plan.to: v2.1.3-20250210"),
        "{text}"
    );
    let first = text.lines().nth(1).unwrap();
    assert!(
        first.contains("plan.nodes.1001"),
        "what runs comes first: {text}"
    );
    let md = diff(&["plan", "--diff", &sa, &sb, "--format", "md"]);
    assert!(
        md.starts_with(&format!("### wkctl plan diff: `{sa}` → `{sb}`")),
        "{md}"
    );
    assert!(
        md.contains("| target | `v2.1.2-20250120` | `v2.1.3-20250210` |")
            && md.contains("```diff\n"),
        "{md}"
    );
    let json: Value = serde_json::from_str(&diff(&["plan", "--diff", &sa, &sb, "--json"])).unwrap();
    assert!(
        json["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["path"] == "plan.to" && c["new"] == "v2.1.3-20250210"),
        "{json}"
    );
    assert_eq!(json["manifest_changed"], false);
    let same = diff(&["plan", "--diff", &sa, &sa]);
    assert!(same.contains("no change in what runs"), "{same}");
    // --against: plan now, compared with an older plan file.
    let o = crate::foundation::wkctl()
        .args([
            "plan",
            "--offline",
            "--to",
            "v2.1.3",
            "--against",
            &sa,
            "--format",
            "md",
            "-m",
        ])
        .arg(&example)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("| target | `v2.1.2-20250120` | `v2.1.3-20250210` |"),
        "{out}"
    );
    // A broken file is named, exit 2.
    std::fs::write(d.path().join("bad.json"), "{").unwrap();
    let o = crate::foundation::wkctl()
        .args(["plan", "--diff", &sa])
        .arg(d.path().join("bad.json"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bad.json` is not a valid wkctl plan file") && err.contains("hint:"),
        "{err}"
    );
}

#[test]
fn the_plan_schema_is_committed_and_validates_plan_files() {
    let o = crate::foundation::wkctl()
        .args(["schema", "plan"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8(o.stdout).unwrap();
    let committed =
        std::fs::read_to_string(root().join("schemas/plan.schema.json")).unwrap_or_default();
    assert_eq!(
        committed, out,
        "`schemas/plan.schema.json` is stale: run `cargo run -- schema plan > schemas/plan.schema.json`"
    );
    let schema: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        schema["$id"],
        "https://raw.githubusercontent.com/wkctl/wkctl/main/schemas/plan.schema.json"
    );
    assert_eq!(schema["properties"]["format_version"]["const"], 1);
    let validator = jsonschema::validator_for(&schema).unwrap();
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("p.json");
    let o = crate::foundation::wkctl()
        .args(["plan", "--offline", "--to", "v2.1.2", "--out"])
        .arg(&p)
        .arg("-m")
        .arg(root().join("examples/cluster.yaml"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let doc = plan_json(&p);
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert_eq!(errors, Vec::<String>::new());
    for (what, f) in [
        (
            "format",
            &(|v: &mut Value| v["format_version"] = 2.into()) as &dyn Fn(&mut Value),
        ),
        ("step kind", &|v: &mut Value| {
            v["plan"]["nodes"][0]["steps"][0]["kind"] = "reboot".into();
        }),
        ("unknown key", &|v: &mut Value| {
            v["plan"]["nodes"][0]["sudo"] = true.into();
        }),
    ] {
        let mut bad = doc.clone();
        f(&mut bad);
        assert!(!validator.is_valid(&bad), "{what} must fail validation");
    }
}

// ----- the CI recipe ----------------------------------------------------------------------

/// Every `wkctl …` command line in the `run:` scripts of a CI file (continuations joined).
fn wkctl_commands(doc: &Value) -> Vec<String> {
    fn scripts(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("run" | "script" | "before_script", Value::String(s)) => {
                            out.push(s.clone());
                        }
                        ("script" | "before_script", Value::Array(a)) => {
                            out.extend(a.iter().filter_map(|s| s.as_str().map(str::to_string)));
                        }
                        _ => scripts(v, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| scripts(v, out)),
            _ => {}
        }
    }
    let mut s = Vec::new();
    scripts(doc, &mut s);
    let mut out = Vec::new();
    for script in s {
        let joined = script.replace("\\\n", " ");
        for line in joined.lines() {
            for part in line
                .split(['|', ';', '(', ')'])
                .flat_map(|p| p.split("&&"))
                .flat_map(|p| p.split("||"))
            {
                let t = part.trim().trim_start_matches("$(").trim();
                if t.starts_with("wkctl ") {
                    out.push(t.to_string());
                }
            }
        }
    }
    out
}

/// The arguments of a command line, with shell variables and CI expressions as placeholders.
fn argv(line: &str) -> Vec<String> {
    let mut line = line.to_string();
    while let Some(i) = line.find("${{") {
        let end = line[i..].find("}}").map_or(line.len(), |j| i + j + 2);
        let digest = line[i..end].contains("digest");
        line.replace_range(i..end, if digest { "$DIGEST" } else { "$EXPR" });
    }
    let mut out = Vec::new();
    for w in line.split_whitespace() {
        if w.starts_with('>') || w.starts_with("2>") {
            break;
        }
        let w = w.trim_matches('"').trim_matches('\'');
        out.push(if w.starts_with('$') {
            if w.to_ascii_lowercase().contains("digest") {
                format!("sha256:{}", "0".repeat(64))
            } else {
                "placeholder".to_string()
            }
        } else {
            w.to_string()
        });
    }
    out
}

fn check_ci_file(name: &str) -> Vec<String> {
    use clap::Parser as _;
    let text = std::fs::read_to_string(root().join("examples/ci").join(name)).unwrap();
    let doc: Value =
        serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{name} is not YAML: {e}"));
    assert!(doc.is_object(), "{name}");
    let cmds = wkctl_commands(&doc);
    assert!(cmds.len() >= 2, "{name}: {cmds:?}");
    for c in &cmds {
        let args = argv(c);
        if let Err(e) = wkctl::cli::Cli::try_parse_from(&args) {
            panic!("{name}: `{c}` is not a valid wkctl command line: {e}");
        }
        // And the real binary lists each flag in the subcommand's help.
        let sub = &args[1];
        let o = crate::foundation::wkctl()
            .args([sub.as_str(), "--help"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{name}: `wkctl {sub}` exists");
        let help = String::from_utf8_lossy(&o.stdout);
        for flag in args.iter().filter(|a| a.starts_with("--")) {
            assert!(
                help.contains(flag.split('=').next().unwrap()),
                "{name}: `{flag}` not in `wkctl {sub} --help`"
            );
        }
    }
    cmds
}

#[test]
fn the_ci_recipes_parse_and_run_only_commands_that_exist() {
    let gh = check_ci_file("github-plan-apply.yml");
    assert!(
        gh.iter().any(|c| c.starts_with("wkctl plan")
            && c.contains("--out plan.json")
            && c.contains("--format md")),
        "{gh:?}"
    );
    assert!(
        gh.iter()
            .any(|c| c.starts_with("wkctl upgrade --plan plan.json")
                && c.contains("--expect-digest")),
        "{gh:?}"
    );
    let text = std::fs::read_to_string(root().join("examples/ci/github-plan-apply.yml")).unwrap();
    let doc: Value = serde_saphyr::from_str(&text).unwrap();
    let jobs = &doc["jobs"];
    assert!(
        jobs["plan"].is_object() && jobs["apply"].is_object(),
        "{jobs}"
    );
    assert_eq!(jobs["apply"]["needs"], "plan");
    assert!(
        jobs["apply"]["environment"].is_string()
            || jobs["apply"]["environment"]["name"].is_string(),
        "behind an environment approval"
    );
    assert!(
        text.contains("upload-artifact") && text.contains("download-artifact"),
        "plan.json travels as an artifact"
    );
    assert!(
        text.contains("gh pr comment"),
        "the plan is posted on the pull request"
    );
    let gl = check_ci_file("gitlab-ci.yml");
    assert!(
        gl.iter()
            .any(|c| c.starts_with("wkctl upgrade --plan plan.json")
                && c.contains("--expect-digest")),
        "{gl:?}"
    );
    let text = std::fs::read_to_string(root().join("examples/ci/gitlab-ci.yml")).unwrap();
    let doc: Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(
        doc["apply"]["rules"][0]["when"], "manual",
        "the apply job waits for a person"
    );
    assert!(
        doc["plan"]["artifacts"]["paths"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "plan.json")
    );
    // The older offline recipe still parses and its commands exist.
    check_ci_file("github-actions.yml");
}

// ----- the plan file, fuzzed against the real binary ------------------------------------

/// Every leaf path of the plan (not its findings, which are the live check's).
fn leaf_paths(v: &Value, path: Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                if k != "findings" {
                    let mut p = path.clone();
                    p.push(k.clone());
                    leaf_paths(v, p, out);
                }
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                let mut p = path.clone();
                p.push(i.to_string());
                leaf_paths(v, p, out);
            }
        }
        _ => out.push(path),
    }
}

fn at_path<'v>(v: &'v mut Value, path: &[String]) -> &'v mut Value {
    path.iter().fold(v, |v, k| match v {
        Value::Array(a) => &mut a[k.parse::<usize>().unwrap()],
        _ => &mut v[k.as_str()],
    })
}

fn hostile() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        Just(serde_json::json!(-1)),
        Just(serde_json::json!(1e308)),
        Just(serde_json::json!(u64::MAX)),
        Just(serde_json::json!("")),
        Just(serde_json::json!(true)),
        Just(serde_json::json!([])),
        Just(serde_json::json!({})),
        Just(serde_json::json!("\u{0}; rm -rf /")),
        "[ -~]{0,40}".prop_map(Value::String),
        Just(Value::String("x".repeat(100_000))),
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    Flip(usize, u8),
    Replace(usize, Value),
    Remove(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), hostile()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        any::<usize>().prop_map(Mutation::Remove),
    ]
}

/// The mutated bytes, or `None` when the mutation changes nothing the plan runs.
fn mutate(original: &[u8], m: &Mutation) -> Option<Vec<u8>> {
    let mut doc: Value = serde_json::from_slice(original).unwrap();
    let mut paths = Vec::new();
    leaf_paths(&doc["plan"], vec!["plan".into()], &mut paths);
    match m {
        Mutation::Truncate(i) => Some(original[..i % original.len()].to_vec()),
        Mutation::Flip(i, b) => {
            let mut bytes = original.to_vec();
            let i = i % bytes.len();
            // Only bytes of the plan part, so the mutation is never in a field the plan
            // does not decide (a flip in a finding's text changes nothing that runs).
            let plan_at = std::str::from_utf8(original)
                .unwrap()
                .find("\"plan\": {")
                .unwrap();
            let findings = std::str::from_utf8(original)
                .unwrap()
                .rfind("\"findings\"")
                .unwrap();
            let i = plan_at + i % (findings - plan_at);
            if bytes[i] == *b {
                return None;
            }
            bytes[i] = *b;
            Some(bytes)
        }
        Mutation::Replace(i, v) => {
            let path = &paths[i % paths.len()];
            let slot = at_path(&mut doc, path);
            if slot == v {
                return None;
            }
            *slot = v.clone();
            Some(serde_json::to_vec_pretty(&doc).unwrap())
        }
        Mutation::Remove(i) => {
            let path = &paths[i % paths.len()];
            // A missing optional field reads as its `null` (serde): the same plan, which
            // may run (found with `policy.clients.within`).
            if at_path(&mut doc, path).is_null() {
                return None;
            }
            let (last, parent) = path.split_last().unwrap();
            match at_path(&mut doc, parent) {
                Value::Object(o) => {
                    o.remove(last);
                }
                Value::Array(a) => {
                    a.remove(last.parse::<usize>().unwrap());
                }
                _ => return None,
            }
            Some(serde_json::to_vec_pretty(&doc).unwrap())
        }
    }
}

/// A corrupt or hostile plan file gives a clear error (exit 1 or 2, a hint), never a
/// panic, and never a partial run: the simulator sees no stop, start or restart.
#[test]
fn a_fuzzed_plan_file_is_refused_whole_never_run_in_part() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    let (_, path) = plan_out(&ws, "plan.json", &[]);
    let original = std::fs::read(&path).unwrap();
    let target = ws.dir.path().join("fuzzed.json");
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(24);
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases,
        failure_persistence: None,
        ..Default::default()
    });
    let tried = std::cell::Cell::new(0usize);
    runner
        .run(&mutation(), |m| {
            let Some(bytes) = mutate(&original, &m) else {
                return Ok(());
            };
            // A flip can leave valid JSON that means the same (e.g. in whitespace).
            if let (Ok(a), Ok(b)) = (
                serde_json::from_slice::<Value>(&bytes),
                serde_json::from_slice::<Value>(&original),
            ) && a == b
            {
                return Ok(());
            }
            tried.set(tried.get() + 1);
            std::fs::write(&target, &bytes).unwrap();
            let r = apply(&ws, &target, &[]);
            prop_assert!(r.code == 1 || r.code == 2, "{m:?}: {}", r.all());
            prop_assert!(
                r.stderr.starts_with("error: ") && r.stderr.contains("hint: "),
                "{m:?}: {}",
                r.all()
            );
            prop_assert!(!r.stderr.contains("panicked"), "{m:?}: {}", r.all());
            prop_assert!(
                lifecycle(&sim).is_empty(),
                "{m:?}: a partial run: {}",
                r.all()
            );
            prop_assert!(!ws.state_file().exists(), "{m:?}: {}", r.all());
            Ok(())
        })
        .unwrap();
    assert!(
        tried.get() >= cases as usize / 3,
        "only {} mutations were tried",
        tried.get()
    );
}

// ----- restart plans (issue 19) -----------------------------------------------------------

/// `plan --restart --out FILE` (plus `extra`): the run and the file's path.
fn restart_plan_out(ws: &Ws, name: &str, extra: &[&str]) -> (Run, PathBuf) {
    let out = ws.dir.path().join(name);
    let o = out.display().to_string();
    let mut args = vec!["plan", "--restart", "--out", o.as_str()];
    args.extend(extra);
    let r = ws.run(&args, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    (r, out)
}

fn apply_restart(ws: &Ws, plan: &Path, extra: &[&str]) -> Run {
    let p = plan.display().to_string();
    let mut args = vec!["restart", "--plan", p.as_str(), "--yes", "--json"];
    args.extend(extra);
    ws.run(&args, &[])
}

/// A reviewed restart plan limited to two nodes: `restart --plan` restarts exactly those,
/// in the plan's order, one stop and one start each (the simulator's log), on their version.
#[test]
fn a_restart_plan_restarts_exactly_its_nodes_in_order() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    let (r, path) = restart_plan_out(&ws, "restart.json", &["--nodes", "1003,1001"]);
    let digest = sha(&path);
    assert_eq!(
        r.stdout.lines().last(),
        Some(digest.as_str()),
        "{}",
        r.all()
    );
    assert!(
        r.stderr
            .contains(&format!("wkctl restart --plan {}", path.display())),
        "{}",
        r.all()
    );
    let file = plan_json(&path);
    assert_eq!(file["plan"]["kind"], "restart", "{}", file["plan"]);
    assert_eq!(file["plan"]["to"], OLD);
    assert_eq!(file["only_nodes"], serde_json::json!([1003, 1001]));
    let actions: Vec<(u64, &str)> = file["plan"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_u64().unwrap(), n["action"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [(1001, "restart"), (1002, "skip"), (1003, "restart")]
    );
    assert!(lifecycle(&sim).is_empty(), "planning touches nothing");

    let r = apply_restart(&ws, &path, &["--expect-digest", &digest, "--max-age", "1h"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let verbs: Vec<(String, u64)> = lifecycle(&sim)
        .into_iter()
        .map(|(_, v, n)| (v, n))
        .collect();
    assert_eq!(
        verbs,
        [
            ("stop".to_string(), 1001),
            ("start".to_string(), 1001),
            ("stop".to_string(), 1003),
            ("start".to_string(), 1003)
        ]
    );
    rollout_was_safe(&sim.events()).unwrap();
    for id in [1001, 1002, 1003] {
        assert_eq!(varz_version(&sim, id, None), OLD, "node {id}");
    }
    let lines = r.lines();
    let summary = lines.last().unwrap();
    assert_eq!(summary["data"]["kind"], "restart", "{summary}");
    let statuses: Vec<&str> = summary["data"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["restarted", "skipped", "restarted"]);
    let st = ws.state();
    assert_eq!(st["kind"], "restart");
    assert_eq!(st["plan_file"]["digest"], digest.as_str());
    assert_eq!(st["plan_digest"], file["plan"]["digest"]);
}

/// A restart plan edited by hand, or whose inputs drifted, is refused before anything is
/// touched; a restart plan is not an upgrade plan, nor the other way round; and an upgrade
/// plan file (no `kind`, as every plan file before restarts) still applies as an upgrade.
#[test]
fn restart_plans_are_refused_when_tampered_drifted_or_of_the_other_kind() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    let (_, path) = restart_plan_out(&ws, "restart.json", &[]);
    let before = lifecycle(&sim).len();
    // One command changed.
    let mut v = plan_json(&path);
    assert_eq!(v["plan"]["nodes"][1]["steps"][1]["kind"], "stop");
    v["plan"]["nodes"][1]["steps"][1]["command"] = Value::String("echo hacked".into());
    let hacked = ws.dir.path().join("hacked.json");
    std::fs::write(&hacked, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    let r = apply_restart(&ws, &hacked, &[]);
    refused(
        &sim,
        &ws,
        &r,
        before,
        "the plan in the file is not the plan its inputs give",
    );
    assert!(r.stderr.contains("echo hacked"), "{}", r.all());
    // The node limit edited, the plan left as it was.
    let mut v = plan_json(&path);
    v["only_nodes"] = serde_json::json!([1002]);
    std::fs::write(&hacked, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    let r = apply_restart(&ws, &hacked, &[]);
    refused(
        &sim,
        &ws,
        &r,
        before,
        "the plan in the file is not the plan its inputs give",
    );
    // The manifest drifted since the plan.
    edit(&ws.manifest, "soak: 300ms", "soak: 400ms");
    let r = apply_restart(&ws, &path, &[]);
    refused(&sim, &ws, &r, before, "changed since the plan:");
    edit(&ws.manifest, "soak: 400ms", "soak: 300ms");

    // A restart plan given to `upgrade`, an upgrade plan given to `restart`: one line, a
    // hint, nothing touched.
    let (_, up) = plan_out(&ws, "upgrade.json", &[]);
    for (r, is, other) in [
        (
            apply(&ws, &path, &[]),
            "a restart plan",
            "wkctl restart --plan",
        ),
        (
            apply_restart(&ws, &up, &[]),
            "an upgrade plan",
            "wkctl upgrade --plan",
        ),
    ] {
        assert_eq!(r.code, 2, "{}", r.all());
        let first = r.stderr.lines().next().unwrap_or_default();
        assert!(first.contains(&format!("is {is}")), "{}", r.all());
        assert!(
            r.stderr.contains("hint:") && r.stderr.contains(other),
            "{}",
            r.all()
        );
        assert!(!r.stderr.contains("panicked"), "{}", r.all());
        assert_eq!(
            lifecycle(&sim).len(),
            before,
            "nothing touched: {}",
            r.all()
        );
        assert!(!ws.state_file().exists());
    }
    // The upgrade plan has no `kind` (its bytes are as before restarts) and applies as one.
    let file = plan_json(&up);
    assert!(file["plan"].get("kind").is_none(), "{}", file["plan"]);
    assert!(file.get("only_nodes").is_none());
    let r = apply(&ws, &up, &["--expect-digest", &sha(&up)]);
    assert_eq!(r.code, 0, "{}", r.all());
    for id in [1001, 1002, 1003] {
        assert_eq!(varz_version(&sim, id, None), NEW, "node {id}");
    }
    assert_eq!(r.lines().last().unwrap()["data"]["kind"], "upgrade");
    assert_eq!(ws.state()["kind"], "upgrade");
}

/// `plan --nodes` limits an upgrade plan as it limits a restart plan: recorded, the other
/// nodes skipped, and `upgrade --plan` touches only the planned node.
#[test]
fn plan_nodes_limits_an_upgrade_plan_file() {
    let sim = Sim::start(SimOpts::default());
    let ws = Ws::new(&sim, &Opts::default());
    let (_, path) = plan_out(&ws, "one.json", &["--nodes", "1002"]);
    let file = plan_json(&path);
    assert_eq!(file["only_nodes"], serde_json::json!([1002]));
    assert!(file["plan"].get("kind").is_none(), "{}", file["plan"]);
    let actions: Vec<&str> = file["plan"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["skip", "upgrade", "skip"]);
    let r = apply(&ws, &path, &["--expect-digest", &sha(&path)]);
    assert_eq!(r.code, 0, "{}", r.all());
    let verbs: Vec<(String, u64)> = lifecycle(&sim)
        .into_iter()
        .map(|(_, v, n)| (v, n))
        .collect();
    assert_eq!(
        verbs,
        [("stop".to_string(), 1002), ("start".to_string(), 1002)]
    );
    rollout_was_safe(&sim.events()).unwrap();
    assert_eq!(varz_version(&sim, 1001, None), OLD);
    assert_eq!(varz_version(&sim, 1002, None), NEW);
    assert_eq!(varz_version(&sim, 1003, None), OLD);
}
