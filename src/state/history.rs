//! Past runs (issue 13.17): `.wkctl/<name>/history/<started>-<id>.json`, one file per run,
//! written atomically when a run ends (by whoever ends it) and read by `wkctl history`.
//! The state files that `upgrade --discard` moved aside (`state-<ms>.json`) are listed too.

use std::fs;
use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{RunState, StateDir, hostname, now_ms, write_atomic};
use crate::error::WkError;

/// One past run and who ran it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// `user@host` of the wkctl that archived the run.
    pub who: String,
    pub archived_at_ms: u64,
    pub run: RunState,
    /// The run was moved aside by `upgrade --discard` (no `who` recorded then).
    #[serde(default)]
    pub discarded: bool,
    /// Where the entry was read from.
    #[serde(skip)]
    pub path: PathBuf,
}

/// `user@host` of this process (`$USER`, then `$LOGNAME`).
pub fn operator() -> String {
    let user = ["USER", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|u| !u.trim().is_empty()))
        .unwrap_or_else(|| "unknown".to_string());
    format!("{}@{}", user.trim(), hostname())
}

impl StateDir {
    pub fn history_dir(&self) -> PathBuf {
        self.root.join("history")
    }

    /// Records a finished (or failed, or interrupted) run in `history/`. A resumed run keeps
    /// its start time, so archiving it again replaces its entry.
    pub fn archive_run(&self, state: &RunState) -> io::Result<PathBuf> {
        let dir = self.history_dir();
        fs::create_dir_all(&dir)?;
        let id: String = state
            .plan_digest
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(12)
            .collect();
        let id = if id.is_empty() { "run".to_string() } else { id };
        let path = dir.join(format!("{}-{id}.json", state.started_at_ms));
        let entry = HistoryEntry {
            who: operator(),
            archived_at_ms: now_ms(),
            run: state.clone(),
            discarded: false,
            path: path.clone(),
        };
        let text = serde_json::to_vec_pretty(&entry).map_err(io::Error::other)?;
        write_atomic(&path, &text)?;
        Ok(path)
    }

    /// Every past run, oldest first. Unreadable files are errors that name them.
    pub fn history(&self) -> Result<Vec<HistoryEntry>, WkError> {
        let mut out = Vec::new();
        for (dir, discarded) in [(self.history_dir(), false), (self.root.clone(), true)] {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(WkError::input(
                        format!("cannot read `{}`: {e}", dir.display()),
                        "check the directory's permissions",
                    ));
                }
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let json = e.path().extension().is_some_and(|x| x == "json");
                let wanted = json
                    && if discarded {
                        name.starts_with("state-")
                    } else {
                        !name.starts_with('.')
                    };
                if wanted {
                    out.push(read_entry(e.path(), discarded)?);
                }
            }
        }
        out.sort_by_key(|h| (h.run.started_at_ms, h.archived_at_ms));
        // A run archived when it ended and later discarded is one run: keep one entry,
        // marked discarded.
        let mut merged: Vec<HistoryEntry> = Vec::with_capacity(out.len());
        for h in out {
            match merged.iter_mut().find(|m| {
                m.run.started_at_ms == h.run.started_at_ms && m.run.cluster == h.run.cluster
            }) {
                Some(m) => m.discarded |= h.discarded,
                None => merged.push(h),
            }
        }
        let out = merged;
        Ok(out)
    }
}

fn read_entry(path: PathBuf, discarded: bool) -> Result<HistoryEntry, WkError> {
    let bad = |e: String| {
        WkError::input(
            format!("`{}` is not a wkctl history file: {e}", path.display()),
            "move it out of the state directory",
        )
    };
    let text = fs::read_to_string(&path).map_err(|e| bad(e.to_string()))?;
    if discarded {
        let run: RunState = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let archived_at_ms = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.strip_prefix("state-"))
            .and_then(|ms| ms.parse().ok())
            .unwrap_or(run.updated_at_ms);
        return Ok(HistoryEntry {
            who: "unknown".to_string(),
            archived_at_ms,
            run,
            discarded: true,
            path,
        });
    }
    let mut entry: HistoryEntry = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    entry.path = path;
    Ok(entry)
}
