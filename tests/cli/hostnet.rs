//! Issue 14 leftovers and issue 15 §5 without Docker: the host-side `netcheck` of the
//! `systemd` and `binary-daemon` playbooks runs in POSIX `sh` without bash (busybox `nc`,
//! else `curl`), the compose `prepare` uses an image already on the host (air-gapped sites)
//! without pulling, `wkctl demo --docker` says what is missing, and `init --from-compose`
//! reads several compose files, one per host.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use wkctl::manifest::Node;
use wkctl::playbook::{self, StepKind};

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var("PATH")
        .ok()?
        .split(':')
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file())
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn rendered(name: &str, kind: StepKind, extra: &[(&str, &str)]) -> String {
    let pb = playbook::load(name, Path::new(".")).unwrap();
    let node = Node {
        id: 1001,
        host: "127.0.0.1".into(),
        api: "http://127.0.0.1:5001".into(),
        version: None,
        vars: BTreeMap::new(),
    };
    let mut vars = playbook::node_vars(&pb, &BTreeMap::new(), &node, None, "v2.1.2-20250120");
    for (k, v) in extra {
        vars.insert((*k).to_string(), (*v).to_string());
    }
    playbook::render(pb.step(kind).unwrap(), &vars).unwrap()
}

/// A directory holding only the named tools (links), to run a step with nothing else.
fn toolbox(dir: &Path, tools: &[(&str, &Path)]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for (name, target) in tools {
        std::os::unix::fs::symlink(target, dir.join(name)).unwrap();
    }
    dir.to_path_buf()
}

fn run_in(path: &Path, busybox: &Path, cmd: &str) -> Output {
    Command::new(busybox)
        .args(["sh", "-c", cmd])
        .env_clear()
        .env("PATH", path)
        .output()
        .unwrap()
}

#[test]
fn host_netcheck_needs_no_bash_busybox_nc_or_curl_suffice() {
    let bb = which("busybox").expect("busybox is needed (Debian package `busybox`)");
    let tmp = tempfile::tempdir().unwrap();
    let only_bb = toolbox(
        &tmp.path().join("bb"),
        &[("sh", &bb), ("nc", &bb), ("timeout", &bb), ("grep", &bb)],
    );
    let mut boxes = vec![("busybox nc", only_bb)];
    if let Some(curl) = which("curl") {
        boxes.push((
            "curl",
            toolbox(
                &tmp.path().join("curl"),
                &[("sh", &bb), ("grep", &bb), ("curl", &curl)],
            ),
        ));
    }
    let none = toolbox(&tmp.path().join("none"), &[("sh", &bb)]);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap().port().to_string();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    for pb in ["systemd", "binary-daemon"] {
        let step = |port: &str| {
            rendered(
                pb,
                StepKind::Netcheck,
                &[("peer_host", "127.0.0.1"), ("peer_port", port)],
            )
        };
        assert!(!step(&open).contains("bash"), "{pb}: {}", step(&open));
        for (what, path) in &boxes {
            let o = run_in(path, &bb, &step(&open));
            assert!(
                o.status.success(),
                "{pb} with {what}, open port: {}",
                text(&o)
            );
            let o = run_in(path, &bb, &step(&closed));
            assert_eq!(
                o.status.code(),
                Some(1),
                "{pb} with {what}, closed: {}",
                text(&o)
            );
        }
        let o = run_in(&none, &bb, &step(&open));
        assert_eq!(o.status.code(), Some(2), "{pb} without tools: {}", text(&o));
        assert!(String::from_utf8_lossy(&o.stderr).contains("needs nc or curl"));
    }
    drop(listener);
}

#[test]
fn compose_prepare_uses_an_image_already_on_the_host_without_a_registry() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    // a `docker` that has the image and no registry: any pull fails
    let fake = tmp.path().join("bin");
    std::fs::create_dir_all(&fake).unwrap();
    std::fs::write(
        fake.join("docker"),
        "#!/bin/sh\necho \"docker $*\" >> \"$LOG\"\ncase \"$1 $2\" in\n'image inspect') [ \"$3\" = wukongim/wukongim:v2.1.2-20250120 ] ;;\npull*) echo 'Error response from daemon: Get \"https://registry-1.docker.io/v2/\": dial tcp: lookup registry-1.docker.io: no such host' >&2; exit 1 ;;\nesac\n",
    )
    .unwrap();
    std::fs::set_permissions(
        fake.join("docker"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let prepare = rendered("docker-compose", StepKind::Prepare, &[]);
    let run = |image_step: &str| {
        Command::new("sh")
            .args(["-c", image_step])
            .env(
                "PATH",
                format!("{}:{}", fake.display(), std::env::var("PATH").unwrap()),
            )
            .env("LOG", &log)
            .output()
            .unwrap()
    };
    let o = run(&prepare);
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("not pulled"));
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(!calls.contains("docker pull"), "{calls}");
    // absent: the pull is tried and the refusal says what to do
    let other = rendered(
        "docker-compose",
        StepKind::Prepare,
        &[("image", "mirror/wk")],
    );
    let o = run(&other);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("mirror/wk:v2.1.2-20250120 is not on this host")
            && err.contains("docker load"),
        "{err}"
    );
}

#[test]
fn demo_docker_says_what_is_missing_without_docker() {
    let tmp = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_wkctl"))
        .args(["demo", "--docker"])
        .env("PATH", tmp.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(!o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("needs Docker") && err.contains("docker info") && err.contains("hint:"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

/// Several compose files, one per host (upstream's docs multi-node layout): one node per
/// file, each with its own `compose_dir`, read from the CLI.
#[test]
fn init_from_several_compose_files_one_per_host() {
    let tmp = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = vec!["init".into()];
    for (id, ip) in [
        (1001, "10.0.0.11"),
        (1002, "10.0.0.12"),
        (1003, "10.0.0.13"),
    ] {
        let dir = tmp.path().join(format!("host{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("docker-compose.yaml");
        std::fs::write(
            &file,
            format!(
                "version: '3.7'\nservices:\n  wukongim:\n    image: ${{WK_IMAGE:-registry.cn-shanghai.aliyuncs.com/wukongim/wukongim:v2.2.4-20260313}}\n    restart: always\n    environment:\n      - WK_CLUSTER_NODEID={id}\n      - WK_CLUSTER_APIURL=http://{ip}:5001\n      - WK_CLUSTER_SERVERADDR={ip}:11110\n      - WK_CLUSTER_INITNODES=1001@10.0.0.11:11110 1002@10.0.0.12:11110 1003@10.0.0.13:11110\n    ports: ['5001:5001', '11110:11110']\n    volumes: ['./wukongim_data:/root/wukongim']\n"
            ),
        )
        .unwrap();
        args.push("--from-compose".into());
        args.push(file.display().to_string());
    }
    // host 1003's .env already pins a newer build: init reads it, as Compose does
    std::fs::write(
        tmp.path().join("host1003/.env"),
        "WK_IMAGE=registry.cn-shanghai.aliyuncs.com/wukongim/wukongim:v2.2.5-20260422\n",
    )
    .unwrap();
    let out = tmp.path().join("cluster.yaml");
    args.extend(["-o".into(), out.display().to_string()]);
    let o = Command::new(env!("CARGO_BIN_EXE_wkctl"))
        .args(&args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let written = std::fs::read_to_string(&out).unwrap();
    let m = wkctl::manifest::parse(&written, &out).unwrap();
    let ids: Vec<u64> = m.nodes.iter().map(|n| n.id).collect();
    assert_eq!(ids, [1001, 1002, 1003]);
    for (n, ip) in m.nodes.iter().zip(["10.0.0.11", "10.0.0.12", "10.0.0.13"]) {
        assert_eq!(n.host, ip);
        assert_eq!(n.api, format!("http://{ip}:5001"));
        let dir = std::fs::canonicalize(tmp.path().join(format!("host{}", n.id))).unwrap();
        assert_eq!(
            n.vars.get("compose_dir").map(String::as_str),
            Some(dir.display().to_string().as_str()),
            "each node's own compose_dir:\n{written}"
        );
    }
    assert_eq!(
        m.nodes[2]
            .version
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("v2.2.5-20260422"),
        "{written}"
    );
    assert_eq!(
        m.nodes[0]
            .version
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("v2.2.4-20260313")
    );
    assert_eq!(
        m.vars.get("image_env").map(String::as_str),
        Some("WK_IMAGE")
    );
    assert_eq!(
        m.vars.get("data_dir").map(String::as_str),
        Some("wukongim_data")
    );
    assert!(!written.contains("# CHANGE:"), "{written}");
    // a node id in two files is refused, naming both
    let mut twice = args.clone();
    let first = twice[2].clone();
    twice.insert(3, "--from-compose".into());
    twice.insert(4, first);
    twice.push("--force".into());
    let o = Command::new(env!("CARGO_BIN_EXE_wkctl"))
        .args(&twice)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("node id 1001 is in"));
}
