//! Table tests of the drift rules: one row per change since the plan.

use serde_json::json;

use super::*;
use crate::planfile::PlanFile;
use crate::probe::{ClusterView, fixtures};

/// A plan file of a 3-node cluster on `v2.0.10-20241221`, as observed by `settled`.
fn file(source: &str, order: &str) -> PlanFile {
    let view = fixtures::settled("v2.0.10-20241221", 100);
    let observed = (source == "live").then(|| crate::planfile::observed(&view));
    let node = |id: u64| json!({"id": id, "host": "h", "api": "http://h", "from": "v2.0.10-20241221", "action": "upgrade", "steps": []});
    serde_json::from_value(json!({
        "kind": "wkctl-plan", "format_version": 1, "created_at": "2027-01-15T08:00:00Z",
        "wkctl": {"version": "0.1.0 (x)", "rules": 1},
        "target": {"to": "v2.1.2-20250120", "allow_unknown_version": false, "allow_downgrade": false, "allow_downgrade_across_rewrite": false},
        "manifest": {"name": "cluster.yaml", "digest": "m1", "text": "a\nb\n"},
        "playbook": {"name": "sim", "digest": "p1", "text": "x\n"},
        "observed": observed,
        "plan": {"format_version": 1, "cluster": "t", "to": "v2.1.2-20250120", "playbook": "sim", "order": order,
                 "source": source, "policy": {"order": order, "canary": false, "soak": 1.0, "stable_for": 1.0, "node_timeout": 1.0, "poll_interval": 1.0, "step_timeout": 1.0, "accept_stuck_joining": true},
                 "nodes": [node(1001), node(1002), node(1003)], "findings": [], "digest": "d", "manifest_digest": "m1", "playbook_digest": "p1"}
    }))
    .unwrap()
}

fn now() -> ClusterView {
    fixtures::settled("v2.0.10-20241221", 100)
}

#[test]
#[allow(clippy::type_complexity)]
fn cluster_drift_rows() {
    type Edit = fn(&mut ClusterView);
    let rows: [(&str, &str, Edit, &[&str], &[&str]); 9] = [
        ("nothing changed", "id", |_| {}, &[], &[]),
        (
            "a node upgraded by hand",
            "id",
            |v| v.node_mut(1002).unwrap().version = Some(fixtures::v("v2.1.2-20250120")),
            &["node 1002 changed since the plan: version v2.0.10-20241221 → v2.1.2-20250120"],
            &[],
        ),
        (
            "a new build of the same version",
            "id",
            |v| v.node_mut(1001).unwrap().commit = Some("deadbee".into()),
            &["node 1001 changed since the plan: commit"],
            &[],
        ),
        (
            "a node added",
            "id",
            |v| v.membership = Some(vec![1001, 1002, 1003, 1004]),
            &["the membership changed since the plan: +1004"],
            &[],
        ),
        (
            "a node gone",
            "id",
            |v| v.membership = Some(vec![1001, 1002]),
            &["the membership changed since the plan: -1003"],
            &[],
        ),
        (
            "controller moved, id order",
            "id",
            |v| v.controller = Some(1003),
            &[],
            &["the controller changed since the plan"],
        ),
        (
            "controller moved, controller-last",
            "controller-last",
            |v| v.controller = Some(1003),
            &[
                "the controller changed since the plan: 1001 → 1003 (the plan's order, controller-last, depends on it)",
            ],
            &[],
        ),
        (
            "a restart of the same build",
            "id",
            |v| v.node_mut(1003).unwrap().uptime = Some(std::time::Duration::from_secs(5)),
            &[],
            &["node 1003 restarted since the plan"],
        ),
        (
            "a node unreachable now: the live check's business",
            "id",
            |v| {
                let n = v.node_mut(1002).unwrap();
                n.version = None;
                n.commit = None;
            },
            &[],
            &[],
        ),
    ];
    for (what, order, edit, refusals, notes) in rows {
        let f = file("live", order);
        let mut v = now();
        edit(&mut v);
        let r = cluster(&f, &v);
        assert_eq!(r.refusals.len(), refusals.len(), "{what}: {r:?}");
        for (got, want) in r.refusals.iter().zip(refusals) {
            assert!(got.starts_with(want), "{what}: {got}");
        }
        for want in notes {
            assert!(r.notes.iter().any(|n| n.starts_with(want)), "{what}: {r:?}");
        }
    }
}

#[test]
fn an_offline_plan_is_held_against_what_the_nodes_run() {
    let mut f = file("offline", "id");
    assert!(f.observed.is_none());
    assert_eq!(cluster(&f, &now()), Report::default());
    let mut v = now();
    v.node_mut(1003).unwrap().version = Some(fixtures::v("v2.1.2-20250120"));
    let r = cluster(&f, &v);
    assert_eq!(
        r.refusals,
        ["node 1003 runs v2.1.2-20250120, the offline plan was made for v2.0.10-20241221"]
    );
    f.plan.nodes[0].from = None;
    let r = cluster(&f, &now());
    assert!(
        r.refusals[0].starts_with("node 1001 runs v2.0.10-20241221; the offline plan did not know"),
        "{r:?}"
    );
}

#[test]
fn inputs_wkctl_digest_and_age() {
    let f = file("live", "id");
    assert!(inputs(&f, ("cluster.yaml", "m1", ""), ("p1", "")).is_empty());
    let d = inputs(&f, ("cluster.yaml", "m2", "a\nc\n"), ("p2", "y\n"));
    assert_eq!(d.len(), 2);
    assert!(
        d[0].starts_with("the manifest `cluster.yaml` changed since the plan:\n  - b\n  + c"),
        "{}",
        d[0]
    );
    assert!(
        d[1].starts_with("the playbook `sim` changed since the plan:\n  - x\n  + y"),
        "{}",
        d[1]
    );
    assert_eq!(wkctl(&f, "0.1.0 (x)", 1), Report::default());
    let r = wkctl(&f, "0.2.0 (y)", 1);
    assert!(
        r.refusals.is_empty()
            && r.notes[0].starts_with("planned by wkctl 0.1.0 (x), applied by wkctl 0.2.0 (y)")
    );
    let r = wkctl(&f, "0.2.0 (y)", 2);
    assert!(
        r.refusals[0].contains("under gate rules 1") && r.refusals[0].contains("applies rules 2"),
        "{r:?}"
    );
    assert!(expected_digest("sha256:a", "sha256:a").is_none());
    assert!(
        expected_digest("sha256:a", "sha256:b")
            .unwrap()
            .starts_with("the plan file's digest changed")
    );
    let h = std::time::Duration::from_hours(1);
    assert!(max_age(h, 2 * h, "t").is_none());
    assert_eq!(
        max_age(3 * h, 2 * h, "t").unwrap(),
        "the plan is too old: made 3h ago (t), `--max-age` is 2h"
    );
}
