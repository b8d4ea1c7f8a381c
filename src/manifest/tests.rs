//! Unit tests of `manifest.rs`.
use super::*;

const GOOD: &str = "\
name: im-prod
playbook: docker-compose
api:
  token_env: WK_MANAGER_TOKEN
  timeout: 5s
vars:
  compose_dir: /opt/wukongim
nodes:
  - id: 1001
    host: 10.0.0.11
    api: http://10.0.0.11:5001
    version: v2.0.10-20241221
    vars: { service: wukongim1 }
  - id: 1002
    host: 10.0.0.12
policy:
  order: controller-last
  canary: true
  soak: 30s
  stable_for: 10s
  node_timeout: 10m
  poll_interval: 1s
";

fn err(text: &str) -> String {
    parse(text, Path::new("cluster.yaml")).unwrap_err().message
}

#[test]
fn loads_the_design_example() {
    let m = parse(GOOD, Path::new("cluster.yaml")).unwrap();
    assert_eq!(m.name, "im-prod");
    assert_eq!(m.nodes.len(), 2);
    assert_eq!(m.nodes[1].api, "http://10.0.0.12:5001");
    assert_eq!(m.nodes[0].vars["service"], "wukongim1");
    assert_eq!(
        m.nodes[0].version.as_ref().unwrap().to_string(),
        "v2.0.10-20241221"
    );
    assert_eq!(m.policy.order, Order::ControllerLast);
    assert_eq!(m.policy.node_timeout, Duration::from_mins(10));
    assert_eq!(m.api.token_env.as_deref(), Some("WK_MANAGER_TOKEN"));
    assert_eq!(m.digest.len(), 64);
}

#[test]
fn duplicate_ids_name_the_line() {
    let text = "name: a\nnodes:\n  - id: 1001\n    host: a\n  - id: 1001\n    host: b\n";
    assert_eq!(
        err(text),
        "cluster.yaml:5:9: duplicate node id 1001 (first at line 3)"
    );
}

/// Two nodes on one API would be judged (and smoke-tested "through another node") as
/// two while they are one process (issue #18).
#[test]
fn two_nodes_with_one_api_are_refused_naming_both() {
    let text = "name: a\nnodes:\n  - id: 1001\n    host: a\n    api: http://10.0.0.1:5001\n  - id: 1002\n    host: b\n    api: http://10.0.0.1:5001/\n";
    assert_eq!(
        err(text),
        "cluster.yaml:8:10: nodes 1001 (line 5) and 1002 have the same API `http://10.0.0.1:5001`"
    );
    // The default API of the same host, and a spelling that differs only in case or in
    // the scheme's own port, are one API too.
    let text = "name: a\nnodes:\n  - id: 1001\n    host: a\n  - id: 1002\n    host: b\n    api: http://A:5001\n";
    assert!(
        err(text).contains("nodes 1001 (line 3) and 1002 have the same API"),
        "{}",
        err(text)
    );
    let text = "name: a\nnodes:\n  - id: 1001\n    host: a\n    api: http://a\n  - id: 1002\n    host: b\n    api: http://a:80\n";
    assert!(err(text).contains("have the same API"), "{}", err(text));
    // Same host, other ports: fine.
    let text = "name: a\nnodes:\n  - id: 1001\n    host: a\n    api: http://a:5001\n  - id: 1002\n    host: a\n    api: http://a:5002\n";
    assert!(parse(text, Path::new("cluster.yaml")).is_ok());
}

#[test]
fn ids_out_of_range_are_rejected() {
    assert!(
        err("name: a\nnodes:\n  - id: 0\n    host: a\n")
            .starts_with("cluster.yaml:3:9: node id 0 is out of range")
    );
    assert!(
        err("name: a\nnodes:\n  - id: 1024\n    host: a\n")
            .starts_with("cluster.yaml:3:9: node id 1024")
    );
    assert!(
        err("name: a\nnodes:\n  - id: -5\n    host: a\n").contains("node id -5 is out of range")
    );
}

#[test]
fn unknown_keys_are_errors_with_position() {
    let e = err("name: a\nnodes:\n  - id: 1\n    host: a\n    hots: b\n");
    assert!(e.starts_with("cluster.yaml:5:"), "{e}");
    assert!(e.contains("hots"), "{e}");
    let e = err("name: a\nnodse: []\n");
    assert!(e.starts_with("cluster.yaml:2:"), "{e}");
}

#[test]
fn bad_urls_and_durations_are_errors_with_position() {
    let e = err("name: a\nnodes:\n  - id: 1\n    host: a\n    api: ftp://x:1\n");
    assert!(
        e.starts_with("cluster.yaml:5:10: node 1: `api` is not a valid base URL"),
        "{e}"
    );
    let e = err("name: a\nnodes:\n  - id: 1\n    host: a\n    api: http://x:5001/health\n");
    assert!(e.contains("not a valid base URL"), "{e}");
    let e = err("name: a\nnodes:\n  - id: 1\n    host: a\npolicy:\n  soak: 30 parsecs\n");
    assert!(
        e.starts_with("cluster.yaml:6:9: invalid duration `30 parsecs`"),
        "{e}"
    );
    let e = err("name: a\nnodes:\n  - id: 1\n    host: a\npolicy:\n  poll_interval: 0s\n");
    assert_eq!(
        e, "cluster.yaml:6:18: `policy.poll_interval` must be greater than zero",
        "found by tests/fuzz.rs: this error had no line and column"
    );
    let e = err("name: a\nnodes:\n  - id: 1\n    host: a\n    version: banana\n");
    assert!(
        e.starts_with("cluster.yaml:5:14: node 1: invalid WuKongIM version"),
        "{e}"
    );
}

#[test]
fn empty_nodes_bad_name_and_bad_token_env() {
    assert!(err("name: a\nnodes: []\n").contains("`nodes` is empty"));
    assert!(err("name: ../x\nnodes:\n  - id: 1\n    host: a\n").contains("cluster name"));
    let e = err("name: a\napi:\n  token_env: \"s3cr3t-T0ken!\"\nnodes:\n  - id: 1\n    host: a\n");
    assert!(e.contains("token_env"), "{e}");
    assert!(
        !e.contains("s3cr3t"),
        "a token pasted by mistake is never echoed: {e}"
    );
    assert!(err("name: [\n").starts_with("cluster.yaml:"));
}

#[test]
fn vars_accept_scalars() {
    let m = parse(
        "name: a\nvars: { port: 22, on: true }\nnodes:\n  - id: 1\n    host: '::1'\n",
        Path::new("c"),
    )
    .unwrap();
    assert_eq!(m.vars["port"], "22");
    assert_eq!(m.vars["on"], "true");
    assert_eq!(m.nodes[0].api, "http://[::1]:5001");
}
