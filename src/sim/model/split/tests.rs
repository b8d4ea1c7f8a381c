//! The #310 state and the ordered cold start, on the pure model with a fake clock.

use serde_json::Value;

use super::SplitStage;
use crate::sim::http::views;
use crate::sim::model::builds::Build;
use crate::sim::model::{Cluster, Phase, fixture, node_status};

const OLD: &str = "v2.0.10-20241221";
const NEW: &str = "v2.1.2-20250120";

fn v(s: &str) -> Build {
    fixture::build(s)
}

fn cluster(version: &str) -> Cluster {
    fixture::cluster(3, 3, version)
}

/// Runs the fake clock `ms` further, one deadline at a time; returns the new time.
fn run_for(c: &mut Cluster, now: u64, ms: u64) -> u64 {
    fixture::run_to(c, now + ms);
    now + ms
}

/// Node ids `id`'s own `/cluster/simpleNodes` lists (what the console shows on it).
fn seen_by(c: &Cluster, id: u64, now: u64) -> Vec<u64> {
    let n = c.node(id).unwrap();
    let r = views::cluster_nodes(c, n, None, now, true);
    let v: Value = serde_json::from_str(&r.body).unwrap();
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_u64().unwrap())
        .collect()
}

fn stop_all(c: &mut Cluster, now: u64) -> u64 {
    for id in [1003, 1002, 1001] {
        c.stop(id, now).unwrap();
    }
    let now = run_for(c, now, 2_000);
    assert!(c.nodes.iter().all(|n| n.phase == Phase::Stopped));
    now
}

/// The #310 incident: a settled v2.0.10 cluster, every node down, then all up on v2.1.2.
fn broken() -> (Cluster, u64) {
    let mut c = cluster(OLD);
    let now = run_for(&mut c, 0, 30_000);
    assert!(c.settled(), "the cluster settles before the incident");
    let now = stop_all(&mut c, now);
    c.start_all(Some(&v(NEW)), now).unwrap();
    let now = run_for(&mut c, now, 30_000);
    (c, now)
}

fn kinds(c: &Cluster, kind: &str, to: &str) -> Vec<Option<u64>> {
    c.events
        .iter()
        .filter(|e| e.kind == kind && e.to.as_deref() == Some(to))
        .map(|e| e.node)
        .collect()
}

#[test]
fn all_down_then_up_across_the_rewrite_leaves_every_node_alone() {
    let (c, now) = broken();
    assert_eq!(c.split.as_ref().map(|s| s.stage), Some(SplitStage::Broken));
    for id in [1001, 1002, 1003] {
        let n = c.node(id).unwrap();
        assert!(n.phase.api_open(), "node {id} answers");
        assert!(n.island, "node {id} is an island");
        assert_eq!(seen_by(&c, id, now), vec![id], "node {id} sees only itself");
        assert_eq!(views::health(&c, n).status, 200, "and looks fine");
    }
    assert_eq!(c.controller(), None);
    assert_eq!(
        kinds(&c, "split", "island"),
        vec![Some(1001), Some(1002), Some(1003)]
    );
}

#[test]
fn the_same_restart_without_crossing_the_rewrite_settles() {
    let mut c = cluster("v2.1.2-20250120");
    let now = run_for(&mut c, 0, 30_000);
    let now = stop_all(&mut c, now);
    c.start_all(Some(&v("v2.1.4-20250319")), now).unwrap();
    let now = run_for(&mut c, now, 30_000);
    assert!(c.split.is_none());
    assert!(c.settled());
    assert_eq!(seen_by(&c, 1002, now), vec![1001, 1002, 1003]);
}

#[test]
fn ordered_cold_start_brings_it_back_to_three_of_three() {
    let (mut c, now) = broken();
    let now = stop_all(&mut c, now);
    c.start(1001, None, now).unwrap();
    let now = run_for(&mut c, now, 10_000);
    assert_eq!(
        c.controller(),
        Some(1001),
        "the seed leads the rebuilt cluster"
    );
    assert_eq!(seen_by(&c, 1001, now), vec![1001]);
    c.start(1002, None, now).unwrap();
    let now = run_for(&mut c, now, 15_000);
    assert_eq!(
        c.config.node(1002).map(|n| n.status),
        Some(node_status::JOINED)
    );
    assert!(c.rejoined(1002));
    c.start(1003, None, now).unwrap();
    let now = run_for(&mut c, now, 15_000);
    assert!(c.split.is_none(), "healed");
    assert!(c.settled(), "settled with every node");
    for id in [1001, 1002, 1003] {
        assert_eq!(seen_by(&c, id, now), vec![1001, 1002, 1003]);
        assert!(!c.node(id).unwrap().island);
    }
    assert_eq!(kinds(&c, "split", "seeded"), vec![Some(1001)]);
    assert_eq!(kinds(&c, "split", "healed"), vec![None]);
}

#[test]
fn starting_them_all_together_again_does_not_heal_it() {
    let (mut c, now) = broken();
    let now = stop_all(&mut c, now);
    c.start_all(None, now).unwrap();
    let now = run_for(&mut c, now, 30_000);
    assert_eq!(c.split.as_ref().map(|s| s.stage), Some(SplitStage::Broken));
    for id in [1001, 1002, 1003] {
        assert_eq!(seen_by(&c, id, now), vec![id]);
    }
}

#[test]
fn a_higher_id_first_or_two_joins_at_once_stay_split() {
    // 1002 first: its seed is down, it sees only itself (1001 first, #310).
    let (mut c, now) = broken();
    let now = stop_all(&mut c, now);
    c.start(1002, None, now).unwrap();
    let now = run_for(&mut c, now, 10_000);
    assert!(c.node(1002).unwrap().island);
    assert_eq!(c.split.as_ref().map(|s| s.stage), Some(SplitStage::Broken));

    // 1001 alone, then 1002 and 1003 together: one of them joins, the other does not (#408).
    let now = stop_all(&mut c, now);
    c.start(1001, None, now).unwrap();
    let now = run_for(&mut c, now, 10_000);
    c.start(1002, None, now).unwrap();
    c.start(1003, None, now).unwrap();
    let now = run_for(&mut c, now, 30_000);
    let islands: Vec<u64> = [1002, 1003]
        .into_iter()
        .filter(|id| c.node(*id).unwrap().island)
        .collect();
    assert_eq!(islands.len(), 1, "exactly one of the two joined");
    assert_eq!(
        c.split.as_ref().map(|s| s.stage),
        Some(SplitStage::Rebuilding)
    );
    assert_eq!(seen_by(&c, 1001, now).len(), 2);
}
