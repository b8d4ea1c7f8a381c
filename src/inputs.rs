//! The inputs every command starts from: the manifest and its playbook, loaded and
//! validated once. Below the commands: the executor, `doctor` and the observation use it
//! without reaching up into `commands`.

use std::path::{Path, PathBuf};

use crate::error::WkError;
use crate::manifest::{self, Manifest};
use crate::playbook::{self, Playbook};
use crate::state::StateDir;

/// The manifest and its playbook, loaded and validated.
pub struct Context {
    pub manifest: Manifest,
    pub playbook: Playbook,
}

impl Context {
    /// Loads the manifest at `flag` (`-m`/`$WKCTL_MANIFEST`, else `./cluster.yaml`) and its
    /// playbook.
    pub fn load(flag: Option<&Path>) -> Result<Context, WkError> {
        let path = manifest::resolve_path(flag);
        let manifest = manifest::load(&path)?;
        let dir = manifest_dir(&path);
        let playbook = playbook::load(&manifest.playbook, &dir)?;
        // Registers the manifest's secrets (token, webhook URL) for the scrub of host
        // output ([`crate::scrub::scrub_known`]) in every command, probing or not; a bad
        // token is reported where the client is used.
        let _ = crate::probe::Client::from_manifest(&manifest);
        Ok(Context { manifest, playbook })
    }

    /// The cluster-wide locks' directories, one per key of its nodes' addresses
    /// ([`crate::state::cluster_lock_keys`]), created.
    pub fn cluster_lock_dirs(&self) -> Result<Vec<StateDir>, WkError> {
        crate::state::cluster_lock_dirs(&self.apis())
    }

    /// The cluster-wide locks' directories (nothing is created).
    pub fn cluster_lock_locations(&self) -> Vec<StateDir> {
        crate::state::cluster_lock_locations(&self.apis())
    }

    fn apis(&self) -> Vec<&str> {
        self.manifest.nodes.iter().map(|n| n.api.as_str()).collect()
    }

    /// Refuses while a live run holds the lock of `dir` (the state directory) or the
    /// cluster's per-user lock (a run started from another directory), unless
    /// `break_lock`: every command that takes the run's locks asks this before it judges
    /// any state or asks any question, so a run in progress is named first wherever it
    /// was started. Reads only; creates nothing.
    pub fn ensure_no_live_run(&self, dir: &StateDir, break_lock: bool) -> Result<(), WkError> {
        dir.ensure_no_live_run(break_lock)?;
        self.cluster_lock_locations()
            .iter()
            .try_for_each(|d| d.ensure_no_live_run(break_lock))
    }
}

/// The directory holding the manifest (relative paths in it are resolved against it).
pub fn manifest_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The default state directory base: `.wkctl/` beside the manifest.
pub fn default_state_base(manifest_path: &Path) -> PathBuf {
    manifest_dir(manifest_path).join(".wkctl")
}

/// The inputs (as [`Context::load`]) and the cluster's state directory (as [`state_dir`]):
/// what every command that runs against the cluster starts from.
pub fn load_with_state(
    flag: Option<&Path>,
    explicit: Option<&Path>,
) -> Result<(Context, StateDir), WkError> {
    let ctx = Context::load(flag)?;
    let dir = state_dir(flag, explicit, &ctx.manifest.name);
    Ok((ctx, dir))
}

/// The cluster's state directory: `explicit` (`--state-dir`), else `.wkctl/` next to the
/// manifest `flag` names (as for [`Context::load`]).
pub fn state_dir(flag: Option<&Path>, explicit: Option<&Path>, cluster: &str) -> StateDir {
    let base = explicit.map_or_else(
        || default_state_base(&manifest::resolve_path(flag)),
        Path::to_path_buf,
    );
    StateDir::new(&base, cluster)
}
