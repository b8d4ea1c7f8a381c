//! Upgrade events and how they are shown (DESIGN §8): JSON Lines with `--json`,
//! indicatif progress (a line per node and an overall bar) on a terminal, and one plain
//! line per event otherwise. Every event is also what the state file and tests rely on.
#![allow(clippy::print_stderr)]

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::finding::Finding;
use crate::gate::clients::Summary as ClientsSummary;
use crate::gate::{Signal, SignalIn, SignalWord, signal_serde};
use crate::output::Printer;
use crate::plan::{PlanKind, PlanStepKind};
use crate::state::{NodeStatus, RunStatus};

/// One thing that happened during a run.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        /// `upgrade` or `restart`.
        kind: PlanKind,
        cluster: String,
        to: String,
        nodes: Vec<u64>,
        resume: bool,
        plan_digest: String,
    },
    CheckFinished {
        ok: bool,
        findings: Vec<Finding>,
    },
    NodeStarted {
        node: u64,
        from: Option<String>,
        to: String,
        index: usize,
        total: usize,
    },
    NodeSkipped {
        node: u64,
        reason: String,
    },
    StepStarted {
        node: u64,
        step: PlanStepKind,
        command: Option<String>,
    },
    StepFinished {
        node: u64,
        step: PlanStepKind,
        ok: bool,
        exit_code: Option<i32>,
        timed_out: bool,
        duration_s: f64,
    },
    GateSignal {
        node: u64,
        #[serde(serialize_with = "signal_serde::letter")]
        signal: Signal,
        name: &'static str,
        state: SignalWord,
        reason: Option<String>,
    },
    NodeReady {
        node: u64,
        version: String,
        duration_s: f64,
        /// Client connections moved off and back (issue #18); `null` when unknown.
        clients: Option<ClientsSummary>,
    },
    SoakFinished {
        node: u64,
        ok: bool,
        duration_s: f64,
        reason: Option<String>,
        /// The service-level check of the soak (issue #18).
        clients: Option<ClientsSummary>,
    },
    /// Reported, not fatal: a service-level shortfall under `on_shortfall: warn`, a
    /// sharp rise of `slow_clients` / `retry_queue`, a skipped client check.
    Warning {
        node: Option<u64>,
        message: String,
    },
    /// The opt-in end-to-end smoke test (`policy.smoke`) of one node.
    SmokeFinished {
        node: u64,
        ok: bool,
        /// The node the probe message was read back through.
        read_via: Option<u64>,
        client_msg_no: String,
        reason: Option<String>,
    },
    /// An interrupted step was not run again: observing the node showed it had taken
    /// effect (the node is already down, or already runs a new process on the target).
    StepSkipped {
        node: u64,
        step: PlanStepKind,
        reason: String,
    },
    NodeFailed {
        node: u64,
        step: PlanStepKind,
        reason: String,
        #[serde(serialize_with = "signal_serde::label")]
        signal: Option<SignalIn>,
        observed: Option<String>,
        logs_tail: Option<String>,
        /// Known failure signatures (`wkctl doctor`'s) the log tail matches (13.10).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        known: Vec<KnownSignature>,
    },
    RollbackFinished {
        node: u64,
        ok: bool,
        reason: Option<String>,
    },
    Waiting {
        node: Option<u64>,
        what: String,
    },
    Interrupted {
        node: Option<u64>,
        message: String,
    },
    /// The first Ctrl-C (or SIGTERM/SIGHUP): what the run does now (13.4).
    StopRequested {
        message: String,
    },
    /// `wkctl recover`: one step of the ordered cold start begins (issue #19).
    RecoverStep {
        index: usize,
        total: usize,
        step: crate::recover::RecoverStepKind,
        node: Option<u64>,
        what: String,
    },
    /// `wkctl recover`: the end of the run (its last event, instead of `summary`).
    RecoverFinished {
        ok: bool,
        status: crate::recover::RecoverStatus,
        cluster: String,
        /// Nodes the cluster reports at the end, of the manifest's `nodes`.
        members: usize,
        nodes: usize,
        duration_s: f64,
        doctor_report: Option<String>,
    },
    Summary(Summary),
}

impl Event {
    /// `step_started` for `command` as it is shown: without any secret this process knows
    /// ([`crate::scrub::scrub_known`]). A token or webhook URL written literally into a
    /// playbook command or a manifest `vars` entry is run as written but never printed,
    /// put in JSON or sent to a webhook.
    pub fn step_started(node: u64, step: PlanStepKind, command: Option<&str>) -> Event {
        Event::StepStarted {
            node,
            step,
            command: command.map(crate::scrub::scrub_known),
        }
    }

    /// `step_finished` for a step's output; `None`: it could not run at all.
    pub fn step_finished(
        node: u64,
        step: PlanStepKind,
        out: Option<&crate::transport::StepOutput>,
    ) -> Event {
        Event::StepFinished {
            node,
            step,
            ok: out.is_some_and(crate::transport::StepOutput::success),
            exit_code: out.and_then(|o| o.exit_code),
            timed_out: out.is_some_and(|o| o.timed_out),
            duration_s: out.map_or(0.0, |o| o.duration.as_secs_f64()),
        }
    }
}

/// A known failure signature found in a failed node's log tail.
#[derive(Debug, Clone, Serialize)]
pub struct KnownSignature {
    pub id: crate::finding::FindingId,
    pub issue: Option<u32>,
    pub explanation: String,
    pub hint: String,
}

impl KnownSignature {
    /// Every distinct signature in `text`, in the order first seen.
    pub fn scan(node: u64, text: &str) -> Vec<KnownSignature> {
        let mut out: Vec<KnownSignature> = Vec::new();
        for m in crate::doctor::signatures::scan(node, text) {
            if out.iter().any(|k| k.id == m.signature) {
                continue;
            }
            if let Some(sig) = crate::doctor::signatures::signature(m.signature) {
                out.push(KnownSignature {
                    id: sig.id,
                    issue: sig.issue,
                    explanation: sig.explanation.to_string(),
                    hint: sig.hint.to_string(),
                });
            }
        }
        out
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// `upgrade` or `restart` (issue 19).
    pub kind: PlanKind,
    pub ok: bool,
    pub status: RunStatus,
    pub cluster: String,
    pub to: String,
    pub duration_s: f64,
    pub nodes: Vec<NodeSummary>,
}

/// One node of the `summary`: its `status` is the summary's word for the run's kind
/// (`upgraded`, or `restarted` in a restart).
#[derive(Debug, Clone)]
pub struct NodeSummary {
    pub id: u64,
    pub from: Option<String>,
    pub to: String,
    pub status: NodeStatus,
    pub duration_s: Option<f64>,
    /// The run's kind (not serialized: it names `status`).
    pub kind: PlanKind,
}

impl NodeSummary {
    /// `status` as the summary says it.
    pub fn word(&self) -> &'static str {
        self.status.summary_word_in(self.kind)
    }
}

impl Serialize for NodeSummary {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Out<'a> {
            id: u64,
            from: &'a Option<String>,
            to: &'a str,
            status: &'static str,
            duration_s: Option<f64>,
        }
        Out {
            id: self.id,
            from: &self.from,
            to: &self.to,
            status: self.word(),
            duration_s: self.duration_s,
        }
        .serialize(ser)
    }
}

/// Renders events for the chosen output mode.
pub struct Reporter {
    printer: Printer,
    bars: Option<Bars>,
    /// Events are also handed to the notifier (never blocking, never failing the run).
    notifier: Option<crate::notify::Notifier>,
}

/// signal letter → (name, state, reason).
type SignalStates = BTreeMap<Signal, (&'static str, SignalWord, Option<String>)>;

struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    nodes: Mutex<BTreeMap<u64, ProgressBar>>,
    /// Latest state of each gate signal per node: signal → (name, state, reason).
    gates: Mutex<BTreeMap<u64, SignalStates>>,
    /// The run's kind, from `run_started` (a finished node is `upgraded` or `restarted`).
    kind: Mutex<PlanKind>,
}

impl Reporter {
    pub fn new(printer: &Printer, total_nodes: usize) -> Self {
        let bars = printer.progress.then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let overall = multi.add(ProgressBar::new(total_nodes as u64));
            overall.set_style(
                ProgressStyle::with_template(
                    "{prefix:>8} [{bar:30.green/dim}] {pos}/{len} nodes  {elapsed_precise}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            overall.set_prefix("upgrade");
            overall.enable_steady_tick(Duration::from_millis(200));
            Bars {
                multi,
                overall,
                nodes: Mutex::new(BTreeMap::new()),
                gates: Mutex::new(BTreeMap::new()),
                kind: Mutex::new(PlanKind::Upgrade),
            }
        });
        Reporter {
            printer: printer.clone(),
            bars,
            notifier: None,
        }
    }

    /// Runs `f` (a prompt) with the progress bars hidden, so the question is not drawn
    /// over; they come back afterwards.
    pub async fn suspend_for<F: std::future::Future>(&self, f: F) -> F::Output {
        let Some(b) = &self.bars else {
            return f.await;
        };
        // Clear what the bars drew first: a hidden target forgets the drawn lines, so
        // without this the bars were drawn again below the question and every finished
        // node line showed twice (13.13).
        let _ = b.multi.clear();
        b.multi.set_draw_target(ProgressDrawTarget::hidden());
        let out = f.await;
        b.multi.set_draw_target(ProgressDrawTarget::stderr());
        out
    }

    /// Sends every event from now on to `n` too.
    #[must_use]
    pub fn with_notifier(mut self, n: Option<crate::notify::Notifier>) -> Self {
        self.notifier = n;
        self
    }

    /// Waits (bounded) for the notifications still queued; their report.
    pub async fn finish_notifications(&mut self) -> Option<crate::notify::NotifyReport> {
        Some(self.notifier.take()?.finish().await)
    }

    pub fn printer(&self) -> &Printer {
        &self.printer
    }

    /// Shows one event. JSON write errors (closed stdout) are ignored here; the run goes on
    /// and its state file stays the record.
    pub fn emit(&self, event: &Event) {
        if let Some(n) = &self.notifier {
            n.send(event);
        }
        if self.printer.json {
            let _ = self.printer.json_line(event);
            return;
        }
        match &self.bars {
            Some(b) => self.draw(b, event),
            None => {
                if let Some(line) = plain_line(event) {
                    self.printer.note(&line);
                }
            }
        }
    }

    fn node_bar(b: &Bars, node: u64) -> ProgressBar {
        let mut map = b
            .nodes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(node)
            .or_insert_with(|| {
                let pb = b
                    .multi
                    .insert_before(&b.overall, ProgressBar::new_spinner());
                pb.set_style(
                    ProgressStyle::with_template(
                        "{spinner:.cyan} node {prefix:<5} {wide_msg} {elapsed:>6}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                pb.set_prefix(node.to_string());
                pb.enable_steady_tick(Duration::from_millis(120));
                pb
            })
            .clone()
    }

    /// Prints `line` above the bars, wrapped to the terminal's width. indicatif counts a
    /// printed line as one row; a longer one wraps on screen, the next redraw then moved
    /// the cursor up one row too few and left the old bars behind: every finished node
    /// line showed again below each long warning (13.13).
    fn println(b: &Bars, line: &str) {
        let width = terminal_size::terminal_size_of(std::io::stderr())
            .map_or(usize::MAX, |(w, _)| usize::from(w.0).max(20));
        let wrapped = textwrap::wrap(
            line,
            textwrap::Options::new(width.saturating_sub(1)).subsequent_indent("  "),
        );
        let _ = b.multi.println(wrapped.join("\n"));
    }

    fn draw(&self, b: &Bars, event: &Event) {
        let p = &self.printer;
        match event {
            Event::RunStarted { kind, .. } => {
                if let Ok(mut k) = b.kind.lock() {
                    *k = *kind;
                }
                if let Some(line) = plain_line(event) {
                    Self::println(b, &line);
                }
            }
            Event::NodeStarted { node, from, to, .. } => {
                Self::node_bar(b, *node)
                    .set_message(format!("{} → {to}", from.as_deref().unwrap_or("?")));
            }
            Event::StepStarted { node, step, .. } => {
                Self::node_bar(b, *node).set_message(format!("{step}…"));
            }
            Event::GateSignal {
                node,
                signal,
                name,
                state,
                reason,
            } => {
                let mut gates = b
                    .gates
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let signals = gates.entry(*node).or_default();
                signals.insert(*signal, (*name, *state, reason.clone()));
                let waiting = signals
                    .iter()
                    .find(|(_, (_, st, _))| *st != SignalWord::Met);
                let msg = match waiting {
                    Some((sig, (name, _, why))) => format!(
                        "gate: waiting for {} {name}: {}",
                        sig.letter(),
                        why.as_deref().unwrap_or("")
                    ),
                    None => "gate: all signals met, holding for `stable_for`…".to_string(),
                };
                Self::node_bar(b, *node).set_message(msg);
            }
            Event::StepFinished { ok: true, .. } => {}
            Event::NodeReady { node, clients, .. } => {
                let msg = match clients.as_ref().filter(|c| c.moved_off.is_some()) {
                    Some(c) => format!("ready, soaking… {}", c.line()),
                    None => "ready, soaking…".to_string(),
                };
                Self::node_bar(b, *node).set_message(msg);
            }
            Event::SoakFinished {
                node,
                ok: true,
                duration_s,
                clients,
                ..
            } => {
                let bar = Self::node_bar(b, *node);
                let extra = clients
                    .as_ref()
                    .map(|c| format!("; {}", c.line()))
                    .unwrap_or_default();
                let done = b.kind.lock().map_or(PlanKind::Upgrade, |k| *k).past();
                bar.finish_with_message(
                    p.paint_err(&format!("✓ {done} ({duration_s:.1}s soak){extra}"), "32"),
                );
                b.overall.inc(1);
            }
            Event::NodeSkipped { node, reason } => {
                Self::node_bar(b, *node)
                    .finish_with_message(p.dim_err(&format!("skipped: {reason}")));
                b.overall.inc(1);
            }
            Event::NodeFailed { node, reason, .. } => {
                let first = reason.lines().next().unwrap_or_default();
                Self::node_bar(b, *node)
                    .abandon_with_message(p.paint_err(&format!("✗ {first}"), "31;1"));
                if let Some(line) = plain_line(event) {
                    Self::println(b, &line);
                }
            }
            Event::Summary(s) if s.ok => {
                // Finished node lines stay on screen as the record of the run.
                b.overall.finish();
            }
            Event::Summary(s) => {
                // After a failure or an interrupt the bar shows what really happened:
                // the nodes done, not a full bar (13.4).
                b.overall.set_style(
                    ProgressStyle::with_template(
                        "{prefix:>8} [{bar:30.red/dim}] {pos}/{len} nodes  {msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                b.overall.set_prefix(s.status.as_str());
                b.overall.abandon_with_message(format!(
                    "{} of {} nodes done",
                    b.overall.position(),
                    b.overall.length().unwrap_or(0)
                ));
            }
            other => {
                if let Some(line) = plain_line(other) {
                    Self::println(b, &line);
                }
            }
        }
    }
}

/// One plain line per event (no terminal, `--no-progress`).
pub fn plain_line(event: &Event) -> Option<String> {
    use std::fmt::Write;
    Some(match event {
        Event::RunStarted {
            kind,
            cluster,
            to,
            nodes,
            resume,
            ..
        } => {
            let ids = nodes
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            match (kind, resume) {
                (PlanKind::Restart, true) => {
                    format!("resuming the restart of {cluster} ({to}): nodes {ids}")
                }
                (PlanKind::Restart, false) => format!("restarting {cluster} ({to}): nodes {ids}"),
                (PlanKind::Upgrade, r) => format!(
                    "{} {cluster} → {to}: nodes {ids}",
                    if *r { "resuming" } else { "upgrading" }
                ),
            }
        }
        Event::CheckFinished { ok, findings } => {
            let blocks = findings
                .iter()
                .filter(|f| f.severity == crate::finding::Severity::Block)
                .count();
            if *ok {
                "pre-upgrade check passed".to_string()
            } else {
                format!("pre-upgrade check: {blocks} blocking finding(s)")
            }
        }
        Event::NodeStarted {
            node,
            from,
            to,
            index,
            total,
        } => {
            format!(
                "[{index}/{total}] node {node}: {} → {to}",
                from.as_deref().unwrap_or("unknown")
            )
        }
        Event::NodeSkipped { node, reason } => format!("node {node}: skipped ({reason})"),
        Event::StepSkipped { node, step, reason } => {
            format!("node {node}: `{step}` not run again: {reason}")
        }
        Event::StepStarted {
            node,
            step,
            command,
        } => match command {
            Some(c) => format!("node {node}: {step}: {c}"),
            None => format!("node {node}: {step}"),
        },
        Event::StepFinished {
            node,
            step,
            ok,
            exit_code,
            timed_out,
            duration_s,
        } => {
            let how = if *ok {
                "ok".to_string()
            } else if *timed_out {
                "timed out".to_string()
            } else {
                format!(
                    "failed (exit {})",
                    exit_code.map_or_else(|| "signal".to_string(), |c| c.to_string())
                )
            };
            format!("node {node}: {step} {how} in {duration_s:.1}s")
        }
        Event::GateSignal {
            node,
            signal,
            name,
            state,
            reason,
        } => match reason {
            Some(r) if *state != SignalWord::Met => {
                format!("node {node}: gate {} {name}: {state}: {r}", signal.letter())
            }
            _ => format!("node {node}: gate {} {name}: {state}", signal.letter()),
        },
        Event::NodeReady {
            node,
            version,
            duration_s,
            clients,
        } => {
            let mut s = format!("node {node}: ready on {version} after {duration_s:.1}s");
            if let Some(c) = clients.as_ref().filter(|c| c.moved_off.is_some()) {
                let _ = write!(s, "\n{node}: {}", c.line());
            }
            s
        }
        Event::SoakFinished {
            node,
            ok,
            duration_s,
            reason,
            clients,
        } => {
            let mut s = match (ok, reason) {
                (true, _) => format!("node {node}: soak passed ({duration_s:.1}s)"),
                (false, r) => format!(
                    "node {node}: soak failed: {}",
                    r.as_deref().unwrap_or("unknown")
                ),
            };
            if let Some(c) = clients {
                let _ = write!(s, "\n{node}: {}", c.line());
            }
            s
        }
        Event::Warning { node, message } => match node {
            Some(n) => format!("node {n}: warning: {message}"),
            None => format!("warning: {message}"),
        },
        Event::SmokeFinished {
            node,
            ok,
            read_via,
            client_msg_no,
            reason,
        } => match (ok, read_via) {
            (true, Some(via)) => format!(
                "node {node}: smoke test passed (message {client_msg_no} sent through {node}, read back through {via})"
            ),
            _ => format!(
                "node {node}: smoke test FAILED: {}",
                reason.as_deref().unwrap_or("unknown")
            ),
        },
        Event::NodeFailed {
            node,
            step,
            reason,
            signal,
            observed,
            logs_tail,
            known,
        } => {
            let mut s = format!("node {node}: FAILED at {step}: {reason}");
            for k in known {
                let issue = k
                    .issue
                    .map(|i| format!(" (WuKongIM #{i})"))
                    .unwrap_or_default();
                let _ = write!(
                    s,
                    "\n  known failure `{}`{issue}: {}\n    hint: {}",
                    k.id, k.explanation, k.hint
                );
            }
            if let (Some(sig), Some(obs)) = (signal, observed) {
                let _ = write!(
                    s,
                    "\n  signal {} never held; last observed: {obs}",
                    sig.label()
                );
            }
            match logs_tail.as_deref().map(str::trim) {
                Some(t) if !t.is_empty() => {
                    let _ = write!(
                        s,
                        "\n  last log lines of node {node} (playbook `logs` step):"
                    );
                    for l in t.lines() {
                        let _ = write!(s, "\n    | {l}");
                    }
                }
                _ => {
                    let _ = write!(
                        s,
                        "\n  (no logs from node {node}: the playbook `logs` step gave nothing)"
                    );
                }
            }
            s
        }
        Event::RollbackFinished { node, ok, reason } => {
            if *ok {
                format!("node {node}: rolled back and ready on its old version")
            } else {
                format!(
                    "node {node}: rollback failed: {}",
                    reason.as_deref().unwrap_or("")
                )
            }
        }
        Event::Waiting { node, what } => match node {
            Some(n) => format!("node {n}: waiting: {what}"),
            None => format!("waiting: {what}"),
        },
        Event::Interrupted { message, .. } => format!("interrupted: {message}"),
        Event::StopRequested { message } => message.clone(),
        Event::RecoverStep {
            index,
            total,
            node,
            what,
            ..
        } => match node {
            Some(n) => format!("[{index}/{total}] node {n}: {what}"),
            None => format!("[{index}/{total}] {what}"),
        },
        Event::RecoverFinished {
            ok,
            members,
            nodes,
            cluster,
            ..
        } => {
            if *ok {
                format!("recovered `{cluster}`: {members} of {nodes} nodes in one cluster")
            } else {
                format!("`{cluster}` not recovered: {members} of {nodes} nodes seen")
            }
        }
        Event::Summary(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The typed signal, state and statuses keep the JSON contract (README "JSON events").
    #[test]
    fn typed_fields_keep_their_json_forms() {
        let g = Event::GateSignal {
            node: 1002,
            signal: Signal::ConfigCaughtUp,
            name: Signal::ConfigCaughtUp.name(),
            state: SignalWord::NotYet,
            reason: Some("config 7 < 9".into()),
        };
        let v = serde_json::to_value(&g).unwrap();
        assert_eq!(v["data"]["signal"], "E");
        assert_eq!(v["data"]["name"], "cluster config caught up");
        assert_eq!(v["data"]["state"], "not_yet");
        let f = Event::NodeFailed {
            node: 1002,
            step: PlanStepKind::WaitReady,
            reason: "r".into(),
            signal: Some(SignalIn {
                signal: Signal::NewProcessOnTarget,
                kind: PlanKind::Upgrade,
            }),
            observed: None,
            logs_tail: None,
            known: Vec::new(),
        };
        let v = serde_json::to_value(&f).unwrap();
        assert_eq!(v["data"]["signal"], "B new process on target version");
        // A restart's B is a new process on the same version; the letter stays.
        let Event::NodeFailed { signal, .. } = &f else {
            unreachable!()
        };
        let restart = Event::NodeFailed {
            node: 1002,
            step: PlanStepKind::WaitReady,
            reason: "r".into(),
            signal: signal.map(|s| SignalIn {
                kind: PlanKind::Restart,
                ..s
            }),
            observed: None,
            logs_tail: None,
            known: Vec::new(),
        };
        let v = serde_json::to_value(&restart).unwrap();
        assert_eq!(v["data"]["signal"], "B new process on the same version");
        // Only B's name depends on the kind.
        for sig in Signal::ALL {
            assert_eq!(sig.label_in(PlanKind::Upgrade), sig.label(), "{sig}");
            assert_eq!(
                sig.label_in(PlanKind::Restart) == sig.label(),
                sig != Signal::NewProcessOnTarget,
                "{sig}"
            );
        }
        let none = Event::NodeFailed {
            node: 1002,
            step: PlanStepKind::Stop,
            reason: "r".into(),
            signal: None,
            observed: None,
            logs_tail: None,
            known: Vec::new(),
        };
        assert!(serde_json::to_value(&none).unwrap()["data"]["signal"].is_null());
        let summary = |kind| {
            Event::Summary(Summary {
                kind,
                ok: false,
                status: RunStatus::Interrupted,
                cluster: "c".into(),
                to: "t".into(),
                duration_s: 1.0,
                nodes: [NodeStatus::Ready, NodeStatus::Failed]
                    .into_iter()
                    .enumerate()
                    .map(|(i, status)| NodeSummary {
                        id: 1001 + i as u64,
                        from: None,
                        to: "t".into(),
                        status,
                        duration_s: None,
                        kind,
                    })
                    .collect(),
            })
        };
        let v = serde_json::to_value(summary(PlanKind::Upgrade)).unwrap();
        assert_eq!(v["data"]["status"], "interrupted");
        assert_eq!(v["data"]["kind"], "upgrade");
        assert_eq!(v["data"]["nodes"][0]["status"], "upgraded");
        assert_eq!(v["data"]["nodes"][1]["status"], "failed");
        // The node's fields are what they were: no `kind` inside.
        assert_eq!(
            v["data"]["nodes"][0],
            serde_json::json!({"id": 1001, "from": null, "to": "t", "status": "upgraded", "duration_s": null})
        );
        let v = serde_json::to_value(summary(PlanKind::Restart)).unwrap();
        assert_eq!(v["data"]["kind"], "restart");
        assert_eq!(v["data"]["nodes"][0]["status"], "restarted");
        assert_eq!(v["data"]["nodes"][1]["status"], "failed");
    }

    #[test]
    fn events_serialize_as_type_and_data() {
        let e = Event::NodeReady {
            node: 1001,
            version: "v2.1.2-20250120".into(),
            duration_s: 1.5,
            clients: None,
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["type"], "node_ready");
        assert_eq!(v["data"]["node"], 1001);
        let s = Event::Summary(Summary {
            kind: PlanKind::Upgrade,
            ok: true,
            status: RunStatus::Completed,
            cluster: "c".into(),
            to: "t".into(),
            duration_s: 1.0,
            nodes: vec![],
        });
        assert_eq!(serde_json::to_value(&s).unwrap()["type"], "summary");
    }
}
