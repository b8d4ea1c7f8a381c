//! `wkctl doctor`: logs, network and settings of every node, checked at once, plus the
//! live check and the status table — the one command to run and paste into an issue.

use crate::checks;
use crate::cli::{DoctorArgs, Global};
use crate::doctor::{self, report};
use crate::error::{Outcome, WkError};
use crate::finding;
use crate::inputs::Context;
use crate::observe;
use crate::output::Printer;
use crate::render;

pub async fn run(global: &Global, args: &DoctorArgs, p: &Printer) -> anyhow::Result<Outcome> {
    let ctx = Context::load(global.manifest.as_deref())?;
    let (_, view) = observe::cluster(&ctx).await?;
    let mut live_findings = checks::live_findings(&ctx.manifest, &view);
    finding::sort(&mut live_findings);
    let run = observe::run_doc(&ctx);
    let status_plain = render::status(&ctx, &view, &[], run.as_ref(), &Printer::plain(false));
    let status_human = render::status(&ctx, &view, &[], run.as_ref(), p);
    p.note(&format!(
        "doctor: reading logs, settings and the network of {} node(s)…",
        ctx.manifest.nodes.len()
    ));
    let rep = doctor::run(&ctx, view, live_findings).await;
    if let Some(path) = &args.output {
        std::fs::write(path, report::markdown(&rep, &status_plain)).map_err(|e| {
            WkError::input(
                format!("cannot write `{}`: {e}", path.display()),
                "check the path",
            )
        })?;
        p.note(&format!("report written to `{}`", path.display()));
    }
    if args.json {
        p.json_doc(&rep)?;
    } else {
        p.out(&report::human(&rep, &status_human, p))?;
    }
    Ok(if rep.ok() {
        Outcome::Success
    } else {
        Outcome::No
    })
}
