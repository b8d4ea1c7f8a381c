//! `wkctl recover` (issue #19 point 2): the maintainers' ordered cold start of a cluster
//! that is already broken (#310, #408; facts §4, §5.4, §12). Only when `check`'s
//! observation shows it broken; a deliberate full outage, confirmed on a terminal or with
//! `--yes-full-outage`; the team lock and the state directory of `upgrade`, its own state
//! file (`recover.json`) with a step cursor for `--resume`.

use std::fmt::Write as _;
use std::io::IsTerminal;

use crate::checks;
use crate::cli::{Global, RecoverArgs};
use crate::commands::upgrade;
use crate::error::{Outcome, WkError};
use crate::execute::Interrupt;
use crate::execute::recover::{RecoverRun, state_path};
use crate::inputs::{self, Context};
use crate::observe;
use crate::output::progress::Reporter;
use crate::output::{Printer, confirm};
use crate::probe::{Client, ClusterView};
use crate::recover::{self, RecoverPlan, RecoverState};
use crate::render;
use crate::state::{self, LockGuard, StateDir, now_ms};

/// The recover run's state (`recover.json`), if there is one.
fn load_state(dir: &StateDir) -> Result<Option<RecoverState>, WkError> {
    let path = state_path(dir);
    let Some(text) = state::read_if_present(&path)? else {
        return Ok(None);
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        WkError::input(
            format!(
                "`{}` is not a valid wkctl recover state file: {e}",
                path.display()
            ),
            "move it away to start over (`wkctl recover --discard` keeps a copy)",
        )
    })
}

fn list(ids: &[u64]) -> String {
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

pub async fn run(global: &Global, args: &RecoverArgs, p: &Printer) -> anyhow::Result<Outcome> {
    let (ctx, dir) =
        inputs::load_with_state(global.manifest.as_deref(), args.state_dir.as_deref())?;
    if args.discard {
        return discard(&dir, args, p);
    }
    if !args.dry_run {
        dir.ensure_writable()?;
        // A run in progress is named first: before the state is judged, and long before
        // the full-outage question (`take_locks` asks again when it takes the lock).
        ctx.ensure_no_live_run(&dir, args.break_lock)?;
    }
    let previous = previous(&ctx, &dir, args)?;

    let (client, view) = observe::cluster(&ctx).await?;
    let resumed = previous.filter(|_| args.resume);
    let versions = match &resumed {
        Some(st) => st.versions.clone(),
        None => recover::versions(&ctx.manifest, &observe::versions(&ctx, &view)),
    };
    if resumed.is_none() {
        refuse_unless_broken(&ctx, &view, p)?;
    }
    let plan = recover::build(&ctx.manifest, &ctx.playbook, &versions)?;
    if let Some(st) = &resumed
        && let Err(why) = recover::resumable(st, &plan)
    {
        return Err(WkError::input(
            format!(
                "cannot resume the recover run in `{}`: {why}",
                state_path(&dir).display()
            ),
            "check the cluster with `wkctl status`, then drop the run with `wkctl recover --discard` and start over",
        )
        .into());
    }
    if args.dry_run {
        print_plan(&plan, p, args.json)?;
        p.note("dry run: nothing was touched");
        return Ok(Outcome::Success);
    }
    if !args.yes_full_outage && !confirmed(&ctx, &plan, args.json, p).await? {
        p.note("nothing was changed");
        return Ok(Outcome::No);
    }

    let (lock, cluster_lock) = take_locks(&ctx, &dir, args, p)?;
    let members = upgrade::acquire_member_lock(&dir, &view, args.break_lock, args.resume, p)?;
    p.note(&format!(
        "full outage: stopping nodes {} of `{}`, then starting {} first",
        list(&plan.nodes.iter().rev().copied().collect::<Vec<_>>()),
        plan.cluster,
        plan.nodes.first().copied().unwrap_or_default()
    ));
    let state = resumed.unwrap_or_else(|| RecoverState::new(&ctx.manifest.name, versions));
    let reporter = Reporter::new(p, plan.nodes.len());
    let outcome = RecoverRun {
        ctx: &ctx,
        plan: &plan,
        client: client.clone(),
        reporter: &reporter,
        dir: dir.clone(),
        state,
        interrupt: Interrupt::install(),
        break_lock: args.break_lock,
    }
    .run()
    .await?;
    drop(members);
    drop(cluster_lock);
    drop(lock);
    if !args.json {
        report(&ctx, &client, &plan, outcome, p).await?;
    }
    Ok(outcome)
}

/// The unfinished recover run, refused while an upgrade run is unfinished, when there
/// is none to `--resume`, or when a new run would pass over it.
fn previous(
    ctx: &Context,
    dir: &StateDir,
    args: &RecoverArgs,
) -> anyhow::Result<Option<RecoverState>> {
    // One run at a time: an unfinished upgrade owns the cluster until it is resumed or
    // discarded (its nodes may be half way).
    if let Some(st) = dir.load()?.filter(|st| st.status.unfinished()) {
        return Err(WkError::no(
            format!(
                "an unfinished upgrade run of `{}` to {} exists",
                ctx.manifest.name, st.to
            ),
            "finish it with `wkctl upgrade --resume` or drop it with `wkctl upgrade --discard`, then recover",
        )
        .into());
    }
    let previous = load_state(dir)?.filter(|st| st.status.unfinished());
    match (&previous, args.resume) {
        (None, true) => {
            return Err(WkError::no(
                "no unfinished recover run to resume",
                "start one with `wkctl recover --yes-full-outage`",
            )
            .into());
        }
        (Some(st), false) if !args.dry_run => {
            return Err(WkError::no(
                format!(
                    "an unfinished recover run of `{}` exists (stopped at step {}, {:?})",
                    ctx.manifest.name,
                    st.cursor + 1,
                    st.status
                )
                .to_lowercase(),
                "continue it with `wkctl recover --resume`, or drop it with `wkctl recover --discard`",
            )
            .into());
        }
        _ => {}
    }
    Ok(previous)
}

/// A new recover run only for a cluster `check`'s observation shows broken (the reasons
/// are noted); a healthy one is refused.
fn refuse_unless_broken(ctx: &Context, view: &ClusterView, p: &Printer) -> anyhow::Result<()> {
    let findings = checks::live_findings(&ctx.manifest, view);
    let why = recover::broken_reasons(view, &findings);
    if why.is_empty() {
        return Err(WkError::no(
            format!(
                "the cluster `{}` is not broken (its nodes see each other, one controller, every manifest node a member): `recover` would stop every node for nothing",
                ctx.manifest.name
            ),
            "restart nodes one at a time, gated, with `wkctl restart`; `wkctl check` shows what wkctl sees",
        )
        .into());
    }
    for r in &why {
        p.note(&format!("broken: {r}"));
    }
    Ok(())
}

/// Without `--yes-full-outage`: the plan shown and the operator's answer on a terminal;
/// refused with `--json` or no terminal to ask on.
async fn confirmed(
    ctx: &Context,
    plan: &RecoverPlan,
    json: bool,
    p: &Printer,
) -> anyhow::Result<bool> {
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if !interactive || json {
        return Err(WkError::input(
            format!(
                "refusing a full outage without confirmation: every node of `{}` ({}) would be stopped",
                ctx.manifest.name,
                list(&plan.nodes)
            ),
            "review `wkctl recover --dry-run`, then pass `--yes-full-outage`",
        )
        .into());
    }
    print_plan(plan, p, false)?;
    let question = format!(
        "stop every node of `{}` ({}) for an ordered cold start? this is a FULL OUTAGE [y/N] ",
        plan.cluster,
        list(&plan.nodes)
    );
    Ok(confirm(&question).await)
}

/// The locks of `upgrade`: one run per cluster wherever it is started (the state
/// directory's, then the cluster's team lock).
fn take_locks(
    ctx: &Context,
    dir: &StateDir,
    args: &RecoverArgs,
    p: &Printer,
) -> anyhow::Result<(LockGuard, state::ClusterLock)> {
    ctx.ensure_no_live_run(dir, args.break_lock)?;
    let takeover = upgrade::takeover_for(ctx, dir, args.break_lock, args.resume);
    let lock = state::acquire(dir, takeover)?;
    let cluster_lock = upgrade::acquire_cluster_lock(ctx, dir, takeover)?;
    upgrade::report_takeovers(p, lock.took_over.as_ref(), &cluster_lock);
    Ok((lock, cluster_lock))
}

/// The human end of the run: on success the cluster as observed now and how many nodes
/// are in it; else where to go from here.
async fn report(
    ctx: &Context,
    client: &Client,
    plan: &RecoverPlan,
    outcome: Outcome,
    p: &Printer,
) -> anyhow::Result<()> {
    match outcome {
        Outcome::Success => {
            let view = crate::probe::observe(client, &ctx.manifest).await;
            p.out(&render::status(
                ctx,
                &view,
                &[],
                observe::run_doc(ctx).as_ref(),
                p,
            ))?;
            p.out(&p.green(&format!(
                "`{}` recovered: {} of {} nodes in one cluster",
                plan.cluster,
                view.membership.as_ref().map_or(0, Vec::len),
                plan.nodes.len()
            )))?;
        }
        _ => p.out(&p.red(
            "not recovered: the reason is above; state saved: fix the cause, then `wkctl recover --resume`",
        ))?,
    }
    Ok(())
}

fn print_plan(plan: &RecoverPlan, p: &Printer, json: bool) -> anyhow::Result<()> {
    if json {
        p.json_doc(plan)?;
        return Ok(());
    }
    let mut out = format!(
        "ordered cold start of `{}`: a FULL OUTAGE, every node is stopped ({})\n",
        plan.cluster,
        list(&plan.nodes)
    );
    for (i, s) in plan.steps.iter().enumerate() {
        let _ = writeln!(out, "  {}. {}", i + 1, s.what);
        if let Some(c) = &s.command {
            let _ = writeln!(out, "       $ {c}");
        }
    }
    p.out(out.trim_end())?;
    Ok(())
}

fn discard(dir: &StateDir, args: &RecoverArgs, p: &Printer) -> anyhow::Result<Outcome> {
    dir.ensure_no_live_run(args.break_lock)?;
    let path = state_path(dir);
    if !path.exists() {
        p.note("no recover run to discard");
        return Ok(Outcome::Success);
    }
    let kept = dir.root.join(format!("recover-{}.json", now_ms()));
    std::fs::rename(&path, &kept).map_err(|e| {
        WkError::no(
            format!("cannot move `{}` aside: {e}", path.display()),
            "check permissions",
        )
    })?;
    p.note(&format!(
        "discarded the recover run; its state is kept at `{}`",
        kept.display()
    ));
    Ok(Outcome::Success)
}
