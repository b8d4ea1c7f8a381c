//! Hand-built views for the unit tests of the gate and the checks.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use super::{
    ClusterView, HealthState, InfoAnswer, NodeStatus, NodeView, SlotSummary, VersionSource,
};
use crate::manifest::{ApiConfig, Manifest, Node, Policy};
use crate::version::WkVersion;

pub(crate) fn v(s: &str) -> WkVersion {
    WkVersion::parse(s).unwrap()
}

pub(crate) fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

/// A healthy, joined, caught-up node.
pub(crate) fn node(id: u64, version: &str, uptime_secs: u64) -> NodeView {
    NodeView {
        id,
        api: format!("http://10.0.0.{}:5001", id - 1000),
        reachable: true,
        error: None,
        version: Some(v(version)),
        version_raw: Some(version.to_string()),
        version_source: VersionSource::Varz,
        commit: Some(format!("commit-{version}")),
        uptime: Some(Duration::from_secs(uptime_secs)),
        server_id: Some(id.to_string()),
        health: HealthState::Ok,
        self_id: Some(id),
        self_online: Some(true),
        self_status: Some(NodeStatus::Joined),
        is_leader: Some(id == 1001),
        config_version: Some(415),
        slot_leader_count: Some(21),
        app_version: None,
        info_online: Some(true),
        info_status: Some(NodeStatus::Joined),
        simple_online: Some(true),
        simple_status: Some(NodeStatus::Joined),
        info_answer: InfoAnswer::Ok,
        node_asked: true,
        cluster_addr: Some(format!("10.0.0.{}:11110", id - 1000)),
        cluster_port_reachable: Some(true),
        service: super::Service::default(),
    }
}

/// A settled 3-node cluster on `version`, controller 1001, config version 415, observed at `secs`.
pub(crate) fn settled(version: &str, secs: u64) -> ClusterView {
    ClusterView {
        observed_at: at(secs),
        nodes: vec![
            node(1001, version, 100 + secs),
            node(1002, version, 100 + secs),
            node(1003, version, 100 + secs),
        ],
        controller: Some(1001),
        controller_claims: vec![1001],
        config_version: Some(415),
        slot_count: Some(64),
        slot_replica_count: Some(3),
        channel_replica_count: Some(3),
        slots: Some(SlotSummary {
            total: 64,
            ..SlotSummary::default()
        }),
        cluster_migrating: false,
        membership: Some(vec![1001, 1002, 1003]),
        info_from: Some(1001),
        leader_not_found: Vec::new(),
        simple_nodes_from: Some(1001),
        members: Vec::new(),
    }
}

pub(crate) fn manifest(ids: &[u64]) -> Manifest {
    Manifest {
        path: "cluster.yaml".into(),
        name: "test".into(),
        playbook: "sim".into(),
        api: ApiConfig {
            token_env: Some("WK_MANAGER_TOKEN".into()),
            timeout: Duration::from_secs(5),
        },
        ssh: None,
        vars: BTreeMap::default(),
        nodes: ids
            .iter()
            .map(|id| Node {
                id: *id,
                host: format!("10.0.0.{}", id % 1000),
                api: format!("http://10.0.0.{}:5001", id % 1000),
                version: None,
                vars: BTreeMap::default(),
            })
            .collect(),
        policy: Policy::default(),
        notify: None,
        digest: String::new(),
    }
}
