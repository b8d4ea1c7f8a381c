//! The steps of one node: running a playbook step, recognising one that took effect in
//! an earlier run, putting a drained node back into traffic, and watching a node whose
//! interrupted stop may still be under way.

use std::time::{Duration, Instant};

use super::poll::{self, Polled};
use super::{NodeEnd, Runner, indent};
use crate::events::Event;
use crate::plan::{PlanStepKind, PlannedNode, PlannedStep};
use crate::probe::Scope;
use crate::state::NodeStatus;
use crate::transport::{self, Transport};

/// What [`Runner::back_on_target`] found.
pub(super) enum Back {
    /// Not back on the target (down, or never stopped): the steps go on.
    No,
    /// Back on the target with a new process: its owed steps are skipped.
    Skipped,
    /// Serving a new process this run cannot prove is the target (what it runs).
    Unproven(String),
}

impl Runner<'_> {
    /// The version the node serves with a process that is not the new one on the target
    /// (compared with the baseline recorded before its stop), after an earlier run began
    /// its stop; `None` when it is down or runs the new one. A `stop` that run was killed
    /// in (`kill -9`) may still be under way: its command outlived wkctl, and a node
    /// answers during its graceful shutdown. So the node is watched, up to the stop step's
    /// timeout, for the stop to take effect before it counts as serving (and is planned
    /// again from the start, pre-stop check first).
    pub(super) async fn still_serving(&mut self, pn: &PlannedNode) -> Option<String> {
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
        let this = &*self;
        let ended = poll::until(
            Instant::now() + grace,
            self.tracker.rules().poll,
            None,
            || this.runs_old_process(id),
            // Down or on the new process: the stop took effect.
            |old| old.is_none().then_some(()),
        )
        .await;
        match ended {
            Polled::Done(()) => None,
            Polled::TimedOut | Polled::Interrupted => serving,
        }
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

    /// After an earlier run began the node's stop and ended before its `start` returned,
    /// the node may have been brought back on the target by someone else (the operator
    /// ran the stop's remaining steps by hand, or the orphaned steps of a killed run
    /// finished). Observed once: when it answers with a new process on the target, the
    /// stop, install and start it still owes took effect; they are skipped (each shown)
    /// and the node goes straight to its gate, which waits for it (and for the cluster)
    /// to be ready. Stopping it again would take a serving node down without the
    /// pre-stop check (its stop began, so that check is behind it), possibly while its
    /// leaders migrate back (DESIGN §5, §6 "already on the target: skip").
    ///
    /// A `-dev` target reports the release it builds on, so "a new process on the
    /// target" is only a commit other than the old process's: any other `-dev` image of
    /// that release passes it. For a process wkctl did not start, the commit must be one
    /// this run proved on the target (a node gated earlier); else it is
    /// [`Back::Unproven`].
    pub(super) async fn back_on_target(&mut self, pn: &PlannedNode) -> anyhow::Result<Back> {
        let id = pn.id;
        let owed = |n: &crate::state::NodeRun, k: PlanStepKind| {
            matches!(
                k,
                PlanStepKind::Stop | PlanStepKind::Install | PlanStepKind::Start
            ) && !n.finished(k)
        };
        let resumed_after_stop = self
            .state
            .node(id)
            .is_some_and(|n| n.stop_began() && owed(n, PlanStepKind::Start));
        if !resumed_after_stop {
            return Ok(Back::No);
        }
        let view = self.observe(Scope::Focus(id)).await;
        let Some(n) = view.node(id) else {
            return Ok(Back::No);
        };
        let target = self.gate_target(id);
        if !crate::gate::runs_new_process(&self.baseline(id), n, view.observed_at, &target) {
            return Ok(Back::No);
        }
        let shown = n.version_raw.as_deref().unwrap_or("the target");
        if target.is_dev() {
            let proven = n.commit.as_deref().is_some_and(|c| {
                self.state
                    .nodes
                    .iter()
                    .any(|r| r.id != id && r.proven_commit.as_deref() == Some(c))
            });
            if !proven {
                return Ok(Back::Unproven(format!(
                    "{shown}, commit {}: a -dev build this run has not proven on the target",
                    n.commit.as_deref().unwrap_or("unknown")
                )));
            }
        }
        let reason = format!(
            "node {id} already runs a new process on {shown} (brought back after the earlier run's stop)"
        );
        let skipped: Vec<PlanStepKind> = pn
            .steps
            .iter()
            .filter(|s| s.command.is_some())
            .map(|s| s.kind)
            .filter(|&k| self.state.node(id).is_some_and(|n| owed(n, k)))
            .collect();
        for step in skipped {
            self.emit(&Event::StepSkipped {
                node: id,
                step,
                reason: reason.clone(),
            });
            self.node_run(id).done.push(step);
        }
        self.save()?;
        Ok(Back::Skipped)
    }

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
