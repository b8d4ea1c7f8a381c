//! Failure handling of a run: the failed node's logs, the `node_failed` event, the
//! optional rollback (`--rollback-on-failure`) gated back to the old version, and a clean
//! stop on Ctrl-C. State is saved at each point.

use std::time::{Duration, Instant};

use super::{NodeEnd, Runner};
use crate::events::Event;
use crate::gate::NodeBaseline;
use crate::plan::{PlanStepKind, PlannedNode};
use crate::playbook::{self, StepKind};
use crate::state::{NodeStatus, now_ms};
use crate::transport::{self, Transport};
use crate::version::WkVersion;

/// Lines of a failed node's logs shown to the operator.
const LOG_TAIL_LINES: usize = 40;

impl Runner<'_> {
    pub(super) fn interrupted(
        &mut self,
        id: u64,
        node_may_be_down: bool,
    ) -> anyhow::Result<NodeEnd> {
        let step = self
            .state
            .node(id)
            .and_then(|n| n.step.clone())
            .unwrap_or_default();
        let message = if node_may_be_down {
            format!(
                "node {id} may be DOWN (interrupted during `{step}`); state saved: continue with `wkctl upgrade --resume`"
            )
        } else {
            format!(
                "stopped before touching more nodes (node {id}, after `{step}`); state saved: continue with `wkctl upgrade --resume`"
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
        step: &str,
        reason: &str,
        signal: Option<String>,
        observed: Option<String>,
        touched: bool,
    ) -> anyhow::Result<NodeEnd> {
        let id = pn.id;
        let logs_tail = self.node_logs(id).await;
        self.emit(&Event::NodeFailed {
            node: id,
            step: step.to_string(),
            reason: reason.to_string(),
            signal,
            observed,
            logs_tail: logs_tail.clone(),
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
        Ok(NodeEnd::Failed)
    }

    async fn node_logs(&self, id: u64) -> Option<String> {
        let node = self.ctx.manifest.node(id)?;
        let tpl = self.ctx.playbook.step(StepKind::Logs)?;
        let from = self.state.node(id).and_then(|n| n.from.clone());
        let vars = playbook::node_vars(
            &self.ctx.playbook,
            &self.ctx.manifest.vars,
            node,
            from.as_deref(),
            &self.plan.to,
        );
        let cmd = playbook::render(tpl, &vars).ok()?;
        let out = transport::run(
            &Transport::for_node(&self.ctx.manifest, node),
            &cmd,
            Duration::from_secs(30),
        )
        .await
        .ok()?;
        Some(out.tail(LOG_TAIL_LINES))
    }

    /// `--rollback-on-failure`: the playbook's `rollback`, then the gate on the old version.
    async fn rollback(&mut self, pn: &PlannedNode) -> anyhow::Result<()> {
        let id = pn.id;
        let from = self.state.node(id).and_then(|n| n.from.clone());
        let (Some(node), Some(tpl), Some(from_s)) = (
            self.ctx.manifest.node(id),
            self.ctx.playbook.step(StepKind::Rollback),
            from,
        ) else {
            self.emit(&Event::RollbackFinished {
                node: id,
                ok: false,
                reason: Some("no rollback step or old version unknown".into()),
            });
            return Ok(());
        };
        let Ok(old) = WkVersion::parse(&from_s) else {
            self.emit(&Event::RollbackFinished {
                node: id,
                ok: false,
                reason: Some(format!("old version `{from_s}` unparsable")),
            });
            return Ok(());
        };
        // A rollback restarts the node: only when every other node is up and online,
        // or it would take a second node down (the failure may be another node's).
        let now = self.observe(id).await;
        if let Some(other) = now.nodes.iter().find(|n| {
            n.id != id
                && (!n.reachable || n.info_online == Some(false) || n.simple_online == Some(false))
        }) {
            self.emit(&Event::RollbackFinished {
                node: id,
                ok: false,
                reason: Some(format!(
                    "skipped: node {} is down or offline, and restarting node {id} now would take a second node down",
                    other.id
                )),
            });
            return Ok(());
        }
        let vars = playbook::node_vars(
            &self.ctx.playbook,
            &self.ctx.manifest.vars,
            node,
            Some(&from_s),
            &self.plan.to,
        );
        let cmd = playbook::render(tpl, &vars).map_err(anyhow::Error::msg)?;
        self.step_started(id, PlanStepKind::Start, Some(cmd.clone()))?;
        let timeout = self
            .ctx
            .playbook
            .timeout(StepKind::Rollback)
            .unwrap_or(self.ctx.manifest.policy.step_timeout);
        let before = self.observe(id).await;
        let baseline = NodeBaseline::from_view(&before, id);
        let out = transport::run(
            &Transport::for_node(&self.ctx.manifest, node),
            &cmd,
            timeout,
        )
        .await;
        let ok_run = out.as_ref().is_ok_and(transport::StepOutput::success);
        if !ok_run {
            let why = match out {
                Ok(o) => format!("rollback step failed: {}", o.tail(5)),
                Err(e) => format!("rollback step could not run: {e}"),
            };
            self.emit(&Event::RollbackFinished {
                node: id,
                ok: false,
                reason: Some(why),
            });
            return Ok(());
        }
        let baseline = NodeBaseline {
            version: None,
            ..baseline
        };
        match self.wait_ready(&baseline, &old, Instant::now()).await {
            Ok(_) => {
                self.emit(&Event::RollbackFinished {
                    node: id,
                    ok: true,
                    reason: None,
                });
                self.node_run(id).status = NodeStatus::RolledBack;
            }
            Err(f) => self.emit(&Event::RollbackFinished {
                node: id,
                ok: false,
                reason: Some(f.reason()),
            }),
        }
        self.save()
    }
}
