//! `wkctl` itself on real containers (issue 15 §4): the manifest `wkctl init
//! --from-compose` writes for `tests/docker/cluster/`, run through the built-in
//! `docker-compose` playbook over the local transport. Every container change is checked
//! with `docker inspect`; "never two down" and "every stop settled" on the brain's event log.

use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader};
use std::process::Stdio;
use std::sync::mpsc;

use super::*;

const TO: &str = "v2.1.2";
const TO_TAG: &str = "v2.1.2-20250120";

/// `wkctl ARGS` in the project directory, with the per-user run lock in the project.
fn wkctl_cmd(p: &Project, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wkctl"));
    c.current_dir(p.dir.path())
        .env_remove("WKCTL_MANIFEST")
        .env("NO_COLOR", "1")
        .env("WKCTL_LOCK_DIR", p.dir.path().join("locks"))
        .args(args);
    c
}

fn wkctl(p: &Project, args: &[&str]) -> Output {
    wkctl_cmd(p, args).output().expect("run wkctl")
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

impl Project {
    fn manifest(&self) -> PathBuf {
        self.dir.path().join("cluster.yaml")
    }

    fn manifest_arg(&self) -> String {
        self.manifest().display().to_string()
    }

    /// `wkctl init --from-compose` on the project: the manifest as written.
    fn init(&self) -> String {
        let compose = self.dir.path().join("docker-compose.yml");
        let o = wkctl(
            self,
            &[
                "init",
                "--from-compose",
                &compose.display().to_string(),
                "-o",
                &self.manifest_arg(),
            ],
        );
        assert!(o.status.success(), "init: {}", text(&o));
        std::fs::read_to_string(self.manifest()).expect("read the manifest")
    }

    /// Test-only settings on top of the written manifest: the backups and the team lock in
    /// the project directory, short policy timings, and `vars` given (e.g. another image).
    fn tune(&self, vars: &[(&str, &str)]) {
        let text = std::fs::read_to_string(self.manifest()).unwrap();
        let backup = self.dir.path().join("backups").display().to_string();
        let lock = self.dir.path().join("team.lock").display().to_string();
        let mut set: Vec<(&str, &str)> = vec![("backup_dir", &backup), ("lock_dir", &lock)];
        set.extend_from_slice(vars);
        let (head, _) = text.split_once("policy:\n").expect("a policy block");
        let mut out = String::new();
        let mut in_vars = false;
        for line in head.lines() {
            if line == "vars:" {
                in_vars = true;
                out.push_str("vars:\n");
                for (k, v) in &set {
                    writeln!(out, "  {k}: {v:?}").unwrap();
                }
                continue;
            }
            in_vars &= line.starts_with(' ');
            let key = line.trim_start().split(':').next().unwrap_or("");
            if in_vars && set.iter().any(|(k, _)| *k == key) {
                continue; // replaced above
            }
            writeln!(out, "{line}").unwrap();
        }
        out.push_str("policy:\n  order: id\n  canary: false\n  soak: 2s\n  stable_for: 2s\n  node_timeout: 60s\n  poll_interval: 250ms\n");
        std::fs::write(self.manifest(), out).unwrap();
    }

    fn container_id(&self, n: u8) -> String {
        inspect(&self.container(n), "{{.Id}}")
    }

    fn image_of(&self, n: u8) -> String {
        inspect(&self.container(n), "{{.Config.Image}}")
    }

    /// Tags `image` as `repo:TO_TAG` for this test only (removed on drop).
    fn tag_as(&mut self, image: &str, repo: &str) {
        let tag = format!("{repo}:{TO_TAG}");
        let o = Command::new("docker")
            .args(["tag", image, &tag])
            .output()
            .unwrap();
        assert!(o.status.success(), "docker tag: {}", text(&o));
        self.tags.push(tag);
    }

    fn env_file(&self) -> (String, u32) {
        let path = self.dir.path().join(".env");
        (
            std::fs::read_to_string(&path).unwrap(),
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        )
    }
}

/// The brain's events of one kind for one node, as (index, event).
fn of(events: &[Value], kind: &str, detail_prefix: &str) -> Vec<(usize, u64)> {
    events
        .iter()
        .enumerate()
        .filter(|(_, e)| {
            e["kind"] == kind
                && e["detail"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with(detail_prefix)
        })
        .map(|(i, e)| (i, e["node"].as_u64().unwrap_or(0)))
        .collect()
}

/// A running `wkctl upgrade --json`, its event lines read on a thread.
struct Run {
    child: std::process::Child,
    rx: mpsc::Receiver<String>,
    lines: Vec<String>,
}

impl Run {
    fn spawn(p: &Project, args: &[&str]) -> Run {
        let mut child = wkctl_cmd(p, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn wkctl");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Run {
            child,
            rx,
            lines: Vec::new(),
        }
    }

    fn wait_for(&mut self, what: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = self.rx.recv_timeout(left) else {
                panic!("no {what}; lines:\n{}", self.lines.join("\n"));
            };
            self.lines.push(line.clone());
            if serde_json::from_str::<Value>(&line).is_ok_and(|v| pred(&v)) {
                return;
            }
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The whole path an operator takes: `init --from-compose` on the compose project, `check`
/// on the manifest as written, `upgrade`, killed with SIGKILL while `docker-compose up -d`
/// recreates 1002, `--resume`; then `doctor` on the containers.
#[test]
fn init_check_upgrade_kill9_resume_and_doctor_on_real_containers() {
    if docker_ready().is_none() {
        return;
    }
    let p = Project::up();
    let before: Vec<String> = (1..=3).map(|n| p.container_id(n)).collect();
    let settled_at = p.events().len();

    // init: the manifest works as written (the aliases nodeN.wk.local resolve only inside
    // the compose network; the API ports are published on 127.0.0.1, so those are used).
    let written = p.init();
    assert!(!written.contains("# CHANGE:"), "{written}");
    let m = wkctl::manifest::parse(&written, &p.manifest()).expect("the manifest loads");
    assert_eq!(m.nodes.len(), 3);
    for (i, n) in m.nodes.iter().enumerate() {
        assert_eq!(n.id, 1001 + i as u64);
        assert_eq!(n.host, "127.0.0.1");
        assert_eq!(n.api, format!("http://{}", p.api[i]));
    }
    for needle in [
        "image: wukongim/wukongim",
        "image_env: WK_IMAGE_1001",
        "image_env: WK_IMAGE_1003",
        "data_dir: wukongim2_data",
        "version: v2.0.10-20241221",
    ] {
        assert!(written.contains(needle), "no `{needle}` in\n{written}");
    }
    let o = wkctl(&p, &["check", "--to", TO, "-m", &p.manifest_arg()]);
    assert!(
        o.status.success(),
        "check on the manifest as written: {}",
        text(&o)
    );

    p.tune(&[]);
    // kill -9 while `up -d` recreates 1002
    let mut run = Run::spawn(
        &p,
        &[
            "upgrade",
            "--to",
            TO,
            "--yes",
            "--json",
            "-m",
            &p.manifest_arg(),
        ],
    );
    run.wait_for("the start of 1002", Duration::from_mins(2), |v| {
        v["type"] == "step_started" && v["data"]["node"] == 1002 && v["data"]["step"] == "start"
    });
    run.child.kill().expect("SIGKILL wkctl"); // std's kill is SIGKILL
    let _ = run.child.wait();
    let killed_lines = run.lines.join("\n");
    drop(run);
    // The killed run's team lock is still there: a plain resume is refused, naming it.
    let o = wkctl(
        &p,
        &[
            "upgrade",
            "--to",
            TO,
            "--yes",
            "--resume",
            "-m",
            &p.manifest_arg(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("another wkctl run holds"), "{}", text(&o));
    assert!(p.dir.path().join("team.lock").exists(), "left alone");
    let o = wkctl(
        &p,
        &[
            "upgrade",
            "--to",
            TO,
            "--yes",
            "--resume",
            "--break-lock",
            "-m",
            &p.manifest_arg(),
        ],
    );
    assert!(
        o.status.success(),
        "resume after kill -9: {}\nfirst run:\n{killed_lines}",
        text(&o)
    );

    // Each container now runs the new image and was recreated once.
    for n in 1..=3u8 {
        assert_eq!(p.image_of(n), format!("wukongim/wukongim:{TO_TAG}"));
        assert_ne!(
            p.container_id(n),
            before[usize::from(n) - 1],
            "node {n} recreated"
        );
        let v: Value = serde_json::from_str(&get(&p.api[usize::from(n) - 1], "/varz").1).unwrap();
        assert_eq!(v["version"], TO_TAG);
    }
    let events = p.events();
    let after = &events[settled_at..];
    let starts = of(after, "ctl", "agent start");
    let stops = of(after, "ctl", "agent SIGTERM");
    assert_eq!(
        starts.iter().map(|s| s.1).collect::<Vec<_>>(),
        [1001, 1002, 1003],
        "one process start per node, 1001 first: {starts:?}"
    );
    assert_eq!(
        stops.iter().map(|s| s.1).collect::<Vec<_>>(),
        [1001, 1002, 1003]
    );
    for i in 0..3 {
        assert!(stops[i].0 < starts[i].0, "node stopped before it started");
        if i + 1 < 3 {
            assert!(
                starts[i].0 < stops[i + 1].0,
                "one node at a time: {stops:?} {starts:?}"
            );
        }
    }
    crate::harness::rollout_was_safe(after).unwrap();

    // .env: the three pins, the project's own lines, and its mode.
    let (env, mode) = p.env_file();
    assert_eq!(mode, 0o600, ".env keeps its mode");
    for id in 1001..=1003 {
        assert!(
            env.contains(&format!("WK_IMAGE_{id}=wukongim/wukongim:{TO_TAG}")),
            "{env}"
        );
    }
    assert!(
        env.contains(&format!("COMPOSE_PROJECT_NAME={}", p.name)),
        "{env}"
    );
    // Backups: taken after each stop, holding the node's real files.
    let backups: Vec<PathBuf> = std::fs::read_dir(p.dir.path().join("backups"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(backups.len(), 3, "{backups:?}");
    let one = backups
        .iter()
        .find(|b| b.to_string_lossy().contains("wk-1001-"))
        .unwrap();
    let list = Command::new("tar").arg("tzf").arg(one).output().unwrap();
    assert!(
        String::from_utf8_lossy(&list.stdout).contains("wukongim1_data/logs/wukongim.log"),
        "{}",
        String::from_utf8_lossy(&list.stdout)
    );

    // doctor: logs from `docker-compose logs`, settings from inside the busybox container,
    // and a `docker network disconnect` in the network matrix.
    let c3 = p.container(3);
    docker(&["network", "disconnect", &p.network(), &c3]);
    p.wait("1003 cut off", Duration::from_mins(1), |p| {
        p.node(1003)["online"] == false
    });
    let o = wkctl(&p, &["doctor", "--json", "-m", &p.manifest_arg()]);
    let report: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("doctor --json: {e}: {}", text(&o)));
    docker(&[
        "network",
        "connect",
        "--alias",
        "node3.wk.local",
        &p.network(),
        &c3,
    ]);
    let links = report["network"].as_array().expect("a network matrix");
    let reach = |from: u64, to: u64, port: &str| {
        links
            .iter()
            .find(|l| l["from"] == from && l["to"] == to && l["port"] == port)
            .map_or_else(
                || panic!("no link {from}->{to} {port}: {links:?}"),
                |l| l["reach"]["state"].as_str().unwrap_or("").to_string(),
            )
    };
    assert_eq!(reach(1001, 1002, "cluster"), "ok", "{links:?}");
    assert_eq!(reach(1002, 1001, "api"), "ok", "{links:?}");
    assert_eq!(reach(1001, 1003, "cluster"), "unreachable", "{links:?}");
    assert_eq!(reach(1002, 1003, "api"), "unreachable", "{links:?}");
    assert_ne!(reach(1003, 1001, "cluster"), "ok", "{links:?}");
    let problems = report["problems"].as_array().cloned().unwrap_or_default();
    for n in [1001, 1002] {
        assert!(
            !problems
                .iter()
                .any(|x| x["node"] == n && (x["step"] == "logs" || x["step"] == "config")),
            "node {n}: {problems:?}"
        );
    }
    let settings = report["settings"].to_string();
    assert!(
        settings.contains("node1.wk.local"),
        "settings read inside the container: {settings}"
    );
}

/// Air-gapped sites: a target image that is on the host is used without a registry (the
/// test above), one that is not makes `prepare` fail before any stop. Then an image whose
/// node crash-loops: the run stops at 1001 and the next containers are untouched; `doctor`
/// finds the crash in `docker-compose logs`.
#[test]
fn missing_image_refused_before_any_stop_and_a_crash_loop_stops_the_run() {
    if docker_ready().is_none() {
        return;
    }
    let mut p = Project::up();
    let before: Vec<String> = (1..=3).map(|n| p.container_id(n)).collect();
    p.init();
    let missing = format!("wkmissing{}/wukongim", std::process::id());
    p.tune(&[("image", &missing)]);
    let settled_at = p.events().len();
    let o = wkctl(
        &p,
        &["upgrade", "--to", TO, "--yes", "-m", &p.manifest_arg()],
    );
    assert!(!o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("prepare")
            && out.contains(&format!("{missing}:{TO_TAG}"))
            && out.contains("docker load"),
        "{out}"
    );
    for n in 1..=3u8 {
        assert_eq!(
            p.container_id(n),
            before[usize::from(n) - 1],
            "node {n} untouched"
        );
        assert_eq!(p.image_of(n), OLD);
    }
    assert!(
        of(&p.events()[settled_at..], "ctl", "agent SIGTERM").is_empty(),
        "nothing was stopped"
    );
    let (env, mode) = p.env_file();
    assert!(!env.contains("WK_IMAGE_"), "{env}");
    assert_eq!(mode, 0o600);

    // A crash-looping build of the target: the run stops at 1001.
    let crash = format!("wkcrash{}/wukongim", std::process::id());
    p.tag_as(CRASH, &crash);
    p.init_again_with(&[("image", &crash)]);
    let o = wkctl(&p, &["upgrade", "--discard", "-m", &p.manifest_arg()]);
    assert!(o.status.success(), "discard the refused run: {}", text(&o));
    let o = wkctl(
        &p,
        &[
            "upgrade",
            "--to",
            TO,
            "--yes",
            "--json",
            "-m",
            &p.manifest_arg(),
        ],
    );
    assert!(!o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|v| v["type"] == "node_failed" && v["data"]["node"] == 1001),
        "{}",
        text(&o)
    );
    assert_eq!(p.image_of(1), format!("{crash}:{TO_TAG}"));
    for n in 2..=3u8 {
        assert_eq!(
            p.container_id(n),
            before[usize::from(n) - 1],
            "node {n} untouched"
        );
        assert_eq!(p.image_of(n), OLD, "node {n}'s image unchanged");
    }
    let o = wkctl(&p, &["doctor", "--json", "-m", &p.manifest_arg()]);
    let report: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("doctor --json: {e}: {}", text(&o)));
    let logs = report["logs"].to_string();
    assert!(
        logs.contains("1001") && logs.contains("apply slot logs failed"),
        "the crash is found in docker-compose logs: {logs}\n{report}"
    );
}

impl Project {
    /// Rewrites the manifest from the compose file again, tuned with `vars`.
    fn init_again_with(&self, vars: &[(&str, &str)]) {
        std::fs::remove_file(self.manifest()).unwrap();
        self.init();
        self.tune(vars);
    }
}

fn docker(args: &[&str]) {
    let o = Command::new("docker").args(args).output().unwrap();
    assert!(o.status.success(), "docker {args:?}: {}", text(&o));
}

/// `wkctl demo --docker`: the same upgrade on its own compose project, which it removes.
#[test]
fn demo_docker_upgrades_real_containers_and_cleans_up() {
    if docker_ready().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_wkctl"))
        .args(["demo", "--docker", "--speed", "4"])
        .env("TMPDIR", tmp.path())
        .env("NO_COLOR", "1")
        .env_remove("WKCTL_MANIFEST")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let o = child.wait_with_output().unwrap();
    let project = format!("wkctldemo{pid}");
    let left = Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("name={project}_")])
        .output()
        .unwrap();
    let nets = Command::new("docker")
        .args([
            "network",
            "ls",
            "-q",
            "--filter",
            &format!("name={project}_"),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    for id in 1001..=1003 {
        assert!(
            err.contains(&format!("node {id}: ready on {TO_TAG}")),
            "{}",
            text(&o)
        );
    }
    let out = String::from_utf8_lossy(&o.stdout);
    let after = out.rsplit_once("\nafter").map_or("", |(_, a)| a);
    let rows = after
        .lines()
        .filter(|l| l.starts_with("100") && l.contains(TO_TAG))
        .count();
    assert_eq!(rows, 3, "every node on the target after: {}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("playbook `docker-compose`"),
        "{}",
        text(&o)
    );
    assert!(left.stdout.is_empty(), "containers left: {}", text(&left));
    assert!(nets.stdout.is_empty(), "networks left: {}", text(&nets));
}
