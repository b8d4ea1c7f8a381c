//! Transitions of the cluster model after a node is back: rejoining the controller,
//! the join steps of a new member, slot replicas, config catch-up and leader migration
//! back (facts §4.2–§4.4, §11.5).

use std::sync::Arc;

use super::faults::ms;
use super::split::SplitRole;
use super::{Cluster, Phase, Timer, View, node_status, timing};

impl Cluster {
    /// End of the stale phase: the node reaches the controller and is marked online.
    pub(super) fn rejoin(&mut self, id: u64, now: u64) {
        let Some(n) = self.node(id) else { return };
        if !n.alive() {
            return;
        }
        let g = n.generation;
        if n.faults.leader_lost {
            // Held back until `clear`, which schedules the rejoin again.
            return;
        }
        // It talks to the peers now, so it may complete a config-raft quorum.
        self.node_mut(id).connected = true;
        self.elect_controller(now);
        if self.controller().is_none() {
            self.node_mut(id).connected = false;
            self.log(id, now, "WARN", "leader not found");
            self.schedule(now + timing::RETRY * 2, Timer::Rejoin(id, g));
            return;
        }
        let ctrl = self.config.controller;
        if self.node_mut(id).faults.netsplit.contains(&ctrl) {
            self.node_mut(id).connected = false;
            self.log(
                id,
                now,
                "WARN",
                &format!("connect not authed (node {ctrl})"),
            );
            self.schedule(now + timing::RETRY * 2, Timer::Rejoin(id, g));
            return;
        }
        if self.split_role_at_rejoin(id) == SplitRole::Island {
            // #408: it reached the rebuilt cluster while another node was joining.
            self.node_mut(id).connected = false;
            self.become_island(id, now);
            return;
        }
        let n = self.node_mut(id);
        n.knows_controller = true;
        n.disconnected_since = None;
        let faults = n.faults.clone();
        if !self.is_member(id) {
            // Joined through the seed (facts §4.2, upstream `rpc_server.go` ProposeJoin):
            // WillJoin with `join: true`, then Joining, then Joined (`join_step`).
            let created = self.wall_secs(now);
            let mut entry = self.cfg_node(id, created);
            entry.status = node_status::WILL_JOIN;
            entry.join = true;
            entry.online = true;
            self.config.nodes.push(entry);
            self.config.nodes.sort_by_key(|n| n.id);
            self.bump();
            // It receives the config once, then lags behind until it is Joined and caught up.
            self.node_mut(id).view = View::Frozen(Arc::new(self.config.clone()));
            self.emit(now, Some(id), "join").to = Some("will_join".into());
            self.set_phase(id, Phase::Online, now);
            self.log(
                id,
                now,
                "INFO",
                "joined through the seed, waiting to be admitted",
            );
            self.schedule(now + timing::JOIN_STEP, Timer::JoinStep(id, g));
            return;
        }
        if !self.config.is_online(id) {
            let secs = self.wall_secs(now);
            self.config.set_online(id, true, secs);
            self.bump();
        }
        if faults.stuck_joining {
            self.mark_stuck_joining(id, now);
        } else if self
            .config
            .node(id)
            .is_some_and(|cn| cn.status != node_status::JOINED)
        {
            // Restarted in the middle of its join: the controller carries on with it.
            self.set_phase(id, Phase::Online, now);
            self.schedule(now + timing::JOIN_STEP, Timer::JoinStep(id, g));
            return;
        }
        self.set_phase(id, Phase::Online, now);
        self.log(id, now, "INFO", "node online, syncing cluster config");
        self.schedule(
            now + timing::CATCH_UP + ms(faults.slow_catch_up_secs),
            Timer::CatchUp(id, g),
        );
        if self.config.slots.iter().any(|s| s.status == 1) {
            self.schedule(now + timing::SLOT_ELECT, Timer::SlotElect);
        }
    }

    /// The controller's join handling (upstream `handle_node_joining.go`): WillJoin →
    /// Joining, then `ProposeJoined` gives it slot replicas and makes it Joined. With the
    /// `stuck-joining` fault `ProposeJoined` never runs (#529: only when `migrateSlots` is
    /// non-empty) although it gets its replicas; with `slow-join` it stays Joining longer,
    /// without replicas and not caught up.
    pub(super) fn join_step(&mut self, id: u64, now: u64) {
        let Some(status) = self.config.node(id).map(|n| n.status) else {
            return;
        };
        let n = self.node_mut(id);
        let (g, faults) = (n.generation, n.faults.clone());
        if status == node_status::WILL_JOIN {
            self.set_status(id, node_status::JOINING);
            self.emit(now, Some(id), "join").to = Some("joining".into());
            self.schedule(
                now + timing::JOIN_STEP + ms(faults.slow_join_secs),
                Timer::JoinStep(id, g),
            );
            return;
        }
        self.give_replicas(id);
        if faults.stuck_joining {
            self.bump();
            self.log(
                id,
                now,
                "WARN",
                "node joining: no slots to migrate, joined not proposed",
            );
        } else {
            self.set_status(id, node_status::JOINED);
            self.emit(now, Some(id), "join").to = Some("joined".into());
        }
        self.schedule(
            now + timing::CATCH_UP + ms(faults.slow_catch_up_secs),
            Timer::CatchUp(id, g),
        );
    }

    fn set_status(&mut self, id: u64, status: u8) {
        if let Some(n) = self.config.nodes.iter_mut().find(|n| n.id == id) {
            n.status = status;
        }
        self.bump();
    }

    /// Upstream #529: the node's entry says Joining (and `join: true`) and stays so.
    pub(super) fn mark_stuck_joining(&mut self, id: u64, now: u64) {
        let Some(cn) = self.config.nodes.iter_mut().find(|n| n.id == id) else {
            return;
        };
        if cn.status == node_status::JOINING && cn.join {
            return;
        }
        cn.status = node_status::JOINING;
        cn.join = true;
        self.bump();
        self.emit(now, Some(id), "join").to = Some("joining".into());
    }

    /// Slot replicas for a newly joined node: every slot while slots have fewer replicas than
    /// configured (as learners), else a fair share taken from the others (simplified from
    /// `handle_node_joining.go`).
    fn give_replicas(&mut self, id: u64) {
        let want = self.opts.replicas as usize;
        let members = self.config.nodes.len().max(1);
        let pos = self
            .config
            .nodes
            .iter()
            .position(|n| n.id == id)
            .unwrap_or(0);
        let short = self
            .config
            .slots
            .first()
            .is_some_and(|s| s.replicas.len() < want);
        for (i, s) in self.config.slots.iter_mut().enumerate() {
            if s.replicas.contains(&id) {
                continue;
            }
            if short {
                s.replicas.push(id);
            } else if i % members == pos
                && let Some(k) = s.replicas.iter().rposition(|r| *r != s.leader)
            {
                s.replicas[k] = id;
            }
        }
    }

    /// Config catch-up (the node has applied the controller log: `rejoined`), then the
    /// balancer moves this node's home slots back (facts §4.4) unless some node is not Joined
    /// or some slot is not Normal (upstream `handle_slotleader_balance.go`).
    pub(super) fn catch_up(&mut self, id: u64, now: u64) {
        let n = self.node_mut(id);
        n.view = View::Live;
        let (g, faults) = (n.generation, n.faults.clone());
        // Its `rejoined` event (when this makes it so) first, then the #310 heal check,
        // which also needs every member Joined.
        self.note_rejoins(now);
        self.check_split_healed(now);
        let balance = self
            .config
            .nodes
            .iter()
            .all(|n| n.status == node_status::JOINED)
            && self.config.slots.iter().all(|s| s.status == 0);
        let mut moving = 0;
        if balance {
            for s in &mut self.config.slots {
                if s.replicas.first() == Some(&id)
                    && s.leader != id
                    && s.leader != 0
                    && s.migrate_to == 0
                {
                    s.migrate_from = s.leader;
                    s.migrate_to = id;
                    moving += 1;
                }
            }
            if moving == 0 && faults.slow_migrate_secs.is_some() {
                // `slow-migrate` needs a move to slow down: one slot it replicates comes over.
                if let Some(s) = self.config.slots.iter_mut().find(|s| {
                    s.replicas.contains(&id) && s.leader != id && s.leader != 0 && s.migrate_to == 0
                }) {
                    s.migrate_from = s.leader;
                    s.migrate_to = id;
                    moving = 1;
                }
            }
        }
        if moving == 0 {
            self.set_phase(id, Phase::Settled, now);
            return;
        }
        self.bump();
        let e = self.emit(now, Some(id), "slots");
        e.to = Some("migrating".into());
        e.detail = Some(format!("{moving} slot(s) to {id}"));
        self.schedule(
            now + timing::MIGRATE + ms(faults.slow_migrate_secs),
            Timer::MigrateDone(id, g),
        );
    }

    pub(super) fn migrate_done(&mut self, id: u64, now: u64) {
        for s in &mut self.config.slots {
            if s.migrate_to == id {
                s.leader = id;
                s.term += 1;
                s.migrate_from = 0;
                s.migrate_to = 0;
            }
        }
        self.bump();
        self.emit(now, Some(id), "slots").to = Some("balanced".into());
        self.set_phase(id, Phase::Settled, now);
    }
}
