//! The service model with a fake clock: clients move off a stopped node and back,
//! counters grow and freeze, messages replicate (or not).

use serde_json::{Value, json};

use super::super::faults::FaultKind;
use super::super::fixture::{self, run_to};
use super::super::{Cluster, timing};

fn cluster(per_node: u64) -> Cluster {
    let mut c = fixture::cluster(3, 3, "v2.1.4-20250319");
    c.set_clients(per_node, 0);
    c
}

fn conns(c: &mut Cluster, id: u64, now: u64) -> u64 {
    c.service_varz(id, now).0
}

fn total(c: &mut Cluster, now: u64) -> u64 {
    (1001..=1003).map(|id| conns(c, id, now)).sum()
}

#[test]
fn clients_connect_move_off_a_stopped_node_and_some_come_back() {
    let mut c = cluster(1000);
    run_to(&mut c, 12_000);
    assert_eq!(total(&mut c, 12_000), 3000);
    for id in 1001..=1003 {
        let n = conns(&mut c, id, 12_000);
        assert!((900..=1100).contains(&n), "node {id} has {n}");
    }
    c.stop(1002, 12_000).unwrap();
    let down = 12_000 + timing::GRACEFUL_STOP;
    run_to(&mut c, down);
    assert_eq!(conns(&mut c, 1002, down), 0);
    assert!(total(&mut c, down) <= 2100, "its clients left with it");
    // Within a few seconds they are all on the two others.
    run_to(&mut c, down + 7_000);
    assert_eq!(conns(&mut c, 1002, down + 7_000), 0);
    assert_eq!(total(&mut c, down + 7_000), 3000);
    c.start(1002, None, down + 7_000).unwrap();
    run_to(&mut c, down + 30_000);
    let back = conns(&mut c, 1002, down + 30_000);
    assert!((300..=600).contains(&back), "some rebalance back: {back}");
    assert_eq!(total(&mut c, down + 30_000), 3000);
}

#[test]
fn counters_grow_with_traffic_reset_on_restart_and_freeze_under_traffic_stops() {
    let mut c = cluster(100);
    run_to(&mut c, 12_000);
    let a = c.service_varz(1001, 12_000);
    let b = c.service_varz(1001, 14_000);
    assert!(b.1 > a.1 && b.2 > a.2, "in/out grow: {a:?} → {b:?}");
    // ~100 clients × 0.5 msg/s × 2 s
    assert!((80..=120).contains(&(b.1 - a.1)), "{a:?} → {b:?}");
    c.apply_fault(1002, FaultKind::TrafficStops, 14_000)
        .unwrap();
    let before = c.service_varz(1003, 20_000).1;
    assert!(before > 0);
    c.bounce(1002, None, 20_000).unwrap();
    run_to(&mut c, 30_000);
    let f1: Vec<i64> = (1001..=1003)
        .map(|id| c.service_varz(id, 30_000).1)
        .collect();
    run_to(&mut c, 40_000);
    let f2: Vec<i64> = (1001..=1003)
        .map(|id| c.service_varz(id, 40_000).1)
        .collect();
    assert_eq!(f1, f2, "frozen");
    assert_eq!(f2[1], 0, "the restarted process counts from 0");
    assert!(
        c.events.iter().any(|e| e.kind == "traffic_stopped"),
        "logged"
    );
}

#[test]
fn clients_stuck_drops_a_nodes_clients_after_a_peer_restarts() {
    let mut c = cluster(500);
    run_to(&mut c, 12_000);
    c.apply_fault(1003, FaultKind::ClientsStuck, 12_000)
        .unwrap();
    run_to(&mut c, 20_000);
    assert_eq!(
        total(&mut c, 20_000),
        1500,
        "nothing happens before a peer restarts"
    );
    c.stop(1001, 20_000).unwrap();
    run_to(&mut c, 25_000);
    c.start(1001, None, 25_000).unwrap();
    run_to(&mut c, 60_000);
    assert_eq!(conns(&mut c, 1003, 60_000), 0);
    let t = total(&mut c, 60_000);
    assert!(t <= 1100, "a third is gone and does not come back: {t}");
}

fn send(c: &mut Cluster, via: u64, no: &str, now: u64) -> Result<Value, String> {
    c.message_send(
        via,
        &json!({"channel_id": "probe", "channel_type": 2, "from_uid": "u", "client_msg_no": no, "payload": "aGk="}),
        now,
    )
}

fn read(c: &Cluster, via: u64) -> Vec<String> {
    let v = c
        .message_sync(
            via,
            &json!({"login_uid": "u", "channel_id": "probe", "channel_type": 2, "limit": 10}),
        )
        .unwrap();
    v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["client_msg_no"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn messages_replicate_unless_no_replicate() {
    let mut c = cluster(10);
    run_to(&mut c, 12_000);
    let r = send(&mut c, 1001, "a1", 12_000).unwrap();
    assert_eq!(r["status"], 200);
    assert_eq!(r["data"]["client_msg_no"], "a1");
    assert!(r["data"]["message_id"].as_i64().unwrap() > 0);
    assert_eq!(read(&c, 1002), ["a1"]);
    c.apply_fault(1002, FaultKind::NoReplicate, 12_000).unwrap();
    send(&mut c, 1002, "b2", 12_100).unwrap();
    assert_eq!(read(&c, 1002), ["a1", "b2"]);
    assert_eq!(read(&c, 1003), ["a1"], "not replicated");
    assert!(
        send(&mut c, 1001, "", 12_200).is_ok(),
        "server makes a client_msg_no"
    );
    assert!(
        c.message_send(1001, &json!({"channel_id": "probe"}), 12_300)
            .unwrap_err()
            .contains("payload")
    );
    let sent: Vec<String> = c
        .events
        .iter()
        .filter(|e| e.kind == "message_sent")
        .map(|e| e.detail.clone().unwrap())
        .collect();
    assert_eq!(sent.len(), 3);
    assert!(sent[0].contains("channel_id=probe channel_type=2 client_msg_no=a1"));
}
