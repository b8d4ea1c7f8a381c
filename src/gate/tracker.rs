//! The tracker: the one place that decides *wait*, *go on* or *stop the run* (DESIGN §5).
//!
//! Pure: no I/O, no clock reads, no printing. The executor observes the cluster, feeds
//! the view with the time it was taken, emits what [`Tracker::changes`] reports and sleeps
//! [`Tracker::next_poll`]. Every rule of a run's waits lives here:
//!
//! - **pre-stop** ([`Phase::PreStop`]): before a node is stopped, *every* node must be
//!   fully back: API healthy (A), knows the controller (C), online and Joined in the
//!   controller's view (D), config caught up (E), and the cluster settled (F). A node whose
//!   uptime shows it restarted since it was last seen is not trusted until all of that has
//!   held for `stable_for` (a peer that restarted inside the controller's ≈ 6 s offline
//!   window is never marked offline, and its stale `/health` says ok: facts §4.3, §4.4).
//! - **gate** ([`Phase::Gate`]): A–G for the restarted node, held for `stable_for`
//!   ([`Stability`]); crash loops; the peer watch.
//! - **soak** ([`Phase::Soak`]): the whole cluster stays healthy for `policy.soak`.
//! - the **peer watch**, in the gate and the soak: a peer that stops answering, that the
//!   controller marks offline, that answers `leader not found` while others know the
//!   controller, or that restarted, is a second node down: the run stops.
//!
//! - the **service level** of the soak ([`clients`], issue #18): client connections come
//!   back, message counters keep growing.
//!
//! The resume verification of an already-upgraded node is a [`Phase::Gate`] with the
//! baseline the earlier run recorded: the same rules, the same `stable_for`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime};

use super::{GateState, GateTarget, NodeBaseline, Signal, SignalState, Stability, evaluate};
use crate::manifest::ClientsPolicy;
use crate::plan::PlanKind;
use crate::probe::{ClusterView, HealthState, InfoAnswer, NodeStatus, NodeView, ProbeError};

/// A peer that is down for this many polls in a row stops the run (never two nodes down).
pub const PEER_DOWN_POLLS: u32 = 3;
/// Go reports uptime in whole seconds: a difference below this is rounding.
const UPTIME_SLACK: Duration = Duration::from_secs(2);
/// The shortest pause between two polls.
const MIN_PAUSE: Duration = Duration::from_millis(10);

/// The timing rules of a run (from `policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    pub stable_for: Duration,
    pub node_timeout: Duration,
    pub poll: Duration,
    pub soak: Duration,
    /// `policy.accept_stuck_joining`: a node stuck in Joining by upstream #529 but serving
    /// (evidence: [`crate::checks::joining::stuck_joining_529`]) counts as Joined.
    pub accept_stuck_joining: bool,
}

impl Rules {
    pub fn from_policy(p: &crate::manifest::Policy) -> Rules {
        Rules {
            stable_for: p.stable_for,
            node_timeout: p.node_timeout,
            poll: p.poll_interval,
            soak: p.soak,
            accept_stuck_joining: p.accept_stuck_joining,
        }
    }
}

/// What the tracker is waiting for (one value per run: its size does not matter).
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum Phase {
    /// Nothing: every feed is `Ready` (only the memory of uptimes is updated).
    Idle,
    /// May `node` be stopped now?
    PreStop { node: u64 },
    /// Is the restarted node fully back (A–G held for `stable_for`)?
    Gate {
        baseline: NodeBaseline,
        target: GateTarget,
    },
    /// Does the cluster stay healthy for `soak` after `node`?
    Soak { node: u64 },
}

/// Which kind of wait a failure or a verdict belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhaseKind {
    PreStop,
    Gate,
    Soak,
}

/// Why the run must stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// A signal (or the pre-stop condition) never held before the deadline.
    Timeout {
        phase: PhaseKind,
        signal: Option<Signal>,
        observed: String,
    },
    /// The gated node restarted on its own (#509, #545).
    CrashLoop { node: u64, observed: String },
    /// Another node went down while one was down or being watched.
    PeerDown { node: u64, observed: String },
    /// A node answered 401: the managerToken was rejected.
    Auth { node: u64 },
    /// The cluster got worse during the soak.
    Unhealthy { node: u64, observed: String },
    /// The clients or the messages did not come back after the node (issue #18).
    Service { node: u64, observed: String },
}

impl Failure {
    /// One line for the operator (an upgrade's words).
    pub fn reason(&self) -> String {
        self.reason_in(PlanKind::Upgrade)
    }

    /// One line for the operator of a run of `kind` (a restart's B is named as such).
    pub fn reason_in(&self, kind: PlanKind) -> String {
        match self {
            Failure::Timeout {
                phase: PhaseKind::PreStop,
                observed,
                ..
            } => format!("the cluster never became safe to stop the next node: {observed}"),
            Failure::Timeout {
                signal: Some(s),
                observed,
                ..
            } => format!("gate signal {} never held: {observed}", s.display_in(kind)),
            Failure::Timeout {
                signal: None,
                observed,
                ..
            } => format!("timed out: {observed}"),
            Failure::CrashLoop { observed, .. } => format!("crash loop: {observed}"),
            Failure::PeerDown { node, observed } => {
                format!("node {node} went down while another node was down or watched: {observed}")
            }
            Failure::Auth { node } => {
                format!("node {node} answered 401: the managerToken was rejected (rotated?)")
            }
            Failure::Unhealthy { node, observed } => {
                format!("cluster unhealthy while soaking node {node}: {observed}")
            }
            Failure::Service { node, observed } => {
                format!("service-level shortfall after node {node}: {observed}")
            }
        }
    }

    /// The gate signal that never held (`"B new process on target version"`), if any.
    pub fn signal(&self) -> Option<Signal> {
        match self {
            Failure::Timeout {
                phase: PhaseKind::PreStop,
                ..
            } => Some(Signal::ClusterSettled),
            Failure::Timeout { signal, .. } => *signal,
            Failure::CrashLoop { .. } => Some(Signal::UptimeGrowing),
            _ => None,
        }
    }

    /// What was last observed.
    pub fn observed(&self) -> Option<String> {
        match self {
            Failure::Timeout { observed, .. }
            | Failure::CrashLoop { observed, .. }
            | Failure::PeerDown { observed, .. }
            | Failure::Unhealthy { observed, .. }
            | Failure::Service { observed, .. } => Some(observed.clone()),
            Failure::Auth { .. } => None,
        }
    }
}

/// The answer to one feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Go on: the node may be stopped / is ready / the soak is over.
    Ready,
    /// Not yet: what is missing.
    Wait(Waiting),
    /// Stop the run.
    Fail(Failure),
}

/// What a wait is waiting on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub signal: Option<Signal>,
    pub reason: String,
}

/// The last thing known about one node's process.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Seen {
    uptime: Duration,
    at: SystemTime,
}

impl Seen {
    /// A process reporting `uptime` at `at` started after this one was seen: its uptime
    /// fell, or is lower than the old one plus the time since (one rule, for the peer
    /// watch, the pre-stop distrust and the rollback check).
    fn restarted(&self, uptime: Duration, at: SystemTime) -> bool {
        // (A fall below the old uptime is the case `elapsed` = 0 of this one rule.)
        let elapsed = at.duration_since(self.at).unwrap_or_default();
        uptime + UPTIME_SLACK < self.uptime + elapsed
    }
}

/// The tracker of one run. See the module doc.
#[derive(Debug, Clone)]
pub struct Tracker {
    rules: Rules,
    phase: Phase,
    began: Option<Instant>,
    deadline: Option<Instant>,
    /// Every node's last seen uptime, across phases: a restart shows as an uptime lower
    /// than the last one plus the time since.
    seen: BTreeMap<u64, Seen>,
    /// Consecutive polls in which a peer was down, and why.
    peer_misses: BTreeMap<u64, u32>,
    stability: Stability,
    /// Pre-stop: a node restarted during this phase, so the condition must hold for
    /// `stable_for` before it is trusted.
    distrust: Option<u64>,
    /// Gate: the previous view the gated node answered (for G and the crash loop).
    prev: Option<ClusterView>,
    /// Gate: the highest uptime of the new process seen, and whether it went down since.
    max_uptime: Option<Duration>,
    went_down: bool,
    /// Gate: the new process has been proven (B met once); later restarts are crash loops.
    proven: bool,
    /// Signal states reported so far in this phase, and those that changed in the last feed.
    reported: BTreeMap<Signal, SignalState>,
    changes: Vec<(Signal, SignalState)>,
    /// Service-level memory (baseline before each stop, counters, the soak's check).
    clients: clients::Clients,
    /// A shortfall reported under `on_shortfall: warn` in the last soak.
    service_warning: Option<String>,
    /// Nodes accepted as stuck by #529 on the whole evidence at the last observation that
    /// asked them for it; a gate's focused poll carries their own answers from there.
    stuck_529: BTreeSet<u64>,
}

impl Tracker {
    pub fn new(rules: Rules) -> Tracker {
        Tracker {
            rules,
            phase: Phase::Idle,
            began: None,
            deadline: None,
            seen: BTreeMap::new(),
            peer_misses: BTreeMap::new(),
            stability: Stability::new(rules.stable_for),
            distrust: None,
            prev: None,
            max_uptime: None,
            went_down: false,
            proven: false,
            reported: BTreeMap::new(),
            changes: Vec::new(),
            clients: clients::Clients::new(ClientsPolicy::default()),
            service_warning: None,
            stuck_529: BTreeSet::new(),
        }
    }

    /// The service-level policy (`policy.clients`).
    #[must_use]
    pub fn with_clients(mut self, policy: ClientsPolicy) -> Tracker {
        self.clients = clients::Clients::new(policy);
        self
    }

    /// The `clients` summary of the node being watched, on `view`.
    pub fn clients_summary(&self, view: &ClusterView) -> clients::Summary {
        self.clients.summary(view)
    }

    /// The client baseline of the last stop (recorded when its pre-stop check passed, or
    /// set with [`Tracker::set_client_baseline`]).
    pub fn client_baseline(&self) -> Option<&clients::ClientBaseline> {
        self.clients.baseline()
    }

    /// The client baseline of `node`'s stop: one recorded before its `drain`, or by an
    /// earlier run (`--resume`). `None`: no baseline (the check says it is skipped).
    pub fn set_client_baseline(&mut self, node: u64, baseline: Option<clients::ClientBaseline>) {
        self.clients.set_baseline(node, baseline);
    }

    /// A client baseline from `view`, an observation taken outside any wait (right before
    /// a `drain`): its counters are remembered too, so message growth stays known.
    pub fn client_baseline_from(&mut self, view: &ClusterView) -> clients::ClientBaseline {
        self.clients.observe(view);
        self.clients.baseline_from(view)
    }

    /// Why the client check of the node being watched is skipped, if it is.
    pub fn client_skip(&self) -> Option<(clients::Skip, String)> {
        self.clients.skip()
    }

    /// The shortfall the last soak reported instead of failing (`on_shortfall: warn`).
    pub fn service_warning(&self) -> Option<&str> {
        self.service_warning.as_deref()
    }

    pub fn rules(&self) -> Rules {
        self.rules
    }

    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// Begins a wait at `at`. A gate's deadline runs from `at` (the stop); the others
    /// from `at` too, each bounded by `node_timeout` (a soak by `soak`).
    pub fn begin(&mut self, phase: Phase, at: Instant) {
        self.deadline = at.checked_add(self.rules.node_timeout);
        self.phase = phase;
        self.began = Some(at);
        self.peer_misses.clear();
        self.stability = Stability::new(self.rules.stable_for);
        self.distrust = None;
        self.prev = None;
        self.max_uptime = None;
        self.went_down = false;
        self.proven = false;
        self.reported.clear();
        self.changes.clear();
        if matches!(self.phase, Phase::Soak { .. }) {
            self.clients.soak_begin();
            self.service_warning = None;
        }
    }

    /// The node's `start` step returned at `at`: the gate always gets at least
    /// `stable_for` plus two polls after it, however long the steps took.
    pub fn start_returned(&mut self, at: Instant) {
        let Some(floor) = at.checked_add(
            self.rules
                .stable_for
                .saturating_add(self.rules.poll.saturating_mul(2)),
        ) else {
            return;
        };
        self.deadline = Some(self.deadline.map_or(floor, |d| d.max(floor)));
    }

    /// Gate signals whose state changed in the last feed (for `gate_signal` events).
    pub fn changes(&self) -> &[(Signal, SignalState)] {
        &self.changes
    }

    /// How long to sleep after a feed at `at`: one poll, or less while the signals hold
    /// so the last poll lands when `stable_for` ends (readiness seen without delay).
    pub fn next_poll(&self, at: Instant) -> Duration {
        let poll = self.rules.poll;
        match &self.phase {
            Phase::Soak { .. } => {
                let end = self.began.map_or(at, |b| b + self.rules.soak);
                match end.saturating_duration_since(at) {
                    // Past the soak: waiting for the clients, at the poll interval.
                    left if left.is_zero() => poll,
                    left => poll.min(left).max(MIN_PAUSE),
                }
            }
            _ => self.stability.held_for(at).map_or(poll, |held| {
                self.rules
                    .stable_for
                    .saturating_sub(held)
                    .clamp(MIN_PAUSE, poll)
            }),
        }
    }

    /// Feeds one observation taken at `at` (the instant matching `view.observed_at`).
    pub fn feed(&mut self, view: &ClusterView, at: Instant) -> Verdict {
        self.judge(view, at, true)
    }

    /// Judges the new phase on the observation that ended the previous one, already fed
    /// (a gate's last poll opens its soak, instead of a second poll at the same moment):
    /// the phase's rules apply to it, the memory of uptimes and counters is not fed twice.
    pub fn carry(&mut self, view: &ClusterView, at: Instant) -> Verdict {
        self.judge(view, at, false)
    }

    fn judge(&mut self, view: &ClusterView, at: Instant, fresh: bool) -> Verdict {
        self.changes.clear();
        if let Some(n) = view
            .nodes
            .iter()
            .find(|n| matches!(n.error, Some(ProbeError::Unauthorized)))
        {
            return Verdict::Fail(Failure::Auth { node: n.id });
        }
        // #529 (open upstream: `ProposeJoined` only runs when slots migrate,
        // pkg/cluster/node/event/handle_node_joining.go): a seed-joined node may stay at
        // status 2 forever while it serves. Accepted only on evidence, and only when the
        // operator's policy allows it; a node really still joining never is.
        let accepted;
        let view = if self.rules.accept_stuck_joining {
            accepted = self.accept_stuck_joining(view);
            &accepted
        } else {
            view
        };
        let restarted = if fresh {
            self.clients.observe(view);
            self.remember(view)
        } else {
            Vec::new()
        };
        let verdict = match self.phase.clone() {
            Phase::Idle => Verdict::Ready,
            Phase::PreStop { node } => {
                let v = self.pre_stop(node, view, at, &restarted);
                if v == Verdict::Ready {
                    self.clients.record_baseline(node, view);
                }
                v
            }
            Phase::Gate { baseline, target } => self.gate(&baseline, &target, view, at, &restarted),
            Phase::Soak { node } => self.soak(node, view, at, &restarted),
        };
        if matches!(verdict, Verdict::Ready | Verdict::Fail(_)) {
            self.phase = Phase::Idle;
        }
        verdict
    }

    /// Updates the uptime memory; returns the nodes whose process is newer than the one
    /// seen last (id, what was seen).
    fn remember(&mut self, view: &ClusterView) -> Vec<(u64, String)> {
        let mut restarted = Vec::new();
        for n in &view.nodes {
            let Some(uptime) = n.uptime.filter(|_| n.reachable) else {
                continue;
            };
            if let Some(old) = self.seen.get(&n.id) {
                let elapsed = view.observed_at.duration_since(old.at).unwrap_or_default();
                if old.restarted(uptime, view.observed_at) {
                    restarted.push((
                        n.id,
                        format!(
                            "node {} restarted: uptime {}s, was {}s {}s earlier",
                            n.id,
                            uptime.as_secs(),
                            old.uptime.as_secs(),
                            elapsed.as_secs()
                        ),
                    ));
                }
            }
            self.seen.insert(
                n.id,
                Seen {
                    uptime,
                    at: view.observed_at,
                },
            );
        }
        restarted
    }

    fn timed_out(&self, at: Instant) -> bool {
        self.deadline.is_some_and(|d| at >= d)
    }

    // ---- pre-stop -------------------------------------------------------------------

    fn pre_stop(
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

    fn gate(
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

    fn report(&mut self, gs: &GateState) {
        for (sig, st) in &gs.signals {
            if self.reported.get(sig) != Some(st) {
                self.reported.insert(*sig, st.clone());
                self.changes.push((*sig, st.clone()));
            }
        }
    }

    /// A restart of the new process, even one hidden between two polls while the node
    /// was unreachable (#509, #545).
    fn crash_loop(
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
    fn peer_watch(
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

    fn soak(
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
}

impl Tracker {
    /// `view` with every node that shows #529's evidence counted as Joined: the whole
    /// evidence, or, for a node accepted so at an earlier observation, the evidence this
    /// one holds with its own unasked answers carried (`joining_state_carried`). A node
    /// that fails any evidence observed is forgotten, and must show all of it again; a
    /// poll without the controller's view accepts nothing and forgets nothing.
    fn accept_stuck_joining(&mut self, view: &ClusterView) -> ClusterView {
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

/// `view` with the nodes `stuck` counted as Joined.
fn with_joined(view: &ClusterView, stuck: &[u64]) -> ClusterView {
    let mut out = view.clone();
    for n in out.nodes.iter_mut().filter(|n| stuck.contains(&n.id)) {
        for status in [&mut n.info_status, &mut n.simple_status] {
            if status.is_some() {
                *status = Some(NodeStatus::Joined);
            }
        }
    }
    out
}

fn reason_of(st: &SignalState) -> String {
    match st {
        SignalState::Met => String::new(),
        SignalState::NotYet(r) | SignalState::Unknown(r) => r.clone(),
    }
}

/// Why a peer counts as down in this observation, if it does.
fn peer_down_cause(n: &NodeView, view: &ClusterView) -> Option<String> {
    if !n.reachable && n.error.as_ref().is_some_and(ProbeError::is_unreachable) {
        let why = n
            .error
            .as_ref()
            .map_or_else(|| "no answer".to_string(), ToString::to_string);
        return Some(format!("does not answer ({why})"));
    }
    if n.info_online == Some(false) {
        return Some("is marked offline by the controller (`/cluster/info`)".into());
    }
    if n.simple_online == Some(false) {
        return Some("is marked offline by the controller (`/cluster/simpleNodes`)".into());
    }
    // Cut off from the controller while others know it. During a controller election
    // nobody knows it, and that is not this node's failure.
    if n.info_answer == InfoAnswer::LeaderNotFound
        && let Some(from) = view.info_from.filter(|f| *f != n.id)
    {
        return Some(format!(
            "is cut off from the controller: its `/cluster/info` answers `leader not found` while node {from} knows the controller"
        ));
    }
    None
}

/// What keeps `view` from being safe to stop a node: every node must be fully back
/// (A, C, D, E) and the cluster settled (F). Empty when safe.
pub fn fully_back_problems(view: &ClusterView) -> Vec<String> {
    let mut out: Vec<String> = view
        .nodes
        .iter()
        .flat_map(|n| node_problems(n, view))
        .collect();
    match super::cluster_settled(view) {
        SignalState::Met => {}
        SignalState::NotYet(r) | SignalState::Unknown(r) => {
            // F repeats per-node problems already listed; keep its cluster-level part.
            out.push(format!("cluster not settled: {r}"));
        }
    }
    out
}

/// What keeps one node from being fully back (A, C, D, E). Empty when it is.
pub fn node_problems(n: &NodeView, view: &ClusterView) -> Vec<String> {
    let mut out = Vec::new();
    if !n.reachable {
        let why = n
            .error
            .as_ref()
            .map_or_else(|| "no answer".to_string(), ToString::to_string);
        out.push(format!("node {} does not answer ({why})", n.id));
        return out;
    }
    match &n.health {
        HealthState::Ok => {}
        HealthState::Failing(m) => out.push(format!("node {} `/health` is 500 `{m}`", n.id)),
        HealthState::Unknown => out.push(format!("node {} `/health` unknown", n.id)),
    }
    match &n.info_answer {
        InfoAnswer::Ok => {}
        InfoAnswer::LeaderNotFound => out.push(format!(
            "node {} does not know the controller (`/cluster/info` answers `leader not found`)",
            n.id
        )),
        InfoAnswer::Failed(e) => out.push(format!("node {} `/cluster/info`: {e}", n.id)),
        InfoAnswer::NotAsked => out.push(format!("node {}: `/cluster/info` not asked", n.id)),
    }
    match (n.info_online, n.info_status) {
        (Some(true), Some(NodeStatus::Joined)) => {}
        (Some(true), s) => out.push(format!(
            "node {} is online but not Joined in the controller's view (status {s:?})",
            n.id
        )),
        (Some(false), _) => out.push(format!("node {} is offline in the controller's view", n.id)),
        (None, _) => out.push(format!("node {} is not in the controller's view", n.id)),
    }
    match (n.config_version, view.config_version) {
        (Some(a), Some(c)) if a >= c => {}
        (Some(a), Some(c)) => out.push(format!(
            "node {} config_version {a} is behind the controller's {c}",
            n.id
        )),
        (None, _) => out.push(format!("node {}: config_version unknown", n.id)),
        (_, None) => out.push("the controller's config version is unknown".into()),
    }
    out
}

/// Why restarting `node` now (a rollback is a stop) would take a second node down: any
/// other node not fully back (A, C, D, E), or seen restarting by the tracker.
pub fn rollback_blockers(tracker: &Tracker, view: &ClusterView, node: u64) -> Vec<String> {
    let mut out: Vec<String> = view
        .nodes
        .iter()
        .filter(|n| n.id != node)
        .flat_map(|n| node_problems(n, view))
        .collect();
    for n in view.nodes.iter().filter(|n| n.id != node) {
        if let (Some(up), Some(seen)) = (n.uptime, tracker.seen.get(&n.id))
            && seen.restarted(up, view.observed_at)
        {
            out.push(format!("node {} restarted since it was last seen", n.id));
        }
    }
    out
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
        if let HealthState::Failing(m) = &n.health {
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

pub mod clients;

#[cfg(test)]
mod tests;
