//! JSON of the node API (facts §3), rendered from the model: exact key sets, Go `omitempty`
//! (absent, not null), integer enums, snake_case for `/cluster/node[s]` and camelCase for
//! `/cluster/info`. Fan-out and forwarding to peers are resolved against the model.

pub mod cluster;
pub(super) mod service;

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::sim::model::logs;
use crate::sim::model::{Cluster, Config, Node, node_status, timing};

/// An HTTP answer; `delay` (simulated ms) is waited before answering.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub json: bool,
    pub delay: u64,
    /// Answer only once node `.0` has left incarnation `.1` or is no longer black-holed (a
    /// request into a black hole; upstream's forwarding client has no timeout, facts §12).
    pub hang: Option<(u64, u64)>,
}

impl Reply {
    pub fn json(status: u16, v: &Value) -> Reply {
        Reply {
            status,
            body: v.to_string(),
            json: true,
            delay: 0,
            hang: None,
        }
    }
    /// facts §2.4: errors are HTTP 400 `{"msg","status":400}`.
    pub fn err(msg: &str) -> Reply {
        Reply::json(400, &json!({"msg": msg, "status": 400}))
    }
    pub fn empty(status: u16) -> Reply {
        Reply {
            status,
            body: String::new(),
            json: false,
            delay: 0,
            hang: None,
        }
    }
    pub fn not_found() -> Reply {
        Reply {
            status: 404,
            body: "404 page not found".into(),
            json: false,
            delay: 0,
            hang: None,
        }
    }
}

enum Kind<'a> {
    /// The node describing itself (`getLocalNodeInfo`).
    Local(&'a Node),
    /// An offline remote node, built from config only (facts §3.4).
    ConfigOnly,
    /// `/cluster/simpleNodes` (facts §3.5).
    Simple,
}

pub(super) fn put(m: &mut Map<String, Value>, k: &str, v: impl Into<Value>, keep: bool) {
    if keep {
        m.insert(k.into(), v.into());
    }
}

/// One `NodeConfig` (facts §3.3 table) from config `cfg`.
fn node_entry(c: &Cluster, cfg: &Config, id: u64, kind: &Kind, now: u64) -> Option<Value> {
    let cn = cfg.node(id)?;
    let slot_count = cfg
        .slots
        .iter()
        .filter(|s| s.replicas.contains(&id))
        .count();
    let leads = cfg.slots.iter().filter(|s| s.leader == id).count();
    let mut m = Map::new();
    put(&mut m, "id", id, true);
    put(&mut m, "is_leader", 1, cfg.controller == id);
    put(&mut m, "role", 0, true);
    put(&mut m, "cluster_addr", cn.cluster_addr.clone(), true);
    put(
        &mut m,
        "api_server_addr",
        cn.api_addr.clone(),
        !cn.api_addr.is_empty(),
    );
    put(&mut m, "online", 1, cn.online);
    put(
        &mut m,
        "offline_count",
        cn.offline_count,
        cn.offline_count > 0,
    );
    put(
        &mut m,
        "last_offline",
        logs::minute(cn.last_offline),
        cn.last_offline > 0,
    );
    put(&mut m, "allow_vote", 1, true);
    put(&mut m, "slot_count", slot_count, slot_count > 0);
    put(
        &mut m,
        "term",
        cfg.term,
        cfg.term > 0 && !matches!(kind, Kind::Simple),
    );
    put(&mut m, "slot_leader_count", leads, leads > 0);
    if let Kind::Local(n) = kind {
        put(
            &mut m,
            "uptime",
            logs::my_uptime(c.uptime_secs(n, now)),
            true,
        );
        put(
            &mut m,
            "app_version",
            c.version_string(&n.version),
            n.caps().app_version,
        );
        put(&mut m, "config_version", cfg.version, cfg.version > 0);
    }
    put(&mut m, "status", cn.status, cn.status > 0);
    put(
        &mut m,
        "status_format",
        node_status::format(cn.status),
        cn.status > 0,
    );
    Some(Value::Object(m))
}

/// Would an HTTP call from a node to `peer` succeed? (forwarding/fan-out, facts §2.3, §3.4)
pub(super) fn reach(c: &Cluster, peer: u64, token: Option<&str>, path: &str) -> Result<(), Reply> {
    let Some(p) = c.node(peer) else {
        return Err(Reply::err(&format!("node {peer} not found")));
    };
    let url = format!("http://{}:{}{path}", c.opts.host, p.api_port);
    if !p.phase.api_open() {
        return Err(Reply::err(&format!(
            "Get \"{url}\": dial tcp: connect: connection refused"
        )));
    }
    if p.faults.blackhole {
        let mut r = Reply::err(&format!("Get \"{url}\": context deadline exceeded"));
        r.delay = timing::PEER_TIMEOUT;
        return Err(r);
    }
    if p.faults.http500 {
        return Err(Reply::err(&format!("Get \"{url}\": unexpected status 500")));
    }
    if let Some(t) = c.token_of(p)
        && token != Some(t.as_str())
    {
        return Err(Reply::err(&format!("Get \"{url}\": unexpected status 401")));
    }
    Ok(())
}

/// Upstream `ForwardWithBody` (`pkg/wkhttp/http.go`, facts §12): the peer's status and body
/// pass through unchanged (a bare 401 or 500 stays so), with a JSON content type; only a
/// transport error becomes a 400 `{"msg"}`. No client timeout: a black-holed peer hangs.
pub(super) fn forward(
    c: &mut Cluster,
    peer: u64,
    path: &str,
    q: &BTreeMap<String, String>,
    token: Option<&str>,
    now: u64,
) -> Reply {
    let Some(p) = c.node(peer) else {
        return Reply::err(&format!("node {peer} not found"));
    };
    let hostport = format!("{}:{}", c.opts.host, p.api_port);
    let url = format!("http://{hostport}{path}");
    if !p.phase.api_open() {
        return Reply::err(&format!(
            "Get \"{url}\": dial tcp {hostport}: connect: connection refused"
        ));
    }
    let mut r = answer(c, peer, true, path, q, token, now);
    r.json = true;
    if r.hang.is_some() {
        r.status = 400;
        r.body = json!({"msg": format!("Get \"{url}\": EOF"), "status": 400}).to_string();
    }
    r
}

/// What node `id`'s API answers to one request (upstream `server_http.go` middleware, then
/// the route): black hole, token check (401, empty), injected 500, then the handlers.
pub fn answer(
    c: &mut Cluster,
    id: u64,
    get: bool,
    path: &str,
    q: &BTreeMap<String, String>,
    token: Option<&str>,
    now: u64,
) -> Reply {
    if let Some(r) = middleware(c, id, token) {
        return r;
    }
    let n = c.node(id).expect("middleware checked it"); // ok: internal invariant
    if !get {
        return Reply::not_found();
    }
    match path {
        "/health" => health(c, n),
        "/varz" => varz(c, id, q, token, now),
        "/cluster/node" => cluster_node(c, n, now),
        "/cluster/nodes" => cluster_nodes(c, n, token, now, false),
        "/cluster/simpleNodes" => cluster_nodes(c, n, token, now, true),
        "/cluster/info" => cluster::cluster_info(c, id, q, token, now),
        "/cluster/allslot" => cluster::allslot(c, id, q, token, now),
        "/cluster/slots" => cluster::slots(c, n, q),
        "/cluster/logs" => cluster::cluster_logs(c, id, q, token, now),
        "/route" => service::route(c, n, q),
        _ => Reply::not_found(),
    }
}

/// Upstream `server_http.go` middleware in front of every route: black hole, token check
/// (401, empty), injected 500. `None` = the request reaches the handler.
pub(super) fn middleware(c: &Cluster, id: u64, token: Option<&str>) -> Option<Reply> {
    let Some(n) = c.node(id) else {
        return Some(Reply::not_found());
    };
    if n.faults.blackhole {
        let mut r = Reply::empty(503);
        r.hang = Some((id, n.generation));
        return Some(r);
    }
    if c.token_of(n).is_some_and(|t| token != Some(t.as_str())) {
        // facts §2.1: every path, /health included, 401 with an empty body.
        return Some(Reply::empty(401));
    }
    if n.faults.http500 {
        return Some(Reply::empty(500));
    }
    None
}

pub fn health(c: &Cluster, n: &Node) -> Reply {
    if !n.caps().health_checks_cluster {
        return Reply::json(200, &json!({"status": "ok"}));
    }
    // `CheckClusterStatus` on the local (possibly stale) view (facts §3.1, §4.3).
    let problem = match c.view_of(n) {
        None => Some("no slots"),
        Some(cfg) if cfg.slots.is_empty() => Some("no slots"),
        Some(cfg) if cfg.slots.len() != c.slot_count_option(n.id) as usize => {
            Some("slot count not match")
        }
        Some(cfg) if cfg.slots.iter().any(|s| s.leader == 0) => Some("slot leader not found"),
        Some(cfg) if cfg.slots.iter().any(|s| s.status != 0) => Some("slot not ready"),
        Some(_) => None,
    };
    match problem {
        None => Reply::json(200, &json!({"status": "ok"})),
        Some(m) => Reply::json(500, &json!({"status": "error", "message": m})),
    }
}

pub fn varz(
    c: &mut Cluster,
    id: u64,
    q: &BTreeMap<String, String>,
    token: Option<&str>,
    now: u64,
) -> Reply {
    let n = c.node(id).expect("caller checked"); // ok: internal invariant
    if !n.caps().varz {
        return Reply::not_found();
    }
    let target = q
        .get("node_id")
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|t| *t != 0 && *t != id);
    if let Some(t) = target {
        // upstream `internal/api/varz.go`: ForwardWithBody to the node's apiServerAddr.
        if c.node(t).is_none() {
            return Reply::err("node not found");
        }
        return forward(c, t, "/varz", q, token, now);
    }
    let (conns, in_msgs, out_msgs, slow_clients, retry_queue) = c.service_varz(id, now);
    let n = c.node(id).expect("caller checked"); // ok: internal invariant
    let host = &c.opts.host;
    Reply::json(
        200,
        &json!({
            "server_id": n.id.to_string(), "server_name": "WuKongIM",
            "version": c.version_string(&n.version), "connections": conns,
            "user_handler_count": conns, "user_handler_conn_count": conns,
            "uptime": logs::my_uptime(c.uptime_secs(n, now)), "goroutine": 1532, "mem": 412_345_678, "cpu": 3.5,
            "in_msgs": in_msgs, "out_msgs": out_msgs, "in_bytes": in_msgs * 96, "out_bytes": out_msgs * 96,
            "slow_clients": slow_clients, "retry_queue": retry_queue,
            "tcp_addr": format!("{host}:5100"), "ws_addr": format!("ws://{host}:5200"), "wss_addr": "",
            "manager_addr": format!("{host}:5300"), "manager_on": 1,
            "commit": n.version.commit(), "commit_date": n.version.commit_date(), "tree_state": "clean",
            "api_url": c.opts.addrs.get(&n.id).map_or_else(|| format!("http://{host}:{}", n.api_port), |a| a.1.clone()), "manager_uid": "____manager",
            "manager_token_on": i32::from(c.token_of(n).is_some()), "conversation_cache_count": 0,
        }),
    )
}

pub fn cluster_node(c: &Cluster, n: &Node, now: u64) -> Reply {
    // Not in its own config → nil dereference → gin recovery 500 (facts §3.3).
    match c
        .view_of(n)
        .and_then(|cfg| node_entry(c, cfg, n.id, &Kind::Local(n), now))
    {
        Some(v) => Reply::json(200, &v),
        None => Reply::empty(500),
    }
}

pub fn cluster_nodes(c: &Cluster, n: &Node, token: Option<&str>, now: u64, simple: bool) -> Reply {
    let Some(cfg) = c.view_of(n) else {
        return Reply::json(200, &json!({"total": 0, "data": []}));
    };
    let mut ids: Vec<u64> = cfg.nodes.iter().map(|x| x.id).collect();
    ids.sort_unstable();
    let mut data = Vec::with_capacity(ids.len());
    for id in ids {
        let entry = if simple {
            node_entry(c, cfg, id, &Kind::Simple, now)
        } else if id == n.id {
            node_entry(c, cfg, id, &Kind::Local(n), now)
        } else if cfg.is_online(id) {
            // Online remote: GET its /cluster/node; any failure fails the whole call (errgroup).
            if let Err(r) = reach(c, id, token, "/cluster/node") {
                return r;
            }
            let p = c.node(id).expect("reach checked it"); // ok: internal invariant
            match c
                .view_of(p)
                .and_then(|pc| node_entry(c, pc, id, &Kind::Local(p), now))
            {
                Some(v) => Some(v),
                None => return Reply::err("unexpected status 500"),
            }
        } else {
            node_entry(c, cfg, id, &Kind::ConfigOnly, now)
        };
        data.extend(entry);
    }
    Reply::json(200, &json!({"total": data.len(), "data": data}))
}
