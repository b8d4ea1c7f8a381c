//! One node's run: its phases (skip or re-verify, steps, gate, `undrain`, soak, smoke),
//! the pre-stop check and the baselines it records.

use std::ops::ControlFlow;
use std::time::Instant;

use super::{NodeEnd, Runner, WaitEnd};
use crate::events::Event;
use crate::gate::NodeBaseline;
use crate::plan::{PlanStepKind, PlannedNode};
use crate::probe::{ClusterView, Scope};
use crate::releases::NodeAction;
use crate::state::{Baseline, NodeRun, NodeStatus, now_ms};
use crate::transport::Transport;

/// When the node's stop was issued and its start returned (the gate measures from them).
#[derive(Debug, Default, Clone, Copy)]
struct StepTimes {
    stopped_at: Option<Instant>,
    start_returned: Option<Instant>,
}

/// What the pre-stop check decided.
enum PreStop {
    Go,
    End(NodeEnd),
}

impl Runner<'_> {
    /// One node of the plan, phase by phase: skipped, re-verified (upgraded by the
    /// earlier run), or taken through its steps, gate, `undrain`, soak and smoke test.
    /// Every phase saves the state before the next one starts.
    pub(super) async fn node(
        &mut self,
        pn: &PlannedNode,
        index: usize,
        total: usize,
    ) -> anyhow::Result<NodeEnd> {
        let id = pn.id;
        if pn.action == NodeAction::Skip {
            return self.skip(pn);
        }
        match self.state.node(id).map(|n| n.status) {
            Some(NodeStatus::Ready) => return self.verify(pn).await,
            // Rolled back to its old version: planned again from the start, pre-stop
            // check included.
            Some(NodeStatus::RolledBack) => self.node_run(id).restart_from_scratch(),
            _ => {}
        }
        let node_started = Instant::now();
        self.begin(pn, index, total)?;
        let back = match self.after_earlier_stop(pn).await? {
            ControlFlow::Continue(back) => back,
            ControlFlow::Break(end) => return Ok(end),
        };

        let transport = Transport::for_node(
            &self.ctx.manifest,
            self.ctx
                .manifest
                .node(id)
                .ok_or_else(|| anyhow::anyhow!("node {id} vanished from the manifest"))?,
        );
        let times = match self.steps(pn, &transport, back).await? {
            ControlFlow::Continue(times) => times,
            ControlFlow::Break(end) => return Ok(end),
        };
        if let Some(end) = self.gate(pn, node_started, times).await? {
            return Ok(end);
        }
        if let Some(end) = self.undrain_after_gate(pn, &transport).await? {
            return Ok(end);
        }
        if self.interrupt.requested() {
            // Ready, not soaked: a resumed run re-gates it and runs the soak.
            return self.interrupted(id, false);
        }
        if let Some(end) = self.soak_node(pn).await? {
            return Ok(end);
        }
        // The opt-in smoke test (`policy.smoke`), with the cluster soaked.
        if let Some(end) = self.smoke(pn).await? {
            return Ok(end);
        }
        self.finish_node(id, NodeStatus::Ready)?;
        Ok(NodeEnd::Done)
    }

    /// A node the plan skips (on the target already, or left out by `--nodes`).
    fn skip(&mut self, pn: &PlannedNode) -> anyhow::Result<NodeEnd> {
        let id = pn.id;
        let reason = if crate::plan::select::not_selected(self.plan, id) {
            "not in `--nodes`".to_string()
        } else {
            format!("already on {}", self.node_version(id))
        };
        self.emit(&Event::NodeSkipped { node: id, reason });
        self.node_run(id).status = NodeStatus::Skipped;
        self.save()?;
        Ok(NodeEnd::Skipped)
    }

    /// The node's start, announced and saved (in progress, from its old version).
    fn begin(&mut self, pn: &PlannedNode, index: usize, total: usize) -> anyhow::Result<()> {
        let id = pn.id;
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
        self.save()
    }

    /// The node's playbook steps up to its gate, each skipped when it finished (or, on
    /// `--resume`, took effect) before. `Break(end)` when the node ends here.
    async fn steps(
        &mut self,
        pn: &PlannedNode,
        transport: &Transport,
        back: bool,
    ) -> anyhow::Result<ControlFlow<NodeEnd, StepTimes>> {
        let id = pn.id;
        let mut times = StepTimes::default();
        if back {
            // The gate measures from now: the node came back while wkctl was away.
            times.stopped_at = Some(Instant::now());
        }
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
                        self.undo_drain(pn, transport).await?;
                        return Ok(ControlFlow::Break(end));
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
                return self.interrupted(id, false).map(ControlFlow::Break);
            }
            if step.kind == PlanStepKind::Stop {
                times.stopped_at = Some(Instant::now());
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
            if let Some(end) = self.run_step(pn, step, transport).await? {
                return Ok(ControlFlow::Break(end));
            }
            if step.kind == PlanStepKind::Start {
                times.start_returned = Some(Instant::now());
            }
        }
        Ok(ControlFlow::Continue(times))
    }

    /// The gate, always: on a resumed run too, since the node may have changed while
    /// wkctl was not watching. `Some(end)` when the node ends here.
    async fn gate(
        &mut self,
        pn: &PlannedNode,
        node_started: Instant,
        times: StepTimes,
    ) -> anyhow::Result<Option<NodeEnd>> {
        let id = pn.id;
        self.step_started(id, PlanStepKind::WaitReady, None)?;
        // The clients are checked against the baseline of this node's stop, as saved
        // (also by the earlier run on `--resume`), never against a later cluster.
        let clients = self.state.node(id).and_then(|n| n.clients.clone());
        self.tracker.set_client_baseline(id, clients);
        let baseline = self.baseline(id);
        let target = self.gate_target(id);
        let from = times.stopped_at.unwrap_or_else(Instant::now);
        match self
            .wait_ready(&baseline, &target, from, times.start_returned)
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
                Ok(None)
            }
            Err(WaitEnd::Interrupted) => self.interrupted(id, true).map(Some),
            Err(WaitEnd::Failed(f)) => self
                .fail(
                    pn,
                    PlanStepKind::WaitReady,
                    &f.reason_in(self.plan.kind),
                    f.signal(),
                    f.observed(),
                    true,
                )
                .await
                .map(Some),
        }
    }

    /// Back into client traffic after the gate (a failure stops the run: the node is out
    /// of rotation; `--resume` re-gates it and runs `undrain` again).
    async fn undrain_after_gate(
        &mut self,
        pn: &PlannedNode,
        transport: &Transport,
    ) -> anyhow::Result<Option<NodeEnd>> {
        if let Some(step) = pn.steps.iter().find(|s| s.kind == PlanStepKind::Undrain)
            && !self
                .state
                .node(pn.id)
                .is_some_and(|n| n.finished(step.kind))
        {
            return self.run_step(pn, step, transport).await;
        }
        Ok(None)
    }

    /// The soak, when the playbook has one (else a soak that passed at once is
    /// announced). `Some(end)` when the node ends here.
    async fn soak_node(&mut self, pn: &PlannedNode) -> anyhow::Result<Option<NodeEnd>> {
        let id = pn.id;
        if !pn.steps.iter().any(|s| s.kind == PlanStepKind::Soak) {
            self.emit(&Event::SoakFinished {
                node: id,
                ok: true,
                duration_s: 0.0,
                reason: None,
                clients: None,
            });
            return Ok(None);
        }
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
            Err(WaitEnd::Interrupted) => return self.interrupted(id, false).map(Some),
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
                    .await
                    .map(Some);
            }
        }
        self.node_run(id).done.push(PlanStepKind::Soak);
        Ok(None)
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
}
