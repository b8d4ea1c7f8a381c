//! What a run covers, resolved before anything is observed: its target and rules (from
//! `--to`, a reviewed plan file, or the unfinished run), and its `--nodes`.

use crate::cli::UpgradeArgs;
use crate::commands::apply_plan::{self, PlanRun};
use crate::commands::{rule_options, target};
use crate::error::WkError;
use crate::inputs::Context;
use crate::output::Printer;
use crate::plan::PlanKind;
use crate::releases::{self, RuleOptions, Target};
use crate::state::{RunState, StateDir};

/// The run's scope, from the arguments and the unfinished run.
pub(super) struct Scope {
    /// `--plan FILE` (or resuming a run started from one).
    pub(super) plan_run: Option<PlanRun>,
    /// `None` for a restart: each node's own version, read from the cluster.
    pub(super) target: Option<Target>,
    pub(super) rules: RuleOptions,
    /// `--nodes` (empty: every node).
    pub(super) only: Vec<u64>,
}

impl Scope {
    /// Resolves the scope; refuses a target or `--nodes` the unfinished run does not
    /// have, and a node the manifest does not know.
    pub(super) fn resolve(
        ctx: &Context,
        dir: &StateDir,
        args: &UpgradeArgs,
        kind: PlanKind,
        previous: Option<&RunState>,
        p: &Printer,
    ) -> anyhow::Result<Self> {
        // `--plan FILE` (or resuming a run started from one): the target and rules are the plan's.
        let plan_run = apply_plan::load(args, kind, dir, previous, p)?;
        let (target, rules) = match (&plan_run, kind) {
            (Some(pr), _) => (Some(pr.target.clone()), pr.rules),
            // A restart's target is each node's own version, read from the cluster.
            (None, PlanKind::Restart) => (None, rule_options(&args.target)),
            (None, PlanKind::Upgrade) => (
                Some(resolve_target(args, previous)?),
                rule_options(&args.target),
            ),
        };
        // `--nodes` (clap refuses it with `--plan`: a reviewed plan is applied whole, with the
        // `--nodes` it was planned with).
        let only = match &plan_run {
            Some(pr) => pr.file.only_nodes.clone(),
            None => selected_nodes(args, previous)?,
        };
        crate::plan::select::check_known(&ctx.manifest, &only)?;
        Ok(Scope {
            plan_run,
            target,
            rules,
            only,
        })
    }
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
