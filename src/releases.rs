//! The built-in release catalog (facts §7.1), per-version capabilities (facts §3.11) and
//! the upgrade rules (DESIGN §2), all as data so `wkctl releases` can print them.

use serde::Serialize;

use crate::finding::{Finding, FindingId, Severity};
use crate::version::WkVersion;

mod catalog;

pub use catalog::{CATALOG, Note, NoteKind, Release};

/// Parsed catalog, oldest first.
pub fn catalog() -> Vec<(WkVersion, &'static Release)> {
    CATALOG
        .iter()
        .filter_map(|r| WkVersion::parse(r.tag).ok().map(|v| (v, r)))
        .collect()
}

/// The catalog entry for exactly this build (date informational), if any.
pub fn find(v: &WkVersion) -> Option<&'static Release> {
    catalog()
        .into_iter()
        .find(|(c, _)| c.same_build(v))
        .map(|(_, r)| r)
}

/// What a version's API lets the gate observe (facts §3.11, §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// `/health` checks the cluster (v2.1.4+); before that it is always `ok`.
    pub health_cluster_aware: bool,
    /// `/varz` exists (not in v2.0.1–v2.0.5).
    pub has_varz: bool,
    /// `/cluster/node.app_version` is filled (not in v2.1.1–v2.2.1).
    pub has_app_version: bool,
    /// Startup waits for slot leaders and panics after 60 s (no-op in v2.1.1–v2.1.3).
    pub startup_waits_for_slots: bool,
}

impl Capabilities {
    pub fn of(v: &WkVersion) -> Capabilities {
        let t = v.triple();
        let band = |lo: (u64, u64, u64), hi: (u64, u64, u64)| t >= lo && t <= hi;
        Capabilities {
            health_cluster_aware: t >= (2, 1, 4),
            has_varz: !band((2, 0, 1), (2, 0, 5)),
            has_app_version: !band((2, 1, 1), (2, 2, 1)),
            startup_waits_for_slots: !(band((2, 0, 1), (2, 0, 3))
                || band((2, 1, 1), (2, 1, 3))
                || t < (2, 0, 0)),
        }
    }

    /// Human notes about how readiness is observed for this version.
    pub fn readiness_notes(self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if !self.health_cluster_aware {
            out.push("`/health` is always ok before v2.1.4: the gate relies on the cluster signals (C–F)");
        }
        if !self.has_varz {
            out.push("no `/varz` in v2.0.1–v2.0.5: version and uptime come from `/cluster/node`");
        }
        if !self.has_app_version {
            out.push("`/cluster/node.app_version` is empty in v2.1.1–v2.2.1: the version comes from `/varz`");
        }
        out
    }
}

/// Every note for a version: catalog notes plus derived readiness notes.
pub fn notes_for(v: &WkVersion) -> Vec<Note> {
    let mut notes: Vec<Note> = find(v).map(|r| r.notes.to_vec()).unwrap_or_default();
    if v.major() == 2 {
        for text in Capabilities::of(v).readiness_notes() {
            notes.push(Note {
                kind: NoteKind::Readiness,
                text,
                issue: None,
                fixed_in: None,
            });
        }
    }
    notes
}

/// How the `--to` argument was resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetSource {
    /// Found in the catalog (possibly expanded from `v2.1.2` to the full tag).
    Catalog,
    /// A `-dev` image tag, accepted as given.
    DevBuild,
    /// Not known; accepted because of `--allow-unknown-version`.
    Unknown,
}

/// The resolved upgrade target.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub version: WkVersion,
    pub source: TargetSource,
}

/// Why a target could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TargetError {
    pub message: String,
    pub hint: String,
}

/// Resolves `--to`: `v2.1.2` → `v2.1.2-20250120`; a full catalog tag or a `-dev` image
/// tag as given; anything else only with `allow_unknown`.
pub fn resolve_target(input: &str, allow_unknown: bool) -> Result<Target, TargetError> {
    let trimmed = input.trim();
    if matches!(trimmed, "latest" | "v2" | "v1" | "v3") {
        return Err(TargetError {
            message: format!("`--to {trimmed}` is a moving image tag, not a version"),
            hint: "pin a full release tag, e.g. `--to v2.2.5-20260422` (see `wkctl releases`)"
                .into(),
        });
    }
    let v = WkVersion::parse(trimmed).map_err(|e| TargetError {
        message: e.to_string(),
        hint: "use a release tag such as `v2.1.2` or `v2.1.2-20250120` (see `wkctl releases`)"
            .into(),
    })?;
    let cat = catalog();
    // An exact catalog tag, or a bare triple that names exactly one catalog release.
    if v.is_release() {
        let same_triple: Vec<&WkVersion> = cat
            .iter()
            .map(|(c, _)| c)
            .filter(|c| c.triple() == v.triple())
            .collect();
        if let Some(found) = same_triple
            .iter()
            .find(|c| v.date().is_none() || c.date() == v.date())
        {
            return Ok(Target {
                version: (*found).clone(),
                source: TargetSource::Catalog,
            });
        }
    }
    if v.is_dev() {
        return Ok(Target {
            version: v,
            source: TargetSource::DevBuild,
        });
    }
    if allow_unknown {
        return Ok(Target {
            version: v,
            source: TargetSource::Unknown,
        });
    }
    Err(TargetError {
        message: format!("`{trimmed}` is not a known WuKongIM release"),
        hint: format!(
            "nearest known: {}; or pass `--allow-unknown-version` to use it anyway",
            nearest(&v)
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })
}

/// The catalog releases closest to `v`: those whose `vX.Y.Z` is one typo away
/// (`v2.1.12` → `v2.1.2`, 13.9), then the one just below and the one just above.
pub fn nearest(v: &WkVersion) -> Vec<WkVersion> {
    let cat: Vec<WkVersion> = catalog().into_iter().map(|(c, _)| c).collect();
    let triple = |w: &WkVersion| {
        let (a, b, c) = w.triple();
        format!("{a}.{b}.{c}")
    };
    let mine = triple(v);
    let mut out: Vec<WkVersion> = cat
        .iter()
        .filter(|c| one_edit_apart(&triple(c), &mine))
        .cloned()
        .collect();
    let below = cat.iter().rev().find(|c| *c <= v).cloned();
    let above = cat.iter().find(|c| *c > v).cloned();
    for c in below.into_iter().chain(above) {
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

/// Exactly one character inserted, deleted or changed.
fn one_edit_apart(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let (short, long) = if a.len() <= b.len() {
        (&a, &b)
    } else {
        (&b, &a)
    };
    match long.len() - short.len() {
        0 => a.iter().zip(&b).filter(|(x, y)| x != y).count() == 1,
        1 => (0..long.len()).any(|i| {
            let mut l = long.clone();
            l.remove(i);
            &l == short
        }),
        _ => false,
    }
}

/// What to do with one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeAction {
    Upgrade,
    /// A new process on the same version (`wkctl restart`, issue 19).
    Restart,
    Skip,
}

impl NodeAction {
    /// The run acts on the node (upgrades or restarts it).
    pub fn acts(self) -> bool {
        self != NodeAction::Skip
    }
}

/// Options that accept otherwise blocking rules.
#[derive(Debug, Clone, Copy, Default)]
pub struct RuleOptions {
    pub allow_downgrade: bool,
    pub allow_downgrade_across_rewrite: bool,
}

/// One upgrade rule, shown by `wkctl releases`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Rule {
    pub id: FindingId,
    pub severity: Severity,
    pub when: &'static str,
}

/// The upgrade rules as data (DESIGN §2). Evaluated by [`evaluate`].
pub const RULES: &[Rule] = &[
    Rule {
        id: FindingId::VersionMajorChange,
        severity: Severity::Block,
        when: "the major version changes (v1→v2, v2→v3): needs a migration, not an in-place upgrade",
    },
    Rule {
        id: FindingId::VersionDowngrade,
        severity: Severity::Block,
        when: "the target is older than the node (maintainers: forward only; `--allow-downgrade`)",
    },
    Rule {
        id: FindingId::VersionDowngradeAcrossRewrite,
        severity: Severity::Block,
        when: "from ≥ v2.1.1 back to ≤ v2.1.0 (across the cluster-layer rewrite): the data directory must be restored from a backup taken before the upgrade (`--allow-downgrade-across-rewrite`)",
    },
    Rule {
        id: FindingId::VersionSame,
        severity: Severity::Info,
        when: "the node already runs the target: it is skipped",
    },
    Rule {
        id: FindingId::VersionCrossesClusterRewrite,
        severity: Severity::Warn,
        when: "from ≤ v2.1.0 to ≥ v2.1.1 (cluster layer rewrite): strictly one at a time, 1001 first",
    },
    Rule {
        id: FindingId::VersionKnownIssue,
        severity: Severity::Warn,
        when: "the target has a known problem; the fixed release is named",
    },
    Rule {
        id: FindingId::VersionDevBuild,
        severity: Severity::Warn,
        when: "the target is a `-dev` image tag (a pre-release)",
    },
    Rule {
        id: FindingId::VersionUnknown,
        severity: Severity::Warn,
        when: "the target is not in the catalog (`--allow-unknown-version`)",
    },
    Rule {
        id: FindingId::VersionReadinessQuirk,
        severity: Severity::Info,
        when: "the target's API limits what the gate can observe; the gate adapts",
    },
    Rule {
        id: FindingId::VersionFromUnknown,
        severity: Severity::Info,
        when: "a node's current version is not known (offline, no `version` in the manifest)",
    },
    Rule {
        id: FindingId::VersionMixed,
        severity: Severity::Warn,
        when: "the nodes run different versions (an upgrade is half done)",
    },
];

const V1_HINT: &str = "v1 → v2 is not in-place: upgrade v1 to v1.2.6, deploy a new v2 cluster, set `oldV1Api` to the v1 API address and let v2 import the data (#447)";
const V3_HINT: &str = "v2 → v3 is not in-place: stop v2 on v2.2.5-20260422 and migrate offline into a new empty v3 cluster with `wkmigrate`";

/// Evaluates the per-node rules for `from → to`. Returns the node's action and its findings.
pub fn evaluate(
    node: u64,
    from: Option<&WkVersion>,
    to: &WkVersion,
    opts: RuleOptions,
) -> (NodeAction, Vec<Finding>) {
    let mut out = Vec::new();
    let Some(from) = from else {
        out.push(Finding::info(
            FindingId::VersionFromUnknown,
            Some(node),
            format!("current version of node {node} is not known; it is planned as an upgrade"),
            "the node did not report its version (down or unreachable, or `--offline` without `version:`): check it with `wkctl status`, or set `version:` for the node in the manifest",
        ));
        return (NodeAction::Upgrade, out);
    };
    if from.major() != to.major() {
        // Back to an older major is no migration at all (13.9).
        let back = format!(
            "going back from v{} to v{} is not possible in place: the old major cannot read the newer data; pick a v{} release (`wkctl releases`), or restore the old cluster from its backup",
            from.major(),
            to.major(),
            from.major()
        );
        let hint = if to.major() < from.major() {
            back.as_str()
        } else if from.major() < 2 {
            V1_HINT
        } else {
            V3_HINT
        };
        out.push(Finding::block(
            FindingId::VersionMajorChange,
            Some(node),
            format!("node {node}: {from} → {to} changes the major version"),
            hint,
        ));
        return (NodeAction::Upgrade, out);
    }
    if from.same_build(to) {
        out.push(Finding::info(
            FindingId::VersionSame,
            Some(node),
            format!("node {node} already runs {from}; it is skipped"),
            "nothing to do for this node",
        ));
        return (NodeAction::Skip, out);
    }
    if from > to {
        let f = Finding::block(
            FindingId::VersionDowngrade,
            Some(node),
            format!("node {node}: {from} → {to} is a downgrade"),
            "maintainers advise moving forward only (#310); pass `--allow-downgrade` if you must",
        )
        .allowed_by("--allow-downgrade");
        out.push(if opts.allow_downgrade {
            f.accepted()
        } else {
            f
        });
        // Facts §8.2: the cluster/raft layer was rewritten between v2.1.0 and v2.1.1
        // (`pkg/cluster/clusterserver` → `pkg/cluster/cluster`); an older binary cannot be
        // trusted with the newer node's data, so the only way back is the old data dir.
        if from.triple() >= (2, 1, 1) && to.triple() <= (2, 1, 0) {
            let f = Finding::block(
                FindingId::VersionDowngradeAcrossRewrite,
                Some(node),
                format!(
                    "node {node}: {from} → {to} goes back across the cluster-layer rewrite (v2.1.1 → v2.1.0)"
                ),
                "restore the node's data directory from a backup taken before the upgrade, then pass `--allow-downgrade-across-rewrite`; the old version cannot be trusted with the newer data",
            )
            .allowed_by("--allow-downgrade-across-rewrite");
            out.push(if opts.allow_downgrade_across_rewrite {
                f.accepted()
            } else {
                f
            });
        }
    }
    if from.triple() <= (2, 1, 0) && to.triple() >= (2, 1, 1) {
        out.push(Finding::warn(
            FindingId::VersionCrossesClusterRewrite,
            Some(node),
            format!("node {node}: {from} → {to} crosses the cluster-layer rewrite (v2.1.0 → v2.1.1)"),
            "upgrade strictly one node at a time, 1001 first, and keep the mixed-version window short (#310)",
        ));
    }
    (NodeAction::Upgrade, out)
}

/// Findings about the target itself (known issues, dev builds, readiness quirks).
pub fn target_findings(target: &Target) -> Vec<Finding> {
    let to = &target.version;
    let mut out = Vec::new();
    match target.source {
        TargetSource::DevBuild => out.push(Finding::warn(
            FindingId::VersionDevBuild,
            None,
            format!("{to} is a development image tag, a pre-release of v{}.{}.{}", to.major(), to.minor(), to.patch()),
            "dev images are handed out to test fixes; prefer a release tag in production",
        )),
        TargetSource::Unknown => out.push(Finding::warn(
            FindingId::VersionUnknown,
            None,
            format!("{to} is not in wkctl's release catalog"),
            "check the tag exists in your registry; readiness rules of the nearest release are used",
        )),
        TargetSource::Catalog => {}
    }
    for note in notes_for(to) {
        match note.kind {
            NoteKind::KnownIssue => {
                let issue = note.issue.map(|i| format!(" (#{i})")).unwrap_or_default();
                let hint = match note.fixed_in {
                    Some(fix) => format!("fixed in {fix}: consider `--to {fix}` instead"),
                    None => "read the upstream issue before upgrading; have a backup".to_string(),
                };
                out.push(Finding::warn(
                    FindingId::VersionKnownIssue,
                    None,
                    format!("{to}: {}{issue}", note.text),
                    hint,
                ));
            }
            NoteKind::Readiness => out.push(Finding::info(
                FindingId::VersionReadinessQuirk,
                None,
                format!("{to}: {}", note.text),
                "nothing to do: the readiness gate adapts to it",
            )),
            NoteKind::Info => {}
        }
    }
    out
}

/// `version.mixed` when the known versions differ.
pub fn mixed_finding(versions: &[(u64, WkVersion)]) -> Option<Finding> {
    let mut distinct: Vec<&WkVersion> = Vec::new();
    for (_, v) in versions {
        if !distinct.iter().any(|d| d.same_build(v)) {
            distinct.push(v);
        }
    }
    if distinct.len() < 2 {
        return None;
    }
    distinct.sort();
    let list = versions
        .iter()
        .map(|(id, v)| format!("{id}={v}"))
        .collect::<Vec<_>>()
        .join(", ");
    Some(Finding::warn(
        FindingId::VersionMixed,
        None,
        format!("nodes run different versions ({list}): the cluster is mid-upgrade"),
        "finish it with `wkctl upgrade --resume` (or `wkctl upgrade --to` the newer version); do not leave a mixed cluster running",
    ))
}

#[cfg(test)]
mod tests;
