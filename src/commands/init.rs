//! `wkctl init [--from-compose FILE] [-o cluster.yaml] [--force]`: a starter manifest, or
//! one read from an existing WuKongIM docker-compose file (DESIGN §1).
//!
//! The text is checked with `manifest::parse` before it is written, so `init` never leaves
//! a manifest that `check` or `plan` would reject.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::cli::InitArgs;
use crate::compose::{self, ComposeCluster};
use crate::error::{Outcome, WkError};
use crate::output::Printer;

/// The first line of every written manifest: editors validate against the schema.
pub const SCHEMA_LINE: &str = "# yaml-language-server: $schema=https://raw.githubusercontent.com/wkctl/wkctl/main/schemas/cluster.schema.json";

pub fn run(args: &InitArgs, p: &Printer) -> anyhow::Result<Outcome> {
    let to_stdout = args.output.as_os_str() == "-";
    if !to_stdout && !args.force && args.output.exists() {
        return Err(WkError::no(
            format!("`{}` already exists", args.output.display()),
            "pass `--force` to overwrite it, or `-o other.yaml` to write elsewhere",
        )
        .into());
    }
    let (text, summary) = match &args.from_compose {
        Some(file) => {
            let shown = file.display().to_string();
            let content = std::fs::read_to_string(file).map_err(|e| {
                WkError::input(
                    format!("cannot read compose file `{shown}`: {e}"),
                    "pass the path of your WuKongIM docker-compose file",
                )
            })?;
            let cluster = compose::parse(&content, &shown)?;
            for w in &cluster.warnings {
                p.warn(w, None);
            }
            let dir = compose_dir(file);
            let text = from_compose(&cluster, file, &dir);
            let n = cluster.nodes.len();
            (text, format!("{n} node(s) from `{shown}`"))
        }
        None => (starter(), "a starter manifest: edit the nodes".to_string()),
    };
    // Never write a manifest the loader would refuse.
    crate::manifest::parse(&text, &args.output).map_err(|e| {
        WkError::input(
            format!("the generated manifest is invalid: {}", e.message),
            "fix the compose file's values (or report a bug with it attached)",
        )
    })?;
    if to_stdout {
        p.out(text.trim_end())?;
        return Ok(Outcome::Success);
    }
    std::fs::write(&args.output, &text).map_err(|e| {
        WkError::input(
            format!("cannot write `{}`: {e}", args.output.display()),
            "check the directory exists and is writable, or pass `-o FILE`",
        )
    })?;
    let m = args.output.display();
    p.note(&format!("wrote `{m}`: {summary}"));
    p.note(&format!(
        "next: `wkctl check --to v2.1.2 --offline -m {m}`, then `wkctl status -m {m}`"
    ));
    Ok(Outcome::Success)
}

/// The compose file's directory, absolute when it can be (steps `cd` into it).
fn compose_dir(file: &Path) -> PathBuf {
    let parent = crate::commands::manifest_dir(file);
    std::fs::canonicalize(&parent).unwrap_or(parent)
}

/// The starter manifest: every key shown once, with what it means.
pub fn starter() -> String {
    format!(
        "{SCHEMA_LINE}
# A WuKongIM v2 cluster for wkctl. Edit the nodes, then:
#   wkctl check --to v2.1.2 --offline && wkctl plan --to v2.1.2
name: im-prod                       # names the state directory .wkctl/<name>/
playbook: docker-compose            # docker-compose | systemd | binary-daemon | kubernetes | a file
api:
  # token_env: WK_MANAGER_TOKEN     # env var holding the managerToken (never the token itself)
  timeout: 5s
ssh:                                # run steps on each node's host; delete for local execution
  user: deploy
  port: 22
vars:                               # values for the playbook templates (see `wkctl schema playbook`)
  compose_dir: /opt/wukongim
  service: wukongim
nodes:                              # WK_CLUSTER_NODEID, 1..=1023, upgraded in id order
  - id: 1001
    host: 10.0.0.11
    api: http://10.0.0.11:5001      # default http://<host>:5001
    version: v2.0.10-20241221       # what is deployed now (used by --offline)
  - id: 1002
    host: 10.0.0.12
    version: v2.0.10-20241221
  - id: 1003
    host: 10.0.0.13
    version: v2.0.10-20241221
policy:
  order: id                         # id (1001 first) | controller-last
  canary: true                      # pause after the first node until confirmed (or --yes)
  soak: 30s                         # watch the whole cluster this long after each node
  stable_for: 10s                   # readiness must hold this long
  node_timeout: 10m                 # per node, from stop to ready
  poll_interval: 1s
"
    )
}

/// A manifest for the WuKongIM services of a compose file.
pub fn from_compose(c: &ComposeCluster, file: &Path, dir: &Path) -> String {
    let name = cluster_name(c.name.as_deref(), dir);
    let mut s = String::new();
    let _ = writeln!(s, "{SCHEMA_LINE}");
    let _ = writeln!(
        s,
        "# Written by `wkctl init --from-compose {}`: one node per service",
        file.display()
    );
    s.push_str("# that sets WK_CLUSTER_NODEID. Review it, then: wkctl check --to v2.1.2\n");
    let _ = writeln!(s, "name: {}", yaml_str(&name));
    s.push_str("playbook: docker-compose            # runs `docker compose` in compose_dir\n");
    s.push_str("api:\n");
    if c.nodes.iter().any(|n| n.has_token) {
        s.push_str("  token_env: WK_MANAGER_TOKEN       # the services set WK_MANAGERTOKEN: export it as this\n");
    } else {
        s.push_str("  # token_env: WK_MANAGER_TOKEN     # if the cluster has a managerToken\n");
    }
    s.push_str("  timeout: 5s\n");
    s.push_str("# ssh: { user: deploy }             # add when the services run on other hosts\n");
    s.push_str("vars:\n");
    let _ = writeln!(s, "  compose_dir: {}", yaml_str(&dir.display().to_string()));
    let first = c.nodes.first();
    if let Some(repo) = first.and_then(|n| n.image_repo.as_ref())
        && c.nodes.iter().all(|n| n.image_repo.as_ref() == Some(repo))
    {
        let _ = writeln!(s, "  image: {}", yaml_str(repo));
    }
    if let Some(env) = first.and_then(|n| n.image_env.as_ref())
        && c.nodes.iter().all(|n| n.image_env.as_ref() == Some(env))
    {
        let _ = writeln!(s, "  image_env: {}", yaml_str(env));
    }
    let shared_env = first
        .and_then(|n| n.image_env.as_ref())
        .is_some_and(|env| c.nodes.iter().all(|n| n.image_env.as_ref() == Some(env)));
    if c.nodes.iter().any(|n| n.host_from == "WK_CLUSTER_APIURL") {
        s.push_str("# Hosts and API URLs come from WK_CLUSTER_APIURL: wkctl must reach them from where it\n");
        s.push_str("# runs (compose network aliases resolve only inside the compose network).\n");
    }
    s.push_str("nodes:\n");
    for n in &c.nodes {
        let _ = writeln!(s, "  - id: {}", n.id);
        let _ = writeln!(
            s,
            "    host: {}   # from {}",
            yaml_str(&n.host),
            n.host_from
        );
        if let Some(api) = &n.api {
            let _ = writeln!(s, "    api: {}   # from {}", yaml_str(api), n.api_from);
        }
        match &n.version {
            Some(v) => {
                let _ = writeln!(s, "    version: {v}   # from the image tag");
            }
            None => s.push_str(
                "    # version: v2.0.10-20241221   # the image tag is not a full version\n",
            ),
        }
        match n.image_env.as_ref().filter(|_| !shared_env) {
            Some(env) => {
                let _ = writeln!(
                    s,
                    "    vars: {{ service: {}, image_env: {} }}",
                    yaml_str(&n.service),
                    yaml_str(env)
                );
            }
            None => {
                let _ = writeln!(s, "    vars: {{ service: {} }}", yaml_str(&n.service));
            }
        }
    }
    s.push_str(
        "policy:
  order: id                         # 1001 first (maintainers' advice, WuKongIM #310)
  canary: true                      # pause after the first node until confirmed (or --yes)
  soak: 30s
  stable_for: 10s
  node_timeout: 10m
  poll_interval: 1s
",
    );
    s
}

/// The compose project name, else the directory's name, made a valid cluster name.
fn cluster_name(compose_name: Option<&str>, dir: &Path) -> String {
    let raw = compose_name
        .map(str::to_string)
        .or_else(|| dir.file_name().map(|f| f.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let cleaned: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    let cleaned = cleaned.trim_start_matches('.').to_string();
    if cleaned.is_empty() {
        "wukongim".into()
    } else {
        cleaned
    }
}

/// A YAML scalar: plain when that reads back as the same string, else double-quoted.
fn yaml_str(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/:@-".contains(c))
        && !s.starts_with(['-', ':', '@'])
        && !s.contains(": ")
        && s.parse::<f64>().is_err()
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "~"
        );
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
    }
}

#[cfg(test)]
mod tests {
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
}
