//! The executor: the only module that changes the cluster. It runs exactly the [`Plan`],
//! one node at a time, saving state after every step (DESIGN §2, §5, §6). It decides
//! nothing about the cluster itself: every wait and every stop is the
//! [`Tracker`](crate::gate::Tracker)'s verdict on what the executor observed.
//!
//! Per node: pre-stop (every node fully back, cluster settled) → baseline → stop →
//! backup → install → start → gate (A–G held for `stable_for`) → soak → next. Any
//! failure stops the run: the node's logs are shown, state is saved, and nothing after
//! the failed node is touched.

mod failure;
mod interrupt;
pub(crate) mod poll;
pub mod recover;
mod restart;
mod smoke;
mod summary;
mod watch;

pub use interrupt::Interrupt;
pub use smoke::read_via as smoke_read_via;
pub use watch::WaitEnd;

use std::time::{Duration, Instant};

use crate::error::Outcome;
use crate::gate::{GateTarget, NodeBaseline, Rules, Tracker};
use crate::inputs::Context;
use crate::plan::{Plan, PlanStepKind, PlannedNode, PlannedStep};
use crate::probe::{Client, ClusterView, Scope};
use crate::releases::NodeAction;
use crate::state::{Baseline, NodeRun, NodeStatus, RunState, RunStatus, StateDir, now_ms};
use crate::transport::{self, Transport};
use crate::{events::Event, output::progress::Reporter};

/// Choices the operator made on the command line.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub yes: bool,
    pub rollback_on_failure: bool,
    pub resume: bool,
    /// A terminal is attached (canary pause may ask).
    pub interactive: bool,
    /// `--break-lock`: the playbook's `unlock` runs first, so a stale team lock is taken.
    pub break_lock: bool,
}

/// Everything a run needs.
pub struct RunInputs<'a> {
    pub ctx: &'a Context,
    pub plan: &'a Plan,
    pub client: Client,
    pub reporter: &'a Reporter,
    pub dir: StateDir,
    pub state: RunState,
    pub interrupt: Interrupt,
    pub opts: Options,
}

pub struct Runner<'a> {
    pub ctx: &'a Context,
    pub plan: &'a Plan,
    pub target: GateTarget,
    pub client: Client,
    pub reporter: &'a Reporter,
    pub dir: StateDir,
    pub state: RunState,
    pub interrupt: Interrupt,
    pub opts: Options,
    tracker: Tracker,
    started: Instant,
    /// The last observation of a wait (for the `clients` summary of a failed soak, and
    /// carried from a gate into its soak).
    last_view: Option<ClusterView>,
    /// Which other node serves the cluster view of the next focused poll.
    turns: crate::probe::Turns,
    /// The kinds of "client check skipped" already said in this run (each said once).
    skips_said: std::collections::BTreeSet<crate::gate::clients::Skip>,
}

/// How one node ended.
enum NodeEnd {
    Done,
    Skipped,
    Failed,
    /// Stopped cleanly after the first Ctrl-C.
    Interrupted,
}

impl<'a> Runner<'a> {
    pub fn new(inputs: RunInputs<'a>) -> Self {
        Runner {
            ctx: inputs.ctx,
            plan: inputs.plan,
            target: GateTarget::new(inputs.plan.to.clone()),
            client: inputs.client,
            reporter: inputs.reporter,
            dir: inputs.dir,
            state: inputs.state,
            interrupt: inputs.interrupt,
            opts: inputs.opts,
            tracker: Tracker::new(Rules::from_policy(&inputs.ctx.manifest.policy))
                .with_clients(inputs.ctx.manifest.policy.clients),
            started: Instant::now(),
            last_view: None,
            turns: crate::probe::Turns::default(),
            skips_said: std::collections::BTreeSet::new(),
        }
    }

    pub(crate) fn emit(&self, e: &Event) {
        self.reporter.emit(e);
    }

    /// Saves state; a failure to save stops the run (never run without state).
    fn save(&mut self) -> anyhow::Result<()> {
        self.dir.save(&self.state).map_err(|e| {
            crate::error::WkError::no(
                format!(
                    "cannot save state to `{}`: {e}",
                    self.dir.state_path().display()
                ),
                "free disk space; the run stopped so that it is never without state",
            )
            .into()
        })
    }

    fn node_run(&mut self, id: u64) -> &mut NodeRun {
        if self.state.node(id).is_none() {
            self.state.nodes.push(NodeRun::new(id, None));
        }
        self.state.node_mut(id).expect("inserted above") // ok: inserted just above
    }

    /// The order nodes are visited: the plan's, except that on `--resume` a node whose
    /// stop began (it may be down) is finished first. Nodes upgraded earlier are
    /// re-verified afterwards, with the whole cluster back, so their gate includes F.
    fn visit_order(&self) -> Vec<&'a PlannedNode> {
        let plan: &'a Plan = self.plan;
        let busy = |pn: &PlannedNode| {
            self.state.node(pn.id).is_some_and(|n| {
                matches!(n.status, NodeStatus::InProgress | NodeStatus::Failed) && n.stop_began()
            })
        };
        let mut order: Vec<&'a PlannedNode> = plan.nodes.iter().filter(|pn| busy(pn)).collect();
        order.extend(plan.nodes.iter().filter(|pn| !busy(pn)));
        order
    }

    /// Runs every node of the plan in order. The first interrupt is announced at once
    /// with what it does (13.4).
    pub async fn run(self) -> anyhow::Result<Outcome> {
        let reporter = self.reporter;
        let interrupt = self.interrupt.clone();
        let announce = async move {
            interrupt.reached(1).await;
            reporter.emit(&Event::StopRequested {
                message: "stopping after the current step (a node that is down is first brought back through its gate); state is saved. Press Ctrl-C again to stop now".into(),
            });
            std::future::pending::<anyhow::Result<Outcome>>().await
        };
        tokio::select! {
            r = self.run_nodes() => r,
            r = announce => r,
        }
    }

    async fn run_nodes(mut self) -> anyhow::Result<Outcome> {
        self.state.status = RunStatus::Running;
        self.save()?;
        if self.opts.break_lock {
            // `--break-lock` takes the team lock too: its `unlock` runs first (13.1).
            self.run_level(&[PlanStepKind::Unlock]).await;
        }
        if let Some(outcome) = self.run_level(&[PlanStepKind::Lock]).await {
            // The team lock is held elsewhere: nothing was touched, that lock included.
            self.state.status = RunStatus::Failed;
            self.save()?;
            self.summary(outcome);
            return Ok(outcome);
        }
        if let Some(outcome) = self.run_level(&[PlanStepKind::PreRun]).await {
            // `pre_run` failed: nothing was touched; the lock this run took is released.
            self.run_level(&[PlanStepKind::Unlock]).await;
            self.state.status = RunStatus::Failed;
            self.save()?;
            self.summary(outcome);
            return Ok(outcome);
        }
        let order = self.visit_order();
        let total = order.len();
        let mut outcome = Outcome::Success;
        let mut upgraded = 0usize;
        for (i, pn) in order.iter().enumerate() {
            if self.interrupt.requested() {
                outcome = Outcome::Interrupted;
                break;
            }
            match self.node(pn, i + 1, total).await? {
                NodeEnd::Done => upgraded += 1,
                NodeEnd::Skipped => {}
                NodeEnd::Failed => {
                    outcome = Outcome::No;
                    break;
                }
                NodeEnd::Interrupted => {
                    outcome = Outcome::Interrupted;
                    break;
                }
            }
            let more = order[i + 1..].iter().any(|n| {
                n.action.acts()
                    && self
                        .state
                        .node(n.id)
                        .is_none_or(|r| r.status != NodeStatus::Ready)
            });
            if upgraded == 1
                && more
                && self.ctx.manifest.policy.canary
                && !self.opts.yes
                && !self.canary_confirmed(pn.id).await
            {
                self.emit(&Event::Interrupted {
                    node: None,
                    message: format!(
                        "canary: stopped after node {}; continue with {}",
                        pn.id,
                        self.resume_cmd()
                    ),
                });
                outcome = Outcome::Interrupted;
                break;
            }
        }
        if outcome == Outcome::Success
            && let Some(o) = self.run_level(&[PlanStepKind::PostRun]).await
        {
            outcome = o;
        }
        // The team lock is released however the run ended.
        self.run_level(&[PlanStepKind::Unlock]).await;
        self.state.status = match outcome {
            Outcome::Success => RunStatus::Completed,
            Outcome::No => RunStatus::Failed,
            Outcome::Interrupted => RunStatus::Interrupted,
        };
        self.save()?;
        self.summary(outcome);
        Ok(outcome)
    }

    async fn canary_confirmed(&self, node: u64) -> bool {
        if !self.opts.interactive {
            return false;
        }
        let prompt = format!(
            "canary: node {node} is upgraded and healthy. Continue with the other nodes? [y/N] "
        );
        // Ctrl-C at the prompt is a "no" (the answer is read on a blocking thread).
        tokio::select! {
            yes = self.reporter.suspend_for(crate::output::confirm(&prompt)) => yes,
            () = self.interrupt.reached(1) => false,
        }
    }

    async fn node(
        &mut self,
        pn: &PlannedNode,
        index: usize,
        total: usize,
    ) -> anyhow::Result<NodeEnd> {
        let id = pn.id;
        if pn.action == NodeAction::Skip {
            let reason = if crate::plan::select::not_selected(self.plan, id) {
                "not in `--nodes`".to_string()
            } else {
                format!("already on {}", self.node_version(id))
            };
            self.emit(&Event::NodeSkipped { node: id, reason });
            self.node_run(id).status = NodeStatus::Skipped;
            self.save()?;
            return Ok(NodeEnd::Skipped);
        }
        match self.state.node(id).map(|n| n.status) {
            Some(NodeStatus::Ready) => return self.verify(pn).await,
            // Rolled back to its old version: planned again from the start, pre-stop
            // check included.
            Some(NodeStatus::RolledBack) => self.node_run(id).restart_from_scratch(),
            _ => {}
        }
        let serving = if self.state.node(id).is_some_and(NodeRun::stop_began) {
            self.still_serving(pn).await
        } else {
            None
        };
        if let Some(version) = serving {
            // An earlier run began its stop, but the node answers with a process that is
            // not the new one on the target (the stop failed, the old image came back, or
            // someone started another version): it is serving, so it is planned again from
            // the start, the pre-stop check first.
            self.emit(&Event::Waiting {
                node: Some(id),
                what: format!(
                    "node {id} still runs a process that is not the new one on the target ({version}): planning it again from the start (pre-stop check first)"
                ),
            });
            self.node_run(id).restart_from_scratch();
            self.save()?;
        }
        let node_started = Instant::now();
        self.emit(&Event::NodeStarted {
            node: id,
            from: pn.from.clone(),
            to: self.node_version(id).to_string(),
            index,
            total,
        });
        {
            let from = pn.from.clone();
            let n = self.node_run(id);
            if n.from.is_none() {
                n.from = from;
            }
            n.status = NodeStatus::InProgress;
            n.error = None;
            n.started_at_ms.get_or_insert_with(now_ms);
        }
        self.save()?;

        let mut stopped_at = None;
        let mut start_returned = None;
        let transport = Transport::for_node(
            &self.ctx.manifest,
            self.ctx
                .manifest
                .node(id)
                .ok_or_else(|| anyhow::anyhow!("node {id} vanished from the manifest"))?,
        );
        for step in &pn.steps {
            let stop_began = self.state.node(id).is_some_and(NodeRun::stop_began);
            match step.kind {
                // Pre-stop, right before the stop, unless the stop already began in an
                // earlier run (the node may be down; its baseline stays the old process).
                PlanStepKind::CheckSettled if !stop_began => match self.pre_stop(pn).await? {
                    PreStop::Go => continue,
                    PreStop::End(end) => {
                        // Not stopped after all: a node drained for this stop goes back
                        // into client traffic.
                        self.undo_drain(pn, &transport).await?;
                        return Ok(end);
                    }
                },
                // After the gate (below).
                PlanStepKind::Undrain => continue,
                _ if step.command.is_none() => continue,
                _ => {}
            }
            if self.state.node(id).is_some_and(|n| n.finished(step.kind)) {
                continue;
            }
            if self.interrupt.requested() && !stop_began {
                return self.interrupted(id, false);
            }
            if step.kind == PlanStepKind::Stop {
                stopped_at = Some(Instant::now());
            }
            if self.already_done(pn, step).await? {
                continue;
            }
            if step.kind == PlanStepKind::Drain {
                // Before the drain: clients a drain disconnects are counted as moved off.
                self.record_client_baseline(id).await?;
            }
            if step.kind == PlanStepKind::Stop {
                self.stop_issued(id);
            }
            if let Some(end) = self.run_step(pn, step, &transport).await? {
                return Ok(end);
            }
            if step.kind == PlanStepKind::Start {
                start_returned = Some(Instant::now());
            }
        }

        // The gate, always: on a resumed run too, since the node may have changed while
        // wkctl was not watching.
        self.step_started(id, PlanStepKind::WaitReady, None)?;
        // The clients are checked against the baseline of this node's stop, as saved
        // (also by the earlier run on `--resume`), never against a later cluster.
        let clients = self.state.node(id).and_then(|n| n.clients.clone());
        self.tracker.set_client_baseline(id, clients);
        let baseline = self.baseline(id);
        let target = self.gate_target(id);
        let from = stopped_at.unwrap_or_else(Instant::now);
        match self
            .wait_ready(&baseline, &target, from, start_returned)
            .await
        {
            Ok(view) => {
                self.emit(&Event::NodeReady {
                    node: id,
                    version: self.node_version(id).to_string(),
                    duration_s: node_started.elapsed().as_secs_f64(),
                    clients: Some(self.tracker.clients_summary(&view)),
                });
                let commit = view.node(id).and_then(|n| n.commit.clone());
                let n = self.node_run(id);
                n.proven_commit = commit;
                if !n.finished(PlanStepKind::WaitReady) {
                    n.done.push(PlanStepKind::WaitReady);
                }
                self.save()?;
            }
            Err(WaitEnd::Interrupted) => return self.interrupted(id, true),
            Err(WaitEnd::Failed(f)) => {
                return self
                    .fail(
                        pn,
                        PlanStepKind::WaitReady,
                        &f.reason_in(self.plan.kind),
                        f.signal(),
                        f.observed(),
                        true,
                    )
                    .await;
            }
        }
        // Back into client traffic (a failure stops the run: the node is out of
        // rotation; `--resume` re-gates it and runs `undrain` again).
        if let Some(step) = pn.steps.iter().find(|s| s.kind == PlanStepKind::Undrain)
            && !self.state.node(id).is_some_and(|n| n.finished(step.kind))
            && let Some(end) = self.run_step(pn, step, &transport).await?
        {
            return Ok(end);
        }
        if self.interrupt.requested() {
            // Ready, not soaked: a resumed run re-gates it and runs the soak.
            return self.interrupted(id, false);
        }

        if pn.steps.iter().any(|s| s.kind == PlanStepKind::Soak) {
            self.step_started(id, PlanStepKind::Soak, None)?;
            match self.soak(id).await {
                Ok(d) => {
                    let clients = self.clients_summary();
                    self.emit(&Event::SoakFinished {
                        node: id,
                        ok: true,
                        duration_s: d.as_secs_f64(),
                        reason: None,
                        clients: clients.clone(),
                    });
                    self.service_warnings(id, clients.as_ref());
                }
                Err(WaitEnd::Interrupted) => return self.interrupted(id, false),
                Err(WaitEnd::Failed(f)) => {
                    self.emit(&Event::SoakFinished {
                        node: id,
                        ok: false,
                        duration_s: 0.0,
                        reason: Some(f.reason_in(self.plan.kind)),
                        clients: self.clients_summary(),
                    });
                    return self
                        .fail(
                            pn,
                            PlanStepKind::Soak,
                            &f.reason_in(self.plan.kind),
                            f.signal(),
                            f.observed(),
                            false,
                        )
                        .await;
                }
            }
            self.node_run(id).done.push(PlanStepKind::Soak);
        } else {
            self.emit(&Event::SoakFinished {
                node: id,
                ok: true,
                duration_s: 0.0,
                reason: None,
                clients: None,
            });
        }
        // The opt-in smoke test (`policy.smoke`), with the cluster soaked.
        if let Some(end) = self.smoke(pn).await? {
            return Ok(end);
        }
        self.finish_node(id, NodeStatus::Ready)?;
        Ok(NodeEnd::Done)
    }

    /// The `clients` summary on the last observation of a wait.
    fn clients_summary(&self) -> Option<crate::gate::clients::Summary> {
        self.last_view
            .as_ref()
            .map(|v| self.tracker.clients_summary(v))
    }

    /// Warnings of a soak that passed: a shortfall under `on_shortfall: warn`, sharp
    /// rises of `slow_clients` / `retry_queue`, a skipped client check (once per run for
    /// each reason: a tiny cluster is below the floor at every node).
    fn service_warnings(&mut self, id: u64, clients: Option<&crate::gate::clients::Summary>) {
        let mut out: Vec<String> = Vec::new();
        if let Some(w) = self.tracker.service_warning() {
            out.push(format!(
                "{w} (policy.clients.on_shortfall: warn, so the run goes on)"
            ));
        }
        if let Some(c) = clients {
            if c.check == crate::gate::clients::Check::Skipped
                && let Some(n) = &c.note
                && self
                    .tracker
                    .client_skip()
                    .is_none_or(|(kind, _)| self.skips_said.insert(kind))
            {
                out.push(n.clone());
            }
            out.extend(c.warnings.iter().cloned());
        }
        for message in out {
            self.emit(&Event::Warning {
                node: Some(id),
                message,
            });
        }
    }

    /// The node answers, and not with a new process on the target (compared with the
    /// baseline recorded before its stop).
    /// Whether a node whose stop began in an earlier run still serves with its old
    /// process. A `stop` that run was killed in (`kill -9`) may still be under way: its
    /// command outlived wkctl, and a node answers during its graceful shutdown. So the
    /// node is watched, up to the stop step's timeout, for the stop to take effect before
    /// it counts as serving (and is planned again from the start, pre-stop check first).
    /// The version the node serves with a process that is not the new one on the target,
    /// after an earlier run began its stop; `None` when it is down or runs the new one.
    async fn still_serving(&mut self, pn: &PlannedNode) -> Option<String> {
        let id = pn.id;
        // A stop that failed (it exited) left nothing running; one cut short may have.
        let interrupted_stop = self.state.node(id).is_some_and(|n| {
            n.status != NodeStatus::Failed
                && n.step == Some(PlanStepKind::Stop)
                && !n.finished(PlanStepKind::Stop)
        });
        let serving = self.runs_old_process(id).await;
        if serving.is_none() || !interrupted_stop {
            return serving;
        }
        let grace = pn
            .steps
            .iter()
            .find(|s| s.kind == PlanStepKind::Stop)
            .map_or(Duration::ZERO, |s| Duration::from_secs_f64(s.timeout_s));
        self.emit(&Event::Waiting {
            node: Some(id),
            what: format!(
                "node {id} still answers after its interrupted `stop`: up to {} for that stop to take effect",
                humantime::format_duration(grace)
            ),
        });
        let until = Instant::now() + grace;
        let poll = self.tracker.rules().poll;
        while Instant::now() < until {
            tokio::time::sleep(poll).await;
            // Down or on the new process: the stop took effect.
            self.runs_old_process(id).await?;
        }
        serving
    }

    /// The version node `id` answers with when that is not a new process on the target.
    async fn runs_old_process(&self, id: u64) -> Option<String> {
        let view = self.observe(Scope::Focus(id)).await;
        let n = view.node(id)?;
        let version = n.version.as_ref().filter(|_| n.reachable)?;
        let new = crate::gate::runs_new_process(
            &self.baseline(id),
            n,
            view.observed_at,
            &self.gate_target(id),
        );
        (!new).then(|| version.to_string())
    }

    /// Runs the plan's once-per-run steps of these kinds on the first node's host.
    /// `Some(outcome)` when one failed (its output is shown as a `run_step_failed` event).
    async fn run_level(&self, kinds: &[PlanStepKind]) -> Option<Outcome> {
        // The node the run steps were rendered for: the first to upgrade before
        // `--nodes` left some out.
        let first = self
            .plan
            .nodes
            .iter()
            .find(|n| n.action.acts() || crate::plan::select::not_selected(self.plan, n.id))?;
        let node = self.ctx.manifest.node(first.id)?;
        let transport = Transport::for_node(&self.ctx.manifest, node);
        for step in self
            .plan
            .run_steps
            .iter()
            .filter(|s| kinds.contains(&s.kind))
        {
            let command = step.command.clone()?;
            self.emit(&Event::step_started(first.id, step.kind, Some(&command)));
            let out = transport::run(
                &transport,
                &command,
                Duration::from_secs_f64(step.timeout_s),
            )
            .await;
            let ok = out.as_ref().is_ok_and(transport::StepOutput::success);
            self.emit(&Event::step_finished(
                first.id,
                step.kind,
                out.as_ref().ok(),
            ));
            if !ok {
                let detail = match &out {
                    Ok(o) => indent(&o.tail(10)),
                    Err(e) => e.to_string(),
                };
                self.emit(&Event::Interrupted {
                    node: None,
                    message: format!(
                        "the playbook's `{}` step failed on node {}'s host; nothing more was touched:\n{detail}",
                        step.kind, first.id
                    ),
                });
                if step.kind != PlanStepKind::Unlock {
                    return Some(Outcome::No);
                }
            }
        }
        None
    }

    /// The pre-stop check (every node fully back, F), the just-in-time re-read of the
    /// node (already on the target: skip it) and its baseline, from one observation.
    async fn pre_stop(&mut self, pn: &PlannedNode) -> anyhow::Result<PreStop> {
        let id = pn.id;
        self.step_started(id, PlanStepKind::CheckSettled, None)?;
        let view = match self.wait_safe_to_stop(id).await {
            Ok(view) => view,
            Err(WaitEnd::Interrupted) => return self.interrupted(id, false).map(PreStop::End),
            Err(WaitEnd::Failed(f)) => {
                return self
                    .fail(
                        pn,
                        PlanStepKind::CheckSettled,
                        &f.reason_in(self.plan.kind),
                        f.signal(),
                        f.observed(),
                        false,
                    )
                    .await
                    .map(PreStop::End);
            }
        };
        // A restart restarts a node on the version it runs: there is nothing to skip.
        if let Some(n) = view.node(id)
            && self.plan.kind.is_upgrade()
            && !self.target.is_dev()
            && n.version
                .as_ref()
                .is_some_and(|v| v.same_build(&self.plan.to))
        {
            self.emit(&Event::NodeSkipped {
                node: id,
                reason: format!(
                    "already runs {} (re-read right before its stop: upgraded by someone else?)",
                    self.plan.to
                ),
            });
            self.finish_node(id, NodeStatus::Skipped)?;
            return Ok(PreStop::End(NodeEnd::Skipped));
        }
        self.record_baseline(id, &view);
        let at_stop = self.tracker.client_baseline().cloned();
        let n = self.node_run(id);
        n.clients = match (n.clients.take(), at_stop) {
            // Taken before the drain: its counts stand; message growth, unknown from one
            // observation then, is known now.
            (Some(mut before), at_stop) if n.finished(PlanStepKind::Drain) => {
                before.growing = before.growing.or(at_stop.and_then(|b| b.growing));
                Some(before)
            }
            (_, at_stop) => at_stop,
        };
        self.node_run(id).done.push(PlanStepKind::CheckSettled);
        self.save()?;
        if self.interrupt.requested() {
            return self.interrupted(id, false).map(PreStop::End);
        }
        Ok(PreStop::Go)
    }

    /// The client baseline of `id`'s stop, right before its `drain` (one focused poll:
    /// every node's `/varz`), saved with the run state.
    async fn record_client_baseline(&mut self, id: u64) -> anyhow::Result<()> {
        let view = self.observe(Scope::Focus(id)).await;
        let b = self.tracker.client_baseline_from(&view);
        self.node_run(id).clients = Some(b);
        self.save()
    }

    fn record_baseline(&mut self, id: u64, view: &ClusterView) {
        let b = NodeBaseline::from_view(view, id);
        self.node_run(id).baseline = Some(Baseline {
            version: b.version.as_ref().map(ToString::to_string),
            commit: b.commit,
            uptime_s: b.uptime.map(|u| u.as_secs_f64()),
            at_ms: u64::try_from(
                b.observed_at
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_millis(),
            )
            .unwrap_or(u64::MAX),
        });
    }

    /// Before re-running a step an earlier run was interrupted in, observe the node: a
    /// `stop` whose node is already down, or a `start` whose node already runs a new
    /// process on the target, took effect and is not run again (a second `wukongim -d`
    /// would start a second instance).
    async fn already_done(&mut self, pn: &PlannedNode, step: &PlannedStep) -> anyhow::Result<bool> {
        let id = pn.id;
        let interrupted_here = self
            .state
            .node(id)
            .is_some_and(|n| n.step == Some(step.kind));
        if !interrupted_here || !matches!(step.kind, PlanStepKind::Stop | PlanStepKind::Start) {
            return Ok(false);
        }
        // A `start` may still be bringing the node up (a real node opens its API only
        // after loading its slots, facts §4.1): it gets the gate's whole budget to answer
        // before the step is run again (a second `wukongim -d` is a second instance).
        let rules = self.tracker.rules();
        let patience = Instant::now() + rules.node_timeout;
        let reason = loop {
            let view = self.observe(Scope::Focus(id)).await;
            let Some(n) = view.node(id) else {
                return Ok(false);
            };
            match step.kind {
                PlanStepKind::Stop if crate::gate::is_down(n) => {
                    break format!(
                        "node {id} is already down ({})",
                        n.error
                            .as_ref()
                            .map_or_else(|| "no answer".into(), ToString::to_string)
                    );
                }
                PlanStepKind::Start
                    if crate::gate::runs_new_process(
                        &self.baseline(id),
                        n,
                        view.observed_at,
                        &self.gate_target(id),
                    ) =>
                {
                    break format!(
                        "node {id} already runs a new process on {}",
                        n.version_raw.as_deref().unwrap_or("the target")
                    );
                }
                PlanStepKind::Start if crate::gate::is_down(n) && Instant::now() < patience => {
                    tokio::time::sleep(rules.poll).await;
                }
                _ => return Ok(false),
            }
        };
        self.emit(&Event::StepSkipped {
            node: id,
            step: step.kind,
            reason,
        });
        self.node_run(id).done.push(step.kind);
        self.save()?;
        Ok(true)
    }

    /// Runs one playbook step. `Some(end)` when the node ends here.
    async fn run_step(
        &mut self,
        pn: &PlannedNode,
        step: &PlannedStep,
        transport: &Transport,
    ) -> anyhow::Result<Option<NodeEnd>> {
        let id = pn.id;
        let Some(command) = step.command.clone() else {
            return Ok(None);
        };
        self.step_started(id, step.kind, Some(&command))?;
        let timeout = Duration::from_secs_f64(step.timeout_s);
        let out = tokio::select! {
            r = transport::run(transport, &command, timeout) => r,
            () = self.interrupt.reached(2) => {
                return self.interrupted(id, true).map(Some);
            }
        };
        let touched = step.kind.takes_node_down();
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                let reason = format!("{} could not run: {e}", step.kind);
                return self
                    .fail(pn, step.kind, &reason, None, None, touched)
                    .await
                    .map(Some);
            }
        };
        self.emit(&Event::step_finished(id, step.kind, Some(&out)));
        if !out.success() {
            let reason = format!(
                "step `{}` {}; last output:\n{}",
                step.kind,
                out.how_it_ended(step.timeout_s),
                indent(&out.tail(10))
            );
            return self
                .fail(pn, step.kind, &reason, None, None, touched)
                .await
                .map(Some);
        }
        self.node_run(id).done.push(step.kind);
        self.save()?;
        Ok(None)
    }

    /// A node drained for a stop that did not happen (the pre-stop check failed, or the
    /// run was interrupted there) is put back into client traffic, and its `drain` is
    /// forgotten so that a resumed run drains it again. A failed `undrain` is shown (the
    /// node stays out of rotation) but does not change how the run ends.
    async fn undo_drain(&mut self, pn: &PlannedNode, transport: &Transport) -> anyhow::Result<()> {
        let drained = self
            .state
            .node(pn.id)
            .is_some_and(|n| n.finished(PlanStepKind::Drain) && !n.finished(PlanStepKind::Stop));
        if drained {
            self.undrain_now(pn, transport).await?;
        }
        Ok(())
    }

    /// Runs the node's `undrain` (best effort, shown as a step): after a drain whose stop
    /// did not happen, or after a rollback put the old version back in service. On
    /// success the drain is forgotten (a resumed run drains it again).
    pub(super) async fn undrain_now(
        &mut self,
        pn: &PlannedNode,
        transport: &Transport,
    ) -> anyhow::Result<()> {
        let id = pn.id;
        let Some(command) = pn
            .steps
            .iter()
            .find(|s| s.kind == PlanStepKind::Undrain)
            .and_then(|s| s.command.clone().map(|c| (c, s.timeout_s)))
        else {
            return Ok(());
        };
        let (command, timeout_s) = command;
        self.emit(&Event::step_started(
            id,
            PlanStepKind::Undrain,
            Some(&command),
        ));
        let out = transport::run(transport, &command, Duration::from_secs_f64(timeout_s)).await;
        let ok = out.as_ref().is_ok_and(transport::StepOutput::success);
        self.emit(&Event::step_finished(
            id,
            PlanStepKind::Undrain,
            out.as_ref().ok(),
        ));
        if ok {
            let n = self.node_run(id);
            n.done
                .retain(|k| !matches!(k, PlanStepKind::Drain | PlanStepKind::Undrain));
            // Drained again next time, and its client baseline taken again before that.
            n.clients = None;
        } else {
            self.emit(&Event::Waiting {
                node: Some(id),
                what: format!(
                    "node {id} stays drained (out of client traffic): its `undrain` failed; run it by hand, or {} continues from the drained node",
                    self.resume_cmd()
                ),
            });
        }
        self.save()
    }

    /// `--resume`: a node the earlier run upgraded is re-verified with the full gate
    /// (version, new process against its recorded baseline, A–G held for `stable_for`),
    /// without a restart.
    async fn verify(&mut self, pn: &PlannedNode) -> anyhow::Result<NodeEnd> {
        let id = pn.id;
        self.step_started(id, PlanStepKind::Verify, None)?;
        let baseline = self.baseline(id);
        let target = self.gate_target(id);
        match self
            .wait_ready(&baseline, &target, Instant::now(), None)
            .await
        {
            Ok(_) => {
                self.emit(&Event::NodeSkipped {
                    node: id,
                    reason: "upgraded by the earlier run; re-verified without a restart (new process on the target, gate held)".into(),
                });
                Ok(NodeEnd::Skipped)
            }
            Err(WaitEnd::Interrupted) => self.interrupted(id, false),
            Err(WaitEnd::Failed(f)) => {
                let reason = format!(
                    "node {id}, {} by the earlier run, failed re-verification: {}",
                    self.plan.kind.past(),
                    f.reason_in(self.plan.kind)
                );
                self.fail(
                    pn,
                    PlanStepKind::Verify,
                    &reason,
                    f.signal(),
                    f.observed(),
                    false,
                )
                .await
            }
        }
    }

    fn baseline(&self, id: u64) -> NodeBaseline {
        let b = self.state.node(id).and_then(|n| n.baseline.clone());
        NodeBaseline {
            id,
            version: b
                .as_ref()
                .and_then(|b| b.version.as_deref())
                .and_then(|v| crate::version::WkVersion::parse(v).ok()),
            commit: b.as_ref().and_then(|b| b.commit.clone()),
            uptime: b
                .as_ref()
                .and_then(|b| b.uptime_s)
                .map(Duration::from_secs_f64),
            observed_at: b.as_ref().map_or_else(std::time::SystemTime::now, |b| {
                std::time::UNIX_EPOCH + Duration::from_millis(b.at_ms)
            }),
        }
    }

    fn step_started(
        &mut self,
        id: u64,
        kind: PlanStepKind,
        command: Option<&str>,
    ) -> anyhow::Result<()> {
        // Saved before it is announced: an event seen means the state knows the step.
        self.node_run(id).step = Some(kind);
        self.save()?;
        self.emit(&Event::step_started(id, kind, command));
        Ok(())
    }

    fn finish_node(&mut self, id: u64, status: NodeStatus) -> anyhow::Result<()> {
        let n = self.node_run(id);
        n.status = status;
        n.finished_at_ms = Some(now_ms());
        self.save()
    }
}

/// What the pre-stop check decided.
enum PreStop {
    Go,
    End(NodeEnd),
}

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
