//! `wkctl recover`, the pure part: when a cluster counts as broken, the ordered cold
//! start as a plan value, its state file (`recover.json`, a step cursor) and what each
//! wait needs to see (issue #19 point 2).
//!
//! The procedure is the maintainers': after all nodes were restarted at once and the
//! console showed 1 node of 3, "先启动1001节点，再启动其他两个节点" (start 1001 first, then
//! the other two; #310, facts §5.4), and one at a time, the next only once the previous
//! finished starting (#408). Waits use the gate's signals (facts §11.2): C for a
//! controller, D for "online and Joined in the controller's view", E for a config that
//! caught up, F for the settled cluster.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::WkError;
use crate::finding::{Finding, FindingId};
use crate::gate::{self, GateTarget, NodeBaseline, Signal, SignalState};
use crate::manifest::Manifest;
use crate::playbook::{self, Playbook, StepKind};
use crate::probe::ClusterView;
use crate::version::WkVersion;

mod state;
pub use state::{RecoverState, RecoverStatus, resumable, unfinished};

pub const FORMAT_VERSION: u32 = 1;
/// `recover.json` in the cluster's state directory.
pub const STATE_FILE: &str = "recover.json";

/// Why the cluster counts as broken: the findings of `check` that an ordered cold start
/// is for (membership mismatch, no controller, a node that answers but the controller does
/// not see), plus several nodes each claiming the controller. Empty = not broken.
pub fn broken_reasons(view: &ClusterView, findings: &[Finding]) -> Vec<String> {
    let mut out: Vec<String> = findings
        .iter()
        .filter(|f| match f.id {
            FindingId::ClusterMembershipMismatch | FindingId::ClusterNoController => true,
            // Answers, yet the controller does not count it: they do not see each other.
            FindingId::ClusterNodeOffline => f
                .node
                .and_then(|id| view.node(id))
                .is_some_and(|n| n.reachable),
            _ => false,
        })
        .map(|f| format!("{}: {}", f.id, f.message))
        .collect();
    if view.controller_claims.len() > 1 {
        out.push(format!(
            "nodes {} each claim to be the controller",
            ids(&view.controller_claims)
        ));
    }
    out
}

fn ids(ids: &[u64]) -> String {
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a step waits for before the next one begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "until", content = "nodes")]
pub enum WaitFor {
    /// Nothing (the doctor report).
    Nothing,
    /// The node's API refuses connections.
    Down(u64),
    /// The node's API answers (step 3: the first node).
    ApiAnswers(u64),
    /// A controller is elected and both nodes are online and Joined in its view, each with
    /// its config caught up (step 4: the second node has fully started before the next).
    ControllerAndJoined(u64, u64),
    /// D and E of the node (step 5).
    JoinedAndCaughtUp(u64),
    /// F, and every manifest node a member: N of N (step 6).
    Settled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoverStepKind {
    /// Run doctor's collection and keep its report beside the state.
    Doctor,
    Stop,
    Start,
    /// Wait for F and N of N.
    Settle,
}

impl RecoverStepKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecoverStepKind::Doctor => "doctor",
            RecoverStepKind::Stop => "stop",
            RecoverStepKind::Start => "start",
            RecoverStepKind::Settle => "settle",
        }
    }
}

/// One step of the cold start.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecoverStep {
    pub kind: RecoverStepKind,
    pub node: Option<u64>,
    /// The rendered playbook command (`stop`/`start`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    pub timeout_s: f64,
    pub wait: WaitFor,
    /// One line for the operator.
    pub what: String,
}

/// The whole cold start, built before anything is touched (printed by `--dry-run`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecoverPlan {
    pub format_version: u32,
    pub cluster: String,
    /// Every node that will be stopped, ascending.
    pub nodes: Vec<u64>,
    /// The version each node is started with (what it runs now).
    pub versions: BTreeMap<u64, String>,
    pub steps: Vec<RecoverStep>,
    /// The playbook's `logs` command per node (shown on failure).
    #[serde(skip)]
    pub logs: BTreeMap<u64, String>,
    /// The playbook's team lock (`lock`/`unlock`, on the first node's host), as for `upgrade`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unlock: Option<String>,
}

/// Builds the plan: doctor, stop every node in reverse id order, start the lowest id and
/// wait until its API answers, the next until a controller is elected and both are
/// Joined, each other one at a time until D and E, then F with N of N.
pub fn build(
    manifest: &Manifest,
    playbook: &Playbook,
    versions: &BTreeMap<u64, String>,
) -> Result<RecoverPlan, WkError> {
    let mut ids: Vec<u64> = manifest.nodes.iter().map(|n| n.id).collect();
    ids.sort_unstable();
    let mut r = Renderer {
        manifest,
        playbook,
        versions,
        logs: BTreeMap::new(),
    };
    let mut steps = vec![RecoverStep {
        kind: RecoverStepKind::Doctor,
        node: None,
        command: None,
        timeout_s: 0.0,
        wait: WaitFor::Nothing,
        what: "run doctor's collection and save its report beside the state".into(),
    }];
    for &id in ids.iter().rev() {
        steps.push(RecoverStep {
            kind: RecoverStepKind::Stop,
            node: Some(id),
            command: r.render(id, StepKind::Stop)?,
            timeout_s: r.timeout(StepKind::Stop),
            wait: WaitFor::Down(id),
            what: format!("stop node {id} and wait until its API refuses connections"),
        });
    }
    for (i, &id) in ids.iter().enumerate() {
        let (wait, what) = start_wait(&ids, i);
        steps.push(RecoverStep {
            kind: RecoverStepKind::Start,
            node: Some(id),
            command: r.render(id, StepKind::Start)?,
            timeout_s: r.timeout(StepKind::Start),
            wait,
            what,
        });
    }
    let lock = r.render(ids[0], StepKind::Lock)?;
    let unlock = r.render(ids[0], StepKind::Unlock)?;
    steps.push(RecoverStep {
        kind: RecoverStepKind::Settle,
        node: None,
        command: None,
        timeout_s: 0.0,
        wait: WaitFor::Settled,
        what: format!(
            "wait until the cluster is settled (F) with {0} of {0} nodes",
            ids.len()
        ),
    });
    Ok(RecoverPlan {
        format_version: FORMAT_VERSION,
        cluster: manifest.name.clone(),
        nodes: ids,
        versions: versions.clone(),
        steps,
        logs: r.logs,
        lock,
        unlock,
    })
}

/// What the start of the `i`-th node (of `ids`, ascending) waits for, and how it is said:
/// the first until its API answers, the second until a controller is elected and both
/// are Joined and caught up, every later one until it is Joined and caught up.
fn start_wait(ids: &[u64], i: usize) -> (WaitFor, String) {
    let id = ids[i];
    match i {
        0 => (
            WaitFor::ApiAnswers(id),
            format!("start node {id} alone and wait until its API answers"),
        ),
        1 => (
            WaitFor::ControllerAndJoined(ids[0], id),
            format!(
                "start node {id} and wait until a controller is elected and nodes {} and {id} \
                 are Joined (D) and caught up (E)",
                ids[0]
            ),
        ),
        _ => (
            WaitFor::JoinedAndCaughtUp(id),
            format!(
                "start node {id} and wait until it is online and Joined (D) and its config \
                 caught up (E)"
            ),
        ),
    }
}

/// Renders the playbook's steps of the cold start for each node, on the version it is
/// started with, and keeps each node's `logs` command on the way (shown on failure).
struct Renderer<'a> {
    manifest: &'a Manifest,
    playbook: &'a Playbook,
    versions: &'a BTreeMap<u64, String>,
    logs: BTreeMap<u64, String>,
}

impl Renderer<'_> {
    /// The step's command for node `id` (`None`: the playbook has no such step, or the
    /// manifest no such node); an error when the node's version is not known.
    fn render(&mut self, id: u64, kind: StepKind) -> Result<Option<String>, WkError> {
        let Some(node) = self.manifest.node(id) else {
            return Ok(None);
        };
        let Some(version) = self.versions.get(&id) else {
            return Err(WkError::input(
                format!("the version node {id} runs is not known (it does not answer)"),
                format!(
                    "declare it as `version:` of node {id} in the manifest, so `start` can \
                     start it on that version"
                ),
            ));
        };
        let vars = playbook::node_vars(
            self.playbook,
            &self.manifest.vars,
            node,
            Some(version),
            version,
        );
        if let Some(tpl) = self.playbook.step(StepKind::Logs)
            && let Ok(cmd) = playbook::render(tpl, &vars)
        {
            self.logs.insert(id, cmd);
        }
        self.playbook
            .step(kind)
            .map(|tpl| playbook::render(tpl, &vars))
            .transpose()
            .map_err(|e| {
                WkError::input(
                    format!(
                        "playbook `{}`, step `{}` for node {id}: {e}",
                        self.playbook.name,
                        kind.as_str()
                    ),
                    "define the variable under `vars:` in the manifest (cluster-wide) or under \
                     the node",
                )
            })
    }

    /// A step's timeout: the playbook's for it, else `policy.step_timeout`.
    fn timeout(&self, kind: StepKind) -> f64 {
        self.playbook
            .timeout(kind)
            .unwrap_or(self.manifest.policy.step_timeout)
            .as_secs_f64()
    }
}

/// The version to start each node with: what it reports now, else what the manifest
/// declares, else the version most other nodes report (the cluster runs one version
/// after the incident). A node whose version stays unknown is left out (`build` says so).
pub fn versions(
    manifest: &Manifest,
    live: &BTreeMap<u64, Option<WkVersion>>,
) -> BTreeMap<u64, String> {
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for v in live.values().flatten() {
        *count.entry(v.to_string()).or_default() += 1;
    }
    let common = count.into_iter().max_by_key(|(_, n)| *n).map(|(v, _)| v);
    manifest
        .nodes
        .iter()
        .filter_map(|n| {
            let v = live
                .get(&n.id)
                .cloned()
                .flatten()
                .map(|v| v.to_string())
                .or_else(|| n.version.as_ref().map(ToString::to_string))
                .or_else(|| common.clone())?;
            Some((n.id, v))
        })
        .collect()
}

/// Where a wait stands in one observation: `Ok(())` when it holds, else what is missing
/// (the "last seen" shown when it times out), with the gate signal it waits on.
pub fn wait_state(
    wait: WaitFor,
    view: &ClusterView,
    manifest: &Manifest,
    versions: &BTreeMap<u64, String>,
) -> Result<(), (Option<Signal>, String)> {
    let signal = |id: u64, s: Signal| -> SignalState {
        let Some(version) = versions.get(&id).and_then(|v| WkVersion::parse(v).ok()) else {
            return SignalState::Unknown(format!("node {id}: version unknown"));
        };
        let st = gate::evaluate(
            &NodeBaseline::from_view(view, id),
            None,
            view,
            &GateTarget::new(version),
        );
        st.state(s)
            .cloned()
            .unwrap_or_else(|| SignalState::Unknown("not evaluated".into()))
    };
    let need = |id: u64, s: Signal| -> Result<(), (Option<Signal>, String)> {
        match signal(id, s) {
            SignalState::Met => Ok(()),
            other => Err((Some(s), other.split().1.unwrap_or_default())),
        }
    };
    match wait {
        WaitFor::Nothing => Ok(()),
        WaitFor::Down(id) => match view.node(id) {
            Some(n) if gate::is_down(n) => Ok(()),
            _ => Err((None, format!("node {id} still answers"))),
        },
        WaitFor::ApiAnswers(id) => match view.node(id) {
            Some(n) if n.reachable => Ok(()),
            Some(n) => Err((
                Some(Signal::ApiHealthy),
                format!(
                    "node {id} does not answer: {}",
                    n.error
                        .as_ref()
                        .map_or_else(|| "no answer".into(), ToString::to_string)
                ),
            )),
            None => Err((None, format!("node {id} was not observed"))),
        },
        WaitFor::ControllerAndJoined(a, b) => {
            if view.controller.is_none() {
                return Err((
                    Some(Signal::KnowsController),
                    "no controller is elected yet".into(),
                ));
            }
            // Joined is not the end of a start: the config catch-up follows (the simulator
            // and upstream alike), and the next node is started only once this one has
            // fully started (the maintainers' advice, #310).
            need(a, Signal::OnlineInControllerView)?;
            need(b, Signal::OnlineInControllerView)?;
            need(a, Signal::ConfigCaughtUp)?;
            need(b, Signal::ConfigCaughtUp)
        }
        WaitFor::JoinedAndCaughtUp(id) => {
            need(id, Signal::OnlineInControllerView)?;
            need(id, Signal::ConfigCaughtUp)
        }
        WaitFor::Settled => {
            match gate::cluster_settled(view) {
                SignalState::Met => {}
                other => {
                    return Err((
                        Some(Signal::ClusterSettled),
                        other.split().1.unwrap_or_default(),
                    ));
                }
            }
            let members = view.membership.clone().unwrap_or_default();
            let missing = manifest.missing_from(&members);
            if missing.is_empty() {
                Ok(())
            } else {
                Err((
                    Some(Signal::ClusterSettled),
                    format!(
                        "the cluster reports {} of {} nodes ({} missing)",
                        members.len(),
                        manifest.nodes.len(),
                        ids(&missing)
                    ),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests;
