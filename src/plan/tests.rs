//! Unit tests of the plan: order, actions, steps, findings, the digest, and the edges
//! found by cargo-mutants.

use super::build::budget_finding;
use super::*;
use crate::error::WkError;
use crate::finding::FindingId;
use crate::manifest::Manifest;
use crate::playbook;
use crate::releases::RuleOptions;
use crate::releases::resolve_target;
use std::path::Path;

/// Found by cargo-mutants: each playbook step of the plan runs the playbook step of
/// the same name, and wkctl's own steps (the gates, the soak) run none.
#[test]
fn each_plan_step_runs_the_playbook_step_of_its_name_or_none() {
    use PlanStepKind as P;
    let playbook_steps = [
        P::Prepare,
        P::Drain,
        P::Undrain,
        P::Lock,
        P::PreRun,
        P::PostRun,
        P::Unlock,
        P::Backup,
        P::Stop,
        P::Install,
        P::Start,
        P::Logs,
        P::Rollback,
    ];
    for k in playbook_steps {
        let step = k.playbook_step();
        assert_eq!(step.map(StepKind::as_str), Some(k.as_str()), "{k}");
    }
    for k in [P::CheckSettled, P::WaitReady, P::Soak, P::Verify] {
        assert_eq!(k.playbook_step(), None, "{k} is wkctl's own step");
    }
}

/// Found by cargo-mutants: exactly the steps after which the node may be down count
/// as touching it (a failure there shows the node as possibly down).
#[test]
fn only_stop_backup_install_start_and_rollback_take_the_node_down() {
    use PlanStepKind as P;
    let down = [P::Stop, P::Backup, P::Install, P::Start, P::Rollback];
    let up = [
        P::Prepare,
        P::Drain,
        P::CheckSettled,
        P::WaitReady,
        P::Undrain,
        P::Soak,
        P::Verify,
        P::Logs,
        P::Lock,
        P::PreRun,
        P::PostRun,
        P::Unlock,
    ];
    assert!(down.iter().all(|k| k.takes_node_down()));
    assert!(up.iter().all(|k| !k.takes_node_down()));
}

/// Found by cargo-mutants: the edges of the two manifest warnings of a plan, "fewer
/// than 3 nodes" and "`stable_for` under 6 s".
#[test]
fn too_few_nodes_and_a_short_stable_for_warn_exactly_below_their_edges() {
    let warns = |p: &Plan, id: FindingId| p.findings.iter().any(|f| f.id == id);
    let node = |id: u64| format!("  - {{ id: {id}, host: h{id}, version: v2.0.10-20241221 }}\n");
    for (count, warned) in [(1, true), (2, true), (3, false), (4, false)] {
        let nodes: String = (1001..1001 + count).map(node).collect();
        let text = format!(
            "name: t\nplaybook: sim\nvars: {{ wksim: /bin/wksim, state_dir: /tmp/s }}\nnodes:\n{nodes}"
        );
        let m = crate::manifest::parse(&text, Path::new("t.yaml")).unwrap();
        let p = build_for(&m, "v2.1.2", None, false).unwrap();
        assert_eq!(
            warns(&p, FindingId::ManifestTooFewNodes),
            warned,
            "{count} nodes"
        );
    }
    for (stable_for, warned) in [
        ("5s", true),
        ("5999ms", true),
        ("6s", false),
        ("30s", false),
    ] {
        let m = manifest(&format!("policy: {{ stable_for: {stable_for} }}\n"));
        let p = build_for(&m, "v2.1.2", None, false).unwrap();
        assert_eq!(
            warns(&p, FindingId::PolicyStableForShort),
            warned,
            "stable_for {stable_for}"
        );
    }
}

/// Found by cargo-mutants: `node_timeout` must hold the commands between the stop and
/// the gate (not the stop itself, not what runs after the gate, not steps without a
/// command) plus `stable_for` and two polls; the warning fires exactly above that.
#[test]
fn the_node_timeout_budget_counts_the_commands_between_stop_and_gate() {
    use PlanStepKind as P;
    let step = |kind, command: bool, timeout_s| PlannedStep {
        kind,
        command: command.then(|| "x".to_string()),
        timeout_s,
    };
    let node = |id, steps| PlannedNode {
        id,
        host: "h".into(),
        api: "http://h:5001".into(),
        from: None,
        action: NodeAction::Upgrade,
        steps,
        on_failure: Vec::new(),
    };
    let nodes = [
        node(
            1001,
            vec![
                step(P::CheckSettled, false, 0.0),
                step(P::Stop, true, 30.0),
                step(P::Backup, true, 20.0),
                step(P::Install, false, 100.0),
                step(P::Start, true, 40.0),
                step(P::WaitReady, false, 999.0),
                step(P::Undrain, true, 500.0),
            ],
        ),
        // A node with less after its stop does not lower the budget needed.
        node(
            1002,
            vec![step(P::Stop, true, 30.0), step(P::Start, true, 5.0)],
        ),
    ];
    // After the stop: 20 + 40 = 60 s; the gate's floor: 10 s + 2 × 3 s = 16 s.
    let policy = |node_timeout: u64| Policy {
        stable_for: std::time::Duration::from_secs(10),
        poll_interval: std::time::Duration::from_secs(3),
        node_timeout: std::time::Duration::from_secs(node_timeout),
        ..Policy::default()
    };
    for (timeout, warned) in [(75, true), (76, false), (77, false)] {
        let f = budget_finding(&nodes, &policy(timeout));
        assert_eq!(f.is_some(), warned, "node_timeout {timeout}s: {f:?}");
        if let Some(f) = f {
            assert_eq!(f.id, FindingId::PolicyNodeTimeoutShort);
            assert!(f.message.contains("take 60s"), "{}", f.message);
            assert!(f.hint.contains("at least 76s"), "{}", f.hint);
        }
    }
}

/// Found by cargo-mutants: an upgrade's digest does not cover its kind (so plan files
/// reviewed before restarts existed still apply); a restart's does. Pinned: a change
/// of this value invalidates every upgrade plan file already reviewed.
#[test]
fn an_upgrade_digest_is_pinned_and_leaves_its_kind_out() {
    let m = manifest("");
    let p = build_for(&m, "v2.1.2", None, false).unwrap();
    assert_eq!(
        p.digest,
        "6379a8cbf687ab44158ed4138406c87c8331e5100fe272badfe9eb2e16cca434"
    );
}

fn manifest(extra: &str) -> Manifest {
    let text = format!(
        "name: t\nplaybook: sim\nvars: {{ wksim: /bin/wksim, state_dir: /tmp/s }}\nnodes:\n  - {{ id: 1003, host: c, version: v2.0.10-20241221 }}\n  - {{ id: 1001, host: a, version: v2.0.10-20241221 }}\n  - {{ id: 1002, host: b }}\n{extra}"
    );
    crate::manifest::parse(&text, Path::new("t.yaml")).unwrap()
}

fn build_for(m: &Manifest, to: &str, controller: Option<u64>, live: bool) -> Result<Plan, WkError> {
    let pb = playbook::load(&m.playbook, Path::new(".")).unwrap();
    let target = resolve_target(to, false).unwrap();
    let versions = m.nodes.iter().map(|n| (n.id, n.version.clone())).collect();
    build(&Input {
        manifest: m,
        playbook: &pb,
        target: &target,
        versions: &versions,
        controller,
        live,
        rules: RuleOptions::default(),
        kind: PlanKind::Upgrade,
    })
}

#[test]
fn orders_by_id_with_1001_first_and_renders_steps() {
    let m = manifest("");
    let p = build_for(&m, "v2.1.2", None, false).unwrap();
    assert_eq!(
        p.nodes.iter().map(|n| n.id).collect::<Vec<_>>(),
        [1001, 1002, 1003]
    );
    assert_eq!(p.to.to_string(), "v2.1.2-20250120");
    let kinds: Vec<_> = p.nodes[0].steps.iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
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
        p.nodes[0].steps[1].command.as_deref(),
        Some("/bin/wksim ctl --state-dir /tmp/s stop 1001")
    );
    assert_eq!(p.nodes[1].from, None);
    assert!(
        p.findings
            .iter()
            .any(|f| f.id == FindingId::VersionFromUnknown && f.node == Some(1002))
    );
    assert_eq!(p.digest.len(), 64);
}

#[test]
fn controller_last_needs_live_data() {
    let m = manifest("policy: { order: controller-last }\n");
    let offline = build_for(&m, "v2.1.2", Some(1001), false).unwrap();
    assert_eq!(offline.order, Order::Id);
    assert!(
        offline
            .findings
            .iter()
            .any(|f| f.id == FindingId::PlanOrderFallback)
    );
    let live = build_for(&m, "v2.1.2", Some(1001), true).unwrap();
    assert_eq!(
        live.nodes.iter().map(|n| n.id).collect::<Vec<_>>(),
        [1002, 1003, 1001]
    );
}

#[test]
fn same_version_is_skipped_and_unknown_vars_fail_at_plan_time() {
    let m = manifest("");
    let p = build_for(&m, "v2.0.10-20241221", None, false).unwrap();
    assert_eq!(p.nodes[0].action, NodeAction::Skip);
    assert!(p.nodes[0].steps.is_empty());
    let text = "name: t\nplaybook: kubernetes\nnodes:\n  - { id: 1, host: a }\n";
    let m = crate::manifest::parse(text, Path::new("t.yaml")).unwrap();
    let e = build_for(&m, "v2.1.2", None, false).unwrap_err();
    assert!(
        e.message.contains("unknown variable `{{pod}}`"),
        "{}",
        e.message
    );
}

#[test]
fn the_digest_changes_with_the_commands() {
    let a = build_for(&manifest(""), "v2.1.2", None, false).unwrap();
    let b = build_for(&manifest(""), "v2.1.3", None, false).unwrap();
    assert_ne!(a.digest, b.digest);
    assert_eq!(
        a.digest,
        build_for(&manifest(""), "v2.1.2", None, false)
            .unwrap()
            .digest
    );
}
