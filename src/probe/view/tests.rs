//! `assemble` and `node_view` over raw answers.

use super::*;

fn answers(id: u64, info: Result<ClusterInfo, ProbeError>, is_leader: bool) -> NodeAnswers {
    NodeAnswers {
        id,
        api: format!("http://n{id}:5001"),
        health: Ok(Health {
            ok: true,
            message: None,
        }),
        varz: Err(ProbeError::NotFound),
        node: Ok(NodeConfig {
            id,
            is_leader,
            online: true,
            app_version: "2.0.5-20240925".into(),
            uptime: "1m2s".into(),
            config_version: 7,
            ..NodeConfig::default()
        }),
        info,
    }
}

#[test]
fn assemble_picks_freshest_info_and_falls_back_to_app_version() {
    let old = ClusterInfo {
        version: 5,
        ..ClusterInfo::default()
    };
    let new: ClusterInfo = serde_json::from_str(r#"{"version":9,"slotReplicaCount":3,"nodes":[{"id":1001,"online":true,"status":3,"clusterAddr":"a:11110"},{"id":1002}],"slots":[{"leader":1001},{"id":1,"status":1},{"id":2,"leader":1002,"migrateTo":1001}]}"#).unwrap();
    let lnf = Err(ProbeError::ApiError {
        status: 400,
        msg: "leader not found".into(),
    });
    let a = [
        answers(1001, Ok(old), true),
        answers(1002, Ok(new), false),
        answers(1003, lnf, true),
    ];
    let v = assemble(&a, None, SystemTime::UNIX_EPOCH);
    assert_eq!(v.info_from, Some(1002));
    assert_eq!(v.config_version, Some(9));
    assert_eq!(v.leader_not_found, vec![1003]);
    assert_eq!(v.membership, Some(vec![1001, 1002]));
    let s = v.slots.clone().unwrap();
    assert_eq!(
        (s.total, s.leaderless, s.candidate, s.migrating),
        (3, vec![1], vec![1], vec![2])
    );
    let n1 = v.node(1001).unwrap();
    assert_eq!(
        (n1.info_online, n1.info_status, n1.cluster_addr.as_deref()),
        (Some(true), Some(NodeStatus::Joined), Some("a:11110"))
    );
    assert_eq!(v.node(1002).unwrap().info_online, Some(false));
    assert_eq!(v.node(1003).unwrap().info_online, None);
    assert_eq!(n1.version_source, VersionSource::AppVersion);
    assert_eq!(
        n1.version.as_ref().map(ToString::to_string).as_deref(),
        Some("v2.0.5-20240925")
    );
    assert_eq!(n1.uptime, Some(Duration::from_secs(62)));
    assert!(n1.error.is_none(), "404 on /varz is expected, not an error");
    // 1003 claims leadership from a stale config but does not know the controller.
    assert_eq!(v.controller_claims, vec![1001, 1003]);
    assert_eq!(v.controller, Some(1001));
    assert_eq!(
        v.node(1003).unwrap().info_answer,
        InfoAnswer::LeaderNotFound
    );
}

#[test]
fn unreachable_node_is_not_reachable_and_keeps_the_reason() {
    let mut a = answers(1001, Err(ProbeError::Refused), false);
    a.health = Err(ProbeError::Refused);
    a.node = Err(ProbeError::Refused);
    a.varz = Err(ProbeError::Refused);
    let v = node_view(&a);
    assert!(!v.reachable);
    assert_eq!(v.error, Some(ProbeError::Refused));
    assert_eq!(v.health, HealthState::Unknown);
    assert!(v.version.is_none());
}
