//! The restart side of the plan (issue 19): a node is restarted on the version it runs,
//! so it must report one (signal B compares the new process's version with it), and the
//! plan's `to` is the version the cluster runs.

use std::collections::BTreeMap;

use crate::finding::{Finding, FindingId};
use crate::releases::NodeAction;
use crate::version::WkVersion;

/// A node to restart: its version must be known, or the gate could never prove that the
/// new process runs the same one (unknown is not ready).
pub(super) fn evaluate(id: u64, from: Option<&WkVersion>) -> (NodeAction, Vec<Finding>) {
    match from {
        Some(_) => (NodeAction::Restart, Vec::new()),
        None => (
            NodeAction::Restart,
            vec![Finding::block(
                FindingId::VersionFromUnknown,
                Some(id),
                format!(
                    "node {id} reports no version: a restart could not prove it came back on the same one"
                ),
                "check that its API answers `/varz` (`wkctl status`), or declare `version:` for it in the manifest",
            )],
        ),
    }
}

/// The version a restart plan names as its `to`: the one most nodes run (the newest of
/// equally common ones). `None` when no node's version is known.
pub fn cluster_version(versions: &BTreeMap<u64, Option<WkVersion>>) -> Option<WkVersion> {
    let mut counts: Vec<(WkVersion, usize)> = Vec::new();
    for v in versions.values().flatten() {
        match counts.iter_mut().find(|(c, _)| c.same_build(v)) {
            Some((_, n)) => *n += 1,
            None => counts.push((v.clone(), 1)),
        }
    }
    counts
        .into_iter()
        .max_by(|(a, na), (b, nb)| na.cmp(nb).then_with(|| a.cmp(b)))
        .map(|(v, _)| v)
}

#[cfg(test)]
mod tests {
    use super::super::{Input, PlanKind, PlanStepKind, build};
    use super::*;
    use crate::releases::{RuleOptions, resolve_target};
    use std::path::Path;

    fn v(s: &str) -> WkVersion {
        WkVersion::parse(s).unwrap()
    }

    fn plan(playbook: &str, versions: &[(u64, Option<&str>)], kind: PlanKind) -> crate::plan::Plan {
        let text = format!(
            "name: t\nplaybook: {playbook}\nvars: {{ wksim: /bin/wksim, state_dir: /tmp/s }}\nnodes:\n  - {{ id: 1003, host: c }}\n  - {{ id: 1001, host: a }}\n  - {{ id: 1002, host: b }}\n"
        );
        let m = crate::manifest::parse(&text, Path::new("t.yaml")).unwrap();
        let pb = crate::playbook::load(&m.playbook, Path::new(".")).unwrap();
        let versions: BTreeMap<u64, Option<WkVersion>> =
            versions.iter().map(|(id, s)| (*id, s.map(v))).collect();
        let to = match kind {
            PlanKind::Restart => cluster_version(&versions).unwrap().to_string(),
            PlanKind::Upgrade => "v2.1.2".into(),
        };
        build(&Input {
            manifest: &m,
            playbook: &pb,
            target: &resolve_target(&to, true).unwrap(),
            versions: &versions,
            controller: None,
            live: true,
            rules: RuleOptions::default(),
            kind,
        })
        .unwrap()
    }

    const OLD: &str = "v2.0.10-20241221";

    #[test]
    fn a_restart_plan_has_only_stop_and_start_on_each_nodes_own_version() {
        let all = [(1001, Some(OLD)), (1002, Some(OLD)), (1003, Some(OLD))];
        let p = plan("sim", &all, PlanKind::Restart);
        assert_eq!(p.kind, PlanKind::Restart);
        assert_eq!(p.to.to_string(), OLD);
        assert_eq!(
            p.nodes.iter().map(|n| n.id).collect::<Vec<_>>(),
            [1001, 1002, 1003]
        );
        for n in &p.nodes {
            assert_eq!(n.action, NodeAction::Restart);
            let kinds: Vec<_> = n.steps.iter().map(|s| s.kind).collect();
            assert_eq!(
                kinds,
                [
                    PlanStepKind::CheckSettled,
                    PlanStepKind::Stop,
                    PlanStepKind::Start,
                    PlanStepKind::WaitReady,
                    PlanStepKind::Soak
                ],
                "node {}",
                n.id
            );
            // No rollback to an old version: only the log tail on failure.
            assert_eq!(
                n.on_failure.iter().map(|s| s.kind).collect::<Vec<_>>(),
                [PlanStepKind::Logs]
            );
            assert_eq!(
                n.step(PlanStepKind::Start).unwrap().command.as_deref(),
                Some(
                    format!(
                        "/bin/wksim ctl --state-dir /tmp/s start {} --version {OLD}",
                        n.id
                    )
                    .as_str()
                )
            );
        }
        assert!(p.ok(), "{:?}", p.findings);
        // The kind is part of the JSON and of the digest; an upgrade's JSON has no `kind`.
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["kind"], "restart");
        assert_eq!(json["nodes"][0]["action"], "restart");
        let mut as_upgrade = p.clone();
        as_upgrade.kind = PlanKind::Upgrade;
        as_upgrade.redigest();
        assert_ne!(as_upgrade.digest, p.digest);
        let up = plan("sim", &all, PlanKind::Upgrade);
        assert!(serde_json::to_value(&up).unwrap().get("kind").is_none());
    }

    #[test]
    fn a_node_without_a_version_blocks_a_restart_and_mixed_clusters_name_the_common_one() {
        let p = plan(
            "sim",
            &[(1001, Some(OLD)), (1002, None), (1003, Some(OLD))],
            PlanKind::Restart,
        );
        assert!(!p.ok());
        assert!(
            p.findings
                .iter()
                .any(|f| f.id == FindingId::VersionFromUnknown && f.node == Some(1002))
        );
        let new = "v2.1.2-20250120";
        let mut m = BTreeMap::new();
        m.insert(1001, Some(v(new)));
        m.insert(1002, Some(v(OLD)));
        m.insert(1003, Some(v(OLD)));
        assert_eq!(cluster_version(&m), Some(v(OLD)));
        m.insert(1003, Some(v(new)));
        assert_eq!(cluster_version(&m), Some(v(new)));
        m.insert(1002, Some(v(new)));
        m.insert(1003, None);
        m.insert(1004, Some(v(OLD)));
        assert_eq!(cluster_version(&m), Some(v(new)));
        assert_eq!(cluster_version(&BTreeMap::from([(1, None)])), None);
    }

    #[test]
    fn a_restart_leaves_out_prepare_backup_install_and_rollback_but_keeps_drain() {
        // The docker-compose playbook has backup, install and rollback steps.
        let text = "name: t\nplaybook: docker-compose\nvars: { compose_dir: /opt/wk }\nnodes:\n  - { id: 1001, host: a, vars: { service: wk1 } }\n";
        let m = crate::manifest::parse(text, Path::new("t.yaml")).unwrap();
        let mut pb = crate::playbook::load(&m.playbook, Path::new(".")).unwrap();
        pb.steps
            .insert(crate::playbook::StepKind::Drain, "echo drain".into());
        pb.steps
            .insert(crate::playbook::StepKind::Undrain, "echo undrain".into());
        pb.steps.insert(
            crate::playbook::StepKind::Prepare,
            "echo prepare {{to}}".into(),
        );
        let versions = BTreeMap::from([(1001, Some(v(OLD)))]);
        let p = build(&Input {
            manifest: &m,
            playbook: &pb,
            target: &resolve_target(OLD, true).unwrap(),
            versions: &versions,
            controller: None,
            live: true,
            rules: RuleOptions::default(),
            kind: PlanKind::Restart,
        })
        .unwrap();
        let kinds: Vec<&str> = p.nodes[0].steps.iter().map(|s| s.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "drain",
                "check_settled",
                "stop",
                "start",
                "wait_ready",
                "undrain",
                "soak"
            ]
        );
        assert!(p.nodes[0].step(PlanStepKind::Rollback).is_none());
    }
}
