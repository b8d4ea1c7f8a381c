//! Real containers (issue 15 §1–3): the compose project `tests/docker/cluster/` on a real
//! Docker Engine, each container one node (`wksim node`), the brain (`wksim serve
//! --external`) holding the model. Images come from `tests/docker/build-images.sh` (`.ci/run`
//! runs it); no registry is used.
//!
//! Without a Docker daemon (or without the images) these tests fail under CI (`CI` set) and
//! print a visible "skipped" line locally. Each test uses its own compose project name and
//! free loopback ports, and removes its containers, network and volumes, also on failure.
//!
//! Driving it by hand: copy `tests/docker/cluster/` somewhere, then
//! `WKSIM_BRAIN_PORT=17000 docker-compose -p NAME up -d`; the node APIs answer on
//! 127.0.0.1:15001-15003, the brain's `/state` and `/events` on 127.0.0.1:17000, and its event
//! log is `./brain/events.jsonl`. Change a node's build with `WK_IMAGE_1002=… docker-compose
//! up -d wukongim2`.

// One test binary: `pub` only shares helpers between its modules.
#![allow(unreachable_pub)]

#[path = "cli/harness.rs"]
mod harness;

#[path = "docker/e2e.rs"]
mod e2e;

use std::io::{Read as _, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

const COMPOSE: &str = "docker-compose";
const OLD: &str = "wukongim/wukongim:v2.0.10-20241221";
const NEW: &str = "wukongim/wukongim:v2.1.2-20250120";
const CRASH: &str = "wukongim/wukongim:v2.1.2-crashloop";

fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// `Some(())` when Docker and the images are there; else skip locally, fail under CI.
#[allow(clippy::print_stderr)]
fn docker_ready() -> Option<()> {
    let daemon = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    let why = if !daemon {
        "no Docker daemon answers `docker info`".to_string()
    } else if Command::new(COMPOSE).arg("version").output().is_err() {
        format!("`{COMPOSE}` is not installed")
    } else if let Some(missing) = [OLD, NEW, CRASH, "wksim/brain:local"]
        .into_iter()
        .find(|i| {
            !Command::new("docker")
                .args(["image", "inspect", i])
                .output()
                .is_ok_and(|o| o.status.success())
        })
    {
        format!("image {missing} is missing (run tests/docker/build-images.sh)")
    } else {
        return Some(());
    };
    assert!(!in_ci(), "docker tests cannot run under CI: {why}");
    eprintln!("skipped: docker tests: {why}");
    None
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// One compose project in a temp dir; `down -v` on drop, also after a failed assertion.
/// Its settings (project name, ports) are in the project's `.env` (mode 0600, as when it
/// holds `WK_MANAGERTOKEN`), so a plain `docker-compose` in the directory (what the
/// playbook runs) addresses the same project.
struct Project {
    dir: tempfile::TempDir,
    name: String,
    env: Vec<(String, String)>,
    brain: String,
    api: Vec<String>,
    /// Image tags the test made; removed on drop.
    tags: Vec<String>,
}

impl Project {
    fn up() -> Project {
        let dir = tempfile::tempdir().expect("tempdir");
        let src =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/docker/cluster/docker-compose.yml");
        std::fs::copy(&src, dir.path().join("docker-compose.yml")).expect("copy compose file");
        let name = format!("wksimtest{}{}", std::process::id(), free_port());
        let brain_port = free_port();
        let mut env = vec![("WKSIM_BRAIN_PORT".to_string(), brain_port.to_string())];
        let mut api = Vec::new();
        for id in 1001..=1003 {
            let p = free_port();
            env.push((format!("WK_API_PORT_{id}"), p.to_string()));
            api.push(format!("127.0.0.1:{p}"));
        }
        let mut dotenv = format!(
            "# secrets may live here too (WK_MANAGERTOKEN): 0600\nCOMPOSE_PROJECT_NAME={name}\n"
        );
        for (k, v) in &env {
            std::fmt::Write::write_fmt(&mut dotenv, format_args!("{k}={v}\n")).expect("write");
        }
        let env_file = dir.path().join(".env");
        std::fs::write(&env_file, dotenv).expect("write .env");
        std::fs::set_permissions(&env_file, std::fs::Permissions::from_mode(0o600))
            .expect("chmod .env");
        let p = Project {
            dir,
            name,
            env: Vec::new(),
            brain: format!("127.0.0.1:{brain_port}"),
            api,
            tags: Vec::new(),
        };
        p.compose(&[], &["up", "-d"]);
        p.wait("cluster settled", Duration::from_mins(2), |p| {
            p.state()["cluster_settled"] == true
        });
        p
    }

    fn compose(&self, extra_env: &[(&str, &str)], args: &[&str]) -> Output {
        let out = Command::new(COMPOSE)
            .current_dir(self.dir.path())
            .args(["-p", &self.name])
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(extra_env.iter().copied())
            .output()
            .expect("run docker-compose");
        assert!(
            out.status.success(),
            "{COMPOSE} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn container(&self, n: u8) -> String {
        format!("{}_wukongim{n}_1", self.name)
    }

    fn network(&self) -> String {
        format!("{}_wukongim", self.name)
    }
}

fn get(hostport: &str, path: &str) -> (u16, String) {
    let Ok(addr) = hostport.parse::<std::net::SocketAddr>() else {
        return (0, String::new());
    };
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3)) else {
        return (0, String::new());
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let req = format!("GET {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).to_string();
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return (0, text);
    };
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

impl Project {
    fn state(&self) -> Value {
        serde_json::from_str(&get(&self.brain, "/state").1).unwrap_or(Value::Null)
    }

    fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("brain/events.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    fn node(&self, id: u64) -> Value {
        self.state()["nodes"]
            .as_array()
            .and_then(|ns| ns.iter().find(|n| n["id"] == id).cloned())
            .unwrap_or(Value::Null)
    }

    fn wait(&self, what: &str, timeout: Duration, f: impl Fn(&Project) -> bool) {
        let deadline = Instant::now() + timeout;
        while !f(self) {
            assert!(Instant::now() < deadline, "timed out waiting for: {what}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn data_dir(&self, n: u8) -> PathBuf {
        self.dir.path().join(format!("wukongim{n}_data"))
    }
}

fn inspect(container: &str, fmt: &str) -> String {
    let out = Command::new("docker")
        .args(["inspect", "-f", fmt, container])
        .output()
        .expect("docker inspect");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = Command::new(COMPOSE)
            .current_dir(self.dir.path())
            .args([
                "-p",
                &self.name,
                "down",
                "-v",
                "--remove-orphans",
                "-t",
                "2",
            ])
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output();
        for tag in &self.tags {
            let _ = Command::new("docker").args(["rmi", tag]).output();
        }
        // Files written as root inside the containers.
        let _ = std::fs::remove_dir_all(self.dir.path());
    }
}

#[test]
fn compose_cluster_stop_upgrade_crash_and_disconnect() {
    if docker_ready().is_none() {
        return;
    }
    let p = Project::up();
    // Every node answers on its own published port, from its own container.
    for (i, api) in p.api.iter().enumerate() {
        let (st, body) = get(api, "/varz");
        assert_eq!(st, 200, "node {} /varz: {body}", 1001 + i);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["server_id"], (1001 + i).to_string());
        assert_eq!(v["version"], "v2.0.10-20241221");
    }
    assert!(
        std::fs::read_to_string(p.data_dir(1).join("logs/wukongim.log"))
            .unwrap()
            .contains("node 1001 start v2.0.10-20241221"),
        "the node writes real files into its volume"
    );

    // `docker-compose stop` = SIGTERM: the node stops in the brain's model.
    p.compose(&[], &["stop", "wukongim3"]);
    assert_eq!(p.node(1003)["state"], "stopped");
    assert_eq!(get(&p.api[2], "/health").0, 0, "port closed");
    assert!(
        p.events()
            .iter()
            .any(|e| e["kind"] == "stop" && e["node"] == 1003)
    );

    // `up -d` with another image: the node comes back on that image's version.
    p.compose(&[("WK_IMAGE_1003", NEW)], &["up", "-d", "wukongim3"]);
    p.wait("1003 settled on v2.1.2", Duration::from_mins(2), |p| {
        p.node(1003)["build"] == "v2.1.2-20250120" && p.state()["cluster_settled"] == true
    });
    let v: Value = serde_json::from_str(&get(&p.api[2], "/varz").1).unwrap();
    assert_eq!(v["version"], "v2.1.2-20250120");
    assert_eq!(inspect(&p.container(3), "{{.Config.Image}}"), NEW);

    // A crash-looping image: the agent exits non-zero, the restart policy brings it back.
    p.compose(&[("WK_IMAGE_1002", CRASH)], &["up", "-d", "wukongim2"]);
    p.wait(
        "restarted by docker at least twice",
        Duration::from_mins(2),
        |p| {
            inspect(&p.container(2), "{{.RestartCount}}")
                .parse::<u32>()
                .unwrap_or(0)
                >= 2
        },
    );
    let crashes = p
        .events()
        .iter()
        .filter(|e| e["node"] == 1002 && e["to"] == "crashed")
        .count();
    assert!(crashes >= 2, "{crashes} crashes in the brain's model");
    p.compose(&[("WK_IMAGE_1002", OLD)], &["up", "-d", "wukongim2"]);
    p.wait("1002 back and settled", Duration::from_mins(2), |p| {
        p.node(1002)["state"] == "settled" && p.state()["cluster_settled"] == true
    });

    // `docker network disconnect`: the node is cut off and the controller marks it offline.
    let c1 = p.container(1);
    let out = Command::new("docker")
        .args(["network", "disconnect", &p.network(), &c1])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    p.wait(
        "1001 cut off and marked offline",
        Duration::from_mins(1),
        |p| {
            p.node(1001)["online"] == false
                && p.events()
                    .iter()
                    .any(|e| e["kind"] == "network" && e["node"] == 1001 && e["to"] == "cut_off")
        },
    );
    let out = Command::new("docker")
        .args([
            "network",
            "connect",
            "--alias",
            "node1.wk.local",
            &p.network(),
            &c1,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    p.wait("1001 rejoined", Duration::from_mins(1), |p| {
        p.node(1001)["rejoined"] == true && p.state()["cluster_settled"] == true
    });
}
