//! Reading a WuKongIM docker-compose file for `wkctl init --from-compose` (facts §6.2).
//!
//! A WuKongIM node is a service whose `environment` sets `WK_CLUSTER_NODEID` (facts §5.1:
//! viper maps `cluster.nodeId` to that variable); other services (nginx, prometheus) are
//! ignored. `${VAR:-default}` takes its default; other interpolations are left as written.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::WkError;
use crate::version::WkVersion;

mod interpolate;
pub use interpolate::{interpolate, interpolate_in, read_dotenv};

/// What an operator must change before wkctl can upgrade these services (issue 13.8,
/// 14 §4): one line each, naming the services and the fix.
pub fn problems(nodes: &[ComposeNode]) -> Vec<String> {
    let mut out = Vec::new();
    let list = |pick: &dyn Fn(&ComposeNode) -> bool| -> Vec<String> {
        nodes
            .iter()
            .filter(|n| pick(n))
            .map(|n| format!("`{}`", n.service))
            .collect()
    };
    let built = list(&|n| n.build && n.image_env.is_none());
    if !built.is_empty() {
        out.push(format!(
            "{} {} built from source (`build:`), so the playbook cannot change the version: replace `build:` with `image: ${{WK_IMAGE:-registry.cn-shanghai.aliyuncs.com/wukongim/wukongim:<the running tag>}}`",
            built.join(", "),
            if built.len() == 1 { "is" } else { "are" }
        ));
    }
    let fixed = list(&|n| !n.build && n.image_env.is_none());
    if !fixed.is_empty() {
        out.push(format!(
            "{} {} a fixed `image:` tag, so the playbook cannot change the version: write `image: ${{WK_IMAGE:-<the current image>}}` (`image_env` names the variable)",
            fixed.join(", "),
            if fixed.len() == 1 { "has" } else { "have" }
        ));
    }
    let mut by_env: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for n in nodes {
        if let Some(e) = &n.image_env {
            by_env.entry(e).or_default().push(&n.service);
        }
    }
    for (env, services) in by_env.iter().filter(|(_, s)| s.len() > 1) {
        out.push(format!(
            "services {} share the image variable `{env}`: once wkctl pins the new tag in `.env` for the first node, a stray `docker compose up -d` recreates all of them at once; give each node service its own variable (e.g. `WK_IMAGE_1001`), or keep one service per compose project",
            services.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
        ));
    }
    let alias = list(&|n| n.host_is_alias);
    if !alias.is_empty() {
        out.push(format!(
            "the hosts of {} are compose network aliases (e.g. `node1.wk.local`): they resolve only inside the compose network; set each node's `host:` to the machine wkctl reaches",
            alias.join(", ")
        ));
    }
    let unpublished =
        list(&|n| !n.api_published && (n.host_is_alias || n.host_from == "the service name"));
    if !unpublished.is_empty() {
        out.push(format!(
            "{} {} not publish the API port 5001, so wkctl cannot read the node: publish it (e.g. `ports: [\"15001:5001\"]`, one host port per node) and set each node's `api:` to it",
            unpublished.join(", "),
            if unpublished.len() == 1 { "does" } else { "do" }
        ));
    }
    out
}

/// One WuKongIM service of the compose file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeNode {
    pub service: String,
    pub id: u64,
    pub host: String,
    /// Where the host came from (`WK_CLUSTER_APIURL`, ...), for the manifest's comments.
    pub host_from: &'static str,
    /// From `WK_CLUSTER_APIURL`, else `http://<host>:<published port of 5001>`.
    pub api: Option<String>,
    pub api_from: &'static str,
    /// From the image tag, when it is a full WuKongIM tag (`v2.0.10-20241221`).
    pub version: Option<WkVersion>,
    /// The image without its tag, e.g. `registry.cn-shanghai.aliyuncs.com/wukongim/wukongim`.
    pub image_repo: Option<String>,
    /// The variable `image:` is read from (`${WK_IMAGE:-...}`), if any.
    pub image_env: Option<String>,
    /// The service sets `WK_MANAGERTOKEN`, so the API needs a token.
    pub has_token: bool,
    /// The service builds its image from source (`build:`), as upstream's
    /// `docker/cluster/docker-compose.yaml` does: the playbook cannot change its version.
    pub build: bool,
    /// The host side of the volume mounted at the node's root directory (`/root/wukongim`,
    /// or `WK_ROOTDIR`), relative to the compose directory when written `./x`
    /// (upstream: `./wukongim{1,2,3}_data`, docs multi-node `./wukongim_data`, single node
    /// `./wukongimdata`).
    pub data_dir: Option<String>,
    /// Port 5001 is published on the host.
    pub api_published: bool,
    /// The host resolves only inside the compose network (a network alias of a service,
    /// e.g. upstream's `nodeN.wk.local`).
    pub host_is_alias: bool,
}

/// What `init` learns from a compose file.
#[derive(Debug, Clone, Default)]
pub struct ComposeCluster {
    /// The compose project `name:`, if set.
    pub name: Option<String>,
    /// Sorted by node id.
    pub nodes: Vec<ComposeNode>,
    /// Things the operator should look at (one line each).
    pub warnings: Vec<String>,
    /// Services that run nginx (image or name), a load balancer in front of the nodes as
    /// in upstream's `docker/cluster/docker-compose.yaml` (facts §12): `init` writes
    /// commented `drain`/`undrain` examples for them (issue 19.3).
    pub nginx: Vec<String>,
}

const HINT: &str = "pass a WuKongIM docker-compose file whose services set `WK_CLUSTER_NODEID`, or run `wkctl init` without `--from-compose` for a starter manifest";

/// Parses compose text; `origin` (the file's path) names it in errors.
pub fn parse(text: &str, origin: &str) -> Result<ComposeCluster, WkError> {
    parse_with_env(text, origin, &BTreeMap::new())
}

/// [`parse`], with `${VAR}` taken from `dotenv` (the project's `.env`, as Compose does)
/// before the written default: after an upgrade `.env` pins the running tag, and the API
/// ports may be set there.
pub fn parse_with_env(
    text: &str,
    origin: &str,
    dotenv: &BTreeMap<String, String>,
) -> Result<ComposeCluster, WkError> {
    let doc: Value = serde_saphyr::from_str(text).map_err(|e| {
        let (line, col) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
        let msg = e.without_snippet().to_string();
        let first = msg.lines().next().unwrap_or("invalid YAML").to_string();
        WkError::input(format!("{origin}:{line}:{col}: {first}"), HINT)
    })?;
    let services = doc
        .get("services")
        .and_then(Value::as_object)
        .ok_or_else(|| WkError::input(format!("{origin}: no `services:` map"), HINT))?;
    let mut out = ComposeCluster {
        name: doc.get("name").and_then(Value::as_str).map(str::to_string),
        ..ComposeCluster::default()
    };
    let mut seen: BTreeMap<u64, String> = BTreeMap::new();
    for (service, spec) in services {
        let env = environment(spec);
        let Some(raw_id) = env.get("WK_CLUSTER_NODEID") else {
            if is_nginx(service, spec) {
                out.nginx.push(service.clone());
            }
            continue;
        };
        let id_text = interpolate_in(raw_id, dotenv);
        let id = id_text
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|id| (1..=crate::manifest::MAX_NODE_ID).contains(id))
            .ok_or_else(|| {
                WkError::input(
                    format!("{origin}: service `{service}`: `WK_CLUSTER_NODEID` is `{id_text}`, not a node id in 1..=1023"),
                    "set it to the node's id, e.g. `WK_CLUSTER_NODEID=1001`",
                )
            })?;
        if let Some(first) = seen.insert(id, service.clone()) {
            return Err(WkError::input(
                format!("{origin}: services `{first}` and `{service}` both use node id {id}"),
                "every WuKongIM node needs its own `WK_CLUSTER_NODEID`",
            ));
        }
        let node = read_node(service, id, spec, &env, dotenv, &mut out.warnings);
        if is_placeholder_host(&node.host) {
            return Err(WkError::input(
                format!(
                    "{origin}: service `{service}`: `{}` holds the placeholder host `{}` from upstream's example",
                    node.host_from, node.host
                ),
                "replace it with the node's real address (the one its peers and wkctl reach), then run `wkctl init --from-compose` again",
            ));
        }
        out.nodes.push(node);
    }
    out.warnings.extend(problems(&out.nodes));
    if out.nodes.is_empty() {
        return Err(WkError::input(
            format!("{origin}: no service sets `WK_CLUSTER_NODEID`"),
            HINT,
        ));
    }
    out.nodes.sort_by_key(|n| n.id);
    Ok(out)
}

fn read_node(
    service: &str,
    id: u64,
    spec: &Value,
    env: &BTreeMap<String, String>,
    dotenv: &BTreeMap<String, String>,
    warnings: &mut Vec<String>,
) -> ComposeNode {
    let get = |k: &str| {
        env.get(k)
            .map(|v| interpolate_in(v, dotenv).trim().to_string())
            .filter(|v| !v.is_empty() && !v.contains('$'))
    };
    let api_url = get("WK_CLUSTER_APIURL").and_then(|u| base_url(&u));
    let (host, host_from) = if let Some(h) = api_url.as_ref().and_then(|u| url_host(u)) {
        (h, "WK_CLUSTER_APIURL")
    } else if let Some(ip) = get("WK_EXTERNAL_IP") {
        (ip, "WK_EXTERNAL_IP")
    } else if let Some(h) = get("WK_CLUSTER_SERVERADDR").and_then(|a| addr_host(&a)) {
        (h, "WK_CLUSTER_SERVERADDR")
    } else {
        warnings.push(format!(
            "service `{service}` sets none of `WK_CLUSTER_APIURL`, `WK_EXTERNAL_IP`, `WK_CLUSTER_SERVERADDR`: its host is the service name; set `host:` by hand"
        ));
        (service.to_string(), "the service name")
    };
    let published = published(spec, 5001, dotenv);
    let alias = network_aliases(spec)
        .iter()
        .any(|a| a.eq_ignore_ascii_case(&host))
        || host == service;
    // A compose network alias (upstream's `nodeN.wk.local`) resolves only inside the
    // network; with the API port published, the node is reached on this machine, where
    // its compose file and its steps run (the manifest has no ssh).
    let (host, host_from, host_is_alias, api_url) = match (&published, alias) {
        (Some((ip, _)), true) => (
            ip.clone()
                .filter(|ip| !matches!(ip.as_str(), "0.0.0.0" | "::" | ""))
                .unwrap_or_else(|| "127.0.0.1".into()),
            "the published API port (its own host name resolves only inside the compose network)",
            false,
            None,
        ),
        _ => (
            host,
            host_from,
            alias && host_from != "the service name",
            api_url,
        ),
    };
    let (api, api_from) = match api_url {
        Some(u) => (Some(u), "WK_CLUSTER_APIURL"),
        None => match &published {
            Some((_, port)) => (
                Some(format!("http://{}:{port}", bracket(&host))),
                "the published port of 5001",
            ),
            None => (None, ""),
        },
    };
    let raw_image = spec.get("image").and_then(Value::as_str).unwrap_or("");
    let image_env = image_variable(raw_image);
    let image = interpolate_in(raw_image, dotenv);
    let (image_repo, tag) = split_image(&image);
    let version = tag
        .and_then(|t| WkVersion::parse(t).ok())
        .filter(|v| v.date().is_some());
    let build = spec.get("build").is_some_and(|b| !b.is_null());
    let data_dir = data_volume(spec, env, dotenv);
    let api_published = published.is_some();
    ComposeNode {
        service: service.to_string(),
        id,
        host,
        host_from,
        api,
        api_from,
        version,
        image_repo: image_repo.filter(|r| !r.is_empty() && !r.contains('$')),
        image_env,
        has_token: get("WK_MANAGERTOKEN").is_some() || env.contains_key("WK_MANAGERTOKEN"),
        build,
        data_dir,
        api_published,
        host_is_alias,
    }
}

/// The variable an `image:` is read from (`${WK_IMAGE:-...}` → `WK_IMAGE`).
fn image_variable(raw_image: &str) -> Option<String> {
    raw_image
        .strip_prefix("${")
        .and_then(|r| r.split([':', '-', '}']).next())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// How one compose service gets its image (for `check`, issue 13.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceImage {
    pub name: String,
    /// `image:` as written.
    pub image: Option<String>,
    pub image_env: Option<String>,
    pub build: bool,
    /// It sets `WK_CLUSTER_NODEID` (a WuKongIM node).
    pub is_node: bool,
}

/// Every service of a compose file with how it gets its image. YAML merge keys
/// (`<<: *common`, used by upstream's `docker/cluster/docker-compose.yaml`) are resolved.
pub fn services(text: &str) -> Result<Vec<ServiceImage>, String> {
    let doc: Value = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
    let services = doc
        .get("services")
        .and_then(Value::as_object)
        .ok_or_else(|| "no `services:` map".to_string())?;
    Ok(services
        .iter()
        .map(|(name, spec)| {
            let image = spec
                .get("image")
                .and_then(Value::as_str)
                .map(str::to_string);
            ServiceImage {
                name: name.clone(),
                image_env: image.as_deref().and_then(image_variable),
                image,
                build: spec.get("build").is_some_and(|b| !b.is_null()),
                is_node: environment(spec).contains_key("WK_CLUSTER_NODEID"),
            }
        })
        .collect())
}

/// The host side of the volume mounted at the node's root directory.
fn data_volume(
    spec: &Value,
    env: &BTreeMap<String, String>,
    dotenv: &BTreeMap<String, String>,
) -> Option<String> {
    let interpolate = |s: &str| interpolate_in(s, dotenv);
    let root = env
        .get("WK_ROOTDIR")
        .map(|r| interpolate(r).trim().trim_end_matches('/').to_string())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "/root/wukongim".to_string());
    let volumes = spec.get("volumes")?.as_array()?;
    volumes.iter().find_map(|v| {
        let (source, target) = match v {
            Value::String(s) => {
                let s = interpolate(s);
                let mut parts = s.splitn(3, ':');
                let (src, dst) = (parts.next()?.to_string(), parts.next()?.to_string());
                (src, dst)
            }
            Value::Object(m) => (
                interpolate(m.get("source")?.as_str()?),
                interpolate(m.get("target")?.as_str()?),
            ),
            _ => return None,
        };
        (target.trim_end_matches('/') == root && !source.is_empty()).then(|| {
            let s = source.trim_end_matches('/');
            s.strip_prefix("./").unwrap_or(s).to_string()
        })
    })
}

/// The network aliases of a service (`networks: { net: { aliases: [...] } }`), plus its
/// `container_name` and the service name itself, all of which resolve only inside the
/// compose network.
fn network_aliases(spec: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(Value::Object(nets)) = spec.get("networks") {
        for net in nets.values() {
            if let Some(Value::Array(a)) = net.get("aliases") {
                out.extend(a.iter().filter_map(Value::as_str).map(str::to_string));
            }
        }
    }
    if let Some(c) = spec.get("container_name").and_then(Value::as_str) {
        out.push(c.to_string());
    }
    out
}

/// A placeholder host from upstream's examples (`xx.xxx.xxx.xx`, `xxx.xxx.xxx.xxx`,
/// docs-site `quick-start/docker-single-node.mdx`) or an unfilled template (`<ip>`).
pub fn is_placeholder_host(host: &str) -> bool {
    let h = host.trim();
    let x_only = h.contains(['x', 'X']) && h.chars().all(|c| matches!(c, 'x' | 'X' | '.' | '*'));
    x_only || h.contains(['<', '>', '{', '}']) || h.is_empty()
}

/// A service's `environment`, in list (`- K=V`) or map (`K: V`) form. Values from the
/// host's environment (`- K` without `=`) are absent.
fn environment(spec: &Value) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    match spec.get("environment") {
        Some(Value::Array(items)) => {
            for item in items.iter().filter_map(Value::as_str) {
                if let Some((k, v)) = item.split_once('=') {
                    env.insert(k.trim().to_string(), v.to_string());
                }
            }
        }
        Some(Value::Object(map)) => {
            for (k, v) in map {
                let v = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => continue,
                };
                env.insert(k.clone(), v);
            }
        }
        _ => {}
    }
    env
}

/// `http://host:port` from a URL (path dropped), if it is an http(s) URL with a host.
fn base_url(s: &str) -> Option<String> {
    let u = reqwest::Url::parse(s).ok()?;
    if !matches!(u.scheme(), "http" | "https") {
        return None;
    }
    let origin = u.origin().ascii_serialization();
    (origin != "null").then_some(origin)
}

fn url_host(base: &str) -> Option<String> {
    let u = reqwest::Url::parse(base).ok()?;
    let h = u.host_str()?;
    Some(h.trim_start_matches('[').trim_end_matches(']').to_string())
}

/// The host of `tcp://host:11110`, `host:11110` or `[::1]:11110`.
fn addr_host(s: &str) -> Option<String> {
    let s = s.split_once("://").map_or(s, |(_, r)| r);
    let host = match s.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => s,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty()).then(|| host.to_string())
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// The host address and port publishing container port `target` (`"15001:5001"`,
/// `"127.0.0.1:15001:5001/tcp"` or the long form `{ target: 5001, published: 15001,
/// host_ip: 127.0.0.1 }`); the address is `None` when not given.
fn published(
    spec: &Value,
    target: u16,
    dotenv: &BTreeMap<String, String>,
) -> Option<(Option<String>, u16)> {
    let interpolate = |s: &str| interpolate_in(s, dotenv);
    let ports = spec.get("ports")?.as_array()?;
    ports.iter().find_map(|p| match p {
        Value::String(s) => {
            let s = interpolate(s);
            let s = s.split('/').next().unwrap_or("");
            let fields: Vec<&str> = s.rsplitn(3, ':').collect();
            match fields.as_slice() {
                [container, host, rest @ ..] if container.parse::<u16>().ok() == Some(target) => {
                    let ip = rest
                        .first()
                        .map(|ip| ip.trim_start_matches('[').trim_end_matches(']').to_string());
                    host.parse::<u16>().ok().map(|port| (ip, port))
                }
                _ => None,
            }
        }
        Value::Object(m) => {
            let num = |v: Option<&Value>| match v? {
                Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
                Value::String(s) => interpolate(s).parse().ok(),
                _ => None,
            };
            let ip = m.get("host_ip").and_then(Value::as_str).map(interpolate);
            (num(m.get("target")) == Some(target))
                .then(|| num(m.get("published")).map(|port| (ip, port)))
                .flatten()
        }
        _ => None,
    })
}

/// `(repository, tag)` of an image reference; a digest (`@sha256:...`) is not a tag.
fn split_image(image: &str) -> (Option<String>, Option<&str>) {
    let image = image.split('@').next().unwrap_or("").trim();
    if image.is_empty() {
        return (None, None);
    }
    let last_slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[last_slash..].rfind(':') {
        Some(i) => (
            Some(image[..last_slash + i].to_string()),
            Some(&image[last_slash + i + 1..]),
        ),
        None => (Some(image.to_string()), None),
    }
}

#[cfg(test)]
mod tests;

/// A service that runs nginx: its image is `nginx` (any registry or tag), or it builds
/// one and is named so (upstream's cluster recipe: service `nginx`, image `nginx:latest`).
fn is_nginx(service: &str, spec: &Value) -> bool {
    let image = spec.get("image").and_then(Value::as_str).unwrap_or("");
    let repo = image.split(['@', ':']).next().unwrap_or("");
    let last = repo.rsplit('/').next().unwrap_or("");
    last.starts_with("nginx") || (image.is_empty() && service.contains("nginx"))
}
