//! Rendering a doctor [`Report`] for a terminal and as Markdown (for an issue report).

use std::collections::BTreeSet;
use std::fmt::Write;

use super::{Port, Reach, Report};
use crate::output::{self, Printer};

/// The N×N reachability matrix for one port: rows = from, columns = to.
fn matrix(
    r: &Report,
    port: Port,
    ok: &str,
    bad: &str,
    unknown: &str,
) -> (Vec<String>, Vec<Vec<String>>) {
    let ids: BTreeSet<u64> = r.network.iter().flat_map(|l| [l.from, l.to]).collect();
    let header: Vec<String> = std::iter::once("from \\ to".to_string())
        .chain(ids.iter().map(u64::to_string))
        .collect();
    let rows = ids
        .iter()
        .map(|from| {
            std::iter::once(from.to_string())
                .chain(ids.iter().map(|to| {
                    if from == to {
                        return "-".to_string();
                    }
                    match r
                        .network
                        .iter()
                        .find(|l| l.from == *from && l.to == *to && l.port == port)
                        .map(|l| &l.reach)
                    {
                        Some(Reach::Ok) => ok.to_string(),
                        Some(Reach::Unreachable(_)) => bad.to_string(),
                        _ => unknown.to_string(),
                    }
                }))
                .collect()
        })
        .collect();
    (header, rows)
}

/// The human report (findings first, then logs, network and settings).
pub fn human(r: &Report, status: &str, p: &Printer) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}\n{status}\n",
        p.bold(&format!("doctor: {}", r.cluster))
    );
    let _ = writeln!(s, "{}", p.bold("findings"));
    s.push_str(&p.findings(&r.findings));
    let _ = writeln!(s, "\n{}", p.bold("logs (known signatures)"));
    // Only logs that were read can be free of known signatures (13.5).
    let unread: Vec<String> = r
        .problems
        .iter()
        .filter(|pr| pr.step == "logs")
        .map(|pr| pr.node.to_string())
        .collect();
    if !unread.is_empty() {
        let _ = writeln!(
            s,
            "could not check the logs of node(s) {} (see `doctor.could_not_check` above)",
            unread.join(", ")
        );
    }
    if r.logs.is_empty() && unread.len() < r.node_count() {
        s.push_str("no known failure signature in the logs that were read\n");
    }
    for m in r.logs.iter().take(60) {
        let _ = writeln!(
            s,
            "  node {} {} {}  {}",
            m.node,
            m.time.as_deref().unwrap_or("-"),
            p.yellow(m.signature.as_str()),
            m.line
        );
    }
    for port in [Port::Cluster, Port::Api] {
        let _ = writeln!(
            s,
            "\n{}",
            p.bold(&format!("network: {port} port (row reaches column)"))
        );
        let (header, rows) = matrix(r, port, "ok", "FAIL", "?");
        let h: Vec<&str> = header.iter().map(String::as_str).collect();
        s.push_str(&output::table(&h, &rows));
    }
    let _ = writeln!(s, "\n{}", p.bold("settings that must agree"));
    let ids: Vec<u64> = r
        .settings
        .first()
        .map(|row| row.values.keys().copied().collect())
        .unwrap_or_default();
    let header: Vec<String> = std::iter::once("setting".to_string())
        .chain(ids.iter().map(|i| format!("node {i}")))
        .collect();
    let rows: Vec<Vec<String>> = r
        .settings
        .iter()
        .map(|row| {
            let key = if row.agree {
                row.key.to_string()
            } else {
                p.red(&format!("{} ≠", row.key))
            };
            std::iter::once(key)
                .chain(
                    ids.iter()
                        .map(|i| row.values.get(i).cloned().unwrap_or_default()),
                )
                .collect()
        })
        .collect();
    let h: Vec<&str> = header.iter().map(String::as_str).collect();
    s.push_str(&output::table(&h, &rows));
    s.trim_end().to_string()
}

/// A Markdown report to paste into an issue.
pub fn markdown(r: &Report, status: &str) -> String {
    let mut s = format!(
        "# wkctl doctor: `{}`\n\n## Cluster\n\n```\n{status}\n```\n\n## Findings\n\n",
        r.cluster
    );
    if r.findings.is_empty() {
        s.push_str("No findings.\n");
    } else {
        s.push_str("| severity | id | node | message | hint |\n|---|---|---|---|---|\n");
        for f in &r.findings {
            let node = f
                .node
                .map_or_else(|| "cluster".to_string(), |n| n.to_string());
            let _ = writeln!(
                s,
                "| {} | `{}` | {node} | {} | {} |",
                f.severity.as_str(),
                f.id,
                cell(&f.message),
                cell(&f.hint)
            );
        }
    }
    s.push_str("\n## Logs\n\n");
    if r.logs.is_empty() {
        s.push_str("No known failure signature in the logs that were read (see `doctor.could_not_check` for those that could not be).\n");
    } else {
        s.push_str("| node | time | signature | line |\n|---|---|---|---|\n");
        for m in &r.logs {
            let _ = writeln!(
                s,
                "| {} | {} | `{}` | `{}` |",
                m.node,
                m.time.as_deref().unwrap_or("-"),
                m.signature,
                cell(&m.line).replace('`', "'")
            );
        }
    }
    for port in [Port::Cluster, Port::Api] {
        let _ = write!(s, "\n## Network: {port} port (row reaches column)\n\n");
        let (header, rows) = matrix(r, port, "ok", "**FAIL**", "?");
        let _ = writeln!(
            s,
            "| {} |\n|{}",
            header.join(" | "),
            "---|".repeat(header.len())
        );
        for row in rows {
            let _ = writeln!(s, "| {} |", row.join(" | "));
        }
    }
    s.push_str("\n## Settings that must agree\n\n");
    let ids: Vec<u64> = r
        .settings
        .first()
        .map(|row| row.values.keys().copied().collect())
        .unwrap_or_default();
    let _ = writeln!(
        s,
        "| setting | {} | agree |\n|---|{}---|",
        ids.iter()
            .map(|i| format!("node {i}"))
            .collect::<Vec<_>>()
            .join(" | "),
        "---|".repeat(ids.len())
    );
    for row in &r.settings {
        let vals: Vec<String> = ids
            .iter()
            .map(|i| cell(row.values.get(i).map_or("", String::as_str)))
            .collect();
        let _ = writeln!(
            s,
            "| `{}` | {} | {} |",
            row.key,
            vals.join(" | "),
            if row.agree { "yes" } else { "**no**" }
        );
    }
    s
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}
