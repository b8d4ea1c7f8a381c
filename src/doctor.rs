//! `wkctl doctor`: the maintainers' troubleshooting advice, automated (facts §4.5, §5.3,
//! §8.3): every node's logs scanned for known signatures, the network between every pair
//! of nodes (cluster and API ports), and the settings that must agree. Collection
//! ([`collect`]) runs the playbook's `logs`, `config` and `netcheck` steps through each
//! node's transport, concurrently; judging ([`judge`], `signatures`, `settings`) is pure.

mod collect;
mod judge;
pub mod report;
pub mod settings;
pub mod signatures;

use serde::Serialize;

use crate::finding::{self, Finding};
use crate::inputs::Context;
use crate::probe::ClusterView;

pub use signatures::LogMatch;

/// What a `netcheck` said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "detail")]
pub enum Reach {
    Ok,
    Unreachable(String),
    /// The check itself could not run (no `netcheck` step, command missing, ssh failed).
    Unknown(String),
}

/// The port of a network check. The order (`api` first) is the order of the report's
/// links, as when it was the port's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Port {
    /// The API port (5001) peers forward requests to.
    Api,
    /// The cluster port (11110) the nodes' raft and replication use.
    Cluster,
}

impl Port {
    /// The port's name in JSON and in the report: `api` or `cluster`.
    pub fn as_str(self) -> &'static str {
        match self {
            Port::Api => "api",
            Port::Cluster => "cluster",
        }
    }

    /// The port as a finding's message names it.
    pub fn described(self) -> &'static str {
        match self {
            Port::Api => "API port (5001)",
            Port::Cluster => "cluster port (11110)",
        }
    }
}

impl std::fmt::Display for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One directed pair of the network matrix.
#[derive(Debug, Clone, Serialize)]
pub struct Link {
    pub from: u64,
    pub to: u64,
    /// `cluster` (port 11110) or `api` (port 5001).
    pub port: Port,
    pub addr: String,
    pub reach: Reach,
}

/// Per-node collection problems (a step that failed to run).
#[derive(Debug, Clone, Serialize)]
pub struct StepProblem {
    pub node: u64,
    pub step: &'static str,
    pub error: String,
}

/// Everything `doctor` found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub format_version: u32,
    pub cluster: String,
    pub findings: Vec<Finding>,
    pub logs: Vec<LogMatch>,
    pub network: Vec<Link>,
    pub settings: Vec<settings::SettingRow>,
    pub problems: Vec<StepProblem>,
    #[serde(skip)]
    pub view: Option<ClusterView>,
    /// How many nodes the manifest has.
    #[serde(skip)]
    pub nodes: usize,
}

impl Report {
    pub fn ok(&self) -> bool {
        finding::ok(&self.findings)
    }

    /// How many nodes doctor looked at.
    pub fn node_count(&self) -> usize {
        self.nodes
    }
}

/// Runs every collection step and judges the results. `live` are the live-check findings.
pub async fn run(ctx: &Context, view: ClusterView, live: Vec<Finding>) -> Report {
    let collected = collect::collect(ctx, &view).await;
    judge::judge(
        &ctx.manifest,
        view,
        live,
        collected,
        settings::FingerprintKey::random().as_ref(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `port` keeps the JSON and text it had as a string, and the links their order.
    #[test]
    fn ports_keep_their_names_and_order() {
        let link = Link {
            from: 1001,
            to: 1002,
            port: Port::Cluster,
            addr: "a:11110".into(),
            reach: Reach::Ok,
        };
        assert_eq!(serde_json::to_value(&link).unwrap()["port"], "cluster");
        assert_eq!(serde_json::to_value(Port::Api).unwrap(), "api");
        assert_eq!(format!("{} {}", Port::Cluster, Port::Api), "cluster api");
        assert!(
            Port::Api < Port::Cluster,
            "\"api\" < \"cluster\" sorted the links"
        );
    }
}
