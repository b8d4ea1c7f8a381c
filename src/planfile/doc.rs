//! The plan inside a plan file, as read back: mirrors `plan::Plan`'s JSON (a test holds
//! them equal), strictly (no unknown field), with a JSON Schema.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::manifest::{OnShortfall, Order};
use crate::plan::{PlanKind, PlanStepKind};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanDoc {
    pub format_version: u32,
    /// `restart` for a restart plan (`wkctl plan --restart`, applied by `restart --plan`);
    /// absent for an upgrade, so an upgrade plan file is byte for byte what it was.
    #[serde(default, skip_serializing_if = "PlanKind::is_upgrade")]
    pub kind: PlanKind,
    pub cluster: String,
    pub to: String,
    pub playbook: String,
    pub order: Order,
    pub source: Source,
    pub policy: PolicyDoc,
    pub nodes: Vec<NodeDoc>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub run_steps: Vec<StepDoc>,
    pub findings: Vec<FindingDoc>,
    /// sha256 over everything that decides what runs.
    pub digest: String,
    pub manifest_digest: String,
    pub playbook_digest: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Live,
    Offline,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyDoc {
    pub order: Order,
    pub canary: bool,
    pub soak: f64,
    pub stable_for: f64,
    pub node_timeout: f64,
    pub poll_interval: f64,
    pub step_timeout: f64,
    pub accept_stuck_joining: bool,
    /// `policy.clients` (issue #18).
    #[serde(default)]
    pub clients: ClientsDoc,
    /// `policy.smoke` (issue #18).
    #[serde(default)]
    pub smoke: Option<SmokeDoc>,
}

/// The mirror of `manifest::ClientsPolicy`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientsDoc {
    pub recover_pct: u64,
    pub within: Option<f64>,
    pub min: u64,
    pub on_shortfall: OnShortfall,
}

impl Default for ClientsDoc {
    fn default() -> Self {
        let d = crate::manifest::ClientsPolicy::default();
        ClientsDoc {
            recover_pct: d.recover_pct,
            within: d.within.map(|w| w.as_secs_f64()),
            min: d.min,
            on_shortfall: d.on_shortfall,
        }
    }
}

/// The mirror of `manifest::SmokePolicy`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SmokeDoc {
    pub channel: String,
    pub channel_type: u8,
    pub uid: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionDoc {
    Upgrade,
    /// A node of a restart plan.
    Restart,
    Skip,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeDoc {
    pub id: u64,
    pub host: String,
    pub api: String,
    pub from: Option<String>,
    pub action: ActionDoc,
    pub steps: Vec<StepDoc>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_failure: Vec<StepDoc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepDoc {
    #[schemars(with = "String")]
    pub kind: PlanStepKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    pub timeout_s: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SeverityDoc {
    Info,
    Warn,
    Block,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FindingDoc {
    pub id: String,
    pub severity: SeverityDoc,
    pub node: Option<u64>,
    pub message: String,
    pub hint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_by: Option<String>,
}

/// Every step kind's JSON name (the schema's enum for `kind`).
pub const STEP_KINDS: [PlanStepKind; 15] = [
    PlanStepKind::Prepare,
    PlanStepKind::CheckSettled,
    PlanStepKind::Backup,
    PlanStepKind::Stop,
    PlanStepKind::Install,
    PlanStepKind::Start,
    PlanStepKind::WaitReady,
    PlanStepKind::Soak,
    PlanStepKind::Verify,
    PlanStepKind::Logs,
    PlanStepKind::Rollback,
    PlanStepKind::Lock,
    PlanStepKind::PreRun,
    PlanStepKind::PostRun,
    PlanStepKind::Unlock,
];
