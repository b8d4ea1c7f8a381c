//! `wkctl plan`: the exact steps `upgrade` would run, for humans or as one JSON document.

use crate::cli::{CheckArgs, Global};
use crate::commands::check::{self, Observed};
use crate::error::Outcome;
use crate::output::Printer;
use crate::plan::Plan;
use crate::releases::NodeAction;

pub async fn run(global: &Global, args: &CheckArgs, p: &Printer) -> anyhow::Result<Outcome> {
    let Observed { plan, .. } = check::observe_and_plan(global, args, p).await?;
    if args.json {
        p.json_doc(&plan)?;
    } else {
        print_plan(&plan, p)?;
    }
    Ok(if plan.ok() {
        Outcome::Success
    } else {
        Outcome::No
    })
}

/// The human rendering of a plan (also used by `upgrade --dry-run` and before confirming).
pub fn print_plan(plan: &Plan, p: &Printer) -> std::io::Result<()> {
    let ups = plan.upgrades().count();
    p.out(&format!(
        "{} {} → {}  ({} of {} nodes to upgrade, playbook `{}`, {} data, order {})",
        p.bold("plan"),
        plan.cluster,
        p.bold(&plan.to.to_string()),
        ups,
        plan.nodes.len(),
        plan.playbook,
        plan.source,
        match plan.order {
            crate::manifest::Order::Id => "id",
            crate::manifest::Order::ControllerLast => "controller-last",
        }
    ))?;
    for (i, n) in plan.nodes.iter().enumerate() {
        let from = n.from.as_deref().unwrap_or("unknown");
        match n.action {
            NodeAction::Skip => p.out(&format!(
                "{}. node {} ({}) already on {from}: {}",
                i + 1,
                n.id,
                n.host,
                p.dim("skip")
            ))?,
            NodeAction::Upgrade => {
                p.out(&format!(
                    "{}. node {} ({}) {from} → {}",
                    i + 1,
                    p.bold(&n.id.to_string()),
                    n.host,
                    plan.to
                ))?;
                for s in &n.steps {
                    let what = match &s.command {
                        Some(c) => c.clone(),
                        None => match s.kind {
                            crate::plan::PlanStepKind::CheckSettled => {
                                "cluster settled (signal F) before touching the node".into()
                            }
                            crate::plan::PlanStepKind::WaitReady => format!(
                                "signals A–G hold for {}s",
                                plan.policy.stable_for.as_secs_f64()
                            ),
                            crate::plan::PlanStepKind::Soak => "whole cluster stays healthy".into(),
                            _ => String::new(),
                        },
                    };
                    p.out(&format!(
                        "   {:<13} {}  {}",
                        s.kind.as_str(),
                        what,
                        p.dim(&format!("(timeout {}s)", s.timeout_s))
                    ))?;
                }
            }
        }
    }
    if !plan.findings.is_empty() {
        p.out("")?;
        p.out(p.findings(&plan.findings).trim_end())?;
    }
    Ok(())
}
