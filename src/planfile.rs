//! The plan file (issue 17): `wkctl plan --out plan.json` writes the complete plan with
//! what its apply needs to detect drift (the inputs' digests and texts, the cluster as
//! observed, the wkctl that planned), and `wkctl upgrade --plan plan.json` runs exactly it.
//!
//! The file's digest is `sha256:` + the sha256 of its bytes (what `sha256sum plan.json`
//! prints), so a reviewer approves one string and CI can check it without wkctl.
//!
//! Pure: building the document, reading it back strictly, and a keyed JSON diff. The I/O
//! (observing, writing, applying) lives in `commands/plan.rs` and `commands/apply_plan.rs`.

use std::time::{Duration, SystemTime};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::WkError;
use crate::plan::Plan;
use crate::probe::ClusterView;

mod diff;
mod doc;
pub mod drift;
pub mod render;

pub use diff::{Change, changes, line_diff};
pub use doc::*;

/// The `kind` of every plan file.
pub const KIND: &str = "wkctl-plan";
/// The plan file's layout. A file of another format is refused with its reason, never
/// read as this one.
pub const FORMAT: u32 = 1;
/// The rules an applied plan relies on besides its rendered steps: the gate (A–G), the
/// pre-stop judgement, the peer watch, resume. Bump it when they change in a way that would
/// make an older plan run differently; a plan planned under other rules is refused.
pub const RULES: u32 = 1;
/// A plan file is a few hundred KiB at 1000 nodes; anything far larger is not one.
pub const MAX_BYTES: u64 = 16 << 20;

/// The whole plan file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "wkctl plan file")]
pub struct PlanFile {
    /// Always `wkctl-plan`.
    pub kind: String,
    /// The plan file format (1).
    pub format_version: u32,
    /// When the plan was made (RFC 3339, UTC).
    pub created_at: String,
    /// The wkctl that planned.
    pub wkctl: WkctlInfo,
    /// The target and the flags that accepted otherwise blocking rules.
    pub target: TargetInfo,
    /// The manifest as planned (its digest and text, for the apply's diff).
    pub manifest: InputInfo,
    /// The playbook as planned (the loaded playbook as JSON).
    pub playbook: InputInfo,
    /// The cluster as observed when planning; `null` for an `--offline` plan (nothing was
    /// observed: the apply checks each node's `from` against what it runs).
    pub observed: Option<Observed>,
    /// The complete plan: every command the run can execute (`plan --json`).
    pub plan: PlanDoc,
    /// The `--nodes` it was planned with: every other node is skipped (absent: all nodes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub only_nodes: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WkctlInfo {
    /// `wkctl --version`.
    pub version: String,
    /// The gate/step rules version ([`RULES`]).
    pub rules: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetInfo {
    /// The resolved target tag.
    pub to: String,
    pub allow_unknown_version: bool,
    pub allow_downgrade: bool,
    pub allow_downgrade_across_rewrite: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InputInfo {
    /// The manifest path as given, or the playbook's name.
    pub name: String,
    /// sha256 of the input, as wkctl computes it for `--resume`.
    pub digest: String,
    /// The input's text.
    pub text: String,
}

/// The cluster at planning time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Observed {
    /// When it was observed (RFC 3339, UTC).
    pub at: String,
    /// Every manifest node.
    pub nodes: Vec<ObservedNode>,
    /// Node ids the cluster reported (`/cluster/info`, else `/cluster/simpleNodes`).
    pub membership: Option<Vec<u64>>,
    /// The controller (config-raft leader).
    pub controller: Option<u64>,
    /// `/cluster/info.version`.
    pub config_version: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObservedNode {
    pub id: u64,
    pub reachable: bool,
    /// The version it reported (normalised tag).
    pub version: Option<String>,
    /// `/varz.commit`.
    pub commit: Option<String>,
    /// Seconds since the process started.
    pub uptime_s: Option<f64>,
}

// ----- building ---------------------------------------------------------------------------

/// What the plan file is made from (besides the plan).
pub struct Inputs<'a> {
    pub manifest_path: &'a str,
    pub manifest_text: &'a str,
    pub playbook_text: &'a str,
    pub target: TargetInfo,
    /// `None` for an offline plan.
    pub view: Option<&'a ClusterView>,
    pub now: SystemTime,
    /// `plan --nodes` (empty: all nodes).
    pub only_nodes: &'a [u64],
}

pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The cluster as the plan file records it.
pub fn observed(view: &ClusterView) -> Observed {
    Observed {
        at: rfc3339(view.observed_at),
        nodes: view
            .nodes
            .iter()
            .map(|n| ObservedNode {
                id: n.id,
                reachable: n.reachable,
                version: n.version.as_ref().map(ToString::to_string),
                commit: n.commit.clone(),
                uptime_s: n.uptime.map(|u| u.as_secs_f64()),
            })
            .collect(),
        membership: view.membership.clone().map(|mut m| {
            m.sort_unstable();
            m
        }),
        controller: view.controller,
        config_version: view.config_version,
    }
}

/// The plan file for `plan`.
pub fn build(plan: &Plan, inputs: &Inputs<'_>) -> Result<PlanFile, WkError> {
    let doc: PlanDoc = serde_json::to_value(plan)
        .and_then(serde_json::from_value)
        .map_err(|e| {
            WkError::no(
                format!("cannot write the plan as a plan file: {e}"),
                "this is a wkctl bug; please report it with `wkctl plan --json`",
            )
        })?;
    Ok(PlanFile {
        kind: KIND.into(),
        format_version: FORMAT,
        created_at: rfc3339(inputs.now),
        wkctl: WkctlInfo {
            version: crate::VERSION_LINE.into(),
            rules: RULES,
        },
        target: inputs.target.clone(),
        manifest: InputInfo {
            name: inputs.manifest_path.into(),
            digest: plan.manifest_digest.clone(),
            text: inputs.manifest_text.into(),
        },
        playbook: InputInfo {
            name: plan.playbook.clone(),
            digest: plan.playbook_digest.clone(),
            text: inputs.playbook_text.into(),
        },
        observed: inputs.view.map(observed),
        plan: doc,
        only_nodes: inputs.only_nodes.to_vec(),
    })
}

/// The file's bytes (pretty JSON, trailing newline).
pub fn to_bytes(file: &PlanFile) -> Vec<u8> {
    let mut b = serde_json::to_vec_pretty(file).unwrap_or_default();
    b.push(b'\n');
    b
}

/// `sha256:<hex>` of the bytes.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", crate::manifest::hex(&Sha256::digest(bytes)))
}

/// Checks the shape of an `--expect-digest` value.
pub fn parse_expected(s: &str) -> Result<String, WkError> {
    let t = s.trim().to_ascii_lowercase();
    let hex = t.strip_prefix("sha256:").unwrap_or(&t);
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(format!("sha256:{hex}"))
    } else {
        Err(WkError::input(
            format!(
                "--expect-digest `{}` is not a sha256 digest",
                s.chars().take(80).collect::<String>()
            ),
            "pass the `sha256:…` line `wkctl plan --out` printed (64 hex digits)",
        ))
    }
}

// ----- reading ----------------------------------------------------------------------------

/// Why a file could not be used. `Refused` (exit 1): a real plan file of another format
/// or rules; `Invalid` (exit 2): not a readable plan file.
fn invalid(name: &str, what: impl std::fmt::Display) -> WkError {
    let mut what = what.to_string();
    if what.chars().count() > 300 {
        what = format!("{}…", what.chars().take(300).collect::<String>());
    }
    WkError::input(
        format!("`{name}` is not a valid wkctl plan file: {what}"),
        "write it with `wkctl plan --to <VERSION> --out <FILE>`; never edit it by hand",
    )
}

/// Reads plan-file bytes strictly: `kind`, then `format_version` (another format is
/// refused with its reason before anything else is read), then every field.
pub fn parse(name: &str, bytes: &[u8]) -> Result<PlanFile, WkError> {
    if bytes.len() as u64 > MAX_BYTES {
        return Err(invalid(name, format!("{} bytes is too large", bytes.len())));
    }
    let v: Value = serde_json::from_slice(bytes).map_err(|e| invalid(name, e))?;
    let Some(obj) = v.as_object() else {
        return Err(invalid(name, "not a JSON object"));
    };
    match obj.get("kind").and_then(Value::as_str) {
        Some(KIND) => {}
        _ if obj.contains_key("nodes") && obj.contains_key("digest") => {
            return Err(invalid(
                name,
                "this is a `plan --json` document, not a plan file (no observed cluster, no inputs)",
            ));
        }
        _ => return Err(invalid(name, "no `\"kind\": \"wkctl-plan\"`")),
    }
    let by = obj
        .get("wkctl")
        .and_then(|w| w.get("version"))
        .and_then(Value::as_str)
        .map_or_else(
            || "an unknown wkctl".into(),
            |s| s.chars().take(60).collect::<String>(),
        );
    match obj.get("format_version").and_then(Value::as_u64) {
        Some(f) if f == u64::from(FORMAT) => {}
        Some(f) => {
            let newer = f > u64::from(FORMAT);
            return Err(WkError::no(
                format!(
                    "`{name}` is plan format {f} (written by wkctl {by}); this wkctl ({}) reads plan format {FORMAT} only",
                    crate::VERSION_LINE
                ),
                if newer {
                    "apply it with the wkctl that planned it (or newer), or plan again with this one"
                } else {
                    "plan again with this wkctl (`wkctl plan --out`) and have the new plan reviewed"
                },
            ));
        }
        None => return Err(invalid(name, "no numeric `format_version`")),
    }
    let file: PlanFile = serde_json::from_slice(bytes).map_err(|e| invalid(name, e))?;
    validate(name, &file)?;
    Ok(file)
}

/// What serde cannot say: times and versions that parse, and one plan for one cluster.
fn validate(name: &str, f: &PlanFile) -> Result<(), WkError> {
    created_at(name, f)?;
    if let Some(o) = &f.observed {
        humantime::parse_rfc3339(&o.at)
            .map_err(|e| invalid(name, format!("`observed.at`: {e}")))?;
    }
    crate::version::WkVersion::parse(&f.plan.to)
        .map_err(|e| invalid(name, format!("`plan.to`: {e}")))?;
    if f.plan.to != f.target.to {
        return Err(invalid(name, "`plan.to` and `target.to` differ"));
    }
    if f.plan.manifest_digest != f.manifest.digest || f.plan.playbook_digest != f.playbook.digest {
        return Err(invalid(
            name,
            "the plan's input digests differ from the recorded inputs'",
        ));
    }
    if (f.plan.source == Source::Live) != f.observed.is_some() {
        return Err(invalid(
            name,
            "a live plan must record the observed cluster, an offline plan must not",
        ));
    }
    Ok(())
}

pub fn created_at(name: &str, f: &PlanFile) -> Result<SystemTime, WkError> {
    humantime::parse_rfc3339(&f.created_at).map_err(|e| invalid(name, format!("`created_at`: {e}")))
}

/// How old the plan is at `now` (zero for a plan from the future within a minute of skew).
pub fn age(name: &str, f: &PlanFile, now: SystemTime) -> Result<Duration, WkError> {
    let at = created_at(name, f)?;
    match now.duration_since(at) {
        Ok(d) => Ok(d),
        Err(e) if e.duration() <= Duration::from_mins(1) => Ok(Duration::ZERO),
        Err(e) => Err(WkError::no(
            format!(
                "`{name}` was created {} in the future ({})",
                humantime::format_duration(Duration::from_secs(e.duration().as_secs())),
                f.created_at
            ),
            "check this machine's clock and the planning machine's; plan again",
        )),
    }
}

/// The plan's JSON without its findings (they are the live check's, re-run at apply).
pub fn comparable(plan: &Value) -> Value {
    let mut v = plan.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("findings");
    }
    v
}

#[cfg(test)]
mod tests;
