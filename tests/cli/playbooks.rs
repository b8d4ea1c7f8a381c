//! The built-in playbooks as shell (issue 14 §4): every rendered step passes `sh -n` and
//! shellcheck, and each playbook runs end to end against small fakes of `docker`,
//! `docker-compose`, `kubectl`, `systemctl` and `curl` put first on `PATH`
//! (`tests/fixtures/fakes/`). The fakes record argv and reproduce a failed pull, the
//! NotFound race of `kubectl wait` and a stale pid; steps that run inside the official
//! (Alpine) image are run by the fakes under busybox `sh` with busybox applets only.
//!
//! Steps are rendered with the library's own `playbook::render` (the same code the plan
//! uses) and run in the order DESIGN §4 gives: prepare → stop → backup → install → start.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use wkctl::manifest::Node;
use wkctl::playbook::{self, StepKind};

const FROM: &str = "v2.2.4-20260313";
const TO: &str = "v2.2.5-20260422";

fn fakes_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fakes")
}

/// A scratch directory with the fakes' state and log.
struct Bench {
    dir: PathBuf,
    busybox: PathBuf,
}

impl Bench {
    fn new(tag: &str) -> Bench {
        let dir = std::env::temp_dir().join(format!(
            "wkctl-pb-{tag}-{}-{}",
            std::process::id(),
            wkctl_now()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("state")).unwrap();
        // busybox applets only, as in the Alpine image
        let busybox = dir.join("busybox-bin");
        std::fs::create_dir_all(&busybox).unwrap();
        let bb = which("busybox")
            .expect("busybox is needed (Debian package `busybox`, installed by .ci/run)");
        for applet in [
            "busybox", "sh", "tr", "grep", "cat", "nc", "timeout", "sleep",
        ] {
            std::os::unix::fs::symlink(&bb, busybox.join(applet)).unwrap();
        }
        // /proc/1/environ of the chart's container: NUL-separated, exported by its start command
        std::fs::write(
            dir.join("environ"),
            "PATH=/usr/bin\0WK_CLUSTER_NODEID=2\0WK_CLUSTER_SEED=1@helm-wukongim-0.helm-wukongim-headless:11110\0HOME=/root\0",
        )
        .unwrap();
        Bench { dir, busybox }
    }

    fn log(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn state(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join("state").join(name))
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    /// Runs a rendered step with `sh -c` in `cwd`, the fakes first on `PATH`.
    fn run(&self, cmd: &str, cwd: &Path, env: &[(&str, &str)]) -> Output {
        let path = format!(
            "{}:{}",
            fakes_dir().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(cmd)
            .current_dir(cwd)
            .env("PATH", path)
            .env("FAKE_LOG", self.dir.join("log"))
            .env("FAKE_STATE", self.dir.join("state"))
            .env("FAKE_ENVIRON", self.dir.join("environ"))
            .env("FAKE_BUSYBOX", &self.busybox)
            .env_remove("FAKE_PULL_FAIL")
            .env_remove("FAKE_COMPOSE_PLUGIN")
            .env_remove("FAKE_NOTFOUND");
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn wkctl_now() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var("PATH")
        .ok()?
        .split(':')
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file())
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Every step of a built-in playbook rendered for one node.
fn render(
    name: &str,
    cluster: &[(&str, &str)],
    node_vars: &[(&str, &str)],
) -> BTreeMap<StepKind, String> {
    let pb = playbook::load(name, Path::new(".")).unwrap();
    let node = Node {
        id: 1001,
        host: "10.0.0.11".into(),
        api: "http://10.0.0.11:5001".into(),
        version: None,
        vars: node_vars
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect(),
    };
    let cluster: BTreeMap<String, String> = cluster
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    let mut vars = playbook::node_vars(&pb, &cluster, &node, Some(FROM), TO);
    vars.insert("peer".into(), "10.0.0.12:11110".into());
    vars.insert("peer_host".into(), "10.0.0.12".into());
    vars.insert("peer_port".into(), "11110".into());
    pb.steps
        .iter()
        .map(|(k, tpl)| {
            let cmd = playbook::render(tpl, &vars)
                .unwrap_or_else(|e| panic!("{name} {}: {e}", k.as_str()));
            (*k, cmd)
        })
        .collect()
}

fn step(steps: &BTreeMap<StepKind, String>, k: StepKind) -> &str {
    steps
        .get(&k)
        .map_or_else(|| panic!("no `{}` step", k.as_str()), String::as_str)
}

// ---- sh -n and shellcheck -------------------------------------------------------------

#[test]
fn every_rendered_step_of_every_builtin_passes_sh_n_and_shellcheck() {
    let shellcheck = which("shellcheck")
        .expect("shellcheck is needed (Debian package `shellcheck`, installed by .ci/run)");
    let dir = std::env::temp_dir().join(format!("wkctl-pb-lint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut checked = 0;
    for (name, _) in playbook::BUILTIN {
        let node_vars: &[(&str, &str)] = if *name == "kubernetes" {
            &[("pod", "helm-wukongim-0")]
        } else {
            &[]
        };
        for (kind, cmd) in render(name, &[], node_vars) {
            let o = Command::new("sh")
                .args(["-n", "-c", &cmd])
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "{name} {}: sh -n: {}\n{cmd}",
                kind.as_str(),
                text(&o)
            );
            let file = dir.join(format!("{name}-{}.sh", kind.as_str()));
            std::fs::write(&file, format!("#!/bin/sh\n{cmd}\n")).unwrap();
            let o = Command::new(&shellcheck)
                .args(["-s", "sh", "-S", "warning"])
                .arg(&file)
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "{name} {}: shellcheck:\n{}\n{cmd}",
                kind.as_str(),
                String::from_utf8_lossy(&o.stdout)
            );
            checked += 1;
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(checked >= 40, "only {checked} steps checked");
}

// ---- docker-compose -------------------------------------------------------------------

fn compose_project(b: &Bench) -> PathBuf {
    let dir = b.dir.join("project");
    std::fs::create_dir_all(dir.join("wukongim1_data/data")).unwrap();
    std::fs::write(dir.join("wukongim1_data/data/pebble"), "data").unwrap();
    std::fs::write(
        dir.join(".env"),
        format!("WK_MANAGERTOKEN=s3cret\nWK_IMAGE=wukongim/wukongim:{FROM}\n"),
    )
    .unwrap();
    std::fs::set_permissions(dir.join(".env"), std::fs::Permissions::from_mode(0o600)).unwrap();
    dir
}

fn compose_steps(b: &Bench, project: &Path, compose: &str) -> BTreeMap<StepKind, String> {
    render(
        "docker-compose",
        &[
            ("compose_dir", &project.display().to_string()),
            ("compose", compose),
            ("data_dir", "wukongim1_data"),
            ("backup_dir", &b.dir.join("backups").display().to_string()),
        ],
        &[("service", "wukongim1")],
    )
}

#[test]
fn docker_compose_a_failed_pull_leaves_the_node_untouched() {
    let b = Bench::new("dc-fail");
    let project = compose_project(&b);
    let steps = compose_steps(&b, &project, "auto");
    let fail = format!("wukongim/wukongim:{TO}");
    let o = b.run(
        step(&steps, StepKind::Prepare),
        &project,
        &[("FAKE_PULL_FAIL", &fail)],
    );
    assert!(!o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("manifest unknown"));
    assert_eq!(
        b.log(),
        [
            format!("docker image inspect {fail}"),
            format!("docker pull {fail}")
        ],
        "only the look-up and the pull ran"
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("docker load"),
        "{}",
        text(&o)
    );
    assert_eq!(b.state("wukongim1"), "", "the service was never stopped");
    let env = std::fs::read_to_string(project.join(".env")).unwrap();
    assert!(env.contains(&format!("WK_IMAGE=wukongim/wukongim:{FROM}")));
    // install refuses to switch to an image that is not there
    let o = b.run(step(&steps, StepKind::Install), &project, &[]);
    assert!(
        !o.status.success() && String::from_utf8_lossy(&o.stderr).contains("prepare"),
        "{}",
        text(&o)
    );
}

fn compose_flow(compose: &str, plugin: bool, tool: &str) {
    let b = Bench::new(&format!("dc-{}", tool.replace(' ', "-")));
    let project = compose_project(&b);
    let steps = compose_steps(&b, &project, compose);
    let env: &[(&str, &str)] = if plugin {
        &[("FAKE_COMPOSE_PLUGIN", "1")]
    } else {
        &[]
    };
    for k in [
        StepKind::Prepare,
        StepKind::Stop,
        StepKind::Backup,
        StepKind::Install,
        StepKind::Start,
    ] {
        let o = b.run(step(&steps, k), &project, env);
        assert!(o.status.success(), "{} failed: {}", k.as_str(), text(&o));
    }
    let log = b.log();
    let pos = |needle: &str| {
        log.iter()
            .position(|l| l.starts_with(needle))
            .unwrap_or_else(|| panic!("`{needle}` not in {log:?}"))
    };
    // the download happens while the node still serves: before the stop
    assert!(
        pos(&format!("docker pull wukongim/wukongim:{TO}"))
            < pos(&format!("{tool} stop -t 30 wukongim1"))
    );
    assert!(
        pos(&format!("{tool} stop -t 30 wukongim1"))
            < pos(&format!("{tool} up -d --no-deps wukongim1"))
    );
    assert_eq!(
        b.state("wukongim1"),
        format!("running wukongim/wukongim:{TO}")
    );
    // .env: new tag, token kept, mode 0600 kept
    let env_text = std::fs::read_to_string(project.join(".env")).unwrap();
    assert!(env_text.contains("WK_MANAGERTOKEN=s3cret"), "{env_text}");
    assert!(
        env_text.contains(&format!("WK_IMAGE=wukongim/wukongim:{TO}")),
        "{env_text}"
    );
    assert!(!env_text.contains(FROM), "{env_text}");
    let mode = std::fs::metadata(project.join(".env"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, ".env mode");
    assert!(!project.join(".env.wkctl").exists());
    // the backup was taken after the stop and holds the data directory
    let backups: Vec<_> = std::fs::read_dir(b.dir.join("backups"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(backups.len(), 1);
    let list = Command::new("tar")
        .arg("tzf")
        .arg(backups[0].path())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&list.stdout).contains("wukongim1_data/data/pebble"));
    // stop and start again are harmless (a resumed run may repeat a step)
    for k in [StepKind::Stop, StepKind::Start] {
        assert!(b.run(step(&steps, k), &project, env).status.success());
    }
    // config runs inside the image under busybox sh and reads /proc/1/environ
    let o = b.run(step(&steps, StepKind::Config), &project, env);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("WK_CLUSTER_NODEID=2") && !out.contains("HOME="),
        "{}",
        text(&o)
    );
    let o = b.run(step(&steps, StepKind::Logs), &project, env);
    assert!(String::from_utf8_lossy(&o.stdout).contains("apply slot logs failed"));
}

#[test]
fn docker_compose_runs_with_docker_compose_v1() {
    compose_flow("auto", false, "docker-compose");
}

#[test]
fn docker_compose_runs_with_the_compose_plugin() {
    compose_flow("auto", true, "docker compose");
    compose_flow("docker compose", true, "docker compose");
}

#[test]
fn docker_compose_rollback_puts_the_old_tag_back() {
    let b = Bench::new("dc-rb");
    let project = compose_project(&b);
    let steps = compose_steps(&b, &project, "docker-compose");
    let o = b.run(step(&steps, StepKind::Rollback), &project, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        b.state("wukongim1"),
        format!("running wukongim/wukongim:{FROM}")
    );
    let mode = std::fs::metadata(project.join(".env"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
}

// ---- kubernetes ---------------------------------------------------------------------

fn k8s_steps(preset: &str) -> BTreeMap<StepKind, String> {
    render(
        "kubernetes",
        &[("preset", preset)],
        &[("pod", "helm-wukongim-1")],
    )
}

#[test]
fn kubernetes_flow_survives_the_notfound_race() {
    let b = Bench::new("k8s");
    let steps = k8s_steps("chart-1.0.0");
    let cwd = b.dir.clone();
    let env = [("FAKE_NOTFOUND", "2")];
    for k in [
        StepKind::Prepare,
        StepKind::Stop,
        StepKind::Backup,
        StepKind::Install,
        StepKind::Start,
    ] {
        let o = b.run(step(&steps, k), &cwd, &env);
        assert!(o.status.success(), "{} failed: {}", k.as_str(), text(&o));
    }
    let log = b.log();
    let img = format!("registry.cn-shanghai.aliyuncs.com/wukongim/wukongim:{TO}");
    let pos = |needle: &str| {
        log.iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("`{needle}` not in {log:?}"))
    };
    // the pre-pull pod runs on the pod's Kubernetes node, before anything is stopped
    assert!(
        log.iter().any(
            |l| l.contains(&format!("run wkctl-pull-1001 --image={img}"))
                && l.contains("k8s-node-2")
        ),
        "{log:?}"
    );
    assert!(pos("run wkctl-pull-1001") < pos("set image"));
    // chart 1.0.0's container is `wukoingim` [sic]
    assert!(
        log.iter().any(|l| l.contains(&format!(
            "set image statefulset/helm-wukongim wukoingim={img}"
        ))),
        "{log:?}"
    );
    assert!(pos("set image") < pos("delete pod helm-wukongim-1"));
    // two NotFound answers, then Ready: three waits
    assert_eq!(
        log.iter()
            .filter(|l| l.contains("wait --for=condition=Ready pod/helm-wukongim-1"))
            .count(),
        3,
        "{log:?}"
    );
    assert_eq!(b.state("sts-image"), img);
}

#[test]
fn kubernetes_a_failed_pull_stops_before_touching_the_pod() {
    let b = Bench::new("k8s-fail");
    let steps = k8s_steps("release");
    let img = format!("registry.cn-shanghai.aliyuncs.com/wukongim/wukongim:{TO}");
    let o = b.run(
        step(&steps, StepKind::Prepare),
        &b.dir.clone(),
        &[("FAKE_PULL_FAIL", &img)],
    );
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("ErrImagePull"),
        "{}",
        text(&o)
    );
    let log = b.log();
    assert!(
        !log.iter()
            .any(|l| l.contains("set image") || l.contains("delete pod helm-wukongim")),
        "{log:?}"
    );
    // the pull pod is cleaned up
    assert!(
        log.last().unwrap().contains("delete pod wkctl-pull-1001"),
        "{log:?}"
    );
}

#[test]
fn kubernetes_in_image_steps_run_under_busybox() {
    let b = Bench::new("k8s-bb");
    let steps = k8s_steps("chart-2.0.4");
    let cwd = b.dir.clone();
    let o = b.run(step(&steps, StepKind::Config), &cwd, &[]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.contains("WK_CLUSTER_SEED=1@helm-wukongim-0"),
        "{}",
        text(&o)
    );
    assert!(
        b.log()[0].contains("exec helm-wukongim-1 -c wukongim -- sh -c"),
        "{:?}",
        b.log()
    );
    // netcheck: a listening peer is reachable, a closed port is not (busybox nc)
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let net = |port: u16| {
        let tpl = playbook::load("kubernetes", Path::new(".")).unwrap();
        let node = Node {
            id: 1001,
            host: "h".into(),
            api: "http://h:5001".into(),
            version: None,
            vars: [("pod".to_string(), "helm-wukongim-1".to_string())].into(),
        };
        let mut vars = playbook::node_vars(&tpl, &BTreeMap::new(), &node, None, TO);
        vars.insert("peer_host".into(), "127.0.0.1".into());
        vars.insert("peer_port".into(), port.to_string());
        playbook::render(tpl.step(StepKind::Netcheck).unwrap(), &vars).unwrap()
    };
    let o = b.run(&net(port), &cwd, &[]);
    assert!(o.status.success(), "reachable: {}", text(&o));
    drop(listener);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = b.run(&net(closed), &cwd, &[]);
    assert!(!o.status.success(), "closed: {}", text(&o));
}

// ---- systemd --------------------------------------------------------------------------

#[test]
fn systemd_prepares_before_the_stop_and_checks_the_checksum() {
    let b = Bench::new("sd");
    let root = b.dir.join("root");
    std::fs::create_dir_all(root.join("data")).unwrap();
    std::fs::write(root.join("data/db"), "x").unwrap();
    let bin = b.dir.join("wukongim");
    std::fs::write(&bin, "old binary\n").unwrap();
    let url =
        format!("https://github.com/WuKongIM/WuKongIM/releases/download/{TO}/wukongim-linux-amd64");
    let good = sha256_hex(format!("fake wukongim {url}\n").as_bytes());
    let steps_with = |sha: &str| {
        render(
            "systemd",
            &[
                ("bin_path", &bin.display().to_string()),
                ("root_dir", &root.display().to_string()),
                ("backup_dir", &b.dir.join("backups").display().to_string()),
                ("sha256", sha),
            ],
            &[],
        )
    };
    // a wrong checksum: prepare fails, nothing is left behind, the unit is untouched
    let bad = steps_with(&"0".repeat(64));
    let o = b.run(step(&bad, StepKind::Prepare), &b.dir.clone(), &[]);
    assert!(
        !o.status.success() && String::from_utf8_lossy(&o.stderr).contains("checksum"),
        "{}",
        text(&o)
    );
    assert!(!b.dir.join(format!("wukongim.{TO}.new")).exists());
    assert!(!b.log().iter().any(|l| l.starts_with("systemctl")));
    // a failed download: the same
    let o = b.run(
        step(&steps_with(&good), StepKind::Prepare),
        &b.dir.clone(),
        &[("FAKE_PULL_FAIL", TO)],
    );
    assert!(!o.status.success());
    // the real flow
    let steps = steps_with(&good);
    for k in [
        StepKind::Prepare,
        StepKind::Stop,
        StepKind::Backup,
        StepKind::Install,
        StepKind::Start,
    ] {
        let o = b.run(step(&steps, k), &b.dir.clone(), &[]);
        assert!(o.status.success(), "{} failed: {}", k.as_str(), text(&o));
    }
    assert_eq!(
        std::fs::read_to_string(&bin).unwrap(),
        format!("fake wukongim {url}\n")
    );
    assert_eq!(
        std::fs::read_to_string(b.dir.join(format!("wukongim.{FROM}"))).unwrap(),
        "old binary\n"
    );
    let log = b.log();
    let curl = log.iter().position(|l| l.starts_with("curl")).unwrap();
    let stop = log
        .iter()
        .position(|l| l == "systemctl stop wukongim")
        .unwrap();
    assert!(curl < stop, "{log:?}");
    assert_eq!(b.state("unit"), "active");
    let o = b.run(step(&steps, StepKind::Rollback), &b.dir.clone(), &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(&bin).unwrap(), "old binary\n");
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    use std::fmt::Write as _;
    sha2::Sha256::digest(data)
        .iter()
        .fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

// ---- binary-daemon --------------------------------------------------------------------

fn daemon_pids(work: &Path) -> Vec<u32> {
    let want = std::fs::canonicalize(work).unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok();
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            cwd.as_deref() == Some(want.as_path())
                && String::from_utf8_lossy(&cmd).contains("./wukongim\0--config")
        })
        .collect()
}

#[test]
fn binary_daemon_stop_is_safe_with_a_stale_or_reused_pid_and_start_runs_one_instance() {
    let b = Bench::new("bd");
    let work = b.dir.join("work");
    std::fs::create_dir_all(work.join("wukongimdata/logs")).unwrap();
    std::fs::copy(fakes_dir().join("wukongim"), work.join("wukongim")).unwrap();
    std::fs::write(work.join("wk.yaml"), "cluster: {}\n").unwrap();
    let steps = render(
        "binary-daemon",
        &[
            ("work_dir", &work.display().to_string()),
            ("backup_dir", &b.dir.join("backups").display().to_string()),
            ("stop_wait", "20"),
        ],
        &[],
    );
    // a pid file naming another process (pid reused): stop must not signal it
    let mut other = Command::new("sleep").arg("30").spawn().unwrap();
    std::fs::write(work.join("wukongim.pid"), other.id().to_string()).unwrap();
    let o = b.run(step(&steps, StepKind::Stop), &work, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("not running"),
        "{}",
        text(&o)
    );
    assert!(
        other.try_wait().unwrap().is_none(),
        "the unrelated process was signalled"
    );
    other.kill().unwrap();
    let _ = other.wait();
    // a stale pid file (dead pid): the same
    std::fs::write(work.join("wukongim.pid"), "999999").unwrap();
    assert!(
        b.run(step(&steps, StepKind::Stop), &work, &[])
            .status
            .success()
    );
    // start twice: one instance
    for _ in 0..2 {
        let o = b.run(step(&steps, StepKind::Start), &work, &[]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let pids = daemon_pids(&work);
    assert_eq!(pids.len(), 1, "{pids:?}");
    assert_eq!(
        b.log().iter().filter(|l| *l == "wukongim start").count(),
        1,
        "{:?}",
        b.log()
    );
    // stop stops it, and a second stop is a no-op
    let o = b.run(step(&steps, StepKind::Stop), &work, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(daemon_pids(&work).is_empty());
    assert!(!work.join("wukongim.pid").exists());
    let o = b.run(step(&steps, StepKind::Stop), &work, &[]);
    assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).contains("not running"));
    // backup after the stop, then install refuses without prepare
    assert!(
        b.run(step(&steps, StepKind::Backup), &work, &[])
            .status
            .success()
    );
    assert!(work.join(format!("wukongim.{FROM}")).exists());
    let o = b.run(step(&steps, StepKind::Install), &work, &[]);
    assert!(
        !o.status.success() && String::from_utf8_lossy(&o.stderr).contains("prepare"),
        "{}",
        text(&o)
    );
}
