//! `STATE_DIR/cluster.json`: where a running simulator listens. `wksim serve` writes it;
//! `wksim ctl` and `wkctl demo` read it (the integration tests read it as plain JSON, on
//! purpose: they must not agree with wksim by sharing its types).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterFile {
    /// The control server (`wksim ctl` talks to it).
    pub control: String,
    pub nodes: Vec<NodeAddrs>,
    /// The nodes run elsewhere (`wksim node` in containers); this process is their brain.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub external: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAddrs {
    pub id: u64,
    /// The node's HTTP API, `http://host:port`.
    pub api: String,
    /// The node's cluster port, `host:port`.
    pub cluster_addr: String,
}

impl ClusterFile {
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join("cluster.json")
    }

    /// Reads the file of the simulator running in `state_dir`.
    pub fn read(state_dir: &Path) -> anyhow::Result<ClusterFile> {
        let path = Self::path(state_dir);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading `{}` (is `wksim serve` running?)", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing `{}`", path.display()))
    }

    /// Writes it atomically (a reader never sees half a file).
    pub fn write(&self, state_dir: &Path) -> anyhow::Result<()> {
        let path = Self::path(state_dir);
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(self)?)
            .with_context(|| format!("writing `{}`", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing `{}`", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reads_a_file_without_external() {
        let dir = tempfile::tempdir().unwrap();
        let f = ClusterFile {
            control: "http://127.0.0.1:9".into(),
            nodes: vec![NodeAddrs {
                id: 1001,
                api: "http://127.0.0.1:5001".into(),
                cluster_addr: "127.0.0.1:11110".into(),
            }],
            external: false,
        };
        f.write(dir.path()).unwrap();
        assert_eq!(ClusterFile::read(dir.path()).unwrap(), f);
        let text = std::fs::read_to_string(ClusterFile::path(dir.path())).unwrap();
        assert!(!text.contains("external"), "{text}");
        std::fs::write(ClusterFile::path(dir.path()), "{\"nodes\":[]}").unwrap();
        let e = ClusterFile::read(dir.path()).unwrap_err();
        assert!(format!("{e:#}").contains("control"), "{e:#}");
    }
}
