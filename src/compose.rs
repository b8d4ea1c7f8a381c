//! Reading a WuKongIM docker-compose file for `wkctl init --from-compose` (facts §6.2).
//!
//! A WuKongIM node is a service whose `environment` sets `WK_CLUSTER_NODEID` (facts §5.1:
//! viper maps `cluster.nodeId` to that variable); other services (nginx, prometheus) are
//! ignored. `${VAR:-default}` takes its default; other interpolations are left as written.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::WkError;
use crate::version::WkVersion;

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
}

const HINT: &str = "pass a WuKongIM docker-compose file whose services set `WK_CLUSTER_NODEID`, or run `wkctl init` without `--from-compose` for a starter manifest";

/// Parses compose text; `origin` (the file's path) names it in errors.
pub fn parse(text: &str, origin: &str) -> Result<ComposeCluster, WkError> {
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
            continue;
        };
        let id_text = interpolate(raw_id);
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
        let node = read_node(service, id, spec, &env, &mut out.warnings);
        out.nodes.push(node);
    }
    let fixed: Vec<String> = out
        .nodes
        .iter()
        .filter(|n| n.image_env.is_none() && n.image_repo.is_some())
        .map(|n| format!("`{}`", n.service))
        .collect();
    if !fixed.is_empty() {
        out.warnings.push(format!(
            "{} {} a fixed `image:`; the docker-compose playbook sets the tag through a variable (`image_env`, default `WK_IMAGE`): write e.g. `image: ${{WK_IMAGE:-<the current image>}}`",
            fixed.join(", "),
            if fixed.len() == 1 { "has" } else { "have" }
        ));
    }
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
    warnings: &mut Vec<String>,
) -> ComposeNode {
    let get = |k: &str| {
        env.get(k)
            .map(|v| interpolate(v).trim().to_string())
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
    let (api, api_from) = match api_url {
        Some(u) => (Some(u), "WK_CLUSTER_APIURL"),
        None => match published_port(spec, 5001) {
            Some(port) => (
                Some(format!("http://{}:{port}", bracket(&host))),
                "the published port of 5001",
            ),
            None => (None, ""),
        },
    };
    let raw_image = spec.get("image").and_then(Value::as_str).unwrap_or("");
    let image_env = raw_image
        .strip_prefix("${")
        .and_then(|r| r.split([':', '-', '}']).next())
        .filter(|v| !v.is_empty())
        .map(str::to_string);
    let image = interpolate(raw_image);
    let (image_repo, tag) = split_image(&image);
    let version = tag
        .and_then(|t| WkVersion::parse(t).ok())
        .filter(|v| v.date().is_some());
    if raw_image.is_empty() {
        warnings.push(format!(
            "service `{service}` has no `image:` (built from source?): the docker-compose playbook upgrades by image tag"
        ));
    }
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
    }
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

/// Compose interpolation: `${VAR:-default}` and `${VAR-default}` become the default,
/// `$$` becomes `$`; `${VAR}`, `$VAR` and `${VAR:?err}` are left as written.
pub fn interpolate(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(body) = after.strip_prefix('{')
            && let Some(end) = closing_brace(body)
        {
            let inner = &body[..end];
            let default = inner
                .split_once(":-")
                .or_else(|| inner.split_once('-'))
                .filter(|(name, _)| name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
            if let Some((_, d)) = default {
                out.push_str(&interpolate(d));
            } else {
                out.push_str("${");
                out.push_str(inner);
                out.push('}');
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Index of the `}` closing a `${` whose body starts `body` (nested `${...}` allowed).
fn closing_brace(body: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in body.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
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

/// The host port publishing container port `target` (`"15001:5001"`, `"127.0.0.1:15001:5001/tcp"`
/// or the long form `{ target: 5001, published: 15001 }`).
fn published_port(spec: &Value, target: u16) -> Option<u16> {
    let ports = spec.get("ports")?.as_array()?;
    ports.iter().find_map(|p| match p {
        Value::String(s) => {
            let s = interpolate(s);
            let s = s.split('/').next().unwrap_or("");
            let fields: Vec<&str> = s.rsplitn(3, ':').collect();
            match fields.as_slice() {
                [container, host, ..] if container.parse::<u16>().ok() == Some(target) => {
                    host.parse::<u16>().ok()
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
            (num(m.get("target")) == Some(target))
                .then(|| num(m.get("published")))
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
#[path = "compose_tests.rs"]
mod tests;
