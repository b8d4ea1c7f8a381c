//! The human renderings shared by several commands: a plan (`plan`, `upgrade --dry-run`,
//! before confirming) and the status table (`status`, `doctor`, `recover`, `demo`). They
//! build text from data; what to observe and when to print is the commands' business.

use serde::Serialize;

use crate::finding::{Finding, FindingId, Severity};
use crate::inputs::Context;
use crate::observe::RunDoc;
use crate::output::{self, Printer};
use crate::plan::Plan;
use crate::probe::{ClusterView, HealthState};
use crate::releases::NodeAction;

/// The human rendering of a plan (also used by `upgrade --dry-run` and before confirming).
pub fn plan(plan: &Plan, p: &Printer) -> std::io::Result<()> {
    let ups = plan.upgrades().count();
    let restart = plan.kind == crate::plan::PlanKind::Restart;
    p.out(&format!(
        "{} {} {}  ({} of {} nodes to {}, playbook `{}`, {} data, order {})",
        p.bold(if restart { "restart" } else { "plan" }),
        plan.cluster,
        if restart {
            format!("on {}", p.bold(&plan.to.to_string()))
        } else {
            format!("→ {}", p.bold(&plan.to.to_string()))
        },
        ups,
        plan.nodes.len(),
        plan.kind,
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
            NodeAction::Skip if restart => p.out(&format!(
                "{}. node {} ({}) on {from}: {}",
                i + 1,
                n.id,
                n.host,
                p.dim("not restarted (not in `--nodes`)")
            ))?,
            NodeAction::Skip => p.out(&format!(
                "{}. node {} ({}) already on {from}: {}",
                i + 1,
                n.id,
                n.host,
                p.dim("skip")
            ))?,
            NodeAction::Upgrade | NodeAction::Restart => {
                p.out(&if n.action == NodeAction::Restart {
                    format!(
                        "{}. node {} ({}) restart on {from}",
                        i + 1,
                        p.bold(&n.id.to_string()),
                        n.host
                    )
                } else {
                    format!(
                        "{}. node {} ({}) {from} → {}",
                        i + 1,
                        p.bold(&n.id.to_string()),
                        n.host,
                        plan.to
                    )
                })?;
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

/// The human status: membership problems first, then the unfinished run or live lock
/// (`run`, from [`crate::observe::run_doc`]), the table, then other findings.
pub fn status(
    ctx: &Context,
    view: &ClusterView,
    findings: &[Finding],
    run: Option<&RunDoc>,
    p: &Printer,
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
    if let Some(r) = run {
        s.push_str(&run_lines(r, p));
    }
    let _ = writeln!(s, "{}", headline(ctx, view, p));
    s.push_str(&status_table(view, p));
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

/// The unfinished run and the live lock, each with what to do, then a blank line.
fn run_lines(r: &RunDoc, p: &Printer) -> String {
    use std::fmt::Write;
    let mut s = String::new();
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
    s
}

/// The cluster's line: name, controller, config version and slots.
fn headline(ctx: &Context, view: &ClusterView, p: &Printer) -> String {
    format!(
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
    )
}

/// The table of the nodes, one row each.
fn status_table(view: &ClusterView, p: &Printer) -> String {
    let table_rows: Vec<Vec<String>> = rows(view).iter().map(|r| row_cells(r, p)).collect();
    output::table(
        &[
            "ID", "API", "VERSION", "ONLINE", "CTRL", "SLOTS", "HEALTH", "UPTIME", "CONFIG",
            "CLIENTS",
        ],
        &table_rows,
    )
}

/// One node's cells of the status table, coloured.
fn row_cells(r: &NodeRow, p: &Printer) -> Vec<String> {
    let yes_no = |b: Option<bool>| match b {
        Some(true) => p.green("yes"),
        Some(false) => p.red("NO"),
        None => p.dim("?"),
    };
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
}
