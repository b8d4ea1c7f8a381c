//! The plan: a pure function from (manifest, playbook, observed versions, target) to the
//! exact ordered steps `upgrade` runs (DESIGN §2 "plan, then execute"). `plan` prints it,
//! `upgrade --dry-run` prints it, `upgrade` executes exactly it. A `restart` (issue 19) is
//! the same plan with no version change: see [`PlanKind`] and `plan/restart.rs`.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::finding::{self, Finding};
use crate::manifest::{Order, Policy};
use crate::playbook::StepKind;
use crate::releases::NodeAction;
use crate::version::WkVersion;

mod build;
mod restart;
pub mod resume;
pub mod select;

pub use build::{Input, build};
pub use restart::cluster_version;

pub const FORMAT_VERSION: u32 = 1;

/// What a run does to each node it touches (issue 19). One executor runs both.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum PlanKind {
    /// A new version: prepare, backup, install, rollback as the playbook has them.
    #[default]
    Upgrade,
    /// A new process on the same version (`wkctl restart`): only drain, stop, start, the
    /// gate, undrain and the soak.
    Restart,
}

impl PlanKind {
    #[allow(clippy::trivially_copy_pass_by_ref)] // serde's `skip_serializing_if` passes a reference
    pub fn is_upgrade(&self) -> bool {
        *self == PlanKind::Upgrade
    }
    /// Also the subcommand that runs and resumes this kind of run.
    pub fn as_str(self) -> &'static str {
        match self {
            PlanKind::Upgrade => "upgrade",
            PlanKind::Restart => "restart",
        }
    }
    /// What a node this kind of run finished is: `upgraded` / `restarted` (the summary's,
    /// `history`'s and the notifications' word for a `ready` node).
    pub fn past(self) -> &'static str {
        match self {
            PlanKind::Upgrade => "upgraded",
            PlanKind::Restart => "restarted",
        }
    }
    /// The playbook steps a node of this kind of run may use.
    pub fn uses(self, step: PlanStepKind) -> bool {
        match self {
            PlanKind::Upgrade => true,
            PlanKind::Restart => !matches!(
                step,
                PlanStepKind::Prepare
                    | PlanStepKind::Backup
                    | PlanStepKind::Install
                    | PlanStepKind::Rollback
            ),
        }
    }
}

impl std::fmt::Display for PlanKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One step of one node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedStep {
    pub kind: PlanStepKind,
    /// The rendered shell command (playbook steps only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    pub timeout_s: f64,
}

/// Every step of a run, by kind: the playbook steps plus the steps wkctl does itself.
/// One vocabulary for the plan, the state file, the events and the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanStepKind {
    /// Fetch the new version while the node still serves; a failure leaves it untouched.
    Prepare,
    /// Take the node out of client traffic (a load balancer, …) before the pre-stop
    /// check and the stop. A failure leaves the node serving and stops the run.
    Drain,
    /// Before the stop: every node fully back (A, C, D, E) and the cluster settled (F),
    /// so a degraded cluster is never made worse.
    CheckSettled,
    Backup,
    Stop,
    Install,
    Start,
    /// The readiness gate (signals A–G held for `stable_for`).
    WaitReady,
    /// Put the node back into client traffic once its gate held (before the soak). A
    /// failure stops the run (the node is out of rotation); `--resume` runs it again.
    Undrain,
    /// Watch the whole cluster for `policy.soak`.
    Soak,
    /// `--resume`: re-verify a node an earlier run upgraded (the full gate, no restart).
    Verify,
    /// On failure: the node's log tail.
    Logs,
    /// On failure with `--rollback-on-failure`, or `wkctl rollback`.
    Rollback,
    /// Once per run, on the first node's host: the team-wide lock.
    Lock,
    /// Once per run, before the first node.
    PreRun,
    /// Once per run, after the last node.
    PostRun,
    /// Once per run, at its end (also after a failure): releases `lock`.
    Unlock,
}

impl PlanStepKind {
    pub fn playbook_step(self) -> Option<StepKind> {
        match self {
            PlanStepKind::Prepare => Some(StepKind::Prepare),
            PlanStepKind::Drain => Some(StepKind::Drain),
            PlanStepKind::Undrain => Some(StepKind::Undrain),
            PlanStepKind::Lock => Some(StepKind::Lock),
            PlanStepKind::PreRun => Some(StepKind::PreRun),
            PlanStepKind::PostRun => Some(StepKind::PostRun),
            PlanStepKind::Unlock => Some(StepKind::Unlock),
            PlanStepKind::Backup => Some(StepKind::Backup),
            PlanStepKind::Stop => Some(StepKind::Stop),
            PlanStepKind::Install => Some(StepKind::Install),
            PlanStepKind::Start => Some(StepKind::Start),
            PlanStepKind::Logs => Some(StepKind::Logs),
            PlanStepKind::Rollback => Some(StepKind::Rollback),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            PlanStepKind::Prepare => "prepare",
            PlanStepKind::Drain => "drain",
            PlanStepKind::Undrain => "undrain",
            PlanStepKind::Lock => "lock",
            PlanStepKind::PreRun => "pre_run",
            PlanStepKind::PostRun => "post_run",
            PlanStepKind::Unlock => "unlock",
            PlanStepKind::CheckSettled => "check_settled",
            PlanStepKind::Backup => "backup",
            PlanStepKind::Stop => "stop",
            PlanStepKind::Install => "install",
            PlanStepKind::Start => "start",
            PlanStepKind::WaitReady => "wait_ready",
            PlanStepKind::Soak => "soak",
            PlanStepKind::Verify => "verify",
            PlanStepKind::Logs => "logs",
            PlanStepKind::Rollback => "rollback",
        }
    }
    /// The node may be down once this step has begun.
    pub fn takes_node_down(self) -> bool {
        matches!(
            self,
            PlanStepKind::Stop
                | PlanStepKind::Backup
                | PlanStepKind::Install
                | PlanStepKind::Start
                | PlanStepKind::Rollback
        )
    }
}

impl std::fmt::Display for PlanStepKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One node in the plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedNode {
    pub id: u64,
    pub host: String,
    pub api: String,
    pub from: Option<String>,
    pub action: NodeAction,
    pub steps: Vec<PlannedStep>,
    /// What runs only if the node fails: `logs` (its log tail) and `rollback`. Rendered
    /// now and covered by the digest like every other command.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub on_failure: Vec<PlannedStep>,
}

impl PlannedNode {
    pub fn step(&self, kind: PlanStepKind) -> Option<&PlannedStep> {
        self.steps
            .iter()
            .chain(&self.on_failure)
            .find(|s| s.kind == kind)
    }
    /// Leaves the node as it is: no steps, nothing on failure. The caller says why in a
    /// finding and then calls [`Plan::settle`].
    pub fn skip(&mut self) {
        self.action = NodeAction::Skip;
        self.steps.clear();
        self.on_failure.clear();
    }
}

/// The whole plan (the `plan --json` document).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub format_version: u32,
    /// `restart`, or absent for an upgrade (so an upgrade's plan JSON and digest are as
    /// they always were).
    #[serde(skip_serializing_if = "PlanKind::is_upgrade")]
    pub kind: PlanKind,
    pub cluster: String,
    pub to: WkVersion,
    pub playbook: String,
    pub order: Order,
    /// `live` (versions read from the cluster) or `offline` (from the manifest).
    pub source: &'static str,
    pub policy: Policy,
    pub nodes: Vec<PlannedNode>,
    /// Once per run, on the first node's host: `lock` and `pre_run` before the first node,
    /// `post_run` and `unlock` at the end (`unlock` also after a failure).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub run_steps: Vec<PlannedStep>,
    pub findings: Vec<Finding>,
    /// sha256 over everything that decides what runs: resume refuses if it changed.
    pub digest: String,
    pub manifest_digest: String,
    pub playbook_digest: String,
}

impl Plan {
    pub fn ok(&self) -> bool {
        finding::ok(&self.findings)
    }
    /// Recomputes the digest after a change made by the resume policy.
    pub fn redigest(&mut self) {
        self.digest = digest(self);
    }
    /// After nodes were skipped with findings added: the findings in their order, and the
    /// digest of what the plan now is.
    pub fn settle(&mut self) {
        finding::sort(&mut self.findings);
        self.redigest();
    }
    /// The nodes the run acts on (upgrades, or restarts for a `restart` plan).
    pub fn upgrades(&self) -> impl Iterator<Item = &PlannedNode> {
        self.nodes.iter().filter(|n| n.action.acts())
    }
}

/// The digest covers the target, the order, and every rendered command.
fn digest(plan: &Plan) -> String {
    let mut h = Sha256::new();
    h.update(plan.cluster.as_bytes());
    // Only a restart adds its kind: an upgrade's digest is what it always was.
    if !plan.kind.is_upgrade() {
        h.update(plan.kind.as_str().as_bytes());
    }
    h.update(plan.to.to_string().as_bytes());
    h.update(plan.manifest_digest.as_bytes());
    h.update(plan.playbook_digest.as_bytes());
    for s in &plan.run_steps {
        h.update(s.kind.as_str().as_bytes());
        h.update(s.command.as_deref().unwrap_or("").as_bytes());
    }
    for n in &plan.nodes {
        h.update(n.id.to_le_bytes());
        for s in n.steps.iter().chain(&n.on_failure) {
            h.update(s.kind.as_str().as_bytes());
            h.update(s.command.as_deref().unwrap_or("").as_bytes());
        }
    }
    crate::manifest::hex(&h.finalize())
}

#[cfg(test)]
mod tests;
