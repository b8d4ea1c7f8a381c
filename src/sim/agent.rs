//! One container = one node (issue 15 §2). `wksim node` is the node's process inside its
//! container; `wksim serve --external` is the brain that holds the cluster model.
//!
//! Protocol (HTTP on the brain's control port, JSON):
//! - `POST /agent/{id}/hello {"version"}`: the process started (container start). The brain
//!   boots the node with that build; a node the brain still thought running restarts.
//! - `POST /agent/{id}/beat`: every 100 ms. Answer `{"phase","api_open","exit"}`: the agent
//!   opens its API port only while `api_open`, and exits with `exit` when set (2 = the
//!   node crashed, so the restart policy brings it back, as with a real panic).
//!   A missing beat for `LOST_AFTER` = cut off from the cluster (`docker network disconnect`).
//! - `POST /agent/{id}/bye`: SIGTERM received (`docker compose stop`); answers once the model
//!   says stopped, then the agent exits 0.
//! - `GET /agent/{id}/api/{path}`: the node's answer to one API request (headers `token`
//!   passed on), computed from the model exactly as `wksim serve` answers on 127.0.0.1.
//!
//! The restart timeline (stale `/health`, offline marking, elections) stays in the model.

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::cli::NodeArgs;
use super::model::Phase;
use super::model::builds::Build;
use super::shared::Shared;

/// Real time without a beat after which a running node counts as cut off.
const LOST_AFTER: Duration = Duration::from_millis(1500);

static BEATS: Mutex<Option<HashMap<u64, Instant>>> = Mutex::new(None);

fn beat(id: u64) {
    let mut b = super::shared::locked(&BEATS);
    b.get_or_insert_with(HashMap::new)
        .insert(id, Instant::now());
}

type St = State<Arc<Shared>>;

pub fn brain_router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/agent/{id}/hello", post(hello))
        .route("/agent/{id}/beat", post(beat_route))
        .route("/agent/{id}/bye", post(bye))
        .route("/agent/{id}/api/{*path}", get(api).post(api))
        .with_state(shared)
}

fn known(s: &Shared, id: u64) -> bool {
    s.model().node(id).is_some()
}

async fn hello(State(s): St, UrlPath(id): UrlPath<u64>, body: Bytes) -> Response {
    if !known(&s, id) {
        return (StatusCode::NOT_FOUND, format!("unknown node {id}")).into_response();
    }
    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let version = match req["version"].as_str().map(Build::parse).transpose() {
        Ok(v) => v,
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    let fault = match req["fault"].as_str().filter(|f| !f.is_empty()) {
        Some(f) => match super::model::faults::FaultKind::parse(f, &[]) {
            Ok(k) => Some(k),
            Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
        },
        None => None,
    };
    beat(id);
    let r = s.apply(|c, now| {
        if let Some(k) = fault {
            // The image's own defect: comes and goes with the image.
            let _ = c.apply_fault(id, k, now);
        } else if c.node(id).is_some_and(|n| n.faults.crash_loop) {
            let _ = c.clear_faults(id, now);
        }
        let shown = version
            .as_ref()
            .map_or_else(String::new, ToString::to_string);
        c.record_ctl(now, Some(id), format!("agent start {shown}").trim_end());
        c.set_cut_off(id, false, now);
        let running = c.node(id).is_some_and(|n| n.phase.running());
        if running {
            // The previous process vanished without a word (SIGKILL): a restart.
            c.bounce(id, version, now)
        } else {
            c.start(id, version, now)
        }
    });
    match r {
        Ok(()) => axum::Json(json!({"ok": true})).into_response(),
        Err(e) => (StatusCode::CONFLICT, e).into_response(),
    }
}

async fn beat_route(State(s): St, UrlPath(id): UrlPath<u64>) -> Response {
    beat(id);
    let c = s.model();
    let Some(n) = c.node(id) else {
        return (StatusCode::NOT_FOUND, format!("unknown node {id}")).into_response();
    };
    let exit = match n.phase {
        Phase::Crashed => Some(2),
        Phase::Stopped => Some(0),
        _ => None,
    };
    let cv = c.view_of(n).map_or(0, |cfg| cfg.version);
    axum::Json(json!({
        "phase": n.phase.name(), "api_open": n.phase.api_open(), "exit": exit,
        "build": n.version.tag(), "config_version": cv,
    }))
    .into_response()
}

async fn bye(State(s): St, UrlPath(id): UrlPath<u64>) -> Response {
    if !known(&s, id) {
        return (StatusCode::NOT_FOUND, format!("unknown node {id}")).into_response();
    }
    beat(id);
    let r = s.apply(|c, now| {
        c.record_ctl(now, Some(id), "agent SIGTERM");
        c.stop(id, now)
    });
    if let Err(e) = r {
        return (StatusCode::CONFLICT, e).into_response();
    }
    let down = |c: &super::model::Cluster| {
        c.node(id)
            .is_some_and(|n| matches!(n.phase, Phase::Stopped | Phase::Crashed))
    };
    let _ = tokio::time::timeout(Duration::from_mins(1), s.wait_until(down)).await;
    axum::Json(json!({"ok": true})).into_response()
}

async fn api(
    State(s): St,
    UrlPath((id, path)): UrlPath<(u64, String)>,
    Query(q): Query<BTreeMap<String, String>>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let path = format!("/{path}");
    s.count(id, &path);
    let token = headers
        .get("token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    super::http::server::answer(&s, id, &method, &path, &q, token.as_deref()).await
}

/// Marks nodes whose agent went silent as cut off, and back when it beats again.
pub async fn watchdog(s: Arc<Shared>) {
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let beats = super::shared::locked(&BEATS).clone().unwrap_or_default();
        let running: Vec<(u64, bool)> = {
            let c = s.model();
            c.nodes
                .iter()
                .filter(|n| n.phase.running())
                .map(|n| (n.id, n.faults.partition))
                .collect()
        };
        for (id, cut) in running {
            let silent = beats.get(&id).is_none_or(|t| t.elapsed() > LOST_AFTER);
            if silent != cut {
                s.apply(|c, now| c.set_cut_off(id, silent, now));
            }
        }
    }
}

// ---- the agent -------------------------------------------------------------------------

/// Runs one node's process; returns its exit code.
pub async fn run_node(a: NodeArgs) -> anyhow::Result<u8> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(90))
        .build()?;
    let base = a.brain.trim_end_matches('/').to_string();
    let me = format!("{base}/agent/{}", a.id);
    write_data(&a.data_dir, a.id, &a.version, "start")?;
    // The brain may still be starting (compose starts services in parallel).
    let deadline = Instant::now() + Duration::from_mins(1);
    let mut printed = Printed::default();
    loop {
        printed.skip_history(&http, &base, a.id).await;
        match http
            .post(format!("{me}/hello"))
            .header("content-type", "application/json")
            .body(json!({"version": a.version, "fault": a.fault}).to_string())
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => break,
            Ok(r) => {
                let text = r.text().await.unwrap_or_default();
                anyhow::bail!("the brain refused node {}: {text}", a.id);
            }
            Err(e) if Instant::now() > deadline => {
                return Err(e).context(format!("cannot reach the brain at {base}"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    let cluster = tokio::net::TcpListener::bind(&a.cluster_listen)
        .await
        .with_context(|| format!("binding {}", a.cluster_listen))?;
    tokio::spawn(async move {
        loop {
            if let Ok((s, _)) = cluster.accept().await {
                drop(s);
            }
        }
    });
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut api: Option<tokio::task::JoinHandle<()>> = None;
    let mut last_cv = 0;
    loop {
        printed.tick(&http, &base, a.id).await;
        tokio::select! {
            _ = term.recv() => {
                let _ = http.post(format!("{me}/bye")).send().await;
                printed.flush(&http, &base, a.id).await;
                write_data(&a.data_dir, a.id, &a.version, "stop")?;
                return Ok(0);
            }
            _ = tokio::signal::ctrl_c() => {
                let _ = http.post(format!("{me}/bye")).send().await;
                return Ok(0);
            }
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        let Ok(resp) = http.post(format!("{me}/beat")).send().await else {
            continue; // cut off: the brain marks this node partitioned
        };
        let Ok(text) = resp.text().await else {
            continue;
        };
        let Ok(st) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        if let Some(code) = st["exit"].as_u64() {
            printed.flush(&http, &base, a.id).await;
            write_data(
                &a.data_dir,
                a.id,
                &a.version,
                if code == 0 { "stop" } else { "crash" },
            )?;
            return Ok(u8::try_from(code).unwrap_or(1));
        }
        let cv = st["config_version"].as_u64().unwrap_or(0);
        if cv != last_cv {
            last_cv = cv;
            let dir = a.data_dir.join("cluster/config");
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join("remote.json"), json!({"version": cv}).to_string())?;
        }
        match (st["api_open"] == true, api.is_some()) {
            (true, false) => api = Some(serve_api(&a.api_listen, &me).await?),
            (false, true) => {
                if let Some(h) = api.take() {
                    h.abort();
                }
            }
            _ => {}
        }
    }
}

/// The node's log lines (kept by the brain's model) printed on the agent's stdout, as
/// WuKongIM prints its log: `docker compose logs` shows them. Lines logged before this
/// process started belong to the previous container and are not repeated.
#[derive(Default)]
struct Printed {
    /// Lines of the brain's log already seen; `None` until the first fetch.
    seen: Option<usize>,
    last: Option<Instant>,
}

impl Printed {
    /// Marks the lines logged so far (by earlier processes) as seen.
    async fn skip_history(&mut self, http: &reqwest::Client, base: &str, id: u64) {
        if let Ok(r) = http.get(format!("{base}/logs/{id}")).send().await
            && r.status().is_success()
            && let Ok(text) = r.text().await
        {
            self.seen = Some(text.lines().count());
        }
    }

    async fn tick(&mut self, http: &reqwest::Client, base: &str, id: u64) {
        if self
            .last
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            self.flush(http, base, id).await;
        }
    }

    #[allow(clippy::print_stdout)]
    async fn flush(&mut self, http: &reqwest::Client, base: &str, id: u64) {
        self.last = Some(Instant::now());
        let Ok(r) = http.get(format!("{base}/logs/{id}")).send().await else {
            return;
        };
        let Ok(text) = r.text().await else {
            return;
        };
        let lines: Vec<&str> = text.lines().collect();
        // The brain trims a long log; then print from its start again.
        let from = match self.seen {
            Some(n) if n <= lines.len() => n,
            _ => 0,
        };
        let mut out = std::io::stdout().lock();
        for l in &lines[from..] {
            let _ = writeln!(out, "{l}");
        }
        let _ = out.flush();
        self.seen = Some(lines.len());
    }
}

/// Appends to the node's log in its data volume, so a backup archives real files.
fn write_data(dir: &Path, id: u64, version: &str, what: &str) -> anyhow::Result<()> {
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let line = format!(
        "{} node {id} {what} {version}\n",
        super::model::logs::rfc3339_ms(
            i64::try_from(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis())
            )
            .unwrap_or(0)
        )
    );
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(logs.join("wukongim.log"))?
        .write_all(line.as_bytes())?;
    Ok(())
}

/// The node's API port: every request is answered by the brain.
async fn serve_api(listen: &str, me: &str) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let http = reqwest::Client::new();
    let me = me.to_string();
    let app = Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap| {
        let (http, me) = (http.clone(), me.clone());
        async move {
            let pq = uri.path_and_query().map_or("/", |p| p.as_str());
            let mut req = http.request(
                reqwest::Method::from_bytes(method.as_str().as_bytes())
                    .unwrap_or(reqwest::Method::GET),
                format!("{me}/api{pq}"),
            );
            if let Some(t) = headers.get("token").and_then(|v| v.to_str().ok()) {
                req = req.header("token", t);
            }
            match req.send().await {
                Ok(r) => {
                    let status = StatusCode::from_u16(r.status().as_u16())
                        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                    let ctype = r.headers().get(header::CONTENT_TYPE).cloned();
                    let body = r.bytes().await.unwrap_or_default();
                    let mut resp = (status, body).into_response();
                    if let Some(ct) = ctype {
                        resp.headers_mut().insert(header::CONTENT_TYPE, ct);
                    }
                    resp
                }
                // Cut off from the brain: like a node that lost its cluster.
                Err(_) => (
                    StatusCode::BAD_REQUEST,
                    [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
                    r#"{"msg":"leader not found","status":400}"#,
                )
                    .into_response(),
            }
        }
    });
    Ok(tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    }))
}
