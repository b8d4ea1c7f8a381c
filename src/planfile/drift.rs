//! What changed since a plan was made (issue 17 §2), judged without I/O: each kind of
//! drift is one refusal with its own first line, then the diff.

use std::time::Duration;

use super::line_diff;
use super::{PlanFile, Source};
use crate::manifest::Order;
use crate::probe::ClusterView;

/// Refusals (exit 1, nothing touched) and notes (said, not refused).
#[derive(Debug, Default, PartialEq)]
pub struct Report {
    pub refusals: Vec<String>,
    pub notes: Vec<String>,
}

/// `--expect-digest`: the file is the one that was approved.
pub fn expected_digest(actual: &str, expected: &str) -> Option<String> {
    (actual != expected).then(|| {
        format!("the plan file's digest changed: it is {actual}, the approved digest is {expected}")
    })
}

/// `--max-age`.
pub fn max_age(age: Duration, max: Duration, created_at: &str) -> Option<String> {
    (age > max).then(|| {
        format!(
            "the plan is too old: made {} ago ({created_at}), `--max-age` is {}",
            humantime::format_duration(Duration::from_secs(age.as_secs())),
            humantime::format_duration(max)
        )
    })
}

/// The wkctl that planned: other rules refuse; another version with the same format and
/// rules is said (its steps are then compared with what this wkctl renders).
pub fn wkctl(file: &PlanFile, mine: &str, rules: u32) -> Report {
    let mut r = Report::default();
    if file.wkctl.rules != rules {
        r.refusals.push(format!(
            "the plan was made by wkctl {} under gate rules {}; this wkctl ({mine}) applies rules {rules}, so the plan would not run as reviewed",
            file.wkctl.version, file.wkctl.rules
        ));
    } else if file.wkctl.version != mine {
        r.notes.push(format!(
            "planned by wkctl {}, applied by wkctl {mine}: same plan format and gate rules",
            file.wkctl.version
        ));
    }
    r
}

/// The manifest and the playbook, by digest, with a line diff of their texts.
pub fn inputs(
    file: &PlanFile,
    manifest: (&str, &str, &str),
    playbook: (&str, &str),
) -> Vec<String> {
    let (m_path, m_digest, m_text) = manifest;
    let (p_digest, p_text) = playbook;
    let mut out = Vec::new();
    if file.manifest.digest != m_digest {
        out.push(format!(
            "the manifest `{m_path}` changed since the plan:\n{}",
            line_diff(&file.manifest.text, m_text)
        ));
    }
    if file.playbook.digest != p_digest {
        out.push(format!(
            "the playbook `{}` changed since the plan:\n{}",
            file.playbook.name,
            line_diff(&file.playbook.text, p_text)
        ));
    }
    out
}

fn show(v: Option<&str>) -> &str {
    v.unwrap_or("unknown")
}

/// The cluster now against the cluster as planned: each node's version and commit, the
/// membership, and the controller when the order depends on it. An offline plan recorded
/// nothing: each node's `from` must be what it runs now.
pub fn cluster(file: &PlanFile, view: &ClusterView) -> Report {
    let mut r = Report::default();
    let Some(obs) = &file.observed else {
        for n in &file.plan.nodes {
            let Some(live) = view.node(n.id).and_then(|v| v.version.as_ref()) else {
                continue;
            };
            let live = live.to_string();
            match &n.from {
                Some(from) if *from == live => {}
                Some(from) => r.refusals.push(format!(
                    "node {} runs {live}, the offline plan was made for {from}",
                    n.id
                )),
                None => r.refusals.push(format!(
                    "node {} runs {live}; the offline plan did not know its version (the manifest declares none)",
                    n.id
                )),
            }
        }
        return r;
    };
    // The process uptime grows with the time since the plan; less means a restart.
    let since = humantime::parse_rfc3339(&obs.at)
        .ok()
        .and_then(|at| view.observed_at.duration_since(at).ok())
        .map_or(0.0, |d| d.as_secs_f64());
    for o in &obs.nodes {
        let Some(now) = view.node(o.id) else { continue };
        let now_version = now.version.as_ref().map(ToString::to_string);
        if now_version.is_some() && now_version != o.version {
            r.refusals.push(format!(
                "node {} changed since the plan: version {} → {}",
                o.id,
                show(o.version.as_deref()),
                show(now_version.as_deref())
            ));
        } else if now.commit.is_some() && now.commit != o.commit {
            r.refusals.push(format!(
                "node {} changed since the plan: commit {} → {}",
                o.id,
                show(o.commit.as_deref()),
                show(now.commit.as_deref())
            ));
        } else if let (Some(then), Some(up)) = (o.uptime_s, now.uptime)
            && up.as_secs_f64() + 2.0 < then + since
        {
            r.notes.push(format!(
                "node {} restarted since the plan (same build)",
                o.id
            ));
        }
    }
    if let (Some(then), Some(now)) = (&obs.membership, &view.membership) {
        let mut now = now.clone();
        now.sort_unstable();
        if *then != now {
            let added: Vec<String> = now
                .iter()
                .filter(|i| !then.contains(i))
                .map(|i| format!("+{i}"))
                .collect();
            let gone: Vec<String> = then
                .iter()
                .filter(|i| !now.contains(i))
                .map(|i| format!("-{i}"))
                .collect();
            r.refusals.push(format!(
                "the membership changed since the plan: {} (planned with {:?}, now {:?})",
                [added, gone].concat().join(" "),
                then,
                now
            ));
        }
    }
    if obs.controller != view.controller && view.controller.is_some() {
        let msg = format!(
            "the controller changed since the plan: {} → {}",
            obs.controller.map_or("none".into(), |c| c.to_string()),
            view.controller.map_or("none".into(), |c| c.to_string())
        );
        if file.plan.order == Order::ControllerLast && file.plan.source == Source::Live {
            r.refusals.push(format!(
                "{msg} (the plan's order, controller-last, depends on it)"
            ));
        } else {
            r.notes.push(msg);
        }
    }
    if view.config_version.is_some() && obs.config_version != view.config_version {
        r.notes.push(format!(
            "the cluster config version moved since the plan: {} → {}",
            obs.config_version
                .map_or("unknown".into(), |c| c.to_string()),
            view.config_version
                .map_or("unknown".into(), |c| c.to_string())
        ));
    }
    r
}

#[cfg(test)]
mod tests;
