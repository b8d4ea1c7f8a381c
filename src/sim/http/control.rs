//! The control HTTP server of `wksim serve` (used by `wksim ctl`, tests and benchmarks):
//! commands, node table, events, logs, effective config, request counters, network checks.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::sim::model::Phase;
use crate::sim::model::builds::Build;
use crate::sim::model::faults::FaultKind;
use crate::sim::model::logs;
use crate::sim::shared::Shared;

type St = State<Arc<Shared>>;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/state", get(state))
        .route("/ctl", post(ctl))
        .route("/events", get(events))
        .route("/requests", get(requests))
        .route("/logs/{id}", get(node_logs))
        .route("/config/{id}", get(node_config))
        .route("/netcheck", get(netcheck))
        .with_state(shared)
}

fn fail(status: StatusCode, msg: &str) -> Response {
    (status, axum::Json(json!({"error": msg}))).into_response()
}

fn ok(output: &str) -> Response {
    axum::Json(json!({"ok": true, "output": output})).into_response()
}

/// Node table, also the readiness source of the test harness.
pub fn state_json(shared: &Shared) -> Value {
    let now = shared.clock.now();
    let c = shared.model();
    let nodes: Vec<Value> = c
        .nodes
        .iter()
        .map(|n| {
            json!({
                "id": n.id,
                "api": c.opts.addrs.get(&n.id).map_or_else(|| format!("http://{}:{}", c.opts.host, n.api_port), |a| a.1.clone()),
                "cluster_addr": c.opts.addrs.get(&n.id).map_or_else(|| format!("{}:{}", c.opts.host, n.cluster_port), |a| a.0.clone()),
                "state": n.phase.name(), "version": c.version_string(&n.version),
                "build": n.version.tag(), "commit": n.version.commit(),
                "status": c.config.node(n.id).map_or(0, |cn| cn.status),
                "rejoined": c.rejoined(n.id),
                "member": c.is_member(n.id), "online": c.config.is_online(n.id),
                "controller": c.config.controller == n.id,
                "uptime": if n.phase.running() { logs::my_uptime(c.uptime_secs(n, now)) } else { String::new() },
                "faults": n.faults.names(),
            })
        })
        .collect();
    json!({"controller": c.controller(), "config_version": c.config.version,
           "cluster_settled": c.settled(), "pending_timers": c.pending_timers(), "nodes": nodes})
}

async fn state(State(s): St) -> Response {
    axum::Json(state_json(&s)).into_response()
}

#[derive(Debug, Deserialize)]
pub struct CtlReq {
    pub cmd: String,
    pub node: u64,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
}

async fn ctl(State(s): St, axum::Json(req): axum::Json<CtlReq>) -> Response {
    if req.cmd == "restart-all" {
        return match restart_all(&s, req.version.as_deref()).await {
            Ok(()) => ok(""),
            Err(e) => fail(StatusCode::BAD_REQUEST, &e),
        };
    }
    let node = req.node;
    if s.model().node(node).is_none() {
        return fail(StatusCode::NOT_FOUND, &format!("unknown node {node}"));
    }
    let version = match req.version.as_deref().map(Build::parse).transpose() {
        Ok(v) => v,
        Err(e) => return fail(StatusCode::BAD_REQUEST, &e),
    };
    let shown = version.as_ref().map(ToString::to_string);
    let detail = match (&req.cmd[..], &shown) {
        ("fault", _) => format!(
            "fault {} {}",
            req.kind.clone().unwrap_or_default(),
            req.args.join(" ")
        )
        .trim_end()
        .to_string(),
        (cmd, Some(v)) => format!("{cmd} {v}"),
        (cmd, None) => cmd.to_string(),
    };
    s.apply(|c, now| c.record_ctl(now, Some(node), &detail));
    let result = match req.cmd.as_str() {
        "stop" => stop(&s, node).await,
        "start" => s.apply(|c, now| c.start(node, version, now)),
        "restart" => match stop(&s, node).await {
            Ok(()) => s.apply(|c, now| c.start(node, version, now)),
            Err(e) => Err(e),
        },
        "bounce" => s.apply(|c, now| c.bounce(node, version, now)),
        "fault" => match FaultKind::parse(req.kind.as_deref().unwrap_or(""), &req.args) {
            Ok(k) => s.apply(|c, now| c.apply_fault(node, k, now)),
            Err(e) => Err(e),
        },
        "clear" => s.apply(|c, now| c.clear_faults(node, now)),
        other => Err(format!("unknown command `{other}`")),
    };
    match result {
        Ok(()) => ok(""),
        Err(e) => fail(StatusCode::BAD_REQUEST, &e),
    }
}

/// `restart-all`: every node stopped at once (graceful), then all started together on
/// `version` (#310: "all down, then up" after editing the image tag; `split.rs`).
async fn restart_all(s: &Arc<Shared>, version: Option<&str>) -> Result<(), String> {
    let version = version.map(Build::parse).transpose()?;
    let detail = version
        .as_ref()
        .map_or_else(|| "restart-all".to_string(), |v| format!("restart-all {v}"));
    s.apply(|c, now| c.record_ctl(now, None, &detail));
    let ids: Vec<u64> = s.model().nodes.iter().map(|n| n.id).collect();
    for id in &ids {
        s.apply(|c, now| c.stop(*id, now))?;
    }
    for id in &ids {
        wait_down(s, *id).await?;
    }
    s.apply(|c, now| c.start_all(version.as_ref(), now))
}

/// Graceful stop; returns once the model says stopped and the API port refuses connections.
async fn stop(s: &Arc<Shared>, node: u64) -> Result<(), String> {
    s.apply(|c, now| c.stop(node, now))?;
    wait_down(s, node).await
}

/// Returns once the model says `node` is down and its API port refuses connections.
async fn wait_down(s: &Arc<Shared>, node: u64) -> Result<(), String> {
    let down = |c: &crate::sim::model::Cluster| {
        c.node(node)
            .is_some_and(|n| matches!(n.phase, Phase::Stopped | Phase::Crashed))
    };
    tokio::time::timeout(Duration::from_mins(5), s.wait_until(down))
        .await
        .map_err(|_| format!("node {node} did not stop"))?;
    let port = s.model().node(node).map_or(0, |n| n.api_port);
    // The listener task is aborted asynchronously; wait until the port really refuses.
    for _ in 0..500 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Err(format!(
        "node {node}: port {port} still accepts connections"
    ))
}

async fn events(State(s): St) -> Response {
    match tokio::fs::read_to_string(&s.events_path).await {
        Ok(text) => text.into_response(),
        Err(e) => fail(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn requests(State(s): St) -> Response {
    let r = crate::sim::shared::locked(&s.requests);
    let out: BTreeMap<String, &BTreeMap<String, u64>> =
        r.iter().map(|(k, v)| (k.to_string(), v)).collect();
    axum::Json(json!(out)).into_response()
}

async fn node_logs(State(s): St, Path(id): Path<u64>) -> Response {
    let c = s.model();
    match c.node(id) {
        Some(n) => n
            .log
            .iter()
            .fold(String::new(), |mut out, l| {
                let _ = writeln!(out, "{l}");
                out
            })
            .into_response(),
        None => fail(StatusCode::NOT_FOUND, &format!("unknown node {id}")),
    }
}

async fn node_config(State(s): St, Path(id): Path<u64>) -> Response {
    let c = s.model();
    match c.settings(id) {
        Some(kv) => kv
            .iter()
            .fold(String::new(), |mut out, (k, v)| {
                let _ = writeln!(out, "{k}={v}");
                out
            })
            .into_response(),
        None => fail(StatusCode::NOT_FOUND, &format!("unknown node {id}")),
    }
}

#[derive(Debug, Deserialize)]
struct NetQ {
    node: u64,
    addr: String,
}

async fn netcheck(State(s): St, Query(q): Query<NetQ>) -> Response {
    let routed = s.model().route(q.node, &q.addr);
    if let Err(e) = routed {
        let status = if e.starts_with("unknown") {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        return fail(status, &e);
    }
    let connect = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect(q.addr.as_str()),
    )
    .await;
    match connect {
        Ok(Ok(_)) => ok("reachable"),
        _ => fail(StatusCode::SERVICE_UNAVAILABLE, "unreachable"),
    }
}
