//! Upstream bug #529: a node stuck in `Joining` that serves normally, told apart from a
//! node that is still joining (issue 14 §1).
//!
//! Upstream (`pkg/cluster/node/event/handle_node_joining.go`, the same file from v2.1.1
//! to branch `v2`; fix PR #531 never merged): the controller picks the first node with
//! status Joining, computes the slots to migrate to it, and proposes `Joined` together
//! with those migrations, and **only** when there is something to migrate
//! (`if len(migrateSlots) > 0 { ProposeJoined(...) }`). A node that rejoins through a
//! seed (`join: true`, `handleClusterJoin` in `pkg/cluster/cluster/rpc_server.go`) while it
//! already holds its share of slot replicas gets nothing to migrate, so it stays `Joining`
//! (status 2) for good while it serves: #529 shows `status: 2, online: 1,
//! slot_leader_count: 22` for hours after a Helm rolling update.
//!
//! A node that is really still joining differs in what can be observed: it holds no
//! slot replica yet (its replicas arrive *with* `ProposeJoined`), or slots are migrating
//! to it, or it is a learner, or some voter holds more than its share (so upstream will
//! migrate and promote it on the next tick).

use crate::probe::{ClusterView, HealthState, InfoAnswer, NodeStatus};

/// Why a Joining node is (or is not) the #529 stuck state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoiningState {
    /// Not Joining in the controller's view (Joined, offline, unknown...).
    NotJoining,
    /// Stuck by #529 while serving: every piece of evidence holds.
    Stuck529,
    /// Joining, and at least one piece of evidence fails: it may really still be joining.
    /// The text says which.
    StillJoining(String),
}

/// True when `node` is stuck in `Joining` by upstream bug #529 but serving: in the
/// controller's view it is Joining (status 2), joined through a seed (`join: true`) and
/// online; it answers, its `/health` is ok and it knows the controller; its
/// `config_version` caught up with the controller's; it holds at least one slot replica,
/// is no slot's learner and no slot migrates from or to it (nor the cluster config);
/// and upstream's `handleNodeJoining` has nothing to migrate (the first slot has its full
/// replica count and no voter holds more than `ceil(slots × replicas / voters)`
/// replicas). A node on a version before v2.1.1 (the old cluster layer) never is.
///
/// Pure, over one observation: the gate should also require it to hold for
/// `stable_for`, as every other signal.
pub fn stuck_joining_529(view: &ClusterView, node: u64) -> bool {
    joining_state(view, node) == JoiningState::Stuck529
}

/// The full answer behind [`stuck_joining_529`], with the failing evidence named.
pub fn joining_state(view: &ClusterView, node: u64) -> JoiningState {
    joining_state_in(view, node, false)
}

/// [`joining_state`] for a node that showed the whole evidence at an earlier, full
/// observation, seen now in one that did not ask it for its own answers (the gate's
/// `Scope::Focus` asks a peer only `/health` and `/varz`). Its own `/cluster/info` and
/// `config_version` are then taken as they were, but only when they were not asked:
/// an answer that came and fails still fails. Everything else (the controller's view of
/// it, its `/health`, the slots) must hold in this observation.
pub fn joining_state_carried(view: &ClusterView, node: u64) -> JoiningState {
    joining_state_in(view, node, true)
}

fn joining_state_in(view: &ClusterView, node: u64, carried: bool) -> JoiningState {
    let Some(m) = view.member(node) else {
        return JoiningState::NotJoining;
    };
    if m.status != NodeStatus::Joining {
        return JoiningState::NotJoining;
    }
    let still = |why: &str| JoiningState::StillJoining(why.to_string());
    let Some(n) = view.node(node) else {
        return still("it is not in the manifest, so wkctl cannot read its own answers");
    };
    if n.version
        .as_ref()
        .is_some_and(|v| v.major() == 2 && v.triple() < (2, 1, 1))
    {
        return still(
            "it runs the old cluster layer (before v2.1.1), where #529's code does not exist",
        );
    }
    if !m.join {
        return still("it did not join through a seed (`join` is false)");
    }
    if !m.online || n.simple_online == Some(false) {
        return still("it is not online in the controller's view");
    }
    // Its own answers that were not asked in this observation (only those are carried).
    let info_not_asked = carried && n.info_answer == InfoAnswer::NotAsked;
    let node_not_asked = carried && !n.node_asked;
    if !n.reachable || n.health != HealthState::Ok || !(n.knows_controller() || info_not_asked) {
        return still("its API, `/health` or `/cluster/info` does not answer ok");
    }
    match (n.config_version, view.config_version) {
        (Some(mine), Some(ctl)) if mine >= ctl => {}
        (None, _) if node_not_asked => {}
        _ => return still("its cluster config has not caught up with the controller's"),
    }
    let Some(slots) = &view.slots else {
        return still("the slot table is not known");
    };
    if m.replica_slots == 0 {
        return still("it holds no slot replica yet");
    }
    if m.learner_slots > 0 || m.migrating_slots > 0 || view.cluster_migrating {
        return still("slots are still migrating to it");
    }
    if would_migrate(view, slots.total as u64, slots.first_slot_replicas) {
        return still("upstream still has slots to move to it, so it will be promoted");
    }
    JoiningState::Stuck529
}

/// Upstream's `handleNodeJoining` produces a non-empty `migrateSlots` (and so promotes the
/// node) when the first slot lacks replicas, or when a voter holds more replicas than the
/// average share.
fn would_migrate(view: &ClusterView, slot_total: u64, first_slot_replicas: u64) -> bool {
    let Some(replicas) = view.slot_replica_count.filter(|r| *r > 0) else {
        return true;
    };
    if slot_total == 0 || first_slot_replicas < replicas {
        return true;
    }
    let voters: Vec<_> = view.members.iter().filter(|m| m.allow_vote).collect();
    let Ok(count) = u64::try_from(voters.len()) else {
        return true;
    };
    if count == 0 {
        return true;
    }
    let avg = (slot_total * replicas).div_ceil(count);
    voters.iter().any(|m| m.replica_slots > avg)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::probe::fixtures::settled;
    use crate::probe::{MemberView, NodeStatus};

    /// #529's cluster: 3 nodes, 64 slots × 3 replicas, evenly spread (every node holds a
    /// replica of every slot); 1002 and 1003 rejoined through the seed and stay Joining.
    pub(crate) fn issue_529() -> ClusterView {
        let mut v = settled("v2.2.4-20260313", 0);
        v.slots.as_mut().unwrap().first_slot_replicas = 3;
        v.members = [1001, 1002, 1003]
            .into_iter()
            .map(|id| MemberView {
                id,
                online: true,
                status: if id == 1001 {
                    NodeStatus::Joined
                } else {
                    NodeStatus::Joining
                },
                join: id != 1001,
                allow_vote: true,
                replica_slots: 64,
                leader_slots: if id == 1002 { 22 } else { 21 },
                learner_slots: 0,
                migrating_slots: 0,
            })
            .collect();
        for id in [1002, 1003] {
            let n = v.node_mut(id).unwrap();
            n.info_status = Some(NodeStatus::Joining);
            n.simple_status = Some(NodeStatus::Joining);
        }
        v
    }

    #[test]
    fn the_issue_529_state_is_recognised() {
        let v = issue_529();
        assert!(stuck_joining_529(&v, 1002));
        assert!(stuck_joining_529(&v, 1003));
        assert_eq!(joining_state(&v, 1001), JoiningState::NotJoining);
        assert!(!stuck_joining_529(&v, 1001));
        assert!(!stuck_joining_529(&v, 4242));
    }

    #[test]
    fn a_node_really_still_joining_is_never_accepted() {
        type Change = fn(&mut ClusterView);
        let cases: [(Change, &str); 11] = [
            (|v| v.members[1].replica_slots = 0, "no slot replica"),
            (|v| v.members[1].learner_slots = 2, "migrating"),
            (|v| v.members[1].migrating_slots = 1, "migrating"),
            (|v| v.cluster_migrating = true, "migrating"),
            (|v| v.members[1].join = false, "seed"),
            (|v| v.members[1].online = false, "online"),
            (
                |v| v.node_mut(1002).unwrap().config_version = Some(414),
                "caught up",
            ),
            (
                |v| {
                    v.node_mut(1002).unwrap().health =
                        HealthState::Failing("slot not ready".into());
                },
                "`/health`",
            ),
            (
                |v| {
                    // A 4th voter with nothing: 1001 holds more than its share, so upstream migrates.
                    v.members.push(MemberView {
                        id: 1004,
                        allow_vote: true,
                        ..MemberView::default()
                    });
                },
                "promoted",
            ),
            (
                |v| v.slots.as_mut().unwrap().first_slot_replicas = 2,
                "promoted",
            ),
            (
                |v| {
                    v.node_mut(1002).unwrap().version =
                        Some(crate::probe::fixtures::v("v2.1.0-20241224"));
                },
                "old cluster layer",
            ),
        ];
        for (change, why) in cases {
            let mut v = issue_529();
            change(&mut v);
            // Carried own answers change nothing when they were asked.
            assert_eq!(joining_state_carried(&v, 1002), joining_state(&v, 1002));
            match joining_state(&v, 1002) {
                JoiningState::StillJoining(reason) => {
                    assert!(reason.contains(why), "{why}: {reason}");
                }
                other => panic!("{why}: {other:?}"),
            }
        }
    }

    #[test]
    fn only_unasked_own_answers_are_carried() {
        let mut v = issue_529();
        let n = v.node_mut(1002).unwrap();
        n.info_answer = InfoAnswer::NotAsked;
        n.node_asked = false;
        n.config_version = None;
        assert!(matches!(
            joining_state(&v, 1002),
            JoiningState::StillJoining(_)
        ));
        assert_eq!(joining_state_carried(&v, 1002), JoiningState::Stuck529);
        // Asked and failing: never carried.
        v.node_mut(1002).unwrap().info_answer = InfoAnswer::LeaderNotFound;
        assert!(matches!(
            joining_state_carried(&v, 1002),
            JoiningState::StillJoining(_)
        ));
        // Its turn: `/cluster/info` asked and ok, `/cluster/node` not asked: carried.
        v.node_mut(1002).unwrap().info_answer = InfoAnswer::Ok;
        assert_eq!(joining_state_carried(&v, 1002), JoiningState::Stuck529);
        // `/cluster/node` asked but no config version (it failed): never carried.
        v.node_mut(1002).unwrap().node_asked = true;
        assert!(matches!(
            joining_state_carried(&v, 1002),
            JoiningState::StillJoining(_)
        ));
        let mut v = issue_529();
        v.node_mut(1002).unwrap().info_answer = InfoAnswer::NotAsked;
        v.node_mut(1002).unwrap().config_version = Some(1);
        assert!(matches!(
            joining_state_carried(&v, 1002),
            JoiningState::StillJoining(_)
        ));
    }

    // ---- edges found by cargo-mutants (MUTANTS.md) -------------------------------------

    #[test]
    fn the_old_cluster_layer_ends_just_before_v2_1_1() {
        for (version, stuck) in [
            ("v2.1.0-20241224", false),
            ("v2.1.1-20250110", true),
            ("v2.1.2-20250120", true),
        ] {
            let mut v = issue_529();
            v.node_mut(1002).unwrap().version = Some(crate::probe::fixtures::v(version));
            assert_eq!(stuck_joining_529(&v, 1002), stuck, "{version}");
        }
    }

    #[test]
    fn a_voter_below_its_share_does_not_make_upstream_migrate() {
        // 64 slots x 2 replicas over 3 voters: a share of ceil(128 / 3) = 43. One voter
        // below it and none above: upstream has nothing to move.
        let mut v = issue_529();
        v.slot_replica_count = Some(2);
        v.slots.as_mut().unwrap().first_slot_replicas = 2;
        for (m, held) in v.members.iter_mut().zip([43, 43, 42]) {
            m.replica_slots = held;
        }
        assert_eq!(joining_state(&v, 1002), JoiningState::Stuck529);
        // One replica above the share on any voter: upstream migrates.
        v.members[0].replica_slots = 44;
        assert!(matches!(
            joining_state(&v, 1002),
            JoiningState::StillJoining(why) if why.contains("promoted")
        ));
    }

    #[test]
    fn an_unknown_or_zero_replica_count_is_never_stuck() {
        // The node itself is no voter and the voters hold nothing, so only the replica
        // count decides: unknown or 0 is no evidence that upstream has nothing to move.
        for count in [None, Some(0)] {
            let mut v = issue_529();
            v.slot_replica_count = count;
            for m in &mut v.members {
                m.allow_vote = m.id == 1001;
                if m.id == 1001 {
                    m.replica_slots = 0;
                }
            }
            assert!(
                matches!(
                    joining_state(&v, 1002),
                    JoiningState::StillJoining(ref why) if why.contains("promoted")
                ),
                "{count:?}: {:?}",
                joining_state(&v, 1002)
            );
        }
        // The same cluster with a known count of 3 is the stuck state.
        let mut v = issue_529();
        for m in &mut v.members {
            m.allow_vote = m.id == 1001;
            if m.id == 1001 {
                m.replica_slots = 0;
            }
        }
        assert_eq!(joining_state(&v, 1002), JoiningState::Stuck529);
    }
}
