//! The resume policy (issue #16): which versions a resumed run plans with, and which
//! findings of its pre-upgrade check an interrupted node explains. Pure: the caller
//! observes the cluster and passes what it saw.

use std::collections::{BTreeMap, BTreeSet};

use crate::finding::{self, Finding, FindingId, Severity};
use crate::plan::Plan;
use crate::releases::NodeAction;
use crate::version::WkVersion;

/// What the resume policy needs of a node's record in the run state (the run state's
/// `NodeRun` converts into it, so this module stays pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeProgress {
    pub id: u64,
    /// The version the node ran before the run.
    pub from: Option<String>,
    pub status: Progress,
    /// Its stop began, in this run or an earlier one: it may be down.
    pub stop_began: bool,
    /// Its stop finished.
    pub stop_finished: bool,
    /// The `/varz.commit` it ran when its gate passed (a `-dev` build is known by it).
    pub proven_commit: Option<String>,
}

/// A node's status in the run, as the resume policy tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    InProgress,
    Ready,
    Failed,
    /// Pending, skipped or rolled back: the run has nothing of it to resume.
    Other,
}

/// On resume, plan with each node's version from before the run, so upgraded and
/// interrupted nodes keep their place (and are re-verified rather than skipped blindly).
/// `live` is each node's version as observed now (or from the manifest).
pub fn versions(
    nodes: &[NodeProgress],
    mut live: BTreeMap<u64, Option<WkVersion>>,
) -> BTreeMap<u64, Option<WkVersion>> {
    for n in nodes {
        if matches!(
            n.status,
            Progress::InProgress | Progress::Ready | Progress::Failed
        ) && let Some(from) = n.from.as_deref().and_then(|f| WkVersion::parse(f).ok())
        {
            live.insert(n.id, Some(from));
        }
    }
    live
}

/// The interrupted nodes whose stop began: they may be down on purpose.
fn busy(nodes: &[NodeProgress]) -> Vec<&NodeProgress> {
    nodes
        .iter()
        .filter(|n| matches!(n.status, Progress::InProgress | Progress::Failed))
        // Only a node whose stop began may be down on purpose; before that, nothing of
        // the cluster's state is explained by the run, and every block stands.
        .filter(|n| n.stop_began)
        .collect()
}

/// The resumed run only brings `n` back: its stop finished, or it is observed down (a
/// stop still recorded as running is then skipped as done). Nothing is stopped before its
/// gate has checked every node again (A–G), and the next node's pre-stop check (A, C–F).
fn only_starts(n: &NodeProgress, down: &BTreeSet<u64>) -> bool {
    n.stop_finished || down.contains(&n.id)
}

/// On resume the interrupted node may be down on purpose: findings caused by it (and the
/// cluster-wide symptoms of one node down) are warnings, not blocks. Another node down
/// still blocks.
///
/// A *peer* that does not know the controller yet (`cluster.node_rejoining`: it answers,
/// `/cluster/info` says `leader not found`) is the transient symptom of the controller
/// moving after the busy node's stop. It is relaxed only when the resumed run will start
/// the busy node and stop nothing first ([`only_starts`]): starting a node that is down
/// cannot make the cluster worse, and the only node down is the busy one. When the resumed
/// step could stop something (the busy node is up and its stop did not finish), it blocks.
/// No other peer finding is relaxed: a peer offline or not Joined in the controller's view
/// (`cluster.node_offline`) is a second node down; one that does not answer, refuses the
/// token, fails `/health` (a 500 can be a crash) or runs another version is not explained
/// by the busy node.
///
/// `down`: the nodes observed down now (`gate::is_down`).
pub fn relax(findings: &mut [Finding], nodes: &[NodeProgress], down: &BTreeSet<u64>) {
    let busy = busy(nodes);
    let Some(first) = busy.first() else {
        return;
    };
    let first = first.id;
    let ids: Vec<u64> = busy.iter().map(|n| n.id).collect();
    let starts_only = busy.iter().all(|n| only_starts(n, down));
    for f in findings.iter_mut() {
        let about_busy = f.node.is_some_and(|n| ids.contains(&n));
        let cluster_symptom = f.node.is_none() && f.id.area() == "cluster";
        if f.severity == Severity::Block
            && (about_busy || cluster_symptom)
            && f.id.area() != "version"
            && f.id != FindingId::NodeAuthFailed
        {
            f.severity = Severity::Warn;
            f.message = format!("{} (node {first} is mid-upgrade: resuming)", f.message);
        } else if f.severity == Severity::Block
            && f.id == FindingId::ClusterNodeRejoining
            && starts_only
            && f.node
                .is_some_and(|p| !ids.contains(&p) && !down.contains(&p))
        {
            f.severity = Severity::Warn;
            f.message = format!(
                "{} (node {first} is mid-upgrade and down: resuming only starts it; its gate and the next pre-stop check wait for every node)",
                f.message
            );
        }
        if f.id == FindingId::VersionMixed {
            f.severity = Severity::Info;
        }
    }
    finding::sort(findings);
}

/// A `-dev` image reports the release it builds on (facts §7.4), so the plan sees every
/// node as "to upgrade" again. A node an earlier run to the same `-dev` target proved
/// (its gate passed on a new commit) and that still runs that commit is skipped: a
/// re-run restarts nothing.
///
/// `earlier_to`: the earlier run's target; `nodes`: its node records; `running`: the
/// commit each node is observed running now.
pub fn skip_proven_dev_builds(
    plan: &mut Plan,
    earlier_to: &str,
    nodes: &[NodeProgress],
    running: &BTreeMap<u64, String>,
) {
    if !plan.to.is_dev() || earlier_to != plan.to.to_string() {
        return;
    }
    let mut changed = false;
    for pn in &mut plan.nodes {
        let proven = nodes
            .iter()
            .find(|n| n.id == pn.id)
            .filter(|n| n.status == Progress::Ready)
            .and_then(|n| n.proven_commit.as_deref());
        let now = running.get(&pn.id).map(String::as_str);
        if pn.action == NodeAction::Upgrade && proven.is_some() && proven == now {
            pn.skip();
            plan.findings.push(Finding::info(
                FindingId::VersionSame,
                Some(pn.id),
                format!(
                    "node {} runs the {} build proven by the earlier run (commit {}); it is skipped",
                    pn.id,
                    plan.to,
                    now.unwrap_or_default()
                ),
                "nothing to do for this node",
            ));
            changed = true;
        }
    }
    if changed {
        plan.settle();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::PlanStepKind;
    use crate::state::{NodeRun, NodeStatus};

    fn progress(ns: &[NodeRun]) -> Vec<NodeProgress> {
        ns.iter().map(NodeProgress::from).collect()
    }

    const BUSY: u64 = 1002;
    const PEER: u64 = 1001;

    /// Node 1002 interrupted at `step` (the steps before it done), 1001 upgraded.
    fn nodes(step: PlanStepKind, status: NodeStatus) -> Vec<NodeRun> {
        let order = [
            PlanStepKind::Drain,
            PlanStepKind::CheckSettled,
            PlanStepKind::Stop,
            PlanStepKind::Backup,
            PlanStepKind::Install,
            PlanStepKind::Start,
            PlanStepKind::WaitReady,
            PlanStepKind::Soak,
        ];
        let mut peer = NodeRun::new(PEER, Some("v2.1.1-20250110".into()));
        peer.status = NodeStatus::Ready;
        let mut b = NodeRun::new(BUSY, Some("v2.1.1-20250110".into()));
        b.status = status;
        b.step = Some(step);
        b.done = order.iter().copied().take_while(|s| *s != step).collect();
        let pending = NodeRun::new(1003, Some("v2.1.1-20250110".into()));
        vec![peer, b, pending]
    }

    fn finding(id: FindingId, node: Option<u64>) -> Finding {
        Finding::block(id, node, format!("{id} about {node:?}"), "h")
    }

    fn severity_after(
        step: PlanStepKind,
        status: NodeStatus,
        busy_down: bool,
        f: Finding,
    ) -> Severity {
        let down: BTreeSet<u64> = if busy_down {
            [BUSY].into()
        } else {
            BTreeSet::new()
        };
        let mut fs = vec![f];
        relax(&mut fs, &progress(&nodes(step, status)), &down);
        fs[0].severity
    }

    /// Busy node's step, its status, whether it is observed down, the finding, about whom,
    /// and the severity the policy leaves.
    type Row = (
        PlanStepKind,
        NodeStatus,
        bool,
        FindingId,
        Option<u64>,
        Severity,
    );

    /// busy step × busy observed down × finding → severity after the policy.
    #[test]
    fn relax_table() {
        use FindingId as F;
        use PlanStepKind as S;
        use Severity::{Block, Info, Warn};
        let ip = NodeStatus::InProgress;
        #[rustfmt::skip]
        let table: &[Row] = &[
            // A peer that has not rejoined: relaxed only when the resumed run only starts.
            (S::Start, ip, true, F::ClusterNodeRejoining, Some(PEER), Warn),
            (S::Start, ip, false, F::ClusterNodeRejoining, Some(PEER), Warn),
            (S::WaitReady, ip, false, F::ClusterNodeRejoining, Some(PEER), Warn),
            (S::WaitReady, NodeStatus::Failed, false, F::ClusterNodeRejoining, Some(PEER), Warn),
            (S::Install, ip, true, F::ClusterNodeRejoining, Some(PEER), Warn),
            (S::Soak, ip, false, F::ClusterNodeRejoining, Some(PEER), Warn),
            (S::Stop, ip, true, F::ClusterNodeRejoining, Some(PEER), Warn),
            // ... never when the resumed step may stop something.
            (S::Stop, ip, false, F::ClusterNodeRejoining, Some(PEER), Block),
            (S::Stop, NodeStatus::Failed, false, F::ClusterNodeRejoining, Some(PEER), Block),
            (S::CheckSettled, ip, false, F::ClusterNodeRejoining, Some(PEER), Block),
            (S::CheckSettled, ip, true, F::ClusterNodeRejoining, Some(PEER), Block),
            (S::Drain, ip, false, F::ClusterNodeRejoining, Some(PEER), Block),
            // Other peer findings block whatever the step.
            (S::Start, ip, true, F::ClusterNodeOffline, Some(PEER), Block),
            (S::Start, ip, true, F::NodeUnreachable, Some(PEER), Block),
            (S::Start, ip, true, F::NodeAuthFailed, Some(PEER), Block),
            (S::Start, ip, true, F::ClusterHealthFailing, Some(PEER), Block),
            (S::Start, ip, true, F::VersionManifestDisagrees, Some(PEER), Block),
            (S::Start, ip, true, F::ClusterNodeRejoining, Some(1003), Warn),
            (S::Start, ip, true, F::ClusterNodeOffline, Some(1003), Block),
            // The busy node's own findings, and cluster-wide ones, once its stop began.
            (S::Start, ip, true, F::NodeUnreachable, Some(BUSY), Warn),
            (S::Stop, ip, false, F::ClusterNodeRejoining, Some(BUSY), Warn),
            (S::Start, ip, true, F::ClusterNoController, None, Warn),
            (S::Start, ip, true, F::NodeAuthFailed, Some(BUSY), Block),
            (S::Start, ip, true, F::VersionManifestDisagrees, Some(BUSY), Block),
            (S::Start, ip, true, F::VersionMixed, None, Info),
            // Before the stop began nothing is explained by the run.
            (S::CheckSettled, ip, false, F::NodeUnreachable, Some(BUSY), Block),
            (S::Backup, ip, false, F::ClusterNoController, None, Block),
        ];
        for (step, status, down, id, node, want) in table {
            let mut ns = nodes(*step, *status);
            // `Backup` before the stop in this row: the stop has not begun.
            if *step == S::Backup {
                ns[1].done.retain(|s| *s != S::Stop);
            }
            let got = {
                let d: BTreeSet<u64> = if *down {
                    [BUSY].into()
                } else {
                    BTreeSet::new()
                };
                let mut fs = vec![finding(*id, *node)];
                relax(&mut fs, &progress(&ns), &d);
                fs[0].severity
            };
            assert_eq!(
                got, *want,
                "busy at {step:?} ({status:?}, down: {down}), {id} about {node:?}"
            );
        }
    }

    #[test]
    fn a_relaxed_peer_finding_says_why() {
        let mut fs = vec![finding(FindingId::ClusterNodeRejoining, Some(PEER))];
        relax(
            &mut fs,
            &progress(&nodes(PlanStepKind::Start, NodeStatus::InProgress)),
            &BTreeSet::new(),
        );
        assert!(
            fs[0].message.contains("node 1002 is mid-upgrade and down")
                && fs[0].message.contains("resuming only starts it"),
            "{}",
            fs[0].message
        );
    }

    #[test]
    fn a_peer_that_is_down_itself_is_never_relaxed() {
        let mut fs = vec![finding(FindingId::ClusterNodeRejoining, Some(PEER))];
        let down: BTreeSet<u64> = [BUSY, PEER].into();
        relax(
            &mut fs,
            &progress(&nodes(PlanStepKind::Start, NodeStatus::InProgress)),
            &down,
        );
        assert_eq!(fs[0].severity, Severity::Block);
    }

    #[test]
    fn nothing_is_relaxed_without_an_interrupted_node() {
        let mut ns = nodes(PlanStepKind::Start, NodeStatus::InProgress);
        ns[1].status = NodeStatus::Ready;
        assert_eq!(
            {
                let mut fs = vec![finding(FindingId::ClusterNodeRejoining, Some(PEER))];
                relax(&mut fs, &progress(&ns), &[BUSY].into());
                fs[0].severity
            },
            Severity::Block
        );
        assert_eq!(
            severity_after(
                PlanStepKind::Start,
                NodeStatus::InProgress,
                false,
                finding(FindingId::ClusterNodeRejoining, Some(PEER))
            ),
            Severity::Warn
        );
    }

    /// A plan of nodes 1, 2, 3 from v2.1.2 to `to` (each to upgrade).
    fn dev_plan(to: &str) -> Plan {
        let m = crate::probe::fixtures::manifest(&[1, 2, 3]);
        let pb = crate::playbook::load("sim", std::path::Path::new(".")).unwrap();
        let target = crate::releases::resolve_target(to, true).unwrap();
        let versions: BTreeMap<u64, Option<WkVersion>> = m
            .nodes
            .iter()
            .map(|n| (n.id, WkVersion::parse("v2.1.2-20250120").ok()))
            .collect();
        crate::plan::build(&crate::plan::Input {
            manifest: &m,
            playbook: &pb,
            target: &target,
            versions: &versions,
            controller: None,
            live: true,
            rules: crate::releases::RuleOptions::default(),
            kind: crate::plan::PlanKind::Upgrade,
        })
        .unwrap()
    }

    /// Node `id` proven on `commit` by the earlier run (ready), or merely pending.
    fn proven(id: u64, commit: &str, ready: bool) -> NodeProgress {
        let mut n = NodeRun::new(id, Some("v2.1.2-20250120".into()));
        n.status = if ready {
            NodeStatus::Ready
        } else {
            NodeStatus::Pending
        };
        n.proven_commit = Some(commit.into());
        NodeProgress::from(&n)
    }

    const DEV: &str = "v2.1.3-20250210-dev";

    #[test]
    fn a_proven_dev_build_still_running_is_skipped() {
        let mut plan = dev_plan(DEV);
        let digest = plan.digest.clone();
        let nodes = [
            proven(1, "abc", true),
            proven(2, "abc", true),
            proven(3, "abc", false),
        ];
        // Node 1 still runs the proven commit; node 2 runs another; node 3 was not proven.
        let running: BTreeMap<u64, String> =
            [(1, "abc".into()), (2, "def".into()), (3, "abc".into())].into();
        let to = plan.to.to_string();
        skip_proven_dev_builds(&mut plan, &to, &nodes, &running);
        let actions: Vec<NodeAction> = plan.nodes.iter().map(|n| n.action).collect();
        assert_eq!(
            actions,
            [NodeAction::Skip, NodeAction::Upgrade, NodeAction::Upgrade]
        );
        assert!(plan.nodes[0].steps.is_empty() && plan.nodes[0].on_failure.is_empty());
        assert!(plan.findings.iter().any(|f| f.id == FindingId::VersionSame
            && f.node == Some(1)
            && f.message.contains("proven by the earlier run (commit abc)")));
        assert_ne!(plan.digest, digest, "the digest covers the skip");
    }

    #[test]
    fn only_the_same_dev_target_skips_anything() {
        let nodes = [proven(1, "abc", true)];
        let running: BTreeMap<u64, String> = [(1, "abc".into())].into();
        // Another target than the earlier run's.
        let mut plan = dev_plan(DEV);
        let before = plan.clone();
        skip_proven_dev_builds(&mut plan, "v2.1.3-20250101-dev", &nodes, &running);
        assert_eq!(plan, before);
        // A release target: its version tells the builds apart.
        let mut plan = dev_plan("v2.1.3-20250210");
        let before = plan.clone();
        let to = plan.to.to_string();
        skip_proven_dev_builds(&mut plan, &to, &nodes, &running);
        assert_eq!(plan, before);
    }

    #[test]
    fn versions_keep_the_place_of_touched_nodes() {
        let ns = nodes(PlanStepKind::Start, NodeStatus::InProgress);
        let new = WkVersion::parse("v2.1.2-20250120").ok();
        let live: BTreeMap<u64, Option<WkVersion>> =
            [(PEER, new.clone()), (BUSY, new.clone()), (1003, None)].into();
        let v = versions(&progress(&ns), live);
        let old = WkVersion::parse("v2.1.1-20250110").ok();
        assert_eq!(
            v[&PEER], old,
            "an upgraded node is planned from its old version"
        );
        assert_eq!(v[&BUSY], old);
        assert_eq!(v[&1003], None, "a pending node keeps what is observed");
    }
}
