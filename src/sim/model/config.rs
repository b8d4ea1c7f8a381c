//! The cluster config as WuKongIM stores it (facts §3.6 `types.Config`) and the process phases
//! of a simulated node (the `state` event values).

use std::sync::Arc;

/// Process/membership phase of a node; the names are the `state` event values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Stopped,
    /// Process started, API port not open yet.
    Booting,
    /// API open, answering from its stale persisted view (facts §4.3).
    Stale,
    /// The controller marked it online.
    Online,
    /// Config caught up, leaders migrated back.
    Settled,
    Crashed,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Stopped => "stopped",
            Phase::Booting => "booting",
            Phase::Stale => "stale",
            Phase::Online => "online",
            Phase::Settled => "settled",
            Phase::Crashed => "crashed",
        }
    }
    pub fn api_open(self) -> bool {
        matches!(self, Phase::Stale | Phase::Online | Phase::Settled)
    }
    pub fn running(self) -> bool {
        !matches!(self, Phase::Stopped | Phase::Crashed)
    }
}

/// A node entry of the cluster config (facts §3.6 `nodes[]`).
#[derive(Debug, Clone, Default)]
pub struct CfgNode {
    pub id: u64,
    pub cluster_addr: String,
    pub api_addr: String,
    pub online: bool,
    pub offline_count: u32,
    pub last_offline: i64,
    pub created_at: i64,
    /// 1 WillJoin, 2 Joining, 3 Joined (facts §3.6; upstream `types.NodeStatus`).
    pub status: u8,
    /// Joined through a seed (`ProposeJoin` sets `Join: true`, upstream `rpc_server.go`).
    pub join: bool,
}

/// Node status values of the cluster config (facts §3.6).
pub mod node_status {
    pub const WILL_JOIN: u8 = 1;
    pub const JOINING: u8 = 2;
    pub const JOINED: u8 = 3;

    /// `status_format` of `/cluster/node[s]` (upstream `pkg/cluster/cluster/model.go`).
    pub fn format(status: u8) -> &'static str {
        match status {
            WILL_JOIN => "将加入",
            JOINING => "加入中",
            JOINED => "已加入",
            _ => "",
        }
    }
}

/// A slot of the cluster config (facts §3.6 `slots[]`); status 0 Normal, 1 Candidate.
#[derive(Debug, Clone, Default)]
pub struct Slot {
    pub id: u32,
    pub leader: u64,
    pub term: u32,
    pub replicas: Vec<u64>,
    pub status: u8,
    pub expect_leader: u64,
    pub migrate_from: u64,
    pub migrate_to: u64,
}

/// The cluster config (`types.Config`); `controller` is not serialized (facts §3.6).
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub version: u64,
    pub term: u32,
    pub controller: u64,
    pub slot_count: u32,
    pub slot_replica_count: u32,
    pub channel_replica_count: u32,
    pub nodes: Vec<CfgNode>,
    pub slots: Vec<Slot>,
}

impl Config {
    pub fn node(&self, id: u64) -> Option<&CfgNode> {
        self.nodes.iter().find(|n| n.id == id)
    }
    fn node_mut(&mut self, id: u64) -> Option<&mut CfgNode> {
        self.nodes.iter_mut().find(|n| n.id == id)
    }
    pub fn is_online(&self, id: u64) -> bool {
        self.node(id).is_some_and(|n| n.online)
    }
    /// The controller's config alone says settled: every slot led, Normal, not migrating;
    /// every node online and Joined. (`Cluster::settled` adds the nodes' own state.)
    pub fn is_settled(&self) -> bool {
        self.slots_settled()
            && self
                .nodes
                .iter()
                .all(|n| n.online && n.status == node_status::JOINED)
    }
    /// Every slot led, Normal and not migrating.
    pub fn slots_settled(&self) -> bool {
        !self.slots.is_empty()
            && self
                .slots
                .iter()
                .all(|s| s.leader != 0 && s.status == 0 && s.migrate_to == 0 && s.migrate_from == 0)
    }
    pub fn set_online(&mut self, id: u64, online: bool, now_secs: i64) {
        if let Some(n) = self.node_mut(id) {
            if !online && n.online {
                n.offline_count += 1;
                n.last_offline = now_secs;
            }
            n.online = online;
        }
    }
}

/// A node's local copy of the config (facts §4.3).
#[derive(Debug, Clone)]
pub enum View {
    /// First boot, nothing persisted: `/health` says `no slots`.
    Empty,
    /// Following the controller.
    Live,
    /// The snapshot persisted when it stopped or lost the controller.
    Frozen(Arc<Config>),
}
