//! The ecosystem around the commands: completions, man page, JSON Schemas, `init`,
//! logging, environment variables, `--help` examples, `--version`, the CI recipe.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use serde_json::Value;
use wkctl::cli::Cli;
use wkctl::schema::Kind as SchemaKind;

use crate::foundation::wkctl;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// (exit code, stdout, stderr)
fn run(args: &[&str]) -> (i32, String, String) {
    let o = wkctl().args(args).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

fn subcommands() -> Vec<String> {
    let names: Vec<String> = Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    assert!(names.len() >= 11, "{names:?}");
    names
}

#[test]
fn completions_for_every_shell_mention_every_subcommand() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let (code, out, err) = run(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        assert!(out.len() > 500, "{shell}: {out}");
        for sub in subcommands() {
            assert!(out.contains(&sub), "{shell} completion lacks `{sub}`");
        }
    }
    let (code, _, err) = run(&["completions", "tcsh"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn the_man_page_is_roff_and_lists_every_subcommand() {
    let (code, out, err) = run(&["man"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(".TH wkctl"), "{out}");
    assert!(out.contains(".SH SUBCOMMANDS"), "{out}");
    for sub in subcommands() {
        assert!(
            out.contains(&format!("wkctl\\-{sub}")),
            "man page lacks `{sub}`"
        );
    }
}

fn schema(kind: SchemaKind) -> Value {
    serde_json::from_str(&wkctl::schema::render(kind)).unwrap()
}

#[test]
fn committed_schemas_equal_the_generated_ones() {
    for (kind, arg) in [
        (SchemaKind::Manifest, "manifest"),
        (SchemaKind::Playbook, "playbook"),
    ] {
        let (code, out, err) = run(&["schema", arg]);
        assert_eq!(code, 0, "{err}");
        let path = root().join("schemas").join(wkctl::schema::file_name(kind));
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(
            committed,
            out,
            "`{}` is stale: run `cargo run -- schema {arg} > {}`",
            path.display(),
            path.display()
        );
    }
}

fn yaml_to_json(text: &str) -> Value {
    serde_saphyr::from_str::<Value>(text).unwrap()
}

fn errors(kind: SchemaKind, text: &str) -> Vec<String> {
    let validator = jsonschema::validator_for(&schema(kind)).unwrap();
    validator
        .iter_errors(&yaml_to_json(text))
        .map(|e| e.to_string())
        .collect()
}

#[test]
fn the_example_and_every_builtin_playbook_validate() {
    let example = std::fs::read_to_string(root().join("examples/cluster.yaml")).unwrap();
    assert!(example.starts_with(wkctl::commands::init::SCHEMA_LINE));
    assert_eq!(errors(SchemaKind::Manifest, &example), Vec::<String>::new());
    let mut seen = 0;
    for entry in std::fs::read_dir(root().join("playbooks")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            assert_eq!(
                errors(SchemaKind::Playbook, &text),
                Vec::<String>::new(),
                "{}",
                path.display()
            );
            seen += 1;
        }
    }
    assert_eq!(seen, wkctl::playbook::BUILTIN.len());
}

#[test]
fn broken_documents_fail_validation() {
    let example = std::fs::read_to_string(root().join("examples/cluster.yaml")).unwrap();
    let unknown = example.replace(
        "    host: 10.0.0.12\n",
        "    host: 10.0.0.12\n    hots: typo\n",
    );
    assert_ne!(unknown, example);
    let e = errors(SchemaKind::Manifest, &unknown);
    assert!(e.iter().any(|m| m.contains("hots")), "{e:?}");
    let e = errors(
        SchemaKind::Manifest,
        "name: a\nnodes:\n  - { id: 1024, host: a }\n",
    );
    assert_eq!(e.len(), 1, "{e:?}");
    let e = errors(SchemaKind::Manifest, "name: a\nnodes: []\n");
    assert_eq!(e.len(), 1, "{e:?}");
    let e = errors(
        SchemaKind::Playbook,
        "name: p\nsteps: { stop: x, strat: y }\n",
    );
    assert!(!e.is_empty(), "unknown step and missing `start` must fail");
}

fn plan_offline(manifest: &Path) -> (i32, String) {
    let o = wkctl()
        .args(["plan", "--to", "v2.1.2", "--offline", "--json", "-m"])
        .arg(manifest)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

#[test]
fn init_writes_a_valid_starter_and_refuses_to_overwrite() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("cluster.yaml");
    let o = wkctl().current_dir(d.path()).arg("init").output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let m = wkctl::manifest::load(&out).unwrap();
    assert_eq!(m.nodes.len(), 3);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("# "), "the starter is commented");
    assert_eq!(errors(SchemaKind::Manifest, &text), Vec::<String>::new());
    let (code, err) = plan_offline(&out);
    assert_eq!(code, 0, "{err}");

    std::fs::write(&out, "mine\n").unwrap();
    let o = wkctl().current_dir(d.path()).arg("init").output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with("error: `cluster.yaml` already exists\n  hint: pass `--force`"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "mine\n",
        "untouched"
    );
    let o = wkctl()
        .current_dir(d.path())
        .args(["init", "--force"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(wkctl::manifest::load(&out).is_ok());
}

#[test]
fn init_from_compose_reads_the_wukongim_services() {
    let d = tempfile::tempdir().unwrap();
    let compose = d.path().join("docker-compose.yaml");
    std::fs::copy(
        root().join("tests/fixtures/docker-compose.cluster.yaml"),
        &compose,
    )
    .unwrap();
    let out = d.path().join("out/cluster.yaml");
    std::fs::create_dir(d.path().join("out")).unwrap();
    let (code, _, err) = run(&[
        "init",
        "--from-compose",
        compose.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("3 node(s)"), "{err}");
    let m = wkctl::manifest::load(&out).unwrap();
    assert_eq!(m.playbook, "docker-compose");
    let ids: Vec<u64> = m.nodes.iter().map(|n| n.id).collect();
    assert_eq!(ids, [1001, 1002, 1003], "nginx and prometheus are ignored");
    for (i, n) in m.nodes.iter().enumerate() {
        assert_eq!(n.host, format!("node{}.wk.local", i + 1));
        assert_eq!(n.api, format!("http://node{}.wk.local:5001", i + 1));
        assert_eq!(n.vars["service"], format!("wukongim{}", i + 1));
        assert_eq!(n.version.as_ref().unwrap().to_string(), "v2.0.10-20241221");
    }
    let dir = std::fs::canonicalize(d.path()).unwrap();
    assert_eq!(m.vars["compose_dir"], dir.display().to_string());
    assert_eq!(
        m.vars["image"],
        "registry.cn-shanghai.aliyuncs.com/wukongim/wukongim"
    );
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(errors(SchemaKind::Manifest, &text), Vec::<String>::new());
    // The fixture pins a fixed `image:` tag: the manifest is valid, and the plan blocks with
    // what to change (`playbook.cannot_change_version`, issue 13.8) instead of letting an
    // upgrade wait `node_timeout` for a version that cannot come.
    let (code, err) = plan_offline(&out);
    assert_eq!(code, 1, "{err}");
}

#[test]
fn bad_compose_input_exits_2_with_one_line_and_a_hint() {
    let d = tempfile::tempdir().unwrap();
    let cases = [
        ("broken.yaml", "services: [\n"),
        ("nginx.yaml", "services:\n  nginx:\n    image: nginx\n"),
        (
            "badid.yaml",
            "services:\n  wk:\n    environment: { WK_CLUSTER_NODEID: 5000 }\n",
        ),
    ];
    for (name, text) in cases {
        let file = d.path().join(name);
        std::fs::write(&file, text).unwrap();
        let o = wkctl()
            .current_dir(d.path())
            .args(["init", "--from-compose", name])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{name}: {err}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{name}: {err}");
        assert!(
            lines[0].starts_with(&format!("error: {name}")),
            "{name}: {err}"
        );
        assert!(lines[1].starts_with("  hint: "), "{name}: {err}");
        assert!(!d.path().join("cluster.yaml").exists());
    }
    let (code, _, err) = run(&["init", "--from-compose", "/nonexistent/dc.yaml", "-o", "-"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("`/nonexistent/dc.yaml`") && err.contains("hint:"),
        "{err}"
    );
}

#[test]
fn version_prints_the_package_version_and_commit() {
    let (code, out, _) = run(&["--version"]);
    assert_eq!(code, 0);
    let line = out.trim();
    let prefix = format!("wkctl {} (", env!("CARGO_PKG_VERSION"));
    assert!(line.starts_with(&prefix) && line.ends_with(')'), "{line}");
    assert!(line.len() > prefix.len() + 1, "a commit: {line}");
}

#[test]
fn every_global_flag_has_a_wkctl_env_var_and_every_command_has_examples() {
    let cmd = Cli::command();
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        if matches!(id, "help" | "version") {
            continue;
        }
        let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
        assert!(
            env.as_deref().is_some_and(|e| e.starts_with("WKCTL_")),
            "--{id}: {env:?}"
        );
    }
    for sub in cmd.get_subcommands() {
        let help = sub
            .get_after_help()
            .map(ToString::to_string)
            .unwrap_or_default();
        assert!(
            help.contains("Examples:\n  wkctl "),
            "`{}` has no examples",
            sub.get_name()
        );
    }
}

#[test]
fn verbose_logs_probe_requests_on_stderr_without_the_token() {
    let d = tempfile::tempdir().unwrap();
    let m = d.path().join("c.yaml");
    // Port 1 on loopback: refused at once.
    std::fs::write(
        &m,
        "name: t\napi: { token_env: WKCTL_TEST_TOKEN, timeout: 2s }\nnodes:\n  - { id: 1001, host: 127.0.0.1, api: 'http://127.0.0.1:1' }\n",
    )
    .unwrap();
    let status = |extra: &[&str]| {
        let o = wkctl()
            .env_remove("RUST_LOG")
            .env("WKCTL_TEST_TOKEN", "s3cret-token")
            .args(["status", "--json", "-m"])
            .arg(&m)
            .args(extra)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let quiet = status(&[]);
    assert!(!quiet.contains("GET"), "no debug logs by default: {quiet}");
    let loud = status(&["-v"]);
    assert!(loud.contains("DEBUG") && loud.contains("/health"), "{loud}");
    assert!(!loud.contains("s3cret-token"), "{loud}");
}

#[test]
fn the_ci_recipe_runs_offline_check_and_plan_as_json() {
    let text = std::fs::read_to_string(root().join("examples/ci/github-actions.yml")).unwrap();
    let v = yaml_to_json(&text);
    assert!(v["jobs"].is_object(), "{v}");
    assert!(
        text.contains("wkctl check --offline --json") || text.contains("check --to"),
        "{text}"
    );
    assert!(text.contains("--offline --json"), "{text}");
    assert!(text.contains("upload-artifact"), "{text}");
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(readme.contains("\n## CI\n") && readme.contains("examples/ci/github-actions.yml"));
    assert!(
        readme.contains("\n## Install\n") && readme.contains("cargo install --locked --path .")
    );
}

#[test]
fn colour_follows_the_flag_the_env_var_and_no_color() {
    let example = root().join("examples/cluster.yaml");
    let check = |color: Option<&str>, env: &[(&str, &str)]| {
        let mut c = wkctl();
        c.args(["check", "--to", "v2.1.2", "--offline", "-m"])
            .arg(&example);
        if let Some(v) = color {
            c.args(["--color", v]);
        }
        for (k, v) in env {
            c.env(k, v);
        }
        String::from_utf8_lossy(&c.output().unwrap().stdout).contains('\x1b')
    };
    assert!(check(Some("always"), &[]), "--color always colours a pipe");
    assert!(!check(Some("never"), &[]));
    assert!(check(None, &[("WKCTL_COLOR", "always")]));
    assert!(
        !check(None, &[]),
        "auto: a pipe is not a terminal, and NO_COLOR is set"
    );
}
