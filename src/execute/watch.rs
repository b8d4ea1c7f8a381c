//! The waiting parts of a run: cluster settled before a node is touched (signal F), the
//! readiness gate (A–G held for `stable_for`), and the soak. Each polls the cluster with
//! [`crate::probe::observe`] and decides with the pure functions of [`crate::gate`].

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::events::Event;
use crate::gate::{self, NodeBaseline, Signal, SignalState, Stability};
use crate::probe::{self, ClusterView, ProbeError};
use crate::version::WkVersion;

use super::{NodeEnd, Runner};
use crate::plan::{PlanStepKind, PlannedNode};
use crate::state::{Baseline, now_ms};

/// Why waiting stopped without success.
#[derive(Debug, Clone)]
pub enum WaitFailure {
    /// A signal never held before the deadline.
    Timeout {
        signal: Option<String>,
        observed: String,
    },
    /// The node restarted on its own between polls.
    CrashLoop { observed: String },
    /// Another node went down while this one was being gated or soaked.
    SecondFailure { node: u64, observed: String },
    /// A node answered 401 (token rotated or wrong).
    Auth { node: u64 },
    /// The cluster got worse during the soak.
    Unhealthy { observed: String },
    /// The operator pressed Ctrl-C a second time.
    Interrupted,
}

impl WaitFailure {
    pub fn reason(&self) -> String {
        match self {
            WaitFailure::Timeout {
                signal: Some(s),
                observed,
            } => format!("gate signal {s} never held: {observed}"),
            WaitFailure::Timeout {
                signal: None,
                observed,
            } => format!("timed out: {observed}"),
            WaitFailure::CrashLoop { observed } => format!("crash loop: {observed}"),
            WaitFailure::SecondFailure { node, observed } => {
                format!("node {node} failed while another node was down: {observed}")
            }
            WaitFailure::Auth { node } => {
                format!("node {node} answered 401: the managerToken was rejected (rotated?)")
            }
            WaitFailure::Unhealthy { observed } => {
                format!("cluster unhealthy during soak: {observed}")
            }
            WaitFailure::Interrupted => "interrupted".to_string(),
        }
    }
    pub fn signal(&self) -> Option<String> {
        match self {
            WaitFailure::Timeout { signal, .. } => signal.clone(),
            WaitFailure::CrashLoop { .. } => Some("G".into()),
            _ => None,
        }
    }
    pub fn observed(&self) -> Option<String> {
        match self {
            WaitFailure::Timeout { observed, .. }
            | WaitFailure::CrashLoop { observed }
            | WaitFailure::SecondFailure { observed, .. }
            | WaitFailure::Unhealthy { observed } => Some(observed.clone()),
            _ => None,
        }
    }
}

/// A node other than the one being worked on that does not answer for this many polls in
/// a row is a second failure: the run stops (never two nodes down).
const SECOND_FAILURE_POLLS: u32 = 3;

fn state_word(s: &SignalState) -> (&'static str, Option<String>) {
    match s {
        SignalState::Met => ("met", None),
        SignalState::NotYet(r) => ("not_yet", Some(r.clone())),
        SignalState::Unknown(r) => ("unknown", Some(r.clone())),
    }
}

/// Counts consecutive polls in which other nodes did not answer.
#[derive(Default)]
struct PeerWatch {
    misses: BTreeMap<u64, u32>,
}

impl PeerWatch {
    fn check(&mut self, view: &ClusterView, except: Option<u64>) -> Result<(), WaitFailure> {
        for n in &view.nodes {
            if matches!(n.error, Some(ProbeError::Unauthorized)) {
                return Err(WaitFailure::Auth { node: n.id });
            }
            if Some(n.id) == except {
                continue;
            }
            let down = !n.reachable && n.error.as_ref().is_some_and(ProbeError::is_unreachable);
            let miss = self.misses.entry(n.id).or_default();
            *miss = if down { *miss + 1 } else { 0 };
            if *miss >= SECOND_FAILURE_POLLS {
                let why = n
                    .error
                    .as_ref()
                    .map_or_else(|| "no answer".to_string(), ToString::to_string);
                return Err(WaitFailure::SecondFailure {
                    node: n.id,
                    observed: format!("node {} API: {why}", n.id),
                });
            }
        }
        Ok(())
    }
}

impl Runner<'_> {
    /// One poll focused on `node`: full answers from it, `/health` from the others,
    /// the cluster view from one more node (see [`probe::Scope::Focus`]).
    pub(super) async fn observe(&self, node: u64) -> ClusterView {
        probe::observe_scoped(&self.client, &self.ctx.manifest, probe::Scope::Focus(node)).await
    }

    /// Sleeps one poll interval; `Err` if the operator insists (second Ctrl-C).
    async fn pause(&self) -> Result<(), WaitFailure> {
        self.pause_for(self.ctx.manifest.policy.poll_interval).await
    }

    async fn pause_for(&self, d: Duration) -> Result<(), WaitFailure> {
        tokio::select! {
            () = tokio::time::sleep(d) => Ok(()),
            () = self.interrupt.reached(2) => Err(WaitFailure::Interrupted),
        }
    }

    /// Waits until the cluster is settled (signal F) before `node` is touched.
    pub(super) async fn wait_settled(&self, node: u64) -> Result<ClusterView, WaitFailure> {
        let deadline = Instant::now() + self.ctx.manifest.policy.node_timeout;
        let mut announced = false;
        let mut peers = PeerWatch::default();
        loop {
            let view = self.observe(node).await;
            peers.check(&view, None)?;
            match gate::cluster_settled(&view) {
                SignalState::Met => return Ok(view),
                SignalState::NotYet(r) | SignalState::Unknown(r) => {
                    if Instant::now() >= deadline {
                        return Err(WaitFailure::Timeout {
                            signal: Some("F cluster settled".into()),
                            observed: r,
                        });
                    }
                    if !announced {
                        self.emit(&Event::Waiting {
                            node: Some(node),
                            what: format!("cluster to settle before touching the node: {r}"),
                        });
                        announced = true;
                    }
                }
            }
            self.pause().await?;
        }
    }

    /// Waits for signal F and records the node's baseline (version, uptime) from the same
    /// observation. `Some(end)` when the node ends here (failure or Ctrl-C).
    pub(super) async fn settle_and_baseline(
        &mut self,
        pn: &PlannedNode,
        announce: bool,
    ) -> anyhow::Result<Option<NodeEnd>> {
        let id = pn.id;
        if announce {
            self.step_started(id, PlanStepKind::CheckSettled, None)?;
        }
        match self.wait_settled(id).await {
            Ok(view) => {
                let b = NodeBaseline::from_view(&view, id);
                let n = self.node_run(id);
                n.baseline = Some(Baseline {
                    version: b.version.as_ref().map(ToString::to_string),
                    uptime_s: b.uptime.map(|u| u.as_secs_f64()),
                    at_ms: now_ms(),
                });
                if !n.finished("check_settled") {
                    n.done.push("check_settled".into());
                }
                self.save()?;
            }
            Err(WaitFailure::Interrupted) => return self.interrupted(id, false).map(Some),
            Err(f) => {
                return self
                    .fail(
                        pn,
                        "check_settled",
                        &f.reason(),
                        f.signal(),
                        f.observed(),
                        false,
                    )
                    .await
                    .map(Some);
            }
        }
        if self.interrupt.requested() {
            return self.interrupted(id, false).map(Some);
        }
        Ok(None)
    }

    /// The readiness gate: A–G met continuously for `stable_for`, within `node_timeout`.
    pub(super) async fn wait_ready(
        &self,
        baseline: &NodeBaseline,
        target: &WkVersion,
        started: Instant,
    ) -> Result<ClusterView, WaitFailure> {
        let policy = &self.ctx.manifest.policy;
        let deadline = started + policy.node_timeout;
        let mut stability = Stability::new(policy.stable_for);
        let mut last: BTreeMap<Signal, SignalState> = BTreeMap::new();
        let mut prev: Option<ClusterView> = None;
        let mut peers = PeerWatch::default();
        let mut max_uptime: Option<Duration> = None;
        let mut went_down = false;
        // Once B has seen a new process on the target, that process stays proven: its
        // uptime is no longer compared with the wall clock (which drifts from the node's
        // clock, and from a simulator's accelerated one); a later restart is caught as a
        // crash loop (G) instead.
        let mut baseline = baseline.clone();
        loop {
            let view = self.observe(baseline.id).await;
            let now = Instant::now();
            let gs = gate::evaluate(&baseline, prev.as_ref(), &view, target);
            if gs
                .state(Signal::NewProcessOnTarget)
                .is_some_and(SignalState::is_met)
            {
                baseline.uptime = None;
            }
            for (sig, st) in &gs.signals {
                if last.get(sig) != Some(st) {
                    let (word, reason) = state_word(st);
                    self.emit(&Event::GateSignal {
                        node: baseline.id,
                        signal: sig.letter().to_string(),
                        name: sig.name().to_string(),
                        state: word.to_string(),
                        reason,
                    });
                    last.insert(*sig, st.clone());
                }
            }
            // A restart of the new process, even one hidden between two polls while the
            // node was unreachable (#509, #545): its uptime falls below the highest seen.
            let up = on_target_uptime(&view, baseline.id, target);
            let refused = view
                .node(baseline.id)
                .is_some_and(|n| matches!(n.error, Some(ProbeError::Refused)));
            if refused && max_uptime.is_some() {
                went_down = true;
            }
            if up.is_some() && went_down {
                return Err(WaitFailure::CrashLoop {
                    observed: "the new process went down after it had started and came back: it restarts on its own".into(),
                });
            }
            if let Some(u) = up {
                if max_uptime.is_some_and(|m| u + UPTIME_SLACK < m) {
                    return Err(WaitFailure::CrashLoop {
                        observed: format!(
                            "uptime fell from {}s to {}s: the new process restarted on its own",
                            max_uptime.map_or(0, |m| m.as_secs()),
                            u.as_secs()
                        ),
                    });
                }
                max_uptime = Some(max_uptime.map_or(u, |m| m.max(u)));
            }
            if gs.crash_loop {
                return Err(WaitFailure::CrashLoop {
                    observed: "uptime went down between polls: the process restarted on its own"
                        .into(),
                });
            }
            peers.check(&view, Some(baseline.id))?;
            if stability.update(&gs, now) {
                return Ok(view);
            }
            if now >= deadline {
                if went_down {
                    return Err(WaitFailure::CrashLoop {
                        observed:
                            "the new process went down after it had started and did not come back"
                                .into(),
                    });
                }
                let (signal, observed) = match gs.waiting_on() {
                    Some((s, st)) => (
                        Some(format!("{} {}", s.letter(), s.name())),
                        state_word(st).1.unwrap_or_default(),
                    ),
                    None => (
                        None,
                        format!(
                            "signals held for less than {}s",
                            policy.stable_for.as_secs_f64()
                        ),
                    ),
                };
                return Err(WaitFailure::Timeout { signal, observed });
            }
            // Compare with the last poll the node answered: a crash loop restarts it between
            // polls, and a poll that finds it down must not hide the reset uptime (G).
            if view.node(baseline.id).is_some_and(|n| n.reachable) {
                prev = Some(view);
            }
            // While the signals hold, the last poll lands exactly when `stable_for` ends,
            // so readiness is seen without up to one poll interval of delay.
            let poll = policy.poll_interval;
            let next = stability.held_for(Instant::now()).map_or(poll, |held| {
                policy
                    .stable_for
                    .saturating_sub(held)
                    .clamp(Duration::from_millis(10), poll)
            });
            self.pause_for(next).await?;
        }
    }

    /// A node upgraded by an earlier run: it answers on the target version, its `/health`
    /// is 200 and it knows the controller (signals A, B's version, C), within `node_timeout`.
    pub(super) async fn verify_upgraded(&self, node: u64) -> Result<(), WaitFailure> {
        let deadline = Instant::now() + self.ctx.manifest.policy.node_timeout;
        loop {
            let view = self.observe(node).await;
            let problem = match view.node(node) {
                None => Some("not observed".to_string()),
                Some(n) if !n.reachable => Some(
                    n.error
                        .as_ref()
                        .map_or_else(|| "no answer".into(), ToString::to_string),
                ),
                Some(n)
                    if !n
                        .version
                        .as_ref()
                        .is_some_and(|v| v.same_build(&self.target)) =>
                {
                    Some(format!(
                        "runs {}, not {}",
                        n.version_raw.as_deref().unwrap_or("an unknown version"),
                        self.target
                    ))
                }
                Some(n) if n.health != probe::HealthState::Ok => {
                    Some(format!("`/health` is {:?}", n.health))
                }
                Some(n) if !n.knows_controller() => {
                    Some("does not know the controller".to_string())
                }
                Some(_) => None,
            };
            let Some(problem) = problem else {
                return Ok(());
            };
            if Instant::now() >= deadline {
                return Err(WaitFailure::Timeout {
                    signal: None,
                    observed: format!("node {node}, upgraded by the earlier run, {problem}"),
                });
            }
            self.pause().await?;
        }
    }

    /// Watches the whole cluster for `policy.soak`: any node unreachable, failing health,
    /// offline, a leaderless slot or no controller fails the soak.
    pub(super) async fn soak(&self, node: u64) -> Result<Duration, WaitFailure> {
        let started = Instant::now();
        let soak = self.ctx.manifest.policy.soak;
        let mut peers = PeerWatch::default();
        while started.elapsed() < soak {
            if self.interrupt.requested() {
                break;
            }
            let view = self.observe(node).await;
            peers.check(&view, None)?;
            if let Some(problem) = soak_problem(&view) {
                return Err(WaitFailure::Unhealthy {
                    observed: format!("while soaking node {node}: {problem}"),
                });
            }
            let left = soak.saturating_sub(started.elapsed());
            tokio::select! {
                () = tokio::time::sleep(self.ctx.manifest.policy.poll_interval.min(left)) => {}
                () = self.interrupt.reached(1) => {}
            }
        }
        Ok(started.elapsed())
    }
}

/// Go reports uptime in whole seconds; a drop smaller than this is rounding.
const UPTIME_SLACK: Duration = Duration::from_secs(2);

/// The node's uptime when it answers on the target version.
fn on_target_uptime(view: &ClusterView, id: u64, target: &WkVersion) -> Option<Duration> {
    let n = view.node(id)?;
    if n.reachable && n.version.as_ref().is_some_and(|v| v.same_build(target)) {
        n.uptime
    } else {
        None
    }
}

/// What makes the cluster unhealthy during a soak (slot leader migrations are normal
/// balancing after a restart, facts §4.4, and do not count).
pub fn soak_problem(view: &ClusterView) -> Option<String> {
    for n in &view.nodes {
        if !n.reachable {
            let why = n
                .error
                .as_ref()
                .map_or_else(|| "no answer".to_string(), ToString::to_string);
            return Some(format!("node {} unreachable ({why})", n.id));
        }
        if let probe::HealthState::Failing(m) = &n.health {
            return Some(format!("node {} /health failing: {m}", n.id));
        }
        if n.info_online == Some(false) || n.simple_online == Some(false) {
            return Some(format!("node {} offline in the controller's view", n.id));
        }
    }
    if view.controller.is_none() && view.slots.is_none() {
        return Some("no controller known".to_string());
    }
    if let Some(s) = &view.slots
        && !s.leaderless.is_empty()
    {
        return Some(format!("{} slot(s) without a leader", s.leaderless.len()));
    }
    None
}
