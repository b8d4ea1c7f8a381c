//! `wkctl upgrade`: check → plan → confirm → execute (DESIGN §1, §6). `wkctl restart`
//! (issue 19) runs through here too, with a restart plan ([`PlanKind::Restart`]).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::cli::{Global, UpgradeArgs};
use crate::commands::{rule_options, target};
use crate::error::{Outcome, WkError};
use crate::execute::{Interrupt, Options, RunInputs, Runner};
use crate::finding::{self, FindingId};
use crate::inputs::{self, Context, manifest_dir};
use crate::observe;
use crate::output::{self, Printer, confirm};
use crate::plan::{Plan, PlanKind, PlanStepKind};
use crate::releases::{self, Target};
use crate::state::{self, NodeRun, NodeStatus, RunState, RunStatus, StateDir, Takeover};
use crate::version::WkVersion;
use crate::{events::Event, output::progress::Reporter};

pub async fn run(global: &Global, args: &UpgradeArgs, p: &Printer) -> anyhow::Result<Outcome> {
    Box::pin(run_kind(global, args, PlanKind::Upgrade, p)).await
}

/// An upgrade, or a restart (same state, lock, plan, executor and gate; its plan keeps
/// every node on its version).
#[allow(clippy::too_many_lines)]
pub async fn run_kind(
    global: &Global,
    args: &UpgradeArgs,
    kind: PlanKind,
    p: &Printer,
) -> anyhow::Result<Outcome> {
    let ctx = Context::load(global.manifest.as_deref())?;
    let dir = inputs::state_dir(
        global.manifest.as_deref(),
        args.state_dir.as_deref(),
        &ctx.manifest.name,
    );

    if args.discard {
        return discard(&dir, args, p);
    }

    // Never run without a place to save state (checked before reading it, so a file in
    // the way or a full disk is reported as such).
    if !args.dry_run {
        dir.ensure_writable()?;
    }
    let previous = dir.load()?;
    if !args.dry_run
        && let Some(r) = crate::recover::unfinished(&dir)?
    {
        return Err(WkError::no(
            format!(
                "an unfinished `wkctl recover` run of `{}` exists (stopped before step {} of its cold start)",
                ctx.manifest.name,
                r.cursor + 1
            ),
            "finish it with `wkctl recover --resume` or drop it with `wkctl recover --discard`, then run this again",
        )
        .into());
    }
    // An unfinished run is resumed by its own command only (issue 19).
    if let Some(st) = previous
        .as_ref()
        .filter(|st| args.resume && st.status.unfinished() && st.kind != kind)
    {
        return Err(WkError::no(
            format!(
                "the unfinished run of `{}` is {}, not {}: `wkctl {kind} --resume` cannot continue it",
                st.cluster,
                a_run(st.kind),
                a_run(kind)
            ),
            format!(
                "continue it with `wkctl {k} --resume`, or forget it with `wkctl {k} --discard`",
                k = st.kind
            ),
        )
        .into());
    }
    // `--plan FILE` (or resuming a run started from one): the target and rules are the plan's.
    let plan_run = super::apply_plan::load(args, kind, &dir, previous.as_ref(), p)?;
    let (target, rules) = match (&plan_run, kind) {
        (Some(pr), _) => (Some(pr.target.clone()), pr.rules),
        // A restart's target is each node's own version, read from the cluster.
        (None, PlanKind::Restart) => (None, rule_options(&args.target)),
        (None, PlanKind::Upgrade) => (
            Some(resolve_target(args, previous.as_ref())?),
            rule_options(&args.target),
        ),
    };
    // `--nodes` (clap refuses it with `--plan`: a reviewed plan is applied whole, with the
    // `--nodes` it was planned with).
    let only = match &plan_run {
        Some(pr) => pr.file.only_nodes.clone(),
        None => selected_nodes(args, previous.as_ref())?,
    };
    crate::plan::select::check_known(&ctx.manifest, &only)?;

    if args.dry_run {
        let (_, view) = observe::cluster(&ctx).await?;
        let mut plan = plan_for(&ctx, &view, target.as_ref(), rules, None)?;
        crate::plan::select::limit_to_nodes(&mut plan, &only);
        // A dry run must not promise what the real run would refuse (13.15).
        if let Some(st) = previous.as_ref().filter(|st| st.status.unfinished())
            && !args.resume
        {
            p.warn(
                &format!(
                    "{}: a real run would be refused",
                    unfinished(st)
                ),
                Some(&format!("continue it with `wkctl {k} --resume`, or forget it with `wkctl {k} --discard`", k = st.kind)),
            );
        }
        if args.json {
            p.json_doc(&plan)?;
        } else {
            crate::render::plan(&plan, p)?;
            p.note("dry run: nothing was changed");
        }
        return Ok(if plan.ok() {
            Outcome::Success
        } else {
            Outcome::No
        });
    }

    refuse_if_live_lock(&dir, args)?;
    match (&previous, args.resume) {
        (Some(st), false) if st.status.unfinished() => {
            return Err(WkError::no(
                unfinished(st),
                format!("continue it with `wkctl {k} --resume`, or forget it with `wkctl {k} --discard`", k = st.kind),
            )
            .into());
        }
        (None, true) => {
            return Err(WkError::no(
                "no unfinished run to resume",
                format!("start one with {}", start_cmd(kind)),
            )
            .into());
        }
        (Some(st), true) if !st.status.unfinished() => {
            return Err(WkError::no(
                format!("the last run to {} completed; nothing to resume", st.to),
                format!("start a new one with {}", start_cmd(kind)),
            )
            .into());
        }
        _ => {}
    }
    let resume_state = if args.resume { previous.clone() } else { None };
    if let Some(st) = &resume_state {
        check_drift(st, &ctx, &dir)?;
    }

    let takeover = if args.break_lock {
        Takeover::Force
    } else if args.resume {
        Takeover::Stale
    } else {
        Takeover::Never
    };
    let lock = state::acquire(&dir, takeover)?;
    if let Some(o) = &lock.took_over {
        p.warn(
            &format!("took over the lock of pid {} on `{}`", o.pid, o.host),
            None,
        );
    }
    // One run per cluster, wherever it is started: a per-user lock keyed by the cluster's
    // identity (name + API URLs), not by the directory the manifest is in.
    let cluster_lock = acquire_cluster_lock(&ctx, &dir, takeover)?;

    // Live check and plan.
    let (client, view) = observe::cluster(&ctx).await?;
    let versions = resume_state
        .as_ref()
        .map(|st| resume_versions(st, &ctx, &view));
    let mut plan = match &plan_run {
        Some(pr) => pr.plan(&ctx, &view, p)?,
        None => plan_for(&ctx, &view, target.as_ref(), rules, versions.as_ref())?,
    };
    if let Some(st) = &resume_state {
        relax_for_resume(&mut plan, st, &view);
    }
    crate::plan::select::limit_to_nodes(&mut plan, &only);
    // Not on `--resume`: there, nodes the run upgraded are re-verified with the full gate.
    if let Some(st) = previous
        .as_ref()
        .filter(|_| !args.resume && plan_run.is_none() && kind.is_upgrade())
    {
        skip_proven_dev_builds(&mut plan, st, &view);
    }
    let notifier = crate::notify::Notifier::from_manifest(
        &ctx.manifest.name,
        ctx.manifest.notify.as_ref(),
        global.notify.as_deref(),
        &manifest_dir(&ctx.manifest.path),
    )?;
    let mut reporter = Reporter::new(p, plan.nodes.len()).with_notifier(notifier);
    reporter.emit(&Event::CheckFinished {
        ok: plan.ok(),
        findings: plan.findings.clone(),
    });
    if !plan.ok() {
        if !args.json {
            p.out(p.findings(&plan.findings).trim_end())?;
            p.out(&p.red(&format!(
                "refused: the pre-{kind} check found blocking problems; nothing was changed"
            )))?;
        }
        return Ok(Outcome::No);
    }
    if plan.upgrades().count() == 0 && resume_state.is_none() {
        p.note(&match kind {
            PlanKind::Upgrade => format!("every node already runs {}; nothing to do", plan.to),
            PlanKind::Restart => "no node to restart; nothing to do".to_string(),
        });
        return Ok(Outcome::Success);
    }

    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if !args.yes {
        // With `--json` stdout is for a program: no question is asked there (13.14).
        if !interactive || args.json {
            let why = if args.json {
                "`--json` asks no questions"
            } else {
                "no terminal to ask on"
            };
            return Err(WkError::input(
                format!("refusing to {kind} without confirmation: {why}"),
                match kind {
                    PlanKind::Upgrade => "review `wkctl plan`, then pass `--yes`",
                    PlanKind::Restart => "review `wkctl restart --dry-run`, then pass `--yes`",
                },
            )
            .into());
        }
        crate::render::plan(&plan, p)?;
        let question = match kind {
            PlanKind::Upgrade => format!(
                "upgrade {} node(s) of `{}` to {}? [y/N] ",
                plan.upgrades().count(),
                plan.cluster,
                plan.to
            ),
            PlanKind::Restart => format!(
                "restart {} node(s) of `{}`, one at a time? [y/N] ",
                plan.upgrades().count(),
                plan.cluster
            ),
        };
        if !reporter.suspend_for(confirm(&question)).await {
            p.note("nothing was changed");
            return Ok(Outcome::No);
        }
    }

    let state = if let Some(mut st) = resume_state {
        st.plan_digest.clone_from(&plan.digest);
        st
    } else {
        snapshot_inputs(&ctx, &dir)?;
        let mut st = RunState {
            only_nodes: only.clone(),
            ..new_state(&plan, &ctx)
        };
        if let Some(pr) = &plan_run {
            pr.record(&dir, &mut st)?;
        }
        st
    };
    reporter.emit(&Event::RunStarted {
        kind,
        cluster: plan.cluster.clone(),
        to: plan.to.to_string(),
        nodes: plan.upgrades().map(|n| n.id).collect(),
        resume: args.resume,
        plan_digest: plan.digest.clone(),
    });
    let interrupt = Interrupt::install();
    let opts = Options {
        yes: args.yes,
        rollback_on_failure: args.rollback_on_failure,
        resume: args.resume,
        interactive,
        break_lock: args.break_lock,
    };
    let runner = Runner::new(RunInputs {
        ctx: &ctx,
        plan: &plan,
        client,
        reporter: &reporter,
        dir: dir.clone(),
        state,
        interrupt,
        opts,
    });
    let outcome = runner.run().await?;
    // The run's record in `history/` (who, when, from → to, per node), whatever its end.
    if let Ok(Some(st)) = dir.load()
        && let Err(e) = dir.archive_run(&st)
    {
        p.warn(
            &format!("could not record the run in the history: {e}"),
            None,
        );
    }
    drop(cluster_lock);
    drop(lock);
    if !args.json {
        // A closed stdout (the ssh session and its `| tee` gone) must not turn the run's
        // outcome into a broken-pipe success.
        let _ = print_summary(&dir, &plan, outcome, args.demo, p);
    }
    // Notifications never change the outcome: failed deliveries are only reported.
    if let Some(report) = reporter.finish_notifications().await {
        for line in report.lines() {
            p.warn(&line, None);
        }
    }
    Ok(outcome)
}

/// `--discard`: moves the unfinished run's state aside, even an unreadable one (whose
/// own error points here).
fn discard(dir: &StateDir, args: &UpgradeArgs, p: &Printer) -> anyhow::Result<Outcome> {
    refuse_if_live_lock(dir, args)?;
    if !dir.has_state() {
        p.note("no unfinished run to discard");
        return Ok(Outcome::Success);
    }
    let readable = dir.load().is_ok();
    let kept = dir.archive().map_err(|e| {
        WkError::no(
            format!("cannot move the state aside: {e}"),
            "check permissions",
        )
    })?;
    let what = if readable {
        "the unfinished run"
    } else {
        "the unreadable state file"
    };
    p.note(&format!(
        "discarded {what}; its state is kept at `{}`",
        kept.display()
    ));
    Ok(Outcome::Success)
}

/// A run in progress (the lock held by a live process) is named first: the unfinished
/// state is then that run's own, not one to `--resume` or `--discard`.
fn refuse_if_live_lock(dir: &StateDir, args: &UpgradeArgs) -> anyhow::Result<()> {
    refuse_if_live_lock_pub(dir, args.break_lock)
}

/// [`refuse_if_live_lock`] for the other commands that take the run's lock.
pub fn refuse_if_live_lock_pub(dir: &StateDir, break_lock: bool) -> anyhow::Result<()> {
    if break_lock {
        return Ok(());
    }
    let Some(owner) = state::lock_owner(dir) else {
        return Ok(());
    };
    if owner.is_stale() {
        return Ok(());
    }
    Err(WkError::no(
        format!(
            "another wkctl run holds the cluster lock (pid {} on host `{}`)",
            owner.pid, owner.host
        ),
        format!(
            "wait for it to finish; if you are sure it is gone, pass `--break-lock` (lock file `{}`)",
            dir.lock_path().display()
        ),
    )
    .into())
}

/// The per-user lock directory of this cluster (see [`state::cluster_identity`]).
/// The cluster's team lock, owned by this process and naming `dir`: one run per cluster
/// wherever it is started (`upgrade`, `restart`, `rollback` and `recover` share it).
pub fn acquire_cluster_lock(
    ctx: &Context,
    dir: &StateDir,
    takeover: state::Takeover,
) -> Result<state::LockGuard, WkError> {
    state::acquire_as(
        &ctx.cluster_lock_dir()?,
        takeover,
        state::LockOwner {
            state_dir: Some(dir.root.display().to_string()),
            ..state::LockOwner::me()
        },
    )
}

fn resolve_target(args: &UpgradeArgs, previous: Option<&RunState>) -> anyhow::Result<Target> {
    match (args.resume, previous, &args.target.to) {
        // After `--discard` (or before any run): said plainly, before asking for `--to`.
        (true, None, _) => Err(WkError::no(
            "no unfinished run to resume",
            "start one with `wkctl upgrade --to <VERSION>`",
        )
        .into()),
        (true, Some(st), None) => Ok(releases::resolve_target(&st.to, true)
            .map_err(|e| WkError::input(e.message, e.hint))?),
        (true, Some(st), Some(_)) => {
            let t = target(&args.target)?;
            if t.version.to_string() != st.to {
                return Err(WkError::no(
                    format!("the unfinished run goes to {}, not {}", st.to, t.version),
                    "resume without `--to`, or `--discard` the run first",
                )
                .into());
            }
            Ok(t)
        }
        _ => Ok(target(&args.target)?),
    }
}

/// The plan of this kind for one observation.
fn plan_for(
    ctx: &Context,
    view: &crate::probe::ClusterView,
    target: Option<&Target>,
    rules: crate::releases::RuleOptions,
    versions: Option<&BTreeMap<u64, Option<WkVersion>>>,
) -> anyhow::Result<Plan> {
    match target {
        Some(t) => observe::plan_from_view(ctx, view, t, rules, versions),
        None => observe::restart_plan_from_view(ctx, view, versions),
    }
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
fn unfinished(st: &RunState) -> String {
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

/// Copies the manifest and playbook as they were when the run started, so `--resume`
/// can show exactly what changed.
fn snapshot_inputs(ctx: &Context, dir: &StateDir) -> anyhow::Result<()> {
    let text = std::fs::read(&ctx.manifest.path).unwrap_or_default();
    state::write_atomic(&dir.root.join("manifest.snapshot.yaml"), &text).map_err(|e| {
        WkError::no(
            format!("cannot save the manifest snapshot: {e}"),
            "free disk space",
        )
    })?;
    let pb = serde_json::to_vec_pretty(&ctx.playbook).unwrap_or_default();
    state::write_atomic(&dir.root.join("playbook.snapshot.json"), &pb).map_err(|e| {
        WkError::no(
            format!("cannot save the playbook snapshot: {e}"),
            "free disk space",
        )
    })?;
    Ok(())
}

/// `--resume` refuses when the manifest or playbook changed since the run started.
fn check_drift(st: &RunState, ctx: &Context, dir: &StateDir) -> anyhow::Result<()> {
    let mut diffs = Vec::new();
    if st.manifest_digest != ctx.manifest.digest {
        let old =
            std::fs::read_to_string(dir.root.join("manifest.snapshot.yaml")).unwrap_or_default();
        let new = std::fs::read_to_string(&ctx.manifest.path).unwrap_or_default();
        diffs.push(format!(
            "manifest `{}` changed:\n{}",
            ctx.manifest.path.display(),
            crate::planfile::line_diff(&old, &new)
        ));
    }
    if st.playbook_digest != ctx.playbook.digest {
        let old =
            std::fs::read_to_string(dir.root.join("playbook.snapshot.json")).unwrap_or_default();
        let new = serde_json::to_string_pretty(&ctx.playbook).unwrap_or_default();
        diffs.push(format!(
            "playbook `{}` changed:\n{}",
            ctx.playbook.name,
            crate::planfile::line_diff(&old, &new)
        ));
    }
    if diffs.is_empty() {
        return Ok(());
    }
    Err(WkError::no(
        format!(
            "refusing to resume: the inputs changed since the run started\n{}",
            diffs.join("\n")
        ),
        format!(
            "restore the files, or `wkctl {} --discard` and plan again",
            st.kind
        ),
    )
    .into())
}

/// On resume, plan with each node's version from before the run, so upgraded and
/// interrupted nodes keep their place (and are re-verified rather than skipped blindly).
pub fn resume_versions(
    st: &RunState,
    ctx: &Context,
    view: &crate::probe::ClusterView,
) -> BTreeMap<u64, Option<WkVersion>> {
    crate::plan::resume::versions(&progress(&st.nodes), observe::versions(ctx, view))
}

/// The run state's node records as the resume policy reads them.
fn progress(nodes: &[crate::state::NodeRun]) -> Vec<crate::plan::resume::NodeProgress> {
    nodes.iter().map(Into::into).collect()
}

/// The resume policy (`plan::resume::relax`) with the nodes observed down now.
fn relax_for_resume(plan: &mut Plan, st: &RunState, view: &crate::probe::ClusterView) {
    let down = view
        .nodes
        .iter()
        .filter(|n| crate::gate::is_down(n))
        .map(|n| n.id)
        .collect();
    crate::plan::resume::relax(&mut plan.findings, &progress(&st.nodes), &down);
}

/// A `-dev` image reports the release it builds on (facts §7.4), so the plan sees every
/// node as "to upgrade" again. A node an earlier run to the same `-dev` target proved
/// (its gate passed on a new commit) and that still runs that commit is skipped: a
/// re-run restarts nothing.
fn skip_proven_dev_builds(plan: &mut Plan, st: &RunState, view: &crate::probe::ClusterView) {
    if !plan.to.is_dev() || st.to != plan.to.to_string() {
        return;
    }
    let mut changed = false;
    for pn in &mut plan.nodes {
        let proven = st
            .node(pn.id)
            .filter(|n| n.status == NodeStatus::Ready)
            .and_then(|n| n.proven_commit.as_deref());
        let now = view.node(pn.id).and_then(|n| n.commit.as_deref());
        if pn.action == releases::NodeAction::Upgrade && proven.is_some() && proven == now {
            pn.action = releases::NodeAction::Skip;
            pn.steps.clear();
            pn.on_failure.clear();
            plan.findings.push(crate::finding::Finding::info(
                FindingId::VersionSame,
                Some(pn.id),
                format!(
                    "node {} runs the {} build proven by the earlier run (commit {}); it is skipped",
                    pn.id,
                    plan.to,
                    now.unwrap_or_default()
                ),
                "nothing to do for this node",
            ));
            changed = true;
        }
    }
    if changed {
        finding::sort(&mut plan.findings);
        plan.redigest();
    }
}

fn new_state(plan: &Plan, ctx: &Context) -> RunState {
    RunState {
        format_version: state::STATE_FORMAT,
        kind: plan.kind,
        cluster: plan.cluster.clone(),
        to: plan.to.to_string(),
        plan_digest: plan.digest.clone(),
        manifest_digest: ctx.manifest.digest.clone(),
        playbook_digest: ctx.playbook.digest.clone(),
        playbook: ctx.playbook.name.clone(),
        status: RunStatus::Running,
        started_at_ms: state::now_ms(),
        updated_at_ms: state::now_ms(),
        nodes: plan
            .nodes
            .iter()
            .map(|n| NodeRun::new(n.id, n.from.clone()))
            .collect(),
        plan_file: None,
        only_nodes: Vec::new(),
    }
}

/// `--nodes`, or on `--resume` the limit the run started with (a different one is refused).
fn selected_nodes(args: &UpgradeArgs, previous: Option<&RunState>) -> anyhow::Result<Vec<u64>> {
    let mut asked = args.nodes.clone();
    asked.sort_unstable();
    asked.dedup();
    match previous.filter(|st| args.resume && st.status.unfinished()) {
        Some(st) if asked.is_empty() => Ok(st.only_nodes.clone()),
        Some(st) if asked != st.only_nodes => Err(WkError::input(
            format!(
                "the unfinished run was started with {}, not `--nodes {}`",
                if st.only_nodes.is_empty() {
                    "every node".to_string()
                } else {
                    format!(
                        "`--nodes {}`",
                        st.only_nodes
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(",")
                    )
                },
                asked
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            "resume without `--nodes` (the run keeps its own), or `--discard` it first",
        )
        .into()),
        _ => Ok(asked),
    }
}

/// The final human summary on stdout: per node old → new, time taken, and the total.
fn print_summary(
    dir: &StateDir,
    plan: &Plan,
    outcome: Outcome,
    demo: bool,
    p: &Printer,
) -> std::io::Result<()> {
    let st = dir.load().ok().flatten();
    let mut rows = Vec::new();
    let mut total = 0u64;
    for pn in &plan.nodes {
        let n = st.as_ref().and_then(|s| s.node(pn.id));
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
    p.out(output::table(&["NODE", "FROM", "TO", "RESULT", "TIME"], &rows).trim_end())?;
    let kind = plan.kind;
    let verdict = match outcome {
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
        Outcome::No => {
            // The failed node: what to look at and both ways out (13.10).
            let failed = st
                .as_ref()
                .and_then(|s| s.nodes.iter().find(|n| n.status == NodeStatus::Failed));
            let next = match failed {
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
            };
            p.red(&format!(
                "{kind} stopped: state saved in `{}`; {next}",
                rel(&dir.state_path())
            ))
        }
        Outcome::Interrupted => p.yellow(&format!(
            "interrupted: state saved in `{}`; continue with `wkctl {kind} --resume`",
            rel(&dir.state_path())
        )),
    };
    p.out(&verdict)
}

fn rel(path: &Path) -> String {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    path.strip_prefix(&cwd)
        .unwrap_or(path)
        .display()
        .to_string()
}
