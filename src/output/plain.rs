//! The plain line of each run event (no terminal, `--no-progress`, and the notifier's
//! text): what the progress bars show, as one line that stands on its own in a log.

use std::fmt::Write as _;

use crate::events::{Event, KnownSignature};
use crate::finding::Finding;
use crate::gate::clients::Summary as ClientsSummary;
use crate::gate::{SignalIn, SignalWord};
use crate::plan::{PlanKind, PlanStepKind};

/// One plain line per event (no terminal, `--no-progress`); `None` for the summary,
/// which the command prints itself.
pub fn plain_line(event: &Event) -> Option<String> {
    match event {
        Event::RunStarted { .. }
        | Event::CheckFinished { .. }
        | Event::Warning { .. }
        | Event::Waiting { .. }
        | Event::Interrupted { .. }
        | Event::StopRequested { .. } => run_line(event),
        Event::NodeStarted { .. }
        | Event::NodeSkipped { .. }
        | Event::NodeReady { .. }
        | Event::SoakFinished { .. }
        | Event::SmokeFinished { .. }
        | Event::RollbackFinished { .. } => node_line(event),
        Event::StepStarted { .. }
        | Event::StepFinished { .. }
        | Event::StepSkipped { .. }
        | Event::GateSignal { .. } => step_line(event),
        Event::NodeFailed {
            node,
            step,
            reason,
            signal,
            observed,
            logs_tail,
            known,
        } => Some(node_failed(
            *node,
            *step,
            reason,
            known,
            (*signal, observed.as_deref()),
            logs_tail.as_deref(),
        )),
        Event::RecoverStep { .. } | Event::RecoverFinished { .. } => recover_line(event),
        Event::Summary(_) => None,
    }
}

/// The lines of the run as a whole: its start, the check, warnings, waits and stops.
/// `None` for the other events.
fn run_line(event: &Event) -> Option<String> {
    Some(match event {
        Event::RunStarted {
            kind,
            cluster,
            to,
            nodes,
            resume,
            ..
        } => run_started(*kind, cluster, to, nodes, *resume),
        Event::CheckFinished { ok, findings } => check_finished(*ok, findings),
        Event::Warning { node, message } => match node {
            Some(n) => format!("node {n}: warning: {message}"),
            None => format!("warning: {message}"),
        },
        Event::Waiting { node, what } => match node {
            Some(n) => format!("node {n}: waiting: {what}"),
            None => format!("waiting: {what}"),
        },
        Event::Interrupted { message, .. } => format!("interrupted: {message}"),
        Event::StopRequested { message } => message.clone(),
        _ => return None,
    })
}

/// `run_started`: what the run does to which nodes.
fn run_started(kind: PlanKind, cluster: &str, to: &str, nodes: &[u64], resume: bool) -> String {
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
            if r { "resuming" } else { "upgrading" }
        ),
    }
}

/// `check_finished`: passed, or how many findings block.
fn check_finished(ok: bool, findings: &[Finding]) -> String {
    let blocks = findings
        .iter()
        .filter(|f| f.severity == crate::finding::Severity::Block)
        .count();
    if ok {
        "pre-upgrade check passed".to_string()
    } else {
        format!("pre-upgrade check: {blocks} blocking finding(s)")
    }
}

/// The lines of one node's progress: started, skipped, ready, soaked, smoke-tested,
/// rolled back. `None` for the other events.
fn node_line(event: &Event) -> Option<String> {
    Some(match event {
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
        } => soak_finished(*node, *ok, *duration_s, reason.as_deref(), clients.as_ref()),
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
        _ => return None,
    })
}

/// `soak_finished`: passed or why not, then the client check when there was one.
fn soak_finished(
    node: u64,
    ok: bool,
    duration_s: f64,
    reason: Option<&str>,
    clients: Option<&ClientsSummary>,
) -> String {
    let mut s = if ok {
        format!("node {node}: soak passed ({duration_s:.1}s)")
    } else {
        format!("node {node}: soak failed: {}", reason.unwrap_or("unknown"))
    };
    if let Some(c) = clients {
        let _ = write!(s, "\n{node}: {}", c.line());
    }
    s
}

/// The lines of one playbook step or gate signal. `None` for the other events.
fn step_line(event: &Event) -> Option<String> {
    Some(match event {
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
        Event::StepSkipped { node, step, reason } => {
            format!("node {node}: `{step}` not run again: {reason}")
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
        _ => return None,
    })
}

/// `node_failed`: the reason, the known failures its logs match, the signal that never
/// held, and the log tail (or that there was none).
fn node_failed(
    node: u64,
    step: PlanStepKind,
    reason: &str,
    known: &[KnownSignature],
    (signal, observed): (Option<SignalIn>, Option<&str>),
    logs_tail: Option<&str>,
) -> String {
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
    match logs_tail.map(str::trim) {
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

/// The lines of `wkctl recover`: each step, then the end. `None` for the other events.
fn recover_line(event: &Event) -> Option<String> {
    Some(match event {
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
        _ => return None,
    })
}
