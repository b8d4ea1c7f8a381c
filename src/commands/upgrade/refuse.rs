//! The refusals of `upgrade` and `restart` before anything is touched: another command's
//! unfinished run, the unfinished run of the other kind, and a `--resume` that does not
//! match the state (none, or one that completed).

use crate::error::WkError;
use crate::plan::{PlanKind, PlanStepKind};
use crate::state::{NodeStatus, RunState, RunStatus};

/// An unfinished `wkctl recover` run (stopped before step `cursor`) owns the cluster.
pub(super) fn recover_unfinished(cluster: &str, cursor: usize) -> WkError {
    WkError::no(
        format!(
            "an unfinished `wkctl recover` run of `{cluster}` exists (stopped before step {} of its cold start)",
            cursor + 1
        ),
        "finish it with `wkctl recover --resume` or drop it with `wkctl recover --discard`, then run this again",
    )
}

/// An unfinished run is resumed by its own command only (issue 19).
pub(super) fn other_kind(st: &RunState, kind: PlanKind) -> WkError {
    WkError::no(
        format!(
            "the unfinished run of `{}` is {}, not {}: `wkctl {kind} --resume` cannot continue it",
            st.cluster,
            a_run(st.kind),
            a_run(kind)
        ),
        continue_or_discard(st.kind),
    )
}

/// A fresh run while one is unfinished, or a `--resume` with nothing unfinished to resume.
pub(super) fn resume_mismatch(
    previous: Option<&RunState>,
    resume: bool,
    kind: PlanKind,
) -> Result<(), WkError> {
    match (previous, resume) {
        (Some(st), false) if st.status.unfinished() => {
            Err(WkError::no(unfinished(st), continue_or_discard(st.kind)))
        }
        (None, true) => Err(WkError::no(
            "no unfinished run to resume",
            format!("start one with {}", start_cmd(kind)),
        )),
        (Some(st), true) if !st.status.unfinished() => Err(WkError::no(
            format!("the last run to {} completed; nothing to resume", st.to),
            format!("start a new one with {}", start_cmd(kind)),
        )),
        _ => Ok(()),
    }
}

/// The hint of a refusal that names an unfinished run of `kind`: both ways out.
pub(super) fn continue_or_discard(kind: PlanKind) -> String {
    format!("continue it with `wkctl {kind} --resume`, or forget it with `wkctl {kind} --discard`")
}

/// "an upgrade" / "a restart".
fn a_run(kind: PlanKind) -> &'static str {
    match kind {
        PlanKind::Upgrade => "an upgrade",
        PlanKind::Restart => "a restart",
    }
}

fn start_cmd(kind: PlanKind) -> &'static str {
    match kind {
        PlanKind::Upgrade => "`wkctl upgrade --to <VERSION>`",
        PlanKind::Restart => "`wkctl restart`",
    }
}

/// The refusal's first line for an unfinished run, naming its kind.
pub(super) fn unfinished(st: &RunState) -> String {
    match st.kind {
        PlanKind::Upgrade => format!(
            "an unfinished upgrade of `{}` to {} exists ({})",
            st.cluster,
            st.to,
            describe(st)
        ),
        PlanKind::Restart => format!(
            "an unfinished restart of `{}` exists ({})",
            st.cluster,
            describe(st)
        ),
    }
}

fn describe(st: &RunState) -> String {
    let done = st
        .nodes
        .iter()
        .filter(|n| n.status == NodeStatus::Ready)
        .count();
    let current = st
        .nodes
        .iter()
        .find(|n| matches!(n.status, NodeStatus::InProgress | NodeStatus::Failed));
    let status = match st.status {
        RunStatus::Running => "running or killed",
        RunStatus::Failed => "failed",
        RunStatus::Interrupted => "interrupted",
        RunStatus::Completed => "completed",
    };
    match current {
        Some(n) => format!(
            "{status}; {done} node(s) done; node {} stopped at `{}`",
            n.id,
            n.step.map_or("start", PlanStepKind::as_str)
        ),
        None => format!("{status}; {done} node(s) done"),
    }
}
