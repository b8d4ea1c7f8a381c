//! Probing a `WuKongIM` v2 cluster: the HTTP client, typed answers, and one
//! [`ClusterView`] per poll (DESIGN §5, facts §11.1).
//!
//! Per node and poll: `/health`, `/varz`, `/cluster/node`, `/cluster/info` (4 requests,
//! concurrently). `/cluster/info` is forwarded to the controller by every node, so the
//! per-node answers also give the cluster config (no extra request). Then one
//! `/cluster/simpleNodes` from a healthy node that knows the controller (never
//! `/cluster/nodes`: it fans out and fails while a peer is down, facts §3.4), and a TCP
//! connect to every node's cluster port. A focused poll (one node's gate or soak) asks
//! less, and the other node that serves its cluster view takes turns ([`turns`]).

pub mod client;
pub mod models;
pub mod turns;
pub mod view;

#[cfg(test)]
pub(crate) mod fixtures;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

pub use client::{Client, MAX_BODY_BYTES, ProbeError};
pub use models::{
    ClusterInfo, ClusterLogs, Health, InfoNode, InfoSlot, NodeConfig, NodeList, NodeStatus,
    SlotStatus, Varz, parse_go_uptime,
};
pub use turns::Turns;
pub use view::{
    ClusterView, HealthState, InfoAnswer, MemberView, NodeAnswers, NodeView, Service, SlotSummary,
    VersionSource, assemble,
};

use crate::manifest::Manifest;

/// Requests in flight at most: nodes probed at once × 4 requests each.
pub const MAX_IN_FLIGHT: usize = 128;
const REQUESTS_PER_NODE: usize = 4;
/// At most this many nodes are asked for `/cluster/simpleNodes` per poll.
const SIMPLE_NODES_ATTEMPTS: usize = 2;

/// What one poll asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every request of every node (`status`, `check`, `doctor`).
    All,
    /// The gate or soak of one node: that node gets every request; the others only
    /// `/health` and `/varz` (their uptime: a peer that restarted is caught), except the
    /// one whose turn it is ([`Turns`]), which also answers `/cluster/info` and
    /// `/cluster/simpleNodes` (the cluster view from another node), and any whose last
    /// `/cluster/info` was not 200; no cluster-port checks. Keeps the load per node low
    /// while polling (≤ 4 requests per poll on any node).
    Focus(u64),
    /// The pre-stop check: every request of every node (each node's own `/cluster/info`
    /// and config version: signals C, D, E for all), without the cluster-port checks.
    Settle,
}

/// Observes the whole cluster once. Never fails: what could not be learned is `None`,
/// `Unknown` or a [`ProbeError`] in the view.
pub async fn observe(client: &Client, manifest: &Manifest) -> ClusterView {
    observe_scoped(client, manifest, Scope::All).await
}

/// [`observe`], asking only what `scope` needs (a focused poll without a rotation: the
/// first other node serves the cluster view).
pub async fn observe_scoped(client: &Client, manifest: &Manifest, scope: Scope) -> ClusterView {
    observe_turns(client, manifest, scope, &Turns::default()).await
}

/// [`observe_scoped`], the cluster view of a focused poll served by whoever's turn it is.
pub async fn observe_turns(
    client: &Client,
    manifest: &Manifest,
    scope: Scope,
    turns: &Turns,
) -> ClusterView {
    let observed_at = SystemTime::now();
    let mut answers = probe_nodes(client, manifest, scope).await;
    match scope {
        Scope::Focus(focus) => ask_cluster_view(client, &mut answers, focus, turns).await,
        Scope::All if answers.len() > ASK_EVERY_NODE_UP_TO => {
            ask_cluster_info_at_scale(client, &mut answers).await;
        }
        Scope::All | Scope::Settle => {}
    }

    // simpleNodes from a healthy node that knows the controller; the controller first
    // (its local config is the authority), then manifest order.
    let mut candidates: Vec<&NodeAnswers> = answers
        .iter()
        .filter(|a| a.health.as_ref().is_ok_and(|h| h.ok) && a.info.is_ok())
        .collect();
    match scope {
        // From another node (signal D counts only that), the one whose turn it is.
        Scope::Focus(focus) => candidates.sort_by_key(|a| a.id == focus),
        Scope::All | Scope::Settle => {
            candidates.sort_by_key(|a| !a.node.as_ref().is_ok_and(|n| n.is_leader));
        }
    }
    let mut simple = None;
    for a in candidates.into_iter().take(SIMPLE_NODES_ATTEMPTS) {
        if let Ok(list) = client.simple_nodes(&a.api).await {
            simple = Some((a.id, list));
            break;
        }
    }

    let mut view = assemble(
        &answers,
        simple.as_ref().map(|(id, l)| (*id, l)),
        observed_at,
    );
    if scope == Scope::All {
        check_cluster_ports(&mut view, client.timeout()).await;
    }
    view
}

/// A focused poll's `/cluster/info` of other nodes: every node to re-check, then the
/// rotation's nodes until one knows the controller (at most [`SIMPLE_NODES_ATTEMPTS`]).
async fn ask_cluster_view(client: &Client, answers: &mut [NodeAnswers], focus: u64, turns: &Turns) {
    let others: Vec<u64> = answers
        .iter()
        .filter(|a| a.id != focus && a.health.is_ok())
        .map(|a| a.id)
        .collect();
    let order = turns.order(&others);
    for id in &order.recheck {
        ask_info(client, answers, *id, turns).await;
    }
    for id in order.rotation.iter().take(SIMPLE_NODES_ATTEMPTS) {
        if ask_info(client, answers, *id, turns).await {
            break;
        }
    }
}

/// Asks `id` for `/cluster/info`, remembers whether it answered 200, and says so.
async fn ask_info(client: &Client, answers: &mut [NodeAnswers], id: u64, turns: &Turns) -> bool {
    let Some(a) = answers.iter_mut().find(|a| a.id == id) else {
        return false;
    };
    a.info = client.cluster_info(&a.api).await;
    turns.answered(id, a.info.is_ok());
    a.info.is_ok()
}

/// Up to this many nodes, `status`/`check` ask every node's `/cluster/info` (each is
/// forwarded to the controller). Above it, only the controller and the nodes whose config
/// lags are asked, so a large cluster's controller is not asked for its whole config once
/// per node (and wkctl does not hold a thousand copies of it).
pub const ASK_EVERY_NODE_UP_TO: usize = 32;

/// At scale: `/cluster/info` from the node that says it is the controller (no forwarding),
/// else the first nodes that answer; then from every node whose `config_version` is behind
/// the controller's (a restarted node in its stale phase, a cut-off node), whose 400
/// `leader not found` is what signal C and the live checks look for.
async fn ask_cluster_info_at_scale(client: &Client, answers: &mut [NodeAnswers]) {
    let mut order: Vec<usize> = (0..answers.len())
        .filter(|i| answers[*i].health.is_ok())
        .collect();
    order.sort_by_key(|i| !answers[*i].node.as_ref().is_ok_and(|n| n.is_leader));
    let mut controller_version = None;
    for i in order.into_iter().take(3) {
        answers[i].info = client.cluster_info(&answers[i].api).await;
        if let Ok(info) = &answers[i].info {
            controller_version = Some(info.version);
            break;
        }
    }
    let lagging: Vec<usize> = (0..answers.len())
        .filter(|i| answers[*i].info == Err(ProbeError::Skipped))
        .filter(|i| match (&answers[*i].node, controller_version) {
            (Ok(n), Some(v)) => n.config_version < v,
            (Ok(_), None) => true,
            _ => false,
        })
        .collect();
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut set = JoinSet::new();
    for i in lagging {
        let (client, permits, api) = (client.clone(), Arc::clone(&permits), answers[i].api.clone());
        set.spawn(async move {
            let _permit = permits.acquire_owned().await;
            (i, client.cluster_info(&api).await)
        });
    }
    while let Some(joined) = set.join_next().await {
        if let Ok((i, info)) = joined {
            answers[i].info = info;
        }
    }
}

async fn probe_nodes(client: &Client, manifest: &Manifest, scope: Scope) -> Vec<NodeAnswers> {
    let at_scale = manifest.nodes.len() > ASK_EVERY_NODE_UP_TO;
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT / REQUESTS_PER_NODE));
    let mut set = JoinSet::new();
    for (idx, node) in manifest.nodes.iter().enumerate() {
        let (client, permits, id, api) = (
            client.clone(),
            Arc::clone(&permits),
            node.id,
            node.api.clone(),
        );
        set.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let full = match scope {
                Scope::All | Scope::Settle => true,
                Scope::Focus(f) => f == id,
            };
            let ask_info = match scope {
                Scope::All => !at_scale,
                Scope::Settle => true,
                Scope::Focus(f) => f == id,
            };
            let (health, varz, own, info) = if full {
                let info = async {
                    if ask_info {
                        client.cluster_info(&api).await
                    } else {
                        Err(ProbeError::Skipped)
                    }
                };
                tokio::join!(
                    client.health(&api),
                    client.varz(&api),
                    client.node(&api),
                    info
                )
            } else {
                let (health, varz) = tokio::join!(client.health(&api), client.varz(&api));
                (
                    health,
                    varz,
                    Err(ProbeError::Skipped),
                    Err(ProbeError::Skipped),
                )
            };
            (
                idx,
                NodeAnswers {
                    id,
                    api,
                    health,
                    varz,
                    node: own,
                    info,
                },
            )
        });
    }
    let mut out: Vec<Option<NodeAnswers>> = vec![None; manifest.nodes.len()];
    while let Some(joined) = set.join_next().await {
        if let Ok((idx, a)) = joined {
            out[idx] = Some(a);
        }
    }
    // A task can only be missing if it panicked; report the node as unreachable then.
    out.into_iter()
        .zip(&manifest.nodes)
        .map(|(a, n)| {
            a.unwrap_or_else(|| {
                fn failed<T>() -> Result<T, ProbeError> {
                    Err(ProbeError::Network("the probe task failed".into()))
                }
                NodeAnswers {
                    id: n.id,
                    api: n.api.clone(),
                    health: failed(),
                    varz: failed(),
                    node: failed(),
                    info: failed(),
                }
            })
        })
        .collect()
}

/// TCP connect (with timeout) to each node's cluster address (`clusterAddr`, port 11110).
async fn check_cluster_ports(view: &mut ClusterView, timeout: Duration) {
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut set = JoinSet::new();
    for (idx, n) in view.nodes.iter().enumerate() {
        let Some(addr) = n.cluster_addr.as_deref().map(cluster_host_port) else {
            continue;
        };
        let permits = Arc::clone(&permits);
        set.spawn(async move {
            let _permit = permits.acquire_owned().await;
            // A name that does not resolve here (a compose network alias such as upstream's
            // `node1.wk.local`, found on real Docker) says nothing about what the peers
            // reach: unknown, not unreachable.
            let resolved = tokio::time::timeout(timeout, tokio::net::lookup_host(addr.as_str()))
                .await
                .ok()
                .and_then(Result::ok)
                .map(Iterator::collect::<Vec<_>>)
                .filter(|a| !a.is_empty());
            let Some(addrs) = resolved else {
                return (idx, None);
            };
            let ok = matches!(
                tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&addrs[..])).await,
                Ok(Ok(_))
            );
            (idx, Some(ok))
        });
    }
    while let Some(joined) = set.join_next().await {
        if let Ok((idx, ok)) = joined {
            view.nodes[idx].cluster_port_reachable = ok;
        }
    }
}

/// `tcp://host:11110` → `host:11110`.
fn cluster_host_port(addr: &str) -> String {
    addr.trim().trim_start_matches("tcp://").to_string()
}

#[cfg(test)]
mod tests;
