use super::*;
use crate::events::{NodeSummary, Summary};
use crate::plan::PlanKind;
use crate::state::{NodeStatus, RunStatus};

#[test]
fn redaction_keeps_only_scheme_host_and_port() {
    let cases = [
        (
            "https://hooks.slack.com/services/T000/B000/XXXXSECRET",
            "https://hooks.slack.com/…",
        ),
        (
            "http://user:pw@127.0.0.1:8080/hook?token=abc",
            "http://127.0.0.1:8080/…",
        ),
        ("https://example.com", "https://example.com/"),
        ("https://example.com/", "https://example.com/"),
        ("not a url SECRET", "<webhook URL>"),
    ];
    for (raw, want) in cases {
        assert_eq!(redact_url(raw), want, "{raw}");
    }
}

#[test]
fn event_names_are_checked_and_all_expands() {
    let set = parse_events(["node_ready", "summary"]).unwrap();
    assert_eq!(
        set.into_iter().collect::<Vec<_>>(),
        ["node_ready", "summary"]
    );
    assert_eq!(parse_events(["all"]).unwrap().len(), EVENT_TYPES.len());
    assert_eq!(
        parse_events(["node_ready", "node_redy"]).unwrap_err(),
        "unknown event `node_redy`"
    );
    for d in DEFAULT_EVENTS {
        assert!(EVENT_TYPES.contains(d), "{d}");
    }
}

#[test]
fn every_event_type_name_is_one_the_events_module_emits() {
    // Serialize one event of each kind that has a cheap constructor and check its name is
    // in the list users may write in `notify.events`.
    let samples = [
        Event::NodeReady {
            node: 1,
            version: "v".into(),
            duration_s: 0.0,
            clients: None,
        },
        Event::Warning {
            node: None,
            message: "w".into(),
        },
        Event::NodeSkipped {
            node: 1,
            reason: "r".into(),
        },
        Event::Waiting {
            node: None,
            what: "w".into(),
        },
        Event::Interrupted {
            node: None,
            message: "m".into(),
        },
        Event::RollbackFinished {
            node: 1,
            ok: true,
            reason: None,
        },
    ];
    for e in samples {
        let v = serde_json::to_value(&e).unwrap();
        let name = v["type"].as_str().unwrap();
        assert!(EVENT_TYPES.contains(&name), "{name}");
    }
}

#[test]
fn text_is_one_line_prefixed_with_the_cluster() {
    let ready = Event::NodeReady {
        node: 1002,
        version: "v2.1.2-20250120".into(),
        duration_s: 12.34,
        clients: None,
    };
    assert_eq!(
        text("prod", &ready),
        "wkctl prod: node 1002: ready on v2.1.2-20250120 after 12.3s"
    );
    let failed = Event::NodeFailed {
        node: 1003,
        step: crate::plan::PlanStepKind::WaitReady,
        reason: "signal B never held".into(),
        signal: None,
        observed: None,
        logs_tail: Some("line 1\nline 2".into()),
        known: Vec::new(),
    };
    assert_eq!(
        text("prod", &failed),
        "wkctl prod: node 1003: FAILED at wait_ready: signal B never held"
    );
    let node = |id, status| NodeSummary {
        id,
        from: None,
        to: "v2".into(),
        status,
        duration_s: None,
        kind: PlanKind::Upgrade,
    };
    let summary = Event::Summary(Summary {
        kind: PlanKind::Upgrade,
        ok: false,
        status: RunStatus::Failed,
        cluster: "prod".into(),
        to: "v2.1.2-20250120".into(),
        duration_s: 93.6,
        nodes: vec![
            node(1001, NodeStatus::Ready),
            node(1002, NodeStatus::Ready),
            node(1003, NodeStatus::Failed),
            node(1004, NodeStatus::RolledBack),
        ],
    });
    assert_eq!(
        text("prod", &summary),
        "wkctl prod: run to v2.1.2-20250120 failed after 94s (2 upgraded, 1 failed, 1 rolled back)"
    );
    // A restart says so, and its nodes were restarted, not upgraded.
    let restart = Event::Summary(Summary {
        kind: PlanKind::Restart,
        ok: true,
        status: RunStatus::Completed,
        cluster: "prod".into(),
        to: "v2.1.2-20250120".into(),
        duration_s: 41.2,
        nodes: [1001, 1002, 1003]
            .into_iter()
            .map(|id| NodeSummary {
                kind: PlanKind::Restart,
                ..node(id, NodeStatus::Ready)
            })
            .collect(),
    });
    assert_eq!(
        text("prod", &restart),
        "wkctl prod: restart on v2.1.2-20250120 completed after 41s (3 restarted)"
    );
}

#[test]
fn report_lines_name_the_event_target_and_error() {
    let r = NotifyReport {
        target: "webhook https://h/…".into(),
        sent: 2,
        failed: vec![FailedDelivery {
            event: "summary".into(),
            attempts: 4,
            error: "HTTP 500 Internal Server Error".into(),
        }],
    };
    assert!(!r.ok());
    assert_eq!(
        r.lines(),
        [
            "notification `summary` to webhook https://h/… failed after 4 attempt(s): HTTP 500 Internal Server Error"
        ]
    );
}
