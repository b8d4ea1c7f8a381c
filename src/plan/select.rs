//! `upgrade --nodes 1001,1002`: a run limited to some nodes (tiup `-N`). The plan keeps
//! every node, in the same order and with the same gates (the pre-stop check still looks
//! at the whole cluster); the nodes left out are skipped with a `plan.node_not_selected`
//! finding that says why.

use super::Plan;
use crate::error::WkError;
use crate::finding::{Finding, FindingId};
use crate::manifest::Manifest;

/// Every id must be a node of the manifest.
pub fn check_known(manifest: &Manifest, ids: &[u64]) -> Result<(), WkError> {
    let unknown: Vec<String> = ids
        .iter()
        .filter(|id| manifest.node(**id).is_none())
        .map(ToString::to_string)
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let known: Vec<String> = manifest.nodes.iter().map(|n| n.id.to_string()).collect();
    Err(WkError::input(
        format!(
            "`--nodes`: node {} is not in the manifest `{}` (its nodes: {})",
            unknown.join(", "),
            manifest.path.display(),
            known.join(", ")
        ),
        "pass ids of the manifest's nodes, comma-separated: `--nodes 1001,1002`",
    ))
}

/// Skips every node to upgrade that is not in `ids` (empty = all nodes).
pub fn limit_to_nodes(plan: &mut Plan, ids: &[u64]) {
    if ids.is_empty() {
        return;
    }
    let mut changed = false;
    for pn in &mut plan.nodes {
        if !pn.action.acts() || ids.contains(&pn.id) {
            continue;
        }
        pn.skip();
        plan.findings.push(Finding::info(
            FindingId::PlanNodeNotSelected,
            Some(pn.id),
            format!("node {} is not in `--nodes`: it is left as it is", pn.id),
            format!(
                "{k} it in a later run (`wkctl {k} --nodes …` or without `--nodes`)",
                k = plan.kind
            ),
        ));
        changed = true;
    }
    if changed {
        plan.settle();
    }
}

/// The node left out by `--nodes` (it has the finding [`limit_to_nodes`] adds).
pub fn not_selected(plan: &Plan, id: u64) -> bool {
    plan.findings
        .iter()
        .any(|f| f.id == FindingId::PlanNodeNotSelected && f.node == Some(id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Input, build};
    use crate::probe::fixtures::manifest;
    use crate::releases::{RuleOptions, resolve_target};
    use std::collections::BTreeMap;

    #[test]
    fn left_out_nodes_are_skipped_in_the_same_order_and_unknown_ids_are_refused() {
        let m = manifest(&[1, 2, 3]);
        let pb = crate::playbook::load("sim", std::path::Path::new(".")).unwrap();
        let target = resolve_target("v2.1.2", false).unwrap();
        let versions: BTreeMap<u64, Option<crate::version::WkVersion>> = m
            .nodes
            .iter()
            .map(|n| {
                (
                    n.id,
                    crate::version::WkVersion::parse("v2.0.10-20241221").ok(),
                )
            })
            .collect();
        let mut plan = build(&Input {
            manifest: &m,
            playbook: &pb,
            target: &target,
            versions: &versions,
            controller: None,
            live: true,
            rules: RuleOptions::default(),
            kind: crate::plan::PlanKind::Upgrade,
        })
        .unwrap();
        let ids: Vec<u64> = plan.nodes.iter().map(|n| n.id).collect();
        let digest = plan.digest.clone();
        let keep = [ids[0], ids[2]];
        limit_to_nodes(&mut plan, &keep);
        assert_eq!(plan.nodes.iter().map(|n| n.id).collect::<Vec<_>>(), ids);
        assert_eq!(
            plan.upgrades().map(|n| n.id).collect::<Vec<_>>(),
            keep.to_vec()
        );
        assert!(not_selected(&plan, ids[1]) && !not_selected(&plan, ids[0]));
        assert!(plan.nodes[1].steps.is_empty());
        assert_ne!(plan.digest, digest, "the digest covers the selection");
        assert!(check_known(&m, &keep).is_ok());
        let e = check_known(&m, &[ids[0], 9999]).unwrap_err();
        assert!(
            e.message.contains("node 9999 is not in the manifest"),
            "{}",
            e.message
        );
        assert_eq!(e.kind, crate::error::Kind::Input);
    }
}
