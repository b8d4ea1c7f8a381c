//! Collecting for `doctor`: the playbook's `logs`, `config` and `netcheck` steps run on
//! every node through its transport, concurrently. Nothing here judges what came back.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::settings::{self, Settings};
use super::{Link, Port, Reach, StepProblem};
use crate::inputs::Context;
use crate::manifest::Manifest;
use crate::playbook::{self, Playbook, StepKind};
use crate::probe::ClusterView;
use crate::transport::{self, StepOutput, Transport};

/// At most this many playbook commands run at once.
const PARALLEL: usize = 16;
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
const NETCHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// What the collection steps brought back, before judging.
#[derive(Default)]
pub(super) struct Collected {
    /// Each node's `logs` output.
    pub(super) logs: BTreeMap<u64, String>,
    /// Each node's settings, parsed from its `config` output.
    pub(super) configs: BTreeMap<u64, Settings>,
    /// The network matrix, sorted by port, then from, then to.
    pub(super) network: Vec<Link>,
    /// Steps that could not run, sorted by node and step.
    pub(super) problems: Vec<StepProblem>,
}

impl Collected {
    /// Files one job's result (a task that panicked is an `internal` problem).
    fn add(&mut self, res: Result<JobResult, String>) {
        match res {
            Ok(JobResult::Logs(id, r)) => match r {
                Ok(t) => {
                    self.logs.insert(id, t);
                }
                Err(e) => self.problem(id, "logs", e),
            },
            Ok(JobResult::Config(id, r)) => match r {
                Ok(t) => {
                    self.configs.insert(id, settings::parse(&t));
                }
                Err(e) => self.problem(id, "config", e),
            },
            Ok(JobResult::Net(link)) => self.network.push(link),
            Err(e) => self.problem(0, "internal", e),
        }
    }

    /// Records that `step` could not run on `node` (0: not a node's).
    fn problem(&mut self, node: u64, step: &'static str, error: String) {
        self.problems.push(StepProblem { node, step, error });
    }
}

/// Phase 1: logs and settings of every node. Phase 2: the network matrix, with each
/// peer's cluster address from the cluster's view, else its own `cluster.serverAddr`.
pub(super) async fn collect(ctx: &Context, view: &ClusterView) -> Collected {
    let mut c = Collected::default();
    let jobs = ctx
        .manifest
        .nodes
        .iter()
        .flat_map(|n| [Job::Logs(n.id), Job::Config(n.id)])
        .collect();
    for res in run_jobs(ctx, jobs).await {
        c.add(res);
    }
    for res in run_jobs(ctx, net_jobs(ctx, view, &c.configs)).await {
        c.add(res);
    }
    c.network.sort_by_key(|l| (l.port, l.from, l.to));
    c.problems.sort_by_key(|p| (p.node, p.step));
    c
}

/// Both ports of every ordered pair of distinct nodes, at the addresses peers use.
fn net_jobs(ctx: &Context, view: &ClusterView, configs: &BTreeMap<u64, Settings>) -> Vec<Job> {
    let mut jobs = Vec::new();
    for n in &ctx.manifest.nodes {
        for m in ctx.manifest.nodes.iter().filter(|m| m.id != n.id) {
            let server_addr = configs
                .get(&m.id)
                .and_then(|c| c.get("clusterserveraddr"))
                .cloned();
            jobs.push(Job::Net {
                from: n.id,
                to: m.id,
                port: Port::Cluster,
                addr: cluster_addr(view, ctx, m.id, server_addr),
            });
            // The API address peers use (`cluster.apiUrl`, what a node forwards to), as
            // the node's own `config` says; else the manifest's.
            let api_url = configs
                .get(&m.id)
                .and_then(|c| c.get("clusterapiurl"))
                .filter(|u| !u.is_empty())
                .map_or(m.api.as_str(), String::as_str);
            jobs.push(Job::Net {
                from: n.id,
                to: m.id,
                port: Port::Api,
                addr: api_addr(api_url),
            });
        }
    }
    jobs
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

/// `host:port` of an API URL; the port is 5001 when the URL names none.
fn api_addr(api: &str) -> String {
    let rest = api.split_once("://").map_or(api, |(_, r)| r);
    let hostport = rest.split('/').next().unwrap_or(rest);
    if hostport.contains(':') && !hostport.ends_with(']') {
        hostport.to_string()
    } else {
        format!("{hostport}:5001")
    }
}

/// `host:port` as (host without IPv6 brackets, port).
fn split_addr(addr: &str) -> (String, String) {
    match addr.rsplit_once(':') {
        Some((h, p)) => (
            h.trim_start_matches('[').trim_end_matches(']').to_string(),
            p.to_string(),
        ),
        None => (addr.to_string(), String::new()),
    }
}

/// One playbook step to run on one node.
enum Job {
    Logs(u64),
    Config(u64),
    Net {
        from: u64,
        to: u64,
        port: Port,
        addr: String,
    },
}

/// What one [`Job`] brought back.
enum JobResult {
    Logs(u64, Result<String, String>),
    Config(u64, Result<String, String>),
    Net(Link),
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

/// Runs one job; its failures are in its result, never an error of the whole run.
async fn run_job(manifest: &Manifest, pb: &Playbook, job: Job) -> JobResult {
    match job {
        Job::Logs(id) => JobResult::Logs(id, step_text(manifest, pb, id, StepKind::Logs).await),
        Job::Config(id) => {
            JobResult::Config(id, step_text(manifest, pb, id, StepKind::Config).await)
        }
        Job::Net {
            from,
            to,
            port,
            addr,
        } => {
            let reach = netcheck(manifest, pb, from, &addr).await;
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

/// The playbook step `kind` rendered for node `id` (with `extra` variables), and the
/// transport to run it through.
fn render_step(
    manifest: &Manifest,
    pb: &Playbook,
    id: u64,
    kind: StepKind,
    extra: &[(&str, String)],
) -> Result<(Transport, String), String> {
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
}

/// What step `kind` prints on node `id`; its last lines when it fails.
async fn step_text(
    manifest: &Manifest,
    pb: &Playbook,
    id: u64,
    kind: StepKind,
) -> Result<String, String> {
    let (t, cmd) = render_step(manifest, pb, id, kind, &[])?;
    let out = transport::run(&t, &cmd, pb.timeout(kind).unwrap_or(STEP_TIMEOUT))
        .await
        .map_err(|e| e.to_string())?;
    if out.success() {
        Ok(out.stdout)
    } else {
        Err(out.tail(5))
    }
}

/// Whether node `from` reaches `addr`, by its playbook's `netcheck` step.
async fn netcheck(manifest: &Manifest, pb: &Playbook, from: u64, addr: &str) -> Reach {
    let (h, p) = split_addr(addr);
    let extra = [
        ("peer", addr.to_string()),
        ("peer_host", h),
        ("peer_port", p),
    ];
    match render_step(manifest, pb, from, StepKind::Netcheck, &extra) {
        Err(e) => Reach::Unknown(e),
        // A playbook whose tool is slow to start (docker-compose v1: about 1.5 s
        // alone, 20 s for twelve at once on two cores) sets its own timeout.
        Ok((t, cmd)) => reach_of(
            transport::run(
                &t,
                &cmd,
                pb.timeout(StepKind::Netcheck).unwrap_or(NETCHECK_TIMEOUT),
            )
            .await,
        ),
    }
}

/// What a `netcheck` run says about the link.
fn reach_of(out: std::io::Result<StepOutput>) -> Reach {
    match out {
        Err(e) => Reach::Unknown(e.to_string()),
        Ok(o) if o.success() => Reach::Ok,
        // 1: refused/unreachable; 124: `timeout` expired; a killed check timed out.
        Ok(o) if matches!(o.exit_code, Some(1 | 124)) || o.timed_out => Reach::Unreachable(
            o.tail(2)
                .lines()
                .last()
                .unwrap_or("unreachable")
                .trim()
                .to_string(),
        ),
        Ok(o) => Reach::Unknown(format!(
            "netcheck exited {:?}: {}",
            o.exit_code,
            o.tail(2).trim()
        )),
    }
}
