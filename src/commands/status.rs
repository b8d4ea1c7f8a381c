//! `wkctl status`: the cluster as it really is, held against the manifest. A node the
//! manifest lists but the cluster does not (the "1 node of 3" incident, #310) comes first.

use serde::Serialize;

use crate::checks;
use crate::cli::{Global, StatusArgs};
use crate::error::Outcome;
use crate::finding::{self, Finding, FindingId, Severity};
use crate::inputs::Context;
use crate::observe;
use crate::output::{self, Printer};
use crate::probe::{ClusterView, HealthState};

#[derive(Serialize)]
pub struct StatusDoc<'a> {
    pub format_version: u32,
    pub cluster: &'a str,
    pub controller: Option<u64>,
    pub config_version: Option<u64>,
    pub membership: Option<&'a [u64]>,
    pub slots: Option<SlotsDoc>,
    pub nodes: Vec<NodeRow>,
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

#[derive(Serialize)]
pub struct NodeRow {
    pub id: u64,
    pub api: String,
    pub reachable: bool,
    pub error: Option<String>,
    pub version: Option<String>,
    pub in_cluster: Option<bool>,
    pub online: Option<bool>,
    pub controller: bool,
    pub slots_led: Option<u64>,
    pub health: String,
    pub uptime_s: Option<f64>,
    pub config_version: Option<u64>,
    /// Client connections (`/varz.connections`, issue #18); `null` when unknown.
    pub connections: Option<u64>,
}

/// The rows of the status table, one per manifest node.
pub fn rows(view: &ClusterView) -> Vec<NodeRow> {
    view.nodes
        .iter()
        .map(|n| NodeRow {
            id: n.id,
            api: n.api.clone(),
            reachable: n.reachable,
            error: n.error.as_ref().map(ToString::to_string),
            version: n
                .version
                .as_ref()
                .map(ToString::to_string)
                .or_else(|| n.version_raw.clone()),
            in_cluster: view.membership.as_ref().map(|m| m.contains(&n.id)),
            online: n.info_online.or(n.simple_online),
            controller: view.controller == Some(n.id),
            slots_led: n.slot_leader_count,
            health: match &n.health {
                HealthState::Ok => "ok".into(),
                HealthState::Failing(m) => format!("failing: {m}"),
                HealthState::Unknown => "unknown".into(),
            },
            uptime_s: n.uptime.map(|u| u.as_secs_f64()),
            config_version: n.config_version,
            connections: n.service.connections.filter(|_| n.reachable),
        })
        .collect()
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
        p.out(&render(&ctx, &view, &findings, p))?;
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
        nodes: rows(view),
        findings,
        run: observe::run_doc(ctx),
    }
}

/// The human status: membership problems first, then the table, then other findings.
pub fn render(ctx: &Context, view: &ClusterView, findings: &[Finding], p: &Printer) -> String {
    render_with(ctx, view, findings, p, true)
}

/// [`render`]; `show_run: false` leaves out the unfinished run (the demo deletes it).
pub fn render_with(
    ctx: &Context,
    view: &ClusterView,
    findings: &[Finding],
    p: &Printer,
    show_run: bool,
) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let (first, rest): (Vec<&Finding>, Vec<&Finding>) = findings
        .iter()
        .partition(|f| f.id == FindingId::ClusterMembershipMismatch);
    for f in &first {
        let _ = writeln!(s, "{} {}", p.red("MEMBERSHIP:"), f.message);
        let _ = writeln!(s, "  hint: {}\n", f.hint);
    }
    if let Some(r) = observe::run_doc(ctx).filter(|_| show_run) {
        if let (Some(to), Some(status)) = (&r.to, &r.status) {
            let _ = writeln!(
                s,
                "{} an upgrade to {to} is unfinished ({status}; state `{}`)",
                p.yellow("RUN:"),
                r.state_file.as_deref().unwrap_or("?")
            );
            let _ = writeln!(
                s,
                "  hint: continue it with `wkctl upgrade --resume`, or forget it with `wkctl upgrade --discard`"
            );
        }
        if let Some(by) = &r.locked_by {
            let _ = writeln!(
                s,
                "{} a wkctl run holds the cluster lock ({by})",
                p.yellow("LOCK:")
            );
        }
        s.push('\n');
    }
    let _ = writeln!(
        s,
        "{}  controller {}  config v{}  slots {}",
        p.bold(&ctx.manifest.name),
        view.controller
            .map_or_else(|| p.red("unknown"), |c| c.to_string()),
        view.config_version
            .map_or_else(|| "?".into(), |v| v.to_string()),
        view.slots.as_ref().map_or_else(
            || "?".to_string(),
            |sl| if sl.leaderless.is_empty() && sl.candidate.is_empty() && sl.migrating.is_empty() {
                format!("{} ok", sl.total)
            } else {
                format!(
                    "{} ({} leaderless, {} candidate, {} migrating)",
                    sl.total,
                    sl.leaderless.len(),
                    sl.candidate.len(),
                    sl.migrating.len()
                )
            }
        ),
    );
    let yes_no = |b: Option<bool>| match b {
        Some(true) => p.green("yes"),
        Some(false) => p.red("NO"),
        None => p.dim("?"),
    };
    let table_rows: Vec<Vec<String>> = rows(view)
        .into_iter()
        .map(|r| {
            vec![
                r.id.to_string(),
                r.api.clone(),
                r.version.clone().unwrap_or_else(|| p.dim("?")),
                if r.in_cluster == Some(false) {
                    p.red("NOT IN CLUSTER")
                } else {
                    yes_no(r.online)
                },
                if r.controller {
                    "*".into()
                } else {
                    String::new()
                },
                r.slots_led.map(|c| c.to_string()).unwrap_or_default(),
                if r.reachable {
                    if r.health == "ok" {
                        p.green("ok")
                    } else {
                        p.yellow(&r.health)
                    }
                } else {
                    p.red(r.error.as_deref().unwrap_or("unreachable"))
                },
                r.uptime_s
                    .map(|u| output::short_duration(std::time::Duration::from_secs_f64(u)))
                    .unwrap_or_default(),
                r.config_version.map(|c| c.to_string()).unwrap_or_default(),
                r.connections
                    .map(crate::gate::clients::thousands)
                    .unwrap_or_default(),
            ]
        })
        .collect();
    s.push_str(&output::table(
        &[
            "ID", "API", "VERSION", "ONLINE", "CTRL", "SLOTS", "HEALTH", "UPTIME", "CONFIG",
            "CLIENTS",
        ],
        &table_rows,
    ));
    let notable: Vec<Finding> = rest
        .into_iter()
        .filter(|f| f.severity != Severity::Info)
        .cloned()
        .collect();
    if !notable.is_empty() {
        s.push('\n');
        s.push_str(&p.findings(&notable));
    }
    s.trim_end().to_string()
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
            &render(ctx, &view, &findings, p),
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
