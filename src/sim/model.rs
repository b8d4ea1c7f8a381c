//! The pure cluster model: the controller's authoritative config, each node's process phase and
//! local (possibly stale) copy of the config, and a timer queue. No I/O and no clock: every method
//! takes `now` in simulated milliseconds, so unit tests drive it with a fake clock.
//!
//! Simulated time runs `speed` times faster than real time; the driver converts deadlines.
//! Transition handlers live in `timeline.rs`, fault handling in `model_faults.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub mod builds;
pub mod clients;
pub mod config;
mod elections;
mod fault_effects;
pub mod faults;
pub mod logs;
mod rejoin;
pub mod split;
mod timeline;

#[cfg(test)]
mod fixture;
#[cfg(test)]
mod tests;

use builds::Behaviour;
pub use builds::Build;
pub use config::{CfgNode, Config, Phase, Slot, View, node_status};
use faults::Faults;

/// Timeline defaults in simulated ms (facts §4.2–§4.4, §11.5); divided by `--speed` in real time.
pub mod timing {
    pub const GRACEFUL_STOP: u64 = 1000;
    /// pongMaxTick 30 × 200 ms controller tick (facts §4.2).
    pub const OFFLINE_AFTER: u64 = 6000;
    pub const SLOT_ELECT: u64 = 1000;
    pub const CONTROLLER_ELECT: u64 = 2000;
    pub const BOOT: u64 = 2000;
    pub const STALE: u64 = 1500;
    pub const CATCH_UP: u64 = 500;
    pub const MIGRATE: u64 = 1000;
    pub const CRASH_AFTER_API: u64 = 2500;
    pub const CRASH_RESTART: u64 = 1000;
    /// `MustWaitAllSlotsReady(1 minute)` (facts §4.1).
    pub const SLOT_WAIT_PANIC: u64 = 60_000;
    /// Bounded wait of a fan-out to a black-holed peer (facts §3.4: no client timeout upstream).
    pub const PEER_TIMEOUT: u64 = 3000;
    pub const RETRY: u64 = 500;
    /// One step of a seed join: WillJoin → Joining → Joined (controller event loop).
    pub const JOIN_STEP: u64 = 1000;
}

#[derive(Debug, Clone)]
pub struct Node {
    pub id: u64,
    pub api_port: u16,
    pub cluster_port: u16,
    /// The build (image tag) the process runs.
    pub version: Build,
    pub phase: Phase,
    /// A graceful stop is under way.
    pub stopping: bool,
    /// Incarnation counter; timers of an older incarnation are ignored.
    pub generation: u64,
    pub started_at: u64,
    pub view: View,
    /// Has a session with the controller (controller counts it alive).
    pub connected: bool,
    pub knows_controller: bool,
    pub disconnected_since: Option<u64>,
    pub faults: Faults,
    pub log: Vec<String>,
    /// Answers from a cluster of its own, reaching no peer (the #310 state, `split.rs`).
    pub island: bool,
}

impl Node {
    /// How this node's build behaves (wksim's own table, `builds.rs`).
    pub fn caps(&self) -> Behaviour {
        self.version.behaviour()
    }
    /// Process up, API open and able to talk to peers: counts for a config-raft quorum.
    pub fn alive(&self) -> bool {
        self.phase.api_open() && !self.faults.partition && !self.faults.no_rejoin && !self.island
    }
}

/// One line of `events.jsonl`; `at` is simulated ms, turned into `ts_ms` by the driver.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub at: u64,
    pub node: Option<u64>,
    pub kind: &'static str,
    pub from: Option<String>,
    pub to: Option<String>,
    pub version: Option<String>,
    pub detail: Option<String>,
    /// `cluster_settled` of `stop` events: the sim's own strict judgement at that moment.
    pub settled: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timer {
    StopDone(u64, u64),
    BootDone(u64, u64),
    BootPanic(u64, u64),
    Rejoin(u64, u64),
    CatchUp(u64, u64),
    MigrateDone(u64, u64),
    Crash(u64, u64),
    CrashRestart(u64, u64),
    SlotWait(u64, u64),
    MarkOffline(u64),
    JoinStep(u64, u64),
    /// Client movement and counter integration (`clients.rs`).
    Clients,
    SlotElect,
    ControllerElect,
}

/// Static settings of the simulated cluster.
#[derive(Debug, Clone)]
pub struct ModelOpts {
    pub speed: f64,
    /// Wall clock (Unix ms) at simulated time 0.
    pub epoch_ms: i64,
    pub release_style: bool,
    pub token: Option<String>,
    pub slot_count: u32,
    pub replicas: u32,
    pub host: String,
    /// `serve --external`: processes are run by `wksim node` agents (one container per node),
    /// so a crashed node is restarted by its container's restart policy, not by the model.
    pub external: bool,
    /// Per-node addresses as peers see them (external mode: `nodeN.wk.local:11110`,
    /// `http://nodeN.wk.local:5001`), by node id.
    pub addrs: BTreeMap<u64, (String, String)>,
}

/// The whole simulated cluster.
#[derive(Debug)]
pub struct Cluster {
    pub opts: ModelOpts,
    pub config: Config,
    pub nodes: Vec<Node>,
    pub(super) timers: BTreeMap<(u64, u64), Timer>,
    pub(super) seq: u64,
    pub events: Vec<Event>,
    /// Nodes whose listeners must be reconciled by the server.
    pub dirty: BTreeSet<u64>,
    /// `/cluster/info` body for one config version (serialized once, facts §3.6).
    pub(super) info_cache: Option<(u64, Arc<str>)>,
    /// Clients, message counters and stored messages (`clients.rs`, issue #18).
    pub traffic: clients::Traffic,
    /// The #310 state and its recovery (`split.rs`); `None` = one cluster.
    pub split: Option<split::Split>,
    /// `start_all` is starting every node at once.
    pub(super) together: bool,
    /// The nodes [`Cluster::rejoined`] held for at the last transition: a node entering
    /// this set gets its `rejoined` event, whichever transition made it so.
    pub(super) rejoined_nodes: BTreeSet<u64>,
}

/// Identity of one node given to `Cluster::new`.
#[derive(Debug, Clone, Copy)]
pub struct NodeSpec {
    pub id: u64,
    pub api_port: u16,
    pub cluster_port: u16,
}

impl Cluster {
    /// A fresh cluster: the first `joined` nodes are members and boot at `now` (first boot, no
    /// persisted config); the rest are not members and not running.
    pub fn new(
        opts: ModelOpts,
        specs: &[NodeSpec],
        joined: usize,
        version: &Build,
        now: u64,
    ) -> Cluster {
        let nodes = specs
            .iter()
            .map(|s| Node {
                id: s.id,
                api_port: s.api_port,
                cluster_port: s.cluster_port,
                version: version.clone(),
                phase: Phase::Stopped,
                stopping: false,
                generation: 0,
                started_at: 0,
                view: View::Empty,
                connected: false,
                knows_controller: false,
                disconnected_since: None,
                faults: Faults::default(),
                log: Vec::new(),
                island: false,
            })
            .collect();
        let mut c = Cluster {
            config: Config {
                version: 1,
                slot_count: opts.slot_count,
                slot_replica_count: opts.replicas,
                channel_replica_count: opts.replicas,
                ..Config::default()
            },
            opts,
            nodes,
            timers: BTreeMap::new(),
            seq: 0,
            events: Vec::new(),
            dirty: BTreeSet::new(),
            info_cache: None,
            traffic: clients::Traffic::default(),
            split: None,
            together: false,
            rejoined_nodes: BTreeSet::new(),
        };
        c.traffic.pending = c.traffic.per_node * joined.min(specs.len()) as u64;
        let created = c.wall_secs(now);
        c.config.nodes = specs[..joined.min(specs.len())]
            .iter()
            .map(|s| c.cfg_node(s.id, created))
            .collect();
        c.rebuild_replicas();
        if !c.opts.external {
            for s in &specs[..joined.min(specs.len())] {
                c.boot(s.id, now);
            }
        }
        c
    }

    pub(super) fn cfg_node(&self, id: u64, created_at: i64) -> CfgNode {
        let n = &self.nodes[self.idx(id).unwrap_or(0)];
        let (cluster_addr, api_addr) = self.opts.addrs.get(&id).cloned().unwrap_or_else(|| {
            (
                format!("{}:{}", self.opts.host, n.cluster_port),
                format!("http://{}:{}", self.opts.host, n.api_port),
            )
        });
        CfgNode {
            id,
            cluster_addr,
            api_addr,
            created_at,
            status: node_status::JOINED,
            ..CfgNode::default()
        }
    }

    /// Slot i is replicated on `replicas` members round-robin from member i (`replicas[0]` is the
    /// slot's preferred "home" leader, used by the balancer when a node comes back).
    pub(super) fn rebuild_replicas(&mut self) {
        let members: Vec<u64> = self.config.nodes.iter().map(|n| n.id).collect();
        let r = (self.opts.replicas as usize).clamp(1, members.len().max(1));
        let old = std::mem::take(&mut self.config.slots);
        self.config.slots = (0..self.opts.slot_count)
            .map(|i| {
                let replicas: Vec<u64> = (0..r)
                    .map(|k| members[(i as usize + k) % members.len()])
                    .collect();
                let prev = old.get(i as usize).cloned().unwrap_or_default();
                Slot {
                    id: i,
                    replicas,
                    ..prev
                }
            })
            .collect();
    }

    pub fn idx(&self, id: u64) -> Option<usize> {
        // Ids are assigned consecutively from --first-id, so try the fast path first.
        let first = self.nodes.first()?.id;
        let guess = usize::try_from(id.checked_sub(first)?).ok()?;
        match self.nodes.get(guess) {
            Some(n) if n.id == id => Some(guess),
            _ => self.nodes.iter().position(|n| n.id == id),
        }
    }
    pub fn node(&self, id: u64) -> Option<&Node> {
        self.idx(id).map(|i| &self.nodes[i])
    }
    pub(super) fn node_mut(&mut self, id: u64) -> &mut Node {
        let i = self.idx(id).expect("node id checked by caller"); // ok: internal invariant
        &mut self.nodes[i]
    }
    pub fn is_member(&self, id: u64) -> bool {
        self.config.node(id).is_some()
    }

    /// Version string as this build reports it (facts §7.4: docker with `v`, release without;
    /// a `-dev` image reports the release it was built after).
    pub fn version_string(&self, v: &Build) -> String {
        v.reported(self.opts.release_style)
    }

    /// The sim's own strict "cluster settled": a controller exists; every member is up, online,
    /// Joined, knows the controller and has caught up (live view); every slot has a leader, is
    /// Normal and not migrating. Recorded on every `stop` event (issue 11 hole 12).
    pub fn settled(&self) -> bool {
        self.controller().is_some()
            && self.config.slots_settled()
            && self.config.nodes.iter().all(|cn| {
                cn.online && (cn.status == node_status::JOINED || self.stuck_by_529(cn.id))
            })
            && self.config.nodes.iter().all(|cn| {
                self.node(cn.id).is_some_and(|n| {
                    n.phase.api_open()
                        && n.connected
                        && n.knows_controller
                        && matches!(n.view, View::Live)
                })
            })
    }

    /// The simulator's own truth about upstream #529: the node has the `stuck-joining`
    /// fault (the controller never proposed it Joined), is Joining, and holds slot
    /// replicas, so it serves as a member does (the cluster is whole while its status
    /// stays 2). A node still really joining (no replicas yet) is not.
    pub fn stuck_by_529(&self, id: u64) -> bool {
        self.node(id).is_some_and(|n| n.faults.stuck_joining)
            && self
                .config
                .node(id)
                .is_some_and(|cn| cn.status == node_status::JOINING)
            && self.config.slots.iter().any(|s| s.replicas.contains(&id))
    }

    /// Online in the controller's view and caught up on the config: the end of a node's
    /// "down" interval for the tests' invariant.
    pub fn rejoined(&self, id: u64) -> bool {
        self.config.is_online(id)
            && self.node(id).is_some_and(|n| {
                n.phase.api_open() && n.knows_controller && matches!(n.view, View::Live)
            })
    }

    pub fn wall_ms(&self, now: u64) -> i64 {
        #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
        let real = (now as f64 / self.opts.speed) as i64;
        self.opts.epoch_ms + real
    }
    pub fn wall_secs(&self, now: u64) -> i64 {
        self.wall_ms(now) / 1000
    }
    /// Process uptime in wall-clock seconds (resets on every start). A real process's
    /// uptime is wall-clock time whatever `--speed` is, and wkctl compares it with its
    /// own clock (gate signal B), so it is not scaled.
    pub fn uptime_secs(&self, n: &Node, now: u64) -> u64 {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let real_ms = (now.saturating_sub(n.started_at) as f64 / self.opts.speed) as u64;
        real_ms / 1000
    }

    /// The node's local copy of the config, `None` before its first config (facts §4.3).
    pub fn view_of<'a>(&'a self, n: &'a Node) -> Option<&'a Config> {
        match &n.view {
            View::Empty => None,
            View::Live => Some(&self.config),
            View::Frozen(c) => Some(c),
        }
    }

    /// Effective managerToken of a node (facts §2.1), `None` = no auth.
    pub fn token_of(&self, n: &Node) -> Option<String> {
        n.faults
            .token
            .clone()
            .or_else(|| n.faults.config.get("WK_MANAGERTOKEN").cloned())
            .or_else(|| self.opts.token.clone())
            .filter(|t| !t.is_empty())
    }

    pub fn controller(&self) -> Option<u64> {
        Some(self.config.controller).filter(|c| *c != 0)
    }

    pub(super) fn schedule(&mut self, at: u64, t: Timer) {
        self.seq += 1;
        self.timers.insert((at, self.seq), t);
    }

    /// Earliest pending deadline (simulated ms); the driver sleeps until then.
    pub fn next_deadline(&self) -> Option<u64> {
        self.timers.keys().next().map(|(at, _)| *at)
    }

    /// Number of scheduled transitions (0 = the simulator is idle until the next command).
    pub fn pending_timers(&self) -> usize {
        self.timers.len()
    }

    /// Runs every transition due at or before `now`.
    pub fn advance(&mut self, now: u64) {
        while let Some(entry) = self.timers.first_entry() {
            let (at, _) = *entry.key();
            if at > now {
                break;
            }
            let t = entry.remove();
            self.fire(t, at);
            self.note_rejoins(at);
        }
        self.note_rejoins(now);
    }

    /// Emits `rejoined` for every node that [`Cluster::rejoined`] now holds for and did
    /// not at the last look, and forgets the ones it no longer holds for: the end of a
    /// node's "down" interval is the predicate itself (online in the controller's view,
    /// API open, knows the controller, config live), not one timer that happens to reach
    /// it. A node marked offline after it caught up, or a stale node that finds the
    /// controller again, is back when the predicate says so.
    pub(super) fn note_rejoins(&mut self, now: u64) {
        let ids: Vec<u64> = self.nodes.iter().map(|n| n.id).collect();
        for id in ids {
            if !self.rejoined(id) {
                self.rejoined_nodes.remove(&id);
            } else if self.rejoined_nodes.insert(id) {
                let version = self.config.version;
                self.emit(now, Some(id), "rejoined").detail =
                    Some(format!("config_version {version}"));
                self.check_split_healed(now);
            }
        }
    }

    pub(super) fn emit(&mut self, at: u64, node: Option<u64>, kind: &'static str) -> &mut Event {
        self.events.push(Event {
            at,
            node,
            kind,
            from: None,
            to: None,
            version: None,
            detail: None,
            settled: None,
        });
        self.events.last_mut().expect("just pushed") // ok: internal invariant
    }

    pub(super) fn set_phase(&mut self, id: u64, to: Phase, now: u64) {
        let n = self.node_mut(id);
        let from = n.phase;
        n.phase = to;
        let version = n.version.clone();
        if from.api_open() != to.api_open() || from.running() != to.running() {
            self.dirty.insert(id);
        }
        self.clients_on_phase(id, from, to, now);
        let v = self.version_string(&version);
        let e = self.emit(now, Some(id), "state");
        e.from = Some(from.name().into());
        e.to = Some(to.name().into());
        e.version = Some(v);
    }

    pub(super) fn log(&mut self, id: u64, now: u64, level: &str, msg: &str) {
        let ts = logs::rfc3339_ms(self.wall_ms(now));
        let n = self.node_mut(id);
        if n.log.len() >= 2000 {
            n.log.drain(..500);
        }
        n.log.push(format!("{ts} {level} {msg}"));
    }

    pub(super) fn bump(&mut self) {
        self.config.version += 1;
    }

    /// Records a received control command (`ctl` event).
    pub fn record_ctl(&mut self, now: u64, node: Option<u64>, detail: &str) {
        self.emit(now, node, "ctl").detail = Some(detail.to_string());
    }
}
