//! Judging what `doctor` collected: findings from the logs, the network matrix, the
//! settings and the steps that could not run. Pure: no node is asked anything here.

use std::collections::BTreeMap;

use super::collect::Collected;
use super::settings::{self, FingerprintKey};
use super::{Link, LogMatch, Reach, Report, StepProblem, signatures};
use crate::finding::{self, Finding, FindingId, hints};
use crate::manifest::Manifest;
use crate::probe::ClusterView;

/// The report of what was collected: `live` (the live-check findings) and every finding
/// of the logs, network and settings, sorted. `key` fingerprints the secrets.
pub(super) fn judge(
    manifest: &Manifest,
    view: ClusterView,
    live: Vec<Finding>,
    c: Collected,
    key: Option<&FingerprintKey>,
) -> Report {
    let mut findings = live;
    let mut logs = Vec::new();
    for (id, text) in &c.logs {
        logs.extend(signatures::scan(*id, text));
    }
    findings.extend(log_findings(&logs));
    findings.extend(network_findings(&c.network, &view));
    let hosts: BTreeMap<u64, (String, String)> = manifest
        .nodes
        .iter()
        .map(|n| (n.id, (n.host.clone(), n.api.clone())))
        .collect();
    let (settings_rows, mut setting_findings) = settings::compare(&c.configs, &hosts, key);
    findings.append(&mut setting_findings);
    findings.extend(c.problems.iter().map(could_not_check));
    findings.extend(could_not_check_network(&c.network));
    finding::sort(&mut findings);
    Report {
        format_version: 1,
        cluster: manifest.name.clone(),
        findings,
        logs,
        network: c.network,
        settings: settings_rows,
        problems: c.problems,
        view: Some(view),
        nodes: manifest.nodes.len(),
    }
}

/// "Could not check, because …" is its own finding, with the error whole (13.5).
fn could_not_check(p: &StepProblem) -> Finding {
    let what = match p.step {
        "logs" => "its logs for known failure signatures",
        "config" => "its settings",
        _ => "this part",
    };
    Finding::warn(
        FindingId::DoctorCouldNotCheck,
        (p.node != 0).then_some(p.node),
        format!(
            "node {}: could not check {what}, because the playbook `{}` step failed:\n{}",
            p.node,
            p.step,
            p.error.trim_end()
        ),
        hints::DOCTOR_STEP_FAILED,
    )
}

/// Network checks that could not run (no `netcheck` step, a missing command, ssh down):
/// one finding per node and port with the errors whole, never `network.unreachable`.
fn could_not_check_network(links: &[Link]) -> Vec<Finding> {
    let mut by: BTreeMap<(u64, super::Port), Vec<String>> = BTreeMap::new();
    for l in links {
        if let Reach::Unknown(why) = &l.reach {
            by.entry((l.from, l.port)).or_default().push(format!(
                "to node {} ({}): {}",
                l.to,
                l.addr,
                why.trim_end()
            ));
        }
    }
    by.into_iter()
        .map(|((from, port), errs)| {
            Finding::warn(
                FindingId::DoctorCouldNotCheck,
                Some(from),
                format!(
                    "node {from}: could not check the {port} port of its peers, because the `netcheck` step could not run:\n  {}",
                    errs.join("\n  ")
                ),
                hints::DOCTOR_NETCHECK_FAILED,
            )
        })
        .collect()
}

/// One finding per node and signature, with how often it was seen.
fn log_findings(logs: &[LogMatch]) -> Vec<Finding> {
    let mut grouped: BTreeMap<(u64, FindingId), Vec<&LogMatch>> = BTreeMap::new();
    for m in logs {
        grouped.entry((m.node, m.signature)).or_default().push(m);
    }
    let mut out = Vec::new();
    for ((node, id), ms) in grouped {
        let Some(sig) = signatures::signature(id) else {
            continue;
        };
        let when = ms
            .last()
            .and_then(|m| m.time.clone())
            .map(|t| format!(", last at {t}"))
            .unwrap_or_default();
        let issue = sig.issue.map(|i| format!(" (#{i})")).unwrap_or_default();
        out.push(Finding::warn(
            id,
            Some(node),
            format!(
                "node {node}: {}{issue}: {} line(s){when}",
                sig.explanation,
                ms.len()
            ),
            sig.hint,
        ));
    }
    out
}

/// One-way and two-way failures in the matrix. Links to a node whose API does not answer
/// are explained by that node being down (its own `node.unreachable` finding): one
/// `info` per such node instead of a block per link.
fn network_findings(links: &[Link], view: &ClusterView) -> Vec<Finding> {
    let mut out = Vec::new();
    let down = |id: u64| view.node(id).is_some_and(|n| !n.reachable);
    let mut explained: BTreeMap<u64, usize> = BTreeMap::new();
    for l in links {
        if !matches!(l.reach, Reach::Unreachable(_)) {
            continue;
        }
        if down(l.to) {
            *explained.entry(l.to).or_default() += 1;
            continue;
        }
        let back = links
            .iter()
            .find(|b| b.from == l.to && b.to == l.from && b.port == l.port);
        let port = l.port.described();
        if back.is_some_and(|b| b.reach == Reach::Ok) {
            out.push(Finding::block(
                FindingId::NetworkOneWay,
                Some(l.from),
                format!("node {} cannot reach node {}'s {port} at {}, but {} reaches {}: a one-way failure", l.from, l.to, l.addr, l.to, l.from),
                hints::NETWORK_ONE_WAY,
            ));
        } else {
            out.push(Finding::block(
                FindingId::NetworkUnreachable,
                Some(l.from),
                format!(
                    "node {} cannot reach node {}'s {port} at {}",
                    l.from, l.to, l.addr
                ),
                hints::NETWORK_UNREACHABLE,
            ));
        }
    }
    for (id, n) in explained {
        out.push(Finding::info(
            FindingId::NetworkPeerDown,
            Some(id),
            format!("{n} network check(s) to node {id} failed: node {id} itself does not answer"),
            hints::network_peer_down(),
        ));
    }
    out
}
