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

use raw::RawManifest;
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
            "pass `-m path/to/cluster.yaml`, set `WKCTL_MANIFEST`, or run `wkctl init` to write one",
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
    let at = |line: u64, col: u64, msg: String, hint: &str| {
        WkError::input(format!("{shown}:{line}:{col}: {msg}"), hint)
    };
    let span_err = |loc: &serde_saphyr::Location, msg: String, hint: &str| {
        at(loc.line(), loc.column(), msg, hint)
    };

    let raw: RawManifest = serde_saphyr::from_str(text).map_err(|e| {
        let (line, col) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
        let mut msg = e.without_snippet().to_string();
        // The rendered message may repeat the position; keep one line.
        msg = msg.lines().next().unwrap_or("invalid YAML").to_string();
        let hint = if msg.contains("unknown field") {
            "remove or fix the key; see the manifest format in the README"
        } else {
            "check the YAML syntax and the manifest format in the README"
        };
        at(line, col, msg, hint)
    })?;

    let name = raw.name.value.trim().to_string();
    if name.is_empty()
        || name.starts_with('.')
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        || name.len() > 64
    {
        return Err(span_err(
            &raw.name.referenced,
            format!(
                "cluster name `{name}` must be 1–64 characters of letters, digits, `-`, `_`, `.`"
            ),
            "the name is used as the state directory `.wkctl/<name>/`",
        ));
    }

    let timeout = match raw.api.as_ref().and_then(|a| a.timeout.as_ref()) {
        Some(s) => duration(s, &shown)?,
        None => Duration::from_secs(5),
    };
    let token_env = match raw.api.as_ref().and_then(|a| a.token_env.as_ref()) {
        Some(t) => {
            let v = t.value.trim();
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                // Never echo the value: it may be the token itself, pasted by mistake.
                return Err(span_err(
                    &t.referenced,
                    format!(
                        "`api.token_env` must be the NAME of an environment variable (letters, digits, `_`), not a value ({} characters given, not shown: it may be the token itself)",
                        v.chars().count()
                    ),
                    "put the token in an env var (e.g. `WK_MANAGER_TOKEN`) and name it here; never put the token in the file",
                ));
            }
            Some(v.to_string())
        }
        None => None,
    };

    let vars = raw
        .vars
        .into_iter()
        .map(|(k, v)| (k, v.value.into_string()))
        .collect();

    if raw.nodes.value.is_empty() {
        return Err(span_err(
            &raw.nodes.referenced,
            "`nodes` is empty".into(),
            "list at least one node with `id` and `host`",
        ));
    }
    let mut nodes: Vec<Node> = Vec::with_capacity(raw.nodes.value.len());
    let mut seen: BTreeMap<u64, u64> = BTreeMap::new();
    // Each node's API, normalised (`scheme://host:port`), with the node and its line:
    // two nodes on one API would have wkctl judge (and smoke-test "through another node")
    // one process as two.
    let mut apis: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for rn in raw.nodes.value {
        let loc = &rn.id.referenced;
        let id = u64::try_from(rn.id.value).unwrap_or(0);
        if id == 0 || id > MAX_NODE_ID {
            return Err(span_err(
                loc,
                format!("node id {} is out of range 1..=1023", rn.id.value),
                "WuKongIM uses the node id as its snowflake id, so it must be 1..=1023 (e.g. 1001)",
            ));
        }
        if let Some(first_line) = seen.insert(id, loc.line()) {
            return Err(span_err(
                loc,
                format!("duplicate node id {id} (first at line {first_line})"),
                "every node needs its own `cluster.nodeId`",
            ));
        }
        let host = rn.host.value.trim().to_string();
        if host.is_empty() || host.contains(char::is_whitespace) || host.contains('/') {
            return Err(span_err(
                &rn.host.referenced,
                format!("node {id}: invalid host `{host}`"),
                "give a host name or IP address",
            ));
        }
        let api = match &rn.api {
            Some(a) => {
                let url = a.value.trim().trim_end_matches('/').to_string();
                let parsed = url::Url::parse(&url);
                let valid = parsed.as_ref().is_ok_and(|u| {
                    matches!(u.scheme(), "http" | "https") && u.host_str().is_some()
                });
                if !valid
                    || parsed
                        .as_ref()
                        .is_ok_and(|u| u.path() != "/" && !u.path().is_empty())
                {
                    return Err(span_err(
                        &a.referenced,
                        format!("node {id}: `api` is not a valid base URL: `{url}`"),
                        "use e.g. `http://10.0.0.11:5001` (scheme, host and port, no path)",
                    ));
                }
                url
            }
            None => default_api(&host),
        };
        let api_line = rn.api.as_ref().map_or(loc.line(), |a| a.referenced.line());
        if let Some((other, other_line)) = apis.insert(api_key(&api), (id, api_line)) {
            return Err(at(
                api_line,
                rn.api
                    .as_ref()
                    .map_or(loc.column(), |a| a.referenced.column()),
                format!("nodes {other} (line {other_line}) and {id} have the same API `{api}`"),
                "give every node its own `api` (host and port of that node's HTTP API, 5001 by default)",
            ));
        }
        let version = match rn.version {
            Some(v) => Some(WkVersion::parse(&v.value).map_err(|e| {
                span_err(
                    &v.referenced,
                    format!("node {id}: {e}"),
                    "write the deployed tag, e.g. `v2.0.10-20241221`",
                )
            })?),
            None => None,
        };
        let vars = rn
            .vars
            .into_iter()
            .map(|(k, v)| (k, v.value.into_string()))
            .collect();
        nodes.push(Node {
            id,
            host,
            api,
            version,
            vars,
        });
    }

    let mut policy = Policy::default();
    if let Some(p) = raw.policy {
        if let Some(o) = p.order {
            policy.order = o;
        }
        if let Some(c) = p.canary {
            policy.canary = c;
        }
        if let Some(a) = p.accept_stuck_joining {
            policy.accept_stuck_joining = a;
        }
        let set = |slot: &mut Duration, v: &Option<Spanned<String>>| -> Result<(), WkError> {
            if let Some(s) = v {
                *slot = duration(s, &shown)?;
            }
            Ok(())
        };
        set(&mut policy.soak, &p.soak)?;
        set(&mut policy.stable_for, &p.stable_for)?;
        set(&mut policy.node_timeout, &p.node_timeout)?;
        set(&mut policy.poll_interval, &p.poll_interval)?;
        set(&mut policy.step_timeout, &p.step_timeout)?;
        if let Some(c) = &p.clients {
            policy.clients = clients_policy(c, &shown)?;
        }
        if let Some(sm) = &p.smoke {
            policy.smoke = Some(smoke_policy(sm)?);
        }
        // Only a value written in the file can be zero, so the error points at it.
        let zero = [
            ("poll_interval", policy.poll_interval, &p.poll_interval),
            ("node_timeout", policy.node_timeout, &p.node_timeout),
            ("step_timeout", policy.step_timeout, &p.step_timeout),
        ]
        .into_iter()
        .find_map(|(key, d, s)| s.as_ref().filter(|_| d.is_zero()).map(|s| (key, s)));
        if let Some((key, s)) = zero {
            return Err(span_err(
                &s.referenced,
                format!("`policy.{key}` must be greater than zero"),
                "e.g. `poll_interval: 1s`, `node_timeout: 10m`",
            ));
        }
    }

    let notify = match raw.notify {
        Some(n) => Some(notify_config(n, &shown)?),
        None => None,
    };

    let digest = hex(&Sha256::digest(text.as_bytes()));
    Ok(Manifest {
        path: path.to_path_buf(),
        name,
        playbook: raw.playbook.unwrap_or_else(|| "docker-compose".to_string()),
        api: ApiConfig { token_env, timeout },
        ssh: raw.ssh,
        vars,
        nodes,
        policy,
        notify,
        digest,
    })
}

/// Validates `notify:` (README "Notifications").
fn notify_config(n: raw::RawNotify, shown: &str) -> Result<NotifyConfig, WkError> {
    use crate::notify::NotifyTarget;
    let at = |loc: &serde_saphyr::Location, msg: String, hint: &str| {
        WkError::input(
            format!("{shown}:{}:{}: {msg}", loc.line(), loc.column()),
            hint,
        )
    };
    let target = match (n.url_env, n.command) {
        (Some(_), Some(c)) => {
            return Err(at(
                &c.referenced,
                "`notify` has both `url_env` and `command`".into(),
                "keep one: a webhook (`url_env`) or a command",
            ));
        }
        (Some(u), None) => {
            let v = u.value.trim();
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(at(
                    &u.referenced,
                    format!("`notify.url_env` must be an environment variable name, got `{v}`"),
                    "put the webhook URL in an env var (e.g. `WKCTL_WEBHOOK_URL`) and name it here; the URL holds a secret",
                ));
            }
            Some(NotifyTarget::UrlEnv(v.to_string()))
        }
        (None, Some(c)) => {
            if c.value.trim().is_empty() {
                return Err(at(
                    &c.referenced,
                    "`notify.command` is empty".into(),
                    "e.g. `command: ./notify.sh` (it gets each event as JSON on stdin)",
                ));
            }
            Some(NotifyTarget::Command(c.value.trim().to_string()))
        }
        (None, None) => None,
    };
    let mut config = NotifyConfig {
        target,
        ..NotifyConfig::default()
    };
    if let Some(events) = n.events {
        config.events.clear();
        for e in &events {
            let one = crate::notify::parse_events([e.value.as_str()]).map_err(|msg| {
                at(
                    &e.referenced,
                    format!("notify.events: {msg}"),
                    &format!(
                        "use `all` or some of: {}",
                        crate::notify::EVENT_TYPES.join(", ")
                    ),
                )
            })?;
            config.events.extend(one);
        }
    }
    if let Some(t) = &n.timeout {
        config.timeout = duration(t, shown)?;
        if config.timeout.is_zero() {
            return Err(at(
                &t.referenced,
                "`notify.timeout` must be greater than zero".into(),
                "e.g. `timeout: 5s`",
            ));
        }
    }
    if let Some(r) = n.retries {
        if r.value > 10 {
            return Err(at(
                &r.referenced,
                format!("`notify.retries` is {}, at most 10", r.value),
                "a few retries with backoff are enough; the run never waits for notifications",
            ));
        }
        config.retries = r.value;
    }
    Ok(config)
}

/// `scheme://host:port` of an API base URL (lowercase host, the scheme's port when none is
/// written), to tell whether two nodes name one API.
fn api_key(api: &str) -> String {
    url::Url::parse(api).map_or_else(
        |_| api.to_ascii_lowercase(),
        |u| {
            format!(
                "{}://{}:{}",
                u.scheme(),
                u.host_str().unwrap_or("").to_ascii_lowercase(),
                u.port_or_known_default().unwrap_or(0)
            )
        },
    )
}

/// `http://<host>:5001`, bracketing IPv6 literals.
fn default_api(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("http://[{host}]:5001")
    } else {
        format!("http://{host}:5001")
    }
}

/// The longest duration a manifest may give (a run's waits add these to instants).
const MAX_DURATION: Duration = Duration::from_hours(7 * 24);

fn duration(s: &Spanned<String>, shown: &str) -> Result<Duration, WkError> {
    let d = humantime::parse_duration(s.value.trim()).map_err(|e| {
        WkError::input(
            format!(
                "{shown}:{}:{}: invalid duration `{}`: {e}",
                s.referenced.line(),
                s.referenced.column(),
                s.value
            ),
            "write durations like `500ms`, `30s`, `10m` or `1h`",
        )
    })?;
    if d > MAX_DURATION {
        return Err(WkError::input(
            format!(
                "{shown}:{}:{}: duration `{}` is longer than 7 days",
                s.referenced.line(),
                s.referenced.column(),
                s.value.trim()
            ),
            "use a duration of at most `7d` (a node that needs longer is not coming back)",
        ));
    }
    Ok(d)
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

/// Serializes a `Duration` as fractional seconds.
/// `policy.clients` from the file: `recover` as `0.9`, `90` or `"90%"`.
fn clients_policy(c: &raw::RawClients, shown: &str) -> Result<ClientsPolicy, WkError> {
    let mut out = ClientsPolicy::default();
    if let Some(r) = &c.recover {
        let pct = match r {
            raw::RawRatio::Num(f) if *f > 0.0 && *f <= 1.0 => Some(f * 100.0),
            raw::RawRatio::Num(f) if *f > 1.0 && *f <= 100.0 => Some(*f),
            raw::RawRatio::Str(s) => s
                .trim()
                .trim_end_matches('%')
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|f| *f > 0.0 && *f <= 100.0),
            raw::RawRatio::Num(_) => None,
        };
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        match pct {
            Some(p) => out.recover_pct = p.round().max(1.0) as u64,
            None => {
                return Err(WkError::input(
                    format!(
                        "{shown}: `policy.clients.recover` must be a share of the baseline between 0 and 100%"
                    ),
                    "e.g. `recover: 90%` or `recover: 0.9`",
                ));
            }
        }
    }
    if let Some(w) = &c.within {
        out.within = Some(duration(w, shown)?);
    }
    if let Some(m) = c.min {
        out.min = m;
    }
    if let Some(o) = c.on_shortfall {
        out.on_shortfall = o;
    }
    Ok(out)
}

fn smoke_policy(s: &raw::RawSmoke) -> Result<SmokePolicy, WkError> {
    let channel = s.channel.trim().to_string();
    let uid = s.uid.trim().to_string();
    if channel.is_empty() || uid.is_empty() {
        return Err(WkError::input(
            "`policy.smoke` needs a non-empty `channel` and `uid`".to_string(),
            "name a dedicated probe channel and uid, e.g. `smoke: { channel: wkctl-probe, uid: wkctl-probe }`",
        ));
    }
    Ok(SmokePolicy {
        channel,
        channel_type: s.channel_type.unwrap_or(2),
        uid,
    })
}

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
