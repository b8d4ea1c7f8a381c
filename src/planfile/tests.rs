//! Unit tests of the plan file: the mirror types read back exactly what `Plan` writes, the
//! reader refuses other formats and non-plans, and the keyed diff names what changed.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::json;

use super::*;
use crate::plan::{self, Plan};
use crate::probe::fixtures;
use crate::releases::{RuleOptions, resolve_target};

fn example_plan(to: &str) -> Plan {
    example_plan_of(to, plan::PlanKind::Upgrade)
}

fn example_plan_of(to: &str, kind: plan::PlanKind) -> Plan {
    let m = crate::manifest::load(Path::new("examples/cluster.yaml")).unwrap();
    let pb = crate::playbook::load(&m.playbook, Path::new("examples")).unwrap();
    let target = resolve_target(to, false).unwrap();
    let versions: BTreeMap<_, _> = m.nodes.iter().map(|n| (n.id, n.version.clone())).collect();
    plan::build(&plan::Input {
        manifest: &m,
        playbook: &pb,
        target: &target,
        versions: &versions,
        controller: Some(1002),
        live: true,
        rules: RuleOptions::default(),
        kind,
    })
    .unwrap()
}

fn file_for(plan: &Plan) -> PlanFile {
    file_for_nodes(plan, &[])
}

fn file_for_nodes(plan: &Plan, only_nodes: &[u64]) -> PlanFile {
    let view = fixtures::settled("v2.0.10-20241221", 100);
    build(
        plan,
        &Inputs {
            manifest_path: "cluster.yaml",
            manifest_text: "name: im-prod\n",
            playbook_text: "{}",
            target: TargetInfo {
                to: plan.to.to_string(),
                allow_unknown_version: false,
                allow_downgrade: false,
                allow_downgrade_across_rewrite: false,
            },
            view: Some(&view),
            now: SystemTime::UNIX_EPOCH + Duration::from_hours(500_000),
            only_nodes,
        },
    )
    .unwrap()
}

#[test]
fn the_mirror_reads_back_exactly_what_the_plan_writes() {
    let plan = example_plan("v2.1.2");
    assert!(!plan.run_steps.is_empty(), "the example has run steps");
    assert!(!plan.nodes[0].on_failure.is_empty());
    let written = serde_json::to_value(&plan).unwrap();
    let doc: PlanDoc = serde_json::from_value(written.clone()).unwrap();
    assert_eq!(serde_json::to_value(&doc).unwrap(), written);
    let file = file_for(&plan);
    let bytes = to_bytes(&file);
    let back = parse("p.json", &bytes).unwrap();
    assert_eq!(back, file);
    assert_eq!(to_bytes(&back), bytes, "stable bytes, stable digest");
    assert_eq!(file.created_at, "2027-01-15T08:00:00Z");
    let obs = file.observed.as_ref().unwrap();
    assert_eq!(obs.nodes.len(), 3);
    assert_eq!(obs.nodes[0].version.as_deref(), Some("v2.0.10-20241221"));
    assert!(digest(&bytes).starts_with("sha256:") && digest(&bytes).len() == 71);
}

/// A restart plan file (issue 19) reads back with its kind and node limit; an upgrade plan
/// file has neither key, so its bytes (and digest) are what they were; a file without
/// `kind` reads as an upgrade.
#[test]
fn restart_plan_files_carry_their_kind_and_upgrade_files_do_not() {
    let mut plan = example_plan_of("v2.0.10-20241221", plan::PlanKind::Restart);
    crate::plan::select::limit_to_nodes(&mut plan, &[1002]);
    let file = file_for_nodes(&plan, &[1002]);
    let bytes = to_bytes(&file);
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["plan"]["kind"], "restart");
    assert_eq!(v["only_nodes"], json!([1002]));
    let actions: Vec<&str> = v["plan"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["skip", "restart", "skip"]);
    let back = parse("r.json", &bytes).unwrap();
    assert_eq!(back.plan.kind, plan::PlanKind::Restart);
    assert_eq!(back.only_nodes, [1002]);
    assert_eq!(to_bytes(&back), bytes);

    let up = file_for(&example_plan("v2.1.2"));
    let ub = to_bytes(&up);
    let uv: serde_json::Value = serde_json::from_slice(&ub).unwrap();
    assert!(uv["plan"].get("kind").is_none(), "{}", uv["plan"]);
    assert!(uv.get("only_nodes").is_none());
    assert_eq!(
        parse("u.json", &ub).unwrap().plan.kind,
        plan::PlanKind::Upgrade
    );
    // An explicit `"kind": "upgrade"` is the same plan; an unknown kind is refused.
    let explicit = edited(&up, |v| v["plan"]["kind"] = "upgrade".into());
    assert_eq!(parse("u.json", &explicit).unwrap(), up);
    let bad = edited(&up, |v| v["plan"]["kind"] = "reboot".into());
    assert!(parse("u.json", &bad).is_err());
}

fn edited(file: &PlanFile, edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut v = serde_json::to_value(file).unwrap();
    edit(&mut v);
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn other_formats_and_non_plans_are_refused_with_their_reason() {
    let file = file_for(&example_plan("v2.1.2"));
    let e = parse("p.json", &edited(&file, |v| v["format_version"] = json!(0))).unwrap_err();
    assert_eq!(e.kind, crate::error::Kind::No);
    assert!(
        e.message.contains("plan format 0") && e.message.contains("reads plan format 1"),
        "{}",
        e.message
    );
    assert!(e.hint.unwrap().contains("plan again"));
    let e = parse("p.json", &edited(&file, |v| v["format_version"] = json!(2))).unwrap_err();
    assert!(e.hint.unwrap().contains("the wkctl that planned it"));
    let plan_json = serde_json::to_vec(&file.plan).unwrap();
    let e = parse("p.json", &plan_json).unwrap_err();
    assert_eq!(e.kind, crate::error::Kind::Input);
    assert!(
        e.message.contains("`plan --json` document"),
        "{}",
        e.message
    );
    for (what, bytes) in [
        (
            "unknown field",
            edited(&file, |v| v["plan"]["extra"] = json!(1)),
        ),
        (
            "step kind",
            edited(&file, |v| {
                v["plan"]["nodes"][0]["steps"][0]["kind"] = json!("reboot");
            }),
        ),
        (
            "created_at",
            edited(&file, |v| v["created_at"] = json!("yesterday")),
        ),
        (
            "plan.to",
            edited(&file, |v| v["plan"]["to"] = json!("latest")),
        ),
        ("source", edited(&file, |v| v["observed"] = json!(null))),
        (
            "digests",
            edited(&file, |v| v["manifest"]["digest"] = json!("x")),
        ),
    ] {
        let e = parse("p.json", &bytes).unwrap_err();
        assert_eq!(e.kind, crate::error::Kind::Input, "{what}: {}", e.message);
        assert!(
            e.message
                .starts_with("`p.json` is not a valid wkctl plan file"),
            "{what}: {}",
            e.message
        );
    }
}

#[test]
fn expected_digests_and_ages() {
    let hex = "ab".repeat(32);
    assert_eq!(
        parse_expected(&format!("SHA256:{hex}")).unwrap(),
        format!("sha256:{hex}")
    );
    assert_eq!(parse_expected(&hex).unwrap(), format!("sha256:{hex}"));
    assert!(parse_expected("sha256:abc").is_err());
    let file = file_for(&example_plan("v2.1.2"));
    let at = created_at("p", &file).unwrap();
    assert_eq!(
        age("p", &file, at + Duration::from_secs(90)).unwrap(),
        Duration::from_secs(90)
    );
    assert_eq!(
        age("p", &file, at - Duration::from_secs(30)).unwrap(),
        Duration::ZERO
    );
    let e = age("p", &file, at - Duration::from_hours(1)).unwrap_err();
    assert!(e.message.contains("1h in the future"), "{}", e.message);
}

#[test]
#[allow(clippy::many_single_char_names)]
fn the_diff_is_keyed_by_node_and_step() {
    let a = serde_json::to_value(example_plan("v2.1.2")).unwrap();
    let b = serde_json::to_value(example_plan("v2.1.3")).unwrap();
    let ch = changes(&a, &b, false);
    let paths: Vec<&str> = ch.iter().map(|(p, _, _)| p.as_str()).collect();
    assert!(
        paths.contains(&"nodes.1001.steps.prepare.command"),
        "{paths:?}"
    );
    assert!(paths.contains(&"to"), "{paths:?}");
    assert_eq!(paths.last(), Some(&"digest"), "digests last: {paths:?}");
    assert!(changes(&a, &a, false).is_empty());
    // A node removed and the order changed.
    let mut c = a.clone();
    let nodes = c["nodes"].as_array_mut().unwrap();
    nodes.swap(0, 1);
    nodes.pop();
    let ch = changes(&a, &c, false);
    assert!(
        ch.iter()
            .any(|(p, _, new)| p == "nodes.1003" && new.is_none()),
        "{ch:?}"
    );
    assert!(ch.iter().any(|(p, _, _)| p == "nodes.(order)"), "{ch:?}");
    // Repeated findings ids are told apart, not compared by position.
    let x = json!({"findings": [{"id": "a", "severity": "warn", "node": null}, {"id": "a", "severity": "warn", "node": null, "m": 1}]});
    let y = json!({"findings": [{"id": "a", "severity": "warn", "node": null}, {"id": "a", "severity": "warn", "node": null, "m": 2}]});
    assert_eq!(changes(&x, &y, false)[0].0, "findings.a#2.m");
    // Volatile keys are skipped on request.
    let t =
        json!({"created_at": "1", "observed": {"at": "2", "nodes": [{"id": 1, "uptime_s": 3}]}});
    let u =
        json!({"created_at": "9", "observed": {"at": "8", "nodes": [{"id": 1, "uptime_s": 7}]}});
    assert!(changes(&t, &u, true).is_empty());
    assert_eq!(changes(&t, &u, false).len(), 3);
}

#[test]
fn markdown_carries_the_digest_and_every_command() {
    let plan = example_plan("v2.1.2");
    let file = file_for(&plan);
    let md = render::markdown(&file, Some("sha256:abc"), Some("plan.json"));
    assert!(
        md.starts_with("### wkctl plan: `im-prod` → `v2.1.2-20250120`"),
        "{md}"
    );
    assert!(md.contains("**Digest:** `sha256:abc`"));
    assert!(md.contains("wkctl upgrade --plan plan.json --expect-digest sha256:abc"));
    for n in &plan.nodes {
        for s in n.steps.iter().chain(&n.on_failure) {
            if let Some(c) = &s.command {
                assert!(md.contains(c.as_str()), "{c}");
            }
        }
    }
    let mut off = file.clone();
    off.observed = None;
    assert!(render::markdown(&off, None, None).contains("nothing was observed"));
}
