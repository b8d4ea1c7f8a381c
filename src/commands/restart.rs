//! `wkctl restart` (issue 19 point 1): a rolling restart with no version change, the
//! anchors being `kubectl rollout restart` and `tiup cluster restart`. It is `upgrade`'s
//! run with a restart plan: the same order (1001 first, or the controller last), pre-stop
//! check, gate, soak, state, locks, `--resume` and Ctrl-C; only the target differs: each
//! node must come back on the version it ran, from a process started after its stop.

use crate::cli::{Global, RestartArgs, TargetArgs, UpgradeArgs};
use crate::error::Outcome;
use crate::output::Printer;
use crate::plan::PlanKind;

pub async fn run(global: &Global, args: &RestartArgs, p: &Printer) -> anyhow::Result<Outcome> {
    Box::pin(super::upgrade::run_kind(
        global,
        &as_upgrade(args),
        PlanKind::Restart,
        p,
    ))
    .await
}

/// The upgrade arguments a restart runs with: no target, no rollback; `--plan` a restart
/// plan file (`wkctl plan --restart --out`).
fn as_upgrade(args: &RestartArgs) -> UpgradeArgs {
    UpgradeArgs {
        target: TargetArgs {
            to: None,
            allow_unknown_version: false,
            allow_downgrade: false,
            allow_downgrade_across_rewrite: false,
        },
        yes: args.yes,
        dry_run: args.dry_run,
        resume: args.resume,
        discard: args.discard,
        json: args.json,
        rollback_on_failure: false,
        break_lock: args.break_lock,
        state_dir: args.state_dir.clone(),
        nodes: args.nodes.clone(),
        demo: false,
        planned: args.planned.clone(),
    }
}
