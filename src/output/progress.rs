//! How run events are shown on stderr (DESIGN §8), in uv's printer/reporter shape: the
//! [`Printer`] says where output goes, the [`Reporter`] turns each [`Event`] into it. On a
//! terminal that is indicatif progress (a line per node and an overall bar); otherwise one
//! plain line per event ([`plain_line`]); with `--json`, the event itself as a JSON line.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::events::{Event, Summary};
use crate::gate::clients::Summary as ClientsSummary;
use crate::gate::{Signal, SignalWord};
use crate::output::Printer;
use crate::output::plain::plain_line;
use crate::plan::PlanKind;

/// Renders events for the chosen output mode.
pub struct Reporter {
    printer: Printer,
    bars: Option<Bars>,
    /// Events are also handed to the notifier (never blocking, never failing the run).
    notifier: Option<crate::notify::Notifier>,
}

/// signal letter → (name, state, reason).
type SignalStates = BTreeMap<Signal, (&'static str, SignalWord, Option<String>)>;

/// The progress display: a spinner line per node above one overall bar.
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
    /// A reporter for a run of `total_nodes`: progress bars when `printer` draws them.
    pub fn new(printer: &Printer, total_nodes: usize) -> Self {
        Reporter {
            printer: printer.clone(),
            bars: printer.progress.then(|| Bars::new(total_nodes)),
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

    /// The printer the events go through.
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
            Some(b) => b.draw(&self.printer, event),
            None => {
                if let Some(line) = plain_line(event) {
                    self.printer.note(&line);
                }
            }
        }
    }
}

impl Bars {
    /// The overall bar of `total_nodes`, ticking; node lines are added as nodes start.
    fn new(total_nodes: usize) -> Self {
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
    }

    /// The spinner line of `node`, created above the overall bar the first time.
    fn node_bar(&self, node: u64) -> ProgressBar {
        let mut map = self
            .nodes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(node)
            .or_insert_with(|| {
                let pb = self
                    .multi
                    .insert_before(&self.overall, ProgressBar::new_spinner());
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
    fn println(&self, line: &str) {
        let width = terminal_size::terminal_size_of(std::io::stderr())
            .map_or(usize::MAX, |(w, _)| usize::from(w.0).max(20));
        let wrapped = textwrap::wrap(
            line,
            textwrap::Options::new(width.saturating_sub(1)).subsequent_indent("  "),
        );
        let _ = self.multi.println(wrapped.join("\n"));
    }

    /// Prints the event's plain line above the bars (when it has one).
    fn println_event(&self, event: &Event) {
        if let Some(line) = plain_line(event) {
            self.println(&line);
        }
    }

    /// Shows one event: node lines change, finished nodes move the overall bar, and what
    /// has no place in a bar is printed above them.
    fn draw(&self, p: &Printer, event: &Event) {
        match event {
            Event::RunStarted { kind, .. } => {
                if let Ok(mut k) = self.kind.lock() {
                    *k = *kind;
                }
                self.println_event(event);
            }
            Event::NodeStarted { node, from, to, .. } => {
                self.node_bar(*node)
                    .set_message(format!("{} → {to}", from.as_deref().unwrap_or("?")));
            }
            Event::StepStarted { node, step, .. } => {
                self.node_bar(*node).set_message(format!("{step}…"));
            }
            Event::GateSignal {
                node,
                signal,
                name,
                state,
                reason,
            } => self.gate_signal(*node, *signal, (*name, *state, reason.clone())),
            Event::StepFinished { ok: true, .. } => {}
            Event::NodeReady { node, clients, .. } => {
                let msg = match clients.as_ref().filter(|c| c.moved_off.is_some()) {
                    Some(c) => format!("ready, soaking… {}", c.line()),
                    None => "ready, soaking…".to_string(),
                };
                self.node_bar(*node).set_message(msg);
            }
            Event::SoakFinished {
                node,
                ok: true,
                duration_s,
                clients,
                ..
            } => self.soak_passed(p, *node, *duration_s, clients.as_ref()),
            Event::NodeSkipped { node, reason } => {
                self.node_bar(*node)
                    .finish_with_message(p.dim_err(&format!("skipped: {reason}")));
                self.overall.inc(1);
            }
            Event::NodeFailed { node, reason, .. } => {
                let first = reason.lines().next().unwrap_or_default();
                self.node_bar(*node)
                    .abandon_with_message(p.paint_err(&format!("✗ {first}"), "31;1"));
                self.println_event(event);
            }
            // Finished node lines stay on screen as the record of the run.
            Event::Summary(s) if s.ok => self.overall.finish(),
            Event::Summary(s) => self.run_stopped(s),
            other => self.println_event(other),
        }
    }

    /// Records one gate signal of `node`; its line names the first signal not met yet.
    fn gate_signal(
        &self,
        node: u64,
        signal: Signal,
        (name, state, reason): (&'static str, SignalWord, Option<String>),
    ) {
        let mut gates = self
            .gates
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let signals = gates.entry(node).or_default();
        signals.insert(signal, (name, state, reason));
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
        self.node_bar(node).set_message(msg);
    }

    /// A node's soak passed: its line is finished in green and the overall bar moves.
    fn soak_passed(
        &self,
        p: &Printer,
        node: u64,
        duration_s: f64,
        clients: Option<&ClientsSummary>,
    ) {
        let bar = self.node_bar(node);
        let extra = clients
            .map(|c| format!("; {}", c.line()))
            .unwrap_or_default();
        let done = self.kind.lock().map_or(PlanKind::Upgrade, |k| *k).past();
        bar.finish_with_message(
            p.paint_err(&format!("✓ {done} ({duration_s:.1}s soak){extra}"), "32"),
        );
        self.overall.inc(1);
    }

    /// After a failure or an interrupt the bar shows what really happened: the nodes
    /// done, not a full bar (13.4).
    fn run_stopped(&self, s: &Summary) {
        self.overall.set_style(
            ProgressStyle::with_template("{prefix:>8} [{bar:30.red/dim}] {pos}/{len} nodes  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        self.overall.set_prefix(s.status.as_str());
        self.overall.abandon_with_message(format!(
            "{} of {} nodes done",
            self.overall.position(),
            self.overall.length().unwrap_or(0)
        ));
    }
}
