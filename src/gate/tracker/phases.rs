//! The judges of each phase (pre-stop, gate, soak) and the peer watch they share: what
//! one observation means, given what the tracker has seen before.

use std::time::Instant;

use super::problems::{fully_back_problems, peer_down_cause, reason_of, soak_problem, with_joined};
use super::{
    Failure, PEER_DOWN_POLLS, PhaseKind, Tracker, UPTIME_SLACK, Verdict, Waiting, clients,
};
use crate::gate::{GateState, GateTarget, NodeBaseline, Signal, SignalState, Stability, evaluate};
use crate::probe::{ClusterView, ProbeError};

impl Tracker {
    // ---- pre-stop -------------------------------------------------------------------

    pub(super) fn pre_stop(
        &mut self,
        node: u64,
        view: &ClusterView,
        at: Instant,
        restarted: &[(u64, String)],
    ) -> Verdict {
        if let Some((id, _)) = restarted.first() {
            // Restarted since last seen: not trusted until the condition holds for
            // `stable_for` (its stale `/health` and membership prove nothing).
            self.distrust = Some(*id);
            self.stability = Stability::new(self.rules.stable_for);
        }
        let problems = fully_back_problems(view);
        let verdict = if problems.is_empty() {
            let state = GateState {
                signals: vec![(Signal::ClusterSettled, SignalState::Met)],
                crash_loop: false,
            };
            let held = self.stability.update(&state, at);
            if self.distrust.is_none() || held {
                Verdict::Ready
            } else {
                Verdict::Wait(Waiting {
                    signal: Some(Signal::ClusterSettled),
                    reason: format!(
                        "node {} restarted since it was last seen: waiting until the cluster has held for {}s",
                        self.distrust.unwrap_or_default(),
                        self.rules.stable_for.as_secs_f64()
                    ),
                })
            }
        } else {
            self.stability = Stability::new(self.rules.stable_for);
            let mut reason = problems.join("; ");
            if let Some((_, why)) = restarted.first() {
                reason = format!("{why}; {reason}");
            }
            Verdict::Wait(Waiting {
                signal: Some(Signal::ClusterSettled),
                reason,
            })
        };
        match verdict {
            Verdict::Wait(w) if self.timed_out(at) => Verdict::Fail(Failure::Timeout {
                phase: PhaseKind::PreStop,
                signal: Some(Signal::ClusterSettled),
                observed: format!("before stopping node {node}: {}", w.reason),
            }),
            v => v,
        }
    }

    // ---- gate -----------------------------------------------------------------------

    pub(super) fn gate(
        &mut self,
        baseline: &NodeBaseline,
        target: &GateTarget,
        view: &ClusterView,
        at: Instant,
        restarted: &[(u64, String)],
    ) -> Verdict {
        let id = baseline.id;
        // Once B has proven the new process, its uptime is no longer compared with the
        // clock; a later restart is a crash loop instead.
        let mut base = baseline.clone();
        if self.proven {
            base.uptime = None;
        }
        let gs = evaluate(&base, self.prev.as_ref(), view, target);
        self.report(&gs);
        if gs
            .state(Signal::NewProcessOnTarget)
            .is_some_and(SignalState::is_met)
        {
            self.proven = true;
        }
        if let Some(f) = self.crash_loop(id, &gs, view, target) {
            return Verdict::Fail(f);
        }
        if let Some(f) = self.peer_watch(view, Some(id), restarted) {
            return Verdict::Fail(f);
        }
        if self.stability.update(&gs, at) {
            return Verdict::Ready;
        }
        if view.node(id).is_some_and(|n| n.reachable) {
            self.prev = Some(view.clone());
        }
        if self.timed_out(at) {
            if self.went_down {
                return Verdict::Fail(Failure::CrashLoop {
                    node: id,
                    observed:
                        "the new process went down after it had started and did not come back"
                            .into(),
                });
            }
            let (signal, observed) = match gs.waiting_on() {
                Some((s, st)) => (Some(*s), reason_of(st)),
                None => (
                    None,
                    format!(
                        "signals held for less than {}s",
                        self.rules.stable_for.as_secs_f64()
                    ),
                ),
            };
            return Verdict::Fail(Failure::Timeout {
                phase: PhaseKind::Gate,
                signal,
                observed,
            });
        }
        Verdict::Wait(match gs.waiting_on() {
            Some((s, st)) => Waiting {
                signal: Some(*s),
                reason: reason_of(st),
            },
            None => Waiting {
                signal: None,
                reason: format!(
                    "every signal holds; holding for {}s",
                    self.rules.stable_for.as_secs_f64()
                ),
            },
        })
    }

    pub(super) fn report(&mut self, gs: &GateState) {
        for (sig, st) in &gs.signals {
            if self.reported.get(sig) != Some(st) {
                self.reported.insert(*sig, st.clone());
                self.changes.push((*sig, st.clone()));
            }
        }
    }

    /// A restart of the new process, even one hidden between two polls while the node
    /// was unreachable (#509, #545).
    pub(super) fn crash_loop(
        &mut self,
        id: u64,
        gs: &GateState,
        view: &ClusterView,
        target: &GateTarget,
    ) -> Option<Failure> {
        let node = view.node(id)?;
        let up = (node.reachable && target.accepts_version(node))
            .then_some(node.uptime)
            .flatten()
            .filter(|_| self.proven);
        if matches!(node.error, Some(ProbeError::Refused)) && self.max_uptime.is_some() {
            self.went_down = true;
        }
        if up.is_some() && self.went_down {
            return Some(Failure::CrashLoop {
                node: id,
                observed: "the new process went down after it had started and came back: it restarts on its own".into(),
            });
        }
        if let Some(u) = up {
            if let Some(m) = self.max_uptime.filter(|m| u + UPTIME_SLACK < *m) {
                return Some(Failure::CrashLoop {
                    node: id,
                    observed: format!(
                        "uptime fell from {}s to {}s: the new process restarted on its own",
                        m.as_secs(),
                        u.as_secs()
                    ),
                });
            }
            self.max_uptime = Some(self.max_uptime.map_or(u, |m| m.max(u)));
        }
        gs.crash_loop.then(|| Failure::CrashLoop {
            node: id,
            observed: "uptime went down between polls: the process restarted on its own".into(),
        })
    }

    /// Never two nodes down: a peer that is down for [`PEER_DOWN_POLLS`] polls in a row,
    /// or that restarted, stops the run.
    pub(super) fn peer_watch(
        &mut self,
        view: &ClusterView,
        except: Option<u64>,
        restarted: &[(u64, String)],
    ) -> Option<Failure> {
        if let Some((id, why)) = restarted.iter().find(|(id, _)| Some(*id) != except) {
            return Some(Failure::PeerDown {
                node: *id,
                observed: why.clone(),
            });
        }
        for n in &view.nodes {
            if Some(n.id) == except {
                continue;
            }
            let cause = peer_down_cause(n, view);
            let miss = self.peer_misses.entry(n.id).or_default();
            *miss = if cause.is_some() { *miss + 1 } else { 0 };
            if *miss >= PEER_DOWN_POLLS {
                return Some(Failure::PeerDown {
                    node: n.id,
                    observed: format!(
                        "node {} {} ({PEER_DOWN_POLLS} polls in a row)",
                        n.id,
                        cause.unwrap_or_default()
                    ),
                });
            }
        }
        None
    }

    // ---- soak -----------------------------------------------------------------------

    pub(super) fn soak(
        &mut self,
        node: u64,
        view: &ClusterView,
        at: Instant,
        restarted: &[(u64, String)],
    ) -> Verdict {
        if let Some(f) = self.peer_watch(view, None, restarted) {
            return Verdict::Fail(match f {
                Failure::PeerDown { node: n, observed } if n == node => Failure::CrashLoop {
                    node,
                    observed: format!("during the soak: {observed}"),
                },
                f => f,
            });
        }
        if let Some(problem) = soak_problem(view) {
            return Verdict::Fail(Failure::Unhealthy {
                node,
                observed: problem,
            });
        }
        let began = self.began.unwrap_or(at);
        let elapsed = at.saturating_duration_since(began);
        match self.clients.soak(view, elapsed, self.rules.soak) {
            clients::Soak::Done => Verdict::Ready,
            clients::Soak::Pending(why) if elapsed < self.rules.soak => Verdict::Wait(Waiting {
                signal: None,
                reason: format!("soaking node {node}; {why}"),
            }),
            clients::Soak::Pending(why) => Verdict::Wait(Waiting {
                signal: None,
                reason: why,
            }),
            // Reported, but the soak still runs its whole length: a shortfall found at
            // `policy.clients.within` (shorter than the soak) must not end the
            // whole-cluster watch after the node early.
            clients::Soak::Shortfall(why) if self.clients.warn_only() => {
                self.service_warning = Some(why.clone());
                if elapsed < self.rules.soak {
                    Verdict::Wait(Waiting {
                        signal: None,
                        reason: format!("soaking node {node}; {why} (on_shortfall: warn)"),
                    })
                } else {
                    Verdict::Ready
                }
            }
            clients::Soak::Shortfall(observed) => {
                Verdict::Fail(Failure::Service { node, observed })
            }
        }
    }

    /// `view` with every node that shows #529's evidence counted as Joined: the whole
    /// evidence, or, for a node accepted so at an earlier observation, the evidence this
    /// one holds with its own unasked answers carried (`joining_state_carried`). A node
    /// that fails any evidence observed is forgotten, and must show all of it again; a
    /// poll without the controller's view accepts nothing and forgets nothing.
    pub(super) fn accept_stuck_joining(&mut self, view: &ClusterView) -> ClusterView {
        use crate::checks::joining::{JoiningState, joining_state, joining_state_carried};
        // No controller's view in this poll (the controller itself is the node that
        // restarted): nothing is accepted, and nothing forgotten either.
        let controller_view_unknown = view.members.is_empty() || view.slots.is_none();
        let mut stuck = Vec::new();
        for n in &view.nodes {
            let now = if joining_state(view, n.id) == JoiningState::Stuck529 {
                true
            } else {
                self.stuck_529.contains(&n.id)
                    && joining_state_carried(view, n.id) == JoiningState::Stuck529
            };
            if now {
                self.stuck_529.insert(n.id);
                stuck.push(n.id);
            } else if !controller_view_unknown {
                self.stuck_529.remove(&n.id);
            }
        }
        with_joined(view, &stuck)
    }
}
