//! `recover.json`, the state of a recover run: its inputs and its step cursor, read
//! back for `--resume` and checked against the plan observed now.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{FORMAT_VERSION, RecoverPlan, STATE_FILE, ids};
use crate::error::WkError;

/// How a recover run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoverStatus {
    InProgress,
    Failed,
    Interrupted,
    Done,
}

impl RecoverStatus {
    pub fn unfinished(self) -> bool {
        self != RecoverStatus::Done
    }
}

/// `recover.json`: the run's inputs and its step cursor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecoverState {
    pub format_version: u32,
    pub cluster: String,
    pub status: RecoverStatus,
    pub started_at_ms: u64,
    pub updated_at_ms: u64,
    /// The versions the nodes are started with (kept, so a resumed run plans the same).
    pub versions: BTreeMap<u64, String>,
    /// Index of the first step not finished.
    pub cursor: usize,
    /// The step begun and not finished (a kill or Ctrl-C in it): observed before re-run.
    pub in_step: Option<usize>,
    /// The doctor report written by step 1.
    pub doctor_report: Option<String>,
    pub error: Option<String>,
    /// What the last observation showed when it failed.
    pub last_seen: Option<String>,
}

impl RecoverState {
    pub fn new(cluster: &str, versions: BTreeMap<u64, String>) -> Self {
        let now = crate::state::now_ms();
        RecoverState {
            format_version: FORMAT_VERSION,
            cluster: cluster.to_string(),
            status: RecoverStatus::InProgress,
            started_at_ms: now,
            updated_at_ms: now,
            versions,
            cursor: 0,
            in_step: None,
            doctor_report: None,
            error: None,
            last_seen: None,
        }
    }
}

/// The unfinished `wkctl recover` run of a state directory, if any: `upgrade` does not
/// start while one exists (its nodes may be stopped). A `recover.json` that cannot be
/// read is an error, not "no run": the cold start it records may have left nodes down.
pub fn unfinished(dir: &crate::state::StateDir) -> Result<Option<RecoverState>, WkError> {
    let path = dir.root.join(STATE_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(WkError::input(
                format!("cannot read `{}`: {e}", path.display()),
                "check the file's permissions",
            ));
        }
    };
    serde_json::from_str::<RecoverState>(&text)
        .map(|s| Some(s).filter(|s| s.status.unfinished()))
        .map_err(|e| {
            WkError::input(
                format!(
                    "`{}` is not a valid wkctl recover state file: {e}",
                    path.display()
                ),
                "a recover run may have left nodes down: check with `wkctl status`, then `wkctl \
                 recover --discard` (keeps a copy)",
            )
        })
}

/// Whether a saved run can be resumed with `plan`: same cluster, same format, the same
/// nodes (a manifest edited since would shift the step cursor), a cursor inside it.
pub fn resumable(state: &RecoverState, plan: &RecoverPlan) -> Result<(), String> {
    if state.format_version != FORMAT_VERSION {
        return Err(format!(
            "it has format version {}, this wkctl writes {FORMAT_VERSION}",
            state.format_version
        ));
    }
    if state.cluster != plan.cluster {
        return Err(format!(
            "it is a run of cluster `{}`, the manifest names `{}`",
            state.cluster, plan.cluster
        ));
    }
    let saved: Vec<u64> = state.versions.keys().copied().collect();
    if saved != plan.nodes {
        return Err(format!(
            "it was started for nodes {}, the manifest now has {}",
            ids(&saved),
            ids(&plan.nodes)
        ));
    }
    let total = plan.steps.len();
    if state.cursor > total || state.in_step.is_some_and(|i| i >= total) {
        return Err(format!(
            "its step cursor ({}, in step {:?}) is outside the {total} steps of the plan",
            state.cursor, state.in_step
        ));
    }
    Ok(())
}
