//! Failure handling of a run: the failed node's logs, the `node_failed` event, the
//! optional rollback (`--rollback-on-failure`) gated back to the old version, and a clean
//! stop on Ctrl-C. State is saved at each point.

use std::time::{Duration, Instant};

use super::{NodeEnd, Runner, WaitEnd};
use crate::events::Event;
use crate::gate::{GateTarget, NodeBaseline, Signal, SignalIn};
use crate::plan::{PlanStepKind, PlannedNode};
use crate::probe::Scope;
use crate::state::{NodeStatus, now_ms};
use crate::transport::{self, Transport};
use crate::version::WkVersion;

/// Lines of a failed node's logs shown to the operator.
const LOG_TAIL_LINES: usize = 40;
/// The `logs` step gets this long.
const LOGS_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs a node's rendered `logs` command on its host; the tail of its output (also used
/// by `wkctl recover`).
pub(crate) async fn logs_tail(
    manifest: &crate::manifest::Manifest,
    id: u64,
    cmd: &str,
) -> Option<String> {
    let node = manifest.node(id)?;
    let out = transport::run(&Transport::for_node(manifest, node), cmd, LOGS_TIMEOUT)
        .await
        .ok()?;
    Some(out.tail(LOG_TAIL_LINES))
}

impl Runner<'_> {
    pub(super) fn interrupted(
        &mut self,
        id: u64,
        node_may_be_down: bool,
    ) -> anyhow::Result<NodeEnd> {
        let step = self
            .state
            .node(id)
            .and_then(|n| n.step)
            .map_or_else(|| "start".to_string(), |s| s.to_string());
        let message = if node_may_be_down {
            format!(
                "node {id} may be DOWN (interrupted during `{step}`); state saved: continue with {}",
                self.resume_cmd()
            )
        } else {
            format!(
                "stopped before touching more nodes (node {id}, after `{step}`); state saved: continue with {}",
                self.resume_cmd()
            )
        };
        self.emit(&Event::Interrupted {
            node: Some(id),
            message,
        });
        self.save()?;
        Ok(NodeEnd::Interrupted)
    }

    /// Stops the run at `pn`: its logs, the failure event, optional rollback, saved state.
    pub(super) async fn fail(
        &mut self,
        pn: &PlannedNode,
        step: PlanStepKind,
        reason: &str,
        signal: Option<Signal>,
        observed: Option<String>,
        touched: bool,
    ) -> anyhow::Result<NodeEnd> {
        let id = pn.id;
        let logs_tail = self.node_logs(pn).await;
        let known = logs_tail
            .as_deref()
            .map(|t| crate::events::KnownSignature::scan(id, t))
            .unwrap_or_default();
        self.emit(&Event::NodeFailed {
            node: id,
            step,
            reason: reason.to_string(),
            signal: signal.map(|signal| SignalIn {
                signal,
                kind: self.plan.kind,
            }),
            observed,
            logs_tail: logs_tail.clone(),
            known,
        });
        {
            let n = self.node_run(id);
            n.status = NodeStatus::Failed;
            n.error = Some(reason.to_string());
            n.finished_at_ms = Some(now_ms());
        }
        self.save()?;
        if self.opts.rollback_on_failure && touched {
            self.rollback(pn).await?;
        }
        // Never hidden: a node left out of client traffic says so.
        if self
            .state
            .node(id)
            .is_some_and(|n| n.finished(PlanStepKind::Drain) && !n.finished(PlanStepKind::Undrain))
        {
            self.emit(&Event::Waiting {
                node: Some(id),
                what: format!(
                    "node {id} stays drained (out of client traffic): {} runs its `undrain` once its gate holds",
                    self.resume_cmd()
                ),
            });
        }
        Ok(NodeEnd::Failed)
    }

    /// `wkctl rollback --node N`: the rollback of a node an earlier run failed on.
    /// Success when the node is back on its old version (and marked rolled back).
    pub async fn rollback_after_the_fact(
        mut self,
        pn: &PlannedNode,
    ) -> anyhow::Result<crate::error::Outcome> {
        // The team lock, as for `upgrade`: another operator's run excludes this one
        // (found by the outsider attack: the rollback ignored it).
        if self.opts.break_lock {
            self.run_level(&[PlanStepKind::Unlock]).await;
        }
        if let Some(outcome) = self.run_level(&[PlanStepKind::Lock]).await {
            self.save()?;
            return Ok(outcome);
        }
        self.rollback(pn).await?;
        let ok = self
            .state
            .node(pn.id)
            .is_some_and(|n| n.status == NodeStatus::RolledBack);
        self.save()?;
        self.run_level(&[PlanStepKind::Unlock]).await;
        Ok(if ok {
            crate::error::Outcome::Success
        } else {
            crate::error::Outcome::No
        })
    }

    /// The plan's `logs` command for the node, its output's tail.
    async fn node_logs(&self, pn: &PlannedNode) -> Option<String> {
        let cmd = pn.step(PlanStepKind::Logs)?.command.as_deref()?;
        logs_tail(&self.ctx.manifest, pn.id, cmd).await
    }

    fn rollback_finished(&self, id: u64, ok: bool, reason: Option<String>) {
        self.emit(&Event::RollbackFinished {
            node: id,
            ok,
            reason,
        });
    }

    /// `--rollback-on-failure`: the plan's `rollback` command, then the gate on the old
    /// version. On success the node is back on `from` and a resumed run plans it again
    /// from the start (pre-stop check included).
    async fn rollback(&mut self, pn: &PlannedNode) -> anyhow::Result<()> {
        let id = pn.id;
        let from = self.state.node(id).and_then(|n| n.from.clone());
        let (Some(node), Some(step), Some(from_s)) = (
            self.ctx.manifest.node(id),
            pn.step(PlanStepKind::Rollback).cloned(),
            from,
        ) else {
            self.rollback_finished(
                id,
                false,
                Some("no rollback step or old version unknown".into()),
            );
            return Ok(());
        };
        let Ok(old) = WkVersion::parse(&from_s) else {
            self.rollback_finished(
                id,
                false,
                Some(format!("old version `{from_s}` unparsable")),
            );
            return Ok(());
        };
        // A rollback restarts the node: only when no other node is down, or it would
        // take a second node down (the failure may be another node's).
        // A rollback is a stop: every other node must be fully back (A, C, D, E), not
        // merely answering, and none seen restarting.
        let before = self.observe(Scope::Settle).await;
        let blockers = crate::gate::rollback_blockers(&self.tracker, &before, id);
        if !blockers.is_empty() {
            self.rollback_finished(
                id,
                false,
                Some(format!(
                    "skipped: restarting node {id} now could take a second node down: {}",
                    blockers.join("; ")
                )),
            );
            return Ok(());
        }
        let Some(cmd) = step.command.clone() else {
            return Ok(());
        };
        self.step_started(id, PlanStepKind::Rollback, Some(&cmd))?;
        let out = transport::run(
            &Transport::for_node(&self.ctx.manifest, node),
            &cmd,
            Duration::from_secs_f64(step.timeout_s),
        )
        .await;
        if !out.as_ref().is_ok_and(transport::StepOutput::success) {
            let why = match out {
                Ok(o) => format!("rollback step failed: {}", o.tail(5)),
                Err(e) => format!("rollback step could not run: {e}"),
            };
            self.rollback_finished(id, false, Some(why));
            return Ok(());
        }
        // Proven by a new process on the old version (the uptime reset).
        let baseline = NodeBaseline {
            version: None,
            commit: None,
            ..NodeBaseline::from_view(&before, id)
        };
        match self
            .wait_ready(
                &baseline,
                &GateTarget::exact(old),
                Instant::now(),
                Some(Instant::now()),
            )
            .await
        {
            Ok(_) => {
                self.rollback_finished(id, true, None);
                // Back in service on the old version: a node drained for the upgrade
                // goes back into client traffic (found by the outsider attack).
                let drained = self.state.node(id).is_some_and(|n| {
                    n.finished(PlanStepKind::Drain) && !n.finished(PlanStepKind::Undrain)
                });
                if drained {
                    let transport = Transport::for_node(&self.ctx.manifest, node);
                    self.undrain_now(pn, &transport).await?;
                }
                let n = self.node_run(id);
                n.status = NodeStatus::RolledBack;
                n.restart_from_scratch();
            }
            Err(WaitEnd::Failed(f)) => self.rollback_finished(id, false, Some(f.reason())),
            Err(WaitEnd::Interrupted) => {
                self.rollback_finished(id, false, Some("interrupted".into()));
            }
        }
        self.save()
    }
}
