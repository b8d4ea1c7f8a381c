//! `wkctl status`: the cluster as it really is, held against the manifest. A node the
//! manifest lists but the cluster does not (the "1 node of 3" incident, #310) comes first.

use serde::Serialize;

use crate::checks;
use crate::cli::{Global, StatusArgs};
use crate::error::Outcome;
use crate::finding::{self, Finding};
use crate::inputs::Context;
use crate::observe;
use crate::output::Printer;
use crate::probe::ClusterView;
use crate::render;

#[derive(Serialize)]
pub struct StatusDoc<'a> {
    pub format_version: u32,
    pub cluster: &'a str,
    pub controller: Option<u64>,
    pub config_version: Option<u64>,
    pub membership: Option<&'a [u64]>,
    pub slots: Option<SlotsDoc>,
    pub nodes: Vec<render::NodeRow>,
    pub findings: &'a [Finding],
    /// An unfinished upgrade run and who holds the cluster's lock, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<observe::RunDoc>,
}

#[derive(Serialize)]
pub struct SlotsDoc {
    pub total: usize,
    pub leaderless: usize,
    pub candidate: usize,
    pub migrating: usize,
}

pub async fn run(global: &Global, args: &StatusArgs, p: &Printer) -> anyhow::Result<Outcome> {
    let ctx = Context::load(global.manifest.as_deref())?;
    if args.watch {
        return watch(&ctx, p).await;
    }
    let (_, view) = observe::cluster(&ctx).await?;
    let mut findings = checks::live_findings(&ctx.manifest, &view);
    finding::sort(&mut findings);
    if args.json {
        p.json_doc(&doc(&ctx, &view, &findings))?;
    } else {
        p.out(&render::status(
            &ctx,
            &view,
            &findings,
            observe::run_doc(&ctx).as_ref(),
            p,
        ))?;
    }
    Ok(if finding::ok(&findings) {
        Outcome::Success
    } else {
        Outcome::No
    })
}

pub fn doc<'a>(ctx: &'a Context, view: &'a ClusterView, findings: &'a [Finding]) -> StatusDoc<'a> {
    StatusDoc {
        format_version: 1,
        cluster: &ctx.manifest.name,
        controller: view.controller,
        config_version: view.config_version,
        membership: view.membership.as_deref(),
        slots: view.slots.as_ref().map(|s| SlotsDoc {
            total: s.total,
            leaderless: s.leaderless.len(),
            candidate: s.candidate.len(),
            migrating: s.migrating.len(),
        }),
        nodes: render::rows(view),
        findings,
        run: observe::run_doc(ctx),
    }
}

async fn watch(ctx: &Context, p: &Printer) -> anyhow::Result<Outcome> {
    let interval = ctx
        .manifest
        .policy
        .poll_interval
        .max(std::time::Duration::from_millis(500));
    // Redraw in place on a terminal; into a pipe or file, frames follow each other with
    // no escape codes (13.12).
    let tty = std::io::IsTerminal::is_terminal(&std::io::stdout());
    // Ctrl-C ends the watch like any interrupted command: exit 130.
    tokio::select! {
        r = watch_loop(ctx, p, tty, interval) => r,
        _ = tokio::signal::ctrl_c() => Ok(Outcome::Interrupted),
    }
}

async fn watch_loop(
    ctx: &Context,
    p: &Printer,
    tty: bool,
    interval: std::time::Duration,
) -> anyhow::Result<Outcome> {
    loop {
        let (_, view) = observe::cluster(ctx).await?;
        let mut findings = checks::live_findings(&ctx.manifest, &view);
        finding::sort(&mut findings);
        p.out(&watch_frame(
            tty,
            std::time::SystemTime::now(),
            &render::status(ctx, &view, &findings, observe::run_doc(ctx).as_ref(), p),
            &p.dim("watching; Ctrl-C to stop"),
        ))?;
        tokio::time::sleep(interval).await;
    }
}

/// One `--watch` frame: the time it was observed (UTC) above the status.
fn watch_frame(tty: bool, at: std::time::SystemTime, body: &str, footer: &str) -> String {
    let stamp = humantime::format_rfc3339_seconds(at);
    if tty {
        format!("\x1b[2J\x1b[H{stamp}\n{body}\n{footer}")
    } else {
        format!("--- {stamp}\n{body}")
    }
}

#[cfg(test)]
mod watch_tests {
    use super::watch_frame;

    #[test]
    fn frames_carry_a_timestamp_and_no_escapes_into_a_pipe() {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_764_500_000);
        let piped = watch_frame(false, at, "body", "footer");
        assert_eq!(piped, "--- 2025-11-30T10:53:20Z\nbody");
        let tty = watch_frame(true, at, "body", "footer");
        assert!(
            tty.starts_with("\x1b[2J\x1b[H2025-11-30T10:53:20Z\nbody"),
            "{tty:?}"
        );
    }
}
