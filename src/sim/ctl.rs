//! `wksim ctl`: a thin HTTP client of the control server named in `STATE_DIR/cluster.json`.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use super::cli::{CtlArgs, CtlCmd};

fn control_url(dir: &Path) -> anyhow::Result<String> {
    Ok(super::cluster_file::ClusterFile::read(dir)?.control)
}

async fn send(req: reqwest::RequestBuilder) -> anyhow::Result<String> {
    let resp = req
        .send()
        .await
        .context("cannot reach the simulator's control server")?;
    let status = resp.status();
    let text = resp.text().await?;
    if status.is_success() {
        return Ok(text);
    }
    let msg = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or(text);
    bail!("{msg}")
}

/// Runs one `ctl` command; the returned text goes to stdout.
pub async fn run(args: CtlArgs) -> anyhow::Result<String> {
    let base = control_url(&args.state_dir)?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_mins(10))
        .build()?;
    let command = |cmd: &str, node: u64, extra: Value| {
        let mut body = json!({"cmd": cmd, "node": node});
        if let (Some(b), Value::Object(e)) = (body.as_object_mut(), extra) {
            b.extend(e);
        }
        http.post(format!("{base}/ctl"))
            .header("content-type", "application/json")
            .body(body.to_string())
    };
    let out = match args.cmd {
        CtlCmd::Stop { node } => send(command("stop", node, json!({})))
            .await
            .map(|_| String::new())?,
        CtlCmd::Start { node, version } => {
            send(command("start", node, json!({"version": version})))
                .await
                .map(|_| String::new())?
        }
        CtlCmd::Restart { node, version } => {
            send(command("restart", node, json!({"version": version})))
                .await
                .map(|_| String::new())?
        }
        CtlCmd::Bounce { node, version } => {
            send(command("bounce", node, json!({"version": version})))
                .await
                .map(|_| String::new())?
        }
        CtlCmd::RestartAll { version } => {
            send(command("restart-all", 0, json!({"version": version})))
                .await
                .map(|_| String::new())?
        }
        CtlCmd::Fault { node, kind, args } => {
            send(command("fault", node, json!({"kind": kind, "args": args})))
                .await
                .map(|_| String::new())?
        }
        CtlCmd::Clear { node } => send(command("clear", node, json!({})))
            .await
            .map(|_| String::new())?,
        CtlCmd::Show { json } => {
            let text = send(http.get(format!("{base}/state"))).await?;
            if json {
                text + "\n"
            } else {
                table(&serde_json::from_str(&text)?)
            }
        }
        CtlCmd::Events => send(http.get(format!("{base}/events"))).await?,
        CtlCmd::Logs { node } => send(http.get(format!("{base}/logs/{node}"))).await?,
        CtlCmd::Config { node } => send(http.get(format!("{base}/config/{node}"))).await?,
        CtlCmd::Netcheck { node, addr } => {
            send(
                http.get(format!("{base}/netcheck"))
                    .query(&[("node", node.to_string()), ("addr", addr)]),
            )
            .await?;
            "reachable\n".to_string()
        }
    };
    Ok(out)
}

/// Human node table of `ctl show`.
pub fn table(state: &Value) -> String {
    let mut out = format!(
        "{:<6} {:<24} {:<8} {:<18} {:<7} {:<5} {:<10} FAULTS\n",
        "ID", "API", "STATE", "VERSION", "ONLINE", "CTRL", "UPTIME"
    );
    for n in state["nodes"].as_array().into_iter().flatten() {
        let faults: Vec<&str> = n["faults"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let _ = writeln!(
            out,
            "{:<6} {:<24} {:<8} {:<18} {:<7} {:<5} {:<10} {}",
            n["id"].to_string(),
            n["api"].as_str().unwrap_or(""),
            n["state"].as_str().unwrap_or(""),
            n["version"].as_str().unwrap_or(""),
            if n["online"] == true { "yes" } else { "no" },
            if n["controller"] == true { "*" } else { "" },
            n["uptime"].as_str().unwrap_or(""),
            faults.join(", ")
        );
    }
    let _ = writeln!(
        out,
        "config_version {}  settled {}",
        state["config_version"], state["cluster_settled"]
    );
    out
}
