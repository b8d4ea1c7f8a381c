//! The executor: the only module with side effects. It runs exactly the [`Plan`], one
//! node at a time, saving state after every step (DESIGN §2, §5, §6).
//!
//! Per node: cluster settled (F) → baseline → backup → stop → install → start → gate
//! (A–G held for `stable_for`) → soak → next. Any failure stops the run: the node's logs
//! are shown, state is saved, and nothing after the failed node is touched.

mod failure;
mod interrupt;
mod summary;
mod watch;

pub use interrupt::Interrupt;
pub use watch::{WaitFailure, soak_problem};

use std::time::{Duration, Instant};

use crate::commands::Context;
use crate::error::Outcome;
use crate::events::{Event, Reporter};
use crate::gate::NodeBaseline;
use crate::plan::{Plan, PlanStepKind, PlannedNode};
use crate::probe::Client;
use crate::releases::NodeAction;
use crate::state::{NodeRun, NodeStatus, RunState, RunStatus, StateDir, now_ms};
use crate::transport::{self, Transport};
use crate::version::WkVersion;

/// Choices the operator made on the command line.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub yes: bool,
    pub rollback_on_failure: bool,
    pub resume: bool,
    /// A terminal is attached (canary pause may ask).
    pub interactive: bool,
}

pub struct Runner<'a> {
    pub ctx: &'a Context,
    pub plan: &'a Plan,
    pub target: WkVersion,
    pub client: Client,
    pub reporter: &'a Reporter,
    pub dir: StateDir,
    pub state: RunState,
    pub interrupt: Interrupt,
    pub opts: Options,
    started: Instant,
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
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        ctx: &'a Context,
        plan: &'a Plan,
        target: WkVersion,
        client: Client,
        reporter: &'a Reporter,
        dir: StateDir,
        state: RunState,
        interrupt: Interrupt,
        opts: Options,
    ) -> Self {
        Runner {
            ctx,
            plan,
            target,
            client,
            reporter,
            dir,
            state,
            interrupt,
            opts,
            started: Instant::now(),
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

    /// Runs every node of the plan in order.
    pub async fn run(mut self) -> anyhow::Result<Outcome> {
        self.state.status = RunStatus::Running;
        self.save()?;
        let total = self.plan.nodes.len();
        let mut outcome = Outcome::Success;
        let mut upgraded = 0usize;
        for (i, pn) in self.plan.nodes.iter().enumerate() {
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
            let more = self.plan.nodes[i + 1..]
                .iter()
                .any(|n| n.action == NodeAction::Upgrade);
            if upgraded == 1
                && more
                && self.ctx.manifest.policy.canary
                && !self.opts.yes
                && !self.canary_confirmed(pn.id).await
            {
                self.emit(&Event::Interrupted {
                    node: None,
                    message: format!(
                        "canary: stopped after node {}; continue with `wkctl upgrade --resume`",
                        pn.id
                    ),
                });
                outcome = Outcome::Interrupted;
                break;
            }
        }
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
            yes = crate::commands::confirm(&prompt) => yes,
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
        let prior = self.state.node(id).map(|n| n.status);
        if pn.action == NodeAction::Skip {
            self.emit(&Event::NodeSkipped {
                node: id,
                reason: format!("already on {}", self.plan.to),
            });
            let n = self.node_run(id);
            n.status = NodeStatus::Skipped;
            self.save()?;
            return Ok(NodeEnd::Skipped);
        }
        if prior == Some(NodeStatus::Ready) {
            // Verified in an earlier run: re-verify without restarting. Only the node's
            // own signals: the interrupted node may still be down, so the cluster cannot
            // be settled yet (its own gate comes next and checks F).
            self.emit(&Event::NodeSkipped {
                node: id,
                reason: "upgraded by the earlier run; re-verified without restart".into(),
            });
            return match self.verify_upgraded(id).await {
                Ok(()) => Ok(NodeEnd::Skipped),
                Err(f) => {
                    self.fail(pn, "verify", &f.reason(), f.signal(), f.observed(), false)
                        .await
                }
            };
        }
        let node_started = Instant::now();
        self.emit(&Event::NodeStarted {
            node: id,
            from: pn.from.clone(),
            to: self.plan.to.clone(),
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
            n.started_at_ms.get_or_insert_with(now_ms);
        }
        self.save()?;

        // Signal F, then the baseline, unless the node's stop already started (a resumed
        // node that may be down: F cannot hold, and the baseline must stay the old process).
        if !self.stop_started(id)
            && let Some(end) = self.settle_and_baseline(pn, true).await?
        {
            return Ok(end);
        }
        // The gate's `node_timeout` runs from the stop (DESIGN §3), or from the gate itself
        // when the stop happened in an earlier run.
        let mut stopped_at: Option<Instant> = None;

        let transport = Transport::for_node(
            &self.ctx.manifest,
            self.ctx
                .manifest
                .node(id)
                .ok_or_else(|| anyhow::anyhow!("node {id} vanished from the manifest"))?,
        );
        for step in pn.steps.iter().filter(|s| s.kind.playbook_step().is_some()) {
            if self
                .state
                .node(id)
                .is_some_and(|n| n.finished(step.kind.as_str()))
            {
                continue;
            }
            // First Ctrl-C before the node goes down: stop here, nothing touched.
            let down = self.stop_started(id);
            if self.interrupt.requested() && !down {
                return self.interrupted(id, false);
            }
            // F again right before the stop: a long backup must not hide a peer that went
            // down meanwhile (never two nodes down). The baseline is retaken with it.
            if step.kind == PlanStepKind::Stop {
                if !down && let Some(end) = self.settle_and_baseline(pn, false).await? {
                    return Ok(end);
                }
                stopped_at = Some(Instant::now());
            }
            let Some(command) = step.command.clone() else {
                continue;
            };
            self.step_started(id, step.kind, Some(command.clone()))?;
            let timeout = Duration::from_secs_f64(step.timeout_s);
            let out = tokio::select! {
                r = transport::run(&transport, &command, timeout) => r,
                () = self.interrupt.reached(2) => {
                    return self.interrupted(id, true);
                }
            };
            let out = match out {
                Ok(o) => o,
                Err(e) => {
                    let reason = format!("{} could not run: {e}", step.kind.as_str());
                    return self
                        .fail(pn, step.kind.as_str(), &reason, None, None, true)
                        .await;
                }
            };
            self.emit(&Event::StepFinished {
                node: id,
                step: step.kind.as_str().into(),
                ok: out.success(),
                exit_code: out.exit_code,
                timed_out: out.timed_out,
                duration_s: out.duration.as_secs_f64(),
            });
            if !out.success() {
                let how = if out.timed_out {
                    format!("timed out after {}s", step.timeout_s)
                } else {
                    format!(
                        "exited with {}",
                        out.exit_code
                            .map_or_else(|| "a signal".into(), |c| c.to_string())
                    )
                };
                let reason = format!(
                    "step `{}` {how}; last output:\n{}",
                    step.kind.as_str(),
                    indent(&out.tail(10))
                );
                let touched = step.kind != PlanStepKind::Backup;
                return self
                    .fail(pn, step.kind.as_str(), &reason, None, None, touched)
                    .await;
            }
            self.node_run(id).done.push(step.kind.as_str().into());
            self.save()?;
        }

        // The gate.
        if !self
            .state
            .node(id)
            .is_some_and(|n| n.finished("wait_ready"))
        {
            self.step_started(id, PlanStepKind::WaitReady, None)?;
            let baseline = self.baseline(id);
            let deadline_from = stopped_at.unwrap_or_else(Instant::now);
            match self
                .wait_ready(&baseline, &self.target.clone(), deadline_from)
                .await
            {
                Ok(_) => {
                    self.emit(&Event::NodeReady {
                        node: id,
                        version: self.plan.to.clone(),
                        duration_s: node_started.elapsed().as_secs_f64(),
                    });
                    self.node_run(id).done.push("wait_ready".into());
                    self.save()?;
                }
                Err(WaitFailure::Interrupted) => return self.interrupted(id, true),
                Err(f) => {
                    return self
                        .fail(
                            pn,
                            "wait_ready",
                            &f.reason(),
                            f.signal(),
                            f.observed(),
                            true,
                        )
                        .await;
                }
            }
        }
        if self.interrupt.requested() {
            self.finish_node(id, NodeStatus::Ready)?;
            return self.interrupted(id, false);
        }

        // The soak.
        if pn.steps.iter().any(|s| s.kind == PlanStepKind::Soak) {
            self.step_started(id, PlanStepKind::Soak, None)?;
            match self.soak(id).await {
                Ok(d) => self.emit(&Event::SoakFinished {
                    node: id,
                    ok: true,
                    duration_s: d.as_secs_f64(),
                    reason: None,
                }),
                Err(WaitFailure::Interrupted) => return self.interrupted(id, false),
                Err(f) => {
                    self.emit(&Event::SoakFinished {
                        node: id,
                        ok: false,
                        duration_s: 0.0,
                        reason: Some(f.reason()),
                    });
                    return self
                        .fail(pn, "soak", &f.reason(), f.signal(), f.observed(), false)
                        .await;
                }
            }
        } else {
            self.emit(&Event::SoakFinished {
                node: id,
                ok: true,
                duration_s: 0.0,
                reason: None,
            });
        }
        self.finish_node(id, NodeStatus::Ready)?;
        Ok(NodeEnd::Done)
    }

    /// The node's stop step has started (it may be down).
    fn stop_started(&self, id: u64) -> bool {
        self.state
            .node(id)
            .is_some_and(|n| n.finished("stop") || n.step.as_deref() == Some("stop"))
    }

    fn baseline(&self, id: u64) -> NodeBaseline {
        let b = self.state.node(id).and_then(|n| n.baseline.clone());
        NodeBaseline {
            id,
            version: b
                .as_ref()
                .and_then(|b| b.version.as_deref())
                .and_then(|v| WkVersion::parse(v).ok()),
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
        command: Option<String>,
    ) -> anyhow::Result<()> {
        self.emit(&Event::StepStarted {
            node: id,
            step: kind.as_str().into(),
            command,
        });
        self.node_run(id).step = Some(kind.as_str().into());
        self.save()
    }

    fn finish_node(&mut self, id: u64, status: NodeStatus) -> anyhow::Result<()> {
        let n = self.node_run(id);
        n.status = status;
        n.finished_at_ms = Some(now_ms());
        self.save()
    }
}

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
