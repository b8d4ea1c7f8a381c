//! Unit tests of the playbooks: templates, variables, presets, and the built-in files.

use super::*;

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

#[test]
fn hostile_values_render_as_one_quoted_word() {
    let out = render("echo {{x}}", &vars(&[("x", "a'; rm -rf / #")])).unwrap();
    assert_eq!(out, r"echo 'a'\''; rm -rf / #'");
    // the shell sees exactly one argument with the original value
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("printf '%s|' {}", shell_quote("a'; rm -rf / #")))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "a'; rm -rf / #|");
    assert_eq!(shell_quote(""), "''");
    assert_eq!(shell_quote("$(id)"), "'$(id)'");
    assert_eq!(shell_quote("v2.1.2-20250120"), "v2.1.2-20250120");
}

#[test]
fn unknown_and_malformed_variables_are_errors() {
    assert_eq!(
        render("x {{nope}}", &vars(&[])).unwrap_err(),
        "unknown variable `{{nope}}`"
    );
    assert!(render("x {{a", &vars(&[])).is_err());
    assert!(render("x {{a b}}", &vars(&[("a b", "")])).is_err());
    assert!(render("x }}", &vars(&[])).is_err());
}

#[test]
fn every_builtin_playbook_loads_and_has_the_rollout_steps() {
    for (name, text) in BUILTIN {
        let pb = parse(text, name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(&pb.name, name);
        for k in [
            StepKind::Stop,
            StepKind::Start,
            StepKind::Logs,
            StepKind::Rollback,
            StepKind::Config,
            StepKind::Netcheck,
        ] {
            assert!(pb.step(k).is_some(), "{name} lacks {}", k.as_str());
        }
    }
}

#[test]
fn node_vars_override_cluster_and_playbook_vars() {
    let pb = parse(BUILTIN[0].1, "dc").unwrap();
    let node = crate::manifest::Node {
        id: 1001,
        host: "h".into(),
        api: "http://h:5001".into(),
        version: None,
        vars: vars(&[("service", "wukongim1")]),
    };
    let v = node_vars(
        &pb,
        &vars(&[("service", "cluster"), ("compose_dir", "/srv/wk")]),
        &node,
        Some("v2.0.10-20241221"),
        "v2.1.2-20250120",
    );
    assert_eq!(v["service"], "wukongim1");
    assert_eq!(v["compose_dir"], "/srv/wk");
    assert_eq!(v["node.id"], "1001");
    let stop = render(pb.step(StepKind::Stop).unwrap(), &v).unwrap();
    assert!(stop.contains("dc stop -t 30 wukongim1"), "{stop}");
    // the prelude is part of every step
    assert!(stop.starts_with("C=auto;"), "{stop}");
}

#[test]
fn presets_sit_between_playbook_and_manifest_vars() {
    let pb = load("kubernetes", Path::new(".")).unwrap();
    let mut node = crate::manifest::Node {
        id: 1,
        host: "h".into(),
        api: "http://h:5001".into(),
        version: None,
        vars: vars(&[("pod", "wukongim-0"), ("preset", "chart-2.0.4")]),
    };
    let v = node_vars(&pb, &BTreeMap::new(), &node, None, "v2.2.5-20260422");
    assert_eq!(
        (v["statefulset"].as_str(), v["container"].as_str()),
        ("wukongim", "wukongim")
    );
    let v = node_vars(
        &pb,
        &vars(&[("preset", "chart-1.0.0")]),
        &{
            node.vars.remove("preset");
            node.clone()
        },
        None,
        "v2.2.5-20260422",
    );
    assert_eq!(v["container"], "wukoingim");
    // an explicit manifest value wins over the preset
    let v = node_vars(
        &pb,
        &vars(&[("preset", "chart-1.0.0"), ("container", "mine")]),
        &node,
        None,
        "v2.2.5-20260422",
    );
    assert_eq!(v["container"], "mine");
    assert!(preset_error(&pb, &vars(&[("preset", "chart-1.0.0")]), &node).is_none());
    let e = preset_error(&pb, &vars(&[("preset", "chart-9")]), &node).unwrap();
    assert!(e.contains("chart-9") && e.contains("`chart-2.0.4`"), "{e}");
}

#[test]
fn new_step_kinds_parse_and_a_bad_prelude_is_an_error() {
    let pb = parse(
            "name: x\nprelude: 'f() { echo {{who}}; }'\nsteps: { stop: f, start: f, prepare: f, lock: f, unlock: f, drain: f, undrain: f, pre_run: f, post_run: f }\n",
            "p",
        )
        .unwrap();
    for k in StepKind::ALL {
        if matches!(
            k,
            StepKind::Backup
                | StepKind::Install
                | StepKind::Logs
                | StepKind::Rollback
                | StepKind::Config
                | StepKind::Netcheck
        ) {
            continue;
        }
        assert_eq!(
            pb.step(k),
            Some("f() { echo {{who}}; }\nf"),
            "{}",
            k.as_str()
        );
    }
    assert_eq!(StepKind::PreRun.as_str(), "pre_run");
    let e = parse(
        "name: x\nprelude: '{{a b}}'\nsteps: { stop: a, start: b }\n",
        "p",
    )
    .unwrap_err();
    assert!(e.message.contains("`prelude`"), "{}", e.message);
}

#[test]
fn playbook_errors_are_clear() {
    assert!(
        parse("name: x\nsteps: { start: a }\n", "p")
            .unwrap_err()
            .message
            .contains("`stop` is missing")
    );
    assert!(
        parse("name: x\nsteps: { stop: a, start: b, reboot: c }\n", "p")
            .unwrap_err()
            .message
            .starts_with("p:")
    );
    assert!(
        load("nope", Path::new("."))
            .unwrap_err()
            .hint
            .unwrap()
            .contains("docker-compose")
    );
}
