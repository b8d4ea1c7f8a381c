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

use super::{GateTarget, NodeBaseline, Signal, SignalState, Stability};
use crate::manifest::ClientsPolicy;
use crate::plan::PlanKind;
use crate::probe::{ClusterView, ProbeError};

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
}

mod phases;
mod problems;

pub use problems::{fully_back_problems, node_problems, rollback_blockers, soak_problem};

pub mod clients;

#[cfg(test)]
mod tests;
