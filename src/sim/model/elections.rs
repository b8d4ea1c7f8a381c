//! Elections of the cluster model (facts §4.4): slot leaders (quorum = replicas/2+1 of online
//! replicas), the config-raft leader ("controller", majority of alive members) and what
//! happens when that majority is lost.

use super::{Cluster, Timer, timing};

impl Cluster {
    /// With fewer than a majority of members alive the config raft has no leader and the slot
    /// groups whose leader is gone cannot elect one: slots Candidate, `/health` 500 on ≥ v2.1.4,
    /// `/cluster/info` 400 (brief; facts §4.4 quorum = n/2+1).
    pub(super) fn check_quorum(&mut self, now: u64) {
        let members: Vec<u64> = self.config.nodes.iter().map(|n| n.id).collect();
        let alive = members
            .iter()
            .filter(|id| self.node(**id).is_some_and(super::Node::alive))
            .count();
        if alive > members.len() / 2 {
            return;
        }
        if self.config.controller != 0 {
            self.config.controller = 0;
            let e = self.emit(now, None, "controller");
            e.to = Some("none".into());
            e.detail = Some("quorum lost".into());
        }
        let mut lost = 0;
        for i in 0..self.config.slots.len() {
            let leader = self.config.slots[i].leader;
            if self.config.slots[i].status == 0 && !self.is_connected(leader) {
                let s = &mut self.config.slots[i];
                s.status = 1;
                s.expect_leader = 0;
                s.migrate_from = 0;
                s.migrate_to = 0;
                lost += 1;
            }
        }
        if lost > 0 {
            self.bump();
            let e = self.emit(now, None, "slots");
            e.to = Some("candidate".into());
            e.detail = Some(format!("{lost} slot(s) without quorum"));
            self.schedule(now + timing::SLOT_ELECT, Timer::SlotElect);
        }
    }

    /// Re-elects Candidate slots whose online replicas form a quorum (facts §4.4).
    pub(super) fn elect_slots(&mut self, now: u64) {
        if self.controller().is_none() {
            if self.config.slots.iter().any(|s| s.status == 1) {
                self.schedule(now + timing::RETRY, Timer::SlotElect);
            }
            return;
        }
        let mut elected = 0;
        for i in 0..self.config.slots.len() {
            let s = &self.config.slots[i];
            if s.status != 1 {
                continue;
            }
            let up: Vec<u64> = s
                .replicas
                .iter()
                .copied()
                .filter(|r| self.is_connected(*r) && self.config.is_online(*r))
                .collect();
            if up.len() < s.replicas.len() / 2 + 1 {
                continue;
            }
            let leader = if up.contains(&s.expect_leader) {
                s.expect_leader
            } else {
                up[0]
            };
            let s = &mut self.config.slots[i];
            s.leader = leader;
            s.term += 1;
            s.status = 0;
            s.expect_leader = 0;
            elected += 1;
        }
        if elected > 0 {
            self.bump();
            self.emit(now, None, "slots").to = Some("elected".into());
        }
    }

    /// Config-raft election among alive members; needs a majority (facts §4.4).
    pub(super) fn elect_controller(&mut self, now: u64) {
        if self.controller().is_some() {
            return;
        }
        let members: Vec<u64> = self.config.nodes.iter().map(|n| n.id).collect();
        let alive: Vec<u64> = members
            .iter()
            .copied()
            .filter(|id| self.node(*id).is_some_and(super::Node::alive))
            .collect();
        if alive.len() < members.len() / 2 + 1 {
            return;
        }
        let leader = alive
            .iter()
            .copied()
            .find(|id| self.is_connected(*id))
            .unwrap_or(alive[0]);
        self.config.controller = leader;
        self.config.term += 1;
        // First boot: every slot gets a leader among the connected replicas.
        for i in 0..self.config.slots.len() {
            if self.config.slots[i].leader == 0 {
                let s = &self.config.slots[i];
                let pick = s
                    .replicas
                    .iter()
                    .copied()
                    .find(|r| self.is_connected(*r) || *r == leader)
                    .unwrap_or(leader);
                let s = &mut self.config.slots[i];
                s.leader = pick;
                s.term = s.term.max(1);
            }
        }
        self.bump();
        self.emit(now, None, "controller").to = Some(leader.to_string());
        self.schedule(now + timing::SLOT_ELECT, Timer::SlotElect);
    }
}
