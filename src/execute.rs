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
mod node;
pub(crate) mod poll;
pub mod recover;
mod restart;
mod resume;
mod smoke;
mod steps;
mod summary;
mod watch;

pub use interrupt::Interrupt;
pub use smoke::read_via as smoke_read_via;
pub use watch::WaitEnd;

use std::time::{Duration, Instant};

use crate::error::Outcome;
use crate::gate::{GateTarget, NodeBaseline, Rules, Tracker};
use crate::inputs::Context;
use crate::plan::{Plan, PlanStepKind, PlannedNode};
use crate::probe::{Client, ClusterView};
use crate::state::{NodeRun, NodeStatus, RunState, RunStatus, StateDir, now_ms};
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

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
