//! The manifest as written in YAML: the shape serde reads (with positions for errors),
//! and the source of `wkctl schema manifest`.

#![allow(clippy::wildcard_imports)]
use super::*;

// ----- raw YAML shape (also the source of `wkctl schema manifest`) ------------------------

/// A WuKongIM v2 cluster for `wkctl` (DESIGN §3). Unknown keys are errors.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "wkctl cluster manifest")]
pub(super) struct RawManifest {
    /// Cluster name: 1–64 letters, digits, `-`, `_`, `.`; names the state dir `.wkctl/<name>/`.
    #[schemars(
        with = "String",
        length(min = 1, max = 64),
        regex(pattern = r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")
    )]
    pub(super) name: Spanned<String>,
    /// A built-in playbook (`docker-compose`, `systemd`, `binary-daemon`, `kubernetes`, `sim`)
    /// or a path to a playbook file, relative to this manifest. Default: `docker-compose`.
    #[serde(default)]
    pub(super) playbook: Option<String>,
    /// How wkctl talks to the node HTTP API (port 5001).
    #[serde(default)]
    pub(super) api: Option<RawApi>,
    /// Run playbook steps over the system `ssh` client; omit for local execution.
    #[serde(default)]
    pub(super) ssh: Option<SshConfig>,
    /// Values for the playbook templates (node `vars` override these).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, VarValue>")]
    pub(super) vars: BTreeMap<String, Spanned<VarValue>>,
    /// The cluster's nodes; upgraded one at a time, 1001 first.
    #[schemars(with = "Vec<RawNode>", length(min = 1))]
    pub(super) nodes: Spanned<Vec<RawNode>>,
    /// The rollout policy.
    #[serde(default)]
    pub(super) policy: Option<RawPolicy>,
    /// Send run events to a webhook or a command (README "Notifications").
    #[serde(default)]
    pub(super) notify: Option<RawNotify>,
}

/// Where run events go: exactly one of `url_env` or `command` (or neither, when
/// `--notify` gives the target and this section only picks the events).
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Notify")]
pub(super) struct RawNotify {
    /// Name of the environment variable holding the webhook URL (its secret never goes in
    /// this file, and is never printed).
    #[serde(default)]
    #[schemars(with = "Option<String>", regex(pattern = r"^[A-Za-z0-9_]+$"))]
    pub(super) url_env: Option<Spanned<String>>,
    /// A shell command run for each event with the event JSON on stdin, in this
    /// manifest's directory.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub(super) command: Option<Spanned<String>>,
    /// Event types to send, or `all`. Default: `run_started`, `node_ready`, `node_failed`,
    /// `soak_finished`, `summary`.
    #[serde(default)]
    #[schemars(with = "Option<Vec<NotifyEvent>>")]
    pub(super) events: Option<Vec<Spanned<String>>>,
    /// Bound of one delivery attempt, e.g. `5s` (default `5s`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub(super) timeout: Option<Spanned<String>>,
    /// Webhook attempts after the first, with backoff (default 3).
    #[serde(default)]
    #[schemars(with = "Option<u32>", range(max = 10))]
    pub(super) retries: Option<Spanned<u32>>,
}

/// An event type of a run (the `type` of its JSON), or `all`.
#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub(super) enum NotifyEvent {
    All,
    RunStarted,
    CheckFinished,
    NodeStarted,
    NodeSkipped,
    StepStarted,
    StepFinished,
    GateSignal,
    NodeReady,
    SoakFinished,
    NodeFailed,
    RollbackFinished,
    Waiting,
    Interrupted,
    Summary,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Api")]
pub(super) struct RawApi {
    /// Name of the environment variable holding the managerToken (never the token itself).
    #[serde(default)]
    #[schemars(with = "Option<String>", regex(pattern = r"^[A-Za-z0-9_]+$"))]
    pub(super) token_env: Option<Spanned<String>>,
    /// Per-request timeout, e.g. `5s` (default `5s`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub(super) timeout: Option<Spanned<String>>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Node")]
pub(super) struct RawNode {
    /// `cluster.nodeId` (`WK_CLUSTER_NODEID`): 1..=1023, unique.
    #[schemars(with = "i64", range(min = 1, max = 1023))]
    pub(super) id: Spanned<i64>,
    /// Host name or IP address (used by ssh and the default `api`).
    #[schemars(with = "String")]
    pub(super) host: Spanned<String>,
    /// Base URL of the node API; default `http://<host>:5001`.
    #[serde(default)]
    #[schemars(with = "Option<String>", regex(pattern = r"^https?://[^/\s]+/?$"))]
    pub(super) api: Option<Spanned<String>>,
    /// What is deployed now, e.g. `v2.0.10-20241221` (used by `--offline`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub(super) version: Option<Spanned<String>>,
    /// Template values for this node only, e.g. `{ service: wukongim1 }`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, VarValue>")]
    pub(super) vars: BTreeMap<String, Spanned<VarValue>>,
}

/// Durations are written like `500ms`, `30s`, `10m`, `1h`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Policy")]
pub(super) struct RawPolicy {
    /// `id` (ascending, 1001 first) or `controller-last`.
    #[serde(default)]
    pub(super) order: Option<Order>,
    /// Pause after the first node until confirmed (or `--yes`).
    #[serde(default)]
    pub(super) canary: Option<bool>,
    /// Watch the whole cluster this long after each node (default `30s`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub(super) soak: Option<Spanned<String>>,
    /// Readiness must hold this long (default `10s`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub(super) stable_for: Option<Spanned<String>>,
    /// Per node, from stop to ready (default `10m`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub(super) node_timeout: Option<Spanned<String>>,
    /// Between readiness polls (default `1s`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub(super) poll_interval: Option<Spanned<String>>,
    /// Default timeout of one playbook step (default `5m`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub(super) step_timeout: Option<Spanned<String>>,
    /// Accept a node stuck in `Joining` by upstream bug #529 (WuKongIM #529) when wkctl
    /// sees the evidence: online, config caught up, holding slot replicas, nothing left to
    /// migrate (default `true`). `false` makes such a node block `check` and the gate.
    #[serde(default)]
    pub(super) accept_stuck_joining: Option<bool>,
    /// Service-level gate of the soak: client connections come back after each node
    /// (WuKongIM's upgrade guide asks to verify them after each node).
    #[serde(default)]
    pub(super) clients: Option<RawClients>,
    /// Opt-in end-to-end smoke test after each node: `/route`, `/message/send` to the
    /// probe channel through the upgraded node, read back through another node.
    #[serde(default)]
    pub(super) smoke: Option<RawSmoke>,
}

/// `policy.clients`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ClientsPolicy")]
pub(super) struct RawClients {
    /// Cluster-wide connections must come back to this share of the count before the
    /// stop: `90%` (default), `0.9` or `90`.
    #[serde(default)]
    pub(super) recover: Option<RawRatio>,
    /// Within this long after the node is ready (default: the soak).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub(super) within: Option<Spanned<String>>,
    /// Below this many connections before the stop the check is skipped (default 50).
    #[serde(default)]
    pub(super) min: Option<u64>,
    /// `fail` (default) stops the run; `warn` reports the shortfall and goes on.
    #[serde(default)]
    pub(super) on_shortfall: Option<super::OnShortfall>,
}

/// A share: a number (`0.9`, `90`) or a percentage string (`"90%"`).
#[derive(Deserialize, JsonSchema)]
#[serde(untagged)]
pub(super) enum RawRatio {
    Num(f64),
    Str(String),
}

/// `policy.smoke`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "SmokePolicy")]
pub(super) struct RawSmoke {
    /// The dedicated probe channel (the only channel wkctl ever writes to).
    pub(super) channel: String,
    /// Its channel type (default 2, group).
    #[serde(default)]
    pub(super) channel_type: Option<u8>,
    /// The probe uid (`/route`, `from_uid`, `login_uid` of the read-back).
    pub(super) uid: String,
}

/// A template variable value: YAML strings, numbers and booleans are all accepted.
#[derive(Deserialize, JsonSchema)]
#[serde(untagged)]
pub(super) enum VarValue {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

/// The JSON Schema of `cluster.yaml`, derived from the types the loader deserializes.
pub fn json_schema() -> schemars::Schema {
    schemars::schema_for!(RawManifest)
}

impl VarValue {
    pub(super) fn into_string(self) -> String {
        match self {
            VarValue::Str(s) => s,
            VarValue::Int(i) => i.to_string(),
            VarValue::Float(f) => f.to_string(),
            VarValue::Bool(b) => b.to_string(),
        }
    }
}
