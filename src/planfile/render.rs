//! Plan files for people: the Markdown a CI job posts on a pull request, and the diff of
//! two plans (`plan --diff old.json new.json [--format md]`).

use std::fmt::Write as _;

use serde_json::Value;

use super::{ActionDoc, Change, PlanFile, changes};

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The fence for a code block that cannot be closed by its content.
fn fence(body: &str) -> String {
    let mut n = 3;
    while body.contains(&"`".repeat(n)) {
        n += 1;
    }
    "`".repeat(n)
}

/// The plan as a Markdown comment: digest first, the nodes, the findings, every command.
pub fn markdown(file: &PlanFile, digest: Option<&str>, file_name: Option<&str>) -> String {
    let p = &file.plan;
    let mut s = md_header(file, digest);
    md_observed(&mut s, file);
    md_nodes(&mut s, file);
    if !p.findings.is_empty() {
        s.push_str("\n**Findings**\n\n");
        for f in &p.findings {
            let sev = serde_json::to_value(f.severity)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let node = f.node.map(|n| format!(" (node {n})")).unwrap_or_default();
            let _ = writeln!(
                s,
                "- **{sev}** `{}`{node}: {} — {}",
                md_escape(&f.id),
                md_escape(&f.message),
                md_escape(&f.hint)
            );
        }
    }
    let commands = commands_text(file);
    let f = fence(&commands);
    let count = commands.lines().filter(|l| !l.starts_with('#')).count();
    let _ = write!(
        s,
        "\n<details><summary>Every command the run can execute ({count})</summary>\n\n{f}sh\n{commands}{f}\n\n</details>\n"
    );
    if let Some(d) = digest {
        let _ = writeln!(
            s,
            "\nApply exactly this plan: `wkctl {} --plan {} --expect-digest {d}`",
            p.kind,
            file_name.unwrap_or("plan.json")
        );
    }
    s
}

/// The title, the digest and the line of what the plan does, by which wkctl.
fn md_header(file: &PlanFile, digest: Option<&str>) -> String {
    let p = &file.plan;
    let mut s = String::new();
    let ups = p
        .nodes
        .iter()
        .filter(|n| n.action != ActionDoc::Skip)
        .count();
    let restart = p.kind == crate::plan::PlanKind::Restart;
    let _ = writeln!(
        s,
        "### wkctl plan: `{}` {} `{}`\n",
        md_escape(&p.cluster),
        if restart { "restart on" } else { "→" },
        md_escape(&p.to)
    );
    if let Some(d) = digest {
        let _ = writeln!(s, "**Digest:** `{d}`\n");
    }
    let _ = writeln!(
        s,
        "{ups} of {} node(s) to {} · playbook `{}` · order {} · planned {} by wkctl {} (plan format {}, gate rules {})\n",
        p.nodes.len(),
        p.kind,
        md_escape(&p.playbook),
        serde_json::to_value(p.order)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        md_escape(&file.created_at),
        md_escape(&file.wkctl.version),
        file.format_version,
        file.wkctl.rules
    );
    s
}

/// What was observed when the plan was made (or that nothing was).
fn md_observed(s: &mut String, file: &PlanFile) {
    match &file.observed {
        None => s.push_str(
            "**Offline plan: nothing was observed.** At apply, each node must run the `from` version below.\n\n",
        ),
        Some(o) => {
            let _ = writeln!(
                s,
                "Observed {}: controller {}, members {}, config version {}.\n",
                md_escape(&o.at),
                o.controller.map_or("unknown".into(), |c| c.to_string()),
                o.membership.as_ref().map_or("unknown".into(), |m| format!("{m:?}")),
                o.config_version.map_or("unknown".into(), |c| c.to_string())
            );
        }
    }
}

/// The table of the nodes in run order, with what was observed of each.
fn md_nodes(s: &mut String, file: &PlanFile) {
    s.push_str(
        "| # | node | host | from | action | commit | uptime |\n|---|---|---|---|---|---|---|\n",
    );
    for (i, n) in file.plan.nodes.iter().enumerate() {
        let o = file
            .observed
            .as_ref()
            .and_then(|o| o.nodes.iter().find(|x| x.id == n.id));
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} |",
            i + 1,
            n.id,
            md_escape(&n.host),
            md_escape(n.from.as_deref().unwrap_or("unknown")),
            match n.action {
                ActionDoc::Upgrade => "**upgrade**",
                ActionDoc::Restart => "**restart**",
                ActionDoc::Skip => "skip",
            },
            md_escape(o.and_then(|o| o.commit.as_deref()).unwrap_or("")),
            o.and_then(|o| o.uptime_s)
                .map_or(String::new(), |u| format!("{u:.0}s"))
        );
    }
}

/// Every rendered command, grouped by node, in run order (on-failure ones marked).
pub fn commands_text(file: &PlanFile) -> String {
    let p = &file.plan;
    let mut s = String::new();
    let run = |s: &mut String, steps: &[super::StepDoc], before: bool| {
        for st in steps {
            let early = matches!(st.kind.as_str(), "lock" | "pre_run");
            if early == before
                && let Some(c) = &st.command
            {
                let _ = writeln!(s, "# run {}\n{c}", st.kind);
            }
        }
    };
    run(&mut s, &p.run_steps, true);
    for n in p.nodes.iter().filter(|n| n.action != ActionDoc::Skip) {
        let _ = writeln!(s, "# node {} ({})", n.id, n.host.replace('\n', " "));
        for st in &n.steps {
            match &st.command {
                Some(c) => {
                    let _ = writeln!(s, "# {}\n{c}", st.kind);
                }
                None => {
                    let _ = writeln!(s, "# {} (wkctl, {}s)", st.kind, st.timeout_s);
                }
            }
        }
        for st in &n.on_failure {
            if let Some(c) = &st.command {
                let _ = writeln!(s, "# only on failure: {}\n{c}", st.kind);
            }
        }
    }
    run(&mut s, &p.run_steps, false);
    s
}

fn short(v: Option<&Value>) -> String {
    match v {
        None => "(absent)".into(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => {
            let t = v.to_string();
            if t.chars().count() > 200 {
                format!("{}…", t.chars().take(200).collect::<String>())
            } else {
                t
            }
        }
    }
}

/// The differences between two plan files, as `(path, old, new)`.
pub fn plan_changes(old: &PlanFile, new: &PlanFile) -> Vec<Change> {
    let a = serde_json::to_value(old).unwrap_or(Value::Null);
    let b = serde_json::to_value(new).unwrap_or(Value::Null);
    // The inputs' texts are shown as line diffs; their digests stand for them here.
    let strip = |mut v: Value| {
        for k in ["manifest", "playbook"] {
            if let Some(o) = v.get_mut(k).and_then(Value::as_object_mut) {
                o.remove("text");
            }
        }
        v
    };
    changes(&strip(a), &strip(b), true)
}

/// `plan --diff`: text (`md == false`) or Markdown.
pub fn diff(old: (&str, &PlanFile, &str), new: (&str, &PlanFile, &str), md: bool) -> String {
    let (on, of, od) = old;
    let (nn, nf, nd) = new;
    let ch = plan_changes(of, nf);
    let mut lines = Vec::new();
    for (path, a, b) in &ch {
        lines.push(format!(
            "- {path}: {}",
            short(a.as_ref()).replace('\n', "\\n")
        ));
        lines.push(format!(
            "+ {path}: {}",
            short(b.as_ref()).replace('\n', "\\n")
        ));
    }
    let mut inputs = String::new();
    if of.manifest.digest != nf.manifest.digest {
        let _ = writeln!(
            inputs,
            "manifest:\n{}",
            super::line_diff(&of.manifest.text, &nf.manifest.text)
        );
    }
    if of.playbook.digest != nf.playbook.digest {
        let _ = writeln!(
            inputs,
            "playbook:\n{}",
            super::line_diff(&of.playbook.text, &nf.playbook.text)
        );
    }
    let same = ch.is_empty() && inputs.is_empty();
    let mut s = String::new();
    if md {
        let _ = writeln!(
            s,
            "### wkctl plan diff: `{}` → `{}`\n",
            md_escape(on),
            md_escape(nn)
        );
        let _ = writeln!(s, "| | old | new |\n|---|---|---|");
        let _ = writeln!(s, "| digest | `{od}` | `{nd}` |");
        let _ = writeln!(
            s,
            "| target | `{}` | `{}` |",
            md_escape(&of.plan.to),
            md_escape(&nf.plan.to)
        );
        let _ = writeln!(
            s,
            "| created | {} | {} |",
            md_escape(&of.created_at),
            md_escape(&nf.created_at)
        );
        let _ = writeln!(
            s,
            "| wkctl | {} | {} |\n",
            md_escape(&of.wkctl.version),
            md_escape(&nf.wkctl.version)
        );
        if same {
            s.push_str("No change in what runs, the inputs or the observed cluster.\n");
            return s;
        }
        let body = format!("{}\n{inputs}", lines.join("\n"));
        let f = fence(&body);
        let _ = writeln!(
            s,
            "**{} change(s)**\n\n{f}diff\n{}{f}",
            ch.len(),
            body.trim_end().to_string() + "\n"
        );
    } else {
        let _ = writeln!(s, "plan diff {on} ({od}) → {nn} ({nd})");
        if same {
            s.push_str("no change in what runs, the inputs or the observed cluster\n");
            return s;
        }
        for l in &lines {
            let _ = writeln!(s, "{l}");
        }
        s.push_str(&inputs);
    }
    s
}
