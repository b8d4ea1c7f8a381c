//! The service side of the simulated cluster (issue #18): client connections per node,
//! message counters that grow with traffic, and a message store behind `/message/send` and
//! `/channel/messagesync`. wksim's own model, independent of wkctl's probe and tracker.
//!
//! - **Connections** (`/varz.connections`, upstream `internal/api/varz.go` at
//!   v2.2.5-20260422): a fixed population of clients. When a node's API closes, its clients
//!   are *pending* and reconnect to the nodes that are up, about half of the rest per tick
//!   (all within a few simulated seconds; real time is divided by `--speed`). When a node
//!   comes back, some clients rebalance to it (up to half of the average).
//! - **Counters** (`in_msgs`, `out_msgs`): each counted client sends `MSG_RATE` messages
//!   per simulated second through its node; the counters are per process (a restart
//!   resets them, like upstream's in-memory counters). `retry_queue` follows the clients
//!   still reconnecting.
//! - **Faults**: `clients-stuck` (#397/#683: after a peer restarts, this node's clients are
//!   no longer counted online and do not come back), `traffic-stops` (after this node
//!   restarts, every counter freezes), `no-replicate` (a message sent through this node is
//!   readable only on it).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Cluster, Phase, Timer};

/// One tick of client movement, simulated ms.
pub const TICK: u64 = 500;
/// Messages per simulated second per counted client (in); out is 1.2 × in.
pub const MSG_RATE: f64 = 0.5;

/// One stored message (upstream `types.MessageResp`, `internal/types/message.go`).
#[derive(Debug, Clone)]
pub struct Stored {
    pub channel_id: String,
    pub channel_type: u8,
    pub seq: u64,
    pub message_id: i64,
    pub client_msg_no: String,
    pub from_uid: String,
    pub payload: Value,
    pub timestamp: i64,
    /// `no-replicate`: readable only through this node.
    pub only_on: Option<u64>,
}

/// Client and message state of the whole cluster.
#[derive(Debug, Clone)]
pub struct Traffic {
    /// Clients per member node at full strength (`wksim serve --clients`).
    pub per_node: u64,
    /// Counted connections per node.
    pub conns: BTreeMap<u64, u64>,
    /// Clients currently reconnecting (their node went away).
    pub pending: u64,
    /// Clients no longer counted anywhere (`clients-stuck`).
    pub lost: u64,
    /// Per-process counters (reset when the node's process restarts).
    pub in_msgs: BTreeMap<u64, f64>,
    pub out_msgs: BTreeMap<u64, f64>,
    /// `traffic-stops` took effect: no counter grows any more.
    pub frozen: bool,
    /// Nodes whose clients are stuck (#397/#683 took effect).
    pub stuck: Vec<u64>,
    pub last: u64,
    pub tick_scheduled: bool,
    pub messages: Vec<Stored>,
    pub next_message_id: i64,
    /// Nodes that came back and should receive some clients.
    pub rebalance_to: Vec<u64>,
}

impl Default for Traffic {
    fn default() -> Self {
        Traffic::new(14)
    }
}

impl Traffic {
    pub fn new(per_node: u64) -> Traffic {
        Traffic {
            per_node,
            conns: BTreeMap::new(),
            pending: 0,
            lost: 0,
            in_msgs: BTreeMap::new(),
            out_msgs: BTreeMap::new(),
            frozen: false,
            stuck: Vec::new(),
            last: 0,
            tick_scheduled: false,
            messages: Vec::new(),
            next_message_id: 1_000_000_000_000,
            rebalance_to: Vec::new(),
        }
    }
}

impl Cluster {
    /// Sets the client population (`--clients` per member node); clients connect as the
    /// nodes' APIs open.
    pub fn set_clients(&mut self, per_node: u64, now: u64) {
        let members = self.config.nodes.len() as u64;
        let mut t = Traffic::new(per_node);
        t.pending = per_node * members;
        t.last = now;
        self.traffic = t;
        self.schedule_clients_tick(now);
    }

    /// Integrates the message counters up to `now`.
    pub fn traffic_advance(&mut self, now: u64) {
        let dt = now.saturating_sub(self.traffic.last);
        self.traffic.last = self.traffic.last.max(now);
        if dt == 0 || self.traffic.frozen {
            return;
        }
        #[allow(clippy::cast_precision_loss)]
        let secs = dt as f64 / 1000.0;
        for (id, c) in self.traffic.conns.clone() {
            #[allow(clippy::cast_precision_loss)]
            let n = c as f64 * MSG_RATE * secs;
            *self.traffic.in_msgs.entry(id).or_default() += n;
            *self.traffic.out_msgs.entry(id).or_default() += n * 1.2;
        }
    }

    pub(super) fn schedule_clients_tick(&mut self, now: u64) {
        if !self.traffic.tick_scheduled {
            self.traffic.tick_scheduled = true;
            self.schedule(now + TICK, Timer::Clients);
        }
    }

    fn takes_clients(&self, id: u64) -> bool {
        self.node(id).is_some_and(|n| n.phase.api_open()) && !self.traffic.stuck.contains(&id)
    }

    /// Called on every phase change of node `id` (from `set_phase`).
    pub(super) fn clients_on_phase(&mut self, id: u64, from: Phase, to: Phase, now: u64) {
        self.traffic_advance(now);
        if from.api_open() && !to.api_open() {
            // The process is gone: its clients reconnect elsewhere, its counters reset.
            let moved = self.traffic.conns.remove(&id).unwrap_or(0);
            if !self.traffic.stuck.contains(&id) {
                self.traffic.pending += moved;
            }
            let total: u64 = self.traffic.conns.values().sum::<u64>() + moved;
            self.emit(now, Some(id), "clients_moved_off").detail =
                Some(format!("{moved} of {total}"));
            self.traffic.in_msgs.remove(&id);
            self.traffic.out_msgs.remove(&id);
            self.traffic.rebalance_to.retain(|n| *n != id);
            self.schedule_clients_tick(now);
        }
        if to == Phase::Booting {
            self.traffic.in_msgs.remove(&id);
            self.traffic.out_msgs.remove(&id);
            let f = self.node(id).map(|n| n.faults.clone()).unwrap_or_default();
            if f.traffic_stops && !self.traffic.frozen {
                self.traffic.frozen = true;
                self.emit(now, Some(id), "traffic_stopped").detail =
                    Some("traffic-stops: every message counter froze".into());
            }
            // #397/#683: a peer restarted, so the clients of a node with the fault are
            // treated as offline: not counted, and they do not come back.
            let stuck: Vec<u64> = self
                .nodes
                .iter()
                .filter(|n| n.id != id && n.faults.clients_stuck)
                .map(|n| n.id)
                .filter(|n| !self.traffic.stuck.contains(n))
                .collect();
            for s in stuck {
                let gone = self.traffic.conns.insert(s, 0).unwrap_or(0);
                self.traffic.lost += gone;
                self.traffic.stuck.push(s);
                self.emit(now, Some(s), "clients_stuck").detail = Some(format!(
                    "{gone} clients of node {s} no longer counted online after node {id} restarted"
                ));
            }
        }
        if !from.api_open() && to.api_open() {
            self.traffic.conns.entry(id).or_insert(0);
            if !self.traffic.rebalance_to.contains(&id) {
                self.traffic.rebalance_to.push(id);
            }
            self.schedule_clients_tick(now);
        }
    }

    /// `clients-drop` (a hostile knob of the attack tests): node `id`'s counted clients
    /// disconnect now and are lost (never pending, never counted again).
    pub(super) fn drop_clients(&mut self, id: u64, now: u64) {
        self.traffic_advance(now);
        let gone = self.traffic.conns.get_mut(&id).map_or(0, std::mem::take);
        self.traffic.lost += gone;
        self.emit(now, Some(id), "clients_dropped").detail =
            Some(format!("{gone} clients of node {id} dropped for good"));
    }

    /// One tick: pending clients reconnect (about half of them), some rebalance to nodes
    /// that came back.
    pub(super) fn clients_tick(&mut self, now: u64) {
        self.traffic.tick_scheduled = false;
        self.traffic_advance(now);
        let up: Vec<u64> = self
            .nodes
            .iter()
            .map(|n| n.id)
            .filter(|id| self.is_member(*id) && self.takes_clients(*id))
            .collect();
        let mut again = false;
        if self.traffic.pending > 0 && !up.is_empty() {
            let mut moving = self.traffic.pending.div_ceil(2);
            self.traffic.pending -= moving;
            // One at a time to the least loaded node (even spread), in chunks.
            while moving > 0 {
                let chunk = moving.div_ceil(up.len() as u64);
                let least = *up
                    .iter()
                    .min_by_key(|id| self.traffic.conns.get(id).copied().unwrap_or(0))
                    .expect("up is not empty"); // ok: checked above
                *self.traffic.conns.entry(least).or_default() += chunk;
                moving -= chunk;
            }
            again |= self.traffic.pending > 0;
        }
        if self.traffic.pending == 0 {
            let counted: u64 = up
                .iter()
                .map(|id| self.traffic.conns.get(id).copied().unwrap_or(0))
                .sum();
            let target = (counted / up.len().max(1) as u64) / 2;
            for id in self.traffic.rebalance_to.clone() {
                if !up.contains(&id) {
                    continue;
                }
                let have = self.traffic.conns.get(&id).copied().unwrap_or(0);
                if have >= target {
                    self.traffic.rebalance_to.retain(|n| *n != id);
                    continue;
                }
                let step = (target - have).div_ceil(3);
                let Some(&from) = up
                    .iter()
                    .filter(|p| **p != id)
                    .max_by_key(|p| self.traffic.conns.get(p).copied().unwrap_or(0))
                else {
                    continue;
                };
                let avail = self.traffic.conns.get(&from).copied().unwrap_or(0);
                let step = step.min(avail);
                *self.traffic.conns.entry(from).or_default() -= step;
                *self.traffic.conns.entry(id).or_default() += step;
                again = true;
            }
        } else {
            again = true;
        }
        if again {
            self.schedule_clients_tick(now);
        }
    }

    /// `/varz` service fields of node `id` at `now`: connections, in/out msgs,
    /// slow_clients, retry_queue.
    pub fn service_varz(&mut self, id: u64, now: u64) -> (u64, i64, i64, i64, i64) {
        self.traffic_advance(now);
        let t = &self.traffic;
        let conns = t.conns.get(&id).copied().unwrap_or(0);
        #[allow(clippy::cast_possible_truncation)]
        let count = |m: &BTreeMap<u64, f64>| m.get(&id).copied().unwrap_or(0.0) as i64;
        let up = t.conns.len().max(1) as u64;
        let retry = i64::try_from(t.pending / up / 4).unwrap_or(i64::MAX);
        (conns, count(&t.in_msgs), count(&t.out_msgs), 0, retry)
    }

    /// `POST /message/send` through node `id` (upstream `internal/api/message.go` `send`,
    /// `messageSendReq` in `message_model.go`). Returns the reply body or an error text.
    pub fn message_send(&mut self, id: u64, req: &Value, now: u64) -> Result<Value, String> {
        let payload = req.get("payload").cloned().unwrap_or(Value::Null);
        if payload.as_str().is_none_or(str::is_empty) {
            return Err("payload不能为空！".into());
        }
        let channel_id = req
            .get("channel_id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim()
            .to_string();
        if channel_id.is_empty() {
            return Err("无法处理发送消息请求！".into());
        }
        if !self.node(id).is_some_and(|n| n.knows_controller) {
            return Err("获取频道所在节点失败！".into());
        }
        let channel_type = req
            .get("channel_type")
            .and_then(Value::as_u64)
            .and_then(|t| u8::try_from(t).ok())
            .unwrap_or(0);
        let client_msg_no = req
            .get("client_msg_no")
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .map_or_else(
                || format!("sim{}0", self.traffic.next_message_id),
                str::to_string,
            );
        let from_uid = req
            .get("from_uid")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let seq = self
            .traffic
            .messages
            .iter()
            .filter(|m| m.channel_id == channel_id && m.channel_type == channel_type)
            .count() as u64
            + 1;
        self.traffic.next_message_id += 1;
        let message_id = self.traffic.next_message_id;
        let only_on = self
            .node(id)
            .is_some_and(|n| n.faults.no_replicate)
            .then_some(id);
        let timestamp = self.wall_secs(now);
        self.traffic.messages.push(Stored {
            channel_id: channel_id.clone(),
            channel_type,
            seq,
            message_id,
            client_msg_no: client_msg_no.clone(),
            from_uid,
            payload,
            timestamp,
            only_on,
        });
        self.emit(now, Some(id), "message_sent").detail = Some(format!(
            "channel_id={channel_id} channel_type={channel_type} client_msg_no={client_msg_no}"
        ));
        Ok(
            json!({"status": 200, "data": {"message_id": message_id, "client_msg_no": client_msg_no}}),
        )
    }

    /// `POST /channel/messagesync` on node `id` (upstream `internal/api/message.go`
    /// `syncMessages`, `syncMessageResp` in `channel_model.go`): the channel's last
    /// `limit` messages readable here.
    pub fn message_sync(&self, id: u64, req: &Value) -> Result<Value, String> {
        let s = |k: &str| req.get(k).and_then(Value::as_str).unwrap_or("").trim();
        let channel_id = s("channel_id");
        if channel_id.is_empty() {
            return Err("channel_id不能为空！".into());
        }
        if s("login_uid").is_empty() {
            return Err("login_uid不能为空！".into());
        }
        if !self.node(id).is_some_and(|n| n.knows_controller) {
            return Err("获取频道所在节点失败！".into());
        }
        let channel_type = req.get("channel_type").and_then(Value::as_u64).unwrap_or(0);
        let limit = req
            .get("limit")
            .and_then(Value::as_u64)
            .filter(|l| *l > 0)
            .unwrap_or(20)
            .min(10_000);
        let mine: Vec<&Stored> = self
            .traffic
            .messages
            .iter()
            .filter(|m| m.channel_id == channel_id && u64::from(m.channel_type) == channel_type)
            .filter(|m| m.only_on.is_none_or(|n| n == id))
            .collect();
        let skip = mine
            .len()
            .saturating_sub(usize::try_from(limit).unwrap_or(usize::MAX));
        let messages: Vec<Value> = mine[skip..]
            .iter()
            .map(|m| {
                json!({
                    "header": {"no_persist": 0, "red_dot": 0, "sync_once": 0},
                    "setting": 0, "message_id": m.message_id,
                    "message_idstr": m.message_id.to_string(),
                    "client_msg_no": m.client_msg_no, "message_seq": m.seq,
                    "from_uid": m.from_uid, "channel_id": m.channel_id,
                    "channel_type": m.channel_type, "expire": 0,
                    "timestamp": m.timestamp, "payload": m.payload,
                })
            })
            .collect();
        Ok(json!({
            "start_message_seq": req.get("start_message_seq").and_then(Value::as_u64).unwrap_or(0),
            "end_message_seq": req.get("end_message_seq").and_then(Value::as_u64).unwrap_or(0),
            "more": 0,
            "messages": messages,
        }))
    }
}

#[cfg(test)]
mod tests;
