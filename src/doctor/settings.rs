//! Cluster settings that must agree across nodes (facts §5.3), read from what each
//! node's playbook `config` step prints: `WK_*` environment lines (`KEY=VALUE`) and/or a
//! `wk.yaml` (nested `key: value`). Pure.

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::finding::{Finding, FindingId, hints};

/// A compared setting: display name, normalized key, default, secret?
struct Key {
    name: &'static str,
    norm: &'static str,
    default: Option<&'static str>,
    secret: bool,
    list: bool,
}

const AGREE: &[Key] = &[
    Key {
        name: "cluster.slotCount",
        norm: "clusterslotcount",
        default: Some("64"),
        secret: false,
        list: false,
    },
    Key {
        name: "cluster.slotReplicaCount",
        norm: "clusterslotreplicacount",
        default: Some("3"),
        secret: false,
        list: false,
    },
    Key {
        name: "cluster.channelReplicaCount",
        norm: "clusterchannelreplicacount",
        default: Some("3"),
        secret: false,
        list: false,
    },
    Key {
        name: "cluster.initNodes",
        norm: "clusterinitnodes",
        default: None,
        secret: false,
        list: true,
    },
    Key {
        name: "managerToken",
        norm: "managertoken",
        default: None,
        secret: true,
        list: false,
    },
    Key {
        name: "jwt.secret",
        norm: "jwtsecret",
        default: None,
        secret: true,
        list: false,
    },
];

/// One node's effective settings, by normalized key (`WK_CLUSTER_SLOTCOUNT` and
/// `cluster.slotCount` are both `clusterslotcount`).
pub type Settings = BTreeMap<String, String>;

/// Normalizes a config key or a `WK_*` env name.
pub fn normalize(key: &str) -> String {
    let k = key.trim();
    let k = k.strip_prefix("WK_").unwrap_or(k);
    k.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Parses `KEY=VALUE` lines and indented YAML `key: value` lines.
pub fn parse(text: &str) -> Settings {
    let mut out = Settings::new();
    let mut stack: Vec<(usize, String)> = Vec::new();
    for raw in text.lines() {
        let line = raw.trim_end();
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let body = trimmed
            .strip_prefix("export ")
            .unwrap_or(trimmed)
            .trim_start_matches("- ");
        if let Some((k, v)) = body.split_once('=')
            && k.starts_with("WK_")
            && !k.contains(' ')
        {
            out.insert(normalize(k), unquote(v));
            continue;
        }
        let Some((k, v)) = body.split_once(':') else {
            continue;
        };
        if k.contains(' ') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        let v = v.trim();
        if k.starts_with("WK_") {
            out.insert(normalize(k), unquote(v));
        } else if v.is_empty() {
            stack.push((indent, k.to_string()));
        } else {
            let path: Vec<&str> = stack
                .iter()
                .map(|(_, s)| s.as_str())
                .chain(std::iter::once(k))
                .collect();
            out.insert(normalize(&path.join(".")), unquote(v));
        }
    }
    out
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    let v = v.split(" #").next().unwrap_or(v).trim();
    v.trim_matches(|c| c == '"' || c == '\'').to_string()
}

/// The key of one report's fingerprints: random, never written anywhere.
#[derive(Clone)]
pub struct FingerprintKey([u8; 32]);

impl FingerprintKey {
    /// A fresh random key (from the OS). Without one, secrets are shown only as
    /// `(set)`: an unkeyed hash of a weak token is recovered with a dictionary.
    pub fn random() -> Option<FingerprintKey> {
        let mut k = [0u8; 32];
        getrandom::fill(&mut k).ok()?;
        Some(FingerprintKey(k))
    }
}

impl std::fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FingerprintKey(..)")
    }
}

/// A short fingerprint of a secret, keyed by this report's random key: equal secrets
/// give equal fingerprints within one report, and nothing outside it (a dictionary of
/// weak tokens is useless without the key, which is never shown).
pub fn fingerprint(key: Option<&FingerprintKey>, secret: &str) -> String {
    let Some(key) = key else {
        return "(set)".to_string();
    };
    let mut h = Sha256::new();
    h.update(key.0);
    h.update((secret.len() as u64).to_le_bytes());
    h.update(secret.as_bytes());
    format!("fp:{}", &crate::manifest::hex(&h.finalize())[..12])
}

/// One row of the settings table.
#[derive(Debug, Clone, Serialize)]
pub struct SettingRow {
    pub key: &'static str,
    /// Per node: the value (secrets as fingerprints; `(default 64)` when unset).
    pub values: BTreeMap<u64, String>,
    pub agree: bool,
}

/// Builds the table of settings that must agree, and the findings.
pub fn compare(
    nodes: &BTreeMap<u64, Settings>,
    hosts: &BTreeMap<u64, (String, String)>,
    key: Option<&FingerprintKey>,
) -> (Vec<SettingRow>, Vec<Finding>) {
    let mut findings = Vec::new();
    let mut rows: Vec<SettingRow> = AGREE
        .iter()
        .map(|k| agree_row(k, nodes, key, &mut findings))
        .collect();
    rows.push(node_id_row(nodes, &mut findings));
    for (name, norm, expect_api) in [
        ("cluster.serverAddr", "clusterserveraddr", false),
        ("cluster.apiUrl", "clusterapiurl", true),
    ] {
        rows.push(self_address_row(
            (name, norm, expect_api),
            nodes,
            hosts,
            &mut findings,
        ));
    }
    (rows, findings)
}

/// The row of one setting that must agree; a `settings.mismatch` when it does not.
fn agree_row(
    key: &Key,
    nodes: &BTreeMap<u64, Settings>,
    fp_key: Option<&FingerprintKey>,
    findings: &mut Vec<Finding>,
) -> SettingRow {
    let values: BTreeMap<u64, String> = nodes
        .iter()
        .map(|(id, s)| (*id, shown(key, s.get(key.norm), fp_key)))
        .collect();
    let canon = |v: &String| {
        v.trim_start_matches("(default ")
            .trim_end_matches(')')
            .to_string()
    };
    let distinct: std::collections::BTreeSet<String> = values.values().map(canon).collect();
    let agree = distinct.len() <= 1;
    if !agree {
        findings.push(mismatch(key, &values));
    }
    SettingRow {
        key: key.name,
        values,
        agree,
    }
}

/// A node's value of `key` as the table shows it: secrets as fingerprints, lists sorted,
/// `(default …)` or `(unset)` when the node does not set it.
fn shown(key: &Key, value: Option<&String>, fp_key: Option<&FingerprintKey>) -> String {
    match value.filter(|v| !v.is_empty()) {
        Some(v) if key.secret => fingerprint(fp_key, v),
        Some(v) if key.list => {
            let mut items: Vec<&str> = v
                .split(|c: char| c.is_whitespace() || c == ',')
                .filter(|x| !x.is_empty())
                .collect();
            items.sort_unstable();
            items.join(" ")
        }
        Some(v) => v.clone(),
        None => key
            .default
            .map_or_else(|| "(unset)".to_string(), |d| format!("(default {d})")),
    }
}

/// `settings.mismatch`: every node's (shown) value of `key`.
fn mismatch(key: &Key, values: &BTreeMap<u64, String>) -> Finding {
    let detail = values
        .iter()
        .map(|(id, v)| format!("{id}={v}"))
        .collect::<Vec<_>>()
        .join(", ");
    Finding::block(
        FindingId::SettingsMismatch,
        None,
        format!("`{}` differs between nodes: {detail}", key.name),
        hints::settings_mismatch(key.name, key.secret),
    )
}

/// The `cluster.nodeId` row: unique, and equal to the manifest id.
fn node_id_row(nodes: &BTreeMap<u64, Settings>, findings: &mut Vec<Finding>) -> SettingRow {
    let mut ids = BTreeMap::new();
    for (id, s) in nodes {
        let nid = s
            .get("clusternodeid")
            .cloned()
            .unwrap_or_else(|| "(default 1001)".into());
        ids.insert(*id, nid.clone());
        let value = nid.trim_start_matches("(default ").trim_end_matches(')');
        if value != id.to_string() {
            findings.push(Finding::block(
                FindingId::SettingsNodeIdMismatch,
                Some(*id),
                format!("node {id}: its `cluster.nodeId` is {value}"),
                hints::SETTINGS_NODE_ID_MISMATCH,
            ));
        }
    }
    let mut seen: BTreeMap<&String, u64> = BTreeMap::new();
    for (id, v) in &ids {
        if let Some(other) = seen.insert(v, *id) {
            findings.push(Finding::block(
                FindingId::SettingsDuplicateNodeId,
                Some(*id),
                format!("nodes {other} and {id} both use `cluster.nodeId` {v}"),
                hints::SETTINGS_DUPLICATE_NODE_ID,
            ));
        }
    }
    SettingRow {
        key: "cluster.nodeId",
        values: ids,
        agree: true,
    }
}

/// The row of an address a node announces (`cluster.serverAddr`, `cluster.apiUrl`):
/// it must point at the node itself (`hosts`: each node's manifest host and API).
fn self_address_row(
    (key, norm, expect_api): (&'static str, &str, bool),
    nodes: &BTreeMap<u64, Settings>,
    hosts: &BTreeMap<u64, (String, String)>,
    findings: &mut Vec<Finding>,
) -> SettingRow {
    let mut values = BTreeMap::new();
    for (id, s) in nodes {
        let v = s.get(norm).cloned().unwrap_or_default();
        if let Some((host, api)) = hosts.get(id)
            && !points_at_self(&v, host, api, expect_api)
        {
            let what = if v.is_empty() {
                "is not set".to_string()
            } else {
                format!("is `{v}`, not this node ({host})")
            };
            findings.push(Finding::warn(
                FindingId::SettingsAddressNotSelf,
                Some(*id),
                format!("node {id}: `{key}` {what}"),
                hints::SETTINGS_ADDRESS_NOT_SELF,
            ));
        }
        values.insert(*id, if v.is_empty() { "(unset)".into() } else { v });
    }
    SettingRow {
        key,
        values,
        agree: true,
    }
}

/// Whether the address `v` names this node (`host`; for an API URL also `api` itself).
fn points_at_self(v: &str, host: &str, api: &str, expect_api: bool) -> bool {
    if v.is_empty() {
        false
    } else if expect_api {
        v.trim_end_matches('/') == api.trim_end_matches('/') || url_host(v) == Some(host)
    } else {
        addr_host(v) == host
    }
}

fn addr_host(addr: &str) -> &str {
    let a = addr.trim().trim_start_matches("tcp://");
    match a.rsplit_once(':') {
        Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']'),
        None => a,
    }
}

fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map(|(_, r)| r)?;
    Some(addr_host(rest.split('/').next()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_lines_and_yaml_normalize_to_the_same_keys() {
        let s = parse(
            "WK_CLUSTER_SLOTCOUNT=64\nexport WK_MANAGERTOKEN='abc'\ncluster:\n  slotReplicaCount: 3\n  initNodes: \"1@a 2@b\"\njwt:\n  secret: xyz # comment\n",
        );
        assert_eq!(s["clusterslotcount"], "64");
        assert_eq!(s["managertoken"], "abc");
        assert_eq!(s["clusterslotreplicacount"], "3");
        assert_eq!(s["clusterinitnodes"], "1@a 2@b");
        assert_eq!(s["jwtsecret"], "xyz");
        // docker compose config: environment map
        let s =
            parse("services:\n  wukongim1:\n    environment:\n      WK_CLUSTER_NODEID: \"1001\"\n");
        assert_eq!(s["clusternodeid"], "1001");
    }

    fn node(id: u64, extra: &str) -> (u64, Settings) {
        let text = format!(
            "WK_CLUSTER_NODEID={id}\nWK_CLUSTER_SERVERADDR=10.0.0.{id}:11110\nWK_CLUSTER_APIURL=http://10.0.0.{id}:5001\nWK_MANAGERTOKEN=secret-token\n{extra}"
        );
        (id, parse(&text))
    }

    fn hosts() -> BTreeMap<u64, (String, String)> {
        [1u64, 2, 3]
            .iter()
            .map(|i| {
                (
                    *i,
                    (format!("10.0.0.{i}"), format!("http://10.0.0.{i}:5001")),
                )
            })
            .collect()
    }

    #[test]
    fn a_differing_slot_count_and_token_are_reported_without_the_token() {
        let nodes: BTreeMap<u64, Settings> = [
            node(1, ""),
            node(2, "WK_CLUSTER_SLOTCOUNT=128\nWK_MANAGERTOKEN=other-token"),
            node(3, "WK_CLUSTER_SLOTCOUNT=64"),
        ]
        .into_iter()
        .collect();
        let (rows, findings) = compare(&nodes, &hosts(), FingerprintKey::random().as_ref());
        let slot = rows.iter().find(|r| r.key == "cluster.slotCount").unwrap();
        assert!(!slot.agree);
        assert_eq!(slot.values[&1], "(default 64)");
        let msgs: Vec<&str> = findings.iter().map(|f| f.message.as_str()).collect();
        assert!(
            msgs.iter()
                .any(|m| m.contains("cluster.slotCount") && m.contains("2=128")),
            "{msgs:?}"
        );
        let tok = findings
            .iter()
            .find(|f| f.message.contains("managerToken"))
            .unwrap();
        assert!(!tok.message.contains("secret-token") && !tok.message.contains("other-token"));
        assert!(tok.message.contains("fp:"), "{}", tok.message);
        assert_eq!(findings.len(), 2, "{msgs:?}");
    }

    #[test]
    fn fingerprints_are_keyed_per_report() {
        let (a, b) = (
            FingerprintKey::random().unwrap(),
            FingerprintKey::random().unwrap(),
        );
        // Comparable within one report...
        assert_eq!(
            fingerprint(Some(&a), "secret"),
            fingerprint(Some(&a), "secret")
        );
        assert_ne!(
            fingerprint(Some(&a), "secret"),
            fingerprint(Some(&a), "secret2")
        );
        // ...useless outside it: another report's key gives another value, and neither
        // is the plain sha256 a dictionary would hold.
        assert_ne!(
            fingerprint(Some(&a), "secret"),
            fingerprint(Some(&b), "secret")
        );
        let plain = crate::manifest::hex(&Sha256::digest(b"secret"));
        assert!(!fingerprint(Some(&a), "secret").contains(&plain[..12]));
        assert_eq!(fingerprint(None, "secret"), "(set)");
    }

    #[test]
    fn ids_and_addresses_are_checked() {
        let mut nodes: BTreeMap<u64, Settings> = [node(1, ""), node(2, "")].into_iter().collect();
        nodes.insert(
            3,
            parse("WK_CLUSTER_NODEID=2\nWK_CLUSTER_SERVERADDR=10.9.9.9:11110\n"),
        );
        let (_, findings) = compare(&nodes, &hosts(), FingerprintKey::random().as_ref());
        let ids: Vec<FindingId> = findings.iter().map(|f| f.id).collect();
        assert!(ids.contains(&FindingId::SettingsNodeIdMismatch));
        assert!(ids.contains(&FindingId::SettingsDuplicateNodeId));
        assert!(
            findings
                .iter()
                .any(|f| f.id == FindingId::SettingsAddressNotSelf && f.node == Some(3))
        );
    }
}
