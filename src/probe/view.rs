//! `ClusterView`: one observation of the whole cluster, as plain data.
//!
//! Gates and checks are pure functions over this (DESIGN "Observe, then decide"), so it
//! can be built by hand in tests: every field is public and there is a `Default`.
//! [`assemble`] turns raw per-node answers into a view without any I/O.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::client::ProbeError;
use super::models::{
    ClusterInfo, Health, NodeConfig, NodeList, NodeStatus, SlotStatus, Varz, parse_go_uptime,
};
use crate::version::WkVersion;

/// What `/health` said.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(tag = "state", content = "reason", rename_all = "snake_case")]
pub enum HealthState {
    Ok,
    /// `500 {"status":"error","message":...}`: the node answered, health fails.
    Failing(String),
    /// No usable answer (unreachable, 401, empty 500...).
    #[default]
    Unknown,
}

/// Where a node's version came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionSource {
    Varz,
    /// `/cluster/node.app_version` (no `/varz` in v2.0.1–v2.0.5).
    AppVersion,
    #[default]
    None,
}

/// The node's own `/cluster/info` answer (signal C).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(tag = "state", content = "reason", rename_all = "snake_case")]
pub enum InfoAnswer {
    /// 200: it knows a controller.
    Ok,
    /// 400 "leader not found".
    LeaderNotFound,
    Failed(String),
    #[default]
    NotAsked,
}

/// One manifest node as observed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NodeView {
    pub id: u64,
    pub api: String,
    /// The API answered at least one request with an HTTP status.
    pub reachable: bool,
    /// The most telling probe error, if any request failed (404 on `/varz` excluded).
    pub error: Option<ProbeError>,
    pub version: Option<WkVersion>,
    pub version_raw: Option<String>,
    pub version_source: VersionSource,
    /// `/varz.commit` (empty for a plain `go build`: then `None`).
    pub commit: Option<String>,
    pub uptime: Option<Duration>,
    pub server_id: Option<String>,
    pub health: HealthState,
    // ---- own `/cluster/node` (may be stale right after a restart, facts §4.3)
    /// The id the node's `/cluster/node` reports.
    pub self_id: Option<u64>,
    pub self_online: Option<bool>,
    pub self_status: Option<NodeStatus>,
    pub is_leader: Option<bool>,
    pub config_version: Option<u64>,
    pub slot_leader_count: Option<u64>,
    pub app_version: Option<String>,
    // ---- controller view
    /// `online` in `/cluster/info.nodes` (None: not listed or no info).
    pub info_online: Option<bool>,
    pub info_status: Option<NodeStatus>,
    /// `online` in `/cluster/simpleNodes` of another, healthy node.
    pub simple_online: Option<bool>,
    pub simple_status: Option<NodeStatus>,
    /// Its own `/cluster/info` answer.
    pub info_answer: InfoAnswer,
    /// Its own `/cluster/node` was asked in this observation (a gate's focused poll asks a
    /// peer only `/health` and `/varz`, and `/cluster/info` on its turn): a `None` above
    /// is then "not asked", not "no answer".
    #[serde(skip)]
    pub node_asked: bool,
    pub cluster_addr: Option<String>,
    pub cluster_port_reachable: Option<bool>,
    // ---- service level (`/varz`, issue #18): `None` = unknown
    pub service: Service,
}

/// A node's service counters from `/varz` (facts §3.2); each `None` when unknown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Service {
    pub connections: Option<u64>,
    pub in_msgs: Option<u64>,
    pub out_msgs: Option<u64>,
    pub slow_clients: Option<u64>,
    pub retry_queue: Option<u64>,
}

impl NodeView {
    /// Its own `/cluster/info` answered 200.
    pub fn knows_controller(&self) -> bool {
        self.info_answer == InfoAnswer::Ok
    }
}

/// Slot state from `/cluster/info.slots` (ids listed per problem).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SlotSummary {
    pub total: usize,
    pub leaderless: Vec<u64>,
    pub candidate: Vec<u64>,
    pub leader_transfer: Vec<u64>,
    pub migrating: Vec<u64>,
    /// Replicas of the first slot (upstream's `handleNodeJoining` looks only at it).
    #[serde(default)]
    pub first_slot_replicas: u64,
}

/// One member as the controller's `/cluster/info.nodes` lists it, with what it holds in
/// `/cluster/info.slots`. Covers members the manifest does not list (issue 14 §1: the
/// evidence for #529 needs every voter's share of slot replicas).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MemberView {
    pub id: u64,
    pub online: bool,
    pub status: NodeStatus,
    /// Joined through a seed (`join: true`, set by `handleClusterJoin`).
    pub join: bool,
    pub allow_vote: bool,
    /// Slots listing it in `replicas`.
    pub replica_slots: u64,
    /// Slots it leads.
    pub leader_slots: u64,
    /// Slots listing it in `learners`.
    pub learner_slots: u64,
    /// Slots migrating from or to it.
    pub migrating_slots: u64,
}

/// The whole cluster, at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterView {
    pub observed_at: SystemTime,
    /// Manifest nodes, in manifest order.
    pub nodes: Vec<NodeView>,
    /// The controller (config-raft leader), from `is_leader`.
    pub controller: Option<u64>,
    /// Nodes whose own `/cluster/node` says `is_leader` (more than one = split view).
    pub controller_claims: Vec<u64>,
    /// `/cluster/info.version`: the controller's config version.
    pub config_version: Option<u64>,
    pub slot_count: Option<u64>,
    pub slot_replica_count: Option<u64>,
    pub channel_replica_count: Option<u64>,
    /// None when no `/cluster/info` answered.
    pub slots: Option<SlotSummary>,
    /// Config-level `migrateFrom`/`migrateTo` set.
    pub cluster_migrating: bool,
    /// Node ids the cluster reports (`/cluster/info.nodes`, else `/cluster/simpleNodes`).
    pub membership: Option<Vec<u64>>,
    /// Which node answered the `/cluster/info` used.
    pub info_from: Option<u64>,
    /// Nodes whose `/cluster/info` answered 400 "leader not found".
    pub leader_not_found: Vec<u64>,
    /// Which node answered `/cluster/simpleNodes`.
    pub simple_nodes_from: Option<u64>,
    /// Every member of `/cluster/info.nodes` (empty when no `/cluster/info` answered).
    pub members: Vec<MemberView>,
}

impl Default for ClusterView {
    fn default() -> Self {
        ClusterView {
            observed_at: SystemTime::UNIX_EPOCH,
            nodes: Vec::new(),
            controller: None,
            controller_claims: Vec::new(),
            config_version: None,
            slot_count: None,
            slot_replica_count: None,
            channel_replica_count: None,
            slots: None,
            cluster_migrating: false,
            membership: None,
            info_from: None,
            leader_not_found: Vec::new(),
            simple_nodes_from: None,
            members: Vec::new(),
        }
    }
}

impl ClusterView {
    pub fn node(&self, id: u64) -> Option<&NodeView> {
        self.nodes.iter().find(|n| n.id == id)
    }

    pub fn node_mut(&mut self, id: u64) -> Option<&mut NodeView> {
        self.nodes.iter_mut().find(|n| n.id == id)
    }

    /// A member as the controller lists it.
    pub fn member(&self, id: u64) -> Option<&MemberView> {
        self.members.iter().find(|m| m.id == id)
    }
}

/// The raw answers of one node (what `observe` collects).
#[derive(Debug, Clone)]
pub struct NodeAnswers {
    pub id: u64,
    pub api: String,
    pub health: Result<Health, ProbeError>,
    pub varz: Result<Varz, ProbeError>,
    pub node: Result<NodeConfig, ProbeError>,
    pub info: Result<ClusterInfo, ProbeError>,
}

/// Per-node fields from the node's own answers.
pub fn node_view(a: &NodeAnswers) -> NodeView {
    let answered = |r: Result<(), &ProbeError>| {
        r.is_ok() || r.is_err_and(|e| !e.is_unreachable() && *e != ProbeError::Skipped)
    };
    let reachable = answered(a.health.as_ref().map(|_| ()))
        || answered(a.varz.as_ref().map(|_| ()))
        || answered(a.node.as_ref().map(|_| ()))
        || answered(a.info.as_ref().map(|_| ()));
    // The error shown: unreachable/auth first, then the others. A 404 on /varz is expected
    // on v2.0.1–v2.0.5, and "leader not found" is a state (signal C), not a failure.
    let errors = [
        a.health.as_ref().err(),
        a.node.as_ref().err(),
        a.varz
            .as_ref()
            .err()
            .filter(|e| **e != ProbeError::NotFound),
    ]
    .map(|e| e.filter(|e| **e != ProbeError::Skipped));
    let error = errors
        .iter()
        .flatten()
        .find(|e| e.is_unreachable() || **e == &ProbeError::Unauthorized)
        .or_else(|| errors.iter().flatten().next())
        .map(|e| (*e).clone());

    let mut v = NodeView {
        id: a.id,
        api: a.api.clone(),
        reachable,
        error,
        ..NodeView::default()
    };
    v.health = match &a.health {
        Ok(h) if h.ok => HealthState::Ok,
        Ok(h) => HealthState::Failing(
            h.message
                .clone()
                .unwrap_or_else(|| "health check failed".into()),
        ),
        Err(_) => HealthState::Unknown,
    };
    if let Ok(n) = &a.node {
        v.self_id = Some(n.id);
        v.self_online = Some(n.online);
        v.self_status = Some(n.status);
        v.is_leader = Some(n.is_leader);
        v.config_version = Some(n.config_version);
        v.slot_leader_count = Some(n.slot_leader_count);
        v.app_version = Some(n.app_version.clone()).filter(|s| !s.is_empty());
        v.cluster_addr = Some(n.cluster_addr.clone()).filter(|s| !s.is_empty());
    }
    let node_uptime = a
        .node
        .as_ref()
        .ok()
        .and_then(|n| parse_go_uptime(&n.uptime));
    match &a.varz {
        Ok(z) => {
            v.server_id = Some(z.server_id.clone()).filter(|s| !s.is_empty());
            v.commit = Some(z.commit.trim().to_string()).filter(|s| !s.is_empty());
            v.uptime = parse_go_uptime(&z.uptime).or(node_uptime);
            v.service = Service {
                connections: z.connections,
                in_msgs: z.in_msgs,
                out_msgs: z.out_msgs,
                slow_clients: z.slow_clients,
                retry_queue: z.retry_queue,
            };
            if !z.version.trim().is_empty() {
                v.version_raw = Some(z.version.clone());
                v.version_source = VersionSource::Varz;
            }
        }
        Err(_) => v.uptime = node_uptime,
    }
    if v.version_raw.is_none()
        && let Some(app) = &v.app_version
    {
        v.version_raw = Some(app.clone());
        v.version_source = VersionSource::AppVersion;
    }
    v.version = v
        .version_raw
        .as_deref()
        .and_then(|s| WkVersion::parse(s).ok());
    v.node_asked = a.node != Err(ProbeError::Skipped);
    v.info_answer = match &a.info {
        Ok(_) => InfoAnswer::Ok,
        Err(e) if e.is_leader_not_found() => InfoAnswer::LeaderNotFound,
        Err(ProbeError::Skipped) => InfoAnswer::NotAsked,
        Err(e) => InfoAnswer::Failed(e.to_string()),
    };
    v
}

/// Builds the view from every node's answers and the chosen `/cluster/simpleNodes`.
/// Pure; the TCP checks of cluster ports are filled in afterwards by `observe`.
pub fn assemble(
    answers: &[NodeAnswers],
    simple: Option<(u64, &NodeList)>,
    observed_at: SystemTime,
) -> ClusterView {
    let mut view = ClusterView {
        observed_at,
        nodes: answers.iter().map(node_view).collect(),
        ..ClusterView::default()
    };
    view.leader_not_found = answers
        .iter()
        .filter(|a| a.info.as_ref().is_err_and(ProbeError::is_leader_not_found))
        .map(|a| a.id)
        .collect();
    // Every node forwards /cluster/info to the controller; the freshest answer wins
    // (highest config version, then manifest order).
    let info = answers
        .iter()
        .filter_map(|a| a.info.as_ref().ok().map(|i| (a.id, i)))
        .fold(None::<(u64, &ClusterInfo)>, |best, (id, i)| match best {
            Some((_, b)) if b.version >= i.version => best,
            _ => Some((id, i)),
        });
    if let Some((from, info)) = info {
        apply_info(&mut view, from, info);
    }
    if let Some((from, list)) = simple {
        apply_simple_nodes(&mut view, from, list);
    }
    view.controller_claims = view
        .nodes
        .iter()
        .filter(|n| n.is_leader == Some(true))
        .map(|n| n.id)
        .collect();
    view.controller = controller_of(&view, simple.map(|(_, l)| l));
    view
}

/// What the freshest `/cluster/info` (of node `from`) says: the cluster config, its
/// members and slots, and each node's state in the controller's view.
fn apply_info(view: &mut ClusterView, from: u64, info: &ClusterInfo) {
    view.info_from = Some(from);
    view.config_version = Some(info.version);
    view.slot_count = Some(info.slot_count);
    view.slot_replica_count = Some(info.slot_replica_count);
    view.channel_replica_count = Some(info.channel_replica_count);
    view.cluster_migrating = info.migrate_from != 0 || info.migrate_to != 0;
    view.membership = Some(info.nodes.iter().map(|n| n.id).collect());
    view.members = info.nodes.iter().map(|n| member_view(info, n)).collect();
    view.slots = Some(slot_summary(info));
    for n in &mut view.nodes {
        if let Some(i) = info.nodes.iter().find(|i| i.id == n.id) {
            n.info_online = Some(i.online);
            n.info_status = Some(i.status);
            if !i.cluster_addr.is_empty() {
                n.cluster_addr = Some(i.cluster_addr.clone());
            }
        }
    }
}

/// One member of `/cluster/info.nodes` with its share of the slots.
fn member_view(info: &ClusterInfo, n: &super::models::InfoNode) -> MemberView {
    let count = |f: &dyn Fn(&super::models::InfoSlot) -> bool| {
        info.slots.iter().filter(|s| f(s)).count() as u64
    };
    MemberView {
        id: n.id,
        online: n.online,
        status: n.status,
        join: n.join,
        allow_vote: n.allow_vote,
        replica_slots: count(&|s| s.replicas.contains(&n.id)),
        leader_slots: count(&|s| s.leader == n.id),
        learner_slots: count(&|s| s.learners.contains(&n.id)),
        migrating_slots: count(&|s| {
            s.migrating() && (s.migrate_from == n.id || s.migrate_to == n.id)
        }),
    }
}

/// The slots that are not ready: without a leader, in election, transferring their
/// leader, migrating.
fn slot_summary(info: &ClusterInfo) -> SlotSummary {
    let mut s = SlotSummary {
        total: info.slots.len(),
        first_slot_replicas: info.slots.first().map_or(0, |f| f.replicas.len() as u64),
        ..SlotSummary::default()
    };
    for slot in &info.slots {
        if slot.leader == 0 {
            s.leaderless.push(slot.id);
        }
        match slot.status {
            SlotStatus::Normal => {}
            SlotStatus::LeaderTransfer => s.leader_transfer.push(slot.id),
            SlotStatus::Candidate | SlotStatus::Other(_) => s.candidate.push(slot.id),
        }
        if slot.migrating() {
            s.migrating.push(slot.id);
        }
    }
    s
}

/// What the chosen `/cluster/simpleNodes` (of node `from`) adds: the membership when
/// `/cluster/info` gave none, and each node's state in that list.
fn apply_simple_nodes(view: &mut ClusterView, from: u64, list: &NodeList) {
    view.simple_nodes_from = Some(from);
    if view.membership.is_none() {
        view.membership = Some(list.data.iter().map(|n| n.id).collect());
    }
    for n in &mut view.nodes {
        if let Some(s) = list.data.iter().find(|s| s.id == n.id) {
            n.simple_online = Some(s.online);
            n.simple_status = Some(s.status);
            if n.cluster_addr.is_none() && !s.cluster_addr.is_empty() {
                n.cluster_addr = Some(s.cluster_addr.clone());
            }
        }
    }
}

/// The controller: the single `is_leader` in `/cluster/simpleNodes` of a node that knows
/// it; else the single node claiming it whose own `/cluster/info` answered (a node that
/// just restarted may still claim it from its stale config, facts §4.3).
fn controller_of(view: &ClusterView, simple: Option<&NodeList>) -> Option<u64> {
    if let Some(list) = simple {
        let leaders: Vec<u64> = list
            .data
            .iter()
            .filter(|n| n.is_leader)
            .map(|n| n.id)
            .collect();
        if let [one] = leaders[..] {
            return Some(one);
        }
    }
    let claims: Vec<u64> = view
        .nodes
        .iter()
        .filter(|n| n.is_leader == Some(true) && n.knows_controller())
        .map(|n| n.id)
        .collect();
    if let [one] = claims[..] {
        Some(one)
    } else {
        None
    }
}

#[cfg(test)]
mod tests;
