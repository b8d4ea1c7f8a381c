//! Controller-forwarded and slot endpoints (facts §3.6–§3.8): `/cluster/info` (camelCase,
//! omitempty, slot 0 without `id`), `/cluster/allslot`, `/cluster/slots`, `/cluster/logs`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::{Reply, forward, put};
use crate::sim::model::{Cluster, Config, Node};

/// "Forward to the config-raft leader" (facts §3.6): answered here when this node is the
/// leader, passed through from the leader otherwise, 400 `leader not found` when it knows none.
fn via_controller(
    c: &mut Cluster,
    id: u64,
    path: &str,
    q: &BTreeMap<String, String>,
    token: Option<&str>,
    now: u64,
    local: impl FnOnce(&mut Cluster) -> Reply,
) -> Reply {
    let n = c.node(id).expect("caller checked"); // ok: internal invariant
    if n.island {
        // #310: an island is its own controller and answers from its own config.
        return match (&n.view, path) {
            (crate::sim::model::View::Frozen(own), "/cluster/info") => Reply {
                status: 200,
                body: info_json(own),
                json: true,
                delay: 0,
                hang: None,
            },
            (crate::sim::model::View::Frozen(own), "/cluster/allslot") => {
                let data: Vec<Value> = own.slots.iter().map(slot_resp).collect();
                Reply::json(200, &json!({"total": data.len(), "data": data}))
            }
            _ => Reply::err("leader not found"),
        };
    }
    match c.controller() {
        Some(ctrl) if n.knows_controller && n.connected => {
            if ctrl == id {
                local(c)
            } else {
                forward(c, ctrl, path, q, token, now)
            }
        }
        _ => Reply::err("leader not found"),
    }
}

fn info_json(cfg: &Config) -> String {
    let nodes: Vec<Value> = cfg
        .nodes
        .iter()
        .map(|x| {
            let mut m = Map::new();
            put(&mut m, "id", x.id, true);
            put(
                &mut m,
                "clusterAddr",
                x.cluster_addr.clone(),
                !x.cluster_addr.is_empty(),
            );
            put(
                &mut m,
                "apiServerAddr",
                x.api_addr.clone(),
                !x.api_addr.is_empty(),
            );
            put(&mut m, "online", true, x.online);
            put(&mut m, "offlineCount", x.offline_count, x.offline_count > 0);
            put(&mut m, "lastOffline", x.last_offline, x.last_offline > 0);
            put(&mut m, "allowVote", true, true);
            put(&mut m, "join", true, x.join);
            put(&mut m, "status", x.status, x.status > 0);
            put(&mut m, "createdAt", x.created_at, x.created_at > 0);
            Value::Object(m)
        })
        .collect();
    let slots: Vec<Value> = cfg
        .slots
        .iter()
        .map(|s| {
            let mut m = Map::new();
            put(&mut m, "id", s.id, s.id > 0);
            put(&mut m, "leader", s.leader, s.leader > 0);
            put(&mut m, "term", s.term, s.term > 0);
            put(
                &mut m,
                "replicas",
                s.replicas.clone(),
                !s.replicas.is_empty(),
            );
            put(&mut m, "expectLeader", s.expect_leader, s.expect_leader > 0);
            put(&mut m, "status", s.status, s.status > 0);
            put(&mut m, "migrateFrom", s.migrate_from, s.migrate_from > 0);
            put(&mut m, "migrateTo", s.migrate_to, s.migrate_to > 0);
            Value::Object(m)
        })
        .collect();
    let mut m = Map::new();
    put(&mut m, "version", cfg.version, cfg.version > 0);
    put(&mut m, "slotCount", cfg.slot_count, cfg.slot_count > 0);
    put(
        &mut m,
        "slotReplicaCount",
        cfg.slot_replica_count,
        cfg.slot_replica_count > 0,
    );
    put(
        &mut m,
        "channelReplicaCount",
        cfg.channel_replica_count,
        cfg.channel_replica_count > 0,
    );
    put(&mut m, "term", cfg.term, cfg.term > 0);
    put(&mut m, "nodes", nodes, !cfg.nodes.is_empty());
    put(&mut m, "slots", slots, !cfg.slots.is_empty());
    Value::Object(m).to_string()
}

/// `/cluster/info`, serialized once per config version (1000-node clusters).
pub fn cluster_info(
    c: &mut Cluster,
    id: u64,
    q: &BTreeMap<String, String>,
    token: Option<&str>,
    now: u64,
) -> Reply {
    via_controller(c, id, "/cluster/info", q, token, now, info_local)
}

fn info_local(c: &mut Cluster) -> Reply {
    let body = match &c.info_cache {
        Some((v, s)) if *v == c.config.version => Arc::clone(s),
        _ => {
            let s: Arc<str> = info_json(&c.config).into();
            c.info_cache = Some((c.config.version, Arc::clone(&s)));
            s
        }
    };
    Reply {
        status: 200,
        body: body.to_string(),
        json: true,
        delay: 0,
        hang: None,
    }
}

fn slot_resp(s: &crate::sim::model::Slot) -> Value {
    let fmt = ["正常", "候选中", "领导者转移中"]
        .get(usize::from(s.status))
        .copied()
        .unwrap_or("");
    json!({"id": s.id, "leader_id": s.leader, "term": s.term, "replicas": s.replicas, "channel_count": 0,
           "log_index": u64::from(s.term) * 100 + u64::from(s.id), "status": s.status, "status_format": fmt})
}

pub fn allslot(
    c: &mut Cluster,
    id: u64,
    q: &BTreeMap<String, String>,
    token: Option<&str>,
    now: u64,
) -> Reply {
    via_controller(c, id, "/cluster/allslot", q, token, now, |c| {
        let data: Vec<Value> = c.config.slots.iter().map(slot_resp).collect();
        Reply::json(200, &json!({"total": data.len(), "data": data}))
    })
}

pub fn slots(c: &Cluster, n: &Node, q: &BTreeMap<String, String>) -> Reply {
    let ids: Vec<u32> = q
        .get("ids")
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_default();
    let data: Vec<Value> = c
        .view_of(n)
        .map(|cfg| {
            ids.iter()
                .filter_map(|id| cfg.slots.get(*id as usize))
                .map(slot_resp)
                .collect()
        })
        .unwrap_or_default();
    Reply::json(200, &Value::Array(data))
}

pub fn cluster_logs(
    c: &mut Cluster,
    id: u64,
    q: &BTreeMap<String, String>,
    token: Option<&str>,
    now: u64,
) -> Reply {
    let Some(target) = q
        .get("node_id")
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|id| *id != 0)
    else {
        return Reply::empty(500); // nil dereference upstream (facts §3.8)
    };
    if target != id {
        if c.node(target).is_none() {
            return Reply::err("node not found");
        }
        return forward(c, target, "/cluster/logs", q, token, now);
    }
    let Some(t) = c.node(target) else {
        return Reply::err("node not found");
    };
    let last = c.view_of(t).map_or(0, |cfg| cfg.version);
    let limit = q
        .get("limit")
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|l| *l > 0)
        .unwrap_or(20)
        .min(last);
    let logs: Vec<Value> = (0..limit)
        .map(|i| {
            let idx = last - i;
            json!({"id": idx.to_string(), "index": idx, "term": c.config.term, "cmd": "ConfigUpdate", "data": "", "time_format": ""})
        })
        .collect();
    Reply::json(
        200,
        &json!({"next": last + 1, "pre": last.saturating_sub(limit), "applied": last, "last": last,
                             "more": i32::from(limit < last), "logs": logs}),
    )
}
