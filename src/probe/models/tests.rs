//! Model tests: the facts file's example JSON verbatim (§3.2–§3.6), then odd variants.

use super::*;

const VARZ: &str = r#"{
  "server_id": "1001",
  "server_name": "WuKongIM",
  "version": "v2.2.5-20260422",
  "connections": 12,
  "user_handler_count": 10,
  "user_handler_conn_count": 12,
  "uptime": "3h12m5s",
  "goroutine": 1532,
  "mem": 412345678,
  "cpu": 3.5,
  "in_msgs": 1200, "out_msgs": 1300, "in_bytes": 123456, "out_bytes": 234567,
  "slow_clients": 0,
  "retry_queue": 0,
  "tcp_addr": "1.2.3.4:15100",
  "ws_addr": "ws://1.2.3.4:15200",
  "wss_addr": "",
  "manager_addr": "1.2.3.4:5300",
  "manager_on": 1,
  "commit": "a888f89533d0e7d1b2030e06504ca97f1ad891d4",
  "commit_date": "1776816000",
  "tree_state": "clean",
  "api_url": "http://1.2.3.4:5001",
  "manager_uid": "____manager",
  "manager_token_on": 0,
  "conversation_cache_count": 0
}"#;

const NODE: &str = r#"{
  "id": 1001,
  "is_leader": 1,
  "role": 0,
  "cluster_addr": "node1.wk.local:11110",
  "api_server_addr": "http://node1.wk.local:5001",
  "online": 1,
  "offline_count": 2,
  "last_offline": "2026-04-22 10:15",
  "allow_vote": 1,
  "slot_count": 64,
  "term": 5,
  "slot_leader_count": 22,
  "uptime": "3h12m5s",
  "app_version": "v2.2.5-20260422",
  "config_version": 412,
  "status": 3,
  "status_format": "已加入"
}"#;

const NODES: &str = r#"{"total":3,"data":[
 {"id":1001,"is_leader":1,"role":0,"cluster_addr":"node1.wk.local:11110","api_server_addr":"http://node1.wk.local:5001","online":1,"allow_vote":1,"slot_count":64,"term":5,"slot_leader_count":32,"uptime":"3h1m2s","app_version":"v2.2.5-20260422","config_version":415,"status":3,"status_format":"已加入"},
 {"id":1002,"role":0,"cluster_addr":"node2.wk.local:11110","api_server_addr":"http://node2.wk.local:5001","online":1,"allow_vote":1,"slot_count":64,"term":5,"slot_leader_count":32,"uptime":"3h1m0s","app_version":"v2.2.5-20260422","config_version":415,"status":3,"status_format":"已加入"},
 {"id":1003,"role":0,"cluster_addr":"node3.wk.local:11110","api_server_addr":"http://node3.wk.local:5001","offline_count":1,"last_offline":"2026-04-22 10:15","allow_vote":1,"slot_count":64,"term":5,"status":3,"status_format":"已加入"}
]}"#;

const INFO: &str = r#"{
  "version": 415,
  "slotCount": 64,
  "slotReplicaCount": 3,
  "channelReplicaCount": 3,
  "term": 5,
  "nodes": [
    {"id":1001,"clusterAddr":"node1.wk.local:11110","apiServerAddr":"http://node1.wk.local:5001","online":true,"allowVote":true,"status":3,"createdAt":1713750000},
    {"id":1003,"clusterAddr":"node3.wk.local:11110","apiServerAddr":"http://node3.wk.local:5001","offlineCount":1,"lastOffline":1776824100,"allowVote":true,"status":3,"createdAt":1713750000}
  ],
  "slots": [
    {"leader":1001,"term":3,"replicas":[1001,1002,1003]},
    {"id":1,"leader":1002,"term":4,"replicas":[1001,1002,1003],"migrateFrom":1002,"migrateTo":1003},
    {"id":2,"leader":1003,"term":6,"replicas":[1001,1002,1003],"expectLeader":1002,"status":1}
  ]
}"#;

#[test]
fn varz_example_parses() {
    let v: Varz = serde_json::from_str(VARZ).unwrap();
    assert_eq!(v.server_id, "1001");
    assert_eq!(v.server_id_num(), Some(1001));
    assert_eq!(v.version, "v2.2.5-20260422");
    assert_eq!(
        parse_go_uptime(&v.uptime),
        Some(Duration::from_secs(3 * 3600 + 12 * 60 + 5))
    );
    assert_eq!(v.commit_date, "1776816000");
    assert!(!v.manager_token_on);
}

#[test]
fn varz_odd_variants() {
    // plain `go build`: empty version; id written as a number; missing keys; extra keys.
    let v: Varz =
        serde_json::from_str(r#"{"server_id":1002,"version":"","new_field":{"x":1}}"#).unwrap();
    assert_eq!(v.server_id_num(), Some(1002));
    assert_eq!(v.version, "");
    assert_eq!(v.uptime, "");
    let v: Varz = serde_json::from_str(r#"{"version":"2.2.5-20260422","uptime":"45s"}"#).unwrap();
    assert_eq!(v.version, "2.2.5-20260422");
    assert_eq!(v.server_id_num(), None);
    assert!(serde_json::from_str::<Varz>(r#""a string""#).is_err());
}

#[test]
fn node_example_parses() {
    let n: NodeConfig = serde_json::from_str(NODE).unwrap();
    assert_eq!(n.id, 1001);
    assert!(n.is_leader && n.online && n.allow_vote);
    assert_eq!(n.config_version, 412);
    assert_eq!(n.status, NodeStatus::Joined);
    assert_eq!(n.slot_leader_count, 22);
    assert_eq!(n.app_version, "v2.2.5-20260422");
    assert_eq!(n.cluster_addr, "node1.wk.local:11110");
}

#[test]
fn node_minimal_means_offline_follower_unknown_status() {
    let n: NodeConfig = serde_json::from_str(r#"{"allow_vote":1,"id":1002,"role":0}"#).unwrap();
    assert_eq!(n.id, 1002);
    assert!(!n.online, "absent `online` means offline");
    assert!(!n.is_leader);
    assert_eq!((n.config_version, n.status), (0, NodeStatus::Unknown));
    assert_eq!(n.app_version, "", "v2.1.1–v2.2.1 leave app_version out");
    // `id` is the one required field.
    assert!(serde_json::from_str::<NodeConfig>(r#"{"online":1}"#).is_err());
    // booleans instead of 0/1, a status outside the enum.
    let n: NodeConfig =
        serde_json::from_str(r#"{"id":1,"online":true,"is_leader":false,"status":7}"#).unwrap();
    assert!(n.online && !n.is_leader);
    assert_eq!(n.status, NodeStatus::Other(7));
}

#[test]
fn nodes_example_parses_with_offline_peer() {
    let l: NodeList = serde_json::from_str(NODES).unwrap();
    assert_eq!(l.total, 3);
    assert_eq!(
        l.data
            .iter()
            .map(|n| (n.id, n.online, n.is_leader))
            .collect::<Vec<_>>(),
        [
            (1001, true, true),
            (1002, true, false),
            (1003, false, false)
        ]
    );
    assert_eq!(l.data[2].config_version, 0);
    assert_eq!(l.data[2].offline_count, 1);
    let empty: NodeList = serde_json::from_str(r#"{"total":0,"data":null}"#).unwrap();
    assert!(empty.data.is_empty());
}

#[test]
fn cluster_info_example_parses_with_omitempty_rules() {
    let i: ClusterInfo = serde_json::from_str(INFO).unwrap();
    assert_eq!(
        (
            i.version,
            i.slot_count,
            i.slot_replica_count,
            i.channel_replica_count
        ),
        (415, 64, 3, 3)
    );
    assert_eq!(i.nodes.len(), 2);
    assert!(i.nodes[0].online && !i.nodes[1].online);
    assert_eq!(i.nodes[1].status, NodeStatus::Joined);
    assert_eq!(i.nodes[1].last_offline, 1_776_824_100);
    let s = &i.slots;
    assert_eq!(s[0].id, 0, "slot 0 has no id key");
    assert_eq!((s[0].status, s[0].migrating()), (SlotStatus::Normal, false));
    assert_eq!((s[1].migrate_from, s[1].migrate_to), (1002, 1003));
    assert!(s[1].migrating());
    assert_eq!(
        (s[2].status, s[2].expect_leader),
        (SlotStatus::Candidate, 1002)
    );
}

#[test]
fn cluster_info_minimal_and_odd() {
    let i: ClusterInfo = serde_json::from_str("{}").unwrap();
    assert_eq!((i.version, i.nodes.len(), i.slots.len()), (0, 0, 0));
    let i: ClusterInfo = serde_json::from_str(r#"{"slots":[{},{"id":3,"status":2,"learners":null}],"nodes":[{"id":7,"role":1,"join":true}],"migrateTo":7,"extra":[1]}"#).unwrap();
    assert_eq!(i.slots[0].leader, 0, "absent leader means none");
    assert_eq!(i.slots[1].status, SlotStatus::LeaderTransfer);
    assert!(i.nodes[0].join && !i.nodes[0].online);
    assert_eq!(i.migrate_to, 7);
}

#[test]
fn logs_and_error_bodies_parse() {
    let l: ClusterLogs =
        serde_json::from_str(r#"{"next":0,"pre":0,"applied":41,"last":42,"more":0,"logs":[]}"#)
            .unwrap();
    assert_eq!((l.applied, l.last), (41, 42));
    let e: ApiErrorBody =
        serde_json::from_str(r#"{"msg":"leader not found","status":400}"#).unwrap();
    assert_eq!((e.msg.as_str(), e.status), ("leader not found", Some(400)));
    let h: HealthBody =
        serde_json::from_str(r#"{"status":"error","message":"slot not ready"}"#).unwrap();
    assert_eq!(
        (h.status.as_str(), h.message.as_str()),
        ("error", "slot not ready")
    );
}

#[test]
fn go_uptime_formats() {
    let s = Duration::from_secs;
    assert_eq!(parse_go_uptime("45s"), Some(s(45)));
    assert_eq!(parse_go_uptime("0s"), Some(s(0)));
    assert_eq!(parse_go_uptime("3m12s"), Some(s(192)));
    assert_eq!(parse_go_uptime("2h3m4s"), Some(s(2 * 3600 + 184)));
    assert_eq!(parse_go_uptime("1d2h3m4s"), Some(s(86_400 + 7200 + 184)));
    assert_eq!(
        parse_go_uptime("1y2d3h4m5s"),
        Some(s(365 * 86_400 + 2 * 86_400 + 3 * 3600 + 245))
    );
    assert_eq!(parse_go_uptime(" 1.5s "), Some(Duration::from_millis(1500)));
    assert_eq!(parse_go_uptime("250ms"), Some(Duration::from_millis(250)));
    for bad in ["", "s", "12", "3x", "1h-2m", "abc", "1..2s", "1e9999y"] {
        assert_eq!(parse_go_uptime(bad), None, "{bad:?}");
    }
}

/// The lenient `/varz` counters (issue #18), one row per shape a node (or a proxy) may
/// write: `connections` and `slow_clients` are gauges capped at [`MAX_COUNT`]; `in_msgs`
/// is a cumulative counter capped at [`MAX_COUNTER`]. Everything that is not a plausible
/// count is unknown (`None`), never a parse error and never a pass.
#[test]
fn varz_counter_table() {
    let rows: &[(&str, &str, Option<u64>, Option<u64>)] = &[
        // (name, JSON value, as a gauge, as a cumulative counter)
        ("int", "12", Some(12), Some(12)),
        ("zero", "0", Some(0), Some(0)),
        ("int as string", r#""1600""#, Some(1600), Some(1600)),
        ("string with spaces", r#"" 7 ""#, Some(7), Some(7)),
        ("whole float", "12.0", Some(12), Some(12)),
        ("whole float as string", r#""12.0""#, Some(12), Some(12)),
        ("exponent float", "1e3", Some(1000), Some(1000)),
        ("fractional float", "12.5", None, None),
        ("negative int", "-1", None, None),
        ("negative as string", r#""-1""#, None, None),
        ("negative float", "-0.5", None, None),
        (
            "the gauge cap",
            "1000000000",
            Some(MAX_COUNT),
            Some(MAX_COUNT),
        ),
        (
            "above the gauge cap",
            "1000000001",
            None,
            Some(1_000_000_001),
        ),
        ("huge: 10^17", "100000000000000000", None, None),
        (
            "the counter cap",
            "1000000000000000",
            None,
            Some(MAX_COUNTER),
        ),
        ("u64::MAX", "18446744073709551615", None, None),
        ("beyond u64", "18446744073709551616", None, None),
        ("huge float", "1e300", None, None),
        ("huge as string", r#""100000000000000000""#, None, None),
        ("null", "null", None, None),
        ("bool true", "true", None, None),
        ("bool false", "false", None, None),
        ("not a number", r#""many""#, None, None),
        ("empty string", r#""""#, None, None),
        ("array", "[1]", None, None),
        ("object", r#"{"n":1}"#, None, None),
    ];
    for (name, json, gauge, counter) in rows {
        let body = format!(r#"{{"connections":{json},"slow_clients":{json},"in_msgs":{json}}}"#);
        let v: Varz = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(v.connections, *gauge, "{name}: connections");
        assert_eq!(v.slow_clients, *gauge, "{name}: slow_clients");
        assert_eq!(v.in_msgs, *counter, "{name}: in_msgs");
    }
    // Missing: unknown, the other fields still parse.
    let v: Varz = serde_json::from_str(r#"{"server_id":"1001"}"#).unwrap();
    assert_eq!(
        (v.connections, v.in_msgs, v.out_msgs, v.retry_queue),
        (None, None, None, None)
    );
    assert_eq!(v.server_id_num(), Some(1001));
}
