//! `wksim serve`: builds the model, binds the ports, writes `cluster.json`, runs the time driver
//! and the control server until SIGTERM/SIGINT.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};

use super::cli::{ServeArgs, VersionStyle};
use super::cluster_file::{ClusterFile, NodeAddrs};
use super::http::server;
use super::model::builds::Build;
use super::model::{Cluster, ModelOpts, NodeSpec};
use super::shared::{Clock, Shared};
use tokio::net::TcpSocket;

/// Picks and reserves a port: `base + offset`, or a free one (`base` 0). The placeholder
/// sockets live as long as the simulator so a stopped node's port cannot be taken.
fn port(base: u16, offset: usize, held: &mut Vec<TcpSocket>) -> anyhow::Result<u16> {
    let wanted = if base == 0 {
        0
    } else {
        u16::try_from(usize::from(base) + offset)
            .context("--base-port too high for this many nodes")?
    };
    let (p, sock) = server::reserve(wanted).with_context(|| format!("reserving port {wanted}"))?;
    held.push(sock);
    Ok(p)
}

pub async fn run(a: ServeArgs) -> anyhow::Result<()> {
    if a.nodes == 0 {
        bail!("--nodes must be at least 1");
    }
    if !(a.speed.is_finite() && a.speed > 0.0) {
        bail!("--speed must be a positive number");
    }
    let version = Build::parse(&a.version).map_err(anyhow::Error::msg)?;
    let joined = a.joined.unwrap_or(a.nodes).min(a.nodes);
    std::fs::create_dir_all(&a.state_dir)
        .with_context(|| format!("creating `{}`", a.state_dir.display()))?;
    if a.external {
        return run_external(a, version, joined).await;
    }
    let mut specs = Vec::with_capacity(a.nodes);
    let mut held = Vec::new();
    for i in 0..a.nodes {
        let (api_port, cluster_port) = (
            port(a.base_port, 2 * i, &mut held)?,
            port(a.base_port, 2 * i + 1, &mut held)?,
        );
        specs.push(NodeSpec {
            id: a.first_id + i as u64,
            api_port,
            cluster_port,
        });
    }
    let control_port = port(a.base_port, 2 * a.nodes, &mut held)?;
    let control = server::bind(control_port).context("binding the control port")?;
    let control_port = control.local_addr()?.port();
    let opts = model_opts(&a, false, std::collections::BTreeMap::new())?;
    let clock = Clock {
        start: Instant::now(),
        speed: a.speed,
    };
    let mut model = Cluster::new(opts, &specs, joined, &version, 0);
    model.set_clients(a.clients, 0);
    let shared = Shared::new(model, clock, a.state_dir.join("events.jsonl"))?;
    shared.apply(|c, _| {
        c.dirty.extend(specs.iter().map(|s| s.id));
    });
    let control_url = format!("http://127.0.0.1:{control_port}");
    ClusterFile {
        control: control_url.clone(),
        nodes: specs
            .iter()
            .map(|s| NodeAddrs {
                id: s.id,
                api: format!("http://127.0.0.1:{}", s.api_port),
                cluster_addr: format!("127.0.0.1:{}", s.cluster_port),
            })
            .collect(),
        external: false,
    }
    .write(&a.state_dir)?;
    print_table(&specs, joined, &control_url, &version);
    tokio::spawn(Arc::clone(&shared).drive());
    let app = super::http::control::router(Arc::clone(&shared));
    axum::serve(control, app)
        .with_graceful_shutdown(shutdown())
        .await?;
    // The port reservations end only here, with the simulator.
    drop(held);
    Ok(())
}

/// `serve --external`: the brain of a cluster whose nodes are `wksim node` agents in their own
/// containers (one container = one node). Nothing is bound per node here; agents report
/// process starts and stops, and ask this server for every API answer.
async fn run_external(a: ServeArgs, version: Build, joined: usize) -> anyhow::Result<()> {
    let mut specs = Vec::with_capacity(a.nodes);
    let mut addrs = std::collections::BTreeMap::new();
    for i in 0..a.nodes {
        let id = a.first_id + i as u64;
        let host = a.node_host.replace("{n}", &(i + 1).to_string());
        addrs.insert(id, (format!("{host}:11110"), format!("http://{host}:5001")));
        specs.push(NodeSpec {
            id,
            api_port: 5001,
            cluster_port: 11110,
        });
    }
    let control = tokio::net::TcpListener::bind(&a.listen)
        .await
        .with_context(|| format!("binding the control address {}", a.listen))?;
    let control_port = control.local_addr()?.port();
    let opts = model_opts(&a, true, addrs.clone())?;
    let clock = Clock {
        start: Instant::now(),
        speed: a.speed,
    };
    let model = Cluster::new(opts, &specs, joined, &version, 0);
    let shared = Shared::new(model, clock, a.state_dir.join("events.jsonl"))?;
    let nodes = specs
        .iter()
        .map(|s| {
            let (cluster, api) = &addrs[&s.id];
            NodeAddrs {
                id: s.id,
                api: api.clone(),
                cluster_addr: cluster.clone(),
            }
        })
        .collect();
    let control_url = format!("http://127.0.0.1:{control_port}");
    ClusterFile {
        control: control_url,
        nodes,
        external: true,
    }
    .write(&a.state_dir)?;
    announce(a.nodes, &a.listen);
    tokio::spawn(Arc::clone(&shared).drive());
    tokio::spawn(super::agent::watchdog(Arc::clone(&shared)));
    let app = super::http::control::router(Arc::clone(&shared))
        .merge(super::agent::brain_router(Arc::clone(&shared)));
    axum::serve(control, app)
        .with_graceful_shutdown(shutdown())
        .await?;
    Ok(())
}

/// The model's options from `wksim serve`'s flags; `external`: the nodes are `wksim node`
/// processes (one per container) at `addrs`, not listeners of this process.
fn model_opts(
    a: &ServeArgs,
    external: bool,
    addrs: std::collections::BTreeMap<u64, (String, String)>,
) -> anyhow::Result<ModelOpts> {
    let epoch_ms = i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis())?;
    Ok(ModelOpts {
        speed: a.speed,
        epoch_ms,
        release_style: a.version_style == VersionStyle::Release,
        token: a.token.clone().filter(|t| !t.is_empty()),
        slot_count: a.slot_count.max(1),
        replicas: a.replicas.max(1),
        host: "127.0.0.1".into(),
        external,
        addrs,
    })
}

#[allow(clippy::print_stdout)]
fn announce(n: usize, listen: &str) {
    println!("wksim brain: {n} node(s) run by `wksim node` agents; control on {listen}");
}

#[allow(clippy::print_stdout)]
fn print_table(specs: &[NodeSpec], joined: usize, control: &str, version: &Build) {
    println!(
        "wksim: {} node(s), {joined} joined, version {version}",
        specs.len()
    );
    println!("{:<8} {:<28} {:<22} MEMBER", "NODE", "API", "CLUSTER");
    for (i, s) in specs.iter().enumerate().take(50) {
        let api = format!("http://127.0.0.1:{}", s.api_port);
        println!(
            "{:<8} {api:<28} 127.0.0.1:{:<12} {}",
            s.id,
            s.cluster_port,
            if i < joined { "yes" } else { "no" }
        );
    }
    if specs.len() > 50 {
        println!("... {} more in cluster.json", specs.len() - 50);
    }
    println!("control: {control}");
}

async fn shutdown() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let on_term = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = on_term => {}
    }
}
