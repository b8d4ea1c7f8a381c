//! `wkctl upgrade --plan plan.json` (issue 17 §2): load the reviewed plan, refuse on any
//! drift before touching anything, and give `upgrade` exactly that plan to execute. On
//! `--resume`, the run's own copy of the plan (`plan.json` in the state directory, checked
//! against the digest the state records) is executed again.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use crate::checks;
use crate::cli::UpgradeArgs;
use crate::error::WkError;
use crate::inputs::Context;
use crate::observe;
use crate::output::Printer;
use crate::plan::{self, Plan};
use crate::planfile::{self, PlanFile, drift};
use crate::probe::ClusterView;
use crate::releases::{self, RuleOptions, Target};
use crate::state::{self, PlanRef, RunState, StateDir};
use crate::version::WkVersion;

/// The run's copy of its plan file, in the state directory.
pub const COPY: &str = "plan.json";

/// A plan file being applied.
pub struct PlanRun {
    pub file: PlanFile,
    /// `sha256:…` of the file's bytes.
    pub digest: String,
    /// The path as given (for messages and the state).
    pub shown: String,
    pub target: Target,
    pub rules: RuleOptions,
    bytes: Vec<u8>,
    resume: bool,
}

/// Reads a plan file (bounded), returning its bytes.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, WkError> {
    let shown = path.display();
    let fail = |e: std::io::Error| {
        WkError::input(
            format!("cannot read plan file `{shown}`: {e}"),
            "pass the file `wkctl plan --out` wrote",
        )
    };
    let meta = std::fs::metadata(path).map_err(fail)?;
    if !meta.is_file() || meta.len() > planfile::MAX_BYTES {
        return Err(WkError::input(
            format!("`{shown}` is not a plan file (not a regular file, or over 16 MiB)"),
            "pass the file `wkctl plan --out` wrote",
        ));
    }
    std::fs::read(path).map_err(fail)
}

/// Reads and parses a plan file: (file, digest).
pub fn read(path: &Path) -> Result<(PlanFile, String), WkError> {
    let bytes = read_bytes(path)?;
    let file = planfile::parse(&path.display().to_string(), &bytes)?;
    Ok((file, planfile::digest(&bytes)))
}

/// A JSON value for a message, at most 120 characters.
fn clip(v: Option<&serde_json::Value>) -> String {
    let t = v.map_or("(absent)".into(), ToString::to_string);
    if t.chars().count() > 120 {
        format!("{}…", t.chars().take(120).collect::<String>())
    } else {
        t
    }
}

fn refuse(shown: &str, problems: &[String]) -> anyhow::Error {
    WkError::no(
        format!(
            "refusing to apply plan `{shown}`: {} problem(s); nothing was touched\n{}",
            problems.len(),
            problems
                .iter()
                .map(|p| format!("- {p}"))
                .collect::<Vec<_>>()
                .join("\n")
        ),
        "review what changed, plan again (`wkctl plan --to <VERSION> --out <FILE>`) and have \
         the new plan approved",
    )
    .into()
}

/// The plan to run: `--plan FILE`, or the plan of the unfinished run on `--resume`.
/// `kind` is the command's: an upgrade plan is applied by `upgrade`, a restart plan by
/// `restart`, never the other way round.
pub fn load(
    args: &UpgradeArgs,
    kind: plan::PlanKind,
    dir: &StateDir,
    previous: Option<&RunState>,
    p: &Printer,
) -> anyhow::Result<Option<PlanRun>> {
    let Some(Source {
        bytes,
        shown,
        resume,
    }) = source(args, kind, dir, previous)?
    else {
        return Ok(None);
    };
    let digest = planfile::digest(&bytes);
    // The approved digest is checked before the file is even parsed.
    if let Some(expected) = &args.planned.expect_digest {
        let expected = planfile::parse_expected(expected)?;
        if let Some(m) = drift::expected_digest(&digest, &expected) {
            return Err(refuse(&shown, &[m]));
        }
    }
    let file = planfile::parse(&shown, &bytes)?;
    same_kind(&file, kind, &shown)?;
    let mut problems = Vec::new();
    let who = drift::wkctl(&file, crate::VERSION_LINE, planfile::RULES);
    problems.extend(who.refusals);
    if let Some(max) = args.planned.max_age.filter(|_| !resume) {
        let age = planfile::age(&shown, &file, SystemTime::now())?;
        problems.extend(drift::max_age(age, max, &file.created_at));
    }
    let target = plan_target(&file, kind, &shown)?;
    if let Some(to) = &args.target.to {
        let given = crate::commands::target(&args.target)?;
        if given.version != target.version {
            problems.push(format!(
                "`--to {to}` is {}, the plan goes to {}",
                given.version, target.version
            ));
        }
    }
    if !problems.is_empty() {
        return Err(refuse(&shown, &problems));
    }
    for n in who.notes {
        p.note(&n);
    }
    Ok(Some(PlanRun {
        rules: RuleOptions {
            allow_downgrade: file.target.allow_downgrade,
            allow_downgrade_across_rewrite: file.target.allow_downgrade_across_rewrite,
        },
        file,
        digest,
        shown,
        target,
        bytes,
        resume,
    }))
}

/// The plan file's bytes, read before anything is parsed.
struct Source {
    bytes: Vec<u8>,
    /// The path as given, or as the state records it on `--resume`.
    shown: String,
    /// The run's own copy, on `--resume` of a run started from a plan file.
    resume: bool,
}

/// Where the plan comes from: `--plan FILE`, or on `--resume` the run's copy, which must
/// still have the digest the state records (and be the file `--plan` names, if given).
/// `None`: no plan file is involved.
fn source(
    args: &UpgradeArgs,
    kind: plan::PlanKind,
    dir: &StateDir,
    previous: Option<&RunState>,
) -> anyhow::Result<Option<Source>> {
    let recorded = previous
        .filter(|_| args.resume)
        .and_then(|st| st.plan_file.as_ref());
    let (bytes, shown, resume) = match (args.planned.plan.as_deref(), recorded) {
        (None, None) => return Ok(None),
        (Some(_), None) if args.resume => {
            return Err(WkError::no(
                "the unfinished run was not started from a plan file",
                format!("resume it without `--plan`, or `wkctl {kind} --discard` it first"),
            )
            .into());
        }
        (given, Some(rec)) => {
            let copy = dir.root.join(COPY);
            let bytes = read_bytes(&copy)?;
            if planfile::digest(&bytes) != rec.digest {
                return Err(refuse(
                    &rec.file,
                    &[format!(
                        "the run's copy `{}` no longer has the digest the state records ({})",
                        copy.display(),
                        rec.digest
                    )],
                ));
            }
            if let Some(given) = given {
                let d = planfile::digest(&read_bytes(given)?);
                if d != rec.digest {
                    return Err(refuse(
                        &given.display().to_string(),
                        &[format!(
                            "the unfinished run executes plan `{}` ({}), not this file ({d})",
                            rec.file, rec.digest
                        )],
                    ));
                }
            }
            (bytes, rec.file.clone(), true)
        }
        (Some(path), None) => (read_bytes(path)?, path.display().to_string(), false),
    };
    Ok(Some(Source {
        bytes,
        shown,
        resume,
    }))
}

/// An upgrade plan is applied by `upgrade`, a restart plan by `restart`: never the other
/// way round.
fn same_kind(file: &PlanFile, kind: plan::PlanKind, shown: &str) -> Result<(), WkError> {
    if file.plan.kind == kind {
        return Ok(());
    }
    Err(WkError::input(
        format!(
            "`{shown}` is {} plan: `wkctl {kind} --plan` does not apply it; nothing was touched",
            match file.plan.kind {
                plan::PlanKind::Upgrade => "an upgrade",
                plan::PlanKind::Restart => "a restart",
            }
        ),
        format!(
            "apply it with `wkctl {} --plan {shown}`, or plan the {kind} with `{}`",
            file.plan.kind,
            match kind {
                plan::PlanKind::Upgrade => "wkctl plan --to <VERSION> --out <FILE>",
                plan::PlanKind::Restart => "wkctl plan --restart --out <FILE>",
            }
        ),
    ))
}

/// The version the plan goes to, resolved as the command would resolve it.
fn plan_target(file: &PlanFile, kind: plan::PlanKind, shown: &str) -> Result<Target, WkError> {
    Ok(match kind {
        plan::PlanKind::Upgrade => {
            releases::resolve_target(&file.target.to, file.target.allow_unknown_version)
                .map_err(|e| WkError::no(format!("plan `{shown}`: target {}", e.message), e.hint))?
        }
        // A restart's `to` is the version the cluster ran (`parse` checked it), catalogued
        // or not: as `restart` itself plans it.
        plan::PlanKind::Restart => Target {
            version: WkVersion::parse(&file.target.to)
                .map_err(|e| WkError::no(format!("plan `{shown}`: target {e}"), "plan again"))?,
            source: releases::TargetSource::Catalog,
        },
    })
}

impl PlanRun {
    /// Checks the inputs and the cluster against the plan, then rebuilds the plan from the
    /// same inputs: it must be the file's, value for value (else the file was edited or
    /// this wkctl renders it differently). Returns it, with the live check's findings.
    pub fn plan(&self, ctx: &Context, view: &ClusterView, p: &Printer) -> anyhow::Result<Plan> {
        let mut problems = Vec::new();
        if !self.resume {
            let text = std::fs::read_to_string(&ctx.manifest.path).unwrap_or_default();
            let pb = serde_json::to_string_pretty(&ctx.playbook).unwrap_or_default();
            problems.extend(drift::inputs(
                &self.file,
                (
                    &ctx.manifest.path.display().to_string(),
                    &ctx.manifest.digest,
                    &text,
                ),
                (&ctx.playbook.digest, &pb),
            ));
            let cluster = drift::cluster(&self.file, view);
            problems.extend(cluster.refusals);
            for n in cluster.notes {
                p.note(&n);
            }
        }
        if !problems.is_empty() {
            return Err(refuse(&self.shown, &problems));
        }
        // Rebuilt only from what was checked: the versions the plan observed (held against
        // the live cluster above) or, offline, the manifest's (held by its digest), never
        // the file's own `from`s.
        let versions: BTreeMap<u64, Option<WkVersion>> = ctx
            .manifest
            .nodes
            .iter()
            .map(|n| {
                let seen = self.file.observed.as_ref().and_then(|o| {
                    o.nodes
                        .iter()
                        .find(|x| x.id == n.id)
                        .and_then(|x| x.version.as_deref())
                        .and_then(|v| WkVersion::parse(v).ok())
                });
                (n.id, seen.or_else(|| n.version.clone()))
            })
            .collect();
        let mut rebuilt = plan::build(&plan::Input {
            manifest: &ctx.manifest,
            playbook: &ctx.playbook,
            target: &self.target,
            versions: &versions,
            controller: self.file.observed.as_ref().and_then(|o| o.controller),
            live: self.file.observed.is_some(),
            rules: self.rules,
            kind: self.file.plan.kind,
        })?;
        // The nodes it was planned for (`plan --nodes`), the others skipped as planned.
        crate::plan::select::check_known(&ctx.manifest, &self.file.only_nodes)?;
        crate::plan::select::limit_to_nodes(&mut rebuilt, &self.file.only_nodes);
        let filed = serde_json::to_value(&self.file.plan).unwrap_or_default();
        let mine = serde_json::to_value(&rebuilt).unwrap_or_default();
        let diffs = planfile::changes(
            &planfile::comparable(&filed),
            &planfile::comparable(&mine),
            false,
        );
        if !diffs.is_empty() {
            let lines: Vec<String> = diffs
                .iter()
                .take(20)
                .map(|(path, a, b)| {
                    format!(
                        "  {path}: {} (file) vs {} (from the inputs now)",
                        clip(a.as_ref()),
                        clip(b.as_ref())
                    )
                })
                .collect();
            return Err(refuse(
                &self.shown,
                &[format!(
                    "the plan in the file is not the plan its inputs give (edited by hand, or \
                     planned by a wkctl that renders steps differently):\n{}",
                    lines.join("\n")
                )],
            ));
        }
        // The live pre-upgrade check still runs: the cluster must be healthy now.
        let mut live_findings = checks::live_findings(&ctx.manifest, view);
        live_findings.extend(checks::playbook::findings(
            &ctx.manifest,
            &ctx.playbook,
            Some(view),
        ));
        observe::merge_findings(&mut rebuilt.findings, live_findings);
        Ok(rebuilt)
    }

    /// Keeps a copy of the plan in the state directory and records it in the state.
    pub fn record(&self, dir: &StateDir, st: &mut RunState) -> anyhow::Result<()> {
        if !self.resume {
            state::write_atomic(&dir.root.join(COPY), &self.bytes).map_err(|e| {
                WkError::no(
                    format!("cannot save the plan's copy in the state directory: {e}"),
                    "free disk space",
                )
            })?;
        }
        st.plan_file = Some(PlanRef {
            digest: self.digest.clone(),
            file: self.shown.clone(),
            created_at: self.file.created_at.clone(),
        });
        Ok(())
    }
}
