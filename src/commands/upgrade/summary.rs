//! The final human summary of `upgrade` and `restart` on stdout: per node old → new, the
//! time taken, and the verdict with what to do next.

use std::path::{Path, PathBuf};

use crate::error::Outcome;
use crate::output::{self, Printer};
use crate::plan::{Plan, PlanKind};
use crate::state::{NodeStatus, RunState, StateDir};

/// Prints the table of nodes and the verdict line.
pub(super) fn print(
    dir: &StateDir,
    plan: &Plan,
    outcome: Outcome,
    demo: bool,
    p: &Printer,
) -> std::io::Result<()> {
    let st = dir.load().ok().flatten();
    let (rows, total) = rows(st.as_ref(), plan, p);
    p.out(output::table(&["NODE", "FROM", "TO", "RESULT", "TIME"], &rows).trim_end())?;
    p.out(&verdict(dir, st.as_ref(), plan, outcome, demo, total, p))
}

/// One row per planned node, and the total time spent in node work (ms).
fn rows(st: Option<&RunState>, plan: &Plan, p: &Printer) -> (Vec<Vec<String>>, u64) {
    let mut rows = Vec::new();
    let mut total = 0u64;
    for pn in &plan.nodes {
        let n = st.and_then(|s| s.node(pn.id));
        let status = n.map_or(NodeStatus::Pending, |n| n.status);
        let took = n.and_then(|n| Some(n.finished_at_ms?.saturating_sub(n.started_at_ms?)));
        total += took.unwrap_or(0);
        let shown = match status {
            NodeStatus::Ready if plan.kind == PlanKind::Restart => p.green("restarted"),
            NodeStatus::Ready => p.green("upgraded"),
            NodeStatus::Skipped => p.dim("skipped"),
            NodeStatus::Failed => p.red("FAILED"),
            NodeStatus::RolledBack => p.yellow("rolled back"),
            NodeStatus::InProgress => p.yellow("in progress"),
            NodeStatus::Pending => p.dim("not touched"),
        };
        rows.push(vec![
            pn.id.to_string(),
            n.and_then(|n| n.from.clone())
                .or_else(|| pn.from.clone())
                .unwrap_or_else(|| "?".into()),
            match plan.kind {
                // A restart keeps each node's version.
                PlanKind::Restart => pn.from.clone().unwrap_or_else(|| "?".into()),
                PlanKind::Upgrade => plan.to.to_string(),
            },
            shown,
            took.map(|ms| output::short_duration(std::time::Duration::from_millis(ms)))
                .unwrap_or_default(),
        ]);
    }
    (rows, total)
}

/// The verdict line: done, or stopped with where the state is and both ways out.
fn verdict(
    dir: &StateDir,
    st: Option<&RunState>,
    plan: &Plan,
    outcome: Outcome,
    demo: bool,
    total: u64,
    p: &Printer,
) -> String {
    let kind = plan.kind;
    match outcome {
        Outcome::Success if kind == PlanKind::Restart => p.green(&format!(
            "done: {} node(s) of `{}` restarted, one at a time, each on its own version ({} in node work)",
            plan.upgrades().count(),
            plan.cluster,
            output::short_duration(std::time::Duration::from_millis(total))
        )),
        Outcome::Success => p.green(&format!(
            "done: `{}` is on {} ({} in node work)",
            plan.cluster,
            plan.to,
            output::short_duration(std::time::Duration::from_millis(total))
        )),
        // The demo's directory is deleted when it ends: no `--resume` into it (13.11).
        Outcome::No if demo => p.red("upgrade stopped safely; the demo's cluster and state are removed now: run `wkctl demo` again"),
        Outcome::Interrupted if demo => p.yellow("interrupted; the demo's cluster and state are removed now: run `wkctl demo` again"),
        Outcome::No => p.red(&format!(
            "{kind} stopped: state saved in `{}`; {}",
            rel(&dir.state_path()),
            after_failure(st, kind)
        )),
        Outcome::Interrupted => p.yellow(&format!(
            "interrupted: state saved in `{}`; continue with `wkctl {kind} --resume`",
            rel(&dir.state_path())
        )),
    }
}

/// The failed node: what to look at and both ways out (13.10).
fn after_failure(st: Option<&RunState>, kind: PlanKind) -> String {
    let failed = st.and_then(|s| s.nodes.iter().find(|n| n.status == NodeStatus::Failed));
    match failed {
        // A restart changed no version: there is nothing to roll back to.
        Some(_) if kind == PlanKind::Restart => {
            "see `wkctl doctor` (logs, network, settings of every node); then fix the cause and `wkctl restart --resume`".to_string()
        }
        Some(n) => format!(
            "see `wkctl doctor` (logs, network, settings of every node); then fix the cause and `wkctl upgrade --resume`, or take node {} back to {} with `wkctl rollback --node {}`",
            n.id,
            n.from.as_deref().unwrap_or("its old version"),
            n.id
        ),
        None => format!("fix the cause, then `wkctl {kind} --resume`"),
    }
}

fn rel(path: &Path) -> String {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    path.strip_prefix(&cwd)
        .unwrap_or(path)
        .display()
        .to_string()
}
