//! Building the plan ([`build`]): the node order, each node's steps rendered from the
//! playbook with their timeouts, and the findings the inputs raise (DESIGN §2).

use std::collections::BTreeMap;

use super::{
    FORMAT_VERSION, Plan, PlanKind, PlanStepKind, PlannedNode, PlannedStep, digest, restart,
};
use crate::error::WkError;
use crate::finding::{self, Finding, FindingId, hints};
use crate::manifest::{Manifest, Node, Order, Policy};
use crate::playbook::{self, Playbook, StepKind};
use crate::releases::{self, RuleOptions, Target};
use crate::version::WkVersion;

/// What the plan is built from.
pub struct Input<'a> {
    pub manifest: &'a Manifest,
    pub playbook: &'a Playbook,
    pub target: &'a Target,
    /// Current version per node (live or from the manifest); `None` = not known.
    pub versions: &'a BTreeMap<u64, Option<WkVersion>>,
    /// The current controller, when known (live only).
    pub controller: Option<u64>,
    pub live: bool,
    pub rules: RuleOptions,
    /// `restart`: the target is each node's own version ([`cluster_version`] for the plan).
    pub kind: PlanKind,
}

/// Builds the plan. Fails only on input errors (a template with an unknown variable).
pub fn build(input: &Input<'_>) -> Result<Plan, WkError> {
    let m = input.manifest;
    let to = &input.target.version;
    let to_s = to.to_string();
    let mut findings = input_findings(input);
    let (order, ids) = node_order(input, &mut findings);
    let known: Vec<(u64, WkVersion)> = input
        .versions
        .iter()
        .filter_map(|(id, v)| v.clone().map(|v| (*id, v)))
        .collect();
    if let Some(f) = releases::mixed_finding(&known) {
        findings.push(f);
    }
    let mut nodes = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(node) = m.node(id) else { continue };
        let (planned, mut node_findings) = plan_node(input, node, &to_s)?;
        findings.append(&mut node_findings);
        nodes.push(planned);
    }
    let run_steps = run_steps(input, &nodes, &to_s, |k| step_timeout(input, k))?;
    if let Some(f) = budget_finding(&nodes, &m.policy) {
        findings.push(f);
    }
    finding::merge_nodes(&mut findings, FindingId::VersionCrossesClusterRewrite);
    finding::sort(&mut findings);

    let mut plan = Plan {
        format_version: FORMAT_VERSION,
        kind: input.kind,
        cluster: m.name.clone(),
        to: to.clone(),
        playbook: input.playbook.name.clone(),
        order,
        source: if input.live { "live" } else { "offline" },
        policy: m.policy.clone(),
        nodes,
        run_steps,
        findings,
        digest: String::new(),
        manifest_digest: m.digest.clone(),
        playbook_digest: input.playbook.digest.clone(),
    };
    plan.digest = digest(&plan);
    Ok(plan)
}

/// What the inputs alone say before any node is planned: the target's findings (an
/// upgrade only), a cluster too small for zero downtime, a `stable_for` too short.
fn input_findings(input: &Input<'_>) -> Vec<Finding> {
    let m = input.manifest;
    let kind = input.kind;
    let mut findings = match kind {
        PlanKind::Upgrade => releases::target_findings(input.target),
        PlanKind::Restart => Vec::new(),
    };
    if m.nodes.len() < 3 {
        findings.push(Finding::warn(
            FindingId::ManifestTooFewNodes,
            None,
            format!(
                "the manifest lists {} node(s): the {kind} cannot be zero-downtime",
                m.nodes.len()
            ),
            hints::MANIFEST_TOO_FEW_NODES,
        ));
    }
    // Facts §11.2: readiness must hold again on a second check at least 6 s later (the
    // controller marks a silent node offline after ≈ 6 s, facts §4.2).
    if m.policy.stable_for < std::time::Duration::from_secs(6) {
        findings.push(Finding::warn(
            FindingId::PolicyStableForShort,
            None,
            format!(
                "`policy.stable_for` is {}s: shorter than the ≈ 6 s the controller takes to \
                 mark a silent node offline",
                m.policy.stable_for.as_secs_f64()
            ),
            hints::POLICY_STABLE_FOR_SHORT,
        ));
    }
    findings
}

/// The order the nodes are planned in, and the ids in it: ascending id (1001 first,
/// #310); `controller-last` needs live data, else it falls back to id order and says so.
fn node_order(input: &Input<'_>, findings: &mut Vec<Finding>) -> (Order, Vec<u64>) {
    let m = input.manifest;
    let mut ids: Vec<u64> = m.nodes.iter().map(|n| n.id).collect();
    ids.sort_unstable();
    let mut order = m.policy.order;
    if order == Order::ControllerLast {
        match input.controller {
            Some(c) if input.live => {
                ids.retain(|&i| i != c);
                if m.node(c).is_some() {
                    ids.push(c);
                }
            }
            _ => {
                order = Order::Id;
                findings.push(Finding::warn(
                    FindingId::PlanOrderFallback,
                    None,
                    "`order: controller-last` needs the live controller; planned in id order \
                     (1001 first)",
                    hints::PLAN_ORDER_FALLBACK,
                ));
            }
        }
    }
    (order, ids)
}

/// One node of the plan with the findings of its version change (`to` is the plan's
/// target; a restart's node keeps its own version).
fn plan_node(
    input: &Input<'_>,
    node: &Node,
    to: &str,
) -> Result<(PlannedNode, Vec<Finding>), WkError> {
    let id = node.id;
    let from = input.versions.get(&id).cloned().flatten();
    let (action, findings) = match input.kind {
        PlanKind::Upgrade => {
            releases::evaluate(id, from.as_ref(), &input.target.version, input.rules)
        }
        PlanKind::Restart => restart::evaluate(id, from.as_ref()),
    };
    let from_s = from.as_ref().map(ToString::to_string);
    // A restart starts the version the node runs: `{{to}}` is its own.
    let node_to = match input.kind {
        PlanKind::Restart => from_s.clone().unwrap_or_else(|| to.to_string()),
        PlanKind::Upgrade => to.to_string(),
    };
    let vars = playbook::node_vars(
        input.playbook,
        &input.manifest.vars,
        node,
        from_s.as_deref(),
        &node_to,
    );
    let step = |kind| playbook_step(input, &vars, id, kind);
    // Every step the run may need is rendered now, so an unknown variable is a
    // plan-time error and the on-failure commands are part of the reviewed plan.
    let mut on_failure = Vec::new();
    on_failure.extend(step(PlanStepKind::Logs)?);
    on_failure.extend(step(PlanStepKind::Rollback)?);
    let steps = if action.acts() {
        node_steps(&input.manifest.policy, step)?
    } else {
        Vec::new()
    };
    let planned = PlannedNode {
        id,
        host: node.host.clone(),
        api: node.api.clone(),
        from: from_s,
        action,
        steps,
        on_failure: if action.acts() {
            on_failure
        } else {
            Vec::new()
        },
    };
    Ok((planned, findings))
}

/// The steps of a node the run acts on, in the order they run: the playbook's (those
/// `step` renders) and wkctl's own checks and waits.
fn node_steps(
    policy: &Policy,
    step: impl Fn(PlanStepKind) -> Result<Option<PlannedStep>, WkError>,
) -> Result<Vec<PlannedStep>, WkError> {
    let wkctl = |kind, timeout: std::time::Duration| PlannedStep {
        kind,
        command: None,
        timeout_s: timeout.as_secs_f64(),
    };
    let mut steps = Vec::new();
    // `prepare` runs while the node still serves (a failure leaves it untouched),
    // then `drain` takes it out of client traffic, then the pre-stop check comes
    // right before the stop (a drain may take long: the check must be fresh).
    steps.extend(step(PlanStepKind::Prepare)?);
    steps.extend(step(PlanStepKind::Drain)?);
    steps.push(wkctl(PlanStepKind::CheckSettled, policy.node_timeout));
    // The pre-stop check comes right before the stop, and the backup after it:
    // a data directory is consistent only once the process is stopped (Pebble).
    for kind in [
        PlanStepKind::Stop,
        PlanStepKind::Backup,
        PlanStepKind::Install,
        PlanStepKind::Start,
    ] {
        steps.extend(step(kind)?);
    }
    steps.push(wkctl(PlanStepKind::WaitReady, policy.node_timeout));
    // `undrain` once the gate held: the node is back in the cluster, so it may
    // take client traffic again; the soak then watches it serving.
    steps.extend(step(PlanStepKind::Undrain)?);
    if !policy.soak.is_zero() {
        steps.push(wkctl(PlanStepKind::Soak, policy.soak));
    }
    Ok(steps)
}

/// The playbook's step of `kind` rendered with a node's `vars`, when the playbook has it
/// and this kind of run uses it (`None` also for the steps wkctl does itself).
fn playbook_step(
    input: &Input<'_>,
    vars: &BTreeMap<String, String>,
    id: u64,
    kind: PlanStepKind,
) -> Result<Option<PlannedStep>, WkError> {
    let Some(step) = kind.playbook_step() else {
        return Ok(None);
    };
    let Some(tpl) = input.playbook.step(step).filter(|_| input.kind.uses(kind)) else {
        return Ok(None);
    };
    let command = playbook::render(tpl, vars).map_err(|e| render_error(input, id, step, &e))?;
    Ok(Some(PlannedStep {
        kind,
        command: Some(command),
        timeout_s: step_timeout(input, step),
    }))
}

/// A step's timeout: the playbook's for it, else `policy.step_timeout`.
fn step_timeout(input: &Input<'_>, kind: StepKind) -> f64 {
    input
        .playbook
        .timeout(kind)
        .unwrap_or(input.manifest.policy.step_timeout)
        .as_secs_f64()
}

/// The once-per-run steps, rendered for the first node of the plan (its host is where
/// the team lock lives), when anything is to be upgraded.
fn run_steps(
    input: &Input<'_>,
    nodes: &[PlannedNode],
    to: &str,
    step_timeout: impl Fn(StepKind) -> f64,
) -> Result<Vec<PlannedStep>, WkError> {
    let Some(first) = nodes
        .iter()
        .find(|n| n.action.acts())
        .and_then(|n| input.manifest.node(n.id))
    else {
        return Ok(Vec::new());
    };
    let from = input
        .versions
        .get(&first.id)
        .cloned()
        .flatten()
        .map(|v| v.to_string());
    let vars = playbook::node_vars(
        input.playbook,
        &input.manifest.vars,
        first,
        from.as_deref(),
        to,
    );
    let mut out = Vec::new();
    for (kind, plan_kind) in [
        (StepKind::Lock, PlanStepKind::Lock),
        (StepKind::PreRun, PlanStepKind::PreRun),
        (StepKind::PostRun, PlanStepKind::PostRun),
        (StepKind::Unlock, PlanStepKind::Unlock),
    ] {
        if let Some(tpl) = input.playbook.step(kind) {
            let command = playbook::render(tpl, &vars)
                .map_err(|e| render_error(input, first.id, kind, &e))?;
            out.push(PlannedStep {
                kind: plan_kind,
                command: Some(command),
                timeout_s: step_timeout(kind),
            });
        }
    }
    Ok(out)
}

/// `node_timeout` runs from the stop: the steps after it (backup, install, start) must
/// fit in it with room for the gate, or a node that comes up is failed on the first poll.
pub(super) fn budget_finding(nodes: &[PlannedNode], policy: &Policy) -> Option<Finding> {
    let after_stop: f64 = nodes
        .iter()
        .map(|n| {
            n.steps
                .iter()
                .skip_while(|s| s.kind != PlanStepKind::Stop)
                .skip(1)
                // Up to the gate: `undrain` runs after it, outside `node_timeout`.
                .take_while(|s| s.kind != PlanStepKind::WaitReady)
                .filter(|s| s.command.is_some())
                .map(|s| s.timeout_s)
                .sum::<f64>()
        })
        .fold(0.0, f64::max);
    let gate_floor = policy.stable_for.as_secs_f64() + 2.0 * policy.poll_interval.as_secs_f64();
    let budget = policy.node_timeout.as_secs_f64();
    (after_stop + gate_floor > budget).then(|| {
        Finding::warn(
            FindingId::PolicyNodeTimeoutShort,
            None,
            format!(
                "the steps after the stop may take {after_stop:.0}s (their timeouts), more than \
                 `policy.node_timeout` ({budget:.0}s) leaves for them and the gate",
            ),
            hints::policy_node_timeout_short((after_stop + gate_floor).ceil()),
        )
    })
}

fn render_error(input: &Input<'_>, id: u64, kind: StepKind, e: &str) -> WkError {
    WkError::input(
        format!(
            "playbook `{}`, step `{}` for node {id}: {e}",
            input.playbook.name,
            kind.as_str()
        ),
        "define the variable under `vars:` in the manifest (cluster-wide) or under the node",
    )
}
