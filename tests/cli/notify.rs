//! Notifications (issue 19.4): a real local webhook server and real commands receive the
//! events; slow, failing and absent endpoints never block past their bound; the webhook
//! URL's secret never appears in any output.

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::Value;
use wkctl::events::{Event, NodeSummary, Summary};
use wkctl::notify::{Notifier, NotifyConfig, NotifyReport, NotifyTarget};

const SECRET: &str = "T000SECRET/B000SECRET/XyZsEcReT";

/// What the test webhook server saw: (path, body) in arrival order.
type Seen = Arc<Mutex<Vec<(String, Value)>>>;

async fn within<T>(limit: Duration, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, f)
        .await
        .expect("the test finished within its deadline")
}

async fn record(State(seen): State<Seen>, uri: axum::http::Uri, body: String) -> StatusCode {
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let path = uri.path().to_string();
    seen.lock().unwrap().push((path.clone(), v));
    if path.starts_with("/ok/") {
        StatusCode::OK
    } else if path.starts_with("/gone/") {
        StatusCode::NOT_FOUND
    } else if path.starts_with("/slow/") {
        tokio::time::sleep(Duration::from_secs(30)).await;
        StatusCode::OK
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

/// Starts the webhook server: `/ok/*` answers 200, `/fail/*` 500, `/gone/*` 404, `/slow/*`
/// never answers in time. Returns its base URL and the record of requests.
async fn server() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let app = Router::new()
        .route("/{*rest}", post(record))
        .with_state(Arc::clone(&seen));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, seen)
}

fn fast(events: &[&str]) -> NotifyConfig {
    NotifyConfig {
        events: wkctl::notify::parse_events(events.iter().copied()).unwrap(),
        timeout: Duration::from_millis(400),
        retries: 2,
        backoff: Duration::from_millis(50),
        ..NotifyConfig::default()
    }
}

/// A run's worth of events: 7 of them, of which 5 are in the default selection.
fn run_events() -> Vec<Event> {
    vec![
        Event::RunStarted {
            kind: wkctl::plan::PlanKind::Upgrade,
            cluster: "prod".into(),
            to: "v2.1.2-20250120".into(),
            nodes: vec![1001, 1002],
            resume: false,
            plan_digest: "d".into(),
        },
        Event::NodeStarted {
            node: 1001,
            from: Some("v2.1.1-20250101".into()),
            to: "v2.1.2-20250120".into(),
            index: 1,
            total: 2,
        },
        Event::NodeReady {
            node: 1001,
            version: "v2.1.2-20250120".into(),
            duration_s: 3.0,
            clients: None,
        },
        Event::SoakFinished {
            node: 1001,
            ok: true,
            duration_s: 1.0,
            reason: None,
            clients: None,
        },
        Event::Waiting {
            node: Some(1002),
            what: "controller".into(),
        },
        Event::NodeFailed {
            node: 1002,
            step: wkctl::plan::PlanStepKind::WaitReady,
            reason: "gate timed out".into(),
            signal: Some(wkctl::gate::SignalIn {
                signal: wkctl::gate::Signal::NewProcessOnTarget,
                kind: wkctl::plan::PlanKind::Upgrade,
            }),
            observed: None,
            logs_tail: None,
            known: Vec::new(),
        },
        Event::Summary(Summary {
            kind: wkctl::plan::PlanKind::Upgrade,
            ok: false,
            status: wkctl::state::RunStatus::Failed,
            cluster: "prod".into(),
            to: "v2.1.2-20250120".into(),
            duration_s: 9.0,
            nodes: vec![NodeSummary {
                id: 1001,
                from: None,
                to: "v2.1.2-20250120".into(),
                status: wkctl::state::NodeStatus::Ready,
                duration_s: Some(4.0),
                kind: wkctl::plan::PlanKind::Upgrade,
            }],
        }),
    ]
}

fn notifier(config: &NotifyConfig, flag: &str) -> Notifier {
    Notifier::from_manifest("prod", Some(config), Some(flag), Path::new("."))
        .expect("valid notify settings")
        .expect("a target")
}

/// Every string a report can show: its JSON, its Debug and its lines.
fn shown(report: &NotifyReport) -> String {
    format!(
        "{}\n{report:?}\n{}",
        serde_json::to_string(report).unwrap(),
        report.lines().join("\n")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_receives_the_selected_events_in_order_with_slack_text() {
    within(Duration::from_secs(20), async {
        let (base, seen) = server().await;
        let config = NotifyConfig::default();
        let n = notifier(&config, &format!("{base}/ok/{SECRET}"));
        for e in run_events() {
            n.send(&e);
        }
        let report = n.finish().await;
        assert_eq!(report.sent, 5, "{report:?}");
        assert!(report.ok(), "{report:?}");
        let got = seen.lock().unwrap().clone();
        let types: Vec<&str> = got
            .iter()
            .map(|(_, v)| v["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            [
                "run_started",
                "node_ready",
                "soak_finished",
                "node_failed",
                "summary"
            ]
        );
        assert_eq!(got[0].0, format!("/ok/{SECRET}"));
        assert_eq!(got[1].1["data"]["node"], 1001);
        assert_eq!(got[1].1["cluster"], "prod");
        assert_eq!(
            got[1].1["text"],
            "wkctl prod: node 1001: ready on v2.1.2-20250120 after 3.0s"
        );
        assert_eq!(
            got[4].1["text"],
            "wkctl prod: run to v2.1.2-20250120 failed after 9s (1 upgraded)"
        );
        assert_eq!(report.target, format!("webhook {base}/…"));
        assert!(!shown(&report).contains("SECRET"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_is_retried_with_backoff_then_reported_without_the_secret() {
    within(Duration::from_secs(20), async {
        let (base, seen) = server().await;
        let n = notifier(
            &fast(&["summary"]),
            &format!("{base}/fail/{SECRET}?key={SECRET}"),
        );
        let started = Instant::now();
        n.send(run_events().last().unwrap());
        let report = n.finish().await;
        assert_eq!(seen.lock().unwrap().len(), 3, "one try and two retries");
        assert!(
            started.elapsed() >= Duration::from_millis(150),
            "backoff 50 + 100 ms"
        );
        assert_eq!(report.sent, 0);
        assert_eq!(report.failed.len(), 1);
        assert_eq!(report.failed[0].event, "summary");
        assert_eq!(report.failed[0].attempts, 3);
        assert_eq!(report.failed[0].error, "HTTP 500 Internal Server Error");
        assert!(!shown(&report).contains("SECRET"), "{}", shown(&report));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4xx_is_not_retried() {
    within(Duration::from_secs(20), async {
        let (base, seen) = server().await;
        let n = notifier(&fast(&["summary"]), &format!("{base}/gone/x"));
        n.send(run_events().last().unwrap());
        let report = n.finish().await;
        assert_eq!(seen.lock().unwrap().len(), 1);
        assert_eq!(report.failed[0].attempts, 1);
        assert_eq!(report.failed[0].error, "HTTP 404 Not Found");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_endpoint_never_blocks_send_and_finish_is_bounded() {
    within(Duration::from_secs(20), async {
        let (base, _seen) = server().await;
        let mut n = notifier(&fast(&["all"]), &format!("{base}/slow/{SECRET}"));
        n.finish_timeout = Duration::from_secs(1);
        let started = Instant::now();
        // More than the queue holds: the extra ones are dropped, never waited for.
        for _ in 0..300 {
            for e in run_events() {
                n.send(&e);
            }
        }
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "send blocked for {:?}",
            started.elapsed()
        );
        let report = n.finish().await;
        let took = started.elapsed();
        assert!(took < Duration::from_secs(3), "finish took {took:?}");
        assert_eq!(report.sent, 0);
        assert_eq!(report.failed.len(), 300 * 7, "every event is accounted for");
        let errors: Vec<&str> = report.failed.iter().map(|f| f.error.as_str()).collect();
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("dropped: 256 notifications"))
        );
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("not delivered: wkctl stopped waiting after 1s"))
        );
        assert!(!shown(&report).contains("SECRET"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_is_down_fails_fast_without_the_secret() {
    within(Duration::from_secs(20), async {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let n = notifier(
            &fast(&["run_started", "summary"]),
            &format!("http://user:PWSECRET@127.0.0.1:{port}/hook/{SECRET}"),
        );
        let started = Instant::now();
        for e in run_events() {
            n.send(&e);
        }
        let report = n.finish().await;
        assert!(started.elapsed() < Duration::from_secs(4));
        assert_eq!(report.failed.len(), 2);
        assert_eq!(report.failed[0].attempts, 3);
        assert!(report.failed[0].error.contains("connect"), "{report:?}");
        assert_eq!(report.target, format!("webhook http://127.0.0.1:{port}/…"));
        assert!(!shown(&report).contains("SECRET"), "{}", shown(&report));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_gets_each_event_as_json_on_stdin() {
    within(Duration::from_secs(20), async {
        let dir = tempfile::tempdir().unwrap();
        let config = NotifyConfig {
            target: Some(NotifyTarget::Command(
                "printf '%s\\n' \"$WKCTL_EVENT\" >> names.txt; cat >> events.jsonl".into(),
            )),
            ..NotifyConfig::default()
        };
        // Relative paths in the command are relative to the manifest's directory.
        let n = Notifier::from_manifest("prod", Some(&config), None, dir.path())
            .unwrap()
            .unwrap();
        for e in run_events() {
            n.send(&e);
        }
        let report = n.finish().await;
        assert!(report.ok(), "{report:?}");
        assert_eq!(report.sent, 5);
        let text = std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap();
        let values: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is one JSON event"))
            .collect();
        let types: Vec<&str> = values.iter().map(|v| v["type"].as_str().unwrap()).collect();
        assert_eq!(
            types,
            [
                "run_started",
                "node_ready",
                "soak_finished",
                "node_failed",
                "summary"
            ]
        );
        assert_eq!(values[3]["data"]["reason"], "gate timed out");
        let names = std::fs::read_to_string(dir.path().join("names.txt")).unwrap();
        assert_eq!(names.lines().collect::<Vec<_>>(), types);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_or_hanging_command_is_reported_and_killed() {
    within(Duration::from_secs(20), async {
        let dir = tempfile::tempdir().unwrap();
        let n = notifier(&fast(&["run_started"]), "echo boom >&2; exit 3");
        n.send(&run_events()[0]);
        let report = n.finish().await;
        assert_eq!(report.failed[0].error, "exit 3: boom");
        assert_eq!(report.target, "command `echo boom >&2; exit 3`");

        let marker = dir.path().join("survived");
        let cmd = format!("sleep 3; touch {}", marker.display());
        let n = notifier(&fast(&["run_started"]), &cmd);
        let started = Instant::now();
        n.send(&run_events()[0]);
        let report = n.finish().await;
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(
            report.failed[0].error,
            "did not finish within 0.4s (killed)"
        );
        tokio::time::sleep(Duration::from_millis(3500)).await;
        assert!(!marker.exists(), "the command's process group was killed");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_env_errors_never_show_the_url() {
    within(Duration::from_secs(10), async {
        let var = "WKCTL_TEST_NOTIFY_UNSET_VAR";
        let config = NotifyConfig {
            target: Some(NotifyTarget::UrlEnv(var.into())),
            ..NotifyConfig::default()
        };
        let err = Notifier::from_manifest("prod", Some(&config), None, Path::new("."))
            .err()
            .expect("an unset url_env is an error");
        assert_eq!(
            err.message,
            format!("`notify.url_env` names `{var}`, which is not set")
        );
        let err = Notifier::from_manifest(
            "prod",
            Some(&config),
            Some(&format!("https://[{SECRET}/x")),
            Path::new("."),
        )
        .err()
        .expect("an invalid URL is an error");
        assert!(
            err.message.contains("not a valid http(s) URL"),
            "{}",
            err.message
        );
        assert!(!format!("{err:?}").contains("SECRET"));
        // No flag and no target: no notifier.
        assert!(
            Notifier::from_manifest("prod", None, None, Path::new("."))
                .unwrap()
                .is_none()
        );
    })
    .await;
}

// ----- the manifest's `notify:` section, through the real binary ---------------------------

fn check_offline(manifest: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.yaml");
    std::fs::write(&path, manifest).unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_wkctl"))
        .args(["check", "--to", "v2.1.2", "--offline", "-m"])
        .arg(&path)
        .env("NO_COLOR", "1")
        .env_remove("WKCTL_MANIFEST")
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

const NODES: &str = "name: n\nnodes:\n  - { id: 1001, host: a, version: v2.1.1-20250101 }\n";

#[test]
fn the_manifest_accepts_a_notify_section() {
    let (code, out, err) = check_offline(&format!(
        "{NODES}notify:\n  url_env: WK_WEBHOOK\n  events: [node_failed, summary]\n  timeout: 3s\n  retries: 1\n"
    ));
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn bad_notify_sections_are_refused_with_their_place() {
    let cases = [
        (
            "notify:\n  url_env: A\n  command: ./x.sh\n",
            "cluster.yaml:6:12: `notify` has both `url_env` and `command`",
        ),
        (
            "notify:\n  command: ./x.sh\n  events: [summary, node_redy]\n",
            "cluster.yaml:6:21: notify.events: unknown event `node_redy`",
        ),
        (
            "notify:\n  url_env: https://hooks.example.com/x\n",
            "cluster.yaml:5:12: `notify.url_env` must be an environment variable name",
        ),
        (
            "notify:\n  url: https://hooks.example.com/x\n",
            "unknown field `url`",
        ),
        (
            "notify:\n  command: x\n  retries: 50\n",
            "`notify.retries` is 50, at most 10",
        ),
    ];
    for (section, want) in cases {
        let (code, out, err) = check_offline(&format!("{NODES}{section}"));
        assert_eq!(code, 2, "{section}: {out}{err}");
        assert!(err.contains(want), "{section}: want `{want}` in:\n{err}");
        assert!(err.contains("hint:"), "{err}");
    }
}

// ----- end to end: a real upgrade of the simulator, notified ------------------------------

/// A workspace for `sim` whose manifest has `notify_section` appended.
fn notified_ws(sim: &crate::harness::Sim, notify_section: &str) -> crate::support::Ws {
    let ws = crate::support::Ws::new(sim, &crate::support::Opts::default());
    let mut m = std::fs::read_to_string(&ws.manifest).unwrap();
    m.push_str(notify_section);
    std::fs::write(&ws.manifest, m).unwrap();
    ws
}

/// The webhook server on its own runtime thread (the run itself is a child process).
fn blocking_server() -> (String, Seen, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (base, seen) = rt.block_on(server());
    (base, seen, rt)
}

const UP: [&str; 5] = ["upgrade", "--to", "v2.1.2", "--yes", "--json"];

/// Issue 19.4 end to end: every configured event of a real run reaches the webhook, in
/// the order the run emitted it, matching what the simulator saw; the URL's secret is
/// never printed.
#[test]
fn a_real_upgrade_notifies_the_webhook_in_order() {
    let sim = crate::harness::Sim::start(crate::harness::SimOpts::default());
    let (base, seen, _rt) = blocking_server();
    let ws = notified_ws(
        &sim,
        "notify:\n  url_env: WKTEST_HOOK\n  events: [run_started, node_ready, soak_finished, summary]\n  timeout: 2s\n",
    );
    let url = format!("{base}/ok/{SECRET}");
    let r = ws.run(&UP, &[("WKTEST_HOOK", &url)]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        !r.all().contains("SECRET"),
        "the webhook secret leaked:\n{}",
        r.all()
    );

    let got: Vec<(String, Option<u64>)> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(_, v)| {
            (
                v["type"].as_str().unwrap_or("?").to_string(),
                v["data"]["node"].as_u64(),
            )
        })
        .collect();
    let mut want = vec![("run_started".to_string(), None)];
    for id in [1001, 1002, 1003] {
        want.push(("node_ready".into(), Some(id)));
        want.push(("soak_finished".into(), Some(id)));
    }
    want.push(("summary".into(), None));
    assert_eq!(got, want);
    // Each body carries the cluster and a Slack-compatible text.
    for (_, v) in seen.lock().unwrap().iter() {
        assert_eq!(v["cluster"], "t", "{v}");
        assert!(
            v["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("wkctl t: ")),
            "{v}"
        );
    }
    // The nodes the webhook heard as ready are the ones the simulator stopped, in order.
    let stopped: Vec<u64> = crate::support::lifecycle(&sim)
        .into_iter()
        .filter(|(_, verb, _)| verb == "stop")
        .map(|(_, _, n)| n)
        .collect();
    assert_eq!(stopped, vec![1001, 1002, 1003]);
    crate::harness::rollout_was_safe(&sim.events()).unwrap();
}

/// A webhook that fails (500) or a command that fails never changes the run's outcome;
/// the failed deliveries are reported, without the secret.
#[test]
fn a_failing_webhook_never_changes_the_outcome() {
    let sim = crate::harness::Sim::start(crate::harness::SimOpts::default());
    let (base, seen, _rt) = blocking_server();
    let ws = notified_ws(
        &sim,
        "notify:\n  url_env: WKTEST_HOOK\n  events: [summary]\n  timeout: 1s\n  retries: 1\n",
    );
    let url = format!("{base}/fail/{SECRET}");
    let r = ws.run(&UP, &[("WKTEST_HOOK", &url)]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(!r.all().contains("SECRET"), "{}", r.all());
    assert!(
        r.stderr.contains("warning:") && r.stderr.contains("500"),
        "the failed delivery is reported:\n{}",
        r.stderr
    );
    // One try plus one retry of the summary.
    assert_eq!(seen.lock().unwrap().len(), 2);
    let summary = r
        .lines()
        .into_iter()
        .find(|l| l["type"] == "summary")
        .unwrap();
    assert_eq!(summary["data"]["status"], "completed");
}

/// A command hook runs in the manifest's directory and gets each event's JSON on stdin.
#[test]
fn a_command_hook_gets_each_event_as_json_on_stdin() {
    let sim = crate::harness::Sim::start(crate::harness::SimOpts::default());
    let ws = notified_ws(
        &sim,
        "notify:\n  command: \"cat >> notified.jsonl; echo >> notified.jsonl\"\n  events: [node_ready, summary]\n",
    );
    let r = ws.run(&UP, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let text = std::fs::read_to_string(ws.dir.path().join("notified.jsonl")).unwrap();
    let got: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let kinds: Vec<&str> = got.iter().filter_map(|v| v["type"].as_str()).collect();
    assert_eq!(kinds, ["node_ready", "node_ready", "node_ready", "summary"]);
    assert_eq!(got[3]["data"]["nodes"][2]["status"], "upgraded");
    assert_eq!(got[3]["data"]["kind"], "upgrade");
}

/// A restart's hook hears a restart (issue 19): `run_started` and `summary` say
/// `kind: restart` and each node `restarted`.
#[test]
fn a_command_hook_of_a_restart_gets_kind_restart() {
    let sim = crate::harness::Sim::start(crate::harness::SimOpts::default());
    let ws = notified_ws(
        &sim,
        "notify:\n  command: \"cat >> notified.jsonl; echo >> notified.jsonl\"\n  events: [run_started, summary]\n",
    );
    let r = ws.run(&["restart", "--yes"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let text = std::fs::read_to_string(ws.dir.path().join("notified.jsonl")).unwrap();
    let got: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let kinds: Vec<&str> = got.iter().filter_map(|v| v["type"].as_str()).collect();
    assert_eq!(kinds, ["run_started", "summary"]);
    assert_eq!(got[0]["data"]["kind"], "restart", "{}", got[0]);
    assert_eq!(got[1]["data"]["kind"], "restart", "{}", got[1]);
    let words: Vec<&str> = got[1]["data"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["status"].as_str().unwrap())
        .collect();
    assert_eq!(words, ["restarted", "restarted", "restarted"], "{}", got[1]);
}
