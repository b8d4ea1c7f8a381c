//! The steps of one node: running a playbook step, recognising one that took effect in
//! an earlier run, and putting a drained node back into traffic. (A node whose stop an
//! earlier run began is observed first: `resume.rs`.)

use std::time::{Duration, Instant};

use super::poll::{self, Polled};
use super::{NodeEnd, Runner, indent};
use crate::events::Event;
use crate::plan::{PlanStepKind, PlannedNode, PlannedStep};
use crate::probe::Scope;
use crate::transport::{self, Transport};

impl Runner<'_> {
    /// Before re-running a step an earlier run was interrupted in, observe the node: a
    /// `stop` whose node is already down, or a `start` whose node already runs a new
    /// process on the target, took effect and is not run again (a second `wukongim -d`
    /// would start a second instance).
    pub(super) async fn already_done(
        &mut self,
        pn: &PlannedNode,
        step: &PlannedStep,
    ) -> anyhow::Result<bool> {
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
        let this = &*self;
        let took_effect = poll::until(
            patience,
            rules.poll,
            None,
            || this.observe(Scope::Focus(id)),
            |view| {
                // `Some(None)`: not observed as done, run the step again; `None`: wait on.
                let Some(n) = view.node(id) else {
                    return Some(None);
                };
                match step.kind {
                    PlanStepKind::Stop if crate::gate::is_down(n) => Some(Some(format!(
                        "node {id} is already down ({})",
                        n.error
                            .as_ref()
                            .map_or_else(|| "no answer".into(), ToString::to_string)
                    ))),
                    PlanStepKind::Start
                        if crate::gate::runs_new_process(
                            &this.baseline(id),
                            n,
                            view.observed_at,
                            &this.gate_target(id),
                        ) =>
                    {
                        Some(Some(format!(
                            "node {id} already runs a new process on {}",
                            n.version_raw.as_deref().unwrap_or("the target")
                        )))
                    }
                    // Still coming up: wait, up to `patience`.
                    PlanStepKind::Start if crate::gate::is_down(n) => None,
                    _ => Some(None),
                }
            },
        )
        .await;
        let Polled::Done(Some(reason)) = took_effect else {
            return Ok(false);
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
    pub(super) async fn run_step(
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
    pub(super) async fn undo_drain(
        &mut self,
        pn: &PlannedNode,
        transport: &Transport,
    ) -> anyhow::Result<()> {
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
}
