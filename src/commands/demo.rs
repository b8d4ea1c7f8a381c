//! `wkctl demo`: a simulated 3-node cluster on v2.0.10-20241221 (the incident's starting
//! point), upgraded end to end by the real executor through the `sim` playbook.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::cli::{DemoArgs, Global, TargetArgs, UpgradeArgs};
use crate::commands::upgrade;
use crate::error::{Outcome, WkError};
use crate::execute::poll::{self, Polled};
use crate::finding;
use crate::gate;
use crate::inputs::Context;
use crate::observe;
use crate::output::Printer;
use crate::render;
use crate::sim::cluster_file::{ClusterFile, NodeAddrs};

mod docker;

const FROM: &str = "v2.0.10-20241221";

pub async fn run(global: &Global, args: &DemoArgs, p: &Printer) -> anyhow::Result<Outcome> {
    if args.docker {
        return Box::pin(docker::run(global, args, p)).await;
    }
    let tmp = tempfile::Builder::new()
        .prefix("wkctl-demo-")
        .tempdir()
        .map_err(|e| WkError::no(format!("cannot create a temp dir: {e}"), "check $TMPDIR"))?;
    let sim_dir = tmp.path().join("sim");
    let wksim = locate_wksim(tmp.path())?;

    p.note(&format!(
        "starting a simulated WuKongIM cluster: 3 nodes (1001–1003) on {FROM}, speed ×{}",
        args.speed
    ));
    let mut child = start_simulator(&wksim, &sim_dir, args.speed)?;
    let cluster = wait_cluster_json(&sim_dir, &mut child).await?;
    let manifest = tmp.path().join("cluster.yaml");
    // A fault that acts at once (`blackhole`) would only make the pre-upgrade check
    // refuse: it is injected when the node's stop step runs, as the tests do (13.11).
    let at_stop = (args.fault == Some(crate::cli::DemoFault::Blackhole))
        .then(|| stop_fault_wrapper(tmp.path(), &wksim, &sim_dir, args.fault_node))
        .transpose()?;
    std::fs::write(
        &manifest,
        manifest_text(&cluster, &wksim, &sim_dir, args, at_stop.as_deref()),
    )?;
    p.note(&format!(
        "manifest written to `{}` (playbook `sim`)",
        manifest.display()
    ));

    let demo_global = demo_global(global, &manifest);
    let ctx = Context::load(demo_global.manifest.as_deref())?;
    wait_settled(&ctx, Duration::from_secs(30)).await?;

    if let Some(fault) = args.fault.filter(|_| at_stop.is_none()) {
        inject_fault(fault, args.fault_node, &wksim, &sim_dir)?;
        p.note(&format!(
            "fault injected: node {} gets `{}` at its next start; watch wkctl stop safely",
            args.fault_node,
            fault.sim_name()
        ));
    } else if at_stop.is_some() {
        p.note(&format!(
            "fault armed: node {} gets `blackhole` (accepts connections, never answers) when \
             wkctl stops it; watch wkctl stop safely",
            args.fault_node
        ));
    }

    let up = upgrade_args(args, tmp.path().join(".wkctl"));
    let outcome = upgrade_between_statuses(&ctx, &demo_global, &up, p).await?;
    if !args.json && outcome == Outcome::No {
        p.note(
            "the run stopped safely: the reason is above, and no node after the problem was \
             touched",
        );
    }
    let _ = child.start_kill();
    let _ = child.wait().await;
    Ok(outcome)
}

/// `wksim serve` with the demo's three nodes on [`FROM`], in `sim_dir`.
fn start_simulator(
    wksim: &Path,
    sim_dir: &Path,
    speed: f64,
) -> anyhow::Result<tokio::process::Child> {
    let child = tokio::process::Command::new(wksim)
        .arg("serve")
        .args(["--nodes", "3", "--first-id", "1001", "--version", FROM])
        .arg("--state-dir")
        .arg(sim_dir)
        .args(["--speed", &speed.to_string()])
        // Enough clients (1,200) to be over `policy.clients.min`, so the demo shows the
        // client check at work rather than "skipped".
        .args(["--clients", "400"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            WkError::no(
                format!("cannot start the simulator `{}`: {e}", wksim.display()),
                "build it with `cargo build --release`",
            )
        })?;
    Ok(child)
}

/// Arms `fault` on `node` for its next start (`wksim ctl fault`).
fn inject_fault(
    fault: crate::cli::DemoFault,
    node: u64,
    wksim: &Path,
    sim_dir: &Path,
) -> anyhow::Result<()> {
    let mut cmd = std::process::Command::new(wksim);
    cmd.arg("ctl").arg("--state-dir").arg(sim_dir).args([
        "fault",
        &node.to_string(),
        fault.sim_name(),
    ]);
    if fault == crate::cli::DemoFault::SlowStart {
        cmd.arg("600");
    }
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(WkError::no(
            format!(
                "cannot inject the fault: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            "see `wksim ctl --help`",
        )
        .into());
    }
    Ok(())
}

/// The caller's global options, on the demo's manifest.
fn demo_global(global: &Global, manifest: &Path) -> Global {
    Global {
        manifest: Some(manifest.to_path_buf()),
        quiet: global.quiet,
        verbose: global.verbose,
        color: global.color,
        no_progress: global.no_progress,
        notify: global.notify.clone(),
    }
}

/// Runs the demo's upgrade with the cluster's status before and after it (not with
/// `--json`, whose stdout is the run's events only).
async fn upgrade_between_statuses(
    ctx: &Context,
    demo_global: &Global,
    up: &UpgradeArgs,
    p: &Printer,
) -> anyhow::Result<Outcome> {
    if !up.json {
        p.out(&p.bold("\nbefore"))?;
        print_status(ctx, p).await?;
        p.out("")?;
    }
    let outcome = Box::pin(upgrade::run(demo_global, up, p)).await?;
    if !up.json {
        p.out(&p.bold("\nafter"))?;
        print_status(ctx, p).await?;
    }
    Ok(outcome)
}

/// The demo cluster's status table, without what does not apply to a demo.
async fn print_status(ctx: &Context, p: &Printer) -> anyhow::Result<()> {
    let (_, view) = observe::cluster(ctx).await?;
    let mut f = crate::checks::live_findings(&ctx.manifest, &view);
    finding::sort(&mut f);
    // Nothing here points at `--resume`: the demo's state goes with its directory.
    f.retain(|f| f.severity != finding::Severity::Info && f.id != finding::FindingId::VersionMixed);
    p.out(&render::status(ctx, &view, &f, None, p))?;
    Ok(())
}

/// The simulator binary: `wksim` next to this executable, else this executable itself
/// through a link named `wksim` (it is a multi-call binary).
fn locate_wksim(tmp: &Path) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    if let Some(sibling) = me.parent().map(|d| d.join("wksim"))
        && sibling.is_file()
    {
        return Ok(sibling);
    }
    let link = tmp.join("wksim");
    std::os::unix::fs::symlink(&me, &link)
        .map_err(|e| WkError::no(format!("cannot link the simulator: {e}"), "check $TMPDIR"))?;
    Ok(link)
}

/// The simulator's `cluster.json` once it is written (atomically: whole or absent).
async fn wait_cluster_json(
    sim_dir: &Path,
    child: &mut tokio::process::Child,
) -> anyhow::Result<Vec<NodeAddrs>> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let ended = poll::until(
        deadline,
        Duration::from_millis(50),
        None,
        || async {},
        |()| {
            if ClusterFile::path(sim_dir).exists() {
                return Some(ClusterFile::read(sim_dir).map(|f| f.nodes));
            }
            let status = child.try_wait().ok().flatten()?;
            Some(Err(WkError::no(
                format!("the simulator exited early ({status})"),
                "run `wksim serve --help`",
            )
            .into()))
        },
    )
    .await;
    match ended {
        Polled::Done(nodes) => nodes,
        Polled::TimedOut | Polled::Interrupted => Err(WkError::no(
            "the simulator did not start within 20 s",
            "is the machine overloaded?",
        )
        .into()),
    }
}

/// How long the fresh simulated cluster must stay settled before the demo upgrades it.
const SETTLED_FOR: Duration = Duration::from_millis(1500);

async fn wait_settled(ctx: &Context, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    // Settled, and still settled a moment later (slot leaders balance after boot).
    let mut stable = gate::Stability::new(SETTLED_FOR);
    let mut settled = None;
    let ended = poll::until(
        deadline,
        Duration::from_millis(100),
        None,
        || observe::cluster(ctx),
        |seen| {
            let view = match seen {
                Ok((_, view)) => view,
                Err(e) => return Some(Err(e)),
            };
            let now = gate::cluster_settled(&view);
            let held = stable.hold(now.is_met(), Instant::now());
            settled = Some(now);
            held.then_some(Ok(()))
        },
    )
    .await;
    match ended {
        Polled::Done(done) => done,
        Polled::TimedOut | Polled::Interrupted => Err(WkError::no(
            format!(
                "the simulated cluster did not settle within {} s: {}",
                within.as_secs(),
                settled.map_or_else(|| "never observed".into(), |s| format!("{s:?}"))
            ),
            "is the machine overloaded?",
        )
        .into()),
    }
}

/// A `wksim` wrapper for the fault node: runs the real command, and after that node's
/// `stop` injects `blackhole`, so the node fails its gate after the restart.
fn stop_fault_wrapper(
    dir: &Path,
    wksim: &Path,
    sim_dir: &Path,
    node: u64,
) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let q = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', r"'\''"));
    let path = dir.join("wksim-fault-at-stop");
    let script = format!(
        "#!/bin/sh\n{w} \"$@\" || exit $?\ncase \" $* \" in *\" stop {node} \"*) exec {w} ctl --state-dir {s} fault {node} blackhole ;; esac\n",
        w = q(wksim),
        s = q(sim_dir),
    );
    std::fs::write(&path, script)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    Ok(path)
}

fn manifest_text(
    nodes: &[NodeAddrs],
    wksim: &Path,
    sim_dir: &Path,
    args: &crate::cli::DemoArgs,
    fault_wrapper: Option<&Path>,
) -> String {
    use std::fmt::Write;
    let q = |p: &Path| serde_json::to_string(&p.display().to_string()).unwrap_or_default();
    let mut s = String::from(
        "# written by `wkctl demo`\nname: demo\nplaybook: sim\napi:\n  timeout: 2s\nvars:\n",
    );
    let _ = writeln!(
        s,
        "  wksim: {}\n  state_dir: {}\nnodes:",
        q(wksim),
        q(sim_dir)
    );
    for n in nodes {
        let _ = writeln!(
            s,
            "  - id: {}\n    host: 127.0.0.1\n    api: {}",
            n.id, n.api
        );
        if let Some(w) = fault_wrapper.filter(|_| n.id == args.fault_node) {
            let _ = writeln!(s, "    vars:\n      wksim: {}", q(w));
        }
    }
    // Timings: the simulator runs ×speed; the gate still waits for real settling.
    let timeout = if args.fault.is_some() { "20s" } else { "60s" };
    let _ = writeln!(
        s,
        "policy:\n  order: id\n  canary: false\n  soak: 2s\n  stable_for: 2s\n  node_timeout: {timeout}\n  poll_interval: 250ms\n  step_timeout: 30s"
    );
    s
}

/// The `upgrade` a demo runs: `--to`, `--yes`, its own state dir, no resume hint.
fn upgrade_args(args: &DemoArgs, state_dir: std::path::PathBuf) -> UpgradeArgs {
    UpgradeArgs {
        target: TargetArgs {
            to: Some(args.to.clone()),
            allow_unknown_version: false,
            allow_downgrade: false,
            allow_downgrade_across_rewrite: false,
        },
        yes: true,
        dry_run: false,
        resume: false,
        discard: false,
        json: args.json,
        rollback_on_failure: false,
        break_lock: false,
        state_dir: Some(state_dir),
        planned: crate::cli::PlanFileArgs::default(),
        nodes: Vec::new(),
        demo: true,
    }
}
