//! Typed answers of the `WuKongIM` v2 node API (facts §3), omitempty-aware.
//!
//! Go's `encoding/json` leaves out zero values tagged `omitempty` (facts §3.3, §3.6):
//! `online` absent means offline, `leader` absent means 0, slot 0 has no `id`, a slot
//! `status` absent means Normal. Every field therefore has a default, except a node's
//! `id`. Unknown keys are ignored (real clusters add fields) and nothing depends on key
//! order. Where a simulator or a future tag might write `true` for `1` (or a number for
//! a string id), the parsers accept both.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// `/health` answer (facts §3.1): `200 {"status":"ok"}` or `500 {"status":"error","message":...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    pub ok: bool,
    pub message: Option<String>,
}

/// The raw `/health` body.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct HealthBody {
    #[serde(default, deserialize_with = "lenient_string")]
    pub status: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub message: String,
}

/// HTTP 400 error body (facts §2.4): `{"msg":"...","status":400}`; `status` may be 403.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ApiErrorBody {
    #[serde(default, deserialize_with = "lenient_string")]
    pub msg: String,
    #[serde(default)]
    pub status: Option<i64>,
}

/// `/varz` (facts §3.2). Only the fields wkctl uses are typed; all have defaults.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Varz {
    /// The node id as a string (`"1001"`).
    #[serde(default, deserialize_with = "lenient_string")]
    pub server_id: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub server_name: String,
    /// `v2.2.5-20260422`, `2.2.5-20260422`, or `""` for a plain `go build` (facts §7.4).
    #[serde(default, deserialize_with = "lenient_string")]
    pub version: String,
    /// Go `myUptime` format: `45s`, `3m12s`, `1d2h3m4s`; see [`parse_go_uptime`].
    #[serde(default, deserialize_with = "lenient_string")]
    pub uptime: String,
    /// Client connections (issue #18, facts §3.2). `None` when missing or not a count:
    /// unknown, never a failed parse.
    #[serde(default, deserialize_with = "lenient_count")]
    pub connections: Option<u64>,
    /// Messages in/out since the process started (`internal/api/varz.go` v2.2.5-20260422).
    #[serde(default, deserialize_with = "lenient_counter")]
    pub in_msgs: Option<u64>,
    #[serde(default, deserialize_with = "lenient_counter")]
    pub out_msgs: Option<u64>,
    #[serde(default, deserialize_with = "lenient_count")]
    pub slow_clients: Option<u64>,
    #[serde(default, deserialize_with = "lenient_count")]
    pub retry_queue: Option<u64>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub commit: String,
    /// Unix seconds as a string.
    #[serde(default, deserialize_with = "lenient_string")]
    pub commit_date: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub api_url: String,
    #[serde(default, deserialize_with = "flag")]
    pub manager_token_on: bool,
}

impl Varz {
    /// `server_id` as a number, when it is one.
    pub fn server_id_num(&self) -> Option<u64> {
        self.server_id.trim().parse().ok()
    }
}

/// Node `status` (facts §3.3, §3.6): 0 Unknown (omitted), 1 `WillJoin`, 2 Joining, 3 Joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    #[default]
    Unknown,
    WillJoin,
    Joining,
    Joined,
    Other(u64),
}

impl NodeStatus {
    pub fn from_code(code: u64) -> Self {
        match code {
            0 => NodeStatus::Unknown,
            1 => NodeStatus::WillJoin,
            2 => NodeStatus::Joining,
            3 => NodeStatus::Joined,
            n => NodeStatus::Other(n),
        }
    }
}

impl<'de> Deserialize<'de> for NodeStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(NodeStatus::from_code(lenient_u64(d)?))
    }
}

/// Slot `status` (facts §3.6): absent = Normal (0), 1 Candidate, 2 `LeaderTransfer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotStatus {
    #[default]
    Normal,
    Candidate,
    LeaderTransfer,
    Other(u64),
}

impl<'de> Deserialize<'de> for SlotStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match lenient_u64(d)? {
            0 => SlotStatus::Normal,
            1 => SlotStatus::Candidate,
            2 => SlotStatus::LeaderTransfer,
            n => SlotStatus::Other(n),
        })
    }
}

/// One node as `/cluster/node`, `/cluster/nodes` and `/cluster/simpleNodes` report it
/// (Go `NodeConfig`, `snake_case`, facts §3.3–3.5). Only `id` is required.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct NodeConfig {
    pub id: u64,
    /// This node is the controller, as the reporting node knows it.
    #[serde(default, deserialize_with = "flag")]
    pub is_leader: bool,
    #[serde(default)]
    pub role: u64,
    #[serde(default, deserialize_with = "lenient_string")]
    pub cluster_addr: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub api_server_addr: String,
    /// Absent means offline.
    #[serde(default, deserialize_with = "flag")]
    pub online: bool,
    #[serde(default)]
    pub offline_count: u64,
    #[serde(default, deserialize_with = "lenient_string")]
    pub last_offline: String,
    #[serde(default, deserialize_with = "flag")]
    pub allow_vote: bool,
    #[serde(default)]
    pub slot_count: u64,
    #[serde(default)]
    pub term: u64,
    #[serde(default)]
    pub slot_leader_count: u64,
    #[serde(default, deserialize_with = "lenient_string")]
    pub uptime: String,
    /// Empty in v2.1.1–v2.2.1 (facts §3.3 caveat).
    #[serde(default, deserialize_with = "lenient_string")]
    pub app_version: String,
    /// Absent means 0 (omitempty).
    #[serde(default)]
    pub config_version: u64,
    #[serde(default)]
    pub status: NodeStatus,
}

/// `{"total": n, "data": [...]}` of `/cluster/nodes` and `/cluster/simpleNodes`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct NodeList {
    #[serde(default)]
    pub total: u64,
    #[serde(default, deserialize_with = "null_default")]
    pub data: Vec<NodeConfig>,
}

/// `/cluster/info`: the controller's cluster config (protobuf via encoding/json: camelCase,
/// every field omitempty, facts §3.6).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterInfo {
    /// The config version (compared with each node's `config_version`, signal E).
    #[serde(default)]
    pub version: u64,
    #[serde(default)]
    pub slot_count: u64,
    #[serde(default)]
    pub slot_replica_count: u64,
    #[serde(default)]
    pub channel_replica_count: u64,
    #[serde(default)]
    pub term: u64,
    #[serde(default, deserialize_with = "null_default")]
    pub nodes: Vec<InfoNode>,
    #[serde(default, deserialize_with = "null_default")]
    pub slots: Vec<InfoSlot>,
    #[serde(default)]
    pub migrate_from: u64,
    #[serde(default)]
    pub migrate_to: u64,
}

/// A node in `/cluster/info.nodes`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InfoNode {
    #[serde(default)]
    pub id: u64,
    #[serde(default, deserialize_with = "lenient_string")]
    pub cluster_addr: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub api_server_addr: String,
    /// Absent means false.
    #[serde(default, deserialize_with = "flag")]
    pub online: bool,
    #[serde(default)]
    pub offline_count: u64,
    #[serde(default)]
    pub last_offline: i64,
    #[serde(default, deserialize_with = "flag")]
    pub allow_vote: bool,
    #[serde(default)]
    pub role: u64,
    #[serde(default)]
    pub status: NodeStatus,
    #[serde(default)]
    pub created_at: i64,
    #[serde(default, deserialize_with = "flag")]
    pub join: bool,
}

/// A slot in `/cluster/info.slots`. Slot 0 has no `id` key; `leader` absent means none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InfoSlot {
    #[serde(default)]
    pub id: u64,
    #[serde(default)]
    pub leader: u64,
    #[serde(default)]
    pub term: u64,
    #[serde(default, deserialize_with = "null_default")]
    pub replicas: Vec<u64>,
    #[serde(default, deserialize_with = "null_default")]
    pub learners: Vec<u64>,
    #[serde(default)]
    pub migrate_from: u64,
    #[serde(default)]
    pub migrate_to: u64,
    #[serde(default)]
    pub expect_leader: u64,
    #[serde(default)]
    pub status: SlotStatus,
}

impl InfoSlot {
    pub fn migrating(&self) -> bool {
        self.migrate_from != 0 || self.migrate_to != 0
    }
}

/// `/cluster/logs` (facts §3.8): only the indexes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ClusterLogs {
    #[serde(default)]
    pub applied: u64,
    #[serde(default)]
    pub last: u64,
}

/// Parses Go's `myUptime` format (facts §3.2): `45s`, `3m12s`, `2h3m4s`, `1d2h3m4s`,
/// `1y2d3h4m5s` (a year is 365 days). Also accepts Go `Duration.String` forms such as
/// `1.5s` or `250ms`, in case a version formats it that way. `None` when unparsable.
pub fn parse_go_uptime(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let value: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let secs_per_unit = match &rest[..unit_len] {
            "y" => 365.0 * 86_400.0,
            "d" => 86_400.0,
            "h" => 3_600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total = total.checked_add(Duration::try_from_secs_f64(value * secs_per_unit).ok()?)?;
    }
    // No process has been up for a century: a larger value is a broken or hostile
    // answer, unknown rather than a number that overflows the gate's arithmetic.
    (total <= MAX_UPTIME).then_some(total)
}

/// The largest uptime taken as real (100 years).
pub const MAX_UPTIME: Duration = Duration::from_hours(100 * 365 * 24);

// ----- lenient field parsers ---------------------------------------------------------

/// 0/1 integers (Go `NodeConfig`), booleans (protobuf), absent or null = false.
fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Bool(b)) => b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => matches!(s.as_str(), "1" | "true"),
        _ => false,
    })
}

/// The largest gauge taken as a count: more than 10^9 connections (or slow clients, or
/// retry-queue entries) on one node is no real node's number (a WuKongIM node serves up
/// to a few million connections); a larger value is a broken or hostile counter, unknown
/// (issue #18: one node's 10^17 made the cluster-wide sum meaningless).
pub const MAX_COUNT: u64 = 1_000_000_000;

/// The largest cumulative counter (`in_msgs` / `out_msgs` since the process started)
/// taken as real: 10^15 is a million messages a second for 30 years, and still below
/// 2^53, so a float form of it is exact.
pub const MAX_COUNTER: u64 = 1_000_000_000_000_000;

/// A gauge (`connections`, `slow_clients`, `retry_queue`): see [`count_at_most`], up to
/// [`MAX_COUNT`].
fn lenient_count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(count_at_most(
        Option::<Value>::deserialize(d)?.as_ref(),
        MAX_COUNT,
    ))
}

/// A cumulative counter (`in_msgs`, `out_msgs`): see [`count_at_most`], up to
/// [`MAX_COUNTER`].
fn lenient_counter<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(count_at_most(
        Option::<Value>::deserialize(d)?.as_ref(),
        MAX_COUNTER,
    ))
}

/// A non-negative count up to `max`: an integer, a whole float (`12.0`), or either written
/// as a string. Anything else (negative, fractional, above `max`, bool, null, missing) is
/// unknown (`None`), never an error and never a number that overflows a sum.
pub(crate) fn count_at_most(v: Option<&Value>, max: u64) -> Option<u64> {
    let n = match v? {
        Value::Number(n) => number_count(n)?,
        Value::String(s) => {
            let s = s.trim();
            match s.parse::<u64>() {
                Ok(n) => n,
                Err(_) => number_count(&s.parse::<serde_json::Number>().ok()?)?,
            }
        }
        _ => return None,
    };
    (n <= max).then_some(n)
}

fn number_count(n: &serde_json::Number) -> Option<u64> {
    if let Some(u) = n.as_u64() {
        return Some(u);
    }
    // Floats: only whole, non-negative, exactly representable ones (< 2^53).
    n.as_f64()
        .filter(|f| f.is_finite() && *f >= 0.0 && f.fract() == 0.0 && *f < 9.007_199_254_740_992e15)
        .map(|f| {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let u = f as u64;
            u
        })
}

/// A string, or a number written as one (`server_id`), or null = empty.
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::String(s)) => s,
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    })
}

/// A non-negative integer enum code, also accepted as a numeric string; null = 0.
fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| serde::de::Error::custom(format!("`{n}` is not a status code"))),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("`{s}` is not a status code"))),
        Some(other) => Err(serde::de::Error::custom(format!(
            "`{other}` is not a status code"
        ))),
    }
}

/// Go nil slices serialize as `null`.
fn null_default<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests;
