//! Resuming a node whose stop an earlier run began: is it still serving (a stop that
//! outlived wkctl may still be under way), back on the target by someone else's hand
//! (its owed steps skipped, proven for a `-dev` target), or on a version this run must
//! not move it from (failed, untouched)? Observed before any step (DESIGN §6).

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use super::poll::{self, Polled};
use super::{NodeEnd, Runner};
use crate::events::Event;
use crate::plan::{PlanKind, PlanStepKind, PlannedNode};
use crate::probe::Scope;
use crate::state::{NodeRun, NodeStatus};

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
    /// What an earlier run that began the node's stop left, observed before any step:
    /// - down: the steps go on from where that run was (`already_done` observes each);
    /// - back on the target with a new process this run can prove (someone finished its
    ///   steps by hand): `Continue(true)`, the owed stop, install and start are skipped
    ///   and the node goes to its gate ([`Runner::back_on_target`]);
    /// - serving anything else (the stop failed, the old image came back, a `-dev`
    ///   build this run did not prove): planned again from the start, the pre-stop check
    ///   first, never stopped again without it;
    /// - on a version the run must not move it away from (a restart's node on another
    ///   version, an upgrade's above its target): the node fails, untouched.
    pub(super) async fn after_earlier_stop(
        &mut self,
        pn: &PlannedNode,
    ) -> anyhow::Result<ControlFlow<NodeEnd, bool>> {
        let id = pn.id;
        if !self.state.node(id).is_some_and(NodeRun::stop_began) {
            return Ok(ControlFlow::Continue(false));
        }
        let serving = match self.still_serving(pn).await {
            Some(version) => version,
            None => match self.back_on_target(pn).await? {
                Back::Skipped => return Ok(ControlFlow::Continue(true)),
                Back::No => return Ok(ControlFlow::Continue(false)),
                Back::Unproven(what) => what,
            },
        };
        if let Some(reason) = self.moved_away(id, &serving) {
            let observed = Some(format!("node {id} answers with {serving}"));
            return self
                .fail(
                    pn,
                    PlanStepKind::CheckSettled,
                    &reason,
                    None,
                    observed,
                    false,
                )
                .await
                .map(ControlFlow::Break);
        }
        self.emit(&Event::Waiting {
            node: Some(id),
            what: format!(
                "node {id} still runs a process that is not the new one on the target ({serving}): planning it again from the start (pre-stop check first)"
            ),
        });
        self.node_run(id).restart_from_scratch();
        self.save()?;
        Ok(ControlFlow::Continue(false))
    }

    /// Why a node found serving `version` after an earlier run's stop must be left as it
    /// is: a restart never changes a version (someone brought the node back on another
    /// one), and a resumed upgrade never takes a node below its target (someone moved it
    /// ahead; its plan was an upgrade from an older version). `None`: planning it again
    /// is the run's job.
    fn moved_away(&self, id: u64, version: &str) -> Option<String> {
        let now = crate::version::WkVersion::parse(version).ok()?;
        let planned = self.node_version(id);
        let refuse = match self.plan.kind {
            PlanKind::Restart => !now.same_build(&planned),
            PlanKind::Upgrade => now > planned && !now.same_build(&planned),
        };
        let why = match self.plan.kind {
            PlanKind::Restart => format!(
                "a restart never changes a version, and node {id} ran {planned} before the earlier run's stop"
            ),
            PlanKind::Upgrade => format!(
                "it is above the target {planned}, and a resumed upgrade never downgrades a node"
            ),
        };
        refuse.then(|| {
            format!(
                "node {id} now runs {now}, brought back by someone else after the earlier run's stop: {why}; wkctl leaves it as it is (check the node, then `{} --discard` and plan again)",
                match self.plan.kind {
                    PlanKind::Restart => "wkctl restart",
                    PlanKind::Upgrade => "wkctl upgrade",
                }
            )
        })
    }

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
}
