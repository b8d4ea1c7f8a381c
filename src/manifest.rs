//! The cluster manifest (`cluster.yaml`, DESIGN §3): types, loading and validation.
//!
//! Unknown keys are errors; every error names the file, line and column. The manager
//! token is never in the file: `api.token_env` names the environment variable holding it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;
use sha2::{Digest, Sha256};

use crate::error::WkError;
use crate::notify::NotifyConfig;
use crate::version::WkVersion;

/// Largest node id: WuKongIM uses it as the snowflake node id (facts §5.2).
pub const MAX_NODE_ID: u64 = 1023;
/// Manifests larger than this are refused before parsing.
const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

/// Upgrade order (DESIGN §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Order {
    /// Ascending node id, so 1001 first (maintainers' advice, #310).
    #[default]
    Id,
    /// Ascending id, but the current controller last (needs live data).
    ControllerLast,
}

/// The rollout policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    pub order: Order,
    pub canary: bool,
    #[serde(with = "secs")]
    pub soak: Duration,
    #[serde(with = "secs")]
    pub stable_for: Duration,
    #[serde(with = "secs")]
    pub node_timeout: Duration,
    #[serde(with = "secs")]
    pub poll_interval: Duration,
    #[serde(with = "secs")]
    pub step_timeout: Duration,
    /// Accept a node stuck in `Joining` by upstream bug #529 when the evidence holds
    /// (`checks::joining::stuck_joining_529`). Default `true`; `false` refuses it.
    pub accept_stuck_joining: bool,
    /// Service-level gate of the soak (issue #18): client connections come back.
    pub clients: ClientsPolicy,
    /// Opt-in end-to-end smoke test after each node (and `wkctl smoke`).
    pub smoke: Option<SmokePolicy>,
}

/// `policy.clients` (issue #18).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ClientsPolicy {
    /// Cluster-wide connections must come back to this percent of the baseline.
    pub recover_pct: u64,
    /// Within this long after the node is ready (`None`: the soak).
    #[serde(with = "opt_secs")]
    pub within: Option<Duration>,
    /// Below this many connections at baseline the check is skipped.
    pub min: u64,
    pub on_shortfall: OnShortfall,
}

impl Default for ClientsPolicy {
    fn default() -> Self {
        ClientsPolicy {
            recover_pct: 90,
            within: None,
            min: 50,
            on_shortfall: OnShortfall::Fail,
        }
    }
}

/// What a service-level shortfall does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnShortfall {
    /// Stop the run at that node.
    #[default]
    Fail,
    /// Report it and go on.
    Warn,
}

/// `policy.smoke`: the probe channel and uid (wkctl never writes to another channel).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SmokePolicy {
    pub channel: String,
    pub channel_type: u8,
    pub uid: String,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            order: Order::Id,
            canary: false,
            soak: Duration::from_secs(30),
            stable_for: Duration::from_secs(10),
            node_timeout: Duration::from_mins(10),
            poll_interval: Duration::from_secs(1),
            step_timeout: Duration::from_mins(5),
            accept_stuck_joining: true,
            clients: ClientsPolicy::default(),
            smoke: None,
        }
    }
}

/// How wkctl talks to the node API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiConfig {
    /// Name of the environment variable holding the managerToken (never the token itself).
    pub token_env: Option<String>,
    #[serde(with = "secs")]
    pub timeout: Duration,
}

/// How playbook steps reach a node's host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SshConfig {
    /// Login user (default: your ssh config).
    pub user: Option<String>,
    /// ssh port (default: your ssh config, usually 22).
    pub port: Option<u16>,
    /// Private key file passed as `ssh -i`.
    pub identity_file: Option<String>,
    /// Extra `-o` options, e.g. `["StrictHostKeyChecking=yes"]`.
    #[serde(default)]
    pub options: Vec<String>,
}

/// One node of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    pub id: u64,
    pub host: String,
    /// Base URL of the node's HTTP API (port 5001).
    pub api: String,
    /// What the manifest says is deployed (used by `--offline`).
    pub version: Option<WkVersion>,
    pub vars: BTreeMap<String, String>,
}

/// A loaded, validated manifest.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    #[serde(skip)]
    pub path: PathBuf,
    pub name: String,
    pub playbook: String,
    pub api: ApiConfig,
    pub ssh: Option<SshConfig>,
    pub vars: BTreeMap<String, String>,
    pub nodes: Vec<Node>,
    pub policy: Policy,
    /// `notify:`: where run events go (see `crate::notify`).
    pub notify: Option<NotifyConfig>,
    /// sha256 of the file's bytes: drift detection for `upgrade --resume`.
    pub digest: String,
}

impl Manifest {
    pub fn node(&self, id: u64) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The ids of the manifest's nodes that `members` (the cluster's) does not list.
    pub fn missing_from(&self, members: &[u64]) -> Vec<u64> {
        self.nodes
            .iter()
            .map(|n| n.id)
            .filter(|id| !members.contains(id))
            .collect()
    }

    /// The manager token, read from the environment variable the manifest names.
    pub fn token(&self) -> Option<String> {
        self.api
            .token_env
            .as_ref()
            .and_then(|k| std::env::var(k).ok())
            .filter(|t| !t.is_empty())
    }
}

mod raw;
mod validate;

pub use raw::json_schema;

// ----- loading --------------------------------------------------------------------------

/// Where the manifest comes from: `-m`, then `$WKCTL_MANIFEST`, then `./cluster.yaml`
/// (clap resolves the first two; this is the fallback).
pub fn resolve_path(flag: Option<&Path>) -> PathBuf {
    flag.map_or_else(|| PathBuf::from("cluster.yaml"), Path::to_path_buf)
}

/// Reads and validates a manifest file.
pub fn load(path: &Path) -> Result<Manifest, WkError> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| {
        WkError::input(
            format!("cannot read manifest `{shown}`: {e}"),
            "pass `-m path/to/cluster.yaml`, set `WKCTL_MANIFEST`, or run `wkctl init` to write \
             one",
        )
    })?;
    if meta.len() > MAX_MANIFEST_BYTES {
        return Err(WkError::input(
            format!("manifest `{shown}` is larger than 4 MiB"),
            "a cluster manifest is a few kilobytes; check the path",
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| {
        WkError::input(
            format!("cannot read manifest `{shown}`: {e}"),
            "check the file's permissions",
        )
    })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        WkError::input(
            format!("manifest `{shown}` is not UTF-8"),
            "save it as UTF-8",
        )
    })?;
    parse(&text, path)
}

/// Parses and validates manifest text; `path` is used in messages.
pub fn parse(text: &str, path: &Path) -> Result<Manifest, WkError> {
    let shown = path.display().to_string();
    let place = validate::Place { shown: &shown };
    let raw = validate::yaml(text, place)?;
    let name = validate::cluster_name(&raw.name, place)?;
    let api = validate::api_config(raw.api.as_ref(), place)?;
    let vars = validate::vars(raw.vars);
    let nodes = validate::nodes(raw.nodes, place)?;
    let policy = match &raw.policy {
        Some(p) => validate::policy(p, place)?,
        None => Policy::default(),
    };
    let notify = match raw.notify {
        Some(n) => Some(validate::notify_config(n, place)?),
        None => None,
    };
    Ok(Manifest {
        path: path.to_path_buf(),
        name,
        playbook: raw.playbook.unwrap_or_else(|| "docker-compose".to_string()),
        api,
        ssh: raw.ssh,
        vars,
        nodes,
        policy,
        notify,
        digest: hex(&Sha256::digest(text.as_bytes())),
    })
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Serializes an optional `Duration` as fractional seconds (or `null`).
mod opt_secs {
    use serde::Serializer;
    use std::time::Duration;
    #[allow(clippy::ref_option)]
    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_f64(d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }
}

/// Serializes a `Duration` as fractional seconds.
mod secs {
    use serde::Serializer;
    use std::time::Duration;
    #[allow(clippy::trivially_copy_pass_by_ref)]
    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests;
