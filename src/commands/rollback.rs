//! `wkctl rollback --node N` (issue 13.18): rolls back the failed node of the unfinished
//! run after the fact, with the plan's `rollback` command and the gate against the old
//! version, exactly as `--rollback-on-failure` does at the time of the failure. It is a
//! restart, so it is refused while any other node is down (or not fully back). It takes
//! the same locks as `upgrade`, saves the same state and emits the same events; a later
//! `wkctl upgrade --resume` plans the node again from the start.

use crate::cli::{Global, RollbackArgs, TargetArgs};
use crate::commands::{rule_options, upgrade};
use crate::error::{Outcome, WkError};
use crate::execute::{Interrupt, Options, RunInputs, Runner};
use crate::inputs::Context;
use crate::observe;
use crate::output::progress::Reporter;
use crate::output::{Printer, confirm};
use crate::plan::{Plan, PlannedNode};
use crate::releases;
use crate::state::{self, NodeStatus, RunState, StateDir};

pub async fn run(global: &Global, args: &RollbackArgs, p: &Printer) -> anyhow::Result<Outcome> {
    let (ctx, dir) =
        crate::inputs::load_with_state(global.manifest.as_deref(), args.state_dir.as_deref())?;
    let id = args.node;
    // A run in progress is named before its state is judged.
    ctx.ensure_no_live_run(&dir, args.break_lock)?;
    let (st, from) = failed_node(&ctx, &dir, id)?;

    // The locks of `upgrade --resume`: the run's stale lock may be taken.
    let takeover = upgrade::takeover(args.break_lock, true);
    let lock = state::acquire(&dir, takeover)?;
    let cluster_lock = upgrade::acquire_cluster_lock(&ctx, &dir, takeover)?;

    let (client, view) = crate::observe::cluster(&ctx).await?;
    let members = upgrade::acquire_member_lock(&dir, &view, args.break_lock, true, p)?;
    let (plan, pn) = rollback_plan(&ctx, &st, id, &view)?;
    if !args.yes && !confirmed(args, &plan, &from).await? {
        p.note("nothing was changed");
        return Ok(Outcome::No);
    }
    let reporter = Reporter::new(p, 1);
    let runner = Runner::new(RunInputs {
        ctx: &ctx,
        plan: &plan,
        client,
        reporter: &reporter,
        dir: dir.clone(),
        state: st,
        interrupt: Interrupt::install(),
        opts: Options {
            yes: true,
            rollback_on_failure: true,
            resume: true,
            interactive: false,
            break_lock: args.break_lock,
        },
    });
    let outcome = runner.rollback_after_the_fact(&pn).await?;
    drop(members);
    drop(cluster_lock);
    drop(lock);
    if !args.json {
        let line = match outcome {
            Outcome::Success => p.green(&format!(
                "node {id} is back on {from}; `wkctl upgrade --resume` plans it again from the start"
            )),
            _ => p.red(&format!(
                "node {id} was not rolled back: the reason is above; the state is unchanged"
            )),
        };
        let _ = p.out(&line);
    }
    Ok(outcome)
}

/// The unfinished upgrade and the old version of node `id`, refused unless `id` is the
/// node it failed on after its stop (a known manifest node, an upgrade's, an old version
/// to go back to).
fn failed_node(ctx: &Context, dir: &StateDir, id: u64) -> anyhow::Result<(RunState, String)> {
    if ctx.manifest.node(id).is_none() {
        return Err(WkError::input(
            format!(
                "node {id} is not in the manifest `{}`",
                ctx.manifest.path.display()
            ),
            "pass the id of the failed node (`wkctl status` shows the unfinished run)",
        )
        .into());
    }
    let Some(st) = dir.load()?.filter(|st| st.status.unfinished()) else {
        return Err(WkError::no(
            format!("there is no unfinished run of `{}` to roll a node back in", ctx.manifest.name),
            "`wkctl rollback` takes back the node an upgrade failed on; without a run, use the playbook yourself",
        )
        .into());
    };
    if st.kind == crate::plan::PlanKind::Restart {
        return Err(WkError::no(
            format!(
                "the unfinished run of `{}` is a restart: it changed no version, so there is nothing to roll back to",
                st.cluster
            ),
            "fix the node's cause (`wkctl doctor`), then `wkctl restart --resume`",
        )
        .into());
    }
    let Some(nr) = st.node(id) else {
        return Err(WkError::no(
            format!("node {id} is not part of the unfinished run"),
            "pass the id of the failed node (`wkctl status`)",
        )
        .into());
    };
    let from = nr.from.clone();
    if !matches!(nr.status, NodeStatus::Failed | NodeStatus::InProgress) || !nr.stop_began() {
        return Err(WkError::no(
            format!(
                "node {id} is {:?} in the unfinished run, not a node whose upgrade failed after its stop",
                nr.status
            )
            .to_lowercase(),
            "roll back only the node the run failed on (`wkctl status`); continue the run with `wkctl upgrade --resume`",
        )
        .into());
    }
    let Some(from) = from else {
        return Err(WkError::no(
            format!("the old version of node {id} is not known: nothing to roll back to"),
            "restore the node by hand with the playbook's `rollback` step",
        )
        .into());
    };
    Ok((st, from))
}

/// The run's plan from a live observation, as `upgrade --resume` would make it, and its
/// node `id` (refused when its playbook has no `rollback` step).
fn rollback_plan(
    ctx: &Context,
    st: &RunState,
    id: u64,
    view: &crate::probe::ClusterView,
) -> anyhow::Result<(Plan, PlannedNode)> {
    let target =
        releases::resolve_target(&st.to, true).map_err(|e| WkError::input(e.message, e.hint))?;
    let versions = upgrade::resume_versions(st, ctx, view);
    let plan = observe::plan_from_view(
        ctx,
        view,
        &target,
        rule_options(&no_target()),
        Some(&versions),
    )?;
    let Some(pn) = plan.nodes.iter().find(|n| n.id == id).cloned() else {
        return Err(WkError::no(
            format!("node {id} is not in the plan"),
            "check the manifest",
        )
        .into());
    };
    if pn.step(crate::plan::PlanStepKind::Rollback).is_none() {
        return Err(WkError::input(
            format!("playbook `{}` has no `rollback` step", ctx.playbook.name),
            "add a `rollback` step to the playbook (it gets `{{from}}`, the old version)",
        )
        .into());
    }
    Ok((plan, pn))
}

/// The target arguments of the resumed run's plan: its own target, no `--allow-…`.
fn no_target() -> TargetArgs {
    TargetArgs {
        to: None,
        allow_unknown_version: false,
        allow_downgrade: false,
        allow_downgrade_across_rewrite: false,
    }
}

/// Without `--yes`: the operator's answer on a terminal; refused with `--json` or no
/// terminal to ask on.
async fn confirmed(args: &RollbackArgs, plan: &Plan, from: &str) -> anyhow::Result<bool> {
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stdin())
        && std::io::IsTerminal::is_terminal(&std::io::stderr());
    if !interactive || args.json {
        return Err(
            WkError::input("refusing to roll back without confirmation", "pass `--yes`").into(),
        );
    }
    Ok(confirm(&format!(
        "roll node {} of `{}` back to {from}? [y/N] ",
        args.node, plan.cluster
    ))
    .await)
}
