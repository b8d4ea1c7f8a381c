//! `wkctl doctor`: the maintainers' troubleshooting advice, automated (facts §4.5, §5.3,
//! §8.3): every node's logs scanned for known signatures, the network between every pair
//! of nodes (cluster and API ports), and the settings that must agree. Collection runs the
//! playbook's `logs`, `config` and `netcheck` steps through each node's transport,
//! concurrently; judging is pure (`signatures`, `settings`).

pub mod report;
pub mod settings;
pub mod signatures;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::finding::{self, Finding, FindingId};
use crate::inputs::Context;
use crate::playbook::{self, StepKind};
use crate::probe::ClusterView;
use crate::transport::{self, Transport};

pub use signatures::LogMatch;

/// At most this many playbook commands run at once.
const PARALLEL: usize = 16;
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
const NETCHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// What a `netcheck` said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "detail")]
pub enum Reach {
    Ok,
    Unreachable(String),
    /// The check itself could not run (no `netcheck` step, command missing, ssh failed).
    Unknown(String),
}

/// One directed pair of the network matrix.
#[derive(Debug, Clone, Serialize)]
pub struct Link {
    pub from: u64,
    pub to: u64,
    /// `cluster` (port 11110) or `api` (port 5001).
    pub port: &'static str,
    pub addr: String,
    pub reach: Reach,
}

/// Per-node collection problems (a step that failed to run).
#[derive(Debug, Clone, Serialize)]
pub struct StepProblem {
    pub node: u64,
    pub step: &'static str,
    pub error: String,
}

/// Everything `doctor` found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub format_version: u32,
    pub cluster: String,
    pub findings: Vec<Finding>,
    pub logs: Vec<LogMatch>,
    pub network: Vec<Link>,
    pub settings: Vec<settings::SettingRow>,
    pub problems: Vec<StepProblem>,
    #[serde(skip)]
    pub view: Option<ClusterView>,
    /// How many nodes the manifest has.
    #[serde(skip)]
    pub nodes: usize,
}

impl Report {
    pub fn ok(&self) -> bool {
        finding::ok(&self.findings)
    }

    /// How many nodes doctor looked at.
    pub fn node_count(&self) -> usize {
        self.nodes
    }
}

/// The cluster address of a node: from the cluster's view, else `<host>:11110`.
fn cluster_addr(view: &ClusterView, ctx: &Context, id: u64, server_addr: Option<String>) -> String {
    view.node(id)
        .and_then(|n| n.cluster_addr.clone())
        .or(server_addr.filter(|a| !a.is_empty()))
        .map(|a| a.trim_start_matches("tcp://").to_string())
        .or_else(|| ctx.manifest.node(id).map(|n| format!("{}:11110", n.host)))
        .unwrap_or_default()
}

fn api_addr(api: &str) -> String {
    let rest = api.split_once("://").map_or(api, |(_, r)| r);
    let hostport = rest.split('/').next().unwrap_or(rest);
    if hostport.contains(':') && !hostport.ends_with(']') {
        hostport.to_string()
    } else {
        format!("{hostport}:5001")
    }
}

fn split_addr(addr: &str) -> (String, String) {
    match addr.rsplit_once(':') {
        Some((h, p)) => (
            h.trim_start_matches('[').trim_end_matches(']').to_string(),
            p.to_string(),
        ),
        None => (addr.to_string(), String::new()),
    }
}

enum Job {
    Logs(u64),
    Config(u64),
    Net {
        from: u64,
        to: u64,
        port: &'static str,
        addr: String,
    },
}

enum JobResult {
    Logs(u64, Result<String, String>),
    Config(u64, Result<String, String>),
    Net(Link),
}

/// Runs every collection step and judges the results. `live` are the live-check findings.
pub async fn run(ctx: &Context, view: ClusterView, live: Vec<Finding>) -> Report {
    // Phase 1: logs and settings of every node. Phase 2: the network matrix, with each
    // peer's cluster address from the cluster's view, else its own `cluster.serverAddr`.
    let mut jobs = Vec::new();
    for n in &ctx.manifest.nodes {
        jobs.push(Job::Logs(n.id));
        jobs.push(Job::Config(n.id));
    }
    let (mut logs_text, mut configs, mut network, mut problems) =
        (BTreeMap::new(), BTreeMap::new(), Vec::new(), Vec::new());
    for res in run_jobs(ctx, jobs).await {
        match res {
            Ok(JobResult::Logs(id, r)) => match r {
                Ok(t) => {
                    logs_text.insert(id, t);
                }
                Err(e) => problems.push(StepProblem {
                    node: id,
                    step: "logs",
                    error: e,
                }),
            },
            Ok(JobResult::Config(id, r)) => match r {
                Ok(t) => {
                    configs.insert(id, settings::parse(&t));
                }
                Err(e) => problems.push(StepProblem {
                    node: id,
                    step: "config",
                    error: e,
                }),
            },
            Ok(JobResult::Net(link)) => network.push(link),
            Err(e) => problems.push(StepProblem {
                node: 0,
                step: "internal",
                error: e,
            }),
        }
    }
    let mut jobs = Vec::new();
    for n in &ctx.manifest.nodes {
        for m in &ctx.manifest.nodes {
            if m.id != n.id {
                let server_addr = configs
                    .get(&m.id)
                    .and_then(|c: &settings::Settings| c.get("clusterserveraddr"))
                    .cloned();
                jobs.push(Job::Net {
                    from: n.id,
                    to: m.id,
                    port: "cluster",
                    addr: cluster_addr(&view, ctx, m.id, server_addr),
                });
                // The API address peers use (`cluster.apiUrl`, what a node forwards to), as
                // the node's own `config` says; else the manifest's.
                let api_url = configs
                    .get(&m.id)
                    .and_then(|c: &settings::Settings| c.get("clusterapiurl"))
                    .filter(|u| !u.is_empty())
                    .map_or(m.api.as_str(), String::as_str);
                jobs.push(Job::Net {
                    from: n.id,
                    to: m.id,
                    port: "api",
                    addr: api_addr(api_url),
                });
            }
        }
    }
    for res in run_jobs(ctx, jobs).await {
        match res {
            Ok(JobResult::Net(link)) => network.push(link),
            Ok(_) => {}
            Err(e) => problems.push(StepProblem {
                node: 0,
                step: "internal",
                error: e,
            }),
        }
    }
    network.sort_by(|a, b| (a.port, a.from, a.to).cmp(&(b.port, b.from, b.to)));
    problems.sort_by_key(|p| (p.node, p.step));

    let mut findings = live;
    let mut logs = Vec::new();
    for (id, text) in &logs_text {
        logs.extend(signatures::scan(*id, text));
    }
    findings.extend(log_findings(&logs));
    findings.extend(network_findings(&network, &view));
    let hosts: BTreeMap<u64, (String, String)> = ctx
        .manifest
        .nodes
        .iter()
        .map(|n| (n.id, (n.host.clone(), n.api.clone())))
        .collect();
    let (settings_rows, mut setting_findings) = settings::compare(
        &configs,
        &hosts,
        settings::FingerprintKey::random().as_ref(),
    );
    findings.append(&mut setting_findings);
    // "Could not check, because …" is its own finding, with the error whole (13.5).
    for p in &problems {
        let what = match p.step {
            "logs" => "its logs for known failure signatures",
            "config" => "its settings",
            _ => "this part",
        };
        findings.push(Finding::warn(
            FindingId::DoctorCouldNotCheck,
            (p.node != 0).then_some(p.node),
            format!(
                "node {}: could not check {what}, because the playbook `{}` step failed:\n{}",
                p.node,
                p.step,
                p.error.trim_end()
            ),
            "fix the node's transport (ssh) or the playbook step and run `wkctl doctor` again; nothing is known about this part",
        ));
    }
    findings.extend(could_not_check_network(&network));
    finding::sort(&mut findings);
    Report {
        format_version: 1,
        cluster: ctx.manifest.name.clone(),
        findings,
        logs,
        network,
        settings: settings_rows,
        problems,
        view: Some(view),
        nodes: ctx.manifest.nodes.len(),
    }
}

/// Network checks that could not run (no `netcheck` step, a missing command, ssh down):
/// one finding per node and port with the errors whole, never `network.unreachable`.
fn could_not_check_network(links: &[Link]) -> Vec<Finding> {
    let mut by: BTreeMap<(u64, &str), Vec<String>> = BTreeMap::new();
    for l in links {
        if let Reach::Unknown(why) = &l.reach {
            by.entry((l.from, l.port)).or_default().push(format!(
                "to node {} ({}): {}",
                l.to,
                l.addr,
                why.trim_end()
            ));
        }
    }
    by.into_iter()
        .map(|((from, port), errs)| {
            Finding::warn(
                FindingId::DoctorCouldNotCheck,
                Some(from),
                format!(
                    "node {from}: could not check the {port} port of its peers, because the `netcheck` step could not run:\n  {}",
                    errs.join("\n  ")
                ),
                "fix the `netcheck` step (or the transport) and run `wkctl doctor` again; the network from this node is not known",
            )
        })
        .collect()
}

/// Runs jobs concurrently (at most [`PARALLEL`] at once).
async fn run_jobs(ctx: &Context, jobs: Vec<Job>) -> Vec<Result<JobResult, String>> {
    let shared = Arc::new((ctx.manifest.clone(), ctx.playbook.clone()));
    let sem = Arc::new(Semaphore::new(PARALLEL));
    let mut set = JoinSet::new();
    for job in jobs {
        let c = Arc::clone(&shared);
        let sem = Arc::clone(&sem);
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            run_job(&c.0, &c.1, job).await
        });
    }
    let mut out = Vec::new();
    while let Some(res) = set.join_next().await {
        out.push(res.map_err(|e| e.to_string()));
    }
    out
}

async fn run_job(
    manifest: &crate::manifest::Manifest,
    pb: &playbook::Playbook,
    job: Job,
) -> JobResult {
    let render = |id: u64,
                  kind: StepKind,
                  extra: &[(&str, String)]|
     -> Result<(Transport, String), String> {
        let node = manifest
            .node(id)
            .ok_or_else(|| format!("node {id} not in the manifest"))?;
        let tpl = pb
            .step(kind)
            .ok_or_else(|| format!("playbook `{}` has no `{}` step", pb.name, kind.as_str()))?;
        let mut vars = playbook::node_vars(
            pb,
            &manifest.vars,
            node,
            node.version.as_ref().map(ToString::to_string).as_deref(),
            "unknown",
        );
        for (k, v) in extra {
            vars.insert((*k).to_string(), v.clone());
        }
        Ok((
            Transport::for_node(manifest, node),
            playbook::render(tpl, &vars)?,
        ))
    };
    let text_of = |id: u64, kind: StepKind| async move {
        let (t, cmd) = render(id, kind, &[])?;
        let out = transport::run(&t, &cmd, pb.timeout(kind).unwrap_or(STEP_TIMEOUT))
            .await
            .map_err(|e| e.to_string())?;
        if out.success() {
            Ok(out.stdout)
        } else {
            Err(out.tail(5))
        }
    };
    match job {
        Job::Logs(id) => JobResult::Logs(id, text_of(id, StepKind::Logs).await),
        Job::Config(id) => JobResult::Config(id, text_of(id, StepKind::Config).await),
        Job::Net {
            from,
            to,
            port,
            addr,
        } => {
            let (h, p) = split_addr(&addr);
            let reach = match render(
                from,
                StepKind::Netcheck,
                &[("peer", addr.clone()), ("peer_host", h), ("peer_port", p)],
            ) {
                Err(e) => Reach::Unknown(e),
                // A playbook whose tool is slow to start (docker-compose v1: about 1.5 s
                // alone, 20 s for twelve at once on two cores) sets its own timeout.
                Ok((t, cmd)) => match transport::run(
                    &t,
                    &cmd,
                    pb.timeout(StepKind::Netcheck).unwrap_or(NETCHECK_TIMEOUT),
                )
                .await
                {
                    Err(e) => Reach::Unknown(e.to_string()),
                    Ok(o) if o.success() => Reach::Ok,
                    // 1: refused/unreachable; 124: `timeout` expired; a killed check timed out.
                    Ok(o) if matches!(o.exit_code, Some(1 | 124)) || o.timed_out => {
                        Reach::Unreachable(
                            o.tail(2)
                                .lines()
                                .last()
                                .unwrap_or("unreachable")
                                .trim()
                                .to_string(),
                        )
                    }
                    Ok(o) => Reach::Unknown(format!(
                        "netcheck exited {:?}: {}",
                        o.exit_code,
                        o.tail(2).trim()
                    )),
                },
            };
            JobResult::Net(Link {
                from,
                to,
                port,
                addr,
                reach,
            })
        }
    }
}

/// One finding per node and signature, with how often it was seen.
fn log_findings(logs: &[LogMatch]) -> Vec<Finding> {
    let mut grouped: BTreeMap<(u64, FindingId), Vec<&LogMatch>> = BTreeMap::new();
    for m in logs {
        grouped.entry((m.node, m.signature)).or_default().push(m);
    }
    let mut out = Vec::new();
    for ((node, id), ms) in grouped {
        let Some(sig) = signatures::signature(id) else {
            continue;
        };
        let when = ms
            .last()
            .and_then(|m| m.time.clone())
            .map(|t| format!(", last at {t}"))
            .unwrap_or_default();
        let issue = sig.issue.map(|i| format!(" (#{i})")).unwrap_or_default();
        out.push(Finding::warn(
            id,
            Some(node),
            format!(
                "node {node}: {}{issue}: {} line(s){when}",
                sig.explanation,
                ms.len()
            ),
            sig.hint,
        ));
    }
    out
}

/// One-way and two-way failures in the matrix. Links to a node whose API does not answer
/// are explained by that node being down (its own `node.unreachable` finding): one
/// `info` per such node instead of a block per link.
fn network_findings(links: &[Link], view: &ClusterView) -> Vec<Finding> {
    let mut out = Vec::new();
    let down = |id: u64| view.node(id).is_some_and(|n| !n.reachable);
    let mut explained: BTreeMap<u64, usize> = BTreeMap::new();
    for l in links {
        if !matches!(l.reach, Reach::Unreachable(_)) {
            continue;
        }
        if down(l.to) {
            *explained.entry(l.to).or_default() += 1;
            continue;
        }
        let back = links
            .iter()
            .find(|b| b.from == l.to && b.to == l.from && b.port == l.port);
        let port = if l.port == "cluster" {
            "cluster port (11110)"
        } else {
            "API port (5001)"
        };
        if back.is_some_and(|b| b.reach == Reach::Ok) {
            out.push(Finding::block(
                FindingId::NetworkOneWay,
                Some(l.from),
                format!("node {} cannot reach node {}'s {port} at {}, but {} reaches {}: a one-way failure", l.from, l.to, l.addr, l.to, l.from),
                "a one-way failure is the classic cause of a node that never rejoins: check firewalls/security groups and routes in that direction",
            ));
        } else {
            out.push(Finding::block(
                FindingId::NetworkUnreachable,
                Some(l.from),
                format!(
                    "node {} cannot reach node {}'s {port} at {}",
                    l.from, l.to, l.addr
                ),
                "check that the peer runs and that firewalls allow the port between the nodes",
            ));
        }
    }
    for (id, n) in explained {
        out.push(Finding::info(
            FindingId::NetworkPeerDown,
            Some(id),
            format!("{n} network check(s) to node {id} failed: node {id} itself does not answer"),
            "start the node first (see `node.unreachable`); then run `wkctl doctor` again",
        ));
    }
    out
}
