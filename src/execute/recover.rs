//! The side effects of `wkctl recover` (issue #19 point 2): runs a [`RecoverPlan`] step
//! by step, saving `recover.json` (a step cursor) before and after each, observing the
//! cluster between them. A failed step stops with the node's logs and what was last seen;
//! a killed or interrupted run continues with `--resume`, which observes the node before
//! re-running an interrupted `stop` or `start` (a second `wukongim -d` is a second process).

use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::Interrupt;
use super::failure::logs_tail;
use super::poll::{self, Polled};
use crate::checks;
use crate::error::Outcome;
use crate::gate::{self, Signal};
use crate::inputs::Context;
use crate::plan::PlanStepKind;
use crate::probe::{self, Client, ClusterView, Scope};
use crate::recover::{
    RecoverPlan, RecoverState, RecoverStatus, RecoverStep, RecoverStepKind, STATE_FILE, WaitFor,
    wait_state,
};
use crate::state::{StateDir, now_ms, write_atomic};
use crate::transport::{self, Transport};
use crate::{events::Event, output::progress::Reporter};

/// A resumed `start` gets this many polls for the node to answer before it is run again.
const START_PATIENCE_POLLS: u32 = 5;
const RUN_STEP_TIMEOUT: Duration = Duration::from_mins(1);

/// How a step ended when it did not succeed.
enum End {
    Failed {
        reason: String,
        signal: Option<Signal>,
        observed: Option<String>,
    },
    Interrupted,
}

pub struct RecoverRun<'a> {
    pub ctx: &'a Context,
    pub plan: &'a RecoverPlan,
    pub client: Client,
    pub reporter: &'a Reporter,
    pub dir: StateDir,
    pub state: RecoverState,
    pub interrupt: Interrupt,
    /// `--break-lock`: the playbook's `unlock` runs before its `lock`.
    pub break_lock: bool,
}

/// `recover.json` of a state directory.
pub fn state_path(dir: &StateDir) -> std::path::PathBuf {
    dir.root.join(STATE_FILE)
}

impl RecoverRun<'_> {
    fn emit(&self, e: &Event) {
        self.reporter.emit(e);
    }

    fn save(&mut self) -> anyhow::Result<()> {
        self.state.updated_at_ms = now_ms();
        let text = serde_json::to_vec_pretty(&self.state)?;
        let path = state_path(&self.dir);
        write_atomic(&path, &text).with_context(|| format!("saving `{}`", path.display()))
    }

    async fn observe(&self) -> ClusterView {
        probe::observe_scoped(&self.client, &self.ctx.manifest, Scope::Settle).await
    }

    /// The playbook's once-per-run `lock`/`unlock` (the team lock), on the first node's
    /// host. `false` when it failed (shown as an event).
    async fn run_level(&self, kind: PlanStepKind, command: Option<&str>) -> bool {
        let (Some(cmd), Some(node)) = (
            command,
            self.plan
                .nodes
                .first()
                .and_then(|id| self.ctx.manifest.node(*id)),
        ) else {
            return true;
        };
        self.emit(&Event::step_started(node.id, kind, Some(cmd)));
        let out = transport::run(
            &Transport::for_node(&self.ctx.manifest, node),
            cmd,
            RUN_STEP_TIMEOUT,
        )
        .await;
        let ok = out.as_ref().is_ok_and(transport::StepOutput::success);
        self.emit(&Event::step_finished(node.id, kind, out.as_ref().ok()));
        ok
    }

    pub async fn run(mut self) -> anyhow::Result<Outcome> {
        let started = Instant::now();
        if self.break_lock {
            self.run_level(PlanStepKind::Unlock, self.plan.unlock.as_deref())
                .await;
        }
        if !self
            .run_level(PlanStepKind::Lock, self.plan.lock.as_deref())
            .await
        {
            self.emit(&Event::Interrupted {
                node: None,
                message: "the playbook's `lock` step failed: another operator may be working on this cluster; nothing was touched".into(),
            });
            return Ok(Outcome::No);
        }
        let outcome = self.steps(started).await;
        self.run_level(PlanStepKind::Unlock, self.plan.unlock.as_deref())
            .await;
        outcome
    }

    async fn steps(&mut self, started: Instant) -> anyhow::Result<Outcome> {
        self.state.status = RecoverStatus::InProgress;
        let total = self.plan.steps.len();
        for i in self.state.cursor..total {
            let step = self.plan.steps[i].clone();
            let interrupted_here = self.state.in_step == Some(i);
            // Saved before it is announced: a `recover_step` seen means the state knows it.
            self.state.in_step = Some(i);
            self.save()?;
            self.emit(&Event::RecoverStep {
                index: i + 1,
                total,
                step: step.kind,
                node: step.node,
                what: step.what.clone(),
            });
            let done = match step.kind {
                RecoverStepKind::Doctor => {
                    self.doctor().await?;
                    Ok(())
                }
                RecoverStepKind::Stop | RecoverStepKind::Start => {
                    self.node_step(&step, interrupted_here).await
                }
                RecoverStepKind::Settle => Ok(()),
            };
            let done = match done {
                Ok(()) => self.wait(&step).await,
                Err(e) => Err(e),
            };
            match done {
                Ok(()) => {
                    self.state.cursor = i + 1;
                    self.state.in_step = None;
                    self.save()?;
                }
                Err(End::Failed {
                    reason,
                    signal,
                    observed,
                }) => return self.fail(&step, reason, signal, observed, started).await,
                Err(End::Interrupted) => return self.interrupted(&step, started).await,
            }
        }
        self.state.status = RecoverStatus::Done;
        self.save()?;
        self.finished(true, started).await;
        Ok(Outcome::Success)
    }

    /// Step 1: doctor's collection, its report (JSON) beside the state.
    async fn doctor(&mut self) -> anyhow::Result<()> {
        let view = self.observe().await;
        let findings = checks::live_findings(&self.ctx.manifest, &view);
        let report = crate::doctor::run(self.ctx, view, findings).await;
        let path = self.dir.root.join(format!("doctor-{}.json", now_ms()));
        let text = serde_json::to_vec_pretty(&report)?;
        write_atomic(&path, &text)
            .with_context(|| format!("writing the doctor report `{}`", path.display()))?;
        self.reporter
            .printer()
            .note(&format!("doctor report saved to `{}`", path.display()));
        self.state.doctor_report = Some(path.display().to_string());
        Ok(())
    }

    /// A `stop` or `start` on the node's host. Resumed inside it: observed first, and not
    /// run again when it took effect.
    async fn node_step(&mut self, step: &RecoverStep, interrupted_here: bool) -> Result<(), End> {
        let (Some(id), Some(cmd)) = (step.node, step.command.clone()) else {
            return Ok(());
        };
        let kind = match step.kind {
            RecoverStepKind::Stop => PlanStepKind::Stop,
            _ => PlanStepKind::Start,
        };
        if interrupted_here && let Some(reason) = self.took_effect(id, kind).await? {
            self.emit(&Event::StepSkipped {
                node: id,
                step: kind,
                reason,
            });
            return Ok(());
        }
        let Some(node) = self.ctx.manifest.node(id) else {
            return Ok(());
        };
        if kind == PlanStepKind::Start {
            self.later_nodes_down(id).await?;
        }
        self.emit(&Event::step_started(id, kind, Some(&cmd)));
        let out = transport::run(
            &Transport::for_node(&self.ctx.manifest, node),
            &cmd,
            Duration::from_secs_f64(step.timeout_s),
        )
        .await;
        let out = out.map_err(|e| End::Failed {
            reason: format!("`{kind}` could not run: {e}"),
            signal: None,
            observed: None,
        })?;
        self.emit(&Event::step_finished(id, kind, Some(&out)));
        if !out.success() {
            return Err(End::Failed {
                reason: format!(
                    "step `{kind}` {}; last output:\n{}",
                    out.how_it_ended(step.timeout_s),
                    out.tail(10)
                ),
                signal: None,
                observed: None,
            });
        }
        Ok(())
    }

    /// Before `start` of `id`: every node started after it is still down. One that came
    /// back meanwhile (a resumed run, a supervisor, a colleague) would come up in a cluster
    /// of its own beside the one this start seeds (#310).
    async fn later_nodes_down(&self, id: u64) -> Result<(), End> {
        let view = self.observe().await;
        let up: Vec<u64> = self
            .plan
            .nodes
            .iter()
            .copied()
            .filter(|n| *n > id)
            .filter(|n| view.node(*n).is_some_and(|v| !gate::is_down(v)))
            .collect();
        if up.is_empty() {
            return Ok(());
        }
        let list = up
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        Err(End::Failed {
            reason: format!(
                "node(s) {list} answer though this run stopped them and starts them only after node {id}: starting {id} now could leave them in a cluster of their own; stop them, then `wkctl recover --resume`"
            ),
            signal: None,
            observed: Some(format!("node(s) {list} answer")),
        })
    }

    /// Whether an interrupted `stop`/`start` of `id` already took effect: the node is
    /// down, or it answers (a start gets a few polls to open its API first).
    /// A node that answers on another version than the plan's is not this run's start
    /// (a stale or foreign process): an error, neither skipped nor started a second time.
    async fn took_effect(&self, id: u64, kind: PlanStepKind) -> Result<Option<String>, End> {
        let poll = self.ctx.manifest.policy.poll_interval;
        let planned = self.plan.versions.get(&id);
        for _ in 0..START_PATIENCE_POLLS {
            let view =
                probe::observe_scoped(&self.client, &self.ctx.manifest, Scope::Focus(id)).await;
            let Some(n) = view.node(id) else {
                return Ok(None);
            };
            match kind {
                PlanStepKind::Stop if gate::is_down(n) => {
                    return Ok(Some(format!("node {id} is already down")));
                }
                PlanStepKind::Stop => return Ok(None),
                _ if n.reachable => {
                    let want = planned.and_then(|v| crate::version::WkVersion::parse(v).ok());
                    if let (Some(want), Some(got)) = (want, n.version.as_ref())
                        && *got != want
                    {
                        return Err(End::Failed {
                            reason: format!(
                                "node {id} answers on {got}, not on {want} this run starts it with: a process the interrupted run did not start; stop it, then `wkctl recover --resume`"
                            ),
                            signal: None,
                            observed: Some(format!("node {id} runs {got}")),
                        });
                    }
                    return Ok(Some(format!(
                        "node {id} already answers (started by the interrupted run)"
                    )));
                }
                _ => tokio::time::sleep(poll).await,
            }
        }
        Ok(None)
    }

    /// Polls until the step's wait holds, up to `policy.node_timeout`.
    async fn wait(&self, step: &RecoverStep) -> Result<(), End> {
        if step.wait == WaitFor::Nothing {
            return Ok(());
        }
        let policy = &self.ctx.manifest.policy;
        let deadline = Instant::now() + policy.node_timeout;
        let began = Instant::now();
        let mut last: Option<(Option<Signal>, String)> = None;
        let ended = poll::until(
            deadline,
            policy.poll_interval,
            Some(&self.interrupt),
            || self.observe(),
            |view| {
                let Err(now) =
                    wait_state(step.wait, &view, &self.ctx.manifest, &self.plan.versions)
                else {
                    return Some(());
                };
                if last.as_ref() != Some(&now) {
                    let what = match now.0 {
                        Some(s) => format!("waiting for {}: {}", s.label(), now.1),
                        None => format!("waiting: {}", now.1),
                    };
                    self.emit(&Event::Waiting {
                        node: step.node,
                        what,
                    });
                }
                last = Some(now);
                None
            },
        )
        .await;
        match ended {
            Polled::Done(()) => {}
            Polled::Interrupted => return Err(End::Interrupted),
            Polled::TimedOut => {
                let (signal, seen) = last.unwrap_or_default();
                return Err(End::Failed {
                    reason: format!(
                        "timed out after {}s (`policy.node_timeout`): {}",
                        policy.node_timeout.as_secs(),
                        step.what
                    ),
                    signal,
                    observed: Some(seen),
                });
            }
        }
        if step.kind == RecoverStepKind::Start
            && let Some(id) = step.node
        {
            self.emit(&Event::NodeReady {
                node: id,
                version: self.plan.versions.get(&id).cloned().unwrap_or_default(),
                duration_s: began.elapsed().as_secs_f64(),
                clients: None,
            });
        }
        Ok(())
    }

    /// Stops the run at `step`: the node's logs, the failure event, the saved state.
    async fn fail(
        &mut self,
        step: &RecoverStep,
        reason: String,
        signal: Option<Signal>,
        observed: Option<String>,
        started: Instant,
    ) -> anyhow::Result<Outcome> {
        // A step of the whole cluster shows the logs of the first node not back in it.
        let id = if let Some(id) = step.node {
            id
        } else {
            let view = self.observe().await;
            let members = view.membership.clone().unwrap_or_default();
            self.plan
                .nodes
                .iter()
                .copied()
                .find(|id| !members.contains(id))
                .or_else(|| self.plan.nodes.first().copied())
                .unwrap_or_default()
        };
        let logs = match self.plan.logs.get(&id) {
            Some(cmd) => logs_tail(&self.ctx.manifest, id, cmd).await,
            None => None,
        };
        let known = logs
            .as_deref()
            .map(|t| crate::events::KnownSignature::scan(id, t))
            .unwrap_or_default();
        self.emit(&Event::NodeFailed {
            node: id,
            step: match step.kind {
                RecoverStepKind::Stop => PlanStepKind::Stop,
                RecoverStepKind::Start => PlanStepKind::Start,
                _ => PlanStepKind::WaitReady,
            },
            reason: reason.clone(),
            // A cold start names its signals as an upgrade does.
            signal: signal.map(|signal| crate::gate::SignalIn {
                signal,
                kind: crate::plan::PlanKind::Upgrade,
            }),
            observed: observed.clone(),
            logs_tail: logs,
            known,
        });
        self.state.status = RecoverStatus::Failed;
        self.state.error = Some(reason);
        self.state.last_seen = observed;
        self.save()?;
        self.finished(false, started).await;
        Ok(Outcome::No)
    }

    async fn interrupted(
        &mut self,
        step: &RecoverStep,
        started: Instant,
    ) -> anyhow::Result<Outcome> {
        self.state.status = RecoverStatus::Interrupted;
        self.save()?;
        self.emit(&Event::Interrupted {
            node: step.node,
            message: format!(
                "stopped during: {}; some nodes may be DOWN; state saved: continue with `wkctl recover --resume`",
                step.what
            ),
        });
        self.finished(false, started).await;
        Ok(Outcome::Interrupted)
    }

    async fn finished(&self, ok: bool, started: Instant) {
        let view = self.observe().await;
        self.emit(&Event::RecoverFinished {
            ok,
            status: self.state.status,
            cluster: self.plan.cluster.clone(),
            members: view.membership.as_ref().map_or(0, Vec::len),
            nodes: self.ctx.manifest.nodes.len(),
            duration_s: started.elapsed().as_secs_f64(),
            doctor_report: self.state.doctor_report.clone(),
        });
    }
}
