//! Live-check tests over hand-built views: one per finding, plus the quiet case.

use super::*;
use crate::finding::Severity;
use crate::probe::fixtures::{manifest, settled, v};
use crate::probe::{InfoAnswer, SlotSummary};

const V: &str = "v2.2.5-20260422";

fn ids_of(f: &[Finding]) -> Vec<FindingId> {
    f.iter().map(|f| f.id).collect()
}

fn only(f: &[Finding], id: FindingId) -> &Finding {
    let hits: Vec<&Finding> = f.iter().filter(|x| x.id == id).collect();
    assert_eq!(hits.len(), 1, "{id} in {:?}", ids_of(f));
    hits[0]
}

fn run(change: impl FnOnce(&mut ClusterView)) -> Vec<Finding> {
    let mut view = settled(V, 0);
    change(&mut view);
    findings_with_token(&manifest(&[1001, 1002, 1003]), &view, true)
}

/// 13.3: an unset token variable is said first and once; the 401s it causes are not
/// reported per node, and nothing the cluster "says" without answers is a cause.
#[test]
fn an_unset_token_variable_is_the_cause_not_a_missing_controller() {
    let mut view = settled(V, 0);
    for n in &mut view.nodes {
        (n.reachable, n.error) = (true, Some(ProbeError::Unauthorized));
        n.health = crate::probe::HealthState::Unknown;
        n.info_online = None;
        n.info_status = None;
    }
    view.controller = None;
    view.membership = None;
    view.slots = None;
    let mut f = findings_with_token(&manifest(&[1001, 1002, 1003]), &view, false);
    crate::finding::sort(&mut f);
    assert_eq!(f[0].id, FindingId::ApiTokenUnset, "{:?}", ids_of(&f));
    assert!(f[0].message.contains("WK_MANAGER_TOKEN") && f[0].message.contains("1001, 1002, 1003"));
    assert!(f[0].hint.contains("export WK_MANAGER_TOKEN"));
    let ids = ids_of(&f);
    for consequence in [
        FindingId::ClusterNoController,
        FindingId::NodeAuthFailed,
        FindingId::ClusterMembershipMismatch,
        FindingId::ClusterSlotsNotReady,
    ] {
        assert!(!ids.contains(&consequence), "{consequence} in {ids:?}");
    }
    // With a token sent but refused, the per-node finding stays and comes first.
    let f = findings_with_token(&manifest(&[1001, 1002, 1003]), &view, true);
    assert!(!ids_of(&f).contains(&FindingId::ApiTokenUnset));
    assert_eq!(
        f.iter()
            .filter(|x| x.id == FindingId::NodeAuthFailed)
            .count(),
        3
    );
}

/// 13.3: causes sort before consequences among blocks; a cluster-wide symptom seen with
/// a node down says it may follow from it.
#[test]
fn consequences_of_a_silent_node_point_at_it() {
    let mut view = settled(V, 0);
    {
        let n = view.node_mut(1002).unwrap();
        (n.reachable, n.error) = (false, Some(ProbeError::Timeout));
    }
    view.controller = None;
    let mut f = findings_with_token(&manifest(&[1001, 1002, 1003]), &view, true);
    crate::finding::sort(&mut f);
    assert_eq!(f[0].id, FindingId::NodeUnreachable, "{:?}", ids_of(&f));
    let nc = only(&f, FindingId::ClusterNoController);
    assert!(
        nc.message.contains("node(s) 1002 not answering"),
        "{}",
        nc.message
    );
}

#[test]
fn a_settled_cluster_has_no_findings() {
    assert!(run(|_| {}).is_empty());
    let view = settled(V, 0);
    assert_eq!(controller(&view), Some(1001));
    let versions = live_versions(&view);
    assert_eq!(versions.len(), 3);
    assert_eq!(versions[&1002], Some(v(V)));
}

#[test]
fn unreachable_and_auth_failed() {
    let f = run(|c| {
        let n = c.node_mut(1002).unwrap();
        (n.reachable, n.error) = (false, Some(ProbeError::Timeout));
    });
    let u = only(&f, FindingId::NodeUnreachable);
    assert_eq!((u.severity, u.node), (Severity::Block, Some(1002)));
    assert!(u.message.contains("1002") && u.message.contains("timeout"));

    let f = run(|c| {
        let n = c.node_mut(1003).unwrap();
        (n.reachable, n.error) = (true, Some(ProbeError::Unauthorized));
    });
    let a = only(&f, FindingId::NodeAuthFailed);
    assert_eq!((a.severity, a.node), (Severity::Block, Some(1003)));
    assert!(
        a.hint.contains("WK_MANAGER_TOKEN") && a.hint.contains("api.token_env"),
        "{}",
        a.hint
    );
    assert!(!ids_of(&f).contains(&FindingId::NodeUnreachable));
}

#[test]
fn id_mismatch() {
    let f = run(|c| c.node_mut(1002).unwrap().server_id = Some("1003".into()));
    let m = only(&f, FindingId::NodeIdMismatch);
    assert!(m.message.contains("1002") && m.message.contains("1003"));
    assert_eq!(m.severity, Severity::Block);
    // No /varz: the id from /cluster/node is used.
    let f = run(|c| {
        let n = c.node_mut(1002).unwrap();
        (n.server_id, n.self_id) = (None, Some(1001));
    });
    only(&f, FindingId::NodeIdMismatch);
}

#[test]
fn membership_mismatch_says_the_seed_incident_plainly() {
    // #310: manifest has 3 nodes, the cluster reports only 1001.
    let f = run(|c| {
        c.membership = Some(vec![1001]);
        for id in [1002, 1003] {
            let n = c.node_mut(id).unwrap();
            (n.info_online, n.info_status) = (None, None);
        }
    });
    let m = only(&f, FindingId::ClusterMembershipMismatch);
    assert_eq!(m.severity, Severity::Block);
    assert!(
        m.message
            .contains("the manifest has 3 nodes, the cluster reports 1 (1001)"),
        "{}",
        m.message
    );
    assert!(m.message.contains("1002, 1003 missing"));
    assert!(
        m.hint.contains("start node 1001 first")
            && m.hint.contains("cluster.initNodes")
            && m.hint.contains("11110")
            && m.hint.contains("#310")
    );
    // The reverse: the cluster has a node the manifest does not list.
    let f = run(|c| c.membership = Some(vec![1001, 1002, 1003, 1004]));
    assert!(
        only(&f, FindingId::ClusterMembershipMismatch)
            .message
            .contains("1004 not in the manifest")
    );
}

#[test]
fn node_offline_and_not_joined() {
    let f = run(|c| c.node_mut(1003).unwrap().info_online = Some(false));
    let o = only(&f, FindingId::ClusterNodeOffline);
    assert_eq!((o.severity, o.node), (Severity::Block, Some(1003)));
    let f =
        run(|c| c.node_mut(1003).unwrap().info_status = Some(crate::probe::NodeStatus::Joining));
    assert!(
        only(&f, FindingId::ClusterNodeOffline)
            .message
            .contains("not Joined")
    );
}

#[test]
fn no_controller() {
    let f = run(|c| {
        c.controller = None;
        c.leader_not_found = vec![1001, 1002, 1003];
        for n in &mut c.nodes {
            n.info_answer = InfoAnswer::LeaderNotFound;
        }
    });
    let n = only(&f, FindingId::ClusterNoController);
    assert_eq!(n.severity, Severity::Block);
    assert!(n.message.contains("leader not found"));
}

#[test]
fn slots_not_ready_and_migration() {
    let f = run(|c| c.slots.as_mut().unwrap().leaderless = vec![3]);
    assert!(
        only(&f, FindingId::ClusterSlotsNotReady)
            .message
            .contains("1 of 64")
    );
    let f = run(|c| c.slots.as_mut().unwrap().candidate = vec![4, 5]);
    assert_eq!(
        only(&f, FindingId::ClusterSlotsNotReady).severity,
        Severity::Block
    );
    let f = run(|c| c.slots = Some(SlotSummary::default()));
    assert!(
        only(&f, FindingId::ClusterSlotsNotReady)
            .message
            .contains("no slots")
    );
    let f = run(|c| c.slots.as_mut().unwrap().migrating = vec![9]);
    let m = only(&f, FindingId::ClusterMigrationInProgress);
    assert_eq!(m.severity, Severity::Block);
    assert!(m.message.contains("(9)"));
    assert!(!ids_of(&f).contains(&FindingId::ClusterSlotsNotReady));
}

#[test]
fn config_lagging_is_a_warning() {
    let f = run(|c| c.node_mut(1002).unwrap().config_version = Some(410));
    let l = only(&f, FindingId::ClusterConfigLagging);
    assert_eq!((l.severity, l.node), (Severity::Warn, Some(1002)));
    assert!(l.message.contains("410") && l.message.contains("415"));
}

#[test]
fn health_failing_blocks_only_when_cluster_aware() {
    let failing = |c: &mut ClusterView| {
        c.node_mut(1002).unwrap().health =
            crate::probe::HealthState::Failing("slot not ready".into());
    };
    let f = run(failing);
    let h = only(&f, FindingId::ClusterHealthFailing);
    assert_eq!(h.severity, Severity::Block);
    assert!(h.message.contains("slot not ready"));
    let mut view = settled("v2.1.3-20250210", 0);
    failing(&mut view);
    let f = live_findings(&manifest(&[1001, 1002, 1003]), &view);
    assert_eq!(
        only(&f, FindingId::ClusterHealthFailing).severity,
        Severity::Warn
    );
}

#[test]
fn cluster_port_unreachable() {
    let f = run(|c| c.node_mut(1001).unwrap().cluster_port_reachable = Some(false));
    let p = only(&f, FindingId::ClusterClusterPortUnreachable);
    assert_eq!((p.severity, p.node), (Severity::Block, Some(1001)));
    assert!(p.message.contains("10.0.0.1:11110"));
}

#[test]
fn not_zero_downtime() {
    let f = run(|c| c.slot_replica_count = Some(1));
    assert_eq!(
        only(&f, FindingId::ClusterNotZeroDowntime).severity,
        Severity::Warn
    );
    let mut view = settled(V, 0);
    view.nodes.truncate(1);
    view.membership = Some(vec![1001]);
    let f = live_findings(&manifest(&[1001]), &view);
    assert!(
        only(&f, FindingId::ClusterNotZeroDowntime)
            .message
            .contains("1 node")
    );
}

#[test]
fn mixed_versions_and_manifest_disagreement() {
    let f = run(|c| {
        let n = c.node_mut(1003).unwrap();
        n.version = Some(v("v2.2.4-20260313"));
    });
    assert_eq!(only(&f, FindingId::VersionMixed).severity, Severity::Warn);

    let mut m = manifest(&[1001, 1002, 1003]);
    m.nodes[1].version = Some(v("v2.1.2-20250120"));
    m.nodes[2].version = Some(v("2.2.5")); // same build without the date: agrees
    let f = live_findings(&m, &settled(V, 0));
    let d = only(&f, FindingId::VersionManifestDisagrees);
    assert_eq!((d.severity, d.node), (Severity::Warn, Some(1002)));
    assert!(d.message.contains(V) && d.message.contains("v2.1.2-20250120"));
}

/// 13.9: a 1-node manifest against a 3-node cluster is a membership mismatch, not "a
/// cluster of 1 node" as well.
#[test]
fn a_short_manifest_is_not_called_a_small_cluster() {
    let view = settled(V, 0);
    let f = findings_with_token(&manifest(&[1001]), &view, true);
    let ids = ids_of(&f);
    assert!(
        ids.contains(&FindingId::ClusterMembershipMismatch),
        "{ids:?}"
    );
    assert!(!ids.contains(&FindingId::ClusterNotZeroDowntime), "{ids:?}");
}

// ---- edges found by cargo-mutants (src/checks.rs, 2026-12-07) ----------------------------

/// `/health`'s "slot count not match" is its own finding (a setting to fix), not the
/// generic "health failing" (wait for the cluster to settle).
#[test]
fn a_slot_count_mismatch_on_health_is_named_as_such() {
    let f = run(|c| {
        c.node_mut(1002).unwrap().health =
            crate::probe::HealthState::Failing("slot count not match".into());
    });
    let s = only(&f, FindingId::ClusterSlotCountMismatch);
    assert_eq!((s.severity, s.node), (Severity::Block, Some(1002)));
    assert!(s.message.contains("cluster.slotCount"), "{}", s.message);
    assert!(!ids_of(&f).contains(&FindingId::ClusterHealthFailing));
}

/// A node's state in the controller's view is judged only when that view was read (slots
/// known) and the node is a member: a non-member is the membership finding's business.
#[test]
fn the_controllers_view_of_a_node_counts_only_for_a_member_with_slots_known() {
    let offline = |c: &mut ClusterView| c.node_mut(1003).unwrap().info_online = Some(false);
    let f = run(|c| {
        offline(c);
        c.slots = None;
    });
    assert!(
        !ids_of(&f).contains(&FindingId::ClusterNodeOffline),
        "{:?}",
        ids_of(&f)
    );
    let f = run(|c| {
        offline(c);
        c.membership = Some(vec![1001, 1002]);
    });
    assert!(
        !ids_of(&f).contains(&FindingId::ClusterNodeOffline),
        "{:?}",
        ids_of(&f)
    );
}

/// Online but Joining gets the joining verdict; online in any other state is "not
/// Joined", never "offline".
#[test]
fn online_but_not_joined_is_told_apart_from_joining_and_offline() {
    // Joining goes to the #529 judgement (here: no member record, so plainly not Joined);
    // any other state is "not Joined" with the status it has.
    let f =
        run(|c| c.node_mut(1003).unwrap().info_status = Some(crate::probe::NodeStatus::Joining));
    let j = only(&f, FindingId::ClusterNodeOffline);
    assert_eq!(
        j.message,
        "node 1003 is online but not Joined in the controller's view"
    );
    let f = run(|c| c.node_mut(1003).unwrap().info_status = None);
    let o = only(&f, FindingId::ClusterNodeOffline);
    assert_eq!(
        o.message,
        "node 1003 is online but not Joined in the controller's view (status None)"
    );
}

/// "Each claim it" only when more than one node claims to be the controller.
#[test]
fn a_split_controller_claim_is_said_only_for_two_or_more_claims() {
    let no_controller = |claims: Vec<u64>| {
        run(move |c| {
            c.controller = None;
            c.controller_claims = claims;
        })
    };
    for (claims, said) in [
        (vec![], false),
        (vec![1001], false),
        (vec![1001, 1002], true),
    ] {
        let f = no_controller(claims.clone());
        let n = only(&f, FindingId::ClusterNoController);
        assert_eq!(
            n.message.contains("each claim it"),
            said,
            "{claims:?}: {}",
            n.message
        );
    }
}

/// Only cluster-wide symptoms are marked as following from a silent node; a cluster-wide
/// finding of another kind keeps its own words.
#[test]
fn a_silent_node_marks_only_the_cluster_wide_symptoms() {
    let f = run(|c| {
        let n = c.node_mut(1002).unwrap();
        (n.reachable, n.error) = (false, Some(ProbeError::Timeout));
        c.controller = None;
        c.slot_replica_count = Some(1);
    });
    let z = only(&f, FindingId::ClusterNotZeroDowntime);
    assert_eq!(z.node, None);
    assert!(!z.message.contains("not answering"), "{}", z.message);
    assert!(
        only(&f, FindingId::ClusterNoController)
            .message
            .contains("not answering")
    );
}

/// An unknown replica count (0) is not a small one; with 3 nodes and 1 replica the
/// finding names the replica count, not the node count.
#[test]
fn zero_downtime_names_the_replica_count_and_ignores_an_unknown_one() {
    let f = run(|c| c.slot_replica_count = Some(0));
    assert!(
        !ids_of(&f).contains(&FindingId::ClusterNotZeroDowntime),
        "{:?}",
        ids_of(&f)
    );
    let f = run(|c| c.slot_replica_count = Some(1));
    let z = only(&f, FindingId::ClusterNotZeroDowntime);
    assert!(z.message.contains("slotReplicaCount is 1"), "{}", z.message);
}

/// A long list of slots or nodes is cut after 8, and only then says so.
#[test]
fn id_lists_are_cut_after_eight_with_an_ellipsis() {
    assert_eq!(ids(&[]), "");
    assert_eq!(ids(&[1, 2, 3, 4, 5, 6, 7, 8]), "1, 2, 3, 4, 5, 6, 7, 8");
    assert_eq!(
        ids(&[1, 2, 3, 4, 5, 6, 7, 8, 9]),
        "1, 2, 3, 4, 5, 6, 7, 8, …"
    );
}
