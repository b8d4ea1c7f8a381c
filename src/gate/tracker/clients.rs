//! Service-level rules of the soak (issue #18): the node is back for the clients, not only
//! for the cluster. Pure, like the rest of the tracker.
//!
//! Upstream's own upgrade guide (docs-site v2.2.5, `operations/{docker,linux,kubernetes}/
//! upgrade.mdx`, facts §12) asks to verify client connections after each node; #397/#683
//! show why (clients of an untouched node treated as offline after a serial restart, every
//! cluster-level signal green).
//!
//! - **Baseline** ([`ClientBaseline`], kept in the run state so `--resume` has it),
//!   recorded before the node's `drain` (or, without one, from the observation that
//!   allowed the stop): the `/varz.connections` of every node that reported a count, and
//!   whether `in_msgs + out_msgs` was growing cluster-wide (compared with the previous
//!   observation; per-process counters, so a counter that fell is a restart and counts
//!   from 0).
//! - **Clients come back**: during the soak, the connections of the nodes that reported
//!   at the baseline (the same nodes, summed with checked adds) must reach `recover` ×
//!   baseline within `within` (default: the soak), and still be there at the soak's end:
//!   every poll re-checks, the last observation decides. A node that reported at the
//!   baseline and does not now is unknown: not back. The soak waits for the clients.
//!   Below `min` connections at baseline, or with fewer than two nodes reporting a count,
//!   the check is skipped, and says so.
//! - **Messages keep flowing**: counters that were growing before the stop must grow
//!   during the soak; no growth over the whole soak is a shortfall.
//! - A shortfall stops the run (`on_shortfall: fail`) or is reported (`warn`).
//! - `slow_clients` / `retry_queue` rising sharply is reported, never fatal.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::manifest::{ClientsPolicy, OnShortfall};
use crate::probe::ClusterView;

mod summary;
pub use summary::{Check, Flow, Summary, thousands};

/// The service-level baseline of a node's stop (issue #18), recorded before its `drain`
/// (or, without one, from the observation that allowed the stop) and kept here so that a
/// resumed run checks the clients against it, not against a cluster that already lost
/// them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientBaseline {
    /// `/varz.connections` of every node that reported a count (reachable, a plausible
    /// number); the client check compares these same nodes later.
    #[serde(default)]
    pub connections: BTreeMap<u64, u64>,
    /// Whether `in_msgs + out_msgs` was growing cluster-wide (unknown: one observation).
    #[serde(default)]
    pub growing: Option<bool>,
    #[serde(default)]
    pub slow_clients: Option<u64>,
    #[serde(default)]
    pub retry_queue: Option<u64>,
    #[serde(default)]
    pub at_ms: u64,
}

/// What the soak's service check says now.
#[derive(Debug, Clone, PartialEq)]
pub enum Soak {
    /// Everything service-level holds (or is skipped).
    Done,
    /// Keep soaking: the clients are not back yet (within `within`).
    Pending(String),
    /// Fell short (the run stops under `on_shortfall: fail`).
    Shortfall(String),
}

/// Why a client check is skipped (each said once per run, see [`Skip::kind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Skip {
    NoBaseline,
    Unknown,
    BelowFloor,
}

/// The service-level memory of a run.
#[derive(Debug, Clone)]
pub struct Clients {
    policy: ClientsPolicy,
    /// Per-node `in_msgs + out_msgs` at the last observation that had them.
    last: Option<BTreeMap<u64, u64>>,
    /// Whether the counters grew between the last two observations.
    growing: Option<bool>,
    /// The node whose stop the baseline is of, and the baseline.
    baseline: Option<(u64, ClientBaseline)>,
    /// Soak: counter growth summed since it began; peaks.
    growth: u64,
    /// The clients are back in the last observation of the soak (re-checked every poll).
    back_now: bool,
    /// They were back at least once in this soak (before `within`).
    ever_back: bool,
    peak_slow: Option<u64>,
    peak_retry: Option<u64>,
    shortfall: Option<String>,
}

/// Cluster-wide sum of one counter, `None` when any node's is unknown or the sum
/// overflows.
fn sum(view: &ClusterView, f: impl Fn(&crate::probe::NodeView) -> Option<u64>) -> Option<u64> {
    view.nodes
        .iter()
        .map(|n| f(n).filter(|_| n.reachable))
        .try_fold(0u64, |acc, c| acc.checked_add(c?))
}

/// Every reachable node's `/varz.connections`, for those that report one.
fn connections(view: &ClusterView) -> BTreeMap<u64, u64> {
    view.nodes
        .iter()
        .filter(|n| n.reachable)
        .filter_map(|n| Some((n.id, n.service.connections?)))
        .collect()
}

/// The connections of `nodes` in `view`, summed with checked adds: `None` (unknown) when
/// one of them does not report a count now, or the sum overflows.
fn sum_of(view: &ClusterView, nodes: impl Iterator<Item = u64>) -> Option<u64> {
    nodes
        .map(|id| {
            view.node(id)
                .filter(|n| n.reachable)
                .and_then(|n| n.service.connections)
        })
        .try_fold(0u64, |acc, c| acc.checked_add(c?))
}

fn messages(view: &ClusterView) -> BTreeMap<u64, u64> {
    view.nodes
        .iter()
        .filter(|n| n.reachable)
        .filter_map(|n| {
            let s = n.service;
            Some((n.id, s.in_msgs?.saturating_add(s.out_msgs?)))
        })
        .collect()
}

impl Clients {
    pub fn new(policy: ClientsPolicy) -> Clients {
        Clients {
            policy,
            last: None,
            growing: None,
            baseline: None,
            growth: 0,
            back_now: false,
            ever_back: false,
            peak_slow: None,
            peak_retry: None,
            shortfall: None,
        }
    }

    /// Every observation: the message counters' growth since the previous one.
    pub fn observe(&mut self, view: &ClusterView) {
        let now = messages(view);
        if now.is_empty() {
            return;
        }
        if let Some(prev) = &self.last {
            // Per process: a counter that fell is a new process counting from 0.
            let delta: u64 = now
                .iter()
                .map(|(id, c)| match prev.get(id) {
                    Some(p) if c >= p => c - p,
                    Some(_) => *c,
                    None => 0,
                })
                .sum();
            self.growing = Some(delta > 0);
            self.growth = self.growth.saturating_add(delta);
        }
        let mut merged = self.last.take().unwrap_or_default();
        merged.extend(now);
        self.last = Some(merged);
        self.peak_slow = max_opt(self.peak_slow, sum(view, |n| n.service.slow_clients));
        self.peak_retry = max_opt(self.peak_retry, sum(view, |n| n.service.retry_queue));
    }

    /// The baseline of `node`'s stop, from `view` (and the counters' growth so far).
    pub fn baseline_from(&self, view: &ClusterView) -> ClientBaseline {
        ClientBaseline {
            connections: connections(view),
            growing: self.growing,
            slow_clients: sum(view, |n| n.service.slow_clients),
            retry_queue: sum(view, |n| n.service.retry_queue),
            at_ms: u64::try_from(
                view.observed_at
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_millis(),
            )
            .unwrap_or(u64::MAX),
        }
    }

    /// Right before `node` is stopped: the baseline, from the observation that allowed it.
    pub fn record_baseline(&mut self, node: u64, view: &ClusterView) {
        self.baseline = Some((node, self.baseline_from(view)));
    }

    /// The baseline the checks compare with (one recorded earlier, or by an earlier run).
    pub fn set_baseline(&mut self, node: u64, baseline: Option<ClientBaseline>) {
        self.baseline = baseline.map(|b| (node, b));
    }

    /// The baseline recorded last (of the node being stopped).
    pub fn baseline(&self) -> Option<&ClientBaseline> {
        self.baseline.as_ref().map(|(_, b)| b)
    }

    /// The soak of the node begins (after its gate).
    pub fn soak_begin(&mut self) {
        self.growth = 0;
        self.back_now = false;
        self.ever_back = false;
        self.peak_slow = None;
        self.peak_retry = None;
        self.shortfall = None;
    }

    /// The baseline's node and cluster-wide total (checked sum; `None` on overflow).
    fn base(&self) -> (Option<u64>, Option<u64>) {
        let Some((node, b)) = &self.baseline else {
            return (None, None);
        };
        let total = b
            .connections
            .values()
            .try_fold(0u64, |acc, c| acc.checked_add(*c));
        (b.connections.get(node).copied(), total)
    }

    /// Why the check is skipped, if it is, and the kind of reason.
    pub fn skip(&self) -> Option<(Skip, String)> {
        let Some((_, b)) = &self.baseline else {
            return Some((
                Skip::NoBaseline,
                "no baseline before the stop: client check skipped".into(),
            ));
        };
        if b.connections.len() < 2 {
            return Some((
                Skip::Unknown,
                format!(
                    "client connections unknown (`/varz.connections` missing or not a count on {} of the nodes before the stop; the check needs at least two): client check skipped",
                    if b.connections.is_empty() {
                        "all"
                    } else {
                        "all but one"
                    }
                ),
            ));
        }
        match self.base().1 {
            Some(t) if t < self.policy.min => Some((
                Skip::BelowFloor,
                format!(
                    "{t} connections before the stop, below policy.clients.min {}: client check skipped",
                    self.policy.min
                ),
            )),
            // An overflowing baseline is unknown: never skipped, never back.
            _ => None,
        }
    }

    fn skip_reason(&self) -> Option<String> {
        self.skip().map(|(_, why)| why)
    }

    /// Connections now of the nodes compared (those that reported at the baseline).
    fn total_now(&self, view: &ClusterView) -> Option<u64> {
        let (_, b) = self.baseline.as_ref()?;
        sum_of(view, b.connections.keys().copied())
    }

    /// The service-level state of the soak `elapsed` after it began. Every call re-checks
    /// the clients on `view`: those that came back and left again are not back.
    pub fn soak(&mut self, view: &ClusterView, elapsed: Duration, soak: Duration) -> Soak {
        let total = self.total_now(view);
        let judged = self.skip_reason().is_none();
        self.back_now = judged
            && matches!(
                (self.base().1, total),
                (Some(b), Some(t)) if t.saturating_mul(100) >= self.policy.recover_pct.saturating_mul(b)
            );
        self.ever_back |= self.back_now;
        let within = self.policy.within.unwrap_or(soak);
        // Never back by `within`: a shortfall now. Back once but gone again: the soak
        // goes on, and its end decides.
        let short =
            judged && !self.back_now && elapsed >= within && (!self.ever_back || elapsed >= soak);
        if short {
            let s = self.summary_with(total);
            let why = format!(
                "clients did not come back: {} cluster-wide connections, {}% of the {} before the stop (policy.clients.recover {}%) {:.1}s after the node was ready{}",
                total.map_or_else(|| "unknown".into(), thousands),
                s.recovered_pct
                    .map_or_else(|| "?".into(), |p| p.to_string()),
                s.baseline.map_or_else(|| "?".into(), thousands),
                s.required_pct,
                elapsed.as_secs_f64(),
                self.unknown_nodes(view),
            );
            let why = if self.ever_back {
                format!("{why}; they were back earlier in the soak and left again")
            } else {
                why
            };
            return self.fall_short(why);
        }
        if elapsed < soak {
            return Soak::Pending("soaking".into());
        }
        if self.flow() == Flow::Stopped {
            return self.fall_short(format!(
                "messages stopped flowing: in_msgs/out_msgs were growing before node {} was stopped and did not grow during its {:.1}s soak",
                self.baseline.as_ref().map_or(0, |b| b.0),
                elapsed.as_secs_f64()
            ));
        }
        if judged && !self.back_now {
            let s = self.summary_with(total);
            return Soak::Pending(format!(
                "waiting for the clients: {} of {} connections back ({}%, need {}%)",
                total.map_or_else(|| "unknown".into(), thousands),
                s.baseline.map_or_else(|| "?".into(), thousands),
                s.recovered_pct
                    .map_or_else(|| "?".into(), |p| p.to_string()),
                s.required_pct
            ));
        }
        Soak::Done
    }

    /// " (node 1003 reported a count before the stop and does not now)", or "".
    fn unknown_nodes(&self, view: &ClusterView) -> String {
        let Some((_, b)) = &self.baseline else {
            return String::new();
        };
        let missing: Vec<String> = b
            .connections
            .keys()
            .filter(|id| sum_of(view, std::iter::once(**id)).is_none())
            .map(ToString::to_string)
            .collect();
        match missing.as_slice() {
            [] => String::new(),
            [one] => format!(" (node {one} reported a count before the stop and does not now)"),
            many => format!(
                " (nodes {} reported a count before the stop and do not now)",
                many.join(", ")
            ),
        }
    }

    fn fall_short(&mut self, why: String) -> Soak {
        self.shortfall = Some(why.clone());
        Soak::Shortfall(why)
    }

    /// `on_shortfall: warn`.
    pub fn warn_only(&self) -> bool {
        self.policy.on_shortfall == OnShortfall::Warn
    }

    fn flow(&self) -> Flow {
        match self.baseline.as_ref().and_then(|b| b.1.growing) {
            None => Flow::Unknown,
            Some(false) => Flow::Idle,
            Some(true) if self.growth > 0 => Flow::Flowing,
            Some(true) => Flow::Stopped,
        }
    }

    /// The `clients` summary for an event, from `view`.
    pub fn summary(&self, view: &ClusterView) -> Summary {
        self.summary_with(self.total_now(view))
    }

    fn summary_with(&self, total: Option<u64>) -> Summary {
        let b = self.baseline.as_ref().map(|(_, b)| b);
        let (moved_off, baseline) = self.base();
        let back = match (total, baseline, moved_off) {
            (Some(t), Some(base), Some(m)) => Some(t.saturating_sub(base - m.min(base)).min(m)),
            _ => None,
        };
        let recovered_pct = match (total, baseline) {
            (Some(t), Some(base)) if base > 0 => Some(t.saturating_mul(100) / base),
            _ => None,
        };
        let skip = self.skip_reason();
        let check = if self.shortfall.is_some() {
            Check::Shortfall
        } else if skip.is_some() {
            Check::Skipped
        } else if self.back_now {
            Check::Passed
        } else {
            Check::Waiting
        };
        let mut warnings = Vec::new();
        for (name, before, peak) in [
            (
                "slow_clients",
                b.and_then(|b| b.slow_clients),
                self.peak_slow,
            ),
            (
                "retry_queue",
                b.and_then(|b| b.retry_queue),
                self.peak_retry,
            ),
        ] {
            if let (Some(before), Some(peak)) = (before, peak)
                && sharp_rise(before, peak)
            {
                warnings.push(format!(
                    "{name} rose sharply cluster-wide: {} before the stop, up to {} during the soak",
                    thousands(before),
                    thousands(peak)
                ));
            }
        }
        let required_pct = self.policy.recover_pct;
        Summary {
            check,
            baseline,
            moved_off,
            connections: total,
            back,
            recovered_pct,
            required_pct,
            messages: self.flow(),
            note: self.shortfall.clone().or(skip),
            nodes: b
                .map(|b| b.connections.keys().copied().collect())
                .unwrap_or_default(),
            warnings,
        }
    }
}

/// "Sharply": at least 100 more and at least three times as many.
fn sharp_rise(before: u64, peak: u64) -> bool {
    peak >= before.saturating_add(100) && peak >= before.saturating_mul(3)
}

fn max_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    }
}

#[cfg(test)]
mod tests;
