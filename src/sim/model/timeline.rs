//! Transitions of the cluster model: stop, start, offline marking, slot and controller
//! elections, rejoin, config catch-up and leader migration back (facts §4.1–§4.4, §11.5).

use std::sync::Arc;

use super::faults::ms;
use super::split::SplitRole;
use super::{Build, Cluster, Phase, Timer, View, timing};

impl Cluster {
    pub(super) fn fire(&mut self, t: Timer, now: u64) {
        let current = |c: &Cluster, id: u64, g: u64| c.node(id).is_some_and(|n| n.generation == g);
        match t {
            Timer::StopDone(id, g) if current(self, id, g) => self.go_down(id, Phase::Stopped, now),
            Timer::BootDone(id, g) if current(self, id, g) => self.boot_done(id, now),
            Timer::BootPanic(id, g) if current(self, id, g) => {
                // facts §4.1 step 5 / issue #197; a container restart policy brings it back.
                self.crash(id, now, "panic: wait all slots ready timeout");
            }
            Timer::Rejoin(id, g) if current(self, id, g) => self.rejoin(id, now),
            Timer::CatchUp(id, g) if current(self, id, g) => self.catch_up(id, now),
            Timer::MigrateDone(id, g) if current(self, id, g) => self.migrate_done(id, now),
            Timer::Crash(id, g) if current(self, id, g) && self.node_mut(id).faults.crash_loop => {
                // issue #545/#546: catch-up panics, exit code 2, restarted by the runtime.
                self.crash(
                    id,
                    now,
                    "panic: apply slot logs failed: context deadline exceeded",
                );
            }
            Timer::CrashRestart(id, g) if current(self, id, g) => self.boot(id, now),
            Timer::SlotWait(id, g) if current(self, id, g) => {
                // `MustWaitAllSlotsReady(1 minute)` on the local view (facts §4.1, §4.3).
                let n = self.node_mut(id).clone();
                let ready = self
                    .view_of(&n)
                    .is_some_and(|c| !c.slots.is_empty() && c.slots.iter().all(|s| s.leader != 0));
                if !ready {
                    self.crash(id, now, "panic: wait all slots ready timeout");
                }
            }
            Timer::MarkOffline(id) => self.mark_offline(id, now),
            Timer::JoinStep(id, g) if current(self, id, g) => self.join_step(id, now),
            Timer::Clients => self.clients_tick(now),
            Timer::SlotElect => self.elect_slots(now),
            Timer::ControllerElect => self.elect_controller(now),
            _ => {}
        }
    }

    /// `wksim ctl start`: the process starts (like `docker compose up -d`). Starting a node
    /// that already runs that build is a no-op, recorded as a `start_noop` event (like
    /// `docker compose up -d` on an up-to-date container).
    pub fn start(&mut self, id: u64, version: Option<Build>, now: u64) -> Result<(), String> {
        let n = self.node(id).ok_or_else(|| format!("unknown node {id}"))?;
        if n.phase.running() {
            let same = version.as_ref().is_none_or(|v| *v == n.version);
            if same && !n.stopping {
                let detail = format!("already running {} ({})", n.version, n.phase.name());
                self.emit(now, Some(id), "start_noop").detail = Some(detail);
                return Ok(());
            }
            return Err(format!(
                "node {id} is already running {} ({}); stop it first",
                n.version,
                if n.stopping {
                    "stopping"
                } else {
                    n.phase.name()
                }
            ));
        }
        if let Some(v) = version {
            if n.faults.wrong_version {
                // The image was not pulled: it comes back on its old version.
                self.log(
                    id,
                    now,
                    "WARN",
                    &format!("image for {v} not found locally, using the previous one"),
                );
            } else {
                self.node_mut(id).version = v;
            }
        }
        self.boot(id, now);
        Ok(())
    }

    /// `wksim ctl stop`: graceful stop (SIGTERM), down after `GRACEFUL_STOP`. A stop that
    /// acts emits a `stop` event carrying `cluster_settled` (the sim's own judgement); a stop
    /// of a node that is already down or stopping emits `stop_noop`.
    pub fn stop(&mut self, id: u64, now: u64) -> Result<(), String> {
        let n = self.node(id).ok_or_else(|| format!("unknown node {id}"))?;
        match n.phase {
            Phase::Stopped | Phase::Crashed => {
                let was = n.phase;
                self.emit(now, Some(id), "stop_noop").detail = Some(was.name().into());
                if was == Phase::Crashed {
                    self.go_down(id, Phase::Stopped, now);
                }
                Ok(())
            }
            _ if n.stopping => {
                self.emit(now, Some(id), "stop_noop").detail = Some("already stopping".into());
                Ok(())
            }
            _ => {
                let g = n.generation;
                self.emit_stop(id, now, "stop");
                self.node_mut(id).stopping = true;
                self.log(
                    id,
                    now,
                    "INFO",
                    "【Server】received signal terminated, stopping...",
                );
                self.schedule(now + timing::GRACEFUL_STOP, Timer::StopDone(id, g));
                Ok(())
            }
        }
    }

    /// A `stop` event with the sim's strict settledness at this moment.
    pub(super) fn emit_stop(&mut self, id: u64, now: u64, how: &str) {
        let settled = self.settled();
        let e = self.emit(now, Some(id), "stop");
        e.detail = Some(how.to_string());
        e.settled = Some(settled);
    }

    /// `wksim ctl bounce`: the process is killed and started again at once (`docker restart
    /// -t 0`, a crash under a restart policy): back well inside the controller's ~6 s offline
    /// window (facts §4.2), so it is never marked offline, while it is not rejoined yet.
    pub fn bounce(&mut self, id: u64, version: Option<Build>, now: u64) -> Result<(), String> {
        let n = self.node(id).ok_or_else(|| format!("unknown node {id}"))?;
        if !n.phase.running() {
            return Err(format!(
                "node {id} is not running ({}); use `start`",
                n.phase.name()
            ));
        }
        self.emit_stop(id, now, "bounce");
        self.log(id, now, "INFO", "【Server】killed, restarting at once");
        self.go_down(id, Phase::Stopped, now);
        self.start(id, version, now)
    }

    pub(super) fn boot(&mut self, id: u64, now: u64) {
        let n = self.node_mut(id);
        n.generation += 1;
        n.stopping = false;
        n.started_at = now;
        let (g, faults) = (n.generation, n.faults.clone());
        n.island = false;
        let version = n.version.clone();
        self.set_phase(id, Phase::Booting, now);
        match self.split_role_at_boot(id) {
            SplitRole::Seed => self.seed(id, now),
            SplitRole::Island => self.become_island(id, now),
            SplitRole::Normal => {}
        }
        let v = self.version_string(&version);
        self.log(id, now, "INFO", "【Server】WuKongIM is Starting...");
        self.log(id, now, "INFO", &format!("Version: {v}"));
        self.log(
            id,
            now,
            "INFO",
            &format!("Git: {}-{}", version.commit_date(), version.commit()),
        );
        if faults.never_starts {
            // API never becomes usable; the slot wait panics after 60 s (facts §4.1, #197).
            self.log(id, now, "WARN", "leader not found");
            self.schedule(now + timing::SLOT_WAIT_PANIC, Timer::BootPanic(id, g));
            return;
        }
        let slow = ms(faults.slow_start_secs);
        self.schedule(now + timing::BOOT + slow, Timer::BootDone(id, g));
    }

    fn boot_done(&mut self, id: u64, now: u64) {
        let n = self.node_mut(id);
        n.knows_controller = false;
        let (g, faults) = (n.generation, n.faults.clone());
        self.set_phase(id, Phase::Stale, now);
        self.log(id, now, "INFO", "ApiServer started");
        self.log(id, now, "INFO", "ManagerServer started");
        self.log(id, now, "INFO", "Server is ready");
        let n = self.node_mut(id);
        if n.caps().waits_for_slots {
            self.schedule(now + timing::SLOT_WAIT_PANIC, Timer::SlotWait(id, g));
        }
        if faults.crash_loop {
            self.schedule(now + timing::CRASH_AFTER_API, Timer::Crash(id, g));
        }
        if self.node(id).is_some_and(|n| n.island) {
            // #310: it believes it is the whole cluster and never looks for its peers.
            return;
        }
        if faults.no_rejoin || faults.partition {
            self.log(id, now, "WARN", "connect not authed");
            self.log(id, now, "WARN", "leader not found");
        } else {
            let slow = ms(faults.slow_rejoin_secs);
            if slow > 0 {
                // Its messages reach the controller, which resets its pong counter (facts
                // §4.2), so it is never marked offline; but it has not applied the config log
                // and knows no leader yet: a stale peer whose `/health` says ok (§4.3).
                let n = self.node_mut(id);
                n.connected = true;
                n.disconnected_since = None;
                self.log(id, now, "WARN", "leader not found");
            }
            self.schedule(now + timing::STALE + slow, Timer::Rejoin(id, g));
        }
    }

    /// A panic: the process exits (code 2) and the runtime restarts it after `CRASH_RESTART`.
    fn crash(&mut self, id: u64, now: u64, panic: &str) {
        self.log(id, now, "ERROR", panic);
        self.go_down(id, Phase::Crashed, now);
        if let Some(e) = self
            .events
            .iter_mut()
            .rev()
            .find(|e| e.kind == "state" && e.node == Some(id))
        {
            e.detail = Some(panic.to_string());
        }
        let g = self.node_mut(id).generation;
        if !self.opts.external {
            self.schedule(now + timing::CRASH_RESTART, Timer::CrashRestart(id, g));
        }
    }

    /// The process (or its link to the controller) goes away; the view freezes.
    pub(super) fn go_down(&mut self, id: u64, to: Phase, now: u64) {
        let snapshot = Arc::new(self.config.clone());
        let n = self.node_mut(id);
        n.generation += 1;
        n.stopping = false;
        if matches!(n.view, View::Live) {
            n.view = View::Frozen(snapshot);
        }
        // A leader move towards a node that went away is abandoned.
        let mut cancelled = false;
        for s in &mut self.config.slots {
            if s.migrate_to == id {
                s.migrate_from = 0;
                s.migrate_to = 0;
                cancelled = true;
            }
        }
        if cancelled {
            self.bump();
        }
        self.set_phase(id, to, now);
        self.disconnect(id, now);
        if to == Phase::Stopped {
            self.log(id, now, "INFO", "【Server】WuKongIM stopped");
        }
    }

    /// Loses the controller session: offline marking after `OFFLINE_AFTER` (facts §4.2).
    pub(super) fn disconnect(&mut self, id: u64, now: u64) {
        let snapshot = Arc::new(self.config.clone());
        let n = self.node_mut(id);
        n.knows_controller = false;
        if matches!(n.view, View::Live) {
            n.view = View::Frozen(snapshot);
        }
        if !n.connected {
            return;
        }
        n.connected = false;
        n.disconnected_since = Some(now);
        self.schedule(now + timing::OFFLINE_AFTER, Timer::MarkOffline(id));
        if self.config.controller == id {
            // The config raft must elect a new leader; `leader not found` meanwhile (facts §4.4).
            self.config.controller = 0;
            self.schedule(now + timing::CONTROLLER_ELECT, Timer::ControllerElect);
        }
        self.check_quorum(now);
    }

    fn mark_offline(&mut self, id: u64, now: u64) {
        let Some(n) = self.node(id) else { return };
        match n.disconnected_since {
            Some(t) if !n.connected && now >= t + timing::OFFLINE_AFTER => {}
            _ => return,
        }
        if self.controller().is_none() {
            self.schedule(now + timing::RETRY, Timer::MarkOffline(id));
            return;
        }
        if !self.config.is_online(id) {
            return;
        }
        let secs = self.wall_secs(now);
        self.config.set_online(id, false, secs);
        let mut candidates = 0;
        for i in 0..self.config.slots.len() {
            if self.config.slots[i].leader == id {
                let expect = self.config.slots[i]
                    .replicas
                    .iter()
                    .copied()
                    .find(|r| *r != id && self.is_connected(*r));
                let s = &mut self.config.slots[i];
                s.status = 1;
                s.expect_leader = expect.unwrap_or(0);
                s.migrate_from = 0;
                s.migrate_to = 0;
                candidates += 1;
            }
        }
        self.bump();
        self.emit(now, Some(id), "offline_marked").detail =
            Some(format!("config_version {}", self.config.version));
        if candidates > 0 {
            self.emit(now, None, "slots").to = Some("candidate".into());
            self.schedule(now + timing::SLOT_ELECT, Timer::SlotElect);
        }
    }

    pub fn is_connected(&self, id: u64) -> bool {
        self.node(id).is_some_and(|n| n.connected)
    }
}
