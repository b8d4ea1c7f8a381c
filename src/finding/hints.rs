//! The hints of the findings: what the operator does about each one, in one catalog
//! (as [`super::FindingId`] lists the ids and `releases::RULES` the version rules).
//!
//! A hint that is always the same is a constant here, named after its finding (and the
//! case, where one id has several); a hint that names a node, a variable or a number is a
//! function beside them. The checks keep the message (what was seen) and take the hint
//! from here. A hint that names another finding names it through its [`FindingId`], so
//! the name cannot drift. The wording follows STYLE.md: lowercase start, no trailing
//! period; `tests` holds every constant to that.

use super::FindingId;

/// Declares the constant hints, and (for the tests) the list of them all.
macro_rules! hints {
    ($($(#[doc = $doc:literal])* $name:ident = $text:expr;)*) => {
        $(
            $(#[doc = $doc])*
            pub(crate) const $name: &str = $text;
        )*

        /// Every constant hint, in catalog order (for the wording test).
        #[cfg(test)]
        pub(crate) const ALL: &[(&str, &str)] = &[$((stringify!($name), $name),)*];
    };
}

hints! {
    // ----- the plan's inputs (`plan::build`) ----------------------------------------------

    /// `manifest.too_few_nodes`.
    MANIFEST_TOO_FEW_NODES = concat!(
        "with fewer than 3 nodes a restart loses quorum or service; ",
        "plan a maintenance window",
    );
    /// `policy.stable_for_short`.
    POLICY_STABLE_FOR_SHORT = concat!(
        "use `stable_for: 10s` (the default) for real clusters; ",
        "short windows are for simulators",
    );
    /// `plan.order_fallback`.
    PLAN_ORDER_FALLBACK = "run `wkctl plan` without `--offline` to place the controller last";

    // ----- the node itself (`checks::node_findings`) --------------------------------------

    /// `node.unreachable`, for a manifest node the observation has no answer of.
    NODE_NOT_PROBED = "run the check again";
    /// `node.unreachable`: the node's API does not answer.
    NODE_UNREACHABLE = concat!(
        "check that the node runs and that this machine reaches its API port ",
        "(`api` in the manifest)",
    );
    /// `node.auth_failed` when the manifest names no token variable.
    NODE_AUTH_FAILED_NO_TOKEN_ENV = concat!(
        "the cluster has a managerToken: set `api.token_env` in the manifest to the ",
        "environment variable holding it",
    );
    /// `node.id_mismatch`.
    NODE_ID_MISMATCH = concat!(
        "fix the manifest: each `api` must point at the node with that id ",
        "(`cluster.nodeId`)",
    );

    // ----- `/health` ----------------------------------------------------------------------

    /// `cluster.slot_count_mismatch`: `/health` says `slot count not match`.
    CLUSTER_SLOT_COUNT_MISMATCH = concat!(
        "set the same `cluster.slotCount` on every node (see `wkctl doctor`'s settings ",
        "table); it cannot change after the cluster is created",
    );
    /// `cluster.health_failing`: `/health` answers with a failure.
    CLUSTER_HEALTH_FAILING = concat!(
        "wait for the cluster to settle (slot leaders elected), then check again; ",
        "see `wkctl doctor`",
    );
    /// `cluster.health_failing`: `/health` gives no usable answer.
    CLUSTER_HEALTH_NO_ANSWER = concat!(
        "look at the node's logs (`wkctl doctor`); ",
        "a 500 without body is a crashed handler",
    );

    // ----- the node in the controller's view ----------------------------------------------

    /// `cluster.node_offline`: online but not Joined.
    CLUSTER_NODE_NOT_JOINED = "wait for the join to finish before upgrading";
    /// `cluster.node_offline`: online and `Joining`, still moving its slots.
    CLUSTER_NODE_STILL_JOINING = "wait for the join to finish before upgrading (`wkctl status`)";
    /// `cluster.stuck_joining_529` under `policy.accept_stuck_joining: true`.
    CLUSTER_STUCK_JOINING_529_ACCEPTED = concat!(
        "upstream bug #529 (open; fix PR #531 unmerged): the controller never promotes a ",
        "seed-joined node that already holds its slots; wkctl accepts this node on that ",
        "evidence (`policy.accept_stuck_joining: false` refuses it)",
    );
    /// `cluster.stuck_joining_529` under `policy.accept_stuck_joining: false`.
    CLUSTER_STUCK_JOINING_529_REFUSED = concat!(
        "upstream bug #529: set `policy.accept_stuck_joining: true` to accept a node with ",
        "this evidence, or run a build with PR #531",
    );
    /// `cluster.node_rejoining`.
    CLUSTER_NODE_REJOINING = concat!(
        "wait until it has rejoined (`wkctl status`), then check again; ",
        "if it stays, see `wkctl doctor`",
    );
    /// `cluster.config_lagging`.
    CLUSTER_CONFIG_LAGGING = concat!(
        "usually transient after a restart; check again in a few seconds, ",
        "and look at the node's logs if it stays",
    );
    /// `cluster.cluster_port_unreachable`.
    CLUSTER_PORT_UNREACHABLE = concat!(
        "check the firewall and `cluster.serverAddr`; ",
        "peers must reach port 11110 of every node (#388)",
    );

    // ----- the cluster as a whole ---------------------------------------------------------

    /// `cluster.membership_mismatch` when the cluster has nodes the manifest lacks.
    CLUSTER_MEMBERSHIP_EXTRA = concat!(
        "add the extra nodes to the manifest (or remove them from the cluster) ",
        "so wkctl upgrades every node",
    );
    /// `cluster.no_controller`.
    CLUSTER_NO_CONTROLLER = concat!(
        "a quorum of nodes must run and reach each other on port 11110; ",
        "start the missing nodes (1001 first) and wait for the election",
    );
    /// `cluster.slots_not_ready` when the cluster has no slots at all.
    CLUSTER_NO_SLOTS = concat!(
        "the initial config was never proposed: ",
        "a quorum of `cluster.initNodes` must start (#197)",
    );
    /// `cluster.slots_not_ready`: slots without a leader or in election.
    CLUSTER_SLOTS_NOT_READY =
        "wait for slot leader election to finish (a node may be down); check again";
    /// `cluster.migration_in_progress`.
    CLUSTER_MIGRATION_IN_PROGRESS =
        "wait until the controller finishes rebalancing slot leaders, then check again";
    /// `cluster.not_zero_downtime`.
    CLUSTER_NOT_ZERO_DOWNTIME = concat!(
        "plan a maintenance window, or run at least 3 nodes ",
        "with `cluster.slotReplicaCount` 3",
    );
    // ----- the playbook and the deployment (`checks::playbook`) ----------------------------

    /// `playbook.unknown_preset`.
    PLAYBOOK_UNKNOWN_PRESET = "set `preset:` in the manifest's `vars` to one of the listed names";
    /// `node.host_api_differ`.
    NODE_HOST_API_DIFFER = concat!(
        "make `host` and `api` name the same machine; ignore this only when `api` is that ",
        "node's own NAT or DNS name",
    );
    /// `k8s.no_persistent_volume`.
    K8S_NO_PERSISTENT_VOLUME = concat!(
        "add a `volumeClaimTemplates` volume mounted at `/root/wukongim` and migrate each ",
        "node's data first; then set `pv: \"true\"` in the manifest's `vars`",
    );
    /// `k8s.pod_ip_cluster_address`.
    K8S_POD_IP_CLUSTER_ADDRESS = concat!(
        "set `WK_CLUSTER_SERVERADDR` to the pod's stable DNS name ",
        "(`<pod>.<headless service>:11110`) before upgrading; then set ",
        "`cluster_address: dns` in the manifest's `vars`",
    );
    /// `k8s.liveness_on_health`.
    K8S_LIVENESS_ON_HEALTH = concat!(
        "remove the liveness probe, or point it at a TCP check of port 5001; keep `/health` ",
        "for readiness only",
    );
    /// `playbook.cannot_change_version`: the compose file has no such service.
    PLAYBOOK_NO_SUCH_SERVICE = "set `service:` in the node's `vars` to its compose service";
    /// `compose.shared_image_variable`.
    COMPOSE_SHARED_IMAGE_VARIABLE = concat!(
        "give each node service its own image variable (e.g. `WK_IMAGE_1001`) and set ",
        "`image_env` per node",
    );

    // ----- `wkctl doctor`: the steps it runs, the network, the settings -----------------

    /// `doctor.could_not_check`: a playbook step (`logs`, `config`) failed.
    DOCTOR_STEP_FAILED = concat!(
        "fix the node's transport (ssh) or the playbook step and run `wkctl doctor` again; ",
        "nothing is known about this part",
    );
    /// `doctor.could_not_check`: the `netcheck` step could not run.
    DOCTOR_NETCHECK_FAILED = concat!(
        "fix the `netcheck` step (or the transport) and run `wkctl doctor` again; the ",
        "network from this node is not known",
    );
    /// `network.one_way`.
    NETWORK_ONE_WAY = concat!(
        "a one-way failure is the classic cause of a node that never rejoins: check ",
        "firewalls/security groups and routes in that direction",
    );
    /// `network.unreachable`.
    NETWORK_UNREACHABLE = "check that the peer runs and that firewalls allow the port between the nodes";
    /// `settings.node_id_mismatch`.
    SETTINGS_NODE_ID_MISMATCH = concat!(
        "each node's `cluster.nodeId` (WK_CLUSTER_NODEID) must be its manifest id and never ",
        "change for a data dir",
    );
    /// `settings.duplicate_node_id`.
    SETTINGS_DUPLICATE_NODE_ID = "node ids must be unique (WK_CLUSTER_NODEID)";
    /// `settings.address_not_self`.
    SETTINGS_ADDRESS_NOT_SELF = concat!(
        "peers use this address to reach the node; it must be this node's stable intranet ",
        "address (facts §5.2)",
    );
}

/// `api.token_unset`: the variable `var` names is not set where wkctl runs.
pub(crate) fn api_token_unset(var: &str) -> String {
    format!(
        "export {var}=<the cluster's managerToken> (it must equal `managerToken` on every \
         node), then run again"
    )
}

/// `node.auth_failed`: the token sent (from `token_env`, when the manifest names one)
/// is refused.
pub(crate) fn node_auth_failed(token_env: Option<&str>) -> String {
    match token_env {
        Some(var) => format!(
            "export the cluster's managerToken in `{var}` (named by `api.token_env`); it must \
             equal `managerToken` on every node"
        ),
        None => NODE_AUTH_FAILED_NO_TOKEN_ENV.into(),
    }
}

/// `version.manifest_disagrees`: node `id` runs `live`.
pub(crate) fn version_manifest_disagrees(id: u64, live: &impl std::fmt::Display) -> String {
    format!("update `version` of node {id} in the manifest to {live}")
}

/// `cluster.node_offline`: node `id` is offline in the controller's view.
pub(crate) fn cluster_node_offline(id: u64) -> String {
    format!(
        "start node {id} and wait until the controller marks it online; check its port 11110 \
         from the other nodes"
    )
}

/// `cluster.membership_mismatch` when manifest nodes are missing: start `first` (the
/// lowest id) first (#310).
pub(crate) fn cluster_membership_missing(first: u64) -> String {
    format!(
        "start node {first} first, then the others; check `cluster.initNodes`/`cluster.seed` \
         on every node and the network on port 11110 (#310)"
    )
}

/// A cluster-wide finding seen without the nodes that refused the token: the token comes
/// first (its finding is `node.auth_failed`).
pub(crate) fn token_first() -> String {
    format!(
        "fix the token first (`{}`): the nodes that refused it could not be asked; then check \
         again",
        FindingId::NodeAuthFailed
    )
}

/// `policy.node_timeout_short`: `node_timeout` should be at least `need` seconds.
pub(crate) fn policy_node_timeout_short(need: f64) -> String {
    format!(
        "raise `policy.node_timeout` to at least {need:.0}s, or lower the playbook's step \
         timeouts; the gate always gets `stable_for` plus two polls after `start` returns"
    )
}

/// `network.peer_down`: the peer's own finding comes first.
pub(crate) fn network_peer_down() -> String {
    format!(
        "start the node first (see `{}`); then run `wkctl doctor` again",
        FindingId::NodeUnreachable
    )
}

/// `settings.mismatch` of setting `name`; a `secret` one is shown as fingerprints.
pub(crate) fn settings_mismatch(name: &str, secret: bool) -> String {
    if secret {
        format!(
            "set the same `{name}` on every node (values are shown as fingerprints keyed for \
             this report only, never in clear)"
        )
    } else {
        format!("set the same `{name}` on every node, then restart the odd one out")
    }
}

/// `playbook.cannot_change_version`: the service is built from source (`build:`); the
/// playbook writes `image_env`.
pub(crate) fn playbook_built_from_source(image_env: &str) -> String {
    format!(
        "replace `build:` with `image: ${{{image_env}:-registry.cn-shanghai.aliyuncs.com/\
         wukongim/wukongim:<the running tag>}}`"
    )
}

/// `playbook.cannot_change_version`: the service's image is not the variable
/// `image_env` the playbook writes.
pub(crate) fn playbook_fixed_image(image_env: &str) -> String {
    format!(
        "write `image: ${{{image_env}:-<the current image>}}`, or set `image_env` in the \
         node's `vars` to the variable the service uses"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hint_is_worded_as_style_md_asks() {
        for (name, text) in ALL {
            assert!(!text.is_empty(), "{name} is empty");
            assert!(
                !text.starts_with(|c: char| c.is_uppercase()),
                "{name} starts uppercase: {text}"
            );
            assert!(!text.ends_with('.'), "{name} ends with a period: {text}");
            assert!(!text.contains("  "), "{name} has a double space: {text}");
        }
    }

    #[test]
    fn a_hint_names_another_finding_by_its_id() {
        assert!(token_first().contains("`node.auth_failed`"));
        assert!(policy_node_timeout_short(42.0).contains("to at least 42s,"));
    }
}
