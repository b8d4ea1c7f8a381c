//! The waiting parts of a run. Each is the same loop: observe → feed the
//! [`Tracker`] → emit what changed → sleep. Every rule that decides wait, go on or stop
//! lives in [`crate::gate::tracker`]; nothing here judges a view.

use std::time::{Instant, SystemTime};

use crate::events::Event;
use crate::gate::{Failure, GateTarget, NodeBaseline, Phase, Verdict};
use crate::probe::{self, ClusterView, Scope};

use super::Runner;

/// Why a wait ended without success.
#[derive(Debug, Clone)]
pub enum WaitEnd {
    Failed(Failure),
    /// The operator pressed Ctrl-C a second time (or once, during a soak).
    Interrupted,
}

impl Runner<'_> {
    /// One poll, asking what `scope` needs.
    pub(super) async fn observe(&self, scope: Scope) -> ClusterView {
        probe::observe_turns(&self.client, &self.ctx.manifest, scope, &self.turns).await
    }

    /// Runs the tracker's current phase to its end. `node` is the node the wait is about
    /// (for events); `soak` waits end early on the first Ctrl-C. `carried`: the previous
    /// phase's last observation, judged first instead of an immediate poll.
    async fn run_phase(
        &mut self,
        node: u64,
        scope: Scope,
        mut carried: Option<ClusterView>,
    ) -> Result<ClusterView, WaitEnd> {
        let soak = matches!(self.tracker.phase(), Phase::Soak { .. });
        let mut announced = None::<String>;
        loop {
            let (view, verdict) = if let Some(view) = carried.take() {
                let verdict = self.tracker.carry(&view, Instant::now());
                (view, verdict)
            } else {
                let view = self.observe(scope).await;
                let verdict = self.tracker.feed(&view, Instant::now());
                (view, verdict)
            };
            self.last_view = Some(view.clone());
            for (sig, st) in self.tracker.changes() {
                let (state, reason) = st.split();
                self.reporter.emit(&Event::GateSignal {
                    node,
                    signal: *sig,
                    name: sig.name_in(self.plan.kind),
                    state,
                    reason,
                });
            }
            match verdict {
                Verdict::Ready => return Ok(view),
                Verdict::Fail(f) => return Err(WaitEnd::Failed(f)),
                Verdict::Wait(w) => {
                    // Pre-stop waits are announced (once per distinct reason).
                    if matches!(self.tracker.phase(), Phase::PreStop { .. })
                        && announced.as_deref() != Some(w.reason.as_str())
                    {
                        self.emit(&Event::Waiting {
                            node: Some(node),
                            what: format!(
                                "the cluster to be safe before stopping the node: {}",
                                w.reason
                            ),
                        });
                        announced = Some(w.reason);
                    }
                }
            }
            let pause = self.tracker.next_poll(Instant::now());
            let wake_on = if soak { 1 } else { 2 };
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = self.interrupt.reached(wake_on) => return Err(WaitEnd::Interrupted),
            }
        }
    }

    /// Pre-stop: every node fully back (A, C, D, E, no restart since last seen) and F.
    /// Returns the observation that allowed the stop (the baseline is taken from it).
    pub(super) async fn wait_safe_to_stop(&mut self, node: u64) -> Result<ClusterView, WaitEnd> {
        self.tracker.begin(Phase::PreStop { node }, Instant::now());
        self.run_phase(node, Scope::Settle, None).await
    }

    /// The readiness gate: A–G met continuously for `stable_for`. The deadline runs from
    /// `stopped_at` (`node_timeout`), and is never shorter than `stable_for` plus two
    /// polls after `start_returned`.
    pub(super) async fn wait_ready(
        &mut self,
        baseline: &NodeBaseline,
        target: &GateTarget,
        stopped_at: Instant,
        start_returned: Option<Instant>,
    ) -> Result<ClusterView, WaitEnd> {
        self.tracker.begin(
            Phase::Gate {
                baseline: baseline.clone(),
                target: target.clone(),
            },
            stopped_at,
        );
        if let Some(at) = start_returned {
            self.tracker.start_returned(at);
        }
        self.run_phase(baseline.id, Scope::Focus(baseline.id), None)
            .await
    }

    /// Watches the whole cluster for `policy.soak`. It opens on the gate's last
    /// observation when that is less than one poll old (no second poll at the same
    /// moment; after a slow `undrain` hook, a fresh poll).
    pub(super) async fn soak(&mut self, node: u64) -> Result<std::time::Duration, WaitEnd> {
        let began = Instant::now();
        self.tracker.begin(Phase::Soak { node }, began);
        let poll = self.tracker.rules().poll;
        let carried = self.last_view.clone().filter(|v| {
            v.node(node).is_some()
                && SystemTime::now()
                    .duration_since(v.observed_at)
                    .is_ok_and(|age| age < poll)
        });
        self.run_phase(node, Scope::Focus(node), carried).await?;
        Ok(began.elapsed())
    }
}
