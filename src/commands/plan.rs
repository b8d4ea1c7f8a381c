//! `wkctl plan`: the exact steps `upgrade` would run, for humans or as one JSON document;
//! with `--out`, the plan file `upgrade --plan` runs exactly (issue 17); with `--diff` or
//! `--against`, what changed between two plans.

use std::path::Path;
use std::time::SystemTime;

use crate::cli::{CheckArgs, Global, PlanArgs, PlanFormat};
use crate::commands::{apply_plan, rule_options, target};
use crate::error::{Outcome, WkError};
use crate::inputs::Context;
use crate::observe;
use crate::output::Printer;
use crate::plan::Plan;
use crate::planfile::{self, PlanFile, TargetInfo, render};
use crate::probe::ClusterView;

pub async fn run(global: &Global, args: &PlanArgs, p: &Printer) -> anyhow::Result<Outcome> {
    let format = args.format();
    if let Some(files) = &args.diff {
        let [old, new] = files.as_slice() else {
            return Err(WkError::input(
                "`--diff` takes two plan files",
                "`wkctl plan --diff old.json new.json`",
            )
            .into());
        };
        let (of, od) = apply_plan::read(old)?;
        let (nf, nd) = apply_plan::read(new)?;
        print_diff((old, &of, &od), (new, &nf, &nd), format, p)?;
        return Ok(Outcome::Success);
    }
    let (ctx, plan, view) = observe(global, args).await?;
    let ok = plan.ok();
    let outcome = if ok { Outcome::Success } else { Outcome::No };
    if args.out.is_none() && args.against.is_none() && format != PlanFormat::Md {
        if format == PlanFormat::Json {
            p.json_doc(&plan)?;
        } else {
            crate::render::plan(&plan, p)?;
        }
        return Ok(outcome);
    }
    let file = plan_file(&ctx, &plan, args, view.as_ref())?;
    let bytes = planfile::to_bytes(&file);
    let digest = planfile::digest(&bytes);
    if let Some(out) = &args.out {
        crate::state::write_atomic(out, &bytes).map_err(|e| {
            WkError::input(
                format!("cannot write the plan file `{}`: {e}", out.display()),
                "check that its directory exists and is writable",
            )
        })?;
    }
    let shown = args.out.as_deref().map(|o| o.display().to_string());
    if let Some(old) = &args.against {
        let (of, od) = apply_plan::read(old)?;
        let new = shown.clone().unwrap_or_else(|| "(now)".into());
        print_diff(
            (old, &of, &od),
            (Path::new(&new), &file, &digest),
            format,
            p,
        )?;
    } else {
        match format {
            PlanFormat::Json => p.json_doc(&serde_json::json!({
                "format_version": planfile::FORMAT,
                "out": shown,
                "digest": digest,
                "ok": ok,
            }))?,
            PlanFormat::Md => {
                p.out(render::markdown(&file, Some(&digest), shown.as_deref()).trim_end())?;
            }
            PlanFormat::Text => {
                crate::render::plan(&plan, p)?;
                if file.observed.is_none() {
                    p.note("offline plan: nothing was observed; at apply each node must run its `from` version");
                }
            }
        }
    }
    if let Some(out) = &shown {
        p.note(&format!(
            "plan written to `{out}`; apply exactly it with `wkctl {} --plan {out} --expect-digest {digest}`",
            plan.kind
        ));
        if format == PlanFormat::Text {
            p.out(&digest)?;
        }
    }
    Ok(outcome)
}

/// Loads, observes (unless `--offline`) and plans: the context, the plan and the view.
/// `--restart` plans a restart (always live: it needs each node's version); `--nodes`
/// skips every other node, as `upgrade`/`restart --nodes` would.
async fn observe(
    global: &Global,
    args: &PlanArgs,
) -> anyhow::Result<(Context, Plan, Option<ClusterView>)> {
    let check: &CheckArgs = &args.check;
    let (ctx, mut plan, view) = if check.offline {
        let ctx = Context::load(global.manifest.as_deref())?;
        let target = target(&check.target)?;
        let plan = observe::offline_plan(&ctx, &target, rule_options(&check.target))?;
        (ctx, plan, None)
    } else {
        let ctx = Context::load(global.manifest.as_deref())?;
        // Bad input is refused before the cluster is asked anything.
        let target = if args.restart {
            None
        } else {
            Some(target(&check.target)?)
        };
        crate::plan::select::check_known(&ctx.manifest, &args.nodes)?;
        let (_, view) = observe::cluster(&ctx).await?;
        let plan = match &target {
            Some(t) => observe::plan_from_view(&ctx, &view, t, rule_options(&check.target), None)?,
            None => observe::restart_plan_from_view(&ctx, &view, None)?,
        };
        (ctx, plan, Some(view))
    };
    crate::plan::select::check_known(&ctx.manifest, &args.nodes)?;
    crate::plan::select::limit_to_nodes(&mut plan, &args.nodes);
    Ok((ctx, plan, view))
}

fn plan_file(
    ctx: &Context,
    plan: &Plan,
    args: &PlanArgs,
    view: Option<&ClusterView>,
) -> anyhow::Result<PlanFile> {
    let only: &[u64] = &args.nodes;
    let args = &args.check;
    let text = std::fs::read_to_string(&ctx.manifest.path).unwrap_or_default();
    let pb = serde_json::to_string_pretty(&ctx.playbook).unwrap_or_default();
    Ok(planfile::build(
        plan,
        &planfile::Inputs {
            manifest_path: &ctx.manifest.path.display().to_string(),
            manifest_text: &text,
            playbook_text: &pb,
            target: TargetInfo {
                to: plan.to.to_string(),
                allow_unknown_version: args.target.allow_unknown_version,
                allow_downgrade: args.target.allow_downgrade,
                allow_downgrade_across_rewrite: args.target.allow_downgrade_across_rewrite,
            },
            view,
            now: SystemTime::now(),
            only_nodes: only,
        },
    )?)
}

fn print_diff(
    old: (&Path, &PlanFile, &str),
    new: (&Path, &PlanFile, &str),
    format: PlanFormat,
    p: &Printer,
) -> anyhow::Result<()> {
    let on = old.0.display().to_string();
    let nn = new.0.display().to_string();
    if format == PlanFormat::Json {
        let changes: Vec<_> = render::plan_changes(old.1, new.1)
            .into_iter()
            .map(|(path, a, b)| serde_json::json!({ "path": path, "old": a, "new": b }))
            .collect();
        p.json_doc(&serde_json::json!({
            "format_version": planfile::FORMAT,
            "old": { "file": on, "digest": old.2 },
            "new": { "file": nn, "digest": new.2 },
            "manifest_changed": old.1.manifest.digest != new.1.manifest.digest,
            "playbook_changed": old.1.playbook.digest != new.1.playbook.digest,
            "changes": changes,
        }))?;
    } else {
        let text = render::diff(
            (&on, old.1, old.2),
            (&nn, new.1, new.2),
            format == PlanFormat::Md,
        );
        p.out(text.trim_end())?;
    }
    Ok(())
}
