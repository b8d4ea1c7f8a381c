//! Findings: the one shape every check (offline and live) reports in.
//!
//! A finding has a stable id (`version.downgrade`, `cluster.node_offline`, ...), a
//! severity, the node it is about (or none for cluster-wide findings), a one-line
//! message and a hint that says what to do. `block` findings stop `upgrade` unless the
//! operator passes the flag the finding names in `allowed_by`.
//!
//! Every id is one [`FindingId`], listed once in the catalog below with its JSON name
//! and what it means (like `releases::RULES` for the version rules); what to do about
//! each finding is in the catalog of [`hints`].

use std::fmt;

use serde::{Serialize, Serializer};

pub(crate) mod hints;

/// Declares [`FindingId`]: variant = "json name", "what it means".
macro_rules! finding_ids {
    ($($variant:ident = $name:literal, $about:literal;)*) => {
        /// The stable id of a finding. Serialized as its dotted name (no JSON change).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum FindingId {
            $($variant,)*
        }

        impl FindingId {
            /// Every id, in catalog order.
            pub const ALL: &'static [FindingId] = &[$(FindingId::$variant,)*];

            /// The dotted name used in JSON and output (`version.downgrade`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(FindingId::$variant => $name,)*
                }
            }

            /// One line on what the finding means.
            pub fn about(self) -> &'static str {
                match self {
                    $(FindingId::$variant => $about,)*
                }
            }
        }
    };
}

finding_ids! {
    VersionMajorChange = "version.major_change", "the major version changes: a migration, not an in-place upgrade";
    VersionDowngrade = "version.downgrade", "the target is older than the node";
    VersionDowngradeAcrossRewrite = "version.downgrade_across_rewrite", "a downgrade across the v2.1.0/v2.1.1 cluster-layer rewrite";
    VersionSame = "version.same", "the node already runs the target and is skipped";
    VersionUnknown = "version.unknown", "the target is not in the release catalog";
    VersionDevBuild = "version.dev_build", "the target is a `-dev` image tag";
    VersionKnownIssue = "version.known_issue", "the target has a known upstream problem";
    VersionCrossesClusterRewrite = "version.crosses_cluster_rewrite", "the upgrade crosses the cluster-layer rewrite";
    VersionMixed = "version.mixed", "the nodes run different versions";
    VersionReadinessQuirk = "version.readiness_quirk", "the target's API limits what the gate observes";
    VersionFromUnknown = "version.from_unknown", "a node's current version is not known";
    VersionManifestDisagrees = "version.manifest_disagrees", "a node runs another version than the manifest says";
    ManifestTooFewNodes = "manifest.too_few_nodes", "the manifest has fewer nodes than the cluster needs";
    PlanOrderFallback = "plan.order_fallback", "the upgrade order fell back to id order";
    PlanNodeNotSelected = "plan.node_not_selected", "a node left out by `upgrade --nodes`";
    ApiTokenUnset = "api.token_unset", "the variable named by `api.token_env` is not set";
    NodeUnreachable = "node.unreachable", "a node's API does not answer";
    NodeAuthFailed = "node.auth_failed", "a node refused the token (HTTP 401)";
    NodeIdMismatch = "node.id_mismatch", "a node reports another id than the manifest gives it";
    NodeHostApiDiffer = "node.host_api_differ", "a node's `host` and `api` host differ";
    ClusterMembershipMismatch = "cluster.membership_mismatch", "the manifest and the cluster list different nodes";
    ClusterNodeOffline = "cluster.node_offline", "a node is offline or not Joined in the controller's view";
    ClusterNodeRejoining = "cluster.node_rejoining", "a node does not know the controller yet";
    ClusterNoController = "cluster.no_controller", "the cluster has no controller";
    ClusterSlotsNotReady = "cluster.slots_not_ready", "slots have no leader or are in election";
    ClusterMigrationInProgress = "cluster.migration_in_progress", "slots or the cluster are migrating";
    ClusterConfigLagging = "cluster.config_lagging", "a node's cluster config lags the controller's";
    ClusterHealthFailing = "cluster.health_failing", "a node's `/health` fails";
    ClusterClusterPortUnreachable = "cluster.cluster_port_unreachable", "a node's cluster port is not reachable";
    ClusterNotZeroDowntime = "cluster.not_zero_downtime", "stopping one node interrupts service";
    ClusterStuckJoining529 = "cluster.stuck_joining_529", "a node stays Joining although it serves (#529)";
    ClusterSlotCountMismatch = "cluster.slot_count_mismatch", "a node's `cluster.slotCount` differs from the cluster's";
    PolicyStableForShort = "policy.stable_for_short", "`policy.stable_for` is shorter than the controller's offline detection";
    PolicyNodeTimeoutShort = "policy.node_timeout_short", "the step timeouts after the stop exceed `node_timeout`";
    PlaybookCannotChangeVersion = "playbook.cannot_change_version", "the playbook cannot change the running version";
    PlaybookUnknownPreset = "playbook.unknown_preset", "the playbook names an unknown preset";
    ComposeSharedImageVariable = "compose.shared_image_variable", "several services share one image variable";
    K8sNoPersistentVolume = "k8s.no_persistent_volume", "the StatefulSet keeps no data across restarts";
    K8sPodIpClusterAddress = "k8s.pod_ip_cluster_address", "the cluster address is the pod IP";
    K8sLivenessOnHealth = "k8s.liveness_on_health", "the liveness probe uses `/health`";
    LogsSlotsReadyTimeout = "logs.slots_ready_timeout", "log: wait all slots ready timeout (#197)";
    LogsAppliedIndexPanic = "logs.applied_index_panic", "log: applied index > last log index (#509)";
    LogsAppliedIndexRepaired = "logs.applied_index_repaired", "log: the #509 state was repaired at start";
    LogsCatchUpCrashLoop = "logs.catch_up_crash_loop", "log: a catch-up crash loop";
    LogsApplyLogErr = "logs.apply_log_err", "log: apply log errors";
    LogsApplySlotLogsFailed = "logs.apply_slot_logs_failed", "log: apply slot logs failed (#545/#546)";
    LogsPeerUnreachable = "logs.peer_unreachable", "log: a peer is unreachable";
    LogsAddressChanged = "logs.address_changed", "log: a node's address changed";
    LogsPanic = "logs.panic", "log: the process panicked";
    NetworkUnreachable = "network.unreachable", "a node cannot reach a peer's port";
    NetworkOneWay = "network.one_way", "a one-way network failure";
    NetworkPeerDown = "network.peer_down", "network checks to a node that itself does not answer";
    SettingsMismatch = "settings.mismatch", "a setting that must agree differs between nodes";
    SettingsDuplicateNodeId = "settings.duplicate_node_id", "two nodes have one node id";
    SettingsNodeIdMismatch = "settings.node_id_mismatch", "a node's `cluster.nodeId` differs from the manifest";
    SettingsAddressNotSelf = "settings.address_not_self", "a node's address points at another host";
    DoctorCouldNotCheck = "doctor.could_not_check", "doctor could not run a check (a step failed or is missing); that part is not judged";
}

impl FindingId {
    /// The part before the dot: `cluster` of `cluster.node_offline`.
    pub fn area(self) -> &'static str {
        self.as_str().split_once('.').map_or("", |(a, _)| a)
    }

    /// The id with this dotted name.
    pub fn from_name(name: &str) -> Option<FindingId> {
        FindingId::ALL.iter().copied().find(|i| i.as_str() == name)
    }
}

impl fmt::Display for FindingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl Serialize for FindingId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Ordered by name, so sorted output stays as it was with string ids.
impl Ord for FindingId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for FindingId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// How bad a finding is. Ordered: `Info < Warn < Block`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warn,
    Block,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warn => "warn",
            Severity::Block => "block",
        }
    }
}

/// One result of a check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub id: FindingId,
    pub severity: Severity,
    pub node: Option<u64>,
    pub message: String,
    pub hint: String,
    /// The command-line flag that lets the operator proceed past this finding (only for
    /// `block` findings that an operator may knowingly accept, e.g. `--allow-downgrade`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_by: Option<&'static str>,
}

impl Finding {
    pub fn new(
        id: FindingId,
        severity: Severity,
        node: Option<u64>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Finding {
            id,
            severity,
            node,
            message: message.into(),
            hint: hint.into(),
            allowed_by: None,
        }
    }

    pub fn block(
        id: FindingId,
        node: Option<u64>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Self::new(id, Severity::Block, node, message, hint)
    }

    pub fn warn(
        id: FindingId,
        node: Option<u64>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Self::new(id, Severity::Warn, node, message, hint)
    }

    pub fn info(
        id: FindingId,
        node: Option<u64>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Self::new(id, Severity::Info, node, message, hint)
    }

    /// Names the flag that lets the operator accept this finding.
    #[must_use]
    pub fn allowed_by(mut self, flag: &'static str) -> Self {
        self.allowed_by = Some(flag);
        self
    }

    /// Turns a `block` finding into a `warn` because the operator passed its flag.
    #[must_use]
    pub fn accepted(mut self) -> Self {
        if self.severity == Severity::Block {
            self.severity = Severity::Warn;
            if let Some(flag) = self.allowed_by {
                self.message = format!("{} (accepted with `{flag}`)", self.message);
            }
        }
        self
    }
}

impl FindingId {
    /// Causes before consequences (13.3): an unset token variable explains every 401,
    /// and a node that refuses the token or does not answer explains the cluster-wide
    /// symptoms seen without it.
    pub fn cause_rank(self) -> u8 {
        match self {
            FindingId::ApiTokenUnset => 0,
            FindingId::NodeAuthFailed | FindingId::NodeUnreachable => 1,
            _ => 2,
        }
    }
}

/// Sorts findings for display: blocks first, causes before consequences, then by node
/// (cluster-wide first), then id.
pub fn sort(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.id.cause_rank().cmp(&b.id.cause_rank()))
            .then(a.node.cmp(&b.node))
            .then(a.id.cmp(&b.id))
    });
}

/// Said once for the cluster instead of once per node (13.13): the per-node findings of
/// `id` become one cluster-wide finding naming the nodes, with the first one's hint.
pub fn merge_nodes(findings: &mut Vec<Finding>, id: FindingId) {
    let nodes: Vec<u64> = findings
        .iter()
        .filter(|f| f.id == id)
        .filter_map(|f| f.node)
        .collect();
    if nodes.len() < 2 {
        return;
    }
    let Some(first) = findings.iter().position(|f| f.id == id) else {
        return;
    };
    let mut merged = findings[first].clone();
    let list: Vec<String> = nodes.iter().map(ToString::to_string).collect();
    let prefix = format!("node {}: ", nodes[0]);
    merged.message = format!(
        "nodes {}: {}",
        list.join(", "),
        merged
            .message
            .strip_prefix(&prefix)
            .unwrap_or(&merged.message)
    );
    merged.node = None;
    findings.retain(|f| f.id != id);
    findings.push(merged);
}

/// True when no finding blocks.
pub fn ok(findings: &[Finding]) -> bool {
    findings.iter().all(|f| f.severity != Severity::Block)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_sort_first_and_accepting_downgrades_to_warn() {
        let mut v = vec![
            Finding::info(FindingId::VersionSame, None, "i", "h"),
            Finding::block(FindingId::VersionDowngrade, Some(1002), "b", "h")
                .allowed_by("--allow-downgrade"),
            Finding::warn(FindingId::VersionMixed, None, "w", "h"),
        ];
        sort(&mut v);
        assert_eq!(
            v.iter().map(|f| f.id).collect::<Vec<_>>(),
            [
                FindingId::VersionDowngrade,
                FindingId::VersionMixed,
                FindingId::VersionSame
            ]
        );
        assert!(!ok(&v));
        let accepted = v[0].clone().accepted();
        assert_eq!(accepted.severity, Severity::Warn);
        assert!(accepted.message.contains("--allow-downgrade"));
    }

    #[test]
    fn a_per_node_finding_is_said_once() {
        let f = |n| {
            Finding::warn(
                FindingId::VersionCrossesClusterRewrite,
                Some(n),
                format!("node {n}: v2.0.10 → v2.1.2 crosses the rewrite"),
                "one at a time",
            )
        };
        let mut v = vec![
            f(1001),
            Finding::info(FindingId::VersionSame, Some(1004), "s", "h"),
            f(1002),
            f(1003),
        ];
        merge_nodes(&mut v, FindingId::VersionCrossesClusterRewrite);
        let merged: Vec<&Finding> = v
            .iter()
            .filter(|x| x.id == FindingId::VersionCrossesClusterRewrite)
            .collect();
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].node, None);
        assert_eq!(
            merged[0].message,
            "nodes 1001, 1002, 1003: v2.0.10 → v2.1.2 crosses the rewrite"
        );
        assert_eq!(v.len(), 2);
    }

    #[test]
    fn ids_are_unique_dotted_and_serialize_as_their_name() {
        let mut names: Vec<&str> = FindingId::ALL.iter().map(|i| i.as_str()).collect();
        for n in &names {
            assert!(
                n.split_once('.')
                    .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty()),
                "{n}"
            );
        }
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "duplicate finding id name");
        assert_eq!(
            serde_json::to_string(&FindingId::NetworkOneWay).unwrap(),
            "\"network.one_way\""
        );
        assert_eq!(
            FindingId::from_name("api.token_unset"),
            Some(FindingId::ApiTokenUnset)
        );
        assert!(FindingId::ALL.iter().all(|i| !i.about().is_empty()));
    }
}
