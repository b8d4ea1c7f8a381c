//! `wkctl check`: pre-upgrade compatibility and cluster-health checks.
//!
//! Offline: the manifest and the versions it declares. Live: the same, with versions read
//! from the cluster, plus the cluster-health findings of [`crate::checks`].

use serde::Serialize;

use crate::cli::{CheckArgs, Global};
use crate::commands::{rule_options, target};
use crate::error::Outcome;
use crate::finding::{self, Finding};
use crate::inputs::Context;
use crate::observe::{self, Observed};
use crate::output::Printer;
use crate::plan;

/// The `check --json` document.
#[derive(Serialize)]
pub struct CheckDoc<'a> {
    pub format_version: u32,
    pub cluster: &'a str,
    pub to: &'a str,
    pub source: &'a str,
    pub ok: bool,
    pub findings: &'a [Finding],
}

/// Loads everything, observes the cluster unless `--offline`, and builds the plan (whose
/// findings are the check's findings).
pub async fn observe_and_plan(
    global: &Global,
    args: &CheckArgs,
    _p: &Printer,
) -> anyhow::Result<Observed> {
    let ctx = Context::load(global.manifest.as_deref())?;
    let target = target(&args.target)?;
    let rules = rule_options(&args.target);
    if args.offline {
        let plan = observe::offline_plan(&ctx, &target, rules)?;
        return Ok(Observed { ctx, plan });
    }
    observe::observe_and_plan(ctx, &target, rules).await
}

pub async fn run(global: &Global, args: &CheckArgs, p: &Printer) -> anyhow::Result<Outcome> {
    let Observed { plan, .. } = observe_and_plan(global, args, p).await?;
    let ok = finding::ok(&plan.findings);
    if args.json {
        p.json_doc(&CheckDoc {
            format_version: plan::FORMAT_VERSION,
            cluster: &plan.cluster,
            to: &plan.to.to_string(),
            source: plan.source,
            ok,
            findings: &plan.findings,
        })?;
    } else {
        p.out(p.findings(&plan.findings).trim_end())?;
        let blocks = plan
            .findings
            .iter()
            .filter(|f| f.severity == finding::Severity::Block)
            .count();
        let verdict = if ok {
            p.green(&format!(
                "ok: {} → {} can proceed ({} data)",
                plan.cluster, plan.to, plan.source
            ))
        } else {
            p.red(&format!(
                "blocked: {blocks} blocking finding(s); nothing was changed"
            ))
        };
        p.out(&verdict)?;
    }
    Ok(if ok { Outcome::Success } else { Outcome::No })
}
