//! Unit tests of the pure model with a fake clock (simulated ms passed explicitly).

use crate::version::WkVersion;

use super::faults::FaultKind;
use super::model::{Cluster, ModelOpts, NodeSpec, Phase, timing};
use super::views;

fn v(s: &str) -> WkVersion {
    WkVersion::parse(s).unwrap()
}

fn cluster(n: usize, version: &str) -> Cluster {
    let opts = ModelOpts {
        speed: 1.0,
        epoch_ms: 1_776_816_000_000,
        release_style: false,
        token: None,
        slot_count: 8,
        replicas: 3,
        host: "127.0.0.1".into(),
    };
    let specs: Vec<NodeSpec> = (0..n)
        .map(|i| NodeSpec {
            id: 1001 + i as u64,
            api_port: 20000 + u16::try_from(i).unwrap(),
            cluster_port: 21000 + u16::try_from(i).unwrap(),
        })
        .collect();
    Cluster::new(opts, &specs, n, &v(version), 0)
}

/// Runs the fake clock until `now`, one deadline at a time.
fn run_to(c: &mut Cluster, now: u64) {
    while let Some(at) = c.next_deadline().filter(|at| *at <= now) {
        c.advance(at);
    }
    c.advance(now);
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
    assert!(c.start(1003, None, t).is_err(), "already running");
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
                || !c.node(1002).unwrap().caps().health_cluster_aware
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
