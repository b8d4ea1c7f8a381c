//! Unit tests of `compose.rs`.

use super::*;

#[test]
fn interpolation_takes_defaults_and_leaves_the_rest() {
    assert_eq!(
        interpolate("${WK_IMAGE:-wukongim/wukongim:v2}"),
        "wukongim/wukongim:v2"
    );
    assert_eq!(interpolate("${A-x}y"), "xy");
    assert_eq!(interpolate("${A:-${B:-1001}}"), "1001");
    assert_eq!(interpolate("${NODE_ID}"), "${NODE_ID}");
    assert_eq!(interpolate("$HOST:5001"), "$HOST:5001");
    assert_eq!(interpolate("a$$b"), "a$b");
    assert_eq!(interpolate("${A:?must-be-set}"), "${A:?must-be-set}");
    assert_eq!(interpolate("${unclosed"), "${unclosed");
}

#[test]
fn map_form_env_published_port_and_external_ip() {
    let text = r#"
name: wk-prod
services:
  wk:
    image: "${WK_IMAGE:-wukongim/wukongim:v2.1.2-20250120}"
    environment:
      WK_CLUSTER_NODEID: 7
      WK_EXTERNAL_IP: 10.0.0.7
      WK_MANAGERTOKEN: ${TOKEN}
    ports:
      - "15001:5001"
      - target: 5100
        published: 15100
"#;
    let c = parse(text, "c.yaml").unwrap();
    assert_eq!(c.name.as_deref(), Some("wk-prod"));
    let n = &c.nodes[0];
    assert_eq!((n.id, n.host.as_str()), (7, "10.0.0.7"));
    assert_eq!(n.host_from, "WK_EXTERNAL_IP");
    assert_eq!(n.api.as_deref(), Some("http://10.0.0.7:15001"));
    assert_eq!(n.version.as_ref().unwrap().to_string(), "v2.1.2-20250120");
    assert_eq!(n.image_repo.as_deref(), Some("wukongim/wukongim"));
    assert_eq!(n.image_env.as_deref(), Some("WK_IMAGE"));
    assert!(n.has_token);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn server_addr_long_ports_and_floating_tags() {
    let text = "services:\n  a:\n    image: wukongim/wukongim:v2\n    environment: [WK_CLUSTER_NODEID=1, WK_CLUSTER_SERVERADDR=tcp://10.1.0.1:11110]\n    ports: [{target: 5001, published: '5001'}]\n";
    let c = parse(text, "c.yaml").unwrap();
    let n = &c.nodes[0];
    assert_eq!(n.host, "10.1.0.1");
    assert_eq!(n.api.as_deref(), Some("http://10.1.0.1:5001"));
    assert_eq!(n.version, None, "`v2` is not a full tag");
    assert_eq!(c.warnings.len(), 1, "fixed image: {:?}", c.warnings);
}

#[test]
fn no_address_falls_back_to_the_service_name_with_a_warning() {
    let c = parse(
        "services:\n  wk1:\n    build: .\n    environment: [WK_CLUSTER_NODEID=1001]\n",
        "c",
    )
    .unwrap();
    assert_eq!(c.nodes[0].host, "wk1");
    assert_eq!(c.nodes[0].api, None);
    assert_eq!(c.warnings.len(), 3, "{:?}", c.warnings);
    assert!(c.warnings[1].contains("`build:`") && c.warnings[2].contains("5001"));
}

#[test]
fn bad_input_names_the_file() {
    let e = parse("services: [\n", "dc.yaml").unwrap_err();
    assert!(e.message.starts_with("dc.yaml:"), "{}", e.message);
    let e = parse("version: '3'\n", "dc.yaml").unwrap_err();
    assert_eq!(e.message, "dc.yaml: no `services:` map");
    let e = parse("services:\n  nginx:\n    image: nginx\n", "dc.yaml").unwrap_err();
    assert_eq!(e.message, "dc.yaml: no service sets `WK_CLUSTER_NODEID`");
    let e = parse(
        "services:\n  a:\n    environment: [WK_CLUSTER_NODEID=abc]\n",
        "dc.yaml",
    )
    .unwrap_err();
    assert!(
        e.message
            .contains("service `a`: `WK_CLUSTER_NODEID` is `abc`"),
        "{}",
        e.message
    );
    let e = parse(
        "services:\n  a:\n    environment: [WK_CLUSTER_NODEID=1]\n  b:\n    environment: {WK_CLUSTER_NODEID: '1'}\n",
        "dc.yaml",
    )
    .unwrap_err();
    assert!(e.message.contains("both use node id 1"), "{}", e.message);
    assert!(e.hint.is_some());
}

#[test]
fn image_references_split_into_repository_and_tag() {
    assert_eq!(
        split_image("registry.cn-shanghai.aliyuncs.com/wukongim/wukongim:v2.0.10-20241221"),
        (
            Some("registry.cn-shanghai.aliyuncs.com/wukongim/wukongim".into()),
            Some("v2.0.10-20241221")
        )
    );
    assert_eq!(
        split_image("localhost:5000/wk"),
        (Some("localhost:5000/wk".into()), None)
    );
    assert_eq!(split_image("wk@sha256:abc"), (Some("wk".into()), None));
    assert_eq!(addr_host("[::1]:11110").as_deref(), Some("::1"));
}

/// Upstream `docker/cluster/docker-compose.yaml` (v2.2.5-20260422), trimmed to what matters.
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
  nginx:
    image: nginx:1.27
    ports: ["15001:15001"]
"#;

#[test]
fn upstreams_cluster_file_says_what_to_change() {
    let c = parse(UPSTREAM_CLUSTER, "docker/cluster/docker-compose.yaml").unwrap();
    assert_eq!(c.nodes.len(), 2);
    let n = &c.nodes[0];
    assert!(n.build, "the merge key brings `build:` in");
    assert!(n.host_is_alias);
    assert!(!n.api_published);
    assert_eq!(n.data_dir.as_deref(), Some("wukongim1_data"));
    assert_eq!(c.nodes[1].data_dir.as_deref(), Some("wukongim2_data"));
    let all = c.warnings.join("\n");
    assert!(
        all.contains("`wukongim1`, `wukongim2` are built from source"),
        "{all}"
    );
    assert!(
        all.contains("node1.wk.local") || all.contains("network aliases"),
        "{all}"
    );
    assert!(all.contains("do not publish the API port 5001"), "{all}");
}

#[test]
fn placeholder_hosts_are_rejected() {
    // docs-site quick-start/docker-single-node.mdx (v2.2.5-20260422)
    let text = "services:\n  wukongim:\n    image: registry.cn-shanghai.aliyuncs.com/wukongim/wukongim:v2\n    environment:\n      - \"WK_CLUSTER_NODEID=1001\"\n      - \"WK_CLUSTER_APIURL=http://xx.xxx.xxx.xx:5001\"\n    volumes:\n      - ./wukongimdata:/root/wukongim\n";
    let e = parse(text, "dc.yaml").unwrap_err();
    assert!(
        e.message.contains("xx.xxx.xxx.xx") && e.message.contains("placeholder"),
        "{}",
        e.message
    );
    for h in ["xx.xxx.xxx.xx", "xxx.xxx.xxx.xxx", "<node-ip>", ""] {
        assert!(is_placeholder_host(h), "{h}");
    }
    for h in ["10.0.0.1", "node1.wk.local", "xenon.example"] {
        assert!(!is_placeholder_host(h), "{h}");
    }
    let ok = text.replace("xx.xxx.xxx.xx", "10.0.0.5");
    assert_eq!(
        parse(&ok, "dc.yaml").unwrap().nodes[0].data_dir.as_deref(),
        Some("wukongimdata")
    );
}

#[test]
fn dotenv_values_win_over_defaults_as_in_compose() {
    let env = read_dotenv(
        "# pinned by wkctl\nWK_IMAGE_1001=wukongim/wukongim:v2.1.2-20250120\nexport PORT='25001'\nEMPTY=\n\n",
    );
    assert_eq!(env["PORT"], "25001");
    assert_eq!(
        interpolate_in("${WK_IMAGE_1001:-wukongim/wukongim:v2.0.10-20241221}", &env),
        "wukongim/wukongim:v2.1.2-20250120"
    );
    assert_eq!(
        interpolate_in("127.0.0.1:${PORT:-15001}:5001", &env),
        "127.0.0.1:25001:5001"
    );
    assert_eq!(
        interpolate_in("${EMPTY:-d}|${EMPTY-d}|$PORT|${NOPE}", &env),
        "d||25001|${NOPE}"
    );
}

/// The shape of `tests/docker/cluster/docker-compose.yml` (upstream's cluster file with an
/// image variable per node and the API ports published on 127.0.0.1): the aliases resolve
/// only inside the network, so the node is reached on its published port, as written.
#[test]
fn aliases_with_a_published_api_port_are_reached_on_this_machine() {
    let text = r#"
services:
  wukongim1:
    image: ${WK_IMAGE_1001:-wukongim/wukongim:v2.0.10-20241221}
    environment:
      - WK_CLUSTER_NODEID=1001
      - WK_CLUSTER_APIURL=http://node1.wk.local:5001
    volumes: [./wukongim1_data:/root/wukongim]
    ports: ["127.0.0.1:${WK_API_PORT_1001:-15001}:5001"]
    networks: { wukongim: { aliases: [node1.wk.local] } }
  wukongim2:
    image: ${WK_IMAGE_1002:-wukongim/wukongim:v2.0.10-20241221}
    environment:
      - WK_CLUSTER_NODEID=1002
      - WK_CLUSTER_APIURL=http://node2.wk.local:5001
    volumes: [./wukongim2_data:/root/wukongim]
    ports: [{ target: 5001, published: 15002 }]
    networks: { wukongim: { aliases: [node2.wk.local] } }
"#;
    let env =
        read_dotenv("WK_API_PORT_1001=25001\nWK_IMAGE_1002=wukongim/wukongim:v2.1.2-20250120\n");
    let c = parse_with_env(text, "dc.yaml", &env).unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let (a, b) = (&c.nodes[0], &c.nodes[1]);
    assert_eq!(
        (a.host.as_str(), a.api.as_deref()),
        ("127.0.0.1", Some("http://127.0.0.1:25001"))
    );
    assert_eq!(
        (b.host.as_str(), b.api.as_deref()),
        ("127.0.0.1", Some("http://127.0.0.1:15002"))
    );
    assert!(!a.host_is_alias && a.api_published);
    assert_eq!(
        a.version.as_ref().map(ToString::to_string).as_deref(),
        Some("v2.0.10-20241221")
    );
    assert_eq!(
        b.version.as_ref().map(ToString::to_string).as_deref(),
        Some("v2.1.2-20250120")
    );
    assert_eq!(a.image_env.as_deref(), Some("WK_IMAGE_1001"));
    // without the published port, the alias stays a thing to change
    let unpublished = text.replace(
        "    ports: [\"127.0.0.1:${WK_API_PORT_1001:-15001}:5001\"]\n",
        "",
    );
    let c = parse_with_env(&unpublished, "dc.yaml", &env).unwrap();
    assert!(c.nodes[0].host_is_alias);
    assert!(
        c.warnings.join("\n").contains("do not publish")
            || c.warnings.join("\n").contains("does not publish"),
        "{:?}",
        c.warnings
    );
}
