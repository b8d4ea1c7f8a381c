//! What the service-level check reports (the `clients` field of `node_ready` and
//! `soak_finished` events, part of the JSON contract) and its one-line rendering.

use serde::Serialize;

/// The outcome of the service-level check of one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// Still waiting for the clients (node_ready) or not judged yet.
    Waiting,
    Passed,
    /// Below `policy.clients.min` at baseline, or the counts were unknown.
    Skipped,
    Shortfall,
}

/// Message flow during the soak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Flow {
    /// Counters grew (during the soak).
    Flowing,
    /// They were growing before the stop and did not grow during the soak.
    Stopped,
    /// They were not growing before the stop (idle cluster): nothing to compare.
    Idle,
    /// Counters unknown (no `/varz` counters, or no earlier observation).
    Unknown,
}

/// The `clients` field of `node_ready` and `soak_finished` events.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub check: Check,
    /// Cluster-wide connections right before the stop.
    pub baseline: Option<u64>,
    /// The node's own connections right before its stop.
    pub moved_off: Option<u64>,
    /// Cluster-wide connections now.
    pub connections: Option<u64>,
    /// How many of the moved-off clients are counted again somewhere.
    pub back: Option<u64>,
    /// `connections` / `baseline`, in percent (floor).
    pub recovered_pct: Option<u64>,
    /// `policy.clients.recover` in percent.
    pub required_pct: u64,
    pub messages: Flow,
    /// Why the check was skipped, or what fell short.
    pub note: Option<String>,
    /// The nodes whose connections are compared (those that reported at the baseline).
    pub nodes: Vec<u64>,
    /// Reported, not fatal: `slow_clients` / `retry_queue` rising sharply.
    pub warnings: Vec<String>,
}

impl Summary {
    /// "4,812 clients moved off; 4,790 back (99%)", or why there is no number.
    pub fn line(&self) -> String {
        match (self.moved_off, self.back) {
            (Some(m), Some(b)) => {
                let pct = (b * 100).checked_div(m).unwrap_or(100);
                let mut s = format!(
                    "{} clients moved off; {} back ({pct}%)",
                    thousands(m),
                    thousands(b)
                );
                if let (Check::Skipped | Check::Shortfall, Some(n)) = (self.check, &self.note) {
                    s.push_str(" — ");
                    s.push_str(n);
                }
                s
            }
            _ => self
                .note
                .clone()
                .unwrap_or_else(|| "client connections unknown".into()),
        }
    }
}

/// `4812` → `4,812`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
