//! Run state (DESIGN §6): `.wkctl/<name>/state.json`, written atomically (write, fsync,
//! rename) after every step, and the state directory that holds it. The cluster lock is
//! [`lock`].

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::WkError;
use crate::plan::{Plan, PlanKind, PlanStepKind};

pub const STATE_FORMAT: u32 = 1;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Completed,
    Failed,
    Interrupted,
}

impl RunStatus {
    pub fn unfinished(self) -> bool {
        self != RunStatus::Completed
    }

    /// The serde name (`completed`, …), as the summary event shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    Pending,
    InProgress,
    /// Verified on the target (gate held for `stable_for`, soak passed).
    Ready,
    Skipped,
    Failed,
    RolledBack,
}

impl From<&NodeRun> for crate::plan::resume::NodeProgress {
    fn from(n: &NodeRun) -> Self {
        use crate::plan::resume::Progress;
        crate::plan::resume::NodeProgress {
            id: n.id,
            from: n.from.clone(),
            status: match n.status {
                NodeStatus::InProgress => Progress::InProgress,
                NodeStatus::Ready => Progress::Ready,
                NodeStatus::Failed => Progress::Failed,
                NodeStatus::Pending | NodeStatus::Skipped | NodeStatus::RolledBack => {
                    Progress::Other
                }
            },
            stop_began: n.stop_began(),
            stop_finished: n.finished(PlanStepKind::Stop),
            proven_commit: n.proven_commit.clone(),
        }
    }
}

impl NodeStatus {
    /// The word an upgrade's summary (and `wkctl history`) uses: a `ready` node is `upgraded`.
    pub fn summary_word(self) -> &'static str {
        self.summary_word_in(PlanKind::Upgrade)
    }

    /// The word the summary of a run of `kind` uses: a `ready` node is `upgraded`, or
    /// `restarted` in a restart (issue 19).
    pub fn summary_word_in(self, kind: PlanKind) -> &'static str {
        match self {
            NodeStatus::Pending => "pending",
            NodeStatus::InProgress => "in_progress",
            NodeStatus::Ready => kind.past(),
            NodeStatus::Skipped => "skipped",
            NodeStatus::Failed => "failed",
            NodeStatus::RolledBack => "rolled_back",
        }
    }
}

/// The node's version and uptime just before it was stopped (gate signal B).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub version: Option<String>,
    /// `/varz.commit` of the old process (a `-dev` target is proven by a new commit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    pub uptime_s: Option<f64>,
    pub at_ms: u64,
}

/// Saved in the run state (a node's `clients`), defined beside the check that uses it.
pub use crate::gate::clients::ClientBaseline;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRun {
    pub id: u64,
    pub from: Option<String>,
    pub status: NodeStatus,
    /// The last step started.
    pub step: Option<PlanStepKind>,
    /// Steps that finished successfully, in order.
    pub done: Vec<PlanStepKind>,
    pub baseline: Option<Baseline>,
    /// The client/message baseline of its stop (absent in state files of older runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clients: Option<ClientBaseline>,
    /// When wkctl issued the node's `stop` (ms since the epoch): a restart's new process
    /// must have started after it (gate signal B of `wkctl restart`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_issued_at_ms: Option<u64>,
    /// The `/varz.commit` the node ran when its gate passed: a later run to the same
    /// `-dev` target recognises the build by it (a `-dev` image reports a release tag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proven_commit: Option<String>,
    pub started_at_ms: Option<u64>,
    pub finished_at_ms: Option<u64>,
    pub error: Option<String>,
}

impl NodeRun {
    pub fn new(id: u64, from: Option<String>) -> Self {
        NodeRun {
            id,
            from,
            status: NodeStatus::Pending,
            step: None,
            done: Vec::new(),
            baseline: None,
            clients: None,
            stop_issued_at_ms: None,
            proven_commit: None,
            started_at_ms: None,
            finished_at_ms: None,
            error: None,
        }
    }
    pub fn finished(&self, step: PlanStepKind) -> bool {
        self.done.contains(&step)
    }

    /// The node's stop has begun (in this run or an earlier one): it may be down.
    pub fn stop_began(&self) -> bool {
        self.finished(PlanStepKind::Stop) || self.step == Some(PlanStepKind::Stop)
    }

    /// Forget the node's progress: it is planned again from the start (after a rollback
    /// brought it back to its old version).
    pub fn restart_from_scratch(&mut self) {
        self.step = None;
        self.done.clear();
        self.baseline = None;
        self.clients = None;
        self.stop_issued_at_ms = None;
        self.proven_commit = None;
        self.error = None;
    }
}

/// Everything needed to resume a run, and a record of what happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    pub format_version: u32,
    /// `upgrade` or `restart` (issue 19); a state file from before restarts is an upgrade.
    #[serde(default)]
    pub kind: PlanKind,
    pub cluster: String,
    pub to: String,
    pub plan_digest: String,
    pub manifest_digest: String,
    pub playbook_digest: String,
    pub playbook: String,
    pub status: RunStatus,
    pub started_at_ms: u64,
    pub updated_at_ms: u64,
    pub nodes: Vec<NodeRun>,
    /// The plan file the run executes (`upgrade --plan`); its copy is `plan.json` here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_file: Option<PlanRef>,
    /// `upgrade --nodes`: the run is limited to these nodes (a resume keeps the limit).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub only_nodes: Vec<u64>,
}

/// Which reviewed plan a run executes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanRef {
    /// `sha256:…` of the plan file's bytes.
    pub digest: String,
    /// The path it was applied from.
    pub file: String,
    /// When it was planned.
    pub created_at: String,
}

/// What a run records of the inputs it started from (its `--resume` refuses when they
/// changed).
#[derive(Debug, Clone)]
pub struct StartedFrom {
    /// The manifest's digest.
    pub manifest_digest: String,
    /// The playbook's name.
    pub playbook: String,
    /// The playbook's digest.
    pub playbook_digest: String,
}

impl RunState {
    /// The state of a new run of `plan`: running, every planned node pending on the
    /// version it runs now.
    pub fn new(plan: &Plan, inputs: StartedFrom) -> Self {
        RunState {
            format_version: STATE_FORMAT,
            kind: plan.kind,
            cluster: plan.cluster.clone(),
            to: plan.to.to_string(),
            plan_digest: plan.digest.clone(),
            manifest_digest: inputs.manifest_digest,
            playbook_digest: inputs.playbook_digest,
            playbook: inputs.playbook,
            status: RunStatus::Running,
            started_at_ms: now_ms(),
            updated_at_ms: now_ms(),
            nodes: plan
                .nodes
                .iter()
                .map(|n| NodeRun::new(n.id, n.from.clone()))
                .collect(),
            plan_file: None,
            only_nodes: Vec::new(),
        }
    }

    pub fn node_mut(&mut self, id: u64) -> Option<&mut NodeRun> {
        self.nodes.iter_mut().find(|n| n.id == id)
    }
    pub fn node(&self, id: u64) -> Option<&NodeRun> {
        self.nodes.iter().find(|n| n.id == id)
    }
}

/// The manifest as a run started with it, in its state directory.
const MANIFEST_SNAPSHOT: &str = "manifest.snapshot.yaml";
/// The playbook (JSON) as a run started with it, in its state directory.
const PLAYBOOK_SNAPSHOT: &str = "playbook.snapshot.json";

/// `.wkctl/<cluster>/`.
#[derive(Debug, Clone)]
pub struct StateDir {
    pub root: PathBuf,
}

impl StateDir {
    pub fn new(base: &Path, cluster: &str) -> Self {
        StateDir {
            root: base.join(cluster),
        }
    }
    pub fn state_path(&self) -> PathBuf {
        self.root.join("state.json")
    }
    pub fn lock_path(&self) -> PathBuf {
        self.root.join("lock")
    }

    /// Creates the directory and proves it is writable, so a run never starts without
    /// a place to save its state.
    pub fn ensure_writable(&self) -> Result<(), WkError> {
        let fail = |e: io::Error| {
            WkError::no(
                format!(
                    "state directory `{}` is not writable: {e}",
                    self.root.display()
                ),
                "free disk space or fix permissions, or pass `--state-dir DIR`; wkctl refuses to run without saving state",
            )
        };
        fs::create_dir_all(&self.root).map_err(fail)?;
        let probe = self.root.join(format!(".probe-{}", std::process::id()));
        write_atomic(&probe, b"probe\n").map_err(fail)?;
        fs::remove_file(&probe).map_err(fail)?;
        Ok(())
    }

    pub fn load(&self) -> Result<Option<RunState>, WkError> {
        let path = self.state_path();
        let Some(text) = read_if_present(&path)? else {
            return Ok(None);
        };
        serde_json::from_str(&text).map(Some).map_err(|e| {
            WkError::input(
                format!("`{}` is not a valid wkctl state file: {e}", path.display()),
                "move it away to start over (`wkctl upgrade --discard` keeps a copy)",
            )
        })
    }

    pub fn save(&self, state: &RunState) -> io::Result<()> {
        let mut s = state.clone();
        s.updated_at_ms = now_ms();
        let text = serde_json::to_vec_pretty(&s).map_err(io::Error::other)?;
        write_atomic(&self.state_path(), &text)
    }

    /// The state file exists (readable or not).
    pub fn has_state(&self) -> bool {
        self.state_path().exists()
    }

    /// Copies the run's inputs as they were when it started (the manifest file's bytes
    /// and the playbook as JSON), so `--resume` can show exactly what changed.
    pub fn save_snapshots(&self, manifest: &[u8], playbook: &[u8]) -> Result<(), WkError> {
        write_atomic(&self.root.join(MANIFEST_SNAPSHOT), manifest).map_err(|e| {
            WkError::no(
                format!("cannot save the manifest snapshot: {e}"),
                "free disk space",
            )
        })?;
        write_atomic(&self.root.join(PLAYBOOK_SNAPSHOT), playbook).map_err(|e| {
            WkError::no(
                format!("cannot save the playbook snapshot: {e}"),
                "free disk space",
            )
        })
    }

    /// The manifest as the run started with it (empty when its snapshot is missing).
    pub fn manifest_snapshot(&self) -> String {
        fs::read_to_string(self.root.join(MANIFEST_SNAPSHOT)).unwrap_or_default()
    }

    /// The playbook (as JSON) as the run started with it (empty when missing).
    pub fn playbook_snapshot(&self) -> String {
        fs::read_to_string(self.root.join(PLAYBOOK_SNAPSHOT)).unwrap_or_default()
    }

    /// Refuses while a live process holds this directory's lock (unless `break_lock`):
    /// the unfinished state is then that run's own, not one to `--resume` or `--discard`.
    /// A stale lock (its process gone) does not refuse. Every command that takes the
    /// run's lock asks this first, so a run in progress is named before anything else.
    pub fn ensure_no_live_run(&self, break_lock: bool) -> Result<(), WkError> {
        lock::refuse_if_live(self, break_lock)
    }

    /// Moves the state file aside (`state-<ms>.json`) and returns the new path. Works on
    /// an unreadable file too (`upgrade --discard` of a corrupt state).
    pub fn archive(&self) -> io::Result<PathBuf> {
        let to = self.root.join(format!("state-{}.json", now_ms()));
        fs::rename(self.state_path(), &to)?;
        Ok(to)
    }
}

/// The text of a state file, `None` when it does not exist; one that cannot be read is
/// an error (never taken for "no run").
pub fn read_if_present(path: &Path) -> Result<Option<String>, WkError> {
    match fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(WkError::input(
            format!("cannot read `{}`: {e}", path.display()),
            "check the file's permissions",
        )),
    }
}

/// Write to a temp file in the same directory, fsync, rename over the target.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("state"),
        std::process::id()
    ));
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

mod lock;
pub use lock::{
    ClusterLock, LockGuard, LockOwner, Takeover, acquire, acquire_as, acquire_cluster,
    cluster_lock_dirs, cluster_lock_keys, cluster_lock_locations, hostname, live_owner,
    lock_dir_name, lock_dirs, lock_locations, lock_owner, member_lock_keys, user_lock_base,
};

mod history;
pub use history::{HistoryEntry, operator};

#[cfg(test)]
mod tests;
