//! `wkctl history`: past runs of this cluster from its state directory (issue 13.17):
//! who, when, from → to, the result, and each node's result and time.

use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::cli::{Global, HistoryArgs};
use crate::error::Outcome;
use crate::inputs::default_state_base;
use crate::manifest;
use crate::output::{Printer, short_duration, table};
use crate::plan::PlanKind;
use crate::state::{HistoryEntry, RunStatus, StateDir};

pub fn run(global: &Global, args: &HistoryArgs, p: &Printer) -> anyhow::Result<Outcome> {
    let path = manifest::resolve_path(global.manifest.as_deref());
    let manifest = manifest::load(&path)?;
    let m = &manifest;
    let base = args
        .state_dir
        .clone()
        .unwrap_or_else(|| default_state_base(&path));
    let dir = StateDir::new(&base, &m.name);
    let mut runs = dir.history()?;
    if let Some(n) = args.last {
        let skip = runs.len().saturating_sub(n);
        runs.drain(..skip);
    }
    if args.json {
        let doc = json!({
            "cluster": m.name,
            "runs": runs.iter().map(entry_json).collect::<Vec<_>>(),
        });
        p.json_doc(&doc)?;
        return Ok(Outcome::Success);
    }
    if runs.is_empty() {
        p.note(&format!(
            "no past runs of `{}` in `{}`",
            m.name,
            dir.root.display()
        ));
        return Ok(Outcome::Success);
    }
    for (i, h) in runs.iter().enumerate() {
        if i > 0 {
            p.out("")?;
        }
        let run = &h.run;
        let what = match run.kind {
            PlanKind::Upgrade => format!("{} → {}", from_versions(h).join(", "), run.to),
            PlanKind::Restart => format!("restart on {}", from_versions(h).join(", ")),
        };
        p.out(&format!(
            "{}  {}  {}  {what}  {}{}",
            when(run.started_at_ms),
            h.who,
            run.cluster,
            result(h),
            took(run.started_at_ms, run.updated_at_ms)
                .map(|d| format!(" in {d}"))
                .unwrap_or_default(),
        ))?;
        let rows: Vec<Vec<String>> = run
            .nodes
            .iter()
            .map(|n| {
                vec![
                    format!("  {}", n.id),
                    n.from.clone().unwrap_or_else(|| "?".into()),
                    n.status.summary_word_in(run.kind).to_string(),
                    match (n.started_at_ms, n.finished_at_ms) {
                        (Some(start), Some(end)) => took(start, end).unwrap_or_default(),
                        _ => "-".into(),
                    },
                    n.error
                        .as_deref()
                        .and_then(|e| e.lines().next())
                        .unwrap_or_default()
                        .to_string(),
                ]
            })
            .collect();
        p.out(table(&["  NODE", "FROM", "RESULT", "TIME", "ERROR"], &rows).trim_end())?;
    }
    Ok(Outcome::Success)
}

fn entry_json(h: &HistoryEntry) -> Value {
    let r = &h.run;
    json!({
        "file": h.path.display().to_string(),
        "who": h.who,
        "started_at": when(r.started_at_ms),
        "started_at_ms": r.started_at_ms,
        "ended_at_ms": r.updated_at_ms,
        "duration_s": r.updated_at_ms.saturating_sub(r.started_at_ms) as f64 / 1000.0,
        "cluster": r.cluster,
        "kind": r.kind,
        "from": from_versions(h),
        "to": r.to,
        "status": r.status,
        "discarded": h.discarded,
        "nodes": r.nodes.iter().map(|n| json!({
            "id": n.id,
            "from": n.from,
            "status": n.status.summary_word_in(r.kind),
            "duration_s": match (n.started_at_ms, n.finished_at_ms) {
                (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / 1000.0),
                _ => None,
            },
            "error": n.error,
        })).collect::<Vec<_>>(),
    })
}

/// The distinct versions the run started from, in node order.
fn from_versions(h: &HistoryEntry) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in &h.run.nodes {
        let v = n.from.clone().unwrap_or_else(|| "?".into());
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

fn result(h: &HistoryEntry) -> String {
    let s = match h.run.status {
        RunStatus::Running => "unfinished",
        RunStatus::Completed => "completed",
        RunStatus::Failed => "failed",
        RunStatus::Interrupted => "interrupted",
    };
    if h.discarded {
        format!("{s} (discarded)")
    } else {
        s.to_string()
    }
}

fn when(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

fn took(from_ms: u64, to_ms: u64) -> Option<String> {
    (to_ms >= from_ms).then(|| short_duration(Duration::from_millis(to_ms - from_ms)))
}
