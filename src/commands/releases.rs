//! `wkctl releases`: the built-in catalog with its notes and the upgrade rules.

use serde::Serialize;

use crate::cli::ReleasesArgs;
use crate::error::Outcome;
use crate::output::{self, Printer};
use crate::releases::{self, Capabilities, Note, NoteKind, RULES, Rule};

#[derive(Serialize)]
struct Doc {
    format_version: u32,
    releases: Vec<Entry>,
    rules: &'static [Rule],
}

#[derive(Serialize)]
struct Entry {
    tag: &'static str,
    capabilities: Option<Capabilities>,
    notes: Vec<Note>,
}

pub fn run(args: &ReleasesArgs, p: &Printer) -> anyhow::Result<Outcome> {
    let entries: Vec<Entry> = releases::catalog()
        .into_iter()
        .rev()
        .map(|(v, r)| Entry {
            tag: r.tag,
            capabilities: (v.major() == 2).then(|| Capabilities::of(&v)),
            notes: releases::notes_for(&v),
        })
        .collect();
    if args.json {
        p.json_doc(&Doc {
            format_version: 1,
            releases: entries,
            rules: RULES,
        })?;
        return Ok(Outcome::Success);
    }
    let mut rows = Vec::new();
    for e in &entries {
        let mut first = true;
        let notes: Vec<&Note> = e.notes.iter().collect();
        if notes.is_empty() {
            rows.push(vec![p.bold(e.tag), String::new()]);
        }
        for n in notes {
            let label = match n.kind {
                NoteKind::KnownIssue => p.yellow("known issue"),
                NoteKind::Readiness => p.dim("readiness"),
                NoteKind::Info => p.dim("note"),
            };
            let issue = n.issue.map(|i| format!(" (#{i})")).unwrap_or_default();
            let fix = n
                .fixed_in
                .map(|f| format!("; fixed in {f}"))
                .unwrap_or_default();
            rows.push(vec![
                if first { p.bold(e.tag) } else { String::new() },
                format!("{label}: {}{issue}{fix}", n.text),
            ]);
            first = false;
        }
    }
    p.out(output::table(&["RELEASE", "NOTES"], &rows).trim_end())?;
    p.out("")?;
    p.out(&p.bold("Upgrade rules"))?;
    let rule_rows: Vec<Vec<String>> = RULES
        .iter()
        .map(|r| vec![r.id.to_string(), p.severity(r.severity), r.when.to_string()])
        .collect();
    p.out(output::table(&["ID", "SEVERITY", "WHEN"], &rule_rows).trim_end())?;
    Ok(Outcome::Success)
}
