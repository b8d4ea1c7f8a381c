//! Checks of the manifest held against its playbook, before anything runs (issue 13.8,
//! 13.19, 14 §4): can the playbook change the version at all, do the node addresses
//! agree, and is a Kubernetes deployment safe to roll pod by pod.
//!
//! [`findings`] is what `check` and `plan` add to their findings. It is pure except for
//! [`local_compose_findings`], which reads the compose file when steps run on this
//! machine (no `ssh:`), since that file is the one the steps use.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::compose;
use crate::finding::{Finding, FindingId, hints};
use crate::manifest::Manifest;
use crate::playbook::{self, Playbook};
use crate::probe::ClusterView;

/// Every playbook finding. `view` (when the cluster was observed) adds what only the live
/// cluster shows, e.g. a pod-IP cluster address.
pub fn findings(manifest: &Manifest, pb: &Playbook, view: Option<&ClusterView>) -> Vec<Finding> {
    let mut out = host_api_findings(manifest);
    for n in &manifest.nodes {
        if let Some(e) = playbook::preset_error(pb, &manifest.vars, n) {
            out.push(Finding::block(
                FindingId::PlaybookUnknownPreset,
                Some(n.id),
                e,
                hints::PLAYBOOK_UNKNOWN_PRESET,
            ));
        }
    }
    if pb.name == "kubernetes" {
        out.extend(kubernetes_findings(manifest, pb, view));
    }
    if pb.name == "docker-compose" && manifest.ssh.is_none() {
        out.extend(local_compose_findings(manifest, pb));
    }
    out
}

/// 13.19: steps run on `host`, wkctl reads the node at `api`; different machines usually
/// mean a typo (a step would stop one machine while the gate watches another).
pub fn host_api_findings(manifest: &Manifest) -> Vec<Finding> {
    let mut out = Vec::new();
    for n in &manifest.nodes {
        let Some(api_host) = url::Url::parse(&n.api).ok().and_then(|u| {
            u.host_str()
                .map(|h| h.trim_matches(['[', ']']).to_ascii_lowercase())
        }) else {
            continue;
        };
        let host = n.host.trim_matches(['[', ']']).to_ascii_lowercase();
        if api_host != host {
            out.push(Finding::warn(
                FindingId::NodeHostApiDiffer,
                Some(n.id),
                format!(
                    "node {}: steps run on `{}` but its API is read at `{}`",
                    n.id, n.host, n.api
                ),
                hints::NODE_HOST_API_DIFFER,
            ));
        }
    }
    out
}

/// What the chart tells (through the preset, or `vars` the operator sets) about a
/// Kubernetes deployment: `pv` (`true`/`false`), `cluster_address` (`pod-ip`/`dns`) and
/// `liveness_probe` (`none`/`health`). The live view adds the cluster addresses as seen.
pub fn kubernetes_findings(
    manifest: &Manifest,
    pb: &Playbook,
    view: Option<&ClusterView>,
) -> Vec<Finding> {
    let Some(first) = manifest.nodes.first() else {
        return Vec::new();
    };
    let vars = playbook::node_vars(pb, &manifest.vars, first, None, "");
    let get = |k: &str| vars.get(k).map_or("", String::as_str);
    let mut out = Vec::new();
    if get("pv") == "false" {
        out.push(Finding::block(
            FindingId::K8sNoPersistentVolume,
            None,
            format!("StatefulSet `{}` keeps its data in the pod (no persistent volume): deleting a pod to upgrade it wipes that node", get("statefulset")),
            hints::K8S_NO_PERSISTENT_VOLUME,
        ));
    }
    let pod_ips: Vec<u64> = view
        .map(|v| {
            v.nodes
                .iter()
                .filter(|n| {
                    n.cluster_addr.as_deref().is_some_and(|a| {
                        let host = a.rsplit_once(':').map_or(a, |(h, _)| h);
                        host.trim_matches(['[', ']'])
                            .parse::<std::net::IpAddr>()
                            .is_ok()
                    })
                })
                .map(|n| n.id)
                .collect()
        })
        .unwrap_or_default();
    if get("cluster_address") == "pod-ip" || !pod_ips.is_empty() {
        let which = if pod_ips.is_empty() {
            "the chart sets `WK_CLUSTER_SERVERADDR` to the pod IP".to_string()
        } else {
            format!(
                "node(s) {} have an IP as cluster address",
                pod_ips
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        out.push(Finding::block(
            FindingId::K8sPodIpClusterAddress,
            None,
            format!("{which}: a recreated pod gets a new IP and cannot rejoin, since v2 pins addresses in its cluster config (WuKongIM #364)"),
            hints::K8S_POD_IP_CLUSTER_ADDRESS,
        ));
    }
    if get("liveness_probe") == "health" {
        out.push(Finding::warn(
            FindingId::K8sLivenessOnHealth,
            None,
            "the pods have a liveness probe on `/health`: it answers 500 `slot not ready` during every slot re-election (killing healthy pods mid-upgrade) and 401 when a managerToken is set",
            hints::K8S_LIVENESS_ON_HEALTH,
        ));
    }
    out
}

/// 13.8 and 14 §4 for the compose files the steps use on this machine: a service the
/// playbook cannot change (`build:` or a fixed tag) blocks; node services sharing one
/// image variable warn.
pub fn local_compose_findings(manifest: &Manifest, pb: &Playbook) -> Vec<Finding> {
    let base = manifest.path.parent().unwrap_or(Path::new("."));
    // compose file → [(node id, service, image_env)]
    let mut files: BTreeMap<PathBuf, Vec<(u64, String, String)>> = BTreeMap::new();
    for n in &manifest.nodes {
        let vars = playbook::node_vars(pb, &manifest.vars, n, None, "");
        let Some(dir) = vars.get("compose_dir") else {
            continue;
        };
        let dir = base.join(dir);
        let file = vars.get("compose_file").map(|f| dir.join(f)).or_else(|| {
            [
                "compose.yaml",
                "compose.yml",
                "docker-compose.yaml",
                "docker-compose.yml",
            ]
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.is_file())
        });
        let Some(file) = file else { continue };
        files.entry(file).or_default().push((
            n.id,
            vars.get("service").cloned().unwrap_or_default(),
            vars.get("image_env").cloned().unwrap_or_default(),
        ));
    }
    let mut out = Vec::new();
    for (file, nodes) in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        out.extend(compose_findings(&text, &file.display().to_string(), &nodes));
    }
    out
}

/// Pure part of [`local_compose_findings`]: `nodes` are (node id, service, image
/// variable) of the manifest nodes using this compose text.
pub fn compose_findings(text: &str, origin: &str, nodes: &[(u64, String, String)]) -> Vec<Finding> {
    let Ok(services) = compose::services(text) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (id, service, image_env) in nodes {
        let Some(s) = services.iter().find(|s| &s.name == service) else {
            out.push(Finding::block(
                FindingId::PlaybookCannotChangeVersion,
                Some(*id),
                format!("node {id}: `{origin}` has no service `{service}`"),
                hints::PLAYBOOK_NO_SUCH_SERVICE,
            ));
            continue;
        };
        let uses_var = s.image_env.as_deref() == Some(image_env.as_str());
        if s.build && !uses_var {
            out.push(Finding::block(
                FindingId::PlaybookCannotChangeVersion,
                Some(*id),
                format!("node {id}: service `{service}` in `{origin}` is built from source (`build:`), so the playbook cannot change its version"),
                hints::playbook_built_from_source(image_env),
            ));
        } else if !uses_var {
            let what = s
                .image
                .as_deref()
                .map_or_else(|| "no `image:`".to_string(), |i| format!("`image: {i}`"));
            out.push(Finding::block(
                FindingId::PlaybookCannotChangeVersion,
                Some(*id),
                format!("node {id}: service `{service}` in `{origin}` has {what}, which the playbook does not set (it writes `{image_env}` in `.env`)"),
                hints::playbook_fixed_image(image_env),
            ));
        }
    }
    let mut by_env: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for s in services.iter().filter(|s| s.is_node) {
        if let Some(e) = &s.image_env {
            by_env.entry(e).or_default().push(&s.name);
        }
    }
    for (env, names) in by_env.into_iter().filter(|(_, v)| v.len() > 1) {
        out.push(Finding::warn(
            FindingId::ComposeSharedImageVariable,
            None,
            format!("WuKongIM services {} in `{origin}` share the image variable `{env}`: after the first node, a stray `docker compose up -d` would recreate every other node at once", names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")),
            hints::COMPOSE_SHARED_IMAGE_VARIABLE,
        ));
    }
    out
}

#[cfg(test)]
mod tests;
