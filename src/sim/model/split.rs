//! The #310 state and its way out (issue #19 point 2): a cluster whose nodes were all
//! restarted at once across the cluster-layer rewrite (v2.1.0 → v2.1.1, facts §8.2:
//! `pkg/cluster/clusterserver` → `pkg/cluster/cluster`) and came up each on its own.
//!
//! Modelled from upstream's behaviour, not from wkctl's tables:
//! - #310: v2.0.10 → v2.1.2, "改完全部down，然后up" (all down, then all up): the console
//!   shows 1 node of 3 ("三台只显示1台"), though each node answers and looks fine. Here every
//!   node that starts together with the others answers from a cluster of its own (an
//!   *island*: its `/cluster/nodes`, `/cluster/simpleNodes` and `/cluster/info` list only
//!   itself, it claims the controller, `/health` is ok) and never reaches a peer.
//! - The maintainer's fix (#310, facts §5.4): "先启动1001节点，再启动其他两个节点" (start
//!   1001 first, then the others). The lowest id started while every other node is down
//!   rebuilds the cluster from its own data (the *seed*: a one-node cluster it leads).
//! - #408: after the first nodes, "不能同一时间在启动…需要第4个节点启动完成之后，在启动第5个"
//!   (not at the same time: the next only once the previous finished starting). A node
//!   reaching the seed joins it through the seed path (WillJoin → Joining → Joined, facts
//!   §4.2) only while no other join is under way; one that reaches it during another's join
//!   becomes an island too.
//!
//! Every decision is an event (`split`: `broken`, `island`, `seeded`, `healed`), next to
//! the usual `stop`, `state`, `join` and `rejoined` events, so tests prove the order.

use std::sync::Arc;

use super::{Build, Cluster, Config, Slot, View, node_status};

/// How far a split cluster is from one cluster again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub stage: SplitStage,
    /// The members before the split: the split is healed when all are Joined again.
    pub members: Vec<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitStage {
    /// Every running node is an island; nobody rebuilt the cluster yet.
    Broken,
    /// The seed leads a rebuilt cluster; the others join it one at a time.
    Rebuilding,
}

/// What a node starting (or reaching out to its peers) in a split cluster becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SplitRole {
    /// Not split, or already a member of the rebuilt cluster: the usual timeline.
    Normal,
    /// Rebuilds the cluster from its own data.
    Seed,
    /// Answers from a cluster of its own and never reaches a peer.
    Island,
}

/// Last tag before the cluster-layer rewrite (facts §8.2).
fn before_rewrite(v: &Build) -> bool {
    v.triple() <= (2, 1, 0)
}

impl Cluster {
    /// `wksim ctl restart-all [--version V]`, after every node was stopped: all nodes start
    /// together (`docker compose up -d` on every host at once). Across the rewrite, or when
    /// the cluster is already split, every node comes up as an island (#310).
    pub fn start_all(&mut self, version: Option<&Build>, now: u64) -> Result<(), String> {
        let ids: Vec<u64> = self.nodes.iter().map(|n| n.id).collect();
        let crosses = version.is_some_and(|to| {
            !before_rewrite(to) && self.nodes.iter().any(|n| before_rewrite(&n.version))
        });
        if crosses || self.split.is_some() {
            let members = match &self.split {
                Some(s) => s.members.clone(),
                None => self.config.nodes.iter().map(|n| n.id).collect(),
            };
            self.split = Some(Split {
                stage: SplitStage::Broken,
                members,
            });
            self.config.controller = 0;
            self.emit(now, None, "split").to = Some("broken".into());
            if let Some(e) = self.events.last_mut() {
                e.detail = Some(if crosses {
                    "every node started at once across the v2.1.0/v2.1.1 cluster-layer rewrite (#310)".into()
                } else {
                    "every node started at once while the cluster was split (#408)".into()
                });
            }
        }
        self.together = true;
        let mut result = Ok(());
        for id in ids {
            if let Err(e) = self.start(id, version.cloned(), now) {
                result = Err(e);
            }
        }
        self.together = false;
        result
    }

    /// The role of `id` at its start (`boot`).
    pub(super) fn split_role_at_boot(&self, id: u64) -> SplitRole {
        let Some(split) = &self.split else {
            return SplitRole::Normal;
        };
        if self.together {
            return SplitRole::Island;
        }
        match split.stage {
            SplitStage::Broken => {
                let lowest = split.members.iter().min().copied() == Some(id);
                let alone = self.nodes.iter().all(|n| n.id == id || !n.phase.running());
                if lowest && alone {
                    SplitRole::Seed
                } else {
                    SplitRole::Island
                }
            }
            // Decided when it reaches its peers (`split_role_at_rejoin`).
            SplitStage::Rebuilding => SplitRole::Normal,
        }
    }

    /// A node of a rebuilding cluster reaching its peers: it may join only when the seed
    /// leads and no other join is under way (#408).
    pub(super) fn split_role_at_rejoin(&self, id: u64) -> SplitRole {
        match &self.split {
            Some(s) if s.stage == SplitStage::Rebuilding && !self.is_member(id) => {
                let joining = self
                    .config
                    .nodes
                    .iter()
                    .any(|n| n.status != node_status::JOINED || !self.rejoined(n.id));
                if joining {
                    SplitRole::Island
                } else {
                    SplitRole::Normal
                }
            }
            Some(s) if s.stage == SplitStage::Broken => SplitRole::Island,
            _ => SplitRole::Normal,
        }
    }

    /// The node answers from a cluster of its own from now on (until it is stopped).
    pub(super) fn become_island(&mut self, id: u64, now: u64) {
        let created = self.wall_secs(now);
        let mut me = self.cfg_node(id, created);
        me.online = true;
        let own = Config {
            version: 1,
            term: 1,
            controller: id,
            slot_count: self.opts.slot_count,
            slot_replica_count: self.opts.replicas,
            channel_replica_count: self.opts.replicas,
            nodes: vec![me],
            slots: (0..self.opts.slot_count)
                .map(|i| Slot {
                    id: i,
                    leader: id,
                    term: 1,
                    replicas: vec![id],
                    ..Slot::default()
                })
                .collect(),
        };
        let n = self.node_mut(id);
        n.island = true;
        n.connected = false;
        n.knows_controller = false;
        n.view = View::Frozen(Arc::new(own));
        let e = self.emit(now, Some(id), "split");
        e.to = Some("island".into());
        e.detail = Some("started with the others: it sees only itself (#310)".into());
        self.log(
            id,
            now,
            "WARN",
            "【cluster】no peer in the cluster config: running as a single-node cluster",
        );
    }

    /// The lowest id started alone: the cluster config is rebuilt around it, as a one-node
    /// cluster that it will lead once its config raft elects it.
    pub(super) fn seed(&mut self, id: u64, now: u64) {
        let created = self.wall_secs(now);
        self.config.nodes = vec![self.cfg_node(id, created)];
        self.config.controller = 0;
        self.rebuild_replicas();
        for s in &mut self.config.slots {
            s.leader = 0;
            s.status = 0;
            s.expect_leader = 0;
            s.migrate_from = 0;
            s.migrate_to = 0;
        }
        self.bump();
        if let Some(s) = &mut self.split {
            s.stage = SplitStage::Rebuilding;
        }
        self.node_mut(id).view = View::Frozen(Arc::new(self.config.clone()));
        self.emit(now, Some(id), "split").to = Some("seeded".into());
        self.log(
            id,
            now,
            "INFO",
            "【cluster】started alone: cluster config rebuilt from this node, the others join it",
        );
    }

    /// After a node caught up: healed once every member of before the split is Joined and
    /// rejoined in the rebuilt cluster.
    pub(super) fn check_split_healed(&mut self, now: u64) {
        let Some(s) = &self.split else { return };
        if s.stage != SplitStage::Rebuilding {
            return;
        }
        let all = s.members.iter().all(|id| {
            self.config
                .node(*id)
                .is_some_and(|n| n.status == node_status::JOINED)
                && self.rejoined(*id)
        });
        if all {
            self.split = None;
            let detail = format!(
                "{} of {} nodes in one cluster",
                self.config.nodes.len(),
                self.nodes.len()
            );
            let e = self.emit(now, None, "split");
            e.to = Some("healed".into());
            e.detail = Some(detail);
        }
    }
}

#[cfg(test)]
mod tests;
