//! Tests of the playbook checks, over upstream's own compose files and chart variants.

use super::*;
use crate::finding::Severity;
use crate::probe::fixtures::{manifest, settled};

/// Upstream `docker/cluster/docker-compose.yaml` (v2.2.5-20260422), trimmed: the merge
/// key brings `build:` into every node service; the image line is commented out.
const UPSTREAM_CLUSTER: &str = r#"
version: '3.7'
x-wukongim-common: &wukongim-common
    # image: registry.cn-shanghai.aliyuncs.com/wukongim/wukongim:v2.0.10-20241221-dev
    build:
      context: ../../
      dockerfile: Dockerfile
services:
  wukongim1:
    <<: *wukongim-common
    container_name: wukongim1
    environment:
      - "WK_CLUSTER_NODEID=1001"
      - "WK_CLUSTER_SERVERADDR=node1.wk.local:11110"
      - "WK_CLUSTER_APIURL=http://node1.wk.local:5001"
    networks:
      wukongim-bridge:
        aliases:
        - node1.wk.local
    volumes:
      - ./wukongim1_data:/root/wukongim
  wukongim2:
    <<: *wukongim-common
    container_name: wukongim2
    environment:
      - "WK_CLUSTER_NODEID=1002"
      - "WK_CLUSTER_APIURL=http://node2.wk.local:5001"
    networks:
      wukongim-bridge:
        aliases:
        - node2.wk.local
    volumes:
      - ./wukongim2_data:/root/wukongim
"#;

fn nodes(list: &[(u64, &str, &str)]) -> Vec<(u64, String, String)> {
    list.iter()
        .map(|(i, s, e)| (*i, (*s).to_string(), (*e).to_string()))
        .collect()
}

#[test]
fn a_built_service_blocks_with_what_to_change() {
    let f = compose_findings(
        UPSTREAM_CLUSTER,
        "dc.yaml",
        &nodes(&[
            (1001, "wukongim1", "WK_IMAGE"),
            (1002, "wukongim2", "WK_IMAGE"),
        ]),
    );
    let blocks: Vec<_> = f
        .iter()
        .filter(|f| f.id == FindingId::PlaybookCannotChangeVersion)
        .collect();
    assert_eq!(blocks.len(), 2, "{f:?}");
    assert_eq!(blocks[0].severity, Severity::Block);
    assert!(
        blocks[0].message.contains("`build:`"),
        "{}",
        blocks[0].message
    );
    assert!(
        blocks[0].hint.contains("image: ${WK_IMAGE:-"),
        "{}",
        blocks[0].hint
    );
}

#[test]
fn a_fixed_tag_blocks_and_a_variable_passes() {
    let text = "services:\n  wk:\n    image: wukongim/wukongim:v2.1.2-20250120\n    environment: [WK_CLUSTER_NODEID=1001]\n  wk2:\n    image: ${WK_IMAGE_2:-wukongim/wukongim:v2.1.2-20250120}\n    environment: [WK_CLUSTER_NODEID=1002]\n";
    let f = compose_findings(
        text,
        "dc.yaml",
        &nodes(&[(1001, "wk", "WK_IMAGE"), (1002, "wk2", "WK_IMAGE_2")]),
    );
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(
        (f[0].id, f[0].node),
        (FindingId::PlaybookCannotChangeVersion, Some(1001))
    );
    assert!(
        f[0].message
            .contains("`image: wukongim/wukongim:v2.1.2-20250120`")
    );
    // a service the manifest names but the file lacks
    let f = compose_findings(text, "dc.yaml", &nodes(&[(1003, "nope", "WK_IMAGE")]));
    assert!(f[0].message.contains("no service `nope`"));
}

#[test]
fn node_services_sharing_one_image_variable_warn() {
    let text = "services:\n  a:\n    image: ${WK_IMAGE:-wk/wk:v2.1.2-20250120}\n    environment: [WK_CLUSTER_NODEID=1001]\n  b:\n    image: ${WK_IMAGE:-wk/wk:v2.1.2-20250120}\n    environment: [WK_CLUSTER_NODEID=1002]\n  nginx:\n    image: ${WK_IMAGE:-nginx}\n";
    let f = compose_findings(
        text,
        "dc.yaml",
        &nodes(&[(1001, "a", "WK_IMAGE"), (1002, "b", "WK_IMAGE")]),
    );
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(
        (f[0].id, f[0].severity),
        (FindingId::ComposeSharedImageVariable, Severity::Warn)
    );
    assert!(f[0].message.contains("`a`, `b`") && !f[0].message.contains("nginx"));
}

#[test]
fn host_and_api_on_different_machines_warn() {
    let mut m = manifest(&[1001, 1002]);
    assert!(host_api_findings(&m).is_empty());
    m.nodes[1].api = "http://10.0.0.9:5001".into();
    let f = host_api_findings(&m);
    assert_eq!(
        (f.len(), f[0].id, f[0].node),
        (1, FindingId::NodeHostApiDiffer, Some(1002))
    );
    assert!(f[0].message.contains("10.0.0.2") && f[0].message.contains("10.0.0.9"));
}

#[test]
fn chart_presets_tell_what_blocks() {
    let pb = crate::playbook::load("kubernetes", Path::new(".")).unwrap();
    let mut m = manifest(&[1, 2, 3]);
    m.playbook = "kubernetes".into();
    for (i, n) in m.nodes.iter_mut().enumerate() {
        n.vars.insert("pod".into(), format!("wukongim-{i}"));
    }
    let ids = |m: &Manifest, view: Option<&ClusterView>| {
        let mut v: Vec<&str> = findings(m, &pb, view)
            .iter()
            .map(|f| f.id.as_str())
            .collect();
        v.sort_unstable();
        v
    };
    // the release-pipeline chart: PVC, DNS cluster address, no probes
    assert!(
        ids(&m, None).iter().all(|id| id.starts_with("node.")),
        "{:?}",
        ids(&m, None)
    );
    m.vars.insert("preset".into(), "chart-2.0.4".into());
    assert_eq!(
        ids(&m, None)
            .into_iter()
            .filter(|i| i.starts_with("k8s."))
            .collect::<Vec<_>>(),
        [
            "k8s.liveness_on_health",
            "k8s.no_persistent_volume",
            "k8s.pod_ip_cluster_address"
        ]
    );
    m.vars.insert("preset".into(), "chart-1.0.0".into());
    assert!(!ids(&m, None).contains(&"k8s.liveness_on_health"));
    // the operator fixed the chart and says so
    m.vars.insert("pv".into(), "true".into());
    m.vars.insert("cluster_address".into(), "dns".into());
    assert!(!ids(&m, None).iter().any(|i| i.starts_with("k8s.")));
    // ...but the live view still shows a pod IP
    let mut view = settled("v2.2.5-20260422", 0);
    view.nodes[0].cluster_addr = Some("10.244.1.7:11110".into());
    assert!(ids(&m, Some(&view)).contains(&"k8s.pod_ip_cluster_address"));
    view.nodes[0].cluster_addr = Some("wukongim-0.wkim-headless:11110".into());
    for n in &mut view.nodes {
        n.cluster_addr = Some("wukongim-0.wkim-headless:11110".into());
    }
    assert!(!ids(&m, Some(&view)).contains(&"k8s.pod_ip_cluster_address"));
    m.vars.insert("preset".into(), "chart-3".into());
    assert!(ids(&m, None).contains(&"playbook.unknown_preset"));
}

#[test]
fn the_local_compose_file_is_read_when_steps_run_here() {
    let dir = std::env::temp_dir().join(format!("wkctl-pbcheck-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("docker-compose.yaml"), UPSTREAM_CLUSTER).unwrap();
    let pb = crate::playbook::load("docker-compose", Path::new(".")).unwrap();
    let mut m = manifest(&[1001]);
    m.path = dir.join("cluster.yaml");
    m.playbook = "docker-compose".into();
    m.vars.insert("compose_dir".into(), ".".into());
    m.nodes[0].vars.insert("service".into(), "wukongim1".into());
    let f = findings(&m, &pb, None);
    assert!(
        f.iter()
            .any(|f| f.id == FindingId::PlaybookCannotChangeVersion),
        "{f:?}"
    );
    // over ssh the file on this machine is not the one the steps use
    m.ssh = Some(crate::manifest::SshConfig {
        user: None,
        port: None,
        identity_file: None,
        options: Vec::new(),
    });
    assert!(
        !findings(&m, &pb, None)
            .iter()
            .any(|f| f.id == FindingId::PlaybookCannotChangeVersion)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
