//! `wkctl demo --docker`: the demo's end-to-end upgrade on real containers (issue 15 §5).
//!
//! The compose project of `tests/docker/cluster/` (upstream's cluster shape: one container
//! per node running `wksim node`, the brain `wksim serve --external` in its own container)
//! is started in a temp directory, its manifest is written the way `wkctl init
//! --from-compose` writes it, and the built-in `docker-compose` playbook upgrades it one
//! node at a time. No registry is used: the images come from
//! `tests/docker/build-images.sh`. Everything is removed afterwards (`down -v`), also when
//! the run fails.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cli::{DemoArgs, Global};
use crate::commands::init;
use crate::compose;
use crate::error::{Outcome, WkError};
use crate::inputs::Context;
use crate::output::Printer;

const COMPOSE_FILE: &str = include_str!("../../../tests/docker/cluster/docker-compose.yml");
const FROM_IMAGE: &str = "wukongim/wukongim:v2.0.10-20241221";
const BRAIN_IMAGE: &str = "wksim/brain:local";
const BUILD_HINT: &str = "build the images from a wkctl checkout with `cargo build --release && \
                          tests/docker/build-images.sh` (no registry is needed)";

pub(super) async fn run(global: &Global, args: &DemoArgs, p: &Printer) -> anyhow::Result<Outcome> {
    let target = crate::releases::resolve_target(&args.to, false)
        .map_err(|e| WkError::input(e.message, e.hint))?;
    let to_image = format!("wukongim/wukongim:{}", target.version);
    let tool = ready(&[FROM_IMAGE, &to_image, BRAIN_IMAGE])?;

    let tmp = tempfile::Builder::new()
        .prefix("wkctl-demo-docker-")
        .tempdir()
        .map_err(|e| WkError::no(format!("cannot create a temp dir: {e}"), "check $TMPDIR"))?;
    let dir = tmp.path().to_path_buf();
    let name = format!("wkctldemo{}", std::process::id());
    let mut dotenv = format!(
        "COMPOSE_PROJECT_NAME={name}\nWKSIM_SPEED={}\nWKSIM_BRAIN_PORT={}\n",
        args.speed,
        free_port()?
    );
    for id in 1001..=1003 {
        let _ = writeln!(dotenv, "WK_API_PORT_{id}={}", free_port()?);
    }
    std::fs::write(dir.join("docker-compose.yml"), COMPOSE_FILE)?;
    std::fs::write(dir.join(".env"), &dotenv)?;
    let down = Down {
        tool: tool.clone(),
        dir: dir.clone(),
    };
    p.note(&format!(
        "starting a WuKongIM-shaped cluster on Docker ({}): 3 containers (1001–1003) on \
         {FROM_IMAGE}, project `{name}` in `{}`",
        tool.join(" "),
        dir.display()
    ));
    compose_cmd(&tool, &dir, &["up", "-d"])?;

    let manifest = dir.join("cluster.yaml");
    std::fs::write(&manifest, manifest_text(&dir, &dotenv)?)?;
    p.note(&format!(
        "manifest written to `{}` (as `wkctl init --from-compose` writes it; playbook \
         `docker-compose`)",
        manifest.display()
    ));
    let demo_global = super::demo_global(global, &manifest);
    let ctx = Context::load(demo_global.manifest.as_deref())?;
    super::wait_settled(&ctx, std::time::Duration::from_mins(2)).await?;
    let up = super::upgrade_args(args, dir.join(".wkctl"));
    let outcome = super::upgrade_between_statuses(&ctx, &demo_global, &up, p).await?;
    p.note("removing the demo's containers, network and volumes");
    drop(down);
    drop(tmp);
    Ok(outcome)
}

/// The compose tool, once Docker answers and every image is there; else what is missing.
fn ready(images: &[&str]) -> Result<Vec<String>, WkError> {
    let ok = |argv: &[&str]| {
        Command::new(argv[0])
            .args(&argv[1..])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !ok(&["docker", "info", "--format", "{{.ServerVersion}}"]) {
        return Err(WkError::no(
            "`wkctl demo --docker` needs Docker: no Docker daemon answers `docker info`",
            "start Docker (or run plain `wkctl demo`, which simulates the cluster without Docker)",
        ));
    }
    let tool: Vec<String> = if ok(&["docker", "compose", "version"]) {
        vec!["docker".into(), "compose".into()]
    } else if ok(&["docker-compose", "version"]) {
        vec!["docker-compose".into()]
    } else {
        return Err(WkError::no(
            "`wkctl demo --docker` needs Compose: neither `docker compose` nor `docker-compose` works",
            "install the Compose plugin or docker-compose",
        ));
    };
    let missing: Vec<&str> = images
        .iter()
        .copied()
        .filter(|i| !ok(&["docker", "image", "inspect", i]))
        .collect();
    if !missing.is_empty() {
        return Err(WkError::no(
            format!(
                "`wkctl demo --docker` needs the simulator's images; missing: {}",
                missing.join(", ")
            ),
            BUILD_HINT,
        ));
    }
    Ok(tool)
}

fn compose_cmd(tool: &[String], dir: &Path, args: &[&str]) -> Result<(), WkError> {
    let o = Command::new(&tool[0])
        .args(&tool[1..])
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| WkError::no(format!("cannot run {}: {e}", tool.join(" ")), BUILD_HINT))?;
    if o.status.success() {
        Ok(())
    } else {
        Err(WkError::no(
            format!(
                "`{} {}` failed: {}",
                tool.join(" "),
                args.join(" "),
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            "see `docker ps -a` and the message above",
        ))
    }
}

/// The manifest `init --from-compose` writes for the project, with the demo's short
/// timings and its backups and team lock in the temp dir.
fn manifest_text(dir: &Path, dotenv: &str) -> anyhow::Result<String> {
    let file = dir.join("docker-compose.yml");
    let c = compose::parse_with_env(
        COMPOSE_FILE,
        &file.display().to_string(),
        &compose::read_dotenv(dotenv),
    )?;
    let text = init::from_compose(&c, &file, dir);
    let (head, _) = text
        .split_once("policy:\n")
        .ok_or_else(|| WkError::no("the demo manifest has no policy", "report a bug"))?;
    let q = |p: PathBuf| serde_json::to_string(&p.display().to_string()).unwrap_or_default();
    let vars = format!(
        "vars:\n  backup_dir: {}\n  lock_dir: {}\n",
        q(dir.join("backups")),
        q(dir.join("team.lock"))
    );
    Ok(format!(
        "{}policy:\n  order: id\n  canary: false\n  soak: 2s\n  stable_for: 2s\n  node_timeout: 60s\n  poll_interval: 250ms\n",
        head.replacen("vars:\n", &vars, 1)
    ))
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `down -v` when the demo ends, however it ends.
struct Down {
    tool: Vec<String>,
    dir: PathBuf,
}

impl Drop for Down {
    fn drop(&mut self) {
        let _ = Command::new(&self.tool[0])
            .args(&self.tool[1..])
            .args(["down", "-v", "--remove-orphans", "-t", "2"])
            .current_dir(&self.dir)
            .output();
    }
}
