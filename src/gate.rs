//! The readiness gate: is a restarted node really back? (DESIGN §5, facts §11.2)
//!
//! Pure functions over [`ClusterView`]s. `/health` = 200 is necessary, not sufficient: a
//! restarted node answers from its stale persisted config before it has rejoined (facts
//! §4.3), and before v2.1.4 `/health` is always ok (facts §3.1). The cluster signals
//! (C–F) carry the decision. Unknown is not ready.

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::plan::PlanKind;
use crate::probe::{ClusterView, NodeView, ProbeError};
use crate::releases::Capabilities;
use crate::version::WkVersion;

mod signals;
mod stability;
mod tracker;

pub use signals::cluster_settled;
use signals::{
    api_healthy, config_caught_up, knows_controller, new_process, online_in_controller_view,
    uptime_growing,
};
pub use stability::Stability;
pub use tracker::clients;
pub use tracker::{
    Failure, PEER_DOWN_POLLS, Phase, PhaseKind, Rules, Tracker, Verdict, Waiting,
    fully_back_problems, node_problems, rollback_blockers, soak_problem,
};

/// One readiness signal (facts §11.2 A–G).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// A. the API answers and `/health` is 200.
    ApiHealthy,
    /// B. the version is the target and the process is new.
    NewProcessOnTarget,
    /// C. its `/cluster/info` answers 200.
    KnowsController,
    /// D. the controller's view shows it online and Joined.
    OnlineInControllerView,
    /// E. its `config_version` caught up with the controller's.
    ConfigCaughtUp,
    /// F. every slot led and Normal, no migration, `/health` 200 everywhere, all online.
    ClusterSettled,
    /// G. uptime keeps growing across polls.
    UptimeGrowing,
}

impl Signal {
    pub const ALL: [Signal; 7] = [
        Signal::ApiHealthy,
        Signal::NewProcessOnTarget,
        Signal::KnowsController,
        Signal::OnlineInControllerView,
        Signal::ConfigCaughtUp,
        Signal::ClusterSettled,
        Signal::UptimeGrowing,
    ];

    pub fn letter(self) -> char {
        match self {
            Signal::ApiHealthy => 'A',
            Signal::NewProcessOnTarget => 'B',
            Signal::KnowsController => 'C',
            Signal::OnlineInControllerView => 'D',
            Signal::ConfigCaughtUp => 'E',
            Signal::ClusterSettled => 'F',
            Signal::UptimeGrowing => 'G',
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Signal::ApiHealthy => "API healthy",
            Signal::NewProcessOnTarget => "new process on target version",
            Signal::KnowsController => "knows the controller",
            Signal::OnlineInControllerView => "online in the controller's view",
            Signal::ConfigCaughtUp => "cluster config caught up",
            Signal::ClusterSettled => "cluster settled",
            Signal::UptimeGrowing => "uptime growing",
        }
    }

    /// Letter and name, as `node_failed.signal` shows it: `B new process on target version`.
    pub fn label(self) -> String {
        format!("{} {}", self.letter(), self.name())
    }

    /// The name in a run of `kind`: a restart's B is a new process on the *same* version
    /// (issue 19); every other name, and an upgrade's B, is [`Signal::name`].
    pub fn name_in(self, kind: PlanKind) -> &'static str {
        match (self, kind) {
            (Signal::NewProcessOnTarget, PlanKind::Restart) => "new process on the same version",
            _ => self.name(),
        }
    }

    /// [`Signal::label`] in a run of `kind`.
    pub fn label_in(self, kind: PlanKind) -> String {
        format!("{} {}", self.letter(), self.name_in(kind))
    }

    /// `B (new process on the same version)`: the [`fmt::Display`] form in a run of `kind`.
    pub fn display_in(self, kind: PlanKind) -> String {
        format!("{} ({})", self.letter(), self.name_in(kind))
    }
}

/// A signal as a run of one kind names it (`node_failed.signal`): the letter stays, the
/// name of B follows the kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignalIn {
    pub signal: Signal,
    pub kind: PlanKind,
}

impl SignalIn {
    pub fn label(self) -> String {
        self.signal.label_in(self.kind)
    }
}

/// Serde forms of a [`Signal`] in the event stream: `gate_signal.signal` is the letter
/// (`"B"`), `node_failed.signal` the letter and name (`"B new process on target version"`).
/// The JSON stays as it was; the Rust side is typed.
pub mod signal_serde {
    use serde::Serializer;

    use super::{Signal, SignalIn};

    pub fn letter<S: Serializer>(s: &Signal, ser: S) -> Result<S::Ok, S::Error> {
        ser.collect_str(&s.letter())
    }

    pub fn label<S: Serializer>(s: &Option<SignalIn>, ser: S) -> Result<S::Ok, S::Error> {
        match s {
            Some(s) => ser.collect_str(&s.label()),
            None => ser.serialize_none(),
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.letter(), self.name())
    }
}

/// The state of one signal. Only `Met` counts; `Unknown` is not ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "reason", rename_all = "snake_case")]
pub enum SignalState {
    Met,
    /// Observed, and not there yet (the reason says what was seen).
    NotYet(String),
    /// Cannot be observed (the reason says why).
    Unknown(String),
}

impl SignalState {
    pub fn is_met(&self) -> bool {
        matches!(self, SignalState::Met)
    }

    /// The event form: which of the three states, and the reason when not met.
    pub fn split(&self) -> (SignalWord, Option<String>) {
        match self {
            SignalState::Met => (SignalWord::Met, None),
            SignalState::NotYet(r) => (SignalWord::NotYet, Some(r.clone())),
            SignalState::Unknown(r) => (SignalWord::Unknown, Some(r.clone())),
        }
    }
}

/// A signal's state without its reason (`gate_signal.state`: `met`, `not_yet`, `unknown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalWord {
    Met,
    NotYet,
    Unknown,
}

impl SignalWord {
    pub fn as_str(self) -> &'static str {
        match self {
            SignalWord::Met => "met",
            SignalWord::NotYet => "not_yet",
            SignalWord::Unknown => "unknown",
        }
    }
}

impl fmt::Display for SignalWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The node as it was just before it was stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeBaseline {
    pub id: u64,
    pub version: Option<WkVersion>,
    /// `/varz.commit` of the old process (proves a `-dev` build changed, facts §7.4).
    pub commit: Option<String>,
    pub uptime: Option<Duration>,
    pub observed_at: SystemTime,
}

impl NodeBaseline {
    /// The baseline of `id` in `view` (the last observation before the stop).
    pub fn from_view(view: &ClusterView, id: u64) -> NodeBaseline {
        let n = view.node(id);
        NodeBaseline {
            id,
            version: n.and_then(|n| n.version.clone()),
            commit: n.and_then(|n| n.commit.clone()),
            uptime: n.and_then(|n| n.uptime),
            observed_at: view.observed_at,
        }
    }
}

/// What the gate accepts as "on the target".
///
/// A `-dev` image reports the previous release tag, not its image tag (facts §7.4: the
/// Docker build runs `git describe --tags --abbrev=0`). For such a target the node must
/// report exactly that release (`dev_base`: the newest catalog release older than the
/// target) and a `/varz.commit` other than the old process's: an old image that came
/// back reports its old commit and never passes.
///
/// A restart (`wkctl restart`, issue 19) has its own target per node: the version it ran
/// before the stop, exactly, and a process started after `restarted_after` (when wkctl
/// issued the stop), since the version alone cannot tell the new process from the old.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateTarget {
    pub version: WkVersion,
    pub dev_base: Option<WkVersion>,
    /// Restart only: the new process must have started after this moment.
    pub restarted_after: Option<SystemTime>,
}

impl GateTarget {
    pub fn new(version: WkVersion) -> GateTarget {
        let dev_base = version.is_dev().then(|| dev_base(&version)).flatten();
        GateTarget {
            version,
            dev_base,
            restarted_after: None,
        }
    }

    /// A target that a node reports as itself (a rollback to a release).
    pub fn exact(version: WkVersion) -> GateTarget {
        GateTarget {
            version,
            dev_base: None,
            restarted_after: None,
        }
    }

    /// Same version, new process: the node reports exactly `version` (what it ran before
    /// its stop) from a process started after `stop_issued` (signal B of a restart).
    pub fn restart(version: WkVersion, stop_issued: SystemTime) -> GateTarget {
        GateTarget {
            version,
            dev_base: None,
            restarted_after: Some(stop_issued),
        }
    }

    /// A `-dev` upgrade target (proven by a new commit). A restart never is one: it keeps
    /// the build, commit included.
    pub fn is_dev(&self) -> bool {
        self.restarted_after.is_none() && self.version.is_dev()
    }

    /// The version the node reports is what a process of the target reports.
    pub fn accepts(&self, reported: &WkVersion) -> bool {
        if reported.same_build(&self.version) {
            return true;
        }
        if !self.is_dev() {
            return false;
        }
        match &self.dev_base {
            Some(base) => reported.same_build(base),
            // Not in the catalog: the newest release it could build on is unknown; any
            // release of the same major up to the target's triple (the commit decides).
            None => {
                reported.major() == self.version.major()
                    && reported.triple() <= self.version.triple()
            }
        }
    }

    pub(crate) fn accepts_version(&self, node: &NodeView) -> bool {
        node.version.as_ref().is_some_and(|v| self.accepts(v))
    }
}

impl fmt::Display for GateTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.restarted_after.is_some() {
            return write!(f, "{} (unchanged)", self.version);
        }
        match &self.dev_base {
            Some(b) => write!(f, "{} (reports {b})", self.version),
            None => write!(f, "{}", self.version),
        }
    }
}

/// The release a `-dev` tag builds on: the newest catalog release (not beta, not dev)
/// older than it.
pub fn dev_base(target: &WkVersion) -> Option<WkVersion> {
    crate::releases::catalog()
        .into_iter()
        .map(|(v, _)| v)
        .filter(|v| v.is_release() && !v.is_beta() && v < target)
        .max()
}

/// Every signal for one node at one observation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GateState {
    pub signals: Vec<(Signal, SignalState)>,
    /// Uptime went down between `prev` and `now` while the node stayed on the new process:
    /// it restarted on its own (#509, #545). A failure, not a retry.
    pub crash_loop: bool,
}

impl GateState {
    /// All signals met and no crash loop (one observation; see [`Stability`]).
    pub fn ready_now(&self) -> bool {
        !self.crash_loop && self.signals.iter().all(|(_, s)| s.is_met())
    }

    /// The first signal not met: what the gate is waiting on.
    pub fn waiting_on(&self) -> Option<&(Signal, SignalState)> {
        self.signals.iter().find(|(_, s)| !s.is_met())
    }

    pub fn state(&self, signal: Signal) -> Option<&SignalState> {
        self.signals
            .iter()
            .find(|(s, _)| *s == signal)
            .map(|(_, st)| st)
    }
}

/// Evaluates A–G for `before.id` in `now` (with `prev`, the previous poll, for G).
pub fn evaluate(
    before: &NodeBaseline,
    prev: Option<&ClusterView>,
    now: &ClusterView,
    target: &GateTarget,
) -> GateState {
    let Some(node) = now.node(before.id) else {
        let missing = SignalState::Unknown(format!("node {} is not in the observation", before.id));
        return GateState {
            signals: Signal::ALL.iter().map(|s| (*s, missing.clone())).collect(),
            crash_loop: false,
        };
    };
    let prev_node = prev.and_then(|p| p.node(before.id));
    let signals = vec![
        (Signal::ApiHealthy, api_healthy(node)),
        (
            Signal::NewProcessOnTarget,
            new_process(before, node, now.observed_at, target),
        ),
        (Signal::KnowsController, knows_controller(node)),
        (
            Signal::OnlineInControllerView,
            online_in_controller_view(node, now),
        ),
        (Signal::ConfigCaughtUp, config_caught_up(node, now)),
        (Signal::ClusterSettled, cluster_settled(now)),
        (
            Signal::UptimeGrowing,
            uptime_growing(prev.zip(prev_node), now, node),
        ),
    ];
    let crash_loop = prev_node.is_some_and(|p| {
        let on_target =
            |n: &NodeView| target.accepts_version(n) && !signals::same_dev_build(before, n, target);
        on_target(p)
            && on_target(node)
            && matches!((p.uptime, node.uptime), (Some(a), Some(b)) if b < a)
    });
    GateState {
        signals,
        crash_loop,
    }
}

/// The node does not answer at all (refused, timed out, unreachable).
pub fn is_down(node: &NodeView) -> bool {
    !node.reachable && node.error.as_ref().is_some_and(ProbeError::is_unreachable)
}

/// B holds: `node` runs a process started after `before`, on the target.
pub fn runs_new_process(
    before: &NodeBaseline,
    node: &NodeView,
    at: SystemTime,
    target: &GateTarget,
) -> bool {
    signals::new_process(before, node, at, target).is_met()
}

/// What `health_cluster_aware` means for A on this version (for messages and plans).
pub fn health_proves_cluster(version: &WkVersion) -> bool {
    Capabilities::of(version).health_cluster_aware
}

#[cfg(test)]
mod tests;
