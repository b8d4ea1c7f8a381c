//! Applying and clearing faults on the model (DESIGN §7), plus the effective settings of a node
//! in WuKongIM env form (facts §5.1, §5.2) and the simulated network check.

use super::faults::{FaultKind, Faults};
use super::{Cluster, Phase, Timer, View, node_status, timing};

impl Cluster {
    /// `wksim ctl fault NODE KIND [ARG]`.
    pub fn apply_fault(&mut self, id: u64, kind: FaultKind, now: u64) -> Result<(), String> {
        if self.node(id).is_none() {
            return Err(format!("unknown node {id}"));
        }
        if kind == FaultKind::LeaderLost && self.controller().is_none() {
            return Err(
                "there is no controller to lose track of yet (an election is under way)".into(),
            );
        }
        if kind == FaultKind::LeaderLost && self.config.controller == id {
            return Err(format!(
                "node {id} is the controller: it cannot lose track of itself (pick a follower)"
            ));
        }
        let e = self.emit(now, Some(id), "fault");
        e.detail = Some(kind.describe());
        let f = &mut self.node_mut(id).faults;
        match kind {
            FaultKind::NeverStarts => f.never_starts = true,
            FaultKind::CrashLoop => f.crash_loop = true,
            FaultKind::WrongVersion => f.wrong_version = true,
            FaultKind::SlowStart(s) => f.slow_start_secs = Some(s),
            FaultKind::SlowRejoin(s) => f.slow_rejoin_secs = Some(s),
            FaultKind::SlowCatchUp(s) => f.slow_catch_up_secs = Some(s),
            FaultKind::SlowMigrate(s) => f.slow_migrate_secs = Some(s),
            FaultKind::SlowJoin(s) => f.slow_join_secs = Some(s),
            FaultKind::StuckJoining => {
                f.stuck_joining = true;
                // A member that is online and caught up shows #529 at once.
                if self.rejoined(id) {
                    self.mark_stuck_joining(id, now);
                }
            }
            FaultKind::NoRejoin => f.no_rejoin = true,
            FaultKind::ClientsStuck => f.clients_stuck = true,
            FaultKind::TrafficStops => f.traffic_stops = true,
            FaultKind::NoReplicate => f.no_replicate = true,
            FaultKind::LeaderLost => {
                f.leader_lost = true;
                // Still connected (its pings reach the controller: never marked offline),
                // but it no longer knows who the controller is; its view freezes (§4.3).
                let snapshot = std::sync::Arc::new(self.config.clone());
                let n = self.node_mut(id);
                if n.phase.api_open() && n.knows_controller {
                    n.knows_controller = false;
                    if matches!(n.view, View::Live) {
                        n.view = View::Frozen(snapshot);
                    }
                    self.log(id, now, "WARN", "leader not found");
                }
            }
            FaultKind::ClientsDrop => self.drop_clients(id, now),
            FaultKind::Blackhole => f.blackhole = true,
            FaultKind::Http500 => f.http500 = true,
            FaultKind::Token(t) => f.token = Some(t),
            FaultKind::Config(k, v) => {
                f.config.insert(k, v);
            }
            FaultKind::Netsplit(peer) => {
                f.netsplit.insert(peer);
                self.log(
                    id,
                    now,
                    "WARN",
                    &format!("connect not authed (node {peer})"),
                );
                // Its SyncReq no longer reaches the controller: marked offline (facts §4.2).
                if self.config.controller == peer && self.is_connected(id) {
                    self.disconnect(id, now);
                    self.log(id, now, "WARN", "leader not found");
                }
            }
            // Like a real log line: timestamped, at ERROR level.
            FaultKind::Log(text) => self.log(id, now, "ERROR", &text),
            FaultKind::Partition => {
                f.partition = true;
                // It keeps answering from its frozen view and believes it is fine (facts §4.3).
                self.disconnect(id, now);
                self.log(id, now, "WARN", "connect not authed");
                self.log(id, now, "WARN", "leader not found");
            }
        }
        Ok(())
    }

    /// External mode: the node's agent stopped (or resumed) answering the brain, e.g. after
    /// `docker network disconnect`. Cut off = partitioned from the controller (facts §4.2).
    pub fn set_cut_off(&mut self, id: u64, cut: bool, now: u64) {
        let Some(n) = self.node(id) else { return };
        if n.faults.partition == cut {
            return;
        }
        let g = n.generation;
        let e = self.emit(now, Some(id), "network");
        e.to = Some(if cut { "cut_off" } else { "reconnected" }.into());
        self.node_mut(id).faults.partition = cut;
        if cut {
            self.disconnect(id, now);
            self.log(id, now, "WARN", "connect not authed");
        } else if self.node(id).is_some_and(|n| n.phase.api_open()) {
            self.schedule(now + timing::STALE, Timer::Rejoin(id, g));
        }
    }

    /// `wksim ctl clear NODE`: removes every fault; a node held back by `partition`/`no-rejoin`
    /// rejoins after the usual stale delay.
    pub fn clear_faults(&mut self, id: u64, now: u64) -> Result<(), String> {
        let n = self.node(id).ok_or_else(|| format!("unknown node {id}"))?;
        let held_back = n.phase.api_open()
            && !n.connected
            && (n.faults.partition || n.faults.no_rejoin || !n.faults.netsplit.is_empty());
        let g = n.generation;
        let was_stuck = n.faults.stuck_joining;
        // `leader-lost`: it follows the controller again shortly (`rejoin`, then catch-up).
        let lost = n.faults.leader_lost && n.phase.api_open() && !n.knows_controller;
        self.node_mut(id).faults = Faults::default();
        self.emit(now, Some(id), "fault").detail = Some("clear".into());
        if was_stuck
            && self
                .config
                .node(id)
                .is_some_and(|cn| cn.status == node_status::JOINING)
            && self.rejoined(id)
        {
            // `ProposeJoined` at last (what unmerged upstream PR #531 would do).
            if let Some(cn) = self.config.nodes.iter_mut().find(|n| n.id == id) {
                cn.status = node_status::JOINED;
            }
            self.bump();
            self.emit(now, Some(id), "join").to = Some("joined".into());
        }
        if held_back {
            self.schedule(now + timing::STALE, Timer::Rejoin(id, g));
        } else if lost {
            self.schedule(now + timing::RETRY, Timer::Rejoin(id, g));
        }
        Ok(())
    }

    /// Effective settings as `WK_*` env pairs (facts §5.2), with `fault config` overrides.
    pub fn settings(&self, id: u64) -> Option<Vec<(String, String)>> {
        let n = self.node(id)?;
        let host = &self.opts.host;
        let init: Vec<String> = self
            .nodes
            .iter()
            .map(|p| format!("{}@{host}:{}", p.id, p.cluster_port))
            .collect();
        let mut out = vec![
            ("WK_CLUSTER_NODEID".to_string(), n.id.to_string()),
            (
                "WK_CLUSTER_SERVERADDR".into(),
                format!("{host}:{}", n.cluster_port),
            ),
            (
                "WK_CLUSTER_APIURL".into(),
                format!("http://{host}:{}", n.api_port),
            ),
            ("WK_CLUSTER_INITNODES".into(), init.join(" ")),
            (
                "WK_CLUSTER_SLOTCOUNT".into(),
                self.opts.slot_count.to_string(),
            ),
            (
                "WK_CLUSTER_SLOTREPLICACOUNT".into(),
                self.opts.replicas.to_string(),
            ),
            (
                "WK_CLUSTER_CHANNELREPLICACOUNT".into(),
                self.opts.replicas.to_string(),
            ),
            (
                "WK_MANAGERTOKEN".into(),
                self.opts.token.clone().unwrap_or_default(),
            ),
            ("WK_JWT_SECRET".into(), "wksim-jwt-secret".into()),
            ("WK_MODE".into(), "release".into()),
        ];
        if let Some(t) = &n.faults.token {
            out[7].1.clone_from(t);
        }
        for (k, v) in &n.faults.config {
            match out.iter_mut().find(|(key, _)| key == k) {
                Some(entry) => entry.1.clone_from(v),
                None => out.push((k.clone(), v.clone())),
            }
        }
        Some(out)
    }

    /// The node's `cluster.slotCount` option (compared by `/health`, facts §3.1).
    pub fn slot_count_option(&self, id: u64) -> u32 {
        self.node(id)
            .and_then(|n| n.faults.config.get("WK_CLUSTER_SLOTCOUNT"))
            .and_then(|v| v.parse().ok())
            .unwrap_or(self.opts.slot_count)
    }

    /// In the simulated network, may `from` reach `addr`? `Err` = unreachable by the model;
    /// `Ok(None)` = not a simulated address, `Ok(Some(id))` = owned by node `id` and up.
    pub fn route(&self, from: u64, addr: &str) -> Result<Option<u64>, String> {
        let n = self
            .node(from)
            .ok_or_else(|| format!("unknown node {from}"))?;
        // The check runs on the node's host, which is up even when WuKongIM is not.
        let host = &self.opts.host;
        let owner = self.nodes.iter().find(|p| {
            addr == format!("{host}:{}", p.cluster_port) || addr == format!("{host}:{}", p.api_port)
        });
        let Some(peer) = owner else { return Ok(None) };
        if n.faults.netsplit.contains(&peer.id) {
            return Err("unreachable".into());
        }
        let cluster_port = addr.ends_with(&format!(":{}", peer.cluster_port));
        let up = if cluster_port {
            peer.phase.running()
        } else {
            peer.phase.api_open()
        };
        if up && peer.phase != Phase::Crashed {
            Ok(Some(peer.id))
        } else {
            Err("unreachable".into())
        }
    }
}
