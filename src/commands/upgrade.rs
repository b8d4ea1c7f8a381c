//! `wkctl upgrade`: check → plan → confirm → execute (DESIGN §1, §6). `wkctl restart`
//! (issue 19) runs through here too, with a restart plan ([`PlanKind::Restart`]).
//!
//! This file is the command's flow, one named phase after the other; what the phases
//! decide is beside it: the refusals (`refuse`), the scope of the run (`scope`), the
//! resume glue (`resume`) and the final summary (`summary`).

mod refuse;
mod resume;
mod scope;
mod summary;

pub(crate) use resume::resume_versions;

use std::collections::BTreeMap;
use std::io::IsTerminal;

use crate::cli::{Global, UpgradeArgs};
use crate::error::{Outcome, WkError};
use crate::execute::{Interrupt, Options, RunInputs, Runner};
use crate::inputs::{self, Context, manifest_dir};
use crate::observe;
use crate::output::{Printer, confirm};
use crate::plan::{Plan, PlanKind};
use crate::probe::{Client, ClusterView};
use crate::releases::Target;
use crate::state::{self, LockGuard, RunState, StateDir, Takeover};
use crate::version::WkVersion;
use crate::{events::Event, output::progress::Reporter};
use scope::Scope;

pub async fn run(global: &Global, args: &UpgradeArgs, p: &Printer) -> anyhow::Result<Outcome> {
    Box::pin(run_kind(global, args, PlanKind::Upgrade, p)).await
}

/// An upgrade, or a restart (same state, lock, plan, executor and gate; its plan keeps
/// every node on its version).
pub async fn run_kind(
    global: &Global,
    args: &UpgradeArgs,
    kind: PlanKind,
    p: &Printer,
) -> anyhow::Result<Outcome> {
    let (ctx, dir) =
        inputs::load_with_state(global.manifest.as_deref(), args.state_dir.as_deref())?;
    if args.discard {
        return discard(&dir, args, p);
    }
    let flow = Flow {
        ctx: &ctx,
        dir: &dir,
        args,
        kind,
        p,
    };
    let previous = flow.previous()?;
    let scope = Scope::resolve(&ctx, &dir, args, kind, previous.as_ref(), p)?;
    if args.dry_run {
        return flow.dry_run(&scope, previous.as_ref()).await;
    }

    refuse::resume_mismatch(previous.as_ref(), args.resume, kind)?;
    let resumed = if args.resume { previous.clone() } else { None };
    if let Some(st) = &resumed {
        resume::check_drift(st, &ctx, &dir)?;
    }
    let locks = flow.take_locks()?;

    // Live check and plan.
    let (client, view) = observe::cluster(&ctx).await?;
    let members = acquire_member_lock(&dir, &view, args.break_lock, args.resume, p)?;
    let plan = flow.live_plan(&view, &scope, previous.as_ref())?;
    let mut reporter = flow.reporter(global, &plan)?;
    if let Some(outcome) = flow.nothing_to_run(&plan, resumed.is_some())? {
        return Ok(outcome);
    }
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if !args.yes && !flow.confirmed(&plan, interactive, &reporter).await? {
        return Ok(Outcome::No);
    }

    let state = flow.starting_state(resumed, &plan, &scope)?;
    let outcome = flow
        .execute(&plan, client, &reporter, state, interactive)
        .await?;
    flow.record_history();
    drop(members);
    drop(locks);
    if !args.json {
        // A closed stdout (the ssh session and its `| tee` gone) must not turn the run's
        // outcome into a broken-pipe success.
        let _ = summary::print(&dir, &plan, outcome, args.demo, p);
    }
    // Notifications never change the outcome: failed deliveries are only reported.
    if let Some(report) = reporter.finish_notifications().await {
        for line in report.lines() {
            p.warn(&line, None);
        }
    }
    Ok(outcome)
}

/// What every phase of one run reads: the inputs, the state directory, the arguments.
struct Flow<'a> {
    ctx: &'a Context,
    dir: &'a StateDir,
    args: &'a UpgradeArgs,
    kind: PlanKind,
    p: &'a Printer,
}

/// The run's two locks, held until it ends. The cluster's team lock is released first
/// (fields drop in declaration order).
struct Locks {
    _cluster: state::ClusterLock,
    _dir: LockGuard,
}

impl Flow<'_> {
    /// The previous run's state, refused while another run holds the lock, or when it
    /// cannot be resumed by this command (an unfinished `recover`, or an unfinished run of
    /// the other kind on `--resume`).
    /// Never run without a place to save state (checked before reading it, so a file in
    /// the way or a full disk is reported as such).
    fn previous(&self) -> anyhow::Result<Option<RunState>> {
        let args = self.args;
        if !args.dry_run {
            self.dir.ensure_writable()?;
            // A run in progress is named before anything else (`ensure_no_live_run`): its
            // unfinished state is its own, not one of the wrong kind or one to resume.
            // Wherever it was started: the cluster's per-user lock too.
            self.ctx.ensure_no_live_run(self.dir, args.break_lock)?;
        }
        let previous = self.dir.load()?;
        if !args.dry_run
            && let Some(r) = crate::recover::unfinished(self.dir)?
        {
            return Err(refuse::recover_unfinished(&self.ctx.manifest.name, r.cursor).into());
        }
        // An unfinished run is resumed by its own command only (issue 19).
        if let Some(st) = previous
            .as_ref()
            .filter(|st| args.resume && st.status.unfinished() && st.kind != self.kind)
        {
            return Err(refuse::other_kind(st, self.kind).into());
        }
        Ok(previous)
    }

    /// `--dry-run`: the plan, from one observation, and nothing changed.
    async fn dry_run(&self, scope: &Scope, previous: Option<&RunState>) -> anyhow::Result<Outcome> {
        let p = self.p;
        let (_, view) = observe::cluster(self.ctx).await?;
        let mut plan = plan_for(self.ctx, &view, scope.target.as_ref(), scope.rules, None)?;
        crate::plan::select::limit_to_nodes(&mut plan, &scope.only);
        // A dry run must not promise what the real run would refuse (13.15).
        if let Some(st) = previous.filter(|st| st.status.unfinished())
            && !self.args.resume
        {
            p.warn(
                &format!("{}: a real run would be refused", refuse::unfinished(st)),
                Some(&refuse::continue_or_discard(st.kind)),
            );
        }
        if self.args.json {
            p.json_doc(&plan)?;
        } else {
            crate::render::plan(&plan, p)?;
            p.note("dry run: nothing was changed");
        }
        Ok(if plan.ok() {
            Outcome::Success
        } else {
            Outcome::No
        })
    }

    /// The state directory's lock, then the cluster's team lock.
    fn take_locks(&self) -> anyhow::Result<Locks> {
        let takeover = takeover_for(self.ctx, self.dir, self.args.break_lock, self.args.resume);
        let lock = state::acquire(self.dir, takeover)?;
        // One run per cluster, wherever it is started: per-user locks keyed by the nodes'
        // addresses (`state::cluster_lock_keys`), not by the directory the manifest is in.
        let cluster = acquire_cluster_lock(self.ctx, self.dir, takeover)?;
        report_takeovers(self.p, lock.took_over.as_ref(), &cluster);
        Ok(Locks {
            _cluster: cluster,
            _dir: lock,
        })
    }

    /// The plan from the live observation: the plan file's or a new one; on `--resume`
    /// planned from each node's version before the run and relaxed for the interrupted
    /// node; limited to `--nodes`.
    fn live_plan(
        &self,
        view: &ClusterView,
        scope: &Scope,
        previous: Option<&RunState>,
    ) -> anyhow::Result<Plan> {
        let (ctx, args) = (self.ctx, self.args);
        let resumed = previous.filter(|_| args.resume);
        let versions = resumed.map(|st| resume_versions(st, ctx, view));
        let mut plan = match &scope.plan_run {
            Some(pr) => pr.plan(ctx, view, self.p)?,
            None => plan_for(
                ctx,
                view,
                scope.target.as_ref(),
                scope.rules,
                versions.as_ref(),
            )?,
        };
        if let Some(st) = resumed {
            resume::relax_for_resume(&mut plan, st, view);
        }
        crate::plan::select::limit_to_nodes(&mut plan, &scope.only);
        // Not on `--resume`: there, nodes the run upgraded are re-verified with the full gate.
        if let Some(st) =
            previous.filter(|_| !args.resume && scope.plan_run.is_none() && self.kind.is_upgrade())
        {
            resume::skip_proven_dev_builds(&mut plan, st, view);
        }
        Ok(plan)
    }

    /// The run's reporter (with the manifest's notifier), the check's verdict emitted.
    fn reporter(&self, global: &Global, plan: &Plan) -> anyhow::Result<Reporter> {
        let ctx = self.ctx;
        let notifier = crate::notify::Notifier::from_manifest(
            &ctx.manifest.name,
            ctx.manifest.notify.as_ref(),
            global.notify.as_deref(),
            &manifest_dir(&ctx.manifest.path),
        )?;
        let reporter = Reporter::new(self.p, plan.nodes.len()).with_notifier(notifier);
        reporter.emit(&Event::CheckFinished {
            ok: plan.ok(),
            findings: plan.findings.clone(),
        });
        Ok(reporter)
    }

    /// `Some(outcome)` when the run ends before it starts: the check blocks, or (on a new
    /// run) no node has anything to do.
    fn nothing_to_run(&self, plan: &Plan, resuming: bool) -> anyhow::Result<Option<Outcome>> {
        let (p, kind) = (self.p, self.kind);
        if !plan.ok() {
            if !self.args.json {
                p.out(p.findings(&plan.findings).trim_end())?;
                p.out(&p.red(&format!(
                    "refused: the pre-{kind} check found blocking problems; nothing was changed"
                )))?;
            }
            return Ok(Some(Outcome::No));
        }
        if plan.upgrades().count() == 0 && !resuming {
            p.note(&match kind {
                PlanKind::Upgrade => format!("every node already runs {}; nothing to do", plan.to),
                PlanKind::Restart => "no node to restart; nothing to do".to_string(),
            });
            return Ok(Some(Outcome::Success));
        }
        Ok(None)
    }

    /// Without `--yes`: the plan shown and the operator's answer on a terminal (`false`:
    /// nothing was changed). With `--json`, or no terminal, it is refused.
    async fn confirmed(
        &self,
        plan: &Plan,
        interactive: bool,
        reporter: &Reporter,
    ) -> anyhow::Result<bool> {
        let (p, kind) = (self.p, self.kind);
        // With `--json` stdout is for a program: no question is asked there (13.14).
        if !interactive || self.args.json {
            let why = if self.args.json {
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
        crate::render::plan(plan, p)?;
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
            return Ok(false);
        }
        Ok(true)
    }

    /// The state the executor starts from: the resumed run's (on the plan just made), or
    /// a new one (its inputs snapshotted, its plan file recorded).
    fn starting_state(
        &self,
        resumed: Option<RunState>,
        plan: &Plan,
        scope: &Scope,
    ) -> anyhow::Result<RunState> {
        if let Some(mut st) = resumed {
            st.plan_digest.clone_from(&plan.digest);
            return Ok(st);
        }
        resume::snapshot_inputs(self.ctx, self.dir)?;
        let mut st = RunState {
            only_nodes: scope.only.clone(),
            ..RunState::new(plan, resume::started_from(self.ctx))
        };
        if let Some(pr) = &scope.plan_run {
            pr.record(self.dir, &mut st)?;
        }
        Ok(st)
    }

    /// Announces the run and hands it to the executor.
    async fn execute(
        &self,
        plan: &Plan,
        client: Client,
        reporter: &Reporter,
        state: RunState,
        interactive: bool,
    ) -> anyhow::Result<Outcome> {
        let args = self.args;
        reporter.emit(&Event::RunStarted {
            kind: self.kind,
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
            ctx: self.ctx,
            plan,
            client,
            reporter,
            dir: self.dir.clone(),
            state,
            interrupt,
            opts,
        });
        runner.run().await
    }

    /// The run's record in `history/` (who, when, from → to, per node), whatever its end.
    fn record_history(&self) {
        if let Ok(Some(st)) = self.dir.load()
            && let Err(e) = self.dir.archive_run(&st)
        {
            self.p.warn(
                &format!("could not record the run in the history: {e}"),
                None,
            );
        }
    }
}

/// How far a command that takes the run's locks may go with an existing one:
/// `--break-lock` takes any, `--resume` a stale one (its process gone), else none.
pub(crate) fn takeover(break_lock: bool, resume: bool) -> Takeover {
    if break_lock {
        Takeover::Force
    } else if resume {
        Takeover::Stale
    } else {
        Takeover::Never
    }
}

/// [`takeover`] for a run started in `dir`, where a plain run (neither `--resume` nor
/// `--break-lock`) may also take stale locks whose gone runs left nothing to resume: a run
/// killed after taking its locks and before its first state save (in the live check or at
/// the confirmation) changed nothing, and must not leave every run a dead end between
/// "continue it with `--resume`" and "no unfinished run to resume" but `--break-lock`
/// (which takes live locks too). Each stale cluster lock must name its run's state
/// directory (older locks do not: they still need `--resume` or `--break-lock`), and that
/// directory, like `dir`, must hold no unfinished upgrade, restart or recover run.
pub(crate) fn takeover_for(
    ctx: &Context,
    dir: &StateDir,
    break_lock: bool,
    resume: bool,
) -> Takeover {
    takeover_of(&ctx.cluster_lock_locations(), dir, break_lock, resume)
}

/// [`takeover_for`] of the locks in `locks`.
fn takeover_of(locks: &[StateDir], dir: &StateDir, break_lock: bool, resume: bool) -> Takeover {
    let t = takeover(break_lock, resume);
    if t != Takeover::Never || !left_nothing(dir) {
        return t;
    }
    let gone_left_nothing = locks
        .iter()
        .filter_map(state::lock_owner)
        .filter(state::LockOwner::is_stale)
        .all(|o| gone_run_left_nothing(&o));
    if gone_left_nothing {
        Takeover::Stale
    } else {
        Takeover::Never
    }
}

/// The gone run of a stale cluster lock `o` provably left nothing to resume: its lock
/// names its state directory by an absolute path (a relative one would be read against
/// this run's working directory), that directory exists and still holds the gone run's
/// own lock (so it is the directory that run used, not an unmounted volume's empty mount
/// point or a directory made since), and it holds no unfinished run.
fn gone_run_left_nothing(o: &state::LockOwner) -> bool {
    let Some(root) = o.state_dir.as_deref().map(std::path::PathBuf::from) else {
        return false;
    };
    if !root.is_absolute() || !root.is_dir() {
        return false;
    }
    let dir = StateDir { root };
    let its_own = state::lock_owner(&dir).is_some_and(|d| d.pid == o.pid && d.host == o.host);
    its_own && left_nothing(&dir)
}

/// Where a run's locks say its state lives: an absolute path (the state directory may
/// be given relative to the working directory), so any other run can find it.
pub(crate) fn recorded_state_dir(dir: &StateDir) -> String {
    std::path::absolute(&dir.root)
        .unwrap_or_else(|_| dir.root.clone())
        .display()
        .to_string()
}

/// `dir` holds no unfinished run (none, a finished one); an unreadable state is not
/// "nothing".
fn left_nothing(dir: &StateDir) -> bool {
    let run = match dir.load() {
        Ok(None) => true,
        Ok(Some(st)) => !st.status.unfinished(),
        Err(_) => false,
    };
    run && matches!(crate::recover::unfinished(dir), Ok(None))
}

/// `--discard`: moves the unfinished run's state aside, even an unreadable one (whose
/// own error points here).
fn discard(dir: &StateDir, args: &UpgradeArgs, p: &Printer) -> anyhow::Result<Outcome> {
    dir.ensure_no_live_run(args.break_lock)?;
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

/// The cluster's team locks (the per-user lock of each of [`state::cluster_lock_keys`]),
/// owned by this process and naming `dir`: one run per cluster wherever it is started and
/// however its manifest spells the nodes (`upgrade`, `restart`, `rollback` and `recover`
/// share them).
pub(crate) fn acquire_cluster_lock(
    ctx: &Context,
    dir: &StateDir,
    takeover: state::Takeover,
) -> Result<state::ClusterLock, WkError> {
    state::acquire_cluster(
        &ctx.cluster_lock_dirs()?,
        takeover,
        &state::LockOwner {
            state_dir: Some(recorded_state_dir(dir)),
            ..state::LockOwner::me()
        },
    )
}

/// The cluster's own lock of its members ([`state::member_lock_keys`]: each member's id
/// and cluster address as `/cluster/nodes` reports them), taken once the cluster answered
/// and before anything is planned or asked: a second run that reaches the same nodes by
/// other addresses (a tunnel, a proxy) passes the address locks, and is refused here.
/// Nothing when no member reported its address (the address locks still hold).
pub(crate) fn acquire_member_lock(
    dir: &StateDir,
    view: &ClusterView,
    break_lock: bool,
    resume: bool,
    p: &Printer,
) -> Result<state::ClusterLock, WkError> {
    let members: Vec<(u64, &str)> = view
        .nodes
        .iter()
        .filter_map(|n| Some((n.id, n.cluster_addr.as_deref()?)))
        .collect();
    let keys = state::member_lock_keys(&members);
    let takeover = takeover_of(&state::lock_locations(&keys), dir, break_lock, resume);
    let lock = state::acquire_cluster(
        &state::lock_dirs(&keys)?,
        takeover,
        &state::LockOwner {
            state_dir: Some(recorded_state_dir(dir)),
            ..state::LockOwner::me()
        },
    )?;
    report_takeovers(p, None, &lock);
    Ok(lock)
}

/// Names every gone or foreign run whose lock this run took over, each once: the state
/// directory's (`dir_lock`) and the cluster's (nothing the tool does is hidden).
pub(crate) fn report_takeovers(
    p: &Printer,
    dir_lock: Option<&state::LockOwner>,
    cluster: &state::ClusterLock,
) {
    // One run's locks differ only in the state directory they name.
    let mut seen: Vec<(u32, &str)> = Vec::new();
    for o in cluster.took_over.iter().chain(dir_lock) {
        if seen.contains(&(o.pid, o.host.as_str())) {
            continue;
        }
        seen.push((o.pid, o.host.as_str()));
        let from = o
            .state_dir
            .as_deref()
            .map(|d| format!(" (its state in `{d}`)"))
            .unwrap_or_default();
        p.warn(
            &format!("took over the lock of pid {} on `{}`{from}", o.pid, o.host),
            None,
        );
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
