//! Table tests of the service-level rules: one row per situation, a baseline then soak
//! observations (seconds into the soak, connections per node, messages per node) and the
//! expected answer after each.

use std::time::Duration;

use super::*;
use crate::probe::fixtures::settled;
use crate::probe::{ClusterView, Service};

const SOAK: Duration = Duration::from_secs(10);

/// Connections and `in_msgs` per node 1001..1003 (`None` = field missing); out = in.
fn view(conns: [Option<u64>; 3], msgs: [u64; 3]) -> ClusterView {
    let mut v = settled("v2.1.2-20250120", 0);
    for (i, n) in v.nodes.iter_mut().enumerate() {
        n.service = Service {
            connections: conns[i],
            in_msgs: Some(msgs[i]),
            out_msgs: Some(msgs[i]),
            slow_clients: Some(0),
            retry_queue: Some(0),
        };
    }
    v
}

fn c3(a: u64, b: u64, c: u64) -> [Option<u64>; 3] {
    [Some(a), Some(b), Some(c)]
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Want {
    Done,
    Pending,
    Short(&'static str),
}

struct Row {
    name: &'static str,
    policy: ClientsPolicy,
    /// Two observations before the stop (the second is the baseline of node 1002).
    before: [ClusterView; 2],
    /// (seconds into the soak, view, expected)
    soak: Vec<(u64, ClusterView, Want)>,
    check: Check,
    flow: Flow,
}

fn pol() -> ClientsPolicy {
    ClientsPolicy::default()
}

fn run(row: &Row) -> Summary {
    let mut c = Clients::new(row.policy);
    c.observe(&row.before[0]);
    c.observe(&row.before[1]);
    c.record_baseline(1002, &row.before[1]);
    c.soak_begin();
    let mut last = None;
    for (secs, v, want) in &row.soak {
        c.observe(v);
        let got = c.soak(v, Duration::from_secs(*secs), SOAK);
        match (want, &got) {
            (Want::Done, Soak::Done) | (Want::Pending, Soak::Pending(_)) => {}
            (Want::Short(text), Soak::Shortfall(why)) if why.contains(text) => {}
            _ => panic!("{}: at {secs}s expected {want:?}, got {got:?}", row.name),
        }
        last = Some(c.summary(v));
    }
    let s = last.expect("rows have soak views");
    assert_eq!(s.check, row.check, "{}: {s:?}", row.name);
    assert_eq!(s.messages, row.flow, "{}: {s:?}", row.name);
    s
}

#[test]
fn service_level_table() {
    let base = || {
        [
            view(c3(1000, 1000, 1000), [10, 10, 10]),
            view(c3(1000, 1000, 1000), [20, 20, 20]),
        ]
    };
    let rows = vec![
        Row {
            name: "clients back and messages flowing: done at the end of the soak",
            policy: pol(),
            before: base(),
            soak: vec![
                (1, view(c3(1450, 100, 1450), [30, 1, 30]), Want::Pending),
                (10, view(c3(1400, 500, 1100), [40, 5, 40]), Want::Done),
            ],
            check: Check::Passed,
            flow: Flow::Flowing,
        },
        Row {
            name: "clients short at the end of the soak: shortfall naming the numbers",
            policy: pol(),
            before: base(),
            soak: vec![
                (1, view(c3(1000, 0, 1000), [30, 0, 30]), Want::Pending),
                (
                    10,
                    view(c3(1000, 0, 1000), [40, 0, 40]),
                    Want::Short("2,000 cluster-wide connections, 66% of the 3,000"),
                ),
            ],
            check: Check::Shortfall,
            flow: Flow::Flowing,
        },
        Row {
            name: "within longer than the soak: the soak waits for the clients",
            policy: ClientsPolicy {
                within: Some(Duration::from_secs(30)),
                ..pol()
            },
            before: base(),
            soak: vec![
                (10, view(c3(1000, 0, 1000), [30, 0, 30]), Want::Pending),
                (20, view(c3(1400, 300, 1200), [40, 1, 40]), Want::Done),
            ],
            check: Check::Passed,
            flow: Flow::Flowing,
        },
        Row {
            name: "within passed while still short",
            policy: ClientsPolicy {
                within: Some(Duration::from_secs(30)),
                ..pol()
            },
            before: base(),
            soak: vec![
                (10, view(c3(1000, 0, 1000), [30, 0, 30]), Want::Pending),
                (30, view(c3(1200, 0, 1200), [40, 0, 40]), Want::Short("80%")),
            ],
            check: Check::Shortfall,
            flow: Flow::Flowing,
        },
        Row {
            name: "recover 50%: two thirds is enough",
            policy: ClientsPolicy {
                recover_pct: 50,
                ..pol()
            },
            before: base(),
            soak: vec![(10, view(c3(1000, 0, 1000), [30, 0, 30]), Want::Done)],
            check: Check::Passed,
            flow: Flow::Flowing,
        },
        Row {
            name: "below the floor: skipped and says so",
            policy: pol(),
            before: [
                view(c3(13, 14, 15), [10, 10, 10]),
                view(c3(13, 14, 15), [20, 20, 20]),
            ],
            soak: vec![(10, view(c3(0, 0, 0), [30, 30, 30]), Want::Done)],
            check: Check::Skipped,
            flow: Flow::Flowing,
        },
        Row {
            name: "connections missing from /varz: unknown, skipped, never a failure",
            policy: pol(),
            before: [
                view([None, None, None], [10, 10, 10]),
                view([None, None, None], [20, 20, 20]),
            ],
            soak: vec![(10, view([None, None, None], [30, 30, 30]), Want::Done)],
            check: Check::Skipped,
            flow: Flow::Flowing,
        },
        Row {
            name: "messages were growing and stopped: shortfall",
            policy: pol(),
            before: base(),
            soak: vec![
                (1, view(c3(1500, 0, 1500), [20, 0, 20]), Want::Pending),
                (5, view(c3(1500, 0, 1500), [20, 0, 20]), Want::Pending),
                (
                    10,
                    view(c3(1500, 0, 1500), [20, 0, 20]),
                    Want::Short("messages stopped flowing"),
                ),
            ],
            check: Check::Shortfall,
            flow: Flow::Stopped,
        },
        Row {
            name: "a restarted process counting from 0 is growth",
            policy: pol(),
            before: base(),
            soak: vec![(10, view(c3(1500, 0, 1500), [20, 3, 20]), Want::Done)],
            check: Check::Passed,
            flow: Flow::Flowing,
        },
        Row {
            name: "an idle cluster (counters not growing before) is not judged on messages",
            policy: pol(),
            before: [
                view(c3(1000, 1000, 1000), [20, 20, 20]),
                view(c3(1000, 1000, 1000), [20, 20, 20]),
            ],
            soak: vec![(10, view(c3(1500, 0, 1500), [20, 0, 20]), Want::Done)],
            check: Check::Passed,
            flow: Flow::Idle,
        },
        Row {
            name: "back, then gone again before the soak's end: the last observation decides",
            policy: pol(),
            before: base(),
            soak: vec![
                (2, view(c3(1500, 0, 1500), [30, 0, 30]), Want::Pending),
                (5, view(c3(1000, 0, 1000), [40, 0, 40]), Want::Pending),
                (
                    10,
                    view(c3(1000, 0, 1000), [50, 0, 50]),
                    Want::Short("left again"),
                ),
            ],
            check: Check::Shortfall,
            flow: Flow::Flowing,
        },
        Row {
            name: "a dip in the middle of the soak that is back by its end passes",
            policy: pol(),
            before: base(),
            soak: vec![
                (2, view(c3(1500, 0, 1500), [30, 0, 30]), Want::Pending),
                (5, view(c3(1000, 0, 1000), [40, 0, 40]), Want::Pending),
                (10, view(c3(1400, 200, 1400), [50, 1, 50]), Want::Done),
            ],
            check: Check::Passed,
            flow: Flow::Flowing,
        },
        Row {
            name: "one node without a count: the others are still compared",
            policy: pol(),
            before: [
                view([Some(1000), Some(1000), None], [10, 10, 10]),
                view([Some(1000), Some(1000), None], [20, 20, 20]),
            ],
            soak: vec![
                (
                    1,
                    view([Some(1000), Some(0), None], [30, 0, 30]),
                    Want::Pending,
                ),
                (
                    10,
                    view([Some(1000), Some(0), None], [40, 0, 40]),
                    Want::Short("1,000 cluster-wide connections, 50% of the 2,000"),
                ),
            ],
            check: Check::Shortfall,
            flow: Flow::Flowing,
        },
        Row {
            name: "one node without a count, the others back: passed",
            policy: pol(),
            before: [
                view([Some(1000), Some(1000), None], [10, 10, 10]),
                view([Some(1000), Some(1000), None], [20, 20, 20]),
            ],
            soak: vec![(
                10,
                view([Some(1900), Some(100), None], [40, 1, 40]),
                Want::Done,
            )],
            check: Check::Passed,
            flow: Flow::Flowing,
        },
        Row {
            name: "a node that reported at the baseline and no longer does is not back",
            policy: pol(),
            before: base(),
            soak: vec![(
                10,
                view([Some(1500), Some(1500), None], [40, 1, 40]),
                Want::Short("node 1003 reported a count before the stop and does not now"),
            )],
            check: Check::Shortfall,
            flow: Flow::Flowing,
        },
        Row {
            name: "only one node reports a count: skipped",
            policy: pol(),
            before: [
                view([Some(5000), None, None], [10, 10, 10]),
                view([Some(5000), None, None], [20, 20, 20]),
            ],
            soak: vec![(10, view([Some(0), None, None], [30, 30, 30]), Want::Done)],
            check: Check::Skipped,
            flow: Flow::Flowing,
        },
        Row {
            name: "counts whose sum overflows are unknown, never back",
            policy: pol(),
            before: [
                view(c3(u64::MAX / 2, u64::MAX / 2, 1000), [10, 10, 10]),
                view(c3(u64::MAX / 2, u64::MAX / 2, 1000), [20, 20, 20]),
            ],
            soak: vec![(
                10,
                view(c3(u64::MAX / 2, u64::MAX / 2, 1000), [30, 30, 30]),
                Want::Short("unknown cluster-wide connections"),
            )],
            check: Check::Shortfall,
            flow: Flow::Flowing,
        },
    ];
    for row in &rows {
        run(row);
    }
}

/// A baseline set from the run state (a resumed run) is used as recorded.
#[test]
fn a_baseline_set_from_the_run_state_is_checked() {
    let c = Clients::new(ClientsPolicy::default());
    let before = view(c3(1600, 1600, 1600), [10, 10, 10]);
    let saved = c.baseline_from(&before);
    assert_eq!(saved.connections.len(), 3);
    // A new process: no observation before the stop, only the saved baseline.
    let mut c = Clients::new(ClientsPolicy::default());
    c.set_baseline(1001, Some(saved));
    c.soak_begin();
    let now = view(c3(800, 1600, 0), [20, 20, 20]);
    c.observe(&now);
    let got = c.soak(&now, SOAK, SOAK);
    assert!(
        matches!(&got, Soak::Shortfall(w) if w.contains("of the 4,800 before the stop")),
        "{got:?}"
    );
    let mut c = Clients::new(ClientsPolicy::default());
    c.set_baseline(1001, None);
    assert_eq!(c.skip().map(|s| s.0), Some(Skip::NoBaseline));
}

#[test]
fn the_progress_line_and_the_event_numbers() {
    let mut c = Clients::new(ClientsPolicy::default());
    let before = view(c3(4812, 4800, 4824), [10, 10, 10]);
    c.observe(&before);
    c.record_baseline(1002, &before);
    c.soak_begin();
    let now = view(c3(7200, 0, 7214), [20, 0, 20]);
    c.observe(&now);
    let s = c.summary(&now);
    assert_eq!(s.baseline, Some(14_436));
    assert_eq!(s.moved_off, Some(4800));
    assert_eq!(s.connections, Some(14_414));
    assert_eq!(s.back, Some(4778));
    assert_eq!(s.recovered_pct, Some(99));
    assert_eq!(s.line(), "4,800 clients moved off; 4,778 back (99%)");
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["check"], "waiting");
    assert_eq!(
        json["messages"], "unknown",
        "one observation before the stop"
    );
    assert_eq!(thousands(0), "0");
    assert_eq!(thousands(999), "999");
    assert_eq!(thousands(1_000_000), "1,000,000");
}

#[test]
fn sharp_rises_of_slow_clients_and_retry_queue_are_reported() {
    let mut c = Clients::new(ClientsPolicy::default());
    let before = view(c3(1000, 1000, 1000), [10, 10, 10]);
    c.observe(&before);
    c.record_baseline(1002, &before);
    c.soak_begin();
    let mut v = view(c3(1500, 0, 1500), [20, 0, 20]);
    v.nodes[0].service.retry_queue = Some(400);
    v.nodes[2].service.slow_clients = Some(20);
    c.observe(&v);
    let s = c.summary(&v);
    assert_eq!(s.warnings.len(), 1, "{s:?}");
    assert!(
        s.warnings[0]
            .starts_with("retry_queue rose sharply cluster-wide: 0 before the stop, up to 400")
    );
}
