//! Unit tests of `wkctl init`: manifests written from compose files.

use super::*;

#[test]
fn the_starter_loads_and_names_the_schema() {
    let text = starter();
    assert!(text.starts_with(SCHEMA_LINE));
    let m = crate::manifest::parse(&text, Path::new("cluster.yaml")).unwrap();
    assert_eq!(
        m.nodes.iter().map(|n| n.id).collect::<Vec<_>>(),
        [1001, 1002, 1003]
    );
}

#[test]
fn per_service_image_variables_go_to_node_vars() {
    let text = "services:\n  a:\n    image: ${IMG_A:-wk/wk:v2.1.2-20250120}\n    environment: [WK_CLUSTER_NODEID=1001, WK_EXTERNAL_IP=10.0.0.1]\n  b:\n    image: ${IMG_B:-wk/wk:v2.1.2-20250120}\n    environment: [WK_CLUSTER_NODEID=1002, WK_EXTERNAL_IP=10.0.0.2]\n";
    let c = compose::parse(text, "dc.yaml").unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let out = from_compose(&c, Path::new("dc.yaml"), Path::new("/srv/wk prod"));
    let m = crate::manifest::parse(&out, Path::new("cluster.yaml")).unwrap();
    assert_eq!(m.name, "wk-prod");
    assert_eq!(m.vars["compose_dir"], "/srv/wk prod");
    assert_eq!(m.vars["image"], "wk/wk");
    assert!(!m.vars.contains_key("image_env"));
    assert_eq!(m.nodes[0].vars["image_env"], "IMG_A");
    assert_eq!(m.nodes[1].vars["image_env"], "IMG_B");
    assert_eq!(m.nodes[1].api, "http://10.0.0.2:5001");
}

#[test]
fn several_files_one_per_host_and_the_data_volume() {
    let one = |id: u64, ip: &str| {
        format!(
            "services:\n  wukongim:\n    image: ${{WK_IMAGE:-registry.cn-shanghai.aliyuncs.com/wukongim/wukongim:v2.2.4-20260313}}\n    environment: [WK_CLUSTER_NODEID={id}, WK_CLUSTER_APIURL=http://{ip}:5001]\n    ports: ['5001:5001']\n    volumes: ['./wukongim_data:/root/wukongim']\n"
        )
    };
    let sources: Vec<Source> = [(1001, "10.0.0.1"), (1002, "10.0.0.2")]
        .iter()
        .map(|(id, ip)| Source {
            file: PathBuf::from(format!("/h{id}/docker-compose.yaml")),
            dir: PathBuf::from(format!("/h{id}")),
            cluster: compose::parse(&one(*id, ip), "dc.yaml").unwrap(),
        })
        .collect();
    let merged = merge(&sources).unwrap();
    let out = from_compose_files(&merged, &sources);
    let m = crate::manifest::parse(&out, Path::new("cluster.yaml")).unwrap();
    assert_eq!(m.nodes.len(), 2);
    assert_eq!(m.nodes[1].vars["compose_dir"], "/h1002");
    assert_eq!(m.vars["data_dir"], "wukongim_data");
    assert_eq!(m.vars["image_env"], "WK_IMAGE");
    assert!(!out.contains("v2.1.2"), "never an old target: {out}");
    assert!(out.contains(newest_release()));
    // the same id twice is an error naming both files
    let dup = [sources[0].cluster.clone(), sources[0].cluster.clone()];
    let twice: Vec<Source> = dup
        .into_iter()
        .enumerate()
        .map(|(i, cluster)| Source {
            file: PathBuf::from(format!("/x{i}.yaml")),
            dir: PathBuf::from("/x"),
            cluster,
        })
        .collect();
    let e = merge(&twice).err().unwrap();
    assert!(
        e.message.contains("/x0.yaml") && e.message.contains("/x1.yaml"),
        "{}",
        e.message
    );
}

#[test]
fn what_to_change_is_written_into_the_manifest() {
    let c = compose::parse(
            "services:\n  w1:\n    build: .\n    environment: [WK_CLUSTER_NODEID=1001, WK_CLUSTER_APIURL=http://node1.wk.local:5001]\n    networks: {n: {aliases: [node1.wk.local]}}\n",
            "dc.yaml",
        )
        .unwrap();
    let out = from_compose(&c, Path::new("dc.yaml"), Path::new("/srv/wk"));
    let changes: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("# CHANGE: "))
        .collect();
    assert_eq!(changes.len(), 3, "{out}");
    assert!(crate::manifest::parse(&out, Path::new("cluster.yaml")).is_ok());
}

#[test]
fn scalars_are_quoted_only_when_needed() {
    assert_eq!(yaml_str("node1.wk.local"), "node1.wk.local");
    assert_eq!(yaml_str("http://10.0.0.1:5001"), "http://10.0.0.1:5001");
    assert_eq!(yaml_str("/opt/my dir"), "\"/opt/my dir\"");
    assert_eq!(yaml_str("yes"), "\"yes\"");
    assert_eq!(yaml_str("1001"), "\"1001\"");
    assert_eq!(
        cluster_name(None, Path::new("/srv/my cluster")),
        "my-cluster"
    );
    assert_eq!(cluster_name(Some(".."), Path::new("/")), "wukongim");
}

/// Upstream's cluster recipe (facts §12): three nodes behind an `nginx` service. The
/// manifest gets commented `drain`/`undrain` examples naming that service, which,
/// uncommented into the built-in playbook, are valid steps (issue 19.3).
#[test]
fn an_nginx_service_gets_commented_drain_examples() {
    let node = |i: u64| {
        format!(
            "  wukongim{i}:\n    image: ${{WK_IMAGE_{i}:-wukongim/wukongim:v2.2.5-20260422}}\n    environment: [WK_CLUSTER_NODEID=100{i}, WK_CLUSTER_APIURL=http://10.0.0.{i}:5001]\n"
        )
    };
    let base = format!("services:\n{}{}{}", node(1), node(2), node(3));
    let with = format!("{base}  nginx:\n    image: nginx:latest\n    ports: ['15001:15001']\n");
    let write = |text: &str| {
        let c = compose::parse(text, "dc.yaml").unwrap();
        from_compose(&c, Path::new("/p/docker-compose.yaml"), Path::new("/p"))
    };
    let out = write(&with);
    crate::manifest::parse(&out, Path::new("cluster.yaml")).unwrap();
    let examples: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("#   "))
        .filter(|l| l.starts_with("drain:") || l.starts_with("undrain:"))
        .collect();
    assert_eq!(examples.len(), 2, "{out}");
    assert!(
        examples.iter().all(|l| l.contains("exec -T nginx ")),
        "{out}"
    );
    assert!(out.contains("(`nginx`)"), "{out}");
    let pb = include_str!("../../../playbooks/docker-compose.yaml").replacen(
        "\nsteps:\n",
        &format!("\nsteps:\n  {}\n  {}\n", examples[0], examples[1]),
        1,
    );
    let pb = crate::playbook::parse(&pb, "pb.yaml").unwrap();
    let drain = &pb.steps[&crate::playbook::StepKind::Drain];
    assert!(drain.contains("/ down;/"), "{drain}");
    assert!(pb.steps[&crate::playbook::StepKind::Undrain].contains("/ down;$/;/"));
    // Without nginx: no drain examples.
    assert!(!write(&base).contains("drain:"));
    // An nginx service with a registry and a digest is nginx too; a node is not.
    let other = format!("{base}  lb:\n    image: docker.io/library/nginx@sha256:abc\n");
    assert!(compose::parse(&other, "dc.yaml").unwrap().nginx == ["lb"]);
}
