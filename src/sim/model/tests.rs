//! Unit tests of the pure model with a fake clock (simulated ms passed explicitly).

use super::builds::Build;
use super::faults::FaultKind;
use super::fixture::{self, run_to};
use super::{Cluster, Phase, timing};
use crate::sim::http::views;

fn v(s: &str) -> Build {
    fixture::build(s)
}

fn cluster(n: usize, version: &str) -> Cluster {
    cluster_joined(n, n, version)
}

fn cluster_joined(n: usize, joined: usize, version: &str) -> Cluster {
    fixture::cluster(u16::try_from(n).unwrap(), joined, version)
}

fn phase(c: &Cluster, id: u64) -> Phase {
    c.node(id).unwrap().phase
}

fn health(c: &Cluster, id: u64) -> String {
    views::health(c, c.node(id).unwrap()).body
}

#[test]
fn bootstrap_settles_with_one_controller_and_balanced_leaders() {
    let mut c = cluster(3, "v2.1.4-20250319");
    assert_eq!(phase(&c, 1001), Phase::Booting);
    run_to(&mut c, timing::BOOT);
    assert_eq!(phase(&c, 1001), Phase::Stale);
    assert!(
        health(&c, 1001).contains("no slots"),
        "first boot has no persisted config"
    );
    run_to(&mut c, 10_000);
    assert!((1001..=1003).all(|id| phase(&c, id) == Phase::Settled));
    assert!(c.config.is_settled());
    assert_eq!(c.controller(), Some(1001));
    for id in 1001..=1003 {
        let led = c.config.slots.iter().filter(|s| s.leader == id).count();
        assert!(led >= 2, "node {id} leads {led} slots");
    }
    run_to(&mut c, timing::BOOT + timing::SLOT_WAIT_PANIC + 1);
    assert!(
        c.nodes.iter().all(|n| n.phase == Phase::Settled),
        "slot wait passed"
    );
    assert_eq!(c.next_deadline(), None, "idle cluster schedules nothing");
}

#[test]
fn stop_start_timeline_with_fake_clock() {
    let mut c = cluster(3, "v2.1.4-20250319");
    run_to(&mut c, 10_000);
    c.events.clear();
    c.stop(1003, 10_000).unwrap();
    run_to(&mut c, 10_000 + timing::GRACEFUL_STOP);
    assert_eq!(phase(&c, 1003), Phase::Stopped);
    assert!(c.config.is_online(1003), "not marked offline yet");
    let marked = 10_000 + timing::GRACEFUL_STOP + timing::OFFLINE_AFTER;
    run_to(&mut c, marked - 1);
    assert!(c.config.is_online(1003));
    run_to(&mut c, marked);
    assert!(!c.config.is_online(1003));
    assert!(health(&c, 1001).contains("slot not ready"));
    run_to(&mut c, marked + timing::SLOT_ELECT);
    assert_eq!(health(&c, 1001), r#"{"status":"ok"}"#);
    assert!(c.config.slots.iter().all(|s| s.leader != 1003));

    let t = marked + 5000;
    c.start(1003, Some(v("v2.1.5-20250424")), t).unwrap();
    c.start(1003, Some(v("v2.1.5-20250424")), t).unwrap();
    assert_eq!(
        c.events.iter().filter(|e| e.kind == "start_noop").count(),
        1,
        "a second start of the same build is a no-op"
    );
    assert!(
        c.start(1003, Some(v("v2.2.5-20260422")), t).is_err(),
        "another build"
    );
    run_to(&mut c, t + timing::BOOT);
    assert_eq!(phase(&c, 1003), Phase::Stale);
    let n = c.node(1003).unwrap();
    let stale = c.view_of(n).unwrap();
    assert!(
        stale.is_online(1003),
        "stale view still says online (facts §4.3)"
    );
    assert!(stale.version < c.config.version);
    run_to(&mut c, t + timing::BOOT + timing::STALE);
    assert_eq!(phase(&c, 1003), Phase::Online);
    run_to(&mut c, t + timing::BOOT + timing::STALE + timing::CATCH_UP);
    assert!(c.config.slots.iter().any(|s| s.migrate_to == 1003));
    run_to(&mut c, t + 10_000);
    assert_eq!(phase(&c, 1003), Phase::Settled);
    assert!(c.config.is_settled());
    let seq: Vec<String> = c
        .events
        .iter()
        .filter(|e| e.kind == "state" && e.node == Some(1003))
        .map(|e| e.to.clone().unwrap())
        .collect();
    assert_eq!(seq, ["stopped", "booting", "stale", "online", "settled"]);
    assert_eq!(c.node(1003).unwrap().version, v("v2.1.5-20250424"));
}

#[test]
fn controller_death_reelects_after_delay() {
    let mut c = cluster(3, "v2.2.5-20260422");
    run_to(&mut c, 10_000);
    c.stop(1001, 10_000).unwrap();
    run_to(&mut c, 11_000);
    assert_eq!(c.controller(), None);
    run_to(&mut c, 11_000 + timing::CONTROLLER_ELECT);
    assert!(matches!(c.controller(), Some(1002 | 1003)));
}

#[test]
fn quorum_loss_blocks_elections() {
    let mut c = cluster(3, "v2.2.5-20260422");
    run_to(&mut c, 10_000);
    c.stop(1002, 10_000).unwrap();
    c.stop(1003, 10_000).unwrap();
    run_to(&mut c, 30_000);
    assert_eq!(c.controller(), None);
    assert!(health(&c, 1001).contains("slot not ready"));
    c.start(1002, None, 30_000).unwrap();
    run_to(&mut c, 40_000);
    assert!(c.controller().is_some());
    assert!(
        c.config
            .slots
            .iter()
            .all(|s| s.status == 0 && s.leader != 1003)
    );
}

#[test]
fn crash_loop_restarts_forever_until_cleared() {
    let mut c = cluster(3, "v2.2.5-20260422");
    run_to(&mut c, 10_000);
    c.apply_fault(1002, FaultKind::CrashLoop, 10_000).unwrap();
    c.stop(1002, 10_000).unwrap();
    run_to(&mut c, 11_000);
    c.start(1002, None, 11_000).unwrap();
    run_to(&mut c, 40_000);
    let crashes = c
        .events
        .iter()
        .filter(|e| e.node == Some(1002) && e.to.as_deref() == Some("crashed"))
        .count();
    assert!(crashes >= 4, "{crashes} crashes");
    c.clear_faults(1002, 40_000).unwrap();
    run_to(&mut c, 60_000);
    assert_eq!(phase(&c, 1002), Phase::Settled);
}

#[test]
fn wrong_version_and_settings() {
    let mut c = cluster(3, "v2.1.2-20250120");
    run_to(&mut c, 10_000);
    c.apply_fault(1001, FaultKind::WrongVersion, 10_000)
        .unwrap();
    c.apply_fault(
        1001,
        FaultKind::Config("WK_CLUSTER_SLOTCOUNT".into(), "128".into()),
        10_000,
    )
    .unwrap();
    c.stop(1001, 10_000).unwrap();
    run_to(&mut c, 12_000);
    c.start(1001, Some(v("v2.2.5-20260422")), 12_000).unwrap();
    assert_eq!(c.node(1001).unwrap().version, v("v2.1.2-20250120"));
    let kv = c.settings(1001).unwrap();
    assert!(kv.contains(&("WK_CLUSTER_SLOTCOUNT".into(), "128".into())));
    assert!(
        kv.iter()
            .any(|(k, v)| k == "WK_CLUSTER_INITNODES" && v.split(' ').count() == 3)
    );
}

#[test]
fn first_boot_without_quorum_panics_only_where_the_version_waits() {
    for (version, panics) in [("v2.2.5-20260422", true), ("v2.1.2-20250120", false)] {
        let mut c = cluster(3, version);
        c.apply_fault(1002, FaultKind::NoRejoin, 0).unwrap();
        c.apply_fault(1003, FaultKind::NoRejoin, 0).unwrap();
        run_to(&mut c, timing::BOOT + timing::SLOT_WAIT_PANIC + 10);
        assert_eq!(c.controller(), None, "{version}: no quorum");
        let crashed = c.events.iter().any(|e| {
            e.node == Some(1001)
                && e.to.as_deref() == Some("crashed")
                && e.detail.as_deref() == Some("panic: wait all slots ready timeout")
        });
        assert_eq!(crashed, panics, "{version}");
        assert!(
            health(&c, 1002).contains("no slots")
                || !c.node(1002).unwrap().caps().health_checks_cluster
        );
    }
}

#[test]
fn netsplit_to_the_controller_gets_the_node_marked_offline() {
    let mut c = cluster(3, "v2.2.5-20260422");
    run_to(&mut c, 10_000);
    let ctrl = c.controller().unwrap();
    let victim = if ctrl == 1001 { 1002 } else { 1001 };
    c.apply_fault(victim, FaultKind::Netsplit(ctrl), 10_000)
        .unwrap();
    run_to(&mut c, 10_000 + timing::OFFLINE_AFTER);
    assert!(!c.config.is_online(victim));
    assert_eq!(
        phase(&c, victim),
        Phase::Settled,
        "the process itself is fine"
    );
    c.clear_faults(victim, 20_000).unwrap();
    run_to(&mut c, 30_000);
    assert!(c.config.is_online(victim) && c.config.is_settled());
}

fn kinds(c: &Cluster, node: u64, kind: &str) -> usize {
    c.events
        .iter()
        .filter(|e| e.kind == kind && e.node == Some(node))
        .count()
}

#[test]
fn bounce_leaves_a_stale_peer_the_controller_never_marks_offline() {
    // The controller itself bounces: the others elect a new one, so its config also lags.
    let mut c = cluster(3, "v2.2.5-20260422");
    run_to(&mut c, 10_000);
    let peer = c.controller().unwrap();
    c.events.clear();
    c.apply_fault(peer, FaultKind::SlowRejoin(20.0), 10_000)
        .unwrap();
    c.bounce(peer, None, 10_000).unwrap();
    let stop = c.events.iter().find(|e| e.kind == "stop").unwrap();
    assert_eq!(
        (stop.settled, stop.detail.as_deref()),
        (Some(true), Some("bounce"))
    );
    run_to(&mut c, 10_000 + timing::BOOT + 1);
    assert_eq!(phase(&c, peer), Phase::Stale);
    assert_eq!(health(&c, peer), r#"{"status":"ok"}"#, "stale /health ok");
    run_to(&mut c, 25_000);
    assert!(c.config.is_online(peer), "never marked offline");
    assert_eq!(kinds(&c, peer, "offline_marked"), 0);
    assert!(
        !c.rejoined(peer) && !c.settled(),
        "not rejoined for a while"
    );
    let n = c.node(peer).unwrap();
    assert!(
        c.view_of(n).unwrap().version < c.config.version,
        "config lags"
    );
    assert!(c.uptime_secs(n, 25_000) <= 15, "uptime reset");
    let q = std::collections::BTreeMap::new();
    let r = views::answer(&mut c, peer, true, "/cluster/info", &q, None, 25_000);
    assert_eq!(r.body, r#"{"msg":"leader not found","status":400}"#);
    run_to(
        &mut c,
        10_000 + timing::BOOT + timing::STALE + 20_000 + timing::CATCH_UP + 10,
    );
    assert!(c.rejoined(peer));
    assert_eq!(kinds(&c, peer, "rejoined"), 1);
    run_to(&mut c, 40_000);
    assert!(c.settled());
}

#[test]
fn start_of_a_running_node_on_its_build_is_a_noop() {
    let mut c = cluster(3, "v2.1.2-20250120");
    run_to(&mut c, 10_000);
    let generation = c.node(1002).unwrap().generation;
    c.start(1002, Some(v("v2.1.2")), 10_000).unwrap();
    c.start(1002, None, 10_000).unwrap();
    assert_eq!(
        c.node(1002).unwrap().generation,
        generation,
        "not restarted"
    );
    assert_eq!(kinds(&c, 1002, "start_noop"), 2);
    assert!(c.start(1002, Some(v("v2.2.5-20260422")), 10_000).is_err());
    c.stop(1002, 10_000).unwrap();
    c.stop(1002, 10_100).unwrap();
    assert_eq!(kinds(&c, 1002, "stop"), 1);
    assert_eq!(
        kinds(&c, 1002, "stop_noop"),
        1,
        "second stop while stopping"
    );
}

#[test]
fn stop_events_record_whether_the_cluster_was_settled() {
    let mut c = cluster(3, "v2.2.5-20260422");
    run_to(&mut c, 10_000);
    c.stop(1003, 10_000).unwrap();
    run_to(&mut c, 12_000);
    c.start(1003, None, 12_000).unwrap();
    // Booting: a second node stopped now is stopped while the cluster is not settled.
    c.stop(1002, 12_500).unwrap();
    let settled: Vec<Option<bool>> = c
        .events
        .iter()
        .filter(|e| e.kind == "stop")
        .map(|e| e.settled)
        .collect();
    assert_eq!(settled, [Some(true), Some(false)]);
}

#[test]
fn slow_catch_up_and_slow_migrate_hold_the_cluster_unsettled() {
    let mut c = cluster(3, "v2.2.5-20260422");
    run_to(&mut c, 10_000);
    c.apply_fault(1003, FaultKind::SlowCatchUp(10.0), 10_000)
        .unwrap();
    c.stop(1003, 10_000).unwrap();
    // Down long enough to be marked offline: coming back online changes the config.
    run_to(&mut c, 20_000);
    assert!(!c.config.is_online(1003));
    c.start(1003, None, 20_000).unwrap();
    let online_at = 20_000 + timing::BOOT + timing::STALE;
    run_to(&mut c, online_at + 5_000);
    assert!(c.config.is_online(1003) && c.node(1003).unwrap().knows_controller);
    assert!(!c.rejoined(1003), "online but config lags");
    let n = c.node(1003).unwrap();
    assert!(c.view_of(n).unwrap().version < c.config.version);
    run_to(&mut c, online_at + timing::CATCH_UP + 10_000 + 1);
    assert!(c.rejoined(1003));
    run_to(&mut c, 40_000);
    assert!(c.settled());

    c.clear_faults(1003, 40_000).unwrap();
    c.apply_fault(1003, FaultKind::SlowMigrate(15.0), 40_000)
        .unwrap();
    c.bounce(1003, None, 40_000).unwrap();
    let caught = 40_000 + timing::BOOT + timing::STALE + timing::CATCH_UP;
    run_to(&mut c, caught + 10_000);
    let moving: Vec<_> = c
        .config
        .slots
        .iter()
        .filter(|s| s.migrate_to == 1003)
        .collect();
    assert!(
        !moving.is_empty(),
        "a leader move towards 1003 is under way"
    );
    assert!(moving.iter().all(|s| s.migrate_from != 0));
    assert!(c.rejoined(1003) && !c.settled());
    run_to(&mut c, caught + timing::MIGRATE + 15_000 + 1);
    assert!(c.settled());
}

#[test]
fn stuck_joining_529_differs_from_still_joining() {
    // #529: online, caught up, holds replicas, `join: true`, status 2 forever.
    let mut c = cluster(3, "v2.2.4-20260313");
    run_to(&mut c, 10_000);
    c.apply_fault(1002, FaultKind::StuckJoining, 10_000)
        .unwrap();
    run_to(&mut c, 60_000);
    let cn = c.config.node(1002).unwrap();
    assert_eq!((cn.status, cn.join, cn.online), (2, true, true));
    assert!(c.rejoined(1002));
    assert!(c.config.slots.iter().any(|s| s.replicas.contains(&1002)));
    // The simulator's truth: a node stuck by #529 serves as a member does.
    assert!(c.stuck_by_529(1002));
    assert!(
        c.settled(),
        "#529: the cluster is whole while 1002's status stays 2"
    );
    c.bounce(1002, None, 60_000).unwrap();
    run_to(&mut c, 90_000);
    assert_eq!(
        c.config.node(1002).unwrap().status,
        2,
        "still stuck after a restart"
    );
    c.clear_faults(1002, 90_000).unwrap();
    assert_eq!(c.config.node(1002).unwrap().status, 3);
    run_to(&mut c, 95_000);
    assert!(c.settled());

    // Really still joining: a new node through the seed, held in Joining.
    let mut c = cluster_joined(4, 3, "v2.2.5-20260422");
    run_to(&mut c, 10_000);
    c.apply_fault(1004, FaultKind::SlowJoin(30.0), 10_000)
        .unwrap();
    c.start(1004, None, 10_000).unwrap();
    run_to(
        &mut c,
        10_000 + timing::BOOT + timing::STALE + timing::JOIN_STEP + 1,
    );
    let cn = c.config.node(1004).unwrap();
    assert_eq!((cn.status, cn.join, cn.online), (2, true, true));
    assert!(
        !c.config.slots.iter().any(|s| s.replicas.contains(&1004)),
        "no replicas"
    );
    assert!(!c.rejoined(1004), "not caught up");
    run_to(&mut c, 60_000);
    let cn = c.config.node(1004).unwrap();
    assert_eq!(cn.status, 3);
    assert!(c.config.slots.iter().any(|s| s.replicas.contains(&1004)));
    assert!(c.settled());
}

#[test]
fn forwarded_answers_pass_through() {
    let mut c = cluster(3, "v2.2.5-20260422");
    run_to(&mut c, 10_000);
    let ctrl = c.controller().unwrap();
    let other = if ctrl == 1001 { 1002 } else { 1001 };
    let q = std::collections::BTreeMap::new();
    let r = views::answer(&mut c, other, true, "/cluster/info", &q, None, 10_000);
    assert_eq!(r.status, 200);
    c.apply_fault(ctrl, FaultKind::Http500, 10_000).unwrap();
    let r = views::answer(&mut c, other, true, "/cluster/info", &q, None, 10_000);
    assert_eq!(
        (r.status, r.body.as_str(), r.delay),
        (500, "", 0),
        "bare 500 passes through"
    );
    c.clear_faults(ctrl, 10_000).unwrap();
    c.apply_fault(ctrl, FaultKind::Token("t2".into()), 10_000)
        .unwrap();
    let r = views::answer(&mut c, other, true, "/cluster/info", &q, None, 10_000);
    assert_eq!(
        (r.status, r.body.as_str()),
        (401, ""),
        "bare 401 passes through"
    );
    c.clear_faults(ctrl, 10_000).unwrap();
    c.apply_fault(ctrl, FaultKind::Blackhole, 10_000).unwrap();
    let r = views::answer(&mut c, other, true, "/cluster/info", &q, None, 10_000);
    assert!(r.hang.is_some() && r.delay == 0, "no 3 s timeout: it hangs");
}

#[test]
fn dev_build_reports_previous_release_with_its_own_commit() {
    let mut c = cluster(3, "v2.1.2-20250120");
    run_to(&mut c, 10_000);
    c.bounce(1001, Some(v("v2.1.3-20250210-dev")), 10_000)
        .unwrap();
    run_to(&mut c, 20_000);
    let q = std::collections::BTreeMap::new();
    let dev: serde_json::Value =
        serde_json::from_str(&views::answer(&mut c, 1001, true, "/varz", &q, None, 20_000).body)
            .unwrap();
    let rel: serde_json::Value =
        serde_json::from_str(&views::answer(&mut c, 1002, true, "/varz", &q, None, 20_000).body)
            .unwrap();
    assert_eq!(dev["version"], "v2.1.2-20250120");
    assert_eq!(rel["version"], "v2.1.2-20250120");
    assert_ne!(dev["commit"], rel["commit"]);
}
